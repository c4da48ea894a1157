/* Importing a JSONL export; see export_import.h for the promise and
 * export_row.h for the lines.
 *
 * One reader, `struct export_import`, walks the file for each pass: a
 * header, then "chunks" (a session line and that session's events).  The
 * checking passes look at every line; the applying pass also gathers each
 * chunk's new events into journal batches of up to EXPORT_IMPORT_BATCH,
 * the chunk's last batch carrying the session's ended state and adapter
 * state so they land in the same transaction as its last event. */
#include "export/export_import.h"

#include "base/err.h"
#include "events/event.h"
#include "export/export_row.h"
#include "base/hmap.h"
#include "journal/journal.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define EXPORT_IMPORT_BATCH 4096
#define EXPORT_IMPORT_TAIL "\"raw\":null}"

/* What the passes know of one session. */
struct export_import_sess {
    uint64_t file_last;  /* the last sequence seen in the file so far */
    uint64_t dest_last;  /* the journal's last sequence before the import */
    int dest_exists;     /* the journal had the session before the import */
    int created;         /* the applying pass has created it */
};

struct export_import {
    const char *path;
    FILE *f;
    char *line;
    size_t line_cap;
    unsigned long lineno;
    hmap_t *sessions; /* session_id -> struct export_import_sess (owned) */
    journal_t *j;     /* NULL: check the file alone */
    journal_reader_t *r;
    int apply;

    json_t *chunk;          /* the current session line (owned), or NULL */
    const char *chunk_sid;  /* borrowed from `chunk` */
    uint64_t chunk_last;
    struct export_import_sess *chunk_sess;

    json_t *docs[EXPORT_IMPORT_BATCH]; /* the event lines gathered (owned) */
    struct journal_event events[EXPORT_IMPORT_BATCH]; /* pointing into docs */
    size_t n_events;

    struct export_import_summary sum;
};

static int export_import_bad(struct export_import *x, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int export_import_bad(struct export_import *x, struct err *err, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_set(err, ERR_INVALID, "import: %s line %lu: %s", x->path, x->lineno, why);
}

static void export_import_free_sess(const char *key, void *value, void *arg)
{
    (void)key, (void)arg; /* the value is all there is to free */
    free(value);
}

static void export_import_drop_events(struct export_import *x)
{
    for (size_t i = 0; i < x->n_events; i++)
        json_decref(x->docs[i]);
    x->n_events = 0;
}

static void export_import_close(struct export_import *x)
{
    export_import_drop_events(x);
    json_decref(x->chunk);
    x->chunk = NULL;
    if (x->sessions) {
        hmap_foreach(x->sessions, export_import_free_sess, NULL);
        hmap_free(x->sessions);
    }
    x->sessions = NULL;
    if (x->f && fclose(x->f) != 0)
        fprintf(stderr, "sandbox-journal: import: closing %s: %s\n", x->path, strerror(errno));
    x->f = NULL;
    free(x->line);
    x->line = NULL;
}

/* borrowed: a string member, NULL when absent; *ok cleared when present
 * but neither a string nor (if nullable) null. */
static const char *export_import_str(const json_t *doc, const char *key, int nullable, int *ok)
{
    const json_t *v = json_object_get(doc, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (!(nullable && (!v || json_is_null(v))))
        *ok = 0;
    return NULL;
}

/* ---- applying ----------------------------------------------------------------- */

/* Appends the gathered events of the current chunk (the chunk's last batch
 * when `final`) through the journal's writer. */
static int export_import_flush(struct export_import *x, int final, struct err *err)
{
    if (!x->apply || !x->chunk)
        return 0;
    struct export_import_sess *s = x->chunk_sess;
    int create = !s->dest_exists && !s->created;
    if (!x->n_events && !create)
        return 0; /* nothing new: a second import of the same file */
    int ok = 1;
    const json_t *c = x->chunk;
    struct journal_session_row row = {
        .session_id = x->chunk_sid,
        .agent = export_import_str(c, "agent", 0, &ok),
        .agent_mode = export_import_str(c, "agent_mode", 0, &ok),
        .permission_mode = export_import_str(c, "permission_mode", 0, &ok),
        .model = export_import_str(c, "model", 1, &ok),
        .variant = export_import_str(c, "variant", 1, &ok),
        .agent_version = export_import_str(c, "agent_version", 1, &ok),
        .native_session_id = export_import_str(c, "native_session_id", 1, &ok),
        .working_dir = export_import_str(c, "working_dir", 1, &ok),
        .created_at = export_import_str(c, "created_at", 0, &ok),
    };
    struct journal_batch b = {
        .session_id = x->chunk_sid,
        .create = create ? &row : NULL,
        .events = x->n_events ? x->events : NULL,
        .n_events = x->n_events,
        .native_session_id = row.native_session_id,
        .mark_ended = final ? (int)json_integer_value(json_object_get(c, "ended")) : 0,
        .adapter_state = final ? export_import_str(c, "adapter_state", 1, &ok) : NULL,
    };
    if (!ok) /* the checking pass saw this line; only a changed file gets here */
        return export_import_bad(x, err, "session line changed since it was checked");
    int rc = journal_append(x->j, &b, err);
    if (rc == 0) {
        s->created = 1;
        x->sum.created += create;
        x->sum.events += x->n_events;
    }
    export_import_drop_events(x);
    return rc;
}

/* ---- checking ----------------------------------------------------------------- */

/* The current chunk must have delivered every event its session line
 * announced. */
static int export_import_end_chunk(struct export_import *x, struct err *err)
{
    if (!x->chunk)
        return 0;
    if (x->chunk_sess->file_last != x->chunk_last)
        return export_import_bad(x, err,
                                 "session %s: its session line announced events up to %llu, "
                                 "the file has them up to %llu",
                                 x->chunk_sid, (unsigned long long)x->chunk_last,
                                 (unsigned long long)x->chunk_sess->file_last);
    int rc = export_import_flush(x, 1, err);
    json_decref(x->chunk);
    x->chunk = NULL;
    x->chunk_sid = NULL;
    x->chunk_sess = NULL;
    return rc;
}

/* 1 if `key` holds a string (or, when `nullable`, null or nothing). */
static int export_import_is_str(const json_t *doc, const char *key, int nullable)
{
    const json_t *v = json_object_get(doc, key);
    return json_is_string(v) || (nullable && (!v || json_is_null(v)));
}

static int export_import_header(struct export_import *x, const json_t *doc, struct err *err)
{
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    const json_t *version = json_object_get(doc, "version");
    if (!kind || strcmp(kind, EXPORT_ROW_JSONL_FORMAT) != 0 || !json_is_integer(version))
        return export_import_bad(x, err, "not a sandbox-journal export (no header line)");
    if (json_integer_value(version) < 1 ||
        json_integer_value(version) > EXPORT_ROW_JSONL_VERSION)
        return export_import_bad(x, err, "export format version %lld; this build reads %d",
                                 (long long)json_integer_value(version),
                                 EXPORT_ROW_JSONL_VERSION);
    return 0;
}

/* Learns what the journal holds of `sid` before the import. */
static int export_import_dest(struct export_import *x, const char *sid, const json_t *doc,
                              struct export_import_sess *s, struct err *err)
{
    struct journal_session_info info;
    int rc = journal_get_session(x->r, sid, &info, err);
    if (rc == ERR_NOT_FOUND) {
        err_clear(err);
        return 0;
    }
    if (rc)
        return rc;
    const char *agent = json_string_value(json_object_get(doc, "agent"));
    const char *created = json_string_value(json_object_get(doc, "created_at"));
    int same = strcmp(info.agent, agent) == 0 && strcmp(info.created_at, created) == 0;
    s->dest_exists = 1;
    s->dest_last = info.last_sequence;
    journal_session_info_clear(&info);
    if (!same)
        return err_set_subject(err, ERR_CONFLICT, sid,
                               "import: %s line %lu: the journal already has a different "
                               "session %s (another agent or creation time)",
                               x->path, x->lineno, sid);
    return 0;
}

static int export_import_session(struct export_import *x, json_t *doc, struct err *err)
{
    int rc = export_import_end_chunk(x, err);
    if (rc)
        return rc;
    static const char *const required[] = {"session_id", "agent", "agent_mode",
                                            "permission_mode", "created_at"};
    static const char *const optional[] = {"model", "variant", "agent_version",
                                           "native_session_id", "working_dir",
                                           "adapter_state"};
    int ok = 1;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        ok = ok && export_import_is_str(doc, required[i], 0);
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        ok = ok && export_import_is_str(doc, optional[i], 1);
    const json_t *ended = json_object_get(doc, "ended");
    const json_t *last = json_object_get(doc, "last_sequence");
    ok = ok && json_is_integer(ended) && json_integer_value(ended) >= 0 &&
         json_integer_value(ended) <= 2 && json_is_integer(last) &&
         json_integer_value(last) >= 0;
    const char *sid = json_string_value(json_object_get(doc, "session_id"));
    if (!ok || !*sid)
        return export_import_bad(x, err, "session line lacks a field or has one of the "
                                         "wrong type");
    struct export_import_sess *s = hmap_get(x->sessions, sid);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || hmap_put(x->sessions, sid, s) != 0) {
            free(s);
            return err_set(err, ERR_NOMEM, "import: out of memory");
        }
        x->sum.sessions++;
        if (x->j && (rc = export_import_dest(x, sid, doc, s, err)))
            return rc;
    }
    uint64_t announced = (uint64_t)json_integer_value(last);
    if (announced < s->file_last)
        return export_import_bad(x, err, "session %s: its line announces %llu events after "
                                         "%llu were given",
                                 sid, (unsigned long long)announced,
                                 (unsigned long long)s->file_last);
    x->chunk = json_incref(doc);
    x->chunk_sid = json_string_value(json_object_get(x->chunk, "session_id"));
    x->chunk_last = announced;
    x->chunk_sess = s;
    return 0;
}

struct export_import_cmp {
    const char *json;
    size_t json_len;
    const char *raw;
    size_t raw_len;
    int turn_end;
    int same;
};

static int export_import_cmp_one(void *arg, uint64_t sequence, const char *json,
                                 size_t json_len, const char *raw, size_t raw_len,
                                 int turn_end)
{
    (void)sequence; /* the read asked for exactly the one sequence compared */
    struct export_import_cmp *c = arg;
    c->same = json_len == c->json_len && memcmp(json, c->json, json_len) == 0 &&
              !raw == !c->raw && (!raw || (raw_len == c->raw_len &&
                                           memcmp(raw, c->raw, raw_len) == 0)) &&
              !turn_end == !c->turn_end;
    return 0;
}

static int export_import_event(struct export_import *x, json_t *doc, struct err *err)
{
    const char *sid = json_string_value(json_object_get(doc, "session_id"));
    const json_t *seqv = json_object_get(doc, "sequence");
    const char *type = json_string_value(json_object_get(doc, "type"));
    const json_t *turn_end = json_object_get(doc, "turn_end");
    const json_t *text = json_object_get(doc, "json");
    const json_t *raw = json_object_get(doc, "raw");
    if (!sid || !json_is_integer(seqv) || json_integer_value(seqv) < 1 || !type ||
        !json_is_boolean(turn_end) || !json_is_string(text) ||
        !(!raw || json_is_null(raw) || json_is_string(raw)))
        return export_import_bad(x, err, "event line lacks a field or has one of the wrong "
                                         "type");
    if (!x->chunk || strcmp(sid, x->chunk_sid) != 0)
        return export_import_bad(x, err, "event of session %s does not follow a session line "
                                         "of it",
                                 sid);
    struct export_import_sess *s = x->chunk_sess;
    uint64_t seq = (uint64_t)json_integer_value(seqv);
    if (seq != s->file_last + 1)
        return export_import_bad(x, err, "session %s: sequence %llu where %llu was due", sid,
                                 (unsigned long long)seq, (unsigned long long)(s->file_last + 1));
    if (seq > x->chunk_last)
        return export_import_bad(x, err, "session %s: event %llu is past the %llu its session "
                                         "line announced",
                                 sid, (unsigned long long)seq,
                                 (unsigned long long)x->chunk_last);
    if (!event_type_is_valid(type))
        return export_import_bad(x, err, "unknown event type '%s'", type);
    const char *json = json_string_value(text);
    size_t json_len = json_string_length(text);
    size_t tail = sizeof EXPORT_IMPORT_TAIL - 1;
    if (json_len < tail || memcmp(json + json_len - tail, EXPORT_IMPORT_TAIL, tail) != 0)
        return export_import_bad(x, err, "event text does not end in %s", EXPORT_IMPORT_TAIL);
    json_error_t jerr;
    json_t *ev = json_loadb(json, json_len, 0, &jerr);
    const char *ev_sid = json_string_value(json_object_get(ev, "session_id"));
    const char *ev_type = json_string_value(json_object_get(ev, "type"));
    const json_t *ev_seq = json_object_get(ev, "sequence");
    int fits = ev_sid && ev_type && json_is_integer(ev_seq) && strcmp(ev_sid, sid) == 0 &&
               strcmp(ev_type, type) == 0 && (uint64_t)json_integer_value(ev_seq) == seq;
    /* What the server checks when it rebuilds the session from the journal
     * (normalize_replay()): an event that fails it there would make every
     * later message to the session fail. */
    const json_t *nsid = json_object_get(ev, "native_session_id");
    int well_formed = fits && event_data_fits(type, json_object_get(ev, "data")) &&
                      json_is_boolean(json_object_get(ev, "synthetic")) &&
                      (!nsid || json_is_null(nsid) || json_is_string(nsid));
    json_decref(ev);
    if (!fits)
        return export_import_bad(x, err, "event text is not session %s's event %llu of type %s",
                                 sid, (unsigned long long)seq, type);
    if (!well_formed)
        return export_import_bad(x, err, "session %s event %llu: its data does not fit a %s "
                                         "event (or synthetic / native_session_id have the "
                                         "wrong type)",
                                 sid, (unsigned long long)seq, type);
    const char *raw_text = json_string_value(raw);
    size_t raw_len = raw_text ? json_string_length(raw) : 0;

    if (x->j && seq <= s->dest_last) {
        if (!x->apply) {
            struct export_import_cmp c = {json, json_len, raw_text, raw_len,
                                          json_is_true(turn_end), 0};
            int rc = journal_read_events(x->r, sid, seq - 1, 1, export_import_cmp_one, &c,
                                         NULL, err);
            if (rc)
                return rc;
            if (!c.same)
                return err_set_subject(err, ERR_CONFLICT, sid,
                                       "import: %s line %lu: session %s event %llu differs "
                                       "from the one the journal holds",
                                       x->path, x->lineno, sid, (unsigned long long)seq);
        }
        x->sum.skipped++;
    }
    s->file_last = seq;
    if (!x->apply || seq <= s->dest_last)
        return 0;
    x->docs[x->n_events] = json_incref(doc);
    x->events[x->n_events] = (struct journal_event){
        .sequence = seq, .type = type, .json = json, .json_len = json_len,
        .raw = raw_text, .raw_len = raw_len, .turn_end = json_is_true(turn_end),
    };
    x->n_events++;
    return x->n_events == EXPORT_IMPORT_BATCH ? export_import_flush(x, 0, err) : 0;
}

/* ---- the passes --------------------------------------------------------------- */

static int export_import_pass(const char *path, journal_t *j, int apply,
                              struct export_import_summary *sum, struct err *err)
{
    struct export_import *x = calloc(1, sizeof *x); /* ~200 KB: not on the stack */
    if (!x)
        return err_set(err, ERR_NOMEM, "import: out of memory");
    x->path = path;
    x->j = j;
    x->apply = apply;
    int rc = 0;
    x->sessions = hmap_new();
    if (!x->sessions)
        rc = err_set(err, ERR_NOMEM, "import: out of memory");
    if (!rc && j && !(x->r = journal_reader_for_thread(j, err)))
        rc = err && err->code ? err->code : ERR_STORAGE;
    if (!rc && !(x->f = fopen(path, "r")))
        rc = err_set(err, ERR_INVALID, "import: cannot open %s: %s", path, strerror(errno));
    int saw_header = 0;
    ssize_t n;
    while (!rc && (n = getline(&x->line, &x->line_cap, x->f)) >= 0) {
        x->lineno++;
        if (n == 0 || x->line[n - 1] != '\n') {
            rc = export_import_bad(x, err, "the line is incomplete (is an export still "
                                           "writing the file?)");
            break;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(x->line, (size_t)n - 1, 0, &jerr);
        const char *kind = json_string_value(json_object_get(doc, "kind"));
        if (!json_is_object(doc))
            rc = export_import_bad(x, err, "not a JSON object%s%s", doc ? "" : ": ",
                                   doc ? "" : jerr.text);
        else if (!saw_header)
            rc = export_import_header(x, doc, err);
        else if (kind && strcmp(kind, "session") == 0)
            rc = export_import_session(x, doc, err);
        else if (kind && strcmp(kind, "event") == 0)
            rc = export_import_event(x, doc, err);
        else
            rc = export_import_bad(x, err, "unknown line kind '%s'", kind ? kind : "");
        saw_header = 1;
        json_decref(doc);
    }
    if (!rc && x->f && ferror(x->f))
        rc = err_set(err, ERR_INVALID, "import: reading %s: %s", path, strerror(errno));
    if (!rc && !saw_header)
        rc = err_set(err, ERR_INVALID, "import: %s is empty: not a sandbox-journal export",
                     path);
    if (!rc)
        rc = export_import_end_chunk(x, err);
    if (!rc && sum)
        *sum = x->sum;
    export_import_close(x);
    free(x);
    return rc;
}

int export_import_check(const char *path, journal_t *j, struct err *err)
{
    return export_import_pass(path, j, 0, NULL, err);
}

int export_import_jsonl(const char *path, journal_t *j, struct export_import_summary *sum,
                        struct err *err)
{
    if (!j)
        return err_set(err, ERR_INVALID, "import: no journal");
    int rc = export_import_check(path, j, err);
    if (!rc)
        rc = export_import_pass(path, j, 1, sum, err);
    return rc;
}
