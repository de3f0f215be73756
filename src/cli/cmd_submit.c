/*
 * `sked submit`: turns a command line into a job document, POSTs it to
 * /v1/jobs and prints the new job; with --wait it then follows the job's
 * first run to its end and exits with its outcome, so scripts can treat a
 * submitted job like a local command. Parsing (cli_submit_parse) is kept
 * apart from the I/O so unit tests can check the document it builds.
 */
#include "cli/cli.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_IDEM = CLI_OPT_CMD_BASE, OPT_WAIT, OPT_TYPE, OPT_CONFIG };

static const char help_text[] =
    "usage: sked submit [OPTIONS] [--] CMD [ARGS...]\n"
    "       sked submit --type TYPE [--config JSON|@FILE] [OPTIONS]\n"
    "\n"
    "Submit a job that runs CMD with ARGS (no shell) on a worker. Without a\n"
    "schedule it runs once, now. Prints the new job (id, name, next fire).\n"
    "Options end at CMD; put -- before CMD when it starts with '-'.\n"
    "With --type, the job is of another type than shell: http, or a plugin's\n"
    "(sked plugins ls), given its config instead of a command\n"
    "(docs/plugins.md, docs/http-jobs.md).\n"
    "\n"
    "type:\n"
    "  --type TYPE            the job type: shell (default), http, or a plugin's\n"
    "  --config JSON|@FILE    the type's config: a JSON object, or @ and a JSON or\n"
    "                         YAML file holding one\n"
    "\n"
    "schedule (at most one):\n" CLI_SCHED_HELP "\n"
    "job:\n" CLI_JOB_HELP
    "  --idempotency-key K    a repeat with the same key creates nothing and\n"
    "                         answers the first job\n"
    "  --wait                 wait for the first run to end and exit as it did:\n"
    "                         its exit code, 128+N if killed by signal N, 1 if it\n"
    "                         ended without one (canceled, lost, skipped)\n"
    "  -q, --quiet            print only the job id\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked submit -- /usr/bin/backup --full\n"
    "  sked submit --cron '0 2 * * *' --tz Europe/Berlin --name nightly -- ./report.sh\n"
    "  sked submit --every 15m --retries 3 --timeout 5m -- curl -fsS https://example.com\n"
    "  sked submit --wait -q -- make test\n"
    "  sked submit --type http --config '{\"url\": \"https://example.com/ping\"}' --every 1m\n"
    "  sked submit --type checksum --config @verify.yaml --cron '30 3 * * *'\n";

typedef struct parse_ctx {
    cli_submit_req_t *req;
    cli_sched_t sched;
    const char *type, *config; /* --type, --config as given */
} parse_ctx_t;

static int on_opt(cli_t *c, void *arg, int opt, const char *val)
{
    parse_ctx_t *p = arg;
    char err[256];
    int r;

    if (cli_sched_opt(&p->sched, opt, val)) return 1;
    r = cli_job_opt(p->req->doc, opt, val, err, sizeof err);
    if (r < 0) {
        cli_usage_error(c, "%s", err);
        return r;
    }
    if (r) return 1;
    switch (opt) {
    case OPT_IDEM:
        p->req->idem_key = val;
        return 1;
    case OPT_WAIT:
        p->req->wait = 1;
        return 1;
    case OPT_TYPE:
        p->type = val;
        return 1;
    case OPT_CONFIG:
        p->config = val;
        return 1;
    case 'q':
        p->req->quiet = 1;
        return 1;
    default:
        return 0;
    }
}

/* "backup.sh-k3f9q2": the command's basename and six random characters, so
 * that submitting the same command twice does not collide on the name. */
static char *default_name(const char *cmd)
{
    char id[SKED_ID_LEN];
    const char *base = strrchr(cmd, '/');
    base = base && base[1] ? base + 1 : cmd;
    id_new("n", clock_now_ms(), id);
    /* The last characters of an id are its random part. */
    char *suffix = id + strlen(id) - 6;
    for (char *s = suffix; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    /* Names are capped at 200 bytes; keep room for the suffix. */
    return xasprintf("%.180s-%s", *base ? base : "job", suffix);
}

int cli_submit_parse(cli_t *c, int argc, char **argv, cli_submit_req_t *req)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        CLI_SCHED_LONGOPTS,
        CLI_JOB_LONGOPTS,
        {"idempotency-key", required_argument, NULL, OPT_IDEM},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"quiet", no_argument, NULL, 'q'},
        {"type", required_argument, NULL, OPT_TYPE},
        {"config", required_argument, NULL, OPT_CONFIG},
        {0},
    };
    parse_ctx_t p = {.req = req};
    json_t *cmd = NULL, *schedules = NULL;
    char err[256];
    int first = 0, rc;

    memset(req, 0, sizeof *req);
    req->doc = json_object();
    rc = cli_parse(c, argc, argv, longopts, "q", 1, on_opt, &p, &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    bool shell = !p.type || !strcmp(p.type, "shell");
    if (p.type) json_object_set_new(req->doc, "type", json_string(p.type));
    if (p.config) {
        json_t *cfg = NULL;
        if (p.config[0] == '@') {
            if ((rc = cli_read_doc(c, p.config + 1, &cfg)) != CLI_EXIT_OK) goto out;
        } else {
            json_error_t je;
            if (!(cfg = json_loads(p.config, 0, &je))) {
                rc = cli_usage_error(c, "--config: not JSON: %s (line %d, column %d)", je.text,
                                     je.line, je.column);
                goto out;
            }
        }
        if (!json_is_object(cfg)) {
            json_decref(cfg);
            rc = cli_usage_error(c, "--config must be a JSON object");
            goto out;
        }
        json_object_set_new(req->doc, "config", cfg);
    }
    if (!shell) {
        if (first < argc) {
            rc = cli_usage_error(c, "a job of type %s takes --config, not a command", p.type);
            goto out;
        }
        goto schedule;
    }
    if (first >= argc) {
        rc = cli_usage_error(c, "no command given (sked submit [OPTIONS] -- CMD [ARGS...])");
        goto out;
    }
    cmd = json_array();
    for (int i = first; i < argc; i++) {
        json_t *s = json_string(argv[i]);
        if (!s) {
            rc = cli_usage_error(c, "argument %d of the command is not valid UTF-8", i - first);
            goto out;
        }
        json_array_append_new(cmd, s);
    }
    json_object_set_new(req->doc, "command", cmd);
    cmd = NULL;
schedule:
    if (cli_sched_build(&p.sched, clock_now_ms(), &schedules, err, sizeof err) < 0) {
        rc = cli_usage_error(c, "%s", err);
        goto out;
    }
    if (schedules) json_object_set_new(req->doc, "schedules", schedules);
    if (!json_object_get(req->doc, "name")) {
        char *name = default_name(shell ? argv[first] : p.type);
        json_object_set_new(req->doc, "name", json_string(name));
        free(name);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(cmd);
    if (rc != CLI_EXIT_OK || c->help) {
        json_decref(req->doc);
        req->doc = NULL;
    }
    return rc;
}

static int is_terminal(const char *state)
{
    return state && (!strcmp(state, "succeeded") || !strcmp(state, "failed") ||
                     !strcmp(state, "canceled") || !strcmp(state, "skipped"));
}

/* Sleeps between polls: 100 ms at first, doubling to 1 s, so short runs
 * come back fast and long ones cost the server one request a second. */
static void pause_ms(int64_t *delay_ms)
{
    struct timespec ts = {.tv_sec = *delay_ms / 1000, .tv_nsec = (*delay_ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    *delay_ms = *delay_ms * 2 > 1000 ? 1000 : *delay_ms * 2;
}

/* Waits for the job's first run to end. Returns its exit status as a shell
 * would see it, as `srun` and `docker run` do: 0 when it succeeded, its
 * exit code, 128 + N when a signal N killed it, else CLI_EXIT_FAIL (no code:
 * canceled, lost, skipped, or the server failed us). */
static int wait_first_run(cli_t *c, const char *job_id)
{
    char *esc = cli_url_escape(job_id);
    char *run_id = NULL, *path = NULL;
    json_t *list = NULL, *run = NULL;
    buf_t q = BUF_INIT;
    int64_t delay_ms = 100;
    int rc = CLI_EXIT_FAIL;

    /* The run appears when the schedule fires (at once for a job without
     * one). Lists are newest first, so the first run is the last item. */
    buf_puts(&q, "/v1/runs");
    cli_query_add(&q, "job_id", job_id);
    cli_query_add(&q, "limit", "1000");
    for (;;) {
        if (cli_call(c, "GET", q.data, NULL, NULL, &list) < 0) goto out;
        json_t *items = json_object_get(list, "items");
        size_t n = json_array_size(items);
        if (n) {
            run_id = xstrdup(cli_str(json_array_get(items, n - 1), "id"));
            break;
        }
        json_decref(list);
        list = NULL;
        pause_ms(&delay_ms);
    }
    if (!run_id) {
        fprintf(stderr, "sked: the server listed a run without an id\n");
        goto out;
    }
    free(esc);
    esc = cli_url_escape(run_id);
    path = xasprintf("/v1/runs/%s", esc);
    delay_ms = 100;
    for (;;) {
        if (cli_call(c, "GET", path, NULL, NULL, &run) < 0) goto out;
        if (is_terminal(cli_str(run, "state"))) break;
        json_decref(run);
        run = NULL;
        pause_ms(&delay_ms);
    }
    const char *state = cli_str(run, "state");
    const char *reason = cli_str(run, "reason");
    json_t *exit_code = json_object_get(run, "exit_code");
    json_t *sig = json_object_get(run, "signal");
    fprintf(stderr, "sked: run %s %s", run_id, state);
    if (json_is_integer(exit_code))
        fprintf(stderr, " (exit code %lld)", (long long)json_integer_value(exit_code));
    else if (json_is_integer(sig))
        fprintf(stderr, " (signal %lld)", (long long)json_integer_value(sig));
    if (reason && *reason) fprintf(stderr, ": %s", reason);
    fputc('\n', stderr);
    if (!strcmp(state, "succeeded"))
        rc = CLI_EXIT_OK;
    else if (json_is_integer(exit_code) && json_integer_value(exit_code) > 0 &&
             json_integer_value(exit_code) < 256)
        rc = (int)json_integer_value(exit_code);
    else if (json_is_integer(sig) && json_integer_value(sig) > 0 && json_integer_value(sig) < 128)
        rc = 128 + (int)json_integer_value(sig);
    else
        rc = CLI_EXIT_FAIL;
out:
    json_decref(list);
    json_decref(run);
    free(run_id);
    free(path);
    free(esc);
    buf_free(&q);
    return rc;
}

int cmd_submit(int argc, char **argv)
{
    cli_t c;
    cli_submit_req_t req = {0};
    json_t *job = NULL;
    char *idem = NULL;
    int rc;

    cli_init(&c, "submit");
    rc = cli_submit_parse(&c, argc, argv, &req);
    if (rc != CLI_EXIT_OK) goto out;
    if (c.help) {
        fputs(help_text, stdout);
        goto out;
    }
    const char *headers[2] = {NULL, NULL};
    if (req.idem_key) {
        idem = xasprintf("Idempotency-Key: %s", req.idem_key);
        headers[0] = idem;
    }
    if (cli_call(&c, "POST", "/v1/jobs", req.doc, headers, &job) < 0 || !json_is_object(job)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    const char *id = cli_str(job, "id");
    if (c.json) {
        cli_print_json(job);
    } else if (req.quiet) {
        printf("%s\n", id ? id : "");
    } else {
        char next[SKED_RFC3339_LEN];
        cli_table_t *t = cli_table_new(3, "ID", "NAME", "NEXT FIRE");
        /* No schedule means the server made the run already. */
        cli_table_add(t, id, cli_str(job, "name"),
                      json_array_size(json_object_get(job, "schedules"))
                          ? cli_job_next_fire(job, next, sizeof next)
                          : "now");
        cli_table_print(t, stdout);
        cli_table_free(t);
    }
    fflush(stdout);
    if (req.wait) {
        if (!id) {
            fprintf(stderr, "sked: the server answered a job without an id\n");
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        rc = wait_first_run(&c, id);
    }
out:
    json_decref(job);
    json_decref(req.doc);
    free(idem);
    cli_fini(&c);
    return rc;
}
