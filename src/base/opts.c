#include "base/opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int opts_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sandbox-journal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int opts_uint(const char *text, unsigned long max, unsigned long *out)
{
    if (!text || !*text || text[0] == '-' || text[0] == '+' || text[0] == ' ')
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int opts_match(int argc, char **argv, int *i, const char *longname, const char *shortname,
               int takes_value, const char **value, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(longname);
    const char *inline_value = NULL;
    if (strncmp(a, longname, n) == 0 && (a[n] == '\0' || (a[n] == '=' && takes_value)))
        inline_value = a[n] == '=' ? a + n + 1 : NULL;
    else if (!shortname || strcmp(a, shortname) != 0)
        return 0;
    if (!takes_value)
        return 1;
    if (inline_value)
        *value = inline_value;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else
        *missing = 1;
    return 1;
}
