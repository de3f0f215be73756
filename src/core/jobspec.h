/*
 * A job as clients describe it (DESIGN §7): parsing from JSON, validation,
 * and the canonical JSON the store keeps and the API returns. Every
 * rejection names the field ("schedules[0].cron", "retry.max_attempts") and
 * the reason, so the API can answer problem+json with it.
 *
 * Unknown fields are rejected. A field left out takes its default; a JSON
 * null is refused (naming the field) wherever a value is expected, except
 * for "cwd" and "timeout", where null means none, as the canonical
 * document writes them. (In a PATCH a null removes a member, RFC 7386, so
 * the default returns.) A null taken for the default would quietly change
 * what a job does: "schedules": null would fire it at once, "timezone":
 * null run it in UTC. Limits (argv length, string sizes, counts) are the
 * constants below.
 */
#ifndef SKED_CORE_JOBSPEC_H
#define SKED_CORE_JOBSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "core/backoff.h"
#include "core/deps.h"
#include "core/policy.h"
#include "core/schedule.h"
#include "core/secret.h"

#define JOBSPEC_NAME_MAX      200   /* bytes in name, queue, tag, label key/value */
#define JOBSPEC_ARGV_MAX      1024  /* argv entries */
#define JOBSPEC_ARG_MAX       65536 /* bytes in one argv entry or env value */
#define JOBSPEC_ENV_MAX       256   /* env entries */
#define JOBSPEC_SCHEDULES_MAX 64    /* schedules per job */
#define JOBSPEC_TAGS_MAX      64
#define JOBSPEC_SECRET_MASK   SECRET_MASK /* how a secret value is shown (core/secret.h) */
#define JOBSPEC_TYPE_MAX      63          /* bytes in a plugin type name */
#define JOBSPEC_CONFIG_DEPTH  32          /* nesting of objects and arrays in "config" */
#define JOBSPEC_PRIORITY_MIN  -1000
#define JOBSPEC_PRIORITY_MAX  1000
#define JOBSPEC_DEPS_MAX      64    /* depends_on entries of a job */
#define JOBSPEC_ARRAY_MAX     10000 /* array.count */

/* A validation failure: which field and why. */
typedef struct jobspec_error {
    char field[128];  /* JSON path, e.g. "schedules[1].timezone"; "" = whole body */
    char detail[256]; /* human sentence */
} jobspec_error_t;

/* A parsed schedule; strings owned by the jobspec. */
typedef struct jobspec_schedule {
    schedule_spec_t spec; /* expr/timezone point into owned copies below */
    char *expr;
    char *timezone;
} jobspec_schedule_t;

/* One of a job's dependencies on another job (Slurm's --dependency). */
typedef struct jobspec_dep {
    char *job;       /* the upstream job's id */
    dep_cond_t cond; /* afterok (default), afterany, afternotok */
} jobspec_dep_t;

/* A parsed, validated job. All strings owned; free with jobspec_free. */
typedef struct jobspec {
    char *name;
    char *type;     /* "shell" (default), "http" or a plugin's type name */
    json_t *config; /* a non-shell type's "config" object, secrets kept (owned; NULL for shell) */
    char **argv;    /* NULL-terminated; empty for a non-shell type */
    size_t argc;
    char **env;       /* "K=V" strings, NULL-terminated */
    bool *env_secret; /* envc flags parallel to env: true = the value is secret */
    size_t envc;
    char *cwd; /* NULL = worker's default */
    jobspec_schedule_t *schedules;
    size_t nschedules;
    int priority;       /* default 0; higher runs first */
    char *queue;        /* default "default" */
    char *constraints;  /* canonical "k=v,k2=v2" sorted by key; "" = none */
    int64_t timeout_ms; /* 0 = none */
    retry_policy_t retry;
    overlap_policy_t overlap;   /* default allow */
    misfire_policy_t misfire;   /* default run_once */
    int64_t catch_up_window_ms; /* misfire catch_up: only fire times within this; default 1h */
    int max_concurrency;        /* 0 = unlimited */
    char *tags;                 /* canonical ",a,b," (sorted, for LIKE filters); "" = none */
    int64_t sla_start_ms;  /* sla.start_within: start this long after the fire time; 0 = none */
    int64_t sla_finish_ms; /* sla.finish_within: finish this long after it; 0 = none */
    struct alert_rule_spec *alerts; /* the job's own alert rules (core/alert.h), one channel each */
    size_t nalerts;
    jobspec_dep_t *deps; /* depends_on: each run waits for the latest run of each */
    size_t ndeps;
    int array_count;    /* array.count: runs per firing, $SKED_ARRAY_INDEX 0..count-1; 0 = none */
    int array_parallel; /* array.parallel: at most this many going at once; 0 = all */
} jobspec_t;

/* Parses and validates a job document (POST /v1/jobs body). On success
 * returns 0 and fills *out (caller frees with jobspec_free). On failure
 * returns SKED_EINVAL and fills *err; *out is left empty. */
int jobspec_parse(const json_t *doc, jobspec_t *out, jobspec_error_t *err);

/* Applies a PATCH document (JSON merge-patch semantics over the canonical
 * document `current`) and validates the result. Returns a new canonical
 * document in *merged (new reference) plus the parsed spec. Same errors. */
int jobspec_patch(const json_t *current, const json_t *patch, json_t **merged, jobspec_t *out,
                  jobspec_error_t *err);

/* The canonical JSON document of a spec (what the store keeps in spec_json
 * and the API returns under the job): every field present with defaults
 * filled in, durations as canonical strings. As text (new; caller frees),
 * as its members without the braces appended to b ("name" first; with
 * "schedules" or not), or as a tree (new reference). One writer makes all
 * three (jobspec.c). */
char *jobspec_text(const jobspec_t *spec);
void jobspec_write_members(buf_t *b, const jobspec_t *spec, bool schedules);
json_t *jobspec_to_json(const jobspec_t *spec);
/* The canonical "schedules" array appended to b; one object of it, its
 * members without the braces (the API adds its own after them). */
void jobspec_write_schedules(buf_t *b, const jobspec_schedule_t *s, size_t n);
void jobspec_write_schedule(buf_t *b, const jobspec_schedule_t *s);
/* Whether the document of spec holds anything jobspec_redact hides: a
 * secret env value, a config (any non-shell job), alert rules. */
bool jobspec_has_secrets(const jobspec_t *spec);

/* Reads one schedule object of a canonical document (as jobspec_to_json
 * writes it) back into its definition, to match it with stored schedules
 * (schedule_match). Strings are borrowed from v. This does not validate:
 * SKED_EINVAL only if v is not shaped like such an object. */
int jobspec_schedule_read(const json_t *v, schedule_spec_t *out);

/* Secret values (core/secret.h). In a job document an env value is a
 * string or {"secret": "value"}, and any value inside a non-shell job's
 * "config" may be {"secret": "value"}. The canonical document (and so the store, and the
 * claim answer a worker gets) keeps the value, because the job needs it;
 * everything else must show {"secret": "***"} instead:
 *   - api_jobs.c renders every job resource (GET, list, POST/PATCH answers,
 *     idempotent replays) through jobspec_redact;
 *   - any log line, event or audit entry that prints a spec does too;
 *   - api_workers.c (the claim answer) must NOT redact: workers need the
 *     values (and never log them).
 * A secret whose value is exactly "***" is refused, and in a PATCH a
 * {"secret": "***"} (in env or config) over an existing secret keeps that
 * secret, so a document read back and sent again does not destroy it.
 *
 * Returns a deep copy of doc (a canonical spec or a job resource: its
 * top-level "env" and "config") with every secret value replaced by
 * "***", and the
 * "secret" of every entry of its "alerts" (a webhook's signing key, which
 * not even workers need: api_workers.c leaves "alerts" out) too. New
 * reference; doc is not changed. */
json_t *jobspec_redact(const json_t *doc);

/* Job types. A type is "shell", "http" (both built into every worker) or
 * a plugin's type name: 1 to JOBSPEC_TYPE_MAX bytes of [a-z0-9_-],
 * starting with a letter (the rule of include/sked/plugin.h).
 * jobspec_type_ok: s is one of these; jobspec_type_builtin: s is "shell"
 * or "http". */
bool jobspec_type_ok(const char *s);
bool jobspec_type_builtin(const char *s);

void jobspec_free(jobspec_t *spec); /* frees members; the struct itself is the caller's */

#endif
