/* Line-oriented stderr logger; see log.h. */
#include "common/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CTX_LEN 65

static int min_level = -1;
static int format = -1;

static _Thread_local struct {
    char request[CTX_LEN], job[CTX_LEN], run[CTX_LEN];
} ctx;

void log_set_level(enum log_level lvl)
{
    min_level = (int)lvl;
}

void log_set_format(enum log_format f)
{
    format = (int)f;
}

int log_format_parse(const char *name, enum log_format *out)
{
    if (name && !strcmp(name, "text"))
        *out = LOG_TEXT;
    else if (name && !strcmp(name, "json"))
        *out = LOG_JSON;
    else
        return -1;
    return 0;
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

static int format_from_env(void)
{
    enum log_format f = LOG_TEXT;
    log_format_parse(getenv("SKED_LOG_FORMAT"), &f);
    return (int)f;
}

static void ctx_set(char dst[CTX_LEN], const char *v)
{
    snprintf(dst, CTX_LEN, "%s", v ? v : "");
}

void log_ctx_request(const char *request_id)
{
    ctx_set(ctx.request, request_id);
}

void log_ctx_job(const char *job_id)
{
    ctx_set(ctx.job, job_id);
}

void log_ctx_run(const char *run_id)
{
    ctx_set(ctx.run, run_id);
}

void log_ctx_clear(void)
{
    ctx.request[0] = ctx.job[0] = ctx.run[0] = '\0';
}

/* The line as JSON: one object, every string escaped by jansson. */
static int json_line(char *line, size_t size, const char *time, const char *level,
                     const char *component, const char *msg)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", time, "level", level, "component",
                          component, "msg", msg);
    if (!o) return snprintf(line, size, "{\"level\":\"%s\",\"msg\":\"(unprintable)\"}", level);
    if (ctx.request[0]) json_object_set_new(o, "request_id", json_string(ctx.request));
    if (ctx.job[0]) json_object_set_new(o, "job_id", json_string(ctx.job));
    if (ctx.run[0]) json_object_set_new(o, "run_id", json_string(ctx.run));
    int n = (int)json_dumpb(o, line, size, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (n <= 0 || (size_t)n >= size) /* too long for a line: keep it valid JSON */
        n = snprintf(line, size,
                     "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"%s\","
                     "\"msg\":\"(a message too long for one line)\"}",
                     time, level, component);
    return n;
}

void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
{
    int saved = errno; /* logging must not disturb the caller's errno */
    if (min_level < 0) min_level = level_from_env();
    if (format < 0) format = format_from_env();
    if ((int)lvl < min_level) {
        errno = saved;
        return;
    }
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[1800], line[4096], time[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n;
    if (format == LOG_JSON) {
        n = json_line(line, sizeof line - 1, time, names[lvl], component, msg);
    } else {
        n = snprintf(line, sizeof line - 1, "%s %-5s %.40s: %s", time, names[lvl], component, msg);
        if (n > 0 && (ctx.request[0] || ctx.job[0] || ctx.run[0]) && (size_t)n < sizeof line - 1)
            n += snprintf(line + n, sizeof line - 1 - (size_t)n, " [%s%s%s%s%s%s]",
                          ctx.request[0] ? "req=" : "", ctx.request,
                          ctx.job[0] ? (ctx.request[0] ? " job=" : "job=") : "", ctx.job,
                          ctx.run[0] ? (ctx.request[0] || ctx.job[0] ? " run=" : "run=") : "",
                          ctx.run);
    }
    if (n < 0) n = 0;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    errno = saved;
}
