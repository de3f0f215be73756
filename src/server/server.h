/*
 * The sked server: the HTTP API, the scheduler (fires due schedules), the
 * reaper (expired leases, lost workers), retention, and the dispatcher
 * (waiting claims woken when work appears). One process may run the server
 * alone (`sked server`) or with a local worker (`sked dev`).
 */
#ifndef SKED_SERVER_SERVER_H
#define SKED_SERVER_SERVER_H

#include <stdint.h>

#include "store/store.h"

typedef struct server server_t;

/* Lease defaults. A dead worker's run is re-queued about lease + grace
 * after its last renewal (under 15 s with these); a worker fences its
 * attempts lease - max(2 heartbeats, lease/5) after the *send* of the last
 * renewing request, so the attempt is dead well before the server moves
 * the run on, even when the worker process is frozen (its watcher process
 * holds the deadline). A claimed run must be confirmed started within the
 * confirm window (default lease/2) or it comes back, uncharged. */
#define SERVER_DEFAULT_LEASE_MS       10000
#define SERVER_DEFAULT_LEASE_GRACE_MS 2000

typedef struct server_config {
    const char *listen;        /* "127.0.0.1:8080"; port 0 = pick one */
    const char *store_url;     /* "sqlite:PATH" */
    const char *token_file;    /* where the bootstrap admin token is written on a new store;
                                  NULL = beside the database file ("admin.token") */
    int threads;               /* HTTP worker threads; 0 = default (16) */
    int64_t lease_ms;          /* run lease; default 10s */
    int64_t heartbeat_ms;      /* heartbeat interval told to workers; default lease/5 */
    int64_t lease_grace_ms;    /* extra wait after a lease expires before re-queueing; default 2s */
    int64_t confirm_ms;        /* a claimed run not reported started within this goes back to
                                  pending, uncharged; default lease/2 */
    int64_t worker_timeout_ms; /* heartbeat silence before a worker is lost; default 3 leases */
    int64_t lookahead_ms;      /* fire schedules this far ahead; default 1s */
    int64_t misfire_grace_ms;  /* a fire time later than this is a misfire; default 5s */
    int64_t retention_ms;      /* logs and finished runs kept; default 30d */
    int64_t events_retention_ms; /* events kept for GET /v1/events to resume from; default 1h */
    int64_t log_cap_bytes;       /* per run; default STORE_LOG_CAP_DEFAULT */
    /* HTTPS and limits (README "Configuration", docs/api.md "Conventions"). */
    const char *tls_cert_file; /* PEM certificate, leaf first, then intermediates; with tls_key_file
                                  the listener speaks HTTPS only; NULL = plain HTTP */
    const char *tls_key_file;  /* PEM private key of tls_cert_file */
    double rate_limit;         /* requests/s per token (per address without one); 0 = default
                                  100; < 0 = no limit. Admin tokens and worker-protocol
                                  routes are exempt */
    double rate_burst;         /* bucket size; 0 = default 2 x rate_limit */
    int max_connections;       /* open connections at once; 0 = default 4096 (fewer when the
                                  descriptor limit is lower) */
    int max_connections_per_ip; /* per client address; 0 = default 512; < 0 = no cap */
    int64_t idle_timeout_ms;    /* a connection silent this long is closed (waiting claims and
                                   followers are not silent); 0 = default 30s */
    /* Alert delivery (alert_send.h, docs/observability.md "Alert channels"). */
    const char *smtp_url;  /* the relay of email channels, "smtp://HOST:PORT" (STARTTLS when
                              offered) or "smtps://HOST:PORT"; NULL = no email */
    const char *smtp_from; /* the sender, "a@x" or "Name <a@x>"; needed with smtp_url */
    const char *smtp_credentials_file; /* one line "user:password", mode 0600; NULL = no
                                          AUTH. Read at start, then NULL in server_config() */
    const char *alert_ca_file;         /* PEM CAs that alert TLS (relay, webhooks, Slack) trusts
                                          instead of the system's; NULL = the system's */
    const char *metrics_listen; /* "ADDR:PORT" of a second listener serving GET /metrics alone,
                                   without a token; NULL = none (the API's /metrics then
                                   needs a token of role metrics or admin) */
    const char *plugin_dir;     /* the manifests of every *.so here are upserted into the plugin
                                   type registry at start (read, never loaded), so jobs of those
                                   types are validated before any worker has them; NULL = none */
    int alert_tries;            /* sends of one notice before it is failed; 0 = default 10 */
    int64_t alert_retry_max_ms; /* cap of the backoff between them; 0 = default 5m */
} server_config_t;

/* Opens the store, bootstraps the admin token on a fresh store, starts the
 * HTTP listener and the background loops. On success returns 0 and *out
 * (stop with server_stop). *admin_token (if non-NULL) receives a new copy of
 * the bootstrap token when one was created on this start, else NULL. */
int server_start(const server_config_t *cfg, server_t **out, char **admin_token);
/* The actual "http://127.0.0.1:PORT" (https:// with TLS) the server listens on;
 * borrowed. */
const char *server_url(const server_t *srv);
/* The SMTP relay and the alert TLS trust made from the config, for
 * alert_send (alert_send.h); borrowed, valid until server_stop. */
struct alert_smtp;
const struct alert_smtp *server_smtp(const server_t *srv);
/* The URL of the --metrics-listen listener ("http://ADDR:PORT"), borrowed;
 * NULL when there is none. */
const char *server_metrics_url(const server_t *srv);
/* Stops listening, finishes in-flight requests, joins loops, closes the store. */
void server_stop(server_t *srv);

#endif
