/* Where a sandbox-journal keeps its files: the one rule every command
 * shares, so `server`, `export`, `sessions` and the rest always agree. */
#ifndef SJ_DATADIR_H
#define SJ_DATADIR_H

#include <stddef.h>

/* Writes the data directory into out[size]: `given` if non-NULL, else
 * $XDG_DATA_HOME/sandbox-journal (an absolute XDG_DATA_HOME only), else
 * ~/.local/share/sandbox-journal; with "/<file>" appended when `file` is
 * non-NULL.  0, or -1 when there is no HOME to go by or it does not fit. */
int datadir_path(const char *given, const char *file, char *out, size_t size);

/* mkdir -p, mode 0700 for what it creates; the last component must end up
 * a directory.  0, or -1 with errno set. */
int datadir_mkdirs(const char *path);

/* Takes the data directory's server lock, so that two servers never share
 * one journal: a write lock (fcntl, whole file) on <dir>/server.lock, which
 * is created if needed and given the holder's pid for people to read.  The
 * lock lasts until the descriptor is closed or the process ends, whichever
 * comes first (kill -9 included); it is not inherited by children.
 * 0 with *fd the descriptor (the caller's, close() it after the journal);
 * -1 with errno: EAGAIN when another process holds it, *holder then being its
 * pid (0 if unknown), anything else when the file cannot be opened. */
int datadir_lock(const char *dir, int *fd, long *holder);

#endif
