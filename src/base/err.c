#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A printf wrapper: its callers' format strings are checked at their calls. */
__attribute__((format(printf, 4, 0)))
static void err_vfill(struct err *e, int code, const char *subject, const char *fmt,
                      va_list ap)
{
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    snprintf(e->subject, sizeof e->subject, "%s", subject ? subject : "");
    e->mode[0] = '\0';
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        err_vfill(e, code, NULL, fmt, ap);
        va_end(ap);
    }
    return code;
}

int err_set_subject(struct err *e, int code, const char *subject, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        err_vfill(e, code, subject, fmt, ap);
        va_end(ap);
    }
    return code;
}

int err_set_mode(struct err *e, const char *agent, const char *mode)
{
    err_set_subject(e, ERR_MODE_NOT_SUPPORTED, agent, "mode not supported: %s %s", agent, mode);
    if (e)
        snprintf(e->mode, sizeof e->mode, "%s", mode);
    return ERR_MODE_NOT_SUPPORTED;
}

void err_clear(struct err *e)
{
    if (e) {
        e->code = ERR_OK;
        e->msg[0] = '\0';
        e->subject[0] = '\0';
        e->mode[0] = '\0';
    }
}

const char *err_name(int code)
{
    switch (code) {
    case ERR_OK: return "ERR_OK";
    case ERR_INVALID: return "ERR_INVALID";
    case ERR_UNSUPPORTED_AGENT: return "ERR_UNSUPPORTED_AGENT";
    case ERR_MODE_NOT_SUPPORTED: return "ERR_MODE_NOT_SUPPORTED";
    case ERR_AUTH: return "ERR_AUTH";
    case ERR_NOT_FOUND: return "ERR_NOT_FOUND";
    case ERR_NOT_INSTALLED: return "ERR_NOT_INSTALLED";
    case ERR_CONFLICT: return "ERR_CONFLICT";
    case ERR_TOO_LARGE: return "ERR_TOO_LARGE";
    case ERR_INSTALL_FAILED: return "ERR_INSTALL_FAILED";
    case ERR_AGENT_EXITED: return "ERR_AGENT_EXITED";
    case ERR_INTERNAL: return "ERR_INTERNAL";
    case ERR_NOMEM: return "ERR_NOMEM";
    case ERR_STORAGE: return "ERR_STORAGE";
    case ERR_ROUTE_NOT_FOUND: return "ERR_ROUTE_NOT_FOUND";
    case ERR_METHOD: return "ERR_METHOD";
    default: return "ERR_UNKNOWN";
    }
}
