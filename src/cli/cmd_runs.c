/*
 * `sked runs`: list runs, show one with its attempts, result and
 * checkpoint, print its result, print or follow its log, and cancel it, over the REST API
 * (docs/api.md, "Runs"). `runs logs -f` streams GET /v1/runs/{id}/log?follow=1 through httpc_stream
 * and writes each piece to stdout as it arrives, so it behaves like `tail -f` that ends when the
 * run does.
 */
#include "cli/cli.h"

#include "common/error.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_JOB = CLI_OPT_CMD_BASE,
    OPT_STATE,
    OPT_LIMIT,
    OPT_ALL,
    OPT_ATTEMPT,
};

static const char runs_help[] =
    "usage: sked runs SUBCOMMAND [OPTIONS]\n"
    "\n"
    "List runs, show their attempts and logs, cancel them.\n"
    "\n"
    "subcommands:\n"
    "  ls [--job JOB] [--state S] [--limit N] [--all]\n"
    "  get RUN_ID              the run, its attempts, result and checkpoint\n"
    "  result RUN_ID           the JSON result the run's job wrote\n"
    "  logs RUN_ID [-f] [--attempt N]\n"
    "  cancel RUN_ID\n"
    "  why RUN_ID              why it is or is not running\n"
    "\n"
    "Run 'sked runs SUBCOMMAND --help' for its options.\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked runs ls --job job_01JD... --state failed\n"
    "  sked runs logs -f run_01JD...\n";

static const char ls_help[] =
    "usage: sked runs ls [OPTIONS]\n"
    "\n"
    "List runs, newest fire time first.\n"
    "\n"
    "  --job JOB              only runs of this job (its id or its name)\n"
    "  --state S              scheduled | waiting | pending | running | succeeded |\n"
    "                         failed | canceled | skipped\n"
    "  --limit N              page size (1-1000, default 100)\n"
    "  --all                  follow cursors to list every run\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked runs ls --state running -o json\n";

static const char get_help[] = "usage: sked runs get RUN_ID\n"
                               "\n"
                               "Show a run, its result and checkpoint (docs/results.md) and the\n"
                               "table of its attempts.\n"
                               "\n" CLI_COMMON_HELP "\n"
                               "example:\n"
                               "  sked runs get run_01JD...\n";

static const char result_help[] =
    "usage: sked runs result RUN_ID\n"
    "\n"
    "Print the result of a run: the JSON its latest attempt wrote to\n"
    "$SKED_RESULT_FILE, as it was written (docs/results.md). Exits 1 with a\n"
    "message on stderr when the run has no result.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked runs result run_01JD... | jq .rows\n";

static const char logs_help[] =
    "usage: sked runs logs RUN_ID [-f] [--attempt N]\n"
    "\n"
    "Print a run's output (stdout and stderr in order; sked's own lines are\n"
    "marked [sked]).\n"
    "\n"
    "  -f, --follow           keep printing as output arrives, until the run ends\n"
    "  --attempt N            only attempt N\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked runs logs -f run_01JD...\n";

static const char cancel_help[] = "usage: sked runs cancel RUN_ID\n"
                                  "\n"
                                  "Cancel a run. A running one gets SIGTERM (its process group),\n"
                                  "then SIGKILL after a grace period.\n"
                                  "\n" CLI_COMMON_HELP "\n"
                                  "example:\n"
                                  "  sked runs cancel run_01JD...\n";

/* --- ls ----------------------------------------------------------------- */

typedef struct ls_opts {
    const char *job, *state, *limit;
    int all;
} ls_opts_t;

static int ls_opt(cli_t *c, void *arg, int opt, const char *val)
{
    ls_opts_t *o = arg;
    long long n;
    switch (opt) {
    case OPT_JOB:
        o->job = val;
        return 1;
    case OPT_STATE:
        o->state = val;
        return 1;
    case OPT_ALL:
        o->all = 1;
        return 1;
    case OPT_LIMIT:
        if (cli_parse_int(val, 1, 1000, &n) < 0) {
            cli_usage_error(c, "--limit: '%s' is not a number from 1 to 1000", val);
            return SKED_EINVAL;
        }
        o->limit = val;
        return 1;
    default:
        return 0;
    }
}

/* "exit 0", "signal 9", or the reason: what a person wants to know of how
 * a run or attempt ended. Into out; returns out. */
static const char *outcome(const json_t *o, char *out, size_t outlen)
{
    const json_t *code = json_object_get(o, "exit_code");
    const json_t *sig = json_object_get(o, "signal");
    const char *reason = cli_str(o, "reason");
    if (json_is_integer(sig))
        snprintf(out, outlen, "signal %lld%s%s", (long long)json_integer_value(sig),
                 reason ? ": " : "", reason ? reason : "");
    else if (json_is_integer(code))
        snprintf(out, outlen, "exit %lld%s%s", (long long)json_integer_value(code),
                 reason ? ": " : "", reason ? reason : "");
    else
        snprintf(out, outlen, "%s", reason ? reason : "-");
    return out;
}

static void print_runs(const json_t *list)
{
    cli_table_t *t =
        cli_table_new(8, "ID", "JOB", "STATE", "TRY", "FIRE TIME", "STARTED", "FINISHED", "RESULT");
    char tries[32], fire[SKED_RFC3339_LEN], start[SKED_RFC3339_LEN], fin[SKED_RFC3339_LEN];
    char res[512];
    size_t i;
    json_t *run;
    json_array_foreach(json_object_get(list, "items"), i, run)
    {
        cli_table_add(t, cli_str(run, "id"), cli_str(run, "job_id"), cli_str(run, "state"),
                      cli_fmt_scalar(json_object_get(run, "attempt"), tries, sizeof tries),
                      cli_fmt_time(json_object_get(run, "fire_time"), fire, sizeof fire),
                      cli_fmt_time(json_object_get(run, "started_at"), start, sizeof start),
                      cli_fmt_time(json_object_get(run, "finished_at"), fin, sizeof fin),
                      outcome(run, res, sizeof res));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int runs_ls(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"job", required_argument, NULL, OPT_JOB},
        {"state", required_argument, NULL, OPT_STATE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"all", no_argument, NULL, OPT_ALL},
        {0},
    };
    ls_opts_t o = {0};
    buf_t path = BUF_INIT;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, ls_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(ls_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
    char job_id[SKED_ID_LEN];
    if (o.job && (rc = cli_job_ref(c, o.job, job_id)) != CLI_EXIT_OK) goto out;
    buf_puts(&path, "/v1/runs");
    cli_query_add(&path, "job_id", o.job ? job_id : NULL);
    cli_query_add(&path, "state", o.state);
    cli_query_add(&path, "limit", o.limit);
    rc = cli_list_show(c, path.data, o.all, print_runs, "runs");
out:
    buf_free(&path);
    return rc;
}

/* --- one run ---------------------------------------------------------------- */

typedef struct one_opts {
    int follow;
    const char *attempt;
} one_opts_t;

static int one_opt(cli_t *c, void *arg, int opt, const char *val)
{
    one_opts_t *o = arg;
    long long n;
    switch (opt) {
    case 'f':
        o->follow = 1;
        return 1;
    case OPT_ATTEMPT:
        if (cli_parse_int(val, 1, INT32_MAX, &n) < 0) {
            cli_usage_error(c, "--attempt: '%s' is not an attempt number (1 or more)", val);
            return SKED_EINVAL;
        }
        o->attempt = val;
        return 1;
    default:
        return 0;
    }
}

/* Parses RUN_ID and, for logs, -f/--attempt. *id is borrowed; NULL after
 * printing help. */
static int parse_one(cli_t *c, int argc, char **argv, int logs, const char *help, one_opts_t *o,
                     const char **id)
{
    static const struct option plain[] = {CLI_COMMON_LONGOPTS, {0}};
    static const struct option withlog[] = {
        CLI_COMMON_LONGOPTS,
        {"follow", no_argument, NULL, 'f'},
        {"attempt", required_argument, NULL, OPT_ATTEMPT},
        {0},
    };
    int first, rc;

    *id = NULL;
    rc = cli_parse(c, argc, argv, logs ? withlog : plain, logs ? "f" : "", 0, logs ? one_opt : NULL,
                   o, &first);
    if (rc != CLI_EXIT_OK) return rc;
    if (c->help) {
        fputs(help, stdout);
        return CLI_EXIT_OK;
    }
    rc = cli_want_args(c, argc - first, 1, 1, "RUN_ID");
    if (rc == CLI_EXIT_OK) *id = argv[first];
    return rc;
}

/* s (new, may be NULL) cut to a line's worth, with "..." when cut. */
static char *clip(char *s)
{
    enum { MAX = 200 };
    if (s && strlen(s) > MAX) strcpy(s + MAX - 3, "...");
    return s;
}

static void print_run(const json_t *run)
{
    cli_table_t *kv = cli_table_new(2, NULL, NULL);
    char s[512], t[SKED_RFC3339_LEN], size[32];
    size_t i;
    json_t *a;

    cli_table_add(kv, "ID:", cli_str(run, "id"));
    cli_table_add(kv, "Job:", cli_str(run, "job_id"));
    cli_table_add(kv, "Schedule:", cli_str(run, "schedule_id"));
    cli_table_add(kv, "State:", cli_str(run, "state"));
    cli_table_add(kv, "Result:", outcome(run, s, sizeof s));
    cli_table_add(kv, "Fire time:", cli_fmt_time(json_object_get(run, "fire_time"), t, sizeof t));
    cli_table_add(kv, "Not before:", cli_fmt_time(json_object_get(run, "not_before"), t, sizeof t));
    cli_table_add(kv, "Priority:", cli_fmt_scalar(json_object_get(run, "priority"), s, sizeof s));
    cli_table_add(kv, "Queue:", cli_str(run, "queue"));
    cli_table_add(kv, "Attempt:", cli_fmt_scalar(json_object_get(run, "attempt"), s, sizeof s));
    cli_table_add(kv, "Worker:", cli_str(run, "worker_id"));
    cli_table_add(
        kv, "Lease expires:", cli_fmt_time(json_object_get(run, "lease_expires_at"), t, sizeof t));
    cli_table_add(kv, "Cancel requested:",
                  cli_fmt_scalar(json_object_get(run, "cancel_requested"), s, sizeof s));
    cli_table_add(kv, "Created:", cli_fmt_time(json_object_get(run, "created_at"), t, sizeof t));
    cli_table_add(kv, "Started:", cli_fmt_time(json_object_get(run, "started_at"), t, sizeof t));
    cli_table_add(kv, "Finished:", cli_fmt_time(json_object_get(run, "finished_at"), t, sizeof t));
    cli_fmt_scalar(json_object_get(run, "log_bytes"), s, sizeof s);
    if (json_is_true(json_object_get(run, "log_truncated")))
        strncat(s, " (truncated)", sizeof s - strlen(s) - 1);
    cli_table_add(kv, "Log bytes:", s);
    char *res = NULL, *cp = NULL;
    const json_t *v = json_object_get(run, "result");
    if (v) res = clip(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
    cli_table_add(kv, "Result JSON:", res ? res : "-");
    v = json_object_get(run, "checkpoint");
    if (json_is_object(v)) {
        char *data = clip(json_dumps(json_object_get(v, "data"), JSON_ENCODE_ANY));
        cp = xasprintf("attempt %s at %s, %s bytes: %s",
                       cli_fmt_scalar(json_object_get(v, "attempt"), s, sizeof s),
                       cli_fmt_time(json_object_get(v, "at"), t, sizeof t),
                       cli_fmt_scalar(json_object_get(v, "size"), size, sizeof size),
                       data ? data : "");
        free(data);
    }
    cli_table_add(kv, "Checkpoint:", cp ? cp : "-");
    cli_table_print(kv, stdout);
    cli_table_free(kv);
    free(res);
    free(cp);

    const json_t *attempts = json_object_get(run, "attempts");
    if (!json_array_size(attempts)) return;
    cli_table_t *at =
        cli_table_new(6, "ATTEMPT", "WORKER", "STARTED", "FINISHED", "OUTCOME", "RESULT");
    json_array_foreach(attempts, i, a)
    {
        char n[32], st[SKED_RFC3339_LEN], fin[SKED_RFC3339_LEN];
        cli_table_add(at, cli_fmt_scalar(json_object_get(a, "n"), n, sizeof n),
                      cli_str(a, "worker_id"),
                      cli_fmt_time(json_object_get(a, "started_at"), st, sizeof st),
                      cli_fmt_time(json_object_get(a, "finished_at"), fin, sizeof fin),
                      cli_str(a, "outcome"), outcome(a, s, sizeof s));
    }
    fputc('\n', stdout);
    cli_table_print(at, stdout);
    cli_table_free(at);
}

static int runs_get(cli_t *c, int argc, char **argv)
{
    one_opts_t o = {0};
    const char *id;
    char *path = NULL, *esc = NULL;
    json_t *run = NULL;
    int rc = parse_one(c, argc, argv, 0, get_help, &o, &id);
    if (rc != CLI_EXIT_OK || !id) goto out;
    esc = cli_url_escape(id);
    path = xasprintf("/v1/runs/%s", esc);
    if (cli_call(c, "GET", path, NULL, NULL, &run) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(run);
    else
        print_run(run);
out:
    json_decref(run);
    free(esc);
    free(path);
    return rc;
}

/* Prints the result as the server keeps it: the job's own text, so that
 * `sked runs result RUN | jq` sees exactly what the job wrote. */
static int runs_result(cli_t *c, int argc, char **argv)
{
    one_opts_t o = {0};
    const char *id;
    char *path = NULL, *esc = NULL;
    httpc_resp_t resp = {0};
    int rc = parse_one(c, argc, argv, 0, result_help, &o, &id);
    if (rc != CLI_EXIT_OK || !id) goto out;
    esc = cli_url_escape(id);
    path = xasprintf("/v1/runs/%s/result", esc);
    if (cli_do(c, "GET", path, NULL, NULL, &resp) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (resp.len) fwrite(resp.body, 1, resp.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
out:
    httpc_resp_clear(&resp);
    free(esc);
    free(path);
    return rc;
}

static int runs_cancel(cli_t *c, int argc, char **argv)
{
    one_opts_t o = {0};
    const char *id;
    char *path = NULL, *esc = NULL;
    json_t *run = NULL;
    int rc = parse_one(c, argc, argv, 0, cancel_help, &o, &id);
    if (rc != CLI_EXIT_OK || !id) goto out;
    esc = cli_url_escape(id);
    path = xasprintf("/v1/runs/%s/cancel", esc);
    if (cli_call(c, "POST", path, NULL, NULL, &run) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json) {
        cli_print_json(run);
    } else {
        const char *state = cli_str(run, "state");
        /* A running run stays "running" until its worker has killed it. */
        if (state && !strcmp(state, "canceled"))
            printf("%s canceled\n", id);
        else
            printf("%s cancel requested (state %s)\n", id, state ? state : "-");
    }
out:
    json_decref(run);
    free(esc);
    free(path);
    return rc;
}

/* Writes streamed log bytes through; stops the stream when stdout is gone
 * (a closed pipe), since nobody is reading any more. */
static int write_out(const char *data, size_t len, void *arg)
{
    int *gone = arg;
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        *gone = 1;
        return -EPIPE;
    }
    return 0;
}

static int runs_logs(cli_t *c, int argc, char **argv)
{
    one_opts_t o = {0};
    const char *id;
    char *esc = NULL;
    buf_t path = BUF_INIT;
    httpc_resp_t resp = {0};
    json_t *run = NULL;
    long status = 0;
    int rc = parse_one(c, argc, argv, 1, logs_help, &o, &id);
    if (rc != CLI_EXIT_OK || !id) goto out;
    rc = CLI_EXIT_FAIL;
    esc = cli_url_escape(id);
    if (o.follow) {
        /* Look the run up first: a wrong id then fails with the server's
         * problem text on stderr rather than streaming it into stdout,
         * where a pipeline would take it for log output. */
        buf_printf(&path, "/v1/runs/%s", esc);
        if (cli_call(c, "GET", path.data, NULL, NULL, &run) < 0) goto out;
        buf_puts(&path, "/log");
        cli_query_add(&path, "attempt", o.attempt);
        cli_query_add(&path, "follow", "1");
        httpc_t *h = cli_client(c);
        if (!h) goto out;
        int gone = 0;
        int r = httpc_stream(h, path.data, write_out, &gone, &status);
        if (gone) {
            rc = CLI_EXIT_OK; /* the reader went away; that is not our failure */
            goto out;
        }
        if (r < 0 && status == 0) {
            char *msg = cli_transport_text(cli_servers(c), sked_strerror(r));
            fprintf(stderr, "sked: %s\n", msg);
            free(msg);
            goto out;
        }
        if (status < 200 || status > 299) {
            char *msg = cli_error_text(status, NULL, 0);
            fprintf(stderr, "sked: %s\n", msg);
            free(msg);
            goto out;
        }
        if (r < 0) {
            fprintf(stderr, "sked: the log stream broke off: %s\n", sked_strerror(r));
            goto out;
        }
    } else {
        buf_printf(&path, "/v1/runs/%s/log", esc);
        cli_query_add(&path, "attempt", o.attempt);
        if (cli_do(c, "GET", path.data, NULL, NULL, &resp) < 0) goto out;
        if (resp.len) fwrite(resp.body, 1, resp.len, stdout);
        fflush(stdout);
    }
    rc = CLI_EXIT_OK;
out:
    httpc_resp_clear(&resp);
    json_decref(run);
    buf_free(&path);
    free(esc);
    return rc;
}

/* --- dispatch ---------------------------------------------------------------- */

int cmd_runs(int argc, char **argv)
{
    cli_t c;
    int rc;
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (!sub) {
        fputs(runs_help, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(runs_help, stdout);
        return CLI_EXIT_OK;
    }
    argc--;
    argv++;
    if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
        cli_init(&c, "runs ls");
        rc = runs_ls(&c, argc, argv);
    } else if (!strcmp(sub, "get") || !strcmp(sub, "show")) {
        cli_init(&c, "runs get");
        rc = runs_get(&c, argc, argv);
    } else if (!strcmp(sub, "logs") || !strcmp(sub, "log")) {
        cli_init(&c, "runs logs");
        rc = runs_logs(&c, argc, argv);
    } else if (!strcmp(sub, "result")) {
        cli_init(&c, "runs result");
        rc = runs_result(&c, argc, argv);
    } else if (!strcmp(sub, "cancel")) {
        cli_init(&c, "runs cancel");
        rc = runs_cancel(&c, argc, argv);
    } else if (!strcmp(sub, "why") || !strcmp(sub, "explain")) {
        cli_init(&c, "runs why");
        rc = cli_runs_why(&c, argc, argv);
    } else {
        fprintf(stderr, "sked runs: unknown subcommand '%s'\n\n", sub);
        fputs(runs_help, stderr);
        return CLI_EXIT_USAGE;
    }
    cli_fini(&c);
    return rc;
}
