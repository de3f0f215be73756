/*
 * sked-tz-helper: a line-oriented window onto core/schedule for the time-zone
 * test (tests/e2e/test_timezones.py), which compares its answers with
 * Python's zoneinfo over every zone the system has. It uses only the public
 * schedule.h contract, so the same test measures any implementation.
 *
 * Commands, one per stdin line; one answer line each on stdout:
 *
 *   off ZONE T...             UTC offsets (seconds) at the instants T (Unix
 *                             seconds): "OK o1 o2 ...". An `every 1s`
 *                             schedule in ZONE previews a fire at each T,
 *                             which carries the zone's offset then.
 *   cron ZONE AFTER N EXPR    the next N fire times (Unix seconds) of cron
 *                             EXPR in ZONE after AFTER: "OK t1 t2 ...".
 *   bench ZONE N EXPR         ns per schedule_next call, chained N times
 *                             through 2026: "OK ns".
 *
 * A schedule that does not compile answers "ERR message".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "core/schedule.h"

static schedule_t *compile(schedule_kind_t kind, const char *expr, const char *zone)
{
    schedule_spec_t sp = {.kind = kind,
                          .expr = expr,
                          .timezone = zone,
                          .start_ms = INT64_MIN,
                          .end_ms = INT64_MAX,
                          .jitter_ms = 0,
                          .anchor_ms = 0};
    schedule_t *s = NULL;
    char err[256] = "";
    if (schedule_compile(&sp, &s, err, sizeof err) != 0) {
        printf("ERR %s\n", err);
        return NULL;
    }
    return s;
}

static void cmd_off(char *zone, char *rest)
{
    schedule_t *s = compile(SCHEDULE_EVERY, "1s", zone);
    char *save = NULL;
    if (!s) return;
    fputs("OK", stdout);
    for (char *t = strtok_r(rest, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        schedule_fire_t f;
        int64_t ms = strtoll(t, NULL, 10) * 1000;
        if (schedule_preview(s, ms - 1, &f, 1) != 1 || f.utc_ms != ms)
            fputs(" ?", stdout);
        else
            printf(" %d", f.utc_offset_s);
    }
    putchar('\n');
    schedule_free(s);
}

static void cmd_cron(char *zone, char *rest)
{
    char *end = NULL;
    int64_t after = strtoll(rest, &end, 10) * 1000;
    long n = strtol(end, &end, 10);
    schedule_t *s = compile(SCHEDULE_CRON, end + strspn(end, " "), zone);
    if (!s) return;
    fputs("OK", stdout);
    for (long i = 0; i < n; i++) {
        after = schedule_next(s, after);
        if (after == -1) {
            fputs(" none", stdout);
            break;
        }
        printf(" %" PRId64, after / 1000);
    }
    putchar('\n');
    schedule_free(s);
}

static void cmd_bench(char *zone, char *rest)
{
    char *end = NULL;
    long n = strtol(rest, &end, 10);
    schedule_t *s = compile(SCHEDULE_CRON, end + strspn(end, " "), zone);
    if (!s) return;
    int64_t start = clock_days_from_civil(2026, 1, 1) * 86400000, t = start;
    int64_t t0 = clock_mono_ns();
    for (long i = 0; i < n; i++) {
        t = schedule_next(s, t);
        if (t == -1 || t > start + INT64_C(365) * 86400000) t = start; /* stay in 2026 */
    }
    int64_t spent = clock_mono_ns() - t0;
    printf("OK %.1f\n", n > 0 ? (double)spent / (double)n : 0.0);
    schedule_free(s);
}

int main(void)
{
    static char line[1 << 20];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *save = NULL;
        char *cmd = strtok_r(line, " ", &save);
        char *zone = cmd ? strtok_r(NULL, " ", &save) : NULL;
        char *rest = save ? save : (char *)"";
        if (!zone)
            printf("ERR usage: off|cron|bench ZONE ...\n");
        else if (strcmp(cmd, "off") == 0)
            cmd_off(zone, rest);
        else if (strcmp(cmd, "cron") == 0)
            cmd_cron(zone, rest);
        else if (strcmp(cmd, "bench") == 0)
            cmd_bench(zone, rest);
        else
            printf("ERR unknown command '%s'\n", cmd);
        fflush(stdout);
    }
    return 0;
}
