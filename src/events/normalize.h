/* The per-session normalizer: turns an adapter's conversions into the
 * session's events with the anchor's semantics.
 *
 *   - sequences: the next after the last one seen, starting at 1;
 *   - item ids: "itm_N" allocated in order, one per native item id (and per
 *     native parent id), reused for every later event of that native item;
 *     a native parent id no event records comes out as an alias to journal;
 *   - an item.completed whose item never started gets a synthetic
 *     item.started (status in_progress) just before it;
 *   - a completed message item that never streamed a delta gets a synthetic
 *     item.delta carrying its text parts joined by "\n", just before it;
 *   - session.started is emitted once per session; later ones are dropped;
 *   - a repeated item.started for an already-started item is dropped;
 *   - a non-synthetic session.ended from an agent that can resume is dropped;
 *   - for agents that do not emit item.started themselves, assistant message
 *     events are re-targeted at the queued synthetic pending-assistant item;
 *   - permission.requested / question.requested are tracked as pending until
 *     the matching *.resolved event.
 *
 * The state is a pure function of the session's events: normalize_replay()
 * feeds committed events back in to rebuild it after a restart, so the
 * journal is the only source of truth.  Not thread-safe: the owning session
 * guards it.  No I/O.
 */
#ifndef SJ_NORMALIZE_H
#define SJ_NORMALIZE_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct normalize normalize_t;

struct normalize_config {
    const char *session_id;
    /* The agent emits item.started for assistant messages itself; when 0 the
     * server emits them (see normalize_pending_assistant_start()). */
    int agent_emits_item_started;
    /* The agent can resume after its process ends, so an agent-sent
     * session.ended is not the end of the session. */
    int agent_can_resume;
    /* A completed assistant message ends a turn (0 for Codex, whose turns
     * end with turn.completed). */
    int assistant_message_ends_turn;
};

/* new: free with normalize_free().  NULL on allocation failure. */
normalize_t *normalize_new(const struct normalize_config *config);
void normalize_free(normalize_t *n);

/* One event ready for the journal.  All strings are owned by the output. */
struct normalize_event {
    uint64_t sequence;
    char *type;
    char *json;      /* canonical text, raw:null */
    size_t json_len;
    char *raw;       /* native payload as JSON text, or NULL */
    size_t raw_len;
    int turn_end;
};

/* An item id given to a native id that no produced event records: one seen
 * only as a parent_id.  The journal keeps it with the events (item_aliases)
 * and a rebuild feeds it back with normalize_add_alias().  Owned strings. */
struct normalize_alias {
    char *native_id;
    char *item_id;
};

struct normalize_output {
    struct normalize_event *events;
    size_t count;
    size_t cap;
    struct normalize_alias *aliases;
    size_t n_aliases;
    size_t cap_aliases;
    int ended;                /* a session.ended event was produced */
    int native_session_changed; /* the session's native id was first learned */
};

void normalize_output_init(struct normalize_output *out);
void normalize_output_clear(struct normalize_output *out);

/* Normalizes one conversion (borrowed) and appends the resulting events,
 * stamped with `time`, to `out`.  The state advances as if they were
 * committed; if the commit then fails the caller must drop this normalizer
 * and rebuild it from the journal.  ERR_INVALID if the conversion is
 * malformed (unknown type, data that does not fit it); the state is then
 * unchanged.  On any error nothing is appended to `out`; after ERR_NOMEM the
 * state may have advanced, so the normalizer must be rebuilt as above. */
int normalize_apply(normalize_t *n, const json_t *conversion, const char *time,
                    struct normalize_output *out, struct err *err);

/* Rebuilds state from one committed event's stored text, in sequence order.
 * ERR_INVALID if the text is not an event of this session or is out of
 * order. */
int normalize_replay(normalize_t *n, const char *json, size_t len, struct err *err);

/* Rebuilding: restores an alias a previous normalizer produced (call before
 * or after normalize_replay(), in any order).  ERR_INVALID if item_id is not
 * an "itm_N", ERR_NOMEM. */
int normalize_add_alias(normalize_t *n, const char *native_id, const char *item_id);

/* The last sequence produced or replayed (0 for a new session). */
uint64_t normalize_last_sequence(const normalize_t *n);

/* borrowed: the native session id learned so far, or NULL. */
const char *normalize_native_session_id(const normalize_t *n);
/* Sets the native session id used for conversions that carry none. */
int normalize_set_native_session_id(normalize_t *n, const char *native_session_id);

/* 1 once a session.ended event has been produced or replayed. */
int normalize_is_ended(const normalize_t *n);

/* borrowed: the pending permission's data object ({permission_id, action,
 * status, metadata}) or NULL.  Valid until the next call that mutates n. */
const json_t *normalize_pending_permission(const normalize_t *n, const char *permission_id);
/* borrowed: the pending question's data object or NULL. */
const json_t *normalize_pending_question(const normalize_t *n, const char *question_id);

/* new: a synthetic item.started for an assistant message the agent will
 * stream later, queued so that its events are re-targeted at it (only for
 * agents with agent_emits_item_started == 0).  NULL on allocation failure. */
json_t *normalize_pending_assistant_start(normalize_t *n);

#endif
