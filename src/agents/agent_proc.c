/* Stopping an agent's CLI process, and the record of its stderr at exit:
 * see agent_proc.h. */
#include "agents/agent_proc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void agent_proc_timer_closed(uv_handle_t *h)
{
    struct agent_proc_stop *s = h->data;
    s->timer_ready = 0;
}

void agent_proc_stop_done(struct agent_proc_stop *s)
{
    if (s->timer_ready && !uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, agent_proc_timer_closed);
}

static void agent_proc_kill_timeout(uv_timer_t *t)
{
    struct agent_proc_stop *s = t->data;
    if (*s->proc && supervisor_proc_kill(*s->proc, SIGKILL) == 0)
        fprintf(stderr, "sandbox-journal: session %s: %s: did not stop after SIGTERM: killed\n",
                s->session_id, s->agent);
    agent_proc_stop_done(s);
}

void agent_proc_stop(struct agent_proc_stop *s, uv_loop_t *loop, unsigned kill_ms)
{
    if (!*s->proc)
        return;
    supervisor_proc_close_stdin(*s->proc);
    if (supervisor_proc_kill(*s->proc, SIGTERM) != 0)
        return; /* already gone */
    if (!s->timer_ready) {
        if (uv_timer_init(loop, &s->timer) != 0) {
            fprintf(stderr, "sandbox-journal: session %s: %s: no kill timer after SIGTERM\n",
                    s->session_id, s->agent);
            return;
        }
        s->timer.data = s;
        s->timer_ready = 1;
    }
    if (uv_timer_start(&s->timer, agent_proc_kill_timeout, kill_ms, 0) != 0)
        fprintf(stderr, "sandbox-journal: session %s: %s: cannot arm the kill timer\n",
                s->session_id, s->agent);
}

json_t *agent_proc_stderr_json(const struct supervisor_exit *e)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if ((e->stderr_head && json_object_set_new(o, "head", json_string(e->stderr_head))) ||
        (e->stderr_tail && json_object_set_new(o, "tail", json_string(e->stderr_tail))) ||
        json_object_set_new(o, "truncated", json_boolean(e->stderr_truncated)) ||
        json_object_set_new(o, "total_lines", json_integer((json_int_t)e->stderr_lines))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void agent_proc_append_last_words(char *buf, size_t size, const struct supervisor_exit *e)
{
    const char *said = e->stderr_tail ? e->stderr_tail : e->stderr_head;
    size_t used = strlen(buf);
    if (!said || used + 1 >= size)
        return;
    size_t n = strlen(said);
    while (n && (said[n - 1] == '\n' || said[n - 1] == ' '))
        n--;
    size_t start = n;
    while (start && said[start - 1] != '\n')
        start--;
    if (n > start)
        snprintf(buf + used, size - used, ": %.*s", (int)(n - start > 150 ? 150 : n - start),
                 said + start);
}
