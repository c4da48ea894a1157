/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for signing webhooks.
 * Written here because the project's only library with a hash in it would
 * be libcurl's TLS backend, which is not ours to reach into.  Pure: no I/O,
 * no allocation; tests/unit/test_sha256.c checks the published vectors. */
#ifndef SJ_SHA256_H
#define SJ_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_BLOCK_LEN 64

struct sha256 {
    uint32_t h[8];
    uint64_t bytes; /* hashed so far */
    unsigned char block[SHA256_BLOCK_LEN];
    size_t fill;    /* bytes waiting in `block` */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_DIGEST_LEN]);

/* One call: out = SHA-256(data). */
void sha256_digest(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

/* HMAC-SHA256 in steps, so a message in several parts ("{id}.{ts}.{body}")
 * needs no copy.  The key may have any length. */
struct sha256_hmac {
    struct sha256 inner;
    unsigned char okey[SHA256_BLOCK_LEN]; /* key ^ opad */
};
void sha256_hmac_init(struct sha256_hmac *m, const void *key, size_t key_len);
void sha256_hmac_update(struct sha256_hmac *m, const void *data, size_t len);
void sha256_hmac_final(struct sha256_hmac *m, unsigned char out[SHA256_DIGEST_LEN]);

/* One call: out = HMAC-SHA256(key, data). */
void sha256_hmac(const void *key, size_t key_len, const void *data, size_t len,
                 unsigned char out[SHA256_DIGEST_LEN]);

#endif
