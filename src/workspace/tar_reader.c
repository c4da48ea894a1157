/* The streaming tar reader (tar_reader.h).
 *
 * A tar archive is a sequence of 512-byte blocks:
 *
 *   [header][data, padded to 512]  [header][data...]  ...  [zero block]
 *
 * A header's fields are fixed-width ASCII (octal numbers, NUL-padded
 * names).  Extended headers ('x' pax records "LEN key=value\n", 'L'/'K' GNU
 * long names) are members of their own whose data applies to the member
 * that follows, so the reader keeps their values until the next real
 * member.  The state machine below reads exactly one of: a header block, an
 * extended header's data, a member's data, or padding. */
#include "workspace/tar_reader.h"

#include <stdlib.h>
#include <string.h>

#define TAR_BLOCK 512u

enum tar_state {
    TAR_S_HEADER, /* collecting a header block */
    TAR_S_META,   /* collecting an extended header's data */
    TAR_S_DATA,   /* passing a member's data through */
    TAR_S_SKIP,   /* skipping data nobody wants, or padding */
    TAR_S_END,    /* the end-of-archive block was read */
    TAR_S_FAILED
};

enum tar_meta_kind { TAR_META_PAX, TAR_META_GLOBAL, TAR_META_LONGNAME, TAR_META_LONGLINK };

struct tar_reader {
    const struct tar_reader_ops *ops;
    void *arg;
    enum tar_state state;
    unsigned char block[TAR_BLOCK];
    size_t have;        /* bytes in block (TAR_S_HEADER) or meta (TAR_S_META) */
    uint64_t remaining; /* bytes of the current data or skip */
    uint64_t padding;   /* bytes of padding after the current data */
    enum tar_meta_kind meta_kind;
    char *meta;         /* the extended header's data */
    size_t meta_len;
    /* What extended headers said about the next member. */
    char *next_name, *next_link;
    int has_next_size;
    uint64_t next_size;
    char name[TAR_READER_MAX_NAME + 1];
    char link[TAR_READER_MAX_NAME + 1];
};

int tar_reader_new(const struct tar_reader_ops *ops, void *arg, tar_reader_t **out,
                   struct err *err)
{
    struct tar_reader *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(err, ERR_NOMEM, "out of memory");
    r->ops = ops;
    r->arg = arg;
    *out = r;
    return 0;
}

static void tar_reader_clear_next(struct tar_reader *r)
{
    free(r->next_name);
    free(r->next_link);
    r->next_name = r->next_link = NULL;
    r->has_next_size = 0;
    r->next_size = 0;
}

void tar_reader_free(tar_reader_t *r)
{
    if (!r)
        return;
    tar_reader_clear_next(r);
    free(r->meta);
    free(r);
}

static int tar_fail(struct tar_reader *r, int rc)
{
    r->state = TAR_S_FAILED;
    return rc;
}

/* An octal field (leading spaces, digits, then NUL or space) or GNU's
 * base-256 (first byte 0x80, big-endian after it). */
static int tar_number(const unsigned char *f, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (f[0] & 0x80) {
        if (f[0] != 0x80)
            return -1; /* negative, or 0xff: no size or mode is */
        for (size_t i = 1; i < len; i++) {
            if (v >> 56)
                return -1;
            v = (v << 8) | f[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ')
        i++;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return -1;
        v = (v << 3) | (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++)
        if (f[i] != '\0' && f[i] != ' ')
            return -1;
    *out = v;
    return 0; /* an empty field (all NUL or spaces) is 0 */
}

static int tar_checksum_ok(const unsigned char *b)
{
    uint64_t stored;
    if (tar_number(b + 148, 8, &stored) != 0)
        return 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : b[i];
    return sum == stored;
}

/* Copies a NUL-padded field of at most `len` bytes. */
static size_t tar_field(char *out, const unsigned char *f, size_t len)
{
    size_t n = 0;
    while (n < len && f[n])
        n++;
    memcpy(out, f, n);
    out[n] = '\0';
    return n;
}

static int tar_set_string(char **slot, const char *p, size_t n, struct err *err)
{
    while (n && p[n - 1] == '\0')
        n--; /* GNU long names end in NUL */
    if (n > TAR_READER_MAX_NAME)
        return err_set(err, ERR_INVALID, "tar: a name is longer than %u bytes",
                       TAR_READER_MAX_NAME);
    if (memchr(p, '\0', n))
        return err_set(err, ERR_INVALID, "tar: a name holds a NUL byte");
    char *s = malloc(n + 1);
    if (!s)
        return err_set(err, ERR_NOMEM, "out of memory");
    memcpy(s, p, n);
    s[n] = '\0';
    free(*slot);
    *slot = s;
    return 0;
}

/* Reads pax records "LEN key=value\n" and keeps path, linkpath, size. */
static int tar_parse_pax(struct tar_reader *r, struct err *err)
{
    const char *p = r->meta, *end = r->meta + r->meta_len;
    while (p < end) {
        if (*p == '\0')
            break; /* padding some writers leave */
        size_t len = 0;
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9' && len < TAR_READER_MAX_META)
            len = len * 10 + (size_t)(*q++ - '0');
        if (q == p || q >= end || *q != ' ' || len <= (size_t)(q - p) + 1 ||
            len > (size_t)(end - p) || p[len - 1] != '\n')
            return err_set(err, ERR_INVALID, "tar: a malformed pax record");
        const char *key = q + 1, *rec_end = p + len - 1;
        const char *eq = memchr(key, '=', (size_t)(rec_end - key));
        if (!eq)
            return err_set(err, ERR_INVALID, "tar: a pax record without '='");
        size_t klen = (size_t)(eq - key), vlen = (size_t)(rec_end - eq - 1);
        const char *val = eq + 1;
        int rc = 0;
        if (klen == 4 && memcmp(key, "path", 4) == 0) {
            rc = tar_set_string(&r->next_name, val, vlen, err);
        } else if (klen == 8 && memcmp(key, "linkpath", 8) == 0) {
            rc = tar_set_string(&r->next_link, val, vlen, err);
        } else if (klen == 4 && memcmp(key, "size", 4) == 0) {
            uint64_t v = 0;
            if (vlen == 0 || vlen > 19)
                return err_set(err, ERR_INVALID, "tar: a bad pax size");
            for (size_t i = 0; i < vlen; i++) {
                if (val[i] < '0' || val[i] > '9')
                    return err_set(err, ERR_INVALID, "tar: a bad pax size");
                v = v * 10 + (uint64_t)(val[i] - '0');
            }
            r->next_size = v;
            r->has_next_size = 1;
        }
        if (rc)
            return rc;
        p += len;
    }
    return 0;
}

static void tar_after_data(struct tar_reader *r, uint64_t size)
{
    r->padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

static int tar_meta_done(struct tar_reader *r, struct err *err)
{
    int rc = 0;
    switch (r->meta_kind) {
    case TAR_META_PAX: rc = tar_parse_pax(r, err); break;
    case TAR_META_GLOBAL: break; /* defaults for every member: none we use */
    case TAR_META_LONGNAME: rc = tar_set_string(&r->next_name, r->meta, r->meta_len, err); break;
    case TAR_META_LONGLINK: rc = tar_set_string(&r->next_link, r->meta, r->meta_len, err); break;
    }
    if (rc)
        return rc;
    r->remaining = 0;
    r->state = TAR_S_SKIP; /* its padding */
    return 0;
}

/* A whole header block is in r->block: decides what follows it. */
static int tar_header(struct tar_reader *r, struct err *err)
{
    const unsigned char *b = r->block;
    int zero = 1;
    for (size_t i = 0; i < TAR_BLOCK && zero; i++)
        zero = b[i] == 0;
    if (zero) {
        r->state = TAR_S_END;
        return 0;
    }
    if (!tar_checksum_ok(b))
        return err_set(err, ERR_INVALID, "tar: a header's checksum is wrong (not a tar archive?)");
    uint64_t size, mode;
    if (tar_number(b + 124, 12, &size) != 0 || tar_number(b + 100, 8, &mode) != 0)
        return err_set(err, ERR_INVALID, "tar: a header's size or mode is malformed");
    char flag = (char)b[156];
    if (flag == 'x' || flag == 'g' || flag == 'L' || flag == 'K') {
        if (size > TAR_READER_MAX_META)
            return err_set(err, ERR_INVALID, "tar: an extended header of %llu bytes is too long",
                           (unsigned long long)size);
        r->meta_kind = flag == 'x' ? TAR_META_PAX
                     : flag == 'g' ? TAR_META_GLOBAL
                     : flag == 'L' ? TAR_META_LONGNAME : TAR_META_LONGLINK;
        char *m = realloc(r->meta, size ? size : 1);
        if (!m)
            return err_set(err, ERR_NOMEM, "out of memory");
        r->meta = m;
        r->meta_len = (size_t)size;
        r->have = 0;
        tar_after_data(r, size);
        r->state = TAR_S_META;
        return size ? 0 : tar_meta_done(r, err);
    }

    struct tar_member m = { .mode = (unsigned)(mode & 07777) };
    switch (flag) {
    case '0': case '\0': case '7': m.type = TAR_FILE; break;
    case '5': m.type = TAR_DIR; break;
    case '2': m.type = TAR_SYMLINK; break;
    case '1': m.type = TAR_HARDLINK; break;
    default: m.type = TAR_OTHER; break;
    }
    if (r->has_next_size)
        size = r->next_size;
    /* Links and directories carry no data, whatever the size field says. */
    if (m.type == TAR_DIR || m.type == TAR_SYMLINK || m.type == TAR_HARDLINK)
        size = 0;
    m.size = size;

    if (r->next_name) {
        strcpy(r->name, r->next_name);
    } else {
        size_t n = 0;
        if (memcmp(b + 257, "ustar", 5) == 0 && b[345]) {
            n = tar_field(r->name, b + 345, 155);
            r->name[n++] = '/';
        }
        tar_field(r->name + n, b, 100);
    }
    if (r->next_link)
        strcpy(r->link, r->next_link);
    else
        tar_field(r->link, b + 157, 100);
    tar_reader_clear_next(r);
    m.name = r->name;
    m.link = r->link;

    int rc = r->ops->member(r->arg, &m, err);
    if (rc)
        return rc;
    r->remaining = size;
    tar_after_data(r, size);
    r->state = TAR_S_DATA;
    if (size == 0) {
        rc = r->ops->end(r->arg, err);
        if (rc)
            return rc;
        r->state = TAR_S_HEADER;
        r->have = 0;
    }
    return 0;
}

int tar_reader_feed(tar_reader_t *r, const char *p, size_t n, struct err *err)
{
    int rc;
    while (n) {
        switch (r->state) {
        case TAR_S_FAILED:
            return err_set(err, ERR_INVALID, "tar: the archive was refused already");
        case TAR_S_END:
            return 0; /* the rest is the writer's padding to its record size */
        case TAR_S_HEADER: {
            size_t k = TAR_BLOCK - r->have < n ? TAR_BLOCK - r->have : n;
            memcpy(r->block + r->have, p, k);
            r->have += k, p += k, n -= k;
            if (r->have == TAR_BLOCK && (rc = tar_header(r, err)) != 0)
                return tar_fail(r, rc);
            break;
        }
        case TAR_S_META: {
            size_t k = r->meta_len - r->have < n ? r->meta_len - r->have : n;
            memcpy(r->meta + r->have, p, k);
            r->have += k, p += k, n -= k;
            if (r->have == r->meta_len && (rc = tar_meta_done(r, err)) != 0)
                return tar_fail(r, rc);
            break;
        }
        case TAR_S_DATA: {
            size_t k = r->remaining < n ? (size_t)r->remaining : n;
            if ((rc = r->ops->data(r->arg, p, k, err)) != 0)
                return tar_fail(r, rc);
            r->remaining -= k, p += k, n -= k;
            if (r->remaining == 0) {
                if ((rc = r->ops->end(r->arg, err)) != 0)
                    return tar_fail(r, rc);
                r->state = TAR_S_SKIP;
            }
            break;
        }
        case TAR_S_SKIP: {
            size_t k = r->padding < n ? (size_t)r->padding : n;
            r->padding -= k, p += k, n -= k;
            break;
        }
        }
        if (r->state == TAR_S_SKIP && r->padding == 0) {
            r->state = TAR_S_HEADER;
            r->have = 0;
        }
    }
    return 0;
}

int tar_reader_finish(tar_reader_t *r, struct err *err)
{
    if (r->state == TAR_S_END)
        return 0;
    if (r->state == TAR_S_FAILED)
        return err_set(err, ERR_INVALID, "tar: the archive was refused already");
    return err_set(err, ERR_INVALID, "tar: the archive is truncated (no end-of-archive block)");
}

int tar_reader_clean_name(const char *name, char *out, size_t size, struct err *err)
{
    if (name[0] == '/')
        return err_set(err, ERR_INVALID, "tar: member '%.180s' has an absolute name", name);
    size_t o = 0;
    const char *p = name;
    while (*p) {
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - seg);
        while (*p == '/')
            p++;
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.')
            return err_set(err, ERR_INVALID, "tar: member '%.180s' climbs out through '..'",
                           name);
        if (o + (o ? 1 : 0) + len + 1 > size)
            return err_set(err, ERR_INVALID, "tar: member name '%.180s' is too long", name);
        if (o)
            out[o++] = '/';
        memcpy(out + o, seg, len);
        o += len;
    }
    out[o] = '\0';
    return 0;
}

int tar_reader_check_link(const char *member, const char *target, struct err *err)
{
    if (target[0] == '/')
        return err_set(err, ERR_INVALID, "tar: link '%.100s' points to an absolute path", member);
    if (target[0] == '\0')
        return err_set(err, ERR_INVALID, "tar: link '%.100s' has an empty target", member);
    /* Depth below the extraction directory of the link's own directory.
     * ".." is taken only before any name: the directories it climbs are
     * real ones (nothing is extracted through a symlink), so counting them
     * is exact; after a name, which may be another symlink, it is not. */
    long depth = 0;
    int named = 0;
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
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            if (named)
                return err_set(err, ERR_INVALID,
                               "tar: link '%.100s' has '..' after a name (%.100s)", member,
                               target);
            if (--depth < 0)
                return err_set(err, ERR_INVALID, "tar: link '%.100s' points outside (%.100s)",
                               member, target);
        } else {
            named = 1;
        }
    }
    return 0;
}
