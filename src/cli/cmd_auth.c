/*
 * Identity and access from the command line (docs/api.md, "Users, tokens,
 * login and the audit log"): `sked login`, `sked users ls|create|set|rm`,
 * `sked tokens create|ls|revoke` and `sked audit ls`, over /v1/login,
 * /v1/users, /v1/tokens and /v1/audit.
 *
 * Passwords are never taken from the command line (where `ps` and shell
 * history would keep them): they are read from the terminal with echo off,
 * or, with --password-stdin, as the first line of standard input. A new
 * token's secret goes to stdout alone (or into a 0600 file with --save), so
 * `export SKED_TOKEN=$(sked login alice)` works.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/xalloc.h"

enum {
    OPT_PASSWORD_STDIN = CLI_OPT_CMD_BASE,
    OPT_EXPIRES_IN,
    OPT_SAVE,
    OPT_ROLE,
    OPT_NS,
    OPT_USER,
    OPT_NAME,
    OPT_ALL,
    OPT_SINCE,
    OPT_ACTOR,
    OPT_LIMIT,
};

/* Everything the subcommands' own options may set. */
struct opts {
    int password_stdin;
    const char *expires_in, *save, *role, *user, *name, *since, *actor, *limit;
    json_t *ns; /* array of --ns values, or NULL */
    int all;
};

static int take_opt(cli_t *c, void *arg, int opt, const char *val)
{
    struct opts *o = arg;
    (void)c;
    switch (opt) {
    case OPT_PASSWORD_STDIN:
        o->password_stdin = 1;
        return 1;
    case OPT_EXPIRES_IN:
        o->expires_in = val;
        return 1;
    case OPT_SAVE:
        o->save = val;
        return 1;
    case OPT_ROLE:
        o->role = val;
        return 1;
    case OPT_NS:
        if (!o->ns) o->ns = json_array();
        json_array_append_new(o->ns, json_string(val));
        return 1;
    case OPT_USER:
        o->user = val;
        return 1;
    case OPT_NAME:
        o->name = val;
        return 1;
    case OPT_ALL:
        o->all = 1;
        return 1;
    case OPT_SINCE:
        o->since = val;
        return 1;
    case OPT_ACTOR:
        o->actor = val;
        return 1;
    case OPT_LIMIT:
        o->limit = val;
        return 1;
    }
    return 0;
}

#define O_PASSWORD_STDIN                                                                           \
    {                                                                                              \
        "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN                                    \
    }
#define O_EXPIRES_IN                                                                               \
    {                                                                                              \
        "expires-in", required_argument, NULL, OPT_EXPIRES_IN                                      \
    }
#define O_SAVE                                                                                     \
    {                                                                                              \
        "save", required_argument, NULL, OPT_SAVE                                                  \
    }
#define O_ROLE                                                                                     \
    {                                                                                              \
        "role", required_argument, NULL, OPT_ROLE                                                  \
    }
#define O_NS                                                                                       \
    {                                                                                              \
        "ns", required_argument, NULL, OPT_NS                                                      \
    }
#define O_USER                                                                                     \
    {                                                                                              \
        "user", required_argument, NULL, OPT_USER                                                  \
    }
#define O_NAME                                                                                     \
    {                                                                                              \
        "name", required_argument, NULL, OPT_NAME                                                  \
    }
#define O_ALL                                                                                      \
    {                                                                                              \
        "all", no_argument, NULL, OPT_ALL                                                          \
    }

/* Reads a password: the first line of stdin with --password-stdin (or when
 * stdin is not a terminal), else from the terminal with echo off. New
 * string, or NULL (message printed). */
static char *read_password(const char *prompt, int from_stdin)
{
    char line[1100];
    int tty = -1;
    FILE *in = stdin;
    struct termios old, quiet;
    bool restore = false;
    char *out = NULL;

    if (!from_stdin && isatty(STDIN_FILENO)) {
        tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
        if (tty >= 0 && tcgetattr(tty, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            restore = tcsetattr(tty, TCSAFLUSH, &quiet) == 0;
            if (write(tty, prompt, strlen(prompt)) < 0) {
                /* the prompt is a courtesy */
            }
        }
    }
    if (!fgets(line, sizeof line, in)) {
        fprintf(stderr, "sked: no password given\n");
        goto out;
    }
    line[strcspn(line, "\r\n")] = 0;
    out = xstrdup(line);
out:
    if (restore) {
        tcsetattr(tty, TCSAFLUSH, &old);
        if (write(tty, "\n", 1) < 0) {
            /* as above */
        }
    }
    if (tty >= 0) close(tty);
    memset(line, 0, sizeof line);
    return out;
}

/* Prints a new token's secret (or saves it 0600 to path) and returns the
 * exit status. */
static int show_secret(cli_t *c, const json_t *tok, const char *path)
{
    const char *secret = cli_str(tok, "token");
    if (!secret) {
        fprintf(stderr, "sked: the server's answer has no token\n");
        return CLI_EXIT_FAIL;
    }
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, secret, strlen(secret)) < 0 ||
            write(fd, "\n", 1) < 0) {
            fprintf(stderr, "sked: cannot write %s: %s\n", path, strerror(errno));
            if (fd >= 0) close(fd);
            return CLI_EXIT_FAIL;
        }
        close(fd);
        fprintf(stderr, "token %s saved to %s (use --token-file %s or SKED_TOKEN_FILE)\n",
                cli_str(tok, "id") ? cli_str(tok, "id") : "", path, path);
        if (c->json) cli_print_json(tok);
        return CLI_EXIT_OK;
    }
    if (c->json)
        cli_print_json(tok);
    else
        printf("%s\n", secret);
    return CLI_EXIT_OK;
}

/* "a,b" of a JSON array of strings. New. */
static char *joined(const json_t *arr)
{
    buf_t b = BUF_INIT;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        buf_printf(&b, "%s%s", i ? "," : "", json_string_value(e) ? json_string_value(e) : "");
    }
    char *s = xstrdup(b.len ? b.data : "-");
    buf_free(&b);
    return s;
}

/* ---- sked login ----------------------------------------------------------- */

static const char login_help[] =
    "usage: sked login USER [--password-stdin] [--expires-in DUR] [--save FILE]\n"
    "\n"
    "Log in as USER: the password is read from the terminal (or the first line\n"
    "of stdin with --password-stdin) and a token acting for USER is printed,\n"
    "or saved to FILE (mode 0600). It lasts 12h unless --expires-in says\n"
    "otherwise (at most 720h).\n"
    "\n"
    "options:\n"
    "  --password-stdin       read the password from stdin\n"
    "  --expires-in DUR       lifetime of the token, e.g. 8h\n"
    "  --save FILE            write the token to FILE instead of stdout\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  export SKED_TOKEN=$(sked login alice)\n"
    "  sked login alice --save ~/.sked-token && export SKED_TOKEN_FILE=~/.sked-token\n";

int cmd_login(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS, O_PASSWORD_STDIN, O_EXPIRES_IN, O_SAVE, {0}};
    struct opts o = {0};
    cli_t c;
    json_t *body = NULL, *tok = NULL;
    char *pw = NULL;
    int first, rc;

    cli_init(&c, "login");
    rc = cli_parse(&c, argc, argv, longopts, "", 0, take_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c.help) {
        fputs(login_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(&c, argc - first, 1, 1, "USER")) != CLI_EXIT_OK) goto out;
    if (!(pw = read_password("Password: ", o.password_stdin))) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    body = json_pack("{s:s, s:s}", "user", argv[first], "password", pw);
    if (o.expires_in) json_object_set_new(body, "expires_in", json_string(o.expires_in));
    if (cli_call(&c, "POST", "/v1/login", body, NULL, &tok) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    rc = show_secret(&c, tok, o.save);
out:
    if (pw) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    json_decref(body);
    json_decref(tok);
    json_decref(o.ns);
    cli_fini(&c);
    return rc;
}

/* ---- sked users ------------------------------------------------------------- */

static const char users_help[] =
    "usage: sked users SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Manage users (admin; anyone may change their own password).\n"
    "\n"
    "subcommands:\n"
    "  ls                              every user, with role and namespaces\n"
    "  create NAME [--role R] [--ns NS]...  a new user; the password is asked for\n"
    "  set NAME [--role R] [--ns NS]... [--password]  change a user\n"
    "  rm NAME                         delete a user and revoke its tokens\n"
    "\n"
    "options:\n"
    "  --role R               admin, operator, user (default), viewer, worker, metrics\n"
    "  --ns NS                a granted namespace (repeatable; '*' = all)\n"
    "  --password             (set) ask for a new password\n"
    "  --password-stdin       read the password from stdin\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked users create alice --role operator --ns team-a --ns team-b\n"
    "  echo \"$PW\" | sked users set alice --password-stdin\n"
    "  sked users rm alice\n";

static void print_users(const json_t *list)
{
    cli_table_t *t = cli_table_new(4, "NAME", "ROLE", "NAMESPACES", "CREATED");
    char created[SKED_RFC3339_LEN];
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(list, "items"), i, u)
    {
        char *ns = joined(json_object_get(u, "namespaces"));
        cli_table_add(t, cli_str(u, "name"), cli_str(u, "role"), ns,
                      cli_fmt_time(json_object_get(u, "created_at"), created, sizeof created));
        free(ns);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int users_run(cli_t *c, const char *sub, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                             O_PASSWORD_STDIN,
                                             O_ROLE,
                                             O_NS,
                                             {"password", no_argument, NULL, OPT_ALL},
                                             {0}};
    struct opts o = {0};
    json_t *body = NULL, *out = NULL;
    char *pw = NULL, *path = NULL, *esc = NULL;
    int first, rc;
    bool ls = !strcmp(sub, "ls"), rm = !strcmp(sub, "rm"), create = !strcmp(sub, "create");

    rc = cli_parse(c, argc, argv, longopts, "", 0, take_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(users_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, ls ? 0 : 1, ls ? 0 : 1,
                            ls ? "no arguments" : "NAME")) != CLI_EXIT_OK)
        goto out;
    if (ls) {
        if (cli_list(c, "/v1/users", 1, &out) < 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        if (c->json)
            cli_print_json(out);
        else
            print_users(out);
        goto out;
    }
    esc = cli_url_escape(argv[first]);
    path = xasprintf("/v1/users/%s", esc);
    if (rm) {
        if (cli_call(c, "DELETE", path, NULL, NULL, &out) < 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        printf("%s deleted\n", argv[first]);
        goto out;
    }
    body = json_object();
    if (create || o.all || o.password_stdin) {
        if (!(pw = read_password("Password: ", o.password_stdin))) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        json_object_set_new(body, "password", json_string(pw));
    }
    if (create) json_object_set_new(body, "name", json_string(argv[first]));
    if (o.role) json_object_set_new(body, "role", json_string(o.role));
    if (o.ns) json_object_set(body, "namespaces", o.ns);
    if (!json_object_size(body)) {
        rc = cli_usage_error(c, "nothing to change: give --role, --ns or --password");
        goto out;
    }
    if (cli_call(c, create ? "POST" : "PATCH", create ? "/v1/users" : path, body, NULL, &out) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json) {
        cli_print_json(out);
    } else {
        char *ns = joined(json_object_get(out, "namespaces"));
        printf("%s %s %s\n", cli_str(out, "name"), cli_str(out, "role"), ns);
        free(ns);
    }
out:
    if (pw) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    json_decref(body);
    json_decref(out);
    json_decref(o.ns);
    free(path);
    free(esc);
    return rc;
}

/* ---- sked tokens ---------------------------------------------------------------- */

static const char tokens_help[] =
    "usage: sked tokens SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Create, list and revoke API tokens. A secret is shown once, when made.\n"
    "\n"
    "subcommands:\n"
    "  create [--expires-in DUR] [--save FILE]   a token like your own\n"
    "  create --user U ...                       (admin) a token acting for user U\n"
    "  create --name N --role R [--ns NS]... ... (admin) a standalone token,\n"
    "                                            e.g. for a worker: --role worker\n"
    "  ls [--all]                                your tokens (admin: everyone's)\n"
    "  revoke TOKEN_ID                           revoke a token\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked tokens create --name worker-7 --role worker --save worker.token\n"
    "  sked tokens create --name prometheus --role metrics --save prometheus.token\n"
    "  sked tokens ls\n"
    "  sked tokens revoke tok_01JD...\n";

static void print_tokens(const json_t *list)
{
    cli_table_t *t = cli_table_new(8, "ID", "NAME", "USER", "ROLE", "NAMESPACES", "EXPIRES",
                                   "LAST USED", "REVOKED");
    char exp[SKED_RFC3339_LEN], used[SKED_RFC3339_LEN];
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(list, "items"), i, k)
    {
        char *ns = joined(json_object_get(k, "namespaces"));
        cli_table_add(t, cli_str(k, "id"), cli_str(k, "name"), cli_str(k, "user"),
                      cli_str(k, "role"), ns,
                      cli_fmt_time(json_object_get(k, "expires_at"), exp, sizeof exp),
                      cli_fmt_time(json_object_get(k, "last_used_at"), used, sizeof used),
                      json_is_true(json_object_get(k, "revoked")) ? "yes" : "no");
        free(ns);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int tokens_run(cli_t *c, const char *sub, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS, O_EXPIRES_IN, O_SAVE, O_ROLE, O_NS, O_USER, O_NAME, O_ALL, {0}};
    struct opts o = {0};
    json_t *body = NULL, *out = NULL;
    char *path = NULL, *esc = NULL;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, take_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(tokens_help, stdout);
        goto out;
    }
    if (!strcmp(sub, "ls")) {
        if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
        if (cli_list(c, "/v1/tokens", o.all, &out) < 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        if (c->json)
            cli_print_json(out);
        else
            print_tokens(out);
    } else if (!strcmp(sub, "revoke")) {
        if ((rc = cli_want_args(c, argc - first, 1, 1, "TOKEN_ID")) != CLI_EXIT_OK) goto out;
        esc = cli_url_escape(argv[first]);
        path = xasprintf("/v1/tokens/%s", esc);
        if (cli_call(c, "DELETE", path, NULL, NULL, &out) < 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        printf("%s revoked\n", argv[first]);
    } else {
        if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
        body = json_object();
        if (o.user) json_object_set_new(body, "user", json_string(o.user));
        if (o.name) json_object_set_new(body, "name", json_string(o.name));
        if (o.role) json_object_set_new(body, "role", json_string(o.role));
        if (o.ns) json_object_set(body, "namespaces", o.ns);
        if (o.expires_in) json_object_set_new(body, "expires_in", json_string(o.expires_in));
        if (cli_call(c, "POST", "/v1/tokens", body, NULL, &out) < 0) {
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        rc = show_secret(c, out, o.save);
    }
out:
    json_decref(body);
    json_decref(out);
    json_decref(o.ns);
    free(path);
    free(esc);
    return rc;
}

/* ---- sked audit ----------------------------------------------------------------- */

static const char audit_help[] =
    "usage: sked audit ls [--since TIME] [--actor NAME] [--limit N] [--all]\n"
    "\n"
    "The audit log (admin), newest first: every change, login and refused\n"
    "change, with who, what, target, source and outcome.\n"
    "\n"
    "options:\n"
    "  --since TIME           entries at or after an RFC 3339 time\n"
    "  --actor NAME           entries of one user or token name\n"
    "  --limit N              entries per page (1-1000, default 100)\n"
    "  --all                  follow every page\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked audit ls --actor alice --since 2026-01-01T00:00:00Z\n";

static void print_audit(const json_t *list)
{
    cli_table_t *t =
        cli_table_new(8, "AT", "ACTOR", "ROLE", "METHOD", "ROUTE", "TARGET", "SOURCE", "STATUS");
    char at[SKED_RFC3339_LEN], st[16];
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(list, "items"), i, e)
    {
        cli_table_add(t, cli_fmt_time(json_object_get(e, "at"), at, sizeof at), cli_str(e, "actor"),
                      cli_str(e, "role"), cli_str(e, "method"), cli_str(e, "route"),
                      cli_str(e, "target"), cli_str(e, "source"),
                      cli_fmt_scalar(json_object_get(e, "status"), st, sizeof st));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static int audit_ls(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                             O_ALL,
                                             {"since", required_argument, NULL, OPT_SINCE},
                                             {"actor", required_argument, NULL, OPT_ACTOR},
                                             {"limit", required_argument, NULL, OPT_LIMIT},
                                             {0}};
    struct opts o = {0};
    json_t *out = NULL;
    buf_t path = BUF_INIT;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, take_opt, &o, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(audit_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
    buf_puts(&path, "/v1/audit");
    cli_query_add(&path, "since", o.since);
    cli_query_add(&path, "actor", o.actor);
    cli_query_add(&path, "limit", o.limit);
    if (cli_list(c, path.data, o.all, &out) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(out);
    else
        print_audit(out);
out:
    json_decref(out);
    json_decref(o.ns);
    buf_free(&path);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------- */

int cli_dispatch(const char *cmd, const char *help, const char *const *subs, int argc, char **argv,
                 int (*fn)(cli_t *, const char *, int, char **))
{
    cli_t c;
    char name[64];
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub) {
        fputs(help, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(help, stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "list")) sub = "ls";
    bool known = false;
    for (size_t i = 0; subs[i] && !known; i++)
        known = !strcmp(sub, subs[i]);
    if (!known) {
        fprintf(stderr, "sked %s: unknown subcommand '%s'\n\n", cmd, sub);
        fputs(help, stderr);
        return CLI_EXIT_USAGE;
    }
    /* cli_t keeps the name for its messages: it must outlive the call. */
    snprintf(name, sizeof name, "%s %s", cmd, sub);
    cli_init(&c, name);
    int rc = fn(&c, sub, argc - 1, argv + 1);
    cli_fini(&c);
    return rc;
}

int cmd_users(int argc, char **argv)
{
    static const char *const subs[] = {"ls", "create", "set", "rm", NULL};
    return cli_dispatch("users", users_help, subs, argc, argv, users_run);
}

int cmd_tokens(int argc, char **argv)
{
    static const char *const subs[] = {"ls", "create", "revoke", NULL};
    return cli_dispatch("tokens", tokens_help, subs, argc, argv, tokens_run);
}

static int audit_run(cli_t *c, const char *sub, int argc, char **argv)
{
    (void)sub;
    return audit_ls(c, argc, argv);
}

int cmd_audit(int argc, char **argv)
{
    static const char *const subs[] = {"ls", NULL};
    return cli_dispatch("audit", audit_help, subs, argc, argv, audit_run);
}
