/*
 * Unit tests for core/jschema, the JSON Schema subset plugin configs are
 * validated with: every keyword accepting and refusing, with the exact
 * field and sentence a user gets back in problem+json; the paths of nested
 * values; the schemas jschema_check refuses, and what it says; the depth
 * and cost limits that keep hostile schemas and configs cheap; and a
 * schema shaped like the HTTP job type's config.
 *
 * JSON in this file is written with ' for " (none of it needs a quote
 * character of its own), which load() turns back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/jschema.h"

/* Loads JSON text written with ' for "; \u0000 allowed. New reference. */
static json_t *load(const char *text)
{
    char *s = xstrdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t jerr;
    json_t *j = json_loads(s, JSON_ALLOW_NUL | JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!j) fail_msg("bad test JSON (%s): %s", jerr.text, s);
    free(s);
    return j;
}

/* One validation: schema, instance, and the fault wanted (field NULL =
 * valid). Every schema must pass jschema_check first. */
typedef struct vcase {
    const char *schema, *instance, *field, *detail;
} vcase_t;

static void run_cases(const vcase_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const vcase_t *t = &cases[i];
        json_t *s = load(t->schema), *v = load(t->instance);
        char err[256], field[128] = "x", detail[256] = "x";
        if (jschema_check(s, err, sizeof err) != 0)
            fail_msg("schema %s refused: %s", t->schema, err);
        assert_string_equal(err, "");
        int rc = jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail);
        if (!t->field && rc != 0)
            fail_msg("%s against %s: refused at '%s': %s", t->instance, t->schema, field, detail);
        if (!t->field) {
            assert_string_equal(field, "");
            assert_string_equal(detail, "");
        } else if (rc != SKED_EINVAL || strcmp(field, t->field) || strcmp(detail, t->detail)) {
            fail_msg("%s against %s:\n  got  %d '%s': %s\n  want '%s': %s", t->instance, t->schema,
                     rc, field, detail, t->field, t->detail);
        }
        json_decref(s);
        json_decref(v);
    }
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])

static void test_type(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'type':'object'}", "{}", NULL, NULL},
        {"{'type':'object'}", "[]", "config", "must be an object"},
        {"{'type':'array'}", "[1]", NULL, NULL},
        {"{'type':'array'}", "{}", "config", "must be an array"},
        {"{'type':'string'}", "''", NULL, NULL},
        {"{'type':'string'}", "1", "config", "must be a string"},
        {"{'type':'string'}", "null", "config", "must be a string"},
        {"{'type':'number'}", "1", NULL, NULL},
        {"{'type':'number'}", "1.5", NULL, NULL},
        {"{'type':'number'}", "'1'", "config", "must be a number"},
        {"{'type':'integer'}", "-7", NULL, NULL},
        {"{'type':'integer'}", "2.0", NULL, NULL}, /* a real with no fraction is an integer */
        {"{'type':'integer'}", "1e300", NULL, NULL},
        {"{'type':'integer'}", "2.5", "config", "must be an integer"},
        {"{'type':'integer'}", "true", "config", "must be an integer"},
        {"{'type':'boolean'}", "false", NULL, NULL},
        {"{'type':'boolean'}", "0", "config", "must be a boolean"},
        {"{'type':'null'}", "null", NULL, NULL},
        {"{'type':'null'}", "false", "config", "must be null"},
        {"{'type':['string','null']}", "null", NULL, NULL},
        {"{'type':['string','null']}", "'x'", NULL, NULL},
        {"{'type':['string','null']}", "3", "config", "must be a string or null"},
        {"{'type':['string','integer','null']}", "[]", "config",
         "must be a string, an integer or null"},
    };
    RUN(cases);
}

static void test_enum_const(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'enum':['GET','POST']}", "'POST'", NULL, NULL},
        {"{'enum':['GET','POST']}", "'get'", "config", "must be one of: GET, POST"},
        {"{'enum':['GET','POST']}", "['GET']", "config", "must be one of: GET, POST"},
        /* numbers by value, members in any order */
        {"{'enum':[1,'a',null]}", "1.0", NULL, NULL},
        {"{'enum':[1.5,true,{'a':1,'b':[2]}]}", "{'b':[2.0],'a':1}", NULL, NULL},
        {"{'enum':[1.5,true,{'a':1}]}", "{'a':1,'b':1}", "config",
         "must be one of: 1.5, true, {\"a\":1}"},
        {"{'enum':[0.1,'',null]}", "0", "config", "must be one of: 0.1, \"\", null"},
        {"{'const':'v1'}", "'v1'", NULL, NULL},
        {"{'const':'v1'}", "'v2'", "config", "must be v1"},
        {"{'const':10}", "10.0", NULL, NULL},
        {"{'const':10}", "10.5", "config", "must be 10"},
        {"{'const':[1,2]}", "[2,1]", "config", "must be [1,2]"},
        {"{'const':null}", "null", NULL, NULL},
        {"{'const':false}", "0", "config", "must be false"},
        /* an integer past 2^53 is not the real it rounds to */
        {"{'const':9007199254740993}", "9007199254740992.0", "config", "must be 9007199254740993"},
        {"{'const':9007199254740992}", "9007199254740992.0", NULL, NULL},
    };
    RUN(cases);
}

/* One equality for enum, const and uniqueItems (which the code computes
 * two ways, for speed): for each pair, {"const":a} and {"enum":[a]} accept
 * b exactly when {"uniqueItems":true} refuses [a,b]. */
static void test_equality(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool equal;
    } pairs[] = {
        {"1", "1.0", true},
        {"0", "-0.0", true},
        {"1e300", "1e300", true},
        {"9007199254740993", "9007199254740992.0", false},
        {"-9223372036854775808", "-9223372036854775808.0", true},
        {"9223372036854775807", "9223372036854775808.0", false},
        {"0.1", "0.1", true},
        {"0.1", "0.10000000000000002", false},
        {"1", "'1'", false},
        {"true", "1", false},
        {"null", "false", false},
        {"true", "true", true},
        {"'a'", "'a'", true},
        {"'a'", "'A'", false},
        {"'\\u00e9'", "'\\u00c3\\u00a9'", false},
        {"'a\\u0000b'", "'a\\u0000c'", false},
        {"'a\\u0000b'", "'a\\u0000b'", true},
        {"'ab'", "'a\\u0000b'", false},
        {"[1,2]", "[1,2.0]", true},
        {"[1,2]", "[2,1]", false},
        {"[1]", "[1,1]", false},
        {"[]", "{}", false},
        {"{'a':1,'b':2}", "{'b':2.0,'a':1}", true},
        {"{'a':1}", "{'a':1,'b':1}", false},
        {"{'a':null}", "{}", false},
        {"{'a':null}", "{'b':null}", false},
        {"{'a':{'b':[1,{'c':'d'}]}}", "{'a':{'b':[1.0,{'c':'d'}]}}", true},
        {"{'a':{'b':[1,{'c':'d'}]}}", "{'a':{'b':[1.0,{'c':'e'}]}}", false},
    };
    char field[128], detail[256];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        json_t *a = load(pairs[i].a), *b = load(pairs[i].b);
        json_t *schemas[] = {json_pack("{s:O}", "const", a), json_pack("{s:[O]}", "enum", a)};
        for (size_t k = 0; k < 2; k++) {
            int rc = jschema_validate(schemas[k], b, "config", field, sizeof field, detail,
                                      sizeof detail);
            if ((rc == 0) != pairs[i].equal)
                fail_msg("%s: %s vs %s: %d (%s)", k ? "enum" : "const", pairs[i].a, pairs[i].b, rc,
                         detail);
            json_decref(schemas[k]);
        }
        json_t *u = load("{'uniqueItems':true}"), *arr = json_pack("[O,O]", a, b);
        int rc = jschema_validate(u, arr, "config", field, sizeof field, detail, sizeof detail);
        if ((rc != 0) != pairs[i].equal)
            fail_msg("uniqueItems: %s vs %s: %d (%s)", pairs[i].a, pairs[i].b, rc, detail);
        json_decref(u);
        json_decref(arr);
        json_decref(a);
        json_decref(b);
    }
}

static void test_object(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'properties':{'a':{'type':'string'}}}", "{'a':'x','b':1}", NULL, NULL},
        {"{'properties':{'a':{'type':'string'}}}", "{'a':1}", "config.a", "must be a string"},
        {"{'properties':{'a':{'type':'string'}}}", "7", NULL, NULL}, /* applies to objects only */
        {"{'required':['url','method']}", "{'url':1,'method':2}", NULL, NULL},
        {"{'required':['url','method']}", "{'url':1}", "config.method", "is required"},
        {"{'required':['url']}", "'x'", NULL, NULL},
        {"{'properties':{'a':{}},'additionalProperties':false}", "{'a':1}", NULL, NULL},
        {"{'properties':{'url':{},'method':{}},'additionalProperties':false}",
         "{'url':1,'mehtod':2}", "config.mehtod",
         "is not allowed (additionalProperties is false); the known properties are: url, method"},
        {"{'additionalProperties':false}", "{'a':1}", "config.a",
         "is not allowed (additionalProperties is false)"},
        {"{'additionalProperties':false}", "{}", NULL, NULL},
        {"{'properties':{'a':{}},'additionalProperties':{'type':'integer'}}", "{'a':'x','b':2}",
         NULL, NULL},
        {"{'properties':{'a':{}},'additionalProperties':{'type':'integer'}}", "{'a':'x','b':'y'}",
         "config.b", "must be an integer"},
        {"{'patternProperties':{'^x-':{'type':'string'}},'additionalProperties':false}",
         "{'x-trace':'1'}", NULL, NULL},
        {"{'patternProperties':{'^x-':{'type':'string'}},'additionalProperties':false}",
         "{'x-trace':1}", "config.x-trace", "must be a string"},
        {"{'patternProperties':{'^x-':{'type':'string'}},'additionalProperties':false}",
         "{'trace':'1'}", "config.trace", "is not allowed (additionalProperties is false)"},
        /* a member matched by properties and a pattern must satisfy both */
        {"{'properties':{'x-a':{'maxLength':2}},'patternProperties':{'a$':{'minLength':2}}}",
         "{'x-a':'q'}", "config.x-a", "must be at least 2 characters long"},
        {"{'minProperties':1}", "{'a':1}", NULL, NULL},
        {"{'minProperties':1}", "{}", "config", "must have at least 1 property"},
        {"{'minProperties':2}", "{'a':1}", "config", "must have at least 2 properties"},
        {"{'maxProperties':1}", "{'a':1,'b':2}", "config", "must have at most 1 property"},
        {"{'maxProperties':0}", "{'a':1}", "config", "must have at most 0 properties"},
    };
    RUN(cases);

    /* A name holding a NUL (jansson's parser refuses one, json_object_setn
     * does not) matches no pattern: regexec would see only "a". */
    json_t *s = load("{'patternProperties':{'^a':true},'additionalProperties':false}");
    json_t *v = json_object();
    json_object_setn_new(v, "a\0b", 3, json_true());
    char field[128], detail[256];
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config.a");
    assert_string_equal(detail, "is not allowed (additionalProperties is false)");
    json_decref(v);
    json_decref(s);
}

static void test_array(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'items':{'type':'integer'}}", "[1,2,3]", NULL, NULL},
        {"{'items':{'type':'integer'}}", "[1,2,'3']", "config[2]", "must be an integer"},
        {"{'items':false}", "[]", NULL, NULL},
        {"{'items':false}", "[0]", "config[0]", "is not allowed"},
        {"{'minItems':1}", "[]", "config", "must have at least 1 item"},
        {"{'minItems':2.0}", "[1]", "config", "must have at least 2 items"},
        {"{'maxItems':2}", "[1,2]", NULL, NULL},
        {"{'maxItems':2}", "[1,2,3]", "config", "must have at most 2 items"},
        {"{'uniqueItems':true}", "[1,'1',[1],{'a':1},{'a':[1]}]", NULL, NULL},
        {"{'uniqueItems':true}", "[1,2,3,2]", "config[3]",
         "repeats item [1] (uniqueItems is true)"},
        {"{'uniqueItems':true}", "[1,2,3,3.0,1]", "config[3]",
         "repeats item [2] (uniqueItems is true)"},
        {"{'uniqueItems':true}", "[{'a':1,'b':2},{'b':2,'a':1}]", "config[1]",
         "repeats item [0] (uniqueItems is true)"},
        {"{'uniqueItems':false}", "[1,1]", NULL, NULL},
    };
    RUN(cases);
}

static void test_string(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'minLength':2}", "'ab'", NULL, NULL},
        {"{'minLength':2}", "'a'", "config", "must be at least 2 characters long"},
        {"{'minLength':1}", "''", "config", "must be at least 1 character long"},
        {"{'maxLength':2}", "'ab'", NULL, NULL},
        {"{'maxLength':2}", "'abc'", "config", "must be at most 2 characters long"},
        /* code points, not bytes: "é" is 2 bytes, the emoji 4 */
        {"{'maxLength':1}", "'\\u00e9'", NULL, NULL},
        {"{'maxLength':1}", "'\\ud83d\\ude00'", NULL, NULL},
        {"{'minLength':2}", "'\\ud83d\\ude00'", "config", "must be at least 2 characters long"},
        {"{'minLength':3}", "'a\\u0000b'", NULL, NULL},
        /* unanchored, as in JSON Schema */
        {"{'pattern':'b+'}", "'abbc'", NULL, NULL},
        {"{'pattern':'^b+$'}", "'abbc'", "config", "must match the pattern ^b+$"},
        {"{'pattern':'^[a-z][a-z0-9_-]*$'}", "'my_job-2'", NULL, NULL},
        {"{'pattern':'^(GET|POST)$'}", "'PUT'", "config", "must match the pattern ^(GET|POST)$"},
        {"{'pattern':'^a$'}", "'a\\u0000'", "config",
         "must match the pattern ^a$, and may not contain a NUL character"},
        {"{'pattern':'^a$','minLength':5}", "'a'", "config", "must be at least 5 characters long"},
        {"{'pattern':'^a'}", "5", NULL, NULL}, /* applies to strings only */
    };
    RUN(cases);
}

static void test_number(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'minimum':10}", "10", NULL, NULL},
        {"{'minimum':10}", "9.5", "config", "must be at least 10"},
        {"{'maximum':10}", "10.0", NULL, NULL},
        {"{'maximum':10}", "11", "config", "must be at most 10"},
        {"{'maximum':0.5}", "0.75", "config", "must be at most 0.5"},
        {"{'exclusiveMinimum':0}", "0.001", NULL, NULL},
        {"{'exclusiveMinimum':0}", "0", "config", "must be greater than 0"},
        {"{'exclusiveMaximum':100}", "99", NULL, NULL},
        {"{'exclusiveMaximum':100}", "100.0", "config", "must be less than 100"},
        /* exact between 64-bit integers and reals */
        {"{'minimum':9007199254740992.0}", "9007199254740993", NULL, NULL},
        {"{'exclusiveMinimum':9007199254740992.0}", "9007199254740992", "config",
         "must be greater than 9007199254740992"},
        {"{'maximum':-1.5}", "-1", "config", "must be at most -1.5"},
        {"{'minimum':-1.5}", "-2", "config", "must be at least -1.5"},
        {"{'maximum':1e300}", "9223372036854775807", NULL, NULL},
        {"{'minimum':-1e300}", "-9223372036854775807", NULL, NULL},
        {"{'multipleOf':5}", "15", NULL, NULL},
        {"{'multipleOf':5}", "-15", NULL, NULL},
        {"{'multipleOf':5}", "12", "config", "must be a multiple of 5"},
        {"{'multipleOf':0.1}", "0.3", NULL, NULL},
        {"{'multipleOf':0.01}", "19.99", NULL, NULL},
        {"{'multipleOf':0.1}", "0.35", "config", "must be a multiple of 0.1"},
        {"{'multipleOf':1}", "1.0000000001", "config", "must be a multiple of 1"},
        {"{'multipleOf':2.5}", "10", NULL, NULL},
        {"{'minimum':1}", "'0'", NULL, NULL}, /* applies to numbers only */
    };
    RUN(cases);
}

static void test_combinators(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"true", "{'anything':[1]}", NULL, NULL},
        {"{}", "null", NULL, NULL},
        {"false", "1", "config", "is not allowed"},
        {"{'allOf':[{'type':'integer'},{'minimum':3}]}", "3", NULL, NULL},
        {"{'allOf':[{'type':'integer'},{'minimum':3}]}", "2", "config", "must be at least 3"},
        {"{'anyOf':[{'type':'string'},{'type':'integer'}]}", "5", NULL, NULL},
        {"{'anyOf':[{'type':'string'},{'type':'integer'}]}", "5.5", "config",
         "must match at least one of the schemas in anyOf"},
        /* the branch that got deepest tells what to fix */
        {"{'anyOf':[{'type':'string'},{'type':'object','properties':{'secret':{'type':'string'}}}]"
         "}",
         "{'secret':1}", "config.secret", "must be a string"},
        {"{'anyOf':[{'type':'string'},{'required':['secret']}]}", "{}", "config.secret",
         "is required"},
        {"{'oneOf':[{'type':'integer'},{'type':'string'}]}", "'a'", NULL, NULL},
        {"{'oneOf':[{'type':'integer'},{'minimum':0}]}", "-1", NULL, NULL},
        {"{'oneOf':[{'type':'integer'},{'minimum':0}]}", "1", "config",
         "must match exactly one of the schemas in oneOf, but matches oneOf[0] and oneOf[1]"},
        {"{'oneOf':[{'type':'integer'},{'type':'string'}]}", "[]", "config",
         "must match exactly one of the schemas in oneOf"},
        {"{'not':{'type':'null'}}", "0", NULL, NULL},
        {"{'not':{'type':'null'}}", "null", "config", "must not match the schema in not"},
        {"{'not':{'required':['cwd']}}", "{'cwd':'/'}", "config",
         "must not match the schema in not"},
        /* keyword order: type, const/enum, the type's own, then combinators */
        {"{'type':'string','minLength':3,'not':{'const':'ab'}}", "'ab'", "config",
         "must be at least 3 characters long"},
    };
    RUN(cases);
}

static void test_paths(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {"{'properties':{'headers':{'additionalProperties':{'type':'string'}}}}",
         "{'headers':{'Accept':1}}", "config.headers.Accept", "must be a string"},
        {"{'properties':{'items':{'items':{'maxLength':1}}}}", "{'items':['a','b','cc']}",
         "config.items[2]", "must be at most 1 character long"},
        {"{'items':{'items':{'required':['k']}}}", "[[{'k':1}],[{'k':2},{}]]", "config[1][1].k",
         "is required"},
        {"{'properties':{'a':{'properties':{'b':{'properties':{'c':false}}}}}}",
         "{'a':{'b':{'c':0}}}", "config.a.b.c", "is not allowed"},
        /* the first bad member in the document's order */
        {"{'additionalProperties':{'type':'integer'}}", "{'z':1,'y':'x','a':'x'}", "config.y",
         "must be an integer"},
    };
    RUN(cases);

    /* base "" names members without a leading dot; the root is "" */
    json_t *s = load("{'properties':{'a':{'items':{'type':'string'}}},'maxProperties':1}");
    char field[128], detail[256];
    json_t *v = load("{'a':['x',2]}");
    assert_int_equal(jschema_validate(s, v, "", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "a[1]");
    json_decref(v);
    v = load("{'a':[],'b':1}");
    assert_int_equal(jschema_validate(s, v, "", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "");
    assert_string_equal(detail, "must have at most 1 property");
    json_decref(v);
    json_decref(s);
}

/* Small buffers clip, and a clip never leaves half a character. */
static void test_clipping(void **state)
{
    (void)state;
    json_t *s = load("{'additionalProperties':false}");
    json_t *v = load("{'\\u00e9\\u00e9\\u00e9':1}");
    char field[11], detail[8];
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config.\xc3\xa9?"); /* "config.éé" clipped inside the second é */
    assert_string_equal(detail, "is not ");
    char err[12];
    json_decref(s);
    s = load("{'properties':{'a':{'minLength':-1}}}");
    assert_int_equal(jschema_check(s, err, sizeof err), SKED_EINVAL);
    assert_string_equal(err, "properties.");
    json_decref(s);
    json_decref(v);
}

/* jschema_check: schema text -> err wanted. */
static void test_check_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *schema, *err;
    } cases[] = {
        {"'object'", "the schema must be an object or a boolean"},
        {"null", "the schema must be an object or a boolean"},
        {"{'minLen':1}",
         "minLen: is not a keyword sked supports, so it would be ignored; docs/plugins.md lists "
         "the subset"},
        {"{'properties':{'url':{'$ref':'#/$defs/url'}}}",
         "properties.url.$ref: is not supported: write the subschema in place (sked schemas "
         "cannot refer to other schemas)"},
        {"{'$defs':{}}", "$defs: is not supported: sked schemas cannot refer to other schemas "
                         "($ref), so write each subschema in place"},
        {"{'format':'uri'}", "format: is not supported: sked does not check formats; use "
                             "\"pattern\""},
        {"{'prefixItems':[{}]}",
         "prefixItems: is not supported: give \"items\" one schema for every element"},
        {"{'items':[{}]}", "items: must be one schema (an object or a boolean): the array form of "
                           "older drafts is \"prefixItems\" in draft 2020-12, which sked does "
                           "not support"},
        {"{'type':'text'}", "type: must be one of object, array, string, number, integer, "
                            "boolean, null, or a non-empty array of them"},
        {"{'type':[]}", "type: must be one of object, array, string, number, integer, boolean, "
                        "null, or a non-empty array of them"},
        {"{'type':['string',1]}",
         "type[1]: must be one of object, array, string, number, integer, boolean, null"},
        {"{'type':['string','null','string']}", "type[2]: repeats type[0]"},
        {"{'enum':[]}", "enum: must be a non-empty array of the allowed values"},
        {"{'enum':'GET'}", "enum: must be a non-empty array of the allowed values"},
        {"{'properties':[]}", "properties: must be an object of schemas"},
        {"{'properties':{'a':1}}", "properties.a: must be an object or a boolean"},
        {"{'patternProperties':{'(':{}}}",
         "patternProperties.(: is not a valid POSIX extended regular expression (Unmatched ( or "
         "\\()"},
        {"{'additionalProperties':'no'}", "additionalProperties: must be an object or a boolean"},
        {"{'required':'url'}", "required: must be an array of property names"},
        {"{'required':['url',3]}", "required[1]: must be a string"},
        {"{'required':['url','url']}", "required[1]: repeats required[0]"},
        {"{'minLength':-1}", "minLength: must be a non-negative integer"},
        {"{'maxItems':1.5}", "maxItems: must be a non-negative integer"},
        {"{'minProperties':'1'}", "minProperties: must be a non-negative integer"},
        {"{'minimum':'0'}", "minimum: must be a number"},
        {"{'exclusiveMinimum':true}", "exclusiveMinimum: must be a number: in draft 2020-12 it is "
                                      "the bound itself (\"exclusiveMinimum\": 0), not a flag "
                                      "beside \"minimum\""},
        {"{'exclusiveMaximum':false}", "exclusiveMaximum: must be a number: in draft 2020-12 it "
                                       "is the bound itself (\"exclusiveMaximum\": 0), not a flag "
                                       "beside \"maximum\""},
        {"{'multipleOf':0}", "multipleOf: must be a number greater than 0"},
        {"{'multipleOf':-2}", "multipleOf: must be a number greater than 0"},
        {"{'uniqueItems':1}", "uniqueItems: must be true or false"},
        {"{'pattern':3}", "pattern: must be a string"},
        {"{'pattern':'a[b'}", "pattern: is not a valid POSIX extended regular expression "
                              "(Unmatched [, [^, [:, [., or [=)"},
        {"{'pattern':'a\\u0000'}", "pattern: must not contain a NUL character"},
        {"{'pattern':'(a)\\\\1'}", "pattern: must not use back-references such as \\1 (they can "
                                   "take exponential time to match)"},
        {"{'pattern':'(a{100}){100}'}",
         "pattern: is too costly to match: regcomp would build about 1.01e+04 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
        {"{'pattern':'a{1001}'}",
         "pattern: is too costly to match: regcomp would build about 1e+03 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
        {"{'pattern':'a{2,}{2,}{2,}{2,}{2,}{2,}{2,}'}",
         "pattern: is too costly to match: regcomp would build about 2.19e+03 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
        /* operators are nodes too: regcomp took 460 MB for this one */
        {"{'pattern':'0??????????{1000}'}",
         "pattern: is too costly to match: regcomp would build about 1.1e+04 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
        /* glibc takes a ')' closing no group as a literal, and repeats it */
        {"{'pattern':'a)++++++++++'}",
         "pattern: is too costly to match: regcomp would build about 3.07e+03 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
        {"{'pattern':'((a{,10}){,10}){,11}'}",
         "pattern: is too costly to match: regcomp would build about 1.22e+03 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
    /* parts matching "" repeated: regcomp took 190 ms (seconds under ASan)
     * for '()*{400}', and 70 ms for a pattern of 190 nodes CI's fuzzer
     * found, once the node count had passed them */
#define NULLREP                                                                                    \
    "pattern: repeats a part that can match the empty string (such as ()*, (a*b*)*, (a?)+ or "     \
    "(b|){3}), which regcomp takes long to compile; make the repeated part match at least one "    \
    "character: (a|b)* for (a|b?)*"
        {"{'pattern':'()*{100}'}", NULLREP},
        {"{'pattern':'(a*b*)*'}", NULLREP},
        {"{'pattern':'x(y?)+'}", NULLREP},
        {"{'pattern':'(b|){3}'}", NULLREP},
        {"{'pattern':'(x|y?)*'}", NULLREP},
        {"{'pattern':'a?*'}", NULLREP},
        {"{'pattern':'^*'}", NULLREP},
        {"{'pattern':'0??????????{90}'}", NULLREP},
        {"{'pattern':'~+??????????J?????++'}", NULLREP},
        {"{'pattern':'(a?)?{400}'}",
         "pattern: is too costly to match: regcomp would build about 1.6e+03 nodes from it (at "
         "most 1000); prefer * and + to large {m,n} bounds, and nest fewer of them"},
        /* each pattern is cheap enough; all of them together are not */
        {"{'properties':{'a':{'pattern':'a{0,999}'},'b':{'pattern':'a{0,999}'},"
         "'c':{'pattern':'a{0,999}'}}}",
         "properties.c.pattern: makes the schema's patterns together too costly to compile "
         "(about 6.29e+04 units of work, at most 50000); use fewer or simpler patterns"},
        {"{'allOf':{}}", "allOf: must be a non-empty array of schemas"},
        {"{'anyOf':[]}", "anyOf: must be a non-empty array of schemas"},
        {"{'oneOf':[{},{'not':{'if':{}}}]}",
         "oneOf[1].not.if: is not a keyword sked supports, so it would be ignored; docs/plugins.md "
         "lists the subset"},
        {"{'not':3}", "not: must be an object or a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *s = load(cases[i].schema);
        char err[512] = "x";
        int rc = jschema_check(s, err, sizeof err);
        if (rc != SKED_EINVAL || strcmp(err, cases[i].err))
            fail_msg("%s:\n  got  %d %s\n  want %s", cases[i].schema, rc, err, cases[i].err);
        json_decref(s);
    }

    /* What the check lets through: annotations (never looked at), and the
     * patterns people write. */
    static const char *const good[] = {
        "{'title':'t','description':'d','default':{'$ref':1},'examples':[1],'$comment':'c',"
        "'$schema':'https://json-schema.org/draft/2020-12/schema','deprecated':false,"
        "'readOnly':true,'writeOnly':false}",
        "{'pattern':'^[a-z0-9-]{1,63}(\\\\.[a-z0-9-]{1,63})*$'}",
        "{'pattern':'^[[:alpha:]]+[]a-]{2}\\\\{5\\\\}$'}",
        "{'pattern':'a{1000}'}",
        "{'pattern':'0??????????$'}",
        "{'pattern':'^([a-z0-9]+(-[a-z0-9]+)*)?$'}",
        "{'pattern':'^[^@]{1,64}@[^@]{1,255}$'}",
        "{'pattern':'^(-?[0-9]+,)*(a*b)+(x?y)*$'}",
        "{'pattern':'((a)?)?'}",
        "{'properties':{'a':{'pattern':'a{0,999}'},'b':{'pattern':'a{0,999}'}}}",
        "{'type':['object','null'],'minItems':0,'maxLength':3.0,'minimum':-0.5}",
        "true",
        "false",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *s = load(good[i]);
        char err[512];
        if (jschema_check(s, err, sizeof err) != 0) fail_msg("%s refused: %s", good[i], err);
        json_decref(s);
    }
}

/* levels nested schemas or arrays: {'items':{'items':...{}}}, [[...[]]]. */
static json_t *nested(int levels, bool schema)
{
    buf_t b = BUF_INIT;
    for (int i = 0; i < levels; i++)
        buf_puts(&b, schema ? (i + 1 < levels ? "{'items':" : "{") : "[");
    for (int i = 0; i < levels; i++)
        buf_puts(&b, schema ? "}" : "]");
    json_t *j = load(b.data);
    buf_free(&b);
    return j;
}

static void test_depth(void **state)
{
    (void)state;
    char err[1024], field[128], detail[256];
    json_t *s = nested(JSCHEMA_DEPTH_MAX, true);
    assert_int_equal(jschema_check(s, err, sizeof err), 0);
    json_decref(s);
    s = nested(JSCHEMA_DEPTH_MAX + 1, true);
    assert_int_equal(jschema_check(s, err, sizeof err), SKED_EINVAL);
    assert_non_null(strstr(err, "items.items.items"));
    if (!strstr(err, ": nests deeper than 64 levels of schemas")) fail_msg("err: %s", err);
    json_decref(s);

    /* enum and const values count too */
    buf_t b = BUF_INIT;
    buf_puts(&b, "{\"const\":");
    for (int i = 0; i < 65; i++)
        buf_puts(&b, "[");
    for (int i = 0; i < 65; i++)
        buf_puts(&b, "]");
    buf_puts(&b, "}");
    s = load(b.data);
    buf_free(&b);
    assert_int_equal(jschema_check(s, err, sizeof err), SKED_EINVAL);
    assert_string_equal(err, "const: nests deeper than 64 levels");
    json_decref(s);

    /* the instance: refused even by the schema that accepts anything */
    s = load("true");
    json_t *v = nested(JSCHEMA_DEPTH_MAX, false);
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     0);
    json_decref(v);
    v = nested(JSCHEMA_DEPTH_MAX + 1, false);
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config");
    assert_string_equal(detail, "nests deeper than 64 levels of arrays and objects");
    json_decref(v);
    json_decref(s);
}

/* Matching is metered: a string too long for its pattern is refused at
 * once, rather than matched for seconds; the same pattern on many short
 * strings is compiled once and stays within the budget. */
static void test_match_budget(void **state)
{
    (void)state;
    char field[128], detail[256], err[256];
    json_t *s = load("{'properties':{'a':{'pattern':'[a-z]{1,999}b'}}}");
    assert_int_equal(jschema_check(s, err, sizeof err), 0);
    size_t n = JSCHEMA_MATCH_BUDGET / 1000; /* (n + 1) x 1000 nodes: just over the budget */
    char *big = xmalloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    json_t *v = json_pack("{s:s}", "a", big);
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config.a");
    assert_string_equal(detail,
                        "is too long to match against the pattern [a-z]{1,999}b within sked's "
                        "limits");
    json_decref(v);
    big[n / 2] = '\0'; /* half as long: matched, and found wanting */
    v = json_pack("{s:s}", "a", big);
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(detail, "must match the pattern [a-z]{1,999}b");
    json_decref(v);
    free(big);
    json_decref(s);

    s = load("{'items':{'pattern':'^[a-z]+$'}}");
    v = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(v, json_string("abcdefghij"));
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     0);
    json_array_append_new(v, json_string("abc1"));
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config[20000]");
    json_decref(v);
    json_decref(s);
}

/* Many patterns over many elements: each element is matched against its
 * own field's pattern (each compiled once per validation, not per element). */
static void test_many_patterns(void **state)
{
    (void)state;
    json_t *props = json_object(), *v = json_array();
    for (int k = 0; k < 12; k++) {
        char key[8], pat[16];
        snprintf(key, sizeof key, "k%d", k);
        snprintf(pat, sizeof pat, "^a%d$", k);
        json_object_set_new(props, key, json_pack("{s:s}", "pattern", pat));
    }
    json_t *s = json_pack("{s:{s:o}}", "items", "properties", props);
    char err[256], field[128], detail[256];
    assert_int_equal(jschema_check(s, err, sizeof err), 0);
    for (int i = 0; i < 5000; i++) {
        json_t *o = json_object();
        for (int k = 0; k < 12; k++) {
            char key[8], val[8];
            snprintf(key, sizeof key, "k%d", k);
            snprintf(val, sizeof val, "a%d", i == 4321 && k == 7 ? 8 : k);
            json_object_set_new(o, key, json_string(val));
        }
        json_array_append_new(v, o);
    }
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config[4321].k7");
    assert_string_equal(detail, "must match the pattern ^a7$");
    json_decref(v);
    json_decref(s);
}

/* uniqueItems on a long array sorts, rather than comparing every pair. */
static void test_unique_large(void **state)
{
    (void)state;
    json_t *s = load("{'uniqueItems':true}");
    json_t *v = json_array();
    for (int i = 0; i < 200000; i++)
        json_array_append_new(v, json_pack("{s:i,s:i}", "a", 1, "b", i));
    char field[128], detail[256];
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     0);
    json_array_append_new(v, json_pack("{s:i,s:f}", "b", 7, "a", 1.0));
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_string_equal(field, "config[200000]");
    assert_string_equal(detail, "repeats item [7] (uniqueItems is true)");
    json_decref(v);
    json_decref(s);
}

/* A schema like the one the built-in http type declares for its config. */
#define HTTP_SCHEMA                                                                                \
    "{'$schema':'https://json-schema.org/draft/2020-12/schema','title':'http job config',"         \
    "'type':'object','required':['url'],'additionalProperties':false,'properties':{"               \
    "'method':{'enum':['GET','HEAD','POST','PUT','PATCH','DELETE'],'default':'GET'},"              \
    "'url':{'type':'string','pattern':'^https?://[^[:space:]]+$','maxLength':2048},"               \
    "'headers':{'type':'object','maxProperties':64,'additionalProperties':{'anyOf':["              \
    "{'type':'string','maxLength':8192},"                                                          \
    "{'type':'object','required':['secret'],'additionalProperties':false,"                         \
    "'properties':{'secret':{'type':'string','minLength':1}}}]}},"                                 \
    "'body':{'type':'string'},"                                                                    \
    "'expect_status':{'type':'array','minItems':1,'uniqueItems':true,"                             \
    "'items':{'type':'integer','minimum':100,'maximum':599}},"                                     \
    "'timeout':{'type':'string','pattern':'^[0-9]+(ms|s|m|h)$'},"                                  \
    "'max_redirects':{'type':'integer','minimum':0,'maximum':20}}}"

static void test_http_like_schema(void **state)
{
    (void)state;
    static const vcase_t cases[] = {
        {HTTP_SCHEMA, "{'url':'https://example.com/hook'}", NULL, NULL},
        {HTTP_SCHEMA,
         "{'method':'POST','url':'http://10.0.0.1:8080/x?y=1','headers':{'Accept':'text/plain',"
         "'Authorization':{'secret':'t0ken'}},'body':'{}','expect_status':[200,201,204],"
         "'timeout':'30s','max_redirects':5}",
         NULL, NULL},
        {HTTP_SCHEMA, "{}", "config.url", "is required"},
        {HTTP_SCHEMA, "{'url':'ftp://example.com'}", "config.url",
         "must match the pattern ^https?://[^[:space:]]+$"},
        {HTTP_SCHEMA, "{'url':'https://x','method':'get'}", "config.method",
         "must be one of: GET, HEAD, POST, PUT, PATCH, DELETE"},
        {HTTP_SCHEMA, "{'url':'https://x','headers':{'Accept':7}}", "config.headers.Accept",
         "must match at least one of the schemas in anyOf"},
        {HTTP_SCHEMA, "{'url':'https://x','headers':{'Authorization':{'secret':''}}}",
         "config.headers.Authorization.secret", "must be at least 1 character long"},
        {HTTP_SCHEMA, "{'url':'https://x','headers':{'Authorization':{'secret':'a','x':1}}}",
         "config.headers.Authorization.x",
         "is not allowed (additionalProperties is false); the known properties are: secret"},
        {HTTP_SCHEMA, "{'url':'https://x','expect_status':[200,99]}", "config.expect_status[1]",
         "must be at least 100"},
        {HTTP_SCHEMA, "{'url':'https://x','expect_status':[200,200]}", "config.expect_status[1]",
         "repeats item [0] (uniqueItems is true)"},
        {HTTP_SCHEMA, "{'url':'https://x','expect_status':[]}", "config.expect_status",
         "must have at least 1 item"},
        {HTTP_SCHEMA, "{'url':'https://x','timeout':'30 s'}", "config.timeout",
         "must match the pattern ^[0-9]+(ms|s|m|h)$"},
        {HTTP_SCHEMA, "{'url':'https://x','max_redirects':20.5}", "config.max_redirects",
         "must be an integer"},
        {HTTP_SCHEMA, "{'url':'https://x','command':['sh']}", "config.command",
         "is not allowed (additionalProperties is false); the known properties are: method, url, "
         "headers, body, expect_status, timeout, max_redirects"},
        {HTTP_SCHEMA, "[]", "config", "must be an object"},
    };
    RUN(cases);
}

/* A detail never quotes the instance: configs are validated with their
 * secrets resolved, and the answer must not echo one. */
static void test_no_echo(void **state)
{
    (void)state;
    static const char *const schemas[] = {
        "{'maxLength':3}",
        "{'pattern':'^x'}",
        "{'enum':['a','b']}",
        "{'const':'a'}",
        "{'type':'integer'}",
        "{'not':{'type':'string'}}",
        "{'anyOf':[{'maxLength':1},{'pattern':'^x'}]}",
        "{'oneOf':[{'type':'string'},{'minLength':1}]}",
    };
    char field[128], detail[256];
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        json_t *s = load(schemas[i]), *v = json_string("hunter2-s3cret");
        assert_int_equal(
            jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
            SKED_EINVAL);
        if (strstr(detail, "s3cret") || strstr(field, "s3cret"))
            fail_msg("%s echoes the value: %s: %s", schemas[i], field, detail);
        json_decref(s);
        json_decref(v);
    }
    json_t *s = load("{'uniqueItems':true}"), *v = load("['hunter2-s3cret','hunter2-s3cret']");
    assert_int_equal(jschema_validate(s, v, "config", field, sizeof field, detail, sizeof detail),
                     SKED_EINVAL);
    assert_null(strstr(detail, "s3cret"));
    json_decref(s);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),           cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_equality),       cmocka_unit_test(test_object),
        cmocka_unit_test(test_array),          cmocka_unit_test(test_string),
        cmocka_unit_test(test_number),         cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_paths),          cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_check_refusals), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_match_budget),   cmocka_unit_test(test_many_patterns),
        cmocka_unit_test(test_unique_large),   cmocka_unit_test(test_http_like_schema),
        cmocka_unit_test(test_no_echo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
