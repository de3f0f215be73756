/* Line-oriented stderr logger; see log.h. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int min_level = -1;

void log_set_level(enum log_level lvl)
{
    min_level = (int)lvl;
}

static int level_from_env(void)
{
    const char *e = getenv("SKED_LOG");
    if (!e) return LOG_INFO;
    if (!strcmp(e, "debug")) return LOG_DEBUG;
    if (!strcmp(e, "warn")) return LOG_WARN;
    if (!strcmp(e, "error")) return LOG_ERROR;
    return LOG_INFO;
}

void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
{
    int saved = errno; /* logging must not disturb the caller's errno */
    if (min_level < 0) min_level = level_from_env();
    if ((int)lvl < min_level) {
        errno = saved;
        return;
    }
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl], component);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    errno = saved;
}
