/* Watermarks and waiting: what readers may see of each session, and the
 * waiters parked until it moves (watch_lock, see LOCKS in journal_int.h). */
#include "journal/journal_int.h"

static void wait_list_unlink(journal_t *j, struct journal_wait_list *l,
                             struct journal_waiter *w)
{
    assert(watch_held(j));
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->next = w->prev = NULL;
    w->parked = 0;
    w->session_id = NULL;
    if (!l->head) {
        hmap_remove(j->waits, l->key);
        if (l->prev)
            l->prev->next = l->next;
        else
            j->wait_lists = l->next;
        if (l->next)
            l->next->prev = l->prev;
        free(l);
    }
}

static struct journal_wait_list *wait_list_of(struct journal_waiter *w)
{
    return (struct journal_wait_list *)(void *)(w->session_id -
                                                offsetof(struct journal_wait_list, key));
}

/* Unlinks a journal_park_any() waiter (session_id NULL).  Under watch_lock. */
static void any_unlink(journal_t *j, struct journal_waiter *w)
{
    assert(watch_held(j));
    if (w->prev)
        w->prev->next = w->next;
    else
        j->any_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        j->any_tail = w->prev;
    w->next = w->prev = NULL;
    w->parked = 0;
}

/* Wakes every journal_park_any() waiter whose `seen` the wake count has
 * passed.  Under watch_lock; each is unlinked before its wake runs. */
void journal__wake_any(journal_t *j, int all)
{
    assert(watch_held(j));
    for (struct journal_waiter *w = j->any_head, *next; w; w = next) {
        next = w->next;
        if (all || w->after < j->wake_gen) {
            any_unlink(j, w);
            if (w->wake)
                w->wake(w);
        }
    }
}

/* Wakes the waiters of `l` that `last` has passed.  Called under watch_lock.
 * Each waiter is unlinked before its wake runs: its owner may reuse it as
 * soon as wake returns. */
void journal__wake_passed(journal_t *j, struct journal_wait_list *l, uint64_t last)
{
    assert(watch_held(j));
    /* Unlinking the last waiter frees l, but then `next` is already NULL. */
    for (struct journal_waiter *w = l->head, *next; w; w = next) {
        next = w->next;
        if (w->after < last) {
            wait_list_unlink(j, l, w);
            if (w->wake)
                w->wake(w);
        }
    }
}

/* ---- watermarks and waiting -------------------------------------------- */

int journal_session_exists(journal_t *j, const char *session_id)
{
    if (!session_id)
        return 0;
    pthread_mutex_lock(&j->watch_lock);
    const struct journal_mark *m = hmap_get(j->marks, session_id);
    int exists = m && m->exists;
    pthread_mutex_unlock(&j->watch_lock);
    return exists;
}

uint64_t journal_last_sequence(journal_t *j, const char *session_id)
{
    if (!session_id)
        return 0;
    pthread_mutex_lock(&j->watch_lock);
    const struct journal_mark *m = hmap_get(j->marks, session_id);
    uint64_t last = m && m->exists ? m->last : 0;
    pthread_mutex_unlock(&j->watch_lock);
    return last;
}

void journal_get_stats(journal_t *j, struct journal_stats *out)
{
    pthread_mutex_lock(&j->watch_lock);
    *out = j->stats;
    pthread_mutex_unlock(&j->watch_lock);
    out->checkpoints = atomic_load(&j->ckpt_count);
}

int journal_park(journal_t *j, const char *session_id, uint64_t after,
                 struct journal_waiter *w)
{
    if (!session_id || !w)
        return ERR_INVALID;
    pthread_mutex_lock(&j->watch_lock);
    if (j->watch_closing || w->parked) {
        pthread_mutex_unlock(&j->watch_lock);
        return ERR_INVALID;
    }
    const struct journal_mark *m = hmap_get(j->marks, session_id);
    if (m && m->exists && m->last > after) {
        pthread_mutex_unlock(&j->watch_lock);
        return 1;
    }
    struct journal_wait_list *l = hmap_get(j->waits, session_id);
    if (!l) {
        size_t len = strlen(session_id);
        l = calloc(1, sizeof *l + len + 1);
        if (!l) {
            pthread_mutex_unlock(&j->watch_lock);
            return ERR_NOMEM;
        }
        memcpy(l->key, session_id, len + 1);
        if (hmap_put(j->waits, session_id, l) != 0) {
            free(l);
            pthread_mutex_unlock(&j->watch_lock);
            return ERR_NOMEM;
        }
        l->next = j->wait_lists;
        if (l->next)
            l->next->prev = l;
        j->wait_lists = l;
    }
    w->session_id = l->key;
    w->after = after;
    w->parked = 1;
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    if (w->park)
        w->park(w);
    pthread_mutex_unlock(&j->watch_lock);
    return 0;
}

int journal_unpark(journal_t *j, struct journal_waiter *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&j->watch_lock);
    int was = w->parked;
    if (was && !w->session_id)
        any_unlink(j, w);
    else if (was)
        wait_list_unlink(j, wait_list_of(w), w);
    pthread_mutex_unlock(&j->watch_lock);
    return was;
}

uint64_t journal_wake_count(journal_t *j)
{
    pthread_mutex_lock(&j->watch_lock);
    uint64_t n = j->wake_gen;
    pthread_mutex_unlock(&j->watch_lock);
    return n;
}

int journal_park_any(journal_t *j, uint64_t seen, struct journal_waiter *w)
{
    if (!w)
        return ERR_INVALID;
    pthread_mutex_lock(&j->watch_lock);
    if (j->watch_closing || w->parked) {
        pthread_mutex_unlock(&j->watch_lock);
        return ERR_INVALID;
    }
    if (j->wake_gen > seen) {
        pthread_mutex_unlock(&j->watch_lock);
        return 1;
    }
    w->session_id = NULL; /* marks it as one of the any-list */
    w->after = seen;
    w->parked = 1;
    w->next = NULL;
    w->prev = j->any_tail;
    if (j->any_tail)
        j->any_tail->next = w;
    else
        j->any_head = w;
    j->any_tail = w;
    if (w->park)
        w->park(w);
    pthread_mutex_unlock(&j->watch_lock);
    return 0;
}

void journal_wake_all(journal_t *j, int closing)
{
    pthread_mutex_lock(&j->watch_lock);
    if (closing)
        j->watch_closing = 1;
    j->wake_gen++;
    /* Unlinking a list's last waiter frees the list and advances
     * j->wait_lists, so this always takes the first waiter still parked. */
    for (struct journal_wait_list *l; (l = j->wait_lists);) {
        struct journal_waiter *w = l->head;
        wait_list_unlink(j, l, w);
        if (w->wake)
            w->wake(w);
    }
    journal__wake_any(j, 1);
    pthread_mutex_unlock(&j->watch_lock);
}

