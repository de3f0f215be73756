/*
 * The server-side subcommands: `sked server` (API + scheduler on a store)
 * and `sked routes` (the route table, which docs/openapi.yaml must match),
 * with the options, signal handling and ready lines that `sked dev`
 * (cmd/cmd_dev.c: the same server plus a local worker) shares.
 *
 * Both servers print machine-readable lines on stdout, flushed at once,
 * that tests and scripts parse:
 *
 *     metrics-listening: http://ADDR:PORT (with --metrics-listen)
 *     listening: http://127.0.0.1:PORT     (https:// with --tls-cert)
 *     admin-token: sked_...          (dev: always; server: when created now)
 *     admin-token-file: PATH
 *
 * They run until SIGINT or SIGTERM, then (dev) drain the local worker, stop
 * the server and exit 0. The signals are blocked in every thread and taken
 * synchronously with sigwait(), so no handler runs at an arbitrary point;
 * once shutdown begins they are unblocked again, so a second Ctrl-C ends a
 * slow drain.
 */
#include "server/cmd_server.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/duration.h"
#include "server/http.h"

/* ---- option parsing ----------------------------------------------------- */

int cmd_server_take(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sked: %s needs a value\n", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int cmd_server_parse_count(const char *opt, const char *s, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < min || v > max) {
        fprintf(stderr, "sked: %s must be an integer from %d to %d, not '%s'\n", opt, min, max, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_dur(const char *opt, const char *s, int64_t *out)
{
    if (duration_parse(s, out) != 0 || *out <= 0) {
        fprintf(stderr, "sked: %s must be a positive duration such as 30s or 1m, not '%s'\n", opt,
                s);
        return -1;
    }
    return 0;
}

/* "--rate-limit": "N", "N/s" or "off"; 0 and "off" turn the limit off
 * (stored as -1, since 0 in the config means the default). */
static int parse_rate(const char *s, double *out)
{
    char *end = NULL;
    if (!strcmp(s, "off")) {
        *out = -1;
        return 0;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (end && !strcmp(end, "/s")) end += 2;
    if (errno || end == s || *end || !(v >= 0) || v > 1e9) {
        fprintf(stderr,
                "sked: --rate-limit must be requests per second such as 100/s, or 0/off, not "
                "'%s'\n",
                s);
        return -1;
    }
    *out = v > 0 ? v : -1;
    return 0;
}

/* Options both servers take. Returns 1 if argv[*i] was one of them, 0 if
 * not, -1 on a bad value. */
static int common_opt(int argc, char **argv, int *i, server_config_t *cfg)
{
    const char *v = NULL;
    int r, n = 0;
    if ((r = cmd_server_take(argc, argv, i, "--listen", &v)) != 0) {
        if (r > 0) cfg->listen = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--metrics-listen", &v)) != 0) {
        if (r > 0) cfg->metrics_listen = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--plugin-dir", &v)) != 0) {
        if (r > 0) cfg->plugin_dir = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--tls-cert", &v)) != 0) {
        if (r > 0) cfg->tls_cert_file = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--tls-key", &v)) != 0) {
        if (r > 0) cfg->tls_key_file = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--rate-limit", &v)) != 0)
        return r < 0 || parse_rate(v, &cfg->rate_limit) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--rate-burst", &v)) != 0) {
        if (r < 0 || cmd_server_parse_count("--rate-burst", v, 1, 1000000000, &n) < 0) return -1;
        cfg->rate_burst = n;
        return 1;
    }
    if ((r = cmd_server_take(argc, argv, i, "--max-connections-per-ip", &v)) != 0) {
        if (r < 0 || cmd_server_parse_count("--max-connections-per-ip", v, 0, 1000000, &n) < 0)
            return -1;
        cfg->max_connections_per_ip = n > 0 ? n : -1;
        return 1;
    }
    if ((r = cmd_server_take(argc, argv, i, "--max-connections", &v)) != 0)
        return r < 0 || cmd_server_parse_count("--max-connections", v, 1, 1000000,
                                               &cfg->max_connections) < 0
                   ? -1
                   : 1;
    if ((r = cmd_server_take(argc, argv, i, "--idle-timeout", &v)) != 0)
        return r < 0 || parse_dur("--idle-timeout", v, &cfg->idle_timeout_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--lease", &v)) != 0)
        return r < 0 || parse_dur("--lease", v, &cfg->lease_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--heartbeat", &v)) != 0)
        return r < 0 || parse_dur("--heartbeat", v, &cfg->heartbeat_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--lease-grace", &v)) != 0)
        return r < 0 || parse_dur("--lease-grace", v, &cfg->lease_grace_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--confirm-within", &v)) != 0)
        return r < 0 || parse_dur("--confirm-within", v, &cfg->confirm_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--events-retention", &v)) != 0)
        return r < 0 || parse_dur("--events-retention", v, &cfg->events_retention_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--smtp-url", &v)) != 0) {
        if (r > 0) cfg->smtp_url = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--smtp-from", &v)) != 0) {
        if (r > 0) cfg->smtp_from = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--smtp-credentials-file", &v)) != 0) {
        if (r > 0) cfg->smtp_credentials_file = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--alert-tries", &v)) != 0)
        return r < 0 || cmd_server_parse_count("--alert-tries", v, 1, 1000, &cfg->alert_tries) < 0
                   ? -1
                   : 1;
    if ((r = cmd_server_take(argc, argv, i, "--alert-retry-max", &v)) != 0)
        return r < 0 || parse_dur("--alert-retry-max", v, &cfg->alert_retry_max_ms) < 0 ? -1 : 1;
    if ((r = cmd_server_take(argc, argv, i, "--alert-ca", &v)) != 0) {
        if (r > 0) cfg->alert_ca_file = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--log-format", &v)) != 0) {
        enum log_format f;
        if (r < 0) return -1;
        if (log_format_parse(v, &f) < 0) {
            fprintf(stderr, "sked: --log-format: expected text or json, got '%s'\n", v);
            return -1;
        }
        log_set_format(f);
        return 1;
    }
    return 0;
}

static bool is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

int cmd_server_parse(int argc, char **argv, server_config_t *cfg, void (*usage)(FILE *),
                     cmd_server_opt_fn *own, void *arg, int *status)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "127.0.0.1:8080";
    *status = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (is_help(argv[i])) {
            usage(stdout);
            return -1;
        }
        if ((r = common_opt(argc, argv, &i, cfg)) == 0) r = own(argc, argv, &i, arg);
        if (r > 0) continue;
        if (r == 0) {
            fprintf(stderr, "sked %s: unknown option '%s'\n\n", argv[0], argv[i]);
            usage(stderr);
        }
        *status = CMD_EXIT_USAGE;
        return -1;
    }
    return 0;
}

/* ---- running until a signal --------------------------------------------- */

void cmd_server_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    /* Before any thread exists, so every thread inherits the mask and the
     * signals wait for sigwait() below. */
    pthread_sigmask(SIG_BLOCK, set, NULL);
    /* Peers closing connections must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
}

void cmd_server_wait_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    fprintf(stderr, "sked: %s received, shutting down (again to force)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, set, NULL);
}

void cmd_server_print_metrics(const server_t *srv)
{
    const char *url = server_metrics_url(srv);
    if (url) printf("metrics-listening: %s\n", url);
}

void cmd_server_print_ready(const char *url, const char *token, const char *token_file)
{
    printf("listening: %s\n", url);
    if (token) printf("admin-token: %s\n", token);
    if (token_file) printf("admin-token-file: %s\n", token_file);
    fflush(stdout);
}

/* ---- sked server -------------------------------------------------------- */

static void server_usage(FILE *f)
{
    fprintf(
        f,
        "usage: sked server --store URL [options]\n"
        "\n"
        "Runs the sked API and scheduler on a store. Workers ('sked worker') connect over\n"
        "HTTP(S). On a new store an admin token is created, printed once and written to the\n"
        "token file.\n"
        "\n"
        "options:\n"
        "  --listen ADDR:PORT   where to listen (default 127.0.0.1:8080; port 0 = any free\n"
        "                       port; 0.0.0.0:PORT = every interface)\n" CMD_SERVER_HELP_METRICS
        "  --store URL          the store (required): sqlite:PATH, or postgres://USER@HOST/DB\n"
        "                       (options ?sked_pool=N&sked_schema=NAME&sked_clock=db)\n"
        "  --threads N          HTTP worker threads (default 64); waiting claims use none,\n"
        "                       but a write holds one until its disk sync\n"
        "  --token-file FILE    where the bootstrap admin token is written (default:\n"
        "                       admin.token beside the database)\n"
        "  --lease DUR          how long a claimed run is leased to a worker between\n"
        "                       heartbeats (default 10s)\n"
        "  --heartbeat DUR      heartbeat interval told to workers (default lease/5)\n"
        "  --lease-grace DUR    wait after a lease ends before the run moves on\n"
        "                       (default 2s)\n"
        "  --confirm-within DUR a claimed run not reported started within this goes\n"
        "                       back to pending, uncharged (default lease/2)\n" CMD_SERVER_HELP_TLS
            CMD_SERVER_HELP_PLUGINS
        "  --rate-limit N/s     requests per second per token, and per client address\n"
        "                       for calls without a valid token (default 100/s; 0 or\n"
        "                       off = no limit); admin tokens and the worker protocol\n"
        "                       are exempt. Over it: 429 with Retry-After\n" CMD_SERVER_HELP_LIMITS
            CMD_SERVER_HELP_ALERTS "  -h, --help           this help\n"
        "\n"
        "Prints 'listening: URL', and on a new store 'admin-token: TOKEN', and\n"
        "'admin-token-file: PATH'. Stops cleanly on SIGINT or SIGTERM. The web dashboard\n"
        "is served at '/' of the --listen address (log in with a token, or a user).\n");
}

/* The options of `sked server` besides the common ones, into arg (a
 * server_config_t). */
static int server_opt(int argc, char **argv, int *i, void *arg)
{
    server_config_t *cfg = arg;
    const char *v = NULL;
    int r;
    if ((r = cmd_server_take(argc, argv, i, "--store", &v)) != 0) {
        if (r > 0) cfg->store_url = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--token-file", &v)) != 0) {
        if (r > 0) cfg->token_file = v;
        return r;
    }
    if ((r = cmd_server_take(argc, argv, i, "--threads", &v)) != 0)
        return r < 0 || cmd_server_parse_count("--threads", v, 1, 1024, &cfg->threads) < 0 ? -1 : 1;
    return 0;
}

int cmd_server(int argc, char **argv)
{
    server_config_t cfg;
    server_t *srv = NULL;
    char *token = NULL;
    sigset_t set;
    int status;

    if (cmd_server_parse(argc, argv, &cfg, server_usage, server_opt, &cfg, &status) < 0)
        return status;
    if (!cfg.store_url) {
        fprintf(stderr, "sked server: --store is required (e.g. --store sqlite:/var/lib/sked/"
                        "sked.db)\n");
        return CMD_EXIT_USAGE;
    }

    cmd_server_block_signals(&set);
    int rc = server_start(&cfg, &srv, &token);
    if (rc < 0) {
        fprintf(stderr, "sked server: cannot start: %s\n", sked_strerror(rc));
        return 1;
    }
    cmd_server_print_metrics(srv);
    cmd_server_print_ready(server_url(srv), token, server_config(srv)->token_file);
    free(token);
    cmd_server_wait_signal(&set);
    server_stop(srv);
    return 0;
}

/* ---- sked routes -------------------------------------------------------- */

int cmd_routes(int argc, char **argv)
{
    if (argc > 1 && is_help(argv[1])) {
        printf("usage: sked routes\n\nPrints every HTTP route of the server, one "
               "'METHOD PATTERN' per line.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "sked routes: takes no arguments\n");
        return CMD_EXIT_USAGE;
    }
    for (const http_route_t *r = http_routes; r->method; r++)
        printf("%s %s\n", r->method, r->pattern);
    return 0;
}
