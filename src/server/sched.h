/*
 * The server's background loops (sched.c): the scheduler fires due
 * schedules into runs (applying jitter, misfire and end bounds) and sleeps
 * until the earliest next fire or a wake-up; the reaper expires leases and
 * marks silent workers lost; retention prunes old logs and runs. All are
 * safe to run on every server against one store.
 */
#ifndef SKED_SERVER_SCHED_H
#define SKED_SERVER_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"
#include "store/store.h"

typedef struct sched sched_t;

/* Starts the loops on st with cfg (borrowed; must outlive the sched). */
int sched_start(store_t *st, const server_config_t *cfg, sched_t **out);
/* Wakes the scheduler now (a job was created/updated/resumed). Thread-safe. */
void sched_kick(sched_t *s);
/* Wakes the scheduler if a schedule first due at fire_ms (store time)
 * needs it sooner than it would look anyway; INT64_MAX: nothing to fire. A
 * submit of jobs due next week costs the scheduler nothing. Thread-safe. */
void sched_kick_at(sched_t *s, int64_t fire_ms);
/* Stops and joins the loops. NULL is a no-op. */
void sched_stop(sched_t *s);

/* One scheduler pass at now_ms: fires what is due up to now + lookahead.
 * Returns the number of fire times handled (runs created plus fire times
 * recorded in the missed-fire ledger), or an error. Exposed for tests. */
int sched_tick(store_t *st, const server_config_t *cfg, int64_t now_ms);

/* The definition of a stored schedule (borrowed from s): what core/ takes. */
schedule_spec_t sched_spec(const store_schedule_t *s);
/* Clears each of the n schedules of array s and frees it. NULL is a no-op. */
void sched_array_free(store_schedule_t *s, size_t n);

#endif
