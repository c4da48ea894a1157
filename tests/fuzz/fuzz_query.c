/* libFuzzer harness for what the URL carries (src/parse.h): path segments
 * and query values are percent-decoded, then read as session ids, integers
 * (offset, limit) and booleans (include_raw).  The first byte chooses
 * whether "+" means a space (query) or not (path).
 * Invariants: decoding refuses exactly broken escapes and encoded NUL bytes
 * and otherwise yields a string no longer than its input, with no NUL in
 * it; re-encoding every byte and decoding again gives the same string;
 * parse_u64 accepts exactly 1 to 19 decimal digits up to INT64_MAX, with the
 * value strtoull gives; parse_bool accepts exactly true/false/1/0; an
 * accepted session id is 1..255 bytes of UTF-8 without control characters;
 * parse_utf8_char() (which also keeps ProblemDetails texts valid in http.c)
 * agrees with jansson on what is UTF-8.
 * Built with -DSJ_FUZZ=ON (or -DFUZZ=ON) and clang; seeds in
 * corpus/fuzz_query/, dictionary fuzz_query.dict. */
#include "fuzz_common.h"
#include "http/parse.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_u64(const char *s)
{
    struct err err;
    uint64_t v = 0;
    int rc = parse_u64("offset", s, &v, &err);
    size_t len = strlen(s);
    int digits = len >= 1 && len <= 19 && strspn(s, "0123456789") == len;
    int want = digits && strtoull(s, NULL, 10) <= (unsigned long long)INT64_MAX;
    if (want != (rc == 0))
        abort();
    if (rc == 0 && v != strtoull(s, NULL, 10))
        abort();
    if (rc)
        fuzz_check_refusal(rc, &err);
}

static void fuzz_bool(const char *s)
{
    struct err err;
    int v = -1;
    int rc = parse_bool("include_raw", s, &v, &err);
    int t = strcmp(s, "true") == 0 || strcmp(s, "1") == 0;
    int f = strcmp(s, "false") == 0 || strcmp(s, "0") == 0;
    if ((rc == 0) != (t || f) || (rc == 0 && v != t))
        abort();
    if (rc)
        fuzz_check_refusal(rc, &err);
}

static void fuzz_session_id(const char *s)
{
    struct err err;
    int rc = parse_session_id(s, &err);
    size_t len = strlen(s);
    if (rc == 0) {
        if (len == 0 || len > 255 || !fuzz_utf8_ok(s, len))
            abort();
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                abort();
    } else {
        fuzz_check_refusal(rc, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int plus = data[0] & 1;
    const char *raw = (const char *)data + 1;
    size_t len = size - 1;
    struct err err;
    char *dec = parse_percent_decode(raw, len, plus, &err);
    if (!dec) {
        if (err.code == ERR_NOMEM)
            return 0;
        fuzz_check_refusal(err.code, &err);
        /* Refused: a '%' not followed by two hex digits, or an escape of NUL. */
        int broken = 0;
        for (size_t i = 0; i < len && !broken; i++) {
            if (raw[i] == '%') {
                if (i + 2 >= len + 0 || !strchr("0123456789abcdefABCDEF", raw[i + 1]) ||
                    !strchr("0123456789abcdefABCDEF", raw[i + 2]) || raw[i + 1] == '\0' ||
                    raw[i + 2] == '\0')
                    broken = 1;
                else if (raw[i + 1] == '0' && raw[i + 2] == '0')
                    broken = 1;
                else
                    i += 2;
            } else if (raw[i] == '\0') {
                broken = 1;
            }
        }
        if (!broken)
            abort();
        return 0;
    }
    size_t dlen = strlen(dec);
    if (dlen > len || memchr(raw, '\0', len))
        abort();
    /* Every byte escaped, decoded again: the same string. */
    char *enc = malloc(dlen * 3 + 1);
    if (enc) {
        for (size_t i = 0; i < dlen; i++)
            snprintf(enc + i * 3, 4, "%%%02X", (unsigned char)dec[i]);
        char *again = parse_percent_decode(enc, dlen * 3, plus, &err);
        if (again && strcmp(again, dec) != 0)
            abort();
        free(again);
        free(enc);
    }
    /* Differential: jansson's own UTF-8 check. */
    json_t *js = json_stringn(dec, dlen);
    if (!js != !fuzz_utf8_ok(dec, dlen))
        abort();
    json_decref(js);
    fuzz_u64(dec);
    fuzz_bool(dec);
    fuzz_session_id(dec);
    free(dec);
    return 0;
}
