/* SHA-1 (FIPS 180-4), for the one place the protocol fixes it: the
 * WebSocket handshake's Sec-WebSocket-Accept (RFC 6455 section 4.2.2).  Not
 * for anything that needs collision resistance.  Pure: no I/O, no
 * allocation; tests/unit/test_sha1.c checks the published vectors. */
#ifndef SJ_SHA1_H
#define SJ_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_LEN 20
#define SHA1_BLOCK_LEN 64

struct sha1 {
    uint32_t h[5];
    uint64_t bytes; /* hashed so far */
    unsigned char block[SHA1_BLOCK_LEN];
    size_t fill;    /* bytes waiting in `block` */
};

void sha1_init(struct sha1 *s);
void sha1_update(struct sha1 *s, const void *data, size_t len);
void sha1_final(struct sha1 *s, unsigned char out[SHA1_DIGEST_LEN]);

/* One call: out = SHA-1(data). */
void sha1_digest(const void *data, size_t len, unsigned char out[SHA1_DIGEST_LEN]);

#endif
