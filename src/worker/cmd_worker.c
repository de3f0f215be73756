/*
 * `sked worker`: the worker role as a command. Parses options (with
 * SKED_SERVER / SKED_TOKEN / SKED_CA as fallbacks), starts the worker, prints
 * "worker: registered as <id>", and waits for signals: the first SIGTERM or
 * SIGINT drains (no more claims; running attempts finish and report; exit
 * 0), a second one kills the attempts and exits at once (their runs are
 * retried elsewhere once their leases lapse).
 *
 * Job isolation options (--run-as, --allow-root, --work-dir, --limit-*)
 * fill the isolation part of worker_config_t; see worker.h.
 */
#include "worker/worker.h"
#include "common/error.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/duration.h"
#include "core/results.h"
#include "worker/worker_int.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
            "  --ca FILE              trust the CA certificate(s) in FILE for https servers\n"
            "                         instead of the system's (env SKED_CA); certificates\n"
            "                         are always verified\n"
            "  --log-format F         text (default) or json: one JSON object per line\n"
            "  --slots N              runs at once (default 4)\n"
            "  --queues a,b           queues to take work from (default \"default\")\n"
            "  --labels k=v,...       labels that job constraints match against\n"
            "  --name NAME            worker name (default host-pid)\n"
            "  --kill-grace DUR       SIGTERM->SIGKILL grace on timeout/cancel (default 5s)\n"
            "  --result-max SIZE      the most a job's $SKED_RESULT_FILE may hold, e.g. 128K\n"
            "                         (default 64K, at most 256K); a bigger or invalid\n"
            "                         result fails an attempt that exited 0\n"
            "  --checkpoint-max SIZE  the most a job's $SKED_CHECKPOINT_FILE may hold\n"
            "                         (default 64K, at most 256K); a bigger one is not shipped\n"
            "\n"
            "job types beyond shell (docs/plugins.md):\n"
            "  --plugin-dir DIR       run the plugins (*.so) in DIR: each in a long-lived host\n"
            "                         process; their types are advertised to the server\n"
            "  --http-allow CIDR,...  private, loopback or link-local addresses http jobs may\n"
            "                         reach (refused by default), e.g. 10.0.0.0/8\n"
            "  --plugin-hang-timeout DUR\n"
            "                         a plugin host that answers no ping this long is killed\n"
            "                         and restarted; its attempts fail (default 10s)\n"
            /* job isolation */
            "\n"
            "job isolation (jobs never see the worker's environment or token):\n"
            "  --run-as USER[:GROUP]  run jobs as this user (and group); needs a root worker.\n"
            "                         A root worker refuses to start without it, unless\n"
            "                         --allow-root\n"
            "  --allow-root           allow jobs to run as root\n"
            "  --work-dir DIR         parent of each attempt's fresh directory, removed after\n"
            "                         the attempt (default $TMPDIR/sked-work, /tmp without\n"
            "                         TMPDIR; sked-work-UID when not root); a plugin\n"
            "                         attempt's result files go to /dev/shm/sked-io[-UID]\n"
            "                         (in memory) when it may be made\n"
            "  --limit-cpu DUR        CPU time per attempt, e.g. 10m (default unlimited)\n"
            "  --limit-as SIZE        address space per process, e.g. 4G (default unlimited)\n"
            "  --limit-nofile N       open files per process (default 1024)\n"
            "  --limit-nproc N        processes of the run-as user, counted by the kernel over\n"
            "                         all its processes on this machine (default 512 with\n"
            "                         --run-as, else unlimited)\n"
            "                         0 or \"unlimited\" leaves a limit off\n"
            "  -h, --help             this help\n");
}

/* A --limit-* value: "0", "unlimited" or "none" -> WORKER_LIMIT_OFF; else
 * a count, with K/M/G/T (powers of 1024) when sizes is set, or a duration
 * in whole seconds when secs is set. Returns 0 or -1. */
static int parse_limit(const char *s, int sizes, int secs, int64_t *out)
{
    if (!strcmp(s, "unlimited") || !strcmp(s, "none")) {
        *out = WORKER_LIMIT_OFF;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || errno) return -1;
    if (*end && secs) {
        int64_t ms;
        if (duration_parse(s, &ms) < 0 || ms < 0) return -1;
        v = ms == 0 ? 0 : ms < 1000 ? 1 : ms / 1000;
    } else if (*end && sizes) {
        static const char units[] = "kmgt";
        const char *u = *end ? strchr(units, *end | 0x20) : NULL;
        if (!u) return -1;
        int shift = 10 * (int)(u - units + 1);
        if (end[1] && strcmp(end + 1, "B") && strcmp(end + 1, "iB")) return -1;
        if (v > (INT64_MAX >> shift)) return -1;
        v <<= shift;
    } else if (*end) {
        return -1;
    }
    *out = v == 0 ? WORKER_LIMIT_OFF : (int64_t)v;
    return 0;
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
    enum {
        O_SERVER = 0x100,
        O_TOKEN,
        O_TOKEN_FILE,
        O_SLOTS,
        O_QUEUES,
        O_LABELS,
        O_NAME,
        O_GRACE,
        O_CA,
        O_LOG_FORMAT,
        O_RESULT_MAX,
        O_CHECKPOINT_MAX,
        O_PLUGIN_DIR,
        O_HTTP_ALLOW,
        O_PLUGIN_HANG,
    };
    /* job isolation */
    enum {
        O_RUN_AS = 0x200,
        O_ALLOW_ROOT,
        O_WORK_DIR,
        O_LIMIT_CPU,
        O_LIMIT_AS,
        O_LIMIT_NOFILE,
        O_LIMIT_NPROC,
    };
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"slots", required_argument, NULL, O_SLOTS},
        {"queues", required_argument, NULL, O_QUEUES},
        {"labels", required_argument, NULL, O_LABELS},
        {"name", required_argument, NULL, O_NAME},
        {"kill-grace", required_argument, NULL, O_GRACE},
        {"result-max", required_argument, NULL, O_RESULT_MAX},
        {"checkpoint-max", required_argument, NULL, O_CHECKPOINT_MAX},
        {"plugin-dir", required_argument, NULL, O_PLUGIN_DIR},
        {"http-allow", required_argument, NULL, O_HTTP_ALLOW},
        {"plugin-hang-timeout", required_argument, NULL, O_PLUGIN_HANG},
        /* job isolation */
        {"run-as", required_argument, NULL, O_RUN_AS},
        {"allow-root", no_argument, NULL, O_ALLOW_ROOT},
        {"work-dir", required_argument, NULL, O_WORK_DIR},
        {"limit-cpu", required_argument, NULL, O_LIMIT_CPU},
        {"limit-as", required_argument, NULL, O_LIMIT_AS},
        {"limit-nofile", required_argument, NULL, O_LIMIT_NOFILE},
        {"limit-nproc", required_argument, NULL, O_LIMIT_NPROC},
        {"ca", required_argument, NULL, O_CA},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    worker_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    const char *token_file = NULL, *token = NULL, *ca = NULL;
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
        case O_CA:
            ca = optarg;
            break;
        case O_PLUGIN_DIR:
            cfg.plugin_dir = optarg;
            break;
        case O_HTTP_ALLOW:
            cfg.http_allow = optarg;
            break;
        case O_PLUGIN_HANG:
            if (duration_parse(optarg, &cfg.plugin_hang_ms) < 0 || cfg.plugin_hang_ms < 100) {
                fprintf(stderr,
                        "sked worker: --plugin-hang-timeout: expected a duration of at least "
                        "100ms (e.g. 10s), not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_LOG_FORMAT: {
            enum log_format f;
            if (log_format_parse(optarg, &f) < 0) {
                fprintf(stderr, "sked worker: --log-format: expected text or json, got '%s'\n",
                        optarg);
                return 2;
            }
            log_set_format(f);
            break;
        }
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
        case O_RESULT_MAX:
        case O_CHECKPOINT_MAX: {
            int64_t *dst = c == O_RESULT_MAX ? &cfg.result_max_bytes : &cfg.checkpoint_max_bytes;
            if (parse_limit(optarg, 1, 0, dst) < 0 || *dst == WORKER_LIMIT_OFF ||
                *dst > RESULTS_MAX_BYTES) {
                fprintf(stderr,
                        "sked worker: %s: expected a size from 1 to 256K (K/M suffixes), "
                        "not '%s'\n",
                        c == O_RESULT_MAX ? "--result-max" : "--checkpoint-max", optarg);
                return 2;
            }
            break;
        }
        /* job isolation */
        case O_RUN_AS:
            cfg.run_as = optarg;
            break;
        case O_ALLOW_ROOT:
            cfg.allow_root = 1;
            break;
        case O_WORK_DIR:
            cfg.work_dir = optarg;
            break;
        case O_LIMIT_CPU:
        case O_LIMIT_AS:
        case O_LIMIT_NOFILE:
        case O_LIMIT_NPROC: {
            int64_t *dst = c == O_LIMIT_CPU      ? &cfg.limit_cpu_s
                           : c == O_LIMIT_AS     ? &cfg.limit_as_bytes
                           : c == O_LIMIT_NOFILE ? &cfg.limit_nofile
                                                 : &cfg.limit_nproc;
            if (parse_limit(optarg, c == O_LIMIT_AS, c == O_LIMIT_CPU, dst) < 0) {
                fprintf(stderr, "sked worker: %s: bad limit '%s' (a number%s, or 0/unlimited)\n",
                        c == O_LIMIT_CPU      ? "--limit-cpu"
                        : c == O_LIMIT_AS     ? "--limit-as"
                        : c == O_LIMIT_NOFILE ? "--limit-nofile"
                                              : "--limit-nproc",
                        optarg,
                        c == O_LIMIT_AS    ? " with K/M/G/T"
                        : c == O_LIMIT_CPU ? " of seconds or a duration"
                                           : "");
                return 2;
            }
            break;
        }
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
    if (!ca || !*ca) ca = getenv("SKED_CA");
    if (ca && *ca && access(ca, R_OK) != 0) {
        fprintf(stderr, "sked worker: cannot read the CA file '%s': %s\n", ca, strerror(errno));
        return 2;
    }
    /* The worker makes its HTTP clients on its own threads; they all start
     * from this default. */
    httpc_set_default_ca(ca);
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
    /* job isolation: a root worker must say whom jobs run as. */
    if (geteuid() == 0 && !(cfg.run_as && *cfg.run_as) && !cfg.allow_root) {
        fprintf(stderr, "sked worker: refusing to run jobs as root. Give --run-as USER[:GROUP] "
                        "(e.g. --run-as nobody) to run them as an unprivileged user, or "
                        "--allow-root if root is really meant.\n");
        free(file_token);
        return 2;
    }

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
