/* Error codes shared by every module, and the fixed-size error record that
 * carries their detail.  A function that can fail returns 0 or one of the
 * negative ERR_* codes and, when given a non-NULL `struct err *`, fills it.
 * The record has no heap memory so it can be filled when allocation failed.
 *
 * The codes, their names and their v1 ErrorType, HTTP status and title are
 * one table, base/errors.def, so the HTTP layer turns any error into RFC 7807
 * ProblemDetails without a list of its own. */
#ifndef SJ_ERR_H
#define SJ_ERR_H

enum err_code {
    ERR_OK = 0,
#define ERR(name, value, status, type, title, subject_key) ERR_##name = value,
#include "base/errors.def"
};

struct err {
    int code;
    char msg[256];     /* one line, human readable, never a secret */
    char subject[128]; /* the session id or agent the error is about, or "" */
    char mode[64];     /* ERR_MODE_NOT_SUPPORTED: the refused mode, else "" */
};

/* Fills `e` (if non-NULL) and returns `code`, so callers can write
 * `return err_set(err, ERR_INVALID, "bad %s", x);`. */
int err_set(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, and records the session id or agent name the error concerns. */
int err_set_subject(struct err *e, int code, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ERR_MODE_NOT_SUPPORTED for `mode` of `agent`, with the v1 message. */
int err_set_mode(struct err *e, const char *agent, const char *mode);

void err_clear(struct err *e);

/* Static name of a code, e.g. "ERR_STORAGE", for logs and tests. */
const char *err_name(int code);

#endif
