/* Integration tests of the issue 14 API with the mock agent:
 * GET /v1/sessions/{id} (status, times, title, pending ids), the paged and
 * filtered GET /v1/sessions (and that its plain answer keeps the v1 fields
 * and order), and GET /v1/search (hits, snippets, paging, errors, after a
 * restart and after `sandbox-journal import`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

/* GET `path`, asserting 200; new. */
static json_t *get(struct sj_server *s, const char *path)
{
    json_t *r = sj_call(s, "GET", path, NULL, 200);
    assert_non_null(r);
    return r;
}

static json_t *get_session(struct sj_server *s, const char *id)
{
    char *path = sj_fmt("/v1/sessions/%s", id);
    json_t *r = get(s, path);
    free(path);
    return r;
}

/* The ids in a JSON array of strings, joined by ','. new. */
static char *ids_joined(const json_t *arr)
{
    assert_true(json_is_array(arr));
    char *out = calloc(1, 1024);
    assert_non_null(out);
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        assert_true(json_is_string(v));
        if (i)
            strcat(out, ",");
        strncat(out, json_string_value(v), 1024 - strlen(out) - 2);
    }
    return out;
}

static void assert_ids(const json_t *obj, const char *key, const char *want)
{
    char *got = ids_joined(json_object_get(obj, key));
    if (strcmp(got, want) != 0)
        fail_msg("%s: got [%s], want [%s]", key, got, want);
    free(got);
}

static void test_session_get(void **state)
{
    struct sj_server *s = *state;
    sj_expect_problem(s, "GET", "/v1/sessions/nope", NULL, 404, "session_not_found");
    json_decref(sj_create_session(s, "g1", NULL));
    json_t *r = get_session(s, "g1");
    assert_string_equal(sj_str(r, "sessionId"), "g1");
    assert_string_equal(sj_str(r, "agent"), "mock");
    assert_string_equal(sj_str(r, "status"), "idle");
    assert_true(json_is_null(json_object_get(r, "title")));
    assert_int_equal(sj_int(r, "lastSequence"), sj_int(r, "eventCount"));
    const char *created = sj_str(r, "createdAt");
    assert_non_null(created);
    assert_int_equal(strlen(created), 24); /* 2026-12-07T03:00:00.000Z */
    assert_int_equal(created[strlen(created) - 1], 'Z');
    char *created_copy = strdup(created);
    assert_ids(r, "pendingPermissions", "");
    assert_ids(r, "pendingQuestions", "");
    json_decref(r);

    /* A title longer than 80 characters, in 2-byte characters: cut at a
     * character boundary (80 characters, 160 bytes). */
    char msg[400] = "echo ";
    for (int i = 0; i < 100; i++)
        strcat(msg, "\xc3\xa9"); /* é */
    sj_send_message(s, "g1", msg);
    json_decref(sj_wait_events_exact(s, "g1", 7, WAIT_MS));
    r = get_session(s, "g1");
    const char *title = sj_str(r, "title");
    assert_non_null(title);
    assert_int_equal(strlen(title), 5 + 75 * 2);
    assert_memory_equal(title, "echo \xc3\xa9", 7);
    assert_string_equal(sj_str(r, "status"), "idle");
    assert_true(strcmp(sj_str(r, "updatedAt"), created_copy) > 0);
    assert_int_equal(sj_int(r, "lastSequence"), sj_int(r, "eventCount"));
    json_decref(r);
    free(created_copy);
}

/* The mock's "permission" turn ends with two pending permissions: waiting,
 * with both ids, until both are answered; the answers end nothing more, so
 * the session is idle again, and stays so across a restart. */
static void test_status_waiting(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "w", NULL));
    sj_send_message(s, "w", "permission");
    json_decref(sj_wait_events_exact(s, "w", 6, WAIT_MS));
    json_t *r = get_session(s, "w");
    assert_string_equal(sj_str(r, "status"), "waiting");
    assert_ids(r, "pendingPermissions", "mock_1_permission,mock_1_permission_denied");
    json_decref(r);

    json_t *page = get(s, "/v1/sessions?status=waiting");
    assert_int_equal(json_array_size(json_object_get(page, "sessions")), 1);
    json_decref(page);

    assert_int_equal(sj_server_restart(s), 0);
    r = get_session(s, "w");
    assert_string_equal(sj_str(r, "status"), "waiting");
    assert_ids(r, "pendingPermissions", "mock_1_permission,mock_1_permission_denied");
    json_decref(r);

    assert_null(sj_call(s, "POST", "/v1/sessions/w/permissions/mock_1_permission/reply",
                        "{\"reply\":\"once\"}", 204));
    json_decref(sj_wait_events_exact(s, "w", 7, WAIT_MS));
    r = get_session(s, "w");
    assert_string_equal(sj_str(r, "status"), "waiting");
    assert_ids(r, "pendingPermissions", "mock_1_permission_denied");
    json_decref(r);
    assert_null(sj_call(s, "POST",
                        "/v1/sessions/w/permissions/mock_1_permission_denied/reply",
                        "{\"reply\":\"reject\"}", 204));
    json_decref(sj_wait_events_exact(s, "w", 8, WAIT_MS));
    r = get_session(s, "w");
    assert_string_equal(sj_str(r, "status"), "idle");
    assert_ids(r, "pendingPermissions", "");
    json_decref(r);

    /* Questions too; then terminate: ended, nothing left to answer. */
    sj_send_message(s, "w", "question");
    json_decref(sj_wait_events_exact(s, "w", 8 + 5, WAIT_MS));
    r = get_session(s, "w");
    assert_string_equal(sj_str(r, "status"), "waiting");
    assert_ids(r, "pendingQuestions", "mock_2_question,mock_2_question_reject");
    json_decref(r);
    assert_null(sj_call(s, "POST", "/v1/sessions/w/terminate", NULL, 204));
    r = get_session(s, "w");
    assert_string_equal(sj_str(r, "status"), "ended");
    assert_ids(r, "pendingQuestions", "");
    json_decref(r);
}

/* With a paced mock a turn is seen running, then idle. */
static void test_status_running(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "r", NULL));
    sj_send_message(s, "r", "echo slow turn");
    /* The user's message is committed when the POST returns; the paced
     * reply follows 300 ms per event. */
    json_t *r = get_session(s, "r");
    assert_string_equal(sj_str(r, "status"), "running");
    json_decref(r);
    json_t *page = get(s, "/v1/sessions?status=running");
    json_t *rows = json_object_get(page, "sessions");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(sj_str(json_array_get(rows, 0), "sessionId"), "r");
    json_decref(page);
    json_decref(sj_wait_events_exact(s, "r", 7, WAIT_MS));
    r = get_session(s, "r");
    assert_string_equal(sj_str(r, "status"), "idle");
    json_decref(r);
}

/* The v1 answer: the v1 fields, every session, newest created first, no
 * nextCursor; a session's activity does not reorder it. */
static void test_list_plain(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "p1", NULL));
    json_decref(sj_create_session(s, "p2", NULL));
    json_decref(sj_create_session(s, "p3", NULL));
    sj_send_message(s, "p1", "echo now p1 is the newest activity");
    json_decref(sj_wait_events_exact(s, "p1", 7, WAIT_MS));
    json_t *list = get(s, "/v1/sessions");
    assert_null(json_object_get(list, "nextCursor"));
    json_t *rows = json_object_get(list, "sessions");
    assert_int_equal(json_array_size(rows), 3);
    const char *want[] = {"p3", "p2", "p1"};
    for (size_t i = 0; i < 3; i++) {
        json_t *row = json_array_get(rows, i);
        assert_string_equal(sj_str(row, "sessionId"), want[i]);
        const char *v1[] = {"sessionId", "agent", "agentMode", "permissionMode", "model",
                            "variant", "nativeSessionId", "ended", "eventCount"};
        for (size_t k = 0; k < sizeof v1 / sizeof v1[0]; k++)
            if (!json_object_get(row, v1[k]))
                fail_msg("row %zu lacks %s", i, v1[k]);
        assert_non_null(sj_str(row, "status"));
        assert_non_null(sj_str(row, "updatedAt"));
    }
    json_decref(list);
    /* By activity, p1 comes first. */
    list = get(s, "/v1/sessions?limit=10");
    rows = json_object_get(list, "sessions");
    assert_string_equal(sj_str(json_array_get(rows, 0), "sessionId"), "p1");
    assert_true(json_is_null(json_object_get(list, "nextCursor")));
    json_decref(list);
}

/* Pages of 3 over 10 sessions, while 5 more are created between pages:
 * every old session is seen exactly once, in order, and no new one. */
static void test_list_paging_stable(void **state)
{
    struct sj_server *s = *state;
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%02d", i);
        json_decref(sj_create_session(s, id, NULL));
    }
    json_decref(sj_create_session(s, "other", "{\"agent\":\"mock\"}"));
    char seen[16] = "";
    char *cursor = NULL;
    int pages = 0, added = 0, total = 0;
    char prev_at[64] = "~";
    do {
        char *path = cursor ? sj_fmt("/v1/sessions?limit=3&agent=mock&cursor=%s", cursor)
                            : sj_fmt("/v1/sessions?limit=3&agent=mock");
        json_t *page = get(s, path);
        free(path);
        free(cursor);
        cursor = NULL;
        json_t *rows = json_object_get(page, "sessions");
        assert_true(json_array_size(rows) <= 3);
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            const char *id = sj_str(row, "sessionId");
            const char *at = sj_str(row, "updatedAt");
            assert_true(strcmp(at, prev_at) <= 0); /* newest activity first */
            snprintf(prev_at, sizeof prev_at, "%s", at);
            if (id[0] == 'n')
                fail_msg("a session created after the first page showed up: %s", id);
            if (id[0] == 'k') {
                int k = atoi(id + 1);
                assert_int_equal(seen[k], 0);
                seen[k] = 1;
            }
            total++;
        }
        json_t *next = json_object_get(page, "nextCursor");
        if (json_is_string(next))
            cursor = strdup(json_string_value(next));
        json_decref(page);
        if (added < 5) {
            char *id = sj_fmt("n%d", added++);
            json_decref(sj_create_session(s, id, NULL));
            free(id);
        }
        assert_true(++pages < 20);
    } while (cursor);
    assert_int_equal(total, 11);
    for (int k = 0; k < 10; k++)
        assert_int_equal(seen[k], 1);
    assert_int_equal(pages, 4);

    /* Filters and errors. */
    json_t *page = get(s, "/v1/sessions?agent=claude");
    assert_int_equal(json_array_size(json_object_get(page, "sessions")), 0);
    json_decref(page);
    page = get(s, "/v1/sessions?status=idle&limit=1000");
    assert_int_equal(json_array_size(json_object_get(page, "sessions")), 10 + 1 + added);
    json_decref(page);
    sj_expect_problem(s, "GET", "/v1/sessions?status=busy", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions?limit=0", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions?limit=1001", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions?limit=x", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions?cursor=zzz", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions?cursor=a1_x%27--", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/sessions?cursor=s5", NULL, 400, "invalid_request");
}

/* Hits for `q` (URL-encoded by the caller) once the index has caught up
 * with every committed event (it follows behind the commits: indexLag);
 * new. */
static json_t *search(struct sj_server *s, const char *query)
{
    char *path = sj_fmt("/v1/search?%s", query);
    json_t *r = NULL;
    for (int waited = 0;; waited += 10) {
        json_decref(r);
        r = get(s, path);
        assert_true(json_is_integer(json_object_get(r, "indexedThrough")));
        assert_true(json_is_integer(json_object_get(r, "indexLag")));
        if (sj_int(r, "indexLag") == 0 || waited >= 3 * WAIT_MS)
            break;
        sj_sleep_ms(10);
    }
    assert_int_equal(sj_int(r, "indexLag"), 0);
    /* /v1/health says the same. */
    json_t *h = get(s, "/v1/health");
    json_t *si = json_object_get(h, "searchIndex");
    assert_true(json_is_object(si));
    assert_true(sj_int(si, "indexedThrough") >= sj_int(r, "indexedThrough"));
    json_decref(h);
    free(path);
    return r;
}

static void test_search(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "a", NULL));
    json_decref(sj_create_session(s, "b", NULL));
    sj_send_message(s, "a", "echo the zanzibar report");
    json_decref(sj_wait_events_exact(s, "a", 7, WAIT_MS));
    sj_send_message(s, "b", "echo zanzibar again");
    json_decref(sj_wait_events_exact(s, "b", 7, WAIT_MS));
    sj_send_message(s, "b", "permission");
    json_decref(sj_wait_events_exact(s, "b", 7 + 5, WAIT_MS));

    json_t *r = search(s, "q=zanzibar");
    json_t *hits = json_object_get(r, "hits");
    /* Per turn: the user's message and the mock's echo (item.completed
     * only: item.started and item.delta repeat the item's text). */
    assert_int_equal(json_array_size(hits), 4);
    assert_true(json_is_null(json_object_get(r, "nextCursor")));
    json_t *first = json_array_get(hits, 0);
    assert_string_equal(sj_str(first, "sessionId"), "b"); /* newest first */
    assert_string_equal(sj_str(first, "type"), "item.completed");
    assert_non_null(strstr(sj_str(first, "snippet"), "<mark>zanzibar</mark>"));
    /* The hit names the event that holds the text. */
    char *q = sj_fmt("?offset=%lld&limit=1", sj_int(first, "sequence") - 1);
    json_t *ev = sj_get_events(s, "b", q);
    free(q);
    char *text = json_dumps(json_object_get(ev, "events"), 0);
    assert_non_null(strstr(text, "zanzibar"));
    free(text);
    json_decref(ev);
    json_decref(r);

    /* Paging: 4 hits by 3, then the rest. */
    r = search(s, "q=zanzibar&limit=3");
    assert_int_equal(json_array_size(json_object_get(r, "hits")), 3);
    const char *cur = sj_str(r, "nextCursor");
    assert_non_null(cur);
    char *p2 = sj_fmt("q=zanzibar&limit=3&cursor=%s", cur);
    json_t *r2 = search(s, p2);
    free(p2);
    assert_int_equal(json_array_size(json_object_get(r2, "hits")), 1);
    assert_true(json_is_null(json_object_get(r2, "nextCursor")));
    assert_string_equal(sj_str(json_array_get(json_object_get(r2, "hits"), 0), "sessionId"),
                        "a");
    json_decref(r2);
    json_decref(r);

    /* One session only; a phrase; permission text (the command). */
    r = search(s, "q=zanzibar&session=a");
    assert_int_equal(json_array_size(json_object_get(r, "hits")), 2);
    json_decref(r);
    r = search(s, "q=%22the%20zanzibar%22");
    assert_int_equal(json_array_size(json_object_get(r, "hits")), 2);
    json_decref(r);
    r = search(s, "q=mock&session=b");
    json_t *h;
    size_t i;
    int perm = 0;
    json_array_foreach(json_object_get(r, "hits"), i, h)
        perm |= strcmp(sj_str(h, "type"), "permission.requested") == 0;
    assert_true(perm);
    json_decref(r);

    /* Errors: ProblemDetails. */
    sj_expect_problem(s, "GET", "/v1/search", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=%20%20", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=foo%20AND", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=%22open", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=nocol:x", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=x&cursor=c1", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=x&limit=0", NULL, 400, "invalid_request");
    sj_expect_problem(s, "GET", "/v1/search?q=x&session=ghost", NULL, 404,
                      "session_not_found");
    struct httpc_response resp;
    sj_request(s, "POST", "/v1/search?q=x", NULL, 1, &resp);
    assert_int_equal(resp.status, 405);
    httpc_response_free(&resp);

    /* After a restart the index is there, and goes on growing. */
    assert_int_equal(sj_server_restart(s), 0);
    r = search(s, "q=zanzibar");
    assert_int_equal(json_array_size(json_object_get(r, "hits")), 4);
    json_decref(r);
    sj_send_message(s, "a", "echo zanzibar after restart");
    json_decref(sj_wait_events_exact(s, "a", 7 + 6, WAIT_MS));
    r = search(s, "q=zanzibar%20restart");
    assert_int_equal(json_array_size(json_object_get(r, "hits")), 2);
    json_decref(r);
}

/* `sandbox-journal import` writes a journal no server holds and indexes
 * nothing; the server started on it back-fills the index, so the imported
 * events are searchable, and sessions keep their times. */
static void test_search_after_import(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "imp", NULL));
    sj_send_message(s, "imp", "echo quetzalcoatl feathers");
    json_decref(sj_wait_events_exact(s, "imp", 7, WAIT_MS));
    json_t *before = get_session(s, "imp");
    assert_int_equal(sj_server_stop(s), 0);

    char file[700], target[720], dest[700];
    snprintf(file, sizeof file, "%s/out.jsonl", s->data_dir);
    snprintf(target, sizeof target, "jsonl:%s", file);
    snprintf(dest, sizeof dest, "%s/imported", s->data_dir);
    const char *exp[] = {"export", "--to", target, "--data-dir", s->data_dir, "--quiet", NULL};
    struct sj_cli_result res;
    sj_cli_run(exp, NULL, &res);
    if (res.exit_code != 0)
        fail_msg("export: %s", res.err);
    sj_cli_result_free(&res);
    const char *imp[] = {"import", target, "--data-dir", dest, "--quiet", NULL};
    sj_cli_run(imp, NULL, &res);
    if (res.exit_code != 0)
        fail_msg("import: %s", res.err);
    sj_cli_result_free(&res);

    struct sj_server b;
    if (sj_server_start(&b, dest, NULL) != 0)
        fail_msg("the server on the imported journal did not start");
    json_t *r = search(&b, "q=quetzalcoatl");
    assert_int_equal(json_array_size(json_object_get(r, "hits")), 2);
    json_decref(r);
    json_t *after = get_session(&b, "imp");
    const char *same[] = {"createdAt", "updatedAt", "title", "status"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_string_equal(sj_str(before, same[i]), sj_str(after, same[i]));
    json_decref(after);
    json_decref(before);
    assert_int_equal(sj_server_stop(&b), 0);
    sj_server_release(&b);
    assert_int_equal(sj_server_restart(s), 0); /* for the teardown */
}

static int setup_paced(void **state)
{
    static const char *const args[] = {"--mock-delay-ms", "300", NULL};
    return sj_setup_with(state, args);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, sj_setup_default, sj_teardown_default)
    const struct CMUnitTest tests[] = {
        T(test_session_get),
        T(test_status_waiting),
        cmocka_unit_test_setup_teardown(test_status_running, setup_paced, sj_teardown_default),
        T(test_list_plain),
        T(test_list_paging_stable),
        T(test_search),
        T(test_search_after_import),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
