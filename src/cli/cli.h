/*
 * Internals shared by the client commands (`sked submit`, `jobs`, `runs`,
 * `workers`): the common options (--server, --token, --token-file, --ca, -o),
 * token resolution, the HTTP call wrapper that turns problem+json answers
 * and transport failures into one-line messages, an aligned table printer,
 * time formatting, and the job-field and schedule options that submit and
 * `jobs edit` both understand. One copy of each; the cmd_*.c files only
 * parse their own arguments and choose what to print.
 *
 * Everything here runs in the single CLI thread; nothing is thread-safe.
 * Messages for the person at the terminal go to stderr, prefixed "sked: ";
 * results go to stdout.
 */
#ifndef SKED_CLI_CLI_H
#define SKED_CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/id.h"
#include "common/clock.h"
#include "common/httpc.h"

/* The client subcommands, dispatched by cmd/main.c. Each parses its own
 * argv (argv[0] is the subcommand name) and returns an exit status below. */
int cmd_submit(int argc, char **argv);      /* cmd_submit.c */
int cmd_jobs(int argc, char **argv);        /* cmd_jobs.c */
int cmd_runs(int argc, char **argv);        /* cmd_runs.c */
int cmd_workers(int argc, char **argv);     /* cmd_workers.c */
int cmd_plugins(int argc, char **argv);     /* cmd_plugins.c */
int cmd_login(int argc, char **argv);       /* cmd_auth.c */
int cmd_users(int argc, char **argv);       /* cmd_auth.c */
int cmd_tokens(int argc, char **argv);      /* cmd_auth.c */
int cmd_audit(int argc, char **argv);       /* cmd_auth.c */
int cmd_watch(int argc, char **argv);       /* cmd_watch.c */
int cmd_alerts(int argc, char **argv);      /* cmd_alerts.c */
int cmd_alert_rules(int argc, char **argv); /* cmd_alerts.c */
int cmd_workflows(int argc, char **argv);   /* cmd_workflows.c */

/* Process exit statuses of the client commands. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1 /* the server said no, or could not be reached */
#define CLI_EXIT_USAGE 2 /* bad command line */

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8080"
#define CLI_DEFAULT_TOKEN_FILE                                                                     \
    "sked-data/admin.token" /* relative to cwd: where `sked dev` writes it */
#define CLI_TOKEN_MAX 4096  /* bytes read from a token file */

/* getopt_long values of the long-only options; above any char. */
enum cli_opt {
    CLI_OPT_SERVER = 0x100,
    CLI_OPT_TOKEN,
    CLI_OPT_TOKEN_FILE,
    /* schedule options */
    CLI_OPT_CRON,
    CLI_OPT_TZ,
    CLI_OPT_EVERY,
    CLI_OPT_AT,
    /* job-field options (submit, jobs edit) */
    CLI_OPT_NAME,
    CLI_OPT_PRIORITY,
    CLI_OPT_QUEUE,
    CLI_OPT_TIMEOUT,
    CLI_OPT_RETRIES,
    CLI_OPT_ENV,
    CLI_OPT_CWD,
    CLI_OPT_CONSTRAINT,
    CLI_OPT_OVERLAP,
    CLI_OPT_MISFIRE,
    CLI_OPT_MAX_CONC,
    CLI_OPT_TAG,
    CLI_OPT_ARRAY,
    CLI_OPT_DEPENDENCY,
    CLI_OPT_CA, /* common: trusted CA file for https servers */
    /* command-specific options start here */
    CLI_OPT_CMD_BASE = 0x200,
};

/* Entries for a getopt_long table; end the table with {0}. The short
 * options of the common set are CLI_COMMON_SHORTOPTS. */
#define CLI_COMMON_LONGOPTS                                                                        \
    {"server", required_argument, NULL, CLI_OPT_SERVER},                                           \
        {"token", required_argument, NULL, CLI_OPT_TOKEN},                                         \
        {"token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE},                               \
        {"ca", required_argument, NULL, CLI_OPT_CA}, {"output", required_argument, NULL, 'o'},     \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }
#define CLI_COMMON_SHORTOPTS "o:h"

#define CLI_SCHED_LONGOPTS                                                                         \
    {"cron", required_argument, NULL, CLI_OPT_CRON}, {"tz", required_argument, NULL, CLI_OPT_TZ},  \
        {"every", required_argument, NULL, CLI_OPT_EVERY},                                         \
    {                                                                                              \
        "at", required_argument, NULL, CLI_OPT_AT                                                  \
    }

#define CLI_JOB_LONGOPTS                                                                           \
    {"name", required_argument, NULL, CLI_OPT_NAME},                                               \
        {"priority", required_argument, NULL, CLI_OPT_PRIORITY},                                   \
        {"queue", required_argument, NULL, CLI_OPT_QUEUE},                                         \
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                     \
        {"retries", required_argument, NULL, CLI_OPT_RETRIES},                                     \
        {"env", required_argument, NULL, CLI_OPT_ENV},                                             \
        {"cwd", required_argument, NULL, CLI_OPT_CWD},                                             \
        {"constraint", required_argument, NULL, CLI_OPT_CONSTRAINT},                               \
        {"overlap", required_argument, NULL, CLI_OPT_OVERLAP},                                     \
        {"misfire", required_argument, NULL, CLI_OPT_MISFIRE},                                     \
        {"max-concurrency", required_argument, NULL, CLI_OPT_MAX_CONC},                            \
        {"array", required_argument, NULL, CLI_OPT_ARRAY},                                         \
        {"dependency", required_argument, NULL, CLI_OPT_DEPENDENCY},                               \
    {                                                                                              \
        "tag", required_argument, NULL, CLI_OPT_TAG                                                \
    }

/* Help text lines for the option sets above, for the commands' --help. */
#define CLI_COMMON_HELP                                                                            \
    "common options:\n"                                                                            \
    "  --server URL[,URL...]  servers to try in turn (env SKED_SERVER;\n"                          \
    "                         default " CLI_DEFAULT_SERVER ")\n"                                   \
    "  --token T              bearer token (env SKED_TOKEN)\n"                                     \
    "  --token-file F         read the token from F (env SKED_TOKEN_FILE; default\n"               \
    "                         ./" CLI_DEFAULT_TOKEN_FILE " when readable)\n"                       \
    "  --ca FILE              trust the CA certificate(s) in FILE for https servers\n"             \
    "                         instead of the system's (env SKED_CA)\n"                             \
    "  -o, --output FORMAT    'table' (default, for people) or 'json' (for scripts)\n"             \
    "  -h, --help             show this help\n"
#define CLI_SCHED_HELP                                                                             \
    "  --cron EXPR            cron schedule (5 or 6 fields, or @daily etc.)\n"                     \
    "  --tz ZONE              IANA time zone of --cron (default UTC)\n"                            \
    "  --every DUR            fixed interval, e.g. 15m\n"                                          \
    "  --at TIME              once, at an RFC 3339 time or +DUR from now\n"
#define CLI_JOB_HELP                                                                               \
    "  --name N               job name, unique\n"                                                  \
    "  --priority P           -1000..1000, higher runs first\n"                                    \
    "  --queue Q              worker queue\n"                                                      \
    "  --timeout DUR          kill an attempt after DUR (e.g. 30m)\n"                              \
    "  --retries N            retry a failed run up to N times\n"                                  \
    "  --env K=V              environment variable (repeatable)\n"                                 \
    "  --cwd DIR              working directory\n"                                                 \
    "  --constraint k=v       required worker label (repeatable)\n"                                \
    "  --overlap POLICY       allow | forbid | replace\n"                                          \
    "  --misfire POLICY       run_once | catch_up | skip\n"                                        \
    "  --max-concurrency N    runs of this job at once (0 = unlimited)\n"                          \
    "  --array 0-N[%K]        a job array: N+1 runs per firing, $SKED_ARRAY_INDEX 0..N,\n"         \
    "                         at most K going at once (also: --array COUNT[%K])\n"                 \
    "  --dependency C:JOB[:JOB...][,C:JOB...]\n"                                                   \
    "                         wait for the latest run of each JOB (id): C is afterok\n"            \
    "                         (the default), afterany or afternotok; repeatable\n"                 \
    "  --tag T                tag (repeatable)\n"

/* One invocation's common state. Strings are borrowed from argv/environ. */
typedef struct cli {
    const char *cmd;        /* "jobs ls": prefix of usage messages */
    const char *server;     /* --server, or NULL */
    const char *token;      /* --token, or NULL */
    const char *token_file; /* --token-file, or NULL */
    const char *ca;         /* --ca, or NULL ($SKED_CA is read by cli_client) */
    int json;               /* 1 with -o json */
    int help;               /* 1 with -h/--help */
    httpc_t *http;          /* owned; created by cli_client() */
    char *token_buf;        /* owned; the resolved token the client uses */
} cli_t;

/* Initialises c for the command named cmd (static string). */
void cli_init(cli_t *c, const char *cmd);
/* Frees what c owns (the HTTP client). */
void cli_fini(cli_t *c);

/* Handles one getopt_long result if it is a common option. Returns 1 when
 * handled, 0 when the option is not a common one, SKED_EINVAL (message
 * printed) for a bad value. */
int cli_common_opt(cli_t *c, int opt, const char *arg);
/* Reports an option getopt rejected ('?' or ':'), using optopt/optind.
 * Returns CLI_EXIT_USAGE. Use with opterr = 0 and a ':'-leading optstring. */
int cli_bad_option(const cli_t *c, int opt, char **argv);
/* Prints "sked CMD: <message>" and a pointer to --help to stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Handles a command-specific option: returns 1 when handled, 0 when not
 * known, or a negative code after printing why the value is bad. */
typedef int (*cli_opt_fn)(cli_t *c, void *arg, int opt, const char *optarg);
/* Parses argv (argv[0] is the command word) with getopt_long: common
 * options go to c, the rest to fn(c, arg, ...). shortopts are the command's
 * own short options (the common ones are added). in_order = 1 stops at the
 * first positional argument (for `submit -- CMD ARGS`, where the command's
 * own options must not be taken); otherwise options may follow positional
 * arguments. *first_pos is the index of the first positional argument.
 * Returns CLI_EXIT_OK (also with --help: check c->help) or CLI_EXIT_USAGE
 * (message printed). */
int cli_parse(cli_t *c, int argc, char **argv, const struct option *longopts, const char *shortopts,
              int in_order, cli_opt_fn fn, void *arg, int *first_pos);
/* Checks the number of positional arguments: CLI_EXIT_OK, or
 * CLI_EXIT_USAGE with a message naming what is expected (what: "JOB_ID"). */
int cli_want_args(const cli_t *c, int n, int min, int max, const char *what);

/* The server list: --server, else $SKED_SERVER, else the default. Borrowed. */
const char *cli_servers(const cli_t *c);
/* Resolves the bearer token, first match wins: opt_token (--token),
 * opt_file (--token-file), $SKED_TOKEN, $SKED_TOKEN_FILE, then
 * ./sked-data/admin.token if readable. Explicit flags beat the
 * environment, as with every other option. A named file (flag or env) that
 * cannot be read, or is empty, is an error (message printed); a missing
 * default file just means no token. *out is new (caller frees) or NULL.
 * Returns 0 or a negative SKED_E* code. */
int cli_token_resolve(const char *opt_token, const char *opt_file, char **out);
/* The CA file for https servers: --ca, else $SKED_CA, else NULL (the
 * system's CAs). Borrowed. */
const char *cli_ca(const cli_t *c);
/* The HTTP client for c, made on first use from cli_servers(), the
 * resolved token and cli_ca() (a named CA file that cannot be read is an
 * error). Borrowed (owned by c); NULL on error (message printed). */
httpc_t *cli_client(cli_t *c);

/* Performs one API call. body (borrowed, may be NULL) is sent as JSON;
 * headers as for httpc_do. On a 2xx answer returns 0 and fills *resp
 * (caller clears with httpc_resp_clear). Otherwise prints the problem or
 * transport error to stderr, clears *resp and returns a negative SKED_E*
 * code. */
int cli_do(cli_t *c, const char *method, const char *path, const json_t *body,
           const char *const *headers, httpc_resp_t *resp);
/* cli_do, then parses the answer as JSON into *out (new; NULL for an empty
 * answer such as 204). Returns 0 or a negative SKED_E* code (printed). */
int cli_call(cli_t *c, const char *method, const char *path, const json_t *body,
             const char *const *headers, json_t **out);
/* GETs a list path (with its query, without cursor) and, when all is set,
 * follows next_cursor to the end. *out is new: {"items": [...],
 * "next_cursor": ...} (null next_cursor after following). Returns 0 or a
 * negative SKED_E* code (printed). */
int cli_list(cli_t *c, const char *path, int all, json_t **out);
/* cli_list, then shows the list: JSON with -o json, else print(list) and,
 * when a page was left unread, a note on stderr that more `noun` exist.
 * Returns CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_list_show(cli_t *c, const char *path, int all, void (*print)(const json_t *list),
                  const char *noun);
/* Runs subcommand argv[1] of command cmd (one of subs, NULL-terminated;
 * "list" is taken for "ls") as fn(c, sub, argc - 1, argv + 1) with a
 * fresh cli_t named "cmd sub"; no subcommand, or an unknown one, prints
 * help to stderr (CLI_EXIT_USAGE); -h/--help/help prints it to stdout.
 * Returns the exit status. (cmd_auth.c) */
int cli_dispatch(const char *cmd, const char *help, const char *const *subs, int argc, char **argv,
                 int (*fn)(cli_t *, const char *, int, char **));
/* Resolves what a person typed for a job, its id or its name, to the id
 * (OUT, id[SKED_ID_LEN]). Text starting "job_" is taken as an id as is; a
 * name must name exactly one job the caller can see (asked of the server);
 * none or several (the same name in several namespaces) is an error,
 * printed. Returns CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_job_ref(cli_t *c, const char *ref, char *id);
/* The one-line text for a failed answer: "404 Not Found: detail" or
 * "400 Bad Request: schedules[0].cron: detail", from a problem+json body
 * when there is one. New; caller frees. */
char *cli_error_text(long status, const char *body, size_t len);
/* The text for a transport failure: which server(s) could not be reached
 * and why. New; caller frees. */
char *cli_transport_text(const char *servers, const char *why);

/* Prints j to stdout as indented JSON and a newline. */
void cli_print_json(const json_t *j);

/* Appends "?key=value" or "&key=value" to b, percent-encoding value; does
 * nothing when value is NULL. b->data must already hold the path. */
void cli_query_add(buf_t *b, const char *key, const char *value);
/* Percent-encodes s for use in a URL path segment or query. New. */
char *cli_url_escape(const char *s);

/* Parses a whole decimal integer in [min, max]. Returns 0 or SKED_EINVAL. */
int cli_parse_int(const char *s, long long min, long long max, long long *out);

/* An aligned text table: columns separated by two spaces, the last one not
 * padded, widths counted in UTF-8 characters. */
typedef struct cli_table cli_table_t;
/* New table of ncols columns; the ncols headers follow (NULL headers: no
 * header line). Free with cli_table_free. */
cli_table_t *cli_table_new(int ncols, ...);
/* Adds a row of exactly ncols cells (const char *; NULL prints "-").
 * Cells are copied. */
void cli_table_add(cli_table_t *t, ...);
/* Renders the table. New; caller frees. */
char *cli_table_render(const cli_table_t *t);
void cli_table_print(const cli_table_t *t, FILE *f);
void cli_table_free(cli_table_t *t);

/* Formats an RFC 3339 JSON string as a UTC time to the second
 * ("2026-11-22T23:59:19Z"), for people. NULL, null or unparseable: "-"
 * (or the text unchanged when unparseable). Returns out. */
const char *cli_fmt_time(const json_t *v, char *out, size_t outlen);
/* Scalar JSON as text into out: strings as-is, integers, reals, booleans;
 * null or missing: "-". Returns out. */
const char *cli_fmt_scalar(const json_t *v, char *out, size_t outlen);
/* obj[key] as a string, or NULL. Borrowed. */
const char *cli_str(const json_t *obj, const char *key);
/* One-line summary of a schedule object: "cron 0 2 * * * Europe/Berlin",
 * "every 15m", "at 2026-12-24T18:00:00Z". Into out; returns out. */
const char *cli_fmt_schedule(const json_t *sch, char *out, size_t outlen);
/* The first of an array of schedules as by cli_fmt_schedule, with
 * " (+N)" for the N others; "-" when none. Into out; returns out. */
const char *cli_fmt_schedules(const json_t *schs, char *out, size_t outlen);
/* The earliest next_fire_at of a job's schedules, formatted as by
 * cli_fmt_time; "-" when none. Returns out. */
const char *cli_job_next_fire(const json_t *job, char *out, size_t outlen);
/* One bodiless call on the resource id under base ("/v1/jobs"):
 * method base/id[/verb], then its answer: with -o json as sent; else
 * "ID deleted" (verb NULL), the new run's id alone (verb "trigger", so
 * $(sked ... trigger X) composes), or "ID STATE" (pause, resume).
 * Returns CLI_EXIT_OK or CLI_EXIT_FAIL (printed). */
int cli_resource_action(cli_t *c, const char *base, const char *id, const char *method,
                        const char *verb);
/* Appends a command array to b as a shell would need it typed (words with
 * unsafe characters single-quoted). */
void cli_fmt_argv(buf_t *b, const json_t *argv);
/* Prints a job resource for people (key/value lines and its schedules). */
void cli_print_job(const json_t *job);

/* The schedule options: at most one of cron (with optional tz), every, at. */
typedef struct cli_sched {
    const char *cron, *tz, *every, *at; /* borrowed from argv */
} cli_sched_t;
/* Records a schedule option. Returns 1 when handled, 0 when not ours. */
int cli_sched_opt(cli_sched_t *s, int opt, const char *arg);
/* Builds the "schedules" array from s: *out is new, or NULL when no
 * schedule option was given. --at takes RFC 3339 (written back in UTC) or
 * "+DUR" relative to now_ms. Returns
 * 0, or SKED_EINVAL with a message in err for conflicting or bad options. */
int cli_sched_build(const cli_sched_t *s, int64_t now_ms, json_t **out, char *err, size_t errlen);

/* Applies one job-field option to doc (a job document or a merge patch):
 * --retries N sets retry.max_attempts = N + 1, --env/--constraint add to
 * their objects, --tag appends to tags. Returns 1 when handled, 0 when not
 * ours, SKED_EINVAL with a message in err for a bad value. */
int cli_job_opt(json_t *doc, int opt, const char *arg, char *err, size_t errlen);

/* Argument parsing of the commands, split from their I/O so it can be
 * tested without a server. */
typedef struct cli_submit_req {
    json_t *doc;          /* new: the job document to POST */
    const char *idem_key; /* --idempotency-key, or NULL; borrowed */
    int wait;             /* --wait */
    int quiet;            /* -q: print only the id */
} cli_submit_req_t;
/* Parses `sked submit` argv (argv[0] = "submit") into c and req. Returns
 * CLI_EXIT_OK, or CLI_EXIT_USAGE (message printed). With --help, sets
 * c->help and returns CLI_EXIT_OK without a doc. Free req->doc with
 * json_decref. */
int cli_submit_parse(cli_t *c, int argc, char **argv, cli_submit_req_t *req);

typedef struct cli_edit_req {
    char id[SKED_ID_LEN]; /* the job's id (a name given is resolved) */
    json_t *patch;        /* new: the merge patch to send */
} cli_edit_req_t;
/* Parses `jobs edit` argv (argv[0] = "edit") into c and req; as above. */
int cli_edit_parse(cli_t *c, int argc, char **argv, cli_edit_req_t *req);

/* `jobs why` and `runs why` (cmd_why.c), called by cmd_jobs and cmd_runs
 * with c initialised and argv[0] = "why". Return an exit status. */
int cli_jobs_why(cli_t *c, int argc, char **argv);
int cli_runs_why(cli_t *c, int argc, char **argv);

/* Documents read from files (cli_yaml.c): JSON, or YAML converted to the
 * same JSON by the YAML 1.2 core schema (see cli_yaml.c for the rules). */
#define CLI_DOC_MAX (16 * 1024 * 1024) /* bytes read from one document file */
/* Converts one YAML document. 0 and *out (new), or SKED_EINVAL with
 * "LINE:COLUMN: why" in err. */
int cli_yaml_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen);
/* Parses a document named name (a file name; "" for stdin): JSON or YAML by
 * its extension (.json, .yaml, .yml), else by its content (JSON when it
 * opens with '{' or '[' and parses as JSON, else YAML). 0 and *out (new),
 * or SKED_EINVAL with "LINE:COLUMN: why" in err. */
int cli_doc_parse(const char *name, const char *text, size_t len, json_t **out, char *err,
                  size_t errlen);
/* Reads and parses file (- = stdin) as cli_doc_parse does. CLI_EXIT_OK and
 * *out (new), or CLI_EXIT_USAGE after a message naming the file, line and
 * column. */
int cli_read_doc(const cli_t *c, const char *file, json_t **out);

/* The tasks of a workflow or a workflow run (an array of {name,
 * depends_on, trigger_rule, ...}) drawn as a tree by dependency, one line
 * per task with box-drawing branches: roots first, each task under each of
 * its upstreams, fully only the first time (later, with no subtree and
 * marked "(repeat)"). With states (a run's tasks): columns TASK, STATE,
 * ATTEMPT, EXIT, REASON; without: TASK, COMMAND. A trigger rule other than
 * all_success is shown after the name. Terminates on any input (each task
 * is expanded once; tasks no root reaches are drawn as roots). New; caller
 * frees. (cmd_workflows.c) */
char *cli_workflow_tree(const json_t *tasks);

#endif
