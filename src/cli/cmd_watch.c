/*
 * `sked watch`: prints the server's events (GET /v1/events) as they happen,
 * one line each, until interrupted (or --count events). When the stream
 * ends (a server restarts, the stream's lifetime is up, the network drops)
 * it reconnects after the last event it printed, so nothing is printed
 * twice or skipped; a resume point the server no longer has (410) ends it
 * with the server's explanation.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"

#define RECONNECT_MS 1000
#define RETRIES_MAX  30 /* failed reconnections in a row before giving up */

static const char watch_help[] =
    "usage: sked watch [--job JOB] [--type TYPES] [--after ID] [--count N]\n"
    "\n"
    "Print job, run and worker events as they happen, one line each: time, type,\n"
    "job, run, attempt, worker, detail. Reconnects by itself after the last event\n"
    "printed, so none is lost or printed twice.\n"
    "\n"
    "options:\n"
    "  --job JOB              only this job (id or name) and its runs\n"
    "  --type TYPES           comma-separated types (run.failed) or kinds (run)\n"
    "  --after ID             start after event ID (0 = every event kept) instead\n"
    "                         of now\n"
    "  --count N              exit after N events\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked watch --type run.failed,run.retrying\n"
    "  sked watch --job nightly-report -o json\n";

enum { OPT_JOB = 1000, OPT_TYPE, OPT_AFTER, OPT_COUNT };

struct watch {
    cli_t *c;
    const char *job, *types, *after;
    long long count; /* 0 = no limit */
    long long seen;
    int64_t last_id; /* -1 = none printed yet */
    buf_t in;        /* stream bytes not yet parsed */
    int gone;        /* stdout closed */
};

static int watch_opt(cli_t *c, void *arg, int opt, const char *val)
{
    struct watch *w = arg;
    long long v;
    switch (opt) {
    case OPT_JOB:
        w->job = val;
        return 1;
    case OPT_TYPE:
        w->types = val;
        return 1;
    case OPT_AFTER:
        if (cli_parse_int(val, 0, INT64_MAX, &v) < 0)
            return cli_usage_error(c, "--after must be an event id (a whole number >= 0)");
        w->after = val;
        return 1;
    case OPT_COUNT:
        if (cli_parse_int(val, 1, INT64_MAX, &w->count) < 0)
            return cli_usage_error(c, "--count must be a positive whole number");
        return 1;
    default:
        return 0;
    }
}

static void print_event(struct watch *w, const char *data)
{
    json_error_t err;
    json_t *e = json_loads(data, 0, &err);
    if (!e) return;
    if (w->c->json) {
        char *s = json_dumps(e, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
    } else {
        printf("%s  %-22s", cli_str(e, "time") ? cli_str(e, "time") : "-",
               cli_str(e, "type") ? cli_str(e, "type") : "-");
        static const char *const keys[] = {"job_id", "run_id", "worker_id"};
        static const char *const names[] = {"job", "run", "worker"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            if (cli_str(e, keys[i])) printf("  %s=%s", names[i], cli_str(e, keys[i]));
        json_t *a = json_object_get(e, "attempt");
        if (json_is_integer(a) && json_integer_value(a) > 0)
            printf("  attempt=%" JSON_INTEGER_FORMAT, json_integer_value(a));
        if (cli_str(e, "detail")) printf("  %s", cli_str(e, "detail"));
        printf("\n");
    }
    json_decref(e);
}

/* One event of the stream ("id: N\nevent: T\ndata: {...}"); comments and
 * the retry line are skipped. Returns 1 when --count is reached. */
static int take_event(struct watch *w, char *ev)
{
    const char *data = NULL;
    int64_t id = -1;
    for (char *line = ev; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (!strncmp(line, "id: ", 4))
            id = strtoll(line + 4, NULL, 10);
        else if (!strncmp(line, "data: ", 6))
            data = line + 6;
        line = nl ? nl + 1 : NULL;
    }
    if (!data || id < 0) return 0;
    print_event(w, data);
    w->last_id = id;
    w->seen++;
    return w->count > 0 && w->seen >= w->count;
}

static int sink(const char *data, size_t len, void *arg)
{
    struct watch *w = arg;
    buf_append(&w->in, data, len);
    size_t off = 0;
    for (;;) {
        char *start = w->in.data + off;
        char *end = strstr(start, "\n\n");
        if (!end) break;
        *end = 0;
        int done = take_event(w, start);
        off = (size_t)(end - w->in.data) + 2;
        if (done) {
            fflush(stdout);
            return -ECANCELED;
        }
    }
    if (fflush(stdout) != 0) {
        w->gone = 1;
        return -EPIPE;
    }
    /* Keep the unparsed tail. */
    size_t rest = w->in.len - off;
    memmove(w->in.data, w->in.data + off, rest);
    w->in.len = rest;
    w->in.data[rest] = 0;
    return 0;
}

int cmd_watch(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                             {"job", required_argument, NULL, OPT_JOB},
                                             {"type", required_argument, NULL, OPT_TYPE},
                                             {"after", required_argument, NULL, OPT_AFTER},
                                             {"count", required_argument, NULL, OPT_COUNT},
                                             {0}};
    cli_t c;
    struct watch w = {.last_id = -1, .in = BUF_INIT};
    char job_id[SKED_ID_LEN] = "";
    buf_t path = BUF_INIT;
    int first, rc;

    cli_init(&c, "watch");
    w.c = &c;
    rc = cli_parse(&c, argc, argv, longopts, "", 0, watch_opt, &w, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c.help) {
        fputs(watch_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(&c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
    if (w.job && cli_job_ref(&c, w.job, job_id) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    httpc_t *h = cli_client(&c);
    if (!h) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    for (int quiet = 0; quiet < RETRIES_MAX;) {
        long status = 0;
        int64_t before = w.seen;
        buf_reset(&path);
        buf_puts(&path, "/v1/events");
        cli_query_add(&path, "job", job_id[0] ? job_id : NULL);
        cli_query_add(&path, "type", w.types);
        char after[32];
        if (w.last_id >= 0) snprintf(after, sizeof after, "%" PRId64, w.last_id);
        cli_query_add(&path, "after", w.last_id >= 0 ? after : w.after);
        buf_reset(&w.in);
        int r = httpc_stream(h, path.data, sink, &w, &status);
        if (w.gone || (w.count > 0 && w.seen >= w.count)) {
            rc = CLI_EXIT_OK;
            goto out;
        }
        if (status >= 400) {
            char *msg = cli_error_text(status, w.in.data, w.in.len);
            fprintf(stderr, "sked: %s\n", msg);
            free(msg);
            goto out;
        }
        if (r < 0 && status == 0) {
            char *msg = cli_transport_text(cli_servers(&c), sked_strerror(r));
            fprintf(stderr, "sked: %s; reconnecting\n", msg);
            free(msg);
        }
        /* A stream that was served and ended (its lifetime, a server
         * restart) starts the count again; only failures in a row end it. */
        quiet = status == 200 || w.seen > before ? 0 : quiet + 1;
        struct timespec ts = {RECONNECT_MS / 1000, (RECONNECT_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "sked: gave up after %d failed reconnections\n", RETRIES_MAX);
out:
    buf_free(&w.in);
    buf_free(&path);
    cli_fini(&c);
    return rc;
}
