/* Export target URLs: parsing, the key checkpoints are stored under, and
 * masking, so a password given in a URL is never printed.
 *
 *   postgres://[user[:password]@]host[:port][/database][?params]
 *   postgresql://...                       (the same; libpq reads the URL)
 *   clickhouse+http://[user[:password]@]host[:port][/database]
 *   clickhouse+https://...                 (TLS), clickhouse://... = +http
 *   jsonl:PATH                             (a file; relative to the cwd)
 *   http://[user[:password]@]host[:port][/path][?query]   a webhook
 *   https://...                            (TLS): plain HTTP(S) is always a
 *                                          webhook; ClickHouse has its own
 *                                          clickhouse[+http[s]]:// schemes
 *
 * Pure string work: no I/O but getcwd() for a relative JSONL path. */
#ifndef SJ_EXPORT_URL_H
#define SJ_EXPORT_URL_H

#include "base/err.h"

#include <stddef.h>

enum export_url_kind {
    EXPORT_URL_POSTGRES,
    EXPORT_URL_CLICKHOUSE,
    EXPORT_URL_JSONL,
    EXPORT_URL_WEBHOOK,
};

/* A parsed URL.  Every string is owned by the struct (export_url_clear());
 * those marked "or NULL" may be absent. */
struct export_url {
    enum export_url_kind kind;
    char *text;     /* the URL as given, credentials included: for connecting only */
    char *masked;   /* the URL with its password replaced by "***": safe to print */
    char *key;      /* what checkpoints are kept under: scheme://user@host:port/db[?params]
                     * for servers (passwords masked), jsonl:/absolute/path,
                     * webhook:<the URL with its password masked> */
    char *user;     /* percent-decoded, or NULL */
    char *password; /* percent-decoded, or NULL */
    char *host;     /* without [] for IPv6; "" for PostgreSQL's unix socket */
    unsigned port;  /* 0 when not given (PostgreSQL: libpq's default) */
    char *database; /* percent-decoded, or NULL */
    char *params;   /* the text after '?', or NULL */
    char *path;     /* JSONL: the absolute file path; webhook: the path ("/" when
                     * none); else NULL */
    int tls;        /* clickhouse+https, https */
};

/* Parses `text`: 0, ERR_INVALID for a bad URL, or ERR_NOMEM.  On failure
 * *u is left cleared and err says what is wrong without repeating the
 * password.  new: *u's strings, released with
 * export_url_clear(). */
int export_url_parse(const char *text, struct export_url *u /* OUT */, struct err *err);

void export_url_clear(struct export_url *u);

/* Writes `text` into out[size] with any password hidden: the part after
 * "user:" in the authority and the value of a password= parameter become
 * "***".  Works on text that does not parse, so error messages can quote
 * what the user typed.  Truncates to fit; out is always terminated. */
void export_url_mask(const char *text, char *out, size_t size);

/* Replaces every occurrence of u's password in msg (a NUL-terminated
 * message of capacity `size`) with "***", for errors a driver wrote that
 * might echo a connection string. */
void export_url_scrub(const struct export_url *u, char *msg, size_t size);

#endif
