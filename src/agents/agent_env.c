/* Agent process environments; see agent_env.h. */
#include "base/datadir.h"
#include "agents/agent_env.h"

#include "agents/credentials.h"
#include "agents/install.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agent_env_init(struct agent_env *e)
{
    memset(e, 0, sizeof *e);
}

void agent_env_free(struct agent_env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        /* Credentials live here: do not leave them in freed memory. */
        volatile char *p = e->vars[i];
        while (*p)
            *p++ = '\0';
        free(e->vars[i]);
    }
    free(e->vars);
    agent_env_init(e);
}

void agent_env_set(struct agent_env *e, const char *name, const char *value)
{
    size_t nlen = strlen(name);
    char *var = malloc(nlen + strlen(value) + 2);
    if (!var) {
        e->failed = 1;
        return;
    }
    memcpy(var, name, nlen);
    var[nlen] = '=';
    strcpy(var + nlen + 1, value);
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->vars[i], name, nlen) == 0 && e->vars[i][nlen] == '=') {
            free(e->vars[i]);
            e->vars[i] = var;
            return;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 32;
        char **v = realloc(e->vars, cap * sizeof *v);
        if (!v) {
            free(var);
            e->failed = 1;
            return;
        }
        e->vars = v;
        e->cap = cap;
    }
    e->vars[e->n++] = var;
    e->vars[e->n] = NULL;
}

void agent_env_pass(struct agent_env *e, const char *name)
{
    const char *v = getenv(name);
    if (v)
        agent_env_set(e, name, v);
}

void agent_env_pass_common(struct agent_env *e)
{
    static const char *const names[] = {
        "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL",
        "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
        "ALL_PROXY", "all_proxy",
    };
    const char *path = getenv("PATH");
    agent_env_set(e, "PATH",
                  path && *path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        agent_env_pass(e, names[i]);
}

void agent_env_credential(struct agent_env *e, const char *provider, const char *key_var,
                          const char *oauth_var)
{
    const char *home = getenv("HOME");
    struct credentials_options o = { .home_dir = home && *home ? home : "/nonexistent",
                                     .include_oauth = oauth_var != NULL };
    struct credentials_set set;
    if (credentials_extract(&o, &set, NULL) != 0)
        return; /* nothing usable: the agent reports its own auth failure */
    const struct credentials_entry *c = credentials_find(&set, provider);
    if (c && c->secret) {
        if (c->auth == CREDENTIALS_API_KEY)
            agent_env_set(e, key_var, c->secret);
        else if (oauth_var)
            agent_env_set(e, oauth_var, c->secret);
    }
    credentials_set_clear(&set);
}

char *const *agent_env_finish(struct agent_env *e, struct err *err)
{
    if (!e->failed && !e->vars) {
        e->vars = calloc(1, sizeof *e->vars);
        if (!e->vars)
            e->failed = 1;
    }
    if (e->failed) {
        err_set(err, ERR_NOMEM, "out of memory building an agent's environment");
        return NULL;
    }
    return e->vars;
}

int agent_env_home(const char *data_dir, const char *agent, char out[PATH_MAX],
                   struct err *err)
{
    int n = snprintf(out, PATH_MAX, "%s/homes/%s", data_dir, agent);
    if (n < 0 || n >= PATH_MAX)
        return err_set(err, ERR_INTERNAL, "data directory path too long");
    if (datadir_mkdirs(out) != 0)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", out, strerror(errno));
    return 0;
}
