/* Unpacking a tar upload into a directory (fs.h), streamed.
 *
 * Safety rests on one rule: every path is walked from the extraction
 * directory's descriptor one segment at a time with O_NOFOLLOW, and every
 * entry is created with *at() calls in the directory so reached.  A
 * symlink already on disk, or one the archive made, therefore stops the
 * walk (ELOOP/ENOTDIR: the member is refused) instead of leading elsewhere,
 * whatever order the members come in.  Names are cleaned first
 * (tar_reader_clean_name: no absolute names, no ".."), symlink targets must stay
 * inside (tar_reader_check_link), hard links must name a member path inside.
 * Files, symlinks and links are made under a temporary name and renamed
 * over the final one, which replaces a symlink there rather than writing
 * through it. */
#include "workspace/fs.h"
#include "workspace/tar_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FS_UNPACK_MAX_PATHS 1024

struct fs_unpack {
    char *dir;      /* the extraction directory, absolute */
    int dirfd;
    tar_reader_t *tar;
    uint64_t limit, received;
    json_t *paths;
    int truncated;
    /* The file being written: its directory, names and descriptor. */
    int file_dirfd;
    struct fs_temp file;
    char clean[TAR_READER_MAX_NAME + 1];
    char full[TAR_READER_MAX_NAME + 1024];
};

/* The member's absolute path, for messages and the answer. */
static const char *fs_unpack_full(struct fs_unpack *u, const char *clean)
{
    snprintf(u->full, sizeof u->full, "%s%s%s", u->dir, strcmp(u->dir, "/") ? "/" : "",
             clean);
    return u->full;
}

/* Opens the directory holding `clean` (creating missing directories when
 * `create`), never through a symlink.  new: *dirfd; *leaf points into clean. */
static int fs_unpack_parent(struct fs_unpack *u, char *clean, int create, int *dirfd_out,
                            const char **leaf, struct err *err)
{
    int fd = dup(u->dirfd);
    if (fd < 0)
        return fs_errno(err, errno, "cannot open", u->dir);
    char *seg = clean;
    for (char *slash; (slash = strchr(seg, '/')) != NULL; seg = slash + 1) {
        *slash = '\0';
        int next = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, seg, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                *slash = '/';
                close(fd);
                return fs_errno(err, e, "cannot create directory", fs_unpack_full(u, clean));
            }
            next = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        *slash = '/';
        close(fd);
        if (next < 0) {
            if (e == ELOOP || e == ENOTDIR)
                return err_set_subject(err, ERR_INVALID, fs_unpack_full(u, clean),
                                       "tar: member %s: a symlink or a file is in its way",
                                       clean);
            return fs_errno(err, e, "cannot open", fs_unpack_full(u, clean));
        }
        fd = next;
    }
    *dirfd_out = fd;
    *leaf = seg;
    return 0;
}

static int fs_unpack_note(struct fs_unpack *u, const char *clean, struct err *err)
{
    if (json_array_size(u->paths) >= FS_UNPACK_MAX_PATHS) {
        u->truncated = 1;
        return 0;
    }
    if (json_array_append_new(u->paths, json_string(fs_unpack_full(u, clean))) != 0)
        return err_set(err, ERR_NOMEM, "out of memory");
    return 0;
}

/* Renames tmp over leaf in dirfd, or removes tmp. */
static int fs_unpack_place(struct fs_unpack *u, int dirfd, const char *tmp, const char *leaf,
                           struct err *err)
{
    if (renameat(dirfd, tmp, dirfd, leaf) != 0) {
        int rc = fs_errno(err, errno, "cannot write", fs_unpack_full(u, u->clean));
        if (unlinkat(dirfd, tmp, 0) != 0)
            fprintf(stderr, "sandbox-journal: cannot remove %s: %s\n", tmp, strerror(errno));
        return rc;
    }
    return fs_unpack_note(u, u->clean, err);
}

static int fs_unpack_dir(struct fs_unpack *u, struct err *err)
{
    int dirfd;
    const char *leaf;
    int rc = fs_unpack_parent(u, u->clean, 1, &dirfd, &leaf, err);
    if (rc)
        return rc;
    struct stat st;
    if (mkdirat(dirfd, leaf, 0777) != 0 && errno != EEXIST)
        rc = fs_errno(err, errno, "cannot create directory", fs_unpack_full(u, u->clean));
    else if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
        rc = fs_errno(err, errno, "cannot create directory", fs_unpack_full(u, u->clean));
    else if (!S_ISDIR(st.st_mode))
        rc = err_set_subject(err, ERR_INVALID, fs_unpack_full(u, u->clean),
                             "tar: member %s: a symlink or a file is in its way", u->clean);
    close(dirfd);
    return rc ? rc : fs_unpack_note(u, u->clean, err);
}

static int fs_unpack_symlink(struct fs_unpack *u, const char *target, struct err *err)
{
    int rc = tar_reader_check_link(u->clean, target, err);
    if (rc)
        return rc;
    int dirfd;
    const char *leaf;
    if ((rc = fs_unpack_parent(u, u->clean, 1, &dirfd, &leaf, err)) != 0)
        return rc;
    char tmp[256];
    /* A fresh name: symlinkat() fails rather than replace anything. */
    int fd = fs_temp_open(dirfd, leaf, 0600, tmp, sizeof tmp, err);
    if (fd < 0) {
        close(dirfd);
        return fd;
    }
    close(fd);
    if (unlinkat(dirfd, tmp, 0) != 0 || symlinkat(target, dirfd, tmp) != 0)
        rc = fs_errno(err, errno, "cannot create symlink", fs_unpack_full(u, u->clean));
    else
        rc = fs_unpack_place(u, dirfd, tmp, leaf, err);
    close(dirfd);
    return rc;
}

static int fs_unpack_hardlink(struct fs_unpack *u, const char *target, struct err *err)
{
    char src[TAR_READER_MAX_NAME + 1];
    int rc = tar_reader_clean_name(target, src, sizeof src, err);
    if (rc)
        return rc;
    if (!src[0])
        return err_set(err, ERR_INVALID, "tar: hard link %s names the directory itself",
                       u->clean);
    int sfd, dfd;
    const char *sleaf, *dleaf;
    if ((rc = fs_unpack_parent(u, src, 0, &sfd, &sleaf, err)) != 0)
        return rc;
    if ((rc = fs_unpack_parent(u, u->clean, 1, &dfd, &dleaf, err)) != 0) {
        close(sfd);
        return rc;
    }
    char tmp[256];
    int fd = fs_temp_open(dfd, dleaf, 0600, tmp, sizeof tmp, err);
    if (fd < 0) {
        rc = fd;
    } else {
        close(fd);
        /* linkat() without AT_SYMLINK_FOLLOW links a symlink itself. */
        if (unlinkat(dfd, tmp, 0) != 0 || linkat(sfd, sleaf, dfd, tmp, 0) != 0)
            rc = fs_errno(err, errno, "cannot create hard link", fs_unpack_full(u, u->clean));
        else
            rc = fs_unpack_place(u, dfd, tmp, dleaf, err);
    }
    close(sfd);
    close(dfd);
    return rc;
}

static int fs_unpack_member(void *arg, const struct tar_member *m, struct err *err)
{
    struct fs_unpack *u = arg;
    if (m->type == TAR_OTHER)
        return 0; /* devices and FIFOs are not a workspace's content */
    int rc = tar_reader_clean_name(m->name, u->clean, sizeof u->clean, err);
    if (rc)
        return rc;
    if (!u->clean[0]) {
        if (m->type == TAR_DIR)
            return 0; /* "./": the directory itself */
        return err_set(err, ERR_INVALID, "tar: member '%.180s' has no name", m->name);
    }
    switch (m->type) {
    case TAR_DIR: return fs_unpack_dir(u, err);
    case TAR_SYMLINK: return fs_unpack_symlink(u, m->link, err);
    case TAR_HARDLINK: return fs_unpack_hardlink(u, m->link, err);
    case TAR_OTHER: return 0;
    case TAR_FILE: break;
    }
    const char *leaf;
    if ((rc = fs_unpack_parent(u, u->clean, 1, &u->file_dirfd, &leaf, err)) != 0)
        return rc;
    /* The owner can always read and write what it uploaded. */
    if ((rc = fs_temp_file_open(u->file_dirfd, leaf, (m->mode & 0777) | 0600, &u->file,
                                err)) != 0) {
        close(u->file_dirfd);
        u->file_dirfd = -1;
    }
    return rc;
}

static int fs_unpack_data(void *arg, const char *p, size_t n, struct err *err)
{
    struct fs_unpack *u = arg;
    if (u->file.fd < 0)
        return 0; /* data of a member skipped */
    while (n) {
        ssize_t k = write(u->file.fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return fs_errno(err, errno, "cannot write", fs_unpack_full(u, u->clean));
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Drops the file being written, if any. */
static void fs_unpack_drop(struct fs_unpack *u)
{
    fs_temp_file_discard(u->file_dirfd, &u->file);
    if (u->file_dirfd >= 0)
        close(u->file_dirfd);
    u->file_dirfd = -1;
}

static int fs_unpack_end(void *arg, struct err *err)
{
    struct fs_unpack *u = arg;
    if (u->file.fd < 0)
        return 0;
    const char *leaf = strrchr(u->clean, '/');
    leaf = leaf ? leaf + 1 : u->clean;
    /* Not synced one by one: a thousand fsyncs would make a batch crawl. */
    int e = fs_temp_file_place(u->file_dirfd, &u->file, leaf, 0);
    int rc = e ? fs_errno(err, e, "cannot write", fs_unpack_full(u, u->clean))
               : fs_unpack_note(u, u->clean, err);
    close(u->file_dirfd);
    u->file_dirfd = -1;
    return rc;
}

static const struct tar_reader_ops fs_unpack_ops = {
    .member = fs_unpack_member,
    .data = fs_unpack_data,
    .end = fs_unpack_end,
};

int fs_unpack_open(const char *dir, uint64_t limit, fs_unpack_t **out, struct err *err)
{
    int rc = fs_mkdir(dir, err);
    if (rc)
        return rc;
    struct fs_unpack *u = calloc(1, sizeof *u);
    if (!u)
        return err_set(err, ERR_NOMEM, "out of memory");
    u->dirfd = u->file.fd = u->file_dirfd = -1;
    u->limit = limit;
    if (!(u->dir = strdup(dir)) || !(u->paths = json_array())) {
        fs_unpack_free(u);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if ((u->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = fs_errno(err, errno, "cannot open", dir);
        fs_unpack_free(u);
        return rc;
    }
    if ((rc = tar_reader_new(&fs_unpack_ops, u, &u->tar, err)) != 0) {
        fs_unpack_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int fs_unpack_write(fs_unpack_t *u, const char *p, size_t n, struct err *err)
{
    if (n > u->limit - u->received) {
        fs_unpack_drop(u);
        return err_set_subject(err, ERR_TOO_LARGE, u->dir,
                               "upload larger than --max-upload-bytes (%llu)",
                               (unsigned long long)u->limit);
    }
    u->received += n;
    int rc = tar_reader_feed(u->tar, p, n, err);
    if (rc)
        fs_unpack_drop(u);
    return rc;
}

int fs_unpack_finish(fs_unpack_t *u, json_t **out, struct err *err)
{
    int rc = tar_reader_finish(u->tar, err);
    if (rc)
        return rc;
    json_t *res = json_pack("{s:O,s:b}", "paths", u->paths, "truncated", u->truncated);
    if (!res)
        return err_set(err, ERR_NOMEM, "out of memory");
    *out = res;
    return 0;
}

void fs_unpack_free(fs_unpack_t *u)
{
    if (!u)
        return;
    fs_unpack_drop(u);
    tar_reader_free(u->tar);
    if (u->dirfd >= 0)
        close(u->dirfd);
    json_decref(u->paths);
    free(u->dir);
    free(u);
}
