#include "base/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The pid of the process holding the lock on `fd`'s file, from the lock
 * itself, else from what the holder wrote into the file (another pid
 * namespace shows 0); 0 if neither says. */
static long datadir_lock_holder(int fd)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0)
        return (long)fl.l_pid;
    char text[32];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    long pid = strtol(text, NULL, 10);
    return pid > 0 ? pid : 0;
}

int datadir_lock(const char *dir, int *fd_out, long *holder)
{
    *holder = 0;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/server.lock", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno == EACCES ? EAGAIN : errno; /* POSIX allows either */
        if (e == EAGAIN)
            *holder = datadir_lock_holder(fd);
        close(fd);
        errno = e;
        return -1;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != (ssize_t)len) {
        int e = errno ? errno : EIO;
        close(fd);
        errno = e;
        return -1;
    }
    *fd_out = fd;
    return 0;
}
