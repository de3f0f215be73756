/*
 * The dashboard: GET / answers web/index.html, and GET
 * /assets/{version}/{file} the other files of web/, all compiled into the
 * binary (web_assets.h). Both are public: the files hold no data, and the
 * page asks for a token before it calls the API, which checks every call.
 *
 * Caching: index.html is revalidated on every load (no-cache, with an ETag
 * of the version); it names the other files under the version, a hash of
 * their contents, so those are kept for a year, and a new build's page
 * asks for new paths. A path of another version is 404: a page left open
 * across an upgrade reloads rather than mixing two builds' files.
 *
 * Every answer carries a Content-Security-Policy that allows scripts and
 * styles from this origin only (no inline script, no eval) and connections
 * to this origin only, and forbids framing, so that text an attacker puts
 * in a job's name can at worst be shown, never run.
 */
#include "server/api.h"
#include "server/web_assets.h"

#include <stdio.h>
#include <string.h>

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                          "manifest-src 'self'; base-uri 'none'; form-action 'none'; "
                          "frame-ancestors 'none'";

static void security_headers(http_resp_t *resp)
{
    http_set_header(resp, "Content-Security-Policy", csp);
    http_set_header(resp, "X-Content-Type-Options", "nosniff");
    http_set_header(resp, "X-Frame-Options", "DENY");
    http_set_header(resp, "Referrer-Policy", "no-referrer");
    http_set_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    http_set_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

static const web_asset_t *find(const char *name)
{
    for (const web_asset_t *a = web_assets; a->name; a++)
        if (!strcmp(a->name, name)) return a;
    return NULL;
}

void api_ui_index(http_req_t *req, http_resp_t *resp)
{
    const web_asset_t *a = find("index.html");
    char etag[WEB_ASSETS_VERSION_LEN + 3];
    snprintf(etag, sizeof etag, "\"%s\"", web_assets_version);
    security_headers(resp);
    http_set_header(resp, "Cache-Control", "no-cache");
    http_set_header(resp, "ETag", etag);
    const char *inm = http_header(req, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        http_empty(resp, 304);
        return;
    }
    http_text(resp, 200, a->ctype, (const char *)a->data, a->len);
}

void api_ui_asset(http_req_t *req, http_resp_t *resp)
{
    const char *version = req->params[0], *name = req->params[1];
    const web_asset_t *a = strcmp(name, "index.html") ? find(name) : NULL;
    security_headers(resp);
    if (strcmp(version, web_assets_version) != 0 || !a) {
        http_problem(resp, 404, "path", "no such file of this server's dashboard (version %s)",
                     web_assets_version);
        return;
    }
    http_set_header(resp, "Cache-Control", "public, max-age=31536000, immutable");
    http_text(resp, 200, a->ctype, (const char *)a->data, a->len);
}
