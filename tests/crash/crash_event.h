/* The events the crash driver appends, as pure functions of (session,
 * sequence), shared by the driver (which writes them) and the harness (which
 * checks that what is stored is exactly this).  Sizes vary from a few bytes
 * to a few kilobytes so that batches cross page boundaries and a commit
 * writes several WAL frames. */
#ifndef SJ_CRASH_EVENT_H
#define SJ_CRASH_EVENT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const char *crash_event_type(uint64_t seq)
{
    return seq % 3 == 0 ? "item.delta" : "item.completed";
}

/* new (malloc): the event text, ending in "\"raw\":null}" as the journal
 * requires; *len gets its length.  NULL when memory ran out. */
static inline char *crash_event_json(const char *sid, uint64_t seq, size_t *len)
{
    uint64_t h = seq * 0x9E3779B97F4A7C15ull;
    for (const char *p = sid; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001B3ull;
    size_t pad = (size_t)(h >> 40) % (seq % 17 == 0 ? 6000 : 300);
    size_t cap = pad + strlen(sid) + 160;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int n = snprintf(s, cap, "{\"session\":\"%s\",\"sequence\":%llu,\"hash\":\"%016llx\",\"pad\":\"",
                     sid, (unsigned long long)seq, (unsigned long long)h);
    size_t at = (size_t)n;
    for (size_t i = 0; i < pad; i++)
        s[at++] = (char)('a' + (char)((h >> (i % 48)) % 26));
    memcpy(s + at, "\",\"raw\":null}", 14);
    *len = at + 13;
    return s;
}

/* new (malloc): the native payload stored beside every third event, or NULL
 * (none; also when memory ran out, which the driver then just skips). */
static inline char *crash_event_raw(uint64_t seq, size_t *len)
{
    *len = 0;
    if (seq % 3 != 1)
        return NULL;
    char *s = malloc(48);
    if (!s)
        return NULL;
    int n = snprintf(s, 48, "{\"native\":%llu}", (unsigned long long)seq);
    *len = (size_t)n;
    return s;
}

#endif
