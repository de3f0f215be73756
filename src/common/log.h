/*
 * Logging to stderr, one line per event: time, level, component, message.
 * Thread-safe (one write(2) per line). Log where an error is handled, once.
 */
#ifndef SKED_COMMON_LOG_H
#define SKED_COMMON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lowest level printed; LOG_INFO unless SKED_LOG=debug|info|warn|error. */
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
