/* Per-agent preparation of the built-in ACP agents; see acp_home.h. */
#include "adapters/acp_home.h"

#include "base/datadir.h"

#include <dirent.h>
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

/* Writes home/<dir>/settings.json (`settings`, stolen) unless a settings
 * file is there already (then it is the user's to keep). */
static int acp_home_settings(const char *home, const char *dir, json_t *settings,
                             struct err *err)
{
    char path[PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", home, dir) >= (int)sizeof path - 16)
        return err_set(err, ERR_INTERNAL, "path too long: %s", home);
    if (datadir_mkdirs(path) != 0)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    strcat(path, "/settings.json");
    if (access(path, F_OK) == 0) {
        json_decref(settings);
        return 0;
    }
    if (!settings)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = acp_home_write(path, settings, err);
    json_decref(settings);
    return rc;
}

/* Gemini CLI 0.61.0 names a session's chat file after the minute it was
 * started, session-YYYY-MM-DDTHH-MM-<first 8 of the id>.jsonl, and a
 * process that starts (for session/load too) first appends a fresh start
 * of the session to that name.  When a session is loaded within the
 * minute it was created, that fresh start lands in the same file and
 * hides the conversation: session/load answers "Invalid session
 * identifier".  Moving each such file to a name no process will create
 * (an "-r" after the minute; Gemini CLI finds sessions by the "session-"
 * prefix and the id's suffix) keeps every conversation loadable.  A name
 * that is taken already stays as it is: only a fresh start can be left
 * there, and a fresh start has nothing to hide. */
static void acp_home_gemini_chats(const char *home)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.gemini/tmp", home) >= (int)sizeof path)
        return;
    DIR *projects = opendir(path);
    if (!projects)
        return; /* no session yet */
    const struct dirent *p;
    while ((p = readdir(projects))) {
        if (p->d_name[0] == '.')
            continue;
        char chats[PATH_MAX];
        if (snprintf(chats, sizeof chats, "%s/%s/chats", path, p->d_name) >= (int)sizeof chats)
            continue;
        DIR *d = opendir(chats);
        if (!d)
            continue;
        const struct dirent *f;
        while ((f = readdir(d))) {
            const char *n = f->d_name;
            if (strlen(n) != 39 || strncmp(n, "session-", 8) != 0 || n[24] != '-' ||
                strcmp(n + 33, ".jsonl") != 0)
                continue;
            char from[PATH_MAX], to[PATH_MAX];
            if (snprintf(from, sizeof from, "%s/%s", chats, n) >= (int)sizeof from ||
                snprintf(to, sizeof to, "%s/%.24s-r%s", chats, n, n + 24) >= (int)sizeof to)
                continue;
            if (link(from, to) == 0) {
                if (unlink(from) != 0)
                    fprintf(stderr, "sandbox-journal: cannot remove %s: %s\n", from,
                            strerror(errno));
            } else if (errno != EEXIST) {
                fprintf(stderr, "sandbox-journal: cannot rename %s: %s\n", from, strerror(errno));
            }
        }
        closedir(d);
    }
    closedir(projects);
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
        return acp_home_settings(home, ".qwen",
                                 json_pack("{s:{s:b}}", "privacy", "usageStatisticsEnabled", 0),
                                 err);
    }
    if (strcmp(agent, "gemini") == 0) {
        agent_env_set(env, "GEMINI_CLI_NO_RELAUNCH", "true");
        /* The session's model by name: Gemini CLI's default ("auto") first
         * asks a classifier model which model to use, a request of its own
         * to the endpoint. */
        if (model && *model)
            agent_env_set(env, "GEMINI_MODEL", model);
        acp_home_gemini_chats(home);
        /* Usage statistics go to play.googleapis.com unless switched off
         * (strace of 0.61.0: with this file it connects to nothing but
         * GOOGLE_GEMINI_BASE_URL); the update check and telemetry are off
         * too, so no future default reaches out either. */
        return acp_home_settings(
            home, ".gemini",
            json_pack("{s:{s:b},s:{s:b,s:b},s:{s:b}}", "privacy", "usageStatisticsEnabled", 0,
                      "general", "enableAutoUpdate", 0, "enableAutoUpdateNotification", 0,
                      "telemetry", "enabled", 0),
            err);
    }
    return 0;
}
