/* Session routes: create, list, messages, human-in-the-loop replies,
 * terminate, event pages read straight from the journal, and the two event
 * streams (written by sse.c). */
#include "http/request.h"
#include "http/routes.h"

#include "events/event.h"
#include "http/parse.h"
#include "http/sse.h"

#include <stdlib.h>
#include <string.h>

/* A page never holds more than this many events, nor more event bytes than
 * this (one larger event is served alone); hasMore says there are more.
 * The byte budget bounds what one unread response pins in the server. */
#define ROUTES_MAX_PAGE 10000
#define ROUTES_PAGE_BYTES (4 * 1024 * 1024)

/* Pages of the session list and of search hits: the default and the most
 * one request may ask for. */
#define ROUTES_LIST_PAGE 100
#define ROUTES_LIST_MAX 1000

/* Reads the optional limit of a paged list into *limit (default
 * ROUTES_LIST_PAGE); ERR_INVALID if 0 or over ROUTES_LIST_MAX. */
static int routes_page_limit(struct http_request *req, uint32_t *limit, int *present,
                             struct err *err)
{
    uint64_t v = ROUTES_LIST_PAGE;
    int rc = http_query_u64(req, "limit", &v, present, err);
    if (rc == 0 && *present && (v == 0 || v > ROUTES_LIST_MAX))
        rc = err_set(err, ERR_INVALID, "invalid request: limit must be 1..%d",
                     ROUTES_LIST_MAX);
    if (rc == 0)
        *limit = *present ? (uint32_t)v : ROUTES_LIST_PAGE;
    return rc;
}

/* GET /v1/sessions.  Without limit, cursor, status or agent it is the v1
 * answer (every session, newest created first) with the summary fields
 * added, which the reference SDK and Inspector rely on; with any of them,
 * a page in order of newest activity and a nextCursor. */
static enum MHD_Result routes_sessions_list(struct http_request *req)
{
    struct err err;
    struct journal_session_query q = { .by_activity = 1 };
    char *cursor = NULL, *status = NULL, *agent = NULL;
    int has_limit = 0;
    int rc = http_query(req, "cursor", &cursor, &err);
    if (rc == 0)
        rc = http_query(req, "status", &status, &err);
    if (rc == 0)
        rc = http_query(req, "agent", &agent, &err);
    if (rc == 0)
        rc = routes_page_limit(req, &q.limit, &has_limit, &err);
    json_t *list = NULL;
    if (rc == 0) {
        q.cursor = cursor;
        q.status = status;
        q.agent = agent;
        int paged = has_limit || cursor || status || agent;
        list = sessions_list_json(req->server->sessions, paged ? &q : NULL, &err);
    }
    free(cursor);
    free(status);
    free(agent);
    if (!list)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, list);
}

static enum MHD_Result routes_session_get(struct http_request *req)
{
    struct err err;
    json_t *info = sessions_get_json(req->server->sessions, req->params[0], &err);
    if (!info)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, info);
}

static int routes_search_hit(void *arg, const struct journal_hit *h)
{
    json_t *hits = arg;
    json_t *hit = json_pack("{s:s,s:I,s:s,s:s}", "sessionId", h->session_id, "sequence",
                            (json_int_t)h->sequence, "type", h->type, "snippet", h->snippet);
    if (!hit || json_array_append_new(hits, hit) != 0)
        return ERR_NOMEM;
    return 0;
}

/* GET /v1/search?q=&limit=&cursor=&session=: FTS5 over the events' text,
 * newest hit first. */
static enum MHD_Result routes_search(struct http_request *req)
{
    struct err err;
    char *q = NULL, *cursor = NULL, *session = NULL;
    uint32_t limit = 0;
    int has_limit;
    json_t *hits = json_array();
    char next[JOURNAL_CURSOR_MAX];
    int rc = hits ? 0 : err_set(&err, ERR_NOMEM, "out of memory");
    if (rc == 0)
        rc = http_query(req, "q", &q, &err);
    if (rc == 0)
        rc = http_query(req, "cursor", &cursor, &err);
    if (rc == 0)
        rc = http_query(req, "session", &session, &err);
    if (rc == 0)
        rc = routes_page_limit(req, &limit, &has_limit, &err);
    journal_reader_t *r = rc == 0 ? journal_reader_for_thread(req->server->journal, &err) : NULL;
    if (rc == 0 && !r)
        rc = err.code;
    /* The position first: the search's snapshot is then at least as new,
     * so every event up to indexedThrough was searched. */
    struct journal_index_pos pos = {0, 0};
    if (rc == 0)
        rc = journal_index_position(r, &pos, &err);
    if (rc == 0)
        rc = journal_search(r, q, session, cursor, limit, routes_search_hit, hits, next, &err);
    if (rc > 0)
        rc = err_set(&err, ERR_NOMEM, "out of memory building the hits");
    free(q);
    free(cursor);
    free(session);
    json_t *out = NULL;
    if (rc == 0) {
        out = json_pack("{s:o,s:o,s:I,s:I}", "hits", hits, "nextCursor",
                        next[0] ? json_string(next) : json_null(), "indexedThrough",
                        (json_int_t)pos.indexed_through, "indexLag", (json_int_t)pos.lag);
        hits = NULL; /* json_pack's "o" took it, even on failure */
        if (!out)
            rc = err_set(&err, ERR_NOMEM, "out of memory");
    }
    json_decref(hits);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, out);
}

static enum MHD_Result routes_session_create(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    struct sessions_create_request create;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_OK, NULL, &answered))
        return answered;
    int rc = parse_session_id(req->params[0], &err);
    if (rc == 0)
        rc = http_body_object(req, &body, &err);
    if (rc == 0)
        rc = parse_req_string(body, "agent", &create.agent, &err);
    if (rc == 0)
        rc = parse_opt_string(body, "agentMode", &create.agent_mode, &err);
    if (rc == 0)
        rc = parse_opt_string(body, "permissionMode", &create.permission_mode, &err);
    if (rc == 0)
        rc = parse_opt_string(body, "model", &create.model, &err);
    if (rc == 0)
        rc = parse_opt_string(body, "variant", &create.variant, &err);
    if (rc == 0)
        rc = parse_opt_string(body, "agentVersion", &create.agent_version, &err);
    /* An agent to install first: this worker is freed while npm runs, and
     * the handler runs again (from the top) once the install has ended. */
    if (rc == 0 && !routes_install_waited(req, &rc, &err)) {
        struct install_job *job = NULL;
        rc = sessions_create_install(req->server->sessions, &create, &job, &err);
        if (rc == 0 && job) {
            json_decref(body);
            return routes_install_wait(req, job);
        }
    }
    char native_id[128];
    if (rc == 0)
        rc = sessions_create(req->server->sessions, req->params[0], &create, native_id,
                             req->idem, &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    /* The bytes a repeat with an Idempotency-Key is answered with. */
    char *resp = sessions_create_answer(native_id);
    if (!resp) {
        err_set(&err, ERR_NOMEM, "out of memory building the response");
        return http_respond_error(req, &err);
    }
    enum MHD_Result ret =
        http_respond_text(req, MHD_HTTP_OK, "application/json", resp, strlen(resp), 1);
    free(resp);
    return ret;
}

/* Parses a MessageRequest body.  new: *body_out owns the string in *message. */
static int routes_parse_message(struct http_request *req, json_t **body_out,
                                const char **message, struct err *err)
{
    int rc = http_body_object(req, body_out, err);
    if (rc == 0)
        rc = parse_req_string(*body_out, "message", message, err);
    return rc;
}

static enum MHD_Result routes_session_message(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    const char *message = NULL;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_NO_CONTENT, NULL, &answered))
        return answered;
    int rc = routes_parse_message(req, &body, &message, &err);
    if (rc == 0)
        rc = sessions_send_message(req->server->sessions, req->params[0], message, NULL,
                                   req->idem, &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result routes_session_terminate(struct http_request *req)
{
    struct err err;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_NO_CONTENT, NULL, &answered))
        return answered;
    if (sessions_terminate(req->server->sessions, req->params[0], req->idem, &err) != 0)
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result routes_permission_reply(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    const char *reply = NULL;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_NO_CONTENT, NULL, &answered))
        return answered;
    int rc = http_body_object(req, &body, &err);
    if (rc == 0)
        rc = parse_permission_reply(body, &reply, &err);
    if (rc == 0)
        rc = sessions_reply_permission(req->server->sessions, req->params[0], req->params[1],
                                       reply, req->idem, &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result routes_question_reply(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    const json_t *answers = NULL;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_NO_CONTENT, NULL, &answered))
        return answered;
    int rc = http_body_object(req, &body, &err);
    if (rc == 0)
        rc = parse_question_answers(body, &answers, &err);
    if (rc == 0)
        rc = sessions_reply_question(req->server->sessions, req->params[0], req->params[1],
                                     answers, req->idem, &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result routes_question_reject(struct http_request *req)
{
    struct err err;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_NO_CONTENT, NULL, &answered))
        return answered;
    if (sessions_reject_question(req->server->sessions, req->params[0], req->params[1],
                                 req->idem, &err))
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

/* ---- event pages ------------------------------------------------------------ */

struct routes_page {
    struct buf out;
    int include_raw;
    size_t count;
};

static int routes_page_event(void *arg, uint64_t sequence, const char *json, size_t json_len,
                             const char *raw, size_t raw_len, int turn_end)
{
    (void)sequence, (void)turn_end; /* a page is just the stored texts in order */
    struct routes_page *p = arg;
    int rc = p->count ? buf_append(&p->out, ",", 1) : 0;
    if (rc == 0 && p->include_raw && raw && json_len >= EVENT_RAW_SUFFIX_LEN) {
        /* Stored text ends in "null}": splice the native payload in. */
        rc = buf_append(&p->out, json, json_len - EVENT_RAW_SUFFIX_LEN);
        if (rc == 0)
            rc = buf_append(&p->out, raw, raw_len);
        if (rc == 0)
            rc = buf_append(&p->out, "}", 1);
    } else if (rc == 0) {
        rc = buf_append(&p->out, json, json_len);
    }
    p->count++;
    return rc;
}

static enum MHD_Result routes_session_events(struct http_request *req)
{
    struct err err;
    uint64_t offset = 0, limit = 0, tail = 0;
    int has_offset, has_limit, has_tail, include_raw = 0;
    int rc = http_query_u64(req, "offset", &offset, &has_offset, &err);
    if (rc == 0)
        rc = http_query_u64(req, "limit", &limit, &has_limit, &err);
    /* tail=N: the newest N events, for a reader (the inspector) that opens
     * a session at its end without first asking for its length. */
    if (rc == 0)
        rc = http_query_u64(req, "tail", &tail, &has_tail, &err);
    if (rc == 0 && has_tail && (has_offset || has_limit || tail == 0 || tail > ROUTES_MAX_PAGE))
        rc = err_set(&err, ERR_INVALID,
                     "invalid request: tail must be 1..%d, without offset or limit",
                     ROUTES_MAX_PAGE);
    if (rc == 0)
        rc = http_query_bool(req, "include_raw", "includeRaw", &include_raw, &err);
    if (rc == 0 && !sessions_exists(req->server->sessions, req->params[0]))
        rc = err_set_subject(&err, ERR_NOT_FOUND, req->params[0], "session not found: %s",
                             req->params[0]);
    journal_reader_t *r = rc == 0 ? journal_reader_for_thread(req->server->journal, &err) : NULL;
    if (rc == 0 && !r)
        rc = err.code;
    if (rc)
        return http_respond_error(req, &err);
    if (has_tail) {
        uint64_t last = journal_last_sequence(req->server->journal, req->params[0]);
        offset = last > tail ? last - tail : 0;
        limit = tail;
        has_limit = 1;
    }

    struct routes_page page = { .include_raw = include_raw };
    buf_init(&page.out);
    int has_more = 0;
    rc = buf_puts(&page.out, "{\"events\":[");
    if (rc == 0 && has_limit && limit == 0) {
        /* Nothing asked for; only say whether something is there. */
        has_more = journal_last_sequence(req->server->journal, req->params[0]) > offset;
    } else if (rc == 0) {
        uint32_t n = !has_limit || limit > ROUTES_MAX_PAGE ? ROUTES_MAX_PAGE : (uint32_t)limit;
        rc = journal_read_events_budget(r, req->params[0], offset, n, ROUTES_PAGE_BYTES,
                                        routes_page_event, &page, &has_more, &err);
        if (rc > 0)
            rc = err_set(&err, ERR_NOMEM, "out of memory building the page");
    }
    if (rc == 0)
        rc = buf_printf(&page.out, "],\"hasMore\":%s}", has_more ? "true" : "false");
    if (rc) {
        buf_free(&page.out);
        if (err.code != rc)
            err_set(&err, rc, "could not read events");
        return http_respond_error(req, &err);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(page.out.len, page.out.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        buf_free(&page.out);
        return MHD_NO;
    }
    buf_init(&page.out); /* the response owns the bytes now */
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
        MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_OK, resp);
}

/* ---- event streams (written by sse.c) ------------------------------------------ */

/* Last-Event-ID (what a reconnecting EventSource sends) wins over offset. */
static int routes_stream_after(struct http_request *req, uint64_t *after, struct err *err)
{
    const char *last = http_header(req, "Last-Event-ID");
    if (!last) {
        int present;
        return http_query_u64(req, "offset", after, &present, err);
    }
    return parse_header_u64("Last-Event-ID", last, after, err);
}

static enum MHD_Result routes_session_events_sse(struct http_request *req)
{
    struct err err;
    uint64_t after = 0;
    int include_raw = 0;
    int rc = routes_stream_after(req, &after, &err);
    if (rc == 0)
        rc = http_query_bool(req, "include_raw", "includeRaw", &include_raw, &err);
    if (rc == 0 && !sessions_exists(req->server->sessions, req->params[0]))
        rc = err_set_subject(&err, ERR_NOT_FOUND, req->params[0], "session not found: %s",
                             req->params[0]);
    if (rc)
        return http_respond_error(req, &err);
    return sse_respond(req, req->params[0], after, include_raw, 0);
}

static enum MHD_Result routes_session_message_stream(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    const char *message = NULL;
    int include_raw = 0;
    uint64_t before = 0;
    int rc = http_query_bool(req, "include_raw", "includeRaw", &include_raw, &err);
    if (rc)
        return http_respond_error(req, &err);
    /* A repeat streams the first request's turn again, from the journal:
     * what a client whose stream broke needs (Last-Event-ID on
     * events/sse resumes in the middle of it). */
    struct journal_idem_info replay;
    enum MHD_Result answered;
    int step = http_idem_begin(req, MHD_HTTP_OK, &replay, &answered);
    if (step == 1)
        return answered;
    if (step == 2) {
        uint64_t after = replay.after;
        journal_idem_info_clear(&replay);
        return sse_respond(req, req->params[0], after, include_raw, 1);
    }
    rc = routes_parse_message(req, &body, &message, &err);
    if (rc == 0)
        rc = sessions_send_message(req->server->sessions, req->params[0], message, &before,
                                   req->idem, &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    return sse_respond(req, req->params[0], before, include_raw, 1);
}

const struct http_route routes_sessions_table[] = {
    { "GET", "/v1/sessions", routes_sessions_list, 0 },
    { "GET", "/v1/search", routes_search, 0 },
    { "GET", "/v1/sessions/*", routes_session_get, 0 },
    { "POST", "/v1/sessions/*", routes_session_create, 0 },
    { "POST", "/v1/sessions/*/messages", routes_session_message, 0 },
    { "POST", "/v1/sessions/*/messages/stream", routes_session_message_stream, 0 },
    { "POST", "/v1/sessions/*/terminate", routes_session_terminate, 0 },
    { "GET", "/v1/sessions/*/events", routes_session_events, 0 },
    { "GET", "/v1/sessions/*/events/sse", routes_session_events_sse, 0 },
    { "POST", "/v1/sessions/*/questions/*/reply", routes_question_reply, 0 },
    { "POST", "/v1/sessions/*/questions/*/reject", routes_question_reject, 0 },
    { "POST", "/v1/sessions/*/permissions/*/reply", routes_permission_reply, 0 },
    { NULL, NULL, NULL, 0 },
};
