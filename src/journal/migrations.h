/* The numbered SQL files of migrations/, compiled into the binary by
 * cmake/embed.cmake in version order. */
#ifndef SJ_MIGRATIONS_H
#define SJ_MIGRATIONS_H

#include <stddef.h>

struct migration {
    int version;      /* the file's number: 1 for 0001_init.sql */
    const char *name; /* the file name, for error messages */
    const char *sql;  /* NUL-terminated script */
};

extern const struct migration migrations_all[];
extern const size_t migrations_count;

#endif
