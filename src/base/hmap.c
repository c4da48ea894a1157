#include "base/hmap.h"

#include "base/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hmap_slot {
    char *key; /* NULL: empty */
    void *value;
    uint64_t hash;
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t hmap_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

hmap_t *hmap_new(void)
{
    hmap_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void hmap_free(hmap_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static size_t hmap_find(const hmap_t *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    while (m->slots[i].key) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int hmap_grow(hmap_t *m)
{
    size_t cap = m->cap * 2;
    struct hmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = (size_t)m->slots[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

void *hmap_get(const hmap_t *m, const char *key)
{
    size_t i = hmap_find(m, key, hmap_hash(key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

int hmap_put(hmap_t *m, const char *key, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = hmap_grow(m);
        if (rc)
            return rc;
    }
    uint64_t h = hmap_hash(key);
    size_t i = hmap_find(m, key, h);
    if (m->slots[i].key) {
        m->slots[i].value = value;
        return 0;
    }
    char *copy = strdup(key);
    if (!copy)
        return ERR_NOMEM;
    m->slots[i].key = copy;
    m->slots[i].value = value;
    m->slots[i].hash = h;
    m->count++;
    return 0;
}

void *hmap_remove(hmap_t *m, const char *key)
{
    size_t mask = m->cap - 1;
    size_t i = hmap_find(m, key, hmap_hash(key));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    /* Re-seat the rest of the probe run so lookups never stop early. */
    size_t j = (i + 1) & mask;
    while (m->slots[j].key) {
        struct hmap_slot s = m->slots[j];
        m->slots[j].key = NULL;
        size_t k = (size_t)s.hash & mask;
        while (m->slots[k].key)
            k = (k + 1) & mask;
        m->slots[k] = s;
        j = (j + 1) & mask;
    }
    return value;
}

size_t hmap_count(const hmap_t *m)
{
    return m->count;
}

void hmap_foreach(const hmap_t *m, void (*fn)(const char *key, void *value, void *arg),
                  void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            fn(m->slots[i].key, m->slots[i].value, arg);
}
