/*
 * The alerter: the server's two alert loops. The evaluator runs the
 * store's sweep of the time-based conditions (sla_missed, overrun,
 * missed, backlog, and what clears worker_lost) every second; the
 * deliverers claim due notices from the outbox (store_outbox_claim, a
 * lease like a run's), render each (the alert document for a webhook, a
 * subject and a few lines for Slack and e-mail: core/alert.h), send it
 * with alert_send() and settle it: sent, due again after an exponential
 * backoff (core/backoff.h), or failed with the last error once the tries
 * are used up. Every server runs both; the store keeps a notice to one
 * deliverer at a time and an alert open once.
 *
 * The deliverers sleep until the next notice is due, at most a few
 * seconds, and are woken by alerter_kick() (the store's notify hook calls
 * it after commits, which include every commit that queued a notice).
 */
#ifndef SKED_SERVER_ALERTER_H
#define SKED_SERVER_ALERTER_H

#include <jansson.h>
#include <stdint.h>

#include "server/alert_send.h"
#include "server/server.h"
#include "store/store.h"

typedef struct alerter alerter_t;

/* Defaults of server_config_t's alert fields. */
#define ALERTER_DEFAULT_TRIES     10
#define ALERTER_DEFAULT_RETRY_MAX (5 * 60 * 1000)

/* A new alerter on st (borrowed, as are cfg and smtp: they must outlive
 * it); nothing runs until alerter_start. Never fails. */
alerter_t *alerter_new(store_t *st, const server_config_t *cfg, const alert_smtp_t *smtp);
/* Starts the loops. 0 or a negative errno. */
int alerter_start(alerter_t *a);
/* Wakes the deliverers now. Thread-safe; NULL is a no-op. */
void alerter_kick(alerter_t *a);
/* Stops and joins the loops (a send in flight finishes first) and frees
 * a. NULL is a no-op. */
void alerter_stop(alerter_t *a);

/* One delivery pass, exposed for tests: claims up to max due notices as
 * owner at now_ms and sends and settles each. Returns the number settled
 * (sent or not) or a store error. */
int alerter_deliver(store_t *st, const server_config_t *cfg, const alert_smtp_t *smtp,
                    const char *owner, int max, int64_t now_ms);

/* The alert document, as GET /v1/alerts shows it and a webhook receives
 * it (with "event" added). New reference. */
json_t *alerter_alert_json(const store_alert_t *a);

#endif
