/*
 * Documents the CLI reads from files: JSON as it is, and YAML converted to
 * the same JSON (libyaml's event parser, one document per file). The
 * conversion is faithful and typed by the YAML 1.2 core schema, so that a
 * workflow written in YAML is the very document its JSON twin is:
 *
 *   - mappings become objects (keys are scalars; a key given twice is an
 *     error, as YAML says it is), sequences arrays;
 *   - a plain scalar is null (null, Null, NULL, ~, or nothing), a boolean
 *     (true/false in those three spellings), an integer (decimal, 0o
 *     octal, 0x hex), a float, or else a string: "yes", "on", "012"'s
 *     YAML 1.1 octal and dates are not special, as in 1.2;
 *   - a quoted or block (| >) scalar is always a string;
 *   - the tags !!str, !!int, !!float, !!bool, !!null are honoured (the
 *     value must fit the tag), others refused;
 *   - anchors and aliases are refused (a JSON document has no references,
 *     and expanding them is how "billion laughs" documents blow up), as are
 *     .inf and .nan (JSON has no such numbers) and integers past 64 bits.
 *
 * Every error carries the line and column ("3:7: ...") of the input.
 * Nesting is built with an explicit stack, bounded by YAML_DEPTH_MAX.
 */
#include "cli/cli.h"

#include "common/error.h"
#include "common/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YAML_DEPTH_MAX 512 /* nested mappings and sequences */

#define TAG_STR   "tag:yaml.org,2002:str"
#define TAG_INT   "tag:yaml.org,2002:int"
#define TAG_FLOAT "tag:yaml.org,2002:float"
#define TAG_BOOL  "tag:yaml.org,2002:bool"
#define TAG_NULL  "tag:yaml.org,2002:null"

/* One open mapping or sequence; key is the pending key of a mapping (NULL
 * while the next scalar is a key). */
typedef struct frame {
    json_t *node;
    char *key;
} frame_t;

typedef struct conv {
    frame_t stack[YAML_DEPTH_MAX];
    int depth;
    json_t *root;
    char *err;
    size_t errlen;
} conv_t;

static int conv_fail(conv_t *cv, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int conv_fail(conv_t *cv, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(cv->err, cv->errlen, "%zu:%zu: %s", m->line + 1, m->column + 1, msg);
    return SKED_EINVAL;
}

/* ---- scalars ------------------------------------------------------------- */

static bool all_of(const char *s, const char *set)
{
    return *s && s[strspn(s, set)] == '\0';
}

static bool is_null_word(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* 1 true, 0 false, -1 neither. */
static int bool_word(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return 0;
    return -1;
}

/* Integer by the core schema: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
 * 1 and *out; 0 when s is no integer; -1 when it is one past 64 bits. */
static int int_word(const char *s, json_int_t *out)
{
    int base = 10;
    const char *digits = s;
    if (!strncmp(s, "0o", 2) && all_of(s + 2, "01234567")) {
        base = 8;
        digits = s + 2;
    } else if (!strncmp(s, "0x", 2) && all_of(s + 2, "0123456789abcdefABCDEF")) {
        base = 16;
        digits = s + 2;
    } else if (!all_of(s + (*s == '-' || *s == '+'), "0123456789")) {
        return 0;
    }
    errno = 0;
    char *end;
    long long v = strtoll(digits, &end, base);
    if (errno == ERANGE || *end) return -1;
    *out = (json_int_t)v;
    return 1;
}

/* Float by the core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 * and the infinities and NaN. 1 and *out; 0 when no float; -1 when one JSON
 * cannot hold (inf, nan, or past the range of a double). */
static int float_word(const char *s, double *out)
{
    const char *p = s + (*s == '-' || *s == '+');
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF") || !strcmp(s, ".nan") ||
        !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
        return -1;
    size_t ints = strspn(p, "0123456789");
    const char *q = p + ints;
    size_t fracs = 0;
    if (*q == '.') {
        fracs = strspn(q + 1, "0123456789");
        q += 1 + fracs;
    }
    if (ints == 0 && fracs == 0) return 0;
    if (*q == 'e' || *q == 'E') {
        q++;
        q += (*q == '-' || *q == '+');
        size_t exps = strspn(q, "0123456789");
        if (!exps) return 0;
        q += exps;
    }
    if (*q) return 0;
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE && isinf(v)) return -1;
    *out = v;
    return 1;
}

static bool std_tag(const char *tag)
{
    return !strcmp(tag, TAG_STR) || !strcmp(tag, TAG_INT) || !strcmp(tag, TAG_FLOAT) ||
           !strcmp(tag, TAG_BOOL) || !strcmp(tag, TAG_NULL);
}

/* A scalar given the type of its explicit tag, or NULL when the text does
 * not fit the tag. */
static json_t *tagged_value(const char *tag, const char *s)
{
    json_int_t i;
    double d;
    int b;
    if (!strcmp(tag, TAG_NULL) && is_null_word(s)) return json_null();
    if (!strcmp(tag, TAG_BOOL) && (b = bool_word(s)) >= 0) return json_boolean(b);
    if (!strcmp(tag, TAG_INT) && int_word(s, &i) == 1) return json_integer(i);
    if (!strcmp(tag, TAG_FLOAT) && int_word(s, &i) == 1) return json_real((double)i);
    if (!strcmp(tag, TAG_FLOAT) && float_word(s, &d) == 1) return json_real(d);
    return NULL;
}

/* The JSON value of a scalar event. New reference, or NULL after an error. */
static json_t *scalar_value(conv_t *cv, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool nul_inside = strlen(s) != len;
    json_int_t i;
    double d;
    int b, r;

    /* "!", the non-specific tag, resolves a scalar as a string. */
    if (tag && !strcmp(tag, "!")) tag = TAG_STR;
    if (tag && !std_tag(tag)) {
        conv_fail(cv, &ev->start_mark, "the tag %.60s is not supported", tag);
        return NULL;
    }
    if (tag && strcmp(tag, TAG_STR) != 0) {
        json_t *v = nul_inside ? NULL : tagged_value(tag, s);
        if (!v)
            conv_fail(cv, &ev->start_mark, "'%.60s' is not a valid %s", s, strrchr(tag, ':') + 1);
        return v;
    }
    if (!tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !nul_inside) {
        if (is_null_word(s)) return json_null();
        if ((b = bool_word(s)) >= 0) return json_boolean(b);
        if ((r = int_word(s, &i)) == 1) return json_integer(i);
        if (r < 0) {
            conv_fail(cv, &ev->start_mark, "the integer %.60s does not fit in 64 bits", s);
            return NULL;
        }
        if ((r = float_word(s, &d)) == 1) return json_real(d);
        if (r < 0) {
            conv_fail(cv, &ev->start_mark,
                      "%.60s is not a number JSON can hold; quote it to make it a string", s);
            return NULL;
        }
    }
    /* A JSON text sked reads cannot hold U+0000 (jansson refuses "\u0000"
     * unless told otherwise, and so does the server): said here, where the
     * line is known. */
    if (nul_inside) {
        conv_fail(cv, &ev->start_mark, "a string must not contain NUL characters (\\0)");
        return NULL;
    }
    json_t *v = json_stringn(s, len);
    if (!v) conv_fail(cv, &ev->start_mark, "a string that is not valid UTF-8");
    return v;
}

/* ---- structure ----------------------------------------------------------- */

/* Whether the next node is the key of an open mapping. */
static bool want_key(const conv_t *cv)
{
    return cv->depth > 0 && json_is_object(cv->stack[cv->depth - 1].node) &&
           !cv->stack[cv->depth - 1].key;
}

/* A mapping key: the scalar's text as written (JSON keys are strings, and
 * "0x1F" or "1.50" must not come out as "31" or "1.5"). */
static int take_key(conv_t *cv, const yaml_event_t *ev)
{
    frame_t *f = &cv->stack[cv->depth - 1];
    const char *s = (const char *)ev->data.scalar.value;
    if (strlen(s) != ev->data.scalar.length)
        return conv_fail(cv, &ev->start_mark, "a mapping key must not contain NUL characters");
    if (json_object_get(f->node, s))
        return conv_fail(cv, &ev->start_mark, "the key \"%.100s\" appears twice in this mapping",
                         s);
    json_t *probe = json_string(s);
    if (!probe) return conv_fail(cv, &ev->start_mark, "a key that is not valid UTF-8");
    json_decref(probe);
    f->key = xstrdup(s);
    return 0;
}

/* Places v (stolen) where the document is at: the root, the next item of
 * a sequence, or the value of a mapping's pending key. */
static void place(conv_t *cv, json_t *v)
{
    if (cv->depth == 0) {
        cv->root = v;
        return;
    }
    frame_t *f = &cv->stack[cv->depth - 1];
    if (json_is_array(f->node)) {
        json_array_append_new(f->node, v);
        return;
    }
    json_object_set_new(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
}

static int open_node(conv_t *cv, json_t *node, const yaml_mark_t *m)
{
    if (want_key(cv)) {
        json_decref(node);
        return conv_fail(cv, m, "a mapping key must be a scalar");
    }
    if (cv->depth == YAML_DEPTH_MAX) {
        json_decref(node);
        return conv_fail(cv, m, "nested deeper than %d levels", YAML_DEPTH_MAX);
    }
    /* Placed first, then filled in place: the parent (or root) holds it. */
    place(cv, node);
    cv->stack[cv->depth].node = node;
    cv->stack[cv->depth].key = NULL;
    cv->depth++;
    return 0;
}

static const char *anchor_of(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return (const char *)ev->data.scalar.anchor;
    case YAML_MAPPING_START_EVENT:
        return (const char *)ev->data.mapping_start.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return (const char *)ev->data.sequence_start.anchor;
    default:
        return NULL;
    }
}

/* Handles one event; *done set at the end of the stream. */
static int on_event(conv_t *cv, const yaml_event_t *ev, int *docs, bool *done)
{
    const char *anchor = anchor_of(ev);
    if (anchor)
        return conv_fail(cv, &ev->start_mark,
                         "anchors (&%.60s) are not supported: write the value out", anchor);
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1)
            return conv_fail(cv, &ev->start_mark, "more than one document: give one per file");
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_ALIAS_EVENT:
        return conv_fail(cv, &ev->start_mark,
                         "aliases (*%.60s) are not supported: write the value out",
                         (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
        if (want_key(cv)) return take_key(cv, ev);
        json_t *v = scalar_value(cv, ev);
        if (!v) return SKED_EINVAL;
        place(cv, v);
        return 0;
    }
    case YAML_MAPPING_START_EVENT:
        if (ev->data.mapping_start.tag &&
            strcmp((const char *)ev->data.mapping_start.tag, "tag:yaml.org,2002:map"))
            return conv_fail(cv, &ev->start_mark, "the tag %.60s is not supported",
                             (const char *)ev->data.mapping_start.tag);
        return open_node(cv, json_object(), &ev->start_mark);
    case YAML_SEQUENCE_START_EVENT:
        if (ev->data.sequence_start.tag &&
            strcmp((const char *)ev->data.sequence_start.tag, "tag:yaml.org,2002:seq"))
            return conv_fail(cv, &ev->start_mark, "the tag %.60s is not supported",
                             (const char *)ev->data.sequence_start.tag);
        return open_node(cv, json_array(), &ev->start_mark);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        cv->depth--;
        free(cv->stack[cv->depth].key); /* NULL: the parser pairs keys and values */
        cv->stack[cv->depth].key = NULL;
        return 0;
    default:
        return 0;
    }
}

/* The line and column of byte offset off of text (columns in bytes). */
static yaml_mark_t offset_mark(const char *text, size_t len, size_t off)
{
    yaml_mark_t m = {0};
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    m.index = off;
    return m;
}

int cli_yaml_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    conv_t *cv = xcalloc(1, sizeof *cv);
    int docs = 0, rc = 0;
    bool done = false;

    *out = NULL;
    cv->err = err;
    cv->errlen = errlen;
    if (!yaml_parser_initialize(&parser)) abort(); /* only fails for want of memory */
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_mark_t at = parser.problem_mark;
            if (parser.error == YAML_READER_ERROR) /* bad encoding: an offset, no mark */
                at = offset_mark(text, len, parser.problem_offset);
            const yaml_mark_t *m = &at;
            rc = conv_fail(cv, m, "%s%s%s%s", parser.problem ? parser.problem : "not YAML",
                           parser.context ? " (" : "", parser.context ? parser.context : "",
                           parser.context ? ")" : "");
            break;
        }
        rc = on_event(cv, &ev, &docs, &done);
        yaml_event_delete(&ev);
    }
    if (rc == 0 && !cv->root) {
        yaml_mark_t start = {0};
        rc = conv_fail(cv, &start, "the document is empty");
    }
    for (int i = 0; i < cv->depth; i++)
        free(cv->stack[i].key);
    if (rc == 0)
        *out = cv->root;
    else
        json_decref(cv->root);
    yaml_parser_delete(&parser);
    free(cv);
    return rc;
}

/* ---- files ---------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int cli_doc_parse(const char *name, const char *text, size_t len, json_t **out, char *err,
                  size_t errlen)
{
    json_error_t jerr;
    bool yaml = ends_with(name, ".yaml") || ends_with(name, ".yml");
    bool json = ends_with(name, ".json");
    if (!yaml && !json) {
        /* Neither name says: a document opening with { or [ is taken as
         * JSON (YAML's flow style too is tried when JSON refuses it). */
        size_t i = 0;
        while (i < len && strchr(" \t\r\n", text[i]))
            i++;
        json = i < len && (text[i] == '{' || text[i] == '[');
        yaml = true;
    }
    *out = NULL;
    if (json) {
        *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (*out) return 0;
        if (!yaml || cli_yaml_parse(text, len, out, err, errlen) != 0) {
            /* jansson counts the column from 0 at a line's start, and
             * has no place (-1) for some errors: people count from 1. */
            snprintf(err, errlen, "%d:%d: %s", jerr.line > 0 ? jerr.line : 1,
                     jerr.column > 0 ? jerr.column : 1, jerr.text);
            return SKED_EINVAL;
        }
        return 0;
    }
    return cli_yaml_parse(text, len, out, err, errlen);
}

int cli_read_doc(const cli_t *c, const char *file, json_t **out)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    buf_t b = BUF_INIT;
    char chunk[65536], err[512];
    size_t n;
    int rc = CLI_EXIT_OK;

    *out = NULL;
    if (!f) return cli_usage_error(c, "cannot read %s: %s", file, strerror(errno));
    buf_puts(&b, "");
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(&b, chunk, n);
        if (b.len > CLI_DOC_MAX) break;
    }
    if (ferror(f)) {
        rc = cli_usage_error(c, "cannot read %s: %s", file, strerror(errno));
    } else if (b.len > CLI_DOC_MAX) {
        rc = cli_usage_error(c, "%s is larger than %d bytes", file, CLI_DOC_MAX);
    } else if (cli_doc_parse(strcmp(file, "-") ? file : "", b.data, b.len, out, err, sizeof err) !=
               0) {
        rc = cli_usage_error(c, "%s:%s", strcmp(file, "-") ? file : "(stdin)", err);
    }
    if (f != stdin) fclose(f);
    buf_free(&b);
    return rc;
}
