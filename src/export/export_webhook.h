/* The webhook target's pure parts, by the Standard Webhooks convention
 * (standardwebhooks.com): the secret file's format, the delivery id and the
 * signature.  The target itself (export_webhook.c, behind export_target.h)
 * POSTs with libcurl.  Unit-tested against the convention's published
 * example, so a receiver's stock library accepts what we sign. */
#ifndef SJ_EXPORT_WEBHOOK_H
#define SJ_EXPORT_WEBHOOK_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define EXPORT_WEBHOOK_KEY_MAX 256
#define EXPORT_WEBHOOK_ID_SIZE 40        /* "msg_" + 32 hex digits + NUL, with room */
#define EXPORT_WEBHOOK_SIGNATURE_SIZE 64 /* "v1," + 44 base64 characters + NUL */

/* Decodes "whsec_<base64>" (the prefix may be left off; blanks and a line
 * ending around it are ignored) into key[EXPORT_WEBHOOK_KEY_MAX].
 * ERR_INVALID without quoting the text: it is a secret. */
int export_webhook_secret_parse(const char *text, unsigned char *key, size_t *key_len,
                                struct err *err);

/* The webhook-id of the delivery of events first..last of a session:
 * "msg_" and 32 hex digits of SHA-256 over them, so a re-delivery of the
 * same batch, even by a restarted server, carries the same id. */
void export_webhook_id(const char *session_id, uint64_t first, uint64_t last,
                       char out[EXPORT_WEBHOOK_ID_SIZE]);

/* The webhook-signature header's value: "v1," and the base64 HMAC-SHA256
 * under `key` of "{id}.{timestamp}.{body}". */
void export_webhook_sign(const unsigned char *key, size_t key_len, const char *id,
                         int64_t timestamp, const char *body, size_t body_len,
                         char out[EXPORT_WEBHOOK_SIGNATURE_SIZE]);

#endif
