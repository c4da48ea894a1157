/* The server user's own agent configuration, carried into the private
 * homes agents run in (agent_env.h): an allow-list of model and provider
 * settings, never whole files, history or credentials files.
 *
 *   Codex     $CODEX_HOME/config.toml, else ~/.codex/config.toml:
 *             the top-level model keys (user_config.c) and whole
 *             [model_providers.*] tables (plus the variables their env_key
 *             names, which the adapter passes on).
 *   Claude    ~/.claude/settings.json: "model" and the "env" entries that
 *             say where the model is and which (names in user_config.c).
 *   OpenCode  $XDG_CONFIG_HOME/opencode/opencode.json, else
 *             ~/.config/opencode/opencode.json: "provider", "model",
 *             "small_model", "enabled_providers", "disabled_providers".
 *
 * The server's own environment still wins: each adapter applies
 * OPENAI_BASE_URL / ANTHROPIC_BASE_URL after (or instead of) what is
 * carried here.  A missing source file is not an error (nothing is
 * carried); an unreadable or malformed one is reported and nothing is
 * carried from it.  Thread: any (getenv and file I/O only). */
#ifndef SJ_USER_CONFIG_H
#define SJ_USER_CONFIG_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

#define USER_CONFIG_MAX_ENV 8

/* What a Codex config.toml contributes. */
struct user_config_codex {
    char *toml;                             /* new: the allow-listed statements */
    char *env_keys[USER_CONFIG_MAX_ENV];    /* new: env_key names of the providers */
    size_t n_env_keys;
};

void user_config_codex_free(struct user_config_codex *c);

/* Filters the TOML text `src` (len bytes) line by line, without a full
 * parser: a statement is a key line or table header plus whatever its
 * value continues over (multi-line strings, arrays spanning lines); it is
 * kept whole, comments included, when its top-level name is allowed.
 * Dotted top-level keys (model_providers.x.base_url = ...) count by their
 * first part.  Not understood, and so not carried: [profiles.*]; inline
 * tables spanning lines (not TOML either).  0, or ERR_INVALID (an
 * unterminated string or bracket) / ERR_NOMEM; *out is zeroed first. */
int user_config_codex_filter(const char *src, size_t len, struct user_config_codex *out,
                             struct err *err);

/* Reads the user's Codex config (see top) and writes the filtered copy to
 * <agent_home>/config.toml (0600, replacing what is there; an earlier copy
 * of ours, told by its first line, is removed when the user has none).  *out gets what was carried (zeroed when nothing). */
int user_config_codex_write(const char *agent_home, struct user_config_codex *out,
                            struct err *err);

/* new: the allow-listed subset of a Claude settings.json object (never
 * NULL unless out of memory); `skip_env(name)` non-zero drops an "env"
 * entry (the server's environment sets it).  NULL skip_env: none. */
json_t *user_config_claude_filter(const json_t *settings, int (*skip_env)(const char *name));

/* Reads ~/.claude/settings.json and writes the filtered copy to
 * <agent_home>/.claude/settings.json (0600; removed when nothing is
 * carried), without ANTHROPIC_BASE_URL when the server's environment sets
 * it (the adapter passes that one). */
int user_config_claude_write(const char *agent_home, struct err *err);

/* new: the allow-listed subset of an opencode.json object. */
json_t *user_config_opencode_filter(const json_t *config);

/* new: the filtered user OpenCode config, an empty object when there is
 * none; NULL with err set when it cannot be read or parsed. */
json_t *user_config_opencode_read(struct err *err);

/* Adds `user` (filtered) to `ours` where ours has nothing: top-level keys
 * ours lacks, and providers by name (ours wins on a name both have).
 * 0, or ERR_NOMEM. */
int user_config_opencode_merge(json_t *ours, const json_t *user, struct err *err);

/* new: the opencode.json text `ours` with the user's config merged in as
 * above.  A user config that cannot be read is logged on stderr and left
 * out; NULL only when out of memory or `ours` is not a JSON object. */
char *user_config_opencode_apply(const char *ours);

#endif
