/* Sessions in memory, in front of the journal.
 *
 * Lock order: the registry lock may be taken before a session lock, never
 * after.  The journal writer never takes either, so holding a session lock
 * while waiting for a commit cannot deadlock.
 *
 * Writes: under the session lock, conversions go through the session's
 * normalizer (which assigns the sequences) and straight into the journal
 * queue, so queue order is sequence order.  HTTP handlers wait for the
 * commit (a 204 means durable); emissions from the supervisor loop
 * (emit_async) do not.  If a commit fails, the normalizer has advanced past what is
 * stored, so it is dropped and rebuilt from the journal on next use; the
 * journal itself refuses any batch that would leave a gap.
 *
 * ended column: 0 live, 1 ended by the agent, 2 terminated by the daemon.
 */
#include "sessions/sessions.h"

#include "adapters/registry.h"
#include "events/event.h"
#include "base/hmap.h"
#include "agents/install.h"
#include "agents/skills.h"
#include "events/normalize.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SESSION_LIVE = 0, SESSION_ENDED_BY_AGENT = 1, SESSION_TERMINATED = 2 };

struct session {
    struct adapter_ctx ctx; /* first: the adapter hands it back to the host */
    sessions_t *owner;
    const struct registry_entry *agent;
    char *id;
    char agent_mode[32];
    char permission_mode[32];
    char *model;
    char *variant;
    char *native_session_id;
    char *saved_state;
    char *working_dir;        /* NULL for rows from before working dirs were kept */
    json_t *mcp_servers;      /* ctx.mcp_servers: {name: McpServerConfig}, or NULL */
    json_t *skills;           /* ctx.skills: [{name, description, path}], or NULL */
    /* The agent's binary, NULL until found; owned.  On the heap: a session
     * loaded at start-up that never runs its agent must not cost PATH_MAX
     * (calloc'd and zeroed for every session of the journal at each start). */
    char *binary;
    pthread_mutex_t lock;     /* through session_lock() and session_unlock() only */
    atomic_uintptr_t lock_owner; /* the holder's session_thread_tag address, or 0 */
    normalize_t *norm;        /* NULL until first write after load */
    atomic_int needs_reload;  /* a queued batch failed: rebuild norm */
    int ended;                /* SESSION_* */
    int reopen_row;           /* resumed: the row's `ended` goes back to 0 with the next batch */
    char *pending_state;      /* adapter state to commit with the next batch */
    /* The Idempotency-Key record of the request holding the lock, committed
     * with its first batch (session_emit_sync()) or alone at its end
     * (session_idem_finish()); NULL otherwise.  Borrowed from that call. */
    const struct journal_idem *idem;
};

struct sessions {
    journal_t *journal;
    supervisor_t *supervisor;
    struct sessions_config config;
    char *data_dir;
    char *agents_dir;
    pthread_mutex_t lock;
    hmap_t *by_id;
    void **instances; /* per registry entry; see adapter.h instance_new */
    size_t n_instances;
    int closing;
    atomic_int stopping; /* set by sessions_close(): loop-side emits are dropped */
};

static const struct adapter_host sessions_host;

/* The session lock records its holder, so that "Session locked." is an
 * assert and not only a comment: the address of a thread-local is unique
 * among live threads, and an atomic keeps the check itself race-free. */
static _Thread_local char session_thread_tag;

static void session_lock(struct session *s)
{
    pthread_mutex_lock(&s->lock);
    atomic_store_explicit(&s->lock_owner, (uintptr_t)&session_thread_tag,
                          memory_order_relaxed);
}

static void session_unlock(struct session *s)
{
    atomic_store_explicit(&s->lock_owner, 0, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
}

#ifndef NDEBUG
/* 1 if the calling thread holds the session's lock. */
static int session_is_locked(struct session *s)
{
    return atomic_load_explicit(&s->lock_owner, memory_order_relaxed) ==
           (uintptr_t)&session_thread_tag;
}
#endif

static void session_free(struct session *s)
{
    if (!s)
        return;
    if (s->agent && s->agent->adapter && s->agent->adapter->free_state)
        s->agent->adapter->free_state(&s->ctx);
    normalize_free(s->norm);
    pthread_mutex_destroy(&s->lock);
    free(s->id);
    free(s->model);
    free(s->variant);
    free(s->native_session_id);
    free(s->saved_state);
    free(s->working_dir);
    free(s->binary);
    json_decref(s->mcp_servers);
    json_decref(s->skills);
    free(s->pending_state);
    free(s);
}

static char *sessions_strdup_or_null(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *copy = strdup(s);
    if (!copy)
        *failed = 1;
    return copy;
}

/* new: a session struct with its adapter context wired to its own strings. */
static struct session *session_new(sessions_t *owner, const struct registry_entry *agent,
                                   const char *id, const char *agent_mode,
                                   const char *permission_mode, const char *model,
                                   const char *variant, const char *native_session_id,
                                   const char *saved_state, const char *working_dir)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return NULL;
    }
    int failed = 0;
    s->owner = owner;
    s->agent = agent;
    s->id = sessions_strdup_or_null(id, &failed);
    snprintf(s->agent_mode, sizeof s->agent_mode, "%s", agent_mode);
    snprintf(s->permission_mode, sizeof s->permission_mode, "%s", permission_mode);
    s->model = sessions_strdup_or_null(model, &failed);
    s->variant = sessions_strdup_or_null(variant, &failed);
    s->native_session_id = sessions_strdup_or_null(native_session_id, &failed);
    s->saved_state = sessions_strdup_or_null(saved_state, &failed);
    s->working_dir = sessions_strdup_or_null(working_dir, &failed);
    if (failed) {
        session_free(s);
        return NULL;
    }
    s->ctx.host = &sessions_host;
    s->ctx.supervisor = owner->supervisor;
    s->ctx.data_dir = owner->data_dir;
    s->ctx.agents_dir = owner->agents_dir;
    s->ctx.working_dir = s->working_dir;
    s->ctx.binary_path = NULL;
    s->ctx.session_id = s->id;
    s->ctx.agent_mode = s->agent_mode;
    s->ctx.permission_mode = s->permission_mode;
    s->ctx.model = s->model;
    s->ctx.variant = s->variant;
    s->ctx.native_session_id = s->native_session_id;
    s->ctx.saved_state = s->saved_state;
    s->ctx.instance = owner->instances[registry_index(agent)];
    return s;
}

static struct session *session_of(struct adapter_ctx *ctx)
{
    return (struct session *)((char *)ctx - offsetof(struct session, ctx));
}

/* Looks for the agent's binary if it is not known yet.  Session locked (or
 * not yet shared). */
static void session_find_binary(struct session *s)
{
    const struct adapter *a = s->agent->adapter;
    if (s->binary || !a || a->builtin_version)
        return;
    char found[PATH_MAX];
    if (install_find_binary(s->owner->agents_dir, s->agent->id, found) ||
        install_find_command(a->command, found)) {
        /* Out of memory leaves it unknown: the next call looks again. */
        s->binary = strdup(found);
        s->ctx.binary_path = s->binary;
    }
}

/* ---- the normalizer, rebuilt from the journal -------------------------- */

static int session_replay_event(void *arg, uint64_t sequence, const char *json, size_t json_len,
                                const char *raw, size_t raw_len, int turn_end)
{
    (void)sequence, (void)raw, (void)raw_len, (void)turn_end; /* the text says it all */
    struct err *err = ((void **)arg)[1];
    return normalize_replay(((void **)arg)[0], json, json_len, err);
}

/* journal_read_aliases() callback: 0, or the (positive) error that stops. */
static int session_replay_alias(void *arg, const char *native_id, const char *item_id)
{
    return -normalize_add_alias(arg, native_id, item_id);
}

/* Makes s->norm match the journal.  Session locked. */
static int session_ensure_norm(struct session *s, struct err *err)
{
    assert(session_is_locked(s));
    if (s->norm && !atomic_exchange(&s->needs_reload, 0))
        return 0;
    normalize_free(s->norm);
    s->norm = NULL;
    const struct adapter *a = s->agent->adapter;
    struct normalize_config config = {
        .session_id = s->id,
        .agent_emits_item_started = s->agent->adapter->caps.item_started,
        .agent_can_resume = a ? a->can_resume : 0,
        .assistant_message_ends_turn =
            strcmp(s->agent->id, "codex") != 0 && strcmp(s->agent->id, "opencode") != 0,
    };
    normalize_t *n = normalize_new(&config);
    if (!n)
        return err_set(err, ERR_NOMEM, "out of memory rebuilding session %s", s->id);
    if (s->native_session_id) {
        int rc = normalize_set_native_session_id(n, s->native_session_id);
        if (rc) {
            normalize_free(n);
            return err_set(err, rc, "out of memory rebuilding session %s", s->id);
        }
    }
    journal_reader_t *r = journal_reader_for_thread(s->owner->journal, err);
    if (!r) {
        normalize_free(n);
        return err ? err->code : ERR_STORAGE;
    }
    int rc = journal_read_aliases(r, s->id, session_replay_alias, n, err);
    if (rc > 0) /* the callback's error, made positive to stop the read */
        rc = err_set_subject(err, -rc, s->id, "session %s: cannot restore its item aliases",
                             s->id);
    void *args[2] = { n, err };
    if (rc == 0)
        rc = journal_read_events(r, s->id, 0, 0, session_replay_event, args, NULL, err);
    if (rc) {
        normalize_free(n);
        return rc;
    }
    s->norm = n;
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

struct session_batch {
    struct normalize_output out;
    struct journal_event *events;
    struct journal_alias *aliases;
    struct journal_batch batch;
};

static void session_batch_clear(struct session_batch *b)
{
    normalize_output_clear(&b->out);
    free(b->events);
    free(b->aliases);
}

/* Normalizes `conversions` into a journal batch.  Session locked. */
static int session_prepare(struct session *s, const json_t *conversions, int ended_value,
                           struct session_batch *b, struct err *err)
{
    assert(session_is_locked(s));
    memset(b, 0, sizeof *b);
    normalize_output_init(&b->out);
    int rc = session_ensure_norm(s, err);
    if (rc)
        return rc;
    char now[32];
    event_now(now);
    size_t i;
    json_t *conversion;
    json_array_foreach(conversions, i, conversion) {
        rc = normalize_apply(s->norm, conversion, now, &b->out, err);
        if (rc) {
            /* Earlier conversions of this call advanced the state. */
            atomic_store(&s->needs_reload, 1);
            return rc;
        }
    }
    if (b->out.count) {
        b->events = calloc(b->out.count, sizeof *b->events);
        if (!b->events) {
            atomic_store(&s->needs_reload, 1);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
    }
    for (i = 0; i < b->out.count; i++) {
        const struct normalize_event *e = &b->out.events[i];
        b->events[i] = (struct journal_event){
            .sequence = e->sequence, .type = e->type, .json = e->json,
            .json_len = e->json_len, .raw = e->raw, .raw_len = e->raw_len,
            .turn_end = e->turn_end,
        };
    }
    if (b->out.n_aliases) {
        b->aliases = calloc(b->out.n_aliases, sizeof *b->aliases);
        if (!b->aliases) {
            atomic_store(&s->needs_reload, 1);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
        for (i = 0; i < b->out.n_aliases; i++)
            b->aliases[i] = (struct journal_alias){ b->out.aliases[i].native_id,
                                                    b->out.aliases[i].item_id };
    }
    b->batch.session_id = s->id;
    b->batch.events = b->events;
    b->batch.n_events = b->out.count;
    b->batch.aliases = b->aliases;
    b->batch.n_aliases = b->out.n_aliases;
    if (b->out.native_session_changed)
        b->batch.native_session_id = normalize_native_session_id(s->norm);
    if (b->out.ended)
        b->batch.mark_ended = ended_value;
    else if (s->reopen_row)
        b->batch.mark_ended = JOURNAL_REOPEN;
    b->batch.adapter_state = s->pending_state;
    return 0;
}

/* After a commit: mirror what the batch changed.  Session locked. */
static void session_committed(struct session *s, const struct session_batch *b)
{
    assert(session_is_locked(s));
    if (b->out.ended && s->ended == SESSION_LIVE)
        s->ended = b->batch.mark_ended;
    if (b->batch.mark_ended == JOURNAL_REOPEN)
        s->reopen_row = 0;
    if (b->out.native_session_changed && !s->native_session_id) {
        char *copy = strdup(normalize_native_session_id(s->norm));
        if (copy) {
            s->native_session_id = copy;
            s->ctx.native_session_id = copy;
        }
    }
    if (b->batch.adapter_state) {
        free(s->pending_state);
        s->pending_state = NULL;
    }
}

/* Normalizes and commits, waiting for durability.  Session locked. */
static int session_emit_sync(struct session *s, const json_t *conversions, int ended_value,
                             struct err *err)
{
    assert(session_is_locked(s));
    struct session_batch b;
    int rc = session_prepare(s, conversions, ended_value, &b, err);
    /* A batch whose events were all dropped (a repeated session.started)
     * may still carry the native id it taught the normalizer. */
    if (rc == 0 && (b.batch.n_events || b.batch.adapter_state || b.batch.native_session_id)) {
        b.batch.idem = s->idem; /* remembered in the same transaction */
        rc = journal_append(s->owner->journal, &b.batch, err);
        if (rc) {
            atomic_store(&s->needs_reload, 1);
        } else {
            session_committed(s, &b);
            s->idem = NULL;
        }
        /* The journal's conflicts mean "out of step", never "already
         * exists": a 409 would send the client after the wrong cause. */
        if (rc == ERR_CONFLICT) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "journal: out of step");
            rc = err_set_subject(err, ERR_INTERNAL, s->id, "%s", why);
        }
    }
    session_batch_clear(&b);
    return rc;
}

static void session_async_done(void *arg, int rc, const struct err *err)
{
    struct session *s = arg;
    if (rc) {
        /* Writer thread: flag only, never take the session lock here. */
        atomic_store(&s->needs_reload, 1);
        fprintf(stderr, "sandbox-journal: session %s: event not journaled: %s\n", s->id,
                err ? err->msg : err_name(rc));
    }
}

/* Normalizes and queues without waiting.  Session locked. */
static int session_emit_async(struct session *s, const json_t *conversions, struct err *err)
{
    assert(session_is_locked(s));
    struct session_batch b;
    int rc = session_prepare(s, conversions, SESSION_ENDED_BY_AGENT, &b, err);
    if (rc == 0 && (b.batch.n_events || b.batch.native_session_id)) {
        rc = journal_submit(s->owner->journal, &b.batch, session_async_done, s, err);
        if (rc)
            atomic_store(&s->needs_reload, 1);
        else
            session_committed(s, &b); /* a failure later flags a reload */
    }
    session_batch_clear(&b);
    return rc;
}

/* Ends a request that may carry an Idempotency-Key record (installed in
 * s->idem by the caller): a request that succeeded without committing a
 * batch (terminating an ended session, say) commits the record alone, so
 * its repeat is answered like it.  A failed request leaves nothing
 * remembered.  Returns rc, or the failure to remember.  Session locked. */
static int session_idem_finish(struct session *s, int rc, struct err *err)
{
    assert(session_is_locked(s));
    const struct journal_idem *idem = s->idem;
    s->idem = NULL;
    if (rc || !idem)
        return rc;
    struct journal_batch b = { .idem = idem };
    return journal_append(s->owner->journal, &b, err);
}

/* ---- the adapter host ---------------------------------------------------- */

static int sessions_host_emit(struct adapter_ctx *ctx, const json_t *conversions,
                              struct err *err)
{
    return session_emit_sync(session_of(ctx), conversions, SESSION_ENDED_BY_AGENT, err);
}

static int sessions_host_emit_async(struct adapter_ctx *ctx, const json_t *conversions,
                                    struct err *err)
{
    struct session *s = session_of(ctx);
    if (atomic_load(&s->owner->stopping))
        return 0;
    session_lock(s);
    int rc = 0;
    if (s->ended != SESSION_TERMINATED)
        rc = session_emit_async(s, conversions, err);
    session_unlock(s);
    return rc;
}

static int sessions_host_save_state(struct adapter_ctx *ctx, const char *state_json,
                                    struct err *err)
{
    struct session *s = session_of(ctx);
    assert(session_is_locked(s)); /* adapter.h: called from the session's own hooks */
    char *copy = strdup(state_json);
    if (!copy)
        return err_set(err, ERR_NOMEM, "out of memory");
    free(s->pending_state);
    s->pending_state = copy;
    return 0;
}

/* journal_read_events() callback: appends "<role>: <text>\n" (a JSON
 * string) to the array `arg` for each text part of a completed user or
 * assistant message.  0, or ERR_NOMEM. */
static int sessions_transcript_event(void *arg, uint64_t sequence, const char *json,
                                     size_t json_len, const char *raw, size_t raw_len,
                                     int turn_end)
{
    (void)sequence, (void)raw, (void)raw_len, (void)turn_end; /* the text says it all */
    json_t *acc = arg;
    json_t *ev = json_loadb(json, json_len, 0, NULL);
    const json_t *item = json_object_get(json_object_get(ev, "data"), "item");
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *role = json_string_value(json_object_get(item, "role"));
    const char *kind = json_string_value(json_object_get(item, "kind"));
    int rc = 0;
    if (type && strcmp(type, "item.completed") == 0 && kind && strcmp(kind, "message") == 0 &&
        role && (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0)) {
        size_t i;
        json_t *part;
        json_array_foreach(json_object_get(item, "content"), i, part) {
            const char *t = json_string_value(json_object_get(part, "text"));
            const char *pt = json_string_value(json_object_get(part, "type"));
            if (!t || !pt || strcmp(pt, "text") != 0)
                continue;
            json_t *line = json_sprintf("%s: %s\n", role, t);
            if (!line || json_array_append_new(acc, line) != 0)
                rc = ERR_NOMEM;
        }
    }
    json_decref(ev);
    return rc;
}

static int sessions_host_transcript(struct adapter_ctx *ctx, char **out, struct err *err)
{
    struct session *s = session_of(ctx);
    assert(session_is_locked(s)); /* adapter.h: called from the session's own hooks */
    journal_reader_t *r = journal_reader_for_thread(s->owner->journal, err);
    json_t *acc = json_array();
    if (!r || !acc) {
        json_decref(acc);
        return r ? err_set(err, ERR_NOMEM, "out of memory") : ERR_STORAGE;
    }
    int rc = journal_read_events(r, s->id, 0, 0, sessions_transcript_event, acc, NULL, err);
    if (rc == ERR_NOMEM)
        err_set(err, ERR_NOMEM, "out of memory");
    size_t total = 1, i;
    json_t *line;
    json_array_foreach(acc, i, line)
        total += json_string_length(line);
    char *text = rc ? NULL : malloc(total), *w = text;
    if (!rc && !text)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (text) {
        json_array_foreach(acc, i, line) {
            memcpy(w, json_string_value(line), json_string_length(line));
            w += json_string_length(line);
        }
        *w = '\0';
        *out = text;
    }
    json_decref(acc);
    return rc;
}

static const struct adapter_host sessions_host = {
    .emit = sessions_host_emit,
    .emit_async = sessions_host_emit_async,
    .save_state = sessions_host_save_state,
    .transcript = sessions_host_transcript,
};

/* ---- workspace configuration ----------------------------------------- */

static int sessions_mcp_add(void *arg, const char *name, const char *config_json)
{
    json_t *servers = arg;
    json_t *config = json_loads(config_json, 0, NULL);
    if (!config) {
        /* Only wsconfig_put() writes these rows, always as checked JSON. */
        fprintf(stderr, "sandbox-journal: MCP entry %s is not JSON, skipped\n", name);
        return 0;
    }
    /* "enabled": false keeps an entry without handing it to agents. */
    if (json_is_false(json_object_get(config, "enabled"))) {
        json_decref(config);
        return 0;
    }
    return json_object_set_new(servers, name, config) ? ERR_NOMEM : 0;
}

/* Fills ctx.mcp_servers from the MCP servers configured for the session's
 * working directory (/v1/config/mcp), read once when the session is
 * created or loaded: an agent started later in the session gets the same
 * servers as the first, and an entry changed meanwhile applies to sessions
 * created after the change. */
static int session_load_mcp(struct session *s, struct err *err)
{
    if (!s->working_dir)
        return 0;
    journal_reader_t *r = journal_reader_for_thread(s->owner->journal, err);
    if (!r)
        return err->code;
    json_t *servers = json_object();
    if (!servers)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = journal_config_list(r, "mcp", s->working_dir, sessions_mcp_add, servers, err);
    if (rc == ERR_NOMEM)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (rc || json_object_size(servers) == 0) {
        json_decref(servers);
        return rc;
    }
    s->mcp_servers = servers;
    s->ctx.mcp_servers = servers;
    return 0;
}

static int sessions_skills_add(void *arg, const char *name, const char *config_json)
{
    json_t *config = json_loads(config_json, 0, NULL);
    if (!config) {
        fprintf(stderr, "sandbox-journal: skills entry %s is not JSON, skipped\n", name);
        return 0;
    }
    return json_object_set_new(arg, name, config) ? ERR_NOMEM : 0;
}

/* Fills ctx.skills from the skills configured for the session's working
 * directory (/v1/config/skills), resolved to directories now (git sources
 * cloned into <data dir>/skills-git on first use): read once, like the MCP
 * servers, for agents that take skills only.  What cannot be resolved is
 * appended to `problems` as messages; the session starts with the rest. */
static int session_load_skills(struct session *s, json_t *problems, struct err *err)
{
    if (!s->working_dir || !s->agent->adapter || !s->agent->adapter->takes_skills)
        return 0;
    journal_reader_t *r = journal_reader_for_thread(s->owner->journal, err);
    if (!r)
        return err->code;
    json_t *configs = json_object(), *skills = json_array();
    char cache[PATH_MAX];
    int rc = 0;
    if (!configs || !skills)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    else if (snprintf(cache, sizeof cache, "%s/skills-git", s->owner->data_dir) >=
             (int)sizeof cache)
        rc = err_set(err, ERR_INVALID, "data directory path too long");
    if (!rc)
        rc = journal_config_list(r, "skills", s->working_dir, sessions_skills_add, configs, err);
    if (!rc && json_object_size(configs) &&
        skills_resolve(configs, s->working_dir, cache, skills, problems) != 0)
        rc = ERR_NOMEM;
    if (rc == ERR_NOMEM)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    json_decref(configs);
    if (rc || json_array_size(skills) == 0) {
        json_decref(skills);
        return rc;
    }
    s->skills = skills;
    s->ctx.skills = skills;
    return 0;
}

/* ---- registry ------------------------------------------------------------ */

static int sessions_load_row(void *arg, const struct journal_session_info *row)
{
    sessions_t *m = ((void **)arg)[0];
    struct err *err = ((void **)arg)[1];
    struct err lookup;
    const struct registry_entry *agent = registry_find(row->agent, &lookup);
    if (!agent) {
        /* A row from a newer build with an agent this one lacks: keep serving
         * its events (reads never need the registry) but do not drive it. */
        fprintf(stderr, "sandbox-journal: session %s: unknown agent %s, read-only\n",
                row->session_id, row->agent);
        return 0;
    }
    struct session *s = session_new(m, agent, row->session_id, row->agent_mode,
                                    row->permission_mode, row->model, row->variant,
                                    row->native_session_id, row->adapter_state,
                                    row->working_dir);
    if (!s)
        return err_set(err, ERR_NOMEM, "out of memory loading sessions");
    struct err cfg_err;
    if (session_load_mcp(s, &cfg_err) != 0)
        /* The session's events are served all the same; its agent starts
         * without the servers, which the log line explains. */
        fprintf(stderr, "sandbox-journal: session %s: MCP servers not loaded: %s\n",
                row->session_id, cfg_err.msg);
    /* Reported as events when the session was created; here only logged. */
    json_t *problems = json_array();
    if (!problems || session_load_skills(s, problems, &cfg_err) != 0)
        fprintf(stderr, "sandbox-journal: session %s: skills not loaded: %s\n",
                row->session_id, problems ? cfg_err.msg : "out of memory");
    size_t pi;
    json_t *problem;
    json_array_foreach(problems, pi, problem)
        fprintf(stderr, "sandbox-journal: session %s: %s\n", row->session_id,
                json_string_value(problem));
    json_decref(problems);
    session_find_binary(s);
    s->ended = row->ended;
    if (hmap_put(m->by_id, s->id, s) != 0) {
        session_free(s);
        return err_set(err, ERR_NOMEM, "out of memory loading sessions");
    }
    return 0;
}

int sessions_open(journal_t *journal, supervisor_t *supervisor,
                  const struct sessions_config *config, sessions_t **out, struct err *err)
{
    sessions_t *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(err, ERR_NOMEM, "out of memory");
    m->journal = journal;
    m->supervisor = supervisor;
    m->config = *config;
    const char *data_dir = config->data_dir ? config->data_dir : ".";
    m->data_dir = strdup(data_dir);
    if (config->agents_dir) {
        m->agents_dir = strdup(config->agents_dir);
    } else if ((m->agents_dir = malloc(strlen(data_dir) + sizeof "/agents"))) {
        strcpy(m->agents_dir, data_dir);
        strcat(m->agents_dir, "/agents");
    }
    m->config.data_dir = m->data_dir;
    m->config.agents_dir = m->agents_dir;
    m->by_id = hmap_new();
    const struct registry_entry *all = registry_all(&m->n_instances);
    m->instances = calloc(m->n_instances, sizeof *m->instances);
    if (!m->by_id || !m->data_dir || !m->agents_dir || !m->instances ||
        pthread_mutex_init(&m->lock, NULL) != 0) {
        hmap_free(m->by_id);
        free(m->instances);
        free(m->data_dir);
        free(m->agents_dir);
        free(m);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    struct adapter_settings settings = { .supervisor = supervisor,
                                         .data_dir = m->data_dir,
                                         .agents_dir = m->agents_dir,
                                         .mock_delay_ms = config->mock_delay_ms };
    for (size_t i = 0; i < m->n_instances; i++) {
        const struct adapter *a = all[i].adapter;
        settings.adapter = a;
        int rc = a->instance_new ? a->instance_new(&settings, &m->instances[i], err) : 0;
        if (rc) {
            sessions_free(m);
            return rc;
        }
    }
    journal_reader_t *r = journal_reader_for_thread(journal, err);
    void *args[2] = { m, err };
    int rc = r ? journal_list_sessions(r, sessions_load_row, args, err) : ERR_STORAGE;
    if (rc) {
        sessions_close(m);
        sessions_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void sessions_stop_one(const char *key, void *value, void *arg)
{
    (void)key, (void)arg; /* the session carries everything */
    struct session *s = value;
    /* The adapter's loop-side state is touched on this thread only. */
    if (s->agent->adapter && s->agent->adapter->shutdown)
        s->agent->adapter->shutdown(&s->ctx);
}

static void sessions_stop_all(uv_loop_t *loop, void *arg)
{
    (void)loop; /* handles are reached through the sessions */
    sessions_t *m = arg;
    pthread_mutex_lock(&m->lock);
    hmap_foreach(m->by_id, sessions_stop_one, NULL);
    pthread_mutex_unlock(&m->lock);
    size_t n;
    const struct registry_entry *all = registry_all(&n);
    for (size_t i = 0; i < n; i++)
        if (all[i].adapter->shutdown_shared)
            all[i].adapter->shutdown_shared(m->instances[i]);
}

void sessions_close(sessions_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->closing = 1;
    pthread_mutex_unlock(&m->lock);
    struct err err;
    /* The adapters' shutdown may still journal (a turn cut short); what the
     * agents do after that (their exits) is not journaled. */
    if (supervisor_call(m->supervisor, sessions_stop_all, m, &err) != 0)
        fprintf(stderr, "sandbox-journal: stopping sessions: %s\n", err.msg);
    atomic_store(&m->stopping, 1);
}

static void sessions_free_one(const char *key, void *value, void *arg)
{
    (void)key, (void)arg; /* the value is all we free */
    session_free(value);
}

void sessions_free(sessions_t *m)
{
    if (!m)
        return;
    hmap_foreach(m->by_id, sessions_free_one, NULL);
    hmap_free(m->by_id);
    size_t n;
    const struct registry_entry *all = registry_all(&n);
    for (size_t i = 0; i < m->n_instances; i++)
        if (m->instances[i] && all[i].adapter->instance_free)
            all[i].adapter->instance_free(m->instances[i]);
    free(m->instances);
    pthread_mutex_destroy(&m->lock);
    free(m->data_dir);
    free(m->agents_dir);
    free(m);
}

/* borrowed: sessions are never removed while the server runs. */
static struct session *sessions_get(sessions_t *m, const char *id, struct err *err)
{
    pthread_mutex_lock(&m->lock);
    struct session *s = hmap_get(m->by_id, id);
    pthread_mutex_unlock(&m->lock);
    if (!s)
        err_set_subject(err, ERR_NOT_FOUND, id, "session not found: %s", id);
    return s;
}

void *const *sessions_instances(const sessions_t *m)
{
    return m->instances;
}

const char *sessions_agents_dir(const sessions_t *m)
{
    return m->agents_dir;
}

int sessions_exists(sessions_t *m, const char *id)
{
    return sessions_get(m, id, NULL) != NULL || journal_session_exists(m->journal, id);
}

/* The anchor's rule for what an ended session still accepts.  Session locked. */
static int session_check_open(struct session *s, int for_new_message, struct err *err)
{
    assert(session_is_locked(s));
    if (s->ended == SESSION_LIVE)
        return 0;
    if (s->ended == SESSION_TERMINATED)
        return err_set_subject(err, ERR_INVALID, s->id, "invalid request: session terminated");
    if (for_new_message && s->agent->adapter && s->agent->adapter->can_resume)
        return 0;
    return err_set_subject(err, ERR_AGENT_EXITED, s->agent->id, "agent process exited: %s",
                           s->agent->id);
}

static json_t *sessions_started_conversion(const char *agent, const char *agent_mode,
                                           const char *permission_mode, const char *model,
                                           const char *variant, const char *native_id)
{
    /* Keys sorted, as the anchor's JSON maps are. */
    json_t *metadata = json_pack("{s:s,s:s,s:o,s:s,s:o}", "agent", agent, "agentMode",
                                 agent_mode, "model", model ? json_string(model) : json_null(),
                                 "permissionMode", permission_mode, "variant",
                                 variant ? json_string(variant) : json_null());
    json_t *c = event_conversion("session.started", event_session_started_data(metadata));
    c = event_synthetic(c);
    return event_with_native_session(c, native_id);
}

/* The agent of a create request and its resolved modes. */
static int sessions_create_check(const struct sessions_create_request *req,
                                 const struct registry_entry **agent_out,
                                 char agent_mode[32], char permission_mode[32], struct err *err)
{
    const struct registry_entry *agent = registry_find(req->agent, err);
    if (!agent)
        return err ? err->code : ERR_UNSUPPORTED_AGENT;
    if (!agent->adapter)
        return err_set_subject(err, ERR_NOT_INSTALLED, agent->id, "agent not installed: %s",
                               agent->id);
    *agent_out = agent;
    return adapter_modes_resolve(agent->adapter->mode_rule, req->agent_mode,
                                 req->permission_mode, agent_mode, permission_mode, err);
}

int sessions_create_install(sessions_t *m, const struct sessions_create_request *req,
                            struct install_job **job_out, struct err *err)
{
    *job_out = NULL;
    const struct registry_entry *agent = NULL;
    char agent_mode[32], permission_mode[32];
    int rc = sessions_create_check(req, &agent, agent_mode, permission_mode, err);
    if (rc)
        return rc;
    return registry_install_start(m->agents_dir, agent->id, 0, 1, job_out, err);
}

char *sessions_create_answer(const char *native_id)
{
    json_t *resp = json_pack("{s:b}", "healthy", 1);
    if (resp && native_id && native_id[0] &&
        json_object_set_new(resp, "nativeSessionId", json_string(native_id)) != 0) {
        json_decref(resp);
        return NULL;
    }
    char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    return text;
}

int sessions_create(sessions_t *m, const char *session_id,
                    const struct sessions_create_request *req, char native_id_out[128],
                    const struct journal_idem *idem, struct err *err)
{
    char *answer = NULL;
    struct journal_idem record;
    const struct registry_entry *agent = NULL;
    char agent_mode[32], permission_mode[32];
    int rc = sessions_create_check(req, &agent, agent_mode, permission_mode, err);
    if (rc)
        return rc;
    char cwd[PATH_MAX];
    const char *working_dir = NULL;
    if (!agent->adapter->builtin_version) {
        if (!getcwd(cwd, sizeof cwd))
            return err_set(err, ERR_INTERNAL, "cannot read the working directory");
        working_dir = cwd;
    }

    /* The adapter prepares the session before any lock is taken: a shared
     * agent process may have to start and answer first (Codex's thread),
     * and the registry must not wait for that.  A quick check first saves
     * that work for an id that is taken. */
    struct session *s = NULL;
    json_t *conversions = NULL, *skill_problems = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->closing)
        rc = err_set(err, ERR_INVALID, "the server is shutting down");
    else if (hmap_get(m->by_id, session_id) || journal_session_exists(m->journal, session_id))
        rc = err_set_subject(err, ERR_CONFLICT, session_id, "session already exists: %s",
                             session_id);
    pthread_mutex_unlock(&m->lock);
    if (rc)
        return rc;
    s = session_new(m, agent, session_id, agent_mode, permission_mode, req->model,
                    req->variant, NULL, NULL, working_dir);
    if (!s)
        return err_set(err, ERR_NOMEM, "out of memory");
    skill_problems = json_array();
    if (!skill_problems)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (rc || (rc = session_load_mcp(s, err)) != 0 ||
        (rc = session_load_skills(s, skill_problems, err)) != 0) {
        json_decref(skill_problems);
        session_free(s);
        return rc;
    }
    session_find_binary(s);
    native_id_out[0] = '\0';
    if (agent->adapter->start_session) {
        rc = agent->adapter->start_session(&s->ctx, native_id_out, err);
        if (rc) {
            json_decref(skill_problems);
            session_free(s);
            return rc;
        }
    }

    /* Held across the commit so two creates of one id cannot both pass the
     * existence check; creation is rare next to appends. */
    pthread_mutex_lock(&m->lock);
    if (m->closing) {
        rc = err_set(err, ERR_INVALID, "the server is shutting down");
        goto done;
    }
    if (hmap_get(m->by_id, session_id) || journal_session_exists(m->journal, session_id)) {
        rc = err_set_subject(err, ERR_CONFLICT, session_id, "session already exists: %s",
                             session_id);
        goto done;
    }
    if (native_id_out[0]) {
        s->native_session_id = strdup(native_id_out);
        if (!s->native_session_id) {
            rc = err_set(err, ERR_NOMEM, "out of memory");
            goto done;
        }
        s->ctx.native_session_id = s->native_session_id;
    }
    conversions = json_array();
    json_t *started = sessions_started_conversion(req->agent, agent_mode, permission_mode,
                                                  req->model, req->variant,
                                                  s->native_session_id);
    if (!conversions || !started || json_array_append_new(conversions, started) != 0) {
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto done;
    }
    /* Skills that could not be set up are said in the session's own log,
     * where its client looks; the session runs with the others. */
    size_t pi;
    json_t *problem;
    json_array_foreach(skill_problems, pi, problem) {
        json_t *c = event_synthetic(event_conversion(
            "error", event_error_data(json_string_value(problem), "skills", NULL)));
        if (json_array_append_new(conversions, c) != 0) {
            rc = err_set(err, ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    struct session_batch b;
    session_lock(s);
    rc = session_prepare(s, conversions, SESSION_ENDED_BY_AGENT, &b, err);
    if (rc == 0) {
        struct journal_session_row row = {
            .session_id = session_id, .agent = agent->id, .agent_mode = agent_mode,
            .permission_mode = permission_mode, .model = req->model,
            .variant = req->variant, .agent_version = req->agent_version,
            .native_session_id = s->native_session_id, .working_dir = working_dir,
        };
        b.batch.create = &row;
        if (idem) {
            /* The answer names the native id, known only now. */
            answer = sessions_create_answer(s->native_session_id);
            if (!answer)
                rc = err_set(err, ERR_NOMEM, "out of memory");
            record = *idem;
            record.session_id = session_id;
            record.body = answer;
            record.body_len = answer ? strlen(answer) : 0;
            b.batch.idem = &record;
        }
        if (rc == 0)
            rc = journal_append(m->journal, &b.batch, err);
        if (rc == 0)
            session_committed(s, &b);
    }
    session_batch_clear(&b);
    session_unlock(s);
    if (rc)
        goto done;
    if (hmap_put(m->by_id, s->id, s) != 0) {
        /* Committed but not registered: a restart would load it; tell the
         * client it failed rather than serve a half-known session.  (No
         * adapter hands a session to the loop before its first message, so
         * freeing it here is safe.) */
        rc = err_set(err, ERR_NOMEM, "out of memory registering session %s", session_id);
        goto done;
    }
    s = NULL;
done:
    pthread_mutex_unlock(&m->lock);
    json_decref(conversions);
    json_decref(skill_problems);
    session_free(s);
    free(answer);
    return rc;
}

struct sessions_list_ctx {
    json_t *list;
    struct err *err;
};

static json_t *sessions_nullable(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The v1 SessionInfo fields of a row and what issue 14 added to them.
 * new: the object, or NULL when memory ran out. */
static json_t *sessions_row_json(const struct journal_session_info *row,
                                 const struct journal_session_extra *x)
{
    json_t *info = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:b,s:I}", "sessionId",
                             row->session_id, "agent", row->agent, "agentMode", row->agent_mode,
                             "permissionMode", row->permission_mode, "model",
                             sessions_nullable(row->model), "variant",
                             sessions_nullable(row->variant), "nativeSessionId",
                             sessions_nullable(row->native_session_id), "ended",
                             row->ended != 0, "eventCount", (json_int_t)row->last_sequence);
    if (!info)
        return NULL;
    /* The pending ids come as JSON arrays built by SQLite (json_group_array).
     * Set with json_object_set() (not _new), so ours are released once,
     * below, whichever call failed. */
    json_t *perms = json_loads(x->pending_permissions, 0, NULL);
    json_t *questions = json_loads(x->pending_questions, 0, NULL);
    int failed = !json_is_array(perms) || !json_is_array(questions) ||
                 json_object_set_new(info, "status", json_string(x->status)) ||
                 json_object_set_new(info, "lastSequence",
                                     json_integer((json_int_t)row->last_sequence)) ||
                 json_object_set_new(info, "createdAt", json_string(row->created_at)) ||
                 json_object_set_new(info, "updatedAt", json_string(x->updated_at)) ||
                 json_object_set_new(info, "title", sessions_nullable(x->title)) ||
                 json_object_set(info, "pendingPermissions", perms) ||
                 json_object_set(info, "pendingQuestions", questions);
    json_decref(perms);
    json_decref(questions);
    if (failed) {
        json_decref(info);
        return NULL;
    }
    return info;
}

static int sessions_list_row(void *arg, const struct journal_session_info *row,
                             const struct journal_session_extra *x)
{
    struct sessions_list_ctx *ctx = arg;
    json_t *info = sessions_row_json(row, x);
    if (!info || json_array_append_new(ctx->list, info) != 0)
        return err_set(ctx->err, ERR_NOMEM, "out of memory listing sessions");
    return 0;
}

json_t *sessions_list_json(sessions_t *m, const struct journal_session_query *q,
                           struct err *err)
{
    journal_reader_t *r = journal_reader_for_thread(m->journal, err);
    if (!r)
        return NULL;
    struct sessions_list_ctx ctx = { json_array(), err };
    if (!ctx.list) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    struct journal_session_query all = { 0 };
    char next[JOURNAL_CURSOR_MAX];
    if (journal_session_page(r, q ? q : &all, sessions_list_row, &ctx, next, err) != 0) {
        json_decref(ctx.list);
        return NULL;
    }
    json_t *out = json_pack("{s:o}", "sessions", ctx.list);
    if (out && q && json_object_set_new(out, "nextCursor",
                                        next[0] ? json_string(next) : json_null())) {
        json_decref(out);
        out = NULL;
    }
    if (!out)
        err_set(err, ERR_NOMEM, "out of memory");
    return out;
}

struct sessions_get_ctx {
    json_t *info;
    struct err *err;
};

static int sessions_get_row(void *arg, const struct journal_session_info *row,
                            const struct journal_session_extra *x)
{
    struct sessions_get_ctx *ctx = arg;
    ctx->info = sessions_row_json(row, x);
    if (!ctx->info)
        return err_set(ctx->err, ERR_NOMEM, "out of memory reading the session");
    return 0;
}

json_t *sessions_get_json(sessions_t *m, const char *session_id, struct err *err)
{
    journal_reader_t *r = journal_reader_for_thread(m->journal, err);
    if (!r)
        return NULL;
    struct sessions_get_ctx ctx = { NULL, err };
    if (journal_session_summary(r, session_id, sessions_get_row, &ctx, err) != 0) {
        json_decref(ctx.info);
        return NULL;
    }
    return ctx.info;
}

/* Looks the session up and locks it; the adapter must exist to write. */
static struct session *sessions_lock(sessions_t *m, const char *id, struct err *err)
{
    struct session *s = sessions_get(m, id, err);
    if (!s)
        return NULL;
    session_lock(s);
    return s;
}

/* 1 if `message` is empty or ASCII whitespace only. */
static int sessions_message_is_blank(const char *message)
{
    for (; *message; message++)
        if (!strchr(" \t\n\r\f\v", *message))
            return 0;
    return 1;
}

int sessions_send_message(sessions_t *m, const char *session_id, const char *message,
                          uint64_t *before_out, const struct journal_idem *idem,
                          struct err *err)
{
    struct journal_idem record;
    /* A blank message starts no turn: accepted, it would journal nothing
     * and leave a messages/stream waiting for a turn end that never comes. */
    if (sessions_message_is_blank(message))
        return err_set_subject(err, ERR_INVALID, session_id,
                               "invalid request: message is empty or whitespace only");
    struct session *s = sessions_lock(m, session_id, err);
    if (!s)
        return ERR_NOT_FOUND;
    int rc = session_check_open(s, 1, err);
    if (rc == 0 && !s->agent->adapter)
        rc = err_set_subject(err, ERR_NOT_INSTALLED, s->agent->id, "agent not installed: %s",
                             s->agent->id);
    if (rc == 0)
        rc = session_ensure_norm(s, err);
    if (rc == 0) {
        /* An agent that can resume picks the conversation up again: its
         * session is open again, in the row too with the next batch. */
        if (s->ended == SESSION_ENDED_BY_AGENT) {
            s->ended = SESSION_LIVE;
            s->reopen_row = 1;
        }
        session_find_binary(s);
        uint64_t before = normalize_last_sequence(s->norm);
        if (before_out)
            *before_out = before;
        if (idem) {
            record = *idem;
            record.after = before; /* where a repeated messages/stream starts */
            s->idem = &record;
        }
        rc = s->agent->adapter->send_message(&s->ctx, message, err);
    }
    /* The reference's synthetic assistant item for agents that do not start
     * their own: queued now, while the lock still holds the agent's output
     * back, so its events land after the user's message. */
    if (rc == 0 && !s->agent->adapter->caps.item_started) {
        json_t *start = normalize_pending_assistant_start(s->norm);
        json_t *conversions = start ? json_array() : NULL;
        if (!conversions || json_array_append_new(conversions, start) != 0) {
            if (!conversions)
                json_decref(start);
            atomic_store(&s->needs_reload, 1);
            rc = err_set(err, ERR_NOMEM, "out of memory");
        } else {
            rc = session_emit_sync(s, conversions, SESSION_ENDED_BY_AGENT, err);
        }
        json_decref(conversions);
    }
    rc = session_idem_finish(s, rc, err);
    session_unlock(s);
    return rc;
}

/* Journals the resolution of a pending permission or question.  Locked. */
static int session_resolve(struct session *s, const char *type, json_t *data, struct err *err)
{
    assert(session_is_locked(s));
    json_t *c = event_with_native_session(event_synthetic(event_conversion(type, data)),
                                          s->native_session_id);
    json_t *conversions = json_array();
    int rc;
    if (!c || !conversions || json_array_append_new(conversions, c) != 0) {
        if (!conversions)
            json_decref(c);
        rc = err_set(err, ERR_NOMEM, "out of memory");
    } else {
        rc = session_emit_sync(s, conversions, SESSION_ENDED_BY_AGENT, err);
    }
    json_decref(conversions);
    return rc;
}

static const char *sessions_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int sessions_reply_permission(sessions_t *m, const char *session_id, const char *permission_id,
                              const char *reply, const struct journal_idem *idem,
                              struct err *err)
{
    int approved = strcmp(reply, "once") == 0 || strcmp(reply, "always") == 0;
    if (!approved && strcmp(reply, "reject") != 0)
        return err_set(err, ERR_INVALID, "invalid permission reply: %s", reply);
    struct session *s = sessions_lock(m, session_id, err);
    if (!s)
        return ERR_NOT_FOUND;
    s->idem = idem;
    const json_t *pending = NULL;
    int rc = session_ensure_norm(s, err);
    if (rc == 0) {
        pending = normalize_pending_permission(s->norm, permission_id);
        if (!pending)
            rc = err_set(err, ERR_INVALID, "invalid request: unknown permission id: %s",
                         permission_id);
    }
    if (rc == 0)
        rc = session_check_open(s, 0, err);
    if (rc == 0 && s->agent->adapter->reply_permission)
        rc = s->agent->adapter->reply_permission(&s->ctx, permission_id, reply, pending, err);
    if (rc == 0) {
        json_t *metadata = json_object_get(pending, "metadata");
        json_t *data = event_permission_data(permission_id,
                                             sessions_json_str(pending, "action"),
                                             approved ? "approved" : "denied",
                                             metadata ? json_incref(metadata) : NULL);
        rc = session_resolve(s, "permission.resolved", data, err);
    }
    rc = session_idem_finish(s, rc, err);
    session_unlock(s);
    return rc;
}

static int sessions_question(sessions_t *m, const char *session_id, const char *question_id,
                             const json_t *answers, const struct journal_idem *idem,
                             struct err *err)
{
    struct session *s = sessions_lock(m, session_id, err);
    if (!s)
        return ERR_NOT_FOUND;
    s->idem = idem;
    const json_t *pending = NULL;
    int rc = session_ensure_norm(s, err);
    if (rc == 0) {
        pending = normalize_pending_question(s->norm, question_id);
        if (!pending)
            rc = err_set(err, ERR_INVALID, "invalid request: unknown question id: %s",
                         question_id);
    }
    if (rc == 0)
        rc = session_check_open(s, 0, err);
    const struct adapter *a = s->agent->adapter;
    if (rc == 0 && answers && a->reply_question)
        rc = a->reply_question(&s->ctx, question_id, answers, pending, err);
    if (rc == 0 && !answers && a->reject_question)
        rc = a->reject_question(&s->ctx, question_id, pending, err);
    if (rc == 0) {
        /* The first answer of the first question is the response shown. */
        const char *response = answers ? json_string_value(json_array_get(
                                             json_array_get(answers, 0), 0))
                                       : NULL;
        json_t *options = json_object_get(pending, "options");
        json_t *data = event_question_data(question_id, sessions_json_str(pending, "prompt"),
                                           options ? json_deep_copy(options) : json_array(),
                                           response, answers ? "answered" : "rejected");
        rc = session_resolve(s, "question.resolved", data, err);
    }
    rc = session_idem_finish(s, rc, err);
    session_unlock(s);
    return rc;
}

int sessions_reply_question(sessions_t *m, const char *session_id, const char *question_id,
                            const json_t *answers, const struct journal_idem *idem,
                            struct err *err)
{
    return sessions_question(m, session_id, question_id, answers, idem, err);
}

int sessions_reject_question(sessions_t *m, const char *session_id, const char *question_id,
                             const struct journal_idem *idem, struct err *err)
{
    return sessions_question(m, session_id, question_id, NULL, idem, err);
}

int sessions_terminate(sessions_t *m, const char *session_id, const struct journal_idem *idem,
                       struct err *err)
{
    struct session *s = sessions_lock(m, session_id, err);
    if (!s)
        return ERR_NOT_FOUND;
    s->idem = idem;
    int rc = 0;
    if (s->ended == SESSION_LIVE) {
        if (s->agent->adapter && s->agent->adapter->terminate)
            s->agent->adapter->terminate(&s->ctx);
        json_t *c = event_conversion("session.ended",
                                     event_session_ended_data("terminated", "daemon", NULL, -1,
                                                              NULL));
        c = event_with_native_session(event_synthetic(c), s->native_session_id);
        json_t *conversions = json_array();
        if (!c || !conversions || json_array_append_new(conversions, c) != 0) {
            if (!conversions)
                json_decref(c);
            rc = err_set(err, ERR_NOMEM, "out of memory");
        } else {
            rc = session_emit_sync(s, conversions, SESSION_TERMINATED, err);
        }
        json_decref(conversions);
    }
    rc = session_idem_finish(s, rc, err);
    session_unlock(s);
    return rc;
}
