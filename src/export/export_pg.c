/* The PostgreSQL export target (libpq).
 *
 * A batch is one transaction: COPY the rows into a temporary staging table,
 * then INSERT ... SELECT ... ON CONFLICT (session_id, sequence) DO NOTHING
 * into sj_events (COPY itself has no ON CONFLICT: one duplicate would abort
 * it whole), and the same for the session rows with DO UPDATE when the new
 * row is at least as far along.  Re-sending a batch is therefore a no-op,
 * and COMMIT returning is the confirmation the exporter checkpoints on.
 *
 * The schema (migrations/postgres/NNNN_*.sql) is applied on connect under a
 * transaction-scoped advisory lock, so exporters racing on a new database
 * apply each file once; sj_schema_versions records what was applied. */
#include "export/export_target.h"

#include "base/buf.h"
#include "base/err.h"
#include "export/export_row.h"
#include "export/export_url.h"
#include "base/hmap.h"
#include "journal/migrations.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PQputCopyData takes an int length: feed COPY in pieces this size. */
#define EXPORT_PG_COPY_CHUNK (1024 * 1024)

/* Any constant both exporters agree on; it only names the schema lock. */
#define EXPORT_PG_SCHEMA_LOCK "7275463921"

struct export_pg {
    struct export_target base; /* first: the exporter holds a pointer to it */
    PGconn *conn;
    struct buf rows; /* reused COPY text */
};

static struct export_pg *export_pg_of(struct export_target *t)
{
    return (struct export_pg *)(void *)t;
}

/* libpq prints notices ("relation already exists, skipping") on stderr by
 * default; the exporter reports what matters itself. */
static void export_pg_quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* nothing to report */
}

/* Fills err from a failed call.  `res` may be NULL (a connection-level
 * failure).  Decides t->transient from the SQLSTATE: connection problems,
 * shutdowns, lack of resources and serialization failures pass with time;
 * anything else is the server refusing the statement. */
static int export_pg_fail(struct export_pg *p, PGresult *res, const char *what,
                          struct err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = p->conn ? PQerrorMessage(p->conn) : "out of memory";
    int bad_conn = !p->conn || PQstatus(p->conn) == CONNECTION_BAD;
    p->base.transient = bad_conn || !state || strncmp(state, "08", 2) == 0 ||
                        strncmp(state, "53", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0;
    /* One line: libpq's messages end in newlines and may have a DETAIL. */
    char line[200];
    snprintf(line, sizeof line, "%s", msg);
    line[strcspn(line, "\n")] = '\0';
    err_set(err, p->base.transient ? ERR_STORAGE : ERR_INVALID, "postgres: %s: %s", what,
            line);
    if (err)
        export_url_scrub(p->base.url, err->msg, sizeof err->msg);
    return err ? err->code : ERR_STORAGE;
}

/* Runs a statement that returns no rows (or rows nobody reads). */
static int export_pg_exec(struct export_pg *p, const char *sql, const char *what,
                          struct err *err)
{
    PGresult *res = PQexec(p->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = export_pg_fail(p, res, what, err);
    PQclear(res);
    return rc;
}

/* Ends a failed transaction so the connection can be used again; if even
 * that fails the connection is dropped and the next call reconnects. */
static void export_pg_rollback(struct export_pg *p)
{
    if (!p->conn || PQtransactionStatus(p->conn) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(p->conn, "ROLLBACK");
    int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        PQfinish(p->conn);
        p->conn = NULL;
    }
}

static void export_pg_disconnect(struct export_target *t)
{
    struct export_pg *p = export_pg_of(t);
    if (p->conn)
        PQfinish(p->conn);
    p->conn = NULL;
}

/* Applies the migrations the database lacks, in one transaction. */
static int export_pg_migrate(struct export_pg *p, struct err *err)
{
    int rc = export_pg_exec(p, "BEGIN", "begin", err);
    if (!rc)
        rc = export_pg_exec(p, "SELECT pg_advisory_xact_lock(" EXPORT_PG_SCHEMA_LOCK ")",
                            "schema lock", err);
    if (!rc)
        rc = export_pg_exec(p,
                            "CREATE TABLE IF NOT EXISTS sj_schema_versions ("
                            "version integer PRIMARY KEY, name text NOT NULL, "
                            "applied_at timestamptz NOT NULL DEFAULT now())",
                            "schema versions", err);
    long have = 0;
    if (!rc) {
        PGresult *res = PQexec(p->conn, "SELECT coalesce(max(version), 0) FROM "
                                        "sj_schema_versions");
        if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            have = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        else
            rc = export_pg_fail(p, res, "schema version", err);
        PQclear(res);
    }
    int newest = migrations_postgres_count
                     ? migrations_postgres_all[migrations_postgres_count - 1].version
                     : 0;
    if (!rc && have > newest) {
        p->base.transient = 0;
        rc = err_set(err, ERR_INVALID,
                     "postgres: the target's schema is at version %ld, newer than the %d "
                     "this binary knows",
                     have, newest);
    }
    for (size_t i = 0; !rc && i < migrations_postgres_count; i++) {
        const struct migration *m = &migrations_postgres_all[i];
        if (m->version <= have)
            continue;
        rc = export_pg_exec(p, m->sql, m->name, err);
        if (rc)
            break;
        char version[16];
        snprintf(version, sizeof version, "%d", m->version);
        const char *params[2] = {version, m->name};
        PGresult *res = PQexecParams(p->conn,
                                     "INSERT INTO sj_schema_versions(version, name) "
                                     "VALUES ($1::integer, $2)",
                                     2, NULL, params, NULL, NULL, 0);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = export_pg_fail(p, res, m->name, err);
        PQclear(res);
    }
    if (!rc)
        rc = export_pg_exec(p, "COMMIT", "commit", err);
    if (rc)
        export_pg_rollback(p);
    return rc;
}

static int export_pg_connect(struct export_target *t, struct err *err)
{
    struct export_pg *p = export_pg_of(t);
    export_pg_disconnect(t);
    /* Defaults first: the URL (expanded from dbname) overrides any of them. */
    const char *keys[] = {"connect_timeout", "application_name", "client_encoding",
                          "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "dbname", NULL};
    const char *values[] = {"5", "sandbox-journal export", "UTF8", "10", "5", "3",
                            t->url->text, NULL};
    p->conn = PQconnectdbParams(keys, values, 1);
    if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
        int rc = export_pg_fail(p, NULL, "cannot connect", err);
        export_pg_disconnect(t);
        return rc;
    }
    PQsetNoticeProcessor(p->conn, export_pg_quiet, NULL);
    int rc = export_pg_migrate(p, err);
    /* Per-connection staging tables, emptied by every commit. */
    if (!rc)
        rc = export_pg_exec(p,
                            "CREATE TEMP TABLE IF NOT EXISTS sj_stage_events "
                            "(LIKE sj_events) ON COMMIT DELETE ROWS",
                            "staging table", err);
    if (!rc)
        rc = export_pg_exec(p,
                            "CREATE TEMP TABLE IF NOT EXISTS sj_stage_sessions "
                            "(LIKE sj_sessions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                            "staging table", err);
    if (rc)
        export_pg_disconnect(t);
    return rc;
}

/* COPYs p->rows into `table`. */
static int export_pg_copy(struct export_pg *p, const char *sql, struct err *err)
{
    PGresult *res = PQexec(p->conn, sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        int rc = export_pg_fail(p, res, "copy", err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (size_t off = 0; off < p->rows.len;) {
        size_t n = p->rows.len - off;
        if (n > EXPORT_PG_COPY_CHUNK)
            n = EXPORT_PG_COPY_CHUNK;
        if (PQputCopyData(p->conn, p->rows.data + off, (int)n) != 1) {
            int rc = export_pg_fail(p, NULL, "copy data", err);
            /* Ending the COPY is still needed for the connection's sake; its
             * own failure adds nothing to the one reported. */
            if (PQputCopyEnd(p->conn, "sandbox-journal: copy failed") != 1)
                p->base.transient = 1;
            while ((res = PQgetResult(p->conn)))
                PQclear(res);
            return rc;
        }
        off += n;
    }
    if (PQputCopyEnd(p->conn, NULL) != 1)
        return export_pg_fail(p, NULL, "copy end", err);
    int rc = 0;
    while ((res = PQgetResult(p->conn))) {
        if (!rc && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = export_pg_fail(p, res, "copy", err);
        PQclear(res);
    }
    return rc;
}

static int export_pg_send(struct export_target *t, const struct export_batch *b,
                          struct err *err)
{
    struct export_pg *p = export_pg_of(t);
    if (!p->conn) {
        t->transient = 1;
        return err_set(err, ERR_STORAGE, "postgres: not connected");
    }
    buf_reset(&p->rows);
    for (size_t i = 0; i < b->n_rows; i++)
        if (export_row_pg_event(&p->rows, &b->rows[i])) {
            t->transient = 0;
            return err_set(err, ERR_NOMEM, "postgres: out of memory");
        }
    int rc = export_pg_exec(p, "BEGIN", "begin", err);
    if (!rc)
        rc = export_pg_copy(p, "COPY sj_stage_events (" EXPORT_ROW_PG_EVENT_COLUMNS
                               ") FROM STDIN",
                            err);
    if (!rc)
        rc = export_pg_exec(p,
                            "INSERT INTO sj_events (" EXPORT_ROW_PG_EVENT_COLUMNS ") "
                            "SELECT " EXPORT_ROW_PG_EVENT_COLUMNS " FROM sj_stage_events "
                            "ON CONFLICT (session_id, sequence) DO NOTHING",
                            "insert events", err);
    if (!rc) {
        buf_reset(&p->rows);
        for (size_t i = 0; i < b->n_sessions && !rc; i++)
            if (export_row_pg_session(&p->rows, &b->sessions[i])) {
                t->transient = 0;
                rc = err_set(err, ERR_NOMEM, "postgres: out of memory");
            }
    }
    if (!rc)
        rc = export_pg_copy(p, "COPY sj_stage_sessions (" EXPORT_ROW_PG_SESSION_COLUMNS
                               ") FROM STDIN",
                            err);
    /* A session row only moves forward: a re-sent older batch leaves a newer
     * row alone. */
    if (!rc)
        rc = export_pg_exec(p,
                            "INSERT INTO sj_sessions (" EXPORT_ROW_PG_SESSION_COLUMNS ") "
                            "SELECT " EXPORT_ROW_PG_SESSION_COLUMNS " FROM sj_stage_sessions "
                            "ON CONFLICT (session_id) DO UPDATE SET "
                            "agent = excluded.agent, agent_mode = excluded.agent_mode, "
                            "permission_mode = excluded.permission_mode, "
                            "model = excluded.model, variant = excluded.variant, "
                            "agent_version = excluded.agent_version, "
                            "native_session_id = excluded.native_session_id, "
                            "working_dir = excluded.working_dir, "
                            "created_at = excluded.created_at, ended = excluded.ended, "
                            "event_count = excluded.event_count, exported_at = now() "
                            "WHERE sj_sessions.event_count <= excluded.event_count",
                            "upsert sessions", err);
    if (!rc)
        rc = export_pg_exec(p, "COMMIT", "commit", err);
    if (rc)
        export_pg_rollback(p);
    return rc;
}

/* Appends `s` as an element of a PostgreSQL array literal: quoted, with
 * backslash and double quote escaped. */
static int export_pg_array_elem(struct buf *b, const char *s)
{
    if (buf_puts(b, "\""))
        return ERR_NOMEM;
    for (const char *c = s; *c; c++)
        if (((*c == '"' || *c == '\\') && buf_puts(b, "\\")) || buf_append(b, c, 1))
            return ERR_NOMEM;
    return buf_puts(b, "\"");
}

static int export_pg_probe(struct export_target *t, const char *const *ids, size_t n,
                           uint64_t *have, struct err *err)
{
    struct export_pg *p = export_pg_of(t);
    if (!p->conn) {
        t->transient = 1;
        return err_set(err, ERR_STORAGE, "postgres: not connected");
    }
    struct buf arr;
    buf_init(&arr);
    int rc = buf_puts(&arr, "{");
    for (size_t i = 0; i < n && !rc; i++)
        rc = (i && buf_puts(&arr, ",")) || export_pg_array_elem(&arr, ids[i]);
    rc = rc || buf_puts(&arr, "}");
    hmap_t *index = hmap_new();
    if (rc || !index) {
        buf_free(&arr);
        hmap_free(index);
        t->transient = 0;
        return err_set(err, ERR_NOMEM, "postgres: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        have[i] = 0;
        if (hmap_put(index, ids[i], &have[i])) {
            buf_free(&arr);
            hmap_free(index);
            t->transient = 0;
            return err_set(err, ERR_NOMEM, "postgres: out of memory");
        }
    }
    const char *params[1] = {arr.data};
    PGresult *res = PQexecParams(p->conn,
                                 "SELECT session_id, max(sequence), count(*) FROM sj_events "
                                 "WHERE session_id = ANY($1::text[]) GROUP BY session_id",
                                 1, NULL, params, NULL, NULL, 0);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = export_pg_fail(p, res, "probe", err);
    } else {
        for (int r = 0; r < PQntuples(res); r++) {
            uint64_t *slot = hmap_get(index, PQgetvalue(res, r, 0));
            unsigned long long max = strtoull(PQgetvalue(res, r, 1), NULL, 10);
            unsigned long long count = strtoull(PQgetvalue(res, r, 2), NULL, 10);
            /* Sequences start at 1 and the key makes them unique: as many
             * rows as the highest means none is missing. */
            if (slot && max == count)
                *slot = max;
        }
    }
    PQclear(res);
    buf_free(&arr);
    hmap_free(index);
    return rc;
}

static void export_pg_free(struct export_target *t)
{
    if (!t)
        return;
    struct export_pg *p = export_pg_of(t);
    export_pg_disconnect(t);
    buf_free(&p->rows);
    free(p);
}

static const struct export_target_ops export_pg_ops = {
    .kind = "postgres",
    .connect = export_pg_connect,
    .probe = export_pg_probe,
    .send = export_pg_send,
    .disconnect = export_pg_disconnect,
    .free = export_pg_free,
};

int export_pg_new(const struct export_url *u, struct export_target **out, struct err *err)
{
    struct export_pg *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory");
    p->base.ops = &export_pg_ops;
    p->base.url = u;
    buf_init(&p->rows);
    *out = &p->base;
    return 0;
}
