/*
 * sked: one binary, every role a subcommand (like nomad or etcd). The top
 * layer: it may call every role; nothing calls it.
 */
#include "cmd/cmd.h"
#include "worker/plugin_host.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cmds[] = {
    {"dev", cmd_dev, "run API, scheduler and a local worker on embedded SQLite"},
    {"server", cmd_server, "run an API + scheduler server on a store"},
    {"worker", cmd_worker, "run a worker that executes jobs for a server"},
    {"submit", cmd_submit, "submit a job"},
    {"jobs", cmd_jobs, "list and manage jobs"},
    {"runs", cmd_runs, "list runs, show logs, cancel"},
    {"workers", cmd_workers, "list and drain workers"},
    {"workflows", cmd_workflows, "submit, run and inspect workflows (DAGs of tasks)"},
    {"watch", cmd_watch, "print job, run and worker events as they happen"},
    {"login", cmd_login, "log in as a user and print a token"},
    {"users", cmd_users, "manage users, roles and namespaces (admin)"},
    {"tokens", cmd_tokens, "create, list and revoke API tokens"},
    {"audit", cmd_audit, "read the audit log (admin)"},
    {"alerts", cmd_alerts, "list and acknowledge alerts"},
    {"alert-rules", cmd_alert_rules, "manage global alert rules (admin)"},
    {"routes", cmd_routes, "print the server's HTTP routes"},
    {"plugin-host", plugin_host_main, "run one plugin's attempts for a worker (workers start it)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sked COMMAND [ARGS...]\n\nA distributed job scheduler.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\nRun 'sked COMMAND --help' for a command's options.\n"
               "Client commands read SKED_SERVER and SKED_TOKEN (or --server/--token).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sked: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
