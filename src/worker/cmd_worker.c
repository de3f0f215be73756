/*
 * `sked worker`: the worker role as a command. Parses options (with
 * SKED_SERVER / SKED_TOKEN as fallbacks), starts the worker, prints
 * "worker: registered as <id>", and waits for signals: the first SIGTERM or
 * SIGINT drains (no more claims; running attempts finish and report; exit
 * 0), a second one kills the attempts and exits at once (their runs are
 * retried elsewhere once their leases lapse).
 */
#include "cmd.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/duration.h"
#include "worker/worker.h"
#include "worker/worker_int.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 4096

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sked worker --server URL[,URL...] [--token-file F | --token T] [options]\n"
            "\n"
            "Runs jobs for a sked server: claims runs, executes them, ships their output\n"
            "and reports results. SIGTERM/SIGINT drains (finish running jobs, then exit);\n"
            "a second one kills the running jobs and exits.\n"
            "\n"
            "options:\n"
            "  --server URL[,URL...]  server base URL(s); fails over in order (env SKED_SERVER)\n"
            "  --token-file F         file holding the bearer token\n"
            "  --token T              bearer token (env SKED_TOKEN)\n"
            "  --slots N              runs at once (default 4)\n"
            "  --queues a,b           queues to take work from (default \"default\")\n"
            "  --labels k=v,...       labels that job constraints match against\n"
            "  --name NAME            worker name (default host-pid)\n"
            "  --kill-grace DUR       SIGTERM->SIGKILL grace on timeout/cancel (default 5s)\n"
            "  -h, --help             this help\n");
}

/* Reads the first line of a token file; new string or NULL (errno set). */
static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = xmalloc(TOKEN_MAX);
    size_t n = fread(buf, 1, TOKEN_MAX - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    char *t = buf;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t len = strlen(t);
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
        t[--len] = '\0';
    char *out = xstrdup(t);
    free(buf);
    if (!*out) {
        free(out);
        errno = EINVAL;
        return NULL;
    }
    return out;
}

struct stopper {
    worker_t *w;
    pthread_t main_thread;
};

static void *stop_main(void *arg)
{
    struct stopper *s = arg;
    worker_stop(s->w);
    pthread_kill(s->main_thread, SIGUSR1); /* tell main the drain is over */
    return NULL;
}

int cmd_worker(int argc, char **argv)
{
    enum { O_SERVER = 0x100, O_TOKEN, O_TOKEN_FILE, O_SLOTS, O_QUEUES, O_LABELS, O_NAME, O_GRACE };
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"slots", required_argument, NULL, O_SLOTS},
        {"queues", required_argument, NULL, O_QUEUES},
        {"labels", required_argument, NULL, O_LABELS},
        {"name", required_argument, NULL, O_NAME},
        {"kill-grace", required_argument, NULL, O_GRACE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    worker_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const char *token_file = NULL, *token = NULL;
    char *file_token = NULL;
    worker_t *w = NULL;
    int status = 0;

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case O_SERVER:
            cfg.servers = optarg;
            break;
        case O_TOKEN:
            token = optarg;
            break;
        case O_TOKEN_FILE:
            token_file = optarg;
            break;
        case O_QUEUES:
            cfg.queues = optarg;
            break;
        case O_LABELS:
            cfg.labels = optarg;
            break;
        case O_NAME:
            cfg.name = optarg;
            break;
        case O_SLOTS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 4096) {
                fprintf(stderr, "sked worker: --slots must be 1..4096, not '%s'\n", optarg);
                return 2;
            }
            cfg.slots = (int)v;
            break;
        }
        case O_GRACE:
            if (duration_parse(optarg, &cfg.kill_grace_ms) < 0) {
                fprintf(stderr, "sked worker: --kill-grace: bad duration '%s' (e.g. 5s, 500ms)\n",
                        optarg);
                return 2;
            }
            if (cfg.kill_grace_ms == 0) cfg.kill_grace_ms = 1; /* 0 would mean the default */
            break;
        default:
            fprintf(stderr, "sked worker: unknown or incomplete option '%s'\n\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sked worker: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!cfg.servers) cfg.servers = getenv("SKED_SERVER");
    if (!cfg.servers || !*cfg.servers) {
        fprintf(stderr, "sked worker: --server (or SKED_SERVER) is required\n");
        return 2;
    }
    if (!token && token_file) {
        file_token = read_token_file(token_file);
        if (!file_token) {
            fprintf(stderr, "sked worker: cannot read a token from %s: %s\n", token_file,
                    strerror(errno));
            return 2;
        }
        token = file_token;
    }
    if (!token) token = getenv("SKED_TOKEN");
    if (!token || !*token) {
        fprintf(stderr, "sked worker: a token is required (--token-file, --token or "
                        "SKED_TOKEN)\n");
        free(file_token);
        return 2;
    }
    cfg.token = token;

    /* Signals are taken by sigwait below; every thread the worker creates
     * inherits this mask (children get a clean one, see spawn.c). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    int rc = worker_start(&cfg, &w);
    if (rc < 0) {
        fprintf(stderr, "sked worker: cannot start: %s\n", sked_strerror(rc));
        status = 1;
        goto out;
    }
    char id[SKED_ID_LEN];
    worker__get_id(w, id);
    printf("worker: registered as %s\n", id);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGUSR1) {
    }
    log_info("worker", "signal %d: draining (send it again to kill running jobs)", sig);
    struct stopper st = {w, pthread_self()};
    pthread_t t;
    if (pthread_create(&t, NULL, stop_main, &st) != 0) {
        worker__abort(w);
        worker_stop(w);
        status = 1;
        goto out;
    }
    while (sigwait(&set, &sig) == 0) {
        if (sig == SIGUSR1) break;
        log_warn("worker", "signal %d again: killing running jobs", sig);
        worker__abort(w);
        status = 1;
    }
    pthread_join(t, NULL);
out:
    free(file_token);
    return status;
}
