/*
 * Plugin hosts (docs/plugins.md "How plugins run"). A worker runs the
 * attempts of a plugin's job type in a long-lived process of its own, the
 * plugin host: `sked plugin-host`, started by the worker's supervisor once
 * per plugin (sup_plugin.c), speaking plugin_proto.h over its stdin. It
 * loads the one plugin (or a job type built into sked, such as http),
 * calls its init, and runs each attempt the worker sends on a thread of
 * its own, many at once, with the services of include/sked/plugin.h. A
 * crash or hang of the host costs only its own attempts: the worker fails
 * them, restarts it with backoff and goes on.
 *
 * The host refuses a plugin before any of its code runs when its manifest
 * (read from the same open file it then loads) is of a newer or unknown
 * ABI or names another type than the worker asked for.
 */
#ifndef SKED_WORKER_PLUGIN_HOST_H
#define SKED_WORKER_PLUGIN_HOST_H

#include <sked/plugin.h>

/* `sked plugin-host`: the host process's main. Not for people: the worker
 * runs it (with --help it says so). Returns the process's exit status. */
int plugin_host_main(int argc, char **argv);

/* A job type built into sked and run in a plugin host like any plugin. */
typedef struct plugin_builtin {
    const char *type;          /* "http" */
    const sked_plugin *plugin; /* its descriptor */
} plugin_builtin_t;

/* sked's built-in job types that run in plugin hosts; NULL-terminated by a
 * {NULL, NULL} entry. */
extern const plugin_builtin_t plugin_builtins[];

#endif
