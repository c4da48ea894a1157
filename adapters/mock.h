/* The built-in mock agent: scripted replies for UI and API testing, with no
 * process behind it.  The adapter itself is `adapter_mock` (see adapter.h);
 * the functions below are the pure parts, exposed for tests.
 *
 * Every conversion the mock produces is built with the event.h builders, so
 * the session layer normalizes and journals them like any agent's. */
#ifndef SJ_ADAPTER_MOCK_H
#define SJ_ADAPTER_MOCK_H

#include <jansson.h>

/* new: the conversions of the user's own message: item.started (in_progress)
 * and item.completed (completed) of a user message item with native id
 * "<prefix>_user" and one text part `text`.  NULL on allocation failure. */
json_t *adapter_mock_user_message(const char *prefix, const char *text);

/* new: the mock's reply conversions to one user input (trimmed of ASCII
 * whitespace first): special prompts, commands ("help", "demo", "markdown",
 * "tool", "status", "image", "unknown", "permission", "question", "error",
 * "unparsed", "end", "echo"/"say") or an echo of anything else.  An empty
 * array for empty input; NULL on allocation failure. */
json_t *adapter_mock_turn(const char *prefix, const char *input);

#endif
