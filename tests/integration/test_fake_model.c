/* Integration tests of sj-fake-model (tests/fake_model/): the scripted
 * fake model server that the real agent CLIs are driven against.
 *
 * Each test writes a script, starts the fake binary ($SJ_FAKE_MODEL) on a
 * free loopback port, sends the requests the CLIs send, and checks the
 * answer byte for byte or event by event: Anthropic Messages streams,
 * OpenAI Responses and chat.completions streams, non-streamed bodies,
 * scripted HTTP errors with their headers, delays, broken streams, the
 * over-the-script rules, the request log, bad requests and bad scripts,
 * and clean exits on SIGTERM/SIGINT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define FAKE_READY_MS 10000
#define FAKE_STOP_MS 5000
#define REQ_MS 10000

/* One running fake; lives in the cmocka state so teardown can always
 * reap it, even after a failed assertion. */
struct fake {
    pid_t pid;
    int port;
    char dir[512];
    char script_path[600];
    char log_path[600];
    char err_path[600];
};

static const char *const anth_headers[] = {
    "Content-Type: application/json", "anthropic-version: 2023-06-01", "x-api-key: sk-test",
    "anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14",
    "X-Claude-Code-Session-Id: 0b7c-session", "x-stainless-retry-count: 0",
    "User-Agent: claude-cli/2.1.197 (external, sdk-cli)", NULL};

static const char *const openai_headers[] = {
    "Content-Type: application/json", "Authorization: Bearer sk-test", "Accept: text/event-stream",
    "session-id: 01a2-thread", "originator: codex_exec", "X-Unlisted-Header: not logged", NULL};

/* ---- small utilities -------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    if (fputs(text, f) == EOF || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

/* new (malloc): the file's contents, or NULL if it cannot be read. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (!f)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            char *p;
            cap = cap ? cap * 2 : 8192;
            p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Asserts that `actual` equals the JSON text `expected`, printing both on
 * a mismatch. */
static void assert_json_eq(const json_t *actual, const char *expected)
{
    json_error_t jerr;
    json_t *want = json_loads(expected, JSON_DECODE_ANY, &jerr);
    if (!want)
        fail_msg("bad expected JSON (%s): %s", jerr.text, expected);
    if (!json_equal((json_t *)actual, want)) {
        char *got = json_dumps(actual, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "expected: %s\n     got: %s\n", expected, got ? got : "(null)");
        free(got);
        json_decref(want);
        fail_msg("JSON mismatch");
    }
    json_decref(want);
}

/* ---- starting and stopping the fake ------------------------------------------ */

static const char *fake_binary(void)
{
    const char *bin = getenv("SJ_FAKE_MODEL");
    if (!bin || !*bin)
        fail_msg("SJ_FAKE_MODEL is not set (run through ctest)");
    return bin;
}

/* Reads the ready line from `fd`.  The port, or -1 on EOF or timeout. */
static int fake_read_ready(int fd)
{
    char line[256];
    size_t len = 0;
    int64_t deadline = now_ms() + FAKE_READY_MS;
    static const char prefix[] = "listening on http://127.0.0.1:";
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        int64_t left = deadline - now_ms();
        char ch;
        ssize_t n;
        if (left <= 0)
            return -1;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        n = read(fd, &ch, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (ch != '\n') {
            if (len + 1 < sizeof line)
                line[len++] = ch;
            continue;
        }
        line[len] = '\0';
        if (strncmp(line, prefix, sizeof prefix - 1) == 0) {
            char *end;
            long port = strtol(line + sizeof prefix - 1, &end, 10);
            if (*end == '\0' && port > 0 && port < 65536)
                return (int)port;
        }
        fprintf(stderr, "unexpected fake stdout: %s\n", line);
        return -1;
    }
}

/* Waits up to timeout_ms for `pid`; 1 and *status when it exited. */
static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 1;
        if (now_ms() >= deadline)
            return 0;
        sj_sleep_ms(5);
    }
}

/* Runs the fake with `script` (text, written to the test dir; NULL: reuse
 * the file already there) and arguments `extra`.  0 when it is ready;
 * otherwise -1 with the process reaped and its wait status in *status. */
static int fake_spawn(struct fake *f, const char *script, const char *const *extra, int *status)
{
    const char *argv[48];
    int argc = 0, pipefd[2], rc;
    char wrapper[1024] = "";
    const char *wrap_env = getenv("SJ_SERVER_WRAPPER");
    posix_spawn_file_actions_t fa;

    if (!f->dir[0])
        sj_fresh_dir(f->dir, sizeof f->dir, "fake_model");
    snprintf(f->script_path, sizeof f->script_path, "%s/script.json", f->dir);
    snprintf(f->log_path, sizeof f->log_path, "%s/requests.jsonl", f->dir);
    snprintf(f->err_path, sizeof f->err_path, "%s/stderr.txt", f->dir);
    if (script)
        write_file(f->script_path, script);

    /* The same checker wrapper (valgrind) the server runs under, if any. */
    if (wrap_env && *wrap_env && strlen(wrap_env) < sizeof wrapper) {
        strcpy(wrapper, wrap_env);
        for (char *tok = strtok(wrapper, " "); tok && argc < 16; tok = strtok(NULL, " "))
            argv[argc++] = tok;
    }
    argv[argc++] = fake_binary();
    argv[argc++] = "--host";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--script";
    argv[argc++] = f->script_path;
    argv[argc++] = "--log";
    argv[argc++] = f->log_path;
    for (int i = 0; extra && extra[i] && argc < 46; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    if (pipe(pipefd) != 0)
        fail_msg("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, f->err_path,
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    rc = posix_spawnp(&f->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        f->pid = 0;
        fail_msg("cannot start %s: %s", argv[0], strerror(rc));
    }
    f->port = fake_read_ready(pipefd[0]);
    /* Nothing else is ever printed on stdout; stderr goes to a file. */
    close(pipefd[0]);
    if (f->port > 0)
        return 0;
    if (!wait_exit(f->pid, FAKE_STOP_MS, status)) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, status, 0);
    }
    f->pid = 0;
    return -1;
}

static void fake_start_with(struct fake *f, const char *script, const char *const *extra)
{
    int status = 0;
    if (fake_spawn(f, script, extra, &status) != 0) {
        char *err = read_file(f->err_path);
        fprintf(stderr, "fake stderr:\n%s\n", err ? err : "");
        free(err);
        fail_msg("sj-fake-model did not become ready (wait status %d)", status);
    }
}

static void fake_start(struct fake *f, const char *script)
{
    fake_start_with(f, script, NULL);
}

/* Sends `sig` and waits for the exit.  The wait status; fails the test if
 * the fake does not exit within FAKE_STOP_MS. */
static int fake_signal_stop(struct fake *f, int sig)
{
    int status = 0;
    if (f->pid <= 0)
        return 0;
    kill(f->pid, sig);
    if (!wait_exit(f->pid, FAKE_STOP_MS, &status)) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &status, 0);
        f->pid = 0;
        fail_msg("sj-fake-model did not exit within %d ms of signal %d", FAKE_STOP_MS, sig);
    }
    f->pid = 0;
    return status;
}

/* Stops the fake with SIGTERM and asserts a clean exit 0 (under ASan any
 * leak report or error makes the exit status non-zero). */
static void fake_stop(struct fake *f)
{
    int status = fake_signal_stop(f, SIGTERM);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *err = read_file(f->err_path);
        fprintf(stderr, "fake stderr:\n%s\n", err ? err : "");
        free(err);
        fail_msg("sj-fake-model exited with wait status %d", status);
    }
}

/* new: the request log as an array of the JSON lines. */
static json_t *fake_log(const struct fake *f)
{
    char *text = read_file(f->log_path);
    json_t *out = json_array();
    char *line, *save = NULL;
    assert_non_null(text);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        if (!rec)
            fail_msg("log line is not JSON (%s): %s", jerr.text, line);
        json_array_append_new(out, rec);
    }
    free(text);
    return out;
}

static int setup_fake(void **state)
{
    struct fake *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    *state = f;
    return 0;
}

static int teardown_fake(void **state)
{
    struct fake *f = *state;
    int status = 0, ok = 1;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        if (!wait_exit(f->pid, FAKE_STOP_MS, &status)) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
        }
        ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    free(f);
    return ok ? 0 : -1;
}

/* ---- requests and streams ---------------------------------------------------------- */

static void request(const struct fake *f, const char *method, const char *path,
                    const char *const *headers, const char *body, struct httpc_response *resp)
{
    int rc = httpc_request(f->port, method, path, headers, body, body ? strlen(body) : 0,
                           REQ_MS, resp);
    if (rc != 0)
        fail_msg("%s %s: %s", method, path, httpc_strerror(rc));
}

/* new: the SSE body split into [{"event":E|null,"data":J}], J being the
 * parsed data or, when it is not JSON ("[DONE]"), the data string. */
static json_t *sse_parse(const char *body)
{
    json_t *out = json_array();
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        char *block, *line, *save = NULL;
        json_t *ev = json_object();
        if (!end)
            fail_msg("unterminated SSE frame: %s", p);
        block = strndup(p, (size_t)(end - p));
        for (line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "event: ", 7) == 0) {
                json_object_set_new(ev, "event", json_string(line + 7));
            } else if (strncmp(line, "data: ", 6) == 0) {
                json_t *data = json_loads(line + 6, JSON_DECODE_ANY, NULL);
                json_object_set_new(ev, "data", data ? data : json_string(line + 6));
            } else {
                fail_msg("unexpected SSE line: %s", line);
            }
        }
        free(block);
        if (!json_object_get(ev, "data"))
            fail_msg("SSE frame without data");
        json_array_append_new(out, ev);
        p = end + 2;
    }
    return out;
}

/* POSTs `body` and asserts a 200 event stream.  new: the parsed events. */
static json_t *post_stream(const struct fake *f, const char *path, const char *const *headers,
                           const char *body)
{
    struct httpc_response resp;
    json_t *events;
    request(f, "POST", path, headers, body, &resp);
    if (resp.status != 200)
        fail_msg("POST %s -> %d %s", path, resp.status, resp.body);
    assert_string_equal(httpc_header(&resp, "Content-Type"), "text/event-stream");
    assert_string_equal(httpc_header(&resp, "Cache-Control"), "no-cache");
    events = sse_parse(resp.body);
    httpc_response_free(&resp);
    return events;
}

/* new (malloc): the comma-joined event names ("event:" lines, or the data
 * "type" for bare frames, "DONE" for the chat terminator). */
static char *event_names(const json_t *events)
{
    char *out = calloc(1, 1);
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *name = json_string_value(json_object_get(ev, "event"));
        const json_t *data = json_object_get(ev, "data");
        char *next;
        if (!name)
            name = json_is_string(data) ? "DONE"
                   : json_object_get(data, "error") ? "error"
                   : json_string_value(json_object_get(data, "object"));
        next = sj_fmt("%s%s%s", out, i ? "," : "", name ? name : "?");
        free(out);
        out = next;
    }
    return out;
}

static void assert_event_names(const json_t *events, const char *expected)
{
    char *names = event_names(events);
    if (strcmp(names, expected) != 0) {
        fprintf(stderr, "expected: %s\n     got: %s\n", expected, names);
        free(names);
        fail_msg("event sequence mismatch");
    }
    free(names);
}

/* The data of event i. */
static const json_t *ev_data(const json_t *events, size_t i)
{
    const json_t *data = json_object_get(json_array_get(events, i), "data");
    assert_non_null(data);
    return data;
}

/* Sets every chat chunk's "created" to 0 so chunks compare exactly. */
static void mask_created(json_t *events)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        json_t *data = json_object_get(ev, "data");
        if (json_object_get(data, "created"))
            json_object_set_new(data, "created", json_integer(0));
    }
}

/* ---- Anthropic Messages ------------------------------------------------------------- */

static const char msg_body[] =
    "{\"model\":\"claude-opus-4-8\",\"max_tokens\":64000,\"stream\":true,"
    "\"thinking\":{\"type\":\"adaptive\"},\"tools\":[{\"name\":\"Bash\"}],"
    "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]},"
    "{\"role\":\"system\",\"content\":\"mid-conversation system text\"}]}";

/* The whole stream of a text step, byte for byte. */
static void test_anthropic_text_exact(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    static const char expected[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_fake_1\",\"type\":\"message\","
        "\"role\":\"assistant\",\"model\":\"claude-opus-4-8\",\"content\":[],\"stop_reason\":null,"
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1,"
        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"Hel\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"lo \xc3\xa9\"}}\n\n"
        "event: content_block_stop\n"
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
        "\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n\n";

    fake_start(f, "{\"steps\":[{\"text\":[\"Hel\",\"lo \\u00e9\"]}]}");
    request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "Content-Type"), "text/event-stream");
    assert_string_equal(httpc_header(&resp, "request-id"), "req_fake_1");
    /* UTF-8 goes out as is, not as \u escapes. */
    assert_string_equal(resp.body, expected);
    httpc_response_free(&resp);
    fake_stop(f);
}

/* "first request: call Bash; second request: say 'done'" */
static void test_anthropic_tool_then_text(void **state)
{
    struct fake *f = *state;
    json_t *ev, *log, *input;
    struct httpc_response resp;
    char *second;
    size_t i;
    json_t *e;
    struct {
        char *buf;
        size_t len;
    } partial = {NULL, 0};

    fake_start(f, "{\"steps\":["
                  "{\"text\":\"I'll write the file.\",\"chunks\":2,"
                  " \"tool\":{\"name\":\"Bash\",\"input\":{\"command\":\"echo hi > out.txt\","
                  "  \"description\":\"Write hi to out.txt\"},\"chunks\":3}},"
                  "{\"text\":\"done\"}]}");
    ev = post_stream(f, "/v1/messages?beta=true", anth_headers, msg_body);
    assert_event_names(ev, "message_start,content_block_start,content_block_delta,"
                           "content_block_delta,content_block_stop,content_block_start,"
                           "content_block_delta,content_block_delta,content_block_delta,"
                           "content_block_stop,message_delta,message_stop");
    assert_json_eq(ev_data(ev, 2), "{\"type\":\"content_block_delta\",\"index\":0,"
                                   "\"delta\":{\"type\":\"text_delta\",\"text\":\"I'll write\"}}");
    assert_json_eq(ev_data(ev, 5),
                   "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
                   "{\"type\":\"tool_use\",\"id\":\"toolu_fake_1_1\",\"name\":\"Bash\","
                   "\"input\":{}}}");
    /* The input arrives as input_json_delta pieces that join to the input. */
    json_array_foreach(ev, i, e) {
        const json_t *delta = json_object_get(json_object_get(e, "data"), "delta");
        const char *pj = json_string_value(json_object_get(delta, "partial_json"));
        if (pj) {
            char *next = sj_fmt("%s%s", partial.buf ? partial.buf : "", pj);
            free(partial.buf);
            partial.buf = next;
            partial.len++;
        }
    }
    assert_int_equal(partial.len, 3);
    input = json_loads(partial.buf, 0, NULL);
    assert_json_eq(input, "{\"command\":\"echo hi > out.txt\","
                          "\"description\":\"Write hi to out.txt\"}");
    json_decref(input);
    free(partial.buf);
    assert_json_eq(ev_data(ev, 10), "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                    "\"tool_use\",\"stop_sequence\":null},"
                                    "\"usage\":{\"output_tokens\":12}}");
    json_decref(ev);

    /* The agent sends the tool result back; the script says "done". */
    second = sj_fmt("{\"model\":\"claude-opus-4-8\",\"stream\":true,"
                    "\"tools\":[{\"name\":\"Bash\"}],"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"create out.txt\"},"
                    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
                    "\"id\":\"toolu_fake_1_1\",\"name\":\"Bash\",\"input\":{}}]},"
                    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                    "\"tool_use_id\":\"toolu_fake_1_1\","
                    "\"content\":\"(Bash completed with no output)\",\"is_error\":false}]}]}");
    request(f, "POST", "/v1/messages?beta=true", anth_headers, second, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "request-id"), "req_fake_2");
    ev = sse_parse(resp.body);
    assert_event_names(ev, "message_start,content_block_start,content_block_delta,"
                           "content_block_delta,content_block_stop,message_delta,message_stop");
    assert_string_equal(sj_str(ev_data(ev, 0), "message.id"), "msg_fake_2");
    assert_string_equal(sj_str(ev_data(ev, 2), "delta.text"), "do");
    assert_string_equal(sj_str(ev_data(ev, 5), "delta.stop_reason"), "end_turn");
    json_decref(ev);
    httpc_response_free(&resp);
    free(second);

    /* The log holds what the agent sent: the tool_result of turn one. */
    log = fake_log(f);
    assert_int_equal(json_array_size(log), 2);
    {
        const json_t *msgs = json_object_get(json_object_get(json_array_get(log, 1), "body"),
                                             "messages");
        const json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
        const json_t *block = json_array_get(json_object_get(last, "content"), 0);
        assert_string_equal(json_string_value(json_object_get(block, "type")), "tool_result");
        assert_string_equal(json_string_value(json_object_get(block, "content")),
                            "(Bash completed with no output)");
    }
    assert_json_eq(json_object_get(json_array_get(log, 0), "reply"),
                   "{\"kind\":\"step\",\"index\":0,\"section\":\"default\",\"seq\":1,"
                   "\"stream\":true}");
    json_decref(log);
    fake_stop(f);
}

static void test_anthropic_thinking_then_text(void **state)
{
    struct fake *f = *state;
    json_t *ev;
    fake_start(f, "{\"steps\":["
                  "{\"thinking\":\"The user wants a greeting.\",\"text\":\"Hello there!\","
                  " \"chunks\":2},"
                  "{\"blocks\":[{\"type\":\"thinking\",\"thinking\":[\"a\",\"b\"],"
                  "  \"signature\":\"sig-xyz\"},{\"type\":\"text\",\"text\":\"ok\"}]}]}");
    ev = post_stream(f, "/v1/messages", anth_headers, msg_body);
    assert_event_names(ev, "message_start,content_block_start,content_block_delta,"
                           "content_block_delta,content_block_delta,content_block_stop,"
                           "content_block_start,content_block_delta,content_block_delta,"
                           "content_block_stop,message_delta,message_stop");
    assert_json_eq(ev_data(ev, 1), "{\"type\":\"content_block_start\",\"index\":0,"
                                   "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\","
                                   "\"signature\":\"\"}}");
    assert_json_eq(ev_data(ev, 2), "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"thinking_delta\",\"thinking\":\"The user want\"}}");
    assert_json_eq(ev_data(ev, 3), "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"thinking_delta\",\"thinking\":\"s a greeting.\"}}");
    assert_json_eq(ev_data(ev, 4), "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"signature_delta\",\"signature\":\"fakesig1\"}}");
    assert_json_eq(ev_data(ev, 7), "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                                   "{\"type\":\"text_delta\",\"text\":\"Hello \"}}");
    assert_string_equal(sj_str(ev_data(ev, 10), "delta.stop_reason"), "end_turn");
    json_decref(ev);

    ev = post_stream(f, "/v1/messages", anth_headers, msg_body);
    assert_json_eq(ev_data(ev, 3), "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"thinking_delta\",\"thinking\":\"b\"}}");
    assert_json_eq(ev_data(ev, 4), "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"signature_delta\",\"signature\":\"sig-xyz\"}}");
    json_decref(ev);
    fake_stop(f);
}

/* AskUserQuestion and ExitPlanMode are ordinary tool_use blocks. */
static void test_anthropic_question_and_plan(void **state)
{
    struct fake *f = *state;
    json_t *ev;
    fake_start(f,
               "{\"steps\":["
               "{\"text\":\"Let me ask you first.\",\"chunks\":1,"
               " \"tool\":{\"name\":\"AskUserQuestion\","
               " \"id\":\"toolu_ask\",\"chunks\":1,\"input\":{\"questions\":[{\"question\":"
               " \"Which language?\",\"header\":\"Language\",\"options\":[{\"label\":\"English\","
               " \"description\":\"Say hello\"},{\"label\":\"French\",\"description\":"
               " \"Say bonjour\"}],\"multiSelect\":false}]}}},"
               "{\"tool\":[{\"name\":\"ExitPlanMode\",\"chunks\":1},"
               "          {\"name\":\"Write\",\"input\":{\"file_path\":"
               "           \"{{re:create your plan at (\\\\S+\\\\.md)}}\","
               "           \"content\":\"# Plan\"}}]}"
               "]}");
    ev = post_stream(f, "/v1/messages", anth_headers, msg_body);
    assert_json_eq(ev_data(ev, 4), "{\"type\":\"content_block_start\",\"index\":1,"
                                   "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_ask\","
                                   "\"name\":\"AskUserQuestion\",\"input\":{}}}");
    {
        const char *pj = sj_str(ev_data(ev, 5), "delta.partial_json");
        json_t *input = json_loads(pj, 0, NULL);
        assert_non_null(input);
        assert_string_equal(sj_str(json_array_get(json_object_get(input, "questions"), 0),
                                   "question"),
                            "Which language?");
        json_decref(input);
    }
    assert_string_equal(sj_str(ev_data(ev, 7), "delta.stop_reason"), "tool_use");
    json_decref(ev);

    /* Two tools in one turn; {{re:}} fills the plan path from the request. */
    ev = post_stream(f, "/v1/messages", anth_headers,
                     "{\"stream\":true,\"model\":\"m\",\"system\":\"... create your plan at "
                     "/home/u/.claude/plans/brave-otter.md and then ...\",\"messages\":[]}");
    assert_event_names(ev, "message_start,content_block_start,content_block_delta,"
                           "content_block_stop,content_block_start,content_block_delta,"
                           "content_block_delta,content_block_stop,message_delta,message_stop");
    assert_json_eq(ev_data(ev, 2), "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}");
    {
        char *joined = sj_fmt("%s%s", sj_str(ev_data(ev, 5), "delta.partial_json"),
                              sj_str(ev_data(ev, 6), "delta.partial_json"));
        json_t *input = json_loads(joined, 0, NULL);
        assert_json_eq(input, "{\"file_path\":\"/home/u/.claude/plans/brave-otter.md\","
                              "\"content\":\"# Plan\"}");
        json_decref(input);
        free(joined);
    }
    assert_string_equal(sj_str(ev_data(ev, 4), "content_block.id"), "toolu_fake_2_1");
    json_decref(ev);
    fake_stop(f);
}

static void test_anthropic_errors(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *body;
    fake_start(f, "{\"steps\":["
                  "{\"error\":{\"status\":500,\"message\":\"Internal server error\","
                  "  \"should_retry\":false}},"
                  "{\"error\":{\"status\":401,\"type\":\"authentication_error\","
                  "  \"message\":\"invalid x-api-key\","
                  "  \"headers\":{\"x-should-retry\":\"false\"}}},"
                  "{\"error\":{\"status\":429,\"retry_after\":2}},"
                  "{\"error\":{\"status\":529,\"body\":{\"custom\":true}}},"
                  "{\"text\":\"Recovered fine.\"}]}");
    request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
    assert_int_equal(resp.status, 500);
    assert_string_equal(httpc_header(&resp, "x-should-retry"), "false");
    assert_string_equal(httpc_header(&resp, "Content-Type"), "application/json");
    body = httpc_json(&resp);
    assert_json_eq(body, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                         "\"message\":\"Internal server error\"}}");
    json_decref(body);
    httpc_response_free(&resp);

    request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
    assert_int_equal(resp.status, 401);
    assert_string_equal(httpc_header(&resp, "x-should-retry"), "false");
    body = httpc_json(&resp);
    assert_json_eq(body, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                         "\"message\":\"invalid x-api-key\"}}");
    json_decref(body);
    httpc_response_free(&resp);

    request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
    assert_int_equal(resp.status, 429);
    assert_string_equal(httpc_header(&resp, "retry-after"), "2");
    assert_null(httpc_header(&resp, "x-should-retry"));
    body = httpc_json(&resp);
    assert_json_eq(body, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                         "\"message\":\"scripted error\"}}");
    json_decref(body);
    httpc_response_free(&resp);

    request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
    assert_int_equal(resp.status, 529);
    assert_string_equal(resp.body, "{\"custom\":true}");
    httpc_response_free(&resp);

    body = post_stream(f, "/v1/messages?beta=true", anth_headers, msg_body);
    assert_string_equal(sj_str(ev_data(body, 2), "delta.text"), "Recov");
    json_decref(body);
    fake_stop(f);
}

/* A stream that fails mid-way: an "error" event, or a cut connection. */
static void test_anthropic_broken_streams(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *ev;
    int rc;
    fake_start(f, "{\"steps\":["
                  "{\"text\":\"partial\",\"chunks\":1,\"stream_error\":{}},"
                  "{\"text\":\"cut\",\"chunks\":1,\"disconnect\":true},"
                  "{\"text\":\"x\",\"stream_error\":{\"type\":\"api_error\",\"message\":\"boom\"}}"
                  "]}");
    ev = post_stream(f, "/v1/messages", anth_headers, msg_body);
    assert_event_names(ev, "message_start,content_block_start,content_block_delta,"
                           "content_block_stop,error");
    assert_json_eq(ev_data(ev, 4), "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                   "\"message\":\"Overloaded\"}}");
    json_decref(ev);

    /* The chunked body ends without its last chunk: the client sees an
     * unterminated stream, never message_stop. */
    rc = httpc_request(f->port, "POST", "/v1/messages", anth_headers, msg_body, strlen(msg_body),
                       REQ_MS, &resp);
    if (rc == 0) {
        assert_null(strstr(resp.body ? resp.body : "", "message_stop"));
        httpc_response_free(&resp);
    } else {
        assert_true(rc == HTTPC_ECLOSED || rc == HTTPC_EPROTO);
    }

    /* Without "stream":true the stream error becomes the HTTP answer. */
    request(f, "POST", "/v1/messages", anth_headers, "{\"model\":\"m\",\"messages\":[]}", &resp);
    assert_int_equal(resp.status, 500);
    ev = httpc_json(&resp);
    assert_json_eq(ev, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                       "\"message\":\"boom\"}}");
    json_decref(ev);
    httpc_response_free(&resp);
    fake_stop(f);
}

/* Without "stream":true each API gets its complete JSON object. */
static void test_non_streamed(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *body;
    fake_start(f, "{\"steps\":[],\"after\":{\"thinking\":\"hm\",\"text\":\"Hi\","
                  "\"tool\":{\"name\":\"Bash\",\"id\":\"t1\",\"input\":{\"command\":\"ls\"}}}}");
    request(f, "POST", "/v1/messages", anth_headers, "{\"model\":\"claude-x\",\"messages\":[]}",
            &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "Content-Type"), "application/json");
    body = httpc_json(&resp);
    assert_json_eq(body, "{\"id\":\"msg_fake_1\",\"type\":\"message\",\"role\":\"assistant\","
                         "\"model\":\"claude-x\",\"content\":[{\"type\":\"thinking\","
                         "\"thinking\":\"hm\",\"signature\":\"fakesig1\"},{\"type\":\"text\","
                         "\"text\":\"Hi\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\","
                         "\"input\":{\"command\":\"ls\"}}],\"stop_reason\":\"tool_use\","
                         "\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,"
                         "\"output_tokens\":12}}");
    json_decref(body);
    httpc_response_free(&resp);

    request(f, "POST", "/v1/responses", openai_headers, "{\"model\":\"fake-model\",\"input\":[]}",
            &resp);
    assert_int_equal(resp.status, 200);
    body = httpc_json(&resp);
    assert_json_eq(body,
                   "{\"id\":\"resp_2\",\"object\":\"response\",\"status\":\"completed\","
                   "\"model\":\"fake-model\",\"output\":[{\"type\":\"reasoning\",\"id\":\"rs_2_0\","
                   "\"summary\":[{\"type\":\"summary_text\",\"text\":\"hm\"}]},"
                   "{\"type\":\"message\","
                   "\"id\":\"msg_2_1\",\"role\":\"assistant\",\"status\":\"completed\",\"content\":"
                   "[{\"type\":\"output_text\",\"text\":\"Hi\",\"annotations\":[]}]},"
                   "{\"type\":\"function_call\",\"id\":\"fc_2_2\",\"call_id\":\"t1\",\"name\":"
                   "\"Bash\",\"arguments\":\"{\\\"command\\\":\\\"ls\\\"}\",\"status\":"
                   "\"completed\"}],\"usage\":{\"input_tokens\":10,\"output_tokens\":5,"
                   "\"total_tokens\":15,\"input_tokens_details\":{\"cached_tokens\":0},"
                   "\"output_tokens_details\":{\"reasoning_tokens\":0}}}");
    json_decref(body);
    httpc_response_free(&resp);

    request(f, "POST", "/v1/chat/completions", openai_headers,
            "{\"model\":\"fake-model\",\"stream\":false,\"messages\":[]}", &resp);
    assert_int_equal(resp.status, 200);
    body = httpc_json(&resp);
    json_object_set_new(body, "created", json_integer(0));
    assert_json_eq(body, "{\"id\":\"chatcmpl-3\",\"object\":\"chat.completion\",\"created\":0,"
                         "\"model\":\"fake-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":\"Hi\",\"reasoning_content\":\"hm\","
                         "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":"
                         "{\"name\":\"Bash\",\"arguments\":\"{\\\"command\\\":\\\"ls\\\"}\"}}]},"
                         "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":10,"
                         "\"completion_tokens\":5,\"total_tokens\":15}}");
    json_decref(body);
    httpc_response_free(&resp);
    fake_stop(f);
}

/* ---- OpenAI Responses ------------------------------------------------------------------ */

static const char resp_body[] =
    "{\"model\":\"fake-model\",\"stream\":true,\"store\":false,\"tool_choice\":\"auto\","
    "\"reasoning\":{\"summary\":\"auto\"},\"include\":[\"reasoning.encrypted_content\"],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"exec_command\"}],"
    "\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\","
    "\"text\":\"create out.txt\"}]}]}";

static void test_responses_text_exact(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    static const char expected[] =
        "event: response.created\n"
        "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\","
        "\"object\":\"response\","
        "\"status\":\"in_progress\",\"model\":\"fake-model\",\"output\":[]}}\n\n"
        "event: response.output_item.added\n"
        "data: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":"
        "\"message\",\"id\":\"msg_1_0\",\"role\":\"assistant\",\"status\":\"in_progress\","
        "\"content\":[]}}\n\n"
        "event: response.content_part.added\n"
        "data: {\"type\":\"response.content_part.added\",\"item_id\":\"msg_1_0\","
        "\"output_index\":0,"
        "\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}"
        "\n\n"
        "event: response.output_text.delta\n"
        "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1_0\",\"output_index\":0,"
        "\"content_index\":0,\"delta\":\"Hello \"}\n\n"
        "event: response.output_text.delta\n"
        "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1_0\",\"output_index\":0,"
        "\"content_index\":0,\"delta\":\"world\"}\n\n"
        "event: response.output_text.done\n"
        "data: {\"type\":\"response.output_text.done\",\"item_id\":\"msg_1_0\",\"output_index\":0,"
        "\"content_index\":0,\"text\":\"Hello world\"}\n\n"
        "event: response.content_part.done\n"
        "data: {\"type\":\"response.content_part.done\",\"item_id\":\"msg_1_0\",\"output_index\":0,"
        "\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"Hello world\","
        "\"annotations\":[]}}\n\n"
        "event: response.output_item.done\n"
        "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":"
        "\"message\",\"id\":\"msg_1_0\",\"role\":\"assistant\",\"status\":\"completed\","
        "\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\",\"annotations\":[]}]}}\n\n"
        "event: response.completed\n"
        "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"object\":"
        "\"response\",\"status\":\"completed\",\"model\":\"fake-model\",\"output\":[{\"type\":"
        "\"message\",\"id\":\"msg_1_0\",\"role\":\"assistant\",\"status\":\"completed\","
        "\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\",\"annotations\":[]}]}],"
        "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"total_tokens\":15,"
        "\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens_details\":"
        "{\"reasoning_tokens\":0}}}}\n\n";

    fake_start(f, "{\"steps\":[{\"text\":\"Hello world\",\"chunks\":2}]}");
    request(f, "POST", "/v1/responses", openai_headers, resp_body, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(httpc_header(&resp, "Content-Type"), "text/event-stream");
    assert_string_equal(httpc_header(&resp, "x-request-id"), "req_fake_1");
    assert_string_equal(resp.body, expected);
    httpc_response_free(&resp);
    fake_stop(f);
}

static void test_responses_tools_and_reasoning(void **state)
{
    struct fake *f = *state;
    json_t *ev, *log;
    fake_start(f,
               "{\"steps\":["
               "{\"thinking\":\"I will run it.\",\"chunks\":1,\"tool\":{\"name\":\"exec_command\","
               " \"input\":{\"cmd\":\"echo hi > out.txt\",\"login\":false},\"chunks\":1}},"
               "{\"blocks\":[{\"type\":\"custom_tool_call\",\"name\":\"apply_patch\","
               " \"input\":\"*** Begin Patch\\n*** End Patch\\n\",\"chunks\":1},"
               " {\"type\":\"function_call\",\"name\":\"shell\",\"id\":\"call_mine\","
               "  \"arguments\":\"{\\\"command\\\":[\\\"ls\\\"]}\",\"chunks\":2}]},"
               "{\"text\":\"done\"}]}");
    ev = post_stream(f, "/v1/responses", openai_headers, resp_body);
    assert_event_names(ev, "response.created,response.output_item.added,"
                           "response.reasoning_summary_part.added,"
                           "response.reasoning_summary_text.delta,"
                           "response.reasoning_summary_text.done,"
                           "response.reasoning_summary_part.done,response.output_item.done,"
                           "response.output_item.added,response.function_call_arguments.delta,"
                           "response.function_call_arguments.done,response.output_item.done,"
                           "response.completed");
    assert_json_eq(ev_data(ev, 1), "{\"type\":\"response.output_item.added\",\"output_index\":0,"
                                   "\"item\":{\"type\":\"reasoning\",\"id\":\"rs_1_0\","
                                   "\"summary\":[]}}");
    assert_json_eq(ev_data(ev, 3), "{\"type\":\"response.reasoning_summary_text.delta\","
                                   "\"item_id\":\"rs_1_0\",\"output_index\":0,"
                                   "\"summary_index\":0,\"delta\":\"I will run it.\"}");
    assert_json_eq(ev_data(ev, 6), "{\"type\":\"response.output_item.done\",\"output_index\":0,"
                                   "\"item\":{\"type\":\"reasoning\",\"id\":\"rs_1_0\",\"summary\":"
                                   "[{\"type\":\"summary_text\",\"text\":\"I will run it.\"}]}}");
    assert_json_eq(ev_data(ev, 7), "{\"type\":\"response.output_item.added\",\"output_index\":1,"
                                   "\"item\":{\"type\":\"function_call\",\"id\":\"fc_1_1\","
                                   "\"call_id\":\"call_1_1\",\"name\":\"exec_command\","
                                   "\"arguments\":\"\",\"status\":\"in_progress\"}}");
    assert_json_eq(ev_data(ev, 9),
                   "{\"type\":\"response.function_call_arguments.done\",\"item_id\":\"fc_1_1\","
                   "\"output_index\":1,\"arguments\":"
                   "\"{\\\"cmd\\\":\\\"echo hi > out.txt\\\",\\\"login\\\":false}\"}");
    assert_string_equal(sj_str(ev_data(ev, 11), "response.status"), "completed");
    assert_int_equal(json_array_size(json_object_get(json_object_get(ev_data(ev, 11), "response"),
                                                     "output")),
                     2);
    json_decref(ev);

    ev = post_stream(f, "/v1/responses", openai_headers, resp_body);
    assert_event_names(ev, "response.created,response.output_item.added,"
                           "response.custom_tool_call_input.delta,"
                           "response.custom_tool_call_input.done,response.output_item.done,"
                           "response.output_item.added,response.function_call_arguments.delta,"
                           "response.function_call_arguments.delta,"
                           "response.function_call_arguments.done,response.output_item.done,"
                           "response.completed");
    assert_json_eq(ev_data(ev, 4), "{\"type\":\"response.output_item.done\",\"output_index\":0,"
                                   "\"item\":{\"type\":\"custom_tool_call\",\"id\":\"ctc_2_0\","
                                   "\"call_id\":\"call_2_0\",\"name\":\"apply_patch\",\"input\":"
                                   "\"*** Begin Patch\\n*** End Patch\\n\",\"status\":"
                                   "\"completed\"}}");
    assert_string_equal(sj_str(ev_data(ev, 5), "item.call_id"), "call_mine");
    assert_string_equal(sj_str(ev_data(ev, 8), "arguments"), "{\"command\":[\"ls\"]}");
    json_decref(ev);

    ev = post_stream(f, "/v1/responses", openai_headers,
                     "{\"model\":\"fake-model\",\"stream\":true,\"input\":[{\"type\":"
                     "\"function_call_output\",\"call_id\":\"call_1_1\",\"output\":"
                     "\"Process exited with code 0\"}]}");
    assert_string_equal(sj_str(ev_data(ev, 3), "delta"), "do");
    json_decref(ev);

    log = fake_log(f);
    assert_int_equal(json_array_size(log), 3);
    assert_string_equal(sj_str(json_array_get(log, 2), "api"), "responses");
    assert_string_equal(
        sj_str(json_array_get(json_object_get(json_object_get(json_array_get(log, 2), "body"),
                                              "input"),
                              0),
               "output"),
        "Process exited with code 0");
    json_decref(log);
    fake_stop(f);
}

static void test_responses_errors(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *body, *ev;
    fake_start(f, "{\"steps\":["
                  "{\"error\":{\"status\":500,\"message\":\"scripted upstream failure\"}},"
                  "{\"error\":{\"status\":429,\"code\":\"rate_limit_exceeded\","
                  "  \"retry_after\":\"1\"}},"
                  "{\"text\":\"half\",\"stream_error\":{\"type\":\"context_length_exceeded\","
                  " \"message\":\"too long\"}}]}");
    request(f, "POST", "/v1/responses", openai_headers, resp_body, &resp);
    assert_int_equal(resp.status, 500);
    body = httpc_json(&resp);
    assert_json_eq(body, "{\"error\":{\"message\":\"scripted upstream failure\",\"type\":"
                         "\"server_error\",\"param\":null,\"code\":null}}");
    json_decref(body);
    httpc_response_free(&resp);

    request(f, "POST", "/v1/responses", openai_headers, resp_body, &resp);
    assert_int_equal(resp.status, 429);
    assert_string_equal(httpc_header(&resp, "retry-after"), "1");
    body = httpc_json(&resp);
    assert_json_eq(body, "{\"error\":{\"message\":\"scripted error\",\"type\":"
                         "\"invalid_request_error\",\"param\":null,\"code\":"
                         "\"rate_limit_exceeded\"}}");
    json_decref(body);
    httpc_response_free(&resp);

    ev = post_stream(f, "/v1/responses", openai_headers, resp_body);
    assert_string_equal(sj_str(ev_data(ev, json_array_size(ev) - 1), "type"), "response.failed");
    assert_json_eq(json_object_get(json_object_get(ev_data(ev, json_array_size(ev) - 1),
                                                   "response"),
                                   "error"),
                   "{\"code\":\"context_length_exceeded\",\"message\":\"too long\"}");
    json_decref(ev);
    fake_stop(f);
}

/* ---- OpenAI chat.completions (OpenCode) -------------------------------------------------- */

static void test_chat_stream(void **state)
{
    struct fake *f = *state;
    json_t *ev;
    static const char body[] =
        "{\"model\":\"fake-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"tool_choice\":\"auto\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"bash\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    fake_start(f, "{\"rules\":[{\"match\":\"You are a title generator\","
                  "           \"reply\":{\"text\":\"Fake title\",\"chunks\":1}}],"
                  " \"steps\":["
                  "{\"thinking\":\"Hmm.\",\"chunks\":1,\"tool\":{\"name\":\"bash\",\"chunks\":2,"
                  " \"input\":{\"command\":\"echo hi > out.txt\",\"description\":\"Write\"}}},"
                  "{\"text\":\"Done!\",\"chunks\":1}]}");
    ev = post_stream(f, "/v1/chat/completions", openai_headers, body);
    mask_created(ev);
    assert_int_equal(json_array_size(ev), 7);
    assert_json_eq(ev_data(ev, 0), "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                                   "\"created\":0,\"model\":\"fake-model\","
                                   "\"choices\":[{\"index\":0,"
                                   "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                                   "\"finish_reason\":null}]}");
    assert_json_eq(json_object_get(ev_data(ev, 1), "choices"),
                   "[{\"index\":0,\"delta\":{\"reasoning_content\":\"Hmm.\"},"
                   "\"finish_reason\":null}]");
    assert_json_eq(json_object_get(ev_data(ev, 2), "choices"),
                   "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1_1\","
                   "\"type\":\"function\",\"function\":{\"name\":\"bash\",\"arguments\":"
                   "\"{\\\"command\\\":\\\"echo hi > out.t\"}}]},\"finish_reason\":null}]");
    assert_json_eq(json_object_get(ev_data(ev, 3), "choices"),
                   "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                   "{\"arguments\":\"xt\\\",\\\"description\\\":\\\"Write\\\"}\"}}]},"
                   "\"finish_reason\":null}]");
    assert_json_eq(json_object_get(ev_data(ev, 4), "choices"),
                   "[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]");
    assert_json_eq(ev_data(ev, 5), "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                                   "\"created\":0,\"model\":\"fake-model\",\"choices\":[],"
                                   "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
                                   "\"total_tokens\":15}}");
    assert_json_eq(ev_data(ev, 6), "\"[DONE]\"");
    json_decref(ev);

    /* Title generation matches the rule and does not use up a step. */
    ev = post_stream(f, "/v1/chat/completions", openai_headers,
                     "{\"model\":\"fake-model\",\"stream\":true,\"messages\":[{\"role\":"
                     "\"system\",\"content\":\"You are a title generator. You output ONLY\"}]}");
    assert_string_equal(sj_str(json_array_get(json_object_get(ev_data(ev, 1), "choices"), 0),
                               "delta.content"),
                        "Fake title");
    /* No include_usage: finish chunk then [DONE]. */
    assert_int_equal(json_array_size(ev), 4);
    json_decref(ev);

    ev = post_stream(f, "/v1/chat/completions", openai_headers, body);
    assert_string_equal(sj_str(json_array_get(json_object_get(ev_data(ev, 1), "choices"), 0),
                               "delta.content"),
                        "Done!");
    assert_string_equal(sj_str(json_array_get(json_object_get(ev_data(ev, 2), "choices"), 0),
                               "finish_reason"),
                        "stop");
    json_decref(ev);
    fake_stop(f);
}

/* ---- Gemini ------------------------------------------------------------------------------ */

static const char *const gemini_headers[] = {"Content-Type: application/json",
                                             "x-goog-api-key: sk-gem", NULL};

/* What Gemini CLI sends (shortened): contents with parts, tools as
 * functionDeclarations, the model in the path. */
static const char gemini_body[] =
    "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}],\"role\":\"user\"}],"
    "\"tools\":[{\"functionDeclarations\":[{\"name\":\"run_shell_command\"}]}],"
    "\"generationConfig\":{\"temperature\":1}}";

static void test_gemini(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *ev, *body, *log;
    fake_start(f, "{\"steps\":["
                  "{\"thinking\":\"Hmm.\",\"chunks\":1,\"text\":[\"Hel\",\"lo\"],"
                  " \"tool\":{\"name\":\"run_shell_command\",\"input\":{\"command\":\"echo hi\"}}},"
                  "{\"text\":\"done\",\"stop_reason\":\"MAX_TOKENS\"},"
                  "{\"text\":\"cut\",\"chunks\":1,\"stream_error\":{\"message\":\"boom\"}},"
                  "{\"error\":{\"status\":429}}]}");
    /* One response per delta and one per call; finishReason on the last. */
    ev = post_stream(f, "/v1beta/models/gem-x:streamGenerateContent?alt=sse", gemini_headers,
                     gemini_body);
    assert_int_equal(json_array_size(ev), 4);
    assert_json_eq(ev_data(ev, 0),
                   "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hmm.\","
                   "\"thought\":true}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":"
                   "{\"promptTokenCount\":10,\"candidatesTokenCount\":5,\"totalTokenCount\":15},"
                   "\"modelVersion\":\"gem-x\",\"responseId\":\"fake_1\"}");
    assert_json_eq(json_object_get(ev_data(ev, 2), "candidates"),
                   "[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},"
                   "\"index\":0}]");
    assert_json_eq(json_object_get(ev_data(ev, 3), "candidates"),
                   "[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"run_shell_command\","
                   "\"args\":{\"command\":\"echo hi\"}}}],\"role\":\"model\"},\"index\":0,"
                   "\"finishReason\":\"STOP\"}]");
    json_decref(ev);
    /* Not streamed: one response with every part. */
    request(f, "POST", "/v1beta/models/gem-x:generateContent", gemini_headers, gemini_body,
            &resp);
    assert_int_equal(resp.status, 200);
    body = httpc_json(&resp);
    assert_json_eq(json_object_get(body, "candidates"),
                   "[{\"content\":{\"parts\":[{\"text\":\"done\"}],\"role\":\"model\"},\"index\":0,"
                   "\"finishReason\":\"MAX_TOKENS\"}]");
    json_decref(body);
    httpc_response_free(&resp);
    /* A broken stream ends with Google's error object, no finishReason. */
    ev = post_stream(f, "/v1beta/models/gem-x:streamGenerateContent?alt=sse", gemini_headers,
                     gemini_body);
    assert_int_equal(json_array_size(ev), 2);
    assert_null(sj_str(json_array_get(json_object_get(ev_data(ev, 0), "candidates"), 0),
                       "finishReason"));
    assert_json_eq(ev_data(ev, 1),
                   "{\"error\":{\"code\":500,\"message\":\"boom\",\"status\":\"INTERNAL\"}}");
    json_decref(ev);
    /* Errors in Google's shape. */
    request(f, "POST", "/v1beta/models/gem-x:streamGenerateContent?alt=sse", gemini_headers,
            gemini_body, &resp);
    assert_int_equal(resp.status, 429);
    body = httpc_json(&resp);
    assert_int_equal(sj_int(body, "error.code"), 429);
    assert_string_equal(sj_str(body, "error.status"), "RESOURCE_EXHAUSTED");
    json_decref(body);
    httpc_response_free(&resp);
    request(f, "POST", "/v1beta/models/gem-x:countTokens", gemini_headers, gemini_body, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{\"totalTokens\":10}");
    httpc_response_free(&resp);
    request(f, "POST", "/v1beta/models/gem-x:embedContent", gemini_headers, gemini_body, &resp);
    assert_int_equal(resp.status, 404);
    body = httpc_json(&resp);
    assert_string_equal(sj_str(body, "error.status"), "NOT_FOUND");
    json_decref(body);
    httpc_response_free(&resp);
    /* Logged as the gemini API, with its key header. */
    log = fake_log(f);
    assert_string_equal(sj_str(json_array_get(log, 0), "api"), "gemini");
    assert_string_equal(sj_str(json_array_get(log, 0), "headers.x-goog-api-key"), "sk-gem");
    assert_int_equal(sj_int(json_array_get(log, 0), "reply.seq"), 1);
    json_decref(log);
    fake_stop(f);
}

/* ---- script rules ------------------------------------------------------------------------ */

/* POSTs a chat request and returns the concatenated text content. */
static char *chat_text(const struct fake *f, const char *body)
{
    json_t *ev = post_stream(f, "/v1/chat/completions", openai_headers, body);
    char *out = calloc(1, 1);
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        const json_t *choice = json_array_get(json_object_get(json_object_get(e, "data"),
                                                              "choices"),
                                              0);
        const char *c = sj_str(choice, "delta.content");
        if (c) {
            char *next = sj_fmt("%s%s", out, c);
            free(out);
            out = next;
        }
    }
    json_decref(ev);
    return out;
}

static void assert_chat_text(const struct fake *f, const char *body, const char *expected)
{
    char *text = chat_text(f, body);
    if (strcmp(text, expected) != 0) {
        fprintf(stderr, "expected \"%s\", got \"%s\"\n", expected, text);
        free(text);
        fail_msg("unexpected reply text");
    }
    free(text);
}

#define CHAT_BODY "{\"stream\":true,\"tools\":[{\"type\":\"function\"}],\"messages\":[]}"
#define CHAT_NOTOOLS "{\"stream\":true,\"messages\":[]}"

static void test_after_rules(void **state)
{
    struct fake *f = *state;
    json_t *log;

    /* Default: a fixed text once the steps are used up. */
    fake_start(f, "{\"steps\":[{\"text\":\"one\"}]}");
    assert_chat_text(f, CHAT_BODY, "one");
    assert_chat_text(f, CHAT_BODY, "Script exhausted.");
    assert_chat_text(f, CHAT_BODY, "Script exhausted.");
    log = fake_log(f);
    assert_json_eq(json_object_get(json_array_get(log, 1), "reply"),
                   "{\"kind\":\"after\",\"index\":null,\"section\":\"default\",\"seq\":2,"
                   "\"stream\":true}");
    json_decref(log);
    fake_stop(f);

    fake_start(f, "{\"steps\":[{\"text\":\"one\"},{\"text\":\"two\"}],\"after\":\"repeat_last\"}");
    assert_chat_text(f, CHAT_BODY, "one");
    assert_chat_text(f, CHAT_BODY, "two");
    assert_chat_text(f, CHAT_BODY, "two");
    assert_chat_text(f, CHAT_BODY, "two");
    fake_stop(f);

    fake_start(f, "{\"steps\":[{\"text\":\"one\"},{\"text\":\"two\"}],\"after\":\"cycle\"}");
    assert_chat_text(f, CHAT_BODY, "one");
    assert_chat_text(f, CHAT_BODY, "two");
    assert_chat_text(f, CHAT_BODY, "one");
    assert_chat_text(f, CHAT_BODY, "two");
    fake_stop(f);

    fake_start(f, "{\"steps\":[{\"text\":\"one\"}],\"after\":{\"text\":\"fallback\"}}");
    assert_chat_text(f, CHAT_BODY, "one");
    assert_chat_text(f, CHAT_BODY, "fallback");
    fake_stop(f);

    /* "repeat_last" with no steps falls back to the fixed text. */
    fake_start(f, "{\"after\":\"repeat_last\"}");
    assert_chat_text(f, CHAT_BODY, "Script exhausted.");
    fake_stop(f);
}

static void test_rules_count_match(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *st;

    /* "count":"tools": requests without tools get "side", no step used. */
    fake_start(f, "{\"count\":\"tools\",\"side\":{\"text\":\"side\"},"
                  " \"rules\":[{\"match\":\"PING\",\"reply\":{\"text\":\"pong\"}},"
                  "           {\"match\":\"ONLY-ANTHROPIC\",\"api\":\"anthropic\","
                  "            \"reply\":{\"text\":\"anthropic rule\"}}],"
                  " \"steps\":[{\"text\":\"one\"},"
                  "           {\"match\":\"tool_result\",\"text\":\"two\"},{\"text\":\"three\"}]}");
    assert_chat_text(f, CHAT_NOTOOLS, "side");
    assert_chat_text(f, "{\"stream\":true,\"tools\":[1],\"messages\":[\"PING\"]}", "pong");
    assert_chat_text(f, "{\"stream\":true,\"tools\":[1],\"m\":\"ONLY-ANTHROPIC\"}", "one");
    /* Step 2 waits for a body containing "tool_result". */
    assert_chat_text(f, CHAT_BODY, "side");
    assert_chat_text(f, "{\"stream\":true,\"tools\":[1],\"m\":\"tool_result\"}", "two");
    assert_chat_text(f, CHAT_BODY, "three");

    request(f, "GET", "/__fake/state", NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    st = httpc_json(&resp);
    assert_json_eq(st, "{\"model_requests\":6,\"sections\":{\"default\":{\"next\":3,\"steps\":3}},"
                       "\"requests\":7}");
    json_decref(st);
    httpc_response_free(&resp);

    /* Reset rewinds the script. */
    request(f, "POST", "/__fake/reset", NULL, "", &resp);
    assert_int_equal(resp.status, 200);
    httpc_response_free(&resp);
    assert_chat_text(f, CHAT_BODY, "one");
    fake_stop(f);
}

/* Per-API sections keep their own cursors; the default serves the rest. */
static void test_sections(void **state)
{
    struct fake *f = *state;
    json_t *ev;
    fake_start(f, "{\"steps\":[{\"text\":\"chat one\"},{\"text\":\"chat two\"}],"
                  " \"anthropic\":{\"steps\":[{\"text\":\"claude one\",\"chunks\":1}],"
                  "              \"after\":{\"text\":\"claude after\",\"chunks\":1}},"
                  " \"responses\":{\"steps\":[{\"text\":\"codex one\",\"chunks\":1}]}}");
    ev = post_stream(f, "/v1/messages", anth_headers, msg_body);
    assert_string_equal(sj_str(ev_data(ev, 2), "delta.text"), "claude one");
    json_decref(ev);
    ev = post_stream(f, "/v1/responses", openai_headers, resp_body);
    assert_string_equal(sj_str(ev_data(ev, 3), "delta"), "codex one");
    json_decref(ev);
    assert_chat_text(f, CHAT_BODY, "chat one");
    ev = post_stream(f, "/v1/messages", anth_headers, msg_body);
    assert_string_equal(sj_str(ev_data(ev, 2), "delta.text"), "claude after");
    /* Ids count model requests across all APIs. */
    assert_string_equal(sj_str(ev_data(ev, 0), "message.id"), "msg_fake_4");
    json_decref(ev);
    assert_chat_text(f, CHAT_BODY, "chat two");
    fake_stop(f);
}

/* The text of a chat reply to a request from OpenCode session `session`. */
static char *chat_text_as(const struct fake *f, const char *session)
{
    char *hdr = sj_fmt("x-session-id: %s", session);
    const char *headers[] = { "Content-Type: application/json", hdr, NULL };
    json_t *ev = post_stream(f, "/v1/chat/completions", session ? headers : openai_headers,
                             CHAT_BODY);
    char *out = calloc(1, 1);
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        const char *c = sj_str(json_array_get(json_object_get(json_object_get(e, "data"),
                                                              "choices"),
                                              0),
                               "delta.content");
        if (c) {
            char *next = sj_fmt("%s%s", out, c);
            free(out);
            out = next;
        }
    }
    json_decref(ev);
    free(hdr);
    return out;
}

/* "per_session": each x-session-id (OpenCode's session) has its own cursor. */
static void test_per_session(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    fake_start(f, "{\"chat\":{\"per_session\":true,\"steps\":[{\"text\":\"one\"},"
                  "{\"text\":\"two\"}]}}");
    static const struct {
        const char *session, *want;
    } seq[] = { { "ses_a", "one" }, { "ses_b", "one" }, { "ses_a", "two" },
                { NULL, "one" },    { "ses_b", "two" }, { "ses_a", "Script exhausted." } };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        char *text = chat_text_as(f, seq[i].session);
        if (strcmp(text, seq[i].want) != 0)
            fail_msg("request %zu (%s): \"%s\", not \"%s\"", i, seq[i].session, text,
                     seq[i].want);
        free(text);
    }
    request(f, "GET", "/__fake/state", NULL, NULL, &resp);
    json_t *st = httpc_json(&resp);
    assert_json_eq(st, "{\"model_requests\":6,\"sections\":{\"default\":{\"next\":0,\"steps\":0},"
                       "\"chat\":{\"next\":0,\"steps\":2,\"sessions\":{\"ses_a\":2,\"ses_b\":2,"
                       "\"\":1}}},\"requests\":7}");
    json_decref(st);
    httpc_response_free(&resp);
    fake_stop(f);
}

/* ---- the request log --------------------------------------------------------------------- */

static void test_request_log(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *log, *rec;
    static const char *const extra[] = {"--redact", "--all-headers", NULL};

    fake_start(f, "{\"steps\":[{\"text\":\"a\"},{\"text\":\"b\"}]}");
    request(f, "HEAD", "/", NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    httpc_response_free(&resp);
    request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
    httpc_response_free(&resp);
    /* The line is on disk as soon as the response is. */
    log = fake_log(f);
    assert_int_equal(json_array_size(log), 2);
    assert_json_eq(json_array_get(log, 0), "{\"n\":1,\"method\":\"HEAD\",\"path\":\"/\","
                                           "\"headers\":{},\"body\":null,\"body_bytes\":0,"
                                           "\"status\":200}");
    rec = json_array_get(log, 1);
    assert_int_equal(sj_int(rec, "n"), 2);
    assert_string_equal(sj_str(rec, "method"), "POST");
    assert_string_equal(sj_str(rec, "path"), "/v1/messages?beta=true");
    assert_string_equal(sj_str(rec, "api"), "anthropic");
    assert_int_equal(sj_int(rec, "status"), 200);
    assert_int_equal(sj_int(rec, "body_bytes"), (long long)strlen(msg_body));
    {
        json_t *want = json_loads(msg_body, 0, NULL);
        assert_true(json_equal(json_object_get(rec, "body"), want));
        json_decref(want);
    }
    assert_int_equal(atoi(sj_str(rec, "headers.content-length")), (int)strlen(msg_body));
    json_object_del(json_object_get(rec, "headers"), "content-length");
    assert_json_eq(json_object_get(rec, "headers"),
                   "{\"content-type\":\"application/json\",\"anthropic-version\":\"2023-06-01\","
                   "\"x-api-key\":\"sk-test\",\"anthropic-beta\":"
                   "\"claude-code-20250219,interleaved-thinking-2025-05-14\","
                   "\"x-claude-code-session-id\":\"0b7c-session\","
                   "\"x-stainless-retry-count\":\"0\","
                   "\"user-agent\":\"claude-cli/2.1.197 (external, sdk-cli)\"}");
    json_decref(log);

    request(f, "POST", "/v1/responses", openai_headers, resp_body, &resp);
    httpc_response_free(&resp);
    log = fake_log(f);
    rec = json_array_get(log, 2);
    /* Only the selected headers: X-Unlisted-Header is left out. */
    assert_null(json_object_get(json_object_get(rec, "headers"), "x-unlisted-header"));
    assert_string_equal(sj_str(rec, "headers.authorization"), "Bearer sk-test");
    assert_string_equal(sj_str(rec, "headers.session-id"), "01a2-thread");
    assert_string_equal(sj_str(rec, "headers.originator"), "codex_exec");
    json_decref(log);
    fake_stop(f);

    /* --redact hides credentials, --all-headers keeps every header; the log
     * is appended to, never truncated. */
    fake_start_with(f, NULL, extra);
    request(f, "POST", "/v1/responses", openai_headers, resp_body, &resp);
    httpc_response_free(&resp);
    log = fake_log(f);
    assert_int_equal(json_array_size(log), 4);
    rec = json_array_get(log, 3);
    assert_int_equal(sj_int(rec, "n"), 1);
    assert_string_equal(sj_str(rec, "headers.authorization"), "[redacted]");
    assert_string_equal(sj_str(rec, "headers.x-unlisted-header"), "not logged");
    assert_non_null(sj_str(rec, "headers.host"));
    json_decref(log);
    fake_stop(f);
}

/* ---- bad requests -------------------------------------------------------------------------- */

static void assert_error(const struct httpc_response *resp, int status, const char *shape,
                         const char *type)
{
    json_t *body = httpc_json(resp);
    if (resp->status != status)
        fail_msg("expected %d, got %d: %s", status, resp->status, resp->body);
    assert_non_null(body);
    assert_string_equal(httpc_header(resp, "Content-Type"), "application/json");
    if (strcmp(shape, "anthropic") == 0) {
        assert_string_equal(sj_str(body, "type"), "error");
        assert_string_equal(sj_str(body, "error.type"), type);
        assert_non_null(sj_str(body, "error.message"));
    } else {
        assert_string_equal(sj_str(body, "error.type"), type);
        assert_non_null(sj_str(body, "error.message"));
        assert_true(json_is_null(json_object_get(json_object_get(body, "error"), "param")));
    }
    json_decref(body);
}

static void test_bad_requests(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *log;
    char *deep;
    static const char *const extra[] = {"--max-body-bytes", "1000", NULL};
    static const char chunked[] =
        "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3e8\r\n";

    fake_start_with(f, "{\"steps\":[{\"text\":\"ok\"}]}", extra);
    request(f, "GET", "/nope", openai_headers, NULL, &resp);
    assert_error(&resp, 404, "openai", "invalid_request_error");
    httpc_response_free(&resp);
    request(f, "GET", "/v1/nope", anth_headers, NULL, &resp);
    assert_error(&resp, 404, "anthropic", "not_found_error");
    httpc_response_free(&resp);
    request(f, "GET", "/v1/messages", anth_headers, NULL, &resp);
    assert_error(&resp, 405, "anthropic", "invalid_request_error");
    assert_string_equal(httpc_header(&resp, "Allow"), "POST");
    httpc_response_free(&resp);
    request(f, "GET", "/%FF%FE", NULL, NULL, &resp); /* decodes to invalid UTF-8 */
    assert_error(&resp, 404, "openai", "invalid_request_error");
    httpc_response_free(&resp);
    request(f, "DELETE", "/", NULL, NULL, &resp);
    assert_int_equal(resp.status, 405);
    assert_string_equal(httpc_header(&resp, "Allow"), "GET, HEAD");
    httpc_response_free(&resp);

    request(f, "POST", "/v1/messages?beta=true", anth_headers, "{\"model\":", &resp);
    assert_error(&resp, 400, "anthropic", "invalid_request_error");
    assert_non_null(strstr(resp.body, "invalid JSON in the request body"));
    httpc_response_free(&resp);
    request(f, "POST", "/v1/responses", openai_headers, "[1,2]", &resp);
    assert_error(&resp, 400, "openai", "invalid_request_error");
    assert_non_null(strstr(resp.body, "must be a JSON object"));
    httpc_response_free(&resp);
    request(f, "POST", "/v1/chat/completions", openai_headers, "", &resp);
    assert_error(&resp, 400, "openai", "invalid_request_error");
    httpc_response_free(&resp);
    request(f, "POST", "/v1/chat/completions", openai_headers, "{\"a\":\"\xff\xfe\"}", &resp);
    assert_error(&resp, 400, "openai", "invalid_request_error");
    httpc_response_free(&resp);

    /* Over --max-body-bytes: declared, and sent chunked. */
    deep = calloc(1, 2001);
    memset(deep, ' ', 2000);
    deep[0] = '{';
    deep[1999] = '}';
    request(f, "POST", "/v1/responses", openai_headers, deep, &resp);
    assert_error(&resp, 413, "openai", "invalid_request_error");
    httpc_response_free(&resp);
    {
        /* Two chunks of 1000 bytes: the second one crosses the limit. */
        char *raw;
        deep[1000] = '\0';
        raw = sj_fmt("%s%s\r\n3e8\r\n%s\r\n0\r\n\r\n", chunked, deep, deep);
        assert_int_equal(httpc_raw(f->port, raw, strlen(raw), REQ_MS, &resp), 0);
        assert_error(&resp, 413, "openai", "invalid_request_error");
        httpc_response_free(&resp);
        free(raw);
    }
    free(deep);

    /* Garbage instead of HTTP. */
    {
        static const char junk[] = "\x01\x02 NOT HTTP\r\n\r\n";
        int rc = httpc_raw(f->port, junk, sizeof junk - 1, REQ_MS, &resp);
        if (rc == 0) {
            assert_true(resp.status >= 400);
            httpc_response_free(&resp);
        }
    }

    /* Still serving, and nothing above used up the step. */
    assert_chat_text(f, CHAT_BODY, "ok");
    log = fake_log(f);
    assert_int_equal(sj_int(json_array_get(log, 0), "status"), 404);
    assert_string_equal(sj_str(json_array_get(log, 3), "path"), "/%FF%FE");
    assert_int_equal(sj_int(json_array_get(log, 5), "status"), 400);
    assert_string_equal(sj_str(json_array_get(log, 5), "body_text"), "{\"model\":");
    assert_true(json_is_null(json_object_get(json_array_get(log, 5), "body")));
    json_decref(log);
    fake_stop(f);
}

/* Hostile or impatient clients: the fake answers or drops them and keeps
 * serving. */
static void test_robustness(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    struct httpc_sse *sse = NULL;
    struct httpc_sse_event ev;
    char *deep;
    size_t depth = 5000;

    fake_start(f, "{\"steps\":[{\"text\":\"slow\",\"chunks\":4,\"chunk_delay_ms\":200}],"
                  "\"after\":{\"text\":\"still here\"}}");
    /* Nesting deeper than jansson's parser limit: a 400, not a crash. */
    deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    request(f, "POST", "/v1/responses", openai_headers, deep, &resp);
    assert_error(&resp, 400, "openai", "invalid_request_error");
    httpc_response_free(&resp);
    free(deep);

    /* A body that never completes, then the client goes away. */
    {
        static const char partial[] = "POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
                                      "Content-Length: 100\r\n\r\n{\"stream\":";
        assert_int_equal(httpc_raw(f->port, partial, sizeof partial - 1, 200, &resp),
                         HTTPC_ETIMEOUT);
    }

    /* A client that leaves in the middle of a slow stream. */
    assert_int_equal(httpc_sse_open(f->port, "POST", "/v1/messages", anth_headers, msg_body,
                                    strlen(msg_body), REQ_MS, &resp, &sse),
                     0);
    httpc_response_free(&resp);
    assert_non_null(sse);
    assert_int_equal(httpc_sse_next(sse, REQ_MS, &ev), 1);
    httpc_sse_event_free(&ev);
    httpc_sse_close(sse);

    assert_chat_text(f, CHAT_BODY, "still here");
    fake_stop(f);
}

/* ---- timing, signals, scripts ---------------------------------------------------------------- */

static void test_delays(void **state)
{
    struct fake *f = *state;
    struct httpc_sse *sse = NULL;
    struct httpc_response head;
    struct httpc_sse_event ev;
    int64_t t0, t_first = 0, t_last = 0;
    int n = 0, rc;

    fake_start(f, "{\"chunk_delay_ms\":120,\"steps\":["
                  "{\"text\":\"abc\",\"chunks\":3},"
                  "{\"text\":\"slow start\",\"delay_ms\":300,\"chunk_delay_ms\":0}]}");
    t0 = now_ms();
    rc = httpc_sse_open(f->port, "POST", "/v1/messages", anth_headers, msg_body,
                        strlen(msg_body), REQ_MS, &head, &sse);
    assert_int_equal(rc, 0);
    assert_int_equal(head.status, 200);
    assert_non_null(sse);
    httpc_response_free(&head);
    while ((rc = httpc_sse_next(sse, REQ_MS, &ev)) == 1) {
        if (n == 0)
            t_first = now_ms();
        t_last = now_ms();
        n++;
        httpc_sse_event_free(&ev);
    }
    assert_int_equal(rc, 0);
    httpc_sse_close(sse);
    /* 8 events, 7 gaps of 120 ms; the first arrives at once.  The gaps are
     * measured from before the request: a client that reads the first event
     * late would shrink a span taken from its arrival. */
    assert_int_equal(n, 8);
    assert_true(t_first - t0 < 1000);
    assert_true(t_last - t0 >= 7 * 120);

    t0 = now_ms();
    {
        json_t *evs = post_stream(f, "/v1/messages", anth_headers, msg_body);
        assert_true(now_ms() - t0 >= 290);
        json_decref(evs);
    }
    fake_stop(f);
}

static void test_signals(void **state)
{
    struct fake *f = *state;
    struct httpc_sse *sse = NULL;
    struct httpc_response head;
    struct httpc_sse_event ev;
    int status;
    int64_t t0;

    /* SIGTERM in the middle of a slow stream: exit 0 at once. */
    fake_start(f, "{\"steps\":[{\"text\":\"a very slow answer\",\"chunks\":18,"
                  "\"chunk_delay_ms\":1000}]}");
    assert_int_equal(httpc_sse_open(f->port, "POST", "/v1/messages", anth_headers, msg_body,
                                    strlen(msg_body), REQ_MS, &head, &sse),
                     0);
    httpc_response_free(&head);
    assert_int_equal(httpc_sse_next(sse, REQ_MS, &ev), 1);
    httpc_sse_event_free(&ev);
    t0 = now_ms();
    status = fake_signal_stop(f, SIGTERM);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(now_ms() - t0 < 3000);
    httpc_sse_close(sse);

    /* SIGINT while sleeping before the headers. */
    fake_start(f, "{\"steps\":[{\"text\":\"x\",\"delay_ms\":60000}]}");
    {
        static const char raw[] = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 15"
                                  "\r\n\r\n{\"stream\":true}";
        /* Fire and forget: start the request, then interrupt. */
        assert_int_equal(httpc_raw(f->port, raw, sizeof raw - 1, 200, &head), HTTPC_ETIMEOUT);
    }
    status = fake_signal_stop(f, SIGINT);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Runs the fake expecting it to refuse to start; returns its stderr. */
static char *expect_refusal(struct fake *f, const char *script, const char *const *extra,
                            int exit_code)
{
    int status = 0;
    if (fake_spawn(f, script, extra, &status) == 0)
        fail_msg("sj-fake-model started with a bad script or option");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), exit_code);
    return read_file(f->err_path);
}

static void test_bad_scripts(void **state)
{
    struct fake *f = *state;
    static const struct {
        const char *script;
        const char *message;
    } cases[] = {
        {"{\"steps\":[", "script.json:1:"},
        {"[]", "a script must be a JSON object"},
        {"{\"stpes\":[]}", "unknown key \"stpes\""},
        {"{\"steps\":[{}]}", "steps[0]: a step needs"},
        {"{\"steps\":[{\"text\":1}]}", "steps[0]: \"text\" must be a string"},
        {"{\"steps\":[{\"text\":\"a\"},{\"blocks\":[{\"type\":\"txt\"}]}]}",
         "steps[1].blocks[0]: unknown block type \"txt\""},
        {"{\"steps\":[{\"tool\":{\"input\":{}}}]}", "needs a non-empty string \"name\""},
        {"{\"steps\":[{\"text\":\"a\",\"chunks\":0}]}", "\"chunks\" must be an integer"},
        {"{\"steps\":[{\"error\":{\"status\":200}}]}", "\"status\" must be an integer in [400"},
        {"{\"steps\":[{\"error\":{\"headers\":{\"a b\":\"c\"}}}]}", "bad header name"},
        {"{\"steps\":[{\"error\":{},\"text\":\"a\"}]}", "unknown key \"text\""},
        {"{\"after\":\"again\"}", "after: must be \"repeat_last\""},
        {"{\"count\":\"some\"}", "\"count\" must be"},
        {"{\"rules\":[{\"match\":\"\",\"reply\":{\"text\":\"a\"}}]}", "rules[0]: a rule needs"},
        {"{\"anthropic\":{\"steps\":[{\"text\":\"a\",\"bogus\":1}]}}",
         "anthropic.steps[0]: unknown key \"bogus\""},
        {"{\"steps\":[{\"tool\":{\"name\":\"W\",\"input\":{\"p\":\"{{re:(\"}}}]}",
         "unterminated {{re:"},
        {"{\"steps\":[{\"tool\":{\"name\":\"W\",\"input\":{\"p\":\"{{re:(a}}\"}}}]}",
         "bad pattern"},
        {"{\"side\":{\"text\":\"a\",\"match\":\"x\"}}", "\"match\" is only allowed"},
        {"{\"steps\":[],\"steps\":[]}", "duplicate"},
    };
    static const char *const bad_host[] = {"--host", "0.0.0.0", NULL};
    static const char *const bad_port[] = {"--port", "70000", NULL};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        f->dir[0] = '\0';
        err = expect_refusal(f, cases[i].script, NULL, 2);
        if (!err || !strstr(err, cases[i].message)) {
            fprintf(stderr, "script %s\n expected \"%s\" in: %s\n", cases[i].script,
                    cases[i].message, err ? err : "(null)");
            free(err);
            fail_msg("bad script case %zu", i);
        }
        free(err);
    }
    {
        char *err;
        f->dir[0] = '\0';
        err = expect_refusal(f, "{}", bad_host, 2);
        assert_non_null(strstr(err, "only IPv4 loopback"));
        free(err);
        err = expect_refusal(f, "{}", bad_port, 2);
        assert_non_null(strstr(err, "--port 70000"));
        free(err);
    }
}

/* Every committed example script loads, and its first step renders. */
static void test_examples(void **state)
{
    struct fake *f = *state;
    const char *dir = getenv("SJ_FAKE_MODEL_EXAMPLES");
    DIR *d;
    struct dirent *de;
    int count = 0;

    if (!dir || !*dir)
        fail_msg("SJ_FAKE_MODEL_EXAMPLES is not set");
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char *path, *text;
        struct httpc_response resp;
        int is_anthropic, is_error;
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        path = sj_fmt("%s/%s", dir, de->d_name);
        text = read_file(path);
        assert_non_null(text);
        f->dir[0] = '\0';
        fake_start(f, text);
        is_anthropic = strncmp(de->d_name, "anthropic", 9) == 0;
        is_error = strstr(de->d_name, "error") != NULL;
        if (is_anthropic)
            request(f, "POST", "/v1/messages?beta=true", anth_headers, msg_body, &resp);
        else if (strncmp(de->d_name, "opencode", 8) == 0)
            request(f, "POST", "/v1/chat/completions", openai_headers, CHAT_BODY, &resp);
        else
            request(f, "POST", "/v1/responses", openai_headers, resp_body, &resp);
        if (resp.status != (is_error ? 500 : 200))
            fail_msg("%s: first request got %d: %s", de->d_name, resp.status, resp.body);
        httpc_response_free(&resp);
        fake_stop(f);
        free(text);
        free(path);
        count++;
    }
    closedir(d);
    assert_true(count >= 10);
}

static void test_root_and_models(void **state)
{
    struct fake *f = *state;
    struct httpc_response resp;
    json_t *body;
    fake_start(f, "{\"models\":[\"fake-model\",\"claude-opus-4-8\"]}");
    request(f, "HEAD", "/", NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 0);
    httpc_response_free(&resp);
    request(f, "GET", "/", NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    httpc_response_free(&resp);
    request(f, "GET", "/v1/models", openai_headers, NULL, &resp);
    assert_int_equal(resp.status, 200);
    body = httpc_json(&resp);
    assert_string_equal(sj_str(body, "object"), "list");
    assert_string_equal(sj_str(json_array_get(json_object_get(body, "data"), 1), "id"),
                        "claude-opus-4-8");
    assert_string_equal(sj_str(json_array_get(json_object_get(body, "data"), 0), "owned_by"),
                        "sj-fake-model");
    assert_string_equal(sj_str(body, "last_id"), "claude-opus-4-8");
    json_decref(body);
    httpc_response_free(&resp);
    request(f, "POST", "/v1/messages/count_tokens", anth_headers, msg_body, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{\"input_tokens\":10}");
    httpc_response_free(&resp);
    fake_stop(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_fake, teardown_fake)
    const struct CMUnitTest tests[] = {
        T(test_root_and_models),
        T(test_anthropic_text_exact),
        T(test_anthropic_tool_then_text),
        T(test_anthropic_thinking_then_text),
        T(test_anthropic_question_and_plan),
        T(test_anthropic_errors),
        T(test_anthropic_broken_streams),
        T(test_non_streamed),
        T(test_responses_text_exact),
        T(test_responses_tools_and_reasoning),
        T(test_responses_errors),
        T(test_chat_stream),
        T(test_gemini),
        T(test_after_rules),
        T(test_rules_count_match),
        T(test_per_session),
        T(test_sections),
        T(test_request_log),
        T(test_bad_requests),
        T(test_robustness),
        T(test_delays),
        T(test_signals),
        T(test_bad_scripts),
        T(test_examples),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
