/*
 * The validators of core/jobspec.c, shared with the parser of alert rules
 * (core/alert.c) so that a rule is checked with the same words and limits
 * as the job document it may sit in. Same contracts as the static
 * functions they wrap (see jobspec.c): each returns 0, or SKED_EINVAL after
 * recording the field and a sentence in *err (only the first failure is
 * kept by callers, which stop at it). Borrowed outputs point into v.
 *
 * Nothing outside src/core/ includes this.
 */
#ifndef SKED_CORE_JOBSPEC_INT_H
#define SKED_CORE_JOBSPEC_INT_H

#include "core/jobspec.h"

int jobspec__fail(jobspec_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* snprintf into a fixed field buffer; truncation is fine (and UTF-8 safe). */
void jobspec__strf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The value of key, or NULL when absent or JSON null. */
json_t *jobspec__opt(const json_t *obj, const char *key);
/* Refuses unknown keys and nulls (unless in nullable; both NULL-terminated). */
int jobspec__check_keys(const json_t *obj, const char *const *allowed, const char *const *nullable,
                        const char *prefix, jobspec_error_t *err);
int jobspec__get_string(const json_t *v, const char *field, size_t min, size_t max,
                        const char **out, jobspec_error_t *err);
/* A short name free of control characters and of the bytes in forbidden. */
int jobspec__get_label(const json_t *v, const char *field, const char *forbidden, const char **out,
                       jobspec_error_t *err);
int jobspec__get_duration(const json_t *v, const char *field, int64_t *out, jobspec_error_t *err);
int jobspec__get_int(const json_t *v, const char *field, long long min, long long max, int *out,
                     jobspec_error_t *err);

#endif
