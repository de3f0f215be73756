/*
 * Schedules (triggers): when a job fires. Three kinds:
 *   at    — one instant;
 *   every — a fixed interval from an anchor (default: the schedule's start,
 *           or its creation time);
 *   cron  — 5 fields (min hour dom month dow) or 6 with seconds first;
 *           names (JAN, MON), lists, ranges, steps, `L` (last day of month,
 *           or `5L` last Friday), `W` (nearest weekday, `15W`, `LW`), `#`
 *           (`MON#2`), `?` as `*`, and macros @yearly @annually @monthly
 *           @weekly @daily @midnight @hourly; evaluated in an IANA time zone
 *           as the system's zone files describe it (core/tz.h), so a tzdata
 *           update changes fire times without a rebuild. When both
 *           day-of-month and day-of-week are restricted a day matches if
 *           either does (Vixie cron). An expression that matches no date at
 *           all ("0 0 30 2 *") does not compile.
 *
 * DST: a local time skipped by a spring-forward fires once, at the first
 * instant after the gap; a local time repeated by a fall-back fires once, at
 * its first occurrence.
 *
 * No fire time is at or after 10000-01-01T00:00:00Z, as RFC 3339 cannot
 * print a later year, and no cron fire time before 0002-01-01T00:00:00Z.
 * The bounds are on the UTC instant; the local date of a fire may be a day
 * either side of them.
 *
 * Pure logic: never reads a clock; `after_ms` is a parameter. (Compiling
 * reads the zone's file, through a process-wide cache.) A compiled schedule
 * is immutable and may be shared between threads without locking.
 */
#ifndef SKED_CORE_SCHEDULE_H
#define SKED_CORE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum schedule_kind { SCHEDULE_AT = 0, SCHEDULE_EVERY, SCHEDULE_CRON } schedule_kind_t;

/* A schedule as clients write it and the store keeps it. Strings borrowed. */
typedef struct schedule_spec {
    schedule_kind_t kind;
    const char *expr;     /* cron: the expression; every: duration text ("90s"); at: RFC 3339 */
    const char *timezone; /* IANA zone for cron (NULL or "" = "UTC") */
    int64_t start_ms;     /* no fire before this; INT64_MIN = unbounded */
    int64_t end_ms;       /* no fire after this; INT64_MAX = unbounded */
    int64_t jitter_ms;    /* 0 = none; fire time + uniform [0, jitter) (applied by caller) */
    int64_t anchor_ms;    /* every: the anchor; INT64_MIN = use start_ms, else 0 */
} schedule_spec_t;

typedef struct schedule schedule_t; /* opaque compiled form */

/* Compiles spec. On success returns 0 and *out (caller frees with
 * schedule_free). On error returns SKED_EINVAL and writes a human message
 * naming the problem (e.g. "cron field 'hour': 24 is out of range 0-23",
 * "unknown time zone 'Mars/Olympus'", "cron never fires: day-of-month '30'
 * does not occur in month '2'") into err[errlen]. The zone is checked
 * before the expression, and whether an expression compiles does not
 * depend on the zone. Thread-safe. */
int schedule_compile(const schedule_spec_t *spec, schedule_t **out, char *err, size_t errlen);
void schedule_free(schedule_t *s); /* NULL is a no-op */

/* The first fire time strictly after after_ms, within [start, end], or -1
 * when there is none (an `at` already past, end reached, or none before
 * 10000-01-01T00:00:00Z). Jitter is not applied. Thread-safe. */
int64_t schedule_next(const schedule_t *s, int64_t after_ms);

/* One previewed fire time. */
typedef struct schedule_fire {
    int64_t utc_ms;   /* the instant */
    char local[40];   /* local wall time in the zone, "2026-03-29T03:00:00+02:00" */
    int utc_offset_s; /* zone offset at that instant */
    bool dst_shifted; /* a DST transition moved it (skipped local time) or
                         it is the single run of a repeated local time */
} schedule_fire_t;

/* Writes up to n fire times after after_ms into out; returns how many. */
size_t schedule_preview(const schedule_t *s, int64_t after_ms, schedule_fire_t *out, size_t n);

/* Kind names: "at", "every", "cron". */
const char *schedule_kind_name(schedule_kind_t k);

/* Whether a and b have the same definition, and so the same fire times:
 * kind, expression, zone (NULL and "" are "UTC"), start, end and anchor.
 * Jitter is left out: it moves when a run may start, not its fire time. */
bool schedule_same(const schedule_spec_t *a, const schedule_spec_t *b);

/* Matches schedules by definition, not position: for each of want[0..n)
 * match[i] (OUT, n entries) is the index of the first schedule of
 * have[0..nhave) with the same definition that no earlier want took, or
 * SIZE_MAX if none. An edited job's schedule matched this way keeps its
 * stored firing state, so an edit neither fires a fire time again nor
 * forgets one, whatever order the schedules are written or stored in. */
void schedule_match(const schedule_spec_t *want, size_t n, const schedule_spec_t *have,
                    size_t nhave, size_t *match);

#endif
