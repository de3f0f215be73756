/*
 * Secret values in job documents: the one place for the rule. A value
 * written {"secret": "text"} (an object of that one member, a string) is a
 * secret: the store keeps it, the worker gets it resolved (a shell job in
 * its env, a plugin in its config), and every other reader sees
 * {"secret": "***"} instead. The job document marks them in two places:
 * "env" (core/jobspec.c, where an object value MUST be a secret) and
 * "config" of a non-shell job, anywhere inside it.
 *
 * Because "***" is how sked shows a secret, a document read back and sent
 * again carries {"secret": "***"}: a PATCH keeps the stored secret there
 * (secret_keep), and a new secret whose value is "***" is refused.
 *
 * Pure functions over jansson values; thread-safe.
 */
#ifndef SKED_CORE_SECRET_H
#define SKED_CORE_SECRET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SECRET_MASK "***" /* how a secret value is shown */

/* True when v is a secret: an object whose only member is "secret", a
 * string. v may be NULL. */
bool secret_is(const json_t *v);

/* True when v is a secret whose value is the mask itself. */
bool secret_is_masked(const json_t *v);

/* A deep copy of v with every secret replaced by its plain string value:
 * what a plugin gets as its config. New reference; v is not changed. */
json_t *secret_resolve(const json_t *v);

/* A deep copy of v with every secret's value replaced by "***" (the
 * wrapper kept: {"secret": "***"}). New reference; v is not changed. */
json_t *secret_redact(const json_t *v);

/* Finds the first secret in v (depth first, object members in iteration
 * order) whose value is the mask. Returns true and writes its path into
 * path (OUT, size n): base, then ".key" per member and "[i]" per array
 * entry, then ".secret" ("config.auth.password.secret"). */
bool secret_find_masked(const json_t *v, const char *base, char *path, size_t n);

/* For a PATCH: a copy of patch in which every masked secret that stands
 * where current (the stored document) has a secret is replaced by that
 * stored secret, so a merge keeps it. Objects are walked member by member,
 * arrays entry by entry. Returns a new reference, or NULL when patch holds
 * no such secret (use patch as it is). */
json_t *secret_keep(const json_t *current, const json_t *patch);

#endif
