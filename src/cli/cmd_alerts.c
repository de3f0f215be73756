/*
 * `sked alerts` (list, show, acknowledge alerts) and `sked alert-rules`
 * (the global rules, admin), over /v1/alerts and /v1/alert-rules
 * (docs/api.md, "Alerts"; docs/observability.md, "Alerts").
 */
#include "cli/cli.h"

#include "common/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_STATE = CLI_OPT_CMD_BASE,
    OPT_JOB,
    OPT_COND,
    OPT_ALL,
    OPT_LIMIT,
    OPT_FILE,
};

struct opts {
    const char *state, *job, *cond, *limit, *file;
    int all;
};

static int take_opt(cli_t *c, void *arg, int opt, const char *val)
{
    struct opts *o = arg;
    (void)c;
    switch (opt) {
    case OPT_STATE:
        o->state = val;
        return 1;
    case OPT_JOB:
        o->job = val;
        return 1;
    case OPT_COND:
        o->cond = val;
        return 1;
    case OPT_ALL:
        o->all = 1;
        return 1;
    case OPT_LIMIT:
        o->limit = val;
        return 1;
    case 'f':
    case OPT_FILE:
        o->file = val;
        return 1;
    }
    return 0;
}

static const char alerts_help[] =
    "usage: sked alerts SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Alerts opened by jobs' own alert rules and by global rules (sked alert-rules):\n"
    "a run that failed or is retrying, a missed SLA, an overrun, a missed fire time,\n"
    "a lost worker, a queue's backlog. An alert stays open until its condition\n"
    "clears; a notice goes out when it opens and when it resolves.\n"
    "\n"
    "subcommands:\n"
    "  ls                      alerts, newest first (open and past)\n"
    "  get ALERT_ID            one alert, with the delivery of its notices\n"
    "  ack ALERT_ID            acknowledge: no further notice for it; it still resolves\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked alerts ls --state open\n"
    "  sked alerts ls --job nightly --condition failed\n"
    "  sked alerts ack alr_01JD...\n";

static const char ls_help[] =
    "usage: sked alerts ls [--state open|resolved] [--job JOB] [--condition C] [--all]\n"
    "\n"
    "List alerts, newest first: id, state, condition, what it is about, when it\n"
    "opened, who acknowledged it, and what happened.\n"
    "\n"
    "options:\n"
    "  --state S            open or resolved (default: both)\n"
    "  --job JOB            a job's alerts (its id or name)\n"
    "  --condition C        failed, retrying, sla_missed, overrun, missed,\n"
    "                       worker_lost or backlog\n"
    "  --limit N            alerts per page (1-1000, default 100)\n"
    "  --all                follow every page\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked alerts ls --state open -o json\n";

static const char get_help[] = "usage: sked alerts get ALERT_ID\n"
                               "\n"
                               "Show an alert and each of its notices: channel, state, tries,\n"
                               "last error.\n"
                               "\n" CLI_COMMON_HELP "\n"
                               "example:\n"
                               "  sked alerts get alr_01JD...\n";

static const char ack_help[] =
    "usage: sked alerts ack ALERT_ID\n"
    "\n"
    "Acknowledge an alert: who and when are recorded, and no further notice goes\n"
    "out for it (not even its resolved notice). It still resolves when its\n"
    "condition clears. Needs the right to change the alert's job.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked alerts ack alr_01JD...\n";

static const char rules_help[] =
    "usage: sked alert-rules SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Global alert rules (admin): conditions, a scope (namespace, queue, job\n"
    "name, tag; left out = everything), parameters, and channels. A job's own\n"
    "rules are its spec's \"alerts\".\n"
    "\n"
    "subcommands:\n"
    "  ls                      the rules\n"
    "  get RULE_ID             one rule (webhook secrets show as ***)\n"
    "  create -f FILE          a new rule from a JSON document (- = stdin)\n"
    "  replace RULE_ID -f FILE replace a rule (a secret sent back as *** is kept)\n"
    "  rm RULE_ID              delete a rule; its open alerts close silently\n"
    "\n" CLI_COMMON_HELP "\n"
    "example rule:\n"
    "  {\"name\": \"etl-failures\", \"on\": [\"failed\", \"missed\"],\n"
    "   \"scope\": {\"namespace\": \"etl\"}, \"missed_window\": \"5m\",\n"
    "   \"channels\": [{\"webhook\": \"https://hooks.example/sked\", \"secret\": \"...\"},\n"
    "                {\"email\": \"oncall@example.com\"}]}\n";

/* ---- alerts --------------------------------------------------------------------- */

static void print_alerts(const json_t *list)
{
    cli_table_t *t =
        cli_table_new(7, "ID", "STATE", "CONDITION", "SUBJECT", "OPENED", "ACKED", "DETAIL");
    char opened[SKED_RFC3339_LEN];
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(list, "items"), i, a)
    {
        const char *acked = cli_str(a, "acked_by");
        cli_table_add(t, cli_str(a, "id"), cli_str(a, "state"), cli_str(a, "condition"),
                      cli_str(json_object_get(a, "subject"), "name"),
                      cli_fmt_time(json_object_get(a, "opened_at"), opened, sizeof opened),
                      acked ? acked : "-", cli_str(a, "detail"));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static void print_alert(const json_t *a)
{
    char t1[SKED_RFC3339_LEN], t2[SKED_RFC3339_LEN];
    const json_t *subj = json_object_get(a, "subject");
    printf("id:         %s\n", cli_str(a, "id"));
    printf("condition:  %s\n", cli_str(a, "condition"));
    printf("state:      %s\n", cli_str(a, "state"));
    printf("subject:    %s %s (%s)\n", cli_str(subj, "kind"), cli_str(subj, "name"),
           cli_str(subj, "id"));
    if (cli_str(a, "run_id")) printf("run:        %s\n", cli_str(a, "run_id"));
    printf("detail:     %s\n", cli_str(a, "detail"));
    printf("opened:     %s\n", cli_fmt_time(json_object_get(a, "opened_at"), t1, sizeof t1));
    if (cli_str(a, "resolved_at"))
        printf("resolved:   %s (%s)\n",
               cli_fmt_time(json_object_get(a, "resolved_at"), t2, sizeof t2),
               cli_str(a, "resolve_detail") ? cli_str(a, "resolve_detail") : "");
    if (cli_str(a, "acked_by"))
        printf("acked:      by %s at %s\n", cli_str(a, "acked_by"),
               cli_fmt_time(json_object_get(a, "acked_at"), t1, sizeof t1));
    const json_t *d = json_object_get(a, "deliveries");
    if (!json_array_size(d)) return;
    printf("\n");
    cli_table_t *t = cli_table_new(6, "NOTICE", "CHANNEL", "TARGET", "STATE", "TRIES", "ERROR");
    size_t i;
    json_t *e;
    json_array_foreach(d, i, e)
    {
        char tries[32];
        const char *err = cli_str(e, "last_error");
        cli_table_add(t, cli_str(e, "event"), cli_str(e, "channel"), cli_str(e, "target"),
                      cli_str(e, "state"),
                      cli_fmt_scalar(json_object_get(e, "tries"), tries, sizeof tries),
                      err ? err : "-");
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int alerts_ls(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                             {"state", required_argument, NULL, OPT_STATE},
                                             {"job", required_argument, NULL, OPT_JOB},
                                             {"condition", required_argument, NULL, OPT_COND},
                                             {"limit", required_argument, NULL, OPT_LIMIT},
                                             {"all", no_argument, NULL, OPT_ALL},
                                             {0}};
    struct opts o = {0};
    buf_t path = BUF_INIT;
    char job[SKED_ID_LEN];
    int first;
    int rc = cli_parse(c, argc, argv, longopts, "", 0, take_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(ls_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
    if (o.state && strcmp(o.state, "open") != 0 && strcmp(o.state, "resolved") != 0) {
        rc = cli_usage_error(c, "--state must be open or resolved, not '%s'", o.state);
        goto out;
    }
    buf_puts(&path, "/v1/alerts");
    if (o.job) {
        if ((rc = cli_job_ref(c, o.job, job)) != CLI_EXIT_OK) goto out;
        cli_query_add(&path, "job", job);
    }
    cli_query_add(&path, "state", o.state);
    cli_query_add(&path, "condition", o.cond);
    cli_query_add(&path, "limit", o.limit);
    rc = cli_list_show(c, path.data, o.all, print_alerts, "alerts");
out:
    buf_free(&path);
    return rc;
}

/* get / ack: one alert by id. */
static int alerts_one(cli_t *c, bool ack, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {0}};
    json_t *a = NULL;
    char *path = NULL, *esc = NULL;
    int first;
    int rc = cli_parse(c, argc, argv, longopts, "", 0, NULL, NULL, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(ack ? ack_help : get_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 1, 1, "ALERT_ID")) != CLI_EXIT_OK) goto out;
    esc = cli_url_escape(argv[first]);
    path = xasprintf("/v1/alerts/%s%s", esc, ack ? "/ack" : "");
    if (cli_call(c, ack ? "POST" : "GET", path, NULL, NULL, &a) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(a);
    else if (ack)
        printf("%s acknowledged by %s\n", cli_str(a, "id"),
               cli_str(a, "acked_by") ? cli_str(a, "acked_by") : "?");
    else
        print_alert(a);
out:
    json_decref(a);
    free(esc);
    free(path);
    return rc;
}

/* ---- rules ------------------------------------------------------------------------ */

static void join_on(buf_t *b, const json_t *on)
{
    size_t i;
    json_t *e;
    buf_reset(b);
    buf_puts(b, "");
    json_array_foreach(on, i, e)
    {
        buf_printf(b, "%s%s", i ? "," : "", json_string_value(e) ? json_string_value(e) : "");
    }
}

static void print_rules(const json_t *list)
{
    cli_table_t *t = cli_table_new(5, "ID", "NAME", "ON", "SCOPE", "CHANNELS");
    buf_t on = BUF_INIT, scope = BUF_INIT, ch = BUF_INIT;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(list, "items"), i, r)
    {
        const char *k;
        json_t *v;
        join_on(&on, json_object_get(r, "on"));
        buf_reset(&scope);
        buf_puts(&scope, "");
        json_object_foreach(json_object_get(r, "scope"), k, v)
        {
            buf_printf(&scope, "%s%s=%s", scope.len ? "," : "", k, json_string_value(v));
        }
        if (!scope.len) buf_puts(&scope, "*");
        buf_reset(&ch);
        buf_printf(&ch, "%zu", json_array_size(json_object_get(r, "channels")));
        cli_table_add(t, cli_str(r, "id"), cli_str(r, "name"), on.data, scope.data, ch.data);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
    buf_free(&on);
    buf_free(&scope);
    buf_free(&ch);
}

/* The JSON document in file (- = stdin). New; NULL after a message. */
static json_t *read_doc(const cli_t *c, const char *file)
{
    json_error_t jerr;
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    if (!f) {
        cli_usage_error(c, "cannot read %s: %s", file, strerror(errno));
        return NULL;
    }
    json_t *doc = json_loadf(f, 0, &jerr);
    if (f != stdin) fclose(f);
    if (!doc) cli_usage_error(c, "%s: not JSON: %s (line %d)", file, jerr.text, jerr.line);
    return doc;
}

static int rules_run(cli_t *c, const char *sub, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                             {"file", required_argument, NULL, OPT_FILE},
                                             {"all", no_argument, NULL, OPT_ALL},
                                             {0}};
    struct opts o = {0};
    json_t *doc = NULL, *out = NULL;
    char *path = NULL, *esc = NULL;
    int first, nargs = !strcmp(sub, "ls") || !strcmp(sub, "create") ? 0 : 1;
    int rc = cli_parse(c, argc, argv, longopts, "f:", 0, take_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(rules_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, nargs, nargs, nargs ? "RULE_ID" : "no arguments")) !=
        CLI_EXIT_OK)
        goto out;
    if (!strcmp(sub, "ls")) {
        rc = cli_list_show(c, "/v1/alert-rules?limit=1000", o.all, print_rules, "rules");
        goto out;
    }
    bool writes = !strcmp(sub, "create") || !strcmp(sub, "replace");
    if (writes && !o.file) {
        rc = cli_usage_error(c, "-f FILE is required: the rule's JSON document (- = stdin)");
        goto out;
    }
    if (writes && !(doc = read_doc(c, o.file))) {
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (nargs) esc = cli_url_escape(argv[first]);
    path = nargs ? xasprintf("/v1/alert-rules/%s", esc) : xstrdup("/v1/alert-rules");
    const char *method = !strcmp(sub, "create")    ? "POST"
                         : !strcmp(sub, "replace") ? "PUT"
                         : !strcmp(sub, "rm")      ? "DELETE"
                                                   : "GET";
    if (cli_call(c, method, path, doc, NULL, &out) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (!strcmp(sub, "rm"))
        printf("%s deleted\n", argv[first]);
    else if (c->json || !strcmp(sub, "get"))
        cli_print_json(out);
    else
        printf("%s %s\n", cli_str(out, "id"), !strcmp(sub, "create") ? "created" : "replaced");
out:
    json_decref(doc);
    json_decref(out);
    free(esc);
    free(path);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------------- */

static int alerts_run(cli_t *c, const char *sub, int argc, char **argv)
{
    if (!strcmp(sub, "ls")) return alerts_ls(c, argc, argv);
    return alerts_one(c, !strcmp(sub, "ack"), argc, argv);
}

int cmd_alerts(int argc, char **argv)
{
    static const char *const subs[] = {"ls", "get", "ack", NULL};
    return cli_dispatch("alerts", alerts_help, subs, argc, argv, alerts_run);
}

int cmd_alert_rules(int argc, char **argv)
{
    static const char *const subs[] = {"ls", "get", "create", "replace", "rm", NULL};
    return cli_dispatch("alert-rules", rules_help, subs, argc, argv, rules_run);
}
