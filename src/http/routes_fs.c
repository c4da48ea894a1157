/* The workspace's file routes, /v1/fs/..., as the sandbox-agent 0.4.2 SDK
 * calls them: query parameters name the paths, answers are FsEntry,
 * FsStat, FsWriteResponse, FsActionResponse, FsMoveResponse and
 * FsUploadBatchResponse.  The work is src/workspace/fs.c; this file reads
 * requests and writes answers.  File bodies, both ways, are streams: a
 * download is answered from the file descriptor, and uploads (PUT /file,
 * POST /upload-batch) are body streams (request.h) written to disk as they
 * arrive, so no request holds more than a chunk of a file in memory. */
#include "http/parse.h"
#include "http/request.h"
#include "http/routes.h"
#include "workspace/fs.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The resolved `name` query argument (default `def` when absent, else
 * required).  new: *out. */
static int routes_fs_path(struct http_request *req, const char *name, const char *def,
                          char **out, struct err *err)
{
    char *raw = NULL;
    int rc = http_query(req, name, &raw, err);
    if (rc)
        return rc;
    if (!raw && !def)
        return err_set(err, ERR_INVALID, "invalid request: query parameter '%s' is required",
                       name);
    rc = fs_resolve(raw ? raw : def, out, err);
    free(raw);
    return rc;
}

static enum MHD_Result routes_fs_entries(struct http_request *req)
{
    struct err err;
    char *path = NULL;
    json_t *list = NULL;
    int rc = routes_fs_path(req, "path", ".", &path, &err);
    if (!rc)
        rc = fs_list_json(path, &list, &err);
    free(path);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, list);
}

static enum MHD_Result routes_fs_stat(struct http_request *req)
{
    struct err err;
    char *path = NULL;
    json_t *stat = NULL;
    int rc = routes_fs_path(req, "path", NULL, &path, &err);
    if (!rc)
        rc = fs_stat_json(path, &stat, &err);
    free(path);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, stat);
}

static enum MHD_Result routes_fs_read(struct http_request *req)
{
    struct err err;
    char *path = NULL;
    int fd = -1;
    uint64_t size = 0;
    int rc = routes_fs_path(req, "path", NULL, &path, &err);
    if (!rc)
        rc = fs_open_read(path, &fd, &size, &err);
    free(path);
    if (rc)
        return http_respond_error(req, &err);
    /* libmicrohttpd reads (or sendfile()s) the file as the socket drains,
     * and closes fd with the response. */
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/octet-stream") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return http_queue(req, MHD_HTTP_OK, resp);
}

static enum MHD_Result routes_fs_delete(struct http_request *req)
{
    struct err err;
    char *path = NULL;
    int recursive = 0;
    int rc = routes_fs_path(req, "path", NULL, &path, &err);
    if (!rc)
        rc = http_query_bool(req, "recursive", NULL, &recursive, &err);
    if (!rc)
        rc = fs_delete(path, recursive, &err);
    json_t *body = rc ? NULL : json_pack("{s:s}", "path", path);
    free(path);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, body);
}

static enum MHD_Result routes_fs_mkdir(struct http_request *req)
{
    struct err err;
    char *path = NULL;
    int rc = routes_fs_path(req, "path", NULL, &path, &err);
    if (!rc)
        rc = fs_mkdir(path, &err);
    json_t *body = rc ? NULL : json_pack("{s:s}", "path", path);
    free(path);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, body);
}

static enum MHD_Result routes_fs_move(struct http_request *req)
{
    struct err err;
    json_t *in = NULL, *body = NULL;
    const char *from_raw = NULL, *to_raw = NULL;
    char *from = NULL, *to = NULL;
    int overwrite = 0;
    int rc = http_body_object(req, &in, &err);
    if (!rc)
        rc = parse_req_string(in, "from", &from_raw, &err);
    if (!rc)
        rc = parse_req_string(in, "to", &to_raw, &err);
    if (!rc) {
        json_t *ow = json_object_get(in, "overwrite");
        if (ow && !json_is_null(ow) && !json_is_boolean(ow))
            rc = err_set(&err, ERR_INVALID, "invalid request: overwrite must be a boolean");
        overwrite = json_is_true(ow);
    }
    if (!rc)
        rc = fs_resolve(from_raw, &from, &err);
    if (!rc)
        rc = fs_resolve(to_raw, &to, &err);
    if (!rc)
        rc = fs_move(from, to, overwrite, &err);
    if (!rc)
        body = json_pack("{s:s,s:s}", "from", from, "to", to);
    json_decref(in);
    free(from);
    free(to);
    if (rc)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, body);
}

/* ---- uploads: body streams ------------------------------------------------- */

/* Refuses a declared body over --max-upload-bytes before any byte is read. */
static int routes_fs_check_length(struct http_request *req, struct err *err)
{
    const char *length = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t max = req->server->max_upload_bytes;
    if (length && strtoull(length, NULL, 10) > max)
        return err_set(err, ERR_TOO_LARGE,
                       "invalid request: upload larger than --max-upload-bytes (%llu)",
                       (unsigned long long)max);
    return 0;
}

struct routes_fs_put {
    fs_writer_t *w;
    char *path;
};

static void routes_fs_put_free(void *state)
{
    struct routes_fs_put *s = state;
    fs_writer_free(s->w);
    free(s->path);
    free(s);
}

static int routes_fs_put_begin(struct http_request *req, struct err *err)
{
    int rc = routes_fs_check_length(req, err);
    if (rc)
        return rc;
    struct routes_fs_put *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(err, ERR_NOMEM, "out of memory");
    rc = routes_fs_path(req, "path", NULL, &s->path, err);
    if (!rc)
        rc = fs_writer_open(s->path, req->server->max_upload_bytes, &s->w, err);
    if (rc) {
        routes_fs_put_free(s);
        return rc;
    }
    req->stream = s;
    req->stream_free = routes_fs_put_free;
    return 0;
}

static int routes_fs_put_chunk(struct http_request *req, const char *data, size_t len,
                               struct err *err)
{
    struct routes_fs_put *s = req->stream;
    return fs_writer_write(s->w, data, len, err);
}

static enum MHD_Result routes_fs_write(struct http_request *req)
{
    struct routes_fs_put *s = req->stream;
    struct err err;
    uint64_t written = 0;
    if (fs_writer_commit(s->w, &written, &err) != 0)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK,
                             json_pack("{s:s,s:I}", "path", s->path, "bytesWritten",
                                       (json_int_t)written));
}

static void routes_fs_batch_free(void *state)
{
    fs_unpack_free(state);
}

static int routes_fs_batch_begin(struct http_request *req, struct err *err)
{
    int rc = routes_fs_check_length(req, err);
    if (rc)
        return rc;
    char *dir = NULL;
    fs_unpack_t *u = NULL;
    rc = routes_fs_path(req, "path", ".", &dir, err);
    if (!rc)
        rc = fs_unpack_open(dir, req->server->max_upload_bytes, &u, err);
    free(dir);
    if (rc)
        return rc;
    req->stream = u;
    req->stream_free = routes_fs_batch_free;
    return 0;
}

static int routes_fs_batch_chunk(struct http_request *req, const char *data, size_t len,
                                 struct err *err)
{
    return fs_unpack_write(req->stream, data, len, err);
}

static enum MHD_Result routes_fs_upload_batch(struct http_request *req)
{
    struct err err;
    json_t *res = NULL;
    if (fs_unpack_finish(req->stream, &res, &err) != 0)
        return http_respond_error(req, &err);
    return http_respond_json(req, MHD_HTTP_OK, res);
}

const struct http_route routes_fs_table[] = {
    { "GET", "/v1/fs/entries", routes_fs_entries, 0 },
    { "GET", "/v1/fs/file", routes_fs_read, 0 },
    { "PUT", "/v1/fs/file", routes_fs_write, 0 },
    { "DELETE", "/v1/fs/entry", routes_fs_delete, 0 },
    { "POST", "/v1/fs/mkdir", routes_fs_mkdir, 0 },
    { "POST", "/v1/fs/move", routes_fs_move, 0 },
    { "GET", "/v1/fs/stat", routes_fs_stat, 0 },
    { "POST", "/v1/fs/upload-batch", routes_fs_upload_batch, 0 },
    { NULL, NULL, NULL, 0 },
};

/* The rows of PUT /v1/fs/file and POST /v1/fs/upload-batch above: keep the
 * indices in step with the table (test_fs fails otherwise: a buffered PUT is
 * refused over --max-body-bytes, a buffered upload-batch never unpacks). */
const struct http_body_stream routes_fs_streams[] = {
    { &routes_fs_table[2], routes_fs_put_begin, routes_fs_put_chunk },
    { &routes_fs_table[7], routes_fs_batch_begin, routes_fs_batch_chunk },
    { NULL, NULL, NULL },
};
