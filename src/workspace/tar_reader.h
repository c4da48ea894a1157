/* A streaming reader of tar archives, pure: bytes in, members out, no I/O.
 *
 * It reads what real tools write: ustar headers (name + prefix), POSIX pax
 * extended headers ('x': `path`, `linkpath`, `size`; global 'g' headers are
 * skipped) and GNU long names and link names ('L', 'K'), sizes in octal or
 * GNU base-256.  Each header's checksum is checked.  The archive ends at
 * its first zero block (tar writes two; some writers stop after one), and
 * whatever follows is ignored.  Memory is bounded: a header block plus one
 * extended header of at most TAR_READER_MAX_META bytes; file data is passed
 * through as it arrives.
 *
 * The reader judges no names: tar_reader_clean_name() and tar_reader_check_link() are
 * the checks a caller applies before writing anything. */
#ifndef SJ_TAR_READER_H
#define SJ_TAR_READER_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define TAR_READER_MAX_META (256u * 1024u)
#define TAR_READER_MAX_NAME 4096u

enum tar_type {
    TAR_FILE,
    TAR_DIR,
    TAR_SYMLINK,
    TAR_HARDLINK,
    TAR_OTHER /* devices, FIFOs, sparse files...: their data is skipped */
};

/* One member, borrowed for the callback. */
struct tar_member {
    enum tar_type type;
    const char *name; /* as archived: pax path, GNU long name or prefix/name */
    const char *link; /* the link target, "" if none */
    uint64_t size;    /* data bytes that follow (0 but for files and TAR_OTHER) */
    unsigned mode;    /* permission bits */
};

/* Callbacks return 0 or an ERR_* code, which stops the reader and is
 * returned by tar_reader_feed() (the callback filled err).  `data` comes in
 * as many pieces as the archive arrives in; `end` follows every member's
 * last piece. */
struct tar_reader_ops {
    int (*member)(void *arg, const struct tar_member *m, struct err *err);
    int (*data)(void *arg, const char *p, size_t n, struct err *err);
    int (*end)(void *arg, struct err *err);
};

typedef struct tar_reader tar_reader_t;

/* new: freed with tar_reader_free().  `ops` and `arg` are borrowed. */
int tar_reader_new(const struct tar_reader_ops *ops, void *arg, tar_reader_t **out,
                   struct err *err);
void tar_reader_free(tar_reader_t *r);

/* Reads the next `n` bytes of the archive, however it is split.  ERR_INVALID
 * for a malformed archive (bad checksum, size, over-long name); after any
 * error the reader refuses more. */
int tar_reader_feed(tar_reader_t *r, const char *p, size_t n, struct err *err);

/* The archive's end: ERR_INVALID unless an end-of-archive block was read. */
int tar_reader_finish(tar_reader_t *r, struct err *err);

/* The member name `name` as a path relative to the extraction directory:
 * "./" and "." segments and repeated or trailing '/' dropped.  ERR_INVALID
 * for an absolute name, a ".." segment, an empty segment that is all there
 * is, or a result longer than size-1.  out is "" for the directory itself
 * ("./"). */
int tar_reader_clean_name(const char *name, char *out, size_t size, struct err *err);

/* For a symlink member at clean path `member` pointing to `target`: 0 when
 * the target, read from the member's directory, stays inside the extraction
 * directory; ERR_INVALID for an absolute target or one that climbs out. */
int tar_reader_check_link(const char *member, const char *target, struct err *err);

#endif
