/*
 * sked-burst: a burst of work due in one second (issue 13, point 8): how
 * long until every run of it is claimed by a worker, and until every one
 * has succeeded.
 *
 *     sked-burst [--runs N] [--arrays K] [--slots N] [--lead S] [--seconds S]
 *                [--poll-ms MS] [--work-dir DIR] [--plugin-dir DIR] [--sked PATH]
 *
 * Starts `sked server` on a fresh SQLite file in a temporary directory on
 * 127.0.0.1 (--rate-limit off) and one `sked worker` with the noop plugin
 * (plugins/noop: no process per run) and --slots slots (default 256, as
 * sked-bench's noop phase). Then it submits K job arrays (default: as few
 * as hold them, 10 for the default N of 100,000; an array holds at most
 * 10,000) of N/K noop runs each,
 * all with the same `at` schedule: a whole second --lead seconds ahead
 * (default 5), so all N runs are due in the same second.
 *
 * While the burst goes, GET /metrics every --poll-ms (200 ms) (sked_queue_depth,
 * sked_runs_finished_total) says when no run is left scheduled or pending
 * (all claimed) and when all succeeded. Afterwards every run is read back
 * (GET /v1/runs?job_id=, 1,000 a page): its started_at (the claim) minus
 * the due time gives the exact time the last one was claimed, runs claimed
 * per second, and the fire lag p50 / p99 of the burst.
 *
 * Every wait has a deadline (--seconds); the processes are stopped by pid
 * (SIGTERM, then SIGKILL after 5 s) and get SIGTERM should the bench die
 * first. A measurement, not a test: nothing is asserted; the exit status
 * says whether the burst completed.
 */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"

#define ARRAY_MAX 10000 /* JOBSPEC_ARRAY_MAX */
#define WHO       "burst"

static struct {
    int runs, arrays, slots, poll_ms;
    double lead, seconds;
    const char *plugin_dir, *sked, *work_dir;
} opt = {100000, 0, 256, 200, 5.0, 120.0, NULL, NULL, NULL};

static char tmp[] = "/tmp/sked-burst.XXXXXX";
static char token[160], token_file[600];
static int port;

/* ---- processes --------------------------------------------------------------- */

static pid_t start_server(int *out)
{
    char store[600], errlog[600], url[256];
    snprintf(store, sizeof store, "sqlite:%s/sked.db", tmp);
    snprintf(token_file, sizeof token_file, "%s/admin.token", tmp);
    snprintf(errlog, sizeof errlog, "%s/server.log", tmp);
    pid_t pid = bl_start_server(WHO, opt.sked, store, token_file, NULL, errlog, out, url,
                                sizeof url, token, sizeof token);
    if (pid > 0) port = bl_url_port(url);
    return pid;
}

static pid_t start_worker(int *out)
{
    char url[64], errlog[600], work[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(errlog, sizeof errlog, "%s/worker.log", tmp);
    if (opt.work_dir)
        snprintf(work, sizeof work, "%s", opt.work_dir);
    else
        snprintf(work, sizeof work, "%s/work", tmp);
    return bl_start_worker(WHO, opt.sked, url, token_file, opt.slots, "burst", work, opt.plugin_dir,
                           errlog, out);
}

/* ---- times ------------------------------------------------------------------- */

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_ms(long long ms, char *dst, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(dst, len, "%s.%03lldZ", base, ms % 1000);
}

/* "2026-12-06T09:33:35.123Z" (the server's UTC form) -> ms; -1 otherwise. */
static long long parse_ms(const char *s)
{
    struct tm tm = {0};
    int ms = 0, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*p != 'Z') return -1;
    return (long long)timegm(&tm) * 1000 + ms;
}

/* ---- the burst ------------------------------------------------------------------- */

struct counts {
    double unclaimed; /* scheduled + pending */
    double created;   /* every run the store holds, open or finished */
    double succeeded, failed;
};

static int read_counts(bl_http_t *h, struct counts *c)
{
    if (bl_http(h, "GET", "/metrics", NULL, 10.0) != 200) return -1;
    const char *m = h->body;
    c->unclaimed = bl_metric_sum(m, "sked_queue_depth", "state=\"scheduled\"") +
                   bl_metric_sum(m, "sked_queue_depth", "state=\"pending\"");
    c->created = bl_metric_sum(m, "sked_queue_depth", NULL) +
                 bl_metric_sum(m, "sked_runs_finished_total", NULL);
    c->succeeded = bl_metric_sum(m, "sked_runs_finished_total", "state=\"succeeded\"");
    c->failed = bl_metric_sum(m, "sked_runs_finished_total", "state=\"failed\"") +
                bl_metric_sum(m, "sked_runs_finished_total", "state=\"canceled\"") +
                bl_metric_sum(m, "sked_runs_finished_total", "state=\"skipped\"");
    return 0;
}

/* Reads back every member run of job id: claim times (started_at) and
 * finish times, ms after due, appended to claims[] / ends[] (*n of cap). */
static int read_runs(bl_http_t *h, const char *id, long long due, double *claims, double *ends,
                     size_t *n, size_t cap)
{
    char cursor[256] = "";
    for (int page = 0; page < 1000; page++) {
        char path[512];
        snprintf(path, sizeof path, "/v1/runs?job_id=%s&limit=1000%s%s", id,
                 cursor[0] ? "&cursor=" : "", cursor);
        if (bl_http(h, "GET", path, NULL, 30.0) != 200) return -1;
        json_t *doc = json_loads(h->body, 0, NULL);
        json_t *items = json_object_get(doc, "items"), *run;
        size_t i;
        json_array_foreach(items, i, run)
        {
            if (json_is_null(json_object_get(run, "array_index")) || *n >= cap) continue;
            long long s = parse_ms(json_string_value(json_object_get(run, "started_at")));
            long long e = parse_ms(json_string_value(json_object_get(run, "finished_at")));
            claims[*n] = s < 0 ? -1 : (double)(s - due);
            ends[*n] = e < 0 ? -1 : (double)(e - due);
            (*n)++;
        }
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(doc);
        if (!cursor[0]) return 0;
    }
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sked-burst [--runs N] [--arrays K] [--slots N] [--lead S] [--seconds S]\n"
            "                  [--poll-ms MS] [--work-dir DIR] [--plugin-dir DIR] [--sked PATH]\n\n"
            "Starts sked server (SQLite) and one worker with the noop plugin on 127.0.0.1,\n"
            "submits K job arrays of N/K noop runs (N default 100000; K default: as few as\n"
            "hold them, at most 10000 an array) all due in the same second --lead (5)\n"
            "seconds ahead, and prints how long after that second the last run was claimed\n"
            "(target 20 s) and the last succeeded, runs claimed/s, the fire lag p50 / p99\n"
            "and the CPU per run of the server and the worker.\n\n"
            "  --slots N       the worker's slots (default 256)\n"
            "  --seconds S     how long after the due second the burst may take (120)\n"
            "  --poll-ms MS    how often GET /metrics is read meanwhile (200)\n"
            "  --work-dir DIR  the worker's --work-dir (default: in the bench's temporary\n"
            "                  directory); each attempt gets a directory there\n"
            "  --plugin-dir D  where noop.so is (default: plugins/ beside sked)\n"
            "  --sked PATH     the sked binary (default: sked beside this binary)\n\n"
            "Exits 0 when every run was claimed and succeeded in time, 1 otherwise.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"runs", required_argument, NULL, 'n'},
                                             {"arrays", required_argument, NULL, 'a'},
                                             {"slots", required_argument, NULL, 'w'},
                                             {"lead", required_argument, NULL, 'l'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"plugin-dir", required_argument, NULL, 'P'},
                                             {"sked", required_argument, NULL, 'k'},
                                             {"poll-ms", required_argument, NULL, 'p'},
                                             {"work-dir", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            opt.runs = atoi(optarg);
            break;
        case 'a':
            opt.arrays = atoi(optarg);
            break;
        case 'w':
            opt.slots = atoi(optarg);
            break;
        case 'l':
            opt.lead = atof(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'P':
            opt.plugin_dir = optarg;
            break;
        case 'k':
            opt.sked = optarg;
            break;
        case 'p':
            opt.poll_ms = atoi(optarg);
            break;
        case 'd':
            opt.work_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!opt.arrays && opt.runs > 0) opt.arrays = (opt.runs + ARRAY_MAX - 1) / ARRAY_MAX;
    if (optind < argc || opt.runs < 1 || opt.arrays < 1 || opt.arrays > opt.runs ||
        (opt.runs + opt.arrays - 1) / opt.arrays > ARRAY_MAX || opt.slots < 1 || opt.slots > 4096 ||
        opt.poll_ms < 10 || opt.poll_ms > 10000 || opt.lead < 1 || opt.lead > 600 ||
        opt.seconds <= 0) {
        if (opt.arrays >= 1 && (opt.runs + opt.arrays - 1) / opt.arrays > ARRAY_MAX)
            fprintf(stderr, WHO ": an array holds at most %d runs: give --arrays %d or more\n",
                    ARRAY_MAX, (opt.runs + ARRAY_MAX - 1) / ARRAY_MAX);
        usage(stderr);
        return 2;
    }
    char sked[PATH_MAX], plugin_dir[PATH_MAX];
    if (!opt.sked) {
        if (bl_beside_self("sked", sked, sizeof sked)) return 2;
        opt.sked = sked;
    }
    if (!opt.plugin_dir) {
        snprintf(plugin_dir, sizeof plugin_dir, "%s", opt.sked);
        char *slash = strrchr(plugin_dir, '/');
        snprintf(slash ? slash + 1 : plugin_dir,
                 sizeof plugin_dir - (size_t)(slash ? slash + 1 - plugin_dir : 0), "plugins");
        opt.plugin_dir = plugin_dir;
    }
    if (!mkdtemp(tmp)) {
        perror(WHO ": mkdtemp");
        return 1;
    }

    int sout = -1, wout = -1, rc = 1;
    pid_t server = -1, worker = -1;
    bl_http_t h;
    bl_http_init(&h, 0, "");
    char(*ids)[64] = calloc((size_t)opt.arrays, sizeof *ids);
    double *claims = calloc((size_t)opt.runs, sizeof *claims);
    double *ends = calloc((size_t)opt.runs, sizeof *ends);
    if (!ids || !claims || !ends) abort();

    if ((server = start_server(&sout)) < 0) goto done;
    bl_http_init(&h, port, token);
    if ((worker = start_worker(&wout)) < 0) goto done;

    /* The due second: a whole one, at least --lead ahead. */
    long long due = (wall_ms() + (long long)(opt.lead * 1000.0) + 999) / 1000 * 1000;
    char at[64];
    format_ms(due, at, sizeof at);
    struct counts base;
    if (read_counts(&h, &base)) goto done;
    fprintf(stderr, WHO ": %d arrays, %d noop runs in all, due at %s...\n", opt.arrays, opt.runs,
            at);
    double s_cpu0 = bl_tree_cpu_s(server, NULL), w_cpu0 = bl_tree_cpu_s(worker, NULL);
    double t_submit = bl_now_s();
    for (int i = 0; i < opt.arrays; i++) {
        char body[512];
        int count = opt.runs / opt.arrays + (i < opt.runs % opt.arrays);
        snprintf(body, sizeof body,
                 "{\"name\":\"burst-%d\",\"type\":\"noop\",\"array\":{\"count\":%d},"
                 "\"schedules\":[{\"at\":\"%s\"}]}",
                 i, count, at);
        int st = bl_http(&h, "POST", "/v1/jobs", body, 30.0);
        json_t *doc = st == 201 ? json_loads(h.body, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (!id) {
            fprintf(stderr, WHO ": submit answered %d: %.300s\n", st, h.body ? h.body : "");
            json_decref(doc);
            goto done;
        }
        snprintf(ids[i], sizeof ids[i], "%s", id);
        json_decref(doc);
    }
    double submit_s = bl_now_s() - t_submit;
    if (wall_ms() >= due)
        fprintf(stderr, WHO ": the submits ended after the due second; give a longer --lead\n");

    /* Watch the burst: all claimed (none scheduled or pending once every
     * run exists), then all ended. */
    long long want = (long long)opt.runs + opt.arrays; /* the members and their array runs */
    double claimed_at = -1, done_at = -1;              /* ms after due, from the polls */
    struct counts c = {0};
    double deadline = bl_now_s() + (double)(due - wall_ms()) / 1000.0 + opt.seconds;
    while (bl_now_s() < deadline) {
        if (read_counts(&h, &c) == 0) {
            long long now = wall_ms();
            if (claimed_at < 0 && now >= due && c.created - base.created >= (double)want &&
                c.unclaimed == 0)
                claimed_at = (double)(now - due);
            if (c.succeeded + c.failed - base.succeeded - base.failed >= (double)want) {
                done_at = (double)(now - due);
                break;
            }
        }
        bl_sleep_ms(opt.poll_ms);
    }
    double s_cpu = bl_tree_cpu_s(server, NULL) - s_cpu0,
           w_cpu = bl_tree_cpu_s(worker, NULL) - w_cpu0;
    if (done_at < 0) {
        fprintf(stderr, WHO ": the burst did not end within %.0f s of its due second\n",
                opt.seconds);
        goto report;
    }

    /* Every run read back: the exact times. */
    fprintf(stderr, WHO ": reading back %d runs...\n", opt.runs);
report:;
    size_t n = 0;
    for (int i = 0; i < opt.arrays; i++)
        if (read_runs(&h, ids[i], due, claims, ends, &n, (size_t)opt.runs)) {
            /* A server that does not answer one page would not answer the
             * next ones either: no more 30 s waits. */
            fprintf(stderr, WHO ": could not read back the runs of %s; stopped reading\n", ids[i]);
            break;
        }
    size_t nc = 0, ne = 0;
    double last_claim = -1, last_end = -1;
    for (size_t i = 0; i < n; i++) {
        if (claims[i] >= 0) claims[nc++] = claims[i];
        if (ends[i] >= 0) ends[ne++] = ends[i];
    }
    qsort(claims, nc, sizeof *claims, bl_cmp_double);
    qsort(ends, ne, sizeof *ends, bl_cmp_double);
    if (nc) last_claim = claims[nc - 1];
    if (ne) last_end = ends[ne - 1];
    double first_claim = nc ? claims[0] : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    printf("\n### A burst: %d noop plugin runs due in the same second (SQLite, one server, one "
           "worker of %d slots, %ld cores)\n\n",
           opt.runs, opt.slots, ncpu);
    printf("| measure | value | target |\n|---|---|---|\n");
    printf("| submitted | %d job arrays of %d in %.2f s, due %.1f s later | |\n", opt.arrays,
           opt.runs / opt.arrays, submit_s, opt.lead);
    printf("| runs read back: claimed / finished | %zu / %zu of %d | |\n", nc, ne, opt.runs);
    printf("| due second -> last run claimed (its started_at) | %.2f s%s | <= 20 s |\n",
           last_claim / 1000.0, nc == (size_t)opt.runs ? "" : " — NOT ALL CLAIMED");
    printf("| claims per second (first claim to last) | %.0f /s | |\n",
           last_claim > first_claim ? (double)nc / ((last_claim - first_claim) / 1000.0) : 0.0);
    printf("| fire lag (due -> claimed) p50 / p99 / first | %.2f / %.2f / %.3f s | |\n",
           bl_percentile(claims, nc, 0.50) / 1000.0, bl_percentile(claims, nc, 0.99) / 1000.0,
           first_claim / 1000.0);
    printf("| due second -> last run succeeded (finished_at) | %.2f s | |\n", last_end / 1000.0);
    char seen[2][32];
    snprintf(seen[0], sizeof seen[0], claimed_at < 0 ? "not seen" : "%.1f s", claimed_at / 1000.0);
    snprintf(seen[1], sizeof seen[1], done_at < 0 ? "not seen" : "%.1f s", done_at / 1000.0);
    printf("| seen by /metrics every %d ms: all claimed / all ended | %s / %s after due | |\n",
           opt.poll_ms, seen[0], seen[1]);
    printf("| CPU per run, server / worker (its tree: plugin host too) | %.0f / %.0f µs | |\n",
           1e6 * s_cpu / opt.runs, 1e6 * w_cpu / opt.runs);
    printf("| runs failed, canceled or skipped | %.0f | 0 |\n", c.failed - base.failed);
    fflush(stdout);
    rc = done_at >= 0 && nc == (size_t)opt.runs && c.failed == base.failed ? 0 : 1;
done:
    bl_http_fini(&h);
    bl_stop_proc(worker, WHO);
    bl_stop_proc(server, WHO);
    if (wout >= 0) close(wout);
    if (sout >= 0) close(sout);
    free(ids);
    free(claims);
    free(ends);
    if (rc == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, WHO ": could not remove %s\n", tmp);
    } else {
        fprintf(stderr, WHO ": the logs and store are kept in %s\n", tmp);
    }
    return rc;
}
