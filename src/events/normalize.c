#include "events/normalize.h"

#include "base/buf.h"
#include "events/event.h"
#include "base/hmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A set of item ids.  A session's state lives as long as the session and
 * grows with every item, so the ids this normalizer hands out, "itm_N" with
 * N counting up from 1, take one bit each; an id of any other shape (only an
 * adapter that names its own items makes those) goes to the map. */
struct normalize_idset {
    unsigned char *bits;
    size_t nbytes;
    hmap_t *other;
};

/* Bounds the bitmap (2 MiB): a larger N is an adapter's own id. */
#define NORMALIZE_IDSET_MAX_BITS ((uint64_t)1 << 24)

struct normalize {
    char *session_id;
    int agent_emits_item_started;
    int agent_can_resume;
    int assistant_message_ends_turn;

    uint64_t last_sequence;
    uint64_t next_item_id; /* the N of the last "itm_N" handed out or seen */
    int session_started;
    int ended;
    char *native_session_id;

    hmap_t *item_map;                   /* native item id -> owned "itm_N" string */
    struct normalize_idset item_started;    /* item ids with a started/completed event */
    struct normalize_idset item_delta_seen; /* item ids with a delta */
    hmap_t *pending_permissions; /* permission id -> owned json_t (event data) */
    hmap_t *pending_questions;   /* question id -> owned json_t (event data) */

    /* Native ids of queued synthetic assistant items, oldest first. */
    char **pending_assistant;
    size_t pending_assistant_count;
    size_t pending_assistant_cap;
    uint64_t pending_assistant_counter;
};

/* One event about to be produced by normalize_apply(). */
struct normalize_staged {
    const char *type;
    json_t *data; /* owned */
    int synthetic;
    const char *source;
    int is_conversion; /* carries the conversion's raw payload */
};

/* ---- small helpers --------------------------------------------------------- */

static int normalize_str_eq(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static int normalize_is_type(const char *type, const char *want)
{
    return strcmp(type, want) == 0;
}

static int normalize_is_assistant_message(const json_t *item)
{
    return normalize_str_eq(json_object_get(item, "kind"), "message") &&
           normalize_str_eq(json_object_get(item, "role"), "assistant");
}

static uint64_t normalize_item_number(const char *id);

/* The bit for `id`, or 0 when the id belongs in the map: it is not exactly
 * "itm_N" as normalize_item_number() reads it back (no leading zero). */
static uint64_t normalize_idset_bit(const char *id)
{
    uint64_t v = normalize_item_number(id);
    return v && id[4] != '0' && v < NORMALIZE_IDSET_MAX_BITS ? v : 0;
}

static int normalize_idset_add(struct normalize_idset *set, const char *id)
{
    if (!id)
        return 0;
    uint64_t bit = normalize_idset_bit(id);
    if (!bit) {
        /* The map stores an arbitrary non-NULL marker: hmap_get() signals
         * absence with NULL. */
        return hmap_put(set->other, id, set);
    }
    size_t byte = (size_t)(bit / 8);
    if (byte >= set->nbytes) {
        size_t nbytes = set->nbytes ? set->nbytes : 64;
        while (nbytes <= byte)
            nbytes *= 2;
        unsigned char *bits = realloc(set->bits, nbytes);
        if (!bits)
            return ERR_NOMEM;
        memset(bits + set->nbytes, 0, nbytes - set->nbytes);
        set->bits = bits;
        set->nbytes = nbytes;
    }
    set->bits[byte] |= (unsigned char)(1u << (bit % 8));
    return 0;
}

static int normalize_idset_has(const struct normalize_idset *set, const char *id)
{
    if (!id)
        return 0;
    uint64_t bit = normalize_idset_bit(id);
    if (!bit)
        return hmap_get(set->other, id) != NULL;
    size_t byte = (size_t)(bit / 8);
    return byte < set->nbytes && (set->bits[byte] >> (bit % 8)) & 1u;
}

static void normalize_idset_free(struct normalize_idset *set)
{
    free(set->bits);
    hmap_free(set->other);
}

/* item_map values are owned copies. */
static int normalize_map_put(hmap_t *map, const char *key, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return ERR_NOMEM;
    char *old = hmap_get(map, key);
    if (hmap_put(map, key, copy)) {
        free(copy);
        return ERR_NOMEM;
    }
    free(old);
    return 0;
}

static void normalize_free_str_value(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

static void normalize_free_json_value(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    json_decref(value);
}

static int normalize_json_put(hmap_t *map, const char *key, json_t *value)
{
    json_t *old = hmap_get(map, key);
    if (hmap_put(map, key, json_incref(value))) {
        json_decref(value);
        return ERR_NOMEM;
    }
    json_decref(old);
    return 0;
}

/* The N of "itm_N" (decimal digits only), or 0. */
static uint64_t normalize_item_number(const char *id)
{
    if (!id || strncmp(id, "itm_", 4) != 0 || !id[4])
        return 0;
    uint64_t v = 0;
    for (const char *p = id + 4; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        if (v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

/* Item ids written into events push the allocator past them, so an id never
 * repeats and a rebuilt normalizer continues exactly where the first one
 * stopped. */
static void normalize_note_item_id(normalize_t *n, const json_t *id)
{
    uint64_t v = normalize_item_number(json_string_value(id));
    if (v > n->next_item_id)
        n->next_item_id = v;
}

/* The n of "<session_id>_pending_assistant_<n>", or 0. */
static uint64_t normalize_pending_number(const normalize_t *n, const char *native)
{
    static const char infix[] = "_pending_assistant_";
    size_t sid_len = strlen(n->session_id);
    if (!native || strncmp(native, n->session_id, sid_len) != 0 ||
        strncmp(native + sid_len, infix, sizeof infix - 1) != 0)
        return 0;
    const char *p = native + sid_len + sizeof infix - 1;
    if (!*p)
        return 0;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

static int normalize_pending_push(normalize_t *n, const char *native)
{
    if (n->pending_assistant_count == n->pending_assistant_cap) {
        size_t cap = n->pending_assistant_cap ? n->pending_assistant_cap * 2 : 4;
        char **q = realloc(n->pending_assistant, cap * sizeof *q);
        if (!q)
            return ERR_NOMEM;
        n->pending_assistant = q;
        n->pending_assistant_cap = cap;
    }
    char *copy = strdup(native);
    if (!copy)
        return ERR_NOMEM;
    n->pending_assistant[n->pending_assistant_count++] = copy;
    return 0;
}

/* new: the oldest queued native id, removed from the queue. */
static char *normalize_pending_pop(normalize_t *n)
{
    if (!n->pending_assistant_count)
        return NULL;
    char *front = n->pending_assistant[0];
    n->pending_assistant_count--;
    memmove(n->pending_assistant, n->pending_assistant + 1,
            n->pending_assistant_count * sizeof *n->pending_assistant);
    return front;
}

static int normalize_pending_contains(const normalize_t *n, const char *native)
{
    for (size_t i = 0; i < n->pending_assistant_count; i++)
        if (strcmp(n->pending_assistant[i], native) == 0)
            return 1;
    return 0;
}

static int normalize_set_native(normalize_t *n, const char *native)
{
    char *copy = NULL;
    if (native && !(copy = strdup(native)))
        return ERR_NOMEM;
    free(n->native_session_id);
    n->native_session_id = copy;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------- */

normalize_t *normalize_new(const struct normalize_config *config)
{
    if (!config || !config->session_id)
        return NULL;
    normalize_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->agent_emits_item_started = config->agent_emits_item_started;
    n->agent_can_resume = config->agent_can_resume;
    n->assistant_message_ends_turn = config->assistant_message_ends_turn;
    n->session_id = strdup(config->session_id);
    n->item_map = hmap_new();
    n->item_started.other = hmap_new();
    n->item_delta_seen.other = hmap_new();
    n->pending_permissions = hmap_new();
    n->pending_questions = hmap_new();
    if (!n->session_id || !n->item_map || !n->item_started.other ||
        !n->item_delta_seen.other ||
        !n->pending_permissions || !n->pending_questions) {
        normalize_free(n);
        return NULL;
    }
    return n;
}

void normalize_free(normalize_t *n)
{
    if (!n)
        return;
    if (n->item_map) {
        hmap_foreach(n->item_map, normalize_free_str_value, NULL);
        hmap_free(n->item_map);
    }
    normalize_idset_free(&n->item_started);
    normalize_idset_free(&n->item_delta_seen);
    if (n->pending_permissions) {
        hmap_foreach(n->pending_permissions, normalize_free_json_value, NULL);
        hmap_free(n->pending_permissions);
    }
    if (n->pending_questions) {
        hmap_foreach(n->pending_questions, normalize_free_json_value, NULL);
        hmap_free(n->pending_questions);
    }
    for (size_t i = 0; i < n->pending_assistant_count; i++)
        free(n->pending_assistant[i]);
    free(n->pending_assistant);
    free(n->native_session_id);
    free(n->session_id);
    free(n);
}

void normalize_output_init(struct normalize_output *out)
{
    memset(out, 0, sizeof *out);
}

static void normalize_event_free(struct normalize_event *ev)
{
    free(ev->type);
    free(ev->json);
    free(ev->raw);
}

static void normalize_alias_free(struct normalize_alias *a)
{
    free(a->native_id);
    free(a->item_id);
}

void normalize_output_clear(struct normalize_output *out)
{
    for (size_t i = 0; i < out->count; i++)
        normalize_event_free(&out->events[i]);
    free(out->events);
    for (size_t i = 0; i < out->n_aliases; i++)
        normalize_alias_free(&out->aliases[i]);
    free(out->aliases);
    normalize_output_init(out);
}

/* Drops events and aliases appended after `count` and `n_aliases`, so a
 * failed apply adds nothing. */
static void normalize_output_truncate(struct normalize_output *out, size_t count,
                                      size_t n_aliases)
{
    while (out->count > count)
        normalize_event_free(&out->events[--out->count]);
    while (out->n_aliases > n_aliases)
        normalize_alias_free(&out->aliases[--out->n_aliases]);
}

static int normalize_output_add_alias(struct normalize_output *out, const char *native_id,
                                      const char *item_id)
{
    if (out->n_aliases == out->cap_aliases) {
        size_t cap = out->cap_aliases ? out->cap_aliases * 2 : 2;
        struct normalize_alias *a = realloc(out->aliases, cap * sizeof *a);
        if (!a)
            return ERR_NOMEM;
        out->aliases = a;
        out->cap_aliases = cap;
    }
    struct normalize_alias *a = &out->aliases[out->n_aliases];
    a->native_id = strdup(native_id);
    a->item_id = strdup(item_id);
    if (!a->native_id || !a->item_id) {
        normalize_alias_free(a);
        return ERR_NOMEM;
    }
    out->n_aliases++;
    return 0;
}

static struct normalize_event *normalize_output_add(struct normalize_output *out)
{
    if (out->count == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 4;
        struct normalize_event *ev = realloc(out->events, cap * sizeof *ev);
        if (!ev)
            return NULL;
        out->events = ev;
        out->cap = cap;
    }
    struct normalize_event *ev = &out->events[out->count];
    memset(ev, 0, sizeof *ev);
    return ev;
}

/* ---- accessors ------------------------------------------------------------------ */

uint64_t normalize_last_sequence(const normalize_t *n)
{
    return n->last_sequence;
}

const char *normalize_native_session_id(const normalize_t *n)
{
    return n->native_session_id;
}

int normalize_set_native_session_id(normalize_t *n, const char *native_session_id)
{
    return normalize_set_native(n, native_session_id);
}

int normalize_is_ended(const normalize_t *n)
{
    return n->ended;
}

const json_t *normalize_pending_permission(const normalize_t *n, const char *permission_id)
{
    return permission_id ? hmap_get(n->pending_permissions, permission_id) : NULL;
}

const json_t *normalize_pending_question(const normalize_t *n, const char *question_id)
{
    return question_id ? hmap_get(n->pending_questions, question_id) : NULL;
}

json_t *normalize_pending_assistant_start(normalize_t *n)
{
    struct buf native;
    json_t *conv = NULL;
    buf_init(&native);
    if (buf_printf(&native, "%s_pending_assistant_%llu", n->session_id,
                   (unsigned long long)(n->pending_assistant_counter + 1)))
        goto fail;
    conv = event_synthetic(event_conversion(
        "item.started", event_item_data(event_item("message", "assistant", "in_progress",
                                                   native.data, json_array()))));
    if (!conv || normalize_pending_push(n, native.data))
        goto fail;
    n->pending_assistant_counter++;
    buf_free(&native);
    return conv;
fail:
    json_decref(conv);
    buf_free(&native);
    return NULL;
}

/* ---- state tracking shared by apply and replay ----------------------------------- */

/* What push_event/update_pending/update_item_tracking record about an event
 * once it exists.  `data` is the event's canonical data. */
static int normalize_track(normalize_t *n, const char *type, json_t *data,
                           const char *native_session_id)
{
    int rc = 0;
    if (normalize_is_type(type, "session.started")) {
        n->session_started = 1;
    } else if (normalize_is_type(type, "session.ended")) {
        n->ended = 1;
    } else if (normalize_is_type(type, "permission.requested")) {
        rc = normalize_json_put(n->pending_permissions,
                                json_string_value(json_object_get(data, "permission_id")), data);
    } else if (normalize_is_type(type, "permission.resolved")) {
        json_decref(hmap_remove(n->pending_permissions,
                                json_string_value(json_object_get(data, "permission_id"))));
    } else if (normalize_is_type(type, "question.requested")) {
        rc = normalize_json_put(n->pending_questions,
                                json_string_value(json_object_get(data, "question_id")), data);
    } else if (normalize_is_type(type, "question.resolved")) {
        json_decref(hmap_remove(n->pending_questions,
                                json_string_value(json_object_get(data, "question_id"))));
    } else if (normalize_is_type(type, "item.started") ||
               normalize_is_type(type, "item.completed")) {
        const json_t *item = json_object_get(data, "item");
        const json_t *id = json_object_get(item, "item_id");
        const char *native = json_string_value(json_object_get(item, "native_item_id"));
        normalize_note_item_id(n, id);
        normalize_note_item_id(n, json_object_get(item, "parent_id"));
        rc = normalize_idset_add(&n->item_started, json_string_value(id));
        if (!rc && native)
            rc = normalize_map_put(n->item_map, native, json_string_value(id));
    } else if (normalize_is_type(type, "item.delta")) {
        const json_t *id = json_object_get(data, "item_id");
        const char *native = json_string_value(json_object_get(data, "native_item_id"));
        normalize_note_item_id(n, id);
        rc = normalize_idset_add(&n->item_delta_seen, json_string_value(id));
        if (!rc && native)
            rc = normalize_map_put(n->item_map, native, json_string_value(id));
    }
    if (!rc && !n->native_session_id && native_session_id)
        rc = normalize_set_native(n, native_session_id);
    return rc;
}

/* ---- apply ----------------------------------------------------------------------- */

static void normalize_next_item_id(normalize_t *n, char out[32])
{
    n->next_item_id++;
    snprintf(out, 32, "itm_%llu", (unsigned long long)n->next_item_id);
}

/* Writes into data[key] the item id for `native`, allocating one on first use. */
static int normalize_set_id_for_native(normalize_t *n, json_t *obj, const char *key,
                                       const char *native)
{
    char fresh[32];
    const char *id = hmap_get(n->item_map, native);
    if (!id) {
        normalize_next_item_id(n, fresh);
        if (normalize_map_put(n->item_map, native, fresh))
            return ERR_NOMEM;
        id = fresh;
    }
    return json_object_set_new(obj, key, json_string(id)) ? ERR_NOMEM : 0;
}

/* Fills an empty item id: by native id when there is one, else a fresh id. */
static int normalize_ensure_id(normalize_t *n, json_t *obj, const char *id_key,
                               const char *native_key)
{
    const char *id = json_string_value(json_object_get(obj, id_key));
    if (id && *id)
        return 0;
    const char *native = json_string_value(json_object_get(obj, native_key));
    if (native)
        return normalize_set_id_for_native(n, obj, id_key, native);
    char fresh[32];
    normalize_next_item_id(n, fresh);
    return json_object_set_new(obj, id_key, json_string(fresh)) ? ERR_NOMEM : 0;
}

/* Maps a native parent id.  One never seen before gets its item id here,
 * where no event records which native id it stands for: it goes to `out`
 * as an alias for the journal. */
static int normalize_ensure_parent_id(normalize_t *n, json_t *item,
                                      struct normalize_output *out)
{
    const json_t *parent = json_object_get(item, "parent_id");
    if (!json_is_string(parent) || strncmp(json_string_value(parent), "itm_", 4) == 0)
        return 0;
    /* Copy: the mapped id replaces the string we would be reading from. */
    char *native = strdup(json_string_value(parent));
    if (!native)
        return ERR_NOMEM;
    int fresh = hmap_get(n->item_map, native) == NULL;
    int rc = normalize_set_id_for_native(n, item, "parent_id", native);
    if (rc == 0 && fresh)
        rc = normalize_output_add_alias(out, native,
                                        json_string_value(json_object_get(item, "parent_id")));
    free(native);
    return rc;
}

int normalize_add_alias(normalize_t *n, const char *native_id, const char *item_id)
{
    if (!native_id || !normalize_item_number(item_id))
        return ERR_INVALID;
    if (!hmap_get(n->item_map, native_id) && normalize_map_put(n->item_map, native_id, item_id))
        return ERR_NOMEM;
    uint64_t v = normalize_item_number(item_id);
    if (v > n->next_item_id)
        n->next_item_id = v;
    return 0;
}

/* new: the message's text parts joined by "\n", or NULL when that is empty
 * (*rc tells an empty text from a failed allocation). */
static char *normalize_text_delta(const json_t *content, size_t *len_out, int *rc)
{
    struct buf b;
    buf_init(&b);
    *rc = 0;
    for (size_t i = 0; i < json_array_size(content); i++) {
        const json_t *part = json_array_get(content, i);
        if (!normalize_str_eq(json_object_get(part, "type"), "text"))
            continue;
        const json_t *text = json_object_get(part, "text");
        /* Like the reference, a separator only follows text already written. */
        if ((b.len && buf_append(&b, "\n", 1)) ||
            buf_append(&b, json_string_value(text), json_string_length(text))) {
            *rc = ERR_NOMEM;
            buf_free(&b);
            return NULL;
        }
    }
    if (!b.len) {
        buf_free(&b);
        return NULL;
    }
    *len_out = b.len;
    char *s = buf_steal(&b);
    if (!s)
        *rc = ERR_NOMEM;
    return s;
}

/* Adapter-side rewrites for agents that do not start assistant items
 * themselves.  *drop is set when the conversion produces nothing. */
static int normalize_retarget(normalize_t *n, const char *type, json_t *data, int *drop)
{
    if (normalize_is_type(type, "item.started")) {
        const json_t *item = json_object_get(data, "item");
        if (normalize_is_assistant_message(item)) {
            const char *native = json_string_value(json_object_get(item, "native_item_id"));
            if (!native || !normalize_pending_contains(n, native))
                *drop = 1;
        }
    } else if (normalize_is_type(type, "item.completed")) {
        json_t *item = json_object_get(data, "item");
        if (normalize_is_assistant_message(item) && n->pending_assistant_count) {
            char *pending = normalize_pending_pop(n);
            int rc = json_object_set_new(item, "native_item_id", json_string(pending)) ||
                     json_object_set_new(item, "item_id", json_string(""));
            free(pending);
            if (rc)
                return ERR_NOMEM;
        }
    } else if (normalize_is_type(type, "item.delta")) {
        const char *native = json_string_value(json_object_get(data, "native_item_id"));
        int is_user = native && strncmp(native, "user_", 5) == 0;
        if (!is_user && n->pending_assistant_count) {
            if (json_object_set_new(data, "native_item_id",
                                    json_string(n->pending_assistant[0])) ||
                json_object_set_new(data, "item_id", json_string("")))
                return ERR_NOMEM;
        }
    }
    return 0;
}

/* The conversion's data with ids filled in, preceded by its synthetic
 * companions; staged[] gets 1 to 3 entries. */
static int normalize_conversion(normalize_t *n, const char *type, json_t *data,
                                struct normalize_staged staged[3], size_t *count,
                                struct normalize_output *out)
{
    int rc;
    if (normalize_is_type(type, "item.delta"))
        return normalize_ensure_id(n, data, "item_id", "native_item_id");
    if (!normalize_is_type(type, "item.started") && !normalize_is_type(type, "item.completed"))
        return 0;

    json_t *item = json_object_get(data, "item");
    if ((rc = normalize_ensure_id(n, item, "item_id", "native_item_id")) ||
        (rc = normalize_ensure_parent_id(n, item, out)))
        return rc;
    if (!normalize_is_type(type, "item.completed"))
        return 0;

    const char *item_id = json_string_value(json_object_get(item, "item_id"));
    if (!normalize_idset_has(&n->item_started, item_id)) {
        json_t *copy = json_deep_copy(item);
        json_t *started = NULL;
        if (copy && !json_object_set_new(copy, "status", json_string("in_progress")))
            started = event_item_data(copy);
        else
            json_decref(copy);
        if (!started)
            return ERR_NOMEM;
        staged[(*count)++] = (struct normalize_staged){"item.started", started, 1, "daemon", 0};
    }
    if (normalize_str_eq(json_object_get(item, "kind"), "message") &&
        !normalize_idset_has(&n->item_delta_seen, item_id)) {
        size_t len = 0;
        char *text = normalize_text_delta(json_object_get(item, "content"), &len, &rc);
        if (rc)
            return rc;
        if (text) {
            json_t *native = json_object_get(item, "native_item_id");
            json_t *delta = json_object();
            if (!delta || json_object_set_new(delta, "item_id", json_string(item_id)) ||
                json_object_set_new(delta, "native_item_id",
                                    native ? json_incref(native) : json_null()) ||
                json_object_set_new(delta, "delta", json_stringn(text, len))) {
                json_decref(delta);
                free(text);
                return ERR_NOMEM;
            }
            free(text);
            staged[(*count)++] = (struct normalize_staged){"item.delta", delta, 1, "daemon", 0};
        }
    }
    return 0;
}

/* new: the data object of a serialized event, as readers will see it. */
static json_t *normalize_canonical_data(const char *json, size_t len)
{
    json_t *ev = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
    json_t *data = json_incref(json_object_get(ev, "data"));
    json_decref(ev);
    return data;
}

/* push_event: drops what the reference drops, else numbers and records it. */
static int normalize_push(normalize_t *n, const struct normalize_staged *st, const char *time,
                          const char *native_session_id, char **raw, size_t raw_len,
                          struct normalize_output *out)
{
    if (normalize_is_type(st->type, "session.started") && n->session_started)
        return 0;
    if (normalize_is_type(st->type, "session.ended") && n->agent_can_resume && !st->synthetic)
        return 0;
    if (normalize_is_type(st->type, "item.started")) {
        const char *id = json_string_value(
            json_object_get(json_object_get(st->data, "item"), "item_id"));
        if (normalize_idset_has(&n->item_started, id))
            return 0;
    }

    uint64_t seq = n->last_sequence + 1;
    struct normalize_event *ev = normalize_output_add(out);
    if (!ev)
        return ERR_NOMEM;
    ev->sequence = seq;
    ev->type = strdup(st->type);
    ev->json = event_serialize(seq, time, n->session_id, native_session_id, st->synthetic,
                               st->source, st->type, st->data, &ev->json_len);
    if (!ev->type || !ev->json) {
        normalize_event_free(ev);
        return ERR_NOMEM;
    }
    ev->turn_end = event_is_turn_end(st->type, st->data, n->assistant_message_ends_turn);
    if (st->is_conversion && *raw) {
        ev->raw = *raw;
        ev->raw_len = raw_len;
        *raw = NULL;
    }
    out->count++;

    /* Pending entries hold what the journal holds, so they match after a replay. */
    json_t *data = st->data;
    int keep = normalize_is_type(st->type, "permission.requested") ||
               normalize_is_type(st->type, "question.requested");
    if (keep && !(data = normalize_canonical_data(ev->json, ev->json_len)))
        return ERR_NOMEM;
    int rc = normalize_track(n, st->type, data, native_session_id);
    if (keep)
        json_decref(data);
    if (rc)
        return rc;
    n->last_sequence = seq;
    if (normalize_is_type(st->type, "session.ended"))
        out->ended = 1;
    return 0;
}

int normalize_apply(normalize_t *n, const json_t *conversion, const char *time,
                    struct normalize_output *out, struct err *err)
{
    struct normalize_staged staged[3];
    size_t count = 0;
    char *raw_text = NULL;
    size_t raw_len = 0;
    char *native = NULL;
    json_t *data = NULL;
    size_t start = out->count, start_aliases = out->n_aliases;
    int saved_ended = out->ended;
    int saved_changed = out->native_session_changed;
    int rc = 0;

    /* Everything that can make the conversion invalid is checked before the
     * state is touched. */
    if (!json_is_object(conversion))
        return err_set(err, ERR_INVALID, "conversion is not an object");
    const char *type = json_string_value(json_object_get(conversion, "type"));
    if (!event_type_is_valid(type))
        return err_set(err, ERR_INVALID, "unknown event type");
    if (!event_data_fits(type, json_object_get(conversion, "data")))
        return err_set(err, ERR_INVALID, "data does not fit %s", type);
    const json_t *syn = json_object_get(conversion, "synthetic");
    if (syn && !json_is_boolean(syn))
        return err_set(err, ERR_INVALID, "synthetic is not a boolean");
    const json_t *src = json_object_get(conversion, "source");
    const char *source = src ? json_string_value(src) : "agent";
    if (!source || (strcmp(source, "agent") != 0 && strcmp(source, "daemon") != 0))
        return err_set(err, ERR_INVALID, "source must be agent or daemon");
    const json_t *nsid = json_object_get(conversion, "native_session_id");
    if (nsid && !json_is_null(nsid) && !json_is_string(nsid))
        return err_set(err, ERR_INVALID, "native_session_id is not a string");
    if (!time)
        return err_set(err, ERR_INVALID, "no time");
    const json_t *raw = json_object_get(conversion, "raw");

    if (raw && !json_is_null(raw) && !(raw_text = event_dump(raw, &raw_len)))
        goto nomem;
    if (!(data = json_deep_copy(json_object_get(conversion, "data"))))
        goto nomem;

    /* normalize_conversion: learn the native session id, or lend ours. */
    const char *conv_native = json_string_value(nsid);
    if (!n->native_session_id && conv_native) {
        if (normalize_set_native(n, conv_native))
            goto nomem;
        out->native_session_changed = 1;
    }
    if (!conv_native)
        conv_native = n->native_session_id;
    if (conv_native && !(native = strdup(conv_native)))
        goto nomem;

    if (!n->agent_emits_item_started) {
        int drop = 0;
        if ((rc = normalize_retarget(n, type, data, &drop)))
            goto fail;
        if (drop)
            goto done;
    }
    if ((rc = normalize_conversion(n, type, data, staged, &count, out)))
        goto fail;
    staged[count++] = (struct normalize_staged){type, data, json_is_true(syn), source, 1};
    data = NULL;

    for (size_t i = 0; i < count; i++)
        if ((rc = normalize_push(n, &staged[i], time, native, &raw_text, raw_len, out)))
            goto fail;
done:
    for (size_t i = 0; i < count; i++)
        json_decref(staged[i].data);
    json_decref(data);
    free(raw_text);
    free(native);
    return 0;

nomem:
    rc = ERR_NOMEM;
fail:
    for (size_t i = 0; i < count; i++)
        json_decref(staged[i].data);
    json_decref(data);
    free(raw_text);
    free(native);
    normalize_output_truncate(out, start, start_aliases);
    out->ended = saved_ended;
    out->native_session_changed = saved_changed;
    return err_set(err, rc, "normalizing %s: out of memory; rebuild the normalizer", type);
}

/* ---- replay ------------------------------------------------------------------------ */

/* The pending-assistant queue as the stored events show it: a synthetic
 * start of a new pending id queued it, the completed message re-targeted at
 * the oldest one dequeued it. */
static int normalize_replay_pending(normalize_t *n, const char *type, const json_t *data,
                                    int synthetic)
{
    const char *native =
        json_string_value(json_object_get(json_object_get(data, "item"), "native_item_id"));
    uint64_t num = normalize_pending_number(n, native);
    if (!num)
        return 0;
    if (normalize_is_type(type, "item.started") && synthetic &&
        num > n->pending_assistant_counter) {
        if (normalize_pending_push(n, native))
            return ERR_NOMEM;
    }
    if (num > n->pending_assistant_counter)
        n->pending_assistant_counter = num;
    if (normalize_is_type(type, "item.completed") && !n->agent_emits_item_started &&
        n->pending_assistant_count && strcmp(n->pending_assistant[0], native) == 0)
        free(normalize_pending_pop(n));
    return 0;
}

int normalize_replay(normalize_t *n, const char *json, size_t len, struct err *err)
{
    json_error_t jerr;
    int rc = ERR_INVALID;
    json_t *ev = json_loadb(json, len, JSON_ALLOW_NUL, &jerr);
    if (!ev && event_json_load_nomem(&jerr, json, len))
        return err_set(err, ERR_NOMEM, "replaying event: out of memory");
    if (!ev)
        return err_set(err, ERR_INVALID, "stored event is not JSON: %s", jerr.text);

    const json_t *seq = json_object_get(ev, "sequence");
    const char *sid = json_string_value(json_object_get(ev, "session_id"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *data = json_object_get(ev, "data");
    const json_t *nsid = json_object_get(ev, "native_session_id");
    const json_t *syn = json_object_get(ev, "synthetic");

    if (!json_is_integer(seq) || json_integer_value(seq) < 1 ||
        (uint64_t)json_integer_value(seq) != n->last_sequence + 1) {
        err_set(err, rc, "event out of order after sequence %llu",
                (unsigned long long)n->last_sequence);
        goto out;
    }
    if (!sid || strcmp(sid, n->session_id) != 0) {
        err_set(err, rc, "event belongs to another session");
        goto out;
    }
    if (!event_type_is_valid(type) || !event_data_fits(type, data) ||
        (nsid && !json_is_null(nsid) && !json_is_string(nsid)) || !json_is_boolean(syn)) {
        err_set(err, rc, "stored event %lld is malformed", (long long)json_integer_value(seq));
        goto out;
    }

    if ((rc = normalize_replay_pending(n, type, data, json_is_true(syn))) ||
        (rc = normalize_track(n, type, data, json_string_value(nsid)))) {
        err_set(err, rc, "replaying event: out of memory");
        goto out;
    }
    n->last_sequence = (uint64_t)json_integer_value(seq);
    rc = 0;
out:
    json_decref(ev);
    return rc;
}
