/* `sandbox-journal export`: ships the journal's sessions to PostgreSQL,
 * ClickHouse, a JSONL file or a webhook, exactly once and resumably
 * (export.h).
 *
 * Everything that can be wrong with the request (the options, the URL, the
 * data directory, the target being unreachable) is found before the journal
 * is opened, so a refused export leaves the journal exactly as it was. */
#include "base/datadir.h"
#include "cli/cmd.h"
#include "base/err.h"
#include "export/export.h"
#include "journal/journal.h"
#include "base/opts.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CMD_EXPORT_MAX_SESSIONS 256

static const char cmd_export_usage[] =
    "usage: sandbox-journal export --to URL [options]\n"
    "\n"
    "Sends every event of the journal to a target, each exactly once: a per-target,\n"
    "per-session checkpoint in the journal advances only after the target has\n"
    "committed a batch, and the target ignores a re-sent copy.  Run it again to\n"
    "send what is new; an interrupted export resumes where the target left off.\n"
    "\n"
    "targets:\n"
    "  postgres://[user[:password]@]host[:port]/database[?params]\n"
    "  clickhouse+http://[user[:password]@]host[:port][/database]   (or +https)\n"
    "  jsonl:PATH          a file that 'sandbox-journal import' replays\n"
    "  http(s)://host[:port][/path]   a webhook: signed POSTs of each session's\n"
    "                      events (Standard Webhooks), needs --webhook-secret-file\n"
    "\n"
    "options:\n"
    "      --to URL           the target (required)\n"
    "      --session ID       only this session (repeatable)\n"
    "  -f, --follow           keep exporting new events until SIGINT/SIGTERM;\n"
    "                         survives the target going away\n"
    "      --batch N          events per batch (default 5000); for a webhook, per\n"
    "                         delivery (one session's events)\n"
    "      --webhook-secret-file PATH\n"
    "                         the webhook's signing secret: whsec_<base64 key>\n"
    "      --data-dir DIR     where journal.db lives (default as for 'server')\n"
    "      --reset            forget this target's checkpoints and send everything\n"
    "                         again (harmless for databases: copies are ignored;\n"
    "                         a JSONL file is written anew)\n"
    "  -q, --quiet            no progress line and no summary\n"
    "\n"
    "Passwords in URLs are never printed.  Exit status: 0 done, 1 failed, 2 bad\n"
    "usage, 130 interrupted (run again to resume).\n"
    "\n"
    "examples:\n"
    "  sandbox-journal export --to postgres://sj:secret@db.internal/analytics\n"
    "  sandbox-journal export --to clickhouse+http://127.0.0.1:8123/agents --follow\n"
    "  sandbox-journal export --to jsonl:transcript.jsonl --session demo\n"
    "  sandbox-journal export --to https://hooks.example/sj --webhook-secret-file wh.key "
    "--follow\n";

/* Set by SIGINT/SIGTERM; the exporter looks at it every 200 ms. */
static volatile sig_atomic_t cmd_export_stop;

static void cmd_export_on_signal(int sig)
{
    (void)sig; /* either signal means the same: stop after the batch in flight */
    cmd_export_stop = 1;
}

struct cmd_export_options {
    struct export_options x;
    const char *sessions[CMD_EXPORT_MAX_SESSIONS];
    const char *data_dir;
};

static int cmd_export_parse(int argc, char **argv, struct cmd_export_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int missing = 0;
        unsigned long n = 0;
        if (opts_match(argc, argv, &i, "--to", NULL, 1, &v, &missing)) {
            if (!missing && o->x.url)
                return opts_fail("--to may be given once (run one export per target)");
            o->x.url = v;
        } else if (opts_match(argc, argv, &i, "--session", NULL, 1, &v, &missing)) {
            if (!missing && o->x.n_sessions == CMD_EXPORT_MAX_SESSIONS)
                return opts_fail("too many --session options (at most %d)",
                                 CMD_EXPORT_MAX_SESSIONS);
            if (!missing && !*v)
                return opts_fail("--session must not be empty");
            if (!missing)
                o->sessions[o->x.n_sessions++] = v;
        } else if (opts_match(argc, argv, &i, "--follow", "-f", 0, &v, &missing)) {
            o->x.follow = 1;
        } else if (opts_match(argc, argv, &i, "--batch", NULL, 1, &v, &missing)) {
            if (!missing && (opts_uint(v, EXPORT_MAX_BATCH, &n) != 0 || n == 0))
                return opts_fail("--batch must be a number from 1 to %u, not '%s'",
                                 EXPORT_MAX_BATCH, v);
            o->x.batch = (unsigned)n;
        } else if (opts_match(argc, argv, &i, "--webhook-secret-file", NULL, 1, &v, &missing)) {
            o->x.webhook_secret_file = v;
        } else if (opts_match(argc, argv, &i, "--data-dir", NULL, 1, &v, &missing)) {
            o->data_dir = v;
        } else if (opts_match(argc, argv, &i, "--reset", NULL, 0, &v, &missing)) {
            o->x.reset = 1;
        } else if (opts_match(argc, argv, &i, "--quiet", "-q", 0, &v, &missing)) {
            o->x.quiet = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cmd_export_usage, stdout);
            return -1;
        } else {
            return opts_fail("unknown export option '%s' (see 'sandbox-journal export --help')",
                             argv[i]);
        }
        if (missing)
            return opts_fail("%s needs a value", argv[i]);
    }
    if (!o->x.url)
        return opts_fail("export needs --to URL (see 'sandbox-journal export --help')");
    o->x.sessions = o->sessions;
    return 0;
}

static int cmd_export_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cmd_export_on_signal;
    if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    /* A target closing its socket must be an error to handle, not death. */
    return signal(SIGPIPE, SIG_IGN) == SIG_ERR ? -1 : 0;
}

int cmd_export(int argc, char **argv)
{
    struct cmd_export_options o;
    memset(&o, 0, sizeof o);
    int rc = cmd_export_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    char db_path[PATH_MAX];
    if (datadir_path(o.data_dir, "journal.db", db_path, sizeof db_path) != 0)
        return opts_fail("cannot find the data directory: set --data-dir, XDG_DATA_HOME or "
                         "HOME");
    struct stat st;
    if (stat(db_path, &st) != 0) {
        fprintf(stderr, "sandbox-journal: no journal at %s: %s\n", db_path, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "sandbox-journal: no journal at %s: not a file\n", db_path);
        return 1;
    }
    if (cmd_export_signals() != 0)
        return opts_fail("cannot install signal handlers");
    o.x.stop_flag = &cmd_export_stop;

    struct err err;
    err_clear(&err);
    export_t *e = NULL;
    if (export_new(&o.x, &e, &err) != 0) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        return 2;
    }
    /* Before the journal is touched: an unreachable target changes nothing. */
    if (export_connect(e, &err) != 0) {
        fprintf(stderr, "sandbox-journal: cannot export to %s: %s\n", export_target_name(e),
                err.msg);
        export_free(e);
        return 1;
    }
    journal_t *j = NULL;
    /* A checkpoint lost to a power cut only means a batch is sent again,
     * so the exporter's own commits need no fsync each. */
    if (journal_open(db_path, JOURNAL_DURABILITY_NORMAL, &j, &err) != 0) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        export_free(e);
        return 1;
    }
    rc = export_run(e, j, &err);
    int code = 0;
    if (rc) {
        fprintf(stderr, "sandbox-journal: export to %s: %s\n", export_target_name(e), err.msg);
        code = cmd_export_stop ? 130 : 1;
    }
    journal_close(j);
    export_free(e);
    return code;
}
