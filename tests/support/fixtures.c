/* Recorded agent output for the adapters' unit tests; see fixtures.h. */
#include "fixtures.h"

#include "base/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tests/fixtures/<agent>, found from this file's place in the source tree
 * so that a test runs from any directory. */
static void fixtures_agent_dir(const char *agent, char *out, size_t size)
{
    char here[PATH_MAX];
    snprintf(here, sizeof here, "%s", __FILE__);
    char *slash = strrchr(here, '/');
    assert_non_null(slash);
    *slash = '\0';
    slash = strrchr(here, '/');
    assert_non_null(slash);
    *slash = '\0';
    if (snprintf(out, size, "%s/fixtures/%s", here, agent) >= (int)size)
        fail_msg("fixture path too long for %s", agent);
}

/* new: the whole file, or NULL if it cannot be read. */
static char *fixtures_read_path(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *data = malloc(cap + 1);
    assert_non_null(data);
    while ((r = fread(data + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            data = realloc(data, cap + 1);
            assert_non_null(data);
        }
    }
    fclose(f);
    data[n] = '\0';
    *len = n;
    return data;
}

char *fixtures_read(const struct fixtures_case *c, const char *file, size_t *len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", c->dir, file);
    char *data = fixtures_read_path(path, len);
    if (!data)
        fail_msg("cannot read %s", path);
    return data;
}

char *fixtures_read_agent(const char *agent, const char *rel, size_t *len)
{
    char dir[PATH_MAX], path[PATH_MAX + 300];
    fixtures_agent_dir(agent, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *data = fixtures_read_path(path, len);
    if (!data)
        fail_msg("cannot read %s", path);
    return data;
}

void fixtures_expect(const struct fixtures_case *c, const char *got)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/expected.jsonl", c->dir);
    const char *update = getenv("SJ_UPDATE_FIXTURES");
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_true(fputs(got, f) >= 0);
        assert_int_equal(fclose(f), 0);
    }
    size_t want_len;
    char *want = fixtures_read_path(path, &want_len);
    if (!want)
        fail_msg("cannot read %s (run with SJ_UPDATE_FIXTURES=1 to create it)", path);
    if (strcmp(got, want) != 0) {
        const char *a = got, *b = want;
        int line = 1;
        while (*a && *a == *b) {
            if (*a == '\n')
                line++;
            a++, b++;
        }
        fprintf(stderr, "%s: output differs from expected.jsonl at line %d\n got: %.300s\n"
                        "want: %.300s\n",
                c->name, line, a, b);
        free(want);
        fail();
    }
    free(want);
}

void fixtures_check(const struct fixtures_case *c, const char *input_file,
                    char *(*run)(const char *input, size_t len))
{
    size_t len = 0;
    char *input = fixtures_read(c, input_file, &len);
    char *got = run(input, len);
    fixtures_expect(c, got);
    free(input);
    free(got);
}

void fixtures_each_prefix(const struct fixtures_case *c, const char *input_file, const char *lead,
                          size_t small_step, size_t long_cuts,
                          void (*parse)(void *ctx, const char *text, size_t prefix, size_t whole),
                          void *ctx)
{
    size_t len = 0, lead_len = strlen(lead);
    char *input = fixtures_read(c, input_file, &len);
    const char *line = input, *end = input + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (n > lead_len && memcmp(line, lead, lead_len) == 0) {
            size_t step = long_cuts && n > 400 ? n / long_cuts + 1 : small_step;
            for (size_t k = lead_len; k <= n; k += step)
                parse(ctx, line + lead_len, k - lead_len, n - lead_len);
        }
        line = nl ? nl + 1 : end;
    }
    free(input);
}

void fixtures_vet(normalize_t *n, const json_t *conversions)
{
    size_t i;
    const json_t *c;
    json_array_foreach(conversions, i, c) {
        struct normalize_output out;
        struct err err;
        normalize_output_init(&out);
        if (normalize_apply(n, c, "2026-11-23T00:00:00.000000Z", &out, &err) != 0) {
            char *s = json_dumps(c, JSON_COMPACT);
            fail_msg("normalizer refused %s: %s", s ? s : "?", err.msg);
        }
        normalize_output_clear(&out);
    }
}

void fixtures_print_conversions(FILE *out, const char *indent, const json_t *conversions)
{
    size_t i;
    const json_t *c;
    json_array_foreach(conversions, i, c) {
        json_t *copy = json_deep_copy(c);
        assert_non_null(copy);
        if (json_object_get(copy, "raw"))
            assert_int_equal(json_object_set_new(copy, "raw", json_true()), 0);
        char *s = json_dumps(copy, JSON_COMPACT);
        assert_non_null(s);
        assert_true(fprintf(out, "%s%s\n", indent, s) > 0);
        free(s);
        json_decref(copy);
    }
}

static int fixtures_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fixtures_list(const char *agent, char **names, size_t max)
{
    char dir[PATH_MAX];
    fixtures_agent_dir(agent, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return -1;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max)
        if (e->d_name[0] != '.') {
            names[n] = strdup(e->d_name);
            if (!names[n])
                break;
            n++;
        }
    closedir(d);
    qsort(names, n, sizeof names[0], fixtures_by_name);
    return (int)n;
}

/* Enough for every agent's cases with room to grow; fixtures_run_group
 * says so when a directory outgrows it rather than dropping cases. */
#define FIXTURES_MAX 128

int fixtures_run_group(const char *agent, void (*run_case)(void **state),
                       void (*run_prefixes)(void **state), const struct CMUnitTest *fixed,
                       size_t n_fixed)
{
    char *names[FIXTURES_MAX + 1];
    int n = fixtures_list(agent, names, FIXTURES_MAX + 1);
    if (n < 0)
        return 1;
    int rc = 1;
    char dir[PATH_MAX];
    fixtures_agent_dir(agent, dir, sizeof dir);
    struct fixtures_case *cases = calloc((size_t)n + 1, sizeof *cases);
    char(*labels)[2][320] = calloc((size_t)n + 1, sizeof *labels);
    struct CMUnitTest *tests = calloc(2 * (size_t)n + n_fixed + 1, sizeof *tests);
    if (n > FIXTURES_MAX) {
        fprintf(stderr, "%s: more than %d fixtures: raise FIXTURES_MAX\n", agent, FIXTURES_MAX);
        goto done;
    }
    if (!cases || !labels || !tests) {
        fprintf(stderr, "%s: out of memory\n", agent);
        goto done;
    }
    size_t t = 0;
    for (int i = 0; i < n; i++) {
        struct fixtures_case *c = &cases[i];
        snprintf(c->name, sizeof c->name, "%s", names[i]);
        if (snprintf(c->dir, sizeof c->dir, "%s/%s", dir, names[i]) >= (int)sizeof c->dir) {
            fprintf(stderr, "%s: path too long for fixture %s\n", agent, names[i]);
            goto done;
        }
        snprintf(labels[i][0], sizeof labels[i][0], "fixture %s", names[i]);
        snprintf(labels[i][1], sizeof labels[i][1], "prefixes of %s", names[i]);
        tests[t++] = (struct CMUnitTest){ labels[i][0], run_case, NULL, NULL, c };
        tests[t++] = (struct CMUnitTest){ labels[i][1], run_prefixes, NULL, NULL, c };
    }
    for (size_t i = 0; i < n_fixed; i++)
        tests[t++] = fixed[i];
    rc = _cmocka_run_group_tests(agent, tests, t, NULL, NULL);
done:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(cases);
    free(labels);
    free(tests);
    return rc;
}
