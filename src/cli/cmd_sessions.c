/* `sandbox-journal sessions list|show|tail`: sessions read straight from
 * the journal file, with no server running (or next to a running one: the
 * journal is SQLite in WAL mode, so reading never blocks the server's
 * writer, and every read sees the latest commit).
 *
 * The journal is opened only if its file already exists: pointing the
 * command at a wrong directory must not leave an empty journal behind. */
#include "base/datadir.h"
#include "cli/cmd.h"
#include "journal/journal.h"
#include "base/opts.h"
#include "cli/transcript.h"

#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Events read per query: bounds memory however long a session is. */
#define CMD_SESSIONS_PAGE 1000
/* How often `tail` looks for new events. */
#define CMD_SESSIONS_POLL_MS 200

enum cmd_sessions_verb { CMD_SESSIONS_LIST, CMD_SESSIONS_SHOW, CMD_SESSIONS_TAIL };

struct cmd_sessions_options {
    enum cmd_sessions_verb verb;
    const char *data_dir;
    const char *session_id;
    int json;
    int quiet;
};

static volatile sig_atomic_t cmd_sessions_stop;

static const char cmd_sessions_usage[] =
    "usage: sandbox-journal sessions <list|show|tail> [options]\n"
    "\n"
    "Reads sessions straight from the journal file: no server is needed, and a\n"
    "running one is not disturbed.\n"
    "\n"
    "commands:\n"
    "  list           the sessions in the journal, newest first\n"
    "  show ID        a session's transcript (or its stored events with --json)\n"
    "  tail ID        the transcript, then new events as they are journaled\n"
    "\n"
    "examples:\n"
    "  sandbox-journal sessions list\n"
    "  sandbox-journal sessions show demo\n"
    "  sandbox-journal sessions show demo --json | jq -r .type\n"
    "  sandbox-journal sessions tail demo --data-dir /var/lib/sj\n"
    "\n"
    "'sandbox-journal sessions <command> --help' describes a command.\n";

static const char cmd_sessions_data_dir_help[] =
    "  -d, --data-dir DIR     the server's data directory, holding journal.db (default\n"
    "                         $XDG_DATA_HOME/sandbox-journal or\n"
    "                         ~/.local/share/sandbox-journal)\n";

static const char cmd_sessions_list_head[] =
    "usage: sandbox-journal sessions list [--data-dir DIR] [--json | --quiet]\n"
    "\n"
    "Lists the journal's sessions, newest first: id, agent, mode, event count, state\n"
    "(active, ended or terminated) and creation time.\n"
    "\n"
    "options:\n";

static const char cmd_sessions_list_tail[] =
    "      --json             one JSON object per session and line\n"
    "  -q, --quiet            only the session ids\n"
    "  -h, --help             show this help\n"
    "\n"
    "examples:\n"
    "  sandbox-journal sessions list\n"
    "  sandbox-journal sessions list --quiet | head -1\n";

static const char cmd_sessions_show_head[] =
    "usage: sandbox-journal sessions show SESSION_ID [--data-dir DIR] [--json]\n"
    "\n"
    "Prints a session's transcript: who said what, tool calls and their results,\n"
    "files touched, permission requests and questions with their outcomes, errors\n"
    "and how the session ended.  Items still running are marked (in progress).\n"
    "\n"
    "options:\n";

static const char cmd_sessions_show_tail[] =
    "      --json             the stored events instead, one per line, byte for byte\n"
    "                         as the API serves them\n"
    "  -h, --help             show this help\n"
    "\n"
    "examples:\n"
    "  sandbox-journal sessions show demo\n"
    "  sandbox-journal sessions show demo --json > demo.jsonl\n";

static const char cmd_sessions_tail_head[] =
    "usage: sandbox-journal sessions tail SESSION_ID [--data-dir DIR] [--json]\n"
    "\n"
    "Prints the transcript like 'show', then keeps printing new entries as the\n"
    "server journals them (checking every 200 ms) until Ctrl-C.\n"
    "\n"
    "options:\n";

static const char cmd_sessions_tail_tail[] =
    "      --json             stored events, one per line, instead of the transcript\n"
    "  -h, --help             show this help\n"
    "\n"
    "examples:\n"
    "  sandbox-journal sessions tail demo\n"
    "  sandbox-journal sessions tail demo --json | jq -r .type\n";

static int cmd_sessions_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static void cmd_sessions_help(enum cmd_sessions_verb verb)
{
    const char *head = verb == CMD_SESSIONS_LIST   ? cmd_sessions_list_head
                       : verb == CMD_SESSIONS_SHOW ? cmd_sessions_show_head
                                                   : cmd_sessions_tail_head;
    const char *tail = verb == CMD_SESSIONS_LIST   ? cmd_sessions_list_tail
                       : verb == CMD_SESSIONS_SHOW ? cmd_sessions_show_tail
                                                   : cmd_sessions_tail_tail;
    fputs(head, stdout);
    fputs(cmd_sessions_data_dir_help, stdout);
    fputs(tail, stdout);
}

/* 0, -1 after help, or an exit status.  argv[0] is the verb. */
static int cmd_sessions_parse(int argc, char **argv, struct cmd_sessions_options *o)
{
    const char *name = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int missing = 0;
        if (cmd_sessions_is_help(argv[i])) {
            cmd_sessions_help(o->verb);
            return -1;
        } else if (opts_match(argc, argv, &i, "--data-dir", "-d", 1, &v, &missing)) {
            if (!missing && !*v)
                return opts_fail("--data-dir must not be empty");
            o->data_dir = v;
        } else if (opts_match(argc, argv, &i, "--json", NULL, 0, &v, &missing)) {
            o->json = 1;
        } else if (o->verb == CMD_SESSIONS_LIST &&
                   opts_match(argc, argv, &i, "--quiet", "-q", 0, &v, &missing)) {
            o->quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return opts_fail("unknown option '%s' for 'sessions %s' (see --help)", argv[i],
                             name);
        } else if (o->verb != CMD_SESSIONS_LIST && !o->session_id) {
            o->session_id = argv[i];
        } else {
            return opts_fail("unexpected argument '%s' for 'sessions %s' (see --help)",
                             argv[i], name);
        }
        if (missing)
            return opts_fail("%s needs a value", argv[i]);
    }
    if (o->verb != CMD_SESSIONS_LIST && !o->session_id)
        return opts_fail("'sessions %s' needs a SESSION_ID (see --help)", name);
    if (o->json && o->quiet)
        return opts_fail("--json and --quiet exclude each other");
    return 0;
}

/* The journal's path, by the data directory rule every command shares. */
static int cmd_sessions_db_path(const struct cmd_sessions_options *o, char *out, size_t size)
{
    if (datadir_path(o->data_dir, "journal.db", out, size) != 0)
        return opts_fail("cannot find the data directory: set --data-dir, XDG_DATA_HOME or "
                         "HOME (or the path is too long)");
    return 0;
}

/* Opens an existing journal; 0 or exit status 1 with the reason printed. */
static int cmd_sessions_open(const char *path, journal_t **j, journal_reader_t **r)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "sandbox-journal: no journal at %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "sandbox-journal: %s is not a journal file\n", path);
        return 1;
    }
    struct err err;
    err_clear(&err);
    if (journal_open_readonly(path, j, &err) != 0) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        return 1;
    }
    if (journal_is_immutable(*j)) {
        /* Say what is not shown: a WAL left behind by a server that did not
         * stop cleanly, and whatever a server commits meanwhile. */
        char wal[PATH_MAX + 8];
        struct stat ws;
        int has_wal = snprintf(wal, sizeof wal, "%s-wal", path) < (int)sizeof wal &&
                      stat(wal, &ws) == 0 && ws.st_size > 0;
        fprintf(stderr,
                "sandbox-journal: no write access beside %s: reading the database file "
                "alone (immutable), so a server writing it is not followed%s\n",
                path, has_wal ? " and the commits still in its WAL are not shown" : "");
    }
    *r = journal_reader_for_thread(*j, &err);
    if (!*r) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        journal_close(*j);
        *j = NULL;
        return 1;
    }
    return 0;
}

static int cmd_sessions_write(struct buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    buf_reset(b);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- list ------------------------------------------------------------------- */

struct cmd_sessions_rows {
    struct journal_session_info *v;
    size_t n, cap;
};

static char *cmd_sessions_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int cmd_sessions_collect(void *arg, const struct journal_session_info *s)
{
    struct cmd_sessions_rows *rows = arg;
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 16;
        struct journal_session_info *v = realloc(rows->v, cap * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        rows->v = v;
        rows->cap = cap;
    }
    struct journal_session_info *c = &rows->v[rows->n];
    memset(c, 0, sizeof *c);
    c->session_id = cmd_sessions_dup(s->session_id);
    c->agent = cmd_sessions_dup(s->agent);
    c->agent_mode = cmd_sessions_dup(s->agent_mode);
    c->permission_mode = cmd_sessions_dup(s->permission_mode);
    c->model = cmd_sessions_dup(s->model);
    c->variant = cmd_sessions_dup(s->variant);
    c->native_session_id = cmd_sessions_dup(s->native_session_id);
    c->created_at = cmd_sessions_dup(s->created_at);
    c->ended = s->ended;
    c->last_sequence = s->last_sequence;
    rows->n++;
    if ((s->session_id && !c->session_id) || (s->agent && !c->agent) ||
        (s->agent_mode && !c->agent_mode) || (s->permission_mode && !c->permission_mode) ||
        (s->model && !c->model) || (s->variant && !c->variant) ||
        (s->native_session_id && !c->native_session_id) || (s->created_at && !c->created_at))
        return ERR_NOMEM;
    return 0;
}

/* Replaces *field (owned) with its text made safe for a terminal: ids and
 * names come from clients and agents, and a control character in them must
 * not reach the terminal (transcript_put_safe(), as `show` does).  0 or
 * ERR_NOMEM (*field unchanged). */
static int cmd_sessions_safe(char **field)
{
    if (!*field)
        return 0;
    struct buf b;
    buf_init(&b);
    if (transcript_put_safe(&b, *field) != 0) {
        buf_free(&b);
        return ERR_NOMEM;
    }
    char *safe = b.len ? buf_steal(&b) : strdup("");
    if (!safe)
        return ERR_NOMEM;
    free(*field);
    *field = safe;
    return 0;
}

/* The fields the table and --quiet print, made safe.  0 or ERR_NOMEM. */
static int cmd_sessions_safe_row(struct journal_session_info *s)
{
    int rc;
    if ((rc = cmd_sessions_safe(&s->session_id)) || (rc = cmd_sessions_safe(&s->agent)) ||
        (rc = cmd_sessions_safe(&s->agent_mode)) || (rc = cmd_sessions_safe(&s->created_at)))
        return rc;
    return 0;
}

static const char *cmd_sessions_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static int cmd_sessions_json_row(struct buf *out, const struct journal_session_info *s)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:b, s:s, s:I, s:s?}",
                          "sessionId", cmd_sessions_or(s->session_id, ""), "agent",
                          cmd_sessions_or(s->agent, ""), "agentMode",
                          cmd_sessions_or(s->agent_mode, ""), "permissionMode",
                          cmd_sessions_or(s->permission_mode, ""), "model", s->model,
                          "variant", s->variant, "nativeSessionId", s->native_session_id,
                          "ended", s->ended != 0, "state", transcript_state_name(s->ended),
                          "eventCount", (json_int_t)s->last_sequence, "createdAt",
                          s->created_at);
    /* ASCII only: a control character in an id stays a JSON escape. */
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)
                   : NULL;
    json_decref(o);
    int rc = text ? buf_printf(out, "%s\n", text) : ERR_NOMEM;
    free(text);
    return rc;
}

static int cmd_sessions_list(journal_reader_t *r, const struct cmd_sessions_options *o,
                             const char *path)
{
    struct cmd_sessions_rows rows = { 0 };
    struct err err;
    err_clear(&err);
    int rc = journal_list_sessions(r, cmd_sessions_collect, &rows, &err);
    struct buf out;
    buf_init(&out);
    if (rc == ERR_NOMEM && !err.msg[0])
        err_set(&err, ERR_NOMEM, "out of memory");
    if (!rc && rows.n == 0 && !o->json && !o->quiet)
        fprintf(stderr, "sandbox-journal: no sessions in %s\n", path);
    for (size_t i = 0; i < rows.n && !rc && !o->json; i++)
        if ((rc = cmd_sessions_safe_row(&rows.v[i])))
            err_set(&err, rc, "out of memory");
    int w_id = 7, w_agent = 5, w_mode = 4;
    for (size_t i = 0; i < rows.n; i++) {
        int a = (int)strlen(cmd_sessions_or(rows.v[i].session_id, ""));
        int b = (int)strlen(cmd_sessions_or(rows.v[i].agent, ""));
        int c = (int)strlen(cmd_sessions_or(rows.v[i].agent_mode, ""));
        w_id = a > w_id ? a : w_id;
        w_agent = b > w_agent ? b : w_agent;
        w_mode = c > w_mode ? c : w_mode;
    }
    if (!rc && rows.n && !o->json && !o->quiet)
        rc = buf_printf(&out, "%-*s  %-*s  %-*s  %6s  %-10s  %s\n", w_id, "SESSION", w_agent,
                        "AGENT", w_mode, "MODE", "EVENTS", "STATE", "CREATED");
    for (size_t i = 0; i < rows.n && !rc; i++) {
        const struct journal_session_info *s = &rows.v[i];
        if (o->json)
            rc = cmd_sessions_json_row(&out, s);
        else if (o->quiet)
            rc = buf_printf(&out, "%s\n", cmd_sessions_or(s->session_id, ""));
        else
            rc = buf_printf(&out, "%-*s  %-*s  %-*s  %6llu  %-10s  %s\n", w_id,
                            cmd_sessions_or(s->session_id, ""), w_agent,
                            cmd_sessions_or(s->agent, ""), w_mode,
                            cmd_sessions_or(s->agent_mode, ""),
                            (unsigned long long)s->last_sequence,
                            transcript_state_name(s->ended), cmd_sessions_or(s->created_at, ""));
        if (rc == ERR_NOMEM)
            err_set(&err, rc, "out of memory");
    }
    for (size_t i = 0; i < rows.n; i++)
        journal_session_info_clear(&rows.v[i]);
    free(rows.v);
    int status = 0;
    if (rc) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg[0] ? err.msg : "cannot list sessions");
        status = 1;
    } else {
        status = cmd_sessions_write(&out);
    }
    buf_free(&out);
    return status;
}

/* ---- show and tail ---------------------------------------------------------- */

struct cmd_sessions_reader {
    transcript_t *t; /* NULL with --json */
    struct buf out;
    uint64_t last;   /* the last sequence written */
    struct err *err;
};

static int cmd_sessions_on_event(void *arg, uint64_t sequence, const char *json, size_t len,
                                 const char *raw, size_t raw_len, int turn_end)
{
    (void)raw;      /* --json prints what the API serves without include_raw */
    (void)raw_len;  /* idem */
    (void)turn_end; /* a transcript has no turns to mark */
    struct cmd_sessions_reader *rd = arg;
    int rc;
    if (rd->t) {
        rc = transcript_render(rd->t, json, len, &rd->out, rd->err);
    } else {
        rc = buf_append(&rd->out, json, len);
        if (!rc)
            rc = buf_append(&rd->out, "\n", 1);
        if (rc)
            err_set(rd->err, rc, "out of memory");
    }
    if (!rc)
        rd->last = sequence;
    return rc;
}

/* Writes every committed event after rd->last, a page at a time.  0 or exit
 * status 1 (reason printed). */
static int cmd_sessions_drain(journal_reader_t *r, const char *id, struct cmd_sessions_reader *rd)
{
    for (;;) {
        uint64_t before = rd->last;
        int has_more = 0;
        int rc = journal_read_events(r, id, rd->last, CMD_SESSIONS_PAGE, cmd_sessions_on_event,
                                     rd, &has_more, rd->err);
        if (cmd_sessions_write(&rd->out) != 0)
            return 1;
        if (rc) {
            fprintf(stderr, "sandbox-journal: %s\n",
                    rd->err->msg[0] ? rd->err->msg : "cannot read the journal");
            return 1;
        }
        /* No progress means nothing more to read, whatever has_more says:
         * this keeps the loop finite. */
        if (!has_more || rd->last == before || cmd_sessions_stop)
            return 0;
    }
}

static void cmd_sessions_on_sigint(int sig)
{
    (void)sig; /* only SIGINT is routed here */
    cmd_sessions_stop = 1;
}

static void cmd_sessions_sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    /* An interrupted sleep ends early on purpose: the caller checks the
     * stop flag next. */
    if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
        fprintf(stderr, "sandbox-journal: nanosleep: %s\n", strerror(errno));
}

/* `tail` stops on Ctrl-C at the next page or poll, and exits 0. */
static int cmd_sessions_catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cmd_sessions_on_sigint;
    if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        fprintf(stderr, "sandbox-journal: cannot handle SIGINT: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static int cmd_sessions_follow(journal_reader_t *r, const char *id, struct cmd_sessions_reader *rd)
{
    while (!cmd_sessions_stop) {
        cmd_sessions_sleep_ms(CMD_SESSIONS_POLL_MS);
        if (cmd_sessions_stop)
            break;
        int rc = cmd_sessions_drain(r, id, rd);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmd_sessions_show(journal_reader_t *r, const struct cmd_sessions_options *o,
                             const char *path)
{
    struct err err;
    err_clear(&err);
    struct journal_session_info info;
    memset(&info, 0, sizeof info);
    int rc = journal_get_session(r, o->session_id, &info, &err);
    if (rc == ERR_NOT_FOUND) {
        fprintf(stderr, "sandbox-journal: no session '%s' in %s\n", o->session_id, path);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        return 1;
    }
    struct cmd_sessions_reader rd = { .err = &err };
    buf_init(&rd.out);
    int status = 0;
    if (!o->json) {
        rc = transcript_new(&rd.t, &err);
        if (!rc)
            rc = transcript_header(&info, &rd.out, &err);
        if (!rc)
            rc = buf_puts(&rd.out, "\n");
        if (rc) {
            fprintf(stderr, "sandbox-journal: %s\n", err.msg[0] ? err.msg : "out of memory");
            status = 1;
        }
    }
    journal_session_info_clear(&info);
    if (!status && o->verb == CMD_SESSIONS_TAIL)
        status = cmd_sessions_catch_sigint();
    if (!status)
        status = cmd_sessions_drain(r, o->session_id, &rd);
    if (!status && o->verb == CMD_SESSIONS_TAIL)
        status = cmd_sessions_follow(r, o->session_id, &rd);
    if (!status && rd.t && o->verb == CMD_SESSIONS_SHOW) {
        if (transcript_finish(rd.t, &rd.out, &err) != 0) {
            fprintf(stderr, "sandbox-journal: %s\n", err.msg);
            status = 1;
        } else {
            status = cmd_sessions_write(&rd.out);
        }
    }
    transcript_free(rd.t);
    buf_free(&rd.out);
    return status;
}

int cmd_sessions(int argc, char **argv)
{
    if (argc < 2)
        return opts_fail("missing command: list, show or tail (see 'sandbox-journal sessions "
                         "--help')");
    if (cmd_sessions_is_help(argv[1])) {
        fputs(cmd_sessions_usage, stdout);
        return 0;
    }
    struct cmd_sessions_options o = { 0 };
    if (strcmp(argv[1], "list") == 0)
        o.verb = CMD_SESSIONS_LIST;
    else if (strcmp(argv[1], "show") == 0)
        o.verb = CMD_SESSIONS_SHOW;
    else if (strcmp(argv[1], "tail") == 0)
        o.verb = CMD_SESSIONS_TAIL;
    else
        return opts_fail("unknown command 'sessions %s': list, show or tail", argv[1]);
    int rc = cmd_sessions_parse(argc - 1, argv + 1, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    char path[PATH_MAX];
    rc = cmd_sessions_db_path(&o, path, sizeof path);
    if (rc)
        return rc;
    journal_t *j = NULL;
    journal_reader_t *r = NULL;
    rc = cmd_sessions_open(path, &j, &r);
    if (rc)
        return rc;
    rc = o.verb == CMD_SESSIONS_LIST ? cmd_sessions_list(r, &o, path)
                                     : cmd_sessions_show(r, &o, path);
    journal_close(j);
    return rc;
}
