/* docs/agents.md's coverage matrix equals what the server reports: the
 * table (capability x agent, "yes"/"no") is parsed from the document and
 * compared cell by cell with the capabilities of GET /v1/agents, so neither
 * can change without the other.  Every capability the API reports has a
 * row and every agent a column, and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 16

/* new (malloc): docs/agents.md, found from this file's path in the tree. */
static char *read_doc(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", __FILE__);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(path, '/');
        assert_non_null(slash);
        *slash = '\0';
    }
    strncat(path, "/docs/agents.md", sizeof path - strlen(path) - 1);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    assert_true(n > 0);
    return text;
}

/* Splits a table row "| a | b |" into trimmed cells (in place).  Returns
 * the number of cells, or -1 if the line is not a row. */
static int cells(char *line, char *out[MAX_COLS + 1])
{
    if (line[0] != '|')
        return -1;
    int n = 0;
    char *p = line + 1;
    for (char *bar; (bar = strchr(p, '|')) != NULL; p = bar + 1) {
        *bar = '\0';
        while (*p == ' ')
            p++;
        char *end = p + strlen(p);
        while (end > p && end[-1] == ' ')
            *--end = '\0';
        if (n > MAX_COLS)
            fail_msg("table row with too many cells");
        out[n++] = p;
    }
    return n;
}

/* new: {"<agent>": {"<capability>": true|false, ...}, ...} from the
 * document's matrix (the table whose header starts "| capability |"). */
static json_t *doc_matrix(void)
{
    char *text = read_doc();
    char *header = strstr(text, "\n| capability | ");
    if (!header)
        fail_msg("docs/agents.md has no table starting \"| capability |\"");
    json_t *matrix = json_object();
    char *agents[MAX_COLS + 1];
    char *line = header + 1;
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    int cols = cells(line, agents);
    assert_true(cols >= 2);
    for (int c = 1; c < cols; c++)
        assert_int_equal(json_object_set_new(matrix, agents[c], json_object()), 0);
    line = nl + 1; /* the |---| line */
    nl = strchr(line, '\n');
    assert_non_null(nl);
    assert_int_equal(strncmp(line, "|---", 4), 0);
    for (line = nl + 1; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        char *row[MAX_COLS + 1];
        int n = cells(line, row);
        if (n < 0)
            break;
        if (n != cols)
            fail_msg("matrix row \"%s\" has %d cells, the header %d", row[0], n, cols);
        size_t len = strlen(row[0]);
        if (len < 3 || row[0][0] != '`' || row[0][len - 1] != '`')
            fail_msg("matrix row name %s is not `capability`", row[0]);
        row[0][len - 1] = '\0';
        const char *cap = row[0] + 1;
        for (int c = 1; c < cols; c++) {
            int yes = strcmp(row[c], "yes") == 0;
            if (!yes && strcmp(row[c], "no") != 0)
                fail_msg("matrix cell %s/%s is \"%s\", not yes or no", cap, agents[c], row[c]);
            json_t *col = json_object_get(matrix, agents[c]);
            if (json_object_get(col, cap))
                fail_msg("capability %s appears twice in the matrix", cap);
            assert_int_equal(json_object_set_new(col, cap, json_boolean(yes)), 0);
        }
    }
    free(text);
    return matrix;
}

static void test_matrix_equals_api(void **state)
{
    struct sj_server *s = *state;
    json_t *doc = doc_matrix();
    json_t *r = sj_call(s, "GET", "/v1/agents", NULL, 200);
    json_t *agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 9);
    assert_int_equal(json_object_size(doc), json_array_size(agents));
    size_t i;
    json_t *a;
    int mismatches = 0;
    json_array_foreach(agents, i, a) {
        const char *id = sj_str(a, "id");
        json_t *col = json_object_get(doc, id);
        if (!col)
            fail_msg("docs/agents.md has no column for agent %s", id);
        json_t *caps = json_object_get(a, "capabilities");
        if (json_object_size(col) != json_object_size(caps))
            fail_msg("%s: the matrix has %zu capabilities, the API %zu", id,
                     json_object_size(col), json_object_size(caps));
        const char *cap;
        json_t *v;
        json_object_foreach(caps, cap, v) {
            json_t *want = json_object_get(col, cap);
            if (!want) {
                fprintf(stderr, "docs/agents.md has no row for %s\n", cap);
                mismatches++;
            } else if (json_is_true(want) != json_is_true(v)) {
                fprintf(stderr, "%s/%s: docs/agents.md says %s, GET /v1/agents says %s\n", id,
                        cap, json_is_true(want) ? "yes" : "no", json_is_true(v) ? "yes" : "no");
                mismatches++;
            }
        }
    }
    assert_int_equal(mismatches, 0);
    json_decref(r);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_matrix_equals_api, sj_setup_default,
                                        sj_teardown_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
