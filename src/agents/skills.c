/* Skills: sources resolved to skill directories, and the layouts agents
 * read them from (see skills.h). */
#define _XOPEN_SOURCE 700 /* nftw, realpath */
#include "agents/skills.h"

#include "agents/install.h"
#include "base/buf.h"
#include "base/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKILLS_NAME_MAX 64
#define SKILLS_MD_MAX (1024 * 1024)
#define SKILLS_GIT_TIMEOUT_MS (5 * 60 * 1000)

/* ---- SKILL.md front matter ---------------------------------------------- */

/* The line at *p (without its "\n" or "\r\n"): *line, *n; *p moves past it.
 * 0 at the end of the text. */
static int skills_next_line(const char **p, const char *end, const char **line, size_t *n)
{
    if (*p >= end)
        return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    *line = *p;
    *n = (size_t)(stop - *p);
    if (*n && (*line)[*n - 1] == '\r')
        (*n)--;
    *p = nl ? nl + 1 : end;
    return 1;
}

static int skills_is_fence(const char *line, size_t n)
{
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    return n == 3 && memcmp(line, "---", 3) == 0;
}

static void skills_trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* new: a plain scalar with its quotes taken off (YAML's '' in single quotes
 * and the common backslash escapes in double quotes). */
static char *skills_scalar(const char *v, size_t n)
{
    char *out = malloc(n + 1), *w = out;
    if (!out)
        return NULL;
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        char q = v[0];
        for (size_t i = 1; i + 1 < n; i++) {
            if (q == '\'' && v[i] == '\'' && i + 2 < n && v[i + 1] == '\'')
                i++;
            else if (q == '"' && v[i] == '\\' && i + 2 < n) {
                i++;
                *w++ = v[i] == 'n' ? '\n' : v[i] == 't' ? '\t' : v[i];
                continue;
            }
            *w++ = v[i];
        }
    } else {
        memcpy(w, v, n);
        w += n;
    }
    *w = '\0';
    return out;
}

int skills_front_matter(const char *text, size_t len, char **name, char **description,
                        struct err *err)
{
    const char *p = text, *end = text + len, *line;
    size_t n;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* a byte order mark some editors write */
    if (!skills_next_line(&p, end, &line, &n) || !skills_is_fence(line, n))
        return err_set(err, ERR_INVALID, "SKILL.md has no front matter (a first line \"---\")");
    char *found[2] = { NULL, NULL }; /* name, description */
    int closed = 0;
    int rc = 0;
    while (!rc && skills_next_line(&p, end, &line, &n)) {
        if (skills_is_fence(line, n)) {
            closed = 1;
            break;
        }
        if (!n || line[0] == ' ' || line[0] == '\t' || line[0] == '#')
            continue; /* nested values and comments: not ours */
        const char *colon = memchr(line, ':', n);
        if (!colon)
            continue;
        size_t klen = (size_t)(colon - line);
        int which = klen == 4 && memcmp(line, "name", 4) == 0          ? 0
                    : klen == 11 && memcmp(line, "description", 11) == 0 ? 1
                                                                        : -1;
        if (which < 0 || found[which])
            continue;
        const char *v = colon + 1;
        size_t vn = n - klen - 1;
        skills_trim(&v, &vn);
        if (vn && (v[0] == '>' || v[0] == '|')) {
            /* A block scalar: its indented lines, joined by spaces (folded)
             * or newlines (literal). */
            char sep = v[0] == '>' ? ' ' : '\n';
            struct buf b;
            buf_init(&b);
            const char *q = p, *l;
            size_t ln;
            while (!rc && skills_next_line(&q, end, &l, &ln) &&
                   (ln == 0 || l[0] == ' ' || l[0] == '\t') && !skills_is_fence(l, ln)) {
                p = q;
                skills_trim(&l, &ln);
                if (!ln)
                    continue;
                if ((b.len && buf_append(&b, &sep, 1)) || buf_append(&b, l, ln))
                    rc = err_set(err, ERR_NOMEM, "out of memory");
            }
            found[which] = rc ? NULL : buf_steal(&b);
            buf_free(&b);
            if (!rc && !found[which] && !(found[which] = strdup("")))
                rc = err_set(err, ERR_NOMEM, "out of memory");
        } else if (!(found[which] = skills_scalar(v, vn))) {
            rc = err_set(err, ERR_NOMEM, "out of memory");
        }
    }
    if (!rc && !closed)
        rc = err_set(err, ERR_INVALID, "SKILL.md's front matter has no closing \"---\"");
    if (rc) {
        free(found[0]);
        free(found[1]);
        return rc;
    }
    *name = found[0];
    *description = found[1];
    return 0;
}

int skills_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SKILLS_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int skills_selected(const json_t *source, const char *name)
{
    const json_t *only = json_object_get(source, "skills");
    if (!json_is_array(only))
        return 1;
    size_t i;
    const json_t *v;
    json_array_foreach(only, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

void skills_git_key(const char *source, const char *ref, char out[33])
{
    struct sha256 s;
    unsigned char d[SHA256_DIGEST_LEN];
    sha256_init(&s);
    sha256_update(&s, source, strlen(source) + 1); /* the NUL keeps ("ab","c") from ("a","bc") */
    if (ref)
        sha256_update(&s, ref, strlen(ref));
    sha256_final(&s, d);
    for (size_t i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- resolving ------------------------------------------------------------ */

struct skills_run {
    const json_t *source; /* the SkillsConfig source being resolved */
    const char *config;   /* its SkillsConfig's name, for problems */
    json_t *skills, *problems;
    json_t *seen_in_source; /* names this source yielded, for its filter */
    int nomem;
};

static void skills_problem(struct skills_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void skills_problem(struct skills_run *r, const char *fmt, ...)
{
    char msg[600];
    int n = snprintf(msg, sizeof msg, "skills \"%s\": ", r->config);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof msg)
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (json_array_append_new(r->problems, json_string(msg)) != 0)
        r->nomem = 1;
}

static int skills_has_name(const json_t *skills, const char *name)
{
    size_t i;
    const json_t *s;
    json_array_foreach(skills, i, s) {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return 1;
    }
    return 0;
}

/* new: SKILL.md of `dir`, NUL-terminated, or NULL (*len 0) if unreadable. */
static char *skills_read_md(const char *dir, size_t *len)
{
    char path[PATH_MAX];
    *len = 0;
    if (snprintf(path, sizeof path, "%s/SKILL.md", dir) >= (int)sizeof path)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = malloc(SKILLS_MD_MAX + 1);
    size_t n = text ? fread(text, 1, SKILLS_MD_MAX, f) : 0;
    fclose(f);
    if (text) {
        text[n] = '\0';
        *len = n;
    }
    return text;
}

static int skills_has_md(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    return snprintf(path, sizeof path, "%s/SKILL.md", dir) < (int)sizeof path &&
           stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Adds the skill in `dir` (which holds SKILL.md) if the filter keeps it. */
static void skills_add(struct skills_run *r, const char *dir)
{
    size_t len;
    char *text = skills_read_md(dir, &len);
    if (!text) {
        skills_problem(r, "cannot read %s/SKILL.md: %s", dir, strerror(errno));
        return;
    }
    char *name = NULL, *description = NULL;
    struct err e;
    int rc = skills_front_matter(text, len, &name, &description, &e);
    free(text);
    if (rc == ERR_NOMEM) {
        r->nomem = 1;
        return;
    }
    if (rc) {
        skills_problem(r, "%s: %s", dir, e.msg);
        return;
    }
    if (!name) {
        const char *base = strrchr(dir, '/');
        name = strdup(base ? base + 1 : dir);
    }
    if (!name) {
        r->nomem = 1;
    } else if (!skills_name_ok(name)) {
        skills_problem(r, "%s: the name \"%.64s\" is not 1-64 of [A-Za-z0-9._-]", dir, name);
    } else if (skills_selected(r->source, name)) {
        if (json_array_append_new(r->seen_in_source, json_string(name)) != 0)
            r->nomem = 1;
        else if (skills_has_name(r->skills, name))
            skills_problem(r, "a skill named %s is already configured; %s is left out", name,
                           dir);
        else if (json_array_append_new(r->skills,
                                       json_pack("{s:s,s:s,s:s}", "name", name, "description",
                                                 description ? description : "", "path",
                                                 dir)) != 0)
            r->nomem = 1;
    }
    free(name);
    free(description);
}

static int skills_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `root` is one skill, or a folder of skills (its subdirectories holding
 * SKILL.md, in name order so the result does not depend on the disk). */
static void skills_scan(struct skills_run *r, const char *root)
{
    if (skills_has_md(root)) {
        skills_add(r, root);
        return;
    }
    DIR *d = opendir(root);
    if (!d) {
        skills_problem(r, "cannot open %s: %s", root, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            char **grown = realloc(names, ncap * sizeof *names);
            if (!grown) {
                r->nomem = 1;
                break;
            }
            names = grown;
            cap = ncap;
        }
        if (!(names[n] = strdup(ent->d_name))) {
            r->nomem = 1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, skills_cmp);
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[PATH_MAX];
        if (!r->nomem && snprintf(dir, sizeof dir, "%s/%s", root, names[i]) < (int)sizeof dir &&
            skills_has_md(dir)) {
            any = 1;
            skills_add(r, dir);
        }
        free(names[i]);
    }
    free(names);
    if (!any && !r->nomem)
        skills_problem(r, "no SKILL.md in %s or its subdirectories", root);
}

/* 1 if `subpath` stays inside its root: relative, no ".." component. */
static int skills_subpath_ok(const char *subpath)
{
    if (subpath[0] == '/')
        return 0;
    for (const char *p = subpath; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += n;
        while (*p == '/')
            p++;
    }
    return 1;
}

static int skills_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT;
}

/* Removes `path` and everything below it (symbolic links not followed). */
static int skills_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, skills_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 ? -1 : 0;
}

static int skills_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Runs git; on failure a problem with git's own last words. */
static int skills_git(struct skills_run *r, const char *const *argv, const char *what)
{
    struct buf tail;
    int status = 0;
    buf_init(&tail);
    int rc = install_run_command(argv, SKILLS_GIT_TIMEOUT_MS, &tail, &status);
    int ok = rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        const char *out = tail.len && buf_append(&tail, "", 1) == 0 ? tail.data : "";
        size_t n = strlen(out);
        while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
            n--;
        if (rc != 0)
            skills_problem(r, "%s: cannot run git: %s", what, strerror(errno));
        else
            skills_problem(r, "%s failed: %.*s", what, (int)(n > 300 ? 300 : n),
                           n > 300 ? out + n - 300 : out);
    }
    buf_free(&tail);
    return ok ? 0 : -1;
}

/* The clone of a git source in the cache, made now if missing: *out. */
static int skills_git_clone(struct skills_run *r, const char *url, const char *ref,
                            const char *cache, char out[PATH_MAX])
{
    char key[33], tmp[PATH_MAX + 32];
    skills_git_key(url, ref, key);
    struct stat st;
    if (snprintf(out, PATH_MAX, "%s/%s", cache, key) >= PATH_MAX) {
        skills_problem(r, "the git cache path is too long");
        return -1;
    }
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (skills_mkdirs(cache) != 0) {
        skills_problem(r, "cannot create %s: %s", cache, strerror(errno));
        return -1;
    }
    /* Cloned beside its place and renamed into it: a clone cut short never
     * looks like a finished one, and two sessions cloning at once both end
     * with one whole clone. */
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
    static atomic_uint counter;
    size_t tl = strlen(tmp);
    snprintf(tmp + tl, sizeof tmp - tl, "-%u", atomic_fetch_add(&counter, 1));
    /* No prompt for credentials: the server has nobody to ask. */
    const char *clone[] = { "git", "-c", "core.askPass=false", "clone", "--quiet", "--", url,
                            tmp, NULL };
    char what[400];
    snprintf(what, sizeof what, "git clone %.300s", url);
    int rc = skills_git(r, clone, what);
    if (rc == 0 && ref) {
        const char *checkout[] = { "git", "-C", tmp, "checkout", "--quiet", "--detach", ref,
                                   NULL };
        snprintf(what, sizeof what, "git checkout %.300s", ref);
        rc = skills_git(r, checkout, what);
    }
    if (rc == 0 && rename(tmp, out) != 0 && !(errno == ENOTEMPTY || errno == EEXIST)) {
        skills_problem(r, "cannot rename %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (skills_rm_tree(tmp) != 0)
        fprintf(stderr, "sandbox-journal: cannot remove %s: %s\n", tmp, strerror(errno));
    return rc;
}

static void skills_source(struct skills_run *r, const char *working_dir, const char *cache)
{
    const char *type = json_string_value(json_object_get(r->source, "type"));
    const char *source = json_string_value(json_object_get(r->source, "source"));
    const char *ref = json_string_value(json_object_get(r->source, "ref"));
    const char *subpath = json_string_value(json_object_get(r->source, "subpath"));
    char base[PATH_MAX], root[PATH_MAX];
    if (!type || !source) {
        skills_problem(r, "a source without type or source");
        return;
    }
    if (subpath && !skills_subpath_ok(subpath)) {
        skills_problem(r, "subpath %.200s leaves its source", subpath);
        return;
    }
    if (strcmp(type, "local") == 0) {
        int n = source[0] == '/' ? snprintf(base, sizeof base, "%s", source)
                                 : snprintf(base, sizeof base, "%s/%s", working_dir, source);
        if (n < 0 || n >= (int)sizeof base) {
            skills_problem(r, "the path %.200s is too long", source);
            return;
        }
    } else if (strcmp(type, "git") == 0) {
        /* git would take a leading '-' as one of its options. */
        if (source[0] == '-' || (ref && (!ref[0] || ref[0] == '-'))) {
            skills_problem(r, "git source %.200s or ref %.64s starts with '-'", source,
                           ref ? ref : "");
            return;
        }
        if (skills_git_clone(r, source, ref, cache, base) != 0)
            return;
    } else {
        skills_problem(r, "source type \"%.32s\" is not supported (local or git; a GitHub "
                          "repository is type git with its https URL)",
                       type);
        return;
    }
    if (snprintf(root, sizeof root, "%s%s%s", base, subpath ? "/" : "", subpath ? subpath : "") >=
        (int)sizeof root) {
        skills_problem(r, "the path %.200s is too long", base);
        return;
    }
    char resolved[PATH_MAX];
    if (!realpath(root, resolved)) {
        skills_problem(r, "%s: %s", root, strerror(errno));
        return;
    }
    /* A symbolic link inside a clone could point anywhere; inside a local
     * source the user chose the directory, links and all. */
    char real_base[PATH_MAX];
    if (strcmp(type, "git") == 0 &&
        (!realpath(base, real_base) || strncmp(resolved, real_base, strlen(real_base)) != 0)) {
        skills_problem(r, "subpath %.200s leaves the repository", subpath);
        return;
    }
    skills_scan(r, resolved);
    const json_t *only = json_object_get(r->source, "skills");
    size_t i;
    const json_t *want;
    json_array_foreach(only, i, want) {
        int seen = 0;
        size_t k;
        const json_t *got;
        json_array_foreach(r->seen_in_source, k, got) {
            seen |= json_equal(got, want);
        }
        if (!seen && json_is_string(want))
            skills_problem(r, "no skill named %.64s in %.200s", json_string_value(want), root);
    }
}

int skills_resolve(const json_t *configs, const char *working_dir, const char *git_cache,
                   json_t *skills, json_t *problems)
{
    struct skills_run r = { .skills = skills, .problems = problems };
    const char *name;
    const json_t *config;
    json_object_foreach((json_t *)configs, name, config) {
        r.config = name;
        const json_t *sources = json_object_get(config, "sources");
        size_t i;
        const json_t *src;
        json_array_foreach(sources, i, src) {
            r.source = src;
            r.seen_in_source = json_array();
            if (!r.seen_in_source)
                return ERR_NOMEM;
            skills_source(&r, working_dir, git_cache);
            json_decref(r.seen_in_source);
            if (r.nomem)
                return ERR_NOMEM;
        }
    }
    return 0;
}

/* ---- Claude Code's plugin ---------------------------------------------- */

json_t *skills_claude_manifest(void)
{
    return json_pack("{s:s,s:s,s:s}", "name", "sandbox-journal", "version", "1.0.0",
                     "description", "The skills configured for this session's directory "
                                    "(PUT /v1/config/skills)");
}

int skills_write_claude_plugin(const char *dir, const json_t *skills, struct err *err)
{
    char path[PATH_MAX];
    if (skills_rm_tree(dir) != 0)
        return err_set(err, ERR_INTERNAL, "cannot remove %s: %s", dir, strerror(errno));
    if (snprintf(path, sizeof path, "%s/.claude-plugin", dir) >= (int)sizeof path)
        return err_set(err, ERR_INTERNAL, "path too long: %s", dir);
    if (skills_mkdirs(path) != 0)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    json_t *manifest = skills_claude_manifest();
    if (!manifest)
        return err_set(err, ERR_NOMEM, "out of memory");
    strcat(path, "/plugin.json");
    int rc = json_dump_file(manifest, path, JSON_INDENT(2));
    json_decref(manifest);
    if (rc != 0)
        return err_set(err, ERR_INTERNAL, "cannot write %s", path);
    snprintf(path, sizeof path, "%s/skills", dir);
    if (mkdir(path, 0700) != 0)
        return err_set(err, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    size_t i;
    const json_t *s;
    json_array_foreach(skills, i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *target = json_string_value(json_object_get(s, "path"));
        if (!name || !target || !skills_name_ok(name))
            return err_set(err, ERR_INTERNAL, "skills[%zu] is not a resolved skill", i);
        if (snprintf(path, sizeof path, "%s/skills/%s", dir, name) >= (int)sizeof path)
            return err_set(err, ERR_INTERNAL, "path too long: %s", dir);
        if (symlink(target, path) != 0)
            return err_set(err, ERR_INTERNAL, "cannot link %s: %s", path, strerror(errno));
    }
    return 0;
}
