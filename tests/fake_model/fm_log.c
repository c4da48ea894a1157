/* The request log; see fm_log.h. */
#include "fm_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fm_log {
    pthread_mutex_t lock;
    FILE *f;           /* NULL: count only */
    unsigned long n;   /* guarded by lock */
    int failed;        /* a write error was already reported */
};

fm_log_t *fm_log_open(const char *path, char *err, size_t size)
{
    fm_log_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, size, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        snprintf(err, size, "cannot create a mutex");
        free(l);
        return NULL;
    }
    if (path) {
        l->f = fopen(path, "a");
        if (!l->f) {
            snprintf(err, size, "%s: cannot open the log for appending", path);
            pthread_mutex_destroy(&l->lock);
            free(l);
            return NULL;
        }
    }
    return l;
}

unsigned long fm_log_write(fm_log_t *l, const json_t *rec)
{
    unsigned long n;
    json_t *line = json_object();
    int ok;

    pthread_mutex_lock(&l->lock);
    n = ++l->n;
    /* "n" first so a human reading the file sees the order at a glance. */
    ok = line && json_object_set_new(line, "n", json_integer((json_int_t)n)) == 0 &&
         (!rec || json_object_update(line, (json_t *)rec) == 0);
    if (l->f) {
        if (!ok || json_dumpf(line, l->f, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
            fputc('\n', l->f) == EOF || fflush(l->f) != 0) {
            if (!l->failed)
                fprintf(stderr, "sj-fake-model: cannot write request %lu to the log\n", n);
            l->failed = 1;
        }
    }
    pthread_mutex_unlock(&l->lock);
    json_decref(line);
    return n;
}

unsigned long fm_log_count(fm_log_t *l)
{
    unsigned long n;
    pthread_mutex_lock(&l->lock);
    n = l->n;
    pthread_mutex_unlock(&l->lock);
    return n;
}

void fm_log_close(fm_log_t *l)
{
    if (!l)
        return;
    if (l->f && fclose(l->f) != 0)
        fprintf(stderr, "sj-fake-model: error closing the log\n");
    pthread_mutex_destroy(&l->lock);
    free(l);
}
