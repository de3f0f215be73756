/*
 * The server's lifecycle (server.h): configuration defaults, then the
 * store, the bootstrap admin token, the scheduler loops and the HTTP
 * listener, in the order each needs the one before; stopped in reverse so
 * nothing runs against a closed store. The store's notify hook is wired to
 * server_wake, so a commit that makes work claimable resumes every waiting
 * claim at once. Configuration mistakes (a bad address, a certificate
 * without its key, an unreadable key) are refused before the store is
 * opened, so a typo never leaves a new store behind.
 */
#include "server/server.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/plugin_manifest.h"
#include "common/xalloc.h"
#include "core/jschema.h"
#include "server/alert_send.h"
#include "server/alerter.h"
#include "server/auth.h"
#include "server/server_int.h"
#include "server/http.h"
#include "server/sched.h"

struct server {
    server_config_t cfg; /* defaults filled in; strings below are owned */
    char *listen;
    char *store_url;
    char *token_file;
    char *tls_cert_file;
    char *tls_key_file;
    alert_smtp_t smtp;  /* the relay and alert TLS trust (alert_send.h); owns its strings */
    alerter_t *alerter; /* alert evaluation and delivery; set before the notify hook */
    char *metrics_listen;
    store_t *st;
    sched_t *sched;
    http_daemon_t *http;    /* set once, before any request can run */
    http_daemon_t *metrics; /* the --metrics-listen listener; NULL = none */
};

#define METRICS_THREADS 2 /* a scrape is a few small reads */

#define SEC                     1000LL
/* A write holds its HTTP thread until its group commit is durable, so the
 * threads bound how many writes one commit can carry: with 16, 32 clients
 * got 5,700-5,800 submits/s and an open loop of 5,000/s queued (p95
 * 29 ms); with 64, 6,900-7,400/s and p95 5-9 ms (bench/README.md). */
#define DEFAULT_THREADS         64
#define DEFAULT_RATE            100.0 /* requests/s per token */
#define DEFAULT_MAX_CONN        4096
#define DEFAULT_MAX_CONN_PER_IP 512

static void fill_defaults(server_config_t *c)
{
    if (c->threads <= 0) c->threads = DEFAULT_THREADS;
    if (c->lease_ms <= 0) c->lease_ms = SERVER_DEFAULT_LEASE_MS;
    if (c->heartbeat_ms <= 0) c->heartbeat_ms = c->lease_ms / 5 > 0 ? c->lease_ms / 5 : 1;
    if (c->lease_grace_ms <= 0) c->lease_grace_ms = SERVER_DEFAULT_LEASE_GRACE_MS;
    if (c->confirm_ms <= 0 || c->confirm_ms > c->lease_ms)
        c->confirm_ms = c->lease_ms / 2 > 0 ? c->lease_ms / 2 : 1;
    if (c->worker_timeout_ms <= 0) c->worker_timeout_ms = 3 * c->lease_ms;
    if (c->lookahead_ms <= 0) c->lookahead_ms = 1 * SEC;
    if (c->misfire_grace_ms <= 0) c->misfire_grace_ms = 5 * SEC;
    if (c->retention_ms <= 0) c->retention_ms = 30LL * 86400 * SEC;
    if (c->events_retention_ms <= 0) c->events_retention_ms = 3600 * SEC;
    if (c->log_cap_bytes <= 0) c->log_cap_bytes = STORE_LOG_CAP_DEFAULT;
    if (c->rate_limit == 0) c->rate_limit = DEFAULT_RATE;
    if (c->rate_burst <= 0) c->rate_burst = c->rate_limit > 0 ? 2 * c->rate_limit : 0;
    if (c->rate_burst > 0 && c->rate_burst < 1) c->rate_burst = 1;
    if (c->max_connections <= 0) c->max_connections = DEFAULT_MAX_CONN;
    if (c->max_connections_per_ip == 0) c->max_connections_per_ip = DEFAULT_MAX_CONN_PER_IP;
    if (c->idle_timeout_ms <= 0) c->idle_timeout_ms = 30 * SEC;
}

/* Checks that path is a readable PEM file holding `what` ("CERTIFICATE",
 * "PRIVATE KEY"), so a swapped or missing file is named at once rather
 * than as a TLS library error after the store was opened. */
static int check_pem(const char *opt, const char *path, const char *what)
{
    FILE *f = fopen(path, "re");
    char buf[16384];
    size_t n;
    if (!f) {
        int e = errno;
        log_error("server", "%s %s: %s", opt, path, strerror(e));
        return -e;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* "-----BEGIN CERTIFICATE-----", "-----BEGIN (RSA |EC )PRIVATE KEY-----" */
    const char *b = strstr(buf, "-----BEGIN ");
    if (!b || !strstr(b, what)) {
        log_error("server", "%s %s: not a PEM file holding a %s", opt, path, what);
        return SKED_EINVAL;
    }
    return 0;
}

static int check_tls(const server_config_t *c)
{
    int rc;
    if (!c->tls_cert_file && !c->tls_key_file) return 0;
    if (!c->tls_cert_file || !c->tls_key_file) {
        log_error("server", "--tls-cert and --tls-key go together; %s is missing",
                  c->tls_cert_file ? "--tls-key" : "--tls-cert");
        return SKED_EINVAL;
    }
    if ((rc = check_pem("--tls-cert", c->tls_cert_file, "CERTIFICATE")) < 0) return rc;
    return check_pem("--tls-key", c->tls_key_file, "PRIVATE KEY");
}

/* "sqlite:PATH" -> "DIR/admin.token"; NULL for other stores (the token is
 * then only printed). New string. */
static char *default_token_file(const char *url)
{
    if (strncmp(url, "sqlite:", 7) != 0 || !url[7]) return NULL;
    char *copy = xstrdup(url + 7);
    char *f = xasprintf("%s/admin.token", dirname(copy));
    free(copy);
    return f;
}

/* The alert relay from the config, checked (the credentials file read,
 * the CA file looked at) before the store opens. The config's strings
 * then point at the relay's copies; the credentials file is not kept. */
static int smtp_setup(server_t *srv, const server_config_t *cfg)
{
    char err[256];
    int rc =
        alert_smtp_init(&srv->smtp, cfg->smtp_url, cfg->smtp_from, cfg->smtp_credentials_file, err);
    if (rc == 0) rc = alert_smtp_set_ca(&srv->smtp, cfg->alert_ca_file, err);
    if (rc < 0) {
        log_error("server", "%s", err);
        return rc;
    }
    srv->cfg.smtp_url = srv->smtp.url;
    srv->cfg.smtp_from = srv->smtp.from;
    srv->cfg.smtp_credentials_file = NULL;
    srv->cfg.alert_ca_file = srv->smtp.ca_file;
    return 0;
}

static void on_store_notify(void *arg)
{
    server_t *srv = arg;
    server_wake(srv);
    /* A commit that queued alert notices is one of these. */
    alerter_kick(srv->alerter);
}

/* Upserts the manifests of the plugins in dir into the plugin type
 * registry, as a worker's registration does with what it advertises: a
 * server that reads the same plugin dir as its workers validates jobs of
 * those types before any such worker has registered. The files are read,
 * never loaded (common/plugin_manifest.h). A plugin whose schema jschema
 * cannot apply is left out with a warning, as the registration refuses
 * it; a dir that cannot be read stops the start. */
static int load_plugin_dir(store_t *st, const char *dir)
{
    plugin_manifest_t *v = NULL;
    size_t n = 0, k = 0;
    int rc = plugin_manifest_scan(dir, "server", &v, &n);
    if (rc < 0) {
        log_error("server", "--plugin-dir %s: %s", dir, strerror(-rc));
        return rc;
    }
    store_plugin_type_t *types = xcalloc(n + 1, sizeof *types);
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        char why[256];
        json_t *schema = json_loads(v[i].schema, JSON_DECODE_ANY, &jerr);
        if (!schema || jschema_check(schema, why, sizeof why) != 0) {
            log_warn("server", "plugin %s (%s) left out: its config schema %s%s", v[i].path,
                     v[i].type,
                     schema ? "is refused: " : "is not JSON: ", schema ? why : jerr.text);
            json_decref(schema);
            continue;
        }
        store_plugin_type_t *t = &types[k++];
        snprintf(t->type, sizeof t->type, "%s", v[i].type);
        t->version = xstrdup(v[i].version);
        t->abi = (int)v[i].abi;
        t->schema_json = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(schema);
        log_info("server", "plugin type %s %s (ABI %u) from %s", v[i].type, v[i].version, v[i].abi,
                 v[i].path);
    }
    rc = store_plugin_upsert(st, types, k, store_now_ms(st));
    if (rc < 0)
        log_error("server", "cannot register the plugins of %s: %s", dir, sked_strerror(rc));
    for (size_t i = 0; i < k; i++)
        store_plugin_type_clear(&types[i]);
    free(types);
    plugin_manifests_free(v, n);
    return rc;
}

int server_start(const server_config_t *cfg, server_t **out, char **admin_token)
{
    int rc = 0;
    char *errmsg = NULL;
    char *token = NULL;
    server_t *srv = xcalloc(1, sizeof *srv);

    *out = NULL;
    if (admin_token) *admin_token = NULL;
    srv->cfg = *cfg;
    fill_defaults(&srv->cfg);
    srv->listen = xstrdup(cfg->listen ? cfg->listen : "127.0.0.1:8080");
    srv->store_url = xstrdup(cfg->store_url ? cfg->store_url : "sqlite:./sked-data/sked.db");
    srv->token_file =
        cfg->token_file ? xstrdup(cfg->token_file) : default_token_file(srv->store_url);
    srv->cfg.listen = srv->listen;
    srv->cfg.store_url = srv->store_url;
    srv->cfg.token_file = srv->token_file;
    srv->tls_cert_file = cfg->tls_cert_file ? xstrdup(cfg->tls_cert_file) : NULL;
    srv->tls_key_file = cfg->tls_key_file ? xstrdup(cfg->tls_key_file) : NULL;
    srv->cfg.tls_cert_file = srv->tls_cert_file;
    srv->cfg.tls_key_file = srv->tls_key_file;
    srv->metrics_listen = cfg->metrics_listen ? xstrdup(cfg->metrics_listen) : NULL;
    srv->cfg.metrics_listen = srv->metrics_listen;

    /* A worker fences an attempt lease - max(2 heartbeats, lease/5) after
     * its last renewal: with heartbeats slower than lease/3 every attempt
     * would be killed before its next renewal could arrive. */
    if (srv->cfg.heartbeat_ms * 3 > srv->cfg.lease_ms) {
        log_error("server", "--heartbeat must be at most a third of --lease (%lld ms)",
                  (long long)(srv->cfg.lease_ms / 3));
        rc = SKED_EINVAL;
        goto out;
    }
    /* A typo in the address must not leave a new store behind. */
    rc = http__check_listen(srv->listen);
    if (rc < 0) {
        log_error("server", "cannot listen on '%s': expected ADDR:PORT, e.g. 127.0.0.1:8080",
                  srv->listen);
        goto out;
    }
    if (srv->metrics_listen && (rc = http__check_listen(srv->metrics_listen)) < 0) {
        log_error("server", "cannot serve metrics on '%s': expected ADDR:PORT, e.g. 127.0.0.1:9464",
                  srv->metrics_listen);
        goto out;
    }
    rc = check_tls(&srv->cfg);
    if (rc < 0) goto out;
    rc = smtp_setup(srv, cfg);
    if (rc < 0) goto out;
    rc = store_open(srv->store_url, &srv->st, &errmsg);
    if (rc < 0) {
        log_error("server", "cannot open store %s: %s", srv->store_url,
                  errmsg ? errmsg : sked_strerror(rc));
        goto out;
    }
    store_set_log_cap(srv->st, srv->cfg.log_cap_bytes);
    /* The daemon object exists before anything can call server_wake, so
     * srv->http never changes while other threads may read it. */
    srv->http = http__new(srv, srv->st);
    srv->alerter = alerter_new(srv->st, &srv->cfg, &srv->smtp);
    store_set_notify(srv->st, on_store_notify, srv);

    if (cfg->plugin_dir && (rc = load_plugin_dir(srv->st, cfg->plugin_dir)) < 0) goto out;
    rc = auth_bootstrap(srv->st, srv->token_file, store_now_ms(srv->st), &token);
    if (rc < 0) {
        log_error("server", "cannot bootstrap the admin token: %s", sked_strerror(rc));
        goto out;
    }
    rc = sched_start(srv->st, &srv->cfg, &srv->sched);
    if (rc < 0) {
        log_error("server", "cannot start the scheduler: %s", sked_strerror(rc));
        goto out;
    }
    rc = alerter_start(srv->alerter);
    if (rc < 0) goto out;
    rc = http__listen(srv->http, srv->listen, srv->cfg.threads);
    if (rc < 0) goto out;
    if (srv->metrics_listen) {
        srv->metrics = http__new(srv, srv->st);
        http__metrics_only(srv->metrics);
        rc = http__listen(srv->metrics, srv->metrics_listen, METRICS_THREADS);
        if (rc < 0) goto out;
    }

    if (admin_token) {
        *admin_token = token;
        token = NULL;
    }
    *out = srv;
    srv = NULL;
out:
    free(errmsg);
    free(token);
    if (srv) server_stop(srv);
    return rc;
}

const char *server_url(const server_t *srv)
{
    return http__url(srv->http);
}

const char *server_metrics_url(const server_t *srv)
{
    return srv->metrics ? http__url(srv->metrics) : NULL;
}

void server_stop(server_t *srv)
{
    if (!srv) return;
    /* HTTP first: no request may be left running against the store; it also
     * ends every waiting claim and log follower. */
    http__stop(srv->metrics);
    http__stop(srv->http);
    sched_stop(srv->sched);
    srv->sched = NULL;
    alerter_stop(srv->alerter);
    srv->alerter = NULL;
    store_close(srv->st);
    srv->st = NULL;
    /* Only now: a commit from the scheduler may have called server_wake
     * until the store closed. */
    http__free(srv->http);
    srv->http = NULL;
    http__free(srv->metrics);
    srv->metrics = NULL;
    free(srv->metrics_listen);
    free(srv->listen);
    free(srv->store_url);
    free(srv->token_file);
    free(srv->tls_cert_file);
    free(srv->tls_key_file);
    alert_smtp_clear(&srv->smtp);
    free(srv);
}

void server_wake(server_t *srv)
{
    if (srv) http__wake(srv->http);
}

struct sched *server_sched(server_t *srv)
{
    return srv->sched;
}

const server_config_t *server_config(const server_t *srv)
{
    return &srv->cfg;
}

const struct alert_smtp *server_smtp(const server_t *srv)
{
    return &srv->smtp;
}
