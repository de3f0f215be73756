/*
 * The command line of the server roles: `sked server` and `sked routes`
 * (cmd_server.c), and the pieces of them that `sked dev` (cmd/cmd_dev.c,
 * which adds a local worker above the roles) reuses, so both servers take
 * the same options, signals and ready lines.
 *
 * Messages for the person at the terminal go to stderr, prefixed "sked: ";
 * nothing here is thread-safe (it runs before the server's threads start,
 * or in the main thread).
 */
#ifndef SKED_SERVER_CMD_SERVER_H
#define SKED_SERVER_CMD_SERVER_H

#include <signal.h>
#include <stdio.h>

#include "server/server.h"

#define CMD_EXIT_USAGE 2 /* exit status for a bad command line */

/* Help lines of options both servers take, the same in both usages. */
#define CMD_SERVER_HELP_TLS                                                                        \
    "  --tls-cert FILE      serve HTTPS only, with this PEM certificate (chain);\n"                \
    "                       needs --tls-key. Plain HTTP is then not served at all\n"               \
    "  --tls-key FILE       the PEM private key of --tls-cert\n"
#define CMD_SERVER_HELP_PLUGINS                                                                    \
    "  --plugin-dir DIR     register the plugin types of every *.so in DIR at start\n"             \
    "                       (their manifests are read, the plugins never loaded), so\n"            \
    "                       jobs of them are validated before a worker has them\n"
#define CMD_SERVER_HELP_METRICS                                                                    \
    "  --metrics-listen ADDR:PORT\n"                                                               \
    "                       also serve GET /metrics, and nothing else, on this\n"                  \
    "                       address WITHOUT a token (for Prometheus); bind it to a\n"              \
    "                       private address. Without it, /metrics on --listen needs\n"             \
    "                       a token of role metrics (sked tokens create --role metrics)\n"
#define CMD_SERVER_HELP_LIMITS                                                                     \
    "  --rate-burst N       requests a caller may make at once (default 2 x rate)\n"               \
    "  --max-connections N  open connections at once (default 4096, fewer when\n"                  \
    "                       ulimit -n is lower)\n"                                                 \
    "  --max-connections-per-ip N\n"                                                               \
    "                       per client address (default 512; 0 = no cap, e.g.\n"                   \
    "                       behind a load balancer)\n"                                             \
    "  --idle-timeout DUR   close connections silent this long (default 30s)\n"                    \
    "  --events-retention DUR\n"                                                                   \
    "                       keep events this long for GET /v1/events to resume\n"                  \
    "                       from (default 1h)\n"                                                   \
    "  --log-format F       text (default) or json: one JSON object per line, with\n"              \
    "                       time, level, component, msg, request_id, job_id, run_id\n"

#define CMD_SERVER_HELP_ALERTS                                                                     \
    "  --smtp-url URL       the SMTP relay of email alerts: smtp://HOST[:PORT] (STARTTLS\n"        \
    "                       whenever offered) or smtps://HOST[:PORT] (default: no email)\n"        \
    "  --smtp-from ADDR     the sender of email alerts, user@host or 'Name <user@host>'\n"         \
    "  --smtp-credentials-file FILE\n"                                                             \
    "                       one line user:password for SMTP AUTH; must be mode 0600\n"             \
    "                       (or 0400). Sent only over TLS, or to a loopback relay\n"               \
    "  --alert-ca FILE      PEM CA certificates that alert deliveries over TLS (relay,\n"          \
    "                       webhooks, Slack) trust instead of the system's\n"                      \
    "  --alert-tries N      sends of one alert notice before it is marked failed\n"                \
    "                       (default 10), with exponential backoff between them from\n"            \
    "                       1s up to --alert-retry-max DUR (default 5m)\n"

/* Entry points; argv[0] is the subcommand name; return the exit status. */
int cmd_server(int argc, char **argv);
int cmd_routes(int argc, char **argv); /* prints "METHOD PATTERN" lines */

/* A command's own options, for cmd_server_parse: looks at argv[*i] and
 * returns 1 if it took it (advancing *i past a separate value, as
 * cmd_server_take does), 0 if it is not one of its own, -1 on a bad value
 * (message printed). */
typedef int cmd_server_opt_fn(int argc, char **argv, int *i, void *arg);

/* Parses the command line of a server command (argv[0] is its name) into
 * cfg, which is reset first (listen: 127.0.0.1:8080): -h/--help prints
 * usage to stdout; the options both servers take (--listen, --metrics-listen, --tls-*,
 * --rate-*, the connection limits, --idle-timeout, the lease options, the
 * alert relay's --smtp-* and --alert-ca) go
 * into cfg, string values borrowed from argv; the rest goes to own(arg),
 * and what own does not know is an error. Returns 0 to go on, or -1 when
 * the command is done, with *status its exit status (0 after --help,
 * CMD_EXIT_USAGE after a message). */
int cmd_server_parse(int argc, char **argv, server_config_t *cfg, void (*usage)(FILE *),
                     cmd_server_opt_fn *own, void *arg, int *status);

/* If argv[*i] is option `name` ("--name VALUE" or "--name=VALUE"), stores
 * its value in *val (borrowed from argv) and returns 1, advancing *i past a
 * separate value; returns 0 when it is another option, -1 (message
 * printed) when the value is missing. */
int cmd_server_take(int argc, char **argv, int *i, const char *name, const char **val);

/* Parses s, the value of option opt, as an integer from min to max into
 * *out. Returns 0, or -1 with a message printed. */
int cmd_server_parse_count(const char *opt, const char *s, int min, int max, int *out);

/* Blocks SIGINT and SIGTERM in the calling thread, which must be the only
 * one so far (every thread started later inherits the mask), for
 * cmd_server_wait_signal to take; and ignores SIGPIPE. OUT: *set. */
void cmd_server_block_signals(sigset_t *set);

/* Waits for SIGINT or SIGTERM (blocked with cmd_server_block_signals),
 * says so on stderr, then restores their default actions and unblocks
 * them, so a second one ends a slow shutdown. */
void cmd_server_wait_signal(const sigset_t *set);

/* Prints the machine-readable lines that tests and scripts parse and
 * flushes stdout: "listening: URL", then "admin-token: TOKEN" and
 * "admin-token-file: PATH" for those not NULL. */
void cmd_server_print_ready(const char *url, const char *token, const char *token_file);
/* Prints "metrics-listening: URL" when srv has a --metrics-listen listener
 * (before cmd_server_print_ready, whose lines end the start-up). */
void cmd_server_print_metrics(const server_t *srv);

#endif
