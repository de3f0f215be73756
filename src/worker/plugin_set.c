/*
 * The job types a worker runs in plugin hosts: sked's built-in ones
 * (plugin_builtins) and the plugins of --plugin-dir, whose manifests are
 * read without loading them (common/plugin_manifest.h). What the worker
 * advertises when it registers, and what its supervisor starts hosts for.
 */
#include "common/error.h"
#include "common/log.h"
#include "common/plugin_manifest.h"
#include "common/xalloc.h"
#include "core/jschema.h"
#include "worker/plugin_host.h"
#include "worker/worker_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int plugin_set_load(plugin_set_t *ps, const plugin_set_config_t *cfg)
{
    memset(ps, 0, sizeof *ps);
    ps->advert = json_array();
    if (cfg->dir && *cfg->dir) {
        plugin_manifest_t *v = NULL;
        size_t n = 0;
        int rc = plugin_manifest_scan(cfg->dir, "worker", &v, &n);
        if (rc < 0) {
            log_error("worker", "--plugin-dir %s: %s", cfg->dir, strerror(-rc));
            json_decref(ps->advert);
            ps->advert = NULL;
            return rc;
        }
        ps->m = v;
        for (size_t i = 0; i < n; i++) {
            json_error_t je;
            char err[512];
            json_t *schema = json_loads(v[i].schema, 0, &je);
            if (!schema) {
                log_warn("worker", "plugin %s refused: its schema is not JSON (line %d: %s)",
                         v[i].path, je.line, je.text);
                plugin_manifest_clear(&v[i]);
                continue;
            }
            /* What servers would refuse at registration is refused here,
             * alone: the worker still runs everything else. */
            if (jschema_check(schema, err, sizeof err) < 0) {
                log_warn("worker", "plugin %s refused: its schema is one sked cannot apply: %s",
                         v[i].path, err);
                json_decref(schema);
                plugin_manifest_clear(&v[i]);
                continue;
            }
            log_info("worker", "plugin %s %s (ABI %u) from %s", v[i].type, v[i].version, v[i].abi,
                     v[i].path);
            json_array_append_new(ps->advert,
                                  json_pack("{s:s, s:s, s:i, s:o}", "type", v[i].type, "version",
                                            v[i].version, "abi", (int)v[i].abi, "schema", schema));
            if (ps->n != i) {
                v[ps->n] = v[i];
                memset(&v[i], 0, sizeof v[i]);
            }
            ps->n++;
        }
    }
    size_t nb = 0;
    while (plugin_builtins[nb].type)
        nb++;
    ps->defs = xcalloc(nb + ps->n + 1, sizeof *ps->defs);
    for (size_t i = 0; i < nb; i++)
        ps->defs[ps->ndefs++] = (sup_plugin_def_t){plugin_builtins[i].type, NULL};
    for (size_t i = 0; i < ps->n; i++)
        ps->defs[ps->ndefs++] = (sup_plugin_def_t){ps->m[i].type, ps->m[i].path};

    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        int rc = -errno;
        log_error("worker", "cannot find sked's own executable for plugin hosts: %s",
                  strerror(errno));
        plugin_set_clear(ps);
        return rc;
    }
    exe[len] = '\0';
    ps->exe = xstrdup(exe);
    size_t k = 0;
    ps->host_args = xcalloc(8, sizeof *ps->host_args);
    ps->host_args[k++] = xstrdup("--result-max");
    ps->host_args[k++] = xasprintf("%zu", cfg->result_max);
    ps->host_args[k++] = xstrdup("--checkpoint-max");
    ps->host_args[k++] = xasprintf("%zu", cfg->checkpoint_max);
    if (cfg->http_allow && *cfg->http_allow) {
        ps->host_args[k++] = xstrdup("--http-allow");
        ps->host_args[k++] = xstrdup(cfg->http_allow);
    }
    ps->sup = (sup_plugins_t){.defs = ps->defs,
                              .n = ps->ndefs,
                              .exe = ps->exe,
                              .host_args = ps->host_args,
                              .envp = cfg->envp,
                              .hang_ms = cfg->hang_ms > 0 ? cfg->hang_ms : 10000};
    return 0;
}

bool plugin_set_has(const plugin_set_t *ps, const char *type)
{
    for (size_t i = 0; i < ps->ndefs; i++)
        if (!strcmp(ps->defs[i].type, type)) return true;
    return false;
}

void plugin_set_clear(plugin_set_t *ps)
{
    plugin_manifests_free(ps->m, ps->n);
    free(ps->defs);
    for (char **a = ps->host_args; a && *a; a++)
        free(*a);
    free(ps->host_args);
    free(ps->exe);
    json_decref(ps->advert);
    memset(ps, 0, sizeof *ps);
}
