/*
 * Misfire planning: what one due schedule does in one scheduler pass, and
 * when a new schedule first fires. The scheduler (server/sched.c) reads the
 * due schedules from the store, compiles them, asks plan_make() about each
 * and hands the plans to the store in one store_fire() call; the job
 * service asks plan_first_fire() when it stores a schedule.
 *
 * Pure: `now` is a parameter, nothing here reads a clock or the store, draws
 * a random number or logs. A plan says what happened (plan_t.note) and the
 * caller logs it; jitter is drawn by the caller, since a plan holds only
 * nominal fire times.
 *
 * The rules (promise §5.3: no silent misses). A fire time older than
 * now - grace is missed; the job's misfire policy decides what a missed
 * one does:
 *   run_once — only the latest fire time of a missed stretch runs;
 *   catch_up — those within catch_up_window of now run, older ones do not;
 *   skip     — none runs.
 * A missed fire time that does not run goes to the missed-fire ledger: the
 * ones passed over lead the walk (they are the oldest), so they form one
 * stretch per plan (plan_t.miss), and an outage costs a row per stretch,
 * not a row per fire time. Fire times within the grace run as usual.
 */
#ifndef SKED_CORE_PLAN_H
#define SKED_CORE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "core/run.h"
#include "core/schedule.h"

/* A due schedule as the planner sees it: the store's schedule row and its
 * job's misfire settings. Borrowed. */
typedef struct plan_due {
    const schedule_t *compiled; /* NULL: it did not compile (compile_rc, compile_err say why) */
    int compile_rc;             /* SKED_EIO: its zone file could not be read just now */
    const char *compile_err;    /* the compiler's message */
    int64_t next_fire_ms;       /* -1 = exhausted */
    int64_t last_fire_ms;       /* -1 = never fired */
    int64_t end_ms;             /* no fire after this; INT64_MAX = unbounded */
    misfire_policy_t misfire;
    int64_t catch_up_window_ms;
} plan_due_t;

/* One scheduler pass. */
typedef struct plan_pass {
    int64_t now_ms;   /* the wall clock, read once for the pass (UTC ms) */
    int64_t until_ms; /* fire times up to this are due (now + lookahead) */
    int64_t grace_ms; /* a fire time older than now - grace_ms is missed */
    size_t walk_max;  /* at most this many fire times walked per schedule per pass */
} plan_pass_t;

/* A run to create. */
typedef struct plan_run {
    int64_t fire_ms;    /* the nominal fire time; the caller adds jitter to scheduled ones */
    run_state_t state;  /* RUN_SCHEDULED, or RUN_SKIPPED */
    const char *reason; /* why skipped (static, or the plan's owned_reason); NULL if scheduled */
} plan_run_t;

/* The leading stretch of missed fire times that do not run, for the
 * ledger: the shape of store_fire_miss_t. count 0 = none. */
typedef struct plan_miss {
    int64_t first_ms, last_ms; /* the first and the last fire time of the stretch */
    int64_t count;             /* fire times in it */
    int64_t prev_ms;           /* the fire time before first_ms (the due's last_fire_ms) */
    const char *reason;        /* static */
} plan_miss_t;

/* What the plan says about the schedule, for the caller's log. */
typedef enum plan_note {
    PLAN_WALKED = 0, /* its fire times were walked: runs and miss below (maybe none) */
    PLAN_RETRY,      /* its zone could not be read just now: left due as it was, nothing fires */
    PLAN_RETIRED,    /* it no longer compiles: one skipped run says why, and it never fires again */
    PLAN_BACKWARDS   /* its next fire time went backwards (back_to_ms after back_from_ms):
                        retired after the fire times before */
} plan_note_t;

typedef struct plan {
    plan_note_t note;
    int64_t new_next_ms; /* the schedule's next_fire_ms after the pass; -1 = exhausted */
    bool bounded;        /* stopped at walk_max with fire times still due: another pass is needed */
    plan_run_t *runs;    /* owned; in fire time order */
    size_t nruns;
    plan_miss_t miss;
    int64_t back_from_ms, back_to_ms; /* PLAN_BACKWARDS only */
    char *owned_reason;               /* owned; PLAN_RETIRED's reason */
} plan_t;

/* Plans one due schedule for pass. Fills *out (caller frees with
 * plan_clear); never fails. */
void plan_make(const plan_due_t *due, const plan_pass_t *pass, plan_t *out);
/* Frees what a plan owns and zeroes it. NULL is a no-op. */
void plan_clear(plan_t *p);

/* The first next_fire_ms of a schedule of `kind` (compiled) stored at
 * now_ms, or -1 if it never fires. A schedule stored exactly at one of its
 * fire instants fires that instant. An `at` whose instant is already past
 * (a client clock a second fast, or a date long gone) is due at once, at its
 * own instant: plan_make then applies the job's misfire policy to it like to
 * any missed fire time, so it runs (run_once) or is recorded skipped with
 * its reason (skip), never nothing. Recurring schedules start from now. */
int64_t plan_first_fire(const schedule_t *compiled, schedule_kind_t kind, int64_t now_ms);

#endif
