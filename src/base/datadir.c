#include "base/datadir.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int datadir_path(const char *given, const char *file, char *out, size_t size)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    const char *sep = file ? "/" : "";
    const char *name = file ? file : "";
    int n;
    if (given)
        n = snprintf(out, size, "%s%s%s", given, sep, name);
    else if (xdg && xdg[0] == '/')
        n = snprintf(out, size, "%s/sandbox-journal%s%s", xdg, sep, name);
    else if (home && home[0])
        n = snprintf(out, size, "%s/.local/share/sandbox-journal%s%s", home, sep, name);
    else
        return -1;
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int datadir_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}
