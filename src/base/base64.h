/* Base64 (RFC 4648, standard alphabet, with '=' padding): the webhook
 * secret's encoding and the signature's.  Pure; unit-tested against the
 * RFC's vectors (tests/unit/test_sha256.c). */
#ifndef SJ_BASE64_H
#define SJ_BASE64_H

#include <stddef.h>

/* Room base64_encode() needs for `len` bytes, the terminating NUL included. */
#define BASE64_ENCODED_SIZE(len) ((((len) + 2) / 3) * 4 + 1)

/* Writes the encoding of data[0..len) and a NUL into out, which must hold
 * BASE64_ENCODED_SIZE(len) bytes.  Returns the length without the NUL. */
size_t base64_encode(const void *data, size_t len, char *out);

/* Decodes text[0..len) into out (room for len / 4 * 3 bytes is enough).
 * Padding may be left off; whitespace is not allowed.  0 with *out_len
 * set, or -1 for text that is not base64. */
int base64_decode(const char *text, size_t len, unsigned char *out, size_t *out_len);

#endif
