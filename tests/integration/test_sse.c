/* Integration tests of the event streams: GET /events/sse framing, resume
 * by Last-Event-ID or offset, live tailing, include_raw, several readers,
 * and POST /messages/stream ending at the turn's terminal event.  Every
 * frame must carry exactly the bytes GET /events serves for that event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SID "e"
#define WAIT_MS 10000
#define EVENT_MS 5000

/* new (malloc): the exact text GET /events serves for event `seq`. */
static char *event_text(struct sj_server *s, const char *sid, long long seq, const char *extra)
{
    static const char prefix[] = "{\"events\":[";
    char *query = sj_fmt("?offset=%lld&limit=1%s", seq - 1, extra ? extra : "");
    char *body = sj_get_events_text(s, sid, query);
    char *end, *out;
    size_t pl = sizeof prefix - 1;
    free(query);
    assert_non_null(body);
    if (strncmp(body, prefix, pl) != 0)
        fail_msg("unexpected events page: %s", body);
    end = strstr(body, "],\"hasMore\":");
    assert_non_null(end);
    out = sj_fmt("%.*s", (int)(end - body - (long)pl), body + pl);
    free(body);
    return out;
}

static struct httpc_sse *open_sse(struct sj_server *s, const char *path,
                                  const char *const *headers)
{
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    int rc = httpc_sse_open(s->port, "GET", path, headers, NULL, 0, EVENT_MS, &head, &sse);
    assert_int_equal(rc, 0);
    if (!sse)
        fprintf(stderr, "GET %s -> %d %s\n", path, head.status, head.body ? head.body : "");
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    assert_true(strncmp(httpc_header(&head, "Content-Type"), "text/event-stream", 17) == 0);
    httpc_response_free(&head);
    return sse;
}

static struct httpc_sse *open_turn_stream_q(struct sj_server *s, const char *sid,
                                            const char *message, const char *query)
{
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    char *path = sj_fmt("/v1/sessions/%s/messages/stream%s", sid, query);
    json_t *msg = json_pack("{s:s}", "message", message);
    char *body = json_dumps(msg, JSON_COMPACT);
    int rc = httpc_sse_open(s->port, "POST", path, headers, body, strlen(body), EVENT_MS, &head,
                            &sse);
    assert_int_equal(rc, 0);
    if (!sse)
        fprintf(stderr, "POST %s -> %d %s\n", path, head.status, head.body ? head.body : "");
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    httpc_response_free(&head);
    free(path);
    free(body);
    json_decref(msg);
    return sse;
}

static struct httpc_sse *open_turn_stream(struct sj_server *s, const char *sid,
                                          const char *message)
{
    return open_turn_stream_q(s, sid, message, "");
}

/* Reads the next frame, which must be event `seq`. */
static void read_frame(struct httpc_sse *sse, long long seq, struct httpc_sse_event *ev)
{
    char id[32];
    int rc = httpc_sse_next(sse, EVENT_MS, ev);
    if (rc != 1)
        fail_msg("event %lld: httpc_sse_next returned %d (%s)", seq, rc,
                 rc < 0 ? httpc_strerror(rc) : "stream ended");
    snprintf(id, sizeof id, "%lld", seq);
    assert_non_null(ev->id);
    assert_string_equal(ev->id, id);
}

/* Asserts `ev` is exactly "id: <seq>\ndata: <text>\n\n", and frees it. */
static void check_frame(struct httpc_sse_event *ev, long long seq, const char *text)
{
    assert_string_equal(ev->data, text);
    char *want = sj_fmt("id: %lld\ndata: %s\n\n", seq, text);
    /* Comment lines (heartbeats) may precede a frame in the same block only
     * if the server writes them without a blank line; the frame proper must
     * end the block. */
    assert_true(ev->raw_len >= strlen(want));
    assert_string_equal(ev->raw + ev->raw_len - strlen(want), want);
    free(want);
    httpc_sse_event_free(ev);
}

/* The next frame is event `seq` with the text GET /events serves for it
 * (asked once the frame is here: the event may be newer than the call). */
static void expect_frame(struct sj_server *s, struct httpc_sse *sse, const char *sid,
                         long long seq, const char *extra)
{
    struct httpc_sse_event ev;
    read_frame(sse, seq, &ev);
    char *text = event_text(s, sid, seq, extra);
    check_frame(&ev, seq, text);
    free(text);
}

/* The same against a text known already. */
static void expect_frame_is(struct httpc_sse *sse, long long seq, const char *text)
{
    struct httpc_sse_event ev;
    read_frame(sse, seq, &ev);
    check_frame(&ev, seq, text);
}

static void expect_no_frame(struct httpc_sse *sse, int ms)
{
    struct httpc_sse_event ev;
    int rc = httpc_sse_next(sse, ms, &ev);
    if (rc == 1) {
        fprintf(stderr, "unexpected frame: %s\n", ev.raw);
        httpc_sse_event_free(&ev);
    }
    assert_int_equal(rc, HTTPC_ETIMEOUT);
}

static void new_session_with(struct sj_server *s, const char *sid, const char *message,
                             size_t total)
{
    json_t *r = sj_create_session(s, sid, NULL), *events;
    json_decref(r);
    if (message) {
        sj_send_message(s, sid, message);
        events = sj_wait_events_exact(s, sid, total, WAIT_MS);
        json_decref(events);
    }
}

static void test_sse_framing(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, "echo hi", 7);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    for (long long seq = 1; seq <= 7; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    expect_no_frame(sse, 300);
    fprintf(stderr, "comment lines seen: %u\n", httpc_sse_comments(sse));
    httpc_sse_close(sse);
}

static void test_sse_last_event_id(void **state)
{
    static const char *const headers[] = {"Last-Event-ID: 4", NULL};
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, "echo hi", 7);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", headers);
    for (long long seq = 5; seq <= 7; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    expect_no_frame(sse, 300);
    httpc_sse_close(sse);
}

static void test_sse_offset(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, "echo hi", 7);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=5", NULL);
    expect_frame(s, sse, SID, 6, NULL);
    expect_frame(s, sse, SID, 7, NULL);
    expect_no_frame(sse, 300);
    httpc_sse_close(sse);

    /* Up to date: nothing until something new is journaled. */
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=7", NULL);
    expect_no_frame(sse, 300);
    sj_send_message(s, SID, "echo again");
    for (long long seq = 8; seq <= 13; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    httpc_sse_close(sse);
}

static void test_sse_live_tail(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, NULL, 1);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, sse, SID, 1, NULL);
    expect_no_frame(sse, 200);
    sj_send_message(s, SID, "echo live");
    for (long long seq = 2; seq <= 7; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    sj_send_message(s, SID, "markdown");
    for (long long seq = 8; seq <= 20; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    {
        json_t *r = sj_call(s, "POST", "/v1/sessions/" SID "/terminate", NULL, 204);
        assert_null(r);
    }
    expect_frame(s, sse, SID, 21, NULL);
    httpc_sse_close(sse);
}

static void test_sse_two_readers(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *a, *b;
    new_session_with(s, SID, NULL, 1);
    a = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    b = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=1", NULL);
    expect_frame(s, a, SID, 1, NULL);
    sj_send_message(s, SID, "permission");
    for (long long seq = 2; seq <= 6; seq++) {
        expect_frame(s, a, SID, seq, NULL);
        expect_frame(s, b, SID, seq, NULL);
    }
    httpc_sse_close(a);
    httpc_sse_close(b);
}

static void test_sse_include_raw(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    struct httpc_sse_event ev;
    json_t *e;
    new_session_with(s, SID, "unparsed", 5);

    sse = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=4&include_raw=true", NULL);
    expect_frame(s, sse, SID, 5, "&include_raw=true");
    httpc_sse_close(sse);

    sse = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=4", NULL);
    assert_int_equal(httpc_sse_next(sse, EVENT_MS, &ev), 1);
    e = json_loads(ev.data, 0, NULL);
    assert_non_null(e);
    assert_true(json_is_null(json_object_get(e, "raw")));
    json_decref(e);
    httpc_sse_event_free(&ev);
    httpc_sse_close(sse);

    sse = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=4&includeRaw=true", NULL);
    assert_int_equal(httpc_sse_next(sse, EVENT_MS, &ev), 1);
    e = json_loads(ev.data, 0, NULL);
    assert_non_null(e);
    assert_string_equal(sj_str(e, "raw.raw"), "mock");
    json_decref(e);
    httpc_sse_event_free(&ev);
    httpc_sse_close(sse);
}

static void test_sse_not_found(void **state)
{
    struct sj_server *s = *state;
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    json_t *p;
    int rc = httpc_sse_open(s->port, "GET", "/v1/sessions/ghost/events/sse", NULL, NULL, 0,
                            EVENT_MS, &head, &sse);
    assert_int_equal(rc, 0);
    assert_null(sse);
    p = sj_assert_problem(&head, 404, "session_not_found");
    json_decref(p);
    httpc_response_free(&head);
}

/* Reads frames first..last from a turn stream, then asserts it closes. */
static void expect_turn(struct sj_server *s, struct httpc_sse *sse, const char *sid,
                        long long first, long long last)
{
    unsigned skipped = 0;
    int rc;
    for (long long seq = first; seq <= last; seq++)
        expect_frame(s, sse, sid, seq, NULL);
    rc = httpc_sse_wait_closed(sse, EVENT_MS, &skipped);
    if (rc != 0)
        fprintf(stderr, "turn stream still open after event %lld (%s)\n", last,
                httpc_strerror(rc));
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 0);
}

static void test_turn_stream_echo(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    json_t *events;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID, "echo streamed");
    /* The user item, then the reply; it ends at the completed assistant message. */
    expect_turn(s, sse, SID, 2, 7);
    httpc_sse_close(sse);

    /* A second turn starts after everything before it. */
    sse = open_turn_stream(s, SID, "Reply with exactly the single word OK.");
    expect_turn(s, sse, SID, 8, 13);
    httpc_sse_close(sse);
    events = sj_wait_events_quiet(s, SID, 13, WAIT_MS);
    assert_string_equal(sj_str(json_array_get(events, 12), "data.item.content.0.text"), "OK");
    json_decref(events);
}

static void test_turn_stream_include_raw(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    unsigned skipped = 0;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream_q(s, SID, "unparsed", "?include_raw=true");
    for (long long seq = 2; seq <= 4; seq++)
        expect_frame(s, sse, SID, seq, "&include_raw=true");
    expect_frame(s, sse, SID, 5, "&include_raw=true"); /* agent.unparsed with its raw */
    assert_int_equal(httpc_sse_wait_closed(sse, EVENT_MS, &skipped), 0);
    httpc_sse_close(sse);
    {
        char *text = event_text(s, SID, 5, "&include_raw=true");
        assert_non_null(strstr(text, "\"raw\":{\"raw\":\"mock\"}"));
        free(text);
    }
}

static void test_turn_stream_permission(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    json_t *events;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID, "permission");
    /* Ends at the first permission.requested, though a second one follows. */
    expect_turn(s, sse, SID, 2, 5);
    httpc_sse_close(sse);
    events = sj_wait_events_quiet(s, SID, 6, WAIT_MS);
    assert_string_equal(sj_str(json_array_get(events, 4), "type"), "permission.requested");
    assert_string_equal(sj_str(json_array_get(events, 5), "type"), "permission.requested");
    json_decref(events);
}

static void test_turn_stream_question(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID, "question");
    expect_turn(s, sse, SID, 2, 5);
    httpc_sse_close(sse);
}

static void test_turn_stream_error(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID, "error");
    expect_turn(s, sse, SID, 2, 5); /* the error event */
    httpc_sse_close(sse);
    /* Let the rest of that turn (its agent.unparsed, event 6) land first. */
    {
        json_t *events = sj_wait_events_exact(s, SID, 6, WAIT_MS);
        json_decref(events);
    }
    sse = open_turn_stream(s, SID, "unparsed");
    expect_turn(s, sse, SID, 7, 10);
    httpc_sse_close(sse);
}

static void test_turn_stream_tool_prompt(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID,
                           "Use the bash tool to run `ls` in the current directory. Do not answer "
                           "without using the tool.");
    /* permission.requested comes first and ends the turn stream. */
    expect_turn(s, sse, SID, 2, 5);
    httpc_sse_close(sse);
}

static void test_turn_stream_end(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    struct httpc_response head;
    json_t *p;
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID, "end");
    expect_turn(s, sse, SID, 2, 5); /* session.ended */
    httpc_sse_close(sse);

    /* The session has ended: a new turn is refused before streaming. */
    assert_int_equal(httpc_sse_open(s->port, "POST", "/v1/sessions/" SID "/messages/stream",
                                    headers, "{\"message\":\"hi\"}", 16, EVENT_MS, &head, &sse),
                     0);
    assert_null(sse);
    p = sj_assert_problem(&head, 500, "agent_process_exited");
    json_decref(p);
    httpc_response_free(&head);
}

static void test_turn_stream_errors(void **state)
{
    struct sj_server *s = *state;
    struct httpc_sse *sse = NULL;
    struct httpc_response head;
    json_t *p, *r;
    static const char *const headers[] = {"Content-Type: application/json", NULL};

    assert_int_equal(httpc_sse_open(s->port, "POST", "/v1/sessions/ghost/messages/stream", headers,
                                    "{\"message\":\"hi\"}", 16, EVENT_MS, &head, &sse),
                     0);
    assert_null(sse);
    p = sj_assert_problem(&head, 404, "session_not_found");
    json_decref(p);
    httpc_response_free(&head);

    new_session_with(s, SID, NULL, 1);
    assert_int_equal(httpc_sse_open(s->port, "POST", "/v1/sessions/" SID "/messages/stream",
                                    headers, "{\"msg\":\"hi\"}", 12, EVENT_MS, &head, &sse),
                     0);
    assert_null(sse);
    p = sj_assert_problem(&head, 400, "invalid_request");
    json_decref(p);
    httpc_response_free(&head);

    r = sj_call(s, "POST", "/v1/sessions/" SID "/terminate", NULL, 204);
    assert_null(r);
    assert_int_equal(httpc_sse_open(s->port, "POST", "/v1/sessions/" SID "/messages/stream",
                                    headers, "{\"message\":\"hi\"}", 16, EVENT_MS, &head, &sse),
                     0);
    assert_null(sse);
    p = sj_assert_problem(&head, 400, "invalid_request");
    json_decref(p);
    httpc_response_free(&head);
    r = sj_wait_events_quiet(s, SID, 2, WAIT_MS);
    json_decref(r);
}

static void test_sse_after_terminate_replays(void **state)
{
    /* A reader that connects after the session ended still gets everything. */
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    json_t *r;
    new_session_with(s, SID, "echo bye", 7);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/terminate", NULL, 204);
    assert_null(r);
    r = sj_wait_events_quiet(s, SID, 8, WAIT_MS);
    json_decref(r);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    for (long long seq = 1; seq <= 8; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    httpc_sse_close(sse);
}

static void test_stop_with_open_streams(void **state)
{
    /* A clean stop must not wait for readers: an idle tail and a turn that
     * never reaches a terminal event (a status item) are both open. */
    struct sj_server *s = *state;
    struct httpc_sse *tail, *turn;
    struct httpc_sse_event ev;
    unsigned skipped = 0;
    int rc;
    new_session_with(s, SID, NULL, 1);
    tail = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, tail, SID, 1, NULL);
    turn = open_turn_stream(s, SID, "status");
    for (long long seq = 2; seq <= 6; seq++)
        expect_frame(s, turn, SID, seq, NULL);
    expect_no_frame(turn, 200);
    assert_int_equal(sj_server_stop(s), 0);
    /* Both streams end (cleanly or by a reset), none hangs. */
    rc = httpc_sse_wait_closed(turn, EVENT_MS, &skipped);
    assert_true(rc == 0 || rc == HTTPC_ECLOSED || rc == HTTPC_ESYS);
    rc = httpc_sse_next(tail, EVENT_MS, &ev);
    while (rc == 1) {
        httpc_sse_event_free(&ev);
        rc = httpc_sse_next(tail, EVENT_MS, &ev);
    }
    assert_true(rc == 0 || rc == HTTPC_ECLOSED || rc == HTTPC_ESYS);
    httpc_sse_close(turn);
    httpc_sse_close(tail);
}

static void test_readers_come_and_go(void **state)
{
    /* Readers that hang up mid-stream do not disturb the others or the
     * journal. */
    struct sj_server *s = *state;
    struct httpc_sse *keep;
    json_t *events;
    new_session_with(s, SID, NULL, 1);
    keep = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, keep, SID, 1, NULL);
    sj_send_message(s, SID, "demo");
    for (int i = 0; i < 20; i++) {
        struct httpc_sse *brief = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
        struct httpc_sse_event ev;
        assert_int_equal(httpc_sse_next(brief, EVENT_MS, &ev), 1);
        httpc_sse_event_free(&ev);
        httpc_sse_close(brief);
    }
    for (long long seq = 2; seq <= 67; seq++)
        expect_frame(s, keep, SID, seq, NULL);
    httpc_sse_close(keep);
    events = sj_wait_events_quiet(s, SID, 67, WAIT_MS);
    json_decref(events);
}

/* Many streams of one session are woken by the same commits and share the
 * frames the first of them read (src/sse_tail.c).  Each must still get every
 * event once, in order, byte for byte: raw streams (never shared), a reader
 * that starts behind, and a turn stream that must stop at its turn's end. */
static void test_many_readers_share_frames(void **state)
{
    enum { READERS = 24, RAW = 4, LAST = 73 };
    struct sj_server *s = *state;
    struct httpc_sse *readers[READERS], *raw[RAW];
    new_session_with(s, SID, NULL, 1);
    for (int i = 0; i < READERS; i++)
        readers[i] = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    for (int i = 0; i < RAW; i++)
        raw[i] = open_sse(s, "/v1/sessions/" SID "/events/sse?include_raw=true", NULL);
    sj_send_message(s, SID, "demo"); /* events 2..67, one every 25 ms */
    /* Mid-turn, so that the late reader starts behind the others. */
    json_decref(sj_wait_events(s, SID, 13, WAIT_MS));
    struct httpc_sse *late = open_sse(s, "/v1/sessions/" SID "/events/sse?offset=3", NULL);
    json_decref(sj_wait_events_exact(s, SID, 67, WAIT_MS));
    struct httpc_sse *turn = open_turn_stream(s, SID, "echo shared");
    expect_turn(s, turn, SID, 68, LAST);
    httpc_sse_close(turn);

    char *text[LAST + 1], *raw_text[LAST + 1];
    for (long long seq = 1; seq <= LAST; seq++) {
        text[seq] = event_text(s, SID, seq, NULL);
        raw_text[seq] = event_text(s, SID, seq, "&include_raw=true");
    }
    for (int i = 0; i < READERS; i++) {
        for (long long seq = 1; seq <= LAST; seq++)
            expect_frame_is(readers[i], seq, text[seq]);
        expect_no_frame(readers[i], 50);
        httpc_sse_close(readers[i]);
    }
    for (int i = 0; i < RAW; i++) {
        for (long long seq = 1; seq <= LAST; seq++)
            expect_frame_is(raw[i], seq, raw_text[seq]);
        httpc_sse_close(raw[i]);
    }
    for (long long seq = 4; seq <= LAST; seq++)
        expect_frame_is(late, seq, text[seq]);
    expect_no_frame(late, 50);
    httpc_sse_close(late);
    for (long long seq = 1; seq <= LAST; seq++) {
        free(text[seq]);
        free(raw_text[seq]);
    }
}

static int setup_slow(void **state)
{
    static const char *const args[] = {"--mock-delay-ms", "25", NULL};
    return sj_setup_with(state, args);
}

/* Every journal read of the server's streams takes 100 ms more, on 16 HTTP
 * workers (the default, pinned here because the test depends on it), and
 * the hub pushes nothing: every woken stream runs on a worker. */
static int setup_slow_reads(void **state)
{
    static const char *const args[] = {"--http-threads", "16", NULL};
    if (setenv("SJ_TEST_DEBUG_ROUTES", "1", 1) != 0 ||
        setenv("SJ_TEST_SSE_READ_DELAY_MS", "100", 1) != 0 ||
        setenv("SJ_TEST_SSE_NO_PUSH", "1", 1) != 0)
        return -1;
    int rc = sj_setup_with(state, args);
    unsetenv("SJ_TEST_SSE_READ_DELAY_MS");
    unsetenv("SJ_TEST_SSE_NO_PUSH");
    return rc;
}

static long long sse_reads(struct sj_server *s)
{
    json_t *d = sj_call(s, "GET", "/v1/debug/sse", NULL, 200);
    long long reads = sj_int(d, "reads");
    json_decref(d);
    return reads;
}

static void test_woken_readers_share_one_read(void **state)
{
    /* A commit wakes every stream of its session at once, on every HTTP
     * worker, and they all find the shared frames missing together.  Each
     * used to run the same journal read (one per worker and commit); one
     * reads now and the others wait for its frames.  The slowed reads keep
     * them all waking inside one read, however the threads are scheduled. */
    enum { READERS = 24, LAST = 7 };
    struct sj_server *s = *state;
    struct httpc_sse *readers[READERS];
    new_session_with(s, SID, NULL, 1);
    char *first = event_text(s, SID, 1, NULL);
    for (int i = 0; i < READERS; i++) {
        readers[i] = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
        expect_frame_is(readers[i], 1, first);
    }
    free(first);
    long long before = sse_reads(s);
    sj_send_message(s, SID, "echo hi");
    json_decref(sj_wait_events_exact(s, SID, LAST, WAIT_MS));
    char *text[LAST + 1];
    for (long long seq = 2; seq <= LAST; seq++)
        text[seq] = event_text(s, SID, seq, NULL);
    for (int i = 0; i < READERS; i++) {
        for (long long seq = 2; seq <= LAST; seq++)
            expect_frame_is(readers[i], seq, text[seq]);
        httpc_sse_close(readers[i]);
    }
    for (long long seq = 2; seq <= LAST; seq++)
        free(text[seq]);
    long long reads = sse_reads(s) - before;
    fprintf(stderr, "journal reads for %d readers and %d events: %lld\n", READERS, LAST - 1,
            reads);
    /* At most one per event (each could be its own commit); it was 16 or
     * more, one per worker. */
    assert_true(reads >= 1 && reads <= LAST - 1);
}

static void test_turn_stream_ends_on_terminate(void **state)
{
    /* A turn cut short by terminate ends its stream at session.ended.  The
     * status turn never reaches a terminal event by itself, so terminate is
     * what ends it however slowly the server runs. */
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    struct httpc_sse_event ev;
    json_t *r, *e = NULL;
    int rc;
    new_session_with(s, SID, NULL, 1);
    sse = open_turn_stream(s, SID, "status");
    for (long long seq = 2; seq <= 6; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    r = sj_call(s, "POST", "/v1/sessions/" SID "/terminate", NULL, 204);
    assert_null(r);
    while ((rc = httpc_sse_next(sse, EVENT_MS, &ev)) == 1) {
        json_decref(e);
        e = json_loads(ev.data, 0, NULL);
        httpc_sse_event_free(&ev);
    }
    assert_int_equal(rc, 0);
    assert_non_null(e);
    assert_string_equal(sj_str(e, "type"), "session.ended");
    json_decref(e);
    httpc_sse_close(sse);
}

static int setup_heartbeat(void **state)
{
    static const char *const args[] = {"--sse-heartbeat-ms", "100", NULL};
    return sj_setup_with(state, args);
}

static void test_heartbeats_on_idle_stream(void **state)
{
    /* An idle stream carries comment lines, which are not events; frames
     * after them are intact. */
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    unsigned before;
    new_session_with(s, SID, NULL, 1);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, sse, SID, 1, NULL);
    before = httpc_sse_comments(sse);
    /* Three heartbeats take 300 ms; a server under valgrind gets 5 s. */
    int waited_ms = 0;
    while (httpc_sse_comments(sse) < before + 3 && waited_ms < 5000) {
        expect_no_frame(sse, 100);
        waited_ms += 100;
    }
    fprintf(stderr, "comments: %u before idling, %u after %d ms\n", before,
            httpc_sse_comments(sse), waited_ms);
    assert_true(httpc_sse_comments(sse) >= before + 3);
    sj_send_message(s, SID, "echo after idle");
    for (long long seq = 2; seq <= 7; seq++)
        expect_frame(s, sse, SID, seq, NULL);
    httpc_sse_close(sse);
}


static void test_sse_last_event_id_spaces(void **state)
{
    /* Optional whitespace around a header value is not part of it. */
    static const char *const headers[] = {"Last-Event-ID: 5 \t", NULL};
    struct sj_server *s = *state;
    struct httpc_sse *sse;
    new_session_with(s, SID, "echo hi", 7);
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", headers);
    expect_frame(s, sse, SID, 6, NULL);
    expect_frame(s, sse, SID, 7, NULL);
    httpc_sse_close(sse);
}

/* Sends `req` on a fresh connection and reads until the server closes it
 * (bounded by timeout_ms).  new: the bytes, NUL-terminated. */
static char *raw_exchange(int port, const char *req, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t len = strlen(req);
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t cap = 65536, got = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, timeout_ms);
        if (n <= 0)
            fail_msg("no end of response within %d ms; got: %.*s", timeout_ms, (int)got, out);
        ssize_t r = recv(fd, out + got, cap - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        assert_true(got < cap - 1);
    }
    out[got] = '\0';
    close(fd);
    return out;
}

static void test_sse_head_has_no_body(void **state)
{
    /* HEAD answers with the stream's headers and nothing else: the bytes
     * after them are the next pipelined response, not a chunk. */
    struct sj_server *s = *state;
    new_session_with(s, SID, NULL, 1);
    char *got = raw_exchange(s->port,
                             "HEAD /v1/sessions/" SID "/events/sse HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             WAIT_MS);
    char *end = strstr(got, "\r\n\r\n");
    if (!end || strncmp(got, "HTTP/1.1 200 ", 13) != 0)
        fail_msg("bad HEAD answer: %s", got);
    *end = '\0';
    if (!strstr(got, "text/event-stream"))
        fail_msg("HEAD answer without the stream's Content-Type: %s", got);
    if (strncmp(end + 4, "HTTP/1.1 200 ", 13) != 0)
        fail_msg("bytes after the HEAD answer's headers: %s", end + 4);
    assert_non_null(strstr(end + 4, "{\"status\":\"ok\",")); /* health, next on the line */
    free(got);
}

/* The sockets process `pid` holds open. */
static int count_sockets(pid_t pid)
{
    char dir[64], path[320], link[128];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len > 0 && strncmp(link, "socket:", 7 < len ? 7 : (size_t)len) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void test_sse_hangup_releases_descriptor(void **state)
{
    /* A client that leaves a parked stream gets its socket closed at once,
     * not at the next heartbeat (15 s by default, well past this wait). */
    struct sj_server *s = *state;
    new_session_with(s, SID, NULL, 1);
    struct httpc_sse *sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, sse, SID, 1, NULL);
    int open_now = count_sockets(s->pid);
    httpc_sse_close(sse);
    int waited = 0;
    while (count_sockets(s->pid) >= open_now && waited < 5000) {
        sj_sleep_ms(20);
        waited += 20;
    }
    fprintf(stderr, "sockets: %d with the stream, %d %d ms after it left\n", open_now,
            count_sockets(s->pid), waited);
    assert_true(count_sockets(s->pid) < open_now);
    /* The session's other streams are unaffected. */
    sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, sse, SID, 1, NULL);
    httpc_sse_close(sse);
}

#define BIG_TEXT (1024 * 1024)
/* Journaling megabyte events takes a while under valgrind. */
#define BIG_WAIT_MS 60000

static int setup_big(void **state)
{
    static const char *const args[] = {"--max-body-bytes", "2097152", NULL};
    if (setenv("SJ_TEST_DEBUG_ROUTES", "1", 1) != 0)
        return -1;
    return sj_setup_with(state, args);
}

static json_t *debug_sse(struct sj_server *s)
{
    return sj_call(s, "GET", "/v1/debug/sse", NULL, 200);
}

/* setup_big with a push that makes no progress for 300 ms counted as a
 * stalled client (60 s outside tests, as libmicrohttpd's own timeout). */
/* The hub counter `key` of GET /v1/debug/sse once it reaches `want`, or
 * after WAIT_MS. */
static long long debug_wait_for(struct sj_server *s, const char *key, long long want)
{
    long long v = 0;
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        json_t *d = debug_sse(s);
        v = sj_int(d, key);
        json_decref(d);
        if (v >= want)
            break;
        sj_sleep_ms(20);
    }
    return v;
}

static int setup_stall(void **state)
{
    if (setenv("SJ_TEST_SSE_STALL_MS", "300", 1) != 0)
        return -1;
    int rc = setup_big(state);
    unsetenv("SJ_TEST_SSE_STALL_MS");
    return rc;
}

static int setup_debug(void **state)
{
    if (setenv("SJ_TEST_DEBUG_ROUTES", "1", 1) != 0)
        return -1;
    return sj_setup_default(state);
}

/* An HTTP/1.0 event stream on a raw socket: its body is the frames, with
 * no chunked framing.  The socket, the request sent. */
static int raw10_open(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char *req = sj_fmt("GET %s HTTP/1.0\r\n\r\n", path);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    free(req);
    return fd;
}

/* Reads `fd` into *got (a malloc'd, NUL-terminated buffer of *len bytes)
 * until it holds `until`, for at most timeout_ms. */
static void raw10_read_until(int fd, char **got, size_t *len, const char *until, int timeout_ms)
{
    for (int waited = 0; !(*got && strstr(*got, until));) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (waited >= timeout_ms || poll(&p, 1, 50) < 0)
            fail_msg("no \"%s\" within %d ms; got: %s", until, timeout_ms, *got ? *got : "");
        waited += 50;
        char chunk[65536];
        ssize_t r = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            fail_msg("the stream ended before \"%s\"; got: %s", until, *got ? *got : "");
        char *grown = realloc(*got, *len + (size_t)r + 1);
        assert_non_null(grown);
        memcpy(grown + *len, chunk, (size_t)r);
        *len += (size_t)r;
        grown[*len] = '\0';
        *got = grown;
    }
}

static void test_caught_up_readers_are_pushed(void **state)
{
    /* Readers parked at the end of a session get the next events written
     * by the hub thread (pushes), framed exactly as libmicrohttpd frames
     * them: chunks for HTTP/1.1, the raw frames for HTTP/1.0, whose whole
     * body is compared byte for byte. */
    enum { READERS = 4, LAST = 7 };
    struct sj_server *s = *state;
    struct httpc_sse *readers[READERS];
    new_session_with(s, SID, NULL, 1);
    char *text[LAST + 1];
    text[1] = event_text(s, SID, 1, NULL);
    for (int i = 0; i < READERS; i++) {
        readers[i] = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
        expect_frame_is(readers[i], 1, text[1]);
    }
    int raw = raw10_open(s->port, "/v1/sessions/" SID "/events/sse");
    char *got = NULL;
    size_t len = 0;
    char *first = sj_fmt("id: 1\ndata: %s\n\n", text[1]);
    raw10_read_until(raw, &got, &len, first, WAIT_MS);
    free(first);
    json_t *d = debug_sse(s);
    long long pushes = sj_int(d, "pushes");
    json_decref(d);

    sj_send_message(s, SID, "echo hi");
    json_decref(sj_wait_events_exact(s, SID, LAST, WAIT_MS));
    for (long long seq = 2; seq <= LAST; seq++)
        text[seq] = event_text(s, SID, seq, NULL);
    for (int i = 0; i < READERS; i++) {
        for (long long seq = 2; seq <= LAST; seq++)
            expect_frame_is(readers[i], seq, text[seq]);
        expect_no_frame(readers[i], 50);
        httpc_sse_close(readers[i]);
    }
    char *last = sj_fmt("id: %d\ndata: %s\n\n", LAST, text[LAST]);
    raw10_read_until(raw, &got, &len, last, WAIT_MS);
    free(last);
    close(raw);
    char *body = strstr(got, "\r\n\r\n");
    if (!body || strncmp(got + 8, " 200 ", 5) != 0 || strstr(got, "chunked"))
        fail_msg("bad HTTP/1.0 stream: %s", got);
    char *want = sj_fmt(": connected\n\n");
    for (long long seq = 1; seq <= LAST; seq++) {
        char *more = sj_fmt("%sid: %lld\ndata: %s\n\n", want, seq, text[seq]);
        free(want);
        want = more;
    }
    assert_string_equal(body + 4, want);
    free(want);
    free(got);
    for (long long seq = 1; seq <= LAST; seq++)
        free(text[seq]);

    d = debug_sse(s);
    pushes = sj_int(d, "pushes") - pushes;
    json_decref(d);
    fprintf(stderr, "pushes for %d readers: %lld\n", READERS + 1, pushes);
    assert_true(pushes >= READERS + 1); /* every reader got at least one */
}

/* Sends `messages` megabyte messages to SID, whose reader has stopped
 * reading, until event `last` is journaled; then waits for a push to meet
 * the full socket.  The partial pushes counted so far. */
static long long fill_past_socket(struct sj_server *s, int messages, long long last)
{
    for (int i = 0; i < messages; i++)
        sj_send_big(s, SID, BIG_TEXT);
    sj_wait_sequence(s, SID, last, BIG_WAIT_MS);
    return debug_wait_for(s, "partialPushes", 1);
}

static void test_push_the_socket_cannot_take(void **state)
{
    /* A reader parked at the end stops reading while megabyte events come:
     * a push meets a full socket, the hub writes the rest of that chunk as
     * the socket drains, and the stream goes on through libmicrohttpd.  The
     * reader then gets every event in order, the chunks intact. */
    enum { MESSAGES = 4, LAST = 1 + 6 * MESSAGES };
    struct sj_server *s = *state;
    new_session_with(s, SID, NULL, 1);
    struct httpc_sse *sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    char *text = event_text(s, SID, 1, NULL);
    expect_frame_is(sse, 1, text);
    free(text);
    long long partial = fill_past_socket(s, MESSAGES, LAST);
    fprintf(stderr, "pushes cut short by a full socket: %lld\n", partial);
    assert_true(partial >= 1);
    for (long long seq = 2; seq <= LAST; seq++) {
        text = event_text(s, SID, seq, NULL);
        expect_frame_is(sse, seq, text);
        free(text);
    }
    expect_no_frame(sse, 50);
    httpc_sse_close(sse);
}

static void test_sse_slow_reader_budget(void **state)
{
    /* A reader that stops reading pins at most the stream's budget plus one
     * event, whatever the event size: here 24 events of 1 MiB wait for it.
     * When it reads again it gets them all, in order. */
    struct sj_server *s = *state;
    new_session_with(s, SID, NULL, 1);
    for (int i = 0; i < 4; i++)
        sj_send_big(s, SID, BIG_TEXT);
    sj_wait_sequence(s, SID, 25, BIG_WAIT_MS);
    struct httpc_sse *sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    /* The server has refilled the stream at least once without the client
     * reading: it wrote a buffer's worth and came back for more. */
    long long reads = debug_wait_for(s, "reads", 2);
    assert_true(reads >= 2);
    for (long long seq = 1; seq <= 25; seq++) {
        struct httpc_sse_event ev;
        read_frame(sse, seq, &ev);
        httpc_sse_event_free(&ev);
    }
    httpc_sse_close(sse);
    json_t *d = debug_sse(s);
    long long peak = sj_int(d, "peakBufferedBytes"), budget = sj_int(d, "budgetBytes");
    fprintf(stderr, "peak held for one stream: %lld bytes (budget %lld + one event)\n", peak,
            budget);
    /* One event is the 1 MiB text, its JSON envelope and its frame. */
    assert_true(peak <= budget + BIG_TEXT + 4096);
    json_decref(d);
}

static void test_stalled_push_is_ended(void **state)
{
    /* A client that stops reading in the middle of a pushed chunk holds a
     * suspended connection, which libmicrohttpd never times out: the hub
     * ends it once nothing moved for the stall time, as libmicrohttpd ends
     * a connection it drives.  Its stream and descriptor go. */
    enum { MESSAGES = 4, LAST = 1 + 6 * MESSAGES };
    struct sj_server *s = *state;
    new_session_with(s, SID, NULL, 1);
    struct httpc_sse *sse = open_sse(s, "/v1/sessions/" SID "/events/sse", NULL);
    expect_frame(s, sse, SID, 1, NULL);
    long long partial = fill_past_socket(s, MESSAGES, LAST), streams = 1;
    for (int waited = 0; waited < WAIT_MS && streams > 0; waited += 20) {
        json_t *d = debug_sse(s);
        streams = sj_int(d, "streams");
        json_decref(d);
        sj_sleep_ms(20);
    }
    fprintf(stderr, "partial pushes %lld, streams left %lld\n", partial, streams);
    assert_true(partial >= 1);
    assert_int_equal(streams, 0);
    /* The client reads what the kernel still held, then the end of the
     * connection (this client does not tell a cut chunk from a close). */
    int rc = 1;
    for (int i = 0; i < LAST && rc == 1; i++) {
        struct httpc_sse_event ev;
        rc = httpc_sse_next(sse, EVENT_MS, &ev);
        if (rc == 1)
            httpc_sse_event_free(&ev);
    }
    fprintf(stderr, "the client's stream ended with %d\n", rc);
    assert_true(rc <= 0 && rc != HTTPC_ETIMEOUT);
    httpc_sse_close(sse);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sj_setup_default, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_sse_framing),
        T(test_sse_last_event_id),
        T(test_sse_last_event_id_spaces),
        T(test_sse_head_has_no_body),
        T(test_sse_hangup_releases_descriptor),
        T(test_sse_offset),
        T(test_sse_live_tail),
        T(test_sse_two_readers),
        T(test_sse_include_raw),
        T(test_sse_not_found),
        T(test_turn_stream_echo),
        T(test_turn_stream_include_raw),
        T(test_turn_stream_permission),
        T(test_turn_stream_question),
        T(test_turn_stream_error),
        T(test_turn_stream_tool_prompt),
        T(test_turn_stream_end),
        T(test_turn_stream_errors),
        T(test_sse_after_terminate_replays),
        T(test_stop_with_open_streams),
        T(test_readers_come_and_go),
        cmocka_unit_test_setup_teardown(test_turn_stream_ends_on_terminate, setup_slow,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_many_readers_share_frames, setup_slow,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_heartbeats_on_idle_stream, setup_heartbeat,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_sse_slow_reader_budget, setup_big,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_woken_readers_share_one_read, setup_slow_reads,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_caught_up_readers_are_pushed, setup_debug,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_push_the_socket_cannot_take, setup_big,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_stalled_push_is_ended, setup_stall,
                                        sj_teardown_default),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
