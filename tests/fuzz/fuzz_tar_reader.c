/* libFuzzer harness for the tar reader (src/workspace/tar_reader.c) and the
 * name checks that guard /v1/fs/upload-batch.  The first byte chooses the
 * size of the pieces the archive is fed in; the rest is the archive.
 * Invariants: the same archive read whole and in pieces gives the same
 * members, data and outcome; every member's data adds up to its declared
 * size and `end` follows each member exactly once before the next; a
 * refusal is ERR_INVALID or ERR_NOMEM with a message; a name
 * tar_reader_clean_name() accepts is relative with no "", "." or ".." segment;
 * a symlink target tar_reader_check_link() accepts, resolved from the member's
 * directory, never climbs above the extraction directory.
 * Built with -DSJ_FUZZ=ON and clang; seeds in corpus/fuzz_tar_reader/. */
#include "fuzz_common.h"
#include "workspace/tar_reader.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_tar_state {
    uint64_t hash;    /* of every member and data byte, in order */
    int open;
    uint64_t declared, seen;
    int members;
};

static void fuzz_tar_mix(struct fuzz_tar_state *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ b[i]) * 1099511628211ull;
}

static void fuzz_tar_check_clean(const char *clean)
{
    if (clean[0] == '/')
        abort();
    const char *p = clean;
    while (*p) {
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        if (len == 0 || (len == 1 && seg[0] == '.') ||
            (len == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        if (*p == '/' && !*++p)
            abort(); /* a trailing '/' */
    }
}

/* The link's target resolved lexically from its directory: the depth never
 * goes negative. */
static void fuzz_tar_check_link(const char *member, const char *target)
{
    if (target[0] == '/')
        abort();
    long depth = 0;
    for (const char *c = member; *c; c++)
        depth += *c == '/';
    const char *p = target;
    while (*p) {
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        while (*p == '/')
            p++;
        if (len == 2 && seg[0] == '.' && seg[1] == '.')
            depth--;
        else if (len && !(len == 1 && seg[0] == '.'))
            depth++;
        if (depth < 0)
            abort();
    }
}

static int fuzz_tar_member(void *arg, const struct tar_member *m, struct err *err)
{
    (void)err; /* accepts every member */
    struct fuzz_tar_state *s = arg;
    if (s->open || !m->name || !m->link || strlen(m->name) > TAR_READER_MAX_NAME ||
        strlen(m->link) > TAR_READER_MAX_NAME)
        abort();
    if ((m->type == TAR_DIR || m->type == TAR_SYMLINK || m->type == TAR_HARDLINK) && m->size)
        abort();
    s->open = 1;
    s->declared = m->size;
    s->seen = 0;
    s->members++;
    fuzz_tar_mix(s, &m->type, sizeof m->type);
    fuzz_tar_mix(s, m->name, strlen(m->name) + 1);
    fuzz_tar_mix(s, m->link, strlen(m->link) + 1);
    static char clean[TAR_READER_MAX_NAME + 1];
    struct err e;
    int rc = tar_reader_clean_name(m->name, clean, sizeof clean, &e);
    if (rc == 0) {
        fuzz_tar_check_clean(clean);
        if (m->type == TAR_SYMLINK && tar_reader_check_link(clean, m->link, &e) == 0)
            fuzz_tar_check_link(clean, m->link);
    } else {
        fuzz_check_refusal(rc, &e);
    }
    return 0;
}

static int fuzz_tar_data(void *arg, const char *p, size_t n, struct err *err)
{
    (void)err; /* accepts all data */
    struct fuzz_tar_state *s = arg;
    if (!s->open || n == 0 || s->seen + n > s->declared)
        abort();
    s->seen += n;
    fuzz_tar_mix(s, p, n);
    return 0;
}

static int fuzz_tar_end(void *arg, struct err *err)
{
    (void)err; /* accepts every end */
    struct fuzz_tar_state *s = arg;
    if (!s->open || s->seen != s->declared)
        abort();
    s->open = 0;
    return 0;
}

static const struct tar_reader_ops fuzz_tar_ops = { fuzz_tar_member, fuzz_tar_data,
                                                   fuzz_tar_end };

static int fuzz_tar_read(const uint8_t *p, size_t n, size_t step, struct fuzz_tar_state *s)
{
    memset(s, 0, sizeof *s);
    s->hash = 1469598103934665603ull;
    tar_reader_t *r;
    struct err err;
    if (tar_reader_new(&fuzz_tar_ops, s, &r, &err) != 0)
        return ERR_NOMEM;
    int rc = 0;
    for (size_t off = 0; !rc && off < n;) {
        size_t k = step && step < n - off ? step : n - off;
        rc = tar_reader_feed(r, (const char *)p + off, k, &err);
        off += k;
    }
    if (!rc)
        rc = tar_reader_finish(r, &err);
    if (rc)
        fuzz_check_refusal(rc, &err);
    tar_reader_free(r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] ? (size_t)data[0] * 3 : 1;
    struct fuzz_tar_state whole, pieces;
    int a = fuzz_tar_read(data + 1, size - 1, 0, &whole);
    int b = fuzz_tar_read(data + 1, size - 1, step, &pieces);
    if (a == ERR_NOMEM || b == ERR_NOMEM)
        return 0;
    /* A failure may come at a different point only if it is the same one. */
    if (a != b || whole.members != pieces.members || (a == 0 && whole.hash != pieces.hash))
        abort();
    return 0;
}
