/* Service metadata and agent routes. */
#include "agents/install.h"
#include "adapters/registry.h"
#include "http/parse.h"
#include "http/request.h"
#include "http/routes.h"

#include <string.h>

extern const char embedded_openapi[];
extern const size_t embedded_openapi_len;

static const char routes_root_text[] =
    "sandbox-journal: runs coding agents (Claude Code, Codex, OpenCode, Amp, mock) behind\n"
    "the sandbox-agent v1 HTTP API, with every event journaled in SQLite before it is served.\n"
    "API: /v1 (see /v1/openapi.json); health: /v1/health.\n";

static enum MHD_Result routes_root(struct http_request *req)
{
    return http_respond_text(req, MHD_HTTP_OK, "text/plain; charset=utf-8", routes_root_text,
                             sizeof routes_root_text - 1, 0);
}

/* Health, and how far the search index is behind the journal (a number
 * an operator watches during a back-fill). */
static enum MHD_Result routes_health(struct http_request *req)
{
    struct err err;
    struct journal_index_pos pos = {0, 0};
    journal_reader_t *r = journal_reader_for_thread(req->server->journal, &err);
    if (!r || journal_index_position(r, &pos, &err) != 0)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK,
                             json_pack("{s:s,s:{s:I,s:I}}", "status", "ok", "searchIndex",
                                       "indexedThrough", (json_int_t)pos.indexed_through,
                                       "lag", (json_int_t)pos.lag));
}

static enum MHD_Result routes_openapi(struct http_request *req)
{
    return http_respond_text(req, MHD_HTTP_OK, "application/json", embedded_openapi,
                             embedded_openapi_len, 0);
}

static enum MHD_Result routes_agents(struct http_request *req)
{
    return http_respond_json(req, MHD_HTTP_OK,
                             registry_list_json(sessions_agents_dir(req->server->sessions),
                                                sessions_instances(req->server->sessions)));
}

static enum MHD_Result routes_agent_modes(struct http_request *req)
{
    struct err err;
    json_t *modes = registry_modes_json(req->params[0], sessions_instances(req->server->sessions), &err);
    if (!modes)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, modes);
}

static void routes_install_resume(void *conn)
{
    MHD_resume_connection(conn);
}

static void routes_install_release(void *job)
{
    install_job_release(job);
}

enum MHD_Result routes_install_wait(struct http_request *req, struct install_job *job)
{
    req->wait = job;
    req->wait_free = routes_install_release;
    /* Suspended before the notification is asked for, so the install's end
     * always finds the connection suspended (or resumes it at once). */
    MHD_suspend_connection(req->conn);
    if (install_job_notify(job, routes_install_resume, req->conn) != 0)
        MHD_resume_connection(req->conn); /* ended already, or no memory to wait */
    return MHD_YES;
}

int routes_install_waited(struct http_request *req, int *rc, struct err *err)
{
    if (req->wait_free != routes_install_release)
        return 0;
    *rc = install_job_result(req->wait, err);
    install_job_release(req->wait);
    req->wait = NULL;
    req->wait_free = NULL;
    return 1;
}

/* The export targets' states (server --export-to), as their exporters
 * last published them. */
static enum MHD_Result routes_exports(struct http_request *req)
{
    json_t *list = NULL;
    int rc = req->server->exports_status
                 ? req->server->exports_status(req->server->exports_arg, &list)
                 : ((list = json_array()) ? 0 : ERR_NOMEM);
    json_t *body = rc ? NULL : json_pack("{s:o}", "exports", list);
    if (!body) {
        struct err err;
        err_set(&err, rc ? rc : ERR_NOMEM, "cannot report the exports");
        return http_respond_error(req, &err);
    }
    return http_respond_json(req, MHD_HTTP_OK, body);
}

static enum MHD_Result routes_agent_install(struct http_request *req)
{
    struct err err;
    int rc;
    enum MHD_Result answered;
    if (http_idem_begin(req, MHD_HTTP_NO_CONTENT, NULL, &answered))
        return answered;
    if (!routes_install_waited(req, &rc, &err)) {
        const struct registry_entry *agent = registry_find(req->params[0], &err);
        if (!agent)
            return http_respond_error(req, &err);
        int reinstall;
        if (parse_install_request(req->body.data, req->body.len, &reinstall, &err) != 0)
            return http_respond_error(req, &err);
        struct install_job *job = NULL;
        rc = registry_install_start(sessions_agents_dir(req->server->sessions), agent->id,
                                    reinstall, 0, &job, &err);
        if (rc == 0 && job)
            return routes_install_wait(req, job);
    }
    /* An install journals nothing: its outcome is remembered alone. */
    if (rc == 0)
        rc = http_idem_commit_alone(req, &err);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

const struct http_route routes_meta_table[] = {
    /* Only health is public: with a token set, even the root's description
     * (which names the server) needs it. */
    { "GET", "/", routes_root, 0 },
    { "GET", "/v1/health", routes_health, 1 },
    { "GET", "/v1/openapi.json", routes_openapi, 0 },
    { "GET", "/v1/agents", routes_agents, 0 },
    { "POST", "/v1/agents/*/install", routes_agent_install, 0 },
    { "GET", "/v1/agents/*/modes", routes_agent_modes, 0 },
    { "GET", "/v1/exports", routes_exports, 0 },
    { NULL, NULL, NULL, 0 },
};
