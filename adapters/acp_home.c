/* Per-agent preparation of the built-in ACP agents; see acp_home.h. */
#include "adapters/acp_home.h"

#include "base/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Pi's model when the session names none and OPENAI_MODEL is unset: a
 * provider needs at least one model id, and an OpenAI-compatible endpoint
 * decides what an unknown one means. */
#define ACP_HOME_PI_MODEL "default"

/* Writes `doc` to `path` (0600, replaced whole). */
static int acp_home_write(const char *path, json_t *doc, struct err *err)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return err_set(err, ERR_INTERNAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
    char *text = json_dumps(doc, JSON_INDENT(2));
    size_t len = text ? strlen(text) : 0;
    int ok = text && write(fd, text, len) == (ssize_t)len;
    int saved = errno, nomem = !text;
    free(text);
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) == 0)
        return 0;
    if (ok)
        saved = errno;
    if (unlink(tmp) != 0)
        fprintf(stderr, "sandbox-journal: cannot remove %s\n", tmp);
    return err_set(err, ERR_INTERNAL, "cannot write %s: %s", path,
                   nomem ? "out of memory" : strerror(saved));
}

static int acp_home_pi(const char *binary, const char *home, const char *model,
                       struct agent_env *env, struct err *err)
{
    char pi[PATH_MAX];
    const char *slash = strrchr(binary, '/');
    if (slash && snprintf(pi, sizeof pi, "%.*s/pi", (int)(slash - binary), binary) <
                     (int)sizeof pi &&
        access(pi, X_OK) == 0)
        agent_env_set(env, "PI_ACP_PI_COMMAND", pi);
    agent_env_set(env, "PI_OFFLINE", "1");
    agent_env_set(env, "PI_SKIP_VERSION_CHECK", "1");

    const char *base_url = getenv("OPENAI_BASE_URL");
    if (!base_url || !*base_url)
        return 0; /* pi's own providers and keys, as the user set them up */
    if (!model || !*model)
        model = getenv("OPENAI_MODEL");
    if (!model || !*model)
        model = ACP_HOME_PI_MODEL;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    if (snprintf(dir, sizeof dir, "%s/.pi/agent", home) >= (int)sizeof dir)
        return err_set(err, ERR_INTERNAL, "path too long: %s", home);
    if (datadir_mkdirs(dir) != 0)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    /* Chat completions without the developer role or reasoning_effort:
     * what every OpenAI-compatible server understands. */
    json_t *models = json_pack(
        "{s:{s:{s:s, s:s, s:s, s:{s:b, s:b}, s:[{s:s, s:s}]}}}", "providers", "sj", "baseUrl",
        base_url, "api", "openai-completions", "apiKey", "OPENAI_API_KEY", "compat",
        "supportsDeveloperRole", 0, "supportsReasoningEffort", 0, "models", "id", model, "name",
        model);
    json_t *settings = json_pack("{s:s, s:s, s:b, s:b}", "defaultProvider", "sj",
                                 "defaultModel", model, "quietStartup", 1,
                                 "enableInstallTelemetry", 0);
    int rc = 0;
    if (!models || !settings)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (!rc) {
        snprintf(path, sizeof path, "%s/models.json", dir);
        rc = acp_home_write(path, models, err);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/settings.json", dir);
        rc = acp_home_write(path, settings, err);
    }
    json_decref(models);
    json_decref(settings);
    return rc;
}

/* Writes home/<dir>/settings.json turning usage statistics off, unless a
 * settings file is there already (then it is the user's to keep). */
static int acp_home_no_statistics(const char *home, const char *dir, struct err *err)
{
    char path[PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", home, dir) >= (int)sizeof path - 16)
        return err_set(err, ERR_INTERNAL, "path too long: %s", home);
    if (datadir_mkdirs(path) != 0)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    strcat(path, "/settings.json");
    if (access(path, F_OK) == 0)
        return 0;
    json_t *settings = json_pack("{s:{s:b}}", "privacy", "usageStatisticsEnabled", 0);
    if (!settings)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = acp_home_write(path, settings, err);
    json_decref(settings);
    return rc;
}

int adapter_acp_home_prepare(const char *agent, const char *binary, const char *home,
                             const char *model, struct agent_env *env, struct err *err)
{
    if (strcmp(agent, "pi") == 0)
        return acp_home_pi(binary, home, model, env, err);
    /* Both restart themselves in a child node with a larger heap; killed,
     * the parent leaves that child holding our pipes, and stopping the
     * session (or the server) waits for it. */
    /* Their usage statistics go to their vendors' collectors by default. */
    if (strcmp(agent, "qwen") == 0) {
        agent_env_set(env, "QWEN_CODE_NO_RELAUNCH", "true");
        return acp_home_no_statistics(home, ".qwen", err);
    }
    if (strcmp(agent, "gemini") == 0) {
        agent_env_set(env, "GEMINI_CLI_NO_RELAUNCH", "true");
        return acp_home_no_statistics(home, ".gemini", err);
    }
    return 0;
}
