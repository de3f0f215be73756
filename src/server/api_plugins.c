/*
 * GET /v1/plugins: the job types this cluster can run (docs/api.md, "Job
 * types and plugins"). The built-in types, shell and http, which every
 * worker runs, then each plugin type of the registry (store_plugin_list:
 * what workers, and servers loading a plugin dir, advertised last), each
 * with the live workers that run it, so that "which of my workers can run
 * a sql job?" has an answer (and `sked plugins ls` shows it).
 *
 * A worker counts while it is active or draining; a lost one does not (it
 * claims nothing), nor a gone one (the store does not list those).
 */
#include "core/httpspec.h"
#include "server/api.h"
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "sked/plugin.h"

#define WORKER_PAGE 1000

/* The pool's workers that may claim (active or draining), every page of
 * it. *out new (clear each, free the array). */
static int live_workers(store_t *st, store_worker_t **out, size_t *n)
{
    store_worker_t *all = NULL;
    size_t nall = 0;
    char *cursor = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    do {
        store_worker_t *page = NULL;
        size_t np = 0;
        char *next = NULL;
        rc = store_worker_list(st, cursor, WORKER_PAGE, &page, &np, &next);
        free(cursor);
        cursor = next;
        if (rc < 0) break;
        all = xrealloc(all, (nall + np + 1) * sizeof *all);
        for (size_t i = 0; i < np; i++) {
            if (page[i].state == WORKER_ACTIVE || page[i].state == WORKER_DRAINING)
                all[nall++] = page[i];
            else
                store_worker_clear(&page[i]);
        }
        free(page);
    } while (cursor);
    free(cursor);
    if (rc < 0) {
        for (size_t i = 0; i < nall; i++)
            store_worker_clear(&all[i]);
        free(all);
        return rc;
    }
    *out = all;
    *n = nall;
    return 0;
}

/* The workers of ws that run type (every one for a built-in type). */
static json_t *workers_of(const store_worker_t *ws, size_t n, const char *type, bool builtin)
{
    json_t *a = json_array();
    size_t len = strlen(type);
    for (size_t i = 0; i < n; i++) {
        const char *t = ws[i].types ? ws[i].types : "";
        bool runs = builtin;
        for (const char *p = strstr(t, type); !runs && p; p = strstr(p + 1, type))
            runs = p > t && p[-1] == ',' && p[len] == ',';
        if (!runs) continue;
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id", ws[i].id, "name",
                                           ws[i].name ? ws[i].name : "", "state",
                                           worker_state_name(ws[i].state)));
    }
    return a;
}

static json_t *type_json(const char *type, const char *version, int abi, json_t *schema,
                         bool builtin, json_t *workers)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "version", json_string(version));
    json_object_set_new(o, "abi", json_integer(abi));
    json_object_set_new(o, "schema", schema ? schema : json_null());
    json_object_set_new(o, "builtin", json_boolean(builtin));
    json_object_set_new(o, "workers", workers);
    return o;
}

void api_plugins_list(http_req_t *req, http_resp_t *resp)
{
    store_plugin_type_t *ps = NULL;
    store_worker_t *ws = NULL;
    size_t np = 0, nw = 0;
    int rc = store_plugin_list(req->st, &ps, &np);
    if (rc == 0) rc = live_workers(req->st, &ws, &nw);
    if (rc < 0) {
        api_fail_store(resp, rc, "plugins", "list plugin types");
        goto out;
    }
    json_t *items = json_array();
    /* The built-in types are sked's own: its version and ABI. The schema
     * of http is core/httpspec.h's; shell has none (its job document is
     * the schema). */
    json_array_append_new(items, type_json("shell", SKED_VERSION, SKED_PLUGIN_ABI, NULL, true,
                                           workers_of(ws, nw, "shell", true)));
    json_array_append_new(items, type_json("http", SKED_VERSION, SKED_PLUGIN_ABI,
                                           json_loads(httpspec_schema, 0, NULL), true,
                                           workers_of(ws, nw, "http", true)));
    for (size_t i = 0; i < np; i++) {
        json_error_t jerr;
        json_t *schema = json_loads(ps[i].schema_json, JSON_DECODE_ANY, &jerr);
        json_array_append_new(items, type_json(ps[i].type, ps[i].version, ps[i].abi, schema, false,
                                               workers_of(ws, nw, ps[i].type, false)));
    }
    http_json(resp, 200, json_pack("{s:o}", "items", items));
out:
    for (size_t i = 0; i < np; i++)
        store_plugin_type_clear(&ps[i]);
    free(ps);
    for (size_t i = 0; i < nw; i++)
        store_worker_clear(&ws[i]);
    free(ws);
}
