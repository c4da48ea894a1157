/* The JSONL export target: one file, appended batch by batch.
 *
 * A file is a header line, then per batch and session a session line
 * followed by that session's event lines, each event carrying the journal's
 * exact stored text and raw payload (export_row.h), so `sandbox-journal
 * import` can put them back byte for byte.
 *
 * Exactly once in a file: a batch is written and fdatasync()ed, and only
 * then does the exporter store the new file length with the checkpoints
 * (state()).  Before writing anything, resume() cuts the file back to the
 * stored length, so lines a crash left unconfirmed are dropped and written
 * again, never twice.  An exclusive flock() keeps a second exporter out of
 * the same file. */
#include "export/export_target.h"

#include "base/buf.h"
#include "base/err.h"
#include "export/export_row.h"
#include "export/export_url.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct export_jsonl {
    struct export_target base; /* first: the exporter holds a pointer to it */
    int fd;
    int positioned;    /* resume() ran since connect: offset is the file's confirmed end */
    int dirty;         /* a write failed: bytes past offset may exist */
    unsigned long long offset; /* bytes confirmed (fsynced and checkpointable) */
    char state[32];
    struct buf out;
};

static struct export_jsonl *export_jsonl_of(struct export_target *t)
{
    return (struct export_jsonl *)(void *)t;
}

static int export_jsonl_fail(struct export_jsonl *f, int transient, const char *what,
                             int errnum, struct err *err)
{
    f->base.transient = transient;
    return err_set(err, transient ? ERR_STORAGE : ERR_INVALID, "jsonl: %s %s: %s", what,
                   f->base.url->path, strerror(errnum));
}

static void export_jsonl_disconnect(struct export_target *t)
{
    struct export_jsonl *f = export_jsonl_of(t);
    /* Closing drops the flock too.  Nothing unconfirmed needs flushing: a
     * batch is only confirmed after fdatasync(). */
    if (f->fd >= 0 && close(f->fd) != 0)
        fprintf(stderr, "sandbox-journal: jsonl: closing %s: %s\n", t->url->path,
                strerror(errno));
    f->fd = -1;
    f->positioned = 0;
}

static int export_jsonl_connect(struct export_target *t, struct err *err)
{
    struct export_jsonl *f = export_jsonl_of(t);
    export_jsonl_disconnect(t);
    f->fd = open(t->url->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f->fd < 0)
        return export_jsonl_fail(f, 0, "cannot open", errno, err);
    if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        export_jsonl_disconnect(t);
        if (e == EWOULDBLOCK) {
            t->transient = 0;
            return err_set(err, ERR_CONFLICT, "jsonl: %s is being written by another export",
                           t->url->path);
        }
        return export_jsonl_fail(f, 0, "cannot lock", e, err);
    }
    return 0;
}

/* Cuts the file to f->offset and puts the write position there. */
static int export_jsonl_cut(struct export_jsonl *f, struct err *err)
{
    if (ftruncate(f->fd, (off_t)f->offset) != 0)
        return export_jsonl_fail(f, 0, "cannot truncate", errno, err);
    if (lseek(f->fd, (off_t)f->offset, SEEK_SET) < 0)
        return export_jsonl_fail(f, 0, "cannot seek in", errno, err);
    f->dirty = 0;
    return 0;
}

static int export_jsonl_resume(struct export_target *t, const char *state, struct err *err)
{
    struct export_jsonl *f = export_jsonl_of(t);
    if (f->fd < 0) {
        t->transient = 1;
        return err_set(err, ERR_STORAGE, "jsonl: %s is not open", t->url->path);
    }
    unsigned long long want = 0;
    if (state) {
        char *end = NULL;
        errno = 0;
        want = strtoull(state, &end, 10);
        if (errno || !end || *end || end == state) {
            t->transient = 0;
            return err_set(err, ERR_INVALID, "jsonl: stored state '%s' of %s is not a length",
                           state, t->url->path);
        }
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return export_jsonl_fail(f, 0, "cannot stat", errno, err);
    if ((unsigned long long)st.st_size < want) {
        t->transient = 0;
        return err_set(err, ERR_CONFLICT,
                       "jsonl: %s has %lld bytes, fewer than the %llu already exported to "
                       "it: it was changed or replaced (export with --reset to write it anew)",
                       t->url->path, (long long)st.st_size, want);
    }
    f->offset = want;
    snprintf(f->state, sizeof f->state, "%llu", f->offset);
    int rc = export_jsonl_cut(f, err);
    if (!rc)
        f->positioned = 1;
    return rc;
}

static int export_jsonl_write_all(struct export_jsonl *f, const char *data, size_t len,
                                  struct err *err)
{
    while (len) {
        ssize_t n = write(f->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            f->dirty = 1;
            /* A full disk or a quota may clear; anything else will not. */
            return export_jsonl_fail(f, e == ENOSPC || e == EDQUOT, "cannot write", e, err);
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int export_jsonl_send(struct export_target *t, const struct export_batch *b,
                             struct err *err)
{
    struct export_jsonl *f = export_jsonl_of(t);
    if (f->fd < 0 || !f->positioned) {
        t->transient = 1;
        return err_set(err, ERR_STORAGE, "jsonl: %s is not open", t->url->path);
    }
    if (f->dirty) {
        int rc = export_jsonl_cut(f, err);
        if (rc)
            return rc;
    }
    buf_reset(&f->out);
    int rc = f->offset == 0 ? export_row_jsonl_header(&f->out) : 0;
    size_t r = 0;
    for (size_t s = 0; s < b->n_sessions && !rc; s++) {
        const char *sid = b->sessions[s].info.session_id;
        rc = export_row_jsonl_session(&f->out, &b->sessions[s]);
        for (; !rc && r < b->n_rows && strcmp(b->rows[r].session_id, sid) == 0; r++)
            rc = export_row_jsonl_event(&f->out, &b->rows[r]);
    }
    if (rc) {
        t->transient = 0;
        return err_set(err, ERR_NOMEM, "jsonl: out of memory");
    }
    if ((rc = export_jsonl_write_all(f, f->out.data, f->out.len, err)))
        return rc;
    if (fdatasync(f->fd) != 0) {
        f->dirty = 1;
        return export_jsonl_fail(f, 0, "cannot sync", errno, err);
    }
    f->offset += f->out.len;
    snprintf(f->state, sizeof f->state, "%llu", f->offset);
    return 0;
}

static const char *export_jsonl_state(struct export_target *t)
{
    return export_jsonl_of(t)->state;
}

static void export_jsonl_free(struct export_target *t)
{
    if (!t)
        return;
    struct export_jsonl *f = export_jsonl_of(t);
    export_jsonl_disconnect(t);
    buf_free(&f->out);
    free(f);
}

static const struct export_target_ops export_jsonl_ops = {
    .kind = "jsonl",
    .connect = export_jsonl_connect,
    .resume = export_jsonl_resume,
    .send = export_jsonl_send,
    .state = export_jsonl_state,
    .disconnect = export_jsonl_disconnect,
    .free = export_jsonl_free,
};

int export_jsonl_new(const struct export_url *u, struct export_target **out, struct err *err)
{
    struct export_jsonl *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(err, ERR_NOMEM, "out of memory");
    f->base.ops = &export_jsonl_ops;
    f->base.url = u;
    f->fd = -1;
    buf_init(&f->out);
    *out = &f->base;
    return 0;
}
