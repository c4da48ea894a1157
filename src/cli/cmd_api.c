/* `sandbox-journal api`: the v1 HTTP API from the command line, with the
 * reference CLI's command names and flags (sandbox-agent api ...), so its
 * scripts work against this server unchanged.
 *
 * Output contract: a JSON answer is printed as the server sent it when
 * stdout is a pipe (byte for byte, plus a newline) and indented when it is a
 * terminal; 204 answers print nothing; streams print each event's data on
 * its own line as it arrives and end cleanly, exit 0, on Ctrl-C.  Any error
 * is one line on stderr and a non-zero exit: 1 for what the server or the
 * network said, 2 for bad usage. */
#include "cli/client.h"
#include "cli/cmd.h"
#include "base/opts.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD_API_DEFAULT_ENDPOINT "http://127.0.0.1:2468"

/* Where each subcommand option's value lands. */
enum cmd_api_slot {
    CMD_API_AGENT,
    CMD_API_AGENT_MODE,
    CMD_API_PERMISSION_MODE,
    CMD_API_MODEL,
    CMD_API_VARIANT,
    CMD_API_AGENT_VERSION,
    CMD_API_MESSAGE,
    CMD_API_INCLUDE_RAW,
    CMD_API_OFFSET,
    CMD_API_LIMIT,
    CMD_API_ANSWERS,
    CMD_API_REPLY,
    CMD_API_REINSTALL,
    CMD_API_TIMEOUT_MS,
    CMD_API_MAX_OUTPUT,
    CMD_API_CWD,
    CMD_API_TTY,
    CMD_API_INTERACTIVE,
    CMD_API_WAIT_MS,
    CMD_API_SINCE,
    CMD_API_TAIL,
    CMD_API_STREAM,
    CMD_API_FOLLOW,
    CMD_API_DATA,
    CMD_API_BASE64,
    CMD_API_DIRECTORY,
    CMD_API_NAME,
    CMD_API_CONFIG,
    CMD_API_RECURSIVE,
    CMD_API_OVERWRITE,
    CMD_API_INPUT,
    CMD_API_OUTPUT,
    CMD_API_SLOTS
};

struct cmd_api_option {
    const char *longname;
    const char *shortname; /* NULL: none */
    int takes_value;
    enum cmd_api_slot slot;
    int required;
};

struct cmd_api_args {
    const char *endpoint;
    const char *token;
    int no_token;
    const char *idem_key;
    const char *pos[2];
    int npos;
    char **rest;  /* a command line (npos CMD_API_REST): COMMAND [ARG...] */
    int nrest;
    const char *v[CMD_API_SLOTS]; /* option values; "1" for flags */
};

struct cmd_api_sub {
    const char *group;
    const char *name;
    const char *synopsis; /* what follows the name in the usage line */
    const char *summary;
    int npos;             /* positional arguments, all required; CMD_API_REST: a
                           * command line, everything from the first one on */
    const struct cmd_api_option *opts;
    const char *details;  /* options and examples, after the summary */
    int (*run)(client_t *c, const struct cmd_api_args *a);
};

#define CMD_API_REST (-1)

/* Set by the SIGINT handler while a stream runs; client_stream polls it. */
static volatile sig_atomic_t cmd_api_stop;

/* ---- output ----------------------------------------------------------------- */

static int cmd_api_flush(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* Prints a 2xx body: as received on a pipe, indented on a terminal. */
static int cmd_api_print_body(const struct client_response *r)
{
    if (r->body_len == 0)
        return 0;
    json_t *j = NULL;
    if (isatty(STDOUT_FILENO)) {
        json_error_t jerr;
        j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &jerr);
    }
    int ok;
    if (j)
        ok = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) == 0 &&
             fputc('\n', stdout) != EOF;
    else
        ok = fwrite(r->body, 1, r->body_len, stdout) == r->body_len &&
             (r->body[r->body_len - 1] == '\n' || fputc('\n', stdout) != EOF);
    json_decref(j);
    if (!ok) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return cmd_api_flush();
}

/* Copies `s` into out[size] on one line: control characters become spaces. */
static void cmd_api_one_line(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < size; s++)
        out[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
    out[n] = '\0';
}

/* An error answer on one line of stderr: "title: detail (HTTP 404)". */
static int cmd_api_problem(const struct client_response *r)
{
    char title[256] = "", detail[512] = "";
    json_error_t jerr;
    json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
    if (json_is_object(j)) {
        const json_t *t = json_object_get(j, "title");
        const json_t *d = json_object_get(j, "detail");
        cmd_api_one_line(title, sizeof title, json_is_string(t) ? json_string_value(t) : NULL);
        cmd_api_one_line(detail, sizeof detail, json_is_string(d) ? json_string_value(d) : NULL);
    } else if (r->body_len) {
        cmd_api_one_line(detail, sizeof detail, r->body);
    }
    json_decref(j);
    if (title[0] && detail[0] && strcmp(title, detail) != 0)
        fprintf(stderr, "sandbox-journal: %s: %s (HTTP %ld)\n", title, detail, r->status);
    else if (title[0] || detail[0])
        fprintf(stderr, "sandbox-journal: %s (HTTP %ld)\n", title[0] ? title : detail,
                r->status);
    else
        fprintf(stderr, "sandbox-journal: the server answered HTTP %ld\n", r->status);
    return 1;
}

static int cmd_api_failed(const struct err *err)
{
    char line[sizeof err->msg];
    cmd_api_one_line(line, sizeof line, err->msg[0] ? err->msg : "the request failed");
    fprintf(stderr, "sandbox-journal: %s\n", line);
    return 1;
}

/* ---- requests --------------------------------------------------------------- */

/* new (free()): `pattern` with each "%s" replaced by the next id,
 * percent-encoded as one path segment.  NULL if memory ran out. */
static char *cmd_api_path(const char *pattern, const char *id1, const char *id2)
{
    const char *ids[2] = { id1, id2 };
    int next = 0, rc = 0;
    struct buf b;
    buf_init(&b);
    for (const char *p = pattern; *p && !rc; p++) {
        if (p[0] == '%' && p[1] == 's' && next < 2 && ids[next]) {
            char *e = client_escape(ids[next++]);
            rc = e ? buf_puts(&b, e) : ERR_NOMEM;
            free(e);
            p++;
        } else {
            rc = buf_append(&b, p, 1);
        }
    }
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

/* Appends "?k=v&..." for the options that are set. */
static int cmd_api_query(char **path, const struct cmd_api_args *a)
{
    struct buf b;
    buf_init(&b);
    int rc = buf_puts(&b, *path);
    char sep = '?';
    if (!rc && a->v[CMD_API_OFFSET]) {
        rc = buf_printf(&b, "%coffset=%s", sep, a->v[CMD_API_OFFSET]);
        sep = '&';
    }
    if (!rc && a->v[CMD_API_LIMIT]) {
        rc = buf_printf(&b, "%climit=%s", sep, a->v[CMD_API_LIMIT]);
        sep = '&';
    }
    if (!rc && a->v[CMD_API_INCLUDE_RAW])
        rc = buf_printf(&b, "%cinclude_raw=true", sep);
    if (rc) {
        buf_free(&b);
        return ERR_NOMEM;
    }
    free(*path);
    *path = buf_steal(&b);
    return *path ? 0 : ERR_NOMEM;
}

static int cmd_api_nomem(void)
{
    fputs("sandbox-journal: out of memory\n", stderr);
    return 1;
}

/* One request; prints the answer or the error.  `body` (new JSON, may be
 * NULL) is consumed. */
static int cmd_api_call(client_t *c, const char *method, char *path, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!path || (body && !text)) {
        free(path);
        free(text);
        return cmd_api_nomem();
    }
    struct client_response r;
    struct err err;
    err_clear(&err);
    int rc = client_request(c, method, path, text, &r, &err);
    free(path);
    free(text);
    if (rc)
        return cmd_api_failed(&err);
    rc = r.status >= 200 && r.status < 300 ? cmd_api_print_body(&r) : cmd_api_problem(&r);
    client_response_clear(&r);
    return rc;
}

struct cmd_api_stream {
    int write_errno; /* set when stdout refused an event */
};

static int cmd_api_on_event(void *arg, const struct client_sse_event *ev)
{
    struct cmd_api_stream *s = arg;
    if (ev->data_len == 0)
        return 0;
    if (fwrite(ev->data, 1, ev->data_len, stdout) != ev->data_len || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0) {
        s->write_errno = errno ? errno : EIO;
        return ERR_INTERNAL;
    }
    return 0;
}

static void cmd_api_on_sigint(int sig)
{
    (void)sig; /* only SIGINT is routed here */
    cmd_api_stop = 1;
}

/* Streams an SSE answer to stdout until it ends or Ctrl-C. */
static int cmd_api_stream(client_t *c, const char *method, char *path, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!path || (body && !text)) {
        free(path);
        free(text);
        return cmd_api_nomem();
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cmd_api_on_sigint;
    if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGINT, &sa, &old) != 0) {
        free(path);
        free(text);
        fprintf(stderr, "sandbox-journal: cannot handle SIGINT: %s\n", strerror(errno));
        return 1;
    }
    struct cmd_api_stream s = { 0 };
    struct client_response r;
    struct err err;
    err_clear(&err);
    cmd_api_stop = 0;
    int rc = client_stream(c, method, path, text, &cmd_api_stop, cmd_api_on_event, &s, &r,
                           &err);
    free(path);
    free(text);
    if (sigaction(SIGINT, &old, NULL) != 0)
        fprintf(stderr, "sandbox-journal: cannot restore SIGINT: %s\n", strerror(errno));
    if (s.write_errno) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n",
                strerror(s.write_errno));
        return 1;
    }
    if (rc)
        return cmd_api_failed(&err);
    if (r.status < 200 || r.status >= 300)
        rc = cmd_api_problem(&r);
    else if (r.body_len) /* a 2xx that was not an event stream */
        rc = cmd_api_print_body(&r);
    client_response_clear(&r);
    return rc;
}

/* ---- the subcommands -------------------------------------------------------- */

/* A JSON object from key/value pairs whose value is non-NULL (new). */
static json_t *cmd_api_object(const char *const *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i + 1 < n; i += 2) {
        if (!kv[i + 1])
            continue;
        if (json_object_set_new(o, kv[i], json_string(kv[i + 1])) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int cmd_api_agents_list(client_t *c, const struct cmd_api_args *a)
{
    (void)a; /* no arguments */
    return cmd_api_call(c, "GET", cmd_api_path("/v1/agents", NULL, NULL), NULL);
}

static int cmd_api_agents_install(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = json_object();
    if (!body || (a->v[CMD_API_REINSTALL] &&
                  json_object_set_new(body, "reinstall", json_true()) != 0)) {
        json_decref(body);
        return cmd_api_nomem();
    }
    return cmd_api_call(c, "POST", cmd_api_path("/v1/agents/%s/install", a->pos[0], NULL),
                        body);
}

static int cmd_api_agents_modes(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "GET", cmd_api_path("/v1/agents/%s/modes", a->pos[0], NULL), NULL);
}

static int cmd_api_sessions_list(client_t *c, const struct cmd_api_args *a)
{
    (void)a; /* no arguments */
    return cmd_api_call(c, "GET", cmd_api_path("/v1/sessions", NULL, NULL), NULL);
}

static int cmd_api_sessions_create(client_t *c, const struct cmd_api_args *a)
{
    const char *kv[] = {
        "agent", a->v[CMD_API_AGENT],
        "agentMode", a->v[CMD_API_AGENT_MODE],
        "permissionMode", a->v[CMD_API_PERMISSION_MODE],
        "model", a->v[CMD_API_MODEL],
        "variant", a->v[CMD_API_VARIANT],
        "agentVersion", a->v[CMD_API_AGENT_VERSION],
    };
    json_t *body = cmd_api_object(kv, sizeof kv / sizeof kv[0]);
    if (!body)
        return cmd_api_nomem();
    return cmd_api_call(c, "POST", cmd_api_path("/v1/sessions/%s", a->pos[0], NULL), body);
}

static json_t *cmd_api_message(const struct cmd_api_args *a)
{
    const char *kv[] = { "message", a->v[CMD_API_MESSAGE] };
    return cmd_api_object(kv, 2);
}

static int cmd_api_sessions_send(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = cmd_api_message(a);
    if (!body)
        return cmd_api_nomem();
    return cmd_api_call(c, "POST", cmd_api_path("/v1/sessions/%s/messages", a->pos[0], NULL),
                        body);
}

static int cmd_api_sessions_send_stream(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = cmd_api_message(a);
    char *path = cmd_api_path("/v1/sessions/%s/messages/stream", a->pos[0], NULL);
    if (!body || !path || cmd_api_query(&path, a) != 0) {
        json_decref(body);
        free(path);
        return cmd_api_nomem();
    }
    return cmd_api_stream(c, "POST", path, body);
}

static int cmd_api_sessions_terminate(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "POST", cmd_api_path("/v1/sessions/%s/terminate", a->pos[0], NULL),
                        NULL);
}

static int cmd_api_sessions_events(client_t *c, const struct cmd_api_args *a)
{
    char *path = cmd_api_path("/v1/sessions/%s/events", a->pos[0], NULL);
    if (!path || cmd_api_query(&path, a) != 0) {
        free(path);
        return cmd_api_nomem();
    }
    return cmd_api_call(c, "GET", path, NULL);
}

static int cmd_api_sessions_events_sse(client_t *c, const struct cmd_api_args *a)
{
    char *path = cmd_api_path("/v1/sessions/%s/events/sse", a->pos[0], NULL);
    if (!path || cmd_api_query(&path, a) != 0) {
        free(path);
        return cmd_api_nomem();
    }
    return cmd_api_stream(c, "GET", path, NULL);
}

static int cmd_api_sessions_reply_question(client_t *c, const struct cmd_api_args *a)
{
    json_error_t jerr;
    json_t *answers = json_loads(a->v[CMD_API_ANSWERS], 0, &jerr);
    int ok = json_is_array(answers);
    size_t i, k;
    json_t *row, *cell;
    json_array_foreach(answers, i, row) {
        ok = ok && json_is_array(row);
        json_array_foreach(row, k, cell)
            ok = ok && json_is_string(cell);
    }
    if (!ok) {
        json_decref(answers);
        return opts_fail("--answers must be a JSON array of arrays of strings, e.g. "
                         "'[[\"yes\"]]'");
    }
    json_t *body = json_object();
    if (!body || json_object_set_new(body, "answers", answers) != 0) {
        json_decref(body);
        return cmd_api_nomem();
    }
    return cmd_api_call(c, "POST",
                        cmd_api_path("/v1/sessions/%s/questions/%s/reply", a->pos[0], a->pos[1]),
                        body);
}

static int cmd_api_sessions_reject_question(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "POST",
                        cmd_api_path("/v1/sessions/%s/questions/%s/reject", a->pos[0], a->pos[1]),
                        NULL);
}

static int cmd_api_sessions_reply_permission(client_t *c, const struct cmd_api_args *a)
{
    const char *reply = a->v[CMD_API_REPLY];
    if (strcmp(reply, "once") != 0 && strcmp(reply, "always") != 0 &&
        strcmp(reply, "reject") != 0)
        return opts_fail("--reply must be once, always or reject, not '%s'", reply);
    const char *kv[] = { "reply", reply };
    json_t *body = cmd_api_object(kv, 2);
    if (!body)
        return cmd_api_nomem();
    return cmd_api_call(
        c, "POST", cmd_api_path("/v1/sessions/%s/permissions/%s/reply", a->pos[0], a->pos[1]),
        body);
}

/* The ProcessCreateRequest or ProcessRunRequest of a command line (new). */
static json_t *cmd_api_process_request(const struct cmd_api_args *a)
{
    json_t *args = json_array();
    json_t *body = json_pack("{s:s,s:o}", "command", a->rest[0], "args", args);
    for (int i = 1; body && i < a->nrest; i++)
        if (json_array_append_new(args, json_string(a->rest[i])) != 0) {
            json_decref(body);
            return NULL;
        }
    if (body && a->v[CMD_API_CWD] &&
        json_object_set_new(body, "cwd", json_string(a->v[CMD_API_CWD])) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* Sets body[key] to the number in `text` (already checked by the parser). */
static int cmd_api_set_number(json_t *body, const char *key, const char *text)
{
    if (!text)
        return 0;
    return json_object_set_new(body, key, json_integer(strtoll(text, NULL, 10)));
}

static int cmd_api_processes_run(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = cmd_api_process_request(a);
    if (!body || cmd_api_set_number(body, "timeoutMs", a->v[CMD_API_TIMEOUT_MS]) != 0 ||
        cmd_api_set_number(body, "maxOutputBytes", a->v[CMD_API_MAX_OUTPUT]) != 0) {
        json_decref(body);
        return cmd_api_nomem();
    }
    return cmd_api_call(c, "POST", cmd_api_path("/v1/processes/run", NULL, NULL), body);
}

static int cmd_api_processes_start(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = cmd_api_process_request(a);
    if (!body ||
        (a->v[CMD_API_TTY] && json_object_set_new(body, "tty", json_true()) != 0) ||
        (a->v[CMD_API_INTERACTIVE] &&
         json_object_set_new(body, "interactive", json_true()) != 0)) {
        json_decref(body);
        return cmd_api_nomem();
    }
    return cmd_api_call(c, "POST", cmd_api_path("/v1/processes", NULL, NULL), body);
}

static int cmd_api_processes_ls(client_t *c, const struct cmd_api_args *a)
{
    (void)a; /* no arguments */
    return cmd_api_call(c, "GET", cmd_api_path("/v1/processes", NULL, NULL), NULL);
}

static int cmd_api_processes_get(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "GET", cmd_api_path("/v1/processes/%s", a->pos[0], NULL), NULL);
}

static int cmd_api_processes_rm(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "DELETE", cmd_api_path("/v1/processes/%s", a->pos[0], NULL), NULL);
}

/* stop or kill, with ?waitMs= when asked. */
static int cmd_api_processes_signal(client_t *c, const struct cmd_api_args *a, const char *verb)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "/v1/processes/%%s/%s", verb);
    char *path = cmd_api_path(pattern, a->pos[0], NULL);
    if (path && a->v[CMD_API_WAIT_MS]) {
        struct buf b;
        buf_init(&b);
        int rc = buf_printf(&b, "%s?waitMs=%s", path, a->v[CMD_API_WAIT_MS]);
        free(path);
        path = rc ? NULL : buf_steal(&b);
        if (rc)
            buf_free(&b);
    }
    if (!path)
        return cmd_api_nomem();
    return cmd_api_call(c, "POST", path, NULL);
}

static int cmd_api_processes_stop(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_processes_signal(c, a, "stop");
}

static int cmd_api_processes_kill(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_processes_signal(c, a, "kill");
}

static int cmd_api_processes_logs(client_t *c, const struct cmd_api_args *a)
{
    char *base = cmd_api_path("/v1/processes/%s/logs", a->pos[0], NULL);
    if (!base)
        return cmd_api_nomem();
    struct buf b;
    buf_init(&b);
    int rc = buf_puts(&b, base);
    free(base);
    char sep = '?';
    const char *names[] = { "since", "tail", "stream" };
    const char *values[] = { a->v[CMD_API_SINCE], a->v[CMD_API_TAIL], a->v[CMD_API_STREAM] };
    for (size_t i = 0; i < 3 && !rc; i++) {
        if (!values[i])
            continue;
        char *e = client_escape(values[i]);
        rc = e ? buf_printf(&b, "%c%s=%s", sep, names[i], e) : ERR_NOMEM;
        free(e);
        sep = '&';
    }
    if (!rc && a->v[CMD_API_FOLLOW])
        rc = buf_printf(&b, "%cfollow=true", sep);
    if (rc) {
        buf_free(&b);
        return cmd_api_nomem();
    }
    char *path = buf_steal(&b);
    if (!path)
        return cmd_api_nomem();
    if (a->v[CMD_API_FOLLOW])
        return cmd_api_stream(c, "GET", path, NULL);
    return cmd_api_call(c, "GET", path, NULL);
}

static int cmd_api_processes_input(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = json_pack("{s:s,s:s}", "data", a->v[CMD_API_DATA], "encoding",
                             a->v[CMD_API_BASE64] ? "base64" : "utf8");
    if (!body)
        return cmd_api_nomem();
    return cmd_api_call(c, "POST", cmd_api_path("/v1/processes/%s/input", a->pos[0], NULL),
                        body);
}

/* api config mcp|skills get|set|rm: /v1/config/{kind}?directory=&{name_key}=. */
static int cmd_api_config(client_t *c, const struct cmd_api_args *a, const char *kind,
                          const char *name_key)
{
    const char *action = a->pos[0];
    const char *method = strcmp(action, "get") == 0   ? "GET"
                         : strcmp(action, "set") == 0 ? "PUT"
                         : strcmp(action, "rm") == 0  ? "DELETE"
                                                      : NULL;
    if (!method)
        return opts_fail("'api config %s' takes get, set or rm, not '%s'", kind, action);
    json_t *body = NULL;
    if (strcmp(method, "PUT") == 0) {
        if (!a->v[CMD_API_CONFIG])
            return opts_fail("'api config %s set' needs --config JSON", kind);
        json_error_t jerr;
        body = json_loads(a->v[CMD_API_CONFIG], JSON_PRESERVE_ORDER, &jerr);
        if (!json_is_object(body)) {
            json_decref(body);
            return opts_fail("--config must be a JSON object (%s)",
                             body ? "not an object" : jerr.text);
        }
    } else if (a->v[CMD_API_CONFIG]) {
        return opts_fail("--config is for 'api config %s set' only", kind);
    }
    char *dir = client_escape(a->v[CMD_API_DIRECTORY]);
    char *name = client_escape(a->v[CMD_API_NAME]);
    struct buf b;
    buf_init(&b);
    int rc = !dir || !name ||
             buf_printf(&b, "/v1/config/%s?directory=%s&%s=%s", kind, dir, name_key, name);
    free(dir);
    free(name);
    if (rc) {
        buf_free(&b);
        json_decref(body);
        return cmd_api_nomem();
    }
    return cmd_api_call(c, method, buf_steal(&b), body);
}

static int cmd_api_config_mcp(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_config(c, a, "mcp", "mcpName");
}

static int cmd_api_config_skills(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_config(c, a, "skills", "skillName");
}

/* ---- fs: the workspace's files ------------------------------------------------ */

/* new (free()): `route` + "?path=<p>" (percent-encoded) + `extra`. */
static char *cmd_api_fs_path(const char *route, const char *p, const char *extra)
{
    char *e = client_escape(p);
    struct buf b;
    buf_init(&b);
    int rc = e ? buf_printf(&b, "%s?path=%s%s", route, e, extra ? extra : "") : ERR_NOMEM;
    free(e);
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

/* A raw transfer: `in` (may be NULL) sent, a 2xx body to `out` (NULL: the
 * JSON answer printed).  Takes `path`. */
static int cmd_api_fs_transfer(client_t *c, const char *method, char *path, FILE *in,
                               long long in_size, const char *type, FILE *out)
{
    if (!path)
        return cmd_api_nomem();
    struct client_response r;
    struct err err;
    err_clear(&err);
    int rc = client_transfer(c, method, path, in, in_size, type, out, &r, &err);
    free(path);
    if (rc)
        return cmd_api_failed(&err);
    if (r.status < 200 || r.status >= 300)
        rc = cmd_api_problem(&r);
    else if (out && (fflush(out) != 0 || ferror(out))) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        rc = 1;
    } else if (!out)
        rc = cmd_api_print_body(&r);
    client_response_clear(&r);
    return rc;
}

/* Opens --input (or stdin) for an upload; *size is its size when known. */
static FILE *cmd_api_fs_input(const struct cmd_api_args *a, long long *size)
{
    const char *name = a->v[CMD_API_INPUT];
    FILE *in = name && strcmp(name, "-") != 0 ? fopen(name, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "sandbox-journal: cannot open %s: %s\n", name, strerror(errno));
        return NULL;
    }
    struct stat st;
    *size = fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    return in;
}

static int cmd_api_fs_ls(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "GET", cmd_api_fs_path("/v1/fs/entries", a->pos[0], NULL), NULL);
}

static int cmd_api_fs_stat(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "GET", cmd_api_fs_path("/v1/fs/stat", a->pos[0], NULL), NULL);
}

static int cmd_api_fs_mkdir(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "POST", cmd_api_fs_path("/v1/fs/mkdir", a->pos[0], NULL), NULL);
}

static int cmd_api_fs_rm(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_call(c, "DELETE",
                        cmd_api_fs_path("/v1/fs/entry", a->pos[0],
                                        a->v[CMD_API_RECURSIVE] ? "&recursive=true" : NULL),
                        NULL);
}

static int cmd_api_fs_mv(client_t *c, const struct cmd_api_args *a)
{
    json_t *body = json_pack("{s:s,s:s,s:b}", "from", a->pos[0], "to", a->pos[1], "overwrite",
                             a->v[CMD_API_OVERWRITE] != NULL);
    if (!body)
        return cmd_api_nomem();
    return cmd_api_call(c, "POST", cmd_api_path("/v1/fs/move", NULL, NULL), body);
}

static int cmd_api_fs_cat(client_t *c, const struct cmd_api_args *a)
{
    const char *name = a->v[CMD_API_OUTPUT];
    FILE *out = name && strcmp(name, "-") != 0 ? fopen(name, "wb") : stdout;
    if (!out) {
        fprintf(stderr, "sandbox-journal: cannot create %s: %s\n", name, strerror(errno));
        return 1;
    }
    int rc = cmd_api_fs_transfer(c, "GET", cmd_api_fs_path("/v1/fs/file", a->pos[0], NULL),
                                 NULL, -1, NULL, out);
    if (out != stdout && fclose(out) != 0 && !rc) {
        fprintf(stderr, "sandbox-journal: cannot write %s: %s\n", name, strerror(errno));
        rc = 1;
    }
    return rc;
}

static int cmd_api_fs_upload_from(client_t *c, const struct cmd_api_args *a, const char *method,
                                  char *path, const char *type)
{
    long long size;
    FILE *in = cmd_api_fs_input(a, &size);
    if (!in) {
        free(path);
        return 1;
    }
    int rc = cmd_api_fs_transfer(c, method, path, in, size, type, NULL);
    if (in != stdin && fclose(in) != 0)
        fprintf(stderr, "sandbox-journal: cannot close %s\n", a->v[CMD_API_INPUT]);
    return rc;
}

static int cmd_api_fs_put(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_fs_upload_from(c, a, "PUT", cmd_api_fs_path("/v1/fs/file", a->pos[0], NULL),
                                  "application/octet-stream");
}

static int cmd_api_fs_upload(client_t *c, const struct cmd_api_args *a)
{
    return cmd_api_fs_upload_from(c, a, "POST",
                                  cmd_api_fs_path("/v1/fs/upload-batch", a->pos[0], NULL),
                                  "application/x-tar");
}

/* ---- the table -------------------------------------------------------------- */

static const struct cmd_api_option cmd_api_no_opts[] = { { NULL, NULL, 0, 0, 0 } };

static const struct cmd_api_option cmd_api_install_opts[] = {
    { "--reinstall", "-r", 0, CMD_API_REINSTALL, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_create_opts[] = {
    { "--agent", "-a", 1, CMD_API_AGENT, 1 },
    { "--agent-mode", "-g", 1, CMD_API_AGENT_MODE, 0 },
    { "--permission-mode", "-p", 1, CMD_API_PERMISSION_MODE, 0 },
    { "--model", "-m", 1, CMD_API_MODEL, 0 },
    { "--variant", "-v", 1, CMD_API_VARIANT, 0 },
    { "--agent-version", "-A", 1, CMD_API_AGENT_VERSION, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_message_opts[] = {
    { "--message", "-m", 1, CMD_API_MESSAGE, 1 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_message_stream_opts[] = {
    { "--message", "-m", 1, CMD_API_MESSAGE, 1 },
    { "--include-raw", NULL, 0, CMD_API_INCLUDE_RAW, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_events_opts[] = {
    { "--offset", "-o", 1, CMD_API_OFFSET, 0 },
    { "--limit", "-l", 1, CMD_API_LIMIT, 0 },
    { "--include-raw", NULL, 0, CMD_API_INCLUDE_RAW, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_events_sse_opts[] = {
    { "--offset", "-o", 1, CMD_API_OFFSET, 0 },
    { "--include-raw", NULL, 0, CMD_API_INCLUDE_RAW, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_answers_opts[] = {
    { "--answers", "-a", 1, CMD_API_ANSWERS, 1 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_reply_opts[] = {
    { "--reply", "-r", 1, CMD_API_REPLY, 1 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_run_opts[] = {
    { "--timeout-ms", NULL, 1, CMD_API_TIMEOUT_MS, 0 },
    { "--max-output-bytes", NULL, 1, CMD_API_MAX_OUTPUT, 0 },
    { "--cwd", NULL, 1, CMD_API_CWD, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_start_opts[] = {
    { "--tty", NULL, 0, CMD_API_TTY, 0 },
    { "--interactive", "-i", 0, CMD_API_INTERACTIVE, 0 },
    { "--cwd", NULL, 1, CMD_API_CWD, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_wait_opts[] = {
    { "--wait-ms", "-w", 1, CMD_API_WAIT_MS, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_logs_opts[] = {
    { "--since", NULL, 1, CMD_API_SINCE, 0 },
    { "--tail", NULL, 1, CMD_API_TAIL, 0 },
    { "--stream", NULL, 1, CMD_API_STREAM, 0 },
    { "--follow", "-f", 0, CMD_API_FOLLOW, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_input_opts[] = {
    { "--data", "-d", 1, CMD_API_DATA, 1 },
    { "--base64", NULL, 0, CMD_API_BASE64, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_config_opts[] = {
    { "--directory", "-d", 1, CMD_API_DIRECTORY, 1 },
    { "--name", "-N", 1, CMD_API_NAME, 1 },
    { "--config", "-c", 1, CMD_API_CONFIG, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_fs_rm_opts[] = {
    { "--recursive", "-r", 0, CMD_API_RECURSIVE, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_fs_mv_opts[] = {
    { "--overwrite", "-f", 0, CMD_API_OVERWRITE, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_fs_in_opts[] = {
    { "--input", "-i", 1, CMD_API_INPUT, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_option cmd_api_fs_out_opts[] = {
    { "--output", "-o", 1, CMD_API_OUTPUT, 0 },
    { NULL, NULL, 0, 0, 0 },
};

static const struct cmd_api_sub cmd_api_subs[] = {
    { "agents", "list", "", "list all agents and their install status", 0, cmd_api_no_opts,
      "GET /v1/agents.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api agents list\n"
      "  sandbox-journal api agents list | jq -r '.agents[].id'\n",
      cmd_api_agents_list },
    { "agents", "install", "AGENT [--reinstall]", "install or reinstall an agent", 1,
      cmd_api_install_opts,
      "POST /v1/agents/{agent}/install.\n"
      "\n"
      "options:\n"
      "  -r, --reinstall          install again even if it is installed\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api agents install claude\n"
      "  sandbox-journal api agents install codex --reinstall\n",
      cmd_api_agents_install },
    { "agents", "modes", "AGENT", "show the modes an agent offers", 1, cmd_api_no_opts,
      "GET /v1/agents/{agent}/modes.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api agents modes mock\n",
      cmd_api_agents_modes },
    { "sessions", "list", "", "list the sessions, newest first", 0, cmd_api_no_opts,
      "GET /v1/sessions.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions list\n",
      cmd_api_sessions_list },
    { "sessions", "create", "SESSION_ID --agent AGENT [options]",
      "create a session for an agent", 1, cmd_api_create_opts,
      "POST /v1/sessions/{session_id}; prints {\"healthy\":..,\"nativeSessionId\":..}.\n"
      "\n"
      "options:\n"
      "  -a, --agent AGENT            the agent (required): claude, codex, opencode,\n"
      "                               amp or mock\n"
      "  -g, --agent-mode MODE        the agent's mode (see 'api agents modes')\n"
      "  -p, --permission-mode MODE   default, plan or bypass\n"
      "  -m, --model MODEL            model override\n"
      "  -v, --variant VARIANT        model variant\n"
      "  -A, --agent-version VERSION  agent version\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions create demo --agent mock\n"
      "  sandbox-journal api sessions create fix-42 -a claude -g code -p default\n",
      cmd_api_sessions_create },
    { "sessions", "send-message", "SESSION_ID --message TEXT",
      "send a message to a session", 1, cmd_api_message_opts,
      "POST /v1/sessions/{session_id}/messages; returns once the message is journaled.\n"
      "\n"
      "options:\n"
      "  -m, --message TEXT       the message (required)\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions send-message demo --message 'Summarize the repo'\n",
      cmd_api_sessions_send },
    { "sessions", "send-message-stream", "SESSION_ID --message TEXT [--include-raw]",
      "send a message and stream that turn's events", 1, cmd_api_message_stream_opts,
      "POST /v1/sessions/{session_id}/messages/stream: prints each event of the turn\n"
      "on its own line and ends with the turn (Ctrl-C stops earlier, exit 0).\n"
      "\n"
      "options:\n"
      "  -m, --message TEXT       the message (required)\n"
      "      --include-raw        include the agent's native payloads\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions send-message-stream demo -m 'Help me debug this'\n"
      "  sandbox-journal api sessions send-message-stream demo -m hi | jq -r .type\n",
      cmd_api_sessions_send_stream },
    { "sessions", "terminate", "SESSION_ID", "terminate a session", 1, cmd_api_no_opts,
      "POST /v1/sessions/{session_id}/terminate.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions terminate demo\n",
      cmd_api_sessions_terminate },
    { "sessions", "events", "SESSION_ID [--offset N] [--limit N] [--include-raw]",
      "fetch a page of a session's events", 1, cmd_api_events_opts,
      "GET /v1/sessions/{session_id}/events; prints {\"events\":[...],\"hasMore\":..}.\n"
      "'get-messages' is another name for this command.\n"
      "\n"
      "options:\n"
      "  -o, --offset N           the last sequence already seen (events after it)\n"
      "  -l, --limit N            at most N events\n"
      "      --include-raw        include the agent's native payloads\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions events demo --offset 0 --limit 50\n",
      cmd_api_sessions_events },
    { "sessions", "get-messages", "SESSION_ID [--offset N] [--limit N] [--include-raw]",
      "the same as events", 1, cmd_api_events_opts,
      "GET /v1/sessions/{session_id}/events (another name for 'events').\n"
      "\n"
      "options:\n"
      "  -o, --offset N           the last sequence already seen (events after it)\n"
      "  -l, --limit N            at most N events\n"
      "      --include-raw        include the agent's native payloads\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions get-messages demo\n",
      cmd_api_sessions_events },
    { "sessions", "events-sse", "SESSION_ID [--offset N] [--include-raw]",
      "follow a session's events live", 1, cmd_api_events_sse_opts,
      "GET /v1/sessions/{session_id}/events/sse: prints every event, one per line, then\n"
      "each new one as it is journaled, until Ctrl-C (exit 0).\n"
      "\n"
      "options:\n"
      "  -o, --offset N           start after sequence N (default: from the first)\n"
      "      --include-raw        include the agent's native payloads\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions events-sse demo\n"
      "  sandbox-journal api sessions events-sse demo --offset 120 | jq -c .data\n",
      cmd_api_sessions_events_sse },
    { "sessions", "reply-question", "SESSION_ID QUESTION_ID --answers JSON",
      "answer a question the agent asked", 2, cmd_api_answers_opts,
      "POST /v1/sessions/{session_id}/questions/{question_id}/reply.\n"
      "\n"
      "options:\n"
      "  -a, --answers JSON       the answers, a JSON array of arrays of strings\n"
      "                           (required)\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions reply-question demo q1 --answers '[[\"yes\"]]'\n",
      cmd_api_sessions_reply_question },
    { "sessions", "reject-question", "SESSION_ID QUESTION_ID",
      "decline to answer a question", 2, cmd_api_no_opts,
      "POST /v1/sessions/{session_id}/questions/{question_id}/reject.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions reject-question demo q1\n",
      cmd_api_sessions_reject_question },
    { "sessions", "reply-permission", "SESSION_ID PERMISSION_ID --reply once|always|reject",
      "grant or refuse a permission request", 2, cmd_api_reply_opts,
      "POST /v1/sessions/{session_id}/permissions/{permission_id}/reply.\n"
      "\n"
      "options:\n"
      "  -r, --reply REPLY        once, always or reject (required)\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api sessions reply-permission demo perm1 --reply once\n",
      cmd_api_sessions_reply_permission },
    { "processes", "run", "[options] COMMAND [ARG...]",
      "run a program to completion and print its output", CMD_API_REST, cmd_api_run_opts,
      "POST /v1/processes/run; prints exitCode, stdout, stderr, timedOut.  Everything\n"
      "from COMMAND on is the command line (put '--' before it if COMMAND starts with '-').\n"
      "\n"
      "options:\n"
      "  --timeout-ms N           kill it after N ms (the server caps it)\n"
      "  --max-output-bytes N     keep at most N bytes of stdout and of stderr\n"
      "  --cwd DIR                its working directory\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes run -- make test\n"
      "  sandbox-journal api processes run --timeout-ms 5000 sh -c 'ls | wc -l'\n",
      cmd_api_processes_run },
    { "processes", "start", "[options] COMMAND [ARG...]",
      "start a long-lived process with a journaled log", CMD_API_REST, cmd_api_start_opts,
      "POST /v1/processes; prints its ProcessInfo (its id for the other commands).\n"
      "\n"
      "options:\n"
      "  --tty                    give it a pseudo-terminal\n"
      "  -i, --interactive        keep its stdin open for 'input'\n"
      "  --cwd DIR                its working directory\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes start -- npm run dev\n"
      "  sandbox-journal api processes start --interactive cat\n",
      cmd_api_processes_start },
    { "processes", "ls", "", "list the processes, running and exited", 0, cmd_api_no_opts,
      "GET /v1/processes.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes ls | jq -r '.processes[].id'\n",
      cmd_api_processes_ls },
    { "processes", "get", "PROCESS_ID", "show one process", 1, cmd_api_no_opts,
      "GET /v1/processes/{id}.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes get proc_1\n",
      cmd_api_processes_get },
    { "processes", "stop", "PROCESS_ID [--wait-ms N]",
      "end a process: stdin EOF, SIGTERM, then SIGKILL", 1, cmd_api_wait_opts,
      "POST /v1/processes/{id}/stop.\n"
      "\n"
      "options:\n"
      "  -w, --wait-ms N          wait up to N ms for it to exit\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes stop proc_1 --wait-ms 2000\n",
      cmd_api_processes_stop },
    { "processes", "kill", "PROCESS_ID [--wait-ms N]", "send a process SIGKILL", 1,
      cmd_api_wait_opts,
      "POST /v1/processes/{id}/kill.\n"
      "\n"
      "options:\n"
      "  -w, --wait-ms N          wait up to N ms for it to exit\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes kill proc_1\n",
      cmd_api_processes_kill },
    { "processes", "rm", "PROCESS_ID", "delete an exited process and its log", 1,
      cmd_api_no_opts,
      "DELETE /v1/processes/{id}.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes rm proc_1\n",
      cmd_api_processes_rm },
    { "processes", "logs", "PROCESS_ID [options]", "print or follow a process's log", 1,
      cmd_api_logs_opts,
      "GET /v1/processes/{id}/logs: ProcessLogEntry records, data in base64.\n"
      "\n"
      "options:\n"
      "  --since N                only entries after sequence N\n"
      "  --tail N                 only the last N entries\n"
      "  --stream S               stdout, stderr, combined (default) or pty\n"
      "  -f, --follow             stream new entries as they come (until it exits)\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes logs proc_1 --tail 10\n"
      "  sandbox-journal api processes logs proc_1 --follow\n",
      cmd_api_processes_logs },
    { "processes", "input", "PROCESS_ID --data TEXT [--base64]",
      "write to an interactive process's stdin", 1, cmd_api_input_opts,
      "POST /v1/processes/{id}/input.\n"
      "\n"
      "options:\n"
      "  -d, --data TEXT          what to write (required)\n"
      "  --base64                 TEXT is base64 (for bytes that are not text)\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api processes input proc_1 --data $'hello\\n'\n",
      cmd_api_processes_input },
    { "config", "mcp", "get|set|rm --directory DIR --name NAME [--config JSON]",
      "show, set or remove an MCP server of a directory", 1, cmd_api_config_opts,
      "GET, PUT or DELETE /v1/config/mcp?directory=DIR&mcpName=NAME.\n"
      "Sessions created in DIR afterwards start their agent with its MCP servers.\n"
      "\n"
      "options:\n"
      "  -d, --directory DIR      the directory (required; relative to the server's)\n"
      "  -N, --name NAME          the server's name (required)\n"
      "  -c, --config JSON        for set: an McpServerConfig, {\"type\":\"local\",\n"
      "                           \"command\":..,\"args\":[..]} or {\"type\":\"remote\",\"url\":..}\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api config mcp set -d /work/app -N files \\\n"
      "      --config '{\"type\":\"local\",\"command\":\"npx\",\"args\":[\"mcp-files\"]}'\n"
      "  sandbox-journal api config mcp get -d /work/app -N files\n"
      "  sandbox-journal api config mcp rm -d /work/app -N files\n",
      cmd_api_config_mcp },
    { "config", "skills", "get|set|rm --directory DIR --name NAME [--config JSON]",
      "show, set or remove a skills entry of a directory", 1, cmd_api_config_opts,
      "GET, PUT or DELETE /v1/config/skills?directory=DIR&skillName=NAME.\n"
      "\n"
      "options:\n"
      "  -d, --directory DIR      the directory (required; relative to the server's)\n"
      "  -N, --name NAME          the entry's name (required)\n"
      "  -c, --config JSON        for set: a SkillsConfig, {\"sources\":[{\"type\":..,\n"
      "                           \"source\":..}]}\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api config skills set -d /work/app -N house \\\n"
      "      --config '{\"sources\":[{\"type\":\"local\",\"source\":\"/srv/skills\"}]}'\n"
      "  sandbox-journal api config skills get -d /work/app -N house\n",
      cmd_api_config_skills },
    { "fs", "ls", "PATH", "list a directory of the server's workspace", 1, cmd_api_no_opts,
      "GET /v1/fs/entries?path=PATH.  Paths are absolute or relative to the server's\n"
      "working directory.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs ls .\n"
      "  sandbox-journal api fs ls /work/repo | jq -r '.[].name'\n",
      cmd_api_fs_ls },
    { "fs", "cat", "PATH [--output FILE]", "print a file's bytes", 1, cmd_api_fs_out_opts,
      "GET /v1/fs/file?path=PATH, streamed to stdout as it arrives.\n"
      "\n"
      "options:\n"
      "  -o, --output FILE        write to FILE instead of stdout\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs cat notes.txt\n"
      "  sandbox-journal api fs cat build/app.bin -o app.bin\n",
      cmd_api_fs_cat },
    { "fs", "put", "PATH [--input FILE]", "write a file from stdin or FILE", 1,
      cmd_api_fs_in_opts,
      "PUT /v1/fs/file?path=PATH with the bytes streamed from stdin or FILE; the server\n"
      "creates the parents and replaces the file atomically.\n"
      "\n"
      "options:\n"
      "  -i, --input FILE         read FILE instead of stdin\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs put /work/data.bin --input data.bin\n"
      "  echo hello | sandbox-journal api fs put notes.txt\n",
      cmd_api_fs_put },
    { "fs", "rm", "PATH [--recursive]", "delete a file or directory", 1, cmd_api_fs_rm_opts,
      "DELETE /v1/fs/entry?path=PATH.\n"
      "\n"
      "options:\n"
      "  -r, --recursive          delete a directory with everything in it\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs rm notes.txt\n"
      "  sandbox-journal api fs rm build --recursive\n",
      cmd_api_fs_rm },
    { "fs", "mkdir", "PATH", "create a directory and its parents", 1, cmd_api_no_opts,
      "POST /v1/fs/mkdir?path=PATH.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs mkdir work/data\n",
      cmd_api_fs_mkdir },
    { "fs", "mv", "FROM TO [--overwrite]", "move or rename a file or directory", 2,
      cmd_api_fs_mv_opts,
      "POST /v1/fs/move {\"from\": FROM, \"to\": TO, \"overwrite\": ...}.\n"
      "\n"
      "options:\n"
      "  -f, --overwrite          replace TO if it exists\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs mv notes.txt notes-old.txt --overwrite\n",
      cmd_api_fs_mv },
    { "fs", "stat", "PATH", "show a path's type, size and modification time", 1,
      cmd_api_no_opts,
      "GET /v1/fs/stat?path=PATH.\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs stat notes.txt\n",
      cmd_api_fs_stat },
    { "fs", "upload", "DIR [--input TAR]", "unpack a tar archive into a directory", 1,
      cmd_api_fs_in_opts,
      "POST /v1/fs/upload-batch?path=DIR with the archive streamed from stdin or TAR.\n"
      "Members that would land outside DIR are refused.\n"
      "\n"
      "options:\n"
      "  -i, --input TAR          read TAR instead of stdin\n"
      "\n"
      "examples:\n"
      "  sandbox-journal api fs upload /work/repo --input repo.tar\n"
      "  tar -cf - -C ./skills . | sandbox-journal api fs upload ./skills\n",
      cmd_api_fs_upload },
};

#define CMD_API_NSUBS (sizeof cmd_api_subs / sizeof cmd_api_subs[0])

static const char cmd_api_globals_help[] =
    "global options (anywhere after 'api'):\n"
    "  -e, --endpoint URL       the server (default " CMD_API_DEFAULT_ENDPOINT ")\n"
    "  -t, --token TOKEN        send 'Authorization: Bearer TOKEN'\n"
    "  -n, --no-token           send no token, even if --token is given\n"
    "      --idempotency-key K  send 'Idempotency-Key: K': a POST repeated with the\n"
    "                           same key is carried out once (see the API docs)\n"
    "  -h, --help               show help\n";

/* ---- help ------------------------------------------------------------------- */

static void cmd_api_list_subs(FILE *out, const char *group)
{
    const char *last = NULL;
    for (size_t i = 0; i < CMD_API_NSUBS; i++) {
        const struct cmd_api_sub *s = &cmd_api_subs[i];
        if (group && strcmp(group, s->group) != 0)
            continue;
        if (!last || strcmp(last, s->group) != 0)
            fprintf(out, "%s%s commands:\n", last ? "\n" : "", s->group);
        last = s->group;
        fprintf(out, "  %-20s %s\n", s->name, s->summary);
    }
}

static void cmd_api_help_top(FILE *out)
{
    fputs("usage: sandbox-journal api [global options] <agents|sessions|processes|fs|config> "
          "<command> [args]\n"
          "\n"
          "Calls a running server's v1 HTTP API and prints its answer: JSON as the server\n"
          "sent it (indented on a terminal), streams one event per line.  Errors print\n"
          "the problem's title and detail on stderr and exit 1.\n"
          "\n",
          out);
    cmd_api_list_subs(out, NULL);
    fputs("\n", out);
    fputs(cmd_api_globals_help, out);
    fputs("\n"
          "examples:\n"
          "  sandbox-journal api sessions create demo --agent mock\n"
          "  sandbox-journal api sessions send-message-stream demo --message hello\n"
          "  sandbox-journal api -e http://10.0.0.5:2468 -t \"$TOKEN\" agents list\n"
          "\n"
          "'sandbox-journal api <agents|sessions|processes|fs|config> <command> --help' describes "
          "a command.\n",
          out);
}

static void cmd_api_help_group(FILE *out, const char *group)
{
    fprintf(out, "usage: sandbox-journal api %s <command> [args] [global options]\n\n", group);
    cmd_api_list_subs(out, group);
    fputs("\n", out);
    fputs(cmd_api_globals_help, out);
    /* The group's first command, as the example. */
    const struct cmd_api_sub *first = cmd_api_subs;
    while (strcmp(first->group, group) != 0)
        first++;
    fprintf(out, "\nexamples:\n  sandbox-journal api %s %s%s%s\n"
                 "\n'sandbox-journal api %s <command> --help' describes a command.\n",
            group, first->name, first->synopsis[0] ? " " : "", first->synopsis, group);
}

static void cmd_api_help_sub(FILE *out, const struct cmd_api_sub *s)
{
    char summary[128];
    snprintf(summary, sizeof summary, "%s", s->summary);
    summary[0] = (char)toupper((unsigned char)summary[0]);
    fprintf(out, "usage: sandbox-journal api %s %s%s%s [global options]\n\n%s: %s\n",
            s->group, s->name, s->synopsis[0] ? " " : "", s->synopsis, summary, s->details);
    fputs(cmd_api_globals_help, out);
}

/* ---- parsing ---------------------------------------------------------------- */

static int cmd_api_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* 1 if argv[*i] was a global option (consumed), 0 if not, or an exit status
 * (via *status) for a missing value. */
static int cmd_api_global(int argc, char **argv, int *i, struct cmd_api_args *a, int *status)
{
    const char *v = NULL;
    int missing = 0;
    const char *name = argv[*i];
    if (opts_match(argc, argv, i, "--endpoint", "-e", 1, &v, &missing)) {
        a->endpoint = v;
    } else if (opts_match(argc, argv, i, "--token", "-t", 1, &v, &missing)) {
        a->token = v;
        if (!missing && !*v)
            *status = opts_fail("--token must not be empty");
    } else if (opts_match(argc, argv, i, "--no-token", "-n", 0, &v, &missing)) {
        a->no_token = 1;
    } else if (opts_match(argc, argv, i, "--idempotency-key", NULL, 1, &v, &missing)) {
        a->idem_key = v;
    } else {
        return 0;
    }
    if (missing)
        *status = opts_fail("%s needs a value", name);
    return 1;
}

static const struct cmd_api_sub *cmd_api_find(const char *group, const char *name)
{
    for (size_t i = 0; i < CMD_API_NSUBS; i++)
        if (strcmp(cmd_api_subs[i].group, group) == 0 && strcmp(cmd_api_subs[i].name, name) == 0)
            return &cmd_api_subs[i];
    return NULL;
}

/* Parses a subcommand's arguments from argv[i].  0, -1 after printing help,
 * or an exit status. */
static int cmd_api_parse_sub(const struct cmd_api_sub *s, int argc, char **argv, int i,
                             struct cmd_api_args *a)
{
    int only_positional = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        int status = 0;
        if (!only_positional && strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (!only_positional && cmd_api_is_help(arg)) {
            cmd_api_help_sub(stdout, s);
            return -1;
        }
        if (!only_positional && arg[0] == '-' && arg[1]) {
            if (cmd_api_global(argc, argv, &i, a, &status)) {
                if (status)
                    return status;
                continue;
            }
            const struct cmd_api_option *o = s->opts;
            const char *v = NULL;
            int missing = 0;
            for (; o->longname; o++)
                if (opts_match(argc, argv, &i, o->longname, o->shortname, o->takes_value, &v,
                               &missing))
                    break;
            if (!o->longname)
                return opts_fail("unknown option '%s' for 'api %s %s' (see --help)", arg,
                                 s->group, s->name);
            if (missing)
                return opts_fail("%s needs a value", arg);
            a->v[o->slot] = o->takes_value ? v : "1";
            continue;
        }
        if (s->npos == CMD_API_REST) {
            /* The command line: the rest of argv, its options included. */
            a->rest = argv + i;
            a->nrest = argc - i;
            break;
        }
        if (a->npos == s->npos)
            return opts_fail("unexpected argument '%s' for 'api %s %s' (see --help)", arg,
                             s->group, s->name);
        a->pos[a->npos++] = arg;
    }
    if (s->npos == CMD_API_REST && !a->nrest)
        return opts_fail("'api %s %s' needs COMMAND (see --help)", s->group, s->name);
    if (a->npos < s->npos)
        return opts_fail("'api %s %s' needs %s (see --help)", s->group, s->name, s->synopsis);
    for (const struct cmd_api_option *o = s->opts; o->longname; o++)
        if (o->required && !a->v[o->slot])
            return opts_fail("'api %s %s' needs %s (see --help)", s->group, s->name,
                             o->longname);
    unsigned long n;
    if (a->v[CMD_API_OFFSET] && opts_uint(a->v[CMD_API_OFFSET], ULONG_MAX, &n) != 0)
        return opts_fail("--offset must be a number, not '%s'", a->v[CMD_API_OFFSET]);
    if (a->v[CMD_API_LIMIT] && opts_uint(a->v[CMD_API_LIMIT], ULONG_MAX, &n) != 0)
        return opts_fail("--limit must be a number, not '%s'", a->v[CMD_API_LIMIT]);
    static const struct {
        enum cmd_api_slot slot;
        const char *name;
    } numbers[] = {
        { CMD_API_TIMEOUT_MS, "--timeout-ms" }, { CMD_API_MAX_OUTPUT, "--max-output-bytes" },
        { CMD_API_WAIT_MS, "--wait-ms" },       { CMD_API_SINCE, "--since" },
        { CMD_API_TAIL, "--tail" },
    };
    for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
        if (a->v[numbers[k].slot] &&
            opts_uint(a->v[numbers[k].slot], (unsigned long)INT64_MAX, &n) != 0)
            return opts_fail("%s must be a number, not '%s'", numbers[k].name,
                             a->v[numbers[k].slot]);
    return 0;
}

int cmd_api(int argc, char **argv)
{
    struct cmd_api_args a = { .endpoint = CMD_API_DEFAULT_ENDPOINT };
    const char *group = NULL;
    const struct cmd_api_sub *sub = NULL;
    int i = 1;
    for (; i < argc && !sub; i++) {
        int status = 0;
        if (cmd_api_is_help(argv[i])) {
            if (group)
                cmd_api_help_group(stdout, group);
            else
                cmd_api_help_top(stdout);
            return 0;
        }
        if (cmd_api_global(argc, argv, &i, &a, &status)) {
            if (status)
                return status;
            continue;
        }
        if (argv[i][0] == '-')
            return opts_fail("unknown option '%s' (see 'sandbox-journal api --help')", argv[i]);
        if (!group) {
            if (strcmp(argv[i], "agents") != 0 && strcmp(argv[i], "sessions") != 0 &&
                strcmp(argv[i], "processes") != 0 && strcmp(argv[i], "fs") != 0 &&
                strcmp(argv[i], "config") != 0)
                return opts_fail("unknown api group '%s': agents, sessions, processes, fs or "
                                 "config (see "
                                 "'sandbox-journal api --help')", argv[i]);
            group = argv[i];
        } else {
            sub = cmd_api_find(group, argv[i]);
            if (!sub)
                return opts_fail("unknown command 'api %s %s' (see 'sandbox-journal api %s "
                                 "--help')", group, argv[i], group);
        }
    }
    if (!group)
        return opts_fail("missing api group: agents, sessions, processes, fs or config (see "
                         "'sandbox-journal api --help')");
    if (!sub)
        return opts_fail("missing command after 'api %s' (see 'sandbox-journal api %s --help')",
                         group, group);
    int rc = cmd_api_parse_sub(sub, argc, argv, i, &a);
    if (rc)
        return rc < 0 ? 0 : rc;

    client_t *c = NULL;
    struct err err;
    err_clear(&err);
    if (client_new(a.endpoint, a.no_token ? NULL : a.token, &c, &err) != 0)
        return err.code == ERR_INVALID ? opts_fail("%s", err.msg) : cmd_api_failed(&err);
    if (a.idem_key && client_set_idempotency_key(c, a.idem_key, &err) != 0) {
        client_free(c);
        return err.code == ERR_INVALID ? opts_fail("%s", err.msg) : cmd_api_failed(&err);
    }
    rc = sub->run(c, &a);
    client_free(c);
    return rc;
}
