/*
 * Logging to stderr, one line per event: time, level, component, message,
 * and the context of the thread's current work (request id, job id, run id)
 * where there is one. Two formats: text for people (the default) and JSON
 * lines for log shippers (`--log-format json`, or SKED_LOG_FORMAT=json).
 * Thread-safe (one write(2) per line). Log where an error is handled, once.
 */
#ifndef SKED_COMMON_LOG_H
#define SKED_COMMON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

/* Lowest level printed; LOG_INFO unless SKED_LOG=debug|info|warn|error. */
void log_set_level(enum log_level lvl);
/* The line format; LOG_TEXT unless SKED_LOG_FORMAT=json. */
void log_set_format(enum log_format f);
/* "text" or "json" into *out; -1 for anything else. */
int log_format_parse(const char *name, enum log_format *out);

void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The context of this thread's current work, carried by every line it logs
 * until cleared. NULL or "" clears one field; strings are copied (at most
 * 64 bytes each). */
void log_ctx_request(const char *request_id);
void log_ctx_job(const char *job_id);
void log_ctx_run(const char *run_id);
void log_ctx_clear(void);

#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
