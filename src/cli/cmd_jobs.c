/*
 * `sked jobs`: list, show, edit, pause, resume, trigger, delete, preview and
 * the missed-fire ledger (misses)
 * jobs over the REST API (docs/api.md, "Jobs"). Each subcommand parses its
 * own options with cli_parse, makes one or a few calls, and prints either a
 * table for people or the server's JSON for scripts (-o json). `jobs edit`
 * reads the job first so its PATCH carries If-Match with the version it saw:
 * a concurrent change then fails with 412 instead of being overwritten.
 */
#include "cli/cli.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

enum {
    OPT_STATE = CLI_OPT_CMD_BASE,
    OPT_FQUEUE,
    OPT_FNAME,
    OPT_FTAG,
    OPT_LIMIT,
    OPT_ALL,
    OPT_JSON,
    OPT_AT,
};

static const char jobs_help[] =
    "usage: sked jobs SUBCOMMAND [OPTIONS]\n"
    "\n"
    "List and manage jobs. JOB is a job's id or its name (a name must be unique\n"
    "among the jobs you can see; text starting with job_ is taken as an id).\n"
    "\n"
    "subcommands:\n"
    "  ls [--state S] [--queue Q] [--name N] [--tag T] [--limit N] [--all]\n"
    "  get JOB\n"
    "  edit JOB [job and schedule options] [--json PATCH]\n"
    "  pause JOB\n"
    "  resume JOB\n"
    "  trigger JOB             run now; prints the run id\n"
    "  rm JOB\n"
    "  preview JOB [-n N]\n"
    "  preview --cron EXPR [--tz ZONE] [-n N]\n"
    "  misses JOB [--at TIME] [--all]   fire times the misfire policy passed over\n"
    "  why JOB                 why it is or is not running, reason by reason\n"
    "\n"
    "Run 'sked jobs SUBCOMMAND --help' for its options.\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked jobs ls --state active --all\n"
    "  sked jobs edit job_01JD... --every 30m\n"
    "  sked jobs preview --cron '30 2 * * *' --tz Europe/Berlin -n 5\n";

static const char ls_help[] = "usage: sked jobs ls [OPTIONS]\n"
                              "\n"
                              "List jobs, newest first.\n"
                              "\n"
                              "  --state S              active | paused | done | deleted\n"
                              "  --queue Q              only jobs of queue Q\n"
                              "  --name N               only the job named N\n"
                              "  --tag T                only jobs tagged T\n"
                              "  --limit N              page size (1-1000, default 100)\n"
                              "  --all                  follow cursors to list every job\n"
                              "\n" CLI_COMMON_HELP "\n"
                              "example:\n"
                              "  sked jobs ls --queue gpu --all -o json\n";

static const char get_help[] =
    "usage: sked jobs get JOB\n"
    "\n"
    "Show a job: its spec, schedules with next fire times and last run.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked jobs get job_01JD... -o json\n";

static const char edit_help[] =
    "usage: sked jobs edit JOB [OPTIONS]\n"
    "\n"
    "Change a job. Reads the job, then sends a JSON merge-patch with If-Match\n"
    "set to the version read, so a concurrent change fails (412) instead of\n"
    "being overwritten. A schedule option replaces all of the job's schedules.\n"
    "\n"
    "schedule (at most one):\n" CLI_SCHED_HELP "\n"
    "job:\n" CLI_JOB_HELP
    "  --json PATCH           a raw JSON merge-patch (options above apply on top)\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked jobs edit job_01JD... --priority 10 --retries 2\n"
    "  sked jobs edit job_01JD... --json '{\"env\": {\"DEBUG\": null}}'\n";

static const char pause_help[] = "usage: sked jobs pause JOB\n"
                                 "\n"
                                 "Stop the job from firing new runs; its pending runs are held.\n"
                                 "\n" CLI_COMMON_HELP "\n"
                                 "example:\n"
                                 "  sked jobs pause job_01JD...\n";

static const char resume_help[] =
    "usage: sked jobs resume JOB\n"
    "\n"
    "Let a paused job fire again; missed fire times go by its misfire\n"
    "policy.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked jobs resume job_01JD...\n";

static const char trigger_help[] = "usage: sked jobs trigger JOB\n"
                                   "\n"
                                   "Run the job now, outside its schedules. Prints the run id.\n"
                                   "\n" CLI_COMMON_HELP "\n"
                                   "example:\n"
                                   "  sked runs logs -f $(sked jobs trigger job_01JD...)\n";

static const char rm_help[] = "usage: sked jobs rm JOB\n"
                              "\n"
                              "Delete a job; its pending and running runs are canceled.\n"
                              "\n" CLI_COMMON_HELP "\n"
                              "example:\n"
                              "  sked jobs rm job_01JD...\n";

static const char preview_help[] =
    "usage: sked jobs preview JOB [-n N]\n"
    "       sked jobs preview (--cron EXPR [--tz ZONE] | --every DUR | --at TIME) [-n N]\n"
    "\n"
    "Show the next fire times of a job, or of a schedule not saved yet, in UTC\n"
    "and local time; DST marks times a daylight-saving change moved.\n"
    "\n" CLI_SCHED_HELP "  -n N                   how many fire times (1-1000, default 10)\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked jobs preview job_01JD... -n 3\n"
    "  sked jobs preview --cron '30 2 * * *' --tz Europe/Berlin\n";

/* --- ls ----------------------------------------------------------------- */

typedef struct ls_opts {
    const char *state, *queue, *name, *tag, *limit;
    int all;
} ls_opts_t;

static int ls_opt(cli_t *c, void *arg, int opt, const char *val)
{
    ls_opts_t *o = arg;
    long long n;
    switch (opt) {
    case OPT_STATE:
        o->state = val;
        return 1;
    case OPT_FQUEUE:
        o->queue = val;
        return 1;
    case OPT_FNAME:
        o->name = val;
        return 1;
    case OPT_FTAG:
        o->tag = val;
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

static void print_jobs(const json_t *list)
{
    cli_table_t *t =
        cli_table_new(7, "ID", "NAME", "STATE", "QUEUE", "PRIO", "SCHEDULE", "NEXT FIRE");
    char prio[32], sch[512], next[SKED_RFC3339_LEN];
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(list, "items"), i, job)
    {
        cli_fmt_schedules(json_object_get(job, "schedules"), sch, sizeof sch);
        cli_table_add(t, cli_str(job, "id"), cli_str(job, "name"), cli_str(job, "state"),
                      cli_str(job, "queue"),
                      cli_fmt_scalar(json_object_get(job, "priority"), prio, sizeof prio), sch,
                      cli_job_next_fire(job, next, sizeof next));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int jobs_ls(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"state", required_argument, NULL, OPT_STATE},
        {"queue", required_argument, NULL, OPT_FQUEUE},
        {"name", required_argument, NULL, OPT_FNAME},
        {"tag", required_argument, NULL, OPT_FTAG},
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
    buf_puts(&path, "/v1/jobs");
    cli_query_add(&path, "state", o.state);
    cli_query_add(&path, "queue", o.queue);
    cli_query_add(&path, "name", o.name);
    cli_query_add(&path, "tag", o.tag);
    cli_query_add(&path, "limit", o.limit);
    rc = cli_list_show(c, path.data, o.all, print_jobs, "jobs");
out:
    buf_free(&path);
    return rc;
}

/* --- commands on one job -------------------------------------------------- */

/* Parses a subcommand that takes only a JOB (its id or its name) and
 * resolves it into id[SKED_ID_LEN]. Prints help (returning CLI_EXIT_OK with
 * id "") when asked. */
static int parse_id(cli_t *c, int argc, char **argv, const char *help, char *id)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {0}};
    int first, rc;

    id[0] = '\0';
    rc = cli_parse(c, argc, argv, longopts, "", 0, NULL, NULL, &first);
    if (rc != CLI_EXIT_OK) return rc;
    if (c->help) {
        fputs(help, stdout);
        return CLI_EXIT_OK;
    }
    rc = cli_want_args(c, argc - first, 1, 1, "JOB (an id or a name)");
    if (rc == CLI_EXIT_OK) rc = cli_job_ref(c, argv[first], id);
    return rc;
}

static int jobs_get(cli_t *c, int argc, char **argv)
{
    char id[SKED_ID_LEN];
    char *path = NULL, *esc = NULL;
    json_t *job = NULL;
    int rc = parse_id(c, argc, argv, get_help, id);
    if (rc != CLI_EXIT_OK || !id[0]) goto out;
    esc = cli_url_escape(id);
    path = xasprintf("/v1/jobs/%s", esc);
    if (cli_call(c, "GET", path, NULL, NULL, &job) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(job);
    else
        cli_print_job(job);
out:
    json_decref(job);
    free(esc);
    free(path);
    return rc;
}

/* pause, resume, trigger and rm: one call on /v1/jobs/{id}[/verb]. */
static int jobs_action(cli_t *c, int argc, char **argv, const char *help, const char *method,
                       const char *verb)
{
    char id[SKED_ID_LEN];
    int rc = parse_id(c, argc, argv, help, id);
    if (rc != CLI_EXIT_OK || !id[0]) return rc;
    return cli_resource_action(c, "/v1/jobs", id, method, verb);
}

/* --- edit ------------------------------------------------------------------ */

typedef struct edit_ctx {
    json_t *flags; /* job-field options, applied over --json */
    const char *raw;
    cli_sched_t sched;
} edit_ctx_t;

static int edit_opt(cli_t *c, void *arg, int opt, const char *val)
{
    edit_ctx_t *e = arg;
    char err[256];
    int r;

    if (cli_sched_opt(&e->sched, opt, val)) return 1;
    if (opt == OPT_JSON) {
        e->raw = val;
        return 1;
    }
    r = cli_job_opt(e->flags, opt, val, err, sizeof err);
    if (r < 0) cli_usage_error(c, "%s", err);
    return r;
}

int cli_edit_parse(cli_t *c, int argc, char **argv, cli_edit_req_t *req)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        CLI_SCHED_LONGOPTS,
        CLI_JOB_LONGOPTS,
        {"json", required_argument, NULL, OPT_JSON},
        {0},
    };
    edit_ctx_t e = {0};
    json_t *schedules = NULL;
    json_error_t jerr;
    char err[256];
    int first, rc;

    memset(req, 0, sizeof *req);
    e.flags = json_object();
    rc = cli_parse(c, argc, argv, longopts, "", 0, edit_opt, &e, &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    if ((rc = cli_want_args(c, argc - first, 1, 1, "JOB (an id or a name)")) != CLI_EXIT_OK)
        goto out;
    if ((rc = cli_job_ref(c, argv[first], req->id)) != CLI_EXIT_OK) goto out;
    if (cli_sched_build(&e.sched, clock_now_ms(), &schedules, err, sizeof err) < 0) {
        rc = cli_usage_error(c, "%s", err);
        goto out;
    }
    if (schedules) json_object_set_new(e.flags, "schedules", schedules);
    if (e.raw) {
        req->patch = json_loads(e.raw, 0, &jerr);
        if (!json_is_object(req->patch)) {
            rc = cli_usage_error(c, "--json: not a JSON object: %s",
                                 req->patch ? "merge patches are objects" : jerr.text);
            goto out;
        }
        /* Options win over the raw patch; objects (env, retry) merge. */
        json_object_update_recursive(req->patch, e.flags);
    } else {
        req->patch = json_incref(e.flags);
    }
    if (!json_object_size(req->patch)) {
        rc = cli_usage_error(c, "nothing to change: give an option or --json");
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(e.flags);
    if (rc != CLI_EXIT_OK || c->help) {
        json_decref(req->patch);
        req->patch = NULL;
    }
    return rc;
}

static int jobs_edit(cli_t *c, int argc, char **argv)
{
    cli_edit_req_t req = {0};
    char *path = NULL, *esc = NULL, *ifmatch = NULL;
    json_t *job = NULL, *updated = NULL;
    int rc = cli_edit_parse(c, argc, argv, &req);

    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(edit_help, stdout);
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    esc = cli_url_escape(req.id);
    path = xasprintf("/v1/jobs/%s", esc);
    if (cli_call(c, "GET", path, NULL, NULL, &job) < 0) goto out;
    json_t *version = json_object_get(job, "version");
    if (!json_is_integer(version)) {
        fprintf(stderr, "sked: the server's job has no version\n");
        goto out;
    }
    ifmatch = xasprintf("If-Match: %lld", (long long)json_integer_value(version));
    const char *headers[] = {ifmatch, NULL};
    if (cli_call(c, "PATCH", path, req.patch, headers, &updated) < 0) goto out;
    if (c->json) {
        cli_print_json(updated);
    } else {
        char v[32];
        printf("%s updated (version %s)\n", req.id,
               cli_fmt_scalar(json_object_get(updated, "version"), v, sizeof v));
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(req.patch);
    json_decref(job);
    json_decref(updated);
    free(ifmatch);
    free(esc);
    free(path);
    return rc;
}

/* --- preview ----------------------------------------------------------------- */

typedef struct preview_ctx {
    cli_sched_t sched;
    long long n; /* 0 = server default */
} preview_ctx_t;

static int preview_opt(cli_t *c, void *arg, int opt, const char *val)
{
    preview_ctx_t *p = arg;
    if (cli_sched_opt(&p->sched, opt, val)) return 1;
    if (opt != 'n') return 0;
    if (cli_parse_int(val, 1, 1000, &p->n) < 0) {
        cli_usage_error(c, "-n: '%s' is not a number from 1 to 1000", val);
        return SKED_EINVAL;
    }
    return 1;
}

static void print_preview(const json_t *pv)
{
    const json_t *times = json_object_get(pv, "fire_times");
    int several = 0;
    size_t i;
    json_t *ft;
    char utc[SKED_RFC3339_LEN], idx[32];

    /* The schedule column only earns its place when there is a choice. */
    json_array_foreach(times, i, ft)
    {
        if (json_integer_value(json_object_get(ft, "schedule")) != 0) several = 1;
    }
    cli_table_t *t = several ? cli_table_new(5, "UTC", "LOCAL", "ZONE", "DST", "SCHEDULE")
                             : cli_table_new(4, "UTC", "LOCAL", "ZONE", "DST");
    json_array_foreach(times, i, ft)
    {
        const char *dst = json_is_true(json_object_get(ft, "dst_shifted")) ? "shifted" : "";
        const char *zone = cli_str(ft, "timezone");
        cli_fmt_time(json_object_get(ft, "at"), utc, sizeof utc);
        if (several)
            cli_table_add(t, utc, cli_str(ft, "local"), zone ? zone : "UTC", dst,
                          cli_fmt_scalar(json_object_get(ft, "schedule"), idx, sizeof idx));
        else
            cli_table_add(t, utc, cli_str(ft, "local"), zone ? zone : "UTC", dst);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int jobs_preview(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, CLI_SCHED_LONGOPTS, {0}};
    preview_ctx_t p = {0};
    json_t *schedules = NULL, *body = NULL, *pv = NULL;
    char *path = NULL, *esc = NULL;
    char err[256];
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "n:", 0, preview_opt, &p, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(preview_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 0, 1, "at most a JOB")) != CLI_EXIT_OK) goto out;
    if (cli_sched_build(&p.sched, clock_now_ms(), &schedules, err, sizeof err) < 0) {
        rc = cli_usage_error(c, "%s", err);
        goto out;
    }
    if (first < argc && schedules) {
        rc = cli_usage_error(c, "give a JOB or a schedule option, not both");
        goto out;
    }
    if (first >= argc && !schedules) {
        rc = cli_usage_error(c, "give a JOB or a schedule (--cron, --every, --at)");
        goto out;
    }
    if (first < argc) {
        char id[SKED_ID_LEN];
        if ((rc = cli_job_ref(c, argv[first], id)) != CLI_EXIT_OK) goto out;
        esc = cli_url_escape(id);
        path = p.n ? xasprintf("/v1/jobs/%s/preview?n=%lld", esc, p.n)
                   : xasprintf("/v1/jobs/%s/preview", esc);
        if (cli_call(c, "GET", path, NULL, NULL, &pv) < 0) rc = CLI_EXIT_FAIL;
    } else {
        body = json_pack("{s:O, s:I}", "schedules", schedules, "n", (json_int_t)(p.n ? p.n : 10));
        if (cli_call(c, "POST", "/v1/schedules/preview", body, NULL, &pv) < 0) rc = CLI_EXIT_FAIL;
    }
    if (rc != CLI_EXIT_OK) goto out;
    if (c->json)
        cli_print_json(pv);
    else
        print_preview(pv);
out:
    json_decref(schedules);
    json_decref(body);
    json_decref(pv);
    free(esc);
    free(path);
    return rc;
}

/* --- misses ------------------------------------------------------------------ */

static const char misses_help[] =
    "usage: sked jobs misses JOB [--at TIME] [--all]\n"
    "\n"
    "The job's missed-fire ledger, latest first: each stretch of consecutive fire\n"
    "times that its misfire policy passed over (after downtime or a pause), with\n"
    "how many and why. With --at, the stretch holding that instant: the answer to\n"
    "\"why didn't it run at TIME?\" (nothing listed: it was not missed).\n"
    "\n"
    "  --at TIME              an RFC 3339 instant, e.g. 2026-12-24T03:00:00Z\n"
    "  --all                  follow every page\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked jobs misses job_01JD...\n"
    "  sked jobs misses job_01JD... --at 2026-12-24T03:00:00Z\n";

typedef struct misses_opts {
    const char *at;
    int all;
} misses_opts_t;

static int misses_opt(cli_t *c, void *arg, int opt, const char *val)
{
    misses_opts_t *o = arg;
    (void)c;
    if (opt == OPT_AT) {
        o->at = val;
        return 1;
    }
    if (opt == OPT_ALL) {
        o->all = 1;
        return 1;
    }
    return 0;
}

static void print_misses(const json_t *list)
{
    cli_table_t *t = cli_table_new(5, "FIRST", "LAST", "COUNT", "SCHEDULE", "REASON");
    size_t i;
    json_t *m;
    char first_s[SKED_RFC3339_LEN], last_s[SKED_RFC3339_LEN], count[32];
    json_array_foreach(json_object_get(list, "items"), i, m)
    {
        cli_fmt_time(json_object_get(m, "first"), first_s, sizeof first_s);
        cli_fmt_time(json_object_get(m, "last"), last_s, sizeof last_s);
        cli_table_add(t, first_s, last_s,
                      cli_fmt_scalar(json_object_get(m, "count"), count, sizeof count),
                      cli_str(m, "schedule_id"), cli_str(m, "reason"));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int jobs_misses(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"at", required_argument, NULL, OPT_AT},
        {"all", no_argument, NULL, OPT_ALL},
        {0},
    };
    misses_opts_t o = {0};
    buf_t path = BUF_INIT;
    char *esc = NULL;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, misses_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(misses_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 1, 1, "a JOB (an id or a name)")) != CLI_EXIT_OK)
        goto out;
    char id[SKED_ID_LEN];
    if ((rc = cli_job_ref(c, argv[first], id)) != CLI_EXIT_OK) goto out;
    esc = cli_url_escape(id);
    buf_printf(&path, "/v1/jobs/%s/misses", esc);
    cli_query_add(&path, "at", o.at);
    rc = cli_list_show(c, path.data, o.all, print_misses, "entries");
out:
    buf_free(&path);
    free(esc);
    return rc;
}

/* --- dispatch ---------------------------------------------------------------- */

int cmd_jobs(int argc, char **argv)
{
    cli_t c;
    int rc;
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (!sub) {
        fputs(jobs_help, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(jobs_help, stdout);
        return CLI_EXIT_OK;
    }
    argc--;
    argv++;
    if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
        cli_init(&c, "jobs ls");
        rc = jobs_ls(&c, argc, argv);
    } else if (!strcmp(sub, "get") || !strcmp(sub, "show")) {
        cli_init(&c, "jobs get");
        rc = jobs_get(&c, argc, argv);
    } else if (!strcmp(sub, "edit")) {
        cli_init(&c, "jobs edit");
        rc = jobs_edit(&c, argc, argv);
    } else if (!strcmp(sub, "pause")) {
        cli_init(&c, "jobs pause");
        rc = jobs_action(&c, argc, argv, pause_help, "POST", "pause");
    } else if (!strcmp(sub, "resume")) {
        cli_init(&c, "jobs resume");
        rc = jobs_action(&c, argc, argv, resume_help, "POST", "resume");
    } else if (!strcmp(sub, "trigger")) {
        cli_init(&c, "jobs trigger");
        rc = jobs_action(&c, argc, argv, trigger_help, "POST", "trigger");
    } else if (!strcmp(sub, "rm") || !strcmp(sub, "delete")) {
        cli_init(&c, "jobs rm");
        rc = jobs_action(&c, argc, argv, rm_help, "DELETE", NULL);
    } else if (!strcmp(sub, "preview")) {
        cli_init(&c, "jobs preview");
        rc = jobs_preview(&c, argc, argv);
    } else if (!strcmp(sub, "misses")) {
        cli_init(&c, "jobs misses");
        rc = jobs_misses(&c, argc, argv);
    } else if (!strcmp(sub, "why") || !strcmp(sub, "explain")) {
        cli_init(&c, "jobs why");
        rc = cli_jobs_why(&c, argc, argv);
    } else {
        fprintf(stderr, "sked jobs: unknown subcommand '%s'\n\n", sub);
        fputs(jobs_help, stderr);
        return CLI_EXIT_USAGE;
    }
    cli_fini(&c);
    return rc;
}
