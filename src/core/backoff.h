/*
 * Retry policy and exponential backoff:
 * delay(attempt) = min(max, initial * multiplier^(attempt-1)), and with full
 * jitter a uniform draw in [0, delay]. Pure: the random draw is a parameter.
 */
#ifndef SKED_CORE_BACKOFF_H
#define SKED_CORE_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

typedef struct retry_policy {
    int max_attempts;   /* total tries including the first; >= 1 */
    int64_t initial_ms; /* delay before the 2nd attempt (before jitter) */
    int64_t max_ms;     /* cap on any delay */
    double multiplier;  /* >= 1.0 */
    bool jitter;        /* full jitter (default true) */
} retry_policy_t;

/* Defaults: 1 attempt, 10s initial, 10m max, x2, jitter on. */
retry_policy_t retry_policy_default(void);

/* Delay in ms before attempt `next_attempt` (2 = first retry), given
 * `unit` in [0,1) as the random draw used for jitter. */
int64_t backoff_delay_ms(const retry_policy_t *p, int next_attempt, double unit);

/* 1 if a run that just finished attempt `attempt` (1-based) may try again. */
bool backoff_may_retry(const retry_policy_t *p, int attempt);

#endif
