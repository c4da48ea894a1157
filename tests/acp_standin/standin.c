/* sj-acp-standin: a small agent that speaks the Agent Client Protocol on
 * its stdio, for the ACP adapter's integration tests (registered with
 * `server --acp-agent NAME=<this> [options]`) and as the stand-in for
 * Cursor, whose CLI needs Cursor's cloud.
 *
 * Options:
 *   --no-load       do not advertise loadSession
 *   --record PATH   append every line it reads to PATH
 *
 * It keeps each session's prompts in $HOME/acp-standin/<session id>, so
 * session/load works across processes (and replays the history as
 * session/update notifications, as real agents do).  What a prompt does is
 * chosen by its first word:
 *   crash                  one chunk, then exit status 3 mid-turn
 *   hang                   one chunk, then waits for session/cancel
 *   garbage                a line that is not JSON, then a normal answer
 *   permission             a tool call and session/request_permission;
 *                          "allowed" / "rejected" / cancelled by the answer
 *   read PATH              fs/read_text_file; "read: <content>" or
 *                          "read error: <message>"
 *   write PATH TEXT        fs/write_text_file; "wrote" or "write error: ..."
 *   terminal               terminal/create; "terminal refused: <code>"
 *   history                "history: <earlier prompts, '|'-joined>;
 *                          context: yes|no" (context: the prompt carried
 *                          more than one block)
 *   anything else          a thought, a plan, "echo: <text>" in two chunks
 * It ignores SIGTERM and ends at EOF.  A test program, not part of the
 * server: it trusts its input. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FILE *record;
static int can_load = 1;
static char session[128];
static int next_id = 100;

static void out(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!s)
        exit(70);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
}

/* new: the next line read as JSON, or NULL at EOF. */
static json_t *in(void)
{
    static char *line;
    static size_t cap;
    for (;;) {
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0)
            return NULL;
        if (record) {
            fputs(line, record);
            fflush(record);
        }
        json_t *v = json_loads(line, 0, NULL);
        if (v)
            return v;
    }
}

static void respond(json_t *id, json_t *result)
{
    out(json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result",
                  result ? result : json_null()));
}

static void respond_error(json_t *id, int code, const char *message)
{
    out(json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", code,
                  "message", message));
}

static void update(json_t *u)
{
    out(json_pack("{s:s,s:s,s:{s:s,s:o}}", "jsonrpc", "2.0", "method", "session/update",
                  "params", "sessionId", session, "update", u));
}

static void chunk(const char *kind, const char *text)
{
    update(json_pack("{s:s,s:{s:s,s:s}}", "sessionUpdate", kind, "content", "type", "text",
                     "text", text));
}

static void log_path(const char *id, char *path, size_t size)
{
    const char *home = getenv("HOME");
    snprintf(path, size, "%s/acp-standin", home ? home : ".");
    mkdir(path, 0700);
    snprintf(path + strlen(path), size - strlen(path), "/%s", id);
}

/* Sends a request and waits for its answer: new, the response; NULL when
 * a session/cancel came first (*cancelled set) or at EOF. */
static json_t *ask(const char *method, json_t *params, int *cancelled)
{
    int id = next_id++;
    out(json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", id, "method", method, "params",
                  params));
    for (;;) {
        json_t *v = in();
        if (!v)
            exit(0);
        const char *m = json_string_value(json_object_get(v, "method"));
        if (m && strcmp(m, "session/cancel") == 0) {
            *cancelled = 1;
            json_decref(v);
            continue; /* the answer (cancelled) still comes */
        }
        if (json_integer_value(json_object_get(v, "id")) == id && !m)
            return v;
        json_decref(v);
    }
}

static void prompt(json_t *id, json_t *params)
{
    json_t *blocks = json_object_get(params, "prompt");
    size_t nblocks = json_array_size(blocks);
    const char *text = json_string_value(json_object_get(json_array_get(blocks, nblocks - 1),
                                                         "text"));
    if (!text)
        text = "";
    char path[512];
    log_path(session, path, sizeof path);
    char history[4096] = "";
    FILE *f = fopen(path, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            if (history[0])
                strncat(history, "|", sizeof history - strlen(history) - 1);
            strncat(history, line, sizeof history - strlen(history) - 1);
        }
        fclose(f);
    }
    f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s\n", text);
        fclose(f);
    }
    const char *stop = "end_turn";
    int cancelled = 0;
    char answer[8192];
    answer[0] = '\0';
    if (strcmp(text, "crash") == 0) {
        chunk("agent_message_chunk", "about to crash");
        exit(3);
    } else if (strcmp(text, "hang") == 0) {
        chunk("agent_message_chunk", "working");
        for (;;) {
            json_t *v = in();
            if (!v)
                exit(0);
            const char *m = json_string_value(json_object_get(v, "method"));
            int done = m && strcmp(m, "session/cancel") == 0;
            json_decref(v);
            if (done)
                break;
        }
        stop = "cancelled";
    } else if (strcmp(text, "garbage") == 0) {
        printf("this is not { JSON\n");
        fflush(stdout);
        snprintf(answer, sizeof answer, "after garbage");
    } else if (strcmp(text, "permission") == 0) {
        update(json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s}}", "sessionUpdate", "tool_call",
                         "toolCallId", "call_1", "title", "echo hi", "kind", "execute",
                         "status", "pending", "rawInput", "command", "echo hi"));
        json_t *r = ask("session/request_permission",
                        json_pack("{s:s,s:{s:s},s:[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}]}",
                                  "sessionId", session, "toolCall", "toolCallId", "call_1",
                                  "options", "optionId", "allow", "name", "Allow",
                                  "kind", "allow_once", "optionId", "always", "name",
                                  "Always", "kind", "allow_always", "optionId", "reject",
                                  "name", "Reject", "kind", "reject_once"),
                        &cancelled);
        json_t *outcome = json_object_get(json_object_get(r, "result"), "outcome");
        const char *how = json_string_value(json_object_get(outcome, "outcome"));
        const char *option = json_string_value(json_object_get(outcome, "optionId"));
        int allowed = how && strcmp(how, "selected") == 0 && option &&
                      strncmp(option, "allow", 5) == 0;
        if (how && strcmp(how, "selected") == 0 && option && strcmp(option, "always") == 0)
            allowed = 1;
        update(json_pack("{s:s,s:s,s:s,s:[{s:s,s:{s:s,s:s}}]}", "sessionUpdate",
                         "tool_call_update", "toolCallId", "call_1", "status",
                         allowed ? "completed" : "failed", "content", "type", "content",
                         "content", "type", "text", "text", allowed ? "hi" : "denied"));
        if (cancelled || (how && strcmp(how, "cancelled") == 0))
            stop = "cancelled";
        else
            snprintf(answer, sizeof answer, "%s", allowed ? "allowed" : "rejected");
        json_decref(r);
    } else if (strncmp(text, "read ", 5) == 0) {
        json_t *r = ask("fs/read_text_file",
                        json_pack("{s:s,s:s}", "sessionId", session, "path", text + 5),
                        &cancelled);
        const char *content = json_string_value(
            json_object_get(json_object_get(r, "result"), "content"));
        const char *error = json_string_value(
            json_object_get(json_object_get(r, "error"), "message"));
        snprintf(answer, sizeof answer, content ? "read: %s" : "read error: %s",
                 content ? content : error ? error : "?");
        json_decref(r);
    } else if (strncmp(text, "write ", 6) == 0) {
        char target[1024];
        snprintf(target, sizeof target, "%s", text + 6);
        char *space = strchr(target, ' ');
        const char *body = space ? space + 1 : "";
        if (space)
            *space = '\0';
        json_t *r = ask("fs/write_text_file",
                        json_pack("{s:s,s:s,s:s}", "sessionId", session, "path", target,
                                  "content", body),
                        &cancelled);
        const char *error = json_string_value(
            json_object_get(json_object_get(r, "error"), "message"));
        if (error)
            snprintf(answer, sizeof answer, "write error: %s", error);
        else
            snprintf(answer, sizeof answer, "wrote");
        json_decref(r);
    } else if (strcmp(text, "terminal") == 0) {
        json_t *r = ask("terminal/create",
                        json_pack("{s:s,s:s}", "sessionId", session, "command", "ls"),
                        &cancelled);
        snprintf(answer, sizeof answer, "terminal refused: %d",
                 (int)json_integer_value(json_object_get(json_object_get(r, "error"), "code")));
        json_decref(r);
    } else if (strcmp(text, "history") == 0) {
        snprintf(answer, sizeof answer, "history: %s; context: %s", history,
                 nblocks > 1 ? "yes" : "no");
    } else {
        chunk("agent_thought_chunk", "Considering.");
        update(json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "sessionUpdate", "plan", "entries",
                         "content", "Answer", "priority", "high", "status", "in_progress"));
        chunk("agent_message_chunk", "echo: ");
        snprintf(answer, sizeof answer, "%s", text);
    }
    if (answer[0])
        chunk("agent_message_chunk", answer);
    respond(id, json_pack("{s:s}", "stopReason", stop));
}

int main(int argc, char **argv)
{
    /* It ends at EOF, after reading (and recording) every line written
     * before it, however slowly a loaded machine runs it: the server's
     * SIGTERM, 200 ms after EOF, would otherwise race the last lines. */
    signal(SIGTERM, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-load") == 0)
            can_load = 0;
        else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc)
            record = fopen(argv[++i], "a");
    }
    for (;;) {
        json_t *v = in();
        if (!v)
            return 0;
        const char *method = json_string_value(json_object_get(v, "method"));
        json_t *id = json_object_get(v, "id");
        json_t *params = json_object_get(v, "params");
        if (!method || !id) {
            json_decref(v);
            continue;
        }
        if (strcmp(method, "initialize") == 0) {
            respond(id, json_pack("{s:i,s:{s:b},s:[]}", "protocolVersion", 1,
                                  "agentCapabilities", "loadSession", can_load, "authMethods"));
        } else if (strcmp(method, "session/new") == 0) {
            snprintf(session, sizeof session, "standin-%ld-%d", (long)getpid(), next_id++);
            respond(id, json_pack("{s:s,s:{s:s,s:[{s:s,s:s},{s:s,s:s,s:s}]}}", "sessionId",
                                  session, "modes", "currentModeId", "default",
                                  "availableModes", "id", "default", "name", "Default", "id",
                                  "careful", "name", "Careful", "description",
                                  "Asks before every tool"));
        } else if (strcmp(method, "session/load") == 0 && can_load) {
            const char *want = json_string_value(json_object_get(params, "sessionId"));
            char path[512];
            log_path(want ? want : "-", path, sizeof path);
            FILE *f = want ? fopen(path, "r") : NULL;
            if (!f) {
                respond_error(id, -32002, "no such session");
            } else {
                snprintf(session, sizeof session, "%s", want);
                char line[512];
                while (fgets(line, sizeof line, f)) {
                    line[strcspn(line, "\n")] = '\0';
                    chunk("user_message_chunk", line);
                    chunk("agent_message_chunk", "(replayed)");
                }
                fclose(f);
                respond(id, json_object());
            }
        } else if (strcmp(method, "session/set_mode") == 0) {
            respond(id, json_object());
        } else if (strcmp(method, "session/prompt") == 0) {
            prompt(id, params);
        } else {
            respond_error(id, -32601, "Method not found");
        }
        json_decref(v);
    }
}
