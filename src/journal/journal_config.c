/* The workspace configuration (MCP servers, skills per directory): its writes
 * go through the writer like batches, so the one write connection stays the
 * only one; its reads use the calling thread's reader.  Both are rare (a
 * client configuring a directory, a session starting), so the statements are
 * prepared per call rather than cached on every connection. */
#include "journal/journal_int.h"

#define CONFIG_PUT_SQL                                                                     \
    "INSERT INTO workspace_config(kind, directory, name, config, updated_at) "             \
    "VALUES(?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "                       \
    "ON CONFLICT(kind, directory, name) DO UPDATE SET config = excluded.config, "          \
    "updated_at = excluded.updated_at"
#define CONFIG_DELETE_SQL                                                                  \
    "DELETE FROM workspace_config WHERE kind = ?1 AND directory = ?2 AND name = ?3"

/* SQLITE_OK or the SQLite code; the group's transaction is the caller's. */
int journal__apply_config(journal_t *j, struct journal_node *n)
{
    assert(runs_group(j));
    const struct journal_config_op *c = &n->cfg;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(j->db, c->config ? CONFIG_PUT_SQL : CONFIG_DELETE_SQL, -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if ((rc = bind_str(st, 1, c->kind)) == SQLITE_OK &&
        (rc = bind_str(st, 2, c->directory)) == SQLITE_OK &&
        (rc = bind_str(st, 3, c->name)) == SQLITE_OK &&
        (!c->config || (rc = bind_str(st, 4, c->config)) == SQLITE_OK))
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    /* finalize repeats a step's failure, already in rc: keep the first. */
    int fin = sqlite3_finalize(st);
    return rc != SQLITE_OK ? rc : fin;
}

static int config_check(const char *kind, const char *directory, const char *name,
                        struct err *err)
{
    if (!kind || !directory || !*directory || !name || !*name)
        return err_set(err, ERR_INVALID, "journal: configuration entry without kind, "
                                         "directory or name");
    return 0;
}

/* One allocation: node, then its four strings. */
static int config_write(journal_t *j, const char *kind, const char *directory,
                        const char *name, const char *config, struct err *err)
{
    int rc = config_check(kind, directory, name, err);
    if (rc)
        return rc;
    size_t total = sizeof(struct journal_node);
    if (size_add(&total, str_space(kind)) || size_add(&total, str_space(directory)) ||
        size_add(&total, str_space(name)) || size_add(&total, str_space(config)))
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    struct journal_node *n = malloc(total);
    if (!n)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    memset(n, 0, sizeof *n);
    char *cursor = (char *)(n + 1);
    n->is_config = 1;
    n->cfg.kind = put_cstr(&cursor, kind);
    n->cfg.directory = put_cstr(&cursor, directory);
    n->cfg.name = put_cstr(&cursor, name);
    n->cfg.config = put_cstr(&cursor, config);
    return journal__run_and_wait(j, n, "", err);
}

int journal_config_put(journal_t *j, const char *kind, const char *directory,
                       const char *name, const char *config_json, struct err *err)
{
    if (!config_json)
        return err_set(err, ERR_INVALID, "journal: configuration entry without a body");
    return config_write(j, kind, directory, name, config_json, err);
}

int journal_config_delete(journal_t *j, const char *kind, const char *directory,
                          const char *name, struct err *err)
{
    return config_write(j, kind, directory, name, NULL, err);
}

/* Steps a prepared read of (name, config) rows through `fn`; finalizes it. */
static int config_rows(journal_reader_t *r, sqlite3_stmt *st, journal_config_fn fn,
                       void *arg, struct err *err)
{
    int rc, stopped = 0;
    while (!stopped && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *config = (const char *)sqlite3_column_text(st, 1);
        if (!name || !config) {
            rc = SQLITE_NOMEM;
            break;
        }
        stopped = fn(arg, name, config);
    }
    if (stopped) {
        if ((rc = sqlite3_finalize(st)) != SQLITE_OK)
            return sql_fail(err, r->db, rc, "read workspace config");
        return stopped;
    }
    if (rc != SQLITE_DONE) {
        sql_fail(err, r->db, rc, "read workspace config");
        finalize_after_error(st);
        return err->code;
    }
    if ((rc = sqlite3_finalize(st)) != SQLITE_OK)
        return sql_fail(err, r->db, rc, "read workspace config");
    return 0;
}

static int config_select(journal_reader_t *r, const char *kind, const char *directory,
                         const char *name, journal_config_fn fn, void *arg, struct err *err)
{
    assert(!r || reader_is_mine(r));
    if (!r || !fn)
        return err_set(err, ERR_INVALID, "journal: config read without reader or callback");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db,
                                name ? "SELECT name, config FROM workspace_config WHERE "
                                       "kind = ?1 AND directory = ?2 AND name = ?3"
                                     : "SELECT name, config FROM workspace_config WHERE "
                                       "kind = ?1 AND directory = ?2 ORDER BY name",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(err, r->db, rc, "read workspace config");
    if ((rc = bind_str(st, 1, kind)) != SQLITE_OK || (rc = bind_str(st, 2, directory)) ||
        (name && (rc = bind_str(st, 3, name)))) {
        sql_fail(err, r->db, rc, "read workspace config");
        finalize_after_error(st);
        return err->code;
    }
    return config_rows(r, st, fn, arg, err);
}

static int config_take(void *arg, const char *name, const char *config)
{
    (void)name; /* the query named it */
    char **out = arg;
    *out = strdup(config);
    return *out ? 1 : ERR_NOMEM;
}

int journal_config_get(journal_reader_t *r, const char *kind, const char *directory,
                       const char *name, char **config_json, struct err *err)
{
    *config_json = NULL;
    int rc = config_check(kind, directory, name, err);
    if (rc)
        return rc;
    rc = config_select(r, kind, directory, name, config_take, config_json, err);
    if (rc == ERR_NOMEM)
        return err_set(err, ERR_NOMEM, "journal: out of memory");
    if (rc < 0)
        return rc;
    if (!*config_json)
        return err_set(err, ERR_NOT_FOUND, "no %s entry %s for %s", kind, name, directory);
    return 0;
}

int journal_config_list(journal_reader_t *r, const char *kind, const char *directory,
                        journal_config_fn fn, void *arg, struct err *err)
{
    if (!kind || !directory)
        return err_set(err, ERR_INVALID, "journal: config list without kind or directory");
    return config_select(r, kind, directory, NULL, fn, arg, err);
}
