/* A tiny tar writer for tests: ustar headers, GNU long names ('L') and pax
 * records ('x') built by hand, so the tests can make archives no well-behaved
 * tool would (names with "..", absolute names, links pointing out). */
#ifndef SJ_TEST_TARW_H
#define SJ_TEST_TARW_H

#include "base/buf.h"

#include <stddef.h>

/* Appends one member to `b`: type '0' file (data/len), '5' directory,
 * '2' symlink or '1' hard link (to `link`).  A name over 100 bytes gets a
 * GNU long-name member first. */
void tarw_add(struct buf *b, const char *name, char type, const char *link, const char *data,
              size_t len);
/* Appends a pax extended header ('x') with the records "key=value", as
 * NULL-terminated pairs: tarw_pax(b, "path", "x/y", NULL). */
void tarw_pax(struct buf *b, ...);
/* Appends the two zero blocks that end an archive. */
void tarw_end(struct buf *b);

#endif
