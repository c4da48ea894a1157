/* libFuzzer harness for request bodies (src/parse.h): the bytes are a
 * request body, parsed the way every route that takes one does.
 * Invariants: a body is either refused with ERR_INVALID (never another code
 * but ERR_NOMEM) or yields a JSON object; every field parser then either
 * refuses with ERR_INVALID or hands back a value of the promised type; every
 * refusal carries a message (the ProblemDetails `detail`; http.c makes it
 * valid UTF-8 whatever jansson quoted from the input); nothing leaks (ASan).
 * Built with -DSJ_FUZZ=ON (or -DFUZZ=ON) and clang; seeds in
 * corpus/fuzz_http_body/, dictionary fuzz_http_body.dict. */
#include "fuzz_common.h"
#include "http/parse.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_string_field(const json_t *obj, const char *key, int required)
{
    struct err err;
    const char *v = NULL;
    int rc = required ? parse_req_string(obj, key, &v, &err)
                      : parse_opt_string(obj, key, &v, &err);
    if (rc == 0) {
        json_t *f = json_object_get(obj, key);
        if (v ? !json_is_string(f) || strcmp(v, json_string_value(f)) != 0
              : required || (f && !json_is_null(f)))
            abort();
    } else {
        fuzz_check_refusal(rc, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct err err;
    json_t *obj = NULL;
    int rc = parse_body_object(body, size, &obj, &err);
    if (rc != 0) {
        fuzz_check_refusal(rc, &err);
    } else {
        if (!json_is_object(obj))
            abort();
        /* POST /v1/sessions/{id} */
        fuzz_string_field(obj, "agent", 1);
        fuzz_string_field(obj, "agentMode", 0);
        fuzz_string_field(obj, "permissionMode", 0);
        fuzz_string_field(obj, "model", 0);
        fuzz_string_field(obj, "variant", 0);
        fuzz_string_field(obj, "agentVersion", 0);
        /* messages, messages/stream */
        fuzz_string_field(obj, "message", 1);
        /* permissions/{id}/reply */
        const char *reply = NULL;
        rc = parse_permission_reply(obj, &reply, &err);
        if (rc == 0 && strcmp(reply, "once") != 0 && strcmp(reply, "always") != 0 &&
            strcmp(reply, "reject") != 0)
            abort();
        if (rc)
            fuzz_check_refusal(rc, &err);
        /* questions/{id}/reply */
        const json_t *answers = NULL;
        rc = parse_question_answers(obj, &answers, &err);
        if (rc == 0) {
            size_t i, k;
            const json_t *inner, *v;
            if (!json_is_array(answers))
                abort();
            json_array_foreach(answers, i, inner) {
                if (!json_is_array(inner))
                    abort();
                json_array_foreach(inner, k, v) {
                    if (!json_is_string(v))
                        abort();
                }
            }
        } else {
            fuzz_check_refusal(rc, &err);
        }
        json_decref(obj);
    }
    /* agents/{agent}/install */
    int reinstall = -1;
    rc = parse_install_request(body, size, &reinstall, &err);
    if (rc == 0 && reinstall != 0 && reinstall != 1)
        abort();
    if (rc)
        fuzz_check_refusal(rc, &err);
    return 0;
}
