/*
 * `sked workflows`: submit a workflow from a JSON or YAML file, list and
 * show workflows, their runs and the runs' tasks (drawn as a tree by
 * dependency), trigger, cancel, retry a task (alone or with its
 * downstream), pause, resume, replace and delete, over the REST API
 * (docs/workflows.md, "The CLI"):
 *
 *   POST /v1/workflows, GET /v1/workflows, GET|PUT|DELETE /v1/workflows/{id},
 *   POST /v1/workflows/{id}/pause|resume|trigger, GET /v1/workflows/{id}/runs,
 *   GET /v1/workflow-runs/{id}, POST /v1/workflow-runs/{id}/cancel,
 *   POST /v1/workflow-runs/{id}/tasks/{task}/retry
 *
 * WF is a workflow's id or its name (a name is looked up in the list of
 * workflows the caller can see and must be unique there).
 */
#include "cli/cli.h"

#include "common/error.h"
#include "common/xalloc.h"
#include "core/workflow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_FILE = CLI_OPT_CMD_BASE,
    OPT_DRY_RUN,
    OPT_IDEM,
    OPT_STATE,
    OPT_LIMIT,
    OPT_ALL,
    OPT_RUN,
    OPT_DOWNSTREAM,
};

static const char wf_help[] =
    "usage: sked workflows SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Workflows: named DAGs of tasks (each a job: command, env, retry, ...) that\n"
    "run in dependency order, in parallel where they can, on the workflow's\n"
    "schedules or when triggered. WF is a workflow's id or its name.\n"
    "\n"
    "subcommands:\n"
    "  submit -f FILE [--dry-run]   create a workflow from a JSON or YAML document\n"
    "  update WF -f FILE            replace a workflow's document (If-Match)\n"
    "  ls [--state S] [--all]       list workflows\n"
    "  get WF [--run RUN]           the workflow and its latest (or the given) run's\n"
    "                               tasks as a tree\n"
    "  runs WF [--all]              its runs, newest first\n"
    "  trigger WF                   start a run now; prints the run id\n"
    "  cancel RUN                   cancel a workflow run and its running tasks\n"
    "  retry RUN TASK [--downstream]  run a failed task again (and everything\n"
    "                               downstream of it) within the same run\n"
    "  pause WF | resume WF         stop / restart firing on its schedules\n"
    "  delete WF                    delete it; its active runs are canceled\n"
    "\n"
    "Run 'sked workflows SUBCOMMAND --help' for its options.\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked workflows submit -f etl.yaml\n"
    "  sked workflows get nightly-etl\n"
    "  sked workflows retry run_01JD... transform-eu --downstream\n";

static const char submit_help[] =
    "usage: sked workflows submit -f FILE [--dry-run] [--idempotency-key K] [-q]\n"
    "\n"
    "Create a workflow from a document: {name, schedules?, max_active_runs?,\n"
    "overlap?, misfire?, tags?, description?, tasks: [{name, depends_on?,\n"
    "trigger_rule?, command, ...any job field}]} (docs/workflows.md).\n"
    "\n"
    "  -f, --file FILE        the document: JSON, or YAML (by a .yaml/.yml/.json\n"
    "                         extension, else by content); - reads stdin\n"
    "  --dry-run              print the JSON body that would be sent and exit 0\n"
    "                         without calling the server (a note on stderr says\n"
    "                         when this sked would refuse it, and why)\n"
    "  --idempotency-key K    a retried submit with the same K creates one workflow\n"
    "  -q, --quiet            print only the new workflow's id\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked workflows submit -f etl.yaml\n"
    "  sked workflows submit -f etl.yaml --dry-run | jq .tasks[].name\n";

static const char update_help[] =
    "usage: sked workflows update WF -f FILE\n"
    "\n"
    "Replace a workflow's whole document (tasks, schedules, policies). Reads the\n"
    "workflow first and sends If-Match with its version, so a concurrent change\n"
    "fails (412) instead of being overwritten. Runs already started keep the\n"
    "tasks they started with.\n"
    "\n"
    "  -f, --file FILE        the new document (JSON or YAML; - = stdin)\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked workflows update nightly-etl -f etl.yaml\n";

static const char ls_help[] = "usage: sked workflows ls [OPTIONS]\n"
                              "\n"
                              "List workflows.\n"
                              "\n"
                              "  --state S              active | paused\n"
                              "  --limit N              page size (1-1000, default 100)\n"
                              "  --all                  follow cursors to list every workflow\n"
                              "\n" CLI_COMMON_HELP "\n"
                              "example:\n"
                              "  sked workflows ls --state paused -o json\n";

static const char get_help[] =
    "usage: sked workflows get WF [--run RUN]\n"
    "\n"
    "Show a workflow, then the tasks of its latest run (or of run RUN) as a tree\n"
    "by dependency, each with its state, attempt, exit code and skip reason. A\n"
    "task that waits for several others appears under each of them; after the\n"
    "first time it is marked (repeat) and its own downstream is not drawn again.\n"
    "A trigger rule other than all_success shows after the task's name. With no\n"
    "run yet, the tree shows each task's command.\n"
    "\n"
    "  --run RUN              a given run of the workflow instead of the latest\n"
    "\n"
    "With -o json: the workflow, or with --run the workflow run, as the server\n"
    "sends it.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked workflows get nightly-etl\n";

static const char runs_help[] = "usage: sked workflows runs WF [--limit N] [--all]\n"
                                "\n"
                                "List a workflow's runs, newest first, with their task counts.\n"
                                "\n"
                                "  --limit N              page size (1-1000, default 100)\n"
                                "  --all                  follow cursors to list every run\n"
                                "\n" CLI_COMMON_HELP "\n"
                                "example:\n"
                                "  sked workflows runs nightly-etl --limit 10\n";

static const char trigger_help[] =
    "usage: sked workflows trigger WF\n"
    "\n"
    "Start a run of the workflow now, outside its schedules (max_active_runs and\n"
    "the overlap policy apply). Prints the workflow run's id.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked workflows get nightly-etl --run $(sked workflows trigger nightly-etl)\n";

static const char cancel_help[] =
    "usage: sked workflows cancel RUN\n"
    "\n"
    "Cancel a workflow run: its running tasks are canceled (SIGTERM, then SIGKILL\n"
    "after a grace period) and its tasks that did not start end canceled.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked workflows cancel run_01JD...\n";

static const char retry_help[] =
    "usage: sked workflows retry RUN TASK [--downstream]\n"
    "\n"
    "Run a failed (or canceled, or skipped) task of a workflow run again, within\n"
    "the same run. Its downstream tasks that already ended keep their outcome\n"
    "unless --downstream is given.\n"
    "\n"
    "  --downstream           also reset every task downstream of TASK, so they\n"
    "                         run again once TASK ends (by their trigger rules)\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked workflows retry run_01JD... load --downstream\n";

static const char pause_help[] = "usage: sked workflows pause WF\n"
                                 "\n"
                                 "Stop the workflow from firing new runs on its schedules.\n"
                                 "\n" CLI_COMMON_HELP "\n"
                                 "example:\n"
                                 "  sked workflows pause nightly-etl\n";

static const char resume_help[] =
    "usage: sked workflows resume WF\n"
    "\n"
    "Let a paused workflow fire again; missed fire times go by its misfire\n"
    "policy.\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked workflows resume nightly-etl\n";

static const char delete_help[] = "usage: sked workflows delete WF\n"
                                  "\n"
                                  "Delete a workflow; its active runs are canceled.\n"
                                  "\n" CLI_COMMON_HELP "\n"
                                  "example:\n"
                                  "  sked workflows delete nightly-etl\n";

/* ---- the tree ------------------------------------------------------------ */

typedef struct name_ref {
    const char *name;
    size_t idx;
} name_ref_t;

static int cmp_name_ref(const void *a, const void *b)
{
    return strcmp(((const name_ref_t *)a)->name, ((const name_ref_t *)b)->name);
}

static const char *task_name(const json_t *t)
{
    const char *s = cli_str(t, "name");
    return s ? s : "?";
}

/* One line of the tree: the branches of the ancestors (last[1..depth-1]),
 * this task's own branch, its name, rule and repeat mark, then its
 * columns. */
static void tree_line(cli_table_t *tab, bool with_state, const json_t *t, size_t depth,
                      const bool *last, bool repeat)
{
    buf_t b = BUF_INIT;
    char attempt[32], code[32];
    buf_puts(&b, "");
    for (size_t k = 1; k < depth; k++)
        buf_puts(&b, last[k] ? "    " : "\u2502   ");
    if (depth) buf_puts(&b, last[depth] ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ");
    buf_puts(&b, task_name(t));
    const char *rule = cli_str(t, "trigger_rule");
    if (rule && strcmp(rule, "all_success") != 0) buf_printf(&b, " [%s]", rule);
    if (repeat) buf_puts(&b, " (repeat)");
    if (with_state) {
        cli_table_add(tab, b.data, cli_str(t, "state"),
                      cli_fmt_scalar(json_object_get(t, "attempt"), attempt, sizeof attempt),
                      cli_fmt_scalar(json_object_get(t, "exit_code"), code, sizeof code),
                      cli_str(t, "reason"));
    } else {
        buf_t cmd = BUF_INIT;
        buf_puts(&cmd, "");
        cli_fmt_argv(&cmd, json_object_get(t, "command"));
        cli_table_add(tab, b.data, cmd.data);
        buf_free(&cmd);
    }
    buf_free(&b);
}

char *cli_workflow_tree(const json_t *tasks)
{
    size_t n = json_array_size(tasks), nedges = 0;
    name_ref_t *byname = xcalloc(n + 1, sizeof *byname);
    size_t *start = xcalloc(n + 2, sizeof *start), *fill = NULL, *kids = NULL;
    size_t *up = NULL;                         /* per edge: the upstream index, or n when unknown */
    size_t *ups = xcalloc(n + 1, sizeof *ups); /* known upstreams per task */
    bool *expanded = xcalloc(n + 1, sizeof *expanded);
    bool *last = xcalloc(n + 2, sizeof *last);
    struct frame {
        size_t task, next;
    } *stack = xcalloc(n + 1, sizeof *stack);
    bool with_state = false;
    size_t i, j;
    json_t *t, *d;

    json_array_foreach(tasks, i, t)
    {
        byname[i] = (name_ref_t){task_name(t), i};
        if (json_object_get(t, "state")) with_state = true;
        nedges += json_array_size(json_object_get(t, "depends_on"));
    }
    qsort(byname, n, sizeof *byname, cmp_name_ref);

    /* Downstream lists (CSR), in the order the tasks are given. */
    up = xcalloc(nedges + 1, sizeof *up);
    size_t e = 0;
    json_array_foreach(tasks, i, t)
    {
        json_array_foreach(json_object_get(t, "depends_on"), j, d)
        {
            name_ref_t key = {json_string_value(d) ? json_string_value(d) : "", 0};
            name_ref_t *hit = bsearch(&key, byname, n, sizeof *byname, cmp_name_ref);
            up[e] = hit && hit->idx != i ? hit->idx : n;
            if (up[e] < n) {
                start[up[e] + 1]++;
                ups[i]++;
            }
            e++;
        }
    }
    for (i = 0; i < n; i++)
        start[i + 1] += start[i];
    fill = xcalloc(n + 1, sizeof *fill);
    memcpy(fill, start, (n + 1) * sizeof *fill);
    kids = xcalloc(start[n] + 1, sizeof *kids);
    e = 0;
    json_array_foreach(tasks, i, t)
    {
        for (j = 0; j < json_array_size(json_object_get(t, "depends_on")); j++, e++)
            if (up[e] < n) kids[fill[up[e]]++] = i;
    }

    cli_table_t *tab = with_state ? cli_table_new(5, "TASK", "STATE", "ATTEMPT", "EXIT", "REASON")
                                  : cli_table_new(2, "TASK", "COMMAND");
    /* Roots first (no known upstream), then whatever no root reached (only
     * a cycle in bad data could leave any), each as a root. Depth-first
     * with an explicit stack: each task is expanded once, so this ends. */
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t r = 0; r < n; r++) {
            if (expanded[r] || (pass == 0 && ups[r] > 0)) continue;
            size_t sp = 0;
            tree_line(tab, with_state, json_array_get(tasks, r), 0, last, false);
            expanded[r] = true;
            stack[sp++] = (struct frame){r, start[r]};
            while (sp > 0) {
                struct frame *f = &stack[sp - 1];
                if (f->next == start[f->task + 1]) {
                    sp--;
                    continue;
                }
                size_t c = kids[f->next++];
                last[sp] = f->next == start[f->task + 1];
                tree_line(tab, with_state, json_array_get(tasks, c), sp, last, expanded[c]);
                if (!expanded[c]) {
                    expanded[c] = true;
                    stack[sp++] = (struct frame){c, start[c]};
                }
            }
        }
    }
    char *out = cli_table_render(tab);
    cli_table_free(tab);
    free(byname);
    free(start);
    free(fill);
    free(kids);
    free(up);
    free(ups);
    free(expanded);
    free(last);
    free(stack);
    return out;
}

/* ---- helpers ------------------------------------------------------------- */

struct opts {
    const char *file, *idem, *state, *limit, *run;
    int dry_run, all, downstream, quiet;
};

static int take_opt(cli_t *c, void *arg, int opt, const char *val)
{
    struct opts *o = arg;
    long long n;
    switch (opt) {
    case 'f':
    case OPT_FILE:
        o->file = val;
        return 1;
    case OPT_DRY_RUN:
        o->dry_run = 1;
        return 1;
    case OPT_IDEM:
        o->idem = val;
        return 1;
    case 'q':
        o->quiet = 1;
        return 1;
    case OPT_STATE:
        o->state = val;
        return 1;
    case OPT_LIMIT:
        if (cli_parse_int(val, 1, 1000, &n) < 0) {
            cli_usage_error(c, "--limit: '%s' is not a number from 1 to 1000", val);
            return SKED_EINVAL;
        }
        o->limit = val;
        return 1;
    case OPT_ALL:
        o->all = 1;
        return 1;
    case OPT_RUN:
        o->run = val;
        return 1;
    case OPT_DOWNSTREAM:
        o->downstream = 1;
        return 1;
    default:
        return 0;
    }
}

static const struct option longopts[] = {
    CLI_COMMON_LONGOPTS,
    {"file", required_argument, NULL, OPT_FILE},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"idempotency-key", required_argument, NULL, OPT_IDEM},
    {"quiet", no_argument, NULL, 'q'},
    {"state", required_argument, NULL, OPT_STATE},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"all", no_argument, NULL, OPT_ALL},
    {"run", required_argument, NULL, OPT_RUN},
    {"downstream", no_argument, NULL, OPT_DOWNSTREAM},
    {0},
};

/* Which options each subcommand takes (the parser knows them all):
 * allowed lists them, each followed by a space. */
static int only_opts(const cli_t *c, const struct opts *o, const char *allowed)
{
    static const char *const names[] = {"-f",    "--dry-run", "--idempotency-key",
                                        "-q",    "--state",   "--limit",
                                        "--all", "--run",     "--downstream"};
    int set[] = {!!o->file,  o->dry_run, !!o->idem, o->quiet,     !!o->state,
                 !!o->limit, o->all,     !!o->run,  o->downstream};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char word[32];
        snprintf(word, sizeof word, "%s ", names[i]);
        if (set[i] && !strstr(allowed, word))
            return cli_usage_error(c, "%s does not apply here", names[i]);
    }
    return CLI_EXIT_OK;
}

/* Resolves WF (an id, or a unique name) into id[SKED_ID_LEN]. */
static int wf_ref(cli_t *c, const char *ref, char *id)
{
    json_t *list = NULL, *w;
    size_t i, found = 0;
    if (id_valid(ref)) {
        snprintf(id, SKED_ID_LEN, "%s", ref);
        return CLI_EXIT_OK;
    }
    if (cli_list(c, "/v1/workflows?limit=1000", 1, &list) < 0) return CLI_EXIT_FAIL;
    json_array_foreach(json_object_get(list, "items"), i, w)
    {
        const char *name = cli_str(w, "name");
        if (!name || strcmp(name, ref) != 0) continue;
        if (found++ == 0) snprintf(id, SKED_ID_LEN, "%s", cli_str(w, "id") ? cli_str(w, "id") : "");
    }
    json_decref(list);
    if (found == 1) return CLI_EXIT_OK;
    if (found == 0)
        fprintf(stderr, "sked %s: no workflow named or with the id '%s'\n", c->cmd, ref);
    else
        fprintf(stderr, "sked %s: %zu workflows are named '%s'; give the workflow's id\n", c->cmd,
                found, ref);
    return CLI_EXIT_FAIL;
}

/* "3 succeeded, 1 failed" from a run's counts; "-" when all are zero. */
static void fmt_counts(buf_t *b, const json_t *counts)
{
    static const char *const keys[] = {"succeeded", "failed",  "canceled", "skipped",
                                       "running",   "pending", "waiting"};
    size_t start = b->len;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_int_t n = json_integer_value(json_object_get(counts, keys[i]));
        if (n > 0)
            buf_printf(b, "%s%" JSON_INTEGER_FORMAT " %s", b->len > start ? ", " : "", n, keys[i]);
    }
    if (b->len == start) buf_puts(b, "-");
}

static const char *next_fire(const json_t *wf, char *out, size_t len)
{
    if (json_is_string(json_object_get(wf, "next_fire_at")))
        return cli_fmt_time(json_object_get(wf, "next_fire_at"), out, len);
    return cli_job_next_fire(wf, out, len);
}

static void print_workflow(const json_t *wf)
{
    cli_table_t *kv = cli_table_new(2, NULL, NULL);
    buf_t b = BUF_INIT;
    char s[256], t[SKED_RFC3339_LEN];
    size_t i;
    json_t *v;

    cli_table_add(kv, "ID:", cli_str(wf, "id"));
    cli_table_add(kv, "Name:", cli_str(wf, "name"));
    if (cli_str(wf, "description")) cli_table_add(kv, "Description:", cli_str(wf, "description"));
    cli_table_add(kv, "State:", cli_str(wf, "state"));
    cli_table_add(kv, "Version:", cli_fmt_scalar(json_object_get(wf, "version"), s, sizeof s));
    buf_puts(&b, "");
    json_array_foreach(json_object_get(wf, "schedules"), i, v)
    {
        buf_printf(&b, "%s%s", i ? "; " : "", cli_fmt_schedule(v, s, sizeof s));
    }
    cli_table_add(kv, "Schedules:", b.len ? b.data : "none (trigger only)");
    cli_table_add(kv, "Next fire:", next_fire(wf, t, sizeof t));
    buf_reset(&b);
    buf_printf(&b, "%s (overlap: %s)",
               cli_fmt_scalar(json_object_get(wf, "max_active_runs"), s, sizeof s),
               cli_str(wf, "overlap") ? cli_str(wf, "overlap") : "-");
    cli_table_add(kv, "Max active runs:", b.data);
    cli_table_add(kv, "Misfire:", cli_str(wf, "misfire"));
    buf_reset(&b);
    buf_puts(&b, "");
    json_array_foreach(json_object_get(wf, "tags"), i, v)
    {
        buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(v) ? json_string_value(v) : "");
    }
    cli_table_add(kv, "Tags:", b.len ? b.data : NULL);
    snprintf(s, sizeof s, "%zu", json_array_size(json_object_get(wf, "tasks")));
    cli_table_add(kv, "Tasks:", s);
    cli_table_add(kv, "Created:", cli_fmt_time(json_object_get(wf, "created_at"), t, sizeof t));
    cli_table_add(kv, "Updated:", cli_fmt_time(json_object_get(wf, "updated_at"), t, sizeof t));
    cli_table_print(kv, stdout);
    cli_table_free(kv);
    buf_free(&b);
}

/* "Run wfr_1: failed (fired ..., started ..., finished ...): 3 succeeded,
 * 1 failed", the run's reason when it has one, then its tasks' tree. */
static void print_run(const json_t *run)
{
    buf_t b = BUF_INIT;
    char t1[SKED_RFC3339_LEN], t2[SKED_RFC3339_LEN], t3[SKED_RFC3339_LEN];
    buf_printf(&b, "Run %s: %s (fired %s, started %s, finished %s): ",
               cli_str(run, "id") ? cli_str(run, "id") : "-",
               cli_str(run, "state") ? cli_str(run, "state") : "-",
               cli_fmt_time(json_object_get(run, "fire_time"), t1, sizeof t1),
               cli_fmt_time(json_object_get(run, "started_at"), t2, sizeof t2),
               cli_fmt_time(json_object_get(run, "finished_at"), t3, sizeof t3));
    fmt_counts(&b, json_object_get(run, "counts"));
    if (cli_str(run, "reason")) buf_printf(&b, "; reason: %s", cli_str(run, "reason"));
    printf("%s\n", b.data);
    char *tree = cli_workflow_tree(json_object_get(run, "tasks"));
    fputs(tree, stdout);
    free(tree);
    buf_free(&b);
}

/* Parses a subcommand's options and checks its positional count. Returns
 * CLI_EXIT_OK with *first set, or an exit status; with --help prints help
 * and sets c->help. */
static int parse(cli_t *c, int argc, char **argv, const char *help, const char *allowed,
                 struct opts *o, int nargs, const char *what, int *first)
{
    int rc = cli_parse(c, argc, argv, longopts, "f:q", 0, take_opt, o, first);
    if (rc != CLI_EXIT_OK) return rc;
    if (c->help) {
        fputs(help, stdout);
        return CLI_EXIT_OK;
    }
    if ((rc = only_opts(c, o, allowed)) != CLI_EXIT_OK) return rc;
    return cli_want_args(c, argc - *first, nargs, nargs, what);
}

/* ---- subcommands ---------------------------------------------------------- */

static int wf_submit(cli_t *c, int argc, char **argv)
{
    struct opts o = {0};
    json_t *doc = NULL, *wf = NULL;
    char *idem = NULL;
    int first;
    int rc = parse(c, argc, argv, submit_help, "-f --dry-run --idempotency-key -q ", &o, 0,
                   "no arguments (the document comes with -f FILE)", &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    if (!o.file) {
        rc = cli_usage_error(c, "-f FILE is required: the workflow's JSON or YAML document "
                                "(- = stdin)");
        goto out;
    }
    if ((rc = cli_read_doc(c, o.file, &doc)) != CLI_EXIT_OK) goto out;
    if (o.dry_run) {
        wfspec_t spec;
        jobspec_error_t err;
        cli_print_json(doc);
        if (wfspec_parse(doc, &spec, &err) == 0)
            wfspec_free(&spec);
        else
            fprintf(stderr, "sked %s: note: this document would be refused: %s\n", c->cmd,
                    err.detail);
        goto out;
    }
    if (o.idem) idem = xasprintf("Idempotency-Key: %s", o.idem);
    const char *headers[] = {idem, NULL};
    if (cli_call(c, "POST", "/v1/workflows", doc, idem ? headers : NULL, &wf) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json) {
        cli_print_json(wf);
    } else if (o.quiet) {
        printf("%s\n", cli_str(wf, "id") ? cli_str(wf, "id") : "");
    } else {
        char tasks[32], next[SKED_RFC3339_LEN];
        cli_table_t *t = cli_table_new(4, "ID", "NAME", "TASKS", "NEXT FIRE");
        snprintf(tasks, sizeof tasks, "%zu", json_array_size(json_object_get(wf, "tasks")));
        cli_table_add(t, cli_str(wf, "id"), cli_str(wf, "name"), tasks,
                      next_fire(wf, next, sizeof next));
        cli_table_print(t, stdout);
        cli_table_free(t);
    }
out:
    json_decref(doc);
    json_decref(wf);
    free(idem);
    return rc;
}

static int wf_update(cli_t *c, int argc, char **argv)
{
    struct opts o = {0};
    json_t *doc = NULL, *wf = NULL, *updated = NULL;
    char id[SKED_ID_LEN];
    char *path = NULL, *esc = NULL, *ifmatch = NULL;
    int first;
    int rc = parse(c, argc, argv, update_help, "-f ", &o, 1, "WF (an id or a name)", &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    if (!o.file) {
        rc = cli_usage_error(c, "-f FILE is required: the workflow's new document (- = stdin)");
        goto out;
    }
    if ((rc = cli_read_doc(c, o.file, &doc)) != CLI_EXIT_OK) goto out;
    if ((rc = wf_ref(c, argv[first], id)) != CLI_EXIT_OK) goto out;
    rc = CLI_EXIT_FAIL;
    esc = cli_url_escape(id);
    path = xasprintf("/v1/workflows/%s", esc);
    if (cli_call(c, "GET", path, NULL, NULL, &wf) < 0) goto out;
    json_t *version = json_object_get(wf, "version");
    if (!json_is_integer(version)) {
        fprintf(stderr, "sked: the server's workflow has no version\n");
        goto out;
    }
    ifmatch = xasprintf("If-Match: %" JSON_INTEGER_FORMAT, json_integer_value(version));
    const char *headers[] = {ifmatch, NULL};
    if (cli_call(c, "PUT", path, doc, headers, &updated) < 0) goto out;
    if (c->json) {
        cli_print_json(updated);
    } else {
        char v[32];
        printf("%s updated (version %s)\n", id,
               cli_fmt_scalar(json_object_get(updated, "version"), v, sizeof v));
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(doc);
    json_decref(wf);
    json_decref(updated);
    free(path);
    free(esc);
    free(ifmatch);
    return rc;
}

static void print_workflows(const json_t *list)
{
    cli_table_t *t = cli_table_new(6, "ID", "NAME", "STATE", "TASKS", "SCHEDULE", "NEXT FIRE");
    char tasks[32], sch[512], next[SKED_RFC3339_LEN];
    size_t i;
    json_t *wf;
    json_array_foreach(json_object_get(list, "items"), i, wf)
    {
        cli_fmt_schedules(json_object_get(wf, "schedules"), sch, sizeof sch);
        snprintf(tasks, sizeof tasks, "%zu", json_array_size(json_object_get(wf, "tasks")));
        cli_table_add(t, cli_str(wf, "id"), cli_str(wf, "name"), cli_str(wf, "state"), tasks, sch,
                      next_fire(wf, next, sizeof next));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int wf_ls(cli_t *c, int argc, char **argv)
{
    struct opts o = {0};
    buf_t path = BUF_INIT;
    int first;
    int rc = parse(c, argc, argv, ls_help, "--state --limit --all ", &o, 0, "no arguments", &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    buf_puts(&path, "/v1/workflows");
    cli_query_add(&path, "state", o.state);
    cli_query_add(&path, "limit", o.limit);
    rc = cli_list_show(c, path.data, o.all, print_workflows, "workflows");
out:
    buf_free(&path);
    return rc;
}

static int wf_get(cli_t *c, int argc, char **argv)
{
    struct opts o = {0};
    json_t *wf = NULL, *runs = NULL, *run = NULL;
    char id[SKED_ID_LEN];
    char *path = NULL, *esc = NULL;
    int first;
    int rc = parse(c, argc, argv, get_help, "--run ", &o, 1, "WF (an id or a name)", &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    if ((rc = wf_ref(c, argv[first], id)) != CLI_EXIT_OK) goto out;
    rc = CLI_EXIT_FAIL;
    esc = cli_url_escape(id);
    path = xasprintf("/v1/workflows/%s", esc);
    if (cli_call(c, "GET", path, NULL, NULL, &wf) < 0) goto out;
    if (c->json && !o.run) {
        cli_print_json(wf);
        rc = CLI_EXIT_OK;
        goto out;
    }
    const char *run_id = o.run;
    if (!run_id) {
        free(path);
        path = xasprintf("/v1/workflows/%s/runs?limit=1", esc);
        if (cli_call(c, "GET", path, NULL, NULL, &runs) < 0) goto out;
        run_id = cli_str(json_array_get(json_object_get(runs, "items"), 0), "id");
    }
    if (run_id) {
        /* The list's entry may leave the tasks out: ask for the run itself. */
        char *resc = cli_url_escape(run_id);
        free(path);
        path = xasprintf("/v1/workflow-runs/%s", resc);
        free(resc);
        if (cli_call(c, "GET", path, NULL, NULL, &run) < 0) goto out;
    }
    if (c->json) {
        cli_print_json(run);
    } else {
        print_workflow(wf);
        fputc('\n', stdout);
        if (run) {
            print_run(run);
        } else {
            char *tree = cli_workflow_tree(json_object_get(wf, "tasks"));
            printf("No runs yet.\n");
            fputs(tree, stdout);
            free(tree);
        }
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(wf);
    json_decref(runs);
    json_decref(run);
    free(path);
    free(esc);
    return rc;
}

static void print_runs(const json_t *list)
{
    cli_table_t *t = cli_table_new(6, "ID", "STATE", "FIRE TIME", "STARTED", "FINISHED", "TASKS");
    char t1[SKED_RFC3339_LEN], t2[SKED_RFC3339_LEN], t3[SKED_RFC3339_LEN];
    buf_t counts = BUF_INIT;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(list, "items"), i, r)
    {
        buf_reset(&counts);
        buf_puts(&counts, "");
        fmt_counts(&counts, json_object_get(r, "counts"));
        cli_table_add(t, cli_str(r, "id"), cli_str(r, "state"),
                      cli_fmt_time(json_object_get(r, "fire_time"), t1, sizeof t1),
                      cli_fmt_time(json_object_get(r, "started_at"), t2, sizeof t2),
                      cli_fmt_time(json_object_get(r, "finished_at"), t3, sizeof t3), counts.data);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
    buf_free(&counts);
}

static int wf_runs(cli_t *c, int argc, char **argv)
{
    struct opts o = {0};
    buf_t path = BUF_INIT;
    char id[SKED_ID_LEN], *esc = NULL;
    int first;
    int rc =
        parse(c, argc, argv, runs_help, "--limit --all ", &o, 1, "WF (an id or a name)", &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    if ((rc = wf_ref(c, argv[first], id)) != CLI_EXIT_OK) goto out;
    esc = cli_url_escape(id);
    buf_printf(&path, "/v1/workflows/%s/runs", esc);
    cli_query_add(&path, "limit", o.limit);
    rc = cli_list_show(c, path.data, o.all, print_runs, "runs");
out:
    buf_free(&path);
    free(esc);
    return rc;
}

/* trigger, pause, resume, delete: one call on a workflow. */
static int wf_action(cli_t *c, int argc, char **argv, const char *help, const char *method,
                     const char *verb)
{
    struct opts o = {0};
    char id[SKED_ID_LEN];
    int first;
    int rc = parse(c, argc, argv, help, "", &o, 1, "WF (an id or a name)", &first);
    if (rc != CLI_EXIT_OK || c->help) return rc;
    if ((rc = wf_ref(c, argv[first], id)) != CLI_EXIT_OK) return rc;
    return cli_resource_action(c, "/v1/workflows", id, method, verb);
}

/* cancel RUN, retry RUN TASK: a call on a workflow run, answered with it. */
static int wf_run_action(cli_t *c, int argc, char **argv, bool retry)
{
    struct opts o = {0};
    json_t *res = NULL, *body = NULL;
    char *path = NULL, *esc = NULL, *tesc = NULL;
    int first;
    int rc = parse(c, argc, argv, retry ? retry_help : cancel_help, retry ? "--downstream " : "",
                   &o, retry ? 2 : 1, retry ? "RUN and TASK" : "RUN (a workflow run's id)", &first);
    if (rc != CLI_EXIT_OK || c->help) goto out;
    esc = cli_url_escape(argv[first]);
    if (retry) {
        tesc = cli_url_escape(argv[first + 1]);
        path = xasprintf("/v1/workflow-runs/%s/tasks/%s/retry", esc, tesc);
        body = json_pack("{s:b}", "downstream", o.downstream);
    } else {
        path = xasprintf("/v1/workflow-runs/%s/cancel", esc);
    }
    if (cli_call(c, "POST", path, body, NULL, &res) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(res);
    else if (retry)
        print_run(res);
    else
        printf("%s %s\n", argv[first], cli_str(res, "state") ? cli_str(res, "state") : "canceled");
out:
    json_decref(res);
    json_decref(body);
    free(path);
    free(esc);
    free(tesc);
    return rc;
}

static int wf_run(cli_t *c, const char *sub, int argc, char **argv)
{
    if (!strcmp(sub, "submit")) return wf_submit(c, argc, argv);
    if (!strcmp(sub, "update")) return wf_update(c, argc, argv);
    if (!strcmp(sub, "ls")) return wf_ls(c, argc, argv);
    if (!strcmp(sub, "get")) return wf_get(c, argc, argv);
    if (!strcmp(sub, "runs")) return wf_runs(c, argc, argv);
    if (!strcmp(sub, "trigger")) return wf_action(c, argc, argv, trigger_help, "POST", "trigger");
    if (!strcmp(sub, "pause")) return wf_action(c, argc, argv, pause_help, "POST", "pause");
    if (!strcmp(sub, "resume")) return wf_action(c, argc, argv, resume_help, "POST", "resume");
    if (!strcmp(sub, "delete") || !strcmp(sub, "rm"))
        return wf_action(c, argc, argv, delete_help, "DELETE", NULL);
    if (!strcmp(sub, "cancel")) return wf_run_action(c, argc, argv, false);
    return wf_run_action(c, argc, argv, true); /* retry */
}

int cmd_workflows(int argc, char **argv)
{
    static const char *const subs[] = {"submit",  "update", "ls",     "get",    "runs",
                                       "trigger", "pause",  "resume", "delete", "rm",
                                       "cancel",  "retry",  NULL};
    return cli_dispatch("workflows", wf_help, subs, argc, argv, wf_run);
}
