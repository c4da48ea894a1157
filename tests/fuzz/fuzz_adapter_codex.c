/* libFuzzer harness for the Codex adapter's line parser: each input line is
 * classified; invariants: parsing never fails but for memory, a response
 * or request has an id, every conversion is an object with a type, and a
 * permission id it makes splits back into its request id.  Seeds:
 * tests/fixtures/codex/<case>/input.jsonl.  Built with -DSJ_FUZZ=ON and
 * clang. */
#include "adapters/codex.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data, *end = line + size;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        struct adapter_codex_line l;
        struct err err;
        if (adapter_codex_parse_line(line, n, 0, "7", &l, &err) != 0) {
            if (err.code != ERR_NOMEM)
                abort();
        } else {
            if (l.kind == ADAPTER_CODEX_RESPONSE && !l.has_id)
                abort();
            size_t i;
            json_t *v;
            json_array_foreach(l.conversions, i, v) {
                if (!json_is_object(v) || !json_string_value(json_object_get(v, "type")))
                    abort();
            }
            if (l.is_approval) {
                const char *pid = json_string_value(json_object_get(
                    json_object_get(json_array_get(l.conversions, 0), "data"), "permission_id"));
                char prefix[32];
                long long id;
                if (!pid || adapter_codex_permission_id(pid, prefix, sizeof prefix, &id, &err) ||
                    id != l.id || strcmp(prefix, "7") != 0)
                    abort();
            }
            adapter_codex_line_clear(&l);
        }
        line = nl ? nl + 1 : end;
    }
    return 0;
}
