/*
 * libFuzzer target for the JSON Schema subset (src/core/jschema.h) that
 * plugin manifests declare and servers validate job configs with. The
 * input is two JSON texts, one after the other: the schema, then the
 * instance (`{"type":"string"} "abc"`); json_loadb with
 * JSON_DISABLE_EOF_CHECK finds where the first one ends.
 *
 * Properties, beyond "no crash, no leak, no undefined behaviour, no stack
 * overflow, no input taking seconds":
 *  - jschema_check either accepts with an empty err, or refuses with a
 *    sentence that is valid UTF-8;
 *  - for an accepted schema, jschema_validate either accepts with field and
 *    detail empty, or refuses with a detail and a field that starts with
 *    the base, both valid UTF-8, also when clipped to small buffers;
 *  - it is deterministic, and agrees with the combinators: {"allOf":[S]}
 *    gives S's very answer, {"not":S} the opposite one.
 */
#include "common/error.h"
#include "core/jschema.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>

static void check_text(const char *s, size_t cap, const char *what)
{
    if (strnlen(s, cap) == cap) fuzz_fail("%s is unterminated", what);
    json_t *j = json_string(s); /* NULL unless valid UTF-8 */
    if (!j) fuzz_fail("%s is not UTF-8: %s", what, s);
    json_decref(j);
}

typedef struct answer {
    int rc;
    char field[128], detail[256];
} answer_t;

static void validate(const json_t *schema, const json_t *v, answer_t *a)
{
    a->rc = jschema_validate(schema, v, "config", a->field, sizeof a->field, a->detail,
                             sizeof a->detail);
    check_text(a->field, sizeof a->field, "field");
    check_text(a->detail, sizeof a->detail, "detail");
    if (a->rc == 0 && (a->field[0] || a->detail[0]))
        fuzz_fail("accepted, yet field '%s' detail '%s'", a->field, a->detail);
    if (a->rc != 0 && a->rc != SKED_EINVAL) fuzz_fail("validate returned %d", a->rc);
    if (a->rc != 0 && (!a->detail[0] || strncmp(a->field, "config", 6) != 0))
        fuzz_fail("refused with field '%s' detail '%s'", a->field, a->detail);
}

/* schema wrapped as {key: [schema]} or {key: schema}, if that still
 * passes the check (it nests one level deeper). New reference or NULL. */
static json_t *wrap(const char *key, json_t *schema, bool list)
{
    json_t *w = list ? json_pack("{s:[O]}", key, schema) : json_pack("{s:O}", key, schema);
    char err[256];
    if (jschema_check(w, err, sizeof err) == 0) return w;
    json_decref(w);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384) return 0;
    json_error_t jerr;
    json_t *schema =
        json_loadb((const char *)data, size,
                   JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
    if (!schema) return 0;
    size_t used = (size_t)jerr.position < size ? (size_t)jerr.position : size;
    json_t *v = json_loadb((const char *)data + used, size - used,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);

    char err[512];
    int rc = jschema_check(schema, err, sizeof err);
    check_text(err, sizeof err, "check err");
    if (rc == 0 && err[0]) fuzz_fail("check accepted, yet err '%s'", err);
    if (rc != 0 && (rc != SKED_EINVAL || !err[0]))
        fuzz_fail("check refused (%d) without a reason", rc);
    char tiny[5]; /* clipping keeps UTF-8 */
    if (jschema_check(schema, tiny, sizeof tiny) != rc) fuzz_fail("check is not deterministic");
    check_text(tiny, sizeof tiny, "clipped check err");

    if (rc == 0 && v) {
        answer_t a, b;
        validate(schema, v, &a);
        validate(schema, v, &b);
        if (a.rc != b.rc || strcmp(a.field, b.field) || strcmp(a.detail, b.detail))
            fuzz_fail("validate is not deterministic");
        char f[9], d[9]; /* clipping keeps UTF-8 */
        if (jschema_validate(schema, v, "config", f, sizeof f, d, sizeof d) != a.rc)
            fuzz_fail("validate with small buffers answers otherwise");
        check_text(f, sizeof f, "clipped field");
        check_text(d, sizeof d, "clipped detail");

        json_t *w = wrap("allOf", schema, true);
        if (w) {
            validate(w, v, &b);
            if (a.rc != b.rc || strcmp(a.field, b.field) || strcmp(a.detail, b.detail))
                fuzz_fail("allOf:[S] answers '%s: %s', S '%s: %s'", b.field, b.detail, a.field,
                          a.detail);
            json_decref(w);
        }
        if ((w = wrap("not", schema, false))) {
            validate(w, v, &b);
            /* An instance nested too deep is refused before any schema. */
            bool deep = a.rc && !strcmp(a.detail, "nests deeper than 64 levels of arrays and "
                                                  "objects");
            if (!deep && (a.rc == 0) == (b.rc == 0))
                fuzz_fail("not:S and S agree (%d): %s", a.rc, a.detail);
            json_decref(w);
        }
    }
    json_decref(v);
    json_decref(schema);
    return 0;
}
