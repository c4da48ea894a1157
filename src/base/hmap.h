/* A string-keyed hash map (open addressing, linear probing).  Keys are
 * copied; values are borrowed pointers the map never frees.  Not
 * thread-safe: each owner guards its map with its own lock. */
#ifndef SJ_HMAP_H
#define SJ_HMAP_H

#include <stddef.h>

typedef struct hmap hmap_t;

/* new: free with hmap_free().  NULL on allocation failure. */
hmap_t *hmap_new(void);
void hmap_free(hmap_t *m);

/* borrowed: the stored value, or NULL. */
void *hmap_get(const hmap_t *m, const char *key);
/* Inserts or replaces.  0 or ERR_NOMEM (map unchanged). */
int hmap_put(hmap_t *m, const char *key, void *value);
/* Removes the key and returns its value (NULL if absent). */
void *hmap_remove(hmap_t *m, const char *key);
size_t hmap_count(const hmap_t *m);

/* Visits every entry; `fn` must not modify the map. */
void hmap_foreach(const hmap_t *m, void (*fn)(const char *key, void *value, void *arg),
                  void *arg);

#endif
