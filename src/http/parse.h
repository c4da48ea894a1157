/* Pure parsers for what clients send: query values, header values, path
 * segments and JSON request bodies.  No I/O and no libmicrohttpd, so unit
 * tests and fuzzers call them directly.  Every failure is ERR_INVALID with a
 * message fit for a ProblemDetails `detail` (ERR_NOMEM when memory ran out). */
#ifndef SJ_PARSE_H
#define SJ_PARSE_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* new: the percent-decoded copy of s[0..len) ("+" is a space if
 * plus_is_space), freed with free().  NULL with ERR_INVALID for a broken
 * escape or an encoded NUL byte. */
char *parse_percent_decode(const char *s, size_t len, int plus_is_space, struct err *err);

/* A non-negative integer from 0 to INT64_MAX, decimal digits only.  `name`
 * is used in the message. */
int parse_u64(const char *name, const char *text, uint64_t *out, struct err *err);

/* parse_u64() of a header value: the spaces and tabs around it (RFC 9110's
 * optional whitespace) are not part of it. */
int parse_header_u64(const char *name, const char *text, uint64_t *out, struct err *err);

/* "true"/"1" or "false"/"0". */
int parse_bool(const char *name, const char *text, int *out, struct err *err);

/* A session id: 1 to 255 bytes of well-formed UTF-8, no control characters. */
int parse_session_id(const char *id, struct err *err);

/* The length (1 to 4) of the well-formed UTF-8 character at s[0..len), or 0
 * if none starts there (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF; what jansson accepts in a string). */
size_t parse_utf8_char(const char *s, size_t len);

/* Parses a request body that must be one JSON object (duplicate keys
 * refused).  new: *out, released with json_decref(). */
int parse_body_object(const char *body, size_t len, json_t **out, struct err *err);

/* Reads a string field that may be absent or null (*out = NULL), or a
 * required one.  *out is borrowed from `obj`. */
int parse_opt_string(const json_t *obj, const char *key, const char **out, struct err *err);
int parse_req_string(const json_t *obj, const char *key, const char **out, struct err *err);

/* A PermissionReply: "once", "always" or "reject". */
int parse_permission_reply(const json_t *body, const char **reply, struct err *err);

/* QuestionReplyRequest.answers: an array of arrays of strings.  *answers is
 * borrowed from `body`. */
int parse_question_answers(const json_t *body, const json_t **answers, struct err *err);

/* AgentInstallRequest: an empty body or an object whose `reinstall` is a
 * boolean or null. */
int parse_install_request(const char *body, size_t len, int *reinstall, struct err *err);

#endif
