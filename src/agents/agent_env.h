/* The environment an agent CLI runs with: only what it needs.
 *
 * An agent process never inherits the server's environment wholesale (it
 * may hold the server's token, database URLs, other tools' keys).  It gets
 * the few variables a command-line program and its shell tools expect
 * (PATH, locale, time zone, temp dir, user, proxies), a private HOME (or
 * CODEX_HOME) under the data directory, the model endpoint and credential
 * for its provider, and the switches that keep it from calling home.
 *
 * Builders record an allocation failure and report it once at
 * agent_env_finish(), so a list of calls needs one check.  No locking:
 * each builder belongs to one caller.  Thread: any (getenv only). */
#ifndef SJ_AGENT_ENV_H
#define SJ_AGENT_ENV_H

#include "base/err.h"

#include <limits.h>
#include <stddef.h>

struct agent_env {
    char **vars; /* "NAME=value", owned; NULL-terminated after finish */
    size_t n;
    size_t cap;
    int failed;
};

void agent_env_init(struct agent_env *e);
void agent_env_free(struct agent_env *e);

/* Sets NAME=value (copied), replacing an earlier NAME. */
void agent_env_set(struct agent_env *e, const char *name, const char *value);

/* Copies NAME from the server's environment, if it is set there. */
void agent_env_pass(struct agent_env *e, const char *name);

/* PATH, LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR, USER, LOGNAME, SHELL and the
 * proxy variables (http_proxy, HTTPS_PROXY, NO_PROXY, ...), from the
 * server's environment where set; PATH defaults to the usual system one. */
void agent_env_pass_common(struct agent_env *e);

/* Adds the agent's credential for `provider` ("anthropic" or "openai") as
 * credentials.h finds it (the server's environment first, then the agents'
 * files under the server's HOME): api keys go to `key_var`, OAuth tokens
 * to `oauth_var` (NULL: not used).  Nothing found is not an error (the
 * agent then reports its own authentication failure). */
void agent_env_credential(struct agent_env *e, const char *provider, const char *key_var,
                          const char *oauth_var);

/* borrowed: the NULL-terminated array for uv_spawn, or NULL with ERR_NOMEM
 * in err if any builder call ran out of memory. */
char *const *agent_env_finish(struct agent_env *e, struct err *err);

/* Writes <data_dir>/homes/<agent> into out[PATH_MAX] and creates it (0700):
 * the agent's private HOME, kept across restarts because agents keep their
 * conversations there (resume).  0, or ERR_INTERNAL with the reason. */
int agent_env_home(const char *data_dir, const char *agent, char out[PATH_MAX],
                   struct err *err);

#endif
