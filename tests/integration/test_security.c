/* Security properties of the server as a client (or a local attacker) sees
 * them:
 *   - with --token, every route but GET /v1/health answers 401 without the
 *     token, with a wrong one and with near misses; the routes walked are the
 *     served OpenAPI document's (which lists every entry of the route table
 *     in src/http.c, "/" included), plus HEAD of each GET;
 *   - a token of any length works (no fixed-size copy);
 *   - the token, right or wrong, never appears in anything the server
 *     writes: stdout, stderr, the journal files;
 *   - without --host the server listens on 127.0.0.1 only;
 *   - nothing the server holds open (journal, listening socket, clients,
 *     event streams) leaks into an agent's child process: every descriptor
 *     but 0-2 is close-on-exec;
 *   - session ids never become paths: hostile ids ("../../x", "/etc/x",
 *     ids with NUL escapes refused) go through the server, export, import
 *     and the sessions CLI, and no file appears anywhere but where it
 *     should.  docs/testing.md says where ids (do not) touch the filesystem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC_TOKEN "s3cr3t-T0ken-4f1c9e"
/* The route table in src/http.c has this many entries; a route added there
 * must be added to docs/openapi.json, which this test walks. */
#define SEC_ROUTES 39 /* 17 before; issue 14: 2; issue 17: 12 process (the terminal WebSocket
                        * included), 6 file, 2 config routes */

static int sec_setup_token(void **state)
{
    static const char *const args[] = {"--token", SEC_TOKEN, NULL};
    return sj_setup_with(state, args);
}

/* A concrete path for an OpenAPI template. */
static char *sec_concrete(const char *tmpl)
{
    char out[512];
    size_t o = 0;
    for (const char *p = tmpl; *p && o < sizeof out - 32;) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            assert_non_null(end);
            const char *value = strncmp(p, "{agent}", 7) == 0 ? "mock" : "sec";
            o += (size_t)snprintf(out + o, sizeof out - o, "%s", value);
            p = end + 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return strdup(out);
}

static int sec_status(struct sj_server *s, const char *method, const char *path,
                      const char *auth)
{
    const char *headers[3] = {NULL, NULL, NULL};
    int nh = 0;
    if (auth)
        headers[nh++] = auth;
    if (strcmp(method, "POST") == 0)
        headers[nh++] = "Content-Type: application/json";
    struct httpc_response resp;
    int rc = httpc_request(s->port, method, path, headers,
                           strcmp(method, "POST") == 0 ? "{}" : NULL,
                           strcmp(method, "POST") == 0 ? 2 : 0, 5000, &resp);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, httpc_strerror(rc));
    int status = resp.status;
    if (status == 401 && strcmp(method, "HEAD") != 0) {
        json_t *p = sj_assert_problem(&resp, 401, "token_invalid");
        json_decref(p);
        assert_non_null(httpc_header(&resp, "WWW-Authenticate"));
    }
    httpc_response_free(&resp);
    return status;
}

static void test_every_route_needs_the_token(void **state)
{
    struct sj_server *s = *state;
    static const char *const wrong[] = {
        NULL, /* no Authorization at all */
        "Authorization: Bearer wrong",
        "Authorization: Bearer " SEC_TOKEN "x",
        "Authorization: Bearer " SEC_TOKEN "\t\tx",
        "Authorization: Bearer s3cr3t-T0ken-4f1c9",
        "Authorization: Bearer S3CR3T-T0KEN-4F1C9E",
        "Authorization: Basic " SEC_TOKEN,
        "Authorization: " SEC_TOKEN,
        "Authorization: Bearer",
        "Authorization: Bearer ",
        "X-Token: " SEC_TOKEN,
    };
    json_t *doc = sj_call(s, "GET", "/v1/openapi.json", NULL, 200);
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    const char *tmpl;
    json_t *ops;
    int routes = 0, public_routes = 0;
    json_object_foreach(paths, tmpl, ops) {
        const char *method;
        json_t *op;
        json_object_foreach(ops, method, op) {
            char upper[16];
            size_t k = 0;
            for (; method[k] && k < sizeof upper - 1; k++)
                upper[k] = (char)(method[k] >= 'a' && method[k] <= 'z' ? method[k] - 32
                                                                      : method[k]);
            upper[k] = '\0';
            if (strcmp(upper, "GET") != 0 && strcmp(upper, "POST") != 0)
                continue;
            routes++;
            char *path = sec_concrete(tmpl);
            int is_health = strcmp(tmpl, "/v1/health") == 0;
            for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
                int st = sec_status(s, upper, path, wrong[w]);
                if (is_health ? st != 200 : st != 401)
                    fail_msg("%s %s with \"%s\": %d", upper, path, wrong[w] ? wrong[w] : "",
                             st);
                if (strcmp(upper, "GET") == 0) {
                    st = sec_status(s, "HEAD", path, wrong[w]);
                    if (is_health ? st != 200 : st != 401)
                        fail_msg("HEAD %s with \"%s\": %d", path, wrong[w] ? wrong[w] : "", st);
                }
            }
            public_routes += is_health;
            /* The right token is let through (whatever the route says then). */
            int st = sec_status(s, upper, path, "Authorization: Bearer " SEC_TOKEN);
            if (st == 401)
                fail_msg("%s %s refused the right token", upper, path);
            free(path);
        }
    }
    json_decref(doc);
    fprintf(stderr, "security: %d routes walked, %d public\n", routes, public_routes);
    assert_int_equal(routes, SEC_ROUTES);
    assert_int_equal(public_routes, 1);
    /* Unknown paths and methods say nothing either way: 404/405 need no token. */
    assert_int_equal(sec_status(s, "GET", "/v1/nope", NULL), 404);
}

static void test_long_token(void **state)
{
    (void)state; /* the test makes its own server */
    char token[700];
    memset(token, 'k', sizeof token - 1);
    token[sizeof token - 1] = '\0';
    const char *const args[] = {"--token", token, NULL};
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "security-long-token");
    struct sj_server s;
    assert_int_equal(sj_server_start(&s, dir, args), 0);
    char *right = sj_fmt("Authorization: Bearer %s", token);
    assert_int_equal(sec_status(&s, "GET", "/v1/sessions", right), 200);
    free(right);
    char *almost = sj_fmt("Authorization: Bearer %.*s", (int)sizeof token - 2, token);
    assert_int_equal(sec_status(&s, "GET", "/v1/sessions", almost), 401);
    free(almost);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
}

/* ---- the token is never written anywhere ------------------------------------ */

static int sec_port_from(const char *out)
{
    const char *p = strstr(out, "listening on http://127.0.0.1:");
    assert_non_null(p);
    return atoi(p + strlen("listening on http://127.0.0.1:"));
}

static int sec_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t nl = strlen(needle), cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    int found = 0;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    for (size_t i = 0; i + nl <= len && !found; i++)
        found = memcmp(buf + i, needle, nl) == 0;
    free(buf);
    return found;
}

/* --token-file keeps the token out of argv, where every local process (an
 * agent's tool commands too) could read it in /proc/<pid>/cmdline. */
static void test_token_file(void **state)
{
    (void)state; /* the test makes its own server */
    static const char token[] = "file-token-7f3a9c";
    char dir[512], path[600];
    sj_fresh_dir(dir, sizeof dir, "security-token-file");
    snprintf(path, sizeof path, "%s/token", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* Blanks around it and a CRLF are no part of it (issue 13: a trailing
     * space made a token no client could match). */
    assert_true(fprintf(f, " %s \t \r\nsecond line ignored\n", token) > 0);
    assert_int_equal(fclose(f), 0);

    const char *const args[] = {"--token-file", path, NULL};
    struct sj_server s;
    assert_int_equal(sj_server_start(&s, dir, args), 0);
    char *right = sj_fmt("Authorization: Bearer %s", token);
    assert_int_equal(sec_status(&s, "GET", "/v1/sessions", right), 200);
    free(right);
    assert_int_equal(sec_status(&s, "GET", "/v1/sessions", "Authorization: Bearer second"), 401);
    assert_int_equal(sec_status(&s, "GET", "/v1/sessions", NULL), 401);

    char cmdline[64];
    snprintf(cmdline, sizeof cmdline, "/proc/%d/cmdline", (int)s.pid);
    assert_false(sec_file_contains(cmdline, token));
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);

    /* Each mistake is one line on stderr and exit 2, before anything starts. */
    char empty[600], missing[600];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    snprintf(missing, sizeof missing, "%s/none", dir);
    f = fopen(empty, "w");
    assert_non_null(f);
    assert_true(fputs(" \t \r\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    const struct { const char *args[6]; const char *says; } bad[] = {
        { {"server", "--token-file", empty, NULL}, "the first line is empty" },
        { {"server", "--token-file", missing, NULL}, "cannot read --token-file" },
        { {"server", "--token", "x", "--token-file", path, NULL}, "give the token once" },
        { {"server", "--token-file", NULL}, "--token-file needs a value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sj_cli_result r;
        sj_cli_run(bad[i].args, NULL, &r);
        if (r.exit_code != 2 || !strstr(r.err, bad[i].says) || strchr(r.err, '\n') != strrchr(r.err, '\n'))
            sj_cli_dump(bad[i].says, &r);
        assert_int_equal(r.exit_code, 2);
        assert_non_null(strstr(r.err, bad[i].says));
        assert_ptr_equal(strchr(r.err, '\n'), strrchr(r.err, '\n'));
        sj_cli_result_free(&r);
    }
}

static void test_token_never_logged(void **state)
{
    (void)state; /* the server runs under sj_cli so all its output is captured */
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "security-logs");
    const char *const args[] = {"server", "--host", "127.0.0.1", "--port", "0", "--data-dir",
                                dir, "--token", SEC_TOKEN, "--mock-delay-ms", "1", NULL};
    struct sj_cli_proc *p = sj_cli_start(args, NULL);
    assert_true(sj_cli_wait_for(p, "listening on", 10000));
    struct sj_server s = {.port = sec_port_from(sj_cli_stdout(p))};
    snprintf(s.token, sizeof s.token, "%s", SEC_TOKEN);

    /* Right and wrong tokens, errors, a session, streams. */
    json_decref(sj_create_session(&s, "logs", NULL));
    sj_send_message(&s, "logs", "echo " SEC_TOKEN "-is-not-logged-either");
    json_decref(sj_wait_events(&s, "logs", 7, 10000));
    const char *wrong[] = {"Authorization: Bearer WR0NG-" SEC_TOKEN, NULL};
    struct httpc_response resp;
    assert_int_equal(httpc_request(s.port, "GET", "/v1/sessions", wrong, NULL, 0, 5000, &resp),
                     0);
    assert_int_equal(resp.status, 401);
    httpc_response_free(&resp);
    sj_expect_problem(&s, "GET", "/v1/sessions/ghost/events", NULL, 404, "session_not_found");
    sj_expect_problem(&s, "POST", "/v1/sessions/logs/messages", "{", 400, "invalid_request");
    char bad_chunk[] = "POST /v1/sessions/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                       SEC_TOKEN "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    if (httpc_raw(s.port, bad_chunk, sizeof bad_chunk - 1, 5000, &resp) == 0)
        httpc_response_free(&resp);

    sj_cli_signal(p, SIGTERM);
    struct sj_cli_result r;
    sj_cli_finish(p, 15000, &r);
    assert_int_equal(r.exit_code, 0);
    assert_true(r.err_len > 0); /* it did log something */
    if (strstr(r.out, SEC_TOKEN) || strstr(r.err, SEC_TOKEN)) {
        sj_cli_dump("server", &r);
        fail_msg("the token appears in the server's output");
    }
    sj_cli_result_free(&r);
    /* Nor in the journal (the message text above is the client's data and is
     * journaled, so look for the Authorization form only). */
    char path[600];
    snprintf(path, sizeof path, "%s/journal.db", dir);
    assert_false(sec_file_contains(path, "Bearer " SEC_TOKEN));
    assert_false(sec_file_contains(path, "WR0NG-"));
}

/* ---- loopback by default ----------------------------------------------------- */

/* 1 if /proc/net/tcp has a listening socket on `port` bound to 127.0.0.1
 * only; fails on one bound anywhere else. */
static int sec_listens_on_loopback(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    assert_non_null(f);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned addr, lport, st;
        if (sscanf(line, " %*d: %8x:%4x %*8x:%*4x %2x", &addr, &lport, &st) != 3)
            continue;
        if ((int)lport != port || st != 0x0A) /* TCP_LISTEN */
            continue;
        if (addr != 0x0100007F)
            fail_msg("port %d listens on %08x, not 127.0.0.1", port, addr);
        found = 1;
    }
    fclose(f);
    FILE *f6 = fopen("/proc/net/tcp6", "r");
    if (f6) {
        while (fgets(line, sizeof line, f6)) {
            unsigned lport, st;
            char addr[40];
            if (sscanf(line, " %*d: %32[0-9A-Fa-f]:%4x %*s %2x", addr, &lport, &st) == 3 &&
                (int)lport == port && st == 0x0A)
                fail_msg("port %d also listens on IPv6 %s", port, addr);
        }
        fclose(f6);
    }
    return found;
}

static void test_loopback_by_default(void **state)
{
    (void)state; /* started by hand: the support library always passes --host */
    char dir[512];
    sj_fresh_dir(dir, sizeof dir, "security-bind");
    const char *const args[] = {"server", "--port", "0", "--no-token", "--data-dir", dir, NULL};
    struct sj_cli_proc *p = sj_cli_start(args, NULL);
    assert_true(sj_cli_wait_for(p, "listening on", 10000));
    int port = sec_port_from(sj_cli_stdout(p));
    assert_true(sec_listens_on_loopback(port));
    sj_cli_signal(p, SIGTERM);
    struct sj_cli_result r;
    sj_cli_finish(p, 15000, &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);
}

/* ---- descriptors are close-on-exec ------------------------------------------------ */

static void test_descriptors_close_on_exec(void **state)
{
    struct sj_server *s = *state;
    json_decref(sj_create_session(s, "fds", NULL));
    sj_send_message(s, "fds", "echo hi");
    json_decref(sj_wait_events(s, "fds", 7, 10000));
    /* An open event stream and a connection in the middle of a request. */
    struct httpc_response head;
    struct httpc_sse *sse = NULL;
    assert_int_equal(httpc_sse_open(s->port, "GET", "/v1/sessions/fds/events/sse", NULL, NULL, 0,
                                    5000, &head, &sse),
                     0);
    assert_non_null(sse);
    httpc_response_free(&head);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fdinfo", (long)s->pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2)
            continue;
        /* Inherited from this test (and whoever started it) at the same
         * number, not opened by the server: not its doing. */
        int own = fcntl(fd, F_GETFD);
        if (own >= 0 && !(own & FD_CLOEXEC))
            continue;
        char path[128], line[128];
        snprintf(path, sizeof path, "%s/%d", dir, fd);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* closed meanwhile */
        unsigned long flags = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "flags: %lo", &flags) == 1)
                break;
        fclose(f);
        char target[256] = "";
        char link[128];
        snprintf(link, sizeof link, "/proc/%ld/fd/%d", (long)s->pid, fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        if (!(flags & O_CLOEXEC))
            fail_msg("descriptor %d (%s) of the server is inherited by child processes", fd,
                     target);
        checked++;
    }
    closedir(d);
    httpc_sse_close(sse);
    fprintf(stderr, "security: %d descriptors of the server checked\n", checked);
    assert_true(checked >= 3); /* at least the journal, its WAL and the listener */
}

/* ---- session ids never become paths ------------------------------------------- */

/* Appends every path under `dir` (recursively) to `list`, one per line. */
static void sec_walk(const char *dir, char **list, size_t *len, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n = strlen(path);
        if (*len + n + 2 > *cap) {
            *cap = (*cap + n + 2) * 2;
            *list = realloc(*list, *cap);
            assert_non_null(*list);
        }
        memcpy(*list + *len, path, n);
        (*list)[*len + n] = '\n';
        *len += n + 1;
        (*list)[*len] = '\0';
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            sec_walk(path, list, len, cap);
    }
    closedir(d);
}

static void test_session_ids_stay_in_the_data_dir(void **state)
{
    (void)state; /* its own directories */
    static const char *const ids[] = {
        "..%2F..%2Fescaped",          /* ../../escaped */
        "..%2F..%2F..%2F..%2Fescaped", /* deeper */
        "%2Fetc%2Fescaped",           /* /etc/escaped */
        "..",
        "a%2F..%2F..%2Fescaped",
        "%5C..%5Cescaped",            /* \..\escaped */
        "escaped%20%24(touch%20x)",   /* shell metacharacters */
    };
    char base[512], nest[600], data[700], imported[700], jsonl[700], url[720];
    sj_fresh_dir(base, sizeof base, "security-ids");
    snprintf(nest, sizeof nest, "%s/a", base);
    assert_int_equal(mkdir(nest, 0755), 0);
    snprintf(nest, sizeof nest, "%s/a/b", base);
    assert_int_equal(mkdir(nest, 0755), 0);
    snprintf(data, sizeof data, "%s/data", nest);
    snprintf(imported, sizeof imported, "%s/imported", nest);
    snprintf(jsonl, sizeof jsonl, "%s/export.jsonl", nest);
    snprintf(url, sizeof url, "jsonl:%s", jsonl);

    struct sj_server s;
    assert_int_equal(sj_server_start(&s, data, NULL), 0);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        json_decref(sj_create_session(&s, ids[i], NULL));
        sj_send_message(&s, ids[i], "tool");
        char *path = sj_fmt("/v1/sessions/%s/terminate", ids[i]);
        json_decref(sj_call(&s, "POST", path, NULL, 204));
        free(path);
    }
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);

    struct sj_cli_result r;
    const char *const exp[] = {"export", "--to", url, "--data-dir", data, "--quiet", NULL};
    sj_cli_run(exp, NULL, &r);
    if (r.exit_code != 0)
        sj_cli_dump("export", &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);
    const char *const imp[] = {"import", url, "--data-dir", imported, "--quiet", NULL};
    sj_cli_run(imp, NULL, &r);
    if (r.exit_code != 0)
        sj_cli_dump("import", &r);
    assert_int_equal(r.exit_code, 0);
    sj_cli_result_free(&r);
    const char *const decoded[] = {"../../escaped", "/etc/escaped", "..", "a/../../escaped"};
    for (size_t i = 0; i < sizeof decoded / sizeof decoded[0]; i++) {
        const char *const show[] = {"sessions", "show", decoded[i], "--data-dir", imported,
                                    NULL};
        sj_cli_run(show, NULL, &r);
        if (r.exit_code != 0)
            sj_cli_dump("sessions show", &r);
        assert_int_equal(r.exit_code, 0);
        sj_cli_result_free(&r);
    }

    /* Everything under base is where it should be: the two data dirs and
     * the export file; nothing named after an id anywhere. */
    char *list = NULL;
    size_t len = 0, cap = 0;
    sec_walk(base, &list, &len, &cap);
    assert_non_null(list);
    for (char *line = list, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        int ok = strcmp(line, nest) == 0 || strncmp(line, data, strlen(data)) == 0 ||
                 strncmp(line, imported, strlen(imported)) == 0 || strcmp(line, jsonl) == 0 ||
                 (strncmp(line, base, strlen(base)) == 0 &&
                  strcmp(line + strlen(base), "/a") == 0);
        if (!ok || strstr(line + strlen(base), "escaped"))
            fail_msg("unexpected file: %s", line);
    }
    free(list);
    struct stat st;
    assert_int_not_equal(stat("/etc/escaped", &st), 0);
    char outside[700];
    snprintf(outside, sizeof outside, "%s/escaped", base);
    assert_int_not_equal(stat(outside, &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_route_needs_the_token, sec_setup_token,
                                        sj_teardown_default),
        cmocka_unit_test(test_long_token),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_token_never_logged),
        cmocka_unit_test(test_loopback_by_default),
        cmocka_unit_test_setup_teardown(test_descriptors_close_on_exec, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test(test_session_ids_stay_in_the_data_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
