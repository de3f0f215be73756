/*
 * The server-side subcommands: `sked server` (API + scheduler on a store),
 * `sked dev` (the same on an embedded SQLite file under a data directory,
 * plus an in-process worker: zero configuration for a laptop) and
 * `sked routes` (the route table, which docs/openapi.yaml must match).
 *
 * Both servers print machine-readable lines on stdout, flushed at once,
 * that tests and scripts parse:
 *
 *     listening: http://127.0.0.1:PORT     (https:// with --tls-cert)
 *     admin-token: sked_...          (dev: always; server: when created now)
 *     admin-token-file: PATH
 *
 * They run until SIGINT or SIGTERM, then drain the local worker (its
 * running attempts finish and report), stop the server and exit 0. The
 * signals are blocked in every thread and taken synchronously with
 * sigwait(), so no handler runs at an arbitrary point; once shutdown
 * begins they are unblocked again, so a second Ctrl-C ends a slow drain.
 */
#include "cmd.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/duration.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/server.h"
#include "worker/worker.h"

#define EXIT_USAGE 2

/* ---- option parsing ----------------------------------------------------- */

/* If argv[*i] is option `name` ("--name VALUE" or "--name=VALUE"), stores
 * its value and returns 1 (advancing *i past a separate value); returns 0
 * when it is another option, -1 when the value is missing. */
static int take(int argc, char **argv, int *i, const char *name, const char **val)
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

static int parse_count(const char *opt, const char *s, int min, int max, int *out)
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
    if ((r = take(argc, argv, i, "--listen", &v)) != 0) {
        if (r > 0) cfg->listen = v;
        return r;
    }
    if ((r = take(argc, argv, i, "--tls-cert", &v)) != 0) {
        if (r > 0) cfg->tls_cert_file = v;
        return r;
    }
    if ((r = take(argc, argv, i, "--tls-key", &v)) != 0) {
        if (r > 0) cfg->tls_key_file = v;
        return r;
    }
    if ((r = take(argc, argv, i, "--rate-limit", &v)) != 0)
        return r < 0 || parse_rate(v, &cfg->rate_limit) < 0 ? -1 : 1;
    if ((r = take(argc, argv, i, "--rate-burst", &v)) != 0) {
        if (r < 0 || parse_count("--rate-burst", v, 1, 1000000000, &n) < 0) return -1;
        cfg->rate_burst = n;
        return 1;
    }
    if ((r = take(argc, argv, i, "--max-connections-per-ip", &v)) != 0) {
        if (r < 0 || parse_count("--max-connections-per-ip", v, 0, 1000000, &n) < 0) return -1;
        cfg->max_connections_per_ip = n > 0 ? n : -1;
        return 1;
    }
    if ((r = take(argc, argv, i, "--max-connections", &v)) != 0)
        return r < 0 || parse_count("--max-connections", v, 1, 1000000, &cfg->max_connections) < 0
                   ? -1
                   : 1;
    if ((r = take(argc, argv, i, "--idle-timeout", &v)) != 0)
        return r < 0 || parse_dur("--idle-timeout", v, &cfg->idle_timeout_ms) < 0 ? -1 : 1;
    if ((r = take(argc, argv, i, "--lease", &v)) != 0)
        return r < 0 || parse_dur("--lease", v, &cfg->lease_ms) < 0 ? -1 : 1;
    if ((r = take(argc, argv, i, "--heartbeat", &v)) != 0)
        return r < 0 || parse_dur("--heartbeat", v, &cfg->heartbeat_ms) < 0 ? -1 : 1;
    if ((r = take(argc, argv, i, "--lease-grace", &v)) != 0)
        return r < 0 || parse_dur("--lease-grace", v, &cfg->lease_grace_ms) < 0 ? -1 : 1;
    if ((r = take(argc, argv, i, "--confirm-within", &v)) != 0)
        return r < 0 || parse_dur("--confirm-within", v, &cfg->confirm_ms) < 0 ? -1 : 1;
    return 0;
}

static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* ---- running until a signal --------------------------------------------- */

static void block_signals(sigset_t *set)
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

static void wait_for_signal(const sigset_t *set)
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

static void print_ready(const char *url, const char *token, const char *token_file)
{
    printf("listening: %s\n", url);
    if (token) printf("admin-token: %s\n", token);
    if (token_file) printf("admin-token-file: %s\n", token_file);
    fflush(stdout);
}

/* ---- sked server -------------------------------------------------------- */

static void server_usage(FILE *f)
{
    fprintf(f,
            "usage: sked server --store URL [options]\n"
            "\n"
            "Runs the sked API and scheduler on a store. Workers ('sked worker') connect over\n"
            "HTTP(S). On a new store an admin token is created, printed once and written to the\n"
            "token file.\n"
            "\n"
            "options:\n"
            "  --listen ADDR:PORT   where to listen (default 127.0.0.1:8080; port 0 = any free\n"
            "                       port; 0.0.0.0:PORT = every interface)\n"
            "  --store URL          the store (required): sqlite:PATH, or postgres://USER@HOST/DB\n"
            "                       (options ?sked_pool=N&sked_schema=NAME&sked_clock=db)\n"
            "  --threads N          HTTP worker threads (default 16); waiting claims use none,\n"
            "                       but writes wait for the store's disk sync\n"
            "  --token-file FILE    where the bootstrap admin token is written (default:\n"
            "                       admin.token beside the database)\n"
            "  --lease DUR          how long a claimed run is leased to a worker between\n"
            "                       heartbeats (default 10s)\n"
            "  --heartbeat DUR      heartbeat interval told to workers (default lease/5)\n"
            "  --lease-grace DUR    wait after a lease ends before the run moves on\n"
            "                       (default 2s)\n"
            "  --confirm-within DUR a claimed run not reported started within this goes\n"
            "                       back to pending, uncharged (default lease/2)\n"
            "  --tls-cert FILE      serve HTTPS only, with this PEM certificate (chain);\n"
            "                       needs --tls-key. Plain HTTP is then not served at all\n"
            "  --tls-key FILE       the PEM private key of --tls-cert\n"
            "  --rate-limit N/s     requests per second per token, and per client address\n"
            "                       for calls without a valid token (default 100/s; 0 or\n"
            "                       off = no limit); admin tokens and the worker protocol\n"
            "                       are exempt. Over it: 429 with Retry-After\n"
            "  --rate-burst N       requests a caller may make at once (default 2 x rate)\n"
            "  --max-connections N  open connections at once (default 4096, fewer when\n"
            "                       ulimit -n is lower)\n"
            "  --max-connections-per-ip N\n"
            "                       per client address (default 512; 0 = no cap, e.g.\n"
            "                       behind a load balancer)\n"
            "  --idle-timeout DUR   close connections silent this long (default 30s)\n"
            "  -h, --help           this help\n"
            "\n"
            "Prints 'listening: URL', and on a new store 'admin-token: TOKEN', and\n"
            "'admin-token-file: PATH'. Stops cleanly on SIGINT or SIGTERM.\n");
}

int cmd_server(int argc, char **argv)
{
    server_config_t cfg;
    server_t *srv = NULL;
    char *token = NULL;
    sigset_t set;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:8080";

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (is_help(argv[i])) {
            server_usage(stdout);
            return 0;
        }
        if ((r = common_opt(argc, argv, &i, &cfg)) != 0) {
            if (r < 0) return EXIT_USAGE;
            continue;
        }
        if ((r = take(argc, argv, &i, "--store", &v)) != 0) {
            if (r < 0) return EXIT_USAGE;
            cfg.store_url = v;
        } else if ((r = take(argc, argv, &i, "--token-file", &v)) != 0) {
            if (r < 0) return EXIT_USAGE;
            cfg.token_file = v;
        } else if ((r = take(argc, argv, &i, "--threads", &v)) != 0) {
            if (r < 0 || parse_count("--threads", v, 1, 1024, &cfg.threads) < 0) return EXIT_USAGE;
        } else {
            fprintf(stderr, "sked server: unknown option '%s'\n\n", argv[i]);
            server_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!cfg.store_url) {
        fprintf(stderr, "sked server: --store is required (e.g. --store sqlite:/var/lib/sked/"
                        "sked.db)\n");
        return EXIT_USAGE;
    }

    block_signals(&set);
    int rc = server_start(&cfg, &srv, &token);
    if (rc < 0) {
        fprintf(stderr, "sked server: cannot start: %s\n", sked_strerror(rc));
        return 1;
    }
    print_ready(server_url(srv), token, server_config(srv)->token_file);
    free(token);
    wait_for_signal(&set);
    server_stop(srv);
    return 0;
}

/* ---- sked dev ----------------------------------------------------------- */

static void dev_usage(FILE *f)
{
    fprintf(f, "usage: sked dev [options]\n"
               "\n"
               "Runs everything on this machine: the API, the scheduler and a local worker, with\n"
               "an embedded SQLite store in a data directory. Zero configuration.\n"
               "\n"
               "options:\n"
               "  --listen ADDR:PORT   where to listen (default 127.0.0.1:8080; port 0 = any free\n"
               "                       port)\n"
               "  --data DIR           data directory, created if needed (default ./sked-data);\n"
               "                       holds sked.db and admin.token\n"
               "  --slots N            runs the local worker executes at once (default 4;\n"
               "                       0 = no local worker)\n"
               "  --lease DUR          run lease between heartbeats (default 10s)\n"
               "  --heartbeat DUR      heartbeat interval told to workers (default lease/5)\n"
               "  --lease-grace DUR    wait after a lease ends before the run moves on (2s)\n"
               "  --confirm-within DUR claimed runs must be reported started within this\n"
               "                       (default lease/2)\n"
               "  --tls-cert FILE      serve HTTPS only, with this PEM certificate (chain);\n"
               "                       needs --tls-key. Plain HTTP is then not served at all\n"
               "  --tls-key FILE       the PEM private key of --tls-cert\n"
               "  --rate-limit N/s     requests per second per token, and per client address\n"
               "                       for calls without a valid token (default 100/s; 0 or\n"
               "                       off = no limit); the worker protocol is exempt. Over\n"
               "                       it: 429 with Retry-After\n"
               "  --rate-burst N       requests a caller may make at once (default 2 x rate)\n"
               "  --max-connections N  open connections at once (default 4096, fewer when\n"
               "                       ulimit -n is lower)\n"
               "  --max-connections-per-ip N\n"
               "                       per client address (default 512; 0 = no cap, e.g.\n"
               "                       behind a load balancer)\n"
               "  --idle-timeout DUR   close connections silent this long (default 30s)\n"
               "  --ca FILE            with --tls-cert: the CA the local worker trusts\n"
               "                       (default: the --tls-cert certificate itself)\n"
               "  -h, --help           this help\n"
               "\n"
               "Prints 'listening: URL', 'admin-token: TOKEN' and 'admin-token-file: PATH'.\n"
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

int cmd_dev(int argc, char **argv)
{
    server_config_t cfg;
    server_t *srv = NULL;
    worker_t *w = NULL;
    char *token = NULL, *store_url = NULL, *token_file = NULL;
    const char *data = "./sked-data", *ca = NULL;
    int slots = 4, rc = 0, status = 0;
    sigset_t set;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:8080";

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (is_help(argv[i])) {
            dev_usage(stdout);
            return 0;
        }
        if ((r = common_opt(argc, argv, &i, &cfg)) != 0) {
            if (r < 0) return EXIT_USAGE;
            continue;
        }
        if ((r = take(argc, argv, &i, "--data", &v)) != 0) {
            if (r < 0) return EXIT_USAGE;
            data = v;
        } else if ((r = take(argc, argv, &i, "--slots", &v)) != 0) {
            if (r < 0 || parse_count("--slots", v, 0, 1024, &slots) < 0) return EXIT_USAGE;
        } else if ((r = take(argc, argv, &i, "--ca", &v)) != 0) {
            if (r < 0) return EXIT_USAGE;
            ca = v;
        } else {
            fprintf(stderr, "sked dev: unknown option '%s'\n\n", argv[i]);
            dev_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!*data) {
        fprintf(stderr, "sked dev: --data must not be empty\n");
        return EXIT_USAGE;
    }
    if (ca && !cfg.tls_cert_file) {
        fprintf(stderr, "sked dev: --ca only matters with --tls-cert\n");
        return EXIT_USAGE;
    }
    /* The local worker calls this very server over HTTPS and verifies it
     * like any other client. Without a CA, the server's own certificate is
     * its trust anchor: it needs no CA that signed it, and it still proves
     * the worker talks to this server. */
    if (cfg.tls_cert_file) httpc_set_default_ca(ca ? ca : cfg.tls_cert_file);
    if ((rc = make_dirs(data)) < 0) {
        fprintf(stderr, "sked dev: cannot create %s: %s\n", data, sked_strerror(rc));
        return 1;
    }
    store_url = xasprintf("sqlite:%s/sked.db", data);
    token_file = xasprintf("%s/admin.token", data);
    cfg.store_url = store_url;
    cfg.token_file = token_file;

    block_signals(&set);
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
                token_file, strerror(errno), data);
        status = 1;
        goto out;
    }
    if (slots > 0) {
        worker_config_t wc;
        memset(&wc, 0, sizeof wc);
        wc.servers = server_url(srv);
        wc.token = token;
        wc.name = "local";
        wc.slots = slots;
        rc = worker_start(&wc, &w);
        if (rc < 0) {
            fprintf(stderr, "sked dev: cannot start the local worker: %s\n", sked_strerror(rc));
            status = 1;
            goto out;
        }
    }
    print_ready(server_url(srv), token, token_file);
    printf("sked dev is up: API at %s, %s, data in %s.\n", server_url(srv),
           slots > 0 ? "a local worker is running jobs" : "no local worker (--slots 0)", data);
    if (cfg.tls_cert_file)
        printf("Try: export SKED_SERVER=%s SKED_TOKEN=$(cat %s) SKED_CA=%s; sked submit --help\n",
               server_url(srv), token_file, ca ? ca : cfg.tls_cert_file);
    else
        printf("Try: export SKED_SERVER=%s SKED_TOKEN=$(cat %s); sked submit --help\n",
               server_url(srv), token_file);
    fflush(stdout);

    wait_for_signal(&set);
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
        return EXIT_USAGE;
    }
    for (const http_route_t *r = http_routes; r->method; r++)
        printf("%s %s\n", r->method, r->pattern);
    return 0;
}
