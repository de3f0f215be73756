/*
 * sked-idle-workers: many idle workers parked on one server (issue 13,
 * point 7). A waiting claim must cost the server a descriptor, not a
 * thread, and a new run must wake one waiting claim, not all of them.
 *
 *     sked-idle-workers [--workers N] [--runs K] [--seconds S] [--sked PATH]
 *
 * Starts `sked server` on a fresh SQLite file in a temporary directory on
 * 127.0.0.1, registers N simulated workers (default 5,000) through the API
 * and parks one claim per worker ({"max":1,"wait":"30s"}), each on its own
 * keep-alive connection, all driven by one thread with non-blocking
 * sockets and epoll. The simulated workers speak the worker protocol: a
 * claim answered with a run is confirmed (a heartbeat listing it
 * "started"), completed ("succeeded") and followed by the next claim; an
 * empty answer (the wait ran out) is followed by the next claim.
 *
 * Then it reads the server's threads and resident memory (/proc/PID/status)
 * before and after parking, and K times (default 200) submits one job that
 * runs now and measures:
 *
 *   - the wake latency: from sending the submit to a parked claim
 *     answering with the new run (so it includes the submit's durable
 *     commit, which the wake-up follows);
 *   - the herd: parked claims answered with a run per new run (1 is
 *     right), and waiting requests the server resumed per new run
 *     (GET /metrics, sked_http_waits_resumed_total by wake or pass; the
 *     run's confirmation and completion are store changes too, so a few is right, the
 *     number of parked claims is a thundering herd). Each new run is
 *     measured once every claim is parked again (sked_http_waiting).
 *
 * Every phase has a count and a deadline; the server is stopped by pid
 * (SIGTERM, then SIGKILL after 5 s), and gets SIGTERM should the bench die
 * first. A measurement, not a test: nothing is asserted, the exit status
 * says only whether the phases completed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"

#define REGISTER_INFLIGHT 64 /* registrations in flight at once */
#define IN_MAX            (1 << 20)
#define OUT_MAX           2048

enum cstate {
    C_NEW = 0,  /* not connected yet */
    C_IDLE,     /* connected, nothing in flight */
    C_REGISTER, /* POST /v1/workers sent */
    C_CLAIM,    /* a claim sent: parked, usually */
    C_CONFIRM,  /* heartbeat with "started" sent */
    C_COMPLETE, /* complete sent */
    C_ADMIN,    /* the admin connection, request in flight */
    C_DEAD      /* failed; left alone */
};

struct conn {
    int fd;
    enum cstate st;
    char wid[64];
    char run_id[64];
    long long fence;
    int attempt;
    char out[OUT_MAX];
    size_t outlen, outoff;
    char *in;
    size_t inlen;
};

static struct {
    int workers;
    int runs;
    double seconds;
    const char *sked;
} opt = {5000, 200, 20.0, NULL};

static struct conn *conns; /* opt.workers workers, then the admin connection */
static struct conn *admin;
static int ep = -1;
static struct sockaddr_in srv_addr;
static char token[128];

/* What the event loop saw. */
static int registered, reg_inflight, failures;
static long answered_runs, empty_answers, completed;
static double last_answer_at; /* monotonic s of the latest claim answered with a run */
static int admin_status;      /* of the admin request just answered; 0 = in flight */
static char *admin_body;      /* its body (owned) */

/* ---- connections ----------------------------------------------------------- */

static void conn_close(struct conn *c, const char *why)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    if (why) {
        if (failures++ < 5) fprintf(stderr, "idle-workers: a connection failed: %s\n", why);
        c->st = C_DEAD;
    }
}

static int conn_open(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&srv_addr, sizeof srv_addr) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void want_out(struct conn *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_out(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_out(c, true);
            return;
        }
        if (n <= 0) {
            conn_close(c, strerror(errno));
            return;
        }
        c->outoff += (size_t)n;
    }
    want_out(c, false);
}

/* Queues one request on c (whose previous answer has been read). */
static void send_req(struct conn *c, enum cstate st, const char *method, const char *path,
                     const char *body)
{
    if (c->fd < 0 && conn_open(c) < 0) {
        conn_close(c, "cannot connect");
        return;
    }
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(c->out, sizeof c->out,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "%sContent-Length: %zu\r\n\r\n%s",
                     method, path, token, body ? "Content-Type: application/json\r\n" : "", blen,
                     body ? body : "");
    if (n < 0 || (size_t)n >= sizeof c->out) {
        conn_close(c, "request too long");
        return;
    }
    c->outlen = (size_t)n;
    c->outoff = 0;
    c->st = st;
    flush_out(c);
}

static void send_claim(struct conn *c)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/workers/%s/claim", c->wid);
    send_req(c, C_CLAIM, "POST", path, "{\"max\":1,\"wait\":\"30s\"}");
}

static void start_register(struct conn *c, int i)
{
    char body[128];
    snprintf(body, sizeof body, "{\"name\":\"idle-%d\",\"slots\":1}", i);
    reg_inflight++;
    send_req(c, C_REGISTER, "POST", "/v1/workers", body);
}

/* A claim's answer: a run to confirm, or nothing (the wait ran out). */
static void on_claim(struct conn *c, const char *body)
{
    json_t *doc = json_loads(body, 0, NULL);
    json_t *runs = doc ? json_object_get(doc, "runs") : NULL;
    json_t *run = json_array_get(runs, 0);
    if (!run) {
        json_decref(doc);
        empty_answers++;
        send_claim(c);
        return;
    }
    answered_runs++;
    last_answer_at = bl_now_s();
    snprintf(c->run_id, sizeof c->run_id, "%s", json_string_value(json_object_get(run, "run_id")));
    c->fence = json_integer_value(json_object_get(run, "fence"));
    c->attempt = (int)json_integer_value(json_object_get(run, "attempt"));
    json_decref(doc);
    char path[128], hb[256];
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", c->wid);
    snprintf(hb, sizeof hb, "{\"runs\":[{\"run_id\":\"%s\",\"fence\":%lld,\"started\":true}]}",
             c->run_id, c->fence);
    send_req(c, C_CONFIRM, "POST", path, hb);
}

/* One whole answer on c: status and body (NUL-terminated). */
static void on_answer(struct conn *c, int status, const char *body)
{
    char path[160], msg[200];
    switch (c->st) {
    case C_REGISTER: {
        reg_inflight--;
        json_t *doc = json_loads(body, 0, NULL);
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (status != 201 || !id) {
            snprintf(msg, sizeof msg, "register answered %d: %.120s", status, body);
            json_decref(doc);
            conn_close(c, msg);
            return;
        }
        snprintf(c->wid, sizeof c->wid, "%s", id);
        json_decref(doc);
        registered++;
        c->st = C_IDLE;
        return;
    }
    case C_CLAIM:
        if (status != 200) break;
        on_claim(c, body);
        return;
    case C_CONFIRM:
        if (status != 200) break;
        snprintf(path, sizeof path, "/v1/runs/%s/attempts/%d/complete", c->run_id, c->attempt);
        snprintf(msg, sizeof msg, "{\"fence\":%lld,\"outcome\":\"succeeded\",\"exit_code\":0}",
                 c->fence);
        send_req(c, C_COMPLETE, "POST", path, msg);
        return;
    case C_COMPLETE:
        if (status != 200) break;
        completed++;
        send_claim(c);
        return;
    case C_ADMIN:
        admin_status = status ? status : -1;
        free(admin_body);
        admin_body = strdup(body);
        c->st = C_IDLE;
        return;
    default:
        break;
    }
    snprintf(msg, sizeof msg, "state %d answered %d: %.120s", (int)c->st, status, body);
    conn_close(c, msg);
}

/* Parses whole answers out of c->in (Content-Length framing: sked answers
 * plain requests with a length). */
static void parse_in(struct conn *c)
{
    for (;;) {
        if (!c->inlen) return;
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end) return;
        size_t hlen = (size_t)(end - c->in) + 4;
        int status = 0;
        sscanf(c->in, "HTTP/1.%*d %d", &status);
        long clen = -1;
        for (char *p = c->in; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
            if (*p == '\n') p++;
            if (!strncasecmp(p, "Content-Length:", 15)) clen = strtol(p + 15, NULL, 10);
        }
        if (clen < 0) {
            conn_close(c, "an answer without Content-Length");
            return;
        }
        if (c->inlen < hlen + (size_t)clen) return;
        char save = c->in[hlen + (size_t)clen];
        c->in[hlen + (size_t)clen] = '\0';
        on_answer(c, status, c->in + hlen);
        if (c->fd < 0) return;
        c->in[hlen + (size_t)clen] = save;
        size_t used = hlen + (size_t)clen;
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

static void on_readable(struct conn *c)
{
    for (;;) {
        if (c->inlen + 4096 + 1 > IN_MAX) {
            conn_close(c, "answer too long");
            return;
        }
        if (!c->in) c->in = malloc(IN_MAX);
        if (!c->in) abort();
        ssize_t n = recv(c->fd, c->in + c->inlen, IN_MAX - 1 - c->inlen, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            conn_close(c, n == 0 ? "the server closed the connection" : strerror(errno));
            return;
        }
        c->inlen += (size_t)n;
    }
    c->in[c->inlen] = '\0';
    parse_in(c);
}

/* Runs the event loop until done() or the deadline (monotonic s); true
 * when done() held. */
static bool pump(bool (*done)(void), double deadline)
{
    struct epoll_event evs[256];
    while (!done()) {
        int ms = (int)((deadline - bl_now_s()) * 1000.0);
        if (ms <= 0) return false;
        int n = epoll_wait(ep, evs, 256, ms > 50 ? 50 : ms);
        if (n < 0 && errno != EINTR) return false;
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (evs[i].events & EPOLLOUT) flush_out(c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                on_readable(c);
        }
    }
    return true;
}

static bool admin_done(void)
{
    return admin_status != 0 || admin->st == C_DEAD;
}

/* One admin request through the loop (the workers keep being served);
 * returns its status (0: none in time), the body in admin_body. */
static int admin_req(const char *method, const char *path, const char *body, double timeout_s)
{
    admin_status = 0;
    send_req(admin, C_ADMIN, method, path, body);
    if (!pump(admin_done, bl_now_s() + timeout_s)) return 0;
    return admin_status > 0 ? admin_status : 0;
}

/* The value of the sample `name` (labels included) in admin_body, a
 * /metrics exposition; -1 when absent. */
static double metric(const char *name)
{
    return bl_metric(admin_body, name);
}

struct figures {
    double waiting, resumed; /* sked_http_waiting; resumed by wake or pass */
};

static int read_metrics(struct figures *f)
{
    if (admin_req("GET", "/metrics", NULL, 10.0) != 200) return -1;
    f->waiting = metric("sked_http_waiting");
    double w = metric("sked_http_waits_resumed_total{by=\"wake\"}");
    double p = metric("sked_http_waits_resumed_total{by=\"pass\"}");
    f->resumed = (w > 0 ? w : 0) + (p > 0 ? p : 0);
    return f->waiting < 0 ? -1 : 0;
}

/* Waits until every live worker's claim is parked on the server. */
static int wait_parked(int live, double deadline, struct figures *f)
{
    while (bl_now_s() < deadline) {
        if (read_metrics(f) < 0) return -1;
        if (f->waiting >= live) return 0;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static long want_completed;

static bool completed_done(void)
{
    return completed >= want_completed;
}

static bool regs_done(void)
{
    return reg_inflight == 0;
}

static int count_live(void)
{
    int live = 0;
    for (int i = 0; i < opt.workers; i++)
        live += conns[i].st != C_DEAD;
    return live;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sked-idle-workers [--workers N] [--runs K] [--seconds S] [--sked PATH]\n"
               "Parks N idle workers' claims on one sked server (SQLite) and measures threads,\n"
               "memory, and the wake-up of one claim per new run (K runs, at most S seconds).\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, 'w'}, {"runs", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'}, {"sked", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    char sked_path[PATH_MAX];
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            opt.workers = atoi(optarg);
            break;
        case 'r':
            opt.runs = atoi(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'k':
            opt.sked = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (opt.workers < 1 || opt.workers > 100000 || opt.runs < 1 || opt.seconds <= 0) {
        usage(stderr);
        return 2;
    }
    if (!opt.sked) {
        /* The sked binary beside this one (both are built into build/). */
        ssize_t n = readlink("/proc/self/exe", sked_path, sizeof sked_path - 8);
        if (n <= 0) return 2;
        sked_path[n] = '\0';
        char *slash = strrchr(sked_path, '/');
        strcpy(slash ? slash + 1 : sked_path, "sked");
        opt.sked = sked_path;
    }

    /* Descriptors: one per worker here, and one per parked claim in the
     * server (which inherits the limit), plus room for everything else. */
    struct rlimit rl;
    rlim_t need = (rlim_t)opt.workers + 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
            fprintf(stderr, "idle-workers: the descriptor limit is %llu; %d workers need %llu\n",
                    (unsigned long long)rl.rlim_max, opt.workers, (unsigned long long)need);
            return 2;
        }
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl)) {
            perror("idle-workers: setrlimit");
            return 2;
        }
    }

    char tmp[] = "/tmp/sked-idle.XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("idle-workers: mkdtemp");
        return 1;
    }
    char store[600], tokfile[600], errlog[600], url[256], maxconn[32];
    snprintf(store, sizeof store, "sqlite:%s/sked.db", tmp);
    snprintf(tokfile, sizeof tokfile, "%s/admin.token", tmp);
    snprintf(errlog, sizeof errlog, "%s/server.log", tmp);
    snprintf(maxconn, sizeof maxconn, "%d", opt.workers + 256);
    /* One client address for every worker: no per-address cap; one token
     * generating all the load: no rate limit. */
    char *extra[] = {"--max-connections", maxconn, "--max-connections-per-ip", "0", NULL};
    int out = -1, rc = 1;
    pid_t pid = bl_start_server("idle-workers", opt.sked, store, tokfile, extra, errlog, &out, url,
                                sizeof url, token, sizeof token);
    if (pid < 0) goto done;
    const char *colon = strrchr(url, ':');
    srv_addr.sin_family = AF_INET;
    srv_addr.sin_port = htons((uint16_t)atoi(colon ? colon + 1 : "0"));
    srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)opt.workers + 1, sizeof *conns);
    if (ep < 0 || !conns) goto done;
    for (int i = 0; i <= opt.workers; i++)
        conns[i].fd = -1;
    admin = &conns[opt.workers];

    /* Register, REGISTER_INFLIGHT at a time (each is a durable write). */
    fprintf(stderr, "idle-workers: registering %d workers...\n", opt.workers);
    double t0 = bl_now_s(), deadline = t0 + 120.0;
    int next = 0;
    while (next < opt.workers && bl_now_s() < deadline) {
        while (next < opt.workers && reg_inflight < REGISTER_INFLIGHT) {
            start_register(&conns[next], next);
            next++;
        }
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (evs[i].events & EPOLLOUT) flush_out(c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                on_readable(c);
        }
    }
    pump(regs_done, deadline);
    double reg_s = bl_now_s() - t0;
    if (registered < opt.workers) {
        fprintf(stderr, "idle-workers: %d of %d workers registered\n", registered, opt.workers);
        goto done;
    }
    long th0, rss0, th1, rss1;
    struct figures f0, f1;
    if (read_metrics(&f0) < 0) {
        fprintf(stderr, "idle-workers: GET /metrics failed\n");
        goto done;
    }
    bl_proc_stats(pid, &th0, &rss0);

    /* Park one claim per worker. */
    fprintf(stderr, "idle-workers: parking %d claims...\n", opt.workers);
    t0 = bl_now_s();
    for (int i = 0; i < opt.workers; i++)
        send_claim(&conns[i]);
    if (wait_parked(count_live(), bl_now_s() + 60.0, &f1) < 0) {
        fprintf(stderr, "idle-workers: the claims did not all park in 60 s (%d failed)\n",
                failures);
        goto done;
    }
    double park_s = bl_now_s() - t0;
    bl_proc_stats(pid, &th1, &rss1);

    /* K new runs, one at a time, each once every claim is parked. */
    fprintf(stderr, "idle-workers: %d new runs...\n", opt.runs);
    double *lat = calloc((size_t)opt.runs, sizeof *lat);
    double *submit_ms = calloc((size_t)opt.runs, sizeof *submit_ms);
    long *answers = calloc((size_t)opt.runs, sizeof *answers);
    double *resumed = calloc((size_t)opt.runs, sizeof *resumed);
    if (!lat || !submit_ms || !answers || !resumed) abort();
    int done_runs = 0;
    deadline = bl_now_s() + opt.seconds;
    for (int i = 0; i < opt.runs && bl_now_s() < deadline; i++) {
        struct figures before, after;
        char body[160];
        long a0 = answered_runs, c0 = completed;
        if (wait_parked(count_live(), deadline, &before) < 0) break;
        snprintf(body, sizeof body, "{\"name\":\"idle-run-%d\",\"command\":[\"/bin/true\"]}", i);
        double ts = bl_now_s();
        int st = admin_req("POST", "/v1/jobs", body, 10.0);
        submit_ms[i] = (bl_now_s() - ts) * 1000.0;
        if (st != 201) {
            fprintf(stderr, "idle-workers: submit answered %d: %.200s\n", st,
                    admin_body ? admin_body : "");
            break;
        }
        /* The run answered to a parked claim, confirmed and completed. */
        want_completed = c0 + 1;
        if (!pump(completed_done, deadline)) break;
        lat[i] = (last_answer_at - ts) * 1000.0;
        if (wait_parked(count_live(), deadline, &after) < 0) break;
        answers[i] = answered_runs - a0;
        resumed[i] = after.resumed - before.resumed;
        done_runs++;
    }

    double *sorted = calloc((size_t)(done_runs ? done_runs : 1), sizeof *sorted);
    if (!sorted) abort();
    long amax = 0;
    double asum = 0, rmax = 0, rsum = 0;
    for (int i = 0; i < done_runs; i++) {
        amax = answers[i] > amax ? answers[i] : amax;
        asum += (double)answers[i];
        rmax = resumed[i] > rmax ? resumed[i] : rmax;
        rsum += resumed[i];
    }
    memcpy(sorted, lat, (size_t)done_runs * sizeof *sorted);
    qsort(sorted, (size_t)done_runs, sizeof *sorted, bl_cmp_double);
    double lp50 = bl_percentile(sorted, (size_t)done_runs, 0.50);
    double lp99 = bl_percentile(sorted, (size_t)done_runs, 0.99);
    memcpy(sorted, submit_ms, (size_t)done_runs * sizeof *sorted);
    qsort(sorted, (size_t)done_runs, sizeof *sorted, bl_cmp_double);
    double sp50 = bl_percentile(sorted, (size_t)done_runs, 0.50);
    double nr = done_runs ? (double)done_runs : 1;

    printf("\n### Many idle workers (SQLite, one server, %d parked claims)\n\n", opt.workers);
    printf("| measure | value | target |\n|---|---|---|\n");
    printf("| workers registered | %d in %.1f s | |\n", registered, reg_s);
    printf("| claims parked | %.0f in %.1f s | %d |\n", f1.waiting, park_s, opt.workers);
    printf("| server threads, before -> after parking | %ld -> %ld | no growth |\n", th0, th1);
    printf("| server RSS, before -> after parking | %.1f -> %.1f MiB (%.1f KiB per claim) | |\n",
           (double)rss0 / 1024.0, (double)rss1 / 1024.0,
           (double)(rss1 - rss0) / (double)opt.workers);
    printf("| new runs measured | %d of %d | |\n", done_runs, opt.runs);
    printf("| wake latency p50 / p99 (submit sent -> claim answered) | %.2f / %.2f ms | p99 <= 10 "
           "ms |\n",
           lp50, lp99);
    printf("| submit latency p50 (its durable commit) | %.2f ms | |\n", sp50);
    printf("| claims answered with a run, per new run: max / mean | %ld / %.2f | 1 |\n", amax,
           asum / nr);
    printf("| waiting requests resumed per new run (wake + pass): max / mean | %.0f / %.1f | "
           "about 2, not %d |\n",
           rmax, rsum / nr, opt.workers);
    printf("| empty answers (waits that ran out) | %ld | |\n", empty_answers);
    fflush(stdout);
    rc = done_runs == opt.runs && failures == 0 ? 0 : 1;
    if (done_runs < opt.runs)
        fprintf(stderr, "idle-workers: %d of %d runs measured in %.0f s\n", done_runs, opt.runs,
                opt.seconds);
    free(sorted);
    free(lat);
    free(submit_ms);
    free(answers);
    free(resumed);
done:
    if (conns)
        for (int i = 0; i <= opt.workers; i++) {
            if (conns[i].fd >= 0) close(conns[i].fd);
            free(conns[i].in);
        }
    free(conns);
    free(admin_body);
    if (ep >= 0) close(ep);
    if (out >= 0) close(out);
    bl_stop_proc(pid, "idle-workers");
    if (rc == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, "idle-workers: could not remove %s\n", tmp);
    } else {
        fprintf(stderr, "idle-workers: the server's log and store are kept in %s\n", tmp);
    }
    return rc;
}
