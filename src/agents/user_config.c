/* The user's agent configuration, allow-listed; see user_config.h. */
#include "agents/user_config.h"

#include "base/buf.h"
#include "base/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The first line of our copy (so that a config of Codex's own is not removed). */
#define CODEX_HEADER "# Carried from the server user's Codex config by sandbox-journal.\n"

/* Top-level Codex keys that choose and tune the model, nothing else
 * (approval, sandbox, MCP servers and projects stay ours). */
static const char *const codex_keys[] = {
    "model", "model_provider", "model_reasoning_effort", "model_reasoning_summary",
    "model_verbosity", "model_context_window", "model_auto_compact_token_limit",
    "model_supports_reasoning_summaries", "model_max_output_tokens",
};
/* Tables carried whole, by their first name part. */
static const char *const codex_tables[] = { "model_providers" };

/* Variables a provider's env_key may not name: they belong to the adapter. */
static const char *const env_denied[] = { "HOME", "CODEX_HOME", "PATH", "SHELL", "USER" };

/* Claude Code settings "env" names: where the model is and which one. */
static const char *const claude_env[] = {
    "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL", "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX", "ANTHROPIC_BEDROCK_BASE_URL", "ANTHROPIC_VERTEX_BASE_URL",
    "ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION", "AWS_REGION", "API_TIMEOUT_MS",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
};

static const char *const opencode_keys[] = { "provider", "model", "small_model" };

static int in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

#define IN(list, s) in_list(list, sizeof list / sizeof list[0], s)

/* ---- TOML, line-based ---- */

/* The end (one past its newline, or len) of the statement starting at i:
 * strings, multi-line strings and brackets may carry it over lines; a
 * comment runs to the end of its line.  -1 if a string or bracket is
 * left open. */
static long toml_stmt_end(const char *s, size_t len, size_t i)
{
    int depth = 0;
    while (i < len) {
        char c = s[i];
        if (c == '\n') {
            i++;
            if (depth == 0)
                return (long)i;
        } else if (c == '#') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (c == '"' || c == '\'') {
            if (i + 2 < len && s[i + 1] == c && s[i + 2] == c) {
                for (i += 3;; i++) {
                    if (i + 2 >= len)
                        return -1;
                    if (c == '"' && s[i] == '\\') {
                        i++;
                        continue;
                    }
                    if (s[i] == c && s[i + 1] == c && s[i + 2] == c)
                        break;
                }
                /* Up to two quotes may end the content right before the
                 * closing three ("""a""""). */
                for (int extra = 0; extra < 2 && i + 3 < len && s[i + 3] == c; extra++)
                    i++;
                i += 3;
            } else {
                for (i++; i < len && s[i] != c && s[i] != '\n'; i++)
                    if (c == '"' && s[i] == '\\' && i + 1 < len && s[i + 1] != '\n')
                        i++;
                if (i >= len || s[i] != c)
                    return -1;
                i++;
            }
        } else {
            if (c == '[' || c == '{')
                depth++;
            else if (c == ']' || c == '}') {
                if (depth == 0)
                    return -1;
                depth--;
            }
            i++;
        }
    }
    return depth == 0 ? (long)len : -1;
}

/* The first part of the key at s[i..] into out (quotes removed, escapes
 * kept verbatim: none of our names has one); *next is after it. */
static void toml_key(const char *s, size_t len, size_t i, char *out, size_t cap, size_t *next)
{
    size_t n = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < len && (s[i] == '"' || s[i] == '\'')) {
        char q = s[i++];
        for (; i < len && s[i] != q && s[i] != '\n'; i++)
            if (n + 1 < cap)
                out[n++] = s[i];
        if (i < len && s[i] == q)
            i++;
    } else {
        for (; i < len && (s[i] == '_' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
                           (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'));
             i++)
            if (n + 1 < cap)
                out[n++] = s[i];
    }
    out[n] = '\0';
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    *next = i;
}

static int env_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

/* Records `env_key = "NAME"` (a provider's key variable) for the adapter. */
static int toml_note_env_key(const char *s, size_t len, size_t i, struct user_config_codex *out)
{
    char key[64];
    toml_key(s, len, i, key, sizeof key, &i);
    if (strcmp(key, "env_key") != 0 || i >= len || s[i] != '=')
        return 0;
    for (i++; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    if (i >= len || s[i] != '"')
        return 0;
    size_t start = ++i;
    while (i < len && s[i] != '"' && s[i] != '\n')
        i++;
    char name[128];
    size_t n = i - start;
    if (n >= sizeof name || !env_name_ok(s + start, n))
        return 0;
    memcpy(name, s + start, n);
    name[n] = '\0';
    if (IN(env_denied, name) || out->n_env_keys == USER_CONFIG_MAX_ENV)
        return 0;
    for (size_t k = 0; k < out->n_env_keys; k++)
        if (strcmp(out->env_keys[k], name) == 0)
            return 0;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    out->env_keys[out->n_env_keys++] = copy;
    return 0;
}

void user_config_codex_free(struct user_config_codex *c)
{
    free(c->toml);
    for (size_t i = 0; i < c->n_env_keys; i++)
        free(c->env_keys[i]);
    memset(c, 0, sizeof *c);
}

int user_config_codex_filter(const char *src, size_t len, struct user_config_codex *out,
                             struct err *err)
{
    memset(out, 0, sizeof *out);
    struct buf b;
    buf_init(&b);
    int nomem = buf_puts(&b, CODEX_HEADER);
    int rc = 0, in_table = 0, keep_table = 0;
    size_t i = 0;
    while (!rc && !nomem && i < len) {
        long end = toml_stmt_end(src, len, i);
        if (end < 0) {
            rc = err_set(err, ERR_INVALID, "unterminated string or bracket after byte %zu", i);
            break;
        }
        size_t j = i;
        while (j < (size_t)end && (src[j] == ' ' || src[j] == '\t'))
            j++;
        int blank = j == (size_t)end || src[j] == '\n' || src[j] == '\r' || src[j] == '#';
        char name[64];
        size_t after;
        int keep;
        if (blank) {
            keep = in_table && keep_table;
        } else if (src[j] == '[') {
            size_t k = j + 1;
            if (k < len && src[k] == '[')
                k++;
            toml_key(src, len, k, name, sizeof name, &after);
            in_table = 1;
            keep = keep_table = IN(codex_tables, name);
        } else {
            toml_key(src, len, j, name, sizeof name, &after);
            keep = in_table ? keep_table : (IN(codex_keys, name) || IN(codex_tables, name));
            if (keep && in_table && toml_note_env_key(src, (size_t)end, j, out) != 0)
                nomem = 1;
        }
        if (keep && !nomem)
            nomem = buf_append(&b, src + i, (size_t)end - i) != 0;
        /* A last statement without its newline gets one, so that what
         * follows it in the copy starts on a line of its own. */
        if (keep && !nomem && src[end - 1] != '\n')
            nomem = buf_puts(&b, "\n") != 0;
        i = (size_t)end;
    }
    if (!rc && (nomem || !(out->toml = buf_steal(&b))))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    buf_free(&b);
    if (rc)
        user_config_codex_free(out);
    return rc;
}

/* ---- files ---- */

/* new: the whole file in *text, or 1 when it does not exist. */
static int read_text(const char *path, char **text, size_t *len, struct err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR
                   ? 1
                   : err_set(err, ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = err_set(err, ERR_INTERNAL, "cannot read %s", path);
    fclose(f);
    if (!rc && b.len > (1u << 20))
        rc = err_set(err, ERR_INVALID, "%s is larger than 1 MiB", path);
    *len = b.len;
    *text = rc ? NULL : buf_steal(&b);
    buf_free(&b);
    if (!rc && !*text)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    return rc;
}

/* Writes `text` to `path` (0600) through a temporary file and a rename, so
 * an agent starting meanwhile reads the old copy or the new one. */
static int write_text(const char *path, const char *text, struct err *err)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return err_set(err, ERR_INTERNAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int rc = close(fd);
    if (w < 0 || (size_t)w != n || rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        if (unlink(tmp) != 0 && errno != ENOENT)
            e = errno;
        return err_set(err, ERR_INTERNAL, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

static int remove_copy(const char *path, struct err *err)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return err_set(err, ERR_INTERNAL, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* The server user's file: $<var>/<sub>, else $HOME/<home_sub>/<sub>. */
static int user_path(const char *var, const char *home_sub, const char *sub, char *out,
                     size_t cap, struct err *err)
{
    const char *base = var ? getenv(var) : NULL;
    int n;
    if (base && *base) {
        n = snprintf(out, cap, "%s/%s", base, sub);
    } else {
        const char *home = getenv("HOME");
        n = snprintf(out, cap, "%s/%s/%s", home && *home ? home : "/nonexistent", home_sub, sub);
    }
    if (n < 0 || (size_t)n >= cap)
        return err_set(err, ERR_INTERNAL, "path too long for %s", sub);
    return 0;
}

int user_config_codex_write(const char *agent_home, struct user_config_codex *out,
                            struct err *err)
{
    memset(out, 0, sizeof *out);
    char src[PATH_MAX], dst[PATH_MAX];
    int rc = user_path("CODEX_HOME", ".codex", "config.toml", src, sizeof src, err);
    if (rc)
        return rc;
    if (snprintf(dst, sizeof dst, "%s/config.toml", agent_home) >= (int)sizeof dst)
        return err_set(err, ERR_INTERNAL, "path too long: %s", agent_home);
    if (strcmp(src, dst) == 0)
        return 0; /* the server runs with CODEX_HOME set to the agent's own */
    char *text;
    size_t len;
    rc = read_text(src, &text, &len, err);
    if (rc == 1) {
        /* Only a copy of ours: Codex may have written a config of its own. */
        FILE *f = fopen(dst, "r");
        char first[sizeof CODEX_HEADER] = "";
        if (f) {
            size_t n = fread(first, 1, sizeof first - 1, f);
            first[n] = '\0';
            fclose(f);
        }
        return strcmp(first, CODEX_HEADER) == 0 ? remove_copy(dst, err) : 0;
    }
    if (rc)
        return rc;
    rc = user_config_codex_filter(text, len, out, err);
    free(text);
    if (!rc)
        rc = write_text(dst, out->toml, err);
    if (rc)
        user_config_codex_free(out);
    return rc;
}

/* ---- JSON ---- */

/* The adapter passes ANTHROPIC_BASE_URL from the server's environment;
 * Claude Code would let the settings' "env" override it. */
static int env_set_in_server(const char *name)
{
    const char *v = getenv(name);
    return strcmp(name, "ANTHROPIC_BASE_URL") == 0 && v && *v;
}

json_t *user_config_claude_filter(const json_t *settings, int (*skip_env)(const char *name))
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    const json_t *model = json_object_get(settings, "model");
    int ok = !json_is_string(model) || json_object_set(out, "model", (json_t *)model) == 0;
    const json_t *env = json_object_get(settings, "env");
    json_t *kept = json_object();
    ok = ok && kept;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)env, name, v) {
        if (!ok || !json_is_string(v) || !IN(claude_env, name) || (skip_env && skip_env(name)))
            continue;
        ok = json_object_set(kept, name, (json_t *)v) == 0;
    }
    if (ok && json_object_size(kept) > 0)
        ok = json_object_set(out, "env", kept) == 0;
    json_decref(kept);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* new: the JSON object at `path`, or an empty object when there is none. */
static json_t *read_json(const char *path, struct err *err)
{
    char *text;
    size_t len;
    int rc = read_text(path, &text, &len, err);
    if (rc == 1) {
        json_t *empty = json_object();
        if (!empty)
            err_set(err, ERR_NOMEM, "out of memory");
        return empty;
    }
    if (rc)
        return NULL;
    json_error_t je;
    json_t *v = json_loadb(text, len, 0, &je);
    free(text);
    if (!json_is_object(v)) {
        json_decref(v);
        err_set(err, ERR_INVALID, "%s: not a JSON object (%s)", path, v ? "" : je.text);
        return NULL;
    }
    return v;
}

int user_config_claude_write(const char *agent_home, struct err *err)
{
    char src[PATH_MAX], dir[PATH_MAX], dst[PATH_MAX + 16];
    int rc = user_path(NULL, ".claude", "settings.json", src, sizeof src, err);
    if (rc)
        return rc;
    if (snprintf(dir, sizeof dir, "%s/.claude", agent_home) >= (int)sizeof dir)
        return err_set(err, ERR_INTERNAL, "path too long: %s", agent_home);
    snprintf(dst, sizeof dst, "%s/settings.json", dir);
    json_t *user = read_json(src, err);
    if (!user)
        return err ? err->code : ERR_INTERNAL;
    json_t *kept = user_config_claude_filter(user, env_set_in_server);
    json_decref(user);
    if (!kept)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (json_object_size(kept) == 0) {
        json_decref(kept);
        return remove_copy(dst, err);
    }
    char *text = json_dumps(kept, JSON_INDENT(2));
    json_decref(kept);
    if (!text)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (datadir_mkdirs(dir) != 0)
        rc = err_set(err, ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    else
        rc = write_text(dst, text, err);
    free(text);
    return rc;
}

json_t *user_config_opencode_filter(const json_t *config)
{
    json_t *out = json_object();
    for (size_t i = 0; out && i < sizeof opencode_keys / sizeof opencode_keys[0]; i++) {
        json_t *v = json_object_get(config, opencode_keys[i]);
        int want = strcmp(opencode_keys[i], "provider") == 0 ? json_is_object(v)
                                                              : json_is_string(v);
        if (want && json_object_set(out, opencode_keys[i], v) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *user_config_opencode_read(struct err *err)
{
    char src[PATH_MAX];
    if (user_path("XDG_CONFIG_HOME", ".config", "opencode/opencode.json", src, sizeof src, err))
        return NULL;
    json_t *user = read_json(src, err);
    if (!user)
        return NULL;
    json_t *kept = user_config_opencode_filter(user);
    json_decref(user);
    if (!kept)
        err_set(err, ERR_NOMEM, "out of memory");
    return kept;
}

int user_config_opencode_merge(json_t *ours, const json_t *user, struct err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)user, key, v) {
        json_t *mine = json_object_get(ours, key);
        int rc = 0;
        if (!mine)
            rc = json_object_set(ours, key, v);
        else if (strcmp(key, "provider") == 0 && json_is_object(mine) && json_is_object(v))
            rc = json_object_update_missing(mine, v);
        if (rc != 0)
            return err_set(err, ERR_NOMEM, "out of memory");
    }
    return 0;
}

char *user_config_opencode_apply(const char *ours)
{
    json_t *config = json_loads(ours, 0, NULL);
    if (!json_is_object(config)) {
        json_decref(config);
        return NULL;
    }
    struct err err;
    json_t *user = user_config_opencode_read(&err);
    int ok = 1;
    if (!user)
        fprintf(stderr, "sandbox-journal: the user's opencode.json is not carried over: %s\n",
                err.msg);
    else
        ok = user_config_opencode_merge(config, user, &err) == 0;
    json_decref(user);
    char *text = ok ? json_dumps(config, JSON_INDENT(2)) : NULL;
    json_decref(config);
    return text;
}
