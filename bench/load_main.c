/*
 * sked-load: an HTTP load generator for a sked server (or any plain-http
 * server), on bench/loadgen.c: one thread, epoll, keep-alive connections,
 * closed or open loop, latency percentiles and the client's own CPU per
 * request, printed as a markdown table (or one JSON object with --json).
 *
 *     sked-load http://127.0.0.1:8080 --token T --connections 32 --seconds 5
 *     sked-load http://127.0.0.1:8080 --token T --rate 5000 --seconds 10
 *
 * By default each request is POST /v1/jobs with a job that fires in 2099
 * (so nothing runs), named load-RUN-N: RUN is unique to the invocation and
 * N counts the requests, so every submit creates a new job.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "loadgen.h"

#define DEFAULT_BODY                                                                               \
    "{\"name\":\"load-{run}-{n}\",\"command\":[\"/bin/true\"],"                                    \
    "\"schedules\":[{\"at\":\"2099-01-01T00:00:00Z\"}]}"

static const char usage[] =
    "usage: sked-load URL [URL...] [options]\n"
    "\n"
    "Sends HTTP/1.1 requests to URL (http://HOST:PORT, plain http only; with\n"
    "several URLs, connection i goes to the i-th modulo their number) over\n"
    "keep-alive connections from one thread, and prints a markdown table of\n"
    "the answers: counts by status class, errors, throughput, latency\n"
    "percentiles, and the client's own CPU time per request.\n"
    "\n"
    "  --token T          send Authorization: Bearer T\n"
    "  --token-file F     ... with T read from the first line of F\n"
    "  --connections N    keep-alive connections, at most (default 32)\n"
    "  --seconds S        the sending window (default 5)\n"
    "  --requests K       stop after K requests, or at the end of the window if\n"
    "                     that comes first (default: the window only)\n"
    "  --rate R           open loop: R requests/s, evenly spaced; latency counts\n"
    "                     from each request's scheduled time, so a stall of the\n"
    "                     server is not hidden (default: closed loop, each\n"
    "                     connection sends its next request once answered)\n"
    "  --method M         default POST (GET when --body is empty)\n"
    "  --path P           default /v1/jobs (or URL's path)\n"
    "  --body TEMPLATE    the body; {n} becomes the request's number (0, 1, ...)\n"
    "                     and {run} a token unique to this invocation; default a\n"
    "                     job firing in 2099 named load-{run}-{n}\n"
    "  --header 'K: V'    an extra header (repeatable)\n"
    "  --timeout S        per request, and the drain after the window (default 10)\n"
    "  --json             one JSON object instead of the table\n"
    "  --help             this text\n"
    "\n"
    "Exit status: 0 when requests were issued and every one got a 2xx answer,\n"
    "1 otherwise, 2 when the run could not start.\n";

/* The body template, cut at its placeholders. */
struct seg {
    const char *s;
    size_t len;
    int var; /* 0 literal, 1 {n}, 2 {run} */
};

static struct {
    struct seg *segs;
    int nsegs;
    char run[32];
    const char *method, *path;
    char *headers;
    char *body;
    size_t body_cap;
} req;

static void compile_template(const char *t)
{
    req.segs = xcalloc(strlen(t) + 1, sizeof *req.segs);
    const char *lit = t;
    for (const char *p = t; *p;) {
        int var = !strncmp(p, "{n}", 3) ? 1 : !strncmp(p, "{run}", 5) ? 2 : 0;
        if (!var) {
            p++;
            continue;
        }
        if (p > lit) req.segs[req.nsegs++] = (struct seg){lit, (size_t)(p - lit), 0};
        req.segs[req.nsegs++] = (struct seg){NULL, 0, var};
        p += var == 1 ? 3 : 5;
        lit = p;
    }
    if (*lit) req.segs[req.nsegs++] = (struct seg){lit, strlen(lit), 0};
}

static void body_put(size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > req.body_cap) {
        req.body_cap = (*len + n + 1) * 2;
        req.body = xrealloc(req.body, req.body_cap);
    }
    memcpy(req.body + *len, s, n);
    *len += n;
}

static int build(void *arg, uint64_t n, loadgen_req_t *out)
{
    (void)arg;
    size_t len = 0;
    for (int i = 0; i < req.nsegs; i++) {
        const struct seg *s = &req.segs[i];
        if (s->var == 1) {
            char num[24];
            int k = snprintf(num, sizeof num, "%" PRIu64, n);
            body_put(&len, num, (size_t)k);
        } else if (s->var == 2) {
            body_put(&len, req.run, strlen(req.run));
        } else {
            body_put(&len, s->s, s->len);
        }
    }
    out->method = req.method;
    out->path = req.path;
    out->headers = req.headers;
    out->body = req.body;
    out->body_len = len;
    return 0;
}

/* http://host[:port][/path] -> host, port, path ("" when none). */
static int parse_url(const char *url, char *host, size_t hostlen, int *port, const char **path)
{
    if (strncmp(url, "http://", 7)) return -1;
    const char *h = url + 7, *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') { /* [v6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) return -1;
        if ((size_t)(rb - h - 1) >= hostlen) return -1;
        memcpy(host, h + 1, (size_t)(rb - h - 1));
        host[rb - h - 1] = '\0';
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *he = colon ? colon : end;
        if (he == h || (size_t)(he - h) >= hostlen) return -1;
        memcpy(host, h, (size_t)(he - h));
        host[he - h] = '\0';
    }
    *port = 80;
    if (colon) {
        char *e;
        long p = strtol(colon + 1, &e, 10);
        if (e != end || p < 1 || p > 65535) return -1;
        *port = (int)p;
    }
    *path = end;
    return 0;
}

static char *read_token(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) return NULL;
    char line[512];
    char *t = fgets(line, sizeof line, f) ? xstrdup(line) : NULL;
    fclose(f);
    if (t) t[strcspn(t, "\r\n")] = '\0';
    return t;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_json(const loadgen_result_t *r, int conns, double seconds, double rate)
{
    printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%.3f,\"rate_target\":%.3f,",
           rate > 0 ? "open" : "closed", conns, seconds, rate);
    printf("\"run\":");
    json_str(req.run);
    printf(",\"issued\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
           ",\"status_2xx\":%" PRIu64 ",\"status_3xx\":%" PRIu64 ",\"status_4xx\":%" PRIu64
           ",\"status_5xx\":%" PRIu64 ",\"status_other\":%" PRIu64,
           r->issued, r->sent, r->answered, r->status[2], r->status[3], r->status[4], r->status[5],
           r->status[0]);
    printf(",\"err_connect\":%" PRIu64 ",\"err_closed\":%" PRIu64 ",\"err_timeout\":%" PRIu64
           ",\"err_protocol\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"connects\":%" PRIu64
           ",\"connect_failed\":%" PRIu64 ",\"max_queue\":%" PRIu64,
           r->err_connect, r->err_closed, r->err_timeout, r->err_protocol, r->unsent, r->connects,
           r->connect_failed, r->max_queue);
    printf(",\"elapsed_s\":%.6f,\"rate\":%.3f,\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f"
           ",\"cpu_us_per_req\":%.3f,\"lat_mean_ms\":%.4f",
           r->elapsed_s, r->rate, r->cpu_user_s, r->cpu_sys_s, r->cpu_us_per_req, r->lat_mean_ms);
    static const char *const names[LOADGEN_NPCT] = {"p50", "p90", "p95", "p99", "p999", "max"};
    for (int i = 0; i < LOADGEN_NPCT; i++)
        printf(",\"%s_ms\":%.4f", names[i], r->lat_ms[i]);
    printf(",\"first_bad_status\":%d,\"first_bad_body\":", r->first_bad_status);
    json_str(r->first_bad_body);
    printf("}\n");
}

static void print_table(const loadgen_result_t *r, const char *url, int nurls, int conns,
                        double seconds, double rate)
{
    uint64_t errors = r->err_connect + r->err_closed + r->err_timeout + r->err_protocol + r->unsent;
    printf("| sked-load: %s %s on %s", req.method, req.path, url);
    if (nurls > 1) printf(" and %d more", nurls - 1);
    printf(" | |\n|---|---:|\n");
    if (rate > 0)
        printf("| mode | open loop, %.0f requests/s, up to %d connections, %.1f s |\n", rate, conns,
               seconds);
    else
        printf("| mode | closed loop, %d connections, %.1f s |\n", conns, seconds);
    printf("| requests issued | %" PRIu64 " |\n", r->issued);
    printf("| answers 2xx / 3xx / 4xx / 5xx / other | %" PRIu64 " / %" PRIu64 " / %" PRIu64
           " / %" PRIu64 " / %" PRIu64 " |\n",
           r->status[2], r->status[3], r->status[4], r->status[5], r->status[0]);
    printf("| errors (connect / closed / timeout / protocol / unsent) | %" PRIu64 " (%" PRIu64
           " / %" PRIu64 " / %" PRIu64 " / %" PRIu64 " / %" PRIu64 ") |\n",
           errors, r->err_connect, r->err_closed, r->err_timeout, r->err_protocol, r->unsent);
    printf("| connections opened (failed) | %" PRIu64 " (%" PRIu64 ") |\n", r->connects,
           r->connect_failed);
    if (rate > 0)
        printf("| most requests waiting for a connection | %" PRIu64 " |\n", r->max_queue);
    printf("| throughput (answers) | %.0f /s over %.2f s |\n", r->rate, r->elapsed_s);
    static const char *const names[LOADGEN_NPCT] = {"p50", "p90", "p95", "p99", "p99.9", "max"};
    printf("| latency%s mean | %.3f ms |\n", rate > 0 ? " (from the scheduled time)" : "",
           r->lat_mean_ms);
    for (int i = 0; i < LOADGEN_NPCT; i++)
        printf("| latency %s | %.3f ms |\n", names[i], r->lat_ms[i]);
    printf("| client CPU per request (user + sys) | %.1f us (%.2f s + %.2f s) |\n",
           r->cpu_us_per_req, r->cpu_user_s, r->cpu_sys_s);
    if (r->first_bad_status)
        fprintf(stderr, "sked-load: first answer outside 2xx: %d %s\n", r->first_bad_status,
                r->first_bad_body);
}

int main(int argc, char **argv)
{
    enum {
        O_TOKEN = 256,
        O_TOKEN_FILE,
        O_CONNS,
        O_SECONDS,
        O_REQUESTS,
        O_RATE,
        O_METHOD,
        O_PATH,
        O_BODY,
        O_HEADER,
        O_TIMEOUT,
        O_JSON,
        O_HELP
    };
    static const struct option longopts[] = {
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"connections", required_argument, NULL, O_CONNS},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"requests", required_argument, NULL, O_REQUESTS},
        {"rate", required_argument, NULL, O_RATE},
        {"method", required_argument, NULL, O_METHOD},
        {"path", required_argument, NULL, O_PATH},
        {"body", required_argument, NULL, O_BODY},
        {"header", required_argument, NULL, O_HEADER},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char *token = NULL;
    const char *body = NULL, *method = NULL, *path = NULL;
    int conns = 32, json = 0;
    double seconds = 5.0, rate = 0, timeout = 10.0;
    uint64_t requests = 0;
    size_t hlen = 0;
    char *extra = xstrdup("");
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *e = NULL;
        errno = 0;
        switch (c) {
        case O_TOKEN:
            free(token);
            token = xstrdup(optarg);
            break;
        case O_TOKEN_FILE:
            free(token);
            if (!(token = read_token(optarg))) {
                fprintf(stderr, "sked-load: cannot read a token from %s\n", optarg);
                return 2;
            }
            break;
        case O_CONNS:
            conns = (int)strtol(optarg, &e, 10);
            if (*e || conns < 1 || conns > 100000) goto bad;
            break;
        case O_SECONDS:
            seconds = strtod(optarg, &e);
            if (*e || !(seconds > 0) || seconds > 86400) goto bad;
            break;
        case O_REQUESTS:
            requests = strtoull(optarg, &e, 10);
            if (*e || errno || !requests) goto bad;
            break;
        case O_RATE:
            rate = strtod(optarg, &e);
            if (*e || !(rate > 0) || rate > 1e7) goto bad;
            break;
        case O_TIMEOUT:
            timeout = strtod(optarg, &e);
            if (*e || !(timeout > 0) || timeout > 3600) goto bad;
            break;
        case O_METHOD:
            method = optarg;
            break;
        case O_PATH:
            path = optarg;
            break;
        case O_BODY:
            body = optarg;
            break;
        case O_HEADER: {
            if (!strchr(optarg, ':') || strpbrk(optarg, "\r\n")) goto bad;
            size_t n = strlen(optarg);
            extra = xrealloc(extra, hlen + n + 3);
            memcpy(extra + hlen, optarg, n);
            memcpy(extra + hlen + n, "\r\n", 3);
            hlen += n + 2;
            break;
        }
        case O_JSON:
            json = 1;
            break;
        case O_HELP:
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "sked-load: bad value for --%s: %s\n", longopts[c - O_TOKEN].name, optarg);
        return 2;
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    int nt = argc - optind;
    const char *url = argv[optind], *url_path = "";
    loadgen_target_t *targets = xcalloc((size_t)nt, sizeof *targets);
    char(*hosts)[256] = xcalloc((size_t)nt, sizeof *hosts);
    for (int i = 0; i < nt; i++) {
        const char *p;
        if (parse_url(argv[optind + i], hosts[i], sizeof hosts[i], &targets[i].port, &p)) {
            fprintf(stderr, "sked-load: not an http://HOST:PORT URL: %s\n", argv[optind + i]);
            return 2;
        }
        targets[i].host = hosts[i];
        if (!i) url_path = p;
    }
    if (!path) path = *url_path && strcmp(url_path, "/") ? url_path : "/v1/jobs";
    if (!body && (!method || !strcmp(method, "POST"))) body = DEFAULT_BODY;
    if (body && !*body) body = NULL;
    if (!method) method = body ? "POST" : "GET";

    snprintf(req.run, sizeof req.run, "%lx%lx", (long)getpid(), (long)time(NULL));
    req.method = method;
    req.path = path;
    req.headers =
        xasprintf("%s%s%s%s%s", token ? "Authorization: Bearer " : "", token ? token : "",
                  token ? "\r\n" : "", body ? "Content-Type: application/json\r\n" : "", extra);
    compile_template(body ? body : "");

    loadgen_opts_t o = {
        .targets = targets,
        .ntargets = nt,
        .connections = conns,
        .seconds = seconds,
        .requests = requests,
        .rate = rate,
        .timeout_s = timeout,
        .build = build,
    };
    loadgen_result_t r;
    int rc = loadgen_run(&o, &r);
    if (rc) {
        fprintf(stderr, "sked-load: cannot run against %s: %s\n", url, strerror(-rc));
        return 2;
    }
    if (json)
        print_json(&r, conns, seconds, rate);
    else
        print_table(&r, url, nt, conns, seconds, rate);
    free(token);
    free(extra);
    free(req.headers);
    free(req.body);
    free(req.segs);
    free(targets);
    free(hosts);
    return r.issued && r.status[2] == r.issued ? 0 : 1;
}
