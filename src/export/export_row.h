/* Rows for the export targets, built from the journal's stored events.
 *
 * A journal event is stored as its exact JSON text (event.h).  An exporter
 * copies that text (and the raw payload) into an export_row, parses the
 * envelope out of it once, and each target writes the row in its own
 * format: a ClickHouse JSONEachRow line, a PostgreSQL COPY text line, or a
 * JSONL line that carries the stored text itself, byte for byte, so an
 * import can put it back verbatim.  No I/O here: unit tests call it all. */
#ifndef SJ_EXPORT_ROW_H
#define SJ_EXPORT_ROW_H

#include "base/buf.h"
#include "base/err.h"
#include "journal/journal.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The JSONL format's first line and version. */
#define EXPORT_ROW_JSONL_FORMAT "sandbox-journal-export"
#define EXPORT_ROW_JSONL_VERSION 1

/* One exported session as of one batch. */
struct export_session {
    struct journal_session_info info; /* owned: journal_session_info_clear() */
    uint64_t event_count; /* the last sequence the batch carries for it */
    int ended;            /* info.ended once event_count reaches info.last_sequence, else 0:
                           * a target never says "ended" before it has the last event */
};

/* One event.  Everything is owned by the row (export_row_clear()), the
 * envelope strings borrowed from `doc`. */
struct export_row {
    const char *session_id; /* borrowed from the batch's export_session */
    uint64_t sequence;
    char *json;             /* the stored text, exactly */
    size_t json_len;
    char *raw;              /* the stored native payload, or NULL */
    size_t raw_len;
    int turn_end;

    json_t *doc;            /* `json` parsed */
    const char *event_id;
    const char *native_session_id; /* NULL when null */
    const char *time;       /* RFC 3339 as stored */
    const char *type;
    const char *source;
    int synthetic;
    char *data;             /* the data object's stored bytes (compact JSON) */
    size_t data_len;
    int64_t time_us;        /* `time` in microseconds since 1970 */
};

/* Copies the stored event into `row` and parses its envelope, checking that
 * it names `session_id` and `sequence`.  ERR_INVALID (err says which event)
 * if the text is not such an event; ERR_NOMEM.  On failure `row` is left
 * cleared.  `session_id` is borrowed for the row's life. */
int export_row_init(struct export_row *row, const char *session_id, uint64_t sequence,
                    const char *json, size_t json_len, const char *raw, size_t raw_len,
                    int turn_end, struct err *err);

void export_row_clear(struct export_row *row);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" (also with a
 * space for the T) into microseconds since 1970-01-01T00:00:00Z.  0, or
 * ERR_INVALID. */
int export_row_time_us(const char *text, int64_t *out /* OUT */);

/* Writes seconds since 1970 as "YYYY-MM-DD hh:mm:ss" (UTC), ClickHouse's
 * DateTime text.  Times before 1970 are written as 1970-01-01 00:00:00. */
void export_row_datetime(int64_t seconds, char out[20]);

/* Appends s[0..len) as a JSON string literal, quotes included.  Control
 * characters are escaped; other bytes pass as they are (UTF-8 stays UTF-8).
 * All appenders return 0 or ERR_NOMEM. */
int export_row_json_string(struct buf *b, const char *s, size_t len);

/* Appends s[0..len) as a field of PostgreSQL's COPY text format (backslash,
 * tab, newline and carriage return escaped); NULL appends \N. */
int export_row_copy_field(struct buf *b, const char *s, size_t len);

/* One JSONEachRow line (with '\n') for sj_events / sj_sessions.
 * `now` is the export time in seconds since 1970. */
int export_row_ch_event(struct buf *b, const struct export_row *row);
int export_row_ch_session(struct buf *b, const struct export_session *s, int64_t now);

/* One COPY text line (with '\n') for the staging copies of sj_events /
 * sj_sessions, columns in EXPORT_ROW_PG_*_COLUMNS order. */
#define EXPORT_ROW_PG_EVENT_COLUMNS                                                        \
    "session_id, sequence, event_id, native_session_id, time, type, source, synthetic, "  \
    "turn_end, data, raw"
#define EXPORT_ROW_PG_SESSION_COLUMNS                                                      \
    "session_id, agent, agent_mode, permission_mode, model, variant, agent_version, "      \
    "native_session_id, working_dir, created_at, ended, event_count"
int export_row_pg_event(struct buf *b, const struct export_row *row);
int export_row_pg_session(struct buf *b, const struct export_session *s);

/* JSONL lines (with '\n'): the header that opens a file, a session line
 * (written before each run of that session's events), an event line
 * carrying the stored text and raw payload as JSON strings. */
int export_row_jsonl_header(struct buf *b);
int export_row_jsonl_session(struct buf *b, const struct export_session *s);
int export_row_jsonl_event(struct buf *b, const struct export_row *row);

#endif
