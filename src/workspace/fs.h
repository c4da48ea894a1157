/* The workspace's files: what /v1/fs serves, as plain calls on paths.
 *
 * Paths are absolute, or relative to the server's working directory;
 * fs_resolve() makes them absolute and lexically normal once, and every
 * other call takes its result.  Writes never change a file in place: bytes
 * go to a temporary file beside the target (".<name>.sj-<random>"), which is
 * renamed over it once complete, so a reader sees the old file or the new
 * one, never a part; a failed or abandoned write leaves nothing behind.
 *
 * Errors: ERR_PATH_NOT_FOUND (404), ERR_PATH_EXISTS (409),
 * ERR_PATH_FORBIDDEN (403), ERR_INVALID (400: a directory where a file is
 * needed, or the reverse), ERR_TOO_LARGE (413), ERR_STORAGE (503: disk full),
 * ERR_INTERNAL; err->subject names the path.
 * Thread: any; calls share no state. */
#ifndef SJ_FS_H
#define SJ_FS_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* new: *out, the absolute, lexically normal form of `path` ("." and ".."
 * segments and repeated '/' resolved, no symlink followed), freed with
 * free().  ERR_INVALID for an empty path or one with a NUL. */
int fs_resolve(const char *path, char **out, struct err *err);

/* new: *out, the FsStat of `path` {path, entryType, size, modified}; a
 * symlink is described by what it points to. */
int fs_stat_json(const char *path, json_t **out, struct err *err);

/* new: *out, the FsEntry array of directory `path`, sorted by name. */
int fs_list_json(const char *path, json_t **out, struct err *err);

/* Creates directory `path` and its missing parents (mkdir -p). */
int fs_mkdir(const char *path, struct err *err);

/* Removes a file, a symlink (not what it points to) or an empty directory;
 * a directory's whole tree with `recursive` (never following symlinks). */
int fs_delete(const char *path, int recursive, struct err *err);

/* Renames `from` to `to`, creating `to`'s parents.  An existing `to` is
 * ERR_PATH_EXISTS unless `overwrite`, which replaces it (a directory with
 * its tree). */
int fs_move(const char *from, const char *to, int overwrite, struct err *err);

/* Opens regular file `path` for reading.  new: *fd, closed by the caller. */
int fs_open_read(const char *path, int *fd, uint64_t *size, struct err *err);

/* ---- streamed writes ------------------------------------------------------ */

typedef struct fs_writer fs_writer_t;

/* Starts writing file `path` (its parents created): a temporary file
 * beside it takes the bytes.  `limit`: the most bytes accepted.
 * new: *out, ended by fs_writer_commit() and freed by fs_writer_free(). */
int fs_writer_open(const char *path, uint64_t limit, fs_writer_t **out, struct err *err);

/* Appends bytes.  ERR_TOO_LARGE once more than `limit` came, and the
 * temporary file is gone at once. */
int fs_writer_write(fs_writer_t *w, const char *p, size_t n, struct err *err);

/* Renames the complete file into place; *written gets its size. */
int fs_writer_commit(fs_writer_t *w, uint64_t *written, struct err *err);

/* Frees `w`; an uncommitted temporary file is removed. */
void fs_writer_free(fs_writer_t *w);

/* ---- tar uploads (fs_unpack.c) ------------------------------------------- */

typedef struct fs_unpack fs_unpack_t;

/* Starts unpacking a tar archive into directory `dir` (created if missing).
 * Members are refused (ERR_INVALID, nothing more written) when their name
 * is absolute or climbs out through "..", when a symlink would point
 * outside, when a hard link names something outside, or when a directory
 * on the way is a symlink or a file: nothing is ever written through a
 * symlink.  Each file is written atomically; members before a refused one
 * stay.  `limit`: the most archive bytes accepted (ERR_TOO_LARGE).
 * new: *out, freed with fs_unpack_free(). */
int fs_unpack_open(const char *dir, uint64_t limit, fs_unpack_t **out, struct err *err);

/* Feeds the next bytes of the archive. */
int fs_unpack_write(fs_unpack_t *u, const char *p, size_t n, struct err *err);

/* Checks the archive ended.  new: *out, the FsUploadBatchResponse
 * {paths, truncated}: the first 1024 paths written. */
int fs_unpack_finish(fs_unpack_t *u, json_t **out, struct err *err);

void fs_unpack_free(fs_unpack_t *u);

/* For fs_unpack.c: creates a new temporary file beside `name` in directory
 * `dirfd` with permission bits `mode` (before the umask).  Writes its name
 * to tmp[size]; new: the open descriptor, or a negative ERR_* code. */
int fs_temp_open(int dirfd, const char *name, unsigned mode, char *tmp, size_t size,
                 struct err *err);

/* A file being written that becomes `leaf` in its directory only when it
 * is complete.  Where the filesystem can (O_TMPFILE) it has no name until
 * then, so a server killed during an upload leaves nothing behind; where
 * it cannot, it is a hidden ".<leaf>.sj-<random>" beside the leaf. */
struct fs_temp {
    int fd;         /* -1: none */
    char name[256]; /* its temporary name; "" while it has none */
};

/* Opens `t` for a file to be placed as `leaf` in `dirfd`, with permission
 * bits `mode` (before the umask).  0 or an ERR_* code. */
int fs_temp_file_open(int dirfd, const char *leaf, unsigned mode, struct fs_temp *t,
                      struct err *err);
/* Closes `t` (after an fsync if `sync`) and renames it over `leaf`; on
 * failure removes it.  0, or the errno of what failed. */
int fs_temp_file_place(int dirfd, struct fs_temp *t, const char *leaf, int sync);
/* Closes and removes `t`, if open. */
void fs_temp_file_discard(int dirfd, struct fs_temp *t);

/* For fs_unpack.c: the ERR_* code and message for errno `e` about `path`. */
int fs_errno(struct err *err, int e, const char *what, const char *path);

/* For fs_unpack.c: removes `name` in `dirfd` and, for a directory, its tree. */
int fs_remove_at(int dirfd, const char *name, const char *path, struct err *err);

#endif
