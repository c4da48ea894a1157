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
#define ERR(name, value, status, type, title, subject_key) \
    case ERR_##name: return "ERR_" #name;
#include "base/errors.def"
    default: return "ERR_UNKNOWN";
    }
}
