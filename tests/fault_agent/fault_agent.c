/* sj-fault-agent: a misbehaving stand-in for the Claude Code CLI, the
 * Codex app-server and any ACP agent, for
 * tests/integration/test_agent_faults.c and test_acp_faults.c.
 *
 *     sj-fault-agent claude|codex|acp <control dir> [the agent's own arguments]
 *
 * It speaks just enough of each protocol to get a turn going: Claude's
 * stream-json (a user line in; system, stream_event, assistant and result
 * lines out), Codex's app-server JSON-RPC (initialize, thread/start,
 * thread/resume, turn/start; turn notifications out) and the Agent Client
 * Protocol (initialize, session/new, session/load, session/prompt;
 * session/update notifications out; ACP agents are registered with
 * `server --acp-agent NAME=<this> acp <control dir>`).  Then it does what
 * its mode says.  The server finds it as an ordinary agent binary: the test
 * puts a two-line shell script at <agents dir>/<agent>/node_modules/.bin/
 * that execs this program with the control directory.
 *
 * The control directory:
 *   modes   one start mode per line.  The n-th start of the agent uses line
 *           n (the last line once there are fewer), so a test can make a
 *           restarted process behave differently.
 *   log     appended by the agent: "start <pid> <n> <mode>" when it starts,
 *           "flood <lines> <ms>" after a line flood.
 *
 * Start modes, before the agent reads anything:
 *   ok             speak the protocol
 *   startexit      print an error on stderr and exit 1 (a failed handshake)
 *   hserror        Codex, ACP: answer every request with a JSON-RPC error
 *
 * A turn whose user text contains "fault:<what>[:N]" misbehaves after one
 * text delta; any other turn completes.  <what> is:
 *   kill, segv     die of SIGKILL / SIGSEGV
 *   exit1          print 30 lines on stderr, exit 1
 *   exit0          exit 0 in the middle of the turn
 *   hang           ignore SIGTERM, stop reading and writing
 *   noline:N       N MiB of output without a newline, then finish the turn
 *   lines:N        N delta lines as fast as it can, then finish the turn
 *   garbage        invalid UTF-8, a half line, a NUL byte; then finish
 *   truncexit      a JSON line cut short, no newline, then exit 0
 *   permexit       ask for a permission (Claude: can_use_tool, Codex: a
 *                  command approval, ACP: session/request_permission), then
 *                  exit 3 while it is pending
 *   permwait       ask for a permission and wait (the answer is ignored)
 *
 * Built without sanitizers (tests/CMakeLists.txt), so that a SIGSEGV is a
 * death by signal and not a sanitizer report. */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char mode[64] = "ok";   /* the start mode */
static char fault[64];         /* the running turn's misbehaviour, "" if none */
static long fault_arg;
static const char *ctl;
static FILE *out;
static unsigned turns;

static long long fa_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fa_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fa_log(const char *fmt, ...)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/log", ctl);
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* Counts earlier starts in the log and picks this start's mode line. */
static void fa_pick_mode(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/log", ctl);
    unsigned starts = 0;
    FILE *f = fopen(path, "r");
    char line[512];
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "start ", 6) == 0)
                starts++;
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/modes", ctl);
    f = fopen(path, "r");
    unsigned n = 0;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (!line[0])
                continue;
            snprintf(mode, sizeof mode, "%.63s", line);
            if (n++ == starts)
                break;
        }
        fclose(f);
    }
    fa_log("start %ld %u %s", (long)getpid(), starts + 1, mode);
}

/* Reads the turn's "fault:<what>[:N]" from its user text. */
static void fa_set_fault(const char *text)
{
    fault[0] = '\0';
    fault_arg = 0;
    const char *f = text ? strstr(text, "fault:") : NULL;
    if (!f)
        return;
    f += 6;
    size_t n = strcspn(f, ": \n");
    snprintf(fault, sizeof fault, "%.*s", (int)(n < sizeof fault ? n : sizeof fault - 1), f);
    if (f[n] == ':')
        fault_arg = atol(f + n + 1);
}

static int fa_is(const char *m)
{
    return strcmp(fault, m) == 0;
}

/* Writes `v` (stolen) as one line. */
static void fa_send(json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!text)
        exit(70);
    fprintf(out, "%s\n", text);
    fflush(out);
    free(text);
}

static void fa_die(int sig)
{
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(71); /* not reached */
}

/* The misbehaviours shared by both agents.  Returns when the turn is to be
 * finished after all. */
static void fa_misbehave(const char *cut_line)
{
    if (fa_is("kill"))
        fa_die(SIGKILL);
    if (fa_is("segv"))
        fa_die(SIGSEGV);
    if (fa_is("exit1")) {
        for (int i = 1; i <= 30; i++)
            fprintf(stderr, "fault-agent: stderr line %d of 30\n", i);
        exit(1);
    }
    if (fa_is("exit0"))
        exit(0);
    if (fa_is("hang")) {
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    }
    if (fa_is("truncexit")) {
        fputs(cut_line, out);
        fflush(out);
        exit(0);
    }
    if (fa_is("noline")) {
        static char block[1 << 16];
        memset(block, 'x', sizeof block);
        long blocks = fault_arg * 16;
        for (long i = 0; i < blocks; i++)
            if (fwrite(block, 1, sizeof block, out) != sizeof block)
                exit(72);
        fputc('\n', out);
        fflush(out);
        return;
    }
    if (fa_is("garbage")) {
        fputs("{\"type\":\"assistant\",\"message\":\"\xff\xfe not UTF-8 \xc3\x28\"}\n", out);
        fputs("\xff\xfe\xfd raw bytes\n", out);
        fputs("{\"type\":\"assistant\",\"mess\n", out);
        fwrite("{\"type\":\0\"nul\"}\n", 1, 16, out);
        fflush(out);
    }
}

/* ---- Claude Code: stream-json ---------------------------------------------- */

static void claude_delta(const char *text)
{
    fa_send(json_pack("{s:s,s:{s:s,s:i,s:{s:s,s:s}}}", "type", "stream_event", "event", "type",
                      "content_block_delta", "index", 0, "delta", "type", "text_delta", "text",
                      text));
}

static void claude_finish(const char *session_id)
{
    fa_send(json_pack("{s:s,s:{s:s,s:s,s:s,s:[{s:s,s:s}]}}", "type", "assistant", "message",
                      "id", "msg_fault", "type", "message", "role", "assistant", "content",
                      "type", "text", "text", "turn done"));
    fa_send(json_pack("{s:s,s:s,s:b,s:s,s:s}", "type", "result", "subtype", "success",
                      "is_error", 0, "result", "turn done", "session_id", session_id));
}

static void claude_turn(const char *session_id, const char *text)
{
    turns++;
    fa_set_fault(text);
    if (turns == 1)
        fa_send(json_pack("{s:s,s:s,s:s,s:s}", "type", "system", "subtype", "init",
                          "session_id", session_id, "permissionMode", "default"));
    fa_send(json_pack("{s:s,s:{s:s,s:{s:s}}}", "type", "stream_event", "event", "type",
                      "message_start", "message", "id", "msg_fault"));
    claude_delta("partial ");
    if (fa_is("lines")) {
        long long t0 = fa_now_ms();
        for (long i = 0; i < fault_arg; i++)
            claude_delta("x");
        fa_log("flood %ld %lld", fault_arg, fa_now_ms() - t0);
    } else if (fa_is("permexit") || fa_is("permwait")) {
        fa_send(json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}}}", "type", "control_request",
                          "request_id", "req-fault-1", "request", "subtype", "can_use_tool",
                          "tool_name", "Bash", "input", "command", "echo hi > out.txt"));
        if (fa_is("permexit"))
            exit(3);
        return; /* the turn stays open, waiting for the answer */
    } else if (fault[0]) {
        fa_misbehave("{\"type\":\"result\",\"subtype\":\"success\",\"is_err");
    }
    claude_finish(session_id);
}

static int claude_main(int argc, char **argv)
{
    const char *session_id = "unknown";
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--session-id") == 0 || strcmp(argv[i], "--resume") == 0)
            session_id = argv[i + 1];
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        json_t *v = json_loads(line, 0, NULL);
        const char *type = json_string_value(json_object_get(v, "type"));
        if (type && strcmp(type, "user") == 0)
            claude_turn(session_id, json_string_value(
                                        json_object_get(json_object_get(v, "message"), "content")));
        json_decref(v);
    }
    free(line);
    return 0;
}

/* ---- Codex: app-server JSON-RPC ---------------------------------------------- */

static unsigned codex_threads;

static void codex_result(json_t *id, json_t *result /* stolen */)
{
    fa_send(json_pack("{s:O,s:o}", "id", id, "result", result));
}

static void codex_note(const char *method, json_t *params /* stolen */)
{
    fa_send(json_pack("{s:s,s:o}", "method", method, "params", params));
}

static void codex_turn(json_t *id, const char *thread, const char *text)
{
    turns++;
    fa_set_fault(text);
    char turn[64], item[64];
    snprintf(turn, sizeof turn, "turn-%ld-%u", (long)getpid(), turns);
    snprintf(item, sizeof item, "msg-%ld-%u", (long)getpid(), turns);
    codex_result(id, json_pack("{s:{s:s,s:s}}", "turn", "id", turn, "status", "inProgress"));
    codex_note("turn/started", json_pack("{s:s,s:{s:s,s:s}}", "threadId", thread, "turn", "id",
                                         turn, "status", "inProgress"));
    codex_note("item/started", json_pack("{s:{s:s,s:s,s:s},s:s,s:s}", "item", "type",
                                         "agentMessage", "id", item, "text", "", "threadId",
                                         thread, "turnId", turn));
    json_t *delta = json_pack("{s:s,s:s,s:s,s:s}", "threadId", thread, "turnId", turn, "itemId",
                              item, "delta", "partial ");
    codex_note("item/agentMessage/delta", json_deep_copy(delta));
    if (fa_is("lines")) {
        long long t0 = fa_now_ms();
        json_object_set_new(delta, "delta", json_string("x"));
        for (long i = 0; i < fault_arg; i++)
            codex_note("item/agentMessage/delta", json_deep_copy(delta));
        fa_log("flood %ld %lld", fault_arg, fa_now_ms() - t0);
    } else if (fa_is("permexit") || fa_is("permwait")) {
        fa_send(json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:s,s:s}}", "method",
                          "item/commandExecution/requestApproval", "id", 7, "params", "threadId",
                          thread, "turnId", turn, "itemId", "call-fault-1", "command",
                          "echo hi > out.txt", "cwd", "/"));
        if (fa_is("permexit"))
            exit(3);
        json_decref(delta);
        return; /* the turn stays open, waiting for the answer */
    } else if (fault[0]) {
        fa_misbehave("{\"method\":\"turn/completed\",\"params\":{\"thr");
    }
    json_decref(delta);
    codex_note("item/completed", json_pack("{s:{s:s,s:s,s:s},s:s,s:s}", "item", "type",
                                           "agentMessage", "id", item, "text", "turn done",
                                           "threadId", thread, "turnId", turn));
    codex_note("turn/completed", json_pack("{s:s,s:{s:s,s:s}}", "threadId", thread, "turn",
                                           "id", turn, "status", "completed"));
}

static int codex_main(void)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        json_t *v = json_loads(line, 0, NULL);
        const char *method = json_string_value(json_object_get(v, "method"));
        json_t *id = json_object_get(v, "id");
        const json_t *params = json_object_get(v, "params");
        if (!method || !id) {
            json_decref(v); /* notifications (initialized) and our answers' echoes */
            continue;
        }
        if (strcmp(mode, "hserror") == 0) {
            fa_send(json_pack("{s:O,s:{s:i,s:s}}", "id", id, "error", "code", -32600, "message",
                              "fault-agent: not initialized"));
        } else if (strcmp(method, "initialize") == 0) {
            codex_result(id, json_pack("{s:s}", "userAgent", "sj-fault-agent/1"));
        } else if (strcmp(method, "thread/start") == 0) {
            char thread[64];
            snprintf(thread, sizeof thread, "thr-%ld-%u", (long)getpid(), ++codex_threads);
            codex_result(id, json_pack("{s:{s:s}}", "thread", "id", thread));
            codex_note("thread/started", json_pack("{s:{s:s}}", "thread", "id", thread));
        } else if (strcmp(method, "thread/resume") == 0) {
            const char *thread = json_string_value(json_object_get(params, "threadId"));
            codex_result(id, json_pack("{s:{s:s}}", "thread", "id", thread ? thread : "?"));
        } else if (strcmp(method, "turn/start") == 0) {
            const char *thread = json_string_value(json_object_get(params, "threadId"));
            const json_t *input = json_array_get(json_object_get(params, "input"), 0);
            codex_turn(id, thread ? thread : "?",
                       json_string_value(json_object_get(input, "text")));
        } else {
            codex_result(id, json_object()); /* turn/interrupt and the like */
        }
        json_decref(v);
    }
    free(line);
    return 0;
}

/* ---- ACP: JSON-RPC over stdio --------------------------------------------------- */

static void acp_update(const char *session, const char *text)
{
    fa_send(json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:{s:s,s:s}}}}", "jsonrpc", "2.0", "method",
                      "session/update", "params", "sessionId", session, "update",
                      "sessionUpdate", "agent_message_chunk", "content", "type", "text", "text",
                      text));
}

static void acp_turn(json_t *id, const char *session, const char *text)
{
    turns++;
    fa_set_fault(text);
    acp_update(session, "partial ");
    if (fa_is("lines")) {
        long long t0 = fa_now_ms();
        for (long i = 0; i < fault_arg; i++)
            acp_update(session, "x");
        fa_log("flood %ld %lld", fault_arg, fa_now_ms() - t0);
    } else if (fa_is("permexit") || fa_is("permwait")) {
        fa_send(json_pack("{s:s,s:s,s:s,s:{s:s,s:{s:s,s:s},s:[{s:s,s:s,s:s}]}}", "jsonrpc",
                          "2.0", "id", "perm-fault-1", "method", "session/request_permission",
                          "params", "sessionId", session, "toolCall", "toolCallId", "call-1",
                          "title", "echo hi > out.txt", "options", "optionId", "ok", "name",
                          "Allow", "kind", "allow_once"));
        if (fa_is("permexit"))
            exit(3);
        return; /* the prompt stays open: its answer never comes */
    } else if (fault[0]) {
        fa_misbehave("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"stopRea");
    }
    acp_update(session, "turn done");
    fa_send(json_pack("{s:s,s:O,s:{s:s}}", "jsonrpc", "2.0", "id", id, "result", "stopReason",
                      "end_turn"));
}

static int acp_main(void)
{
    char session[64] = "";
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        json_t *v = json_loads(line, 0, NULL);
        const char *method = json_string_value(json_object_get(v, "method"));
        json_t *id = json_object_get(v, "id");
        const json_t *params = json_object_get(v, "params");
        if (!method || !id) {
            json_decref(v); /* session/cancel, answers to our requests */
            continue;
        }
        if (strcmp(mode, "hserror") == 0) {
            fa_send(json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id, "error",
                              "code", -32000, "message", "fault-agent: authentication required"));
        } else if (strcmp(method, "initialize") == 0) {
            fa_send(json_pack("{s:s,s:O,s:{s:i,s:{s:b}}}", "jsonrpc", "2.0", "id", id, "result",
                              "protocolVersion", 1, "agentCapabilities", "loadSession", 1));
        } else if (strcmp(method, "session/new") == 0) {
            snprintf(session, sizeof session, "acp-%ld", (long)getpid());
            fa_send(json_pack("{s:s,s:O,s:{s:s}}", "jsonrpc", "2.0", "id", id, "result",
                              "sessionId", session));
        } else if (strcmp(method, "session/load") == 0) {
            const char *want = json_string_value(json_object_get(params, "sessionId"));
            snprintf(session, sizeof session, "%.63s", want ? want : "?");
            fa_send(json_pack("{s:s,s:O,s:{}}", "jsonrpc", "2.0", "id", id, "result"));
        } else if (strcmp(method, "session/prompt") == 0) {
            const json_t *blocks = json_object_get(params, "prompt");
            const json_t *last = json_array_get(blocks, json_array_size(blocks) - 1);
            acp_turn(id, session, json_string_value(json_object_get(last, "text")));
        } else {
            fa_send(json_pack("{s:s,s:O,s:{}}", "jsonrpc", "2.0", "id", id, "result"));
        }
        json_decref(v);
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sj-fault-agent claude|codex|acp <control dir> [args]\n");
        return 2;
    }
    ctl = argv[2];
    out = stdout;
    fa_pick_mode();
    if (strcmp(mode, "startexit") == 0) {
        fprintf(stderr, "fault-agent: refusing to start (startexit)\n");
        return 1;
    }
    if (strcmp(argv[1], "claude") == 0)
        return claude_main(argc - 3, argv + 3);
    if (strcmp(argv[1], "codex") == 0)
        return codex_main();
    if (strcmp(argv[1], "acp") == 0)
        return acp_main();
    fprintf(stderr, "sj-fault-agent: unknown agent %s\n", argv[1]);
    return 2;
}
