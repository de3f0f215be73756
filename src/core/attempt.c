/*
 * How an attempt ends, and what of its log is kept (attempt.h).
 */
#include "core/attempt.h"

attempt_end_t attempt_end(const retry_policy_t *p, int attempt, attempt_outcome_t outcome,
                          const char *why, bool cancel_requested, const char *cancel_reason,
                          double unit, int64_t now_ms)
{
    attempt_end_t e = {.not_before_ms = now_ms};
    if (!why && outcome == ATTEMPT_TIMEOUT) why = "timeout";
    e.attempt_reason = why;
    if (cancel_requested || outcome == ATTEMPT_CANCELED) {
        e.next = RUN_CANCELED;
        /* The canceler's words first; an undone attempt's own reason says
         * nothing about the cancel. */
        e.reason = cancel_reason                           ? cancel_reason
                   : why && outcome != ATTEMPT_NOT_STARTED ? why
                                                           : "canceled";
        return e;
    }
    if (outcome == ATTEMPT_SUCCEEDED) {
        e.next = RUN_SUCCEEDED;
        return e;
    }
    e.reason = why;
    if (outcome == ATTEMPT_NOT_STARTED) { /* uncharged: due again at once */
        e.next = RUN_SCHEDULED;
        return e;
    }
    if (backoff_may_retry(p, attempt)) {
        e.next = RUN_SCHEDULED;
        e.not_before_ms = now_ms + backoff_delay_ms(p, attempt + 1, unit);
        return e;
    }
    e.next = RUN_FAILED;
    if (!e.reason) e.reason = outcome == ATTEMPT_LOST ? "lost: lease expired" : "failed";
    return e;
}

size_t log_keep(int64_t cap, int64_t used, size_t len, bool *truncated)
{
    int64_t room = cap > used ? cap - used : 0;
    size_t keep = (int64_t)len > room ? (size_t)room : len;
    *truncated = keep < len;
    return keep;
}
