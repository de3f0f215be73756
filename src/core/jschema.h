/*
 * A small, strict JSON Schema validator (a subset of draft 2020-12) for the
 * config of plugin job types (issue 11): a plugin's manifest declares the
 * schema of its config, servers refuse a job whose config does not conform,
 * naming the field, as for every other bad job document (DESIGN §5.7).
 *
 * Supported keywords: type, enum, const; properties, patternProperties,
 * additionalProperties, required, minProperties, maxProperties; items,
 * minItems, maxItems, uniqueItems; minLength, maxLength (in code points),
 * pattern (a POSIX extended regular expression, unanchored as in JSON
 * Schema); minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * multipleOf; allOf, anyOf, oneOf, not; the boolean schemas true and false;
 * and the annotations listed at jschema_check. Numbers compare by value
 * (1 and 1.0 are equal in enum, const and uniqueItems); "integer" is a JSON
 * integer or a real with no fraction. Patterns match bytes (sked runs in
 * the C locale): "." is one byte of UTF-8, so count characters with
 * minLength/maxLength, not with a pattern.
 *
 * Strict on the schema, so that a plugin author learns at load time what
 * sked would not enforce: any other keyword is refused (no $ref: every
 * subschema is written in place), and so is a keyword of the wrong shape.
 *
 * Bounded on hostile input: schemas and instances nest at most
 * JSCHEMA_DEPTH_MAX levels; a pattern is at most JSCHEMA_PATTERN_MAX bytes,
 * has no back-references and no nested bounded repetitions that regcomp
 * would expand past JSCHEMA_PATTERN_COST_MAX nodes, no repeated part that
 * can match "" ("(a*)*", "(b|){3}"), and no chains of optional parts that
 * would make regcomp work past JSCHEMA_PATTERN_WORK_MAX (all of a schema's
 * patterns together: JSCHEMA_SCHEMA_WORK_MAX); one validation
 * spends at most JSCHEMA_MATCH_BUDGET (string bytes x pattern nodes) in
 * regexec, beyond which a string is refused as too long for its pattern
 * rather than matched for seconds. uniqueItems sorts, so it costs
 * O(n log n), not O(n^2).
 *
 * Pure: no I/O, no clock, no global state; safe to call from many threads
 * at once on shared schemas and instances (neither is modified).
 */
#ifndef SKED_CORE_JSCHEMA_H
#define SKED_CORE_JSCHEMA_H

#include <jansson.h>
#include <stddef.h>

#define JSCHEMA_DEPTH_MAX        64      /* levels of subschemas; of arrays/objects in values */
#define JSCHEMA_PATTERN_MAX      1024    /* bytes in a pattern */
#define JSCHEMA_PATTERN_COST_MAX 1000    /* regcomp's nodes for a pattern, as estimated */
#define JSCHEMA_PATTERN_WORK_MAX 25000   /* regcomp's work for a pattern, as estimated */
#define JSCHEMA_SCHEMA_WORK_MAX  50000   /* regcomp's work for all of a schema's patterns */
#define JSCHEMA_MATCH_BUDGET     4000000 /* sum of (string bytes + 1) x pattern nodes matched */

/* Checks that schema is one jschema can apply: an object (or true/false)
 * using only the supported keywords, each well-formed (e.g. "minimum" a
 * number, "required" an array of unique strings, "pattern" a valid POSIX
 * ERE). Unknown keywords are refused, except annotations ("title",
 * "description", "default", "examples", "$comment", "$schema",
 * "deprecated", "readOnly", "writeOnly"), which are not looked at — a
 * plugin author learns at load time, not when a job arrives, that sked
 * would ignore part of the schema.
 *
 * schema: borrowed. err: OUT, errlen >= 1 bytes (the text is clipped to it,
 * and stays UTF-8). Returns 0 (err set to ""), or SKED_EINVAL with the
 * schema path of the fault and a sentence in err:
 * "properties.url.minLength: must be a non-negative integer",
 * "anyOf[1].$ref: is not supported: ...", or "the schema must be an object
 * or a boolean" for the root. */
int jschema_check(const json_t *schema, char *err, size_t errlen);

/* Validates instance against a schema that passed jschema_check (anything
 * else is a programmer error). Stops at the first fault, taking members in
 * the instance's order and keywords in a fixed order (type, const, enum,
 * then the keywords of the value's type, then allOf, anyOf, oneOf, not).
 *
 * schema, instance: borrowed. base: the path of instance in its document
 * ("config"; may be ""). field, detail: OUT, fieldlen and detaillen >= 1
 * bytes (clipped to them, and kept UTF-8). Returns 0 (both set to ""), or
 * SKED_EINVAL with the JSON path of the first bad value in field, prefixed
 * by base ("config.headers.Accept", "config.items[2]", "config" for the
 * root; keys joined with ".", indexes as "[i]", as core/jobspec.c names
 * fields) and a sentence the user fixes from in detail ("must be a
 * string", "must be at most 10", "is required", "is not allowed
 * (additionalProperties is false)", "must be one of: GET, POST"). When no
 * branch of an anyOf or oneOf matches, the fault of the branch that got
 * deepest into the value is reported, if one got deeper than the value
 * itself. A detail quotes only the schema (bounds, patterns, allowed
 * values), never the instance, so a config validated with its secrets
 * resolved does not echo them; field names the instance's keys, as every
 * field path does.
 *
 * Thread-safe; allocates only scratch memory, freed before it returns. */
int jschema_validate(const json_t *schema, const json_t *instance, const char *base, char *field,
                     size_t fieldlen, char *detail, size_t detaillen);

#endif
