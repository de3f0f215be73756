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

#include "common/buf.h"
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

/* The document parts a job shares with a workflow (core/workflow.c), parsed
 * and written by one copy each. Fields are named as at the top of a job
 * document ("schedules[1].cron", "overlap", "tags[0]").
 *
 * "schedules" (v may be NULL: none): *out is new, *n its entries; free with
 * jobspec__schedules_free, also after a failure. */
int jobspec__parse_schedules(const json_t *v, jobspec_schedule_t **out, size_t *n,
                             jobspec_error_t *err);
void jobspec__schedules_free(jobspec_schedule_t *s, size_t n);
/* "overlap", "misfire" and "catch_up_window" of doc, defaults filled in. */
int jobspec__parse_policies(const json_t *doc, overlap_policy_t *overlap, misfire_policy_t *misfire,
                            int64_t *catch_up_ms, jobspec_error_t *err);
/* Those three members in their canonical form, each after a comma. */
void jobspec__write_policies(buf_t *b, overlap_policy_t overlap, misfire_policy_t misfire,
                             int64_t catch_up_ms);
/* "tags" (v may be NULL): *out becomes the canonical ",a,b," when there are
 * any (the old value freed), else is left as it is. */
int jobspec__parse_tags(const json_t *v, char **out, jobspec_error_t *err);
/* The canonical "tags" array of a ",a,b," string, appended to b. */
void jobspec__write_tags(buf_t *b, const char *tags);
/* A canonical document written as text (by the functions above), as a
 * tree. New reference; an empty object (logged) if it does not read. */
json_t *jobspec__text_json(const char *text);

#endif
