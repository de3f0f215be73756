/*
 * `sked plugins`: the job types the cluster can run and the workers that
 * run each (GET /v1/plugins, docs/api.md "Job types and plugins"): shell
 * and http, built into every worker, then each plugin type some worker (or
 * a server's --plugin-dir) advertised, with its version and ABI.
 */
#include "cli/cli.h"

#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plugins_help[] =
    "usage: sked plugins SUBCOMMAND [OPTIONS]\n"
    "\n"
    "Show the job types the cluster can run.\n"
    "\n"
    "subcommands:\n"
    "  ls                      every type, its version and ABI, and the workers that run it\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  sked plugins ls\n"
    "  sked plugins ls --json\n";

static const char ls_help[] =
    "usage: sked plugins ls [--json]\n"
    "\n"
    "List the job types: the built-in shell and http (every worker runs them),\n"
    "then each plugin type a worker advertised (sked worker --plugin-dir DIR),\n"
    "with its version, the plugin ABI it was built against and the live\n"
    "workers that run it. A plugin type no live worker runs shows WORKERS -:\n"
    "jobs of it are accepted but wait until such a worker registers.\n"
    "\n"
    "options:\n"
    "  --json                 the answer as JSON (the same as -o json)\n"
    "\n" CLI_COMMON_HELP "\n"
    "example:\n"
    "  sked plugins ls\n";

enum { OPT_JSON = 1000 };

static int ls_opt(cli_t *c, void *arg, int opt, const char *val)
{
    (void)arg;
    (void)val;
    if (opt != OPT_JSON) return 0;
    c->json = 1;
    return 1;
}

static void print_plugins(const json_t *list)
{
    cli_table_t *t = cli_table_new(4, "TYPE", "VERSION", "ABI", "WORKERS");
    buf_t workers = BUF_INIT;
    char abi[32];
    size_t i, k;
    json_t *p, *w;
    json_array_foreach(json_object_get(list, "items"), i, p)
    {
        buf_reset(&workers);
        buf_puts(&workers, "");
        json_t *ws = json_object_get(p, "workers");
        if (json_is_true(json_object_get(p, "builtin")))
            buf_printf(&workers, "all (%zu)", json_array_size(ws));
        else
            json_array_foreach(ws, k, w)
            {
                const char *name = cli_str(w, "name");
                buf_printf(&workers, "%s%s", k ? "," : "", name && *name ? name : cli_str(w, "id"));
            }
        if (!workers.len) buf_puts(&workers, "-");
        cli_table_add(t, cli_str(p, "type"), cli_str(p, "version"),
                      cli_fmt_scalar(json_object_get(p, "abi"), abi, sizeof abi), workers.data);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
    buf_free(&workers);
}

static int plugins_ls(cli_t *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS, {"json", no_argument, NULL, OPT_JSON}, {0}};
    json_t *list = NULL;
    int first, rc;

    rc = cli_parse(c, argc, argv, longopts, "", 0, ls_opt, NULL, &first);
    if (rc != CLI_EXIT_OK) goto out;
    if (c->help) {
        fputs(ls_help, stdout);
        goto out;
    }
    if ((rc = cli_want_args(c, argc - first, 0, 0, "no arguments")) != CLI_EXIT_OK) goto out;
    if (cli_call(c, "GET", "/v1/plugins", NULL, NULL, &list) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (c->json)
        cli_print_json(list);
    else
        print_plugins(list);
out:
    json_decref(list);
    return rc;
}

static int plugins_run(cli_t *c, const char *sub, int argc, char **argv)
{
    (void)sub; /* "ls" is the only one */
    return plugins_ls(c, argc, argv);
}

int cmd_plugins(int argc, char **argv)
{
    static const char *const subs[] = {"ls", NULL};
    return cli_dispatch("plugins", plugins_help, subs, argc, argv, plugins_run);
}
