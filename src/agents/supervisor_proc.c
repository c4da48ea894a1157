/* Child processes on the supervisor loop.
 *
 * A child has three pipes and one process handle.  Its end is reported once,
 * only when the process has exited and both stdout and stderr reached EOF,
 * so an adapter always sees every line before it learns of the exit.  The
 * struct is freed when the last of its four handles has closed, after
 * on_exit returned.
 *
 * stderr is not streamed to anyone: it is kept as the v1 StderrOutput record
 * (first lines, last lines, count) for the session.ended event of a crash.
 * A raw-mode child (on_output: the workspace's processes) hands both streams
 * over as read instead, and may have a pseudo-terminal: then stdin and
 * stdout are two descriptors of the terminal's master side and the stderr
 * pipe is closed unused, at EOF from the start.
 */
/* openpty() */
#define _DEFAULT_SOURCE
#include "agents/supervisor.h"

#include "base/buf.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROC_DEFAULT_MAX_LINE (16u * 1024 * 1024)
#define PROC_STDERR_LINE_MAX 2000
#define PROC_KEEP_LINE_CAP (1u << 20) /* a line buffer kept for the next line */

struct supervisor_proc {
    uv_process_t process;
    uv_pipe_t in;
    uv_pipe_t out;
    uv_pipe_t err;
    /* The SIGTERM after the EOF grace, then the SIGKILL after kill_ms:
     * armed by supervisor_proc_stop(), closed with the other handles. */
    uv_timer_t kill_timer;
    int stopping;
    int term_sent;
    unsigned kill_ms;
    char *label;
    int open_handles;
    int exited;
    int64_t exit_status;
    int term_signal;
    int out_eof;
    int err_eof;
    int stdin_closing;
    int close_stdin_when_drained;
    size_t pending_writes;
    int reported;
    struct supervisor_proc_callbacks cb;
    size_t max_line;
    struct buf line; /* stdout bytes of the line being read */
    int line_cut;
    int paused;
    int tty_fd; /* a tty child's master side, for resizes; -1: none */
    /* stderr record */
    struct buf err_line;
    struct buf head;
    size_t err_lines;
    char *tail[SUPERVISOR_STDERR_LINES]; /* ring of the lines after the head */
    size_t tail_count;
    size_t tail_next;
};

struct proc_write {
    uv_write_t req;
    supervisor_proc_t *p;
    char data[];
};

static void proc_free(supervisor_proc_t *p)
{
    if (p->tty_fd >= 0 && close(p->tty_fd) != 0)
        fprintf(stderr, "sandbox-journal: %s: closing the terminal: %s\n", p->label,
                strerror(errno));
    free(p->label);
    buf_free(&p->line);
    buf_free(&p->err_line);
    buf_free(&p->head);
    for (size_t i = 0; i < SUPERVISOR_STDERR_LINES; i++)
        free(p->tail[i]);
    free(p);
}

static void proc_handle_closed(uv_handle_t *h)
{
    supervisor_proc_t *p = h->data;
    if (--p->open_handles == 0 && p->reported)
        proc_free(p);
}

static void proc_close(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, proc_handle_closed);
}

/* Records one complete stderr line.  Memory failures only shorten the
 * record: it is diagnostics, never worth failing the session for. */
static void proc_err_line(supervisor_proc_t *p, const char *line, size_t len)
{
    if (len > PROC_STDERR_LINE_MAX)
        len = PROC_STDERR_LINE_MAX;
    p->err_lines++;
    if (p->err_lines <= SUPERVISOR_STDERR_LINES) {
        if (buf_append(&p->head, line, len) != 0 || buf_append(&p->head, "\n", 1) != 0)
            buf_reset(&p->head);
        return;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, line, len);
    copy[len] = '\0';
    free(p->tail[p->tail_next]);
    p->tail[p->tail_next] = copy;
    p->tail_next = (p->tail_next + 1) % SUPERVISOR_STDERR_LINES;
    if (p->tail_count < SUPERVISOR_STDERR_LINES)
        p->tail_count++;
}

static void proc_report(supervisor_proc_t *p)
{
    if (p->reported || !p->exited || !p->out_eof || !p->err_eof)
        return;
    if (!p->cb.on_output && (p->line.len || p->line_cut)) /* a last line without "\n" */
        p->cb.on_line(p->cb.arg, p->line.data ? p->line.data : "", p->line.len, p->line_cut);
    if (p->err_line.len)
        proc_err_line(p, p->err_line.data, p->err_line.len);
    struct buf tail;
    buf_init(&tail);
    size_t start = (p->tail_next + SUPERVISOR_STDERR_LINES - p->tail_count) %
                   SUPERVISOR_STDERR_LINES;
    for (size_t i = 0; i < p->tail_count; i++) {
        const char *l = p->tail[(start + i) % SUPERVISOR_STDERR_LINES];
        if (buf_puts(&tail, l) != 0 || buf_append(&tail, "\n", 1) != 0)
            break;
    }
    struct supervisor_exit e = {
        .exit_status = p->term_signal ? -1 : p->exit_status,
        .term_signal = p->term_signal,
        .stderr_head = p->head.len ? p->head.data : NULL,
        .stderr_tail = tail.len ? tail.data : NULL,
        .stderr_lines = p->err_lines,
        .stderr_truncated = p->err_lines > SUPERVISOR_STDERR_LINES,
    };
    p->reported = 1;
    p->cb.on_exit(p->cb.arg, &e);
    buf_free(&tail);
    proc_close((uv_handle_t *)&p->in);
    proc_close((uv_handle_t *)&p->process);
    proc_close((uv_handle_t *)&p->kill_timer);
}

static void proc_exited(uv_process_t *process, int64_t exit_status, int term_signal)
{
    supervisor_proc_t *p = process->data;
    p->exited = 1;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    proc_report(p);
}

static void proc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h; /* every pipe reads into a fresh block */
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void proc_out_bytes(supervisor_proc_t *p, const char *data, size_t n)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        size_t room = p->line.len < p->max_line ? p->max_line - p->line.len : 0;
        size_t keep = take < room ? take : room;
        if (keep && buf_append(&p->line, data, keep) != 0)
            p->line_cut = 1; /* out of memory: deliver what we have, flagged */
        if (keep < take)
            p->line_cut = 1;
        if (!nl)
            return;
        p->cb.on_line(p->cb.arg, p->line.data ? p->line.data : "", p->line.len, p->line_cut);
        /* One huge line (up to max_line) must not keep its buffer for the
         * rest of the child's life. */
        if (p->line.cap > PROC_KEEP_LINE_CAP)
            buf_free(&p->line);
        else
            buf_reset(&p->line);
        p->line_cut = 0;
        data += take + 1;
        n -= take + 1;
    }
}

static void proc_err_bytes(supervisor_proc_t *p, const char *data, size_t n)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        size_t room = p->err_line.len < PROC_STDERR_LINE_MAX
                          ? PROC_STDERR_LINE_MAX - p->err_line.len
                          : 0;
        if (buf_append(&p->err_line, data, take < room ? take : room) != 0)
            buf_reset(&p->err_line);
        if (!nl)
            return;
        proc_err_line(p, p->err_line.data ? p->err_line.data : "", p->err_line.len);
        buf_reset(&p->err_line);
        data += take + 1;
        n -= take + 1;
    }
}

static void proc_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    supervisor_proc_t *p = stream->data;
    int is_out = stream == (uv_stream_t *)&p->out;
    if (nread > 0) {
        if (p->cb.on_output)
            p->cb.on_output(p->cb.arg, is_out ? 1 : 2, b->base, (size_t)nread);
        else if (is_out)
            proc_out_bytes(p, b->base, (size_t)nread);
        else
            proc_err_bytes(p, b->base, (size_t)nread);
    }
    free(b->base);
    if (nread >= 0 || nread == UV_ENOBUFS)
        return;
    /* EOF or a read error: either way this pipe has said all it will. */
    if (is_out)
        p->out_eof = 1;
    else
        p->err_eof = 1;
    proc_close((uv_handle_t *)stream);
    proc_report(p);
}

/* Opens a pseudo-terminal of rows x cols.  0, or -1 with errno set. */
static int proc_openpty(unsigned short rows, unsigned short cols, int *master, int *slave)
{
    struct winsize ws = { .ws_row = rows ? rows : 24, .ws_col = cols ? cols : 80 };
    if (openpty(master, slave, NULL, NULL, &ws) != 0)
        return -1;
    /* Only the child may keep the slave, and nobody else the master. */
    if (fcntl(*master, F_SETFD, FD_CLOEXEC) != 0 || fcntl(*slave, F_SETFD, FD_CLOEXEC) != 0) {
        int e = errno;
        close(*master);
        close(*slave);
        errno = e;
        return -1;
    }
    return 0;
}

/* Puts the master side of a tty child's terminal on its stdin and stdout
 * pipes (a descriptor each, so each handle closes its own).  0 or the
 * libuv error. */
static int proc_open_master(supervisor_proc_t *p, int master)
{
    int in_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
    int size_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
    if (in_fd < 0 || size_fd < 0) {
        int e = errno;
        if (in_fd >= 0)
            close(in_fd);
        if (size_fd >= 0)
            close(size_fd);
        return uv_translate_sys_error(e);
    }
    p->tty_fd = size_fd;
    int rc = uv_pipe_open(&p->in, in_fd);
    if (rc < 0) {
        close(in_fd);
        return rc;
    }
    return uv_pipe_open(&p->out, master);
}

int supervisor_proc_spawn(uv_loop_t *loop, const struct supervisor_proc_options *options,
                          const struct supervisor_proc_callbacks *callbacks,
                          supervisor_proc_t **out, struct err *err)
{
    supervisor_proc_t *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory starting %s", options->file);
    assert(supervisor_on_loop(loop));
    assert(!options->tty || callbacks->on_output);
    p->tty_fd = -1;
    p->cb = *callbacks;
    p->max_line = options->max_line_bytes ? options->max_line_bytes : PROC_DEFAULT_MAX_LINE;
    buf_init(&p->line);
    buf_init(&p->err_line);
    buf_init(&p->head);
    p->label = strdup(options->label ? options->label : options->file);
    if (!p->label) {
        proc_free(p);
        return err_set(err, ERR_NOMEM, "out of memory starting %s", options->file);
    }
    int master = -1, slave = -1;
    if (options->tty && proc_openpty(options->tty_rows, options->tty_cols, &master, &slave)) {
        int e = errno;
        proc_free(p);
        return err_set(err, ERR_INTERNAL, "cannot open a terminal for %s: %s", options->file,
                       strerror(e));
    }
    int trc = uv_timer_init(loop, &p->kill_timer);
    if (trc < 0) {
        if (master >= 0) {
            close(master);
            close(slave);
        }
        proc_free(p);
        return err_set(err, ERR_INTERNAL, "uv_timer_init: %s", uv_strerror(trc));
    }
    p->kill_timer.data = p;
    p->open_handles++;
    uv_pipe_t *pipes[3] = { &p->in, &p->out, &p->err };
    for (int i = 0; i < 3; i++) {
        int rc = uv_pipe_init(loop, pipes[i], 0);
        if (rc < 0) {
            p->reported = 1; /* freed by the last close; no on_exit */
            proc_close((uv_handle_t *)&p->kill_timer);
            for (int k = 0; k < i; k++)
                proc_close((uv_handle_t *)pipes[k]);
            if (master >= 0) {
                close(master);
                close(slave);
            }
            return err_set(err, ERR_INTERNAL, "uv_pipe_init: %s", uv_strerror(rc));
        }
        pipes[i]->data = p;
        p->open_handles++;
    }
    uv_stdio_container_t stdio[3] = {
        { .flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&p->in },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err },
    };
    if (options->tty)
        for (int i = 0; i < 3; i++)
            stdio[i] = (uv_stdio_container_t){ .flags = UV_INHERIT_FD, .data.fd = slave };
    uv_process_options_t po = {
        .exit_cb = proc_exited,
        .file = options->file,
        .args = (char **)options->args,
        .env = (char **)options->env,
        .cwd = options->cwd,
        .stdio_count = 3,
        .stdio = stdio,
        /* setsid(): every child leads its own process group (and a terminal's
         * session), so a stop reaches what it started too (a tool's shell,
         * a dev server) and a Ctrl-C at the server's terminal reaches only
         * the server, which stops its children in order. */
        .flags = UV_PROCESS_DETACHED,
    };
    p->process.data = p;
    int rc = uv_spawn(loop, &p->process, &po);
    if (slave >= 0 && close(slave) != 0)
        fprintf(stderr, "sandbox-journal: %s: closing the terminal's slave side: %s\n",
                p->label, strerror(errno));
    if (rc == 0 && master >= 0) {
        rc = proc_open_master(p, master);
        if (rc < 0) {
            uv_process_kill(&p->process, SIGKILL); /* its exit still arrives */
            if (!uv_is_active((uv_handle_t *)&p->out))
                close(master);
        }
        master = -1;
        /* No stderr of its own: the terminal carries it. */
        p->err_eof = 1;
        proc_close((uv_handle_t *)&p->err);
        if (rc < 0) {
            p->out_eof = 1;
            proc_close((uv_handle_t *)&p->out);
        }
        p->open_handles++;
        *out = p;
        if (rc < 0)
            fprintf(stderr, "sandbox-journal: %s: cannot read its terminal: %s\n", p->label,
                    uv_strerror(rc));
        else if ((rc = uv_read_start((uv_stream_t *)&p->out, proc_alloc, proc_read)) < 0) {
            uv_process_kill(&p->process, SIGKILL);
            p->out_eof = 1;
            proc_close((uv_handle_t *)&p->out);
        }
        return 0;
    }
    if (master >= 0)
        close(master);
    if (rc < 0) {
        /* A failed uv_spawn still initialized the handle: close it too. */
        p->reported = 1; /* free on the last close, and never call on_exit */
        p->open_handles++;
        proc_close((uv_handle_t *)&p->process);
        proc_close((uv_handle_t *)&p->kill_timer);
        for (int i = 0; i < 3; i++)
            proc_close((uv_handle_t *)pipes[i]);
        if (rc == UV_ENOENT || rc == UV_EACCES)
            return err_set(err, ERR_NOT_INSTALLED, "cannot run %s: %s", options->file,
                           uv_strerror(rc));
        return err_set(err, ERR_INTERNAL, "cannot start %s: %s", options->file,
                       uv_strerror(rc));
    }
    p->open_handles++;
    if ((rc = uv_read_start((uv_stream_t *)&p->out, proc_alloc, proc_read)) < 0 ||
        (rc = uv_read_start((uv_stream_t *)&p->err, proc_alloc, proc_read)) < 0) {
        /* The child runs; without readers it is useless: end it.  Its exit
         * and the pipes' EOF still arrive through the callbacks. */
        uv_process_kill(&p->process, SIGKILL);
        p->out_eof = p->err_eof = 1;
        proc_close((uv_handle_t *)&p->out);
        proc_close((uv_handle_t *)&p->err);
    }
    *out = p;
    return 0;
}

static void proc_written(uv_write_t *req, int status)
{
    struct proc_write *w = (struct proc_write *)req;
    supervisor_proc_t *p = w->p;
    (void)status; /* a broken pipe shows up as the child's exit */
    free(w);
    p->pending_writes--;
    if (p->pending_writes == 0 && p->close_stdin_when_drained)
        proc_close((uv_handle_t *)&p->in);
}

int supervisor_proc_write(supervisor_proc_t *p, const char *data, size_t len, struct err *err)
{
    assert(supervisor_on_loop(p->process.loop));
    if (p->reported || p->close_stdin_when_drained || uv_is_closing((uv_handle_t *)&p->in))
        return err_set(err, ERR_INVALID, "the agent process no longer reads its input");
    struct proc_write *w = malloc(sizeof *w + len);
    if (!w)
        return err_set(err, ERR_NOMEM, "out of memory writing to the agent");
    w->p = p;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->in, &b, 1, proc_written);
    if (rc < 0) {
        free(w);
        return err_set(err, ERR_INVALID, "writing to the agent: %s", uv_strerror(rc));
    }
    p->pending_writes++;
    return 0;
}

size_t supervisor_proc_queued(const supervisor_proc_t *p)
{
    assert(supervisor_on_loop(p->process.loop));
    if (uv_is_closing((const uv_handle_t *)&p->in))
        return 0;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&p->in);
}

void supervisor_proc_close_stdin(supervisor_proc_t *p)
{
    assert(supervisor_on_loop(p->process.loop));
    p->close_stdin_when_drained = 1;
    if (p->pending_writes == 0)
        proc_close((uv_handle_t *)&p->in);
}

static void proc_kill_timeout(uv_timer_t *t)
{
    supervisor_proc_t *p = t->data;
    if (p->term_sent) {
        if (supervisor_proc_kill(p, SIGKILL) == 0)
            fprintf(stderr, "sandbox-journal: %s: did not stop after SIGTERM: killed\n",
                    p->label);
        return;
    }
    p->term_sent = 1;
    if (supervisor_proc_kill(p, SIGTERM) != 0)
        return; /* gone: its exit closes this timer */
    if (uv_timer_start(&p->kill_timer, proc_kill_timeout, p->kill_ms, 0) != 0)
        fprintf(stderr, "sandbox-journal: %s: cannot arm the kill timer after SIGTERM\n",
                p->label);
}

void supervisor_proc_stop(supervisor_proc_t *p, unsigned kill_ms)
{
    assert(supervisor_on_loop(p->process.loop));
    if (p->stopping)
        return;
    p->stopping = 1;
    p->kill_ms = kill_ms;
    supervisor_proc_close_stdin(p);
    if (p->exited)
        return; /* its exit is on its way */
    if (uv_timer_start(&p->kill_timer, proc_kill_timeout, SUPERVISOR_EOF_GRACE_MS, 0) == 0)
        return;
    /* No timer, so no grace either: the child is asked to go now. */
    fprintf(stderr, "sandbox-journal: %s: cannot arm the stop timer: SIGTERM now\n", p->label);
    p->term_sent = 1;
    if (supervisor_proc_kill(p, SIGTERM) != 0)
        fprintf(stderr, "sandbox-journal: %s: cannot send SIGTERM\n", p->label);
}

int supervisor_proc_stopping(const supervisor_proc_t *p)
{
    return p->stopping;
}

int supervisor_proc_kill(supervisor_proc_t *p, int signum)
{
    assert(supervisor_on_loop(p->process.loop));
    if (p->exited)
        return ERR_INVALID;
    /* The group first; the child alone if it already left its group. */
    if (kill(-p->process.pid, signum) == 0)
        return 0;
    return uv_process_kill(&p->process, signum) < 0 ? ERR_INVALID : 0;
}

/* Loop thread: stops or restarts the reads of the pipes still open. */
static void proc_reads(supervisor_proc_t *p, int on)
{
    uv_stream_t *streams[2] = { (uv_stream_t *)&p->out, (uv_stream_t *)&p->err };
    int eof[2] = { p->out_eof, p->err_eof };
    for (int i = 0; i < 2; i++) {
        if (eof[i] || uv_is_closing((uv_handle_t *)streams[i]))
            continue;
        int rc = on ? uv_read_start(streams[i], proc_alloc, proc_read)
                    : uv_read_stop(streams[i]);
        if (rc < 0)
            fprintf(stderr, "sandbox-journal: %s: cannot %s reading its output: %s\n",
                    p->label, on ? "resume" : "pause", uv_strerror(rc));
    }
}

void supervisor_proc_pause_output(supervisor_proc_t *p)
{
    assert(supervisor_on_loop(p->process.loop));
    if (p->paused || p->reported)
        return;
    p->paused = 1;
    proc_reads(p, 0);
}

void supervisor_proc_resume_output(supervisor_proc_t *p)
{
    assert(supervisor_on_loop(p->process.loop));
    if (!p->paused || p->reported)
        return;
    p->paused = 0;
    proc_reads(p, 1);
}

int supervisor_proc_resize(supervisor_proc_t *p, unsigned short rows, unsigned short cols,
                           struct err *err)
{
    assert(supervisor_on_loop(p->process.loop));
    if (p->tty_fd < 0)
        return err_set(err, ERR_INVALID, "%s has no terminal", p->label);
    if (p->exited)
        return err_set(err, ERR_INVALID, "%s has exited", p->label);
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    if (ioctl(p->tty_fd, TIOCSWINSZ, &ws) != 0)
        return err_set(err, ERR_INTERNAL, "resizing the terminal of %s: %s", p->label,
                       strerror(errno));
    /* The kernel signals the terminal's foreground group; a child that never
     * made it its controlling terminal is told directly. */
    if (uv_process_kill(&p->process, SIGWINCH) < 0)
        return err_set(err, ERR_INVALID, "%s has exited", p->label);
    return 0;
}

int supervisor_proc_pid(const supervisor_proc_t *p)
{
    return p->process.pid;
}
