/* Small helpers every command's option parser shares. */
#ifndef SJ_OPTS_H
#define SJ_OPTS_H

#include <stddef.h>

/* Prints "sandbox-journal: <message>" as one line on stderr; returns 2, the
 * exit status for bad usage. */
int opts_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a decimal number from 0 to `max`.  0, or -1 if it is not one. */
int opts_uint(const char *text, unsigned long max, unsigned long *out);

/* Matches argv[*i] against "--long", "--long=value" or the short form (may be
 * NULL).  Returns 1 on a match; for options that take a value, *value is set
 * from the same or the next argument (advancing *i), or *missing is set. */
int opts_match(int argc, char **argv, int *i, const char *longname, const char *shortname,
               int takes_value, const char **value, int *missing);

#endif
