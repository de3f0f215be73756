/*
 * Job documents: parsing and validation of what clients send to
 * POST /v1/jobs and PATCH /v1/jobs/{id}, and the canonical JSON the store
 * keeps and the API returns. Validation is total: every field is checked
 * for type and limits, unknown fields are refused, and the first problem is
 * reported with a JSON path ("schedules[1].timezone") and a sentence, which
 * the API turns into a problem+json answer. Schedules are compiled here
 * (then thrown away) so that a bad cron expression or time zone is refused
 * at submission, not discovered by the scheduler later.
 *
 * The canonical document has every field with its default filled in and
 * every duration and instant in its canonical spelling, so that
 * jobspec_parse(jobspec_to_json(x)) yields x again and two equivalent
 * submissions store the same bytes.
 *
 * An env value, or any value inside a non-shell job's "config", may be
 * marked secret ({"secret": "value"}, core/secret.h): the canonical
 * document keeps value and marking (the worker needs the value), and
 * jobspec_redact masks it for every other reader (see jobspec.h).
 *
 * A job's type decides what describes its work: a shell job has "command"
 * (and "cwd"); any other type (http, a plugin's) has "config", a JSON
 * object its type validates (the server does: core/httpspec.h for http,
 * the plugin's JSON Schema for a plugin type, since only the server knows
 * which plugins exist). Writing the fields of the other kind is refused
 * rather than ignored, so a job does exactly what its document says.
 */
#include "core/jobspec.h"
#include "core/alert.h"
#include "core/alertspec.h"
#include "core/jobspec_int.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "common/plugin_manifest.h"
#include "common/xalloc.h"
#include "core/duration.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONSTRAINTS_MAX     64   /* entries in "constraints" */
#define CRON_EXPR_MAX       1024 /* bytes in a cron expression */
#define RETRY_ATTEMPTS_MAX  100
#define MULTIPLIER_MAX      100.0
#define MAX_CONCURRENCY_MAX 10000
#define CATCH_UP_DEFAULT_MS ((int64_t)3600 * 1000)

static const char *const overlap_names[] = {"allow", "forbid", "replace"};
static const char *const misfire_names[] = {"run_once", "catch_up", "skip"};
/* The JSON key of each schedule kind, indexed by schedule_kind_t. */
static const char *const kind_keys[] = {
    [SCHEDULE_AT] = "at", [SCHEDULE_EVERY] = "every", [SCHEDULE_CRON] = "cron"};

/* ---- errors -------------------------------------------------------------- */

/* The length of the UTF-8 character at p, or 0 if none starts there
 * (RFC 3629: no overlong forms, surrogates or values past U+10FFFF). */
static size_t utf8_char(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    size_t n = p[0] >= 0xC2 && p[0] <= 0xDF   ? 2
               : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
               : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++) /* stops at the NUL, which is no continuation */
        if ((p[i] & 0xC0) != 0x80) return 0;
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
        return 0;
    return n;
}

/* Makes s UTF-8 text by writing '?' over every byte that starts no
 * character. Error texts are clipped to fixed arrays, here and in the
 * schedule compiler (which quotes "%.100s" of a zone name), and a clip may
 * fall inside a character: the API could not put such a field or detail in
 * a JSON answer at all. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_char(p);
        if (n)
            p += n;
        else
            *p++ = '?';
    }
}

/* snprintf whose truncation is intended: field paths and details are
 * bounded by the fixed arrays of jobspec_error_t, and a clipped key name is
 * still a useful pointer (a character cut in two shows as '?'). (A wrapper,
 * because GCC's -Wformat-truncation cannot be told that truncation is fine
 * at a direct call.) */
static void strf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void strf(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    utf8_scrub(dst);
}

/* Records the first failure: field is the JSON path, the detail repeats it so
 * the sentence stands on its own in a log line or a CLI message. */
static int fail(jobspec_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vfail(jobspec_error_t *err, const char *field, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int fail(jobspec_error_t *err, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(err, field, fmt, ap);
    va_end(ap);
    return rc;
}

static int vfail(jobspec_error_t *err, const char *field, const char *fmt, va_list ap)
{
    char msg[sizeof err->detail];
    vsnprintf(msg, sizeof msg, fmt, ap);
    utf8_scrub(msg);
    strf(err->field, sizeof err->field, "%s", field);
    if (*field)
        strf(err->detail, sizeof err->detail, "%s: %s", field, msg);
    else
        strf(err->detail, sizeof err->detail, "%s", msg);
    return SKED_EINVAL;
}

/* ---- small validators ---------------------------------------------------- */

/* The value of key in obj, or NULL when it is absent or JSON null. Only a
 * key check_keys lets be null can be null here: for those null means
 * "none", as the canonical document writes it. */
static json_t *opt(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static bool listed(const char *const *list, const char *key)
{
    for (size_t i = 0; list && list[i]; i++)
        if (!strcmp(list[i], key)) return true;
    return false;
}

/* What a null member is told. A null is most often a template's unset
 * variable, and taking it for the default would quietly do something else
 * than was meant: fire a job at once (no schedules), in UTC (no time zone),
 * on any worker (no constraints). */
static const char *null_detail(const char *key)
{
    static const struct {
        const char *key, *detail;
    } details[] = {
        {"name", "is required and must not be null"},
        {"command", "is required and must not be null"},
        {"schedules", "must not be null: give an array of schedules, or leave the field out "
                      "for a job that runs once, now"},
        {"timezone", "must not be null: give an IANA time zone such as \"Europe/Berlin\", "
                     "or leave the field out for UTC"},
        {"cron", "must not be null: give a cron expression such as \"0 2 * * *\""},
        {"every", "must not be null: give an interval such as \"15m\""},
        {"at", "must not be null: give an RFC 3339 time such as \"2026-01-01T00:00:00Z\""},
    };
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++)
        if (!strcmp(details[i].key, key)) return details[i].detail;
    return "must not be null: give a value, or leave the field out for the default";
}

/* Rejects any key of obj not in allowed, and a null value for any key not
 * in nullable (both NULL-terminated; nullable may be NULL). prefix is the
 * path of obj ("" at the top, "retry." or "schedules[0]." inside). */
static int check_keys(const json_t *obj, const char *const *allowed, const char *const *nullable,
                      const char *prefix, jobspec_error_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = listed(allowed, key);
        if (known && (!json_is_null(v) || listed(nullable, key))) continue;
        char field[sizeof err->field];
        strf(field, sizeof field, "%s%s", prefix, key);
        return fail(err, field, "%s", known ? null_detail(key) : "unknown field");
    }
    return 0;
}

/* A JSON string of min..max bytes with no embedded NUL (jansson has already
 * checked UTF-8). *out is borrowed from v. */
static int get_string(const json_t *v, const char *field, size_t min, size_t max, const char **out,
                      jobspec_error_t *err)
{
    if (!json_is_string(v))
        return fail(err, field,
                    json_is_null(v) ? "must be a string, not null" : "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n) return fail(err, field, "must not contain NUL characters");
    if (n < min) return fail(err, field, min == 1 ? "must not be empty" : "is too short");
    if (n > max) return fail(err, field, "must be at most %zu bytes", max);
    *out = s;
    return 0;
}

/* Names, queues, tags, label keys and values: short, and free of control
 * characters, which would corrupt log lines and the dashboard. */
static int get_label(const json_t *v, const char *field, const char *forbidden, const char **out,
                     jobspec_error_t *err)
{
    int rc = get_string(v, field, 1, JOBSPEC_NAME_MAX, out, err);
    if (rc) return rc;
    for (const unsigned char *p = (const unsigned char *)*out; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) return fail(err, field, "must not contain control characters");
        if (forbidden && strchr(forbidden, *p))
            return fail(err, field, "must not contain '%c'", *p);
    }
    return 0;
}

static int get_duration(const json_t *v, const char *field, int64_t *out, jobspec_error_t *err)
{
    if (!json_is_string(v))
        return fail(err, field, "must be a duration string such as \"90s\" or \"1h30m\"");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || duration_parse(s, out) != 0)
        return fail(err, field,
                    "must be a duration such as \"90s\", \"1h30m\" or \"250ms\" (units ms s m h "
                    "d w, largest first, at most 10 years)");
    return 0;
}

static int get_time(const json_t *v, const char *field, int64_t *out, jobspec_error_t *err)
{
    if (!json_is_string(v)) return fail(err, field, "must be an RFC 3339 time string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || clock_parse_rfc3339(s, out) != 0)
        return fail(err, field, "must be an RFC 3339 time such as \"2026-01-01T00:00:00Z\"");
    return 0;
}

static int get_int(const json_t *v, const char *field, long long min, long long max, int *out,
                   jobspec_error_t *err)
{
    if (!json_is_integer(v)) return fail(err, field, "must be an integer");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) return fail(err, field, "must be between %lld and %lld", min, max);
    *out = (int)n;
    return 0;
}

static int get_enum(const json_t *v, const char *field, const char *const *names, size_t n,
                    int *out, jobspec_error_t *err)
{
    if (json_is_string(v)) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(json_string_value(v), names[i]) == 0) {
                *out = (int)i;
                return 0;
            }
        }
    }
    char list[128] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used +=
            (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "", names[i]);
    return fail(err, field, "must be one of %s", list);
}

/* [A-Za-z_][A-Za-z0-9_]* */
static bool env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* Orders "K=V" strings by K alone: a plain strcmp would put "A1=" before
 * "A=" because '1' < '='. */
static int cmp_kv(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
    int c = memcmp(x, y, nx < ny ? nx : ny);
    if (c) return c;
    return nx < ny ? -1 : nx > ny;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- field parsers --------------------------------------------------------- */

static int parse_command(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    if (!v) return fail(err, "command", "is required");
    if (!json_is_array(v)) return fail(err, "command", "must be an array of strings");
    size_t n = json_array_size(v);
    if (n == 0) return fail(err, "command", "must not be empty");
    if (n > JOBSPEC_ARGV_MAX)
        return fail(err, "command", "must have at most %d entries", JOBSPEC_ARGV_MAX);
    out->argv = xcalloc(n + 1, sizeof *out->argv);
    for (size_t i = 0; i < n; i++) {
        char field[32];
        const char *s;
        strf(field, sizeof field, "command[%zu]", i);
        int rc = get_string(json_array_get(v, i), field, 1, JOBSPEC_ARG_MAX, &s, err);
        if (rc) return rc;
        out->argv[i] = xstrdup(s);
        out->argc = i + 1;
    }
    return 0;
}

/* One env entry while parsing; sorted together so the secret flags stay
 * with their values. */
struct env_item {
    char *kv;
    bool secret;
};

static int cmp_env_item(const void *a, const void *b)
{
    const struct env_item *x = a, *y = b;
    return cmp_kv(&x->kv, &y->kv);
}

/* A value is a string, or {"secret": string} for one that must never be
 * shown (the canonical document keeps it, because the worker needs it;
 * jobspec_redact hides it from everyone else). */
static int parse_env(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    size_t n = v ? json_object_size(v) : 0;
    struct env_item *items = NULL;
    int rc = 0;
    if (v && !json_is_object(v)) return fail(err, "env", "must be an object of strings");
    if (n > JOBSPEC_ENV_MAX)
        return fail(err, "env", "must have at most %d entries", JOBSPEC_ENV_MAX);
    out->env = xcalloc(n + 1, sizeof *out->env);
    out->env_secret = xcalloc(n + 1, sizeof *out->env_secret);
    if (!v) return 0;
    items = xcalloc(n + 1, sizeof *items);
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        char field[sizeof err->field];
        const char *s;
        bool secret = false;
        strf(field, sizeof field, "env.%s", key);
        if (strlen(key) > JOBSPEC_NAME_MAX) {
            rc = fail(err, field, "name must be at most %d bytes", JOBSPEC_NAME_MAX);
            goto out;
        }
        if (!env_name_ok(key)) {
            rc = fail(err, field, "name must match [A-Za-z_][A-Za-z0-9_]*");
            goto out;
        }
        if (strncmp(key, "SKED_", 5) == 0) {
            rc = fail(err, field, "names starting with SKED_ are reserved for sked");
            goto out;
        }
        if (json_is_object(val)) {
            const json_t *sv = json_object_get(val, "secret");
            if (json_object_size(val) != 1 || !sv) {
                rc = fail(err, field, "must be a string or {\"secret\": \"value\"}");
                goto out;
            }
            strf(field, sizeof field, "env.%s.secret", key);
            if ((rc = get_string(sv, field, 0, JOBSPEC_ARG_MAX, &s, err))) goto out;
            /* "***" is what API answers show in place of a secret: a
             * document read back and sent again would otherwise replace
             * the secret with the mask. */
            if (!strcmp(s, JOBSPEC_SECRET_MASK)) {
                rc = fail(err, field,
                          "\"%s\" is how sked shows a secret; send the real value "
                          "(or leave the variable out of a PATCH to keep it)",
                          JOBSPEC_SECRET_MASK);
                goto out;
            }
            secret = true;
        } else if ((rc = get_string(val, field, 0, JOBSPEC_ARG_MAX, &s, err))) {
            goto out;
        }
        items[k].kv = xasprintf("%s=%s", key, s);
        items[k].secret = secret;
        k++;
    }
    qsort(items, k, sizeof *items, cmp_env_item);
    for (size_t i = 0; i < k; i++) {
        out->env[i] = items[i].kv;
        out->env_secret[i] = items[i].secret;
        items[i].kv = NULL;
    }
    out->envc = k;
out:
    for (size_t i = 0; items && i < k; i++)
        free(items[i].kv);
    free(items);
    return rc;
}

static int parse_cwd(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    const char *s;
    if (!v) return 0;
    int rc = get_string(v, "cwd", 1, JOBSPEC_ARG_MAX, &s, err);
    if (rc) return rc;
    /* The worker's own directory is not something a job author can know,
     * so a relative path would mean different things on different hosts. */
    if (s[0] != '/') return fail(err, "cwd", "must be an absolute path");
    out->cwd = xstrdup(s);
    return 0;
}

/* The first of each run of ten decimal digits (Unicode 14, category Nd)
 * beyond ASCII: U+0660 ARABIC-INDIC DIGIT ZERO, U+FF10 FULLWIDTH DIGIT
 * ZERO, ... . Generated with Python's unicodedata. */
static const uint32_t digit_zeros[] = {
    0x0660,  0x06F0,  0x07C0,  0x0966,  0x09E6,  0x0A66,  0x0AE6,  0x0B66,  0x0BE6,  0x0C66,
    0x0CE6,  0x0D66,  0x0DE6,  0x0E50,  0x0ED0,  0x0F20,  0x1040,  0x1090,  0x17E0,  0x1810,
    0x1946,  0x19D0,  0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,
    0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x10D30, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950,
    0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC,
    0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0};

/* The code point of the UTF-8 character at p (valid: jansson has checked
 * it), its length in *len. */
static uint32_t utf8_decode(const unsigned char *p, size_t *len)
{
    if (p[0] < 0xE0) {
        *len = 2;
        return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    }
    if (p[0] < 0xF0) {
        *len = 3;
        return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    }
    *len = 4;
    return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
           (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
}

/* A cron expression is ASCII: digits, names (MON, JAN), "* , - / ? L W #"
 * and spaces. Anything else is refused here, naming the character and what
 * to write instead, for the compiler would quote a single byte of it,
 * which is not text (and a digit from another script, "٥" or "５", looks
 * right to the person who typed it). */
static int cron_ascii(const char *expr, const char *field, jobspec_error_t *err)
{
    static const char *const names5[] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
    const unsigned char *bad = (const unsigned char *)expr;
    while (*bad && *bad < 0x80)
        bad++;
    if (!*bad) return 0;

    /* Which field holds it, when the fields can be told apart. */
    char where[48] = "";
    size_t nfields = 0, at = 0;
    for (const char *p = expr; *p;) {
        p += strspn(p, " \t\r\n");
        if (!*p) break;
        if ((const unsigned char *)p <= bad) at = nfields;
        nfields++;
        p += strcspn(p, " \t\r\n");
    }
    if (expr[strspn(expr, " \t\r\n")] != '@' && (nfields == 5 || nfields == 6)) {
        const char *name = nfields == 6 ? (at ? names5[at - 1] : "second") : names5[at];
        strf(where, sizeof where, "cron field '%s': ", name);
    }

    size_t len;
    uint32_t cp = utf8_decode(bad, &len);
    for (size_t i = 0; i < sizeof digit_zeros / sizeof digit_zeros[0]; i++)
        if (cp >= digit_zeros[i] && cp <= digit_zeros[i] + 9)
            return fail(err, field, "%s'%.*s' (U+%04X) is not an ASCII digit; write %u", where,
                        (int)len, (const char *)bad, (unsigned)cp, (unsigned)(cp - digit_zeros[i]));
    if (cp == 0xA0 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F || cp == 0x205F ||
        cp == 0x3000) /* no-break, en, em, thin, ideographic ... spaces */
        return fail(err, field,
                    "%s'%.*s' (U+%04X) is not an ASCII space; separate the fields "
                    "with ASCII spaces",
                    where, (int)len, (const char *)bad, (unsigned)cp);
    if (cp >= 0xFF01 && cp <= 0xFF5E) /* the full-width forms of ASCII '!' to '~' */
        return fail(err, field, "%s'%.*s' (U+%04X) is a full-width character; write '%c'", where,
                    (int)len, (const char *)bad, (unsigned)cp, (char)(cp - 0xFEE0));
    return fail(err, field,
                "%s'%.*s' (U+%04X) is not allowed: a cron expression is ASCII (digits, names "
                "such as MON or JAN, \"* , - / ? L W #\" and spaces)",
                where, (int)len, (const char *)bad, (unsigned)cp);
}

/* Which field a failed schedule_compile() should be blamed on. The compiler
 * reports a sentence, not a field, and checks the zone before the
 * expression, so for a cron schedule in a zone other than UTC we compile
 * once more in UTC: if that succeeds the zone was the problem; if not, the
 * expression is (too), and its message replaces the zone's. */
static const char *blame(const schedule_spec_t *spec, const char *kind_key, char *msg, size_t len)
{
    if (spec->kind != SCHEDULE_CRON || !spec->timezone || strcmp(spec->timezone, "UTC") == 0)
        return kind_key;
    schedule_spec_t probe = *spec;
    schedule_t *c = NULL;
    char pmsg[256] = "";
    probe.timezone = "UTC";
    int rc = schedule_compile(&probe, &c, pmsg, sizeof pmsg);
    schedule_free(c);
    if (rc == 0) return "timezone";
    strf(msg, len, "%s", pmsg);
    return kind_key;
}

static int parse_schedule(const json_t *v, size_t idx, jobspec_schedule_t *out,
                          jobspec_error_t *err)
{
    static const char *const keys[] = {"cron", "every",  "at",     "timezone", "start",
                                       "end",  "jitter", "anchor", NULL};
    char base[32], prefix[40], field[sizeof err->field];
    schedule_t *compiled = NULL;
    int rc;

    strf(base, sizeof base, "schedules[%zu]", idx);
    strf(prefix, sizeof prefix, "%s.", base);
#define FIELD(name) (strf(field, sizeof field, "%s%s", prefix, (name)), field)

    schedule_spec_t *spec = &out->spec;
    spec->start_ms = INT64_MIN;
    spec->end_ms = INT64_MAX;
    spec->anchor_ms = INT64_MIN;
    spec->jitter_ms = 0;

    if (!json_is_object(v))
        return fail(err, base,
                    json_is_null(v) ? "must be an object, not null" : "must be an object");
    if ((rc = check_keys(v, keys, NULL, prefix, err))) return rc;

    int nkinds = 0;
    for (int k = 0; k < 3; k++) {
        if (opt(v, kind_keys[k])) {
            spec->kind = (schedule_kind_t)k;
            nkinds++;
        }
    }
    if (nkinds != 1)
        return fail(err, base, "must have exactly one of \"cron\", \"every\" or \"at\"");
    const char *kind_key = kind_keys[spec->kind];
    const json_t *kv = opt(v, kind_key);

    if (opt(v, "timezone") && spec->kind != SCHEDULE_CRON)
        return fail(err, FIELD("timezone"), "only applies to cron schedules");
    if (opt(v, "anchor") && spec->kind != SCHEDULE_EVERY)
        return fail(err, FIELD("anchor"), "only applies to every schedules");

    switch (spec->kind) {
    case SCHEDULE_CRON: {
        const char *s, *tz = "UTC";
        if ((rc = get_string(kv, FIELD("cron"), 1, CRON_EXPR_MAX, &s, err))) return rc;
        if ((rc = cron_ascii(s, field, err))) return rc;
        out->expr = xstrdup(s);
        if (opt(v, "timezone") &&
            (rc = get_string(opt(v, "timezone"), FIELD("timezone"), 1, JOBSPEC_NAME_MAX, &tz, err)))
            return rc;
        out->timezone = xstrdup(tz);
        break;
    }
    case SCHEDULE_EVERY: {
        int64_t ms;
        char text[64];
        if ((rc = get_duration(kv, FIELD("every"), &ms, err))) return rc;
        if (ms <= 0) return fail(err, field, "must be greater than 0");
        duration_format(ms, text, sizeof text);
        out->expr = xstrdup(text);
        if (opt(v, "anchor") &&
            (rc = get_time(opt(v, "anchor"), FIELD("anchor"), &spec->anchor_ms, err)))
            return rc;
        break;
    }
    case SCHEDULE_AT: {
        int64_t ms;
        char text[SKED_RFC3339_LEN];
        if ((rc = get_time(kv, FIELD("at"), &ms, err))) return rc;
        clock_format_rfc3339(ms, text, sizeof text);
        out->expr = xstrdup(text);
        break;
    }
    }
    if (opt(v, "start") && (rc = get_time(opt(v, "start"), FIELD("start"), &spec->start_ms, err)))
        return rc;
    if (opt(v, "end") && (rc = get_time(opt(v, "end"), FIELD("end"), &spec->end_ms, err)))
        return rc;
    if (spec->end_ms < spec->start_ms) return fail(err, FIELD("end"), "must not be before start");
    if (opt(v, "jitter") &&
        (rc = get_duration(opt(v, "jitter"), FIELD("jitter"), &spec->jitter_ms, err)))
        return rc;

    spec->expr = out->expr;
    spec->timezone = out->timezone;
    char msg[sizeof err->detail];
    msg[0] = '\0';
    if (schedule_compile(spec, &compiled, msg, sizeof msg) != 0) {
        FIELD(blame(spec, kind_key, msg, sizeof msg));
        /* The compiler's sentence already names the problem ("cron field
         * 'hour': 24 is out of range 0-23"); keep it verbatim. */
        strf(err->field, sizeof err->field, "%s", field);
        strf(err->detail, sizeof err->detail, "%s", msg[0] ? msg : "invalid schedule");
        return SKED_EINVAL;
    }
    schedule_free(compiled);
    return 0;
#undef FIELD
}

/* The "schedules" array of a job or a workflow (the same shape for both):
 * *out (owned; free with jobspec__schedules_free, also after a failure,
 * which leaves the entries parsed so far) and *n. Absent (v NULL): none. */
int jobspec__parse_schedules(const json_t *v, jobspec_schedule_t **out, size_t *n,
                             jobspec_error_t *err)
{
    *out = NULL;
    *n = 0;
    if (!v) return 0;
    if (!json_is_array(v)) return fail(err, "schedules", "must be an array");
    size_t len = json_array_size(v);
    if (len > JOBSPEC_SCHEDULES_MAX)
        return fail(err, "schedules", "must have at most %d entries", JOBSPEC_SCHEDULES_MAX);
    *out = xcalloc(len ? len : 1, sizeof **out);
    for (size_t i = 0; i < len; i++) {
        /* Counted before it is filled so a partial one is released too. */
        *n = i + 1;
        int rc = parse_schedule(json_array_get(v, i), i, &(*out)[i], err);
        if (rc) return rc;
    }
    return 0;
}

void jobspec__schedules_free(jobspec_schedule_t *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].expr);
        free(s[i].timezone);
    }
    free(s);
}

/* "overlap", "misfire" and "catch_up_window" of a job or a workflow
 * document: the defaults (allow, run_once, 1h), overridden by what doc
 * gives. */
int jobspec__parse_policies(const json_t *doc, overlap_policy_t *overlap, misfire_policy_t *misfire,
                            int64_t *catch_up_ms, jobspec_error_t *err)
{
    const json_t *v;
    int rc, e = 0;
    *overlap = OVERLAP_ALLOW;
    *misfire = MISFIRE_RUN_ONCE;
    *catch_up_ms = CATCH_UP_DEFAULT_MS;
    if ((v = opt(doc, "overlap"))) {
        if ((rc = get_enum(v, "overlap", overlap_names, 3, &e, err))) return rc;
        *overlap = (overlap_policy_t)e;
    }
    if ((v = opt(doc, "misfire"))) {
        if ((rc = get_enum(v, "misfire", misfire_names, 3, &e, err))) return rc;
        *misfire = (misfire_policy_t)e;
    }
    if ((v = opt(doc, "catch_up_window"))) {
        if ((rc = get_duration(v, "catch_up_window", catch_up_ms, err))) return rc;
        if (*catch_up_ms <= 0) return fail(err, "catch_up_window", "must be greater than 0");
    }
    return 0;
}

static int parse_retry(const json_t *v, retry_policy_t *r, jobspec_error_t *err)
{
    static const char *const keys[] = {"max_attempts", "initial", "max",
                                       "multiplier",   "jitter",  NULL};
    const json_t *f;
    int rc;
    if (!v) return 0;
    if (!json_is_object(v)) return fail(err, "retry", "must be an object");
    if ((rc = check_keys(v, keys, NULL, "retry.", err))) return rc;
    if ((f = opt(v, "max_attempts")) &&
        (rc = get_int(f, "retry.max_attempts", 1, RETRY_ATTEMPTS_MAX, &r->max_attempts, err)))
        return rc;
    if ((f = opt(v, "initial")) && (rc = get_duration(f, "retry.initial", &r->initial_ms, err)))
        return rc;
    if ((f = opt(v, "max")) && (rc = get_duration(f, "retry.max", &r->max_ms, err))) return rc;
    if (r->max_ms < r->initial_ms)
        return fail(err, "retry.max", "must not be less than retry.initial");
    if ((f = opt(v, "multiplier"))) {
        if (!json_is_number(f)) return fail(err, "retry.multiplier", "must be a number");
        double m = json_number_value(f);
        if (!(m >= 1.0 && m <= MULTIPLIER_MAX))
            return fail(err, "retry.multiplier", "must be between 1 and %g", MULTIPLIER_MAX);
        r->multiplier = m;
    }
    if ((f = opt(v, "jitter"))) {
        if (!json_is_boolean(f)) return fail(err, "retry.jitter", "must be true or false");
        r->jitter = json_is_true(f);
    }
    return 0;
}

/* constraints: {"k": "v"} -> "k=v,k2=v2" sorted by key; the store matches
 * it against worker labels, hence no ',' or '=' inside keys and values. */
static int parse_constraints(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    const char **kv = NULL;
    size_t n = 0;
    int rc = 0;
    buf_t b = BUF_INIT;

    if (!v) goto out;
    if (!json_is_object(v)) {
        rc = fail(err, "constraints", "must be an object of strings");
        goto out;
    }
    if (json_object_size(v) > CONSTRAINTS_MAX) {
        rc = fail(err, "constraints", "must have at most %d entries", CONSTRAINTS_MAX);
        goto out;
    }
    kv = xcalloc(json_object_size(v) + 1, sizeof *kv);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        char field[sizeof err->field];
        const char *s;
        json_t *keystr = json_string(key);
        strf(field, sizeof field, "constraints.%s", key);
        rc = keystr ? get_label(keystr, field, ",=", &s, err)
                    : fail(err, field, "key must be valid UTF-8");
        json_decref(keystr);
        if (rc) goto out;
        if ((rc = get_label(val, field, ",=", &s, err))) goto out;
        kv[n++] = key;
    }
    qsort(kv, n, sizeof *kv, cmp_str);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s=%s", i ? "," : "", kv[i],
                   json_string_value(json_object_get(v, kv[i])));
out:
    if (rc == 0 && b.len) {
        free(out->constraints);
        out->constraints = buf_steal(&b);
    }
    buf_free(&b);
    free(kv);
    return rc;
}

/* tags: ["b", "a", "a"] -> ",a,b," (sorted, duplicates folded) so a store
 * can filter with LIKE '%,tag,%'. */
int jobspec__parse_tags(const json_t *v, char **out, jobspec_error_t *err)
{
    const char **tags = NULL;
    size_t n = 0;
    int rc = 0;
    buf_t b = BUF_INIT;

    if (!v) goto out;
    if (!json_is_array(v)) {
        rc = fail(err, "tags", "must be an array of strings");
        goto out;
    }
    if (json_array_size(v) > JOBSPEC_TAGS_MAX) {
        rc = fail(err, "tags", "must have at most %d entries", JOBSPEC_TAGS_MAX);
        goto out;
    }
    tags = xcalloc(json_array_size(v) + 1, sizeof *tags);
    for (size_t i = 0; i < json_array_size(v); i++) {
        char field[32];
        strf(field, sizeof field, "tags[%zu]", i);
        if ((rc = get_label(json_array_get(v, i), field, ",", &tags[n], err))) goto out;
        n++;
    }
    qsort(tags, n, sizeof *tags, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(tags[i], tags[i - 1]) == 0) continue;
        buf_printf(&b, ",%s", tags[i]);
    }
    if (n) buf_puts(&b, ",");
out:
    if (rc == 0 && b.len) {
        free(*out);
        *out = buf_steal(&b);
    }
    buf_free(&b);
    free(tags);
    return rc;
}

/* sla: {"start_within": DUR, "finish_within": DUR}, at least one, each
 * counted from the run's fire time. */
static int parse_sla(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {"start_within", "finish_within", NULL};
    const json_t *f;
    int rc;
    if (!v) return 0;
    if (!json_is_object(v))
        return fail(err, "sla", "must be an object such as {\"start_within\": \"2m\"}");
    if ((rc = check_keys(v, keys, NULL, "sla.", err))) return rc;
    if ((f = opt(v, "start_within"))) {
        if ((rc = get_duration(f, "sla.start_within", &out->sla_start_ms, err))) return rc;
        if (out->sla_start_ms <= 0) return fail(err, "sla.start_within", "must be greater than 0");
    }
    if ((f = opt(v, "finish_within"))) {
        if ((rc = get_duration(f, "sla.finish_within", &out->sla_finish_ms, err))) return rc;
        if (out->sla_finish_ms <= 0)
            return fail(err, "sla.finish_within", "must be greater than 0");
    }
    if (!out->sla_start_ms && !out->sla_finish_ms)
        return fail(err, "sla", "must have \"start_within\", \"finish_within\" or both");
    return 0;
}

/* depends_on: [{"job": ID, "condition": "afterok" | "afterany" |
 * "afternotok"}], each job once; condition defaults to afterok. */
static int parse_deps(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {"job", "condition", NULL};
    char field[64], prefix[48];
    size_t i;
    const json_t *d;
    int rc;
    if (!v) return 0;
    if (!json_is_array(v))
        return fail(
            err, "depends_on",
            "must be an array such as [{\"job\": \"job_...\", \"condition\": \"afterok\"}]");
    if (json_array_size(v) > JOBSPEC_DEPS_MAX)
        return fail(err, "depends_on", "must have at most %d entries", JOBSPEC_DEPS_MAX);
    out->deps = json_array_size(v) ? xcalloc(json_array_size(v), sizeof *out->deps) : NULL;
    json_array_foreach(v, i, d)
    {
        snprintf(prefix, sizeof prefix, "depends_on[%zu].", i);
        if (!json_is_object(d)) {
            snprintf(field, sizeof field, "depends_on[%zu]", i);
            return fail(err, field, "must be an object with \"job\" and \"condition\"");
        }
        if ((rc = check_keys(d, keys, NULL, prefix, err))) return rc;
        snprintf(field, sizeof field, "depends_on[%zu].job", i);
        const json_t *j = json_object_get(d, "job");
        if (!j) return fail(err, field, "is required: the id of the job to wait for");
        const char *s;
        if ((rc = get_string(j, field, 1, 64, &s, err))) return rc;
        if (!id_valid(s)) return fail(err, field, "'%s' is not a job id", s);
        for (size_t k = 0; k < out->ndeps; k++)
            if (!strcmp(out->deps[k].job, s))
                return fail(err, field, "job %s is already in depends_on[%zu]", s, k);
        out->deps[out->ndeps].job = xstrdup(s);
        out->deps[out->ndeps].cond = DEP_AFTEROK;
        out->ndeps++;
        const json_t *c = json_object_get(d, "condition");
        if (c) {
            snprintf(field, sizeof field, "depends_on[%zu].condition", i);
            if (!json_is_string(c) ||
                dep_cond_parse(json_string_value(c), &out->deps[out->ndeps - 1].cond) != 0)
                return fail(err, field, "must be one of afterok, afterany, afternotok");
        }
    }
    return 0;
}

/* array: {"count": N, "parallel": K}: N runs per firing, at most K going
 * at once (0 or left out: all). */
static int parse_array(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {"count", "parallel", NULL};
    const json_t *f;
    int rc;
    if (!v) return 0;
    if (!json_is_object(v))
        return fail(err, "array", "must be an object such as {\"count\": 100, \"parallel\": 10}");
    if ((rc = check_keys(v, keys, NULL, "array.", err))) return rc;
    if (!(f = json_object_get(v, "count"))) return fail(err, "array.count", "is required");
    if ((rc = get_int(f, "array.count", 1, JOBSPEC_ARRAY_MAX, &out->array_count, err))) return rc;
    if ((f = json_object_get(v, "parallel")) &&
        (rc = get_int(f, "array.parallel", 0, out->array_count, &out->array_parallel, err)))
        return rc;
    return 0;
}

/* The depth of v's nesting (a scalar: 0), counted no further than limit. */
static int depth(const json_t *v, int limit)
{
    int d = 0;
    if (limit <= 0) return 1;
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            int k = depth(m, limit - 1);
            if (k > d) d = k;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            int k = depth(m, limit - 1);
            if (k > d) d = k;
        }
        return d + 1;
    }
    return 0;
}

/* config of a non-shell type: a JSON object (default {}), kept as it is,
 * secrets included. What is in it is the type's business (the server
 * validates it); here only what holds for every type: its depth, and that
 * no secret is the mask itself. */
static int parse_config(const json_t *v, jobspec_t *out, jobspec_error_t *err)
{
    char path[sizeof err->field];
    if (v && !json_is_object(v))
        return fail(err, "config", "must be a JSON object (the settings of a \"%s\" job)",
                    out->type);
    if (v && depth(v, JOBSPEC_CONFIG_DEPTH + 1) > JOBSPEC_CONFIG_DEPTH)
        return fail(err, "config", "must not nest objects and arrays more than %d deep",
                    JOBSPEC_CONFIG_DEPTH);
    if (v && secret_find_masked(v, "config", path, sizeof path))
        return fail(err, path,
                    "\"%s\" is how sked shows a secret; send the real value (or, in a PATCH, "
                    "send back the document as read to keep it)",
                    SECRET_MASK);
    out->config = v ? json_deep_copy(v) : json_object();
    return 0;
}

static int parse_doc(const json_t *doc, jobspec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {
        "name",    "type",        "config",          "command",
        "env",     "cwd",         "schedules",       "priority",
        "queue",   "constraints", "timeout",         "retry",
        "overlap", "misfire",     "catch_up_window", "max_concurrency",
        "tags",    "sla",         "alerts",          "depends_on",
        "array",   NULL};
    /* What the canonical document itself writes as null ("none"), so that
     * a document read back parses again. */
    static const char *const nullable[] = {"cwd", "timeout", NULL};
    const json_t *v;
    const char *s;
    int rc;

    /* Defaults first, so that every path below only overrides. */
    out->type = xstrdup("shell");
    out->queue = xstrdup("default");
    out->constraints = xstrdup("");
    out->tags = xstrdup("");
    out->retry = retry_policy_default();

    if (!json_is_object(doc)) return fail(err, "", "the job document must be a JSON object");
    if ((rc = check_keys(doc, keys, nullable, "", err))) return rc;

    if (!(v = opt(doc, "name"))) return fail(err, "name", "is required");
    if ((rc = get_label(v, "name", NULL, &s, err))) return rc;
    out->name = xstrdup(s);

    if ((v = opt(doc, "type"))) {
        if ((rc = get_string(v, "type", 1, JOBSPEC_NAME_MAX, &s, err))) return rc;
        if (!jobspec_type_ok(s))
            return fail(err, "type",
                        "must be \"shell\", \"http\" or a plugin's type name ([a-z][a-z0-9_-], "
                        "at most %d bytes)",
                        JOBSPEC_TYPE_MAX);
        free(out->type);
        out->type = xstrdup(s);
    }
    if (!strcmp(out->type, "shell")) {
        if ((rc = parse_command(opt(doc, "command"), out, err))) return rc;
        if ((rc = parse_cwd(opt(doc, "cwd"), out, err))) return rc;
        if ((v = opt(doc, "config")) && !(json_is_object(v) && json_object_size(v) == 0))
            return fail(err, "config",
                        "is only for types other than \"shell\" (a shell job is described by "
                        "\"command\" and \"env\"): leave it out or send {}");
    } else {
        if (opt(doc, "command"))
            return fail(err, "command",
                        "is only for type shell: a job of type \"%s\" is described by "
                        "\"config\"",
                        out->type);
        if (opt(doc, "cwd"))
            return fail(err, "cwd", "is only for type shell (a \"%s\" job runs no process)",
                        out->type);
        out->argv = xcalloc(1, sizeof *out->argv);
        if ((rc = parse_config(opt(doc, "config"), out, err))) return rc;
    }
    if ((rc = parse_env(opt(doc, "env"), out, err))) return rc;
    if ((rc = jobspec__parse_schedules(opt(doc, "schedules"), &out->schedules, &out->nschedules,
                                       err)))
        return rc;
    if ((v = opt(doc, "priority")) && (rc = get_int(v, "priority", JOBSPEC_PRIORITY_MIN,
                                                    JOBSPEC_PRIORITY_MAX, &out->priority, err)))
        return rc;
    if ((v = opt(doc, "queue"))) {
        if ((rc = get_label(v, "queue", ",", &s, err))) return rc;
        free(out->queue);
        out->queue = xstrdup(s);
    }
    if ((rc = parse_constraints(opt(doc, "constraints"), out, err))) return rc;
    if ((v = opt(doc, "timeout"))) {
        if ((rc = get_duration(v, "timeout", &out->timeout_ms, err))) return rc;
        if (out->timeout_ms <= 0)
            return fail(err, "timeout", "must be greater than 0 (leave it out for no timeout)");
    }
    if ((rc = parse_retry(opt(doc, "retry"), &out->retry, err))) return rc;
    if ((rc = jobspec__parse_policies(doc, &out->overlap, &out->misfire, &out->catch_up_window_ms,
                                      err)))
        return rc;
    if ((v = opt(doc, "max_concurrency")) &&
        (rc = get_int(v, "max_concurrency", 0, MAX_CONCURRENCY_MAX, &out->max_concurrency, err)))
        return rc;
    if ((rc = jobspec__parse_tags(opt(doc, "tags"), &out->tags, err))) return rc;
    if ((rc = parse_sla(opt(doc, "sla"), out, err))) return rc;
    if ((rc = parse_deps(opt(doc, "depends_on"), out, err))) return rc;
    if ((rc = parse_array(opt(doc, "array"), out, err))) return rc;
    return alert_job_entries_parse(opt(doc, "alerts"),
                                   out->sla_start_ms > 0 || out->sla_finish_ms > 0,
                                   out->nschedules > 0, &out->alerts, &out->nalerts, err);
}

/* ---- public -------------------------------------------------------------- */

int jobspec_parse(const json_t *doc, jobspec_t *out, jobspec_error_t *err)
{
    jobspec_error_t scratch;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    int rc = parse_doc(doc, out, err);
    if (rc) {
        jobspec_free(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* RFC 7386 merge of patch into target (both objects; target modified). */
static void merge_patch(json_t *target, const json_t *patch)
{
    const char *key;
    json_t *pv;
    json_object_foreach((json_t *)patch, key, pv)
    {
        if (json_is_null(pv)) {
            json_object_del(target, key);
        } else if (json_is_object(pv)) {
            json_t *tv = json_object_get(target, key);
            if (!json_is_object(tv)) {
                tv = json_object();
                json_object_set_new(target, key, tv);
            }
            merge_patch(tv, pv);
        } else {
            json_object_set_new(target, key, json_deep_copy(pv));
        }
    }
}

int jobspec_patch(const json_t *current, const json_t *patch, json_t **merged, jobspec_t *out,
                  jobspec_error_t *err)
{
    jobspec_error_t scratch;
    json_t *doc = NULL, *patch_copy = NULL;
    int rc;

    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    *merged = NULL;
    if (!json_is_object(patch)) {
        rc = fail(err, "", "a PATCH body must be a JSON object (RFC 7386 merge patch)");
        goto out;
    }
    doc = json_is_object(current) ? json_deep_copy(current) : json_object();
    /* A client that PATCHes back what it read sends its secrets (env, config)
     * as {"secret": "***"}: over a stored secret that means "unchanged". */
    patch_copy = secret_keep(doc, patch);
    merge_patch(doc, patch_copy ? patch_copy : patch);
    /* Alerts read back show their webhook secrets masked, as env does. */
    alert_keep_secrets(json_object_get(doc, "alerts"), json_object_get(current, "alerts"));
    if ((rc = jobspec_parse(doc, out, err))) goto out;
    *merged = jobspec_to_json(out);
out:
    json_decref(doc);
    json_decref(patch_copy);
    return rc;
}

/* The canonical document is written as text, member by member, and read
 * into a tree only by the callers that want one (jobspec_to_json): the
 * text is what the store keeps and what most answers carry, and building a
 * jansson tree only to dump it cost a third of a batch submit's CPU. Every
 * string goes through buf_json_str, which escapes as jansson does, so the
 * text is byte for byte what json_dumps(JSON_COMPACT) wrote before
 * (tests/unit/test_jobspec.c checks it). */

static void put_duration(buf_t *b, int64_t ms)
{
    char text[64];
    duration_format(ms, text, sizeof text);
    buf_json_str(b, text);
}

static void put_time(buf_t *b, int64_t ms)
{
    char text[SKED_RFC3339_LEN];
    clock_format_rfc3339(ms, text, sizeof text);
    buf_json_str(b, text);
}

/* Any JSON value, as jansson writes it (the rare parts: a plugin job's
 * config, alert rules, a fractional multiplier). Steals v. */
static void put_json(buf_t *b, json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    buf_puts(b, t ? t : "null");
    free(t);
    json_decref(v);
}

void jobspec_write_schedule(buf_t *b, const jobspec_schedule_t *s)
{
    const schedule_spec_t *sp = &s->spec;
    buf_json_key(b, kind_keys[sp->kind], true);
    buf_json_str(b, s->expr);
    if (sp->kind == SCHEDULE_CRON) {
        buf_json_key(b, "timezone", false);
        buf_json_str(b, s->timezone ? s->timezone : "UTC");
    }
    if (sp->kind == SCHEDULE_EVERY && sp->anchor_ms != INT64_MIN) {
        buf_json_key(b, "anchor", false);
        put_time(b, sp->anchor_ms);
    }
    if (sp->start_ms != INT64_MIN) {
        buf_json_key(b, "start", false);
        put_time(b, sp->start_ms);
    }
    if (sp->end_ms != INT64_MAX) {
        buf_json_key(b, "end", false);
        put_time(b, sp->end_ms);
    }
    if (sp->jitter_ms > 0) {
        buf_json_key(b, "jitter", false);
        put_duration(b, sp->jitter_ms);
    }
}

void jobspec_write_schedules(buf_t *b, const jobspec_schedule_t *s, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, i ? ",{" : "{");
        jobspec_write_schedule(b, &s[i]);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
}

void jobspec__write_policies(buf_t *b, overlap_policy_t overlap, misfire_policy_t misfire,
                             int64_t catch_up_ms)
{
    buf_json_key(b, "overlap", false);
    buf_json_str(b, overlap_policy_name(overlap));
    buf_json_key(b, "misfire", false);
    buf_json_str(b, misfire_policy_name(misfire));
    buf_json_key(b, "catch_up_window", false);
    put_duration(b, catch_up_ms);
}

/* A canonical list of s (",a,b," for tags, "k=v,k2=v2" for pairs), one
 * call of fn for every entry, inside the array or object just opened in b:
 * empty entries are skipped. */
static void each_entry(const char *s, void (*fn)(buf_t *, const char *, size_t), buf_t *b)
{
    while (s && *s) {
        size_t len = strcspn(s, ",");
        if (len) fn(b, s, len);
        s += len;
        if (*s == ',') s++;
    }
}

/* The comma before an entry that is not the first of its array or object. */
static void entry_comma(buf_t *b)
{
    char last = b->data[b->len - 1];
    if (last != '[' && last != '{') buf_putc(b, ',');
}

static void put_strn(buf_t *b, const char *s, size_t len)
{
    char *t = xstrndup(s, len);
    buf_json_str(b, t);
    free(t);
}

static void tag_entry(buf_t *b, const char *s, size_t len)
{
    entry_comma(b);
    put_strn(b, s, len);
}

void jobspec__write_tags(buf_t *b, const char *tags)
{
    buf_putc(b, '[');
    each_entry(tags, tag_entry, b);
    buf_putc(b, ']');
}

/* A canonical time member of a schedule object: absent leaves *ms. */
static int read_time(const json_t *v, const char *key, int64_t *ms)
{
    const json_t *t = json_object_get(v, key);
    return !t || (json_is_string(t) && clock_parse_rfc3339(json_string_value(t), ms) == 0)
               ? 0
               : SKED_EINVAL;
}

int jobspec_schedule_read(const json_t *v, schedule_spec_t *out)
{
    *out = (schedule_spec_t){.start_ms = INT64_MIN, .end_ms = INT64_MAX, .anchor_ms = INT64_MIN};
    if (!json_is_object(v)) return SKED_EINVAL;
    int nkinds = 0;
    for (int k = 0; k < 3; k++) {
        const json_t *e = json_object_get(v, kind_keys[k]);
        if (!e) continue;
        if (!json_is_string(e)) return SKED_EINVAL;
        out->kind = (schedule_kind_t)k;
        out->expr = json_string_value(e);
        nkinds++;
    }
    const json_t *tz = json_object_get(v, "timezone");
    const json_t *jitter = json_object_get(v, "jitter");
    if (nkinds != 1 || (tz && !json_is_string(tz)) || (jitter && !json_is_string(jitter)))
        return SKED_EINVAL;
    out->timezone = json_string_value(tz); /* NULL when absent */
    if (jitter && duration_parse(json_string_value(jitter), &out->jitter_ms) != 0)
        return SKED_EINVAL;
    if (read_time(v, "start", &out->start_ms) || read_time(v, "end", &out->end_ms) ||
        read_time(v, "anchor", &out->anchor_ms))
        return SKED_EINVAL;
    return 0;
}

/* An entry of a canonical "k=v,k2=v2" list as a member; one without "="
 * is left out. */
static void pair_entry(buf_t *b, const char *s, size_t len)
{
    const char *eq = memchr(s, '=', len);
    if (!eq) return;
    entry_comma(b);
    put_strn(b, s, (size_t)(eq - s));
    buf_putc(b, ':');
    put_strn(b, eq + 1, len - (size_t)(eq - s) - 1);
}

static bool is_shell(const jobspec_t *spec)
{
    return !spec->type || !strcmp(spec->type, "shell");
}

void jobspec_write_members(buf_t *b, const jobspec_t *spec, bool schedules)
{
    buf_json_key(b, "name", true);
    buf_json_str(b, spec->name ? spec->name : "");
    buf_json_key(b, "type", false);
    buf_json_str(b, spec->type ? spec->type : "shell");
    /* A shell job's document is what it was before jobs had types; any
     * other type's has its config and no command or cwd. */
    bool shell = is_shell(spec);
    if (shell) {
        buf_json_key(b, "command", false);
        buf_putc(b, '[');
        for (size_t i = 0; i < spec->argc; i++) {
            if (i) buf_putc(b, ',');
            buf_json_str(b, spec->argv[i]);
        }
        buf_putc(b, ']');
    } else {
        buf_json_key(b, "config", false);
        put_json(b, spec->config ? json_incref(spec->config) : json_object());
    }

    buf_json_key(b, "env", false);
    buf_putc(b, '{');
    for (size_t i = 0; i < spec->envc; i++) {
        const char *eq = strchr(spec->env[i], '=');
        if (!eq) continue;
        entry_comma(b);
        put_strn(b, spec->env[i], (size_t)(eq - spec->env[i]));
        bool secret = spec->env_secret && spec->env_secret[i];
        buf_puts(b, secret ? ":{\"secret\":" : ":");
        buf_json_str(b, eq + 1);
        if (secret) buf_putc(b, '}');
    }
    buf_putc(b, '}');
    if (shell) {
        buf_json_key(b, "cwd", false);
        if (spec->cwd)
            buf_json_str(b, spec->cwd);
        else
            buf_puts(b, "null");
    }
    if (schedules) {
        buf_json_key(b, "schedules", false);
        jobspec_write_schedules(b, spec->schedules, spec->nschedules);
    }

    buf_json_key(b, "priority", false);
    buf_put_i64(b, spec->priority);
    buf_json_key(b, "queue", false);
    buf_json_str(b, spec->queue ? spec->queue : "default");
    buf_json_key(b, "constraints", false);
    buf_putc(b, '{');
    each_entry(spec->constraints, pair_entry, b);
    buf_putc(b, '}');
    buf_json_key(b, "timeout", false);
    if (spec->timeout_ms > 0)
        put_duration(b, spec->timeout_ms);
    else
        buf_puts(b, "null");

    buf_json_key(b, "retry", false);
    buf_putc(b, '{');
    buf_json_key(b, "max_attempts", true);
    buf_put_i64(b, spec->retry.max_attempts);
    buf_json_key(b, "initial", false);
    put_duration(b, spec->retry.initial_ms);
    buf_json_key(b, "max", false);
    put_duration(b, spec->retry.max_ms);
    /* Whole multipliers stay integers ("2", not "2.0") as people write them. */
    buf_json_key(b, "multiplier", false);
    double m = spec->retry.multiplier;
    if (m >= 0.0 && m <= MULTIPLIER_MAX && m == (double)(json_int_t)m)
        buf_put_i64(b, (int64_t)m);
    else
        put_json(b, json_real(m));
    buf_json_key(b, "jitter", false);
    buf_puts(b, spec->retry.jitter ? "true}" : "false}");

    jobspec__write_policies(b, spec->overlap, spec->misfire, spec->catch_up_window_ms);
    buf_json_key(b, "max_concurrency", false);
    buf_put_i64(b, spec->max_concurrency);
    buf_json_key(b, "tags", false);
    jobspec__write_tags(b, spec->tags);
    /* Written only when set, so the documents of jobs without them are
     * what they were before jobs had them. */
    if (spec->sla_start_ms > 0 || spec->sla_finish_ms > 0) {
        buf_json_key(b, "sla", false);
        buf_putc(b, '{');
        if (spec->sla_start_ms > 0) {
            buf_json_key(b, "start_within", true);
            put_duration(b, spec->sla_start_ms);
        }
        if (spec->sla_finish_ms > 0) {
            buf_json_key(b, "finish_within", spec->sla_start_ms <= 0);
            put_duration(b, spec->sla_finish_ms);
        }
        buf_putc(b, '}');
    }
    if (spec->nalerts) {
        buf_json_key(b, "alerts", false);
        put_json(b, alert_job_entries_to_json(spec->alerts, spec->nalerts));
    }
    if (spec->ndeps) {
        buf_json_key(b, "depends_on", false);
        buf_putc(b, '[');
        for (size_t i = 0; i < spec->ndeps; i++) {
            buf_puts(b, i ? ",{" : "{");
            buf_json_key(b, "job", true);
            buf_json_str(b, spec->deps[i].job);
            buf_json_key(b, "condition", false);
            buf_json_str(b, dep_cond_name(spec->deps[i].cond));
            buf_putc(b, '}');
        }
        buf_putc(b, ']');
    }
    if (spec->array_count > 0) {
        buf_json_key(b, "array", false);
        buf_putc(b, '{');
        buf_json_key(b, "count", true);
        buf_put_i64(b, spec->array_count);
        buf_json_key(b, "parallel", false);
        buf_put_i64(b, spec->array_parallel);
        buf_putc(b, '}');
    }
}

char *jobspec_text(const jobspec_t *spec)
{
    buf_t b = BUF_INIT;
    buf_putc(&b, '{');
    jobspec_write_members(&b, spec, true);
    buf_putc(&b, '}');
    return buf_steal(&b);
}

json_t *jobspec__text_json(const char *text)
{
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    if (!o) { /* text that is not UTF-8 (jansson would not have let it in) */
        log_error("jobspec", "a canonical document did not read back: %s", e.text);
        o = json_object();
    }
    return o;
}

json_t *jobspec_to_json(const jobspec_t *spec)
{
    char *text = jobspec_text(spec);
    json_t *o = jobspec__text_json(text);
    free(text);
    return o;
}

bool jobspec_has_secrets(const jobspec_t *spec)
{
    if (!is_shell(spec) || spec->nalerts) return true;
    for (size_t i = 0; spec->env_secret && i < spec->envc; i++)
        if (spec->env_secret[i]) return true;
    return false;
}

void jobspec_free(jobspec_t *spec)
{
    if (!spec) return;
    free(spec->name);
    free(spec->type);
    json_decref(spec->config);
    for (size_t i = 0; spec->argv && i < spec->argc; i++)
        free(spec->argv[i]);
    free(spec->argv);
    for (size_t i = 0; spec->env && i < spec->envc; i++)
        free(spec->env[i]);
    free(spec->env);
    free(spec->env_secret);
    free(spec->cwd);
    jobspec__schedules_free(spec->schedules, spec->nschedules);
    free(spec->queue);
    free(spec->constraints);
    free(spec->tags);
    alert_rules_free(spec->alerts, spec->nalerts);
    for (size_t i = 0; spec->deps && i < spec->ndeps; i++)
        free(spec->deps[i].job);
    free(spec->deps);
    memset(spec, 0, sizeof *spec);
}

json_t *jobspec_redact(const json_t *doc)
{
    json_t *copy = json_deep_copy(doc);
    alert_redact(json_object_get(copy, "alerts"));
    /* env values are strings or secrets, config anything: the one rule
     * of core/secret.h masks both. */
    static const char *const marked[] = {"env", "config"};
    for (size_t i = 0; i < sizeof marked / sizeof *marked; i++) {
        json_t *v = json_object_get(copy, marked[i]);
        if (v) json_object_set_new(copy, marked[i], secret_redact(v));
    }
    return copy;
}

_Static_assert(JOBSPEC_TYPE_MAX == SKED_PLUGIN_TYPE_MAX - 1, "a type name is a plugin type name");

/* The rule of a type name is the plugin ABI's (include/sked/plugin.h),
 * kept once, in common/plugin_manifest.c. */
bool jobspec_type_builtin(const char *s)
{
    return s && plugin_type_builtin(s);
}

bool jobspec_type_ok(const char *s)
{
    return s && (plugin_type_builtin(s) || plugin_type_name_ok(s));
}

const char *overlap_policy_name(overlap_policy_t p)
{
    return (unsigned)p < sizeof overlap_names / sizeof overlap_names[0] ? overlap_names[p] : NULL;
}

const char *misfire_policy_name(misfire_policy_t p)
{
    return (unsigned)p < sizeof misfire_names / sizeof misfire_names[0] ? misfire_names[p] : NULL;
}

/* ---- shared with core/alert.c (jobspec_int.h) ----------------------------- */

int jobspec__fail(jobspec_error_t *err, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(err, field, fmt, ap);
    va_end(ap);
    return rc;
}

void jobspec__strf(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    utf8_scrub(dst);
}

json_t *jobspec__opt(const json_t *obj, const char *key)
{
    return opt(obj, key);
}

int jobspec__check_keys(const json_t *obj, const char *const *allowed, const char *const *nullable,
                        const char *prefix, jobspec_error_t *err)
{
    return check_keys(obj, allowed, nullable, prefix, err);
}

int jobspec__get_string(const json_t *v, const char *field, size_t min, size_t max,
                        const char **out, jobspec_error_t *err)
{
    return get_string(v, field, min, max, out, err);
}

int jobspec__get_label(const json_t *v, const char *field, const char *forbidden, const char **out,
                       jobspec_error_t *err)
{
    return get_label(v, field, forbidden, out, err);
}

int jobspec__get_duration(const json_t *v, const char *field, int64_t *out, jobspec_error_t *err)
{
    return get_duration(v, field, out, err);
}

int jobspec__get_int(const json_t *v, const char *field, long long min, long long max, int *out,
                     jobspec_error_t *err)
{
    return get_int(v, field, min, max, out, err);
}
