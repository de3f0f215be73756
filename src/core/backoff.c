/*
 * Retry policy arithmetic: how long a failed run waits before its next
 * attempt, and whether it gets one. The reaper and the completion path call
 * this when an attempt fails or its lease is lost. Pure: the random draw for
 * jitter is a parameter, so tests and the simulator choose it.
 */
#include "core/backoff.h"

#include <math.h>

retry_policy_t retry_policy_default(void)
{
    retry_policy_t p = {
        .max_attempts = 1,
        .initial_ms = 10 * 1000,
        .max_ms = 10 * 60 * 1000,
        .multiplier = 2.0,
        .jitter = true,
    };
    return p;
}

int64_t backoff_delay_ms(const retry_policy_t *p, int next_attempt, double unit)
{
    if (next_attempt < 2) return 0; /* the first attempt never waits */
    int64_t cap = p->max_ms > 0 ? p->max_ms : 0;
    int64_t initial = p->initial_ms > 0 ? p->initial_ms : 0;
    if (initial >= cap) initial = cap;
    double mult = p->multiplier >= 1.0 ? p->multiplier : 1.0;

    /* Work in double and compare with the cap before converting back: the
     * exponent can be large (a job with 100 attempts and x100 growth) and
     * pow() saturates to inf instead of wrapping, whereas any int64
     * multiplication here could overflow. */
    double delay = (double)initial * pow(mult, (double)(next_attempt - 2));
    int64_t d;
    if (!isfinite(delay) || delay >= (double)cap)
        d = cap;
    else
        d = (int64_t)delay;

    if (p->jitter) {
        /* Full jitter (uniform in [0, delay]) spreads a burst of failures
         * so that retries do not arrive in lockstep. A draw outside [0,1)
         * is a caller bug; clamp rather than produce a negative or
         * over-cap delay. */
        if (!(unit >= 0.0)) unit = 0.0; /* also catches NaN */
        if (unit > 1.0) unit = 1.0;
        d = (int64_t)(unit * (double)d);
    }
    return d;
}

bool backoff_may_retry(const retry_policy_t *p, int attempt)
{
    return attempt < p->max_attempts;
}
