/* Credential discovery (see credentials.h).
 *
 * Two places where we differ from the reference on purpose:
 *   - it gives up on Claude Code's config files as soon as the first one is
 *     missing (~/.claude.json.api usually is), so a key in ~/.claude.json was
 *     never found; we try each file;
 *   - it checks Claude's OAuth expiry only when expiresAt is an RFC 3339
 *     string, but Claude Code writes milliseconds since the epoch; we take
 *     both.
 * It also reads one developer's personal file (~/.claude.json.nathan); we do
 * not. */
#include "agents/credentials.h"

#include <jansson.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Keys shorter than this are masked completely: showing eight characters of
 * them would give too much away. */
#define CREDENTIALS_MASK_MIN 24

struct credentials_ctx {
    const struct credentials_options *o;
    long long now_ms;
    struct err *err;
};

static int credentials_nomem(struct err *err)
{
    return err_set(err, ERR_NOMEM, "out of memory");
}

static void credentials_wipe(char *s)
{
    if (!s)
        return;
    /* volatile: the stores must happen although the memory is freed next. */
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
}

static void credentials_entry_clear(struct credentials_entry *e)
{
    credentials_wipe(e->secret);
    free(e->secret);
    free(e->provider);
    free(e->source);
    free(e->location);
    memset(e, 0, sizeof *e);
}

void credentials_set_clear(struct credentials_set *s)
{
    if (!s)
        return;
    credentials_entry_clear(&s->anthropic);
    credentials_entry_clear(&s->openai);
    for (size_t i = 0; i < s->n_other; i++)
        credentials_entry_clear(&s->other[i]);
    free(s->other);
    memset(s, 0, sizeof *s);
}

static int credentials_entry_set(struct credentials_entry *e, const char *provider,
                                 const char *source, const char *location,
                                 enum credentials_auth auth, const char *secret,
                                 struct err *err)
{
    struct credentials_entry n = {
        .provider = strdup(provider),
        .source = strdup(source),
        .location = strdup(location),
        .auth = auth,
        .secret = strdup(secret),
    };
    if (!n.provider || !n.source || !n.location || !n.secret) {
        credentials_entry_clear(&n);
        return credentials_nomem(err);
    }
    credentials_entry_clear(e);
    *e = n;
    return 0;
}

/* ---- time ------------------------------------------------------------------ */

static long long credentials_clock_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int credentials_is_leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 0001-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long long credentials_day_number(long long y, int m, int d)
{
    static const int before_month[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304,
                                          334 };
    long long past = y - 1;
    long long days = past * 365 + past / 4 - past / 100 + past / 400;
    days += before_month[m - 1] + (m > 2 && credentials_is_leap(y)) + (d - 1);
    return days;
}

static int credentials_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 ("2026-01-31T12:00:00.5Z", "...+02:00") to ms since the epoch.
 * 0, or -1 if `s` is not one. */
static int credentials_parse_rfc3339(const char *s, long long *out_ms)
{
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 20 || credentials_digits(s, 4, &y) || s[4] != '-' ||
        credentials_digits(s + 5, 2, &mo) || s[7] != '-' || credentials_digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || credentials_digits(s + 11, 2, &h) ||
        s[13] != ':' || credentials_digits(s + 14, 2, &mi) || s[16] != ':' ||
        credentials_digits(s + 17, 2, &sec))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    long long frac_ms = 0;
    if (*p == '.') {
        int scale = 100, any = 0;
        for (p++; isdigit((unsigned char)*p); p++, any = 1) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
        if (!any)
            return -1;
    }
    long long offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (credentials_digits(p + 1, 2, &oh) || p[3] != ':' || credentials_digits(p + 4, 2, &om))
            return -1;
        offset_min = (long long)(oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    long long days = credentials_day_number(y, mo, d) - credentials_day_number(1970, 1, 1);
    long long secs = days * 86400 + h * 3600LL + mi * 60LL + sec - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

/* 1 if the expiry value (ms since the epoch, or an RFC 3339 string) has
 * passed; anything else counts as not expired, as the reference does. */
static int credentials_expired(const json_t *expires, long long now_ms)
{
    long long at;
    if (json_is_integer(expires))
        return (long long)json_integer_value(expires) < now_ms;
    if (json_is_real(expires))
        return json_real_value(expires) < (double)now_ms;
    if (json_is_string(expires) && credentials_parse_rfc3339(json_string_value(expires), &at) == 0)
        return at < now_ms;
    return 0;
}

/* ---- files ----------------------------------------------------------------- */

/* new: the JSON in home/<rel>, or NULL if it is missing or not JSON.  The
 * path is written to path[size] either way. */
static json_t *credentials_load(const struct credentials_ctx *c, const char *rel, char *path,
                                size_t size)
{
    int n = snprintf(path, size, "%s/%s", c->o->home_dir, rel);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    json_error_t jerr;
    return json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
}

/* borrowed: the non-empty string at the dotted `key_path` of `root`, or NULL. */
static const char *credentials_string_at(const json_t *root, const char *key_path)
{
    char part[64];
    const json_t *cur = root;
    const char *p = key_path;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof part)
            return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        cur = json_is_object(cur) ? json_object_get(cur, part) : NULL;
        p += n + (p[n] == '.');
    }
    const char *s = json_is_string(cur) ? json_string_value(cur) : NULL;
    return s && *s ? s : NULL;
}

static int credentials_from_env(struct credentials_entry *e, const char *provider,
                                const char *const *names, struct err *err)
{
    for (size_t i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            char location[64];
            snprintf(location, sizeof location, "$%s", names[i]);
            return credentials_entry_set(e, provider, "environment", location,
                                         CREDENTIALS_API_KEY, v, err);
        }
    }
    return 0;
}

static int credentials_amp(const struct credentials_ctx *c, struct credentials_entry *e)
{
    static const char *const keys[] = {
        "anthropicApiKey", "anthropic_api_key", "apiKey", "api_key", "accessToken",
        "access_token", "token", "auth.anthropicApiKey", "auth.apiKey", "auth.token",
        "anthropic.apiKey", "anthropic.token",
    };
    char path[4096];
    json_t *root = credentials_load(c, ".amp/config.json", path, sizeof path);
    int rc = 0;
    for (size_t i = 0; root && i < sizeof keys / sizeof keys[0]; i++) {
        const char *key = credentials_string_at(root, keys[i]);
        if (key) {
            rc = credentials_entry_set(e, "anthropic", "amp", path, CREDENTIALS_API_KEY, key,
                                       c->err);
            break;
        }
    }
    json_decref(root);
    return rc;
}

static int credentials_claude(const struct credentials_ctx *c, struct credentials_entry *e)
{
    static const char *const files[] = { ".claude.json.api", ".claude.json" };
    static const char *const keys[] = { "primaryApiKey", "apiKey", "anthropicApiKey",
                                        "customApiKey" };
    char path[4096];
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        json_t *root = credentials_load(c, files[f], path, sizeof path);
        for (size_t k = 0; root && k < sizeof keys / sizeof keys[0]; k++) {
            const char *key = credentials_string_at(root, keys[k]);
            if (key && strncmp(key, "sk-ant-", 7) == 0) {
                int rc = credentials_entry_set(e, "anthropic", "claude-code", path,
                                               CREDENTIALS_API_KEY, key, c->err);
                json_decref(root);
                return rc;
            }
        }
        json_decref(root);
    }
    if (!c->o->include_oauth)
        return 0;
    static const char *const oauth_files[] = { ".claude/.credentials.json",
                                               ".claude-oauth-credentials.json" };
    for (size_t f = 0; f < sizeof oauth_files / sizeof oauth_files[0]; f++) {
        json_t *root = credentials_load(c, oauth_files[f], path, sizeof path);
        const char *token = credentials_string_at(root, "claudeAiOauth.accessToken");
        const json_t *oauth = json_object_get(root, "claudeAiOauth");
        int rc = 0, found = 0;
        if (token && !credentials_expired(json_object_get(oauth, "expiresAt"), c->now_ms)) {
            rc = credentials_entry_set(e, "anthropic", "claude-code", path, CREDENTIALS_OAUTH,
                                       token, c->err);
            found = 1;
        }
        json_decref(root);
        if (found || rc)
            return rc;
    }
    return 0;
}

static int credentials_codex(const struct credentials_ctx *c, struct credentials_entry *e)
{
    char path[4096];
    json_t *root = credentials_load(c, ".codex/auth.json", path, sizeof path);
    if (!root)
        return 0;
    int rc = 0;
    const char *key = credentials_string_at(root, "OPENAI_API_KEY");
    const char *token = c->o->include_oauth ? credentials_string_at(root, "tokens.access_token")
                                            : NULL;
    if (key)
        rc = credentials_entry_set(e, "openai", "codex", path, CREDENTIALS_API_KEY, key, c->err);
    else if (token)
        rc = credentials_entry_set(e, "openai", "codex", path, CREDENTIALS_OAUTH, token, c->err);
    json_decref(root);
    return rc;
}

static int credentials_cmp(const void *a, const void *b)
{
    const struct credentials_entry *x = a, *y = b;
    return strcmp(x->provider, y->provider);
}

/* Puts a credential for `provider` where it belongs: the anthropic or
 * openai slot, or a new entry of out->other (kept sorted), unless the
 * provider has one already (the first source found wins).  0 or
 * ERR_NOMEM. */
static int credentials_add(const struct credentials_ctx *c, struct credentials_set *out,
                           const char *provider, const char *source, const char *location,
                           enum credentials_auth auth, const char *secret)
{
    if (credentials_find(out, provider))
        return 0;
    if (strcmp(provider, "anthropic") == 0)
        return credentials_entry_set(&out->anthropic, provider, source, location, auth, secret,
                                     c->err);
    if (strcmp(provider, "openai") == 0)
        return credentials_entry_set(&out->openai, provider, source, location, auth, secret,
                                     c->err);
    struct credentials_entry *grown = realloc(out->other, (out->n_other + 1) * sizeof *grown);
    if (!grown)
        return credentials_nomem(c->err);
    out->other = grown;
    memset(&grown[out->n_other], 0, sizeof *grown);
    int rc = credentials_entry_set(&grown[out->n_other], provider, source, location, auth,
                                   secret, c->err);
    if (rc)
        return rc;
    out->n_other++;
    qsort(out->other, out->n_other, sizeof *out->other, credentials_cmp);
    return 0;
}

/* Adds the providers of an auth.json keyed by provider name, as OpenCode
 * (type "api", "key") and Pi (type "api_key", "key") write it, OAuth logins
 * (type "oauth", "access", "expires") with include_oauth: anthropic and
 * openai only where nothing was found before. */
static int credentials_auth_file(const struct credentials_ctx *c, struct credentials_set *out,
                                 const char *rel, const char *source)
{
    char path[4096];
    json_t *root = credentials_load(c, rel, path, sizeof path);
    int rc = 0;
    const char *provider;
    json_t *config;
    json_object_foreach(json_is_object(root) ? root : NULL, provider, config) {
        const char *type = credentials_string_at(config, "type");
        const char *secret = NULL;
        enum credentials_auth auth = CREDENTIALS_API_KEY;
        if (!*provider || !type)
            continue;
        if (strcmp(type, "api") == 0 || strcmp(type, "api_key") == 0) {
            secret = credentials_string_at(config, "key");
        } else if (strcmp(type, "oauth") == 0 && c->o->include_oauth &&
                   !credentials_expired(json_object_get(config, "expires"), c->now_ms)) {
            secret = credentials_string_at(config, "access");
            auth = CREDENTIALS_OAUTH;
        }
        if (secret && (rc = credentials_add(c, out, provider, source, path, auth, secret)) != 0)
            break;
    }
    json_decref(root);
    return rc;
}

/* Adds NAME=value lines of a dotenv file (home/<rel>, as Gemini CLI and
 * Qwen Code read ~/.gemini/.env and ~/.qwen/.env): each variable of
 * `names` gives `providers[i]`.  Quotes around the value are dropped. */
static int credentials_dotenv(const struct credentials_ctx *c, struct credentials_set *out,
                              const char *rel, const char *source, const char *const *names,
                              const char *const *providers)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", c->o->home_dir, rel);
    FILE *f = n > 0 && (size_t)n < sizeof path ? fopen(path, "r") : NULL;
    if (!f)
        return 0;
    char line[4096];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        char *l = line;
        while (*l == ' ' || *l == '\t')
            l++;
        if (strncmp(l, "export ", 7) == 0)
            l += 7;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        v[strcspn(v, "\r\n")] = '\0';
        size_t len = strlen(v);
        if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
            v[len - 1] = '\0';
            v++;
        }
        for (size_t i = 0; names[i] && *v; i++)
            if (strcmp(l, names[i]) == 0)
                rc = credentials_add(c, out, providers[i], source, path, CREDENTIALS_API_KEY, v);
    }
    memset(line, 0, sizeof line); /* it held a secret */
    fclose(f);
    return rc;
}

/* The ACP agents' keys: the environment, then their own files. */
static int credentials_acp_agents(const struct credentials_ctx *c, struct credentials_set *out)
{
    static const char *const env[] = { "GEMINI_API_KEY", "GOOGLE_API_KEY", "DASHSCOPE_API_KEY",
                                       "QWEN_API_KEY", "CURSOR_API_KEY", NULL };
    static const char *const env_providers[] = { "google", "google", "dashscope", "dashscope",
                                                 "cursor" };
    int rc = 0;
    for (size_t i = 0; !rc && env[i]; i++) {
        const char *v = getenv(env[i]);
        if (v && *v) {
            char location[64];
            snprintf(location, sizeof location, "$%s", env[i]);
            rc = credentials_add(c, out, env_providers[i], "environment", location,
                                 CREDENTIALS_API_KEY, v);
        }
    }
    static const char *const gemini_names[] = { "GEMINI_API_KEY", "GOOGLE_API_KEY", NULL };
    static const char *const gemini_providers[] = { "google", "google" };
    static const char *const qwen_names[] = { "OPENAI_API_KEY", "DASHSCOPE_API_KEY", NULL };
    static const char *const qwen_providers[] = { "openai", "dashscope" };
    if (!rc)
        rc = credentials_dotenv(c, out, ".gemini/.env", "gemini", gemini_names,
                                gemini_providers);
    if (!rc)
        rc = credentials_dotenv(c, out, ".qwen/.env", "qwen", qwen_names, qwen_providers);
    if (!rc)
        rc = credentials_auth_file(c, out, ".pi/agent/auth.json", "pi");
    return rc;
}

int credentials_extract(const struct credentials_options *o, struct credentials_set *out,
                        struct err *err)
{
    memset(out, 0, sizeof *out);
    if (!o || !o->home_dir || !*o->home_dir)
        return err_set(err, ERR_INVALID, "no home directory to search (set HOME or --home-dir)");
    struct credentials_ctx c = { .o = o, .now_ms = o->now_ms ? o->now_ms : credentials_clock_ms(),
                                 .err = err };
    static const char *const anthropic_env[] = { "ANTHROPIC_API_KEY", "CLAUDE_API_KEY", NULL };
    static const char *const openai_env[] = { "OPENAI_API_KEY", "CODEX_API_KEY", NULL };
    int rc = credentials_from_env(&out->anthropic, "anthropic", anthropic_env, err);
    if (!rc)
        rc = credentials_from_env(&out->openai, "openai", openai_env, err);
    if (!rc && !out->anthropic.provider)
        rc = credentials_amp(&c, &out->anthropic);
    if (!rc && !out->anthropic.provider)
        rc = credentials_claude(&c, &out->anthropic);
    if (!rc && !out->openai.provider)
        rc = credentials_codex(&c, &out->openai);
    if (!rc)
        rc = credentials_auth_file(&c, out, ".local/share/opencode/auth.json", "opencode");
    if (!rc)
        rc = credentials_acp_agents(&c, out);
    if (rc)
        credentials_set_clear(out);
    return rc;
}

const struct credentials_entry *credentials_find(const struct credentials_set *s,
                                                 const char *provider)
{
    if (strcmp(provider, "anthropic") == 0)
        return s->anthropic.provider ? &s->anthropic : NULL;
    if (strcmp(provider, "openai") == 0)
        return s->openai.provider ? &s->openai : NULL;
    for (size_t i = 0; i < s->n_other; i++)
        if (strcmp(s->other[i].provider, provider) == 0)
            return &s->other[i];
    return NULL;
}

static int credentials_for_provider(const struct credentials_set *s, const char *provider,
                                    const struct credentials_entry **out, struct err *err)
{
    const struct credentials_entry *e = credentials_find(s, provider);
    if (!e)
        return err_set(err, ERR_NOT_FOUND, "no credentials found for provider %s", provider);
    *out = e;
    return 0;
}

int credentials_for_agent(const struct credentials_set *s, const char *agent,
                          const char *provider, const struct credentials_entry **out,
                          struct err *err)
{
    const char *only = NULL;
    if (strcmp(agent, "claude") == 0 || strcmp(agent, "amp") == 0)
        only = "anthropic";
    else if (strcmp(agent, "codex") == 0)
        only = "openai";
    else if (strcmp(agent, "gemini") == 0)
        only = "google";
    else if (strcmp(agent, "cursor") == 0)
        only = "cursor";
    else if (strcmp(agent, "qwen") == 0 && !provider && !s->openai.provider &&
             credentials_find(s, "dashscope"))
        only = "dashscope"; /* Qwen Code takes an OpenAI-style key, or DashScope's */
    else if (strcmp(agent, "qwen") == 0 && (!provider || strcmp(provider, "dashscope") != 0))
        only = "openai";
    else if (strcmp(agent, "qwen") == 0)
        only = "dashscope";
    else if (strcmp(agent, "opencode") != 0 && strcmp(agent, "pi") != 0)
        return err_set(err, ERR_INVALID,
                       "unknown agent '%s' (claude, codex, opencode, amp, qwen, pi, gemini or "
                       "cursor)",
                       agent);
    if (only) {
        if (provider && strcmp(provider, only) != 0)
            return err_set(err, ERR_INVALID, "agent %s only supports provider %s", agent, only);
        return credentials_for_provider(s, only, out, err);
    }
    /* OpenCode and Pi speak to any provider: prefer openai, then anthropic,
     * then a lone other one. */
    if (provider)
        return credentials_for_provider(s, provider, out, err);
    if (s->openai.provider)
        *out = &s->openai;
    else if (s->anthropic.provider)
        *out = &s->anthropic;
    else if (s->n_other == 1)
        *out = &s->other[0];
    else if (s->n_other == 0)
        return err_set(err, ERR_NOT_FOUND, "no credentials found for %s", agent);
    else {
        char names[200] = "";
        size_t used = 0;
        for (size_t i = 0; i < s->n_other && used < sizeof names; i++) {
            int n = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                             s->other[i].provider);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        return err_set(err, ERR_INVALID,
                       "multiple providers available for %s: %s (use --provider)", agent,
                       names);
    }
    return 0;
}

char *credentials_mask(const char *secret)
{
    const char *s = secret ? secret : "";
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    int printable = 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            printable = 0;
    if (len < CREDENTIALS_MASK_MIN || !printable)
        return strdup("****");
    char *out = malloc(4 + 3 + 4 + 1);
    if (!out)
        return NULL;
    memcpy(out, s, 4);
    memcpy(out + 4, "...", 3);
    memcpy(out + 7, s + len - 4, 4);
    out[11] = '\0';
    return out;
}

const char *credentials_auth_name(enum credentials_auth auth)
{
    return auth == CREDENTIALS_OAUTH ? "oauth" : "api_key";
}

char *credentials_env_name(const char *provider)
{
    size_t n = strlen(provider);
    char *out = malloc(n + sizeof "_API_KEY");
    if (!out)
        return NULL;
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)provider[i];
        if (isalnum(ch) && ch < 0x80) {
            out[i] = (char)toupper(ch);
            any = 1;
        } else {
            out[i] = '_';
        }
    }
    memcpy(out + n, "_API_KEY", sizeof "_API_KEY");
    if (!any || isdigit((unsigned char)out[0])) {
        free(out);
        return NULL;
    }
    return out;
}
