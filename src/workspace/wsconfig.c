/* MCP and skills configuration: the shapes checked, the directory keyed, the
 * journal asked. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "workspace/wsconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WSCONFIG_NAME_MAX 128

const char *wsconfig_kind_name(enum wsconfig_kind kind)
{
    return kind == WSCONFIG_MCP ? "mcp" : "skills";
}

/* Folds "//", "/./", "/x/../" and a trailing "/" of an absolute path in place. */
static void wsconfig_fold(char *path)
{
    char *out = path; /* path[0] is '/' */
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        if (len == 1 && seg[0] == '.')
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > path && *--out != '/')
                ;
            continue;
        }
        *out++ = '/';
        memmove(out, seg, len);
        out += len;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

int wsconfig_directory(const char *dir, char **out, struct err *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return err_set(err, ERR_INVALID, "directory is required");
    size_t len = strlen(dir);
    char cwd[PATH_MAX];
    size_t base = 0;
    if (dir[0] != '/') {
        if (!getcwd(cwd, sizeof cwd))
            return err_set(err, ERR_INTERNAL, "cannot read the working directory");
        base = strlen(cwd);
    }
    if (len >= PATH_MAX - base - 1)
        return err_set(err, ERR_INVALID, "directory is too long");
    char *path = malloc(base + len + 2);
    if (!path)
        return err_set(err, ERR_NOMEM, "out of memory");
    if (base) {
        memcpy(path, cwd, base);
        path[base] = '/';
        memcpy(path + base + 1, dir, len + 1);
    } else {
        memcpy(path, dir, len + 1);
    }
    char real[PATH_MAX];
    if (realpath(path, real)) {
        free(path);
        path = strdup(real);
        if (!path)
            return err_set(err, ERR_NOMEM, "out of memory");
    } else {
        /* Not there (yet): the entry still applies once it is created. */
        wsconfig_fold(path);
    }
    *out = path;
    return 0;
}

int wsconfig_name_check(const char *name, struct err *err)
{
    size_t len = name ? strlen(name) : 0;
    if (!len || len > WSCONFIG_NAME_MAX)
        return err_set(err, ERR_INVALID, "the entry name must be 1 to %d bytes",
                       WSCONFIG_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return err_set(err, ERR_INVALID, "the entry name has a control character");
    return 0;
}

/* `key` of `obj` is absent, null, or of the JSON type `type`. */
static int wsconfig_opt(const json_t *obj, const char *key, json_type type, struct err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v)))
        return 0;
    return err_set(err, ERR_INVALID, "%s has the wrong type", key);
}

/* `key` is absent, null, or an object whose values are all strings. */
static int wsconfig_str_map(const json_t *obj, const char *key, struct err *err)
{
    int rc = wsconfig_opt(obj, key, JSON_OBJECT, err);
    if (rc)
        return rc;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        if (strcmp(name, key) != 0 || !json_is_object(v))
            continue;
        const char *k;
        const json_t *s;
        json_object_foreach((json_t *)v, k, s) {
            if (!json_is_string(s))
                return err_set(err, ERR_INVALID, "%s.%s must be a string", key, k);
        }
    }
    return 0;
}

/* `key` is absent, null, or an array of strings. */
static int wsconfig_str_list(const json_t *obj, const char *key, struct err *err)
{
    int rc = wsconfig_opt(obj, key, JSON_ARRAY, err);
    if (rc)
        return rc;
    const json_t *arr = json_object_get(obj, key);
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            return err_set(err, ERR_INVALID, "%s[%zu] must be a string", key, i);
    }
    return 0;
}

static int wsconfig_req_str(const json_t *obj, const char *key, struct err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || !json_string_length(v))
        return err_set(err, ERR_INVALID, "%s is required (a non-empty string)", key);
    return 0;
}

static int wsconfig_check_mcp(const json_t *body, struct err *err)
{
    const char *type = json_string_value(json_object_get(body, "type"));
    int rc;
    if (!type)
        return err_set(err, ERR_INVALID, "type is required: \"local\" or \"remote\"");
    if ((rc = wsconfig_opt(body, "enabled", JSON_TRUE, err)) ||
        (rc = wsconfig_opt(body, "timeoutMs", JSON_INTEGER, err)))
        return rc;
    if (strcmp(type, "local") == 0) {
        if ((rc = wsconfig_req_str(body, "command", err)) ||
            (rc = wsconfig_str_list(body, "args", err)) ||
            (rc = wsconfig_str_map(body, "env", err)) ||
            (rc = wsconfig_opt(body, "cwd", JSON_STRING, err)))
            return rc;
        return 0;
    }
    if (strcmp(type, "remote") == 0) {
        if ((rc = wsconfig_req_str(body, "url", err)) ||
            (rc = wsconfig_str_map(body, "headers", err)) ||
            (rc = wsconfig_str_map(body, "envHeaders", err)) ||
            (rc = wsconfig_opt(body, "bearerTokenEnvVar", JSON_STRING, err)) ||
            (rc = wsconfig_opt(body, "transport", JSON_STRING, err)) ||
            (rc = wsconfig_opt(body, "oauth", JSON_OBJECT, err)))
            return rc;
        return 0;
    }
    return err_set(err, ERR_INVALID, "type must be \"local\" or \"remote\", not \"%.32s\"",
                   type);
}

static int wsconfig_check_skills(const json_t *body, struct err *err)
{
    const json_t *sources = json_object_get(body, "sources");
    if (!json_is_array(sources))
        return err_set(err, ERR_INVALID, "sources is required (an array)");
    size_t i;
    const json_t *src;
    json_array_foreach(sources, i, src) {
        int rc;
        if (!json_is_object(src))
            return err_set(err, ERR_INVALID, "sources[%zu] must be an object", i);
        if ((rc = wsconfig_req_str(src, "type", err)) ||
            (rc = wsconfig_req_str(src, "source", err)) ||
            (rc = wsconfig_opt(src, "ref", JSON_STRING, err)) ||
            (rc = wsconfig_opt(src, "subpath", JSON_STRING, err)) ||
            (rc = wsconfig_str_list(src, "skills", err)))
            return rc;
    }
    return 0;
}

int wsconfig_check(enum wsconfig_kind kind, const json_t *body, struct err *err)
{
    if (!json_is_object(body))
        return err_set(err, ERR_INVALID, "the body must be a JSON object");
    return kind == WSCONFIG_MCP ? wsconfig_check_mcp(body, err)
                                : wsconfig_check_skills(body, err);
}

int wsconfig_put(journal_t *j, enum wsconfig_kind kind, const char *directory,
                 const char *name, const json_t *body, struct err *err)
{
    char *dir = NULL;
    int rc;
    if ((rc = wsconfig_name_check(name, err)) || (rc = wsconfig_check(kind, body, err)) ||
        (rc = wsconfig_directory(directory, &dir, err)))
        return rc;
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    else
        rc = journal_config_put(j, wsconfig_kind_name(kind), dir, name, text, err);
    free(text);
    free(dir);
    return rc;
}

int wsconfig_get(journal_t *j, enum wsconfig_kind kind, const char *directory,
                 const char *name, json_t **out, struct err *err)
{
    *out = NULL;
    char *dir = NULL, *text = NULL;
    int rc;
    if ((rc = wsconfig_name_check(name, err)) || (rc = wsconfig_directory(directory, &dir, err)))
        return rc;
    journal_reader_t *r = journal_reader_for_thread(j, err);
    rc = r ? journal_config_get(r, wsconfig_kind_name(kind), dir, name, &text, err) : err->code;
    if (rc == ERR_NOT_FOUND)
        rc = err_set(err, ERR_CONFIG_NOT_FOUND, "no %s entry named %s for %s",
                     wsconfig_kind_name(kind), name, dir);
    if (rc == 0) {
        json_error_t jerr;
        *out = json_loads(text, 0, &jerr);
        if (!*out)
            rc = err_set(err, ERR_STORAGE, "stored %s entry %s is not JSON: %s",
                         wsconfig_kind_name(kind), name, jerr.text);
    }
    free(text);
    free(dir);
    return rc;
}

int wsconfig_delete(journal_t *j, enum wsconfig_kind kind, const char *directory,
                    const char *name, struct err *err)
{
    char *dir = NULL;
    int rc;
    if ((rc = wsconfig_name_check(name, err)) || (rc = wsconfig_directory(directory, &dir, err)))
        return rc;
    rc = journal_config_delete(j, wsconfig_kind_name(kind), dir, name, err);
    free(dir);
    return rc;
}
