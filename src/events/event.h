/* The universal event model and its one canonical JSON form.
 *
 * Adapters describe what happened as *conversions*: jansson objects of the
 * shape
 *     { "type": "item.completed", "data": {...}, "synthetic": false,
 *       "source": "agent", "native_session_id": "..." (optional),
 *       "raw": <native payload> (optional) }
 * The normalizer turns conversions into events (sequence, ids, synthetic
 * companions) and event_serialize() writes each event once, in the field
 * order and with the null/absent rules of the v1 API.  That text is stored
 * in the journal and is what every reader gets, byte for byte.
 *
 * Builders return *new* references (NULL only when memory ran out) and
 * *steal* the json_t arguments they take, like json_object_set_new().  A
 * NULL stolen argument makes the builder fail cleanly and return NULL, so
 * calls can be nested without checking each level.
 */
#ifndef SJ_EVENT_H
#define SJ_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- conversions ------------------------------------------------------- */

/* new: { type, data, synthetic:false, source:"agent" }.  Steals `data`. */
json_t *event_conversion(const char *type, json_t *data);
/* Marks a conversion as produced by the server: synthetic:true, source:"daemon". */
json_t *event_synthetic(json_t *conversion);
/* Attaches the native payload (stolen) stored beside the event. */
json_t *event_with_raw(json_t *conversion, json_t *raw);
/* Sets the native session id the conversion belongs to (NULL: leave unset). */
json_t *event_with_native_session(json_t *conversion, const char *native_session_id);

/* ---- data payloads (field names and nullability of the v1 schema) ------ */

json_t *event_session_started_data(json_t *metadata /* stolen, may be NULL */);
/* exit_code < 0 means absent; message and stderr_output may be NULL. */
json_t *event_session_ended_data(const char *reason, const char *terminated_by,
                                 const char *message, int exit_code,
                                 json_t *stderr_output /* stolen, may be NULL */);
/* role may be NULL; native_item_id may be NULL; content is a stolen array. */
json_t *event_item(const char *kind, const char *role, const char *status,
                   const char *native_item_id, json_t *content);
json_t *event_item_data(json_t *item /* stolen */);
json_t *event_delta_data(const char *item_id, const char *native_item_id, const char *delta);
json_t *event_error_data(const char *message, const char *code, json_t *details /* stolen */);
json_t *event_permission_data(const char *permission_id, const char *action,
                              const char *status, json_t *metadata /* stolen */);
json_t *event_question_data(const char *question_id, const char *prompt,
                            json_t *options /* stolen array */, const char *response,
                            const char *status);
json_t *event_unparsed_data(const char *error, const char *location, const char *raw_hash);

/* Content parts. */
json_t *event_part_text(const char *text);
json_t *event_part_json(json_t *value /* stolen */);
json_t *event_part_tool_call(const char *name, const char *arguments, const char *call_id);
json_t *event_part_tool_result(const char *call_id, const char *output);
json_t *event_part_file_ref(const char *path, const char *action, const char *diff);
json_t *event_part_reasoning(const char *text, const char *visibility);
json_t *event_part_image(const char *path, const char *mime);
json_t *event_part_status(const char *label, const char *detail);
/* new: `content` (a stolen array) with `part` (stolen) appended.  NULL, with
 * both freed, when either is NULL or memory ran out, so part builders can be
 * passed straight in. */
json_t *event_content_add(json_t *content, json_t *part);
/* new: a content array holding only `part` (stolen); NULL as above. */
json_t *event_content(json_t *part);

/* ---- serialization ------------------------------------------------------ */

/* Writes the canonical event text:
 *   {"event_id":"evt_<seq>","sequence":<seq>,"time":"...","session_id":"...",
 *    "native_session_id":...,"synthetic":...,"source":"...","type":"...",
 *    "data":{...},"raw":null}
 * `data` is re-emitted in the schema's field order whatever order it was
 * built in; unknown fields are kept after the known ones.  The text always
 * ends in "\"raw\":null}" so readers can splice the stored raw payload in.
 * new: the returned string is freed with free(); *len_out gets its length.
 * NULL on allocation failure or if `data` does not fit `type`. */
char *event_serialize(uint64_t sequence, const char *time, const char *session_id,
                      const char *native_session_id, int synthetic, const char *source,
                      const char *type, const json_t *data, size_t *len_out);

/* 1 if `data` fits `type`, i.e. event_serialize() would accept it.  Does not
 * allocate, so it can vet a conversion before any state changes. */
int event_data_fits(const char *type, const json_t *data);

/* new: any JSON value as compact text, written the way serde_json writes it
 * (insertion order, shortest round-trip reals, lowercase \u escapes); the
 * same writer event_serialize() uses.  Free with free(); *len_out (if
 * non-NULL) gets its length.  NULL on allocation failure. */
char *event_dump(const json_t *value, size_t *len_out);

/* 1 if json_loadb(text, len, ...) returned NULL with `jerr` because memory
 * ran out rather than because of the text.  jansson leaves no error message
 * when most of its allocations fail, and reports a string token it could not
 * copy as a syntax error right after that string, where the text itself
 * cannot cause one.  Only meaningful after a failed load. */
int event_json_load_nomem(const json_error_t *jerr, const char *text, size_t len);

/* 1 if the event ends a turn as messages/stream sees it: session.ended,
 * error, agent.unparsed, permission.requested, question.requested, a status
 * item completed with label "turn.completed" or "session.idle", or a
 * completed assistant message (except for agents whose messages do not end
 * turns, such as Codex).  */
int event_is_turn_end(const char *type, const json_t *data, int assistant_message_ends_turn);

/* 1 if `type` is one of the eleven universal event types. */
int event_type_is_valid(const char *type);

/* Writes the current UTC time as RFC 3339 with microseconds, e.g.
 * "2026-11-23T11:30:00.123456Z", into out[32]. */
void event_now(char out[32]);

/* The length of the stored suffix "null}" that include_raw replaces. */
#define EVENT_RAW_SUFFIX "null}"
#define EVENT_RAW_SUFFIX_LEN 5

#endif
