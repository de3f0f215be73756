/*
 * `sked workers`: list the worker pool and drain a worker (stop handing it
 * new work so it can be taken down once its runs end), over GET /v1/workers
 * and POST /v1/workers/{id}/drain (docs/api.md, "Workers").
 */
#include "cli/cli.h"

#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char workers_help[] = "usage: sked workers SUBCOMMAND [OPTIONS]\n"
                                   "\n"
                                   "List and drain workers.\n"
                                   "\n"
                                   "subcommands:\n"
                                   "  ls                      the pool, with state and load\n"
                                   "  drain WORKER_ID         stop giving the worker new runs\n"
                                   "\n" CLI_COMMON_HELP "\n"
                                   "examples:\n"
                                   "  sked workers ls\n"
                                   "  sked workers drain wrk_01JD...\n";

static const char ls_help[] = "usage: sked workers ls\n"
                              "\n"
                              "List the workers: state (active, draining, lost), slots, running\n"
                              "runs, queues, labels and last heartbeat.\n"
                              "\n" CLI_COMMON_HELP "\n"
                              "example:\n"
                              "  sked workers ls -o json\n";

static const char drain_help[] = "usage: sked workers drain WORKER_ID\n"
                                 "\n"
                                 "Stop handing the worker new runs; the runs it has finish.\n"
                                 "\n" CLI_COMMON_HELP "\n"
                                 "example:\n"
                                 "  sked workers drain wrk_01JD...\n";

/* "a,b" of a JSON array of strings, or "k=v,k2=v2" of an object. */
static void join(buf_t *b, const json_t *v)
{
    size_t i;
    json_t *e;
    const char *k;
    buf_reset(b);
    buf_puts(b, "");
    if (json_is_array(v)) {
        json_array_foreach(v, i, e)
        {
            buf_printf(b, "%s%s", i ? "," : "", json_string_value(e) ? json_string_value(e) : "");
        }
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, e)
        {
            char s[256];
            buf_printf(b, "%s%s=%s", b->len ? "," : "", k, cli_fmt_scalar(e, s, sizeof s));
        }
    }
    if (!b->len) buf_puts(b, "-");
}

static void print_workers(const json_t *list)
{
    cli_table_t *t = cli_table_new(9, "ID", "NAME", "HOST", "STATE", "SLOTS", "RUNNING", "QUEUES",
                                   "LABELS", "HEARTBEAT");
    buf_t queues = BUF_INIT, labels = BUF_INIT;
    char slots[32], running[32], hb[SKED_RFC3339_LEN];
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(list, "items"), i, w)
    {
        join(&queues, json_object_get(w, "queues"));
        join(&labels, json_object_get(w, "labels"));
        cli_table_add(
            t, cli_str(w, "id"), cli_str(w, "name"), cli_str(w, "host"), cli_str(w, "state"),
            cli_fmt_scalar(json_object_get(w, "slots"), slots, sizeof slots),
            cli_fmt_scalar(json_object_get(w, "running"), running, sizeof running), queues.data,
            labels.data, cli_fmt_time(json_object_get(w, "heartbeat_at"), hb, sizeof hb));
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
    buf_free(&queues);
    buf_free(&labels);
}

static int workers_ls(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {0}};
    json_t *list = NULL;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, NULL, NULL, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(ls_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
    /* Follow cursors: a partial pool misleads. The largest page keeps a
     * pool of thousands to a few requests. */
    if (cli_list(c, "/v1/workers?limit=1000", 1, &list) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(list);
    else
        print_workers(list);
out:
    json_decref(list);
    return rc;
}

static int workers_drain(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {0}};
    json_t *w = NULL;
    char *path = NULL, *esc = NULL;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, NULL, NULL, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(drain_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 1, 1, "WORKER_ID")) != CLI_EXIT_OK) goto out;
    esc = cli_url_escape(argv[first]);
    path = xasprintf("/v1/workers/%s/drain", esc);
    if (cli_call(c, "POST", path, NULL, NULL, &w) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(w);
    else
        printf("%s %s\n", argv[first], cli_str(w, "state") ? cli_str(w, "state") : "draining");
out:
    json_decref(w);
    free(esc);
    free(path);
    return rc;
}

int cmd_workers(int argc, char **argv)
{
    cli_t c;
    int rc;
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (!sub) {
        fputs(workers_help, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(workers_help, stdout);
        return CLI_EXIT_OK;
    }
    argc--;
    argv++;
    if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
        cli_init(&c, "workers ls");
        rc = workers_ls(&c, argc, argv);
    } else if (!strcmp(sub, "drain")) {
        cli_init(&c, "workers drain");
        rc = workers_drain(&c, argc, argv);
    } else {
        fprintf(stderr, "sked workers: unknown subcommand '%s'\n\n", sub);
        fputs(workers_help, stderr);
        return CLI_EXIT_USAGE;
    }
    cli_fini(&c);
    return rc;
}
