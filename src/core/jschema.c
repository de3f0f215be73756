/*
 * The JSON Schema subset of core/jschema.h: jschema_check walks a schema
 * once, when a plugin is loaded, and refuses what sked would not enforce;
 * jschema_validate then trusts it, and walks a job's config against it,
 * stopping at the first fault with its path and a sentence, in the words
 * core/jobspec.c uses for the rest of the job document.
 *
 * The two walks recurse once per subschema, so the schema's depth limit
 * bounds the stack; values are compared through a canonical encoding
 * (canon), whose recursion the instance's depth limit bounds. Patterns are
 * POSIX EREs for regcomp: glibc expands bounded repetitions, and both its
 * compile and its unanchored search grow with that expansion (and the
 * search with the string's length too: "a{1000}b" takes half a second on
 * 64 KiB), so jschema_check refuses patterns that expand too far, and a
 * validation meters its matching.
 */
#include "core/jschema.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/prom.h"
#include "common/xalloc.h"
#include "core/jobspec_int.h"

#include <assert.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_DEEP 1e30 /* the cost of groups nested past JSCHEMA_DEPTH_MAX */

/* ---- paths --------------------------------------------------------------- */

/* A JSON path being walked: "config.headers", "anyOf[1].items". */
typedef struct path {
    char s[256];
    size_t len; /* strlen(s) */
} path_t;

/* Appends ".key" (or "key" at the start); returns the length to pop back to. */
static size_t push_key(path_t *p, const char *key)
{
    size_t mark = p->len;
    jobspec__strf(p->s + mark, sizeof p->s - mark, "%s%s", mark ? "." : "", key);
    p->len = strlen(p->s);
    return mark;
}

static size_t push_index(path_t *p, size_t i)
{
    size_t mark = p->len;
    jobspec__strf(p->s + mark, sizeof p->s - mark, "[%zu]", i);
    p->len = strlen(p->s);
    return mark;
}

static void pop(path_t *p, size_t mark)
{
    p->len = mark;
    p->s[mark] = '\0';
}

/* ---- values -------------------------------------------------------------- */

/* Whether v nests at most levels arrays and objects deep. */
static bool shallow(const json_t *v, int levels)
{
    if (!json_is_array(v) && !json_is_object(v)) return true;
    if (levels == 0) return false;
    size_t i;
    const char *key;
    json_t *m;
    if (json_is_array(v)) {
        json_array_foreach(v, i, m) if (!shallow(m, levels - 1)) return false;
    } else {
        json_object_foreach((json_t *)v, key, m) if (!shallow(m, levels - 1)) return false;
    }
    return true;
}

/* Compares two JSON numbers by value, exactly, even between a 64-bit
 * integer and a real (which a cast to double would round). */
static int numcmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        return (x > y) - (x < y);
    }
    int sign = json_is_integer(a) ? 1 : -1; /* compare integer i with real r, then flip */
    json_int_t i = json_integer_value(sign > 0 ? a : b);
    double r = json_real_value(sign > 0 ? b : a);
    if (r >= 0x1p63) return -sign;
    if (r < -0x1p63) return sign;
    double t = trunc(r);
    json_int_t ti = (json_int_t)t;
    int c = i != ti ? (i > ti) - (i < ti) : (r < t) - (r > t);
    return sign * c;
}

/* An object member, for sorting by name. */
typedef struct member {
    const char *key;
    size_t len;
    const json_t *value;
} member_t;

static int member_cmp(const void *pa, const void *pb)
{
    const member_t *a = pa, *b = pb;
    int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Appends a canonical encoding of v to b: equal exactly when the values are
 * equal in JSON Schema (numbers by value, object members in any order). It
 * is prefix-free (lengths and counts before contents), so the encodings of
 * members can simply follow each other. */
static void canon(buf_t *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        buf_puts(b, "n");
        break;
    case JSON_TRUE:
        buf_puts(b, "t");
        break;
    case JSON_FALSE:
        buf_puts(b, "f");
        break;
    case JSON_INTEGER:
        buf_printf(b, "i%" JSON_INTEGER_FORMAT ";", json_integer_value(v));
        break;
    case JSON_REAL: {
        double r = json_real_value(v);
        char t[40];
        if (r == trunc(r) && r >= -0x1p63 && r < 0x1p63)
            buf_printf(b, "i%" JSON_INTEGER_FORMAT ";", (json_int_t)r);
        else
            buf_printf(b, "r%s;", prom_format_double(r, t, sizeof t));
        break;
    }
    case JSON_STRING:
        buf_printf(b, "s%zu:", json_string_length(v));
        buf_append(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        buf_printf(b, "a%zu:", json_array_size(v));
        json_array_foreach(v, i, m) canon(b, m);
        break;
    }
    case JSON_OBJECT: {
        size_t n = 0, len;
        const char *key;
        json_t *m;
        member_t *ms = xmalloc((json_object_size(v) + 1) * sizeof *ms);
        json_object_keylen_foreach((json_t *)v, key, len, m) ms[n++] = (member_t){key, len, m};
        qsort(ms, n, sizeof *ms, member_cmp);
        buf_printf(b, "o%zu:", n);
        for (size_t i = 0; i < n; i++) {
            buf_printf(b, "%zu:", ms[i].len);
            buf_append(b, ms[i].key, ms[i].len);
            canon(b, ms[i].value);
        }
        free(ms);
        break;
    }
    }
}

/* Whether a and b are equal in JSON Schema: the very equality of canon
 * (the unit tests hold enum, const and uniqueItems to agreeing), without
 * allocating, because enum compares every element of a long array with
 * every allowed value. */
static bool equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) return numcmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b)) return false;
    size_t i, len;
    const char *key;
    json_t *m;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return false;
        json_array_foreach(a, i, m) if (!equal(m, json_array_get(b, i))) return false;
        return true;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b)) return false;
        json_object_keylen_foreach((json_t *)a, key, len, m)
        {
            const json_t *o = json_object_getn(b, key, len);
            if (!o || !equal(m, o)) return false;
        }
        return true;
    default: /* null, true, false */
        return true;
    }
}

/* v as a message shows it, into out (n >= 32 bytes): strings as they are,
 * reals in their shortest form, anything else as compact JSON. */
static const char *show(const json_t *v, char *out, size_t n)
{
    if (json_is_string(v)) {
        jobspec__strf(out, n, "%s", *json_string_value(v) ? json_string_value(v) : "\"\"");
    } else if (json_is_real(v)) {
        prom_format_double(json_real_value(v), out, n);
    } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        jobspec__strf(out, n, "%s", t ? t : "?");
        free(t);
    }
    return out;
}

/* "1 item", "10 items": a count keyword's value with its noun. */
static const char *count_text(const json_t *k, const char *one, const char *many, char *out,
                              size_t n)
{
    char t[40];
    jobspec__strf(out, n, "%s %s", show(k, t, sizeof t), json_number_value(k) == 1 ? one : many);
    return out;
}

/* ---- types --------------------------------------------------------------- */

static const char *const type_names[] = {"object",  "array",   "string", "number",
                                         "integer", "boolean", "null"};
static const char *const type_texts[] = {"an object",  "an array",  "a string", "a number",
                                         "an integer", "a boolean", "null"};
#define NTYPES (sizeof type_names / sizeof type_names[0])

static int type_index(const json_t *name)
{
    for (size_t i = 0; json_is_string(name) && i < NTYPES; i++)
        if (!strcmp(type_names[i], json_string_value(name))) return (int)i;
    return -1;
}

static bool has_type(int t, const json_t *v)
{
    switch (t) {
    case 0:
        return json_is_object(v);
    case 1:
        return json_is_array(v);
    case 2:
        return json_is_string(v);
    case 3:
        return json_is_number(v);
    case 4:
        return json_is_integer(v) ||
               (json_is_real(v) && json_real_value(v) == trunc(json_real_value(v)));
    case 5:
        return json_is_boolean(v);
    default:
        return json_is_null(v);
    }
}

/* "type" as a sentence's end: "a string", "a string, an integer or null". */
static const char *types_text(const json_t *type, char *out, size_t n)
{
    if (json_is_string(type)) return type_texts[type_index(type)];
    size_t i, last = json_array_size(type) - 1;
    json_t *t;
    *out = '\0';
    json_array_foreach(type, i, t)
    {
        size_t len = strlen(out);
        jobspec__strf(out + len, n - len, "%s%s",
                      i == 0      ? ""
                      : i == last ? " or "
                                  : ", ",
                      type_texts[type_index(t)]);
    }
    return out;
}

static bool type_ok(const json_t *type, const json_t *v)
{
    if (json_is_string(type)) return has_type(type_index(type), v);
    size_t i;
    json_t *t;
    json_array_foreach(type, i, t) if (has_type(type_index(t), v)) return true;
    return false;
}

/* ---- patterns ------------------------------------------------------------ */

/* The number at *p (digits only), which it skips. */
static double digits(const char **p)
{
    double n = 0;
    for (; isdigit((unsigned char)**p); (*p)++)
        n = n * 10 + (**p - '0');
    return n;
}

/* What regcomp will spend on part of a pattern, estimated. */
typedef struct rxcost {
    double nodes;    /* the nodes it builds */
    double skip;     /* nodes of parts that can match "" (epsilon chains) */
    double nullreps; /* repetitions of parts that can match "" (refused) */
    bool nullable;   /* whether the part can match the empty string */
} rxcost_t;

/* The cost of the operand *a repeated by op ('*', '+', '?', or '{' with
 * lo and hi): glibc copies the operand once per bound ({,n} too, a GNU
 * extension), and '+' once, so nested ones multiply; '*', '?' and '+' are
 * nodes of their own. Parts that can match "" make chains of epsilon
 * transitions whose closures regcomp computes in time growing with the
 * square of their nodes ("a?{499}" takes 1.3 ms, where "a{999}" takes
 * 0.15): those nodes are counted again, apart, in skip. Such a part
 * repeated ("()*", "(a*b*)*", "(a?)+", "(b|){3}") makes loops of them,
 * which cost more than any count of nodes foretells ("()*{400}" took
 * 190 ms; one of 190 nodes, 70 ms): those are counted in nullreps, and
 * refused. */
static void rx_repeat(rxcost_t *a, char op, double lo, double hi)
{
    double copies = op == '+' ? 2 : op == '{' && hi > 1 ? hi : 1;
    bool repeats = op == '*' || op == '+' || (op == '{' && hi > 1);
    double body = a->nodes + 1;
    if (repeats && a->nullable) a->nullreps += 1;
    a->nullreps *= copies;
    a->nodes = op == '{' ? a->nodes * copies : body * copies;
    a->skip *= copies;
    a->nullable = a->nullable || op == '*' || op == '?' || (op == '{' && lo == 0);
    if (a->nullable) a->skip = a->nodes;
}

/* Adds the atom *a to the sequence *seq. */
static void rx_then(rxcost_t *seq, const rxcost_t *a)
{
    seq->nodes += a->nodes;
    seq->skip += a->skip;
    seq->nullreps += a->nullreps;
    seq->nullable = seq->nullable && a->nullable;
}

/* The cost of the alternation at *pp, which it leaves at the ')' that ends
 * a group (or the end). Brackets, escapes and other atoms count one node;
 * so does a quantifier with nothing before it, or a ')' closing no group,
 * which glibc may take as a literal and repeat. Anchors and GNU's
 * zero-width escapes match "". */
static rxcost_t rx_alt(const char **pp, int depth)
{
    const char *p = *pp;
    rxcost_t total = {0, 0, 0, false};
    rxcost_t seq = {0, 0, 0, true};  /* the branch so far, but its last atom */
    rxcost_t atom = {0, 0, 0, true}; /* the last atom, with its quantifiers */
    bool have_atom = false;
    while (*p && !(*p == ')' && depth > 0)) {
        bool quantifier = *p == '*' || *p == '?' || *p == '+' ||
                          (*p == '{' && (isdigit((unsigned char)p[1]) ||
                                         (p[1] == ',' && isdigit((unsigned char)p[2]))));
        if (quantifier && !have_atom) {
            atom = (rxcost_t){1, 0, 0, false};
            have_atom = true;
        }
        if (*p == '|') {
            if (have_atom) rx_then(&seq, &atom);
            total.nodes += seq.nodes + 1;
            total.skip += seq.skip;
            total.nullreps += seq.nullreps;
            total.nullable = total.nullable || seq.nullable;
            seq = (rxcost_t){0, 0, 0, true};
            have_atom = false;
            p++;
        } else if (*p == '*' || *p == '?' || *p == '+') {
            rx_repeat(&atom, *p, 0, 0);
            p++;
        } else if (quantifier) { /* {m}, {m,}, {m,n}, {,n} */
            p++;
            double lo = digits(&p), hi = lo;
            if (*p == ',') {
                p++;
                hi = isdigit((unsigned char)*p) ? digits(&p) : lo + 1;
            }
            if (*p == '}') p++;
            rx_repeat(&atom, '{', lo, hi);
        } else {
            if (have_atom) rx_then(&seq, &atom);
            have_atom = true;
            atom = (rxcost_t){1, 0, 0, false};
            if (*p == '(') {
                p++;
                if (depth >= JSCHEMA_DEPTH_MAX) {
                    atom.nodes = RX_DEEP;
                } else {
                    atom = rx_alt(&p, depth + 1);
                    atom.nodes += 1;
                }
                if (*p == ')') p++;
            } else if (*p == '[') { /* a bracket expression: "[]a]", "[^]]", "[[:alpha:]]" */
                p += p[1] == '^' ? 2 : 1;
                if (*p == ']') p++;
                while (*p && *p != ']') {
                    if (*p == '[' && (p[1] == ':' || p[1] == '=' || p[1] == '.')) {
                        const char *e = p + 2;
                        while (*e && !(e[0] == p[1] && e[1] == ']'))
                            e++;
                        p = *e ? e + 2 : e;
                    } else {
                        p++;
                    }
                }
                if (*p) p++;
            } else if (*p == '\\' && p[1]) {
                atom.nullable = strchr("bB<>`'", p[1]) != NULL;
                atom.skip = atom.nullable;
                p += 2;
            } else {
                atom.nullable = *p == '^' || *p == '$';
                atom.skip = atom.nullable;
                p++;
            }
        }
    }
    if (have_atom) rx_then(&seq, &atom);
    total.nodes += seq.nodes;
    total.skip += seq.skip;
    total.nullreps += seq.nullreps;
    total.nullable = total.nullable || seq.nullable;
    *pp = p;
    return total;
}

/* A pattern's cost (nodes at least 1), and the work regcomp does on it,
 * in about the time it takes per node (0.15-0.3 us here): the nodes, plus
 * the square of its epsilon chains, weighed as measured. */
static rxcost_t rx_cost(const char *pattern, double *work)
{
    rxcost_t c = rx_alt(&pattern, 0);
    if (c.nodes < 1) c.nodes = 1;
    if (work) *work = c.nodes + c.skip * c.skip / 50;
    return c;
}

/* One compiled pattern of a validation. */
typedef struct rx {
    const char *pattern; /* borrowed from the schema */
    regex_t re;
    double cost; /* rx_cost(pattern) */
} rx_t;

/* ---- checking schemas ---------------------------------------------------- */

typedef struct cctx {
    path_t path; /* of the keyword being checked */
    char *err;
    size_t errlen;
    double rx_work; /* of the patterns checked so far */
} cctx_t;

static int cfail(cctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cfail(cctx_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->path.len)
        jobspec__strf(c->err, c->errlen, "%s: %s", c->path.s, msg);
    else
        jobspec__strf(c->err, c->errlen, "the schema %s", msg);
    return SKED_EINVAL;
}

static int check_pattern(cctx_t *c, const char *pat, size_t len)
{
    if (strlen(pat) != len) return cfail(c, "must not contain a NUL character");
    if (len > JSCHEMA_PATTERN_MAX)
        return cfail(c, "must be at most %d bytes long", JSCHEMA_PATTERN_MAX);
    for (const char *p = pat; *p; p++) {
        if (*p != '\\' || !p[1]) continue;
        if (p[1] >= '1' && p[1] <= '9')
            return cfail(c,
                         "must not use back-references such as \\%c (they can take exponential "
                         "time to match)",
                         p[1]);
        p++;
    }
    double work;
    rxcost_t est = rx_cost(pat, &work);
    if (!(est.nodes <= JSCHEMA_PATTERN_COST_MAX))
        return cfail(c,
                     "is too costly to match: regcomp would build about %.3g nodes from it (at "
                     "most %d); prefer * and + to large {m,n} bounds, and nest fewer of them",
                     est.nodes, JSCHEMA_PATTERN_COST_MAX);
    if (est.nullreps > 0)
        return cfail(c, "repeats a part that can match the empty string (such as ()*, (a*b*)*, "
                        "(a?)+ or (b|){3}), which regcomp takes long to compile; make the "
                        "repeated part match at least one character: (a|b)* for (a|b?)*");
    if (!(work <= JSCHEMA_PATTERN_WORK_MAX))
        return cfail(c,
                     "is too costly to compile: regcomp would do about %.3g units of work on it "
                     "(at most %d), for its parts that can match the empty string; prefer * "
                     "to large {m,n} bounds on them",
                     work, JSCHEMA_PATTERN_WORK_MAX);
    c->rx_work += work;
    if (!(c->rx_work <= JSCHEMA_SCHEMA_WORK_MAX))
        return cfail(c,
                     "makes the schema's patterns together too costly to compile (about %.3g "
                     "units of work, at most %d); use fewer or simpler patterns",
                     c->rx_work, JSCHEMA_SCHEMA_WORK_MAX);
    regex_t re;
    int rc = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char why[128];
        regerror(rc, &re, why, sizeof why);
        return cfail(c, "is not a valid POSIX extended regular expression (%s)", why);
    }
    regfree(&re);
    return 0;
}

/* What a keyword's value must be. */
typedef enum kind {
    K_ANNOTATION, /* anything; not looked at */
    K_VALUE,      /* any JSON value (const) */
    K_ENUM,       /* a non-empty array of values */
    K_TYPE,       /* a type name, or a non-empty array of unique ones */
    K_SCHEMA,     /* a schema */
    K_ITEMS,      /* a schema (not the array form of older drafts) */
    K_SCHEMAS,    /* a non-empty array of schemas */
    K_PROPERTIES, /* an object of schemas */
    K_PATTERNS,   /* an object of schemas keyed by patterns */
    K_REQUIRED,   /* an array of unique strings */
    K_COUNT,      /* a non-negative integer */
    K_NUMBER,     /* a number */
    K_POSITIVE,   /* a number > 0 */
    K_BOOL,       /* true or false */
    K_PATTERN,    /* a pattern */
} kind_t;

static const struct keyword {
    const char *name;
    kind_t kind;
} keywords[] = {
    {"type", K_TYPE},
    {"enum", K_ENUM},
    {"const", K_VALUE},
    {"properties", K_PROPERTIES},
    {"patternProperties", K_PATTERNS},
    {"additionalProperties", K_SCHEMA},
    {"required", K_REQUIRED},
    {"minProperties", K_COUNT},
    {"maxProperties", K_COUNT},
    {"items", K_ITEMS},
    {"minItems", K_COUNT},
    {"maxItems", K_COUNT},
    {"uniqueItems", K_BOOL},
    {"minLength", K_COUNT},
    {"maxLength", K_COUNT},
    {"pattern", K_PATTERN},
    {"minimum", K_NUMBER},
    {"maximum", K_NUMBER},
    {"exclusiveMinimum", K_NUMBER},
    {"exclusiveMaximum", K_NUMBER},
    {"multipleOf", K_POSITIVE},
    {"allOf", K_SCHEMAS},
    {"anyOf", K_SCHEMAS},
    {"oneOf", K_SCHEMAS},
    {"not", K_SCHEMA},
    {"title", K_ANNOTATION},
    {"description", K_ANNOTATION},
    {"default", K_ANNOTATION},
    {"examples", K_ANNOTATION},
    {"$comment", K_ANNOTATION},
    {"$schema", K_ANNOTATION},
    {"deprecated", K_ANNOTATION},
    {"readOnly", K_ANNOTATION},
    {"writeOnly", K_ANNOTATION},
};

/* Keywords people reach for that sked does not apply, and what to do. */
static const struct {
    const char *name, *why;
} unsupported[] = {
    {"$ref", "is not supported: write the subschema in place (sked schemas cannot refer to "
             "other schemas)"},
    {"$defs", "is not supported: sked schemas cannot refer to other schemas ($ref), so write "
              "each subschema in place"},
    {"definitions", "is not supported: sked schemas cannot refer to other schemas ($ref), so "
                    "write each subschema in place"},
    {"format", "is not supported: sked does not check formats; use \"pattern\""},
    {"prefixItems", "is not supported: give \"items\" one schema for every element"},
};

static int check_schema(cctx_t *c, const json_t *s, int level);

static int check_value(cctx_t *c, const json_t *k, const struct keyword *kw, int level)
{
    size_t i, j, len;
    const char *key;
    json_t *m;
    switch (kw->kind) {
    case K_ANNOTATION:
        return 0;
    case K_VALUE:
        return shallow(k, JSCHEMA_DEPTH_MAX)
                   ? 0
                   : cfail(c, "nests deeper than %d levels", JSCHEMA_DEPTH_MAX);
    case K_ENUM:
        if (!json_is_array(k) || !json_array_size(k))
            return cfail(c, "must be a non-empty array of the allowed values");
        return shallow(k, JSCHEMA_DEPTH_MAX)
                   ? 0
                   : cfail(c, "nests deeper than %d levels", JSCHEMA_DEPTH_MAX);
    case K_TYPE:
        if (json_is_string(k) && type_index(k) >= 0) return 0;
        if (!json_is_array(k) || !json_array_size(k))
            return cfail(c, "must be one of object, array, string, number, integer, boolean, "
                            "null, or a non-empty array of them");
        json_array_foreach(k, i, m)
        {
            size_t mark = push_index(&c->path, i);
            if (type_index(m) < 0)
                return cfail(c, "must be one of object, array, string, number, integer, "
                                "boolean, null");
            for (j = 0; j < i; j++)
                if (json_equal(m, json_array_get(k, j))) return cfail(c, "repeats type[%zu]", j);
            pop(&c->path, mark);
        }
        return 0;
    case K_ITEMS:
        if (json_is_array(k))
            return cfail(c, "must be one schema (an object or a boolean): the array form of older "
                            "drafts is \"prefixItems\" in draft 2020-12, which sked does not "
                            "support");
        return check_schema(c, k, level + 1);
    case K_SCHEMA:
        return check_schema(c, k, level + 1);
    case K_SCHEMAS:
        if (!json_is_array(k) || !json_array_size(k))
            return cfail(c, "must be a non-empty array of schemas");
        json_array_foreach(k, i, m)
        {
            size_t mark = push_index(&c->path, i);
            int rc = check_schema(c, m, level + 1);
            if (rc) return rc;
            pop(&c->path, mark);
        }
        return 0;
    case K_PROPERTIES:
    case K_PATTERNS:
        if (!json_is_object(k)) return cfail(c, "must be an object of schemas");
        json_object_keylen_foreach((json_t *)k, key, len, m)
        {
            size_t mark = push_key(&c->path, key);
            int rc = kw->kind == K_PATTERNS ? check_pattern(c, key, len) : 0;
            if (rc || (rc = check_schema(c, m, level + 1))) return rc;
            pop(&c->path, mark);
        }
        return 0;
    case K_REQUIRED:
        if (!json_is_array(k)) return cfail(c, "must be an array of property names");
        json_array_foreach(k, i, m)
        {
            size_t mark = push_index(&c->path, i);
            if (!json_is_string(m)) return cfail(c, "must be a string");
            for (j = 0; j < i; j++)
                if (json_equal(m, json_array_get(k, j)))
                    return cfail(c, "repeats required[%zu]", j);
            pop(&c->path, mark);
        }
        return 0;
    case K_COUNT:
        if (json_is_number(k) && json_number_value(k) >= 0 &&
            (json_is_integer(k) || json_real_value(k) == trunc(json_real_value(k))))
            return 0;
        return cfail(c, "must be a non-negative integer");
    case K_NUMBER:
        if (json_is_number(k)) return 0;
        if (json_is_boolean(k) && !strncmp(kw->name, "exclusive", 9))
            return cfail(c,
                         "must be a number: in draft 2020-12 it is the bound itself "
                         "(\"%s\": 0), not a flag beside \"%s\"",
                         kw->name, strstr(kw->name, "Min") ? "minimum" : "maximum");
        return cfail(c, "must be a number");
    case K_POSITIVE:
        return json_is_number(k) && json_number_value(k) > 0
                   ? 0
                   : cfail(c, "must be a number greater than 0");
    case K_BOOL:
        return json_is_boolean(k) ? 0 : cfail(c, "must be true or false");
    case K_PATTERN:
        if (!json_is_string(k)) return cfail(c, "must be a string");
        return check_pattern(c, json_string_value(k), json_string_length(k));
    }
    return 0;
}

static int check_schema(cctx_t *c, const json_t *s, int level)
{
    if (level > JSCHEMA_DEPTH_MAX)
        return cfail(c, "nests deeper than %d levels of schemas", JSCHEMA_DEPTH_MAX);
    if (json_is_boolean(s)) return 0;
    if (!json_is_object(s)) return cfail(c, "must be an object or a boolean");
    const char *key;
    size_t len;
    json_t *k;
    json_object_keylen_foreach((json_t *)s, key, len, k)
    {
        size_t mark = push_key(&c->path, key), i;
        const struct keyword *kw = NULL;
        for (i = 0; len == strlen(key) && i < sizeof keywords / sizeof keywords[0]; i++)
            if (!strcmp(keywords[i].name, key)) kw = &keywords[i];
        if (!kw) {
            for (i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
                if (!strcmp(unsupported[i].name, key)) return cfail(c, "%s", unsupported[i].why);
            return cfail(c, "is not a keyword sked supports, so it would be ignored; "
                            "docs/plugins.md lists the subset");
        }
        int rc = check_value(c, k, kw, level);
        if (rc) return rc;
        pop(&c->path, mark);
    }
    return 0;
}

int jschema_check(const json_t *schema, char *err, size_t errlen)
{
    assert(err && errlen > 0);
    cctx_t c = {.err = err, .errlen = errlen};
    *err = '\0';
    return check_schema(&c, schema, 1);
}

/* ---- validating instances ------------------------------------------------ */

typedef struct vctx {
    path_t path;     /* of the value being validated, base included */
    size_t fail_len; /* path.len at the last fault: how deep it was */
    char *field, *detail;
    size_t fieldlen, detaillen;
    rx_t **rx; /* every pattern compiled so far, each once; owned */
    size_t nrx;
    double budget; /* left of JSCHEMA_MATCH_BUDGET */
} vctx_t;

static int fail(vctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(vctx_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->fail_len = c->path.len;
    jobspec__strf(c->field, c->fieldlen, "%s", c->path.s);
    jobspec__strf(c->detail, c->detaillen, "%s", msg);
    return SKED_EINVAL;
}

/* Whether s (len bytes) matches pattern: 1 or 0; -1 when matching it would
 * overrun the validation's budget (or regcomp runs out of memory: the
 * pattern itself passed jschema_check). Each pattern of the schema is
 * compiled once per validation, not once per element of an array: a
 * cache that evicted could be made to recompile for every element. */
static int rx_match(vctx_t *c, const char *pattern, const char *s, size_t len)
{
    rx_t *r = NULL;
    for (size_t i = 0; i < c->nrx && !r; i++)
        if (c->rx[i]->pattern == pattern) r = c->rx[i];
    if (!r) {
        r = xmalloc(sizeof *r); /* not in an array: a regex_t must not move */
        if (regcomp(&r->re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
            free(r);
            return -1;
        }
        r->pattern = pattern;
        r->cost = rx_cost(pattern, NULL).nodes;
        c->rx = xrealloc(c->rx, (c->nrx + 1) * sizeof *c->rx);
        c->rx[c->nrx++] = r;
    }
    double cost = ((double)len + 1) * r->cost;
    if (cost > c->budget) return -1;
    c->budget -= cost;
    return regexec(&r->re, s, 0, NULL, 0) == 0;
}

static int validate(vctx_t *c, const json_t *s, const json_t *v);

/* One member of an object: its own schemas, else additionalProperties. */
static int v_member(vctx_t *c, const json_t *s, const char *key, size_t len, const json_t *m)
{
    const json_t *props = json_object_get(s, "properties"), *sub;
    const json_t *pats = json_object_get(s, "patternProperties");
    const json_t *more = json_object_get(s, "additionalProperties");
    bool known = false;
    int rc;
    if (props && (sub = json_object_getn(props, key, len))) {
        known = true;
        if ((rc = validate(c, sub, m))) return rc;
    }
    const char *pat;
    json_t *ps;
    json_object_foreach((json_t *)pats, pat, ps)
    {
        /* A name holding a NUL matches no pattern: regexec would see only
         * the part before it. */
        int hit = strlen(key) == len ? rx_match(c, pat, key, len) : 0;
        if (hit < 0)
            return fail(c,
                        "is a name too long to match against the pattern %s within sked's "
                        "limits",
                        pat);
        if (hit) {
            known = true;
            if ((rc = validate(c, ps, m))) return rc;
        }
    }
    if (known || !more) return 0;
    if (!json_is_false(more)) return validate(c, more, m);
    if (!json_object_size(props)) return fail(c, "is not allowed (additionalProperties is false)");
    char names[256] = "";
    const char *name;
    json_object_foreach((json_t *)props, name, ps)
    {
        size_t n = strlen(names);
        jobspec__strf(names + n, sizeof names - n, "%s%s", n ? ", " : "", name);
    }
    return fail(c, "is not allowed (additionalProperties is false); the known properties are: %s",
                names);
}

static int v_object(vctx_t *c, const json_t *s, const json_t *v)
{
    const json_t *k = json_object_get(s, "required"), *m;
    char text[64];
    size_t i, n = json_object_size(v), len;
    json_array_foreach(k, i, m)
    {
        if (json_object_getn(v, json_string_value(m), json_string_length(m))) continue;
        size_t mark = push_key(&c->path, json_string_value(m));
        fail(c, "is required");
        pop(&c->path, mark);
        return SKED_EINVAL;
    }
    if ((k = json_object_get(s, "minProperties")) && (double)n < json_number_value(k))
        return fail(c, "must have at least %s",
                    count_text(k, "property", "properties", text, sizeof text));
    if ((k = json_object_get(s, "maxProperties")) && (double)n > json_number_value(k))
        return fail(c, "must have at most %s",
                    count_text(k, "property", "properties", text, sizeof text));
    const char *key;
    json_object_keylen_foreach((json_t *)v, key, len, m)
    {
        size_t mark = push_key(&c->path, key);
        int rc = v_member(c, s, key, len, m);
        pop(&c->path, mark);
        if (rc) return rc;
    }
    return 0;
}

/* One element of an array, by its canonical encoding. */
typedef struct item {
    const char *p;
    size_t off, len, idx;
} item_t;

static int item_cmp(const void *pa, const void *pb)
{
    const item_t *a = pa, *b = pb;
    int c = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len);
    if (!c) c = (a->len > b->len) - (a->len < b->len);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* uniqueItems: sorts the elements' encodings (O(n log n), where comparing
 * each pair would let a long array cost seconds), then reports the first
 * element by index that repeats an earlier one. */
static int v_unique(vctx_t *c, const json_t *v)
{
    size_t n = json_array_size(v), i, group = 0, dup = SIZE_MAX, orig = 0;
    if (n < 2) return 0;
    buf_t b = BUF_INIT;
    item_t *it = xmalloc(n * sizeof *it);
    for (i = 0; i < n; i++) {
        it[i].off = b.len;
        canon(&b, json_array_get(v, i));
        it[i].len = b.len - it[i].off;
        it[i].idx = i;
    }
    for (i = 0; i < n; i++)
        it[i].p = b.data + it[i].off;
    qsort(it, n, sizeof *it, item_cmp);
    for (i = 1; i < n; i++) {
        if (it[i].len != it[i - 1].len || memcmp(it[i].p, it[i - 1].p, it[i].len)) {
            group = i;
        } else if (it[i].idx < dup) {
            dup = it[i].idx;
            orig = it[group].idx;
        }
    }
    free(it);
    buf_free(&b);
    if (dup == SIZE_MAX) return 0;
    size_t mark = push_index(&c->path, dup);
    fail(c, "repeats item [%zu] (uniqueItems is true)", orig);
    pop(&c->path, mark);
    return SKED_EINVAL;
}

static int v_array(vctx_t *c, const json_t *s, const json_t *v)
{
    const json_t *k, *m;
    char text[64];
    size_t i, n = json_array_size(v);
    if ((k = json_object_get(s, "minItems")) && (double)n < json_number_value(k))
        return fail(c, "must have at least %s", count_text(k, "item", "items", text, sizeof text));
    if ((k = json_object_get(s, "maxItems")) && (double)n > json_number_value(k))
        return fail(c, "must have at most %s", count_text(k, "item", "items", text, sizeof text));
    if ((k = json_object_get(s, "items"))) {
        json_array_foreach(v, i, m)
        {
            size_t mark = push_index(&c->path, i);
            int rc = validate(c, k, m);
            pop(&c->path, mark);
            if (rc) return rc;
        }
    }
    if (json_is_true(json_object_get(s, "uniqueItems"))) return v_unique(c, v);
    return 0;
}

static int v_string(vctx_t *c, const json_t *s, const json_t *v)
{
    const char *str = json_string_value(v);
    size_t len = json_string_length(v), chars = 0;
    for (size_t i = 0; i < len; i++) /* jansson holds valid UTF-8: count the lead bytes */
        chars += ((unsigned char)str[i] & 0xC0) != 0x80;
    const json_t *k;
    char text[64];
    if ((k = json_object_get(s, "minLength")) && (double)chars < json_number_value(k))
        return fail(c, "must be at least %s long",
                    count_text(k, "character", "characters", text, sizeof text));
    if ((k = json_object_get(s, "maxLength")) && (double)chars > json_number_value(k))
        return fail(c, "must be at most %s long",
                    count_text(k, "character", "characters", text, sizeof text));
    if ((k = json_object_get(s, "pattern"))) {
        const char *pat = json_string_value(k);
        if (strlen(str) != len) /* regexec would see only the part before the NUL */
            return fail(c, "must match the pattern %s, and may not contain a NUL character", pat);
        int hit = rx_match(c, pat, str, len);
        if (hit < 0)
            return fail(c, "is too long to match against the pattern %s within sked's limits", pat);
        if (!hit) return fail(c, "must match the pattern %s", pat);
    }
    return 0;
}

/* multipleOf: exact for integers; for reals, the quotient must be a whole
 * number up to rounding (0.3 is a multiple of 0.1, though 0.3 / 0.1 is
 * 2.9999999999999996 in doubles). */
static bool multiple(const json_t *v, const json_t *k)
{
    if (json_is_integer(v) && json_is_integer(k))
        return json_integer_value(v) % json_integer_value(k) == 0;
    double q = json_number_value(v) / json_number_value(k);
    return isfinite(q) && fabs(q - nearbyint(q)) <= 4 * DBL_EPSILON * fabs(q);
}

static int v_number(vctx_t *c, const json_t *s, const json_t *v)
{
    const json_t *k;
    char text[40];
    if ((k = json_object_get(s, "minimum")) && numcmp(v, k) < 0)
        return fail(c, "must be at least %s", show(k, text, sizeof text));
    if ((k = json_object_get(s, "maximum")) && numcmp(v, k) > 0)
        return fail(c, "must be at most %s", show(k, text, sizeof text));
    if ((k = json_object_get(s, "exclusiveMinimum")) && numcmp(v, k) <= 0)
        return fail(c, "must be greater than %s", show(k, text, sizeof text));
    if ((k = json_object_get(s, "exclusiveMaximum")) && numcmp(v, k) >= 0)
        return fail(c, "must be less than %s", show(k, text, sizeof text));
    if ((k = json_object_get(s, "multipleOf")) && !multiple(v, k))
        return fail(c, "must be a multiple of %s", show(k, text, sizeof text));
    return 0;
}

/* anyOf (one = false) or oneOf (one = true). When no branch matches, a
 * generic "must match" helps nobody if one branch was the one meant and
 * only a member deep inside was wrong: report the fault of the branch that
 * got deepest, when one got deeper than v itself. */
static int v_branches(vctx_t *c, const json_t *list, const json_t *v, bool one)
{
    size_t i, matched = 0, first = 0, best = c->path.len;
    char *field = NULL, *detail = NULL;
    const json_t *sub;
    json_array_foreach(list, i, sub)
    {
        if (validate(c, sub, v) == 0) {
            if (matched++ == 0) first = i;
            if (!one || matched > 1) break;
            continue;
        }
        if (c->fail_len > best) {
            best = c->fail_len;
            if (!field) {
                field = xmalloc(c->fieldlen);
                detail = xmalloc(c->detaillen);
            }
            memcpy(field, c->field, strlen(c->field) + 1);
            memcpy(detail, c->detail, strlen(c->detail) + 1);
        }
    }
    int rc = 0;
    if (matched == 1 || (matched && !one)) {
        rc = 0;
    } else if (matched > 1) {
        rc = fail(c,
                  "must match exactly one of the schemas in oneOf, but matches oneOf[%zu] and "
                  "oneOf[%zu]",
                  first, i);
    } else if (field) {
        memcpy(c->field, field, strlen(field) + 1);
        memcpy(c->detail, detail, strlen(detail) + 1);
        c->fail_len = best;
        rc = SKED_EINVAL;
    } else {
        rc = fail(c, "must match %s of the schemas in %s", one ? "exactly one" : "at least one",
                  one ? "oneOf" : "anyOf");
    }
    free(field);
    free(detail);
    return rc;
}

static int validate(vctx_t *c, const json_t *s, const json_t *v)
{
    if (json_is_boolean(s)) return json_is_true(s) ? 0 : fail(c, "is not allowed");
    const json_t *k, *m;
    char text[256];
    int rc = 0;
    if ((k = json_object_get(s, "type")) && !type_ok(k, v))
        return fail(c, "must be %s", types_text(k, text, sizeof text));
    if ((k = json_object_get(s, "const")) && !equal(k, v))
        return fail(c, "must be %s", show(k, text, sizeof text));
    if ((k = json_object_get(s, "enum"))) {
        size_t i;
        bool ok = false;
        json_array_foreach(k, i, m) if ((ok = equal(m, v))) break;
        if (!ok) {
            *text = '\0';
            json_array_foreach(k, i, m)
            {
                char one[128];
                size_t n = strlen(text);
                jobspec__strf(text + n, sizeof text - n, "%s%s", i ? ", " : "",
                              show(m, one, sizeof one));
            }
            return fail(c, "must be one of: %s", text);
        }
    }
    if (json_is_object(v))
        rc = v_object(c, s, v);
    else if (json_is_array(v))
        rc = v_array(c, s, v);
    else if (json_is_string(v))
        rc = v_string(c, s, v);
    else if (json_is_number(v))
        rc = v_number(c, s, v);
    if (rc) return rc;
    size_t i;
    json_array_foreach(json_object_get(s, "allOf"), i, m) if ((rc = validate(c, m, v))) return rc;
    if ((k = json_object_get(s, "anyOf")) && (rc = v_branches(c, k, v, false))) return rc;
    if ((k = json_object_get(s, "oneOf")) && (rc = v_branches(c, k, v, true))) return rc;
    if ((k = json_object_get(s, "not")) && validate(c, k, v) == 0)
        return fail(c, "must not match the schema in not");
    return 0;
}

int jschema_validate(const json_t *schema, const json_t *instance, const char *base, char *field,
                     size_t fieldlen, char *detail, size_t detaillen)
{
    assert(field && fieldlen > 0 && detail && detaillen > 0);
    vctx_t c;
    memset(&c, 0, sizeof c);
    c.field = field;
    c.fieldlen = fieldlen;
    c.detail = detail;
    c.detaillen = detaillen;
    c.budget = JSCHEMA_MATCH_BUDGET;
    jobspec__strf(c.path.s, sizeof c.path.s, "%s", base ? base : "");
    c.path.len = strlen(c.path.s);
    int rc = shallow(instance, JSCHEMA_DEPTH_MAX)
                 ? validate(&c, schema, instance)
                 : fail(&c, "nests deeper than %d levels of arrays and objects", JSCHEMA_DEPTH_MAX);
    for (size_t i = 0; i < c.nrx; i++) {
        regfree(&c.rx[i]->re);
        free(c.rx[i]);
    }
    free(c.rx);
    if (rc == 0) *field = *detail = '\0';
    return rc;
}
