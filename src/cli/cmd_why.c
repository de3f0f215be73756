/*
 * `sked jobs why JOB` and `sked runs why RUN`: why a job or a run is or is
 * not running, over GET /v1/jobs/{id}/explain and GET /v1/runs/{id}/explain
 * (docs/api.md, "Explain"). For people, a line saying what was asked about
 * and a table of the reasons, each its code and its sentence; with -o json
 * the server's answer as it is.
 */
#include "cli/cli.h"

#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char jobs_why_help[] =
    "usage: sked jobs why JOB\n"
    "\n"
    "Why a job is or is not running: each reason a code and a sentence, such as\n"
    "paused, next_fire (when), running (on which worker, lease until when),\n"
    "retry_backoff or lease_lost (the next attempt at T), overlap_forbid,\n"
    "max_concurrency (n of max), no_worker_for_queue (the queue),\n"
    "no_worker_labels (the missing label, e.g. disk=ssd), workers_full,\n"
    "workers_draining, awaiting_claim, job_deleted, schedule_exhausted.\n"
    "JOB is its id or its name. docs/observability.md lists every code.\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked jobs why nightly\n"
    "  sked jobs why job_01JD... -o json\n";

static const char runs_why_help[] =
    "usage: sked runs why RUN_ID\n"
    "\n"
    "Why a run is or is not running: each reason a code and a sentence (see\n"
    "'sked jobs why --help'). A finished run says how it ended.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked runs why run_01JD...\n";

/* obj[key] as text; "-" when missing. */
static const char *text(const json_t *obj, const char *key)
{
    const char *s = cli_str(obj, key);
    return s ? s : "-";
}

/* The answer for people: what it is about, then the reasons. */
static void print_why(const json_t *doc)
{
    char n[32];
    cli_fmt_scalar(json_object_get(doc, "running"), n, sizeof n);
    if (cli_str(doc, "run_id"))
        printf("run %s (%s) of job %s (%s, %s)\n", text(doc, "run_id"), text(doc, "run_state"),
               text(doc, "job_name"), text(doc, "job_id"), text(doc, "job_state"));
    else
        printf("job %s (%s): %s, %s running\n", text(doc, "job_name"), text(doc, "job_id"),
               text(doc, "job_state"), n);
    const json_t *reasons = json_object_get(doc, "reasons");
    if (!json_array_size(reasons)) {
        printf("no reason to give: nothing holds it back that sked knows of\n");
        return;
    }
    cli_table_t *t = cli_table_new(2, "CODE", "WHY");
    size_t i;
    const json_t *r;
    json_array_foreach(reasons, i, r) cli_table_add(t, cli_str(r, "code"), cli_str(r, "message"));
    fputc('\n', stdout);
    cli_table_print(t, stdout);
    cli_table_free(t);
}

/* GET path, then show the answer. */
static int show(cli_t *c, const char *path)
{
    json_t *doc = NULL;
    if (cli_call(c, "GET", path, NULL, NULL, &doc) < 0) return CLI_EXIT_FAIL;
    if (c->json)
        cli_print_json(doc);
    else
        print_why(doc);
    json_decref(doc);
    return CLI_EXIT_OK;
}

/* Parses `jobs why JOB` or `runs why RUN_ID`; *arg is the positional
 * argument, NULL after printing help. */
static int parse(cli_t *c, int argc, char **argv, const char *help, const char *what,
                 const char **arg)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {0}};
    int first;
    *arg = NULL;
    int rc = cli_parse(c, argc, argv, longopts, "", 0, NULL, NULL, &first);
    if (rc != CLI_EXIT_OK) return rc;
    if (c->help) {
        fputs(help, stdout);
        return CLI_EXIT_OK;
    }
    rc = cli_want_args(c, argc - first, 1, 1, what);
    if (rc == CLI_EXIT_OK) *arg = argv[first];
    return rc;
}

int cli_jobs_why(cli_t *c, int argc, char **argv)
{
    const char *ref;
    char id[SKED_ID_LEN];
    int rc = parse(c, argc, argv, jobs_why_help, "JOB (an id or a name)", &ref);
    if (rc != CLI_EXIT_OK || !ref) return rc;
    if ((rc = cli_job_ref(c, ref, id)) != CLI_EXIT_OK) return rc;
    char *esc = cli_url_escape(id), *path = xasprintf("/v1/jobs/%s/explain", esc);
    rc = show(c, path);
    free(path);
    free(esc);
    return rc;
}

int cli_runs_why(cli_t *c, int argc, char **argv)
{
    const char *id;
    int rc = parse(c, argc, argv, runs_why_help, "RUN_ID", &id);
    if (rc != CLI_EXIT_OK || !id) return rc;
    char *esc = cli_url_escape(id), *path = xasprintf("/v1/runs/%s/explain", esc);
    rc = show(c, path);
    free(path);
    free(esc);
    return rc;
}
