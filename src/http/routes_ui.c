/* The inspector at /ui/: static files compiled into the binary (routes_ui.h),
 * one single-page app that reads everything through the v1 API.
 *
 * The routes are public: the files hold no data and are the same on every
 * server, and a browser cannot add an Authorization header to a navigation.
 * With --token the page asks for the token and sends it on each API call.
 *
 * Every answer carries a strong ETag (the file's hash) and "no-cache", so a
 * browser revalidates with If-None-Match and gets a 304 until the binary
 * changes; a CSP of default-src 'self' (the app needs no inline script or
 * style and fetches nothing from elsewhere) and nosniff.  The app's own URLs
 * (/ui/sessions/<id>, /ui/sessions/<id>/events/<sequence>) answer
 * index.html, so a reload or a shared link lands on the same place. */
#include "http/routes_ui.h"

#include "http/request.h"
#include "http/routes.h"

#include <string.h>

#define ROUTES_UI_CSP                                                                      \
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "         \
    "frame-ancestors 'none'"

static const struct routes_ui_asset *routes_ui_find(const char *name)
{
    for (size_t i = 0; i < routes_ui_asset_count; i++)
        if (strcmp(routes_ui_assets[i].name, name) == 0)
            return &routes_ui_assets[i];
    return NULL;
}

/* 1 if the If-None-Match list names `etag` (weak comparison, RFC 9110
 * 13.1.2: a W/ prefix is ignored) or is "*". */
static int routes_ui_not_modified(const char *header, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end - start == 1 && *start == '*')
            return 1;
        if (end - start > 2 && start[0] == 'W' && start[1] == '/')
            start += 2;
        if ((size_t)(end - start) == elen && memcmp(start, etag, elen) == 0)
            return 1;
    }
    return 0;
}

static int routes_ui_headers(struct MHD_Response *resp, const struct routes_ui_asset *a)
{
    return MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type) != MHD_YES ||
           MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag) != MHD_YES ||
           MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") !=
               MHD_YES ||
           MHD_add_response_header(resp, "Content-Security-Policy", ROUTES_UI_CSP) !=
               MHD_YES ||
           MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
           MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES
               ? -1
               : 0;
}

static enum MHD_Result routes_ui_serve(struct http_request *req, const char *name)
{
    const struct routes_ui_asset *a = routes_ui_find(name);
    if (!a) {
        struct err err;
        err_set(&err, ERR_ROUTE_NOT_FOUND, "no such inspector file: %s", name);
        return http_respond_error(req, &err);
    }
    const char *inm = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    int fresh = inm && routes_ui_not_modified(inm, a->etag);
    /* The bytes are static: libmicrohttpd sends them without a copy. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        fresh ? 0 : a->len, fresh ? (void *)"" : (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (routes_ui_headers(resp, a) != 0) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

/* /ui without the slash: the page's relative fetches need the directory. */
static enum MHD_Result routes_ui_redirect(struct http_request *req)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/ui/") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_PERMANENT_REDIRECT, resp);
}

static enum MHD_Result routes_ui_index(struct http_request *req)
{
    return routes_ui_serve(req, "index.html");
}

static enum MHD_Result routes_ui_file(struct http_request *req)
{
    return routes_ui_serve(req, req->params[0]);
}

const struct http_route routes_ui_table[] = {
    { "GET", "/ui", routes_ui_redirect, 1 },
    { "GET", "/ui/", routes_ui_index, 1 },
    { "GET", "/ui/*", routes_ui_file, 1 },
    { "GET", "/ui/sessions/*", routes_ui_index, 1 },
    { "GET", "/ui/sessions/*/events/*", routes_ui_index, 1 },
    { NULL, NULL, NULL, 0 },
};
