/*
 * sked-bench-burn: the job of sked-overhead. Burns --cpu-ms of its own CPU
 * (spinning on CLOCK_PROCESS_CPUTIME_ID) or sleeps --sleep-ms, then appends
 * one line to --out FILE:
 *
 *     START_NS END_NS CPU_US JOB_ID
 *
 * START and END are CLOCK_MONOTONIC (the machine's, comparable with the
 * bench's own clock) at entry to main and just before the line is written;
 * CPU_US is this process's user + system CPU from getrusage at that moment.
 * Built static (bench/bench.cmake) so the dynamic loader adds nothing to
 * the job's own cost or to the gap between two runs of a slot.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static long long ns_of(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long long start = ns_of(CLOCK_MONOTONIC);
    long cpu_ms = -1, sleep_ms = -1;
    const char *out = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--cpu-ms"))
            cpu_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--sleep-ms"))
            sleep_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--out"))
            out = argv[i + 1];
    }
    if (!out || (cpu_ms < 0) == (sleep_ms < 0)) {
        fprintf(stderr, "usage: sked-bench-burn (--cpu-ms N | --sleep-ms N) --out FILE\n");
        return 2;
    }
    if (cpu_ms >= 0) {
        long long until = cpu_ms * 1000000LL;
        while (ns_of(CLOCK_PROCESS_CPUTIME_ID) < until) {
        }
    } else {
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long cpu_us = (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec +
                       (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
    const char *job = getenv("SKED_JOB_ID");
    char line[256];
    int n = snprintf(line, sizeof line, "%lld %lld %lld %s\n", start, ns_of(CLOCK_MONOTONIC),
                     cpu_us, job ? job : "-");
    /* One write of a short line to an O_APPEND file: lines never interleave. */
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 3;
    int ok = write(fd, line, (size_t)n) == n;
    return close(fd) == 0 && ok ? 0 : 3;
}
