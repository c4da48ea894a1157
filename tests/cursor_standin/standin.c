/* sj-cursor-standin: plays Cursor's `cursor-agent` CLI under the real
 * @blowmage/cursor-agent-acp (0.7.1) for the cursor agent's end-to-end
 * test.  Cursor's model service is cloud only, so this program takes the
 * CLI's place; cursor-agent-acp spawns it by the name `cursor-agent` on
 * its PATH, exactly as it would spawn the real one.
 *
 * A test links it as <dir>/cursor-agent and puts <dir> first on the
 * server's PATH.  It keeps its files in <dir>/cursor-standin/ (found
 * through argv[0], since an agent's environment is allow-listed):
 *
 *   runs.jsonl   appended by every run: {"argv":[...],"cwd":"..."}
 *   reply.txt    the assistant's answer to a prompt (default below)
 *
 * The invocations cursor-agent-acp makes (cursor/cli-bridge.js):
 *
 *   models                    "Available models", then "id - Name" lines
 *   --version                 a version line ("x.y.z" is parsed out)
 *   status                    "Logged in as <email>" (it greps for that)
 *   create-chat               a new chat id on stdout
 *   [--resume ID] [--model M] --print --output-format json --force PROMPT
 *                             one JSON object whose `result` is the answer
 *                             (its prompt path, used for every ACP prompt)
 *   [--resume ID] [--model M] agent --print --output-format stream-json
 *   --stream-partial-output --force PROMPT
 *                             Cursor's stream-json lines (its streaming
 *                             path, which ACP clients reach only with a
 *                             non-standard `stream: true`)
 *
 * A prompt holding "WRITE:<name>" makes it do what Cursor's agent does with
 * a tool under --force: the file <name> is written in its working
 * directory, and the stream-json form reports the tool call.  Anything
 * else it does not know (an option, a chat id it never made) is refused
 * the way the real CLI refuses: a message on stderr, exit 1. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STANDIN_CHAT_PREFIX "5a11d1e0-c0de-4000-8000-"
#define STANDIN_REPLY "Hello from the Cursor stand-in."

static int standin_fail(const char *what, const char *arg)
{
    fprintf(stderr, "Error: %s%s\n", what, arg);
    return 1;
}

/* new (malloc): the whole file, NULL if it cannot be read. */
static char *standin_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *data = malloc(cap + 1);
    while (data && (r = fread(data + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *bigger = realloc(data, 2 * cap + 1);
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (data)
        data[n] = '\0';
    return data;
}

/* Counts the lines of runs.jsonl that record a run of `command` (its first
 * argument), or all runs when command is NULL. */
static int standin_count(const char *dir, const char *command)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/runs.jsonl", dir);
    char *text = standin_read(path);
    int n = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *rec = json_loads(line, 0, NULL);
        const char *first = json_string_value(json_array_get(json_object_get(rec, "argv"), 0));
        if (rec && (!command || (first && strcmp(first, command) == 0)))
            n++;
        json_decref(rec);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    return n;
}

static int standin_record(const char *dir, int argc, char **argv)
{
    char path[PATH_MAX], cwd[PATH_MAX];
    snprintf(path, sizeof path, "%s/runs.jsonl", dir);
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    json_t *args = json_array();
    for (int i = 1; args && i < argc; i++)
        if (json_array_append_new(args, json_string(argv[i])) != 0)
            return -1;
    json_t *rec = json_pack("{s:o,s:s}", "argv", args, "cwd", cwd);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    FILE *f = text ? fopen(path, "a") : NULL;
    int ok = f && fprintf(f, "%s\n", text) > 0;
    if (f && fclose(f) != 0)
        ok = 0;
    free(text);
    return ok ? 0 : -1;
}

/* 1 if `id` is a chat id this stand-in made (create-chat numbered it). */
static int standin_known_chat(const char *dir, const char *id)
{
    size_t n = strlen(STANDIN_CHAT_PREFIX);
    if (strncmp(id, STANDIN_CHAT_PREFIX, n) != 0 || strlen(id + n) != 12 ||
        strspn(id + n, "0123456789") != 12)
        return 0;
    long k = strtol(id + n, NULL, 10);
    return k >= 1 && k <= standin_count(dir, "create-chat");
}

static void standin_print(json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (text)
        printf("%s\n", text);
    free(text);
    fflush(stdout);
}

/* The tool the prompt asks for, done as --force lets Cursor do it: the
 * file's name (static buffer), or NULL when none is asked for. */
static const char *standin_tool(const char *prompt, int *failed)
{
    static char name[128];
    const char *w = strstr(prompt, "WRITE:");
    *failed = 0;
    if (!w)
        return NULL;
    size_t n = strspn(w + 6, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    if (n == 0 || n >= sizeof name || w[6] == '.')
        return NULL;
    memcpy(name, w + 6, n);
    name[n] = '\0';
    FILE *f = fopen(name, "w");
    *failed = !f || fputs("written by the cursor-agent stand-in\n", f) < 0;
    if (f && fclose(f) != 0)
        *failed = 1;
    return name;
}

/* <the directory argv0 was found in>/cursor-standin into dir.  Node's
 * spawn('cursor-agent') runs it by name, as execvp() does: then the first
 * PATH entry holding an executable of that name is where it was found. */
static int standin_dir(const char *argv0, char *dir, size_t size)
{
    const char *slash = strrchr(argv0, '/');
    int n;
    if (slash) {
        n = snprintf(dir, size, "%.*s/cursor-standin", (int)(slash - argv0), argv0);
        return n > 0 && (size_t)n < size ? 0 : -1;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t len = strcspn(path, ":");
        char exe[PATH_MAX];
        n = snprintf(exe, sizeof exe, "%.*s/%s", (int)len, path, argv0);
        if (len && n > 0 && (size_t)n < sizeof exe && access(exe, X_OK) == 0) {
            n = snprintf(dir, size, "%.*s/cursor-standin", (int)len, path);
            return n > 0 && (size_t)n < size ? 0 : -1;
        }
        path += len + (path[len] == ':');
    }
    return -1;
}

int main(int argc, char **argv)
{
    char dir[PATH_MAX - 64]; /* room for the file names under it */
    if (standin_dir(argv[0], dir, sizeof dir) != 0)
        return standin_fail("cannot find where I was run from: ", argv[0]);
    if (standin_record(dir, argc, argv) != 0)
        return standin_fail("cannot record the run in ", dir);

    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
        puts("2026.01.01-standin (0.0.1)");
        return 0;
    }

    if (argc == 2 && strcmp(argv[1], "status") == 0) {
        puts("\x1b[1mLogged in as standin@example.com\x1b[0m");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "models") == 0) {
        puts("Available models\n\nauto - Auto  (current)\nstandin-1 - Stand-in One\n\n"
             "Tip: use --model <id>");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "create-chat") == 0) {
        printf(STANDIN_CHAT_PREFIX "%012d\n", standin_count(dir, "create-chat"));
        return 0;
    }

    const char *resume = NULL, *format = NULL, *prompt = NULL;
    int print = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--resume") == 0 || strcmp(a, "--model") == 0 ||
             strcmp(a, "--output-format") == 0) &&
            i + 1 < argc) {
            if (a[2] == 'r')
                resume = argv[++i];
            else if (a[2] == 'o')
                format = argv[++i];
            else
                ++i;
        } else if (strcmp(a, "--print") == 0 || strcmp(a, "-p") == 0) {
            print = 1;
        } else if (strcmp(a, "--force") == 0 || strcmp(a, "--stream-partial-output") == 0 ||
                   strcmp(a, "agent") == 0) {
            continue;
        } else if (a[0] == '-') {
            fprintf(stderr, "error: unknown option '%s'\n", a);
            return 1;
        } else if (!prompt) {
            prompt = a;
        } else {
            return standin_fail("too many arguments: ", a);
        }
    }
    if (!print || !prompt || !format)
        return standin_fail("the stand-in knows only --print --output-format F PROMPT", "");
    if (resume && !standin_known_chat(dir, resume))
        return standin_fail("chat not found: ", resume);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/reply.txt", dir);
    char *reply = standin_read(path);
    const char *answer = reply ? reply : STANDIN_REPLY;
    const char *chat = resume ? resume : STANDIN_CHAT_PREFIX "000000000000";
    int failed;
    const char *wrote = standin_tool(prompt, &failed);
    if (failed) {
        free(reply);
        return standin_fail("cannot write the file the prompt asked for", "");
    }

    if (strcmp(format, "json") == 0) {
        char *text = NULL;
        size_t size = wrote ? strlen(wrote) + strlen(answer) + 16 : 0;
        if (wrote && (text = malloc(size)))
            snprintf(text, size, "I wrote %s. %s", wrote, answer);
        standin_print(json_pack("{s:s,s:s,s:b,s:i,s:s,s:s}", "type", "result", "subtype",
                                "success", "is_error", 0, "duration_ms", 5, "result",
                                text ? text : answer, "session_id", chat));
        free(text);
    } else if (strcmp(format, "stream-json") == 0) {
        standin_print(json_pack("{s:s,s:s,s:s,s:s}", "type", "system", "subtype", "init",
                                "session_id", chat, "model", "standin"));
        if (wrote) {
            json_t *call = json_pack("{s:{s:{s:s}}}", "writeToolCall", "args", "path", wrote);
            standin_print(json_pack("{s:s,s:s,s:s,s:O,s:s}", "type", "tool_call", "subtype",
                                    "started", "call_id", "call-1", "tool_call", call,
                                    "session_id", chat));
            standin_print(json_pack("{s:s,s:s,s:s,s:o,s:s}", "type", "tool_call", "subtype",
                                    "completed", "call_id", "call-1", "tool_call", call,
                                    "session_id", chat));
        }
        /* The answer in two deltas, as --stream-partial-output sends it. */
        size_t half = strlen(answer) / 2;
        char first[4096];
        snprintf(first, sizeof first, "%.*s", (int)half, answer);
        const char *parts[] = { first, answer + half };
        for (int i = 0; i < 2; i++)
            standin_print(json_pack("{s:s,s:{s:s,s:[{s:s,s:s}]},s:s}", "type", "assistant",
                                    "message", "role", "assistant", "content", "type", "text",
                                    "text", parts[i], "session_id", chat));
        standin_print(json_pack("{s:s,s:s,s:b,s:s,s:s}", "type", "result", "subtype", "success",
                                "is_error", 0, "result", answer, "session_id", chat));
    } else {
        free(reply);
        return standin_fail("unknown output format: ", format);
    }
    free(reply);
    return 0;
}
