/* sj-fake-model: a scripted fake of the Anthropic Messages API and the
 * OpenAI Responses and chat.completions APIs, for driving the real agent
 * CLIs (Claude Code, Codex, OpenCode) offline in tests.
 *
 *   sj-fake-model --host 127.0.0.1 --port 0 --script FILE [--log FILE]
 *                 [--max-body-bytes N] [--redact] [--all-headers]
 *   sj-fake-model --check --script FILE
 *
 * When it is ready it prints exactly one line to stdout,
 * "listening on http://127.0.0.1:<port>", and serves until SIGTERM or
 * SIGINT, then exits 0.  Exit 2: bad arguments or script; 1: cannot serve.
 * The script format is in README.md next to this file. */
#include "fm_http.h"
#include "fm_log.h"
#include "fm_script.h"
#include "fm_util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FM_MAIN_DEFAULT_MAX_BODY (16UL << 20)

struct fm_main_opts {
    const char *host;
    unsigned long port;
    const char *script;
    const char *log;
    unsigned long max_body;
    int redact;
    int all_headers;
    int check;
};

static void fm_main_usage(FILE *f)
{
    fputs("usage: sj-fake-model [--host 127.0.0.1] [--port 0] --script FILE [--log FILE]\n"
          "                     [--max-body-bytes N] [--redact] [--all-headers]\n"
          "       sj-fake-model --check --script FILE\n"
          "Serves POST /v1/messages (Anthropic), /v1/responses and /v1/chat/completions\n"
          "(OpenAI) from a JSON script on a loopback address; see tests/fake_model/README.md.\n",
          f);
}

/* Parses an unsigned decimal in [0, max]; -1 if it is not one. */
static int fm_main_number(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int fm_main_parse(int argc, char **argv, struct fm_main_opts *o)
{
    o->host = "127.0.0.1";
    o->max_body = FM_MAIN_DEFAULT_MAX_BODY;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fm_main_usage(stdout);
            exit(0);
        } else if (strcmp(a, "--redact") == 0) {
            o->redact = 1;
        } else if (strcmp(a, "--all-headers") == 0) {
            o->all_headers = 1;
        } else if (strcmp(a, "--check") == 0) {
            o->check = 1;
        } else if (!v) {
            fprintf(stderr, "sj-fake-model: %s: missing value or unknown option\n", a);
            return -1;
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
            i++;
        } else if (strcmp(a, "--port") == 0) {
            if (fm_main_number(v, 65535, &o->port) != 0) {
                fprintf(stderr, "sj-fake-model: --port %s: expected 0..65535\n", v);
                return -1;
            }
            i++;
        } else if (strcmp(a, "--script") == 0) {
            o->script = v;
            i++;
        } else if (strcmp(a, "--log") == 0) {
            o->log = v;
            i++;
        } else if (strcmp(a, "--max-body-bytes") == 0) {
            if (fm_main_number(v, ULONG_MAX, &o->max_body) != 0 || o->max_body == 0) {
                fprintf(stderr, "sj-fake-model: --max-body-bytes %s: expected a positive size\n",
                        v);
                return -1;
            }
            i++;
        } else {
            fprintf(stderr, "sj-fake-model: unknown option %s\n", a);
            return -1;
        }
    }
    if (!o->script) {
        fprintf(stderr, "sj-fake-model: --script FILE is required\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct fm_main_opts o;
    char err[768];
    sigset_t stop_signals;
    fm_script_t *script = NULL;
    fm_log_t *log = NULL;
    fm_http_t *http = NULL;
    uint16_t port = 0;
    int sig = 0;
    int exit_code = 1;

    memset(&o, 0, sizeof o);
    if (fm_main_parse(argc, argv, &o) != 0) {
        fm_main_usage(stderr);
        return 2;
    }
    script = fm_script_load(o.script, err, sizeof err);
    if (!script) {
        fprintf(stderr, "sj-fake-model: %s\n", err);
        return 2;
    }
    if (o.check) {
        printf("%s: ok\n", o.script);
        fm_script_free(script);
        return 0;
    }

    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and only sigwait() below ever sees them. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0 ||
        signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "sj-fake-model: cannot set up signals\n");
        goto done;
    }
    log = fm_log_open(o.log, err, sizeof err);
    if (!log) {
        fprintf(stderr, "sj-fake-model: %s\n", err);
        goto done;
    }
    {
        struct fm_http_config config = {
            .host = o.host, .port = (uint16_t)o.port, .max_body_bytes = o.max_body,
            .redact = o.redact, .all_headers = o.all_headers, .script = script, .log = log};
        http = fm_http_start(&config, &port, err, sizeof err);
    }
    if (!http) {
        fprintf(stderr, "sj-fake-model: %s\n", err);
        exit_code = strstr(err, "--host") ? 2 : 1;
        goto done;
    }
    printf("listening on http://%s:%u\n", strcmp(o.host, "localhost") == 0 ? "127.0.0.1" : o.host,
           (unsigned)port);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "sj-fake-model: cannot write the ready line\n");
        goto done;
    }
    if (sigwait(&stop_signals, &sig) != 0)
        fprintf(stderr, "sj-fake-model: sigwait failed; stopping\n");
    exit_code = 0;
done:
    fm_http_stop(http);
    fm_log_close(log);
    fm_script_free(script);
    return exit_code;
}
