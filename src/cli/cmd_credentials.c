/* `sandbox-journal credentials extract|extract-env`: the API keys the
 * coding agents on this machine already have (see credentials.h), with the
 * reference CLI's flags.
 *
 * One deliberate difference: the reference prints whole secrets from
 * `extract --agent/--provider` and `extract-env`.  Here every command masks
 * them unless --reveal is given, so a key never lands in a terminal
 * scrollback or a CI log by accident; `eval "$(sandbox-journal credentials
 * extract-env --export --reveal)"` is the way to load them. */
#include "cli/cmd.h"
#include "agents/credentials.h"
#include "base/opts.h"

#include <jansson.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cmd_credentials_options {
    const char *agent;
    const char *provider;
    const char *home_dir;
    int reveal;
    int no_oauth;
    int export_prefix;
};

static const char cmd_credentials_usage[] =
    "usage: sandbox-journal credentials <extract|extract-env> [options]\n"
    "\n"
    "Finds the API keys coding agents already have: ANTHROPIC_API_KEY, CLAUDE_API_KEY,\n"
    "OPENAI_API_KEY, CODEX_API_KEY, GEMINI_API_KEY, GOOGLE_API_KEY, DASHSCOPE_API_KEY,\n"
    "QWEN_API_KEY and CURSOR_API_KEY in the environment, then the agents' own files:\n"
    "~/.amp/config.json, ~/.claude.json(.api), ~/.claude/.credentials.json,\n"
    "~/.claude-oauth-credentials.json, ~/.codex/auth.json,\n"
    "~/.local/share/opencode/auth.json, ~/.gemini/.env, ~/.qwen/.env and\n"
    "~/.pi/agent/auth.json.  Secrets are masked unless --reveal is given.\n"
    "\n"
    "commands:\n"
    "  extract        print what was found (JSON), or one agent's or provider's key\n"
    "  extract-env    print what was found as VAR=value lines for a shell\n"
    "\n"
    "examples:\n"
    "  sandbox-journal credentials extract\n"
    "  sandbox-journal credentials extract --agent claude --reveal\n"
    "  eval \"$(sandbox-journal credentials extract-env --export --reveal)\"\n"
    "\n"
    "'sandbox-journal credentials <command> --help' describes a command.\n";

static const char cmd_credentials_extract_usage[] =
    "usage: sandbox-journal credentials extract [options]\n"
    "\n"
    "Without --agent or --provider, prints every credential found as JSON:\n"
    "{\"anthropic\":{...}|null,\"openai\":{...}|null,\"other\":{provider:{...}}}, each with\n"
    "provider, source, location, auth_type, api_key and redacted.  With them, prints\n"
    "the one key that agent or provider would use, or fails (exit 1).\n"
    "\n"
    "options:\n"
    "  -a, --agent AGENT        claude, codex, opencode, amp, qwen, pi, gemini or cursor\n"
    "  -p, --provider PROVIDER  anthropic, openai, or an OpenCode provider\n"
    "  -d, --home-dir DIR       look for the agents' files under DIR (default $HOME)\n"
    "  -r, --reveal             print secrets in full (default: masked as sk-a...wxyz)\n"
    "      --no-oauth           leave out OAuth access tokens\n"
    "  -h, --help               show this help\n"
    "\n"
    "examples:\n"
    "  sandbox-journal credentials extract\n"
    "  sandbox-journal credentials extract --provider anthropic\n"
    "  sandbox-journal credentials extract --agent codex --reveal\n";

static const char cmd_credentials_env_usage[] =
    "usage: sandbox-journal credentials extract-env [options]\n"
    "\n"
    "Prints what was found as shell assignments: ANTHROPIC_API_KEY and CLAUDE_API_KEY,\n"
    "OPENAI_API_KEY and CODEX_API_KEY, and <PROVIDER>_API_KEY for other providers.\n"
    "Values are masked unless --reveal is given.\n"
    "\n"
    "options:\n"
    "  -e, --export             prefix each line with 'export '\n"
    "  -r, --reveal             print secrets in full\n"
    "  -d, --home-dir DIR       look for the agents' files under DIR (default $HOME)\n"
    "      --no-oauth           leave out OAuth access tokens\n"
    "  -h, --help               show this help\n"
    "\n"
    "examples:\n"
    "  sandbox-journal credentials extract-env\n"
    "  eval \"$(sandbox-journal credentials extract-env --export --reveal)\"\n";

static int cmd_credentials_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* 0, -1 after help, or an exit status. */
static int cmd_credentials_parse(int argc, char **argv, int env, struct cmd_credentials_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int missing = 0;
        if (cmd_credentials_is_help(argv[i])) {
            fputs(env ? cmd_credentials_env_usage : cmd_credentials_extract_usage, stdout);
            return -1;
        } else if (opts_match(argc, argv, &i, "--home-dir", "-d", 1, &v, &missing)) {
            o->home_dir = v;
        } else if (opts_match(argc, argv, &i, "--reveal", "-r", 0, &v, &missing)) {
            o->reveal = 1;
        } else if (opts_match(argc, argv, &i, "--no-oauth", NULL, 0, &v, &missing)) {
            o->no_oauth = 1;
        } else if (!env && opts_match(argc, argv, &i, "--agent", "-a", 1, &v, &missing)) {
            o->agent = v;
        } else if (!env && opts_match(argc, argv, &i, "--provider", "-p", 1, &v, &missing)) {
            o->provider = v;
        } else if (env && opts_match(argc, argv, &i, "--export", "-e", 0, &v, &missing)) {
            o->export_prefix = 1;
        } else {
            return opts_fail("unknown option '%s' for 'credentials %s' (see --help)", argv[i],
                             env ? "extract-env" : "extract");
        }
        if (missing)
            return opts_fail("%s needs a value", argv[i]);
    }
    static const char *const agents[] = { "claude", "codex", "opencode", "amp", "qwen",
                                          "pi", "gemini", "cursor", NULL };
    int known = !o->agent;
    for (size_t a = 0; !known && agents[a]; a++)
        known = strcmp(o->agent, agents[a]) == 0;
    if (!known)
        return opts_fail("--agent must be claude, codex, opencode, amp, qwen, pi, gemini or "
                         "cursor, not '%s'",
                         o->agent);
    if (o->provider && !*o->provider)
        return opts_fail("--provider must not be empty");
    return 0;
}

static const char *cmd_credentials_home(const struct cmd_credentials_options *o)
{
    if (o->home_dir)
        return o->home_dir;
    const char *home = getenv("HOME");
    if (home && *home)
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

/* new (free()): the secret as it may be shown. */
static char *cmd_credentials_shown(const struct credentials_entry *e, int reveal)
{
    return reveal ? strdup(e->secret) : credentials_mask(e->secret);
}

static json_t *cmd_credentials_summary(const struct credentials_entry *e, int reveal)
{
    if (!e->provider)
        return json_null();
    char *shown = cmd_credentials_shown(e, reveal);
    json_t *o = shown ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "provider", e->provider,
                                  "source", e->source, "location", e->location, "auth_type",
                                  credentials_auth_name(e->auth), "api_key", shown, "redacted",
                                  !reveal)
                      : NULL;
    free(shown);
    return o;
}

static int cmd_credentials_flush(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static int cmd_credentials_write_failed(void)
{
    fprintf(stderr, "sandbox-journal: cannot write the output: %s\n", strerror(errno));
    return 1;
}

static int cmd_credentials_nomem(void)
{
    fputs("sandbox-journal: out of memory\n", stderr);
    return 1;
}

static int cmd_credentials_print_all(const struct credentials_set *s, int reveal)
{
    json_t *other = json_object();
    json_t *root = other ? json_pack("{s:o, s:o, s:o}", "anthropic",
                                     cmd_credentials_summary(&s->anthropic, reveal), "openai",
                                     cmd_credentials_summary(&s->openai, reveal), "other", other)
                         : NULL;
    int rc = root ? 0 : ERR_NOMEM;
    for (size_t i = 0; i < s->n_other && !rc; i++)
        rc = json_object_set_new(other, s->other[i].provider,
                                 cmd_credentials_summary(&s->other[i], reveal));
    if (rc || json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        fputc('\n', stdout) == EOF) {
        json_decref(root);
        return rc ? cmd_credentials_nomem() : cmd_credentials_write_failed();
    }
    json_decref(root);
    return cmd_credentials_flush();
}

static int cmd_credentials_print_one(const struct credentials_set *s,
                                     const struct cmd_credentials_options *o)
{
    const struct credentials_entry *e = NULL;
    struct err err;
    err_clear(&err);
    int rc;
    if (o->agent)
        rc = credentials_for_agent(s, o->agent, o->provider, &e, &err);
    else if ((e = credentials_find(s, o->provider)) != NULL)
        rc = 0;
    else
        rc = err_set(&err, ERR_NOT_FOUND, "no credentials found for provider %s", o->provider);
    if (rc || !e) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg[0] ? err.msg : "no credentials found");
        return 1;
    }
    char *shown = cmd_credentials_shown(e, o->reveal);
    if (!shown)
        return cmd_credentials_nomem();
    int ok = puts(shown) != EOF;
    free(shown);
    if (!ok)
        return cmd_credentials_write_failed();
    if (cmd_credentials_flush() != 0)
        return 1;
    if (!o->reveal)
        fputs("sandbox-journal: masked; add --reveal to print the whole key\n", stderr);
    return 0;
}

/* Writes NAME=value, single-quoting the value unless every character is one
 * a shell takes literally. */
static int cmd_credentials_assign(const char *prefix, const char *name, const char *value)
{
    int plain = *value != '\0';
    for (const char *p = value; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-",
                    *p))
            plain = 0;
    if (printf("%s%s=", prefix, name) < 0)
        return -1;
    if (plain)
        return puts(value) == EOF ? -1 : 0;
    if (putchar('\'') == EOF)
        return -1;
    for (const char *p = value; *p; p++) {
        int rc = *p == '\'' ? fputs("'\\''", stdout) : putchar(*p);
        if (rc == EOF)
            return -1;
    }
    return puts("'") == EOF ? -1 : 0;
}

static int cmd_credentials_print_env(const struct credentials_set *s,
                                     const struct cmd_credentials_options *o)
{
    const char *prefix = o->export_prefix ? "export " : "";
    struct {
        const struct credentials_entry *e;
        const char *names[2];
    } fixed[] = {
        { &s->anthropic, { "ANTHROPIC_API_KEY", "CLAUDE_API_KEY" } },
        { &s->openai, { "OPENAI_API_KEY", "CODEX_API_KEY" } },
    };
    int rc = 0, printed = 0;
    for (size_t i = 0; i < 2 && !rc; i++) {
        if (!fixed[i].e->provider)
            continue;
        char *shown = cmd_credentials_shown(fixed[i].e, o->reveal);
        if (!shown)
            return cmd_credentials_nomem();
        for (size_t k = 0; k < 2 && !rc; k++)
            rc = cmd_credentials_assign(prefix, fixed[i].names[k], shown);
        printed = 1;
        free(shown);
    }
    for (size_t i = 0; i < s->n_other && !rc; i++) {
        /* A provider whose name makes no variable name is left out. */
        char *name = credentials_env_name(s->other[i].provider);
        if (!name)
            continue;
        char *shown = cmd_credentials_shown(&s->other[i], o->reveal);
        if (!shown) {
            free(name);
            return cmd_credentials_nomem();
        }
        rc = cmd_credentials_assign(prefix, name, shown);
        printed = 1;
        free(name);
        free(shown);
    }
    if (rc)
        return cmd_credentials_write_failed();
    if (cmd_credentials_flush() != 0)
        return 1;
    if (printed && !o->reveal)
        fputs("sandbox-journal: values are masked; add --reveal to print them\n", stderr);
    return 0;
}

int cmd_credentials(int argc, char **argv)
{
    if (argc < 2)
        return opts_fail("missing command: extract or extract-env (see 'sandbox-journal "
                         "credentials --help')");
    if (cmd_credentials_is_help(argv[1])) {
        fputs(cmd_credentials_usage, stdout);
        return 0;
    }
    int env;
    if (strcmp(argv[1], "extract") == 0)
        env = 0;
    else if (strcmp(argv[1], "extract-env") == 0)
        env = 1;
    else
        return opts_fail("unknown command 'credentials %s': extract or extract-env", argv[1]);

    struct cmd_credentials_options o = { 0 };
    int rc = cmd_credentials_parse(argc - 1, argv + 1, env, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *home = cmd_credentials_home(&o);
    if (!home)
        return opts_fail("cannot find a home directory: set HOME or --home-dir");

    struct credentials_options copts = { .home_dir = home, .include_oauth = !o.no_oauth };
    struct credentials_set set;
    struct err err;
    err_clear(&err);
    if (credentials_extract(&copts, &set, &err) != 0) {
        fprintf(stderr, "sandbox-journal: %s\n", err.msg);
        return 1;
    }
    if (env)
        rc = cmd_credentials_print_env(&set, &o);
    else if (o.agent || o.provider)
        rc = cmd_credentials_print_one(&set, &o);
    else
        rc = cmd_credentials_print_all(&set, o.reveal);
    credentials_set_clear(&set);
    return rc;
}
