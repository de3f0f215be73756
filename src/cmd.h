/*
 * Entry points of the `sked` subcommands. Each parses its own argv (argv[0]
 * is the subcommand name), prints --help, and returns the process exit
 * status.
 */
#ifndef SKED_CMD_H
#define SKED_CMD_H

int cmd_dev(int argc, char **argv);     /* server/cmd_server.c */
int cmd_server(int argc, char **argv);  /* server/cmd_server.c */
int cmd_routes(int argc, char **argv);  /* server/cmd_server.c: prints "METHOD PATTERN" lines */
int cmd_worker(int argc, char **argv);  /* worker/cmd_worker.c */
int cmd_submit(int argc, char **argv);  /* cli/cmd_submit.c */
int cmd_jobs(int argc, char **argv);    /* cli/cmd_jobs.c */
int cmd_runs(int argc, char **argv);    /* cli/cmd_runs.c */
int cmd_workers(int argc, char **argv); /* cli/cmd_workers.c */
int cmd_login(int argc, char **argv);   /* cli/cmd_auth.c */
int cmd_users(int argc, char **argv);   /* cli/cmd_auth.c */
int cmd_tokens(int argc, char **argv);  /* cli/cmd_auth.c */
int cmd_audit(int argc, char **argv);   /* cli/cmd_auth.c */

#endif
