/*
 * How an attempt ends: the decision that moves a run on when its attempt
 * finishes (retry with backoff, fail, cancel, succeed, or undo an attempt
 * that never started), with the reasons people read; and how much of an
 * attempt's output the run's log keeps under its cap. Pure: the time and the
 * jitter draw are parameters, so the store (which draws the jitter from
 * libsodium and applies the result in its transaction) and the unit tests
 * call the same code.
 */
#ifndef SKED_CORE_ATTEMPT_H
#define SKED_CORE_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backoff.h"
#include "core/run.h"

/* What a finished attempt leads to. */
typedef struct attempt_end {
    run_state_t next;           /* RUN_SCHEDULED (a retry, or an attempt undone), RUN_SUCCEEDED,
                                   RUN_FAILED or RUN_CANCELED */
    int64_t not_before_ms;      /* when next is RUN_SCHEDULED: when the run is due again */
    const char *reason;         /* the run's reason; NULL when it succeeded */
    const char *attempt_reason; /* the attempt's own reason (NULL = none) */
} attempt_end_t;

/* The end of attempt number `attempt` (1-based) of a run under retry policy
 * p, with outcome and the reason the worker or reaper gave (why, may be
 * NULL). cancel_requested: someone asked to cancel the run (its reason in
 * cancel_reason, may be NULL), which wins over any outcome. An attempt that
 * never started (ATTEMPT_NOT_STARTED) is not charged: the run is due again
 * at once. A retry is due after the backoff delay of the next attempt,
 * jittered by unit (a uniform draw in [0, 1)). Reasons are borrowed from
 * the arguments or static. */
attempt_end_t attempt_end(const retry_policy_t *p, int attempt, attempt_outcome_t outcome,
                          const char *why, bool cancel_requested, const char *cancel_reason,
                          double unit, int64_t now_ms);

/* How many of len bytes of output a run's log keeps when `used` bytes of
 * its cap are taken. *truncated OUT: the chunk crosses the cap, so the log
 * ends here and a truncation note is due. A zero-length chunk is kept. */
size_t log_keep(int64_t cap, int64_t used, size_t len, bool *truncated);

#endif
