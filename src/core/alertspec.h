/*
 * Alert rule documents (core/alert.h has what a rule is): parsing and
 * validation, every refusal naming its field as jobspec.h does
 * ("alerts[0].on[1]", "channels[0].webhook"), and the canonical JSON.
 *
 * Secrets. A webhook channel may carry a "secret" (the HMAC key of its
 * X-Sked-Signature). It is write-only: the canonical document keeps it (the
 * store needs it to deliver), and alert_redact() replaces it with "***"
 * (JOBSPEC_SECRET_MASK) for every reader. A document read back and sent
 * again with "***" keeps the stored secret (alert_keep_secrets), so the
 * mask never replaces a secret.
 */
#ifndef SKED_CORE_ALERTSPEC_H
#define SKED_CORE_ALERTSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/alert.h"

struct jobspec_error;

/* Parses a global rule document (POST/PUT /v1/alert-rules):
 *   {"name", "on": [...], "scope": {"namespace","queue","job","tag"},
 *    "channels": [{"webhook": URL, "secret": S} | {"slack": URL} |
 *                 {"email": "a@x,b@y"}], and the parameters of its
 *    conditions: "overrun_factor", "overrun_min_samples", "missed_window",
 *    "backlog_depth", "backlog_for"}.
 * 0 and *out (clear it), or SKED_EINVAL with *err naming the field. */
int alert_rule_parse(const json_t *doc, alert_rule_spec_t *out, struct jobspec_error *err);

/* Parses a job's "alerts" array: each entry {"on": [...], one of "webhook"
 * / "slack" / "email", "secret" (webhook), and parameters as above}, its
 * conditions those of ALERT_JOB_CONDS. has_sla / has_schedules: whether the
 * job has an "sla" / schedules ("sla_missed" and "missed" need them). *out
 * is a new array of *n rules (free with alert_rules_free), NULL when v is
 * NULL. Errors name "alerts[i]....". */
int alert_job_entries_parse(const json_t *v, bool has_sla, bool has_schedules,
                            alert_rule_spec_t **out, size_t *n, struct jobspec_error *err);
void alert_rules_free(alert_rule_spec_t *v, size_t n);

/* Canonical JSON (new references): a global rule (no "id"), and a job's
 * alerts array. Secrets are included: redact before showing. */
json_t *alert_rule_to_json(const alert_rule_spec_t *r);
json_t *alert_job_entries_to_json(const alert_rule_spec_t *v, size_t n);

/* Replaces the value of every "secret" member of the objects in arr (an
 * array of channels or of job alert entries) with JOBSPEC_SECRET_MASK, in
 * place. arr may be NULL or not an array (nothing happens). */
void alert_redact(json_t *arr);

/* In next (an array of channels or job entries about to be parsed), a
 * "secret" equal to JOBSPEC_SECRET_MASK is replaced, in place, with the
 * secret of the entry at the same index of cur (the stored canonical
 * array) when that entry sends to the same target; otherwise it stays and
 * the parse refuses it. key: the target member to compare ("webhook"). */
void alert_keep_secrets(json_t *next, const json_t *cur);

#endif
