/* The workspace file routes (/v1/fs/...) against the real server:
 *   - every route's answer shape (FsEntry, FsStat, FsWriteResponse, ...) and
 *     every error as ProblemDetails (missing path 404, wrong kind 400,
 *     existing destination 409, missing parameter 400), relative paths;
 *   - binary-exact round trips of multi-MiB files, and the server's peak RSS
 *     staying far below the size of what it streamed both ways;
 *   - --max-upload-bytes: 413 from a declared Content-Length before any byte,
 *     and from a chunked body as soon as it passes the limit, leaving no file;
 *   - atomicity: a refused or abandoned upload leaves the old file whole and
 *     no temporary file behind;
 *   - upload-batch: tar archives from Debian's tar (ustar, pax, GNU long
 *     names), 1,000 files at once, and every escape refused (.., absolute
 *     names, symlinks and hard links pointing out, a symlink on disk);
 *   - every route needs the token. */
/* realpath() */
#define _XOPEN_SOURCE 700

#define _GNU_SOURCE /* O_TMPFILE */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "httpc.h"
#include "server.h"
#include "tarw.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------- */

/* A fresh scratch directory for a test's files (not the server's data dir). */
static void fs_dir(char *out, size_t size)
{
    char made[512], real[PATH_MAX];
    sj_fresh_dir(made, sizeof made, "fs-work");
    /* Answers name normal paths: compare with one. */
    assert_non_null(realpath(made, real));
    assert_true(strlen(real) < size);
    strcpy(out, real);
}

static void fs_write_local(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* new: the file's bytes; *len its size; NULL if it does not exist. */
static char *fs_read_local(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    assert_int_equal(buf_puts(&b, ""), 0);
    return buf_steal(&b);
}

static int fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* How many entries of `dir` contain ".sj-" (temporary upload files). */
static int fs_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".sj-") != NULL;
    closedir(d);
    return n;
}

/* 1 if `dir`'s filesystem makes unnamed files (O_TMPFILE), as the server
 * then does for uploads; else they are named temporary files. */
static int fs_unnamed_temp_files(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Files the server holds open inside `dir` (not `dir` itself): an upload's
 * file while it is written, named or not (an unnamed O_TMPFILE file reads
 * "<dir>/#<inode> (deleted)"). */
static int fs_server_open_files(pid_t server, const char *dir)
{
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%d/fd", (int)server);
    DIR *d = opendir(fds);
    assert_non_null(d);
    size_t dlen = strlen(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char link[512], target[1024];
        snprintf(link, sizeof link, "%s/%s", fds, de->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k <= 0)
            continue;
        target[k] = '\0';
        n += strncmp(target, dir, dlen) == 0 && target[dlen] == '/';
    }
    closedir(d);
    return n;
}

static void fs_random(char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (char)(x >> 24);
    }
}

/* A request with a raw body and optional auth; *resp filled. */
static void fs_send(struct sj_server *s, const char *method, const char *path, const char *body,
                    size_t len, const char *content_type, struct httpc_response *resp)
{
    char auth[256], ct[128];
    const char *headers[3] = { NULL, NULL, NULL };
    int h = 0;
    if (s->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
        headers[h++] = auth;
    }
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        headers[h++] = ct;
    }
    int rc = httpc_request(s->port, method, path, headers, body, len, 30000, resp);
    if (rc)
        fail_msg("%s %s: %s", method, path, httpc_strerror(rc));
}

static json_t *fs_call(struct sj_server *s, const char *method, const char *path,
                       const char *body, size_t len, const char *content_type, int status)
{
    struct httpc_response r;
    fs_send(s, method, path, body, len, content_type, &r);
    if (r.status != status)
        fail_msg("%s %s: %d, not %d: %s", method, path, r.status, status, r.body ? r.body : "");
    json_t *j = httpc_json(&r);
    httpc_response_free(&r);
    return j;
}

static void fs_problem(struct sj_server *s, const char *method, const char *path,
                       const char *body, size_t len, int status, const char *type)
{
    struct httpc_response r;
    fs_send(s, method, path, body, len, NULL, &r);
    json_decref(sj_assert_problem(&r, status, type));
    httpc_response_free(&r);
}

static int fs_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = { .tv_sec = 60 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int fs_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads a whole response from fd; returns the status; *body (new) the body
 * after the headers, as sent (chunked framing left in). */
static int fs_read_response(int fd, char **body)
{
    struct buf b;
    buf_init(&b);
    char chunk[65536];
    ssize_t n;
    while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0)
        assert_int_equal(buf_append(&b, chunk, (size_t)n), 0);
    assert_int_equal(buf_puts(&b, ""), 0);
    int status = 0;
    if (b.len > 12)
        status = atoi(b.data + 9);
    char *sep = b.data ? strstr(b.data, "\r\n\r\n") : NULL;
    *body = strdup(sep ? sep + 4 : "");
    buf_free(&b);
    return status;
}

/* Streams `total` pseudo-random bytes (seed) as the body of `method path`,
 * generated as they are sent, chunked or with a Content-Length.  Returns
 * the status; *body (new) the answer's body. */
static int fs_stream_up(struct sj_server *s, const char *method, const char *path,
                        uint64_t total, uint64_t seed, int chunked, char **body)
{
    int fd = fs_connect(s->port);
    char head[1024];
    char auth[200] = "";
    if (s->token[0])
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", s->token);
    if (chunked)
        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n", method, path, auth);
    else
        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %llu\r\n"
                 "Connection: close\r\n\r\n", method, path, auth, (unsigned long long)total);
    assert_int_equal(fs_send_all(fd, head, strlen(head)), 0);
    static char block[256 * 1024];
    fs_random(block, sizeof block, seed);
    int broken = 0;
    for (uint64_t sent = 0; sent < total && !broken;) {
        size_t n = total - sent < sizeof block ? (size_t)(total - sent) : sizeof block;
        char frame[32];
        if (chunked) {
            snprintf(frame, sizeof frame, "%zx\r\n", n);
            broken = fs_send_all(fd, frame, strlen(frame));
        }
        broken = broken || fs_send_all(fd, block, n) || (chunked && fs_send_all(fd, "\r\n", 2));
        sent += n;
    }
    if (chunked && !broken)
        broken = fs_send_all(fd, "0\r\n\r\n", 5);
    int status = fs_read_response(fd, body);
    close(fd);
    return status;
}

/* FNV-1a of what fs_stream_up sends. */
static uint64_t fs_stream_hash(uint64_t total, uint64_t seed)
{
    static char block[256 * 1024];
    fs_random(block, sizeof block, seed);
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < total; i++)
        h = (h ^ (unsigned char)block[i % sizeof block]) * 1099511628211ull;
    return h;
}

/* GETs a file, hashing it as it arrives (nothing kept); returns the body size. */
static uint64_t fs_stream_down(struct sj_server *s, const char *path, uint64_t *hash)
{
    int fd = fs_connect(s->port);
    char head[1024];
    snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    assert_int_equal(fs_send_all(fd, head, strlen(head)), 0);
    char chunk[65536], hdr[4096];
    size_t hlen = 0;
    int in_body = 0;
    uint64_t h = 1469598103934665603ull, size = 0;
    ssize_t n;
    while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0) {
        size_t off = 0;
        while (!in_body && off < (size_t)n) {
            assert_true(hlen < sizeof hdr - 1);
            hdr[hlen++] = chunk[off++];
            if (hlen >= 4 && memcmp(hdr + hlen - 4, "\r\n\r\n", 4) == 0) {
                in_body = 1;
                hdr[hlen] = '\0';
                assert_non_null(strstr(hdr, " 200 "));
                assert_non_null(strstr(hdr, "application/octet-stream"));
            }
        }
        for (; off < (size_t)n; off++, size++)
            h = (h ^ (unsigned char)chunk[off]) * 1099511628211ull;
    }
    close(fd);
    assert_true(in_body);
    *hash = h;
    return size;
}

/* The server's peak resident set (VmHWM), in KiB. */
static long fs_hwm_kib(const struct sj_server *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atol(line + 6);
    fclose(f);
    return kib;
}

static int fs_under_wrapper(void)
{
    const char *w = getenv("SJ_SERVER_WRAPPER");
    return w && *w;
}

/* ---- routes and errors --------------------------------------------------- */

static void test_routes(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    char *q;

    /* PUT creates the parents; GET reads it back; stat and entries describe it. */
    q = sj_fmt("/v1/fs/file?path=%s/a/b/c.txt", dir);
    json_t *w = fs_call(s, "PUT", q, "hello", 5, "application/octet-stream", 200);
    char *abs = sj_fmt("%s/a/b/c.txt", dir);
    assert_string_equal(sj_str(w, "path"), abs);
    assert_int_equal(sj_int(w, "bytesWritten"), 5);
    json_decref(w);
    struct httpc_response r;
    fs_send(s, "GET", q, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(httpc_header(&r, "Content-Type"), "application/octet-stream");
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "hello", 5);
    httpc_response_free(&r);
    free(q);

    q = sj_fmt("/v1/fs/stat?path=%s/a/b/c.txt", dir);
    json_t *st = fs_call(s, "GET", q, NULL, 0, NULL, 200);
    assert_string_equal(sj_str(st, "path"), abs);
    assert_string_equal(sj_str(st, "entryType"), "file");
    assert_int_equal(sj_int(st, "size"), 5);
    const char *mod = sj_str(st, "modified");
    assert_non_null(mod);
    /* RFC 3339 in UTC: 2026-01-02T03:04:05[.fff...]+00:00 */
    assert_true(strlen(mod) >= 25);
    assert_true(mod[4] == '-' && mod[10] == 'T' && mod[13] == ':');
    assert_string_equal(mod + strlen(mod) - 6, "+00:00");
    json_decref(st);
    free(q);

    q = sj_fmt("/v1/fs/stat?path=%s/a", dir);
    st = fs_call(s, "GET", q, NULL, 0, NULL, 200);
    assert_string_equal(sj_str(st, "entryType"), "directory");
    json_decref(st);
    free(q);

    /* Entries: sorted by name, FsEntry fields. */
    q = sj_fmt("/v1/fs/file?path=%s/a/b/a.bin", dir);
    json_decref(fs_call(s, "PUT", q, "\0\1\2", 3, NULL, 200));
    free(q);
    q = sj_fmt("/v1/fs/mkdir?path=%s/a/b/sub/deeper", dir);
    json_t *mk = fs_call(s, "POST", q, NULL, 0, NULL, 200);
    char *sub = sj_fmt("%s/a/b/sub/deeper", dir);
    assert_string_equal(sj_str(mk, "path"), sub);
    json_decref(mk);
    free(sub);
    free(q);
    q = sj_fmt("/v1/fs/entries?path=%s/a/b", dir);
    json_t *list = fs_call(s, "GET", q, NULL, 0, NULL, 200);
    assert_int_equal(json_array_size(list), 3);
    const char *names[] = { "a.bin", "c.txt", "sub" };
    const char *types[] = { "file", "file", "directory" };
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(list, i);
        assert_string_equal(sj_str(e, "name"), names[i]);
        assert_string_equal(sj_str(e, "entryType"), types[i]);
        char *p = sj_fmt("%s/a/b/%s", dir, names[i]);
        assert_string_equal(sj_str(e, "path"), p);
        free(p);
        assert_true(json_is_integer(json_object_get(e, "size")));
        assert_true(json_is_string(json_object_get(e, "modified")));
    }
    assert_int_equal(sj_int(json_array_get(list, 0), "size"), 3);
    json_decref(list);
    free(q);

    /* Move, without and with overwrite. */
    char *mv = sj_fmt("{\"from\":\"%s/a/b/a.bin\",\"to\":\"%s/moved/x.bin\"}", dir, dir);
    json_t *m = fs_call(s, "POST", "/v1/fs/move", mv, strlen(mv), "application/json", 200);
    char *to = sj_fmt("%s/moved/x.bin", dir);
    assert_string_equal(sj_str(m, "to"), to);
    json_decref(m);
    assert_true(fs_exists(to));
    free(mv);
    mv = sj_fmt("{\"from\":\"%s/a/b/c.txt\",\"to\":\"%s\"}", dir, to);
    fs_problem(s, "POST", "/v1/fs/move", mv, strlen(mv), 409, "conflict");
    free(mv);
    mv = sj_fmt("{\"from\":\"%s/a/b/c.txt\",\"to\":\"%s\",\"overwrite\":true}", dir, to);
    json_decref(fs_call(s, "POST", "/v1/fs/move", mv, strlen(mv), "application/json", 200));
    size_t len;
    char *got = fs_read_local(to, &len);
    assert_non_null(got);
    assert_int_equal(len, 5);
    free(got);
    free(mv);
    free(to);

    /* Delete: a non-empty directory needs recursive. */
    q = sj_fmt("/v1/fs/entry?path=%s/a", dir);
    fs_problem(s, "DELETE", q, NULL, 0, 409, "conflict");
    free(q);
    q = sj_fmt("/v1/fs/entry?path=%s/a&recursive=true", dir);
    json_t *del = fs_call(s, "DELETE", q, NULL, 0, NULL, 200);
    char *a = sj_fmt("%s/a", dir);
    assert_string_equal(sj_str(del, "path"), a);
    assert_false(fs_exists(a));
    free(a);
    json_decref(del);
    free(q);

    /* Relative paths are from the server's working directory (ours). */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *rel = sj_fmt("fs-rel-%d", (int)getpid());
    q = sj_fmt("/v1/fs/file?path=./%s/../%s/x", rel, rel);
    w = fs_call(s, "PUT", q, "r", 1, NULL, 200);
    char *want = sj_fmt("%s/%s/x", cwd, rel);
    assert_string_equal(sj_str(w, "path"), want);
    assert_true(fs_exists(want));
    json_decref(w);
    free(q);
    free(want);
    q = sj_fmt("/v1/fs/entry?path=%s&recursive=1", rel);
    json_decref(fs_call(s, "DELETE", q, NULL, 0, NULL, 200));
    free(q);
    free(rel);
    free(abs);
}

static void test_errors(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    char *file = sj_fmt("%s/f", dir);
    fs_write_local(file, "x", 1);
    static const char *const missing_routes[][2] = {
        { "GET", "/v1/fs/file?path=" },    { "GET", "/v1/fs/stat?path=" },
        { "GET", "/v1/fs/entries?path=" }, { "DELETE", "/v1/fs/entry?path=" },
    };
    for (size_t i = 0; i < sizeof missing_routes / sizeof missing_routes[0]; i++) {
        char *q = sj_fmt("%s%s/nope", missing_routes[i][1], dir);
        fs_problem(s, missing_routes[i][0], q, NULL, 0, 404, "not_found");
        free(q);
    }
    char *mv = sj_fmt("{\"from\":\"%s/nope\",\"to\":\"%s/x\"}", dir, dir);
    fs_problem(s, "POST", "/v1/fs/move", mv, strlen(mv), 404, "not_found");
    free(mv);
    /* Wrong kinds. */
    char *q = sj_fmt("/v1/fs/file?path=%s", dir);
    fs_problem(s, "GET", q, NULL, 0, 400, "invalid_request");
    fs_problem(s, "PUT", q, "x", 1, 400, "invalid_request");
    free(q);
    q = sj_fmt("/v1/fs/entries?path=%s", file);
    fs_problem(s, "GET", q, NULL, 0, 400, "invalid_request");
    free(q);
    q = sj_fmt("/v1/fs/mkdir?path=%s", file);
    fs_problem(s, "POST", q, NULL, 0, 409, "conflict");
    free(q);
    q = sj_fmt("/v1/fs/file?path=%s/under", file);
    fs_problem(s, "PUT", q, "x", 1, 409, "conflict");
    free(q);
    /* Missing or malformed parameters and bodies. */
    static const char *const no_path[][2] = {
        { "GET", "/v1/fs/file" },      { "PUT", "/v1/fs/file" },   { "GET", "/v1/fs/stat" },
        { "DELETE", "/v1/fs/entry" },  { "POST", "/v1/fs/mkdir" }, { "GET", "/v1/fs/file?path=" },
    };
    for (size_t i = 0; i < sizeof no_path / sizeof no_path[0]; i++)
        fs_problem(s, no_path[i][0], no_path[i][1], NULL, 0, 400, "invalid_request");
    fs_problem(s, "POST", "/v1/fs/move", "{\"from\":\"x\"}", 12, 400, "invalid_request");
    fs_problem(s, "POST", "/v1/fs/move", "nope", 4, 400, "invalid_request");
    mv = sj_fmt("{\"from\":\"%s\",\"to\":\"%s/y\",\"overwrite\":\"yes\"}", file, dir);
    fs_problem(s, "POST", "/v1/fs/move", mv, strlen(mv), 400, "invalid_request");
    free(mv);
    q = sj_fmt("/v1/fs/entry?path=%s&recursive=maybe", file);
    fs_problem(s, "DELETE", q, NULL, 0, 400, "invalid_request");
    free(q);
    /* A path that cannot be decoded is refused, never read as some other
     * name (a NUL byte, a broken escape): nothing is written. */
    static const char *const undecodable[] = { "%00", "a%00b", "%zz", "%4" };
    for (size_t i = 0; i < sizeof undecodable / sizeof undecodable[0]; i++) {
        q = sj_fmt("/v1/fs/file?path=%s/%s", dir, undecodable[i]);
        fs_problem(s, "PUT", q, "x", 1, 400, "invalid_request");
        free(q);
        q = sj_fmt("/v1/fs/stat?path=%s", undecodable[i]);
        fs_problem(s, "GET", q, NULL, 0, 400, "invalid_request");
        free(q);
    }
    json_t *left = NULL;
    q = sj_fmt("/v1/fs/entries?path=%s", dir);
    left = sj_call(s, "GET", q, NULL, 200);
    free(q);
    assert_int_equal(json_array_size(left), 1); /* f alone */
    json_decref(left);
    /* Not a tar archive. */
    q = sj_fmt("/v1/fs/upload-batch?path=%s/t", dir);
    fs_problem(s, "POST", q, "hello", 5, 400, "invalid_request");
    fs_problem(s, "POST", q, NULL, 0, 400, "invalid_request");
    free(q);
    assert_true(fs_exists(file));
    free(file);
}

/* ---- big files, streaming ---------------------------------------------------- */

static void test_binary_round_trip(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    /* Every byte value, 5 MiB and a bit, through httpc (Content-Length). */
    size_t n = 5 * 1024 * 1024 + 7;
    char *data = malloc(n);
    assert_non_null(data);
    fs_random(data, n, 42);
    char *q = sj_fmt("/v1/fs/file?path=%s/blob.bin", dir);
    json_t *w = fs_call(s, "PUT", q, data, n, "application/octet-stream", 200);
    assert_int_equal(sj_int(w, "bytesWritten"), (long long)n);
    json_decref(w);
    struct httpc_response r;
    fs_send(s, "GET", q, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, data, n);
    httpc_response_free(&r);
    char *local = sj_fmt("%s/blob.bin", dir);
    size_t len;
    char *disk = fs_read_local(local, &len);
    assert_int_equal(len, n);
    assert_memory_equal(disk, data, n);
    free(disk);
    /* Chunked, then overwritten by a smaller one. */
    char *body;
    assert_int_equal(fs_stream_up(s, "PUT", q, 3 * 1024 * 1024 + 1, 7, 1, &body), 200);
    free(body);
    uint64_t h;
    assert_int_equal(fs_stream_down(s, q, &h), 3 * 1024 * 1024 + 1);
    assert_true(h == fs_stream_hash(3 * 1024 * 1024 + 1, 7));
    fs_write_local(local, "", 0);
    fs_send(s, "GET", q, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    httpc_response_free(&r);
    assert_int_equal(fs_temp_files(dir), 0);
    free(local);
    free(q);
    free(data);
}

/* The server never holds a file: 128 MiB up and down move its peak RSS by
 * far less than that. */
static void test_streaming_memory(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    uint64_t total = fs_under_wrapper() ? 16u << 20 : 128u << 20;
    char *q = sj_fmt("/v1/fs/file?path=%s/big.bin", dir);
    /* Warm up the paths (allocator arenas, libmicrohttpd buffers) first. */
    char *body;
    assert_int_equal(fs_stream_up(s, "PUT", q, 1 << 20, 1, 0, &body), 200);
    free(body);
    uint64_t h;
    fs_stream_down(s, q, &h);
    long before = fs_hwm_kib(s);
    assert_int_equal(fs_stream_up(s, "PUT", q, total, 99, 0, &body), 200);
    free(body);
    assert_int_equal(fs_stream_up(s, "PUT", q, total, 99, 1, &body), 200);
    free(body);
    assert_int_equal(fs_stream_down(s, q, &h), total);
    assert_true(h == fs_stream_hash(total, 99));
    long after = fs_hwm_kib(s);
    fprintf(stderr, "fs: %llu MiB up twice and down once: peak RSS %ld -> %ld KiB\n",
            (unsigned long long)(total >> 20), before, after);
    if (!fs_under_wrapper())
        assert_true(after - before < 16 * 1024);
    free(q);
}

/* ---- the size limit and atomicity ------------------------------------------- */

static int fs_setup_small_limit(void **state)
{
    static const char *const args[] = { "--max-upload-bytes", "100000", NULL };
    return sj_setup_with(state, args);
}

static void test_size_limit_and_atomicity(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    char *local = sj_fmt("%s/keep.txt", dir);
    fs_write_local(local, "original", 8);
    char *q = sj_fmt("/v1/fs/file?path=%s", local);
    char *body;
    /* Declared too large: refused before a byte is read. */
    int st = fs_stream_up(s, "PUT", q, 100001, 3, 0, &body);
    assert_int_equal(st, 413);
    assert_non_null(strstr(body, "max-upload-bytes"));
    free(body);
    /* Chunked: refused once past the limit, the rest dropped unread to disk. */
    assert_int_equal(fs_stream_up(s, "PUT", q, 5u << 20, 3, 1, &body), 413);
    free(body);
    /* Exactly the limit is fine. */
    char *q2 = sj_fmt("/v1/fs/file?path=%s/exact", dir);
    assert_int_equal(fs_stream_up(s, "PUT", q2, 100000, 3, 1, &body), 200);
    free(body);
    free(q2);
    /* A tar over the limit too. */
    char *qb = sj_fmt("/v1/fs/upload-batch?path=%s/batch", dir);
    assert_int_equal(fs_stream_up(s, "POST", qb, 200000, 3, 0, &body), 413);
    free(body);
    struct buf t;
    buf_init(&t);
    char *blob = calloc(1, 150000);
    tarw_add(&t, "big", '0', NULL, blob, 150000);
    tarw_end(&t);
    struct httpc_response r;
    {
        /* Chunked, so only the stream sees the size. */
        int fd = fs_connect(s->port);
        char *head = sj_fmt("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            "Connection: close\r\n\r\n%zx\r\n", qb, t.len);
        assert_int_equal(fs_send_all(fd, head, strlen(head)), 0);
        /* The server may close as soon as it answered. */
        if (fs_send_all(fd, t.data, t.len) != 0 || fs_send_all(fd, "\r\n0\r\n\r\n", 7) != 0)
            fprintf(stderr, "fs: the server closed before the body's end\n");
        assert_int_equal(fs_read_response(fd, &body), 413);
        free(body);
        close(fd);
        free(head);
    }
    char *big = sj_fmt("%s/batch/big", dir);
    assert_false(fs_exists(big));
    free(big);
    buf_free(&t);
    free(blob);

    /* A client that goes away mid-body: the old file stays whole, the
     * temporary file goes.  The server notices at its next read. */
    int fd = fs_connect(s->port);
    char *head = sj_fmt("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 90000\r\n\r\n", q);
    assert_int_equal(fs_send_all(fd, head, strlen(head)), 0);
    char half[40000];
    memset(half, 'h', sizeof half);
    assert_int_equal(fs_send_all(fd, half, sizeof half), 0);
    free(head);
    /* The file being written is open once the server read the headers;
     * it has no name in the directory (O_TMPFILE), so nothing can be left
     * behind there. */
    for (int i = 0; i < 3000 && fs_server_open_files(s->pid, dir) == 0; i++)
        sj_sleep_ms(10);
    assert_int_equal(fs_server_open_files(s->pid, dir), 1);
    int unnamed = fs_unnamed_temp_files(dir);
    assert_int_equal(fs_temp_files(dir), unnamed ? 0 : 1);
    /* A reset rather than a FIN: once, in the full suite on a loaded
     * machine, libmicrohttpd (0.9.75, epoll) had not noticed a FIN in the
     * middle of a body 10 s later (not understood yet).  What is tested here
     * is what the server does once the request ends, however it ends. */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd);
    for (int i = 0; i < 3000 && fs_server_open_files(s->pid, dir) != 0; i++)
        sj_sleep_ms(10);
    assert_int_equal(fs_server_open_files(s->pid, dir), 0);
    assert_int_equal(fs_temp_files(dir), 0);
    size_t len;
    char *got = fs_read_local(local, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(got, "original", 8);
    free(got);

    fs_send(s, "GET", q, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 8);
    httpc_response_free(&r);

    /* The server SIGKILLed mid-upload: the old file stays whole and, where
     * the filesystem has O_TMPFILE, no temporary file is left behind.  Not
     * under a wrapper: under valgrind the second upload's file was never
     * seen open (not understood yet; the ASan and TSan stages check it). */
    if (getenv("SJ_SERVER_WRAPPER")) {
        fprintf(stderr, "fs: the kill mid-upload check is skipped under a wrapper\n");
        free(q);
        free(qb);
        free(local);
        return;
    }
    fd = fs_connect(s->port);
    head = sj_fmt("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 90000\r\n\r\n", q);
    assert_int_equal(fs_send_all(fd, head, strlen(head)), 0);
    assert_int_equal(fs_send_all(fd, half, sizeof half), 0);
    free(head);
    for (int i = 0; i < 3000 && fs_server_open_files(s->pid, dir) == 0; i++)
        sj_sleep_ms(10);
    assert_int_equal(fs_server_open_files(s->pid, dir), 1);
    sj_server_kill(s);
    close(fd);
    if (unnamed)
        assert_int_equal(fs_temp_files(dir), 0);
    else
        fprintf(stderr, "fs: no O_TMPFILE here: a named temporary file stays after a kill\n");
    got = fs_read_local(local, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(got, "original", 8);
    free(got);
    if (sj_server_restart(s) != 0)
        fail_msg("restart failed");
    free(q);
    free(qb);
    free(local);
}

/* ---- tar uploads --------------------------------------------------------------- */

static json_t *fs_upload(struct sj_server *s, const char *dest, const struct buf *tar,
                         int status)
{
    char *q = sj_fmt("/v1/fs/upload-batch?path=%s", dest);
    json_t *j = fs_call(s, "POST", q, tar->data, tar->len, "application/x-tar", status);
    free(q);
    return j;
}

static void test_upload_batch_real_tar(void **state)
{
    struct sj_server *s = *state;
    char src[512], dst[512];
    fs_dir(src, sizeof src);
    fs_dir(dst, sizeof dst);
    /* A tree with a name over 100 bytes and one over 255 bytes of path. */
    char longdir[1024];
    snprintf(longdir, sizeof longdir, "%s/%0120d", src, 0);
    assert_int_equal(mkdir(longdir, 0755), 0);
    char *deep = sj_fmt("%s/%0150d.bin", longdir, 1);
    char data[70000];
    fs_random(data, sizeof data, 5);
    fs_write_local(deep, data, sizeof data);
    char *small = sj_fmt("%s/small.txt", src);
    fs_write_local(small, "small\n", 6);
    char *lnk = sj_fmt("%s/link", src);
    assert_int_equal(symlink("small.txt", lnk), 0);
    static const char *const formats[] = { "ustar", "gnu", "pax" };
    for (size_t f = 0; f < 3; f++) {
        char *tarpath = sj_fmt("%s.%s.tar", src, formats[f]);
        /* ustar cannot hold a 150-byte file name: it gets the short files. */
        char *cmd = f == 0 ? sj_fmt("tar --format=ustar -cf %s -C %s small.txt link", tarpath, src)
                           : sj_fmt("tar --format=%s -cf %s -C %s .", formats[f], tarpath, src);
        assert_int_equal(system(cmd), 0);
        struct buf t;
        buf_init(&t);
        size_t len;
        t.data = fs_read_local(tarpath, &len);
        assert_non_null(t.data);
        t.len = t.cap = len;
        char *out = sj_fmt("%s/%s", dst, formats[f]);
        json_t *res = fs_upload(s, out, &t, 200);
        assert_false(json_is_true(json_object_get(res, "truncated")));
        assert_int_equal(json_array_size(json_object_get(res, "paths")), f == 0 ? 2 : 4);
        json_decref(res);
        char *p = sj_fmt("%s/small.txt", out);
        char *got = fs_read_local(p, &len);
        assert_int_equal(len, 6);
        free(got);
        free(p);
        p = sj_fmt("%s/link", out);
        char target[64];
        ssize_t tl = readlink(p, target, sizeof target - 1);
        assert_int_equal(tl, 9);
        free(p);
        if (f > 0) {
            p = sj_fmt("%s/%0120d/%0150d.bin", out, 0, 1);
            got = fs_read_local(p, &len);
            assert_non_null(got);
            assert_int_equal(len, sizeof data);
            assert_memory_equal(got, data, sizeof data);
            free(got);
            free(p);
        }
        assert_int_equal(fs_temp_files(out), 0);
        free(out);
        buf_free(&t);
        free(cmd);
        free(tarpath);
    }
    free(deep);
    free(small);
    free(lnk);
}

static void test_upload_batch_1000_files(void **state)
{
    struct sj_server *s = *state;
    char dst[512];
    fs_dir(dst, sizeof dst);
    struct buf t;
    buf_init(&t);
    tarw_add(&t, "./", '5', NULL, NULL, 0);
    for (int i = 0; i < 1000; i++) {
        char name[64], body[64];
        snprintf(name, sizeof name, "./d%02d/file-%04d.txt", i % 10, i);
        int n = snprintf(body, sizeof body, "content of file %d\n", i);
        tarw_add(&t, name, '0', NULL, body, (size_t)n);
    }
    tarw_end(&t);
    json_t *res = fs_upload(s, dst, &t, 200);
    assert_int_equal(json_array_size(json_object_get(res, "paths")), 1000);
    assert_false(json_is_true(json_object_get(res, "truncated")));
    char *first = sj_fmt("%s/d00/file-0000.txt", dst);
    assert_string_equal(json_string_value(json_array_get(json_object_get(res, "paths"), 0)),
                        first);
    free(first);
    json_decref(res);
    for (int i = 0; i < 1000; i += 111) {
        char *p = sj_fmt("%s/d%02d/file-%04d.txt", dst, i % 10, i);
        char want[64];
        int n = snprintf(want, sizeof want, "content of file %d\n", i);
        size_t len;
        char *got = fs_read_local(p, &len);
        assert_non_null(got);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(got, want, len);
        free(got);
        free(p);
    }
    /* Over 1024 paths: the answer lists the first 1024 and says truncated. */
    buf_free(&t);
    buf_init(&t);
    for (int i = 0; i < 1030; i++) {
        char name[64];
        snprintf(name, sizeof name, "more/f%d", i);
        tarw_add(&t, name, '0', NULL, "x", 1);
    }
    tarw_end(&t);
    res = fs_upload(s, dst, &t, 200);
    assert_int_equal(json_array_size(json_object_get(res, "paths")), 1024);
    assert_true(json_is_true(json_object_get(res, "truncated")));
    json_decref(res);
    buf_free(&t);
}

/* Each archive tries one escape; `outside` must not appear. */
static void test_upload_batch_escapes(void **state)
{
    struct sj_server *s = *state;
    char root[512];
    fs_dir(root, sizeof root);
    char *dst = sj_fmt("%s/dst", root);
    char *outside = sj_fmt("%s/evil", root);
    assert_int_equal(mkdir(dst, 0755), 0);
    struct {
        const char *name;
        char type;
        const char *link;
    } cases[] = {
        { "../evil", '0', NULL },
        { "a/../../evil", '0', NULL },
        { "/abs/evil", '0', NULL },
        { "l", '2', "/etc" },
        { "l", '2', "../evil" },
        { "sub/l", '2', "../../evil" },
        { "h", '1', "../evil" },
        { "h", '1', "/etc/passwd" },
        { "..", '5', NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf t;
        buf_init(&t);
        tarw_add(&t, "ok.txt", '0', NULL, "ok", 2);
        tarw_add(&t, cases[i].name, cases[i].type, cases[i].link, "evil", 4);
        tarw_add(&t, "after.txt", '0', NULL, "late", 4);
        tarw_end(&t);
        json_t *p = fs_upload(s, dst, &t, 400);
        assert_string_equal(sj_str(p, "type"), "urn:sandbox-agent:error:invalid_request");
        json_decref(p);
        assert_false(fs_exists(outside));
        char *after = sj_fmt("%s/after.txt", dst);
        assert_false(fs_exists(after)); /* nothing after the refused member */
        free(after);
        char *l = sj_fmt("%s/l", dst);
        assert_false(fs_exists(l));
        free(l);
        assert_int_equal(fs_temp_files(dst), 0);
        buf_free(&t);
    }
    /* A pax path and a GNU long name that climb out. */
    struct buf t;
    buf_init(&t);
    tarw_pax(&t, "path", "../evil", NULL);
    tarw_add(&t, "harmless", '0', NULL, "evil", 4);
    tarw_end(&t);
    json_decref(fs_upload(s, dst, &t, 400));
    buf_free(&t);
    buf_init(&t);
    char longname[200];
    snprintf(longname, sizeof longname, "../%0150d/../evil", 0);
    tarw_add(&t, longname, '0', NULL, "evil", 4);
    tarw_end(&t);
    json_decref(fs_upload(s, dst, &t, 400));
    buf_free(&t);
    assert_false(fs_exists(outside));

    /* A symlink on disk pointing out: never written through, as a directory
     * or as a file. */
    char *onl = sj_fmt("%s/out", dst);
    assert_int_equal(symlink(root, onl), 0);
    buf_init(&t);
    tarw_add(&t, "out/evil", '0', NULL, "evil", 4);
    tarw_end(&t);
    json_decref(fs_upload(s, dst, &t, 400));
    buf_free(&t);
    buf_init(&t);
    tarw_add(&t, "out/", '5', NULL, NULL, 0);
    tarw_end(&t);
    json_decref(fs_upload(s, dst, &t, 400));
    buf_free(&t);
    /* A file member named like the symlink replaces the link itself. */
    char *fl = sj_fmt("%s/flink", dst);
    assert_int_equal(symlink(outside, fl), 0);
    buf_init(&t);
    tarw_add(&t, "flink", '0', NULL, "in", 2);
    tarw_end(&t);
    json_decref(fs_upload(s, dst, &t, 200));
    buf_free(&t);
    assert_false(fs_exists(outside));
    struct stat st;
    assert_int_equal(lstat(fl, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* A symlink the archive makes (pointing inside) is not followed by a
     * later member either. */
    buf_init(&t);
    tarw_add(&t, "inner/", '5', NULL, NULL, 0);
    tarw_add(&t, "s", '2', "inner", NULL, 0);
    tarw_add(&t, "s/x", '0', NULL, "x", 1);
    tarw_end(&t);
    json_decref(fs_upload(s, dst, &t, 400));
    buf_free(&t);
    char *sx = sj_fmt("%s/inner/x", dst);
    assert_false(fs_exists(sx));
    free(sx);
    /* Links inside are fine. */
    buf_init(&t);
    tarw_add(&t, "in/f", '0', NULL, "data", 4);
    tarw_add(&t, "in/sl", '2', "f", NULL, 0);
    tarw_add(&t, "in/deeper/up", '2', "../f", NULL, 0);
    tarw_add(&t, "in/hl", '1', "in/f", NULL, 0);
    tarw_end(&t);
    json_t *res = fs_upload(s, dst, &t, 200);
    assert_int_equal(json_array_size(json_object_get(res, "paths")), 4);
    json_decref(res);
    buf_free(&t);
    char *hl = sj_fmt("%s/in/hl", dst);
    size_t len;
    char *got = fs_read_local(hl, &len);
    assert_int_equal(len, 4);
    free(got);
    free(hl);
    assert_false(fs_exists(outside));
    free(fl);
    free(onl);
    free(dst);
    free(outside);
}

/* ---- auth ------------------------------------------------------------------------ */

static int fs_setup_token(void **state)
{
    static const char *const args[] = { "--token", "fs-token", NULL };
    return sj_setup_with(state, args);
}

static void test_every_route_needs_the_token(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    static const char *const routes[][3] = {
        { "GET", "/v1/fs/entries?path=", "" },    { "GET", "/v1/fs/file?path=", "/f" },
        { "PUT", "/v1/fs/file?path=", "/f" },     { "DELETE", "/v1/fs/entry?path=", "/f" },
        { "POST", "/v1/fs/mkdir?path=", "/d" },   { "POST", "/v1/fs/move", NULL },
        { "GET", "/v1/fs/stat?path=", "" },       { "POST", "/v1/fs/upload-batch?path=", "/u" },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char *q = routes[i][2] ? sj_fmt("%s%s%s", routes[i][1], dir, routes[i][2])
                               : sj_fmt("%s", routes[i][1]);
        struct httpc_response r;
        int rc = httpc_request(s->port, routes[i][0], q, NULL, "x", 1, 10000, &r);
        assert_int_equal(rc, 0);
        json_decref(sj_assert_problem(&r, 401, "token_invalid"));
        httpc_response_free(&r);
        free(q);
    }
    /* Nothing was written or made. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 0);
    /* With it, they work. */
    char *q = sj_fmt("/v1/fs/file?path=%s/f", dir);
    json_decref(fs_call(s, "PUT", q, "x", 1, NULL, 200));
    free(q);
}

/* `sandbox-journal api fs ...` against the server: a binary file up with
 * --input and down with --output byte for byte, the listing, and an error as
 * one stderr line and exit 1. */
static void test_cli(void **state)
{
    struct sj_server *s = *state;
    char dir[512];
    fs_dir(dir, sizeof dir);
    char *ep = sj_fmt("http://127.0.0.1:%d", s->port);
    char *src = sj_fmt("%s/src.bin", dir);
    char *down = sj_fmt("%s/down.bin", dir);
    char *remote = sj_fmt("%s/remote/r.bin", dir);
    size_t n = 2 * 1024 * 1024 + 3;
    char *data = malloc(n);
    assert_non_null(data);
    fs_random(data, n, 11);
    fs_write_local(src, data, n);
    struct sj_cli_result r;
    const char *put[] = { "api", "-e", ep, "-t", "fs-token", "fs", "put", remote, "--input", src,
                          NULL };
    sj_cli_run(put, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\"bytesWritten\":2097155"));
    sj_cli_result_free(&r);
    const char *cat[] = { "api", "-e", ep, "-t", "fs-token", "fs", "cat", remote, "-o", down,
                          NULL };
    sj_cli_run(cat, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 0);
    sj_cli_result_free(&r);
    size_t len;
    char *got = fs_read_local(down, &len);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);
    free(got);
    const char *ls[] = { "api", "-e", ep, "-t", "fs-token", "fs", "ls", dir, NULL };
    sj_cli_run(ls, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\"name\":\"remote\""));
    sj_cli_result_free(&r);
    const char *rm[] = { "api", "-e", ep, "-t", "fs-token", "fs", "rm", dir, NULL };
    sj_cli_run(rm, NULL, &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "HTTP 409"));
    sj_cli_result_free(&r);
    const char *cat_missing[] = { "api", "-e", ep, "-t", "fs-token", "fs", "cat", src, "x",
                                  NULL };
    sj_cli_run(cat_missing, NULL, &r);
    assert_int_equal(r.exit_code, 2); /* usage: one PATH only */
    sj_cli_result_free(&r);
    free(data);
    free(ep);
    free(src);
    free(down);
    free(remote);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_errors, sj_setup_default, sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_binary_round_trip, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_streaming_memory, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_size_limit_and_atomicity, fs_setup_small_limit,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_upload_batch_real_tar, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_upload_batch_1000_files, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_upload_batch_escapes, sj_setup_default,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_every_route_needs_the_token, fs_setup_token,
                                        sj_teardown_default),
        cmocka_unit_test_setup_teardown(test_cli, fs_setup_token, sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
