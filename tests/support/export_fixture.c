/* Helpers of the export integration tests; see export_fixture.h. */
#include "export_fixture.h"

#include "base/err.h"
#include "events/event.h"
#include "export/export_row.h"
#include "journal/journal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int sjx_slow(void)
{
    const char *w = getenv("SJ_SERVER_WRAPPER");
    return w && *w;
}

long long sjx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sjx_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *sjx_env(const char *name)
{
    const char *v = getenv(name);
    if (v && *v)
        return v;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        fail_msg("%s is not set: scripts/test.sh starts the target servers, and under CI=true "
                 "a missing server fails the export tests",
                 name);
    fprintf(stderr, "%s is not set (run scripts/test.sh); skipping\n", name);
    skip();
    return NULL;
}

/* ---- journals ------------------------------------------------------------------ */

static journal_t *sjx_open(const char *data_dir)
{
    if (mkdir(data_dir, 0755) != 0 && errno != EEXIST)
        fail_msg("cannot create %s: %s", data_dir, strerror(errno));
    char path[1024];
    snprintf(path, sizeof path, "%s/journal.db", data_dir);
    journal_t *j = NULL;
    struct err e;
    if (journal_open(path, JOURNAL_DURABILITY_NORMAL, &j, &e) != 0)
        fail_msg("journal_open %s: %s", path, e.msg);
    return j;
}

/* The event text of sequence `seq` of `sid` (new) and its raw payload (new
 * or NULL). */
static char *sjx_event_text(const char *sid, uint64_t seq, size_t *len, char **raw,
                            const char **type)
{
    char now[32];
    event_now(now);
    json_t *data;
    *raw = NULL;
    if (seq == 1) {
        *type = "session.started";
        data = event_session_started_data(json_pack("{s:s,s:s}", "agent", "mock", "note",
                                                    "t\tab \"q\" \\ é"));
    } else {
        *type = "item.delta";
        char delta[160], item[32], native[32];
        snprintf(delta, sizeof delta,
                 "δ %llu: tab\there, nl\nthere, quote\" bs\\ ctl\x01 ✓ %s",
                 (unsigned long long)seq, sid);
        snprintf(item, sizeof item, "itm_%llu", (unsigned long long)(seq / 3 + 1));
        snprintf(native, sizeof native, "n\t%llu", (unsigned long long)seq);
        data = event_delta_data(item, seq % 2 ? native : NULL, delta);
        if (seq % 3 == 0) {
            json_t *r = json_pack("{s:I,s:s}", "native", (json_int_t)seq, "s",
                                  "raw\t\"q\" \\ ✓\n");
            *raw = event_dump(r, NULL);
            json_decref(r);
            assert_non_null(*raw);
        }
    }
    assert_non_null(data);
    char native_sid[96];
    snprintf(native_sid, sizeof native_sid, "native-%s", sid);
    char *text = event_serialize(seq, now, sid, seq % 4 ? native_sid : NULL, seq == 1,
                                 seq == 1 ? "daemon" : "agent", *type, data, len);
    json_decref(data);
    assert_non_null(text);
    return text;
}

static void sjx_append_open(journal_t *j, const char *sid, size_t n)
{
    enum { CHUNK = 500 };
    uint64_t next = journal_last_sequence(j, sid) + 1;
    int create = !journal_session_exists(j, sid);
    while (n || create) {
        size_t k = n < CHUNK ? n : CHUNK;
        struct journal_event ev[CHUNK];
        char *texts[CHUNK], *raws[CHUNK];
        for (size_t i = 0; i < k; i++) {
            size_t len = 0;
            const char *type = NULL;
            texts[i] = sjx_event_text(sid, next + i, &len, &raws[i], &type);
            ev[i] = (struct journal_event){
                .sequence = next + i, .type = type, .json = texts[i], .json_len = len,
                .raw = raws[i], .raw_len = raws[i] ? strlen(raws[i]) : 0,
                .turn_end = (next + i) % 10 == 0,
            };
        }
        struct journal_session_row row = {.agent = "mock", .agent_mode = "build",
                                          .permission_mode = "default",
                                          .working_dir = "/tmp/w\tork"};
        char native[96];
        snprintf(native, sizeof native, "native-%s", sid);
        struct journal_batch b = {.session_id = sid, .create = create ? &row : NULL,
                                  .events = k ? ev : NULL, .n_events = k,
                                  .native_session_id = native};
        struct err e;
        int rc = journal_append(j, &b, &e);
        for (size_t i = 0; i < k; i++) {
            free(texts[i]);
            free(raws[i]);
        }
        if (rc)
            fail_msg("append to %s: %s", sid, e.msg);
        create = 0;
        next += k;
        n -= k;
    }
}

void sjx_append(const char *data_dir, const char *sid, size_t n)
{
    journal_t *j = sjx_open(data_dir);
    sjx_append_open(j, sid, n);
    journal_close(j);
}

void sjx_fill(const char *data_dir, const char *prefix, size_t n_sessions, size_t n_events)
{
    journal_t *j = sjx_open(data_dir);
    for (size_t s = 0; s < n_sessions; s++) {
        char sid[64];
        snprintf(sid, sizeof sid, "%s-%zu", prefix, s);
        sjx_append_open(j, sid, n_events);
    }
    journal_close(j);
}

static sqlite3 *sjx_db(const char *data_dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/journal.db", data_dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("cannot open %s", path);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static char *sjx_strdup_or_null(const unsigned char *s)
{
    return s ? strdup((const char *)s) : NULL;
}

struct sjx_event *sjx_journal_events(const char *data_dir, size_t *n)
{
    sqlite3 *db = sjx_db(data_dir);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT s.session_id, e.sequence, e.json, e.raw, "
                                        "e.turn_end FROM events e JOIN sessions s ON "
                                        "s.id = e.session ORDER BY s.session_id, e.sequence",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t cap = 1024, count = 0;
    struct sjx_event *ev = malloc(cap * sizeof *ev);
    assert_non_null(ev);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap *= 2;
            ev = realloc(ev, cap * sizeof *ev);
            assert_non_null(ev);
        }
        ev[count].session_id = sjx_strdup_or_null(sqlite3_column_text(st, 0));
        ev[count].sequence = (uint64_t)sqlite3_column_int64(st, 1);
        ev[count].json = sjx_strdup_or_null(sqlite3_column_text(st, 2));
        ev[count].raw = sjx_strdup_or_null(sqlite3_column_text(st, 3));
        ev[count].turn_end = sqlite3_column_int(st, 4);
        count++;
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    *n = count;
    return ev;
}

void sjx_events_free(struct sjx_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ev[i].session_id);
        free(ev[i].json);
        free(ev[i].raw);
    }
    free(ev);
}

long long sjx_journal_int(const char *data_dir, const char *sql)
{
    sqlite3 *db = sjx_db(data_dir);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    long long v = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

char *sjx_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *data = malloc(cap);
    assert_non_null(data);
    size_t got;
    while ((got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            data = realloc(data, cap);
            assert_non_null(data);
        }
    }
    fclose(f);
    *len = n;
    return data;
}

/* ---- the command line ------------------------------------------------------------- */

/* environ plus `extra` (NULL-terminated).  new: the array (not its strings). */
static char **sjx_environ(const char *const *extra)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (extra && extra[k])
        k++;
    char **env = calloc(n + k + 1, sizeof *env);
    assert_non_null(env);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int replaced = 0;
        for (size_t x = 0; x < k; x++) {
            size_t eq = strcspn(extra[x], "=");
            if (strncmp(environ[i], extra[x], eq) == 0 && environ[i][eq] == '=')
                replaced = 1;
        }
        if (!replaced)
            env[o++] = environ[i];
    }
    for (size_t x = 0; x < k; x++)
        env[o++] = (char *)(uintptr_t)extra[x]; /* posix_spawn's signature is not const */
    env[o] = NULL;
    return env;
}

pid_t sjx_spawn(const char *const *args, const char *const *env, const char *log_path)
{
    const char *bin = getenv("SJ_BINARY");
    if (!bin || !*bin)
        fail_msg("SJ_BINARY is not set");
    const char *argv[64];
    size_t n = 0;
    /* SJ_SERVER_WRAPPER (valgrind in the second stage of scripts/test.sh)
     * checks the export command as it checks the server. */
    char wrapper[1024] = "";
    const char *wrap_env = getenv("SJ_SERVER_WRAPPER");
    if (wrap_env && *wrap_env && strlen(wrap_env) < sizeof wrapper) {
        snprintf(wrapper, sizeof wrapper, "%s", wrap_env);
        char *save = NULL;
        for (char *tok = strtok_r(wrapper, " ", &save); tok && n < 16;
             tok = strtok_r(NULL, " ", &save))
            argv[n++] = tok;
    }
    const char *program = n ? argv[0] : bin;
    argv[n++] = bin;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 62);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    char **envp = sjx_environ(env);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, program, &fa, NULL, (char *const *)(uintptr_t)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc != 0)
        fail_msg("cannot start %s: %s", bin, strerror(rc));
    return pid;
}

int sjx_wait(pid_t pid, int timeout_ms)
{
    long long end = sjx_now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            fail_msg("waitpid %ld: %s", (long)pid, strerror(errno));
        if (sjx_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("process %ld still running after %d ms; killed", (long)pid, timeout_ms);
        }
        sjx_sleep_ms(10);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return -WTERMSIG(status);
}

int sjx_run(const char *const *args, const char *const *env, char **output)
{
    static unsigned counter;
    const char *base = getenv("SJ_TEST_TMPDIR");
    char log_path[1024];
    snprintf(log_path, sizeof log_path, "%s/sjx-run-%ld-%u.log", base && *base ? base : "/tmp",
             (long)getpid(), ++counter);
    pid_t pid = sjx_spawn(args, env, log_path);
    int code = sjx_wait(pid, 60000);
    size_t len = 0;
    char *out = sjx_file(log_path, &len);
    out = realloc(out, len + 1);
    assert_non_null(out);
    out[len] = '\0';
    fprintf(stderr, "$ sandbox-journal");
    for (size_t i = 0; args[i]; i++)
        fprintf(stderr, " %s", args[i]);
    fprintf(stderr, "  -> %d\n%s", code, out);
    unlink(log_path);
    if (output)
        *output = out;
    else
        free(out);
    return code;
}

void sjx_server_script(const char *script, const char *dir, const char *action)
{
    /* tests/support/ is next to tests/servers/. */
    char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof path - (size_t)(slash - path), "/../servers/%s", script);
    const char *argv[] = {"bash", path, dir, action, NULL};
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, "bash", NULL, NULL, (char *const *)(uintptr_t)argv, environ);
    if (rc != 0)
        fail_msg("cannot run %s: %s", path, strerror(rc));
    int code = sjx_wait(pid, 90000);
    if (code != 0)
        fail_msg("%s %s %s exited with %d", script, dir, action, code);
}

/* ---- PostgreSQL --------------------------------------------------------------------- */

static void sjx_pg_quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* "does not exist, skipping" and the like */
}

static PGconn *sjx_pg(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        fail_msg("cannot connect to %s: %s", url, msg);
    }
    PQsetNoticeProcessor(c, sjx_pg_quiet, NULL);
    return c;
}

long long sjx_pg_int(const char *url, const char *sql)
{
    PGconn *c = sjx_pg(url);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        fail_msg("%s: %s", sql, msg);
    }
    long long v = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                      ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                      : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

void sjx_pg_fresh_db(const char *tag, char *out, size_t size)
{
    const char *base = sjx_env("DATABASE_URL");
    char name[128], sql[300];
    snprintf(name, sizeof name, "sjx_%s_%ld", tag, (long)getpid());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
    sjx_pg_int(base, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    sjx_pg_int(base, sql);
    const char *host = strstr(base, "://");
    assert_non_null(host);
    const char *path = strchr(host + 3, '/');
    size_t head = path ? (size_t)(path - base) : strlen(base);
    snprintf(out, size, "%.*s/%s", (int)head, base, name);
}

void sjx_pg_drop_db(const char *url)
{
    const char *base = sjx_env("DATABASE_URL");
    const char *name = strrchr(url, '/');
    assert_non_null(name);
    char sql[300];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name + 1);
    sjx_pg_int(base, sql);
}

/* ---- ClickHouse ----------------------------------------------------------------------- */

static size_t sjx_collect(char *data, size_t size, size_t n, void *arg)
{
    char **buf = ((char **)arg);
    size_t add = size * n, have = *buf ? strlen(*buf) : 0;
    char *grown = realloc(*buf, have + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + have, data, add);
    grown[have + add] = '\0';
    *buf = grown;
    return add;
}

char *sjx_ch_query(const char *base_url, const char *sql)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char *body = calloc(1, 1);
    assert_non_null(body);
    curl_easy_setopt(h, CURLOPT_URL, base_url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sjx_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status != 200)
        fail_msg("clickhouse %s: %s (HTTP %ld) %s", sql, curl_easy_strerror(cc), status, body);
    return body;
}

long long sjx_ch_int(const char *base_url, const char *sql)
{
    char *body = sjx_ch_query(base_url, sql);
    long long v = strtoll(body, NULL, 10);
    free(body);
    return v;
}

/* ---- comparisons ---------------------------------------------------------------------- */

/* What a target row must hold for journal event `e`. */
struct sjx_expect {
    json_t *doc;
    const char *event_id, *native, *type, *source;
    int synthetic;
    int64_t time_us;
};

static void sjx_expect(const struct sjx_event *e, struct sjx_expect *x)
{
    x->doc = json_loads(e->json, 0, NULL);
    assert_non_null(x->doc);
    x->event_id = json_string_value(json_object_get(x->doc, "event_id"));
    x->native = json_string_value(json_object_get(x->doc, "native_session_id"));
    x->type = json_string_value(json_object_get(x->doc, "type"));
    x->source = json_string_value(json_object_get(x->doc, "source"));
    x->synthetic = json_is_true(json_object_get(x->doc, "synthetic"));
    assert_int_equal(export_row_time_us(json_string_value(json_object_get(x->doc, "time")),
                                        &x->time_us),
                     0);
}

static void sjx_assert_data(const struct sjx_expect *x, const char *data_text, const char *where)
{
    json_t *data = json_loads(data_text, JSON_ALLOW_NUL, NULL);
    if (!data || !json_equal(data, json_object_get(x->doc, "data")))
        fail_msg("%s: data differs: %s", where, data_text);
    json_decref(data);
}

static void sjx_assert_opt_str(const char *want, const char *got, const char *what,
                               const char *where)
{
    if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
        fail_msg("%s: %s is '%s', want '%s'", where, what, got ? got : "(null)",
                 want ? want : "(null)");
}

/* Per session of `ev` (sorted), its last sequence, for the sessions tables. */
static size_t sjx_sessions(const struct sjx_event *ev, size_t n, char ***ids, uint64_t **last)
{
    size_t k = 0;
    *ids = calloc(n + 1, sizeof **ids);
    *last = calloc(n + 1, sizeof **last);
    assert_true(*ids && *last);
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || strcmp((*ids)[k - 1], ev[i].session_id) != 0)
            (*ids)[k++] = ev[i].session_id;
        (*last)[k - 1] = ev[i].sequence;
    }
    return k;
}

void sjx_assert_pg_matches(const char *pg_url, const char *data_dir)
{
    size_t n = 0;
    struct sjx_event *ev = sjx_journal_events(data_dir, &n);
    assert_true(n > 0);
    PGconn *c = sjx_pg(pg_url);
    PGresult *r = PQexec(c,
                         "SELECT session_id, sequence, event_id, native_session_id, "
                         "(extract(epoch from time) * 1000000)::bigint, type, source, "
                         "synthetic, turn_end, data::text, raw FROM sj_events "
                         "ORDER BY session_id COLLATE \"C\", sequence");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("select: %s", PQerrorMessage(c));
    if ((size_t)PQntuples(r) != n)
        fail_msg("postgres holds %d events, the journal %zu", PQntuples(r), n);
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        char where[160];
        snprintf(where, sizeof where, "postgres %s/%llu", ev[i].session_id,
                 (unsigned long long)ev[i].sequence);
        struct sjx_expect x;
        sjx_expect(&ev[i], &x);
        assert_string_equal(PQgetvalue(r, row, 0), ev[i].session_id);
        assert_true(strtoull(PQgetvalue(r, row, 1), NULL, 10) == ev[i].sequence);
        assert_string_equal(PQgetvalue(r, row, 2), x.event_id);
        sjx_assert_opt_str(x.native, PQgetisnull(r, row, 3) ? NULL : PQgetvalue(r, row, 3),
                           "native_session_id", where);
        assert_true(strtoll(PQgetvalue(r, row, 4), NULL, 10) == x.time_us);
        assert_string_equal(PQgetvalue(r, row, 5), x.type);
        assert_string_equal(PQgetvalue(r, row, 6), x.source);
        assert_string_equal(PQgetvalue(r, row, 7), x.synthetic ? "t" : "f");
        assert_string_equal(PQgetvalue(r, row, 8), ev[i].turn_end ? "t" : "f");
        sjx_assert_data(&x, PQgetvalue(r, row, 9), where);
        sjx_assert_opt_str(ev[i].raw, PQgetisnull(r, row, 10) ? NULL : PQgetvalue(r, row, 10),
                           "raw", where);
        json_decref(x.doc);
    }
    PQclear(r);

    char **ids;
    uint64_t *last;
    size_t k = sjx_sessions(ev, n, &ids, &last);
    r = PQexec(c, "SELECT session_id, event_count, agent, native_session_id FROM sj_sessions "
                  "ORDER BY session_id COLLATE \"C\"");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal((size_t)PQntuples(r), k);
    for (size_t i = 0; i < k; i++) {
        assert_string_equal(PQgetvalue(r, (int)i, 0), ids[i]);
        assert_true(strtoull(PQgetvalue(r, (int)i, 1), NULL, 10) == last[i]);
        assert_string_equal(PQgetvalue(r, (int)i, 2), "mock");
    }
    PQclear(r);
    PQfinish(c);
    free(ids);
    free(last);
    sjx_events_free(ev, n);
}

static unsigned long long sjx_u64(const json_t *v)
{
    if (json_is_integer(v))
        return (unsigned long long)json_integer_value(v);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    fail_msg("not a number");
    return 0;
}

void sjx_assert_ch_matches(const char *ch_base, const char *db, const char *data_dir,
                           int ch_exact)
{
    size_t n = 0;
    struct sjx_event *ev = sjx_journal_events(data_dir, &n);
    assert_true(n > 0);
    char sql[600];
    snprintf(sql, sizeof sql, "SELECT count() FROM %s.sj_events FINAL", db);
    long long final = sjx_ch_int(ch_base, sql);
    snprintf(sql, sizeof sql, "SELECT count() FROM %s.sj_events", db);
    long long raw_count = sjx_ch_int(ch_base, sql);
    if ((size_t)final != n)
        fail_msg("clickhouse holds %lld events (FINAL), the journal %zu", final, n);
    if (ch_exact && (size_t)raw_count != n)
        fail_msg("clickhouse holds %lld rows before merging, %zu events: copies were sent",
                 raw_count, n);
    snprintf(sql, sizeof sql,
             "SELECT session_id, sequence, event_id, native_session_id, time_us, type, source, "
             "synthetic, turn_end, data, raw FROM %s.sj_events FINAL "
             "ORDER BY session_id, sequence FORMAT JSONEachRow",
             db);
    char *body = sjx_ch_query(ch_base, sql);
    const char *line = body;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(line, "\n");
        json_error_t jerr;
        json_t *row = json_loadb(line, len, 0, &jerr);
        if (!row)
            fail_msg("clickhouse row %zu: %s", i, jerr.text);
        char where[160];
        snprintf(where, sizeof where, "clickhouse %s/%llu", ev[i].session_id,
                 (unsigned long long)ev[i].sequence);
        struct sjx_expect x;
        sjx_expect(&ev[i], &x);
        assert_string_equal(json_string_value(json_object_get(row, "session_id")),
                            ev[i].session_id);
        assert_true(sjx_u64(json_object_get(row, "sequence")) == ev[i].sequence);
        assert_string_equal(json_string_value(json_object_get(row, "event_id")), x.event_id);
        sjx_assert_opt_str(x.native, json_string_value(json_object_get(row, "native_session_id")),
                           "native_session_id", where);
        assert_true((int64_t)sjx_u64(json_object_get(row, "time_us")) == x.time_us);
        assert_string_equal(json_string_value(json_object_get(row, "type")), x.type);
        assert_string_equal(json_string_value(json_object_get(row, "source")), x.source);
        assert_true((int)sjx_u64(json_object_get(row, "synthetic")) == x.synthetic);
        assert_true((int)sjx_u64(json_object_get(row, "turn_end")) == ev[i].turn_end);
        sjx_assert_data(&x, json_string_value(json_object_get(row, "data")), where);
        sjx_assert_opt_str(ev[i].raw, json_string_value(json_object_get(row, "raw")), "raw",
                           where);
        json_decref(x.doc);
        json_decref(row);
        line += len + (line[len] == '\n');
    }
    assert_int_equal(*line, '\0');
    free(body);

    char **ids;
    uint64_t *last;
    size_t k = sjx_sessions(ev, n, &ids, &last);
    snprintf(sql, sizeof sql,
             "SELECT session_id, event_count FROM %s.sj_sessions FINAL ORDER BY session_id "
             "FORMAT JSONEachRow",
             db);
    body = sjx_ch_query(ch_base, sql);
    line = body;
    for (size_t i = 0; i < k; i++) {
        size_t len = strcspn(line, "\n");
        json_t *row = json_loadb(line, len, 0, NULL);
        assert_non_null(row);
        assert_string_equal(json_string_value(json_object_get(row, "session_id")), ids[i]);
        assert_true(sjx_u64(json_object_get(row, "event_count")) == last[i]);
        json_decref(row);
        line += len + (line[len] == '\n');
    }
    assert_int_equal(*line, '\0');
    free(body);
    free(ids);
    free(last);
    sjx_events_free(ev, n);
}
