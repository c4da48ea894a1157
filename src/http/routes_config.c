/* The workspace configuration routes: /v1/config/mcp and /v1/config/skills,
 * GET/PUT/DELETE by ?directory=&mcpName= (or &skillName=), as the v0.4 SDK
 * calls them.  The checks and the storage are workspace/wsconfig.c's. */
#include "http/request.h"
#include "http/routes.h"
#include "workspace/wsconfig.h"

#include <stdlib.h>

/* The query's directory and entry name.  new: both, or an error answered. */
static int routes_config_query(struct http_request *req, enum wsconfig_kind kind,
                               char **directory, char **name, struct err *err)
{
    const char *key = kind == WSCONFIG_MCP ? "mcpName" : "skillName";
    *directory = *name = NULL;
    int rc = http_query(req, "directory", directory, err);
    if (rc == 0)
        rc = http_query(req, key, name, err);
    if (rc == 0 && *directory && *name)
        return 0;
    if (rc == 0)
        rc = err_set(err, ERR_INVALID, "the query needs directory and %s", key);
    free(*directory);
    free(*name);
    *directory = *name = NULL;
    return rc;
}

static enum MHD_Result routes_config(struct http_request *req, enum wsconfig_kind kind,
                                     char method)
{
    struct err err;
    char *directory = NULL, *name = NULL;
    json_t *body = NULL;
    int rc = routes_config_query(req, kind, &directory, &name, &err);
    journal_t *j = req->server->journal;
    if (rc == 0) {
        if (method == 'G') {
            rc = wsconfig_get(j, kind, directory, name, &body, &err);
        } else if (method == 'P') {
            rc = http_body_object(req, &body, &err);
            if (rc == 0)
                rc = wsconfig_put(j, kind, directory, name, body, &err);
            json_decref(body);
            body = NULL;
        } else {
            rc = wsconfig_delete(j, kind, directory, name, &err);
        }
    }
    free(directory);
    free(name);
    if (rc)
        return http_respond_error(req, &err);
    if (body)
        return http_respond_json(req, MHD_HTTP_OK, body);
    return http_respond_empty(req, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result routes_mcp_get(struct http_request *req)
{
    return routes_config(req, WSCONFIG_MCP, 'G');
}

static enum MHD_Result routes_mcp_put(struct http_request *req)
{
    return routes_config(req, WSCONFIG_MCP, 'P');
}

static enum MHD_Result routes_mcp_delete(struct http_request *req)
{
    return routes_config(req, WSCONFIG_MCP, 'D');
}

static enum MHD_Result routes_skills_get(struct http_request *req)
{
    return routes_config(req, WSCONFIG_SKILLS, 'G');
}

static enum MHD_Result routes_skills_put(struct http_request *req)
{
    return routes_config(req, WSCONFIG_SKILLS, 'P');
}

static enum MHD_Result routes_skills_delete(struct http_request *req)
{
    return routes_config(req, WSCONFIG_SKILLS, 'D');
}

const struct http_route routes_config_table[] = {
    { "GET", "/v1/config/mcp", routes_mcp_get, 0 },
    { "PUT", "/v1/config/mcp", routes_mcp_put, 0 },
    { "DELETE", "/v1/config/mcp", routes_mcp_delete, 0 },
    { "GET", "/v1/config/skills", routes_skills_get, 0 },
    { "PUT", "/v1/config/skills", routes_skills_put, 0 },
    { "DELETE", "/v1/config/skills", routes_skills_delete, 0 },
    { NULL, NULL, NULL, 0 },
};
