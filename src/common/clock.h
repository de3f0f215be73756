/*
 * The two kinds of time, never mixed: UTC wall-clock instants in
 * milliseconds since the Unix epoch (fire times, leases, stored stamps),
 * read once at the edge and passed down as `now_ms`; and monotonic
 * nanoseconds for waits and timeouts. Also RFC 3339 formatting/parsing.
 */
#ifndef SKED_COMMON_CLOCK_H
#define SKED_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define SKED_RFC3339_LEN 32

/* Wall clock, UTC, ms since epoch. Honours SKED_CLOCK_OFFSET_MS (tests fake skew). */
int64_t clock_now_ms(void);
/* The same in µs. */
int64_t clock_now_us(void);
/* Monotonic clock in ns, for waits and timeouts only. */
int64_t clock_mono_ns(void);
/* Formats ms as "2026-11-22T23:59:19.123Z" into out (>= SKED_RFC3339_LEN bytes). */
void clock_format_rfc3339(int64_t ms, char *out, size_t outlen);
/* Parses RFC 3339 ("2026-11-22T23:59:19Z", fractional secs and +hh:mm offsets
 * allowed) into ms. Returns 0 or SKED_EINVAL. */
int clock_parse_rfc3339(const char *s, int64_t *out_ms);
/* Days since 1970-01-01 of a proleptic Gregorian civil date, and back. */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d);
void clock_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
