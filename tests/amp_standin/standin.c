/* sj-amp-standin: plays the `amp` CLI for the Amp adapter's end-to-end
 * tests.  Amp's model service is not reachable from here, so this program
 * takes the real binary's place and prints recorded Amp stream-json
 * instead; the server spawns it, feeds it and waits for it exactly as it
 * would the real `amp`.
 *
 * A test links it as <dir>/amp (a symbolic link) and puts <dir> on the
 * server's PATH.  Its behaviour is read from <dir>/amp-standin/ (found
 * through argv[0], since an agent's environment is allow-listed):
 *
 *   turn-N.jsonl   stdout of the N-th run (1-based), else turn.jsonl
 *   turn-N.exit    its exit status (default 0)
 *   turn-N.stderr  what it writes on stderr first
 *   turn-N.sleep   milliseconds to wait (at most 30000) after its stdout
 *   runs.jsonl     appended by every run: {"argv":[...],"stdin":"..."}
 *
 * Like the real CLI (0.0.1790142911-g7618fb) it refuses unknown options
 * ("Error: error: unknown option '...'", exit 1) and thread ids that are
 * not "T-..." ("Error: Invalid thread URL or ID: ...", exit 1), and with
 * --stream-json-input it reads stdin to its end and needs one JSON user
 * message there.  `--version` prints "0.0.0-standin".  Every wait is
 * bounded: stdin that is not closed within 10 s ends the run (exit 3). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STANDIN_STDIN_MS 10000
#define STANDIN_MAX_STDIN (1u << 20)

/* Prints "Error: <what><arg>" as the real CLI words its refusals; exit 1. */
static int standin_fail(const char *what, const char *arg)
{
    fprintf(stderr, "Error: %s%s\n", what, arg);
    return 1;
}

/* <dir>/<name> into out[PATH_MAX]; 0, or -1 if it does not fit. */
static int standin_path(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    return n > 0 && n < PATH_MAX ? 0 : -1;
}

/* new (malloc): the whole file, NULL if it cannot be read. */
static char *standin_read(const char *path, size_t *len)
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
    if (data) {
        data[n] = '\0';
        *len = n;
    }
    return data;
}

/* new: stdin up to EOF, or NULL after STANDIN_STDIN_MS without EOF. */
static char *standin_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *data = malloc(cap + 1);
    if (!data)
        return NULL;
    for (;;) {
        struct pollfd pfd = { .fd = 0, .events = POLLIN };
        int ready = poll(&pfd, 1, STANDIN_STDIN_MS);
        if (ready <= 0) {
            free(data);
            return NULL;
        }
        ssize_t r = read(0, data + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            if (cap >= STANDIN_MAX_STDIN) {
                free(data);
                return NULL;
            }
            char *bigger = realloc(data, 2 * cap + 1);
            if (!bigger) {
                free(data);
                return NULL;
            }
            data = bigger;
            cap *= 2;
        }
    }
    data[n] = '\0';
    *len = n;
    return data;
}

/* Appends {"argv":[...],"stdin":...} to runs.jsonl; returns the run's
 * number (1-based), or -1. */
static int standin_record(const char *dir, int argc, char **argv, const char *input)
{
    char path[PATH_MAX];
    if (standin_path(path, dir, "runs.jsonl") != 0)
        return -1;
    int run = 1;
    size_t len;
    char *old = standin_read(path, &len);
    for (char *c = old; c && *c; c++)
        run += *c == '\n';
    free(old);
    json_t *args = json_array();
    for (int i = 1; args && i < argc; i++)
        if (json_array_append_new(args, json_string(argv[i])) != 0)
            return -1;
    json_t *rec = json_pack("{s:o,s:s?}", "argv", args, "stdin", input);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    FILE *f = text ? fopen(path, "a") : NULL;
    int ok = f && fprintf(f, "%s\n", text) > 0;
    if (f && fclose(f) != 0)
        ok = 0;
    free(text);
    return ok ? run : -1;
}

static int standin_is_thread_id(const char *id)
{
    if (strncmp(id, "T-", 2) != 0 || !id[2])
        return 0;
    return strspn(id + 2, "0123456789abcdefABCDEF-") == strlen(id + 2);
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        puts("0.0.0-standin (sandbox-journal's Amp stand-in)");
        return 0;
    }
    const char *slash = strrchr(argv[0], '/');
    if (!slash)
        return standin_fail("run me by path: ", argv[0]);
    char dir[PATH_MAX];
    int dn = snprintf(dir, sizeof dir, "%.*s/amp-standin", (int)(slash - argv[0]), argv[0]);
    if (dn <= 0 || dn >= (int)sizeof dir)
        return standin_fail("path too long: ", argv[0]);

    int execute = 0, json_input = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i == 1 && strcmp(a, "threads") == 0) {
            if (i + 2 >= argc || strcmp(argv[i + 1], "continue") != 0)
                return standin_fail("the stand-in knows only `threads continue ID`", "");
            if (!standin_is_thread_id(argv[i + 2]))
                return standin_fail("Invalid thread URL or ID: ", argv[i + 2]);
            i += 2;
        } else if (strcmp(a, "--execute") == 0 || strcmp(a, "-x") == 0) {
            execute = 1;
        } else if (strcmp(a, "--stream-json-input") == 0) {
            json_input = 1;
        } else if (strcmp(a, "--stream-json") != 0 && strcmp(a, "--stream-json-thinking") != 0 &&
                   strcmp(a, "--dangerously-allow-all") != 0) {
            fprintf(stderr, "Error: error: unknown option '%s'\n", a);
            return 1;
        }
    }
    if (!execute || !json_input)
        return standin_fail("the stand-in runs only --execute --stream-json-input", "");

    size_t in_len = 0;
    char *input = standin_stdin(&in_len);
    if (!input) {
        fputs("Error: stdin was not closed\n", stderr);
        return 3;
    }
    json_t *message = json_loads(input, JSON_DISABLE_EOF_CHECK, NULL);
    const char *type = json_string_value(json_object_get(message, "type"));
    int valid = type && strcmp(type, "user") == 0;
    json_decref(message);
    int run = standin_record(dir, argc, argv, input);
    free(input);
    if (run < 0)
        return standin_fail("cannot record the run in ", dir);
    if (!valid)
        return standin_fail("User message must be provided through stdin", "");

    char path[PATH_MAX], name[64];
    size_t len;
    snprintf(name, sizeof name, "turn-%d.stderr", run);
    char *err_text = standin_path(path, dir, name) == 0 ? standin_read(path, &len) : NULL;
    if (err_text)
        fputs(err_text, stderr);
    free(err_text);
    snprintf(name, sizeof name, "turn-%d.jsonl", run);
    char *out = standin_path(path, dir, name) == 0 ? standin_read(path, &len) : NULL;
    if (!out && standin_path(path, dir, "turn.jsonl") == 0)
        out = standin_read(path, &len);
    if (out) {
        fwrite(out, 1, len, stdout);
        fflush(stdout);
    }
    free(out);
    snprintf(name, sizeof name, "turn-%d.sleep", run);
    char *sleep_ms = standin_path(path, dir, name) == 0 ? standin_read(path, &len) : NULL;
    if (sleep_ms) {
        int ms = atoi(sleep_ms);
        free(sleep_ms);
        poll(NULL, 0, ms < 0 ? 0 : ms > 30000 ? 30000 : ms);
    }
    snprintf(name, sizeof name, "turn-%d.exit", run);
    char *code = standin_path(path, dir, name) == 0 ? standin_read(path, &len) : NULL;
    int status = code ? atoi(code) : 0;
    free(code);
    return status;
}
