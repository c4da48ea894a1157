/* The built-in mock agent.  It answers each user message with a scripted
 * list of conversions chosen by the message's first word (or by one of a few
 * fixed prompts), journaled one by one, --mock-delay-ms apart, by a timer of
 * the session's on the supervisor loop (see "pacing" below).  With no pause
 * (--mock-delay-ms 0) there is nothing to pace: the answer is journaled in
 * the user's message's own batch, before the request returns, so a client posting as
 * fast as it can is held to the disk's pace instead of queueing answers in
 * memory faster than they commit.  Its persisted state is the turn counter
 * that names each turn's native ids ("mock_<n>_..."), saved as {"turns":N}. */
#include "adapters/mock.h"

#include "agents/adapter.h"
#include "agents/supervisor.h"
#include "base/err.h"
#include "events/event.h"

#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mock_instance {
    unsigned delay_ms; /* the pause between a turn's events */
};

/* ---- small string helpers (ASCII only, locale independent) ------------- */

static int is_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* 1 if s[0..len) equals `lit` ignoring ASCII case. */
static int eq_ignore_case(const char *s, size_t len, const char *lit)
{
    if (strlen(lit) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (ascii_lower(s[i]) != ascii_lower(lit[i]))
            return 0;
    return 1;
}

/* ---- conversion list builder ------------------------------------------- */

struct list {
    json_t *arr;
    int failed;
};

static void list_init(struct list *l)
{
    l->arr = json_array();
    l->failed = l->arr == NULL;
}

/* Appends a new conversion (stolen); a NULL one marks the list failed. */
static void push(struct list *l, json_t *conversion)
{
    if (!conversion) {
        l->failed = 1;
        return;
    }
    if (l->failed || json_array_append_new(l->arr, conversion) != 0)
        l->failed = 1;
}

/* new: the array, or NULL if anything failed. */
static json_t *list_finish(struct list *l)
{
    if (l->failed) {
        json_decref(l->arr);
        return NULL;
    }
    return l->arr;
}

static json_t *item_event(const char *type, const char *native_id, const char *kind,
                          const char *role, const char *status, json_t *content)
{
    return event_conversion(type,
                            event_item_data(event_item(kind, role, status, native_id, content)));
}

/* item.started (in_progress) then item.completed (`final_status`), both
 * carrying `content` (stolen). */
static void push_item_pair(struct list *l, const char *native_id, const char *kind,
                           const char *role, const char *final_status, json_t *content)
{
    json_t *copy = content ? json_deep_copy(content) : NULL;
    push(l, item_event("item.started", native_id, kind, role, "in_progress", content));
    push(l, item_event("item.completed", native_id, kind, role, final_status, copy));
}

static void id_fmt(char *out, size_t size, const char *prefix, const char *suffix)
{
    snprintf(out, size, "%s%s", prefix, suffix);
}

/* ---- the scripted sequences --------------------------------------------- */

static void assistant_message(struct list *l, const char *native_id, const char *text)
{
    push_item_pair(l, native_id, "message", "assistant", "completed",
                   event_content(event_part_text(text)));
}

static const char MOCK_HELP_TEXT[] =
    "Mock agent commands:\n"
    "- demo: run a full UI coverage sequence with markers.\n"
    "- markdown: streaming markdown fixture.\n"
    "- tool: tool call + tool result with file refs.\n"
    "- status: status item updates.\n"
    "- image: message with image content part.\n"
    "- unknown: item.kind=unknown example.\n"
    "- permission: permission requests (pending).\n"
    "- question: question requests (pending).\n"
    "- error: error + agent.unparsed events.\n"
    "- unparsed: emit agent.unparsed only.\n"
    "- end: emit session.ended.\n"
    "\n"
    "Any other text will be echoed as an assistant message.";

static const char MOCK_MARKDOWN_TEXT[] =
    "# Markdown Demo\n"
    "\n"
    "**Bold**, *italic*, ***bold-italic***, and ~~strikethrough~~.\n"
    "\n"
    "Inline code: `const x = 1`.\n"
    "\n"
    "## Lists\n"
    "- Item one\n"
    "  - Nested item\n"
    "- Item two\n"
    "\n"
    "1. First\n"
    "2. Second\n"
    "\n"
    "> Blockquote with **bold** text.\n"
    "\n"
    "## Code\n"
    "```ts\n"
    "const answer: number = 42;\n"
    "console.log(answer);\n"
    "```\n"
    "\n"
    "## Table\n"
    "| Column A | Column B |\n"
    "|:---------|---------:|\n"
    "| Left     | Right    |\n"
    "| Alpha    | Beta     |\n"
    "\n"
    "## Link\n"
    "[Example](https://example.com)\n"
    "\n"
    "---\n"
    "\n"
    "End of markdown demo.";

static const char *const MOCK_MARKDOWN_DELTAS[] = {
    "# Markdown Demo\n\n**Bo",
    "ld**, *ita",
    "lic*, ***bold-",
    "italic***, and ~~stri",
    "kethrough~~.\n\nInline code: `const x = 1`.\n\n## Lists\n- Item one\n  - Nested item\n"
    "- Item two\n\n1.",
    " First\n2. Second\n\n> Blockquote with **bold** text.\n\n## Code\n```t",
    "s\nconst answer: number = 42;\nconsole.log(answer);\n```\n\n## Table\n"
    "| Column A | Column B |\n|:---------|---------:|\n| Left",
    "     | Right    |\n| Alpha    | Beta     |\n\n## Link\n[Example](https://example.com)\n"
    "\n---\n\nEnd of markdown demo.",
};

static void help_message(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_help");
    assistant_message(l, id, MOCK_HELP_TEXT);
}

static void system_message(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_system");
    push_item_pair(l, id, "system", "system", "completed",
                   event_content(event_part_text("System ready for mock events.")));
}

static json_t *rich_parts(void)
{
    json_t *obj = json_object();
    json_t *arr = json_array();
    /* Keys in sorted order, as the anchor's serde_json maps print them. */
    if (obj && (json_object_set_new(obj, "ok", json_true()) != 0 ||
                json_object_set_new(obj, "stage", json_string("analysis")) != 0)) {
        json_decref(obj);
        obj = NULL;
    }
    arr = event_content_add(arr, event_part_text("Mock assistant response with rich content."));
    arr = event_content_add(arr, event_part_reasoning("Public reasoning for display.", "public"));
    arr = event_content_add(
        arr, event_part_reasoning("Private reasoning hidden by default.", "private"));
    arr = event_content_add(arr, event_part_json(obj));
    return arr;
}

static void delta(struct list *l, const char *native_id, const char *text)
{
    push(l, event_conversion("item.delta", event_delta_data("", native_id, text)));
}

static void assistant_rich(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_assistant_rich");
    push(l, item_event("item.started", id, "message", "assistant", "in_progress", rich_parts()));
    delta(l, id, "Mock assistant ");
    delta(l, id, "streaming delta.");
    push(l, item_event("item.completed", id, "message", "assistant", "completed", rich_parts()));
}

static void status_sequence(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_status");
    push(l, item_event("item.started", id, "status", "assistant", "in_progress",
                       event_content(event_part_status("Indexing", "2 files"))));
    push(l, item_event("item.completed", id, "status", "assistant", "completed",
                       event_content(event_part_status("Indexing", "Done"))));
}

static void markdown_sequence(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_markdown");
    push(l, item_event("item.started", id, "message", "assistant", "in_progress",
                       event_content(event_part_text("Markdown demo (streaming follows)..."))));
    for (size_t i = 0; i < sizeof MOCK_MARKDOWN_DELTAS / sizeof MOCK_MARKDOWN_DELTAS[0]; i++)
        delta(l, id, MOCK_MARKDOWN_DELTAS[i]);
    push(l, item_event("item.completed", id, "message", "assistant", "completed",
                       event_content(event_part_text(MOCK_MARKDOWN_TEXT))));
}

static json_t *tool_result_parts(const char *prefix)
{
    char call_id[160], readme[160], output[160], patch[160];
    json_t *arr = json_array();
    id_fmt(call_id, sizeof call_id, prefix, "_call");
    id_fmt(readme, sizeof readme, prefix, "/readme.md");
    id_fmt(output, sizeof output, prefix, "/output.txt");
    id_fmt(patch, sizeof patch, prefix, "/patch.txt");
    arr = event_content_add(arr, event_part_tool_result(call_id, "mock search results"));
    arr = event_content_add(arr, event_part_file_ref(readme, "read", NULL));
    arr = event_content_add(arr, event_part_file_ref(output, "write", "+mock output\n"));
    arr = event_content_add(arr,
                            event_part_file_ref(patch, "patch", "@@ -1,1 +1,1 @@\n-old\n+new\n"));
    return arr;
}

static void tool_sequence(struct list *l, const char *prefix)
{
    char call_native[160], result_native[160], call_id[160];
    id_fmt(call_native, sizeof call_native, prefix, "_tool_call");
    id_fmt(result_native, sizeof result_native, prefix, "_tool_result");
    id_fmt(call_id, sizeof call_id, prefix, "_call");
    push_item_pair(l, call_native, "tool_call", "assistant", "completed",
                   event_content(event_part_tool_call("mock.search", "{\"query\":\"example\"}",
                                                   call_id)));
    /* The anchor's mock reports its tool result as failed. */
    push(l, item_event("item.started", result_native, "tool_result", "tool", "in_progress",
                       tool_result_parts(prefix)));
    push(l, item_event("item.completed", result_native, "tool_result", "tool", "failed",
                       tool_result_parts(prefix)));
}

static void image_sequence(struct list *l, const char *prefix)
{
    char id[160], path[160];
    json_t *parts;
    id_fmt(id, sizeof id, prefix, "_image");
    id_fmt(path, sizeof path, prefix, "/image.png");
    parts = event_content(event_part_text("Here is a mock image output."));
    parts = event_content_add(parts, event_part_image(path, "image/png"));
    push_item_pair(l, id, "message", "assistant", "completed", parts);
}

static void unknown_sequence(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_unknown");
    push_item_pair(l, id, "unknown", "assistant", "completed",
                   event_content(event_part_text("Unknown item kind example.")));
}

/* new: {"codexRequestKind": kind, <key>: value}, keys in sorted order. */
static json_t *permission_metadata(const char *kind, const char *key, const char *value)
{
    json_t *obj = json_object();
    if (obj && (json_object_set_new(obj, "codexRequestKind", json_string(kind)) != 0 ||
                json_object_set_new(obj, key, json_string(value)) != 0)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static void permission(struct list *l, const char *permission_id, const char *action,
                       json_t *metadata)
{
    push(l, event_conversion("permission.requested",
                             event_permission_data(permission_id, action, "requested",
                                                   metadata)));
}

static void permission_request(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_permission");
    permission(l, id, "command_execution",
               permission_metadata("commandExecution", "command", "ls"));
}

static void permission_requests(struct list *l, const char *prefix)
{
    char id[160], deny_id[160], path[160];
    id_fmt(id, sizeof id, prefix, "_permission");
    id_fmt(deny_id, sizeof deny_id, prefix, "_permission_denied");
    id_fmt(path, sizeof path, prefix, "/deny.txt");
    permission(l, id, "command_execution",
               permission_metadata("commandExecution", "command", "echo mock"));
    permission(l, deny_id, "file_change", permission_metadata("fileChange", "path", path));
}

static json_t *options2(const char *a, const char *b)
{
    return json_pack("[ss]", a, b);
}

static void question(struct list *l, const char *question_id, const char *prompt,
                     json_t *options)
{
    push(l, event_conversion("question.requested",
                             event_question_data(question_id, prompt, options, NULL,
                                                 "requested")));
}

static void question_request(struct list *l, const char *prefix)
{
    char id[160];
    id_fmt(id, sizeof id, prefix, "_question");
    question(l, id, "Proceed?", options2("Yes", "No"));
}

static void question_requests(struct list *l, const char *prefix)
{
    char id[160], reject_id[160];
    id_fmt(id, sizeof id, prefix, "_question");
    id_fmt(reject_id, sizeof reject_id, prefix, "_question_reject");
    question(l, id, "Choose a color", options2("Red", "Blue"));
    question(l, reject_id, "Allow mock experiment?", options2("Yes", "No"));
}

static json_t *one_key(const char *key, json_t *value)
{
    json_t *obj = json_object();
    if (!obj || !value || json_object_set_new(obj, key, value) != 0) {
        json_decref(obj);
        if (!obj)
            json_decref(value);
        return NULL;
    }
    return obj;
}

static void unparsed(struct list *l)
{
    push(l, event_with_raw(event_synthetic(event_conversion(
                               "agent.unparsed",
                               event_unparsed_data("unsupported payload", "mock.stream", NULL))),
                           one_key("raw", json_string("mock"))));
}

static void error_sequence(struct list *l)
{
    push(l, event_synthetic(event_conversion(
                "error", event_error_data("Mock error event.", "mock_error",
                                          one_key("mock", json_true())))));
    unparsed(l);
}

static void session_end_sequence(struct list *l)
{
    push(l, event_synthetic(event_conversion(
                "session.ended", event_session_ended_data("completed", "agent", NULL, -1, NULL))));
}

static void marker(struct list *l, const char *prefix, unsigned *index, const char *message)
{
    char id[192];
    *index += 1;
    snprintf(id, sizeof id, "%s_marker_%u", prefix, *index);
    assistant_message(l, id, message);
}

static void demo_sequence(struct list *l, const char *prefix)
{
    unsigned m = 0;
    marker(l, prefix, &m, "Next: system message (system role).");
    system_message(l, prefix);
    marker(l, prefix, &m, "Next: assistant message with deltas, reasoning, and JSON content parts.");
    assistant_rich(l, prefix);
    marker(l, prefix, &m, "Next: status item updates.");
    status_sequence(l, prefix);
    marker(l, prefix, &m, "Next: markdown rendering + streaming markdown deltas.");
    markdown_sequence(l, prefix);
    marker(l, prefix, &m, "Next: tool call item.");
    tool_sequence(l, prefix);
    marker(l, prefix, &m, "Next: image output content part.");
    image_sequence(l, prefix);
    marker(l, prefix, &m, "Next: unknown item kind.");
    unknown_sequence(l, prefix);
    marker(l, prefix, &m, "Next: permission requests (pending).");
    permission_requests(l, prefix);
    marker(l, prefix, &m, "Next: question requests (pending).");
    question_requests(l, prefix);
    marker(l, prefix, &m, "Next: error and agent.unparsed events.");
    error_sequence(l);
}

/* ---- dispatch ------------------------------------------------------------ */

static const char MOCK_OK_PROMPT[] = "Reply with exactly the single word OK.";
static const char MOCK_FIRST_PROMPT[] = "Reply with exactly the word FIRST.";
static const char MOCK_SECOND_PROMPT[] = "Reply with exactly the word SECOND.";
static const char MOCK_PERMISSION_PROMPT[] =
    "List files in the current directory using available tools.";
static const char MOCK_TOOL_PROMPT[] =
    "Use the bash tool to run `ls` in the current directory. Do not answer without using the "
    "tool.";
static const char MOCK_QUESTION_PROMPT[] =
    "Use the AskUserQuestion tool to ask exactly one yes/no question, then wait for a reply. "
    "Do not answer yourself.";
static const char MOCK_QUESTION_PROMPT_ALT[] =
    "Call the AskUserQuestion tool with exactly one yes/no question and wait for a reply. "
    "Do not answer yourself.";
static const char MOCK_REASONING_PROMPT[] = "Answer briefly and include your reasoning.";
static const char MOCK_STATUS_PROMPT[] = "Provide a short status update.";

/* Finds [*start, *start+*len) = `s` without leading/trailing ASCII whitespace. */
static void trim_span(const char *s, const char **start, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && is_ascii_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_ascii_space(s[n - 1]))
        n--;
    *start = s;
    *len = n;
}

/* new (malloc): the words of t[0..len) after the first, joined by one space. */
static char *rest_words(const char *t, size_t len)
{
    char *out = malloc(len + 1);
    size_t i = 0, o = 0;
    if (!out)
        return NULL;
    while (i < len && !is_ascii_space(t[i]))
        i++;
    for (;;) {
        while (i < len && is_ascii_space(t[i]))
            i++;
        if (i >= len)
            break;
        if (o > 0)
            out[o++] = ' ';
        while (i < len && !is_ascii_space(t[i]))
            out[o++] = t[i++];
    }
    out[o] = '\0';
    return out;
}

static void dispatch(struct list *l, const char *prefix, const char *t, size_t len)
{
    char id[160];
    size_t wlen = 0;
    char command[16];

    if (eq_ignore_case(t, len, MOCK_OK_PROMPT)) {
        id_fmt(id, sizeof id, prefix, "_ok");
        assistant_message(l, id, "OK");
        return;
    }
    if (eq_ignore_case(t, len, MOCK_FIRST_PROMPT)) {
        id_fmt(id, sizeof id, prefix, "_first");
        assistant_message(l, id, "FIRST");
        return;
    }
    if (eq_ignore_case(t, len, MOCK_SECOND_PROMPT)) {
        id_fmt(id, sizeof id, prefix, "_second");
        assistant_message(l, id, "SECOND");
        return;
    }
    if (eq_ignore_case(t, len, MOCK_REASONING_PROMPT)) {
        assistant_rich(l, prefix);
        return;
    }
    if (eq_ignore_case(t, len, MOCK_STATUS_PROMPT)) {
        status_sequence(l, prefix);
        return;
    }
    if (eq_ignore_case(t, len, MOCK_PERMISSION_PROMPT)) {
        permission_request(l, prefix);
        return;
    }
    if (eq_ignore_case(t, len, MOCK_TOOL_PROMPT)) {
        permission_request(l, prefix);
        tool_sequence(l, prefix);
        return;
    }
    if (eq_ignore_case(t, len, MOCK_QUESTION_PROMPT) ||
        eq_ignore_case(t, len, MOCK_QUESTION_PROMPT_ALT)) {
        question_request(l, prefix);
        return;
    }

    while (wlen < len && !is_ascii_space(t[wlen]))
        wlen++;
    /* Every command is shorter than this; a longer first word is echoed. */
    if (wlen < sizeof command) {
        for (size_t i = 0; i < wlen; i++)
            command[i] = ascii_lower(t[i]);
        command[wlen] = '\0';
    } else {
        command[0] = '\0';
    }

    if (strcmp(command, "help") == 0) {
        help_message(l, prefix);
    } else if (strcmp(command, "demo") == 0) {
        demo_sequence(l, prefix);
    } else if (strcmp(command, "markdown") == 0) {
        markdown_sequence(l, prefix);
    } else if (strcmp(command, "tool") == 0 || strcmp(command, "tools") == 0 ||
               strcmp(command, "tooling") == 0) {
        tool_sequence(l, prefix);
    } else if (strcmp(command, "status") == 0) {
        status_sequence(l, prefix);
    } else if (strcmp(command, "image") == 0) {
        image_sequence(l, prefix);
    } else if (strcmp(command, "unknown") == 0) {
        unknown_sequence(l, prefix);
    } else if (strcmp(command, "permission") == 0 || strcmp(command, "permissions") == 0) {
        permission_requests(l, prefix);
    } else if (strcmp(command, "question") == 0 || strcmp(command, "questions") == 0) {
        question_requests(l, prefix);
    } else if (strcmp(command, "error") == 0) {
        error_sequence(l);
    } else if (strcmp(command, "unparsed") == 0) {
        unparsed(l);
    } else if (strcmp(command, "end") == 0 || strcmp(command, "ended") == 0 ||
               strcmp(command, "session.end") == 0) {
        session_end_sequence(l);
    } else if (strcmp(command, "echo") == 0 || strcmp(command, "say") == 0) {
        char *rest = rest_words(t, len);
        id_fmt(id, sizeof id, prefix, "_echo");
        if (!rest)
            l->failed = 1;
        else
            assistant_message(l, id, rest[0] ? rest : "Tell me what to say after `echo`.");
        free(rest);
    } else {
        char *text = malloc(len + 1);
        id_fmt(id, sizeof id, prefix, "_reply");
        if (!text) {
            l->failed = 1;
            return;
        }
        memcpy(text, t, len);
        text[len] = '\0';
        assistant_message(l, id, text);
        free(text);
    }
}

json_t *adapter_mock_turn(const char *prefix, const char *input)
{
    struct list l;
    const char *t;
    size_t len;

    list_init(&l);
    if (l.failed)
        return NULL;
    trim_span(input ? input : "", &t, &len);
    if (len > 0)
        dispatch(&l, prefix, t, len);
    return list_finish(&l);
}

json_t *adapter_mock_user_message(const char *prefix, const char *text)
{
    struct list l;
    char id[160];

    list_init(&l);
    if (l.failed)
        return NULL;
    id_fmt(id, sizeof id, prefix, "_user");
    push_item_pair(&l, id, "message", "user", "completed", event_content(event_part_text(text)));
    return list_finish(&l);
}

/* ---- pacing: a turn's conversions, one every delay_ms --------------------- */

/* The loop side of one session: the conversions of its turns not emitted
 * yet, emitted one by one by a timer of its own through host->emit_async(),
 * so an SSE client sees a turn unfold as with a real agent. */
struct mock_pacer {
    struct adapter_ctx *ctx;   /* for host->emit_async (the host locks) */
    const char *session_id;    /* borrowed from ctx: lives as long as the session */
    unsigned delay_ms;         /* immutable */
    /* Loop only. */
    uv_loop_t *uv;             /* set by the first job */
    supervisor_timer_t *timer; /* NULL until the first turn and after the stop */
    json_t *pending;           /* the conversions not emitted yet, or NULL */
    size_t next;               /* the index in pending of the next one */
    atomic_size_t *count;      /* mock_state.pending: what is left of `pending` */
    /* Terminated, shut down or ended by its own session.ended: nothing more
     * is emitted, and turns that still arrive are dropped. */
    int done;
};

/* The most conversions a session's pacer may hold not emitted yet: a client
 * posting faster than the pauses let the answers out is refused beyond it
 * (ERR_BUSY) rather than filling memory. */
#define MOCK_PENDING_MAX 1024

struct mock_state {
    unsigned long long turns; /* session locked; persisted as {"turns":N} */
    int ended;                /* session locked: a turn said session.ended (no pacing) */
    /* Conversions handed to the pacer and not emitted or dropped yet. */
    atomic_size_t pending;
    struct mock_pacer pacer;
};

static void mock_log(const struct mock_pacer *p, const char *what, const char *detail)
{
    fprintf(stderr, "sandbox-journal: session %s: mock: %s%s%s\n", p->session_id, what,
            detail ? ": " : "", detail ? detail : "");
}

/* Loop: forgets what is left of the pending conversions. */
static void mock_pacer_drop(struct mock_pacer *p)
{
    if (p->pending)
        atomic_fetch_sub(p->count, json_array_size(p->pending) - p->next);
    json_decref(p->pending);
    p->pending = NULL;
    p->next = 0;
}

/* Loop: nothing more is emitted, and the timer goes. */
static void mock_pacer_stop(struct mock_pacer *p)
{
    assert(!p->uv || supervisor_on_loop(p->uv));
    p->done = 1;
    mock_pacer_drop(p);
    supervisor_timer_free(p->timer);
    p->timer = NULL;
}

static void mock_pacer_arm(struct mock_pacer *p, unsigned delay_ms)
{
    struct err err;
    if (supervisor_timer_arm(p->timer, delay_ms, 0, &err) != 0)
        mock_log(p, "events not paced out", err.msg);
}

static int mock_is_end(const json_t *conversion)
{
    const char *type = json_string_value(json_object_get(conversion, "type"));
    return type && strcmp(type, "session.ended") == 0;
}

/* Loop: emits the next pending conversion and arms the timer for the one
 * after it. */
static void mock_pacer_tick(void *arg)
{
    struct mock_pacer *p = arg;
    assert(supervisor_on_loop(p->uv));
    if (p->done || !p->pending || p->next >= json_array_size(p->pending))
        return;
    const json_t *c = json_array_get(p->pending, p->next);
    json_t *one = json_array();
    if (!one || json_array_append(one, (json_t *)c) != 0) {
        json_decref(one);
        mock_pacer_arm(p, p->delay_ms); /* try again: memory may come back */
        return;
    }
    p->next++;
    atomic_fetch_sub(p->count, 1);
    struct err err;
    int rc = p->ctx->host->emit_async(p->ctx, one, &err);
    if (rc != 0)
        mock_log(p, "event not journaled", err.msg);
    json_decref(one);
    /* The session ended, for good (the mock cannot resume): what it had
     * left to say, and any turn still on its way, is dropped. */
    if (rc == 0 && mock_is_end(c))
        p->done = 1;
    if (p->done || p->next >= json_array_size(p->pending)) {
        mock_pacer_drop(p);
        return;
    }
    mock_pacer_arm(p, p->delay_ms);
}

/* A turn (or, without one, the stop) handed to the loop. */
struct mock_job {
    struct mock_pacer *pacer;
    json_t *turn; /* owned; NULL: stop */
};

/* Loop: queues the job's turn behind what is still pending. */
static void mock_job_run(uv_loop_t *loop, void *arg)
{
    assert(supervisor_on_loop(loop));
    struct mock_job *j = arg;
    struct mock_pacer *p = j->pacer;
    struct err err;
    p->uv = loop;
    int kept = 0;
    if (!j->turn) {
        mock_pacer_stop(p);
    } else if (!p->done) {
        if (!p->timer && supervisor_timer_new(loop, mock_pacer_tick, p, &p->timer, &err) != 0)
            mock_log(p, "turn dropped", err.msg);
        else if (!p->pending && !(p->pending = json_array()))
            mock_log(p, "turn dropped", "out of memory");
        else if (json_array_extend(p->pending, j->turn) != 0)
            mock_log(p, "turn dropped", "out of memory");
        else
            kept = 1;
        if (kept && !supervisor_timer_armed(p->timer))
            mock_pacer_arm(p, 0);
    }
    if (j->turn && !kept)
        atomic_fetch_sub(p->count, json_array_size(j->turn));
    json_decref(j->turn);
    free(j);
}

/* Hands `turn` (stolen; NULL: the stop) to the loop. */
static int mock_post(struct adapter_ctx *ctx, struct mock_state *st, json_t *turn,
                     struct err *err)
{
    struct mock_job *j = malloc(sizeof *j);
    if (!j) {
        json_decref(turn);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *j = (struct mock_job){ .pacer = &st->pacer, .turn = turn };
    int rc = supervisor_post(ctx->supervisor, mock_job_run, j, err);
    if (rc) {
        json_decref(turn);
        free(j);
    }
    return rc;
}

/* ---- the adapter --------------------------------------------------------- */

/* The state, created on first use from saved_state ({"turns":N}) if any.
 * Session locked. */
static struct mock_state *mock_state_get(struct adapter_ctx *ctx, struct err *err)
{
    struct mock_state *st = ctx->state;
    if (st)
        return st;
    st = calloc(1, sizeof *st);
    if (!st) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    const struct mock_instance *mi = ctx->instance;
    atomic_init(&st->pending, 0);
    st->pacer = (struct mock_pacer){ .ctx = ctx, .session_id = ctx->session_id,
                                     .delay_ms = mi->delay_ms, .count = &st->pending };
    if (ctx->saved_state && ctx->saved_state[0]) {
        json_error_t jerr;
        json_t *saved = json_loads(ctx->saved_state, 0, &jerr);
        json_t *turns = saved ? json_object_get(saved, "turns") : NULL;
        if (json_is_integer(turns) && json_integer_value(turns) > 0)
            st->turns = (unsigned long long)json_integer_value(turns);
        json_decref(saved);
    }
    ctx->state = st;
    return st;
}

static const char *const mock_agent_modes[] = { "build", "plan", NULL };
static const char *const mock_permission_modes[] = { "default", "plan", "bypass", NULL };
static const struct adapter_mode_rule mock_mode_rule = {
    .agent = "mock",
    .agent_modes = mock_agent_modes,
    .permission_modes = mock_permission_modes,
};

/* The mock's native id in out[128]: "mock-<id>" when that fits, else
 * "mock~<the id's start>~<16 hex digits>", the start cut between two
 * characters (the id is UTF-8) and the digits a 64-bit FNV-1a hash of the
 * whole id.  Session ids run to 255 bytes, so two ids sharing their start
 * keep apart by the hash, and a cut id never reads as a whole one ("mock~"
 * against "mock-"). */
static void mock_native_id(const char *session_id, char out[128])
{
    size_t len = strlen(session_id);
    if (len <= 127 - strlen("mock-")) {
        snprintf(out, 128, "mock-%s", session_id);
        return;
    }
    uint64_t hash = 14695981039346656037u;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ (unsigned char)session_id[i]) * 1099511628211u;
    size_t keep = 127 - strlen("mock~") - strlen("~") - 16;
    while (keep > 0 && ((unsigned char)session_id[keep] & 0xc0) == 0x80)
        keep--; /* never inside a character: back to its first byte */
    snprintf(out, 128, "mock~%.*s~%016" PRIx64, (int)keep, session_id, hash);
}

static int mock_start_session(struct adapter_ctx *ctx, char native_id_out[128], struct err *err)
{
    if (!mock_state_get(ctx, err))
        return ERR_NOMEM;
    mock_native_id(ctx->session_id, native_id_out);
    return 0;
}

/* Cuts `turn` after its first session.ended, if any (the mock says
 * nothing after its own end): 1 if it has one. */
static int mock_cut_at_end(json_t *turn)
{
    size_t n = json_array_size(turn), keep = 0;
    while (keep < n && !mock_is_end(json_array_get(turn, keep)))
        keep++;
    if (keep == n)
        return 0;
    while (json_array_size(turn) > keep + 1 && json_array_remove(turn, keep + 1) == 0) {
    }
    return 1;
}

static int mock_send_message(struct adapter_ctx *ctx, const char *message, struct err *err)
{
    struct mock_state *st = mock_state_get(ctx, err);
    char prefix[32];
    char state_json[48];
    const char *t;
    size_t len;
    char *text;
    json_t *user, *turn;
    int rc;

    if (!st)
        return ERR_NOMEM;
    const struct mock_instance *mi = ctx->instance;
    size_t queued = atomic_load(&st->pending);
    if (mi->delay_ms && queued >= MOCK_PENDING_MAX)
        return err_set_subject(err, ERR_BUSY, ctx->session_id,
                               "the mock agent still has %zu events of earlier answers to "
                               "send (it takes no message from %d on); retry once they are "
                               "out",
                               queued, MOCK_PENDING_MAX);
    st->turns++;
    snprintf(prefix, sizeof prefix, "mock_%llu", st->turns);

    trim_span(message ? message : "", &t, &len);
    if (len == 0)
        return 0;

    text = malloc(len + 1);
    if (!text)
        return err_set(err, ERR_NOMEM, "out of memory");
    memcpy(text, t, len);
    text[len] = '\0';
    user = adapter_mock_user_message(prefix, text);
    turn = adapter_mock_turn(prefix, text);
    free(text);
    if (!user || !turn) {
        json_decref(user);
        json_decref(turn);
        return err_set(err, ERR_NOMEM, "out of memory");
    }

    /* Without pauses nothing is paced: the answer goes with the message,
     * in its batch, so the request returns once both are durable. */
    int ends = 0;
    if (!mi->delay_ms && !st->ended) {
        ends = mock_cut_at_end(turn);
        if (json_array_extend(user, turn) != 0) {
            st->turns--;
            json_decref(user);
            json_decref(turn);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
    }
    snprintf(state_json, sizeof state_json, "{\"turns\":%llu}", st->turns);
    rc = ctx->host->save_state(ctx, state_json, err);
    if (rc == 0)
        rc = ctx->host->emit(ctx, user, err);
    json_decref(user);
    if (rc != 0) {
        /* Nothing of this turn was journaled: give its number back so the
         * counter stays what the journal says. */
        st->turns--;
        json_decref(turn);
        return rc;
    }
    if (!mi->delay_ms) {
        if (ends)
            st->ended = 1;
        json_decref(turn); /* said already, or nothing after session.ended */
        return 0;
    }
    if (json_array_size(turn) == 0) {
        json_decref(turn);
        return 0;
    }
    size_t n = json_array_size(turn);
    atomic_fetch_add(&st->pending, n);
    rc = mock_post(ctx, st, turn, err);
    if (rc)
        atomic_fetch_sub(&st->pending, n);
    return rc;
}

/* Session locked: the pacing stops (on the loop), and until then the host
 * drops what it emits for a terminated session. */
static void mock_terminate(struct adapter_ctx *ctx)
{
    struct mock_state *st = ctx->state;
    struct err err;
    if (st && mock_post(ctx, st, NULL, &err) != 0)
        mock_log(&st->pacer, "pacing not stopped", err.msg);
}

/* Loop, at server shutdown: what is still pending is dropped. */
static void mock_shutdown(struct adapter_ctx *ctx)
{
    struct mock_state *st = ctx->state;
    if (st)
        mock_pacer_stop(&st->pacer);
}

/* After the loop stopped (supervisor_timer_free allows that), or for a
 * session that never had a turn. */
static void mock_free_state(struct adapter_ctx *ctx)
{
    struct mock_state *st = ctx->state;
    if (!st)
        return;
    json_decref(st->pacer.pending);
    supervisor_timer_free(st->pacer.timer);
    free(st);
    ctx->state = NULL;
}

static const struct adapter_mode mock_modes[] = {
    {"build", "Build", "Mock agent for UI testing"},
    {"plan", "Plan", "Plan-only mock mode"},
};

static int mock_instance_new(const struct adapter_settings *settings, void **out,
                             struct err *err)
{
    struct mock_instance *mi = malloc(sizeof *mi);
    if (!mi)
        return err_set(err, ERR_NOMEM, "out of memory");
    mi->delay_ms = settings->mock_delay_ms;
    *out = mi;
    return 0;
}

const struct adapter adapter_mock = {
    .name = "mock",
    .instance_new = mock_instance_new,
    .instance_free = free,
    .caps =
        {
            .plan_mode = 1,
            .permissions = 1,
            .questions = 1,
            .tool_calls = 1,
            .tool_results = 1,
            .text_messages = 1,
            .images = 1,
            .file_attachments = 1,
            .session_lifecycle = 1,
            .error_events = 1,
            .reasoning = 1,
            .status = 1,
            .command_execution = 1,
            .file_changes = 1,
            .mcp_tools = 1,
            .streaming_deltas = 1,
            .item_started = 1,
            .shared_process = 0,
        },
    .modes = mock_modes,
    .n_modes = sizeof mock_modes / sizeof mock_modes[0],
    .can_resume = 0,
    .builtin_version = "builtin",
    .mode_rule = &mock_mode_rule,
    .start_session = mock_start_session,
    .send_message = mock_send_message,
    .reply_permission = NULL,
    .reply_question = NULL,
    .reject_question = NULL,
    .terminate = mock_terminate,
    .free_state = mock_free_state,
    .shutdown = mock_shutdown,
};
