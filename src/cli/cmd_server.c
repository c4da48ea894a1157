/* `sandbox-journal server`: the HTTP API on a journal in the data directory,
 * until SIGINT or SIGTERM, then a shutdown in the one order that loses
 * nothing: stop taking requests, stop the agents, drain the journal writer
 * and checkpoint. */
#include "base/datadir.h"
#include "cli/cmd.h"
#include "base/err.h"
#include "export/export.h"
#include "http/http.h"
#include "journal/journal.h"
#include "base/opts.h"
#include "sessions/sessions.h"
#include "agents/install.h"
#include "agents/supervisor.h"
#include "adapters/registry.h"
#include "workspace/processes.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD_SERVER_MAX_LIST 32

struct cmd_server_options {
    const char *host;
    unsigned port;
    const char *token;
    char token_from_file[4097];
    int no_token;
    const char *data_dir;
    const char *agents_dir;
    enum journal_durability durability;
    unsigned mock_delay_ms;
    unsigned threads;
    unsigned long max_body_bytes;
    unsigned long max_upload_bytes;
    unsigned heartbeat_ms;
    unsigned long idem_ttl_s;
    const char *origins[CMD_SERVER_MAX_LIST];
    size_t n_origins;
    const char *methods[CMD_SERVER_MAX_LIST];
    size_t n_methods;
    const char *headers[CMD_SERVER_MAX_LIST];
    size_t n_headers;
    int cors_credentials;
    int no_inspector_cors;
    const char *exports[CMD_SERVER_MAX_LIST];
    size_t n_exports;
    const char *webhook_secret_file;
    unsigned export_batch;
    const char *acp_agents[CMD_SERVER_MAX_LIST];
    size_t n_acp_agents;
};

static const char cmd_server_usage[] =
    "usage: sandbox-journal server [options]\n"
    "\n"
    "Runs the sandbox-agent v1 HTTP API on the journal until SIGINT or SIGTERM.\n"
    "\n"
    "options:\n"
    "  -H, --host ADDR              address to listen on (default 127.0.0.1)\n"
    "  -p, --port N                 port (default 2468; 0 picks a free one)\n"
    "  -t, --token T                require 'Authorization: Bearer T' on every route but\n"
    "                               /v1/health\n"
    "      --token-file PATH        the same, with the token read from PATH (its first\n"
    "                               line), so that it does not show in the process list\n"
    "  -n, --no-token               serve without authentication\n"
    "      --data-dir DIR           where journal.db lives (default\n"
    "                               $XDG_DATA_HOME/sandbox-journal or\n"
    "                               ~/.local/share/sandbox-journal)\n"
    "      --agents-dir DIR         where agent CLIs are installed and looked for\n"
    "                               (default <data dir>/agents)\n"
    "      --durability full|normal fsync every commit (full, default) or let the WAL\n"
    "                               sync at checkpoints (normal)\n"
    "  -O, --cors-allow-origin O    allow a browser origin (repeatable)\n"
    "  -M, --cors-allow-method M    methods a preflight may allow (repeatable)\n"
    "  -A, --cors-allow-header H    headers a preflight may allow (repeatable)\n"
    "  -C, --cors-allow-credentials allow credentials in CORS requests\n"
    "      --no-inspector-cors      do not allow the hosted inspector's origin\n"
    "      --mock-delay-ms N        pause between the mock agent's events (default 200;\n"
    "                               0: each reply is journaled with its message)\n"
    "      --http-threads N         HTTP worker threads (default 16)\n"
    "      --max-body-bytes N       largest request body accepted (default 1048576)\n"
    "      --max-upload-bytes N     largest file or tar upload to /v1/fs (default 1073741824)\n"
    "      --sse-heartbeat-ms N     comment sent on idle event streams (default 15000)\n"
    "      --idempotency-ttl-s N    how long an Idempotency-Key is remembered, in seconds\n"
    "                               (default 86400)\n"
    "      --export-to URL          ship every event to postgres://..., clickhouse+http://...,\n"
    "                               jsonl:PATH or an http(s):// webhook as it commits\n"
    "                               (repeatable; see 'export'; GET /v1/exports shows them)\n"
    "      --webhook-secret-file PATH  the webhooks' signing secret, whsec_<base64 key>\n"
    "      --export-batch N         events per batch or webhook delivery (default 5000)\n"
    "      --acp-agent 'NAME=COMMAND [ARGS...]'  serve one more agent that speaks the Agent\n"
    "                               Client Protocol on its stdio, as agent NAME (one\n"
    "                               argument, split at spaces; repeatable)\n"
    "\n"
    "\n"
    "examples:\n"
    "  sandbox-journal server --no-token\n"
    "  sandbox-journal server --token s3cret --host 0.0.0.0 --data-dir /var/lib/sj\n"
    "  sandbox-journal server --token-file /run/secrets/sj-token\n";

/* GET /v1/exports: `arg` is the exporters array (CMD_SERVER_MAX_LIST
 * entries, NULL after the last), which outlives the listener. */
static int cmd_server_exports_status(void *arg, json_t **out)
{
    export_t *const *exporters = arg;
    json_t *list = json_array();
    for (size_t i = 0; list && i < CMD_SERVER_MAX_LIST && exporters[i]; i++) {
        json_t *one = NULL;
        if (export_status(exporters[i], &one) != 0 || json_array_append_new(list, one) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!list)
        return ERR_NOMEM;
    *out = list;
    return 0;
}

static int cmd_server_append(const char **list, size_t *n, const char *value, const char *what)
{
    if (*n == CMD_SERVER_MAX_LIST)
        return opts_fail("too many %s options", what);
    list[(*n)++] = value;
    return 0;
}

/* The token's first line, without its line ending and the blanks around
 * it (an editor's trailing space or a CRLF would make a token no client
 * can send: HTTP drops them from a header value).  A token given on the
 * command line is readable by every local process in /proc/<pid>/cmdline,
 * agents' tool commands included; one in a file is not. */
static int cmd_server_read_token(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return opts_fail("cannot read --token-file %s: %s", path, strerror(errno));
    int ok = fgets(out, (int)size, f) != NULL;
    int failed = ferror(f);
    if (fclose(f) != 0 || failed)
        return opts_fail("cannot read --token-file %s", path);
    size_t len = ok ? strlen(out) : 0;
    if (len == size - 1 && out[len - 1] != '\n')
        return opts_fail("--token-file %s: the token is longer than %zu bytes", path,
                         size - 2);
    while (len && strchr(" \t\r\n", out[len - 1]))
        out[--len] = '\0';
    size_t lead = strspn(out, " \t");
    memmove(out, out + lead, len - lead + 1);
    len -= lead;
    if (!len)
        return opts_fail("--token-file %s: the first line is empty", path);
    return 0;
}

static int cmd_server_parse(int argc, char **argv, struct cmd_server_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int missing = 0;
        unsigned long n = 0; /* read below even when the value is missing */
        int rc = 0;
        if (opts_match(argc, argv, &i, "--host", "-H", 1, &v, &missing)) {
            o->host = v;
        } else if (opts_match(argc, argv, &i, "--port", "-p", 1, &v, &missing)) {
            if (!missing && opts_uint(v, 65535, &n) != 0)
                return opts_fail("--port must be a number from 0 to 65535, not '%s'", v);
            o->port = (unsigned)n;
        } else if (opts_match(argc, argv, &i, "--token", "-t", 1, &v, &missing)) {
            if (!missing && !*v)
                return opts_fail("--token must not be empty");
            if (!missing && o->token)
                return opts_fail("give the token once: --token or --token-file");
            o->token = v;
        } else if (opts_match(argc, argv, &i, "--token-file", NULL, 1, &v, &missing)) {
            if (!missing && o->token)
                return opts_fail("give the token once: --token or --token-file");
            rc = missing ? 0
                         : cmd_server_read_token(v, o->token_from_file,
                                                 sizeof o->token_from_file);
            o->token = rc ? NULL : o->token_from_file;
        } else if (opts_match(argc, argv, &i, "--no-token", "-n", 0, &v, &missing)) {
            o->no_token = 1;
        } else if (opts_match(argc, argv, &i, "--data-dir", NULL, 1, &v, &missing)) {
            o->data_dir = v;
        } else if (opts_match(argc, argv, &i, "--agents-dir", NULL, 1, &v, &missing)) {
            o->agents_dir = v;
        } else if (opts_match(argc, argv, &i, "--durability", NULL, 1, &v, &missing)) {
            if (missing)
                break;
            if (strcmp(v, "full") == 0)
                o->durability = JOURNAL_DURABILITY_FULL;
            else if (strcmp(v, "normal") == 0)
                o->durability = JOURNAL_DURABILITY_NORMAL;
            else
                return opts_fail("--durability must be full or normal, not '%s'", v);
        } else if (opts_match(argc, argv, &i, "--cors-allow-origin", "-O", 1, &v, &missing)) {
            rc = missing ? 0 : cmd_server_append(o->origins, &o->n_origins, v, "--cors-allow-origin");
        } else if (opts_match(argc, argv, &i, "--cors-allow-method", "-M", 1, &v, &missing)) {
            rc = missing ? 0 : cmd_server_append(o->methods, &o->n_methods, v, "--cors-allow-method");
        } else if (opts_match(argc, argv, &i, "--cors-allow-header", "-A", 1, &v, &missing)) {
            rc = missing ? 0 : cmd_server_append(o->headers, &o->n_headers, v, "--cors-allow-header");
        } else if (opts_match(argc, argv, &i, "--cors-allow-credentials", "-C", 0, &v,
                            &missing)) {
            o->cors_credentials = 1;
        } else if (opts_match(argc, argv, &i, "--no-inspector-cors", NULL, 0, &v, &missing)) {
            o->no_inspector_cors = 1;
        } else if (opts_match(argc, argv, &i, "--export-to", NULL, 1, &v, &missing)) {
            rc = missing ? 0 : cmd_server_append(o->exports, &o->n_exports, v, "--export-to");
        } else if (opts_match(argc, argv, &i, "--webhook-secret-file", NULL, 1, &v, &missing)) {
            o->webhook_secret_file = v;
        } else if (opts_match(argc, argv, &i, "--export-batch", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, EXPORT_MAX_BATCH, &n) != 0 || n == 0))
                return opts_fail("--export-batch must be a number from 1 to %u, not '%s'",
                                 EXPORT_MAX_BATCH, v);
            o->export_batch = (unsigned)n;
        } else if (opts_match(argc, argv, &i, "--acp-agent", NULL, 1, &v, &missing)) {
            rc = missing ? 0 : cmd_server_append(o->acp_agents, &o->n_acp_agents, v,
                                                 "--acp-agent");
        } else if (opts_match(argc, argv, &i, "--no-telemetry", NULL, 0, &v, &missing)) {
            /* Accepted for drop-in compatibility: this server sends no telemetry. */
        } else if (opts_match(argc, argv, &i, "--mock-delay-ms", NULL, 1, &v, &missing)) {
            if (!missing && opts_uint(v, 600000, &n) != 0)
                return opts_fail("--mock-delay-ms must be a number of milliseconds, not '%s'",
                                 v);
            o->mock_delay_ms = (unsigned)n;
        } else if (opts_match(argc, argv, &i, "--http-threads", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, 256, &n) != 0 || n == 0))
                return opts_fail("--http-threads must be a number from 1 to 256, not '%s'", v);
            o->threads = (unsigned)n;
        } else if (opts_match(argc, argv, &i, "--max-body-bytes", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, 1UL << 30, &n) != 0 || n == 0))
                return opts_fail("--max-body-bytes must be a number from 1 to 1073741824, "
                                 "not '%s'", v);
            o->max_body_bytes = n;
        } else if (opts_match(argc, argv, &i, "--max-upload-bytes", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, 1UL << 40, &n) != 0 || n == 0))
                return opts_fail("--max-upload-bytes must be a number from 1 to "
                                 "1099511627776, not '%s'", v);
            o->max_upload_bytes = n;
        } else if (opts_match(argc, argv, &i, "--sse-heartbeat-ms", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, 3600000, &n) != 0 || n < 10))
                return opts_fail("--sse-heartbeat-ms must be a number from 10 to 3600000, "
                                 "not '%s'", v);
            o->heartbeat_ms = (unsigned)n;
        } else if (opts_match(argc, argv, &i, "--idempotency-ttl-s", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, 365UL * 24 * 3600, &n) != 0 || n == 0))
                return opts_fail("--idempotency-ttl-s must be a number of seconds from 1 to "
                                 "31536000, not '%s'", v);
            o->idem_ttl_s = n;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cmd_server_usage, stdout);
            return -1;
        } else {
            return opts_fail("unknown server option '%s' (see 'sandbox-journal server --help')",
                             argv[i]);
        }
        if (missing)
            return opts_fail("%s needs a value", argv[i]);
        if (rc)
            return rc;
    }
    if (!o->token && !o->no_token)
        return opts_fail("missing --token, --token-file or --no-token for server mode");
    if (o->token && o->no_token)
        return opts_fail("--token and --no-token exclude each other");
    return 0;
}

/* Event streams hold a descriptor each: allow as many as the system does. */
static void cmd_server_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "sandbox-journal: could not raise the descriptor limit: %s\n",
                    strerror(errno));
    }
}

int cmd_server(int argc, char **argv)
{
    /* 16 workers: a message's request holds its worker until its commit is
     * durable, so the workers bound how many requests share one fsync.  At
     * 4, 64 clients appending at durability full got 4 requests per commit
     * (docs/benchmarks.md); each worker costs ~160 KiB (stack and reader). */
    struct cmd_server_options o = {
        .host = "127.0.0.1", .port = 2468, .durability = JOURNAL_DURABILITY_FULL,
        .mock_delay_ms = 200, .threads = 16, .max_body_bytes = 1024 * 1024,
        .max_upload_bytes = 1UL << 30,
        .heartbeat_ms = 15000,
    };
    int rc = cmd_server_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    for (size_t i = 0; i < o.n_acp_agents; i++) {
        struct err aerr;
        if (registry_add_acp(o.acp_agents[i], &aerr) != 0)
            return opts_fail("%s", aerr.msg);
    }

    char data_dir[PATH_MAX];
    if (o.data_dir) {
        if (snprintf(data_dir, sizeof data_dir, "%s", o.data_dir) >= (int)sizeof data_dir)
            return opts_fail("--data-dir is too long: %s", o.data_dir);
    } else if (datadir_path(NULL, NULL, data_dir, sizeof data_dir) != 0) {
        return opts_fail("cannot find a data directory: set --data-dir, XDG_DATA_HOME or "
                         "HOME");
    }
    if (datadir_mkdirs(data_dir) != 0) {
        fprintf(stderr, "sandbox-journal: cannot create data directory %s: %s\n", data_dir,
                strerror(errno));
        return 1;
    }
    char db_path[PATH_MAX + 16];
    snprintf(db_path, sizeof db_path, "%s/journal.db", data_dir);

    /* Signals are taken synchronously by this thread alone; every thread
     * started below inherits the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0)
        return opts_fail("cannot block signals");
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return opts_fail("cannot ignore SIGPIPE");
    cmd_server_raise_fd_limit();

    /* Two servers on one journal would each keep their own watermarks and
     * refuse the other's sessions: the second one stops here.  The lock is
     * released after journal_close(), or by the kernel when we die. */
    int lock_fd = -1;
    long holder = 0;
    if (datadir_lock(data_dir, &lock_fd, &holder) != 0) {
        if (errno == EAGAIN && holder)
            fprintf(stderr, "sandbox-journal: data directory %s is in use by another server "
                            "(pid %ld)\n", data_dir, holder);
        else if (errno == EAGAIN)
            fprintf(stderr, "sandbox-journal: data directory %s is in use by another server\n",
                    data_dir);
        else
            fprintf(stderr, "sandbox-journal: cannot lock data directory %s: %s\n", data_dir,
                    strerror(errno));
        return 1;
    }

    struct err err;
    err_clear(&err);
    journal_t *journal = NULL;
    supervisor_t *supervisor = NULL;
    sessions_t *sessions = NULL;
    processes_t *processes = NULL;
    http_t *http = NULL;
    export_t *exporters[CMD_SERVER_MAX_LIST] = {NULL};
    int exit_code = 1;

    if (journal_open(db_path, o.durability, &journal, &err) != 0)
        goto fail;
    if (o.idem_ttl_s)
        journal_idem_set_ttl(journal, o.idem_ttl_s);
    /* The search index catches up behind the commits (back-fill included). */
    journal_index_follow(journal, 0);
    /* A reader connection for every thread that reads (HTTP workers, the
     * supervisor loop, this thread, the SSE hub's pushes, exporters), opened
     * while the file is surely there: reads go on if it later vanishes. */
    if (journal_open_readers(journal, o.threads + 3 + (unsigned)o.n_exports, &err) != 0)
        goto fail;
    if (supervisor_start(&supervisor, &err) != 0)
        goto fail;
    struct sessions_config sconfig = { .mock_delay_ms = o.mock_delay_ms,
                                       .data_dir = data_dir, .agents_dir = o.agents_dir };
    if (sessions_open(journal, supervisor, &sconfig, &sessions, &err) != 0)
        goto fail;
    if (processes_open(journal, supervisor, &processes, &err) != 0)
        goto fail;
    struct http_config hconfig = {
        .host = o.host, .port = (uint16_t)o.port, .token = o.token,
        .cors = { .origins = o.origins, .n_origins = o.n_origins,
                  .methods = o.n_methods ? o.methods : NULL, .n_methods = o.n_methods,
                  .headers = o.n_headers ? o.headers : NULL, .n_headers = o.n_headers,
                  .allow_credentials = o.cors_credentials,
                  .no_inspector = o.no_inspector_cors },
        .threads = o.threads, .max_body_bytes = o.max_body_bytes,
        .max_upload_bytes = o.max_upload_bytes,
        .heartbeat_ms = o.heartbeat_ms,
        .exports_status = cmd_server_exports_status, .exports_arg = exporters,
        .processes = processes,
    };
    /* One following exporter thread per target; an unreachable target is
     * retried in the background, only a bad URL (or webhook secret) stops
     * the start.  Before the listener, so GET /v1/exports finds them all. */
    for (size_t i = 0; i < o.n_exports; i++) {
        struct export_options eo = { .url = o.exports[i], .batch = o.export_batch,
                                     .webhook_secret_file = o.webhook_secret_file };
        if (export_start(journal, &eo, &exporters[i], &err) != 0)
            goto fail;
    }
    uint16_t port = 0;
    if (http_start(&hconfig, sessions, journal, &http, &port, &err) != 0)
        goto fail;

    fprintf(stderr, "sandbox-journal: journal %s (durability %s, schema v%d), auth %s\n",
            db_path, o.durability == JOURNAL_DURABILITY_FULL ? "full" : "normal",
            journal_schema_version(journal), o.token ? "on" : "off");
    int v6 = strchr(o.host, ':') != NULL;
    printf("listening on http://%s%s%s:%u\n", v6 ? "[" : "", o.host, v6 ? "]" : "",
           (unsigned)port);
    fflush(stdout);

    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0)
        fprintf(stderr, "sandbox-journal: sigwait failed; shutting down\n");
    fprintf(stderr, "sandbox-journal: signal %d, shutting down\n", sig);
    exit_code = 0;

fail:
    if (exit_code)
        fprintf(stderr, "sandbox-journal: %s\n", err.msg[0] ? err.msg : "startup failed");
    /* Installs first: their end resumes the HTTP requests waiting for them,
     * which must happen before the listener stops. */
    install_stop();
    /* Before the listener too: it answers the runs waiting for a child.
     * The children's exits are journaled while the supervisor drains. */
    processes_close(processes);
    http_stop(http);
    if (sessions)
        sessions_close(sessions);
    supervisor_stop(supervisor);
    /* After the last writer, before the journal goes: an exporter reads it
     * and commits checkpoints to it. */
    for (size_t i = 0; i < o.n_exports; i++)
        export_stop(exporters[i]);
    journal_close(journal);
    sessions_free(sessions);
    /* After the journal: its writer's last callbacks still reach them. */
    processes_free(processes);
    if (close(lock_fd) != 0)
        fprintf(stderr, "sandbox-journal: closing the data directory lock: %s\n",
                strerror(errno));
    return exit_code;
}
