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

#endif
