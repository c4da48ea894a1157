/* The workspace's files (fs.h). */
/* O_TMPFILE (Linux). */
#define _GNU_SOURCE
#include "workspace/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fs_errno(struct err *err, int e, const char *what, const char *path)
{
    int code;
    switch (e) {
    case ENOENT: code = ERR_PATH_NOT_FOUND; break;
    case EEXIST: case ENOTEMPTY: code = ERR_PATH_EXISTS; break;
    case EACCES: case EPERM: case EROFS: code = ERR_PATH_FORBIDDEN; break;
    case EISDIR: case ENOTDIR: case ELOOP: case ENAMETOOLONG: case EXDEV: case EINVAL:
        code = ERR_INVALID;
        break;
    case ENOSPC: case EDQUOT: code = ERR_STORAGE; break;
    case ENOMEM: code = ERR_NOMEM; break;
    default: code = ERR_INTERNAL; break;
    }
    return err_set_subject(err, code, path, "%s %s: %s", what, path, strerror(e));
}

int fs_resolve(const char *path, char **out, struct err *err)
{
    if (!path || !path[0])
        return err_set(err, ERR_INVALID, "invalid request: path is empty");
    char cwd[PATH_MAX] = "";
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd))
        return fs_errno(err, errno, "getcwd for", path);
    size_t cap = strlen(cwd) + strlen(path) + 3;
    char *res = malloc(cap);
    if (!res)
        return err_set(err, ERR_NOMEM, "out of memory");
    size_t o = 0;
    /* Each segment of cwd then path, applied to res ("" is the root). */
    for (int part = 0; part < 2; part++) {
        const char *p = part ? path : cwd;
        while (*p) {
            const char *seg = p;
            while (*p && *p != '/')
                p++;
            size_t len = (size_t)(p - seg);
            while (*p == '/')
                p++;
            if (len == 0 || (len == 1 && seg[0] == '.'))
                continue;
            if (len == 2 && seg[0] == '.' && seg[1] == '.') {
                while (o > 0 && res[o - 1] != '/')
                    o--;
                if (o > 0)
                    o--; /* the '/' */
                continue;
            }
            res[o++] = '/';
            memcpy(res + o, seg, len);
            o += len;
        }
    }
    if (o == 0)
        res[o++] = '/';
    res[o] = '\0';
    *out = res;
    return 0;
}

/* RFC 3339 in UTC with as many fraction digits as the time needs (0, 3, 6
 * or 9), the form the reference server writes. */
static json_t *fs_time_json(const struct timespec *ts)
{
    struct tm tm;
    time_t t = ts->tv_sec;
    if (!gmtime_r(&t, &tm))
        return json_null();
    char out[64];
    size_t n = strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &tm);
    long ns = ts->tv_nsec;
    if (ns > 0 && ns < 1000000000L) {
        if (ns % 1000000 == 0)
            n += (size_t)snprintf(out + n, sizeof out - n, ".%03ld", ns / 1000000);
        else if (ns % 1000 == 0)
            n += (size_t)snprintf(out + n, sizeof out - n, ".%06ld", ns / 1000);
        else
            n += (size_t)snprintf(out + n, sizeof out - n, ".%09ld", ns);
    }
    snprintf(out + n, sizeof out - n, "+00:00");
    return json_string(out);
}

/* FsStat's fields for `st` into `obj`. */
static int fs_describe(json_t *obj, const struct stat *st)
{
    if (json_object_set_new(obj, "entryType",
                            json_string(S_ISDIR(st->st_mode) ? "directory" : "file")) ||
        json_object_set_new(obj, "size", json_integer((json_int_t)st->st_size)) ||
        json_object_set_new(obj, "modified", fs_time_json(&st->st_mtim)))
        return -1;
    return 0;
}

/* stat(), or lstat() for a symlink pointing nowhere (it is still listed). */
static int fs_stat_any(int dirfd, const char *name, struct stat *st)
{
    if (fstatat(dirfd, name, st, 0) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
}

int fs_stat_json(const char *path, json_t **out, struct err *err)
{
    struct stat st;
    if (fs_stat_any(AT_FDCWD, path, &st) != 0)
        return fs_errno(err, errno, "cannot stat", path);
    json_t *obj = json_pack("{s:s}", "path", path);
    if (!obj || fs_describe(obj, &st) != 0) {
        json_decref(obj);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = obj;
    return 0;
}

static int fs_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fs_list_json(const char *path, json_t **out, struct err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fs_errno(err, errno, "cannot list", path);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return fs_errno(err, e, "cannot list", path);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = err_set(err, ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = err_set(err, ERR_NOMEM, "out of memory");
            break;
        }
        n++;
        errno = 0;
    }
    if (!rc && errno)
        rc = fs_errno(err, errno, "cannot list", path);
    json_t *arr = rc ? NULL : json_array();
    if (!rc && !arr)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (!rc && n)
        qsort(names, n, sizeof *names, fs_name_cmp);
    int root = strcmp(path, "/") == 0;
    for (size_t i = 0; !rc && i < n; i++) {
        struct stat st;
        if (fs_stat_any(dirfd(d), names[i], &st) != 0)
            continue; /* removed while we listed */
        char *full = malloc(strlen(path) + strlen(names[i]) + 2);
        json_t *e = full ? json_object() : NULL;
        if (e)
            sprintf(full, "%s/%s", root ? "" : path, names[i]);
        if (!e || json_object_set_new(e, "name", json_string(names[i])) ||
            json_object_set_new(e, "path", json_string(full)) || fs_describe(e, &st) ||
            json_array_append_new(arr, e)) {
            json_decref(e);
            rc = err_set(err, ERR_NOMEM, "out of memory");
        }
        free(full);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int fs_mkdir(const char *path, struct err *err)
{
    char *p = strdup(path);
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = 0;
    /* Every prefix ending before a '/', then the whole path. */
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = fs_errno(err, errno, "cannot create directory", p);
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    if (!rc) {
        struct stat st;
        if (stat(path, &st) != 0)
            rc = fs_errno(err, errno, "cannot create directory", path);
        else if (!S_ISDIR(st.st_mode))
            rc = err_set_subject(err, ERR_PATH_EXISTS, path, "%s exists and is not a directory",
                                 path);
    }
    free(p);
    return rc;
}

/* Creates the parent directories of `path`. */
static int fs_mkdir_parent(const char *path, struct err *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *parent = strndup(path, (size_t)(slash - path));
    if (!parent)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = fs_mkdir(parent, err);
    free(parent);
    return rc;
}

int fs_remove_at(int parent_fd, const char *name, const char *path, struct err *err)
{
    struct stat st;
    if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fs_errno(err, errno, "cannot delete", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent_fd, name, 0) != 0)
            return fs_errno(err, errno, "cannot delete", path);
        return 0;
    }
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fs_errno(err, errno, "cannot delete", path);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return fs_errno(err, e, "cannot delete", path);
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = fs_remove_at(dirfd(d), de->d_name, path, err);
    }
    closedir(d);
    if (!rc && unlinkat(parent_fd, name, AT_REMOVEDIR) != 0)
        rc = fs_errno(err, errno, "cannot delete", path);
    return rc;
}

int fs_delete(const char *path, int recursive, struct err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return fs_errno(err, errno, "cannot delete", path);
    if (strcmp(path, "/") == 0)
        return err_set_subject(err, ERR_PATH_FORBIDDEN, path, "will not delete /");
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0)
            return fs_errno(err, errno, "cannot delete", path);
        return 0;
    }
    if (!recursive) {
        if (rmdir(path) != 0) {
            if (errno == ENOTEMPTY || errno == EEXIST)
                return err_set_subject(err, ERR_PATH_EXISTS, path,
                                       "directory %s is not empty (use recursive=true)", path);
            return fs_errno(err, errno, "cannot delete", path);
        }
        return 0;
    }
    return fs_remove_at(AT_FDCWD, path, path, err);
}

int fs_move(const char *from, const char *to, int overwrite, struct err *err)
{
    struct stat st;
    if (lstat(from, &st) != 0)
        return fs_errno(err, errno, "cannot move", from);
    if (strcmp(from, to) == 0)
        return 0;
    size_t flen = strlen(from);
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return err_set_subject(err, ERR_INVALID, to, "cannot move %s into itself", from);
    if (lstat(to, &st) == 0) {
        if (!overwrite)
            return err_set_subject(err, ERR_PATH_EXISTS, to,
                                   "destination %s exists (use overwrite)", to);
        /* rename() replaces a file atomically, but only an empty directory. */
        if (S_ISDIR(st.st_mode)) {
            int rc = fs_remove_at(AT_FDCWD, to, to, err);
            if (rc)
                return rc;
        }
    } else if (errno != ENOENT) {
        return fs_errno(err, errno, "cannot move to", to);
    }
    int rc = fs_mkdir_parent(to, err);
    if (rc)
        return rc;
    if (rename(from, to) != 0)
        return fs_errno(err, errno, "cannot move", from);
    return 0;
}

int fs_open_read(const char *path, int *fd_out, uint64_t *size, struct err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fs_errno(err, errno, "cannot read", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fs_errno(err, e, "cannot read", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set_subject(err, ERR_INVALID, path, "%s is not a file", path);
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ---- temporary files -------------------------------------------------------- */

/* A fresh temporary name beside `name` into tmp[size]: 0, or -1 if it
 * does not fit. */
static int fs_temp_name(const char *name, char *tmp, size_t size)
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t r = (uint64_t)atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull ^
                 (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    int n = snprintf(tmp, size, ".%.180s.sj-%016llx", name, (unsigned long long)r);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int fs_temp_open(int dirfd, const char *name, unsigned mode, char *tmp, size_t size,
                 struct err *err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        if (fs_temp_name(name, tmp, size) != 0)
            return err_set(err, ERR_INVALID, "name too long: %s", name);
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        (mode_t)mode);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return fs_errno(err, errno, "cannot create a file beside", name);
    }
    return err_set(err, ERR_INTERNAL, "no free temporary name beside %s", name);
}

int fs_temp_file_open(int dirfd, const char *leaf, unsigned mode, struct fs_temp *t,
                      struct err *err)
{
    t->name[0] = '\0';
    /* Naming it later goes through /proc/self/fd. */
    if (access("/proc/self/fd", X_OK) == 0) {
        t->fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
        if (t->fd >= 0)
            return 0;
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            return fs_errno(err, errno, "cannot create a file beside", leaf);
    }
    t->fd = fs_temp_open(dirfd, leaf, mode, t->name, sizeof t->name, err);
    if (t->fd >= 0)
        return 0;
    int rc = t->fd;
    t->fd = -1;
    return rc;
}

/* Gives the unnamed file of `t` a temporary name: 0 or an errno. */
static int fs_temp_file_link(int dirfd, struct fs_temp *t, const char *leaf)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
    for (int attempt = 0; attempt < 100; attempt++) {
        if (fs_temp_name(leaf, t->name, sizeof t->name) != 0)
            return ENAMETOOLONG;
        if (linkat(AT_FDCWD, proc, dirfd, t->name, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST) {
            int e = errno;
            t->name[0] = '\0';
            return e;
        }
    }
    t->name[0] = '\0';
    return EEXIST;
}

int fs_temp_file_place(int dirfd, struct fs_temp *t, const char *leaf, int sync)
{
    int e = 0;
    if (sync && fsync(t->fd) != 0)
        e = errno;
    if (!e && !t->name[0])
        e = fs_temp_file_link(dirfd, t, leaf);
    if (close(t->fd) != 0 && !e)
        e = errno;
    t->fd = -1;
    if (!e && renameat(dirfd, t->name, dirfd, leaf) != 0)
        e = errno;
    if (e && t->name[0] && unlinkat(dirfd, t->name, 0) != 0)
        fprintf(stderr, "sandbox-journal: cannot remove %s: %s\n", t->name, strerror(errno));
    if (!e && sync && fsync(dirfd) != 0)
        e = errno;
    t->name[0] = '\0';
    return e;
}

void fs_temp_file_discard(int dirfd, struct fs_temp *t)
{
    if (t->fd < 0)
        return;
    close(t->fd);
    t->fd = -1;
    if (t->name[0] && unlinkat(dirfd, t->name, 0) != 0)
        fprintf(stderr, "sandbox-journal: cannot remove %s: %s\n", t->name, strerror(errno));
    t->name[0] = '\0';
}

struct fs_writer {
    char *path;
    int dirfd;
    struct fs_temp tmp;
    const char *leaf; /* in path */
    uint64_t written, limit;
    int committed;
};

int fs_writer_open(const char *path, uint64_t limit, fs_writer_t **out, struct err *err)
{
    struct stat st;
    unsigned mode = 0666;
    int keep_mode = 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return err_set_subject(err, ERR_INVALID, path, "%s is a directory", path);
        mode = st.st_mode & 07777;
        keep_mode = 1;
    }
    int rc = fs_mkdir_parent(path, err);
    if (rc)
        return rc;
    struct fs_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    w->tmp.fd = w->dirfd = -1;
    w->limit = limit;
    char *slash = strrchr(w->path, '/');
    w->leaf = slash + 1;
    *slash = '\0';
    w->dirfd = open(slash == w->path ? "/" : w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
    if (w->dirfd < 0) {
        rc = fs_errno(err, errno, "cannot open the directory of", path);
        fs_writer_free(w);
        return rc;
    }
    if (!w->leaf[0]) {
        fs_writer_free(w);
        return err_set_subject(err, ERR_INVALID, path, "%s is a directory", path);
    }
    if ((rc = fs_temp_file_open(w->dirfd, w->leaf, mode, &w->tmp, err)) != 0) {
        fs_writer_free(w);
        return rc;
    }
    /* A file replaced keeps its permissions, whatever the umask says. */
    if (keep_mode && fchmod(w->tmp.fd, (mode_t)mode) != 0) {
        rc = fs_errno(err, errno, "cannot set the mode of", path);
        fs_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* Removes the temporary file: the write is abandoned. */
static void fs_writer_abandon(struct fs_writer *w)
{
    fs_temp_file_discard(w->dirfd, &w->tmp);
}

int fs_writer_write(fs_writer_t *w, const char *p, size_t n, struct err *err)
{
    if (w->tmp.fd < 0)
        return err_set(err, ERR_INTERNAL, "the write of %s was abandoned", w->path);
    if (n > w->limit - w->written) {
        fs_writer_abandon(w);
        return err_set_subject(err, ERR_TOO_LARGE, w->path,
                               "upload larger than --max-upload-bytes (%llu)",
                               (unsigned long long)w->limit);
    }
    while (n) {
        ssize_t k = write(w->tmp.fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int rc = fs_errno(err, errno, "cannot write", w->path);
            fs_writer_abandon(w);
            return rc;
        }
        p += k;
        n -= (size_t)k;
        w->written += (uint64_t)k;
    }
    return 0;
}

int fs_writer_commit(fs_writer_t *w, uint64_t *written, struct err *err)
{
    if (w->tmp.fd < 0)
        return err_set(err, ERR_INTERNAL, "the write of %s was abandoned", w->path);
    /* Synced before the answer: a 200 means the bytes survive a power cut. */
    int e = fs_temp_file_place(w->dirfd, &w->tmp, w->leaf, 1);
    if (e)
        return fs_errno(err, e, "cannot write", w->path);
    w->committed = 1;
    *written = w->written;
    return 0;
}

void fs_writer_free(fs_writer_t *w)
{
    if (!w)
        return;
    if (!w->committed)
        fs_writer_abandon(w);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->path);
    free(w);
}
