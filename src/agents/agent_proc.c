/* The record of an agent process's stderr at exit: see agent_proc.h. */
#include "agents/agent_proc.h"

#include <stdio.h>
#include <string.h>

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
