/* libFuzzer harness for the Last-Event-ID header, as sse.c reads it: the
 * header value (libmicrohttpd hands it over as a C string, trimmed) goes
 * to parse_u64("Last-Event-ID", ...).  Invariants: accepted exactly when it
 * is 1 to 19 decimal digits not above INT64_MAX, with strtoull's value, so a
 * resuming EventSource can never make the server start from a sequence it
 * did not send; the refusal names the header.  Built with -DSJ_FUZZ=ON (or
 * -DFUZZ=ON) and clang; seeds in corpus/fuzz_last_event_id/. */
#include "fuzz_common.h"
#include "http/parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size + 1);
    if (!v)
        return 0;
    memcpy(v, data, size);
    v[size] = '\0'; /* a header value ends at the first NUL, as in C */
    size_t len = strlen(v);
    struct err err;
    uint64_t after = 12345;
    int rc = parse_u64("Last-Event-ID", v, &after, &err);
    int digits = len >= 1 && len <= 19 && strspn(v, "0123456789") == len;
    unsigned long long want = digits ? strtoull(v, NULL, 10) : 0;
    if ((rc == 0) != (digits && want <= (unsigned long long)INT64_MAX))
        abort();
    if (rc == 0 && after != want)
        abort();
    if (rc != 0) {
        fuzz_check_refusal(rc, &err);
        if (after != 12345 || !strstr(err.msg, "Last-Event-ID"))
            abort(); /* out-param untouched, header named */
    }
    free(v);
    return 0;
}
