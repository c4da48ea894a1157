/* Error codes shared by every module, and the fixed-size error record that
 * carries their detail.  A function that can fail returns 0 or one of the
 * negative ERR_* codes and, when given a non-NULL `struct err *`, fills it.
 * The record has no heap memory so it can be filled when allocation failed.
 *
 * The codes map one-to-one onto the v1 API's ErrorType values so the HTTP
 * layer can turn any error into RFC 7807 ProblemDetails without guessing. */
#ifndef SJ_ERR_H
#define SJ_ERR_H

enum err_code {
    ERR_OK = 0,
    ERR_INVALID = -1,          /* 400 invalid_request */
    ERR_UNSUPPORTED_AGENT = -2,/* 400 unsupported_agent */
    ERR_MODE_NOT_SUPPORTED = -3, /* 400 mode_not_supported */
    ERR_AUTH = -4,             /* 401 token_invalid */
    ERR_NOT_FOUND = -5,        /* 404 session_not_found */
    ERR_NOT_INSTALLED = -6,    /* 404 agent_not_installed */
    ERR_CONFLICT = -7,         /* 409 session_already_exists */
    ERR_TOO_LARGE = -8,        /* 413 invalid_request */
    ERR_INSTALL_FAILED = -9,   /* 500 install_failed */
    ERR_AGENT_EXITED = -10,    /* 500 agent_process_exited */
    ERR_INTERNAL = -11,        /* 500 stream_error */
    ERR_NOMEM = -12,           /* 503 stream_error */
    ERR_STORAGE = -13,         /* 503 stream_error: the journal refused a write */
    ERR_ROUTE_NOT_FOUND = -14, /* 404 about:blank: no such path */
    ERR_METHOD = -15,          /* 405 about:blank; subject = the allowed method */
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
