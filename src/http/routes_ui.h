/* The inspector's files, compiled into the binary by cmake/embed.cmake
 * (sj_embed_ui) from src/http/ui/, and the routes that serve them at /ui/
 * (routes_ui.c, its table in routes.h). */
#ifndef SJ_ROUTES_UI_H
#define SJ_ROUTES_UI_H

#include <stddef.h>

struct routes_ui_asset {
    const char *name; /* file name, no directory: "app.js" */
    const char *type; /* Content-Type */
    const char *etag; /* strong, quoted: "\"<sha256 prefix>\"" */
    const unsigned char *data;
    size_t len;
};

/* Sorted by name (the build globs and sorts); static, never freed. */
extern const struct routes_ui_asset routes_ui_assets[];
extern const size_t routes_ui_asset_count;

#endif
