/* Recorded agent output for the adapters' unit tests: one directory per
 * case under tests/fixtures/<agent>/, holding the input (the CLI's stdout
 * or event stream) and expected.jsonl, what the test makes of it.
 *
 * SJ_UPDATE_FIXTURES=1 makes fixtures_expect() rewrite expected.jsonl
 * from the output instead of comparing (read the diff before committing).
 * Failures are cmocka failures of the calling test. */
#ifndef SJ_TEST_FIXTURES_H
#define SJ_TEST_FIXTURES_H

#include "events/normalize.h"

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>

struct CMUnitTest;

/* One case: a test's *state when it runs through fixtures_run_group(). */
struct fixtures_case {
    char name[256];
    char dir[PATH_MAX];  /* tests/fixtures/<agent>/<name> */
};

/* new (malloc, NUL-terminated): <case dir>/<file> and its length; fails
 * the test if it cannot be read. */
char *fixtures_read(const struct fixtures_case *c, const char *file, size_t *len);

/* new: tests/fixtures/<agent>/<rel>; fails the test if it cannot be read. */
char *fixtures_read_agent(const char *agent, const char *rel, size_t *len);

/* Compares `got` with the case's expected.jsonl and fails at the first
 * differing line, showing both. */
void fixtures_expect(const struct fixtures_case *c, const char *got);

/* Reads the case's `input_file`, turns it into text with `run` (which
 * returns new memory) and compares that with expected.jsonl. */
void fixtures_check(const struct fixtures_case *c, const char *input_file,
                    char *(*run)(const char *input, size_t len));

/* Calls `parse` with prefixes of every line of the case's `input_file` that
 * starts with `lead` (may be ""), `lead` cut off: lengths 0, step, 2 step,
 * ... up to the whole.  The step is `small_step`, or whole/`long_cuts` + 1
 * for lines over 400 bytes when `long_cuts` is not 0, so that long lines
 * cost about `long_cuts` calls.  `parse` asserts what it expects. */
void fixtures_each_prefix(const struct fixtures_case *c, const char *input_file, const char *lead,
                          size_t small_step, size_t long_cuts,
                          void (*parse)(void *ctx, const char *text, size_t prefix, size_t whole),
                          void *ctx);

/* Fails the test unless `n` accepts every conversion of the array, in
 * order: each fits the universal schema and the session's state so far. */
void fixtures_vet(normalize_t *n, const json_t *conversions);

/* Writes each conversion as `indent` and one line of compact JSON, "raw"
 * shown as true when present: it is the input line itself. */
void fixtures_print_conversions(FILE *out, const char *indent, const json_t *conversions);

/* The cases of `agent`, sorted by name, at most `max`; each names[i] is
 * new (free it).  Returns how many, or -1 (printed) if the directory
 * cannot be read. */
int fixtures_list(const char *agent, char **names, size_t max);

/* Runs cmocka group `agent`: for every case "fixture <name>" (run_case)
 * and "prefixes of <name>" (run_prefixes), each with the case as *state,
 * then the `n_fixed` tests of `fixed`.  Returns cmocka's result, or 1 if
 * the cases cannot be listed. */
int fixtures_run_group(const char *agent, void (*run_case)(void **state),
                       void (*run_prefixes)(void **state), const struct CMUnitTest *fixed,
                       size_t n_fixed);

#endif
