/* `sandbox-journal import jsonl:PATH`: replays a JSONL export into a
 * journal, so the sessions are served (GET /events, SSE) byte for byte as
 * they were where they were recorded.  The file is checked whole before the
 * journal is opened, so a bad file leaves the journal untouched (and a new
 * data directory uncreated). */
#include "base/datadir.h"
#include "cli/cmd.h"
#include "base/err.h"
#include "export/export_import.h"
#include "export/export_url.h"
#include "journal/journal.h"
#include "base/opts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char cmd_import_usage[] =
    "usage: sandbox-journal import jsonl:PATH [options]\n"
    "\n"
    "Appends the sessions of a JSONL export ('sandbox-journal export --to jsonl:PATH')\n"
    "to a journal, each event verbatim, so the server serves them byte for byte.\n"
    "Sessions the journal already holds get only the events they lack; an event\n"
    "that differs from the one held is refused.  Nothing is written unless the\n"
    "whole file is good.  Start (or restart) the server on the data directory\n"
    "afterwards.\n"
    "\n"
    "options:\n"
    "      --data-dir DIR     where journal.db lives or will be created (default as\n"
    "                         for 'server')\n"
    "  -q, --quiet            no summary line\n";

int cmd_import(int argc, char **argv)
{
    const char *source = NULL, *data_dir_opt = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int missing = 0;
        if (opts_match(argc, argv, &i, "--data-dir", NULL, 1, &v, &missing)) {
            data_dir_opt = v;
        } else if (opts_match(argc, argv, &i, "--quiet", "-q", 0, &v, &missing)) {
            quiet = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cmd_import_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return opts_fail("unknown import option '%s' (see 'sandbox-journal import --help')",
                             argv[i]);
        } else if (source) {
            return opts_fail("import takes one source");
        } else {
            source = argv[i];
        }
        if (missing)
            return opts_fail("%s needs a value", argv[i]);
    }
    if (!source)
        return opts_fail("import needs a source, jsonl:PATH (see 'sandbox-journal import "
                         "--help')");

    struct err err;
    err_clear(&err);
    struct export_url url;
    if (export_url_parse(source, &url, &err) != 0)
        return opts_fail("%s", err.msg);
    if (url.kind != EXPORT_URL_JSONL) {
        export_url_clear(&url);
        return opts_fail("import reads jsonl:PATH files only");
    }
    char data_dir[PATH_MAX], db_path[PATH_MAX + 16];
    if (datadir_path(data_dir_opt, NULL, data_dir, sizeof data_dir) != 0) {
        export_url_clear(&url);
        return opts_fail("cannot find a data directory: set --data-dir, XDG_DATA_HOME or HOME");
    }
    snprintf(db_path, sizeof db_path, "%s/journal.db", data_dir);

    int code = 1;
    int lock_fd = -1;
    journal_t *j = NULL;
    struct export_import_summary sum;
    memset(&sum, 0, sizeof sum);
    /* The file alone first: a bad one must not even create the journal. */
    if (export_import_check(url.path, NULL, &err) != 0)
        goto done;
    if (datadir_mkdirs(data_dir) != 0) {
        err_set(&err, ERR_STORAGE, "cannot create data directory %s: %s", data_dir,
                strerror(errno));
        goto done;
    }
    /* A running server would not know the sessions an import creates behind
     * its back (it loads the session rows at start), and it would refuse
     * their next message: import into a journal no server holds. */
    long holder = 0;
    if (datadir_lock(data_dir, &lock_fd, &holder) != 0) {
        if (errno == EAGAIN)
            err_set(&err, ERR_CONFLICT,
                    "data directory %s is in use by a running server%s%.0ld%s: stop it "
                    "before importing", data_dir, holder ? " (pid " : "", holder,
                    holder ? ")" : "");
        else
            err_set(&err, ERR_STORAGE, "cannot lock data directory %s: %s", data_dir,
                    strerror(errno));
        goto done;
    }
    /* An import is repeatable (what the journal has is skipped), so the
     * commits need not fsync one by one; journal_close() checkpoints. */
    if (journal_open(db_path, JOURNAL_DURABILITY_NORMAL, &j, &err) != 0)
        goto done;
    if (export_import_jsonl(url.path, j, &sum, &err) != 0)
        goto done;
    if (!quiet)
        fprintf(stderr,
                "sandbox-journal: imported %llu events of %llu sessions (%llu new) from %s "
                "into %s%s\n",
                (unsigned long long)sum.events, (unsigned long long)sum.sessions,
                (unsigned long long)sum.created, url.path, db_path,
                sum.skipped ? "; the journal already had the rest" : "");
    code = 0;
done:
    if (code)
        fprintf(stderr, "sandbox-journal: %s\n", err.msg[0] ? err.msg : "import failed");
    journal_close(j);
    if (lock_fd >= 0 && close(lock_fd) != 0)
        fprintf(stderr, "sandbox-journal: closing the data directory lock: %s\n",
                strerror(errno));
    export_url_clear(&url);
    return code;
}
