/* The compatibility proof of issue 17: the npm sandbox-agent@0.4.2 SDK,
 * installed by the sdk/install fixture (tests/sdk/install.sh), drives every
 * fs, process and config method against the real server, started here on
 * 127.0.0.1 with a token.  The checks are in tests/sdk/sdk_compat.mjs,
 * which prints one line per check and exits with the number that failed.
 *
 * Environment (tests/CMakeLists.txt): SJ_SDK_DIR, where the fixture
 * installed the SDK; SJ_SDK_SCRIPT, the script's path. */
#include "cli.h"
#include "server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SDK_TOKEN "sdk-compat-token"
#define SDK_TIMEOUT_MS 240000

static void test_sdk_drives_every_workspace_method(void **state)
{
    (void)state; /* cmocka's; the server is started here with a token */
    const char *sdk_dir = getenv("SJ_SDK_DIR");
    const char *script = getenv("SJ_SDK_SCRIPT");
    assert_non_null(sdk_dir);
    assert_non_null(script);

    char data[512], work[512];
    sj_fresh_dir(data, sizeof data, "sdk-compat-data");
    sj_fresh_dir(work, sizeof work, "sdk-compat-work");
    struct sj_server s;
    const char *const extra[] = { "--token", SDK_TOKEN, NULL };
    assert_int_equal(sj_server_start(&s, data, extra), 0);

    char url[64], e_url[96], e_token[64], e_sdk[640], e_work[640];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    snprintf(e_url, sizeof e_url, "SJ_URL=%s", url);
    snprintf(e_token, sizeof e_token, "SJ_TOKEN=%s", SDK_TOKEN);
    snprintf(e_sdk, sizeof e_sdk, "SJ_SDK_DIR=%s", sdk_dir);
    snprintf(e_work, sizeof e_work, "SJ_WORKDIR=%s", work);
    const char *const env[] = { e_url, e_token, e_sdk, e_work, NULL };
    const char *const args[] = { script, NULL };
    struct sj_cli_proc *p = sj_cli_start_program("node", args, env);
    struct sj_cli_result r;
    sj_cli_finish(p, SDK_TIMEOUT_MS, &r);
    /* The per-check lines are the report, pass or fail. */
    fprintf(stderr, "%s%s", r.out, r.err);
    int code = r.exit_code;
    sj_cli_result_free(&r);
    assert_int_equal(sj_server_stop(&s), 0);
    sj_server_release(&s);
    assert_int_equal(code, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_drives_every_workspace_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
