/*
 * `sked dev`: everything on one machine with zero configuration. It wires
 * the roles together, so it sits above them: a server (as `sked server`,
 * with the same options) on an embedded SQLite file under a data
 * directory, the admin token kept beside it, and an in-process worker that
 * calls the server over HTTP(S) with that token like any other worker.
 *
 * It prints the lines `sked server` prints (cmd_server_print_ready), always
 * with the admin token, then a sentence for the person at the terminal.
 * SIGINT or SIGTERM drains the local worker (its running attempts finish
 * and report to a server still there to record them), then stops the
 * server; a second one forces.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/httpc.h"
#include "common/xalloc.h"
#include "server/auth.h"
#include "server/cmd_server.h"
#include "server/server.h"
#include "worker/worker.h"

static void dev_usage(FILE *f)
{
    fprintf(f,
            "usage: sked dev [options]\n"
            "\n"
            "Runs everything on this machine: the API, the scheduler and a local worker, with\n"
            "an embedded SQLite store in a data directory. Zero configuration.\n"
            "\n"
            "options:\n"
            "  --listen ADDR:PORT   where to listen (default 127.0.0.1:8080; port 0 = any free\n"
            "                       port)\n" CMD_SERVER_HELP_METRICS
            "  --data DIR           data directory, created if needed (default ./sked-data);\n"
            "                       holds sked.db and admin.token\n"
            "  --slots N            runs the local worker executes at once (default 4;\n"
            "                       0 = no local worker)\n"
            "  --lease DUR          run lease between heartbeats (default 10s)\n"
            "  --heartbeat DUR      heartbeat interval told to workers (default lease/5)\n"
            "  --lease-grace DUR    wait after a lease ends before the run moves on (2s)\n"
            "  --confirm-within DUR claimed runs must be reported started within this\n"
            "                       (default lease/2)\n" CMD_SERVER_HELP_TLS CMD_SERVER_HELP_PLUGINS
            "  --rate-limit N/s     requests per second per token, and per client address\n"
            "                       for calls without a valid token (default 100/s; 0 or\n"
            "                       off = no limit); the worker protocol is exempt. Over\n"
            "                       it: 429 with Retry-After\n" CMD_SERVER_HELP_LIMITS
                CMD_SERVER_HELP_ALERTS
            "  --http-allow CIDR,...  private or loopback addresses the local worker's\n"
            "                       http jobs may reach (refused by default; e.g.\n"
            "                       127.0.0.0/8 to call services on this machine)\n"
            "  --ca FILE            with --tls-cert: the CA the local worker trusts\n"
            "                       (default: the --tls-cert certificate itself)\n"
            "  -h, --help           this help\n"
            "\n"
            "Prints 'listening: URL', 'admin-token: TOKEN' and 'admin-token-file: PATH',\n"
            "then where the dashboard is. The dashboard is at the API's address, '/'.\n"
            "Ctrl-C lets running jobs finish, then stops; press it again to force.\n");
}

/* mkdir -p, private to its owner when created. */
static int make_dirs(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char saved = *s;
        *s = 0;
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = saved;
        if (!saved) break;
    }
    free(p);
    return rc;
}

/* What `sked dev` takes besides the options of `sked server`. */
struct dev_opts {
    const char *data;       /* --data: the data directory */
    const char *ca;         /* --ca, or NULL */
    int slots;              /* --slots: 0 = no local worker */
    const char *http_allow; /* --http-allow: for the local worker's http jobs, or NULL */
};

static int dev_opt(int argc, char **argv, int *i, void *arg)
{
    struct dev_opts *o = arg;
    const char *v = NULL;
    int r;
    if ((r = cmd_server_take(argc, argv, i, "--data", &v)) != 0) {
        if (r > 0) o->data = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--slots", &v)) != 0)
        return r < 0 || cmd_server_parse_count("--slots", v, 0, 1024, &o->slots) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--ca", &v)) != 0) {
        if (r > 0) o->ca = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--http-allow", &v)) != 0) {
        if (r > 0) o->http_allow = v;
        return r;
    }
    return 0;
}

int cmd_dev(int argc, char **argv)
{
    server_config_t cfg;
    server_t *srv = NULL;
    worker_t *w = NULL;
    char *token = NULL, *store_url = NULL, *token_file = NULL;
    struct dev_opts o = {.data = "./sked-data", .ca = NULL, .slots = 4};
    int rc = 0, status = 0;
    sigset_t set;

    if (cmd_server_parse(argc, argv, &cfg, dev_usage, dev_opt, &o, &status) < 0) return status;
    if (!*o.data) {
        fprintf(stderr, "sked dev: --data must not be empty\n");
        return CMD_EXIT_USAGE;
    }
    if (o.ca && !cfg.tls_cert_file) {
        fprintf(stderr, "sked dev: --ca only matters with --tls-cert\n");
        return CMD_EXIT_USAGE;
    }
    /* The local worker calls this very server over HTTPS and verifies it
     * like any other client. Without a CA, the server's own certificate is
     * its trust anchor: it needs no CA that signed it, and it still proves
     * the worker talks to this server. */
    if (cfg.tls_cert_file) httpc_set_default_ca(o.ca ? o.ca : cfg.tls_cert_file);
    if ((rc = make_dirs(o.data)) < 0) {
        fprintf(stderr, "sked dev: cannot create %s: %s\n", o.data, sked_strerror(rc));
        return 1;
    }
    store_url = xasprintf("sqlite:%s/sked.db", o.data);
    token_file = xasprintf("%s/admin.token", o.data);
    cfg.store_url = store_url;
    cfg.token_file = token_file;

    cmd_server_block_signals(&set);
    rc = server_start(&cfg, &srv, &token);
    if (rc < 0) {
        fprintf(stderr, "sked dev: cannot start: %s\n", sked_strerror(rc));
        status = 1;
        goto out;
    }
    if (!token) token = auth_token_file_read(token_file);
    if (!token) {
        fprintf(stderr,
                "sked dev: cannot read the admin token from %s (%s); the store already has "
                "tokens, so none is created. Move %s aside to start afresh.\n",
                token_file, strerror(errno), o.data);
        status = 1;
        goto out;
    }
    if (o.slots > 0) {
        worker_config_t wc;
        memset(&wc, 0, sizeof wc);
        wc.servers = server_url(srv);
        wc.token = token;
        wc.name = "local";
        wc.slots = o.slots;
        /* The local worker runs the plugins the server registered. */
        wc.plugin_dir = cfg.plugin_dir;
        wc.http_allow = o.http_allow;
        rc = worker_start(&wc, &w);
        if (rc < 0) {
            fprintf(stderr, "sked dev: cannot start the local worker: %s\n", sked_strerror(rc));
            status = 1;
            goto out;
        }
    }
    cmd_server_print_metrics(srv);
    cmd_server_print_ready(server_url(srv), token, token_file);
    printf("sked dev is up: API at %s, %s, data in %s.\n", server_url(srv),
           o.slots > 0 ? "a local worker is running jobs" : "no local worker (--slots 0)", o.data);
    printf("Dashboard: open %s/ and log in with the admin token %s\n", server_url(srv), token);
    if (cfg.tls_cert_file)
        printf("Try: export SKED_SERVER=%s SKED_TOKEN=$(cat %s) SKED_CA=%s; sked submit --help\n",
               server_url(srv), token_file, o.ca ? o.ca : cfg.tls_cert_file);
    else
        printf("Try: export SKED_SERVER=%s SKED_TOKEN=$(cat %s); sked submit --help\n",
               server_url(srv), token_file);
    fflush(stdout);

    cmd_server_wait_signal(&set);
    /* Drain first: running attempts finish and report to a server that is
     * still there to record them. */
    worker_stop(w);
    w = NULL;
out:
    worker_stop(w);
    server_stop(srv);
    free(token);
    free(store_url);
    free(token_file);
    return status;
}
