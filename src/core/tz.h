/*
 * Time zones, read from the system's compiled zone files (TZif, RFC 8536)
 * in $TZDIR or /usr/share/zoneinfo, which the OS keeps current: a tzdata
 * update reaches sked without a rebuild, and a running process sees it
 * within TZ_RECHECK_MS. core/schedule.c converts between civil (wall-clock)
 * time and instants with these two primitives; nothing else in sked needs
 * to know what a zone file looks like.
 *
 * A file's transition table says the offset up to its last transition; its
 * POSIX TZ footer ("CET-1CEST,M3.5.0,M10.5.0/3") says it from then on, so
 * both "fat" files (tables to 2037) and "slim" ones (tables that stop when
 * the rule takes over) give the same answers. Leap-second files ("right/")
 * are refused: their instants do not count the way ours do.
 *
 * Instants and local times here are whole seconds: an instant counts from
 * 1970-01-01T00:00:00Z; a local time is the civil date-time counted as if it
 * were UTC (days_from_civil * 86400 + seconds of the day). Offsets are
 * seconds east of UTC.
 *
 * A tz_t is immutable once made and may be used from any number of threads
 * without locking; it is reference-counted, and tz_open() shares one per
 * zone file process-wide.
 */
#ifndef SKED_CORE_TZ_H
#define SKED_CORE_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How old the process-wide cache's knowledge of the zone files may get
 * before tz_open() or tz_generation() looks at them again (stat: device,
 * inode, size, mtime). */
#define TZ_RECHECK_MS 60000

typedef struct tz tz_t;

/* Which instant a local time that occurs twice (a fall-back) stands for. */
typedef enum tz_pick { TZ_FIRST = 0, TZ_LAST } tz_pick_t;

/* The zone named name, an IANA name as the zone files spell it
 * ("Europe/Berlin", "UTC", "Etc/GMT+5", links such as "US/Eastern").
 * Names with characters outside [A-Za-z0-9/_+-], empty or leading-slash
 * components, or "localtime" (this host's setting, not a zone) are refused,
 * and so are files that are not valid TZif. "UTC" (also "Etc/UTC", "GMT",
 * "Etc/GMT") works even where no zone files are installed.
 * Returns 0 and *out: a reference the caller releases with tz_close();
 * repeated opens of an unchanged file share one zone. On failure returns
 * SKED_EINVAL, sets *out to NULL and writes a sentence naming the zone
 * ("unknown time zone 'Mars/Olympus'") into err[errlen] (may be NULL).
 * Thread-safe. */
int tz_open(const char *name, tz_t **out, char *err, size_t errlen);

/* Parses len bytes of a TZif file image (for tests and fuzzing; not
 * cached). name is only kept for tz_name(). Returns 0 and *out (new; caller
 * releases with tz_close()) or SKED_EINVAL with a message as tz_open. */
int tz_load_mem(const char *name, const void *data, size_t len, tz_t **out, char *err,
                size_t errlen);

/* Releases a reference from tz_open/tz_load_mem/tz_ref. NULL is a no-op. */
void tz_close(tz_t *z);

/* Takes another reference to z (released with tz_close()). Returns z. */
tz_t *tz_ref(tz_t *z);

/* The name z was opened with. Borrowed; valid while z is. */
const char *tz_name(const tz_t *z);

/* The UTC offset in effect at instant t_s. Thread-safe. */
int32_t tz_offset_at(const tz_t *z, int64_t t_s);

/* The instant whose local time in z is local_s. A local time repeated by a
 * backward shift gives its first or last occurrence as pick says; a local
 * time skipped by a forward shift gives the first instant after the gap
 * (the transition itself) and sets *skipped (may be NULL) to true.
 * Thread-safe. */
int64_t tz_local_to_utc(const tz_t *z, int64_t local_s, tz_pick_t pick, bool *skipped);

/* True if z has one offset for all time (UTC, "Etc/GMT+5"); *off_s (may be
 * NULL) gets it. */
bool tz_is_fixed(const tz_t *z, int32_t *off_s);

/* The zone-data generation: a counter bumped whenever tz_open's cache finds
 * that a zone file it loaded has changed or gone. A holder of compiled
 * schedules keyed by it (src/server/sched.c) recompiles them when it moves,
 * so a tzdata update reaches fire times without a restart. Looks at the
 * files at most once per TZ_RECHECK_MS; otherwise costs an atomic load and
 * a clock read. Thread-safe. */
uint64_t tz_generation(void);

/* Test seam: how long the cache trusts what it last saw of the files (0 =
 * look every time; negative restores TZ_RECHECK_MS). */
void tz_set_recheck_ms(int64_t ms);

#endif
