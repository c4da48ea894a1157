/* Rows for the export targets; see export_row.h. */
#include "export/export_row.h"

#include "base/buf.h"
#include "base/err.h"
#include "events/event.h"
#include "journal/journal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rows ------------------------------------------------------------------ */

void export_row_clear(struct export_row *row)
{
    if (!row)
        return;
    free(row->json);
    free(row->raw);
    free(row->data);
    json_decref(row->doc);
    memset(row, 0, sizeof *row);
}

/* borrowed: the string at `key` of `doc`, or NULL when absent or not one. */
static const char *export_row_str(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

static int export_row_bad(struct export_row *row, struct err *err, const char *sid,
                          uint64_t seq, const char *why)
{
    export_row_clear(row);
    return err_set_subject(err, ERR_INVALID, sid, "event %s/%llu: %s", sid,
                           (unsigned long long)seq, why);
}

int export_row_init(struct export_row *row, const char *session_id, uint64_t sequence,
                    const char *json, size_t json_len, const char *raw, size_t raw_len,
                    int turn_end, struct err *err)
{
    memset(row, 0, sizeof *row);
    row->session_id = session_id;
    row->sequence = sequence;
    row->turn_end = turn_end ? 1 : 0;
    row->json = malloc(json_len + 1);
    if (raw)
        row->raw = malloc(raw_len + 1);
    if (!row->json || (raw && !row->raw)) {
        export_row_clear(row);
        return err_set_subject(err, ERR_NOMEM, session_id, "out of memory");
    }
    memcpy(row->json, json, json_len);
    row->json[json_len] = '\0';
    row->json_len = json_len;
    if (raw) {
        memcpy(row->raw, raw, raw_len);
        row->raw[raw_len] = '\0';
        row->raw_len = raw_len;
    }

    /* The stored text is {envelope...,"data":{...},"raw":null}: parsing
     * only the envelope, and taking the data's bytes as they are, costs a
     * fraction of parsing the whole (data is most of it) and keeps the data
     * byte for byte.  Inside a JSON string every '"' is escaped, so the
     * first ,"data": outside one is the key itself; anything else is parsed
     * whole. */
    static const char data_key[] = ",\"data\":";
    static const char tail[] = ",\"raw\":null}";
    const size_t key_len = sizeof data_key - 1, tail_len = sizeof tail - 1;
    const char *key = strstr(row->json, data_key);
    const char *data_end = row->json + json_len - tail_len;
    json_error_t jerr;
    char *prefix = NULL;
    const char *parsed = row->json; /* what was given to jansson */
    size_t parsed_len = json_len;
    if (key && json_len > tail_len && memcmp(data_end, tail, tail_len) == 0 &&
        key + key_len < data_end && key[key_len] == '{') {
        size_t prefix_len = (size_t)(key - row->json);
        prefix = malloc(prefix_len + 2);
        row->data_len = (size_t)(data_end - (key + key_len));
        row->data = malloc(row->data_len + 1);
        if (!prefix || !row->data) {
            free(prefix);
            export_row_clear(row);
            return err_set_subject(err, ERR_NOMEM, session_id, "out of memory");
        }
        memcpy(prefix, row->json, prefix_len);
        memcpy(prefix + prefix_len, "}", 2);
        memcpy(row->data, key + key_len, row->data_len);
        row->data[row->data_len] = '\0';
        parsed = prefix;
        parsed_len = prefix_len + 1;
    }
    row->doc = json_loadb(parsed, parsed_len, JSON_ALLOW_NUL, &jerr);
    int nomem = !row->doc && event_json_load_nomem(&jerr, parsed, parsed_len);
    free(prefix);
    if (nomem) {
        export_row_clear(row);
        return err_set_subject(err, ERR_NOMEM, session_id, "out of memory");
    }
    if (!json_is_object(row->doc))
        return export_row_bad(row, err, session_id, sequence, "stored text is not an object");
    const json_t *seq = json_object_get(row->doc, "sequence");
    const char *sid = export_row_str(row->doc, "session_id");
    if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != sequence || !sid ||
        strcmp(sid, session_id) != 0)
        return export_row_bad(row, err, session_id, sequence,
                              "stored text names another session or sequence");
    row->event_id = export_row_str(row->doc, "event_id");
    row->time = export_row_str(row->doc, "time");
    row->type = export_row_str(row->doc, "type");
    row->source = export_row_str(row->doc, "source");
    const json_t *native = json_object_get(row->doc, "native_session_id");
    const json_t *synthetic = json_object_get(row->doc, "synthetic");
    const json_t *data = json_object_get(row->doc, "data");
    if (!row->event_id || !row->time || !row->type || !row->source ||
        !json_is_boolean(synthetic) || (!data && !row->data) ||
        (native && !json_is_string(native) && !json_is_null(native)))
        return export_row_bad(row, err, session_id, sequence,
                              "stored text lacks an envelope field");
    row->native_session_id = json_string_value(native);
    row->synthetic = json_is_true(synthetic);
    if (export_row_time_us(row->time, &row->time_us) != 0)
        return export_row_bad(row, err, session_id, sequence, "time is not RFC 3339");
    if (!row->data) {
        /* Not in the canonical shape: the data as compact JSON text. */
        row->data = event_dump(data, &row->data_len);
        if (!row->data) {
            export_row_clear(row);
            return err_set_subject(err, ERR_NOMEM, session_id, "out of memory");
        }
    }
    return 0;
}

/* ---- time ------------------------------------------------------------------ */

/* Reads exactly `n` digits at *p, advancing it.  -1 if they are not. */
static int64_t export_row_digits(const char **p, int n)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int export_row_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar: whole
 * years counted with their leap days, then the months of year y. */
static int64_t export_row_days(int64_t y, int64_t m, int64_t d)
{
    static const int before_month[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t prior = y - 1; /* years completed before y, counted from year 1 */
    int64_t days = prior * 365 + prior / 4 - prior / 100 + prior / 400;
    days += before_month[m - 1] + (m > 2 && export_row_is_leap(y)) + (d - 1);
    return days - 719162; /* the same count for 1970-01-01 */
}

int export_row_time_us(const char *text, int64_t *out)
{
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!text)
        return ERR_INVALID;
    const char *p = text;
    int64_t y = export_row_digits(&p, 4);
    if (y < 1 || *p++ != '-')
        return ERR_INVALID;
    int64_t mo = export_row_digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-')
        return ERR_INVALID;
    int64_t d = export_row_digits(&p, 2);
    if (d < 1 || d > month_days[mo - 1] || (mo == 2 && d == 29 && !export_row_is_leap(y)))
        return ERR_INVALID;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return ERR_INVALID;
    p++;
    int64_t h = export_row_digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':')
        return ERR_INVALID;
    int64_t mi = export_row_digits(&p, 2);
    if (mi < 0 || mi > 59 || *p++ != ':')
        return ERR_INVALID;
    int64_t s = export_row_digits(&p, 2);
    if (s < 0 || s > 60) /* 60: a leap second, folded into the next minute */
        return ERR_INVALID;
    int64_t us = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 6)
                us = us * 10 + (*p - '0');
        if (n == 0)
            return ERR_INVALID;
        for (; n < 6; n++)
            us *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int64_t oh = export_row_digits(&p, 2);
        if (oh < 0 || oh > 23 || *p++ != ':')
            return ERR_INVALID;
        int64_t om = export_row_digits(&p, 2);
        if (om < 0 || om > 59)
            return ERR_INVALID;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return ERR_INVALID;
    }
    if (*p)
        return ERR_INVALID;
    int64_t secs = export_row_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset;
    *out = secs * 1000000 + us;
    return 0;
}

void export_row_datetime(int64_t seconds, char out[20])
{
    if (seconds < 0)
        seconds = 0;
    int64_t days = seconds / 86400, rest = seconds % 86400;
    int64_t y = 1970;
    for (;;) {
        int64_t len = export_row_is_leap(y) ? 366 : 365;
        if (days < len)
            break;
        days -= len;
        y++;
    }
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int m = 0;
    for (; m < 11; m++) {
        int64_t len = month_days[m] + (m == 1 && export_row_is_leap(y));
        if (days < len)
            break;
        days -= len;
    }
    /* Every field is in range, but the compiler cannot know: format into
     * room for any int, then keep the 19 characters. */
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d", (int)(y % 10000), m + 1,
             (int)days + 1, (int)(rest / 3600), (int)(rest / 60 % 60), (int)(rest % 60));
    memcpy(out, tmp, 19);
    out[19] = '\0';
}

/* ---- encodings ------------------------------------------------------------- */

int export_row_json_string(struct buf *b, const char *s, size_t len)
{
    /* Reserve for the common case (nothing to escape) once. */
    if (buf_reserve(b, len + 2))
        return ERR_NOMEM;
    if (buf_append(b, "\"", 1))
        return ERR_NOMEM;
    size_t run = 0; /* bytes since the last escape, appended in one go */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", c);
                esc = hex;
            }
        }
        if (!esc) {
            run++;
            continue;
        }
        if (buf_append(b, s + i - run, run) || buf_puts(b, esc))
            return ERR_NOMEM;
        run = 0;
    }
    if (buf_append(b, s + len - run, run) || buf_append(b, "\"", 1))
        return ERR_NOMEM;
    return 0;
}

static int export_row_json_opt(struct buf *b, const char *s)
{
    return s ? export_row_json_string(b, s, strlen(s)) : buf_puts(b, "null");
}

int export_row_copy_field(struct buf *b, const char *s, size_t len)
{
    if (!s)
        return buf_puts(b, "\\N");
    if (buf_reserve(b, len))
        return ERR_NOMEM;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;
        switch (s[i]) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: break;
        }
        if (!esc) {
            run++;
            continue;
        }
        if (buf_append(b, s + i - run, run) || buf_puts(b, esc))
            return ERR_NOMEM;
        run = 0;
    }
    return buf_append(b, s + len - run, run);
}

static int export_row_copy_str(struct buf *b, const char *s)
{
    return export_row_copy_field(b, s, s ? strlen(s) : 0);
}

/* ---- ClickHouse ------------------------------------------------------------ */

int export_row_ch_event(struct buf *b, const struct export_row *r)
{
    char when[20];
    export_row_datetime(r->time_us / 1000000, when);
    if (buf_puts(b, "{\"session_id\":") ||
        export_row_json_string(b, r->session_id, strlen(r->session_id)) ||
        buf_printf(b, ",\"sequence\":%llu,\"event_id\":", (unsigned long long)r->sequence) ||
        export_row_json_opt(b, r->event_id) || buf_puts(b, ",\"native_session_id\":") ||
        export_row_json_opt(b, r->native_session_id) ||
        buf_printf(b, ",\"time\":\"%s\",\"time_us\":%lld,\"type\":", when,
                   (long long)r->time_us) ||
        export_row_json_opt(b, r->type) || buf_puts(b, ",\"source\":") ||
        export_row_json_opt(b, r->source) ||
        buf_printf(b, ",\"synthetic\":%d,\"turn_end\":%d,\"data\":", r->synthetic,
                   r->turn_end) ||
        export_row_json_string(b, r->data, r->data_len) || buf_puts(b, ",\"raw\":") ||
        (r->raw ? export_row_json_string(b, r->raw, r->raw_len) : buf_puts(b, "null")) ||
        buf_puts(b, "}\n"))
        return ERR_NOMEM;
    return 0;
}

/* Seconds since 1970 of a stored RFC 3339 time; 0 when it does not parse
 * (only a hand-edited database could hold such a row). */
static int64_t export_row_seconds(const char *text)
{
    int64_t us = 0;
    return export_row_time_us(text, &us) == 0 ? us / 1000000 : 0;
}

int export_row_ch_session(struct buf *b, const struct export_session *s, int64_t now)
{
    const struct journal_session_info *i = &s->info;
    char created[20], exported[20];
    export_row_datetime(export_row_seconds(i->created_at), created);
    export_row_datetime(now, exported);
    if (buf_puts(b, "{\"session_id\":") || export_row_json_opt(b, i->session_id) ||
        buf_puts(b, ",\"agent\":") || export_row_json_opt(b, i->agent) ||
        buf_puts(b, ",\"agent_mode\":") || export_row_json_opt(b, i->agent_mode) ||
        buf_puts(b, ",\"permission_mode\":") || export_row_json_opt(b, i->permission_mode) ||
        buf_puts(b, ",\"model\":") || export_row_json_opt(b, i->model) ||
        buf_puts(b, ",\"variant\":") || export_row_json_opt(b, i->variant) ||
        buf_puts(b, ",\"agent_version\":") || export_row_json_opt(b, i->agent_version) ||
        buf_puts(b, ",\"native_session_id\":") ||
        export_row_json_opt(b, i->native_session_id) || buf_puts(b, ",\"working_dir\":") ||
        export_row_json_opt(b, i->working_dir) ||
        buf_printf(b, ",\"created_at\":\"%s\",\"ended\":%d,\"event_count\":%llu,"
                      "\"exported_at\":\"%s\"}\n",
                   created, s->ended, (unsigned long long)s->event_count, exported))
        return ERR_NOMEM;
    return 0;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

int export_row_pg_event(struct buf *b, const struct export_row *r)
{
    if (export_row_copy_str(b, r->session_id) ||
        buf_printf(b, "\t%llu\t", (unsigned long long)r->sequence) ||
        export_row_copy_str(b, r->event_id) || buf_puts(b, "\t") ||
        export_row_copy_str(b, r->native_session_id) || buf_puts(b, "\t") ||
        export_row_copy_str(b, r->time) || buf_puts(b, "\t") ||
        export_row_copy_str(b, r->type) || buf_puts(b, "\t") ||
        export_row_copy_str(b, r->source) ||
        buf_printf(b, "\t%c\t%c\t", r->synthetic ? 't' : 'f', r->turn_end ? 't' : 'f') ||
        export_row_copy_field(b, r->data, r->data_len) || buf_puts(b, "\t") ||
        export_row_copy_field(b, r->raw, r->raw_len) || buf_puts(b, "\n"))
        return ERR_NOMEM;
    return 0;
}

int export_row_pg_session(struct buf *b, const struct export_session *s)
{
    const struct journal_session_info *i = &s->info;
    const char *cols[] = {i->session_id, i->agent, i->agent_mode, i->permission_mode,
                          i->model, i->variant, i->agent_version, i->native_session_id,
                          i->working_dir, i->created_at};
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        if (export_row_copy_str(b, cols[k]) || buf_puts(b, "\t"))
            return ERR_NOMEM;
    if (buf_printf(b, "%d\t%llu\n", s->ended, (unsigned long long)s->event_count))
        return ERR_NOMEM;
    return 0;
}

/* ---- JSONL ----------------------------------------------------------------- */

int export_row_jsonl_header(struct buf *b)
{
    return buf_printf(b, "{\"kind\":\"%s\",\"version\":%d}\n", EXPORT_ROW_JSONL_FORMAT,
                      EXPORT_ROW_JSONL_VERSION);
}

int export_row_jsonl_session(struct buf *b, const struct export_session *s)
{
    const struct journal_session_info *i = &s->info;
    if (buf_puts(b, "{\"kind\":\"session\",\"session_id\":") ||
        export_row_json_opt(b, i->session_id) || buf_puts(b, ",\"agent\":") ||
        export_row_json_opt(b, i->agent) || buf_puts(b, ",\"agent_mode\":") ||
        export_row_json_opt(b, i->agent_mode) || buf_puts(b, ",\"permission_mode\":") ||
        export_row_json_opt(b, i->permission_mode) || buf_puts(b, ",\"model\":") ||
        export_row_json_opt(b, i->model) || buf_puts(b, ",\"variant\":") ||
        export_row_json_opt(b, i->variant) || buf_puts(b, ",\"agent_version\":") ||
        export_row_json_opt(b, i->agent_version) || buf_puts(b, ",\"native_session_id\":") ||
        export_row_json_opt(b, i->native_session_id) || buf_puts(b, ",\"working_dir\":") ||
        export_row_json_opt(b, i->working_dir) || buf_puts(b, ",\"adapter_state\":") ||
        export_row_json_opt(b, i->adapter_state) || buf_puts(b, ",\"created_at\":") ||
        export_row_json_opt(b, i->created_at) ||
        buf_printf(b, ",\"ended\":%d,\"last_sequence\":%llu}\n", s->ended,
                   (unsigned long long)s->event_count))
        return ERR_NOMEM;
    return 0;
}

int export_row_jsonl_event(struct buf *b, const struct export_row *r)
{
    if (buf_puts(b, "{\"kind\":\"event\",\"session_id\":") ||
        export_row_json_string(b, r->session_id, strlen(r->session_id)) ||
        buf_printf(b, ",\"sequence\":%llu,\"type\":", (unsigned long long)r->sequence) ||
        export_row_json_opt(b, r->type) ||
        buf_printf(b, ",\"turn_end\":%s,\"json\":", r->turn_end ? "true" : "false") ||
        export_row_json_string(b, r->json, r->json_len) || buf_puts(b, ",\"raw\":") ||
        (r->raw ? export_row_json_string(b, r->raw, r->raw_len) : buf_puts(b, "null")) ||
        buf_puts(b, "}\n"))
        return ERR_NOMEM;
    return 0;
}
