/*
 * The dashboard's files (web/), compiled in by web/embed.cmake: served by
 * api_ui.c at / and /assets/<web_assets_version>/<name>.
 */
#ifndef SKED_SERVER_WEB_ASSETS_H
#define SKED_SERVER_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *name;  /* "app.js"; NULL ends the table */
    const char *ctype; /* its Content-Type */
    const unsigned char *data;
    size_t len; /* bytes of data (a NUL follows them) */
} web_asset_t;

extern const web_asset_t web_assets[];
#define WEB_ASSETS_VERSION_LEN 16
extern const char
    web_assets_version[WEB_ASSETS_VERSION_LEN + 1]; /* hex, of every file */

#endif
