/*
 * Entry points of the `sked` subcommands, for the dispatcher (main.c).
 * Each parses its own argv (argv[0] is the subcommand name), prints --help,
 * and returns the process exit status.
 *
 * The cmd layer sits above the roles: each role declares its own commands
 * (server/cmd_server.h, worker/worker.h, cli/cli.h), and this layer adds
 * `sked dev`, which wires a server and a worker together and so belongs
 * to no single role.
 */
#ifndef SKED_CMD_CMD_H
#define SKED_CMD_CMD_H

#include "cli/cli.h"
#include "server/cmd_server.h"
#include "worker/worker.h"

int cmd_dev(int argc, char **argv); /* cmd/cmd_dev.c */

#endif
