/* libFuzzer harness for the Claude adapter's line parser: the input is a
 * series of stdout lines fed to one parser (so state such as pending
 * requests and turn parts carries over), and for every pending request a
 * reply line is built.  Invariants: parsing never fails but for memory,
 * every conversion is an object with a type, every reply is one line of
 * JSON.  Seeds: tests/fixtures/claude/<case>/input.jsonl.
 * Built with -DSJ_FUZZ=ON and clang. */
#include "adapters/claude.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adapter_claude_parser_t *p = adapter_claude_parser_new("fuzz", size && (data[0] & 1));
    if (!p)
        return 0;
    const char *line = (const char *)data, *end = line + size;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        json_t *conv = json_array(), *rep = json_array();
        struct err err;
        if (conv && rep && adapter_claude_parse_line(p, line, n, 0, conv, rep, &err) != 0 &&
            err.code != ERR_NOMEM)
            abort();
        size_t i;
        json_t *v;
        json_array_foreach(conv, i, v) {
            if (!json_is_object(v) || !json_string_value(json_object_get(v, "type")))
                abort();
            /* Answer whatever it asked, every way. */
            const char *type = json_string_value(json_object_get(v, "type"));
            const char *id = json_string_value(json_object_get(
                json_object_get(v, "data"),
                strcmp(type, "question.requested") == 0 ? "question_id" : "permission_id"));
            char *out = NULL;
            if (id && strcmp(type, "permission.requested") == 0)
                adapter_claude_permission_line(p, id, "always", &out, &err);
            else if (id && strcmp(type, "question.requested") == 0)
                adapter_claude_question_line(p, id, NULL, &out, &err);
            free(out);
        }
        json_array_foreach(rep, i, v) {
            const char *r = json_string_value(v);
            size_t len = r ? strlen(r) : 0;
            if (!len || r[len - 1] != '\n' || memchr(r, '\n', len - 1))
                abort();
            json_t *parsed = json_loadb(r, len, 0, NULL);
            if (!parsed)
                abort();
            json_decref(parsed);
        }
        json_decref(conv);
        json_decref(rep);
        line = nl ? nl + 1 : end;
    }
    adapter_claude_parser_free(p);
    return 0;
}
