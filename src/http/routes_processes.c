/* Workspace process routes (/v1/processes*): thin handlers over
 * workspace/processes.h; a process's log is read straight from the
 * journal, as a page or (follow=true) as an SSE stream through sse.c. */
#include "http/request.h"
#include "http/routes.h"

#include "base/base64.h"
#include "http/sse.h"
#include "http/terminal.h"
#include "workspace/processes.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A page of log entries holds at most this many, and about this many bytes
 * of output (base64 makes a third more). */
#define PROC_LOG_PAGE 10000
#define PROC_LOG_PAGE_BYTES (4 * 1024 * 1024)
/* The longest a /stop or /kill waits for the exit (waitMs). */
#define PROC_MAX_WAIT_MS 30000

static enum MHD_Result proc_answer(struct http_request *req, int rc, const struct err *err,
                                   json_t *body)
{
    if (rc) {
        json_decref(body);
        return http_respond_error(req, err);
    }
    return http_respond_json(req, MHD_HTTP_OK, body);
}

static enum MHD_Result proc_list(struct http_request *req)
{
    struct err err;
    json_t *out = NULL;
    char *owner = NULL;
    int rc = http_query(req, "owner", &owner, &err);
    if (rc == 0)
        rc = processes_list(req->server->processes, owner, &out, &err);
    free(owner);
    return proc_answer(req, rc, &err, out);
}

static enum MHD_Result proc_create(struct http_request *req)
{
    struct err err;
    json_t *body = NULL, *out = NULL;
    int rc = http_body_object(req, &body, &err);
    if (rc == 0)
        rc = processes_create(req->server->processes, body, &out, &err);
    json_decref(body);
    return proc_answer(req, rc, &err, out);
}

static void proc_run_release(void *job)
{
    processes_run_release(job);
}

static void proc_run_resume(void *conn)
{
    MHD_resume_connection(conn);
}

/* Runs without holding this worker: the connection is suspended until the
 * child ends, and libmicrohttpd calls the handler again for the answer. */
static enum MHD_Result proc_run(struct http_request *req)
{
    struct err err;
    json_t *out = NULL;
    int rc;
    if (req->wait_free == proc_run_release) {
        rc = processes_run_result(req->wait, &out, &err);
        return proc_answer(req, rc, &err, out);
    }
    json_t *body = NULL;
    struct processes_run_job *job = NULL;
    rc = http_body_object(req, &body, &err);
    if (rc == 0)
        rc = processes_run_start(req->server->processes, body, &job, &err);
    json_decref(body);
    if (rc)
        return http_respond_error(req, &err);
    req->wait = job;
    req->wait_free = proc_run_release;
    /* Suspended first, so the end always finds it suspended. */
    MHD_suspend_connection(req->conn);
    if (processes_run_notify(job, proc_run_resume, req->conn))
        MHD_resume_connection(req->conn);
    return MHD_YES;
}

static enum MHD_Result proc_config_get(struct http_request *req)
{
    struct err err;
    json_t *out = NULL;
    int rc = processes_config_get(req->server->processes, &out, &err);
    return proc_answer(req, rc, &err, out);
}

static enum MHD_Result proc_config_set(struct http_request *req)
{
    struct err err;
    json_t *body = NULL, *out = NULL;
    int rc = http_body_object(req, &body, &err);
    if (rc == 0)
        rc = processes_config_set(req->server->processes, body, &out, &err);
    json_decref(body);
    return proc_answer(req, rc, &err, out);
}

static enum MHD_Result proc_get(struct http_request *req)
{
    struct err err;
    json_t *out = NULL;
    int rc = processes_get(req->server->processes, req->params[0], &out, &err);
    return proc_answer(req, rc, &err, out);
}

static enum MHD_Result proc_delete(struct http_request *req)
{
    struct err err;
    if (processes_delete(req->server->processes, req->params[0], &err) != 0)
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result proc_signal(struct http_request *req, int hard)
{
    struct err err;
    json_t *out = NULL;
    uint64_t wait_ms = 0;
    int present = 0;
    int rc = http_query_u64(req, "waitMs", &wait_ms, &present, &err);
    /* The wait holds this worker: bounded, and only while a worker can be
     * spared; otherwise the answer is the state now and the client asks
     * again. */
    if (rc == 0 && wait_ms > PROC_MAX_WAIT_MS)
        wait_ms = PROC_MAX_WAIT_MS;
    int slot = 0;
    if (rc == 0 && wait_ms) {
        slot = atomic_fetch_add(req->server->waiting, 1) < req->server->wait_slots;
        if (!slot) {
            atomic_fetch_sub(req->server->waiting, 1);
            wait_ms = 0;
        }
    }
    if (rc == 0)
        rc = processes_signal(req->server->processes, req->params[0], hard, wait_ms, &out,
                              &err);
    if (slot)
        atomic_fetch_sub(req->server->waiting, 1);
    return proc_answer(req, rc, &err, out);
}

static enum MHD_Result proc_stop(struct http_request *req)
{
    return proc_signal(req, 0);
}

static enum MHD_Result proc_kill(struct http_request *req)
{
    return proc_signal(req, 1);
}

static enum MHD_Result proc_input(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;
    int rc = http_body_object(req, &body, &err);
    const json_t *data = json_object_get(body, "data");
    const json_t *enc = json_object_get(body, "encoding");
    const char *encoding = json_is_string(enc) ? json_string_value(enc) : "utf8";
    if (rc == 0 && !json_is_string(data))
        rc = err_set(&err, ERR_INVALID, "data must be a string");
    if (rc == 0 && enc && !json_is_null(enc) && !json_is_string(enc))
        rc = err_set(&err, ERR_INVALID, "encoding must be a string");
    if (rc == 0) {
        const char *text = json_string_value(data);
        size_t tlen = json_string_length(data);
        if (strcmp(encoding, "base64") == 0) {
            bytes = malloc(tlen / 4 * 3 + 3);
            if (!bytes)
                rc = err_set(&err, ERR_NOMEM, "out of memory");
            else if (base64_decode(text, tlen, bytes, &len) != 0)
                rc = err_set(&err, ERR_INVALID, "data is not valid base64");
        } else if (strcmp(encoding, "utf8") == 0 || strcmp(encoding, "utf-8") == 0 ||
                   strcmp(encoding, "text") == 0) {
            bytes = malloc(tlen ? tlen : 1);
            if (!bytes)
                rc = err_set(&err, ERR_NOMEM, "out of memory");
            else
                memcpy(bytes, text, len = tlen);
        } else {
            rc = err_set(&err, ERR_INVALID, "encoding must be utf8 or base64");
        }
    }
    if (rc == 0 && len > processes_max_input(req->server->processes))
        rc = err_set(&err, ERR_TOO_LARGE, "input of %zu bytes is over maxInputBytesPerRequest",
                     len);
    if (rc == 0)
        rc = processes_input(req->server->processes, req->params[0], bytes, len, &err);
    json_decref(body);
    free(bytes);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, json_pack("{s:I}", "bytesWritten",
                                                         (json_int_t)len));
}

static enum MHD_Result proc_resize(struct http_request *req)
{
    struct err err;
    json_t *body = NULL;
    int rc = http_body_object(req, &body, &err);
    const json_t *rows = json_object_get(body, "rows");
    const json_t *cols = json_object_get(body, "cols");
    if (rc == 0 && (!json_is_integer(rows) || !json_is_integer(cols) ||
                    json_integer_value(rows) < 1 || json_integer_value(cols) < 1 ||
                    json_integer_value(rows) > 0xffff || json_integer_value(cols) > 0xffff))
        rc = err_set(&err, ERR_INVALID, "rows and cols must be integers 1..65535");
    unsigned r = rc ? 0 : (unsigned)json_integer_value(rows);
    unsigned c = rc ? 0 : (unsigned)json_integer_value(cols);
    json_decref(body);
    if (rc == 0)
        rc = processes_resize(req->server->processes, req->params[0], r, c, &err);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, json_pack("{s:I,s:I}", "cols", (json_int_t)c,
                                                         "rows", (json_int_t)r));
}

/* ---- logs ------------------------------------------------------------------------ */

struct proc_logs_query {
    char *stream;       /* NULL: every stream ("combined") */
    uint64_t after;
    int follow;
};

/* Reads stream, since, tail and follow; the SSE Last-Event-ID header
 * counts as `since`.  The tail is resolved into `after`. */
static int proc_logs_query(struct http_request *req, journal_reader_t *r,
                           struct proc_logs_query *q, struct err *err)
{
    memset(q, 0, sizeof *q);
    uint64_t since = 0, tail = 0;
    int has_since = 0, has_tail = 0;
    int rc = http_query_u64(req, "since", &since, &has_since, err);
    if (rc == 0)
        rc = http_query_u64(req, "tail", &tail, &has_tail, err);
    if (rc == 0)
        rc = http_query_bool(req, "follow", NULL, &q->follow, err);
    if (rc)
        return rc;
    const char *last_id = http_header(req, "Last-Event-ID");
    if (last_id && *last_id) {
        char *end = NULL;
        unsigned long long v = strtoull(last_id, &end, 10);
        if (*end || *last_id == '-')
            return err_set(err, ERR_INVALID, "Last-Event-ID must be a log sequence");
        since = v;
        has_since = 1;
    }
    char *stream = NULL;
    if ((rc = http_query(req, "stream", &stream, err)) != 0)
        return rc;
    if (stream && strcmp(stream, "combined") == 0) {
        free(stream);
        stream = NULL;
    } else if (stream && strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0 &&
               strcmp(stream, "pty") != 0) {
        free(stream);
        return err_set(err, ERR_INVALID, "stream must be stdout, stderr, combined or pty");
    }
    q->stream = stream;
    q->after = has_since ? since : 0;
    if (has_tail) {
        uint64_t after = 0;
        rc = journal_proc_tail_after(r, req->params[0], q->stream, tail, &after, err);
        if (rc) {
            free(q->stream);
            q->stream = NULL;
            return rc;
        }
        if (after > q->after)
            q->after = after;
    }
    return 0;
}

static int proc_log_append(void *arg, const struct journal_proc_chunk *c)
{
    json_t *e = processes_log_entry(c);
    return !e || json_array_append_new(arg, e) != 0 ? ERR_NOMEM : 0;
}

/* What a follow stream reads: the process's chunks after its cursor. */
struct proc_follow {
    processes_t *processes;
    char *id;
    char *stream;
};

struct proc_frames {
    struct buf *out;
    uint64_t *cursor;
};

static int proc_frame(void *arg, const struct journal_proc_chunk *c)
{
    struct proc_frames *f = arg;
    json_t *e = processes_log_entry(c);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (!text)
        return ERR_NOMEM;
    int rc = buf_printf(f->out, "event: log\nid: %llu\ndata: %s\n\n",
                        (unsigned long long)c->sequence, text);
    free(text);
    if (rc)
        return ERR_NOMEM;
    *f->cursor = c->sequence;
    return 0;
}

static int proc_follow_read(void *arg, journal_reader_t *r, uint64_t *cursor, size_t budget,
                            struct buf *out, int *done, struct err *err)
{
    struct proc_follow *f = arg;
    int ended = 0;
    /* Ended before the read: a read that then finds nothing has it all. */
    if (processes_state(f->processes, f->id, &ended, err) != 0) {
        *done = 1; /* deleted meanwhile */
        return 0;
    }
    struct proc_frames frames = { .out = out, .cursor = cursor };
    size_t before = out->len;
    int rc = journal_proc_read_logs(r, f->id, f->stream, *cursor, 64, budget, proc_frame,
                                    &frames, NULL, err);
    if (rc == ERR_NOMEM)
        return err_set(err, ERR_NOMEM, "out of memory framing a log");
    if (rc < 0)
        return rc;
    if (out->len == before && ended)
        *done = 1;
    return 0;
}

static void proc_follow_free(void *arg)
{
    struct proc_follow *f = arg;
    free(f->id);
    free(f->stream);
    free(f);
}

static enum MHD_Result proc_logs(struct http_request *req)
{
    struct err err;
    int ended = 0;
    if (processes_state(req->server->processes, req->params[0], &ended, &err) != 0)
        return http_respond_error(req, &err);
    journal_reader_t *r = journal_reader_for_thread(req->server->journal, &err);
    if (!r)
        return http_respond_error(req, &err);
    struct proc_logs_query q;
    if (proc_logs_query(req, r, &q, &err) != 0)
        return http_respond_error(req, &err);
    if (q.follow) {
        struct proc_follow *f = calloc(1, sizeof *f);
        if (!f || !(f->id = strdup(req->params[0]))) {
            free(f);
            free(q.stream);
            return MHD_NO;
        }
        f->processes = req->server->processes;
        f->stream = q.stream;
        struct sse_source src = { .read = proc_follow_read, .free = proc_follow_free,
                                  .arg = f };
        return sse_respond_source(req, &src, q.after);
    }
    json_t *entries = json_array();
    json_t *out = json_pack("{s:o,s:s,s:s}", "entries", entries, "processId", req->params[0],
                            "stream", q.stream ? q.stream : "combined");
    int rc = out ? 0 : err_set(&err, ERR_NOMEM, "out of memory");
    if (rc == 0) {
        rc = journal_proc_read_logs(r, req->params[0], q.stream, q.after, PROC_LOG_PAGE,
                                    PROC_LOG_PAGE_BYTES, proc_log_append, entries, NULL, &err);
        if (rc == ERR_NOMEM)
            rc = err_set(&err, ERR_NOMEM, "out of memory");
    }
    free(q.stream);
    return proc_answer(req, rc, &err, out);
}

const struct http_route routes_processes_table[] = {
    { "GET", "/v1/processes", proc_list, 0 },
    { "POST", "/v1/processes", proc_create, 0 },
    { "GET", "/v1/processes/config", proc_config_get, 0 },
    { "POST", "/v1/processes/config", proc_config_set, 0 },
    { "POST", "/v1/processes/run", proc_run, 0 },
    { "GET", "/v1/processes/*", proc_get, 0 },
    { "DELETE", "/v1/processes/*", proc_delete, 0 },
    { "POST", "/v1/processes/*/stop", proc_stop, 0 },
    { "POST", "/v1/processes/*/kill", proc_kill, 0 },
    { "POST", "/v1/processes/*/input", proc_input, 0 },
    { "GET", "/v1/processes/*/logs", proc_logs, 0 },
    { "POST", "/v1/processes/*/terminal/resize", proc_resize, 0 },
    { "GET", "/v1/processes/*/terminal/ws", terminal_ws_handler, HTTP_ROUTE_QUERY_TOKEN },
    { NULL, NULL, NULL, 0 },
};
