/*
 * Token buckets keyed by a short string (a token id, a client address), for
 * the server's per-caller request rate limits. Each key gets a bucket of
 * `burst` requests that refills at `rate` per second; a request takes one.
 * Buckets are made on first use and forgotten once they have refilled, so
 * memory follows the number of callers active in the last few seconds, not
 * every caller ever seen. Time is a parameter (monotonic nanoseconds), so
 * tests drive it.
 */
#ifndef SKED_SERVER_RATELIMIT_H
#define SKED_SERVER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

/* New limiter: rate_per_s > 0 requests per second, burst >= 1. Free with
 * ratelimit_free. */
ratelimit_t *ratelimit_new(double rate_per_s, double burst);
void ratelimit_free(ratelimit_t *rl); /* NULL is a no-op */

/* Takes one request from key's bucket at now_ns. Returns true when the
 * request may proceed; false when the bucket is empty, with *retry_ns
 * (if non-NULL) set to how long until one request is available again.
 * key is copied (truncated to 63 bytes). Thread-safe. */
bool ratelimit_take(ratelimit_t *rl, const char *key, int64_t now_ns, int64_t *retry_ns);

/* Number of buckets held (for tests). Thread-safe. */
size_t ratelimit_size(ratelimit_t *rl);

#endif
