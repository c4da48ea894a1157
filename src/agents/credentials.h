/* Finding the API keys coding agents already have: the environment first,
 * then the agents' own files under a home directory, in the reference
 * project's order (sandbox-agent's agent-credentials crate):
 *
 *   anthropic  ANTHROPIC_API_KEY, CLAUDE_API_KEY, then ~/.amp/config.json,
 *              ~/.claude.json.api, ~/.claude.json (keys starting "sk-ant-"),
 *              Claude Code's OAuth login (~/.claude/.credentials.json,
 *              ~/.claude-oauth-credentials.json), then OpenCode's
 *   openai     OPENAI_API_KEY, CODEX_API_KEY, then ~/.codex/auth.json
 *              (OPENAI_API_KEY, or the OAuth tokens.access_token), then
 *              OpenCode's
 *   others     every other provider in ~/.local/share/opencode/auth.json
 *   google     GEMINI_API_KEY, GOOGLE_API_KEY, then ~/.gemini/.env (Gemini CLI)
 *   dashscope  DASHSCOPE_API_KEY, QWEN_API_KEY, then ~/.qwen/.env (Qwen Code,
 *              whose OPENAI_API_KEY there counts for openai when nothing
 *              else gave one)
 *   cursor     CURSOR_API_KEY
 *   (any)      Pi's ~/.pi/agent/auth.json, keyed by provider like OpenCode's
 * A provider found once keeps its first source.
 *
 * Missing or unreadable files are skipped; expired OAuth tokens are not
 * reported.  Nothing here prints: secrets leave only through the caller,
 * and credentials_mask() is how they should leave by default. */
#ifndef SJ_CREDENTIALS_H
#define SJ_CREDENTIALS_H

#include "base/err.h"

#include <stddef.h>

enum credentials_auth {
    CREDENTIALS_API_KEY,
    CREDENTIALS_OAUTH,
};

/* One credential.  Strings are owned by the entry; provider is NULL for an
 * empty slot. */
struct credentials_entry {
    char *provider; /* "anthropic", "openai", or an OpenCode provider name */
    char *source;   /* "environment", "claude-code", "codex", "opencode", "amp", "gemini",
                     * "qwen" or "pi" */
    char *location; /* the variable or file it came from, e.g. "$OPENAI_API_KEY" */
    enum credentials_auth auth;
    char *secret;   /* the key or token itself: never print it unmasked unasked */
};

struct credentials_set {
    struct credentials_entry anthropic;
    struct credentials_entry openai;
    struct credentials_entry *other; /* sorted by provider name */
    size_t n_other;
};

struct credentials_options {
    const char *home_dir; /* where the agents' files are looked for (required) */
    int include_oauth;    /* also report OAuth access tokens */
    long long now_ms;     /* "now" for OAuth expiry, ms since the epoch; 0: the clock */
};

/* Fills *out (zeroed first) from the process environment and the files
 * under o->home_dir.  0, or ERR_NOMEM / ERR_INVALID (no home directory).
 * new: *out's strings are released with credentials_set_clear(). */
int credentials_extract(const struct credentials_options *o, struct credentials_set *out,
                        struct err *err);

/* Wipes the secrets and frees everything `s` owns; `s` is left empty. */
void credentials_set_clear(struct credentials_set *s);

/* borrowed from `s`: the credential for `provider`, or NULL. */
const struct credentials_entry *credentials_find(const struct credentials_set *s,
                                                 const char *provider);

/* The credential an agent ("claude", "codex", "opencode", "amp", "qwen",
 * "pi", "gemini", "cursor") would use,
 * narrowed to `provider` if non-NULL, chosen as the reference CLI chooses.
 * borrowed: *out points into `s`.  ERR_INVALID (unknown agent, provider the
 * agent cannot use, several candidates) or ERR_NOT_FOUND, with a message. */
int credentials_for_agent(const struct credentials_set *s, const char *agent,
                          const char *provider, const struct credentials_entry **out,
                          struct err *err);

/* new (free()): a display form of `secret` that does not give it away:
 * "****" when it is shorter than 24 characters or not printable ASCII,
 * else its first and last four characters around "...".  NULL if memory
 * ran out. */
char *credentials_mask(const char *secret);

/* "api_key" or "oauth". */
const char *credentials_auth_name(enum credentials_auth auth);

/* new (free()): the environment variable a provider's key goes in,
 * e.g. "GROQ_API_KEY" for "groq" and "AZURE_OPENAI_API_KEY" for
 * "azure-openai"; NULL when the name has no letter or digit or memory ran
 * out. */
char *credentials_env_name(const char *provider);

#endif
