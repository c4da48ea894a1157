/* The Codex adapter.
 *
 * Process: one `codex app-server` for the whole server, started when the
 * first Codex session needs it, speaking JSON-RPC over stdio (one object
 * per line).  Each session is one Codex thread: thread/start when the
 * session is created (its id is the session's native id), turn/start per
 * message, thread/resume first when the app-server does not know the thread
 * (after a crash of the app-server or a restart of this server; Codex keeps
 * threads under CODEX_HOME, a private directory in the data dir).
 *
 * Threads.  Everything about the app-server lives on the supervisor loop in
 * `codex_srv` (process, request ids, pending requests, the thread -> session
 * map); HTTP workers post jobs to it.  Only create waits for the loop (for
 * thread/start's answer, bounded, with no lock held).  serverStatus is read
 * by HTTP workers under its own mutex.
 *
 * Failures.  An app-server that exits while it should run is restarted with
 * a back-off (0.5 s doubling to 30 s, reset after a minute of uptime); every
 * session with a turn under way gets an error event (which ends its turn),
 * and every thread is resumed on its next message.  One that refuses to
 * initialize, or leaves a request unanswered for CODEX_ANSWER_TIMEOUT_MS,
 * is killed and takes the same path.  Shutdown closes stdin
 * and sends SIGTERM (SIGKILL after CODEX_KILL_MS) and journals nothing.
 */
#include "adapters/codex.h"

#include "agents/adapter.h"
#include "agents/agent_proc.h"
#include "agents/agent_env.h"
#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"
#include "agents/supervisor.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CODEX_KILL_MS 3000
#define CODEX_START_TIMEOUT_MS 60000
/* The app-server answers every request at once (a turn's work streams as
 * notifications afterwards), so a request unanswered this long means a
 * hung process: it is killed, and the crash path restarts it.  Without
 * this, a hung app-server would stall every Codex session for good.
 * SJ_CODEX_ANSWER_TIMEOUT_MS overrides it (tests). */
#define CODEX_ANSWER_TIMEOUT_MS 30000
#define CODEX_MAX_LINE (64u * 1024 * 1024)

/* ======================================================================
 * The pure part
 * ====================================================================== */

static const char *codex_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int codex_str_is(const json_t *obj, const char *key, const char *want)
{
    const char *v = codex_str(obj, key);
    return v && strcmp(v, want) == 0;
}

static int codex_push(json_t *list, json_t *c, struct err *err)
{
    if (!c || json_array_append_new(list, c) != 0)
        return err_set(err, ERR_NOMEM, "out of memory parsing a codex line");
    return 0;
}

static json_t *codex_unparsed(const char *error, json_t *raw)
{
    json_t *c = event_synthetic(
        event_conversion("agent.unparsed", event_unparsed_data(error, "codex", NULL)));
    return raw ? event_with_raw(c, raw) : c;
}

/* new: compact JSON text of `v` (any value), or NULL. */
static char *codex_dump(const json_t *v)
{
    return json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
}

static json_t *codex_status_item(const char *native_id, const char *label, const char *detail,
                                 const char *status)
{
    return event_item("status", "system", status, native_id,
                      event_content(event_part_status(label, detail)));
}

/* new: the universal item of a Codex ThreadItem. */
static json_t *codex_item(const json_t *it, const char *status)
{
    const char *type = codex_str(it, "type");
    const char *id = codex_str(it, "id");
    json_t *parts = json_array();
    if (!type || !parts) {
        json_decref(parts);
        return parts ? event_item("unknown", NULL, status, id,
                                  event_content(event_part_json(it ? json_deep_copy(it)
                                                               : json_null())))
                     : NULL;
    }
    if (strcmp(type, "userMessage") == 0) {
        size_t i;
        const json_t *in;
        json_array_foreach(json_object_get(it, "content"), i, in) {
            if (codex_str_is(in, "type", "text") && codex_str(in, "text"))
                parts = event_content_add(parts, event_part_text(codex_str(in, "text")));
            else if (codex_str(in, "url") || codex_str(in, "image_url"))
                parts = event_content_add(parts, event_part_image(codex_str(in, "url")
                                                              ? codex_str(in, "url")
                                                              : codex_str(in, "image_url"),
                                                          NULL));
            else if (codex_str(in, "path"))
                parts = event_content_add(parts, event_part_image(codex_str(in, "path"), NULL));
            else
                parts = event_content_add(parts, event_part_json(json_deep_copy(in)));
        }
        return event_item("message", "user", status, id, parts);
    }
    if (strcmp(type, "agentMessage") == 0) {
        const char *text = codex_str(it, "text");
        parts = event_content_add(parts, event_part_text(text ? text : ""));
        return event_item("message", "assistant", status, id, parts);
    }
    if (strcmp(type, "reasoning") == 0) {
        size_t i;
        const json_t *line;
        json_array_foreach(json_object_get(it, "content"), i, line)
            if (json_is_string(line))
                parts = event_content_add(
                    parts, event_part_reasoning(json_string_value(line), "private"));
        json_array_foreach(json_object_get(it, "summary"), i, line)
            if (json_is_string(line))
                parts = event_content_add(
                    parts, event_part_reasoning(json_string_value(line), "public"));
        return event_item("message", "assistant", status, id, parts);
    }
    if (strcmp(type, "commandExecution") == 0) {
        const char *output = codex_str(it, "aggregatedOutput");
        if (output)
            parts = event_content_add(parts, event_part_tool_result(id ? id : "", output));
        json_t *summary = json_pack("{s:O,s:O,s:O,s:O}", "command",
                                    json_object_get(it, "command") ? json_object_get(it, "command")
                                                                   : json_null(),
                                    "cwd",
                                    json_object_get(it, "cwd") ? json_object_get(it, "cwd")
                                                               : json_null(),
                                    "exitCode",
                                    json_object_get(it, "exitCode")
                                        ? json_object_get(it, "exitCode")
                                        : json_null(),
                                    "status",
                                    json_object_get(it, "status") ? json_object_get(it, "status")
                                                                  : json_null());
        parts = event_content_add(parts, event_part_json(summary));
        return event_item("tool_result", "tool", status, id, parts);
    }
    if (strcmp(type, "fileChange") == 0) {
        json_t *summary = json_pack("{s:O,s:O}", "changes",
                                    json_object_get(it, "changes") ? json_object_get(it, "changes")
                                                                   : json_null(),
                                    "status",
                                    json_object_get(it, "status") ? json_object_get(it, "status")
                                                                  : json_null());
        parts = event_content_add(parts, event_part_json(summary));
        return event_item("tool_result", "tool", status, id, parts);
    }
    if (strcmp(type, "mcpToolCall") == 0) {
        const char *st = codex_str(it, "status");
        int finished = st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0);
        if (finished) {
            char *out = strcmp(st, "completed") == 0
                            ? codex_dump(json_object_get(it, "result"))
                            : strdup(codex_str(json_object_get(it, "error"), "message")
                                         ? codex_str(json_object_get(it, "error"), "message")
                                         : "");
            parts = event_content_add(parts,
                                      out ? event_part_tool_result(id ? id : "", out) : NULL);
            free(out);
            return event_item("tool_result", "tool", status, id, parts);
        }
        char name[256];
        snprintf(name, sizeof name, "%s.%s", codex_str(it, "server") ? codex_str(it, "server") : "",
                 codex_str(it, "tool") ? codex_str(it, "tool") : "");
        char *args = codex_dump(json_object_get(it, "arguments"));
        parts = event_content_add(parts,
                                  args ? event_part_tool_call(name, args, id ? id : "") : NULL);
        free(args);
        return event_item("tool_call", "assistant", status, id, parts);
    }
    if (strcmp(type, "webSearch") == 0) {
        const char *q = codex_str(it, "query");
        parts = event_content_add(parts,
                                  event_part_tool_call("web_search", q ? q : "", id ? id : ""));
        return event_item("tool_call", "assistant", status, id, parts);
    }
    if (strcmp(type, "imageView") == 0) {
        const char *path = codex_str(it, "path");
        parts = event_content_add(parts, event_part_image(path ? path : "", NULL));
        return event_item("message", "assistant", status, id, parts);
    }
    if (strcmp(type, "enteredReviewMode") == 0 || strcmp(type, "exitedReviewMode") == 0) {
        json_decref(parts);
        return codex_status_item(id, strcmp(type, "enteredReviewMode") == 0 ? "review.entered"
                                                                             : "review.exited",
                                 codex_str(it, "review"), status);
    }
    parts = event_content_add(parts, event_part_json(json_deep_copy(it)));
    return event_item("unknown", NULL, status, id, parts);
}

/* The status of a completed item: failed for Codex's failed or declined. */
static const char *codex_done_status(const json_t *it)
{
    const char *st = codex_str(it, "status");
    return st && (strcmp(st, "failed") == 0 || strcmp(st, "declined") == 0) ? "failed"
                                                                           : "completed";
}

static json_t *codex_status_conv(const char *label, const json_t *detail_of)
{
    char *detail = detail_of ? codex_dump(detail_of) : NULL;
    json_t *c = event_conversion("item.completed",
                                 event_item_data(codex_status_item(NULL, label, detail,
                                                                   "completed")));
    free(detail);
    return c;
}

/* Notifications that need nothing journaled. */
static int codex_is_quiet(const char *method)
{
    static const char *const quiet[] = {
        "thread/status/changed", "serverRequest/resolved", "account/rateLimits/updated",
        "account/updated", "configWarning", "remoteControl/status/changed", "warning",
        "deprecationNotice", "thread/goal/cleared", "thread/goal/updated",
        "item/reasoning/summaryPartAdded", "mcpServer/startupStatus/updated",
        "sessionConfigured", "authStatusChange", "loginChatGptComplete",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (strcmp(method, quiet[i]) == 0)
            return 1;
    return 0;
}

static int codex_notification(struct adapter_codex_line *out, const char *method,
                              const json_t *params, struct err *err)
{
    json_t *list = out->conversions;
    json_t *raw = out->message;
    const char *delta_methods[] = { "item/agentMessage/delta", "item/reasoning/textDelta",
                                    "item/reasoning/summaryTextDelta",
                                    "item/commandExecution/outputDelta",
                                    "item/fileChange/outputDelta" };
    if (strcmp(method, "item/started") == 0 || strcmp(method, "item/completed") == 0) {
        const json_t *it = json_object_get(params, "item");
        int done = method[5] == 'c';
        json_t *item = codex_item(it, done ? codex_done_status(it) : "in_progress");
        json_t *c = event_conversion(done ? "item.completed" : "item.started",
                                     event_item_data(item));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    for (size_t i = 0; i < sizeof delta_methods / sizeof delta_methods[0]; i++) {
        if (strcmp(method, delta_methods[i]) != 0)
            continue;
        const char *delta = codex_str(params, "delta");
        const char *item_id = codex_str(params, "itemId");
        if (!delta || !*delta)
            return 0;
        json_t *c = event_conversion("item.delta", event_delta_data("", item_id, delta));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (strcmp(method, "item/commandExecution/terminalInteraction") == 0) {
        const char *stdin_text = codex_str(params, "stdin");
        if (!stdin_text || !*stdin_text)
            return 0;
        json_t *c = event_conversion("item.delta",
                                     event_delta_data("", codex_str(params, "itemId"), stdin_text));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (strcmp(method, "thread/started") == 0) {
        json_t *c = event_conversion("session.started",
                                     event_session_started_data(json_deep_copy(
                                         json_object_get(params, "thread"))));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (strcmp(method, "turn/started") == 0 || strcmp(method, "turn/completed") == 0) {
        const json_t *turn = json_object_get(params, "turn");
        int done = method[5] == 'c';
        if (!done && codex_str(turn, "id"))
            snprintf(out->turn_id, sizeof out->turn_id, "%s", codex_str(turn, "id"));
        out->turn_started = !done;
        out->turn_done = done;
        return codex_push(list,
                          event_with_raw(codex_status_conv(done ? "turn.completed"
                                                                : "turn.started",
                                                           turn),
                                         json_deep_copy(raw)),
                          err);
    }
    static const struct {
        const char *method;
        const char *label;
    } statuses[] = {
        { "thread/tokenUsage/updated", "thread.token_usage.updated" },
        { "turn/diff/updated", "turn.diff.updated" },
        { "turn/plan/updated", "turn.plan.updated" },
        { "thread/compacted", "thread.compacted" },
        { "item/mcpToolCall/progress", "mcp.progress" },
    };
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(method, statuses[i].method) == 0)
            return codex_push(list,
                              event_with_raw(codex_status_conv(statuses[i].label, params),
                                             json_deep_copy(raw)),
                              err);
    if (strcmp(method, "error") == 0) {
        const json_t *e = json_object_get(params, "error");
        const char *message = codex_str(e, "message");
        const char *code = json_is_string(json_object_get(e, "codexErrorInfo"))
                               ? codex_str(e, "codexErrorInfo")
                               : NULL;
        json_t *c = event_conversion("error",
                                     event_error_data(message ? message : "codex error", code,
                                                      json_deep_copy(params)));
        return codex_push(list, event_with_raw(c, json_deep_copy(raw)), err);
    }
    if (codex_is_quiet(method))
        return 0;
    char message[160];
    snprintf(message, sizeof message, "unsupported codex notification: %.100s", method);
    return codex_push(list, codex_unparsed(message, json_deep_copy(raw)), err);
}

static int codex_request(struct adapter_codex_line *out, const char *method,
                         const json_t *params, const char *prefix, struct err *err)
{
    int is_command = strcmp(method, "item/commandExecution/requestApproval") == 0 ||
                     strcmp(method, "execCommandApproval") == 0;
    int is_file = strcmp(method, "item/fileChange/requestApproval") == 0 ||
                  strcmp(method, "applyPatchApproval") == 0;
    if (!is_command && !is_file) {
        char message[160];
        snprintf(message, sizeof message, "unsupported codex request: %.100s", method);
        return codex_push(out->conversions, codex_unparsed(message, json_deep_copy(out->message)),
                          err);
    }
    out->is_approval = 1;
    char permission_id[128];
    snprintf(permission_id, sizeof permission_id, "%s-%lld", prefix, out->id);
    /* Keys sorted, as the reference's JSON maps print them. */
    json_t *md = json_object();
    static const char *const copy_command[] = { "command", "cwd", "itemId", "reason",
                                                "threadId", "turnId" };
    static const char *const copy_file[] = { "grantRoot", "itemId", "reason", "threadId",
                                             "turnId" };
    int ok = md && json_object_set_new(md, "codexRequestId", json_integer(out->id)) == 0 &&
             json_object_set_new(md, "codexRequestKind",
                                 json_string(is_command ? "commandExecution" : "fileChange")) == 0;
    const char *const *keys = is_command ? copy_command : copy_file;
    size_t n = is_command ? sizeof copy_command / sizeof copy_command[0]
                          : sizeof copy_file / sizeof copy_file[0];
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *v = json_object_get(params, keys[i]);
        if (v && !json_is_null(v))
            ok = json_object_set(md, keys[i], (json_t *)v) == 0;
    }
    if (!ok) {
        json_decref(md);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    json_t *c = event_conversion("permission.requested",
                                 event_permission_data(permission_id,
                                                       is_command ? "commandExecution"
                                                                  : "fileChange",
                                                       "requested", md));
    return codex_push(out->conversions, event_with_raw(c, json_deep_copy(out->message)), err);
}

void adapter_codex_line_clear(struct adapter_codex_line *l)
{
    json_decref(l->message);
    json_decref(l->conversions);
    memset(l, 0, sizeof *l);
}

/* The thread a notification or request is about. */
static void codex_find_thread(const json_t *params, char *out, size_t size)
{
    const char *t = codex_str(params, "threadId");
    if (!t)
        t = codex_str(json_object_get(params, "thread"), "id");
    if (!t)
        t = codex_str(params, "conversationId");
    snprintf(out, size, "%s", t ? t : "");
}

int adapter_codex_parse_line(const char *line, size_t len, int cut,
                             const char *permission_prefix, struct adapter_codex_line *out,
                             struct err *err)
{
    memset(out, 0, sizeof *out);
    out->conversions = json_array();
    if (!out->conversions)
        return err_set(err, ERR_NOMEM, "out of memory");
    out->kind = ADAPTER_CODEX_INVALID;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len && !cut)
        return 0;
    int rc;
    if (cut) {
        rc = codex_push(out->conversions, codex_unparsed("line too long", NULL), err);
        goto done;
    }
    json_error_t jerr;
    out->message = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(out->message)) {
        json_t *raw = json_stringn(line, len);
        rc = codex_push(out->conversions,
                        codex_unparsed(out->message ? "not a JSON-RPC object" : jerr.text,
                                       raw ? raw : json_string("(not UTF-8)")),
                        err);
        json_decref(out->message);
        out->message = NULL;
        goto done;
    }
    const json_t *id = json_object_get(out->message, "id");
    out->method = codex_str(out->message, "method");
    if (json_is_integer(id)) {
        out->id = (long long)json_integer_value(id);
        out->has_id = 1;
    } else if (json_is_string(id)) {
        char *end = NULL;
        out->id = strtoll(json_string_value(id), &end, 10);
        out->has_id = end && *end == '\0' && end != json_string_value(id);
    }
    const json_t *params = json_object_get(out->message, "params");
    if (!out->method) {
        if (!out->has_id) {
            rc = codex_push(out->conversions,
                            codex_unparsed("JSON-RPC message without method or id",
                                           json_deep_copy(out->message)),
                            err);
            goto done;
        }
        out->kind = ADAPTER_CODEX_RESPONSE;
        out->result = json_object_get(out->message, "result");
        out->error = json_object_get(out->message, "error");
        rc = 0;
        goto done;
    }
    codex_find_thread(params, out->thread_id, sizeof out->thread_id);
    if (json_object_get(out->message, "id")) {
        out->kind = ADAPTER_CODEX_REQUEST;
        rc = codex_request(out, out->method, params,
                           permission_prefix ? permission_prefix : "0", err);
    } else {
        out->kind = ADAPTER_CODEX_NOTIFICATION;
        rc = codex_notification(out, out->method, params, err);
    }
done:
    if (rc)
        adapter_codex_line_clear(out);
    return rc;
}

char *adapter_codex_decision_line(long long id, const char *reply)
{
    const char *decision = strcmp(reply, "once") == 0     ? "accept"
                           : strcmp(reply, "always") == 0 ? "acceptForSession"
                           : strcmp(reply, "reject") == 0 ? "decline"
                                                          : NULL;
    if (!decision)
        return NULL;
    json_t *v = json_pack("{s:I,s:{s:s}}", "id", (json_int_t)id, "result", "decision", decision);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

int adapter_codex_permission_id(const char *permission_id, char *prefix, size_t size,
                                long long *id, struct err *err)
{
    const char *dash = strrchr(permission_id, '-');
    char *end = NULL;
    if (!dash || dash == permission_id || (size_t)(dash - permission_id) >= size)
        return err_set(err, ERR_INVALID, "not a codex permission id: %s", permission_id);
    long long v = strtoll(dash + 1, &end, 10);
    if (!end || *end || end == dash + 1)
        return err_set(err, ERR_INVALID, "not a codex permission id: %s", permission_id);
    memcpy(prefix, permission_id, (size_t)(dash - permission_id));
    prefix[dash - permission_id] = '\0';
    *id = v;
    return 0;
}

/* ======================================================================
 * The process side: one shared app-server
 * ====================================================================== */

struct codex_state;

/* An approval the app-server asked for and waits on (its permission is
 * pending in the session). */
struct codex_approval {
    char *permission_id;
    char *action;             /* commandExecution, fileChange */
    struct codex_approval *next;
};

/* A session bound to its thread (after its first message). */
struct codex_thread {
    char *thread_id;
    struct adapter_ctx *ctx;
    int loaded;               /* the running app-server knows the thread */
    int turn_active;
    char turn_id[160];
    struct codex_approval *approvals;
    /* Items started and not completed yet: native item id -> the started
     * item.  A crash completes them as failed, so that no client waits on
     * an item whose process is gone.  NULL until the first one. */
    json_t *open_items;
    struct codex_thread *next;
};

/* A client request waiting for its response. */
enum codex_req_kind { CODEX_REQ_INIT, CODEX_REQ_START, CODEX_REQ_RESUME, CODEX_REQ_TURN,
                      CODEX_REQ_OTHER };

struct codex_waiter; /* create's wait for thread/start */

struct codex_pending {
    long long id;
    enum codex_req_kind kind;
    struct codex_waiter *waiter;  /* START */
    struct codex_thread *thread;  /* RESUME, TURN */
    char *text;                   /* RESUME: the turn to start once resumed */
    long long sent_ms;            /* monotonic */
    struct codex_pending *next;
};

/* Work posted by HTTP workers. */
enum codex_job_kind { CODEX_JOB_START, CODEX_JOB_TURN, CODEX_JOB_APPROVAL, CODEX_JOB_STOP_TURN };

struct codex_job {
    enum codex_job_kind kind;
    struct adapter_ctx *ctx;    /* TURN, STOP_TURN */
    char *thread_id;            /* TURN, STOP_TURN */
    char *text;                 /* TURN */
    json_t *params;             /* START, TURN: thread/start or thread/resume params */
    struct codex_waiter *waiter; /* START */
    char *prefix;               /* APPROVAL: the app-server it was asked by */
    long long request_id;       /* APPROVAL */
    char *reply;                /* APPROVAL */
    struct codex_job *next;     /* deferred while the app-server restarts */
};

struct codex_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;                   /* the waiting worker + the loop */
    int done;
    int rc;
    char thread_id[128];
    char message[200];
};

static struct {
    /* Loop only. */
    uv_loop_t *loop;
    char *data_dir;
    supervisor_proc_t *proc;
    long long next_id;
    char prefix[32];            /* permission id prefix of this app-server */
    long long started_ms;
    unsigned crashes;
    int stopping;               /* our stop: the exit is expected */
    int down;                   /* server shutdown: never start again */
    uv_timer_t restart_timer;
    int restart_ready;
    int restart_pending;
    uv_timer_t kill_timer;
    int kill_ready;
    uv_timer_t answer_timer;    /* runs while the app-server does */
    int answer_ready;
    long long answer_timeout_ms;
    int unanswered;             /* killed for not answering: says so at exit */
    char refused[160];          /* killed for refusing to initialize: why */
    struct codex_thread *threads;
    struct codex_pending *pending;
    struct codex_job *deferred;
    struct codex_job **deferred_tail;
    /* Any thread, under status_lock. */
    pthread_mutex_t status_lock;
    const char *status;         /* "running", "stopped", "error" */
    long long restart_count;
    char last_error[256];
    long long uptime_base_ms;
} codex_srv = { .status_lock = PTHREAD_MUTEX_INITIALIZER, .status = "stopped" };

static long long codex_now_ms(int monotonic)
{
    struct timespec ts;
    clock_gettime(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void codex_set_status(const char *status, const char *last_error, int restarted)
{
    pthread_mutex_lock(&codex_srv.status_lock);
    codex_srv.status = status;
    if (last_error)
        snprintf(codex_srv.last_error, sizeof codex_srv.last_error, "%s", last_error);
    if (restarted)
        codex_srv.restart_count++;
    codex_srv.uptime_base_ms = strcmp(status, "running") == 0 ? codex_now_ms(1) : 0;
    pthread_mutex_unlock(&codex_srv.status_lock);
}

static json_t *codex_server_status_json(void *instance)
{
    (void)instance; /* still process-wide: becomes the instance next (issue 12) */
    pthread_mutex_lock(&codex_srv.status_lock);
    json_t *s = json_pack("{s:s,s:I}", "status", codex_srv.status, "restartCount",
                          (json_int_t)codex_srv.restart_count);
    if (s && codex_srv.last_error[0])
        json_object_set_new(s, "lastError", json_string(codex_srv.last_error));
    if (s && codex_srv.uptime_base_ms)
        json_object_set_new(s, "uptimeMs",
                            json_integer((json_int_t)(codex_now_ms(1) - codex_srv.uptime_base_ms)));
    pthread_mutex_unlock(&codex_srv.status_lock);
    return s;
}

static void codex_log(const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: codex app-server: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
}

/* ---- waiters ------------------------------------------------------------- */

static struct codex_waiter *codex_waiter_new(void)
{
    struct codex_waiter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return NULL;
    }
    if (pthread_cond_init(&w->cond, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    w->refs = 2;
    return w;
}

static void codex_waiter_unref(struct codex_waiter *w)
{
    pthread_mutex_lock(&w->lock);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
    }
}

/* Loop: reports the outcome and drops the loop's reference. */
static void codex_waiter_finish(struct codex_waiter *w, int rc, const char *thread_id,
                                const char *message)
{
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->rc = rc;
    if (thread_id)
        snprintf(w->thread_id, sizeof w->thread_id, "%s", thread_id);
    if (message)
        snprintf(w->message, sizeof w->message, "%s", message);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    codex_waiter_unref(w);
}

/* ---- writing ---------------------------------------------------------------- */

static int codex_write_json(json_t *v /* stolen */)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    struct err err;
    int rc = -1;
    if (text && codex_srv.proc) {
        size_t n = strlen(text);
        char *line = realloc(text, n + 2);
        if (line) {
            text = line;
            text[n] = '\n';
            text[n + 1] = '\0';
            rc = supervisor_proc_write(codex_srv.proc, text, n + 1, &err);
            if (rc)
                codex_log("write failed", err.msg);
        }
    }
    free(text);
    return rc;
}

/* Sends a request; `p` (taken) is remembered for its response. */
static int codex_request_send(const char *method, json_t *params /* stolen */,
                              struct codex_pending *p)
{
    p->id = ++codex_srv.next_id;
    p->sent_ms = codex_now_ms(1);
    json_t *v = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)p->id, "method", method, "params",
                          params ? params : json_object());
    if (codex_write_json(v) != 0)
        return -1;
    p->next = codex_srv.pending;
    codex_srv.pending = p;
    return 0;
}

static struct codex_pending *codex_pending_take(long long id)
{
    for (struct codex_pending **pp = &codex_srv.pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct codex_pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

static void codex_pending_free(struct codex_pending *p)
{
    free(p->text);
    free(p);
}

/* ---- sessions ------------------------------------------------------------------ */

static struct codex_thread *codex_thread_find(const char *thread_id)
{
    for (struct codex_thread *t = codex_srv.threads; t; t = t->next)
        if (strcmp(t->thread_id, thread_id) == 0)
            return t;
    return NULL;
}

/* Keeps t->open_items up to date with what `conversions` start and
 * complete.  Memory failures only lose a failed completion after a crash. */
static void codex_track_items(struct codex_thread *t, const json_t *conversions)
{
    size_t i;
    const json_t *c;
    json_array_foreach(conversions, i, c) {
        const char *type = codex_str(c, "type");
        const json_t *item = json_object_get(json_object_get(c, "data"), "item");
        const char *native = codex_str(item, "native_item_id");
        if (!type || !native)
            continue;
        if (strcmp(type, "item.started") == 0) {
            if (!t->open_items && !(t->open_items = json_object()))
                return;
            if (json_object_set_new(t->open_items, native, json_deep_copy(item)) != 0)
                codex_log("cannot track an item", native);
        } else if (strcmp(type, "item.completed") == 0 && t->open_items) {
            json_object_del(t->open_items, native); /* absent: nothing to do */
        }
    }
}

static void codex_emit(struct codex_thread *t, const json_t *conversions)
{
    if (!t || !t->ctx || !json_array_size(conversions))
        return;
    codex_track_items(t, conversions);
    struct err err;
    if (t->ctx->host->emit_async(t->ctx, conversions, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: codex event not journaled: %s\n",
                t->ctx->session_id, err.msg);
}

/* Remembers the approval that `conversions` (a permission.requested) asks
 * the session for.  Memory failures only lose the withdrawal on exit. */
static void codex_approval_add(struct codex_thread *t, const json_t *conversions)
{
    const json_t *data = json_object_get(json_array_get(conversions, 0), "data");
    const char *id = codex_str(data, "permission_id");
    const char *action = codex_str(data, "action");
    struct codex_approval *a = id && action ? calloc(1, sizeof *a) : NULL;
    if (!a)
        return;
    a->permission_id = strdup(id);
    a->action = strdup(action);
    if (!a->permission_id || !a->action) {
        free(a->permission_id);
        free(a->action);
        free(a);
        return;
    }
    a->next = t->approvals;
    t->approvals = a;
}

/* Forgets the approval `permission_id` (answered) in whichever thread. */
static void codex_approval_forget(const char *permission_id)
{
    for (struct codex_thread *t = codex_srv.threads; t; t = t->next) {
        for (struct codex_approval **pp = &t->approvals; *pp; pp = &(*pp)->next) {
            struct codex_approval *a = *pp;
            if (strcmp(a->permission_id, permission_id) != 0)
                continue;
            *pp = a->next;
            free(a->permission_id);
            free(a->action);
            free(a);
            return;
        }
    }
}

/* The app-server that asked is gone: its approvals can never be answered.
 * Journals each as resolved denied (when `journal`) and forgets them. */
static void codex_approvals_withdraw(struct codex_thread *t, int journal)
{
    json_t *list = journal ? json_array() : NULL;
    while (t->approvals) {
        struct codex_approval *a = t->approvals;
        t->approvals = a->next;
        if (list &&
            json_array_append_new(list, event_synthetic(event_conversion(
                                            "permission.resolved",
                                            event_permission_data(a->permission_id, a->action,
                                                                  "denied", NULL)))) != 0)
            codex_log("out of memory: a withdrawn approval is not journaled", NULL);
        free(a->permission_id);
        free(a->action);
        free(a);
    }
    codex_emit(t, list);
    json_decref(list);
}

/* Tells the session its turn failed: an error event (which ends its turn). */
static void codex_thread_error(struct codex_thread *t, const char *message, const char *code)
{
    json_t *list = json_array();
    const char *native;
    json_t *item;
    json_object_foreach(t->open_items, native, item) {
        json_t *failed = json_deep_copy(item);
        if (failed && json_object_set_new(failed, "status", json_string("failed")) != 0) {
            json_decref(failed);
            failed = NULL;
        }
        json_t *done = failed ? event_synthetic(event_conversion(
                                    "item.completed", event_item_data(failed)))
                              : NULL;
        if (!done || json_array_append_new(list, done) != 0)
            codex_log("cannot close an item", native);
    }
    json_decref(t->open_items);
    t->open_items = NULL;
    json_t *c = event_synthetic(event_conversion("error", event_error_data(message, code, NULL)));
    if (list && c && json_array_append_new(list, c) == 0) {
        c = NULL;
        codex_emit(t, list);
    }
    json_decref(c);
    json_decref(list);
    t->turn_active = 0;
}

static json_t *codex_turn_params(const char *thread_id, const char *text)
{
    return json_pack("{s:s,s:[{s:s,s:s}]}", "threadId", thread_id, "input", "type", "text",
                     "text", text);
}

/* ---- the process --------------------------------------------------------------- */

static int codex_spawn_binary(struct err *err);
static void codex_job_run(uv_loop_t *loop, void *arg);
static struct codex_thread *codex_bind(struct adapter_ctx *ctx, const char *thread_id);
static void codex_job_free(struct codex_job *j);

static void codex_timer_closed(uv_handle_t *h)
{
    if (h == (uv_handle_t *)&codex_srv.answer_timer)
        codex_srv.answer_ready = 0;
    else
        codex_srv.restart_ready = 0;
}

static void codex_restart_fire(uv_timer_t *t)
{
    (void)t; /* one timer */
    codex_srv.restart_pending = 0;
    if (codex_srv.down || codex_srv.proc)
        return;
    struct err err;
    if (codex_spawn_binary(&err) != 0) {
        codex_log("restart failed", err.msg);
        codex_set_status("error", err.msg, 0);
    }
    /* Deferred jobs run now, or fail for want of a server. */
    struct codex_job *j = codex_srv.deferred;
    codex_srv.deferred = NULL;
    codex_srv.deferred_tail = &codex_srv.deferred;
    while (j) {
        struct codex_job *next = j->next;
        j->next = NULL;
        codex_job_run(codex_srv.loop, j);
        j = next;
    }
}

static void codex_schedule_restart(void)
{
    if (codex_srv.down || codex_srv.restart_pending)
        return;
    unsigned shift = codex_srv.crashes > 7 ? 6 : codex_srv.crashes ? codex_srv.crashes - 1 : 0;
    uint64_t delay = 500u << shift;
    if (delay > 30000)
        delay = 30000;
    if (!codex_srv.restart_ready) {
        if (uv_timer_init(codex_srv.loop, &codex_srv.restart_timer) != 0)
            return;
        codex_srv.restart_ready = 1;
    }
    if (uv_timer_start(&codex_srv.restart_timer, codex_restart_fire, delay, 0) == 0)
        codex_srv.restart_pending = 1;
}

static void codex_on_line(void *arg, const char *line, size_t len, int cut)
{
    (void)arg; /* one server */
    struct adapter_codex_line l;
    struct err err;
    if (adapter_codex_parse_line(line, len, cut, codex_srv.prefix, &l, &err) != 0) {
        codex_log("line dropped", err.msg);
        return;
    }
    if (l.kind == ADAPTER_CODEX_RESPONSE) {
        struct codex_pending *p = codex_pending_take(l.id);
        const char *emsg = l.error ? codex_str(l.error, "message") : NULL;
        if (!p) {
            /* Not ours (or after a restart): nothing waits for it. */
        } else if (p->kind == CODEX_REQ_START) {
            const char *tid = codex_str(json_object_get(l.result, "thread"), "id");
            if (!tid)
                tid = codex_str(l.result, "threadId");
            /* Known to this app-server from now on (no resume needed); the
             * session binds to it with its first message. */
            struct codex_thread *t = tid ? codex_bind(NULL, tid) : NULL;
            if (t)
                t->loaded = 1;
            codex_waiter_finish(p->waiter, tid ? 0 : ERR_AGENT_EXITED, tid,
                                tid ? NULL : emsg ? emsg : "thread/start answered no thread id");
        } else if (p->kind == CODEX_REQ_RESUME && p->thread) {
            if (l.error) {
                char msg[256];
                snprintf(msg, sizeof msg, "codex could not resume the thread: %s",
                         emsg ? emsg : "error");
                codex_thread_error(p->thread, msg, "resume_failed");
            } else {
                p->thread->loaded = 1;
                struct codex_pending *turn = calloc(1, sizeof *turn);
                if (turn) {
                    turn->kind = CODEX_REQ_TURN;
                    turn->thread = p->thread;
                }
                if (!turn || codex_request_send("turn/start",
                                                codex_turn_params(p->thread->thread_id, p->text),
                                                turn) != 0) {
                    free(turn);
                    codex_thread_error(p->thread, "could not start the turn", "turn_failed");
                }
            }
        } else if (p->kind == CODEX_REQ_TURN && p->thread && l.error) {
            char msg[256];
            snprintf(msg, sizeof msg, "codex refused the turn: %s", emsg ? emsg : "error");
            codex_thread_error(p->thread, msg, "turn_failed");
        } else if (p->kind == CODEX_REQ_INIT && !l.error) {
            /* Running means answering: a process that exits or refuses
             * before this never shows as running. */
            codex_set_status("running", NULL, 0);
        } else if (p->kind == CODEX_REQ_INIT && l.error) {
            /* An app-server that cannot initialize answers nothing else
             * either; left up, it would fail every create for good.  Killed,
             * it goes the crash path: restarted with back-off. */
            snprintf(codex_srv.refused, sizeof codex_srv.refused, "%.150s",
                     emsg ? emsg : "error");
            if (codex_srv.proc && supervisor_proc_kill(codex_srv.proc, SIGKILL) != 0)
                codex_log("initialize failed", emsg);
        }
        if (p)
            codex_pending_free(p);
    } else if (l.kind == ADAPTER_CODEX_REQUEST) {
        struct codex_thread *t = l.thread_id[0] ? codex_thread_find(l.thread_id) : NULL;
        if (!l.is_approval || !t) {
            /* Never leave the app-server waiting on an answer nobody gives. */
            json_t *e = json_pack("{s:I,s:{s:i,s:s}}", "id", (json_int_t)l.id, "error", "code",
                                  -32601, "message",
                                  t || !l.is_approval ? "not supported by sandbox-journal"
                                                      : "no session for this thread");
            if (codex_write_json(e) != 0)
                codex_log("cannot answer a request", l.method);
        }
        codex_emit(t, l.conversions);
        if (l.is_approval && t && t->ctx)
            codex_approval_add(t, l.conversions);
    } else if (l.kind == ADAPTER_CODEX_NOTIFICATION) {
        struct codex_thread *t = l.thread_id[0] ? codex_thread_find(l.thread_id) : NULL;
        if (t && l.turn_started) {
            t->turn_active = 1;
            snprintf(t->turn_id, sizeof t->turn_id, "%s", l.turn_id);
        }
        if (t && l.turn_done)
            t->turn_active = 0;
        codex_emit(t, l.conversions);
    } else if (json_array_size(l.conversions)) {
        char shown[200]; /* a flood must not flood the log too */
        snprintf(shown, sizeof shown, "%.*s%s", (int)(len > 150 ? 150 : len), line,
                 len > 150 || cut ? "..." : "");
        codex_log("unparsed line", shown);
    }
    adapter_codex_line_clear(&l);
}

static void codex_kill_closed(uv_handle_t *h)
{
    (void)h; /* static storage */
    codex_srv.kill_ready = 0;
}

static void codex_on_exit(void *arg, const struct supervisor_exit *e)
{
    (void)arg; /* one server */
    codex_srv.proc = NULL;
    if (codex_srv.kill_ready && !uv_is_closing((uv_handle_t *)&codex_srv.kill_timer))
        uv_close((uv_handle_t *)&codex_srv.kill_timer, codex_kill_closed);
    if (codex_srv.answer_ready && uv_timer_stop(&codex_srv.answer_timer) != 0)
        codex_log("cannot stop the answer timer", NULL);
    int expected = codex_srv.stopping;
    codex_srv.stopping = 0;
    char message[256];
    if (codex_srv.unanswered)
        snprintf(message, sizeof message,
                 "codex app-server did not answer a request within %lld ms and was killed",
                 codex_srv.answer_timeout_ms);
    else if (codex_srv.refused[0])
        snprintf(message, sizeof message, "codex app-server refused to initialize: %s",
                 codex_srv.refused);
    else if (e->term_signal)
        snprintf(message, sizeof message, "codex app-server killed by signal %d",
                 e->term_signal);
    else
        snprintf(message, sizeof message, "codex app-server exited with status %lld",
                 (long long)e->exit_status);
    if (!expected)
        agent_proc_append_last_words(message, sizeof message, e);
    /* Every request in flight dies with it. */
    while (codex_srv.pending) {
        struct codex_pending *p = codex_srv.pending;
        codex_srv.pending = p->next;
        if (p->kind == CODEX_REQ_START)
            codex_waiter_finish(p->waiter, ERR_AGENT_EXITED, NULL, message);
        codex_pending_free(p);
    }
    for (struct codex_thread *t = codex_srv.threads; t; t = t->next) {
        t->loaded = 0;
        codex_approvals_withdraw(t, !codex_srv.down);
        if (t->turn_active && !codex_srv.down)
            codex_thread_error(t, message, "server_exit");
    }
    if (codex_srv.down || expected) {
        codex_set_status("stopped", NULL, 0);
        return;
    }
    codex_srv.unanswered = 0;
    codex_srv.refused[0] = '\0';
    codex_log(message, NULL);
    if (codex_now_ms(1) - codex_srv.started_ms > 60000)
        codex_srv.crashes = 0;
    codex_srv.crashes++;
    codex_set_status("error", message, 1);
    codex_schedule_restart();
}

/* ---- starting the app-server ------------------------------------------------------ */

static char *codex_binary; /* loop only: the last binary a job named */

static void codex_answer_check(uv_timer_t *t)
{
    (void)t; /* one timer */
    long long now = codex_now_ms(1);
    for (struct codex_pending *p = codex_srv.pending; p; p = p->next) {
        if (now - p->sent_ms < codex_srv.answer_timeout_ms)
            continue;
        if (codex_srv.proc && !codex_srv.unanswered &&
            supervisor_proc_kill(codex_srv.proc, SIGKILL) == 0)
            codex_srv.unanswered = 1;
        return;
    }
}

/* Starts the check of unanswered requests for a freshly spawned app-server. */
static int codex_answer_watch(struct err *err)
{
    if (!codex_srv.answer_ready) {
        const char *env = getenv("SJ_CODEX_ANSWER_TIMEOUT_MS");
        long long ms = env ? atoll(env) : 0;
        codex_srv.answer_timeout_ms = ms > 0 ? ms : CODEX_ANSWER_TIMEOUT_MS;
        if (uv_timer_init(codex_srv.loop, &codex_srv.answer_timer) != 0)
            return err_set(err, ERR_INTERNAL, "cannot create the codex answer timer");
        codex_srv.answer_ready = 1;
    }
    uint64_t every = (uint64_t)(codex_srv.answer_timeout_ms / 4 ? codex_srv.answer_timeout_ms / 4 : 1);
    if (uv_timer_start(&codex_srv.answer_timer, codex_answer_check, every, every) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the codex answer timer");
    return 0;
}

/* Appends `-c key="value"` with TOML string escaping. */
static int codex_config_arg(const char **args, size_t *n, char **owned, size_t *n_owned,
                            const char *key, const char *value)
{
    struct buf b;
    buf_init(&b);
    int rc = buf_printf(&b, "%s=\"", key);
    for (const char *p = value; !rc && *p; p++)
        rc = (*p == '"' || *p == '\\') ? buf_printf(&b, "\\%c", *p) : buf_append(&b, p, 1);
    if (!rc)
        rc = buf_puts(&b, "\"");
    char *s = rc ? NULL : buf_steal(&b);
    buf_free(&b);
    if (!s)
        return -1;
    owned[(*n_owned)++] = s;
    args[(*n)++] = "-c";
    args[(*n)++] = s;
    return 0;
}

static int codex_spawn_binary(struct err *err)
{
    char home[PATH_MAX];
    int rc = agent_env_home(codex_srv.data_dir, "codex", home, err);
    if (rc)
        return rc;
    if (!codex_binary)
        return err_set(err, ERR_NOT_INSTALLED, "agent not installed: codex");
    const char *args[32];
    char *owned[8];
    size_t n = 0, n_owned = 0;
    args[n++] = codex_binary;
    args[n++] = "app-server";
    const char *base_url = getenv("OPENAI_BASE_URL");
    int failed = 0;
    if (base_url && *base_url) {
        /* A model endpoint of the operator's (a gateway, or the tests' fake):
         * a provider of our own pointing at it, speaking the Responses API. */
        args[n++] = "-c";
        args[n++] = "model_provider=\"sandbox_journal\"";
        failed |= codex_config_arg(args, &n, owned, &n_owned, "model_providers.sandbox_journal.name",
                                   "sandbox-journal") != 0;
        failed |= codex_config_arg(args, &n, owned, &n_owned,
                                   "model_providers.sandbox_journal.base_url", base_url) != 0;
        failed |= codex_config_arg(args, &n, owned, &n_owned,
                                   "model_providers.sandbox_journal.env_key", "OPENAI_API_KEY") != 0;
        failed |= codex_config_arg(args, &n, owned, &n_owned,
                                   "model_providers.sandbox_journal.wire_api", "responses") != 0;
    }
    args[n++] = "-c";
    args[n++] = "analytics.enabled=false";
    /* No plugin lookups (github.com, chatgpt.com): only the model endpoint. */
    args[n++] = "--disable";
    args[n++] = "plugins";
    args[n] = NULL;

    struct agent_env env;
    agent_env_init(&env);
    agent_env_pass_common(&env);
    agent_env_set(&env, "HOME", home);
    agent_env_set(&env, "CODEX_HOME", home);
    agent_env_credential(&env, "openai", "OPENAI_API_KEY", NULL);
    agent_env_pass(&env, "CODEX_API_KEY");
    char *const *envp = agent_env_finish(&env, err);
    if (failed || !envp) {
        for (size_t i = 0; i < n_owned; i++)
            free(owned[i]);
        agent_env_free(&env);
        return failed ? err_set(err, ERR_NOMEM, "out of memory") : ERR_NOMEM;
    }
    struct supervisor_proc_options po = {
        .file = codex_binary, .args = args, .env = envp, .cwd = home,
        .max_line_bytes = CODEX_MAX_LINE,
    };
    struct supervisor_proc_callbacks cb = { .on_line = codex_on_line, .on_exit = codex_on_exit,
                                            .arg = NULL };
    rc = supervisor_proc_spawn(codex_srv.loop, &po, &cb, &codex_srv.proc, err);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    agent_env_free(&env);
    if (rc) {
        codex_srv.proc = NULL;
        return rc;
    }
    codex_srv.started_ms = codex_now_ms(1);
    codex_srv.unanswered = 0;
    codex_srv.refused[0] = '\0';
    if ((rc = codex_answer_watch(err)) != 0)
        return rc;
    snprintf(codex_srv.prefix, sizeof codex_srv.prefix, "%lld", codex_now_ms(0));
    /* The handshake; requests written after it are served in order. */
    struct codex_pending *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory");
    p->kind = CODEX_REQ_INIT;
    if (codex_request_send("initialize",
                           json_pack("{s:{s:s,s:s,s:s}}", "clientInfo", "name", "sandbox-journal",
                                     "title", "sandbox-journal", "version", "0.1.0"),
                           p) != 0 ||
        codex_write_json(json_pack("{s:s}", "method", "initialized")) != 0) {
        codex_pending_take(p->id); /* unlinks it if it was sent */
        free(p);
        return err_set(err, ERR_INTERNAL, "cannot talk to the codex app-server");
    }
    return 0;
}

/* Loop: the app-server is running (or is being restarted: 1, the job waits). */
static int codex_ensure(uv_loop_t *loop, const char *binary, struct err *err)
{
    codex_srv.loop = loop;
    if (binary) {
        char *copy = strdup(binary);
        if (!copy)
            return err_set(err, ERR_NOMEM, "out of memory");
        free(codex_binary);
        codex_binary = copy;
    }
    if (codex_srv.down)
        return err_set(err, ERR_INVALID, "the server is shutting down");
    if (codex_srv.proc)
        return 0;
    if (codex_srv.restart_pending)
        return 1;
    return codex_spawn_binary(err);
}

/* ---- jobs ------------------------------------------------------------------------- */

static void codex_job_free(struct codex_job *j)
{
    if (!j)
        return;
    free(j->thread_id);
    free(j->text);
    json_decref(j->params);
    free(j->prefix);
    free(j->reply);
    free(j);
}

static struct codex_thread *codex_bind(struct adapter_ctx *ctx, const char *thread_id)
{
    struct codex_thread *t = codex_thread_find(thread_id);
    if (t) {
        if (ctx)
            t->ctx = ctx;
        return t;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->thread_id = strdup(thread_id))) {
        free(t);
        return NULL;
    }
    t->ctx = ctx;
    t->next = codex_srv.threads;
    codex_srv.threads = t;
    return t;
}

static void codex_job_run(uv_loop_t *loop, void *arg)
{
    struct codex_job *j = arg;
    struct err err;
    err_clear(&err);
    int rc;
    switch (j->kind) {
    case CODEX_JOB_START: {
        rc = codex_ensure(loop, j->text, &err);
        if (rc == 1) {
            *codex_srv.deferred_tail = j;
            codex_srv.deferred_tail = &j->next;
            return;
        }
        struct codex_pending *p = rc ? NULL : calloc(1, sizeof *p);
        if (p) {
            p->kind = CODEX_REQ_START;
            p->waiter = j->waiter;
            json_t *params = j->params;
            j->params = NULL;
            if (codex_request_send("thread/start", params, p) != 0) {
                free(p);
                p = NULL;
                err_set(&err, ERR_AGENT_EXITED, "cannot talk to the codex app-server");
            }
        } else if (!rc) {
            err_set(&err, ERR_NOMEM, "out of memory");
        }
        if (!p)
            codex_waiter_finish(j->waiter, err.code ? err.code : ERR_INTERNAL, NULL, err.msg);
        break;
    }
    case CODEX_JOB_TURN: {
        rc = codex_ensure(loop, j->prefix, &err);
        if (rc == 1) {
            *codex_srv.deferred_tail = j;
            codex_srv.deferred_tail = &j->next;
            return;
        }
        struct codex_thread *t = codex_bind(j->ctx, j->thread_id);
        if (!t) {
            codex_log("out of memory: turn dropped", NULL);
            break;
        }
        if (rc) {
            codex_thread_error(t, err.msg, "server_unavailable");
            break;
        }
        t->turn_active = 1;
        struct codex_pending *p = calloc(1, sizeof *p);
        if (!p) {
            codex_thread_error(t, "out of memory", "turn_failed");
            break;
        }
        p->thread = t;
        if (t->loaded) {
            p->kind = CODEX_REQ_TURN;
            rc = codex_request_send("turn/start", codex_turn_params(t->thread_id, j->text), p);
        } else {
            /* New to this app-server (a restart of either side): resume the
             * thread from CODEX_HOME first, then start the turn. */
            p->kind = CODEX_REQ_RESUME;
            p->text = j->text;
            j->text = NULL;
            json_t *params = j->params;
            j->params = NULL;
            rc = codex_request_send("thread/resume", params, p);
        }
        if (rc) {
            codex_pending_free(p);
            codex_thread_error(t, "cannot talk to the codex app-server", "turn_failed");
        }
        break;
    }
    case CODEX_JOB_APPROVAL: {
        if (!codex_srv.proc || strcmp(j->prefix, codex_srv.prefix) != 0) {
            /* Asked by an app-server that is gone: its request died with it. */
            codex_log("approval not forwarded: the app-server that asked is gone", NULL);
            break;
        }
        char *line = adapter_codex_decision_line(j->request_id, j->reply);
        if (!line || supervisor_proc_write(codex_srv.proc, line, strlen(line), &err) != 0)
            codex_log("approval not forwarded", line ? err.msg : "out of memory");
        free(line);
        char permission_id[128];
        snprintf(permission_id, sizeof permission_id, "%s-%lld", j->prefix, j->request_id);
        codex_approval_forget(permission_id);
        break;
    }
    case CODEX_JOB_STOP_TURN: {
        struct codex_thread *t = codex_thread_find(j->thread_id);
        if (!t)
            break;
        if (t->turn_active && codex_srv.proc && t->turn_id[0]) {
            struct codex_pending *p = calloc(1, sizeof *p);
            if (p) {
                p->kind = CODEX_REQ_OTHER;
                if (codex_request_send("turn/interrupt",
                                       json_pack("{s:s,s:s}", "threadId", t->thread_id, "turnId",
                                                 t->turn_id),
                                       p) != 0)
                    free(p);
            }
        }
        t->ctx = NULL; /* terminated: later events of the thread are not journaled */
        codex_approvals_withdraw(t, 0);
        t->turn_active = 0;
        break;
    }
    }
    codex_job_free(j);
}

static void codex_kill_timeout(uv_timer_t *t)
{
    (void)t; /* one timer */
    if (codex_srv.proc && supervisor_proc_kill(codex_srv.proc, SIGKILL) == 0)
        codex_log("did not stop after SIGTERM: killed", NULL);
}

static void codex_shutdown_shared(void *instance)
{
    (void)instance; /* still process-wide: becomes the instance next (issue 12) */
    codex_srv.down = 1;
    if (codex_srv.restart_ready && !uv_is_closing((uv_handle_t *)&codex_srv.restart_timer))
        uv_close((uv_handle_t *)&codex_srv.restart_timer, codex_timer_closed);
    codex_srv.restart_pending = 0;
    if (codex_srv.answer_ready && !uv_is_closing((uv_handle_t *)&codex_srv.answer_timer))
        uv_close((uv_handle_t *)&codex_srv.answer_timer, codex_timer_closed);
    while (codex_srv.deferred) {
        struct codex_job *j = codex_srv.deferred;
        codex_srv.deferred = j->next;
        if (j->waiter)
            codex_waiter_finish(j->waiter, ERR_INVALID, NULL, "the server is shutting down");
        codex_job_free(j);
    }
    codex_srv.deferred_tail = &codex_srv.deferred;
    while (codex_srv.pending) {
        struct codex_pending *p = codex_srv.pending;
        codex_srv.pending = p->next;
        if (p->kind == CODEX_REQ_START)
            codex_waiter_finish(p->waiter, ERR_INVALID, NULL, "the server is shutting down");
        codex_pending_free(p);
    }
    if (codex_srv.proc) {
        codex_srv.stopping = 1;
        supervisor_proc_close_stdin(codex_srv.proc);
        if (supervisor_proc_kill(codex_srv.proc, SIGTERM) == 0 &&
            uv_timer_init(codex_srv.loop, &codex_srv.kill_timer) == 0) {
            codex_srv.kill_ready = 1;
            if (uv_timer_start(&codex_srv.kill_timer, codex_kill_timeout, CODEX_KILL_MS, 0) != 0)
                codex_log("cannot arm the kill timer", NULL);
        }
    }
    /* Sessions are freed after the loop stops; drop our pointers to them. */
    while (codex_srv.threads) {
        struct codex_thread *t = codex_srv.threads;
        codex_srv.threads = t->next;
        codex_approvals_withdraw(t, 1); /* a restarted app-server will not ask again */
        json_decref(t->open_items);
        free(t->thread_id);
        free(t);
    }
    free(codex_binary);
    codex_binary = NULL;
    free(codex_srv.data_dir);
    codex_srv.data_dir = NULL;
}

/* ---- the adapter ------------------------------------------------------------------ */

static int codex_resolve_modes(const char *agent_mode, const char *permission_mode,
                               char agent_mode_out[32], char permission_mode_out[32],
                               struct err *err)
{
    const char *am = agent_mode ? agent_mode : "build";
    const char *pm = permission_mode ? permission_mode : "default";
    if (strcmp(am, "build") != 0 && strcmp(am, "plan") != 0)
        return err_set_mode(err, "codex", am);
    if (strcmp(pm, "default") != 0 && strcmp(pm, "plan") != 0 && strcmp(pm, "bypass") != 0) {
        if (strcmp(pm, "acceptEdits") == 0)
            return err_set_mode(err, "codex", pm);
        return err_set(err, ERR_INVALID, "invalid request: invalid permission mode: %s", pm);
    }
    snprintf(agent_mode_out, 32, "%s", am);
    snprintf(permission_mode_out, 32, "%s", pm);
    return 0;
}

/* new: thread/start or thread/resume params for the session. */
static json_t *codex_thread_params(const struct adapter_ctx *ctx, const char *thread_id)
{
    const char *pm = ctx->permission_mode;
    /* default asks for anything not known to be safe ("untrusted"); plan
     * reads only; bypass never asks and has no sandbox. */
    const char *policy = strcmp(pm, "bypass") == 0 ? "never" : "untrusted";
    const char *sandbox = strcmp(pm, "plan") == 0     ? "read-only"
                          : strcmp(pm, "bypass") == 0 ? "danger-full-access"
                                                      : "workspace-write";
    json_t *p = json_pack("{s:s,s:s}", "approvalPolicy", policy, "sandbox", sandbox);
    if (p && ctx->working_dir && json_object_set_new(p, "cwd", json_string(ctx->working_dir)))
        goto fail;
    if (p && ctx->model && json_object_set_new(p, "model", json_string(ctx->model)))
        goto fail;
    if (p && thread_id && json_object_set_new(p, "threadId", json_string(thread_id)))
        goto fail;
    return p;
fail:
    json_decref(p);
    return NULL;
}

static int codex_post(struct adapter_ctx *ctx, struct codex_job *j, struct err *err)
{
    int rc = supervisor_post(ctx->supervisor, codex_job_run, j, err);
    if (rc)
        codex_job_free(j);
    return rc;
}

/* Loop: remembers the data dir the first time (one server, one data dir). */
static void codex_set_data_dir(uv_loop_t *loop, void *arg)
{
    codex_srv.loop = loop;
    if (!codex_srv.deferred_tail)
        codex_srv.deferred_tail = &codex_srv.deferred;
    if (!codex_srv.data_dir)
        codex_srv.data_dir = arg;
    else
        free(arg);
}

static int codex_start_session(struct adapter_ctx *ctx, char native_id_out[128],
                               struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "codex", "agent not installed: codex");
    char *dir = strdup(ctx->data_dir);
    if (!dir)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = supervisor_post(ctx->supervisor, codex_set_data_dir, dir, err);
    if (rc) {
        free(dir);
        return rc;
    }
    struct codex_waiter *w = codex_waiter_new();
    struct codex_job *j = calloc(1, sizeof *j);
    if (!w || !j) {
        free(j);
        if (w) {
            pthread_cond_destroy(&w->cond);
            pthread_mutex_destroy(&w->lock);
            free(w);
        }
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    j->kind = CODEX_JOB_START;
    j->waiter = w;
    j->params = codex_thread_params(ctx, NULL);
    j->text = strdup(ctx->binary_path);
    if (!j->params || !j->text) {
        codex_job_free(j);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    rc = supervisor_post(ctx->supervisor, codex_job_run, j, err);
    if (rc) {
        codex_job_free(j);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    /* Wait (no lock held) for thread/start's answer. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CODEX_START_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT)
            break;
    }
    int done = w->done;
    rc = w->rc;
    if (done && rc == 0)
        snprintf(native_id_out, 128, "%s", w->thread_id);
    else if (done)
        err_set_subject(err, rc, "codex", "codex could not start a thread: %s", w->message);
    pthread_mutex_unlock(&w->lock);
    codex_waiter_unref(w);
    if (!done)
        return err_set_subject(err, ERR_AGENT_EXITED, "codex",
                               "codex did not start a thread within %d s",
                               CODEX_START_TIMEOUT_MS / 1000);
    return rc;
}

static int codex_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    if (!ctx->binary_path)
        return err_set_subject(err, ERR_NOT_INSTALLED, "codex", "agent not installed: codex");
    if (!ctx->native_session_id)
        return err_set(err, ERR_INTERNAL, "codex session without a thread id");
    struct codex_job *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(err, ERR_NOMEM, "out of memory");
    j->kind = CODEX_JOB_TURN;
    j->ctx = ctx;
    j->thread_id = strdup(ctx->native_session_id);
    j->prefix = strdup(ctx->binary_path); /* TURN: the binary to start if needed */
    j->params = codex_thread_params(ctx, ctx->native_session_id);
    if (strcmp(ctx->agent_mode, "plan") == 0) {
        size_t n = strlen(message) + 64;
        if ((j->text = malloc(n)))
            snprintf(j->text, n, "Make a plan before acting.\n\n%s", message);
    } else {
        j->text = strdup(message);
    }
    if (!j->thread_id || !j->prefix || !j->params || !j->text) {
        codex_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    /* The data dir may be new to the loop after a restart of this server. */
    char *dir = strdup(ctx->data_dir);
    int rc = dir ? supervisor_post(ctx->supervisor, codex_set_data_dir, dir, err)
                 : err_set(err, ERR_NOMEM, "out of memory");
    if (rc) {
        free(dir);
        codex_job_free(j);
        return rc;
    }
    return codex_post(ctx, j, err);
}

static int codex_reply_permission(struct adapter_ctx *ctx, const char *permission_id,
                                  const char *reply, const json_t *pending, struct err *err)
{
    (void)pending; /* the id says everything */
    char prefix[64];
    long long id;
    int rc = adapter_codex_permission_id(permission_id, prefix, sizeof prefix, &id, err);
    if (rc)
        return rc;
    struct codex_job *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(err, ERR_NOMEM, "out of memory");
    j->kind = CODEX_JOB_APPROVAL;
    j->prefix = strdup(prefix);
    j->reply = strdup(reply);
    j->request_id = id;
    if (!j->prefix || !j->reply) {
        codex_job_free(j);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    return codex_post(ctx, j, err);
}

static void codex_terminate(struct adapter_ctx *ctx)
{
    if (!ctx->native_session_id)
        return;
    struct codex_job *j = calloc(1, sizeof *j);
    struct err err;
    if (!j || !(j->thread_id = strdup(ctx->native_session_id))) {
        free(j);
        fprintf(stderr, "sandbox-journal: session %s: out of memory stopping codex\n",
                ctx->session_id);
        return;
    }
    j->kind = CODEX_JOB_STOP_TURN;
    if (codex_post(ctx, j, &err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: cannot stop codex: %s\n", ctx->session_id,
                err.msg);
}

static const struct adapter_mode codex_modes[] = {
    { "build", "Build", "Default build mode" },
    { "plan", "Plan", "Planning mode via prompt prefix" },
};

const struct adapter adapter_codex = {
    .name = "codex",
    .caps =
        {
            .plan_mode = 1,
            .permissions = 1,
            .tool_calls = 1,
            .tool_results = 1,
            .text_messages = 1,
            .images = 1,
            /* No file_ref parts: messages go out as text, and file changes
             * come back as tool results (fileChanges). */
            .file_attachments = 0,
            .session_lifecycle = 1,
            .error_events = 1,
            .reasoning = 1,
            .status = 1,
            .command_execution = 1,
            .file_changes = 1,
            .mcp_tools = 1,
            .streaming_deltas = 1,
            .item_started = 1,
            .shared_process = 1,
        },
    .modes = codex_modes,
    .n_modes = sizeof codex_modes / sizeof codex_modes[0],
    .can_resume = 1,
    .builtin_version = NULL,
    .resolve_modes = codex_resolve_modes,
    .start_session = codex_start_session,
    .send_message = codex_send_message,
    .reply_permission = codex_reply_permission,
    .reply_question = NULL,
    .reject_question = NULL,
    .terminate = codex_terminate,
    .free_state = NULL,
    .shutdown = NULL,
    .server_status_json = codex_server_status_json,
    .shutdown_shared = codex_shutdown_shared,
};
