/*
 * Unit tests for core/httpspec: the config of "http" jobs. What a config
 * becomes (defaults, every member), that the stored form (secret header
 * values wrapped) and the resolved form the plugin gets both pass, and
 * every refusal with the exact field name the API puts in problem+json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "core/httpspec.h"

/* Loads JSON text; \u0000 is allowed so that the NUL checks can be reached. */
static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!j) fail_msg("bad test JSON (%s): %s", jerr.text, text);
    return j;
}

/* Parses text, which must be accepted by both functions; caller frees *out. */
static void parse_ok(const char *text, httpspec_t *out)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    if (httpspec_check(doc, &err) != 0)
        fail_msg("check refused %s: field '%s': %s", text, err.field, err.detail);
    if (httpspec_parse(doc, out, &err) != 0)
        fail_msg("parse refused %s: field '%s': %s", text, err.field, err.detail);
    json_decref(doc);
}

/* text must be refused by check and parse alike, naming field; the detail
 * must start with the field and contain want (when not NULL). */
static void refused(const char *text, const char *field, const char *want)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    memset(&err, 0, sizeof err);
    if (httpspec_check(doc, &err) != SKED_EINVAL) fail_msg("check accepted %s", text);
    if (strcmp(err.field, field))
        fail_msg("%s: field '%s', want '%s' (%s)", text, err.field, field, err.detail);
    if (want && !strstr(err.detail, want))
        fail_msg("%s: detail '%s' lacks '%s'", text, err.detail, want);
    if (strncmp(err.detail, field, strlen(field)))
        fail_msg("%s: detail '%s' does not name %s", text, err.detail, field);
    httpspec_t s;
    memset(&s, 0x55, sizeof s); /* parse must leave it empty, whatever it held */
    jobspec_error_t err2;
    if (httpspec_parse(doc, &s, &err2) != SKED_EINVAL) fail_msg("parse accepted %s", text);
    assert_string_equal(err2.field, err.field);
    assert_string_equal(err2.detail, err.detail);
    static const httpspec_t zero;
    assert_memory_equal(&s, &zero, sizeof s);
    httpspec_free(&s);
    json_decref(doc);
}

static void test_defaults(void **state)
{
    httpspec_t s;
    parse_ok("{\"url\":\"https://example.com/x\"}", &s);
    assert_string_equal(s.method, "GET");
    assert_string_equal(s.url, "https://example.com/x");
    assert_int_equal(s.nheaders, 0);
    assert_null(s.body);
    assert_int_equal(s.nexpect, 0);
    assert_int_equal(s.timeout_ms, 30000);
    assert_int_equal(s.max_redirects, 5);
    assert_int_equal(s.max_response, 65536);
    /* Default expectation: any 2xx and nothing else. */
    assert_true(httpspec_expected(&s, 200));
    assert_true(httpspec_expected(&s, 204));
    assert_true(httpspec_expected(&s, 299));
    assert_false(httpspec_expected(&s, 199));
    assert_false(httpspec_expected(&s, 300));
    assert_false(httpspec_expected(&s, 503));
    httpspec_free(&s);
    static const httpspec_t zero;
    assert_memory_equal(&s, &zero, sizeof s);
    httpspec_free(NULL);
}

static void test_every_member(void **state)
{
    httpspec_t s;
    parse_ok("{\"method\":\"POST\",\"url\":\"http://user:pw@[::1]:8080/a?b=c#d\","
             "\"headers\":{\"Content-Type\":\"application/json\",\"X-Empty\":\"\","
             "\"Authorization\":{\"secret\":\"Bearer s3cret\"}},"
             "\"body\":\"{\\\"k\\\": 1}\",\"expect\":[200,201,409],\"timeout\":\"1m30s\","
             "\"max_redirects\":0,\"max_response\":0}",
             &s);
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.url, "http://user:pw@[::1]:8080/a?b=c#d");
    assert_int_equal(s.nheaders, 3);
    assert_string_equal(s.headers[0].name, "Content-Type");
    assert_string_equal(s.headers[0].value, "application/json");
    assert_false(s.headers[0].secret);
    assert_string_equal(s.headers[1].name, "X-Empty");
    assert_string_equal(s.headers[1].value, "");
    assert_string_equal(s.headers[2].name, "Authorization");
    assert_string_equal(s.headers[2].value, "Bearer s3cret");
    assert_true(s.headers[2].secret);
    assert_string_equal(s.body, "{\"k\": 1}");
    assert_int_equal(s.body_len, 8);
    assert_int_equal(s.nexpect, 3);
    assert_true(httpspec_expected(&s, 409));
    assert_true(httpspec_expected(&s, 201));
    assert_false(httpspec_expected(&s, 204)); /* a list replaces "any 2xx" */
    assert_int_equal(s.timeout_ms, 90000);
    assert_int_equal(s.max_redirects, 0);
    assert_int_equal(s.max_response, 0);
    httpspec_free(&s);

    /* The resolved form (what the plugin gets) of the same header. */
    parse_ok("{\"url\":\"http://h\",\"headers\":{\"Authorization\":\"Bearer s3cret\"}}", &s);
    assert_string_equal(s.headers[0].value, "Bearer s3cret");
    assert_false(s.headers[0].secret);
    httpspec_free(&s);

    static const char *const ms[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char *t = xasprintf("{\"method\":\"%s\",\"url\":\"http://h\"}", ms[i]);
        parse_ok(t, &s);
        assert_string_equal(s.method, ms[i]);
        httpspec_free(&s);
        free(t);
    }
}

static void test_limits_accepted(void **state)
{
    httpspec_t s;
    parse_ok("{\"url\":\"HTTPS://h.example:65535\",\"max_redirects\":20,"
             "\"max_response\":1048576,\"expect\":[100,599],\"timeout\":\"1ms\"}",
             &s);
    assert_int_equal(s.max_redirects, 20);
    assert_int_equal(s.max_response, 1048576);
    assert_int_equal(s.timeout_ms, 1);
    httpspec_free(&s);

    /* 8 KiB of URL, 1 MiB of body and 64 headers are the most. */
    char *url = xmalloc(HTTPSPEC_URL_MAX + 1);
    memcpy(url, "http://h/", 9);
    memset(url + 9, 'a', HTTPSPEC_URL_MAX - 9);
    url[HTTPSPEC_URL_MAX] = '\0';
    json_t *doc = json_pack("{s:s}", "url", url);
    jobspec_error_t err;
    assert_int_equal(httpspec_check(doc, &err), 0);
    char *body = xmalloc(HTTPSPEC_BODY_MAX + 1);
    memset(body, 'b', HTTPSPEC_BODY_MAX);
    body[HTTPSPEC_BODY_MAX] = '\0';
    json_object_set_new(doc, "method", json_string("PUT"));
    json_object_set_new(doc, "body", json_string(body));
    json_t *h = json_object();
    for (int i = 0; i < HTTPSPEC_HEADERS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "X-H%d", i);
        json_object_set_new(h, name, json_string("v"));
    }
    json_object_set_new(doc, "headers", h);
    assert_int_equal(httpspec_parse(doc, &s, &err), 0);
    assert_int_equal(s.body_len, HTTPSPEC_BODY_MAX);
    assert_int_equal(s.nheaders, HTTPSPEC_HEADERS_MAX);
    httpspec_free(&s);

    /* One more of each is refused, naming the member. */
    url[HTTPSPEC_URL_MAX - 1] = '\0';
    char *longer = xasprintf("%sbc", url);
    json_object_set_new(doc, "url", json_string(longer));
    assert_int_equal(httpspec_check(doc, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config.url");
    assert_non_null(strstr(err.detail, "at most 8192 bytes"));
    json_object_set_new(doc, "url", json_string("http://h"));
    json_object_set_new(h, "X-One-More", json_string("v"));
    assert_int_equal(httpspec_check(doc, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config.headers");
    json_object_del(h, "X-One-More");
    char *bigger = xasprintf("%s!", body);
    json_object_set_new(doc, "body", json_string(bigger));
    assert_int_equal(httpspec_check(doc, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config.body");
    free(bigger);
    free(longer);
    free(body);
    free(url);
    json_decref(doc);
}

static void test_refused_shape(void **state)
{
    refused("[]", "config", "must be an object");
    refused("\"http://h\"", "config", "must be an object");
    refused("{}", "config.url", "is required");
    refused("{\"url\":\"http://h\",\"uri\":\"x\"}", "config.uri", "unknown field");
    refused("{\"url\":\"http://h\",\"method\":null}", "config.method", "null");
    refused("{\"url\":null}", "config.url", "null");
    refused("{\"url\":\"http://h\",\"headers\":null}", "config.headers", "null");
}

static void test_refused_method(void **state)
{
    refused("{\"url\":\"http://h\",\"method\":\"get\"}", "config.method", "capitals");
    refused("{\"url\":\"http://h\",\"method\":\"TRACE\"}", "config.method", "must be one of");
    refused("{\"url\":\"http://h\",\"method\":\"CONNECT\"}", "config.method", NULL);
    refused("{\"url\":\"http://h\",\"method\":1}", "config.method", "must be a string");
    refused("{\"url\":\"http://h\",\"method\":\"GET\\u0000\"}", "config.method", "NUL");
}

static void test_refused_url(void **state)
{
    refused("{\"url\":\"\"}", "config.url", "must not be empty");
    refused("{\"url\":5}", "config.url", "must be a string");
    refused("{\"url\":{\"secret\":\"http://h\"}}", "config.url", "must be a string");
    refused("{\"url\":\"ftp://h/x\"}", "config.url", "http:// or https://");
    refused("{\"url\":\"file:///etc/passwd\"}", "config.url", "http:// or https://");
    refused("{\"url\":\"gopher://h:70/_x\"}", "config.url", "http:// or https://");
    refused("{\"url\":\"h/x\"}", "config.url", "http:// or https://");
    refused("{\"url\":\"http:/h\"}", "config.url", "http:// or https://");
    refused("{\"url\":\"http://\"}", "config.url", "must name a host");
    refused("{\"url\":\"http:///x\"}", "config.url", "must name a host");
    refused("{\"url\":\"http://u:p@/x\"}", "config.url", "must name a host");
    refused("{\"url\":\"http://:80/\"}", "config.url", "must name a host");
    refused("{\"url\":\"http://h:/\"}", "config.url", "empty port");
    refused("{\"url\":\"http://h:0/\"}", "config.url", "outside 1..65535");
    refused("{\"url\":\"http://h:65536/\"}", "config.url", "outside 1..65535");
    refused("{\"url\":\"http://h:99999999999999999999/\"}", "config.url", "outside 1..65535");
    refused("{\"url\":\"http://h:8x/\"}", "config.url", "not a number");
    refused("{\"url\":\"http://h x/\"}", "config.url", "without spaces");
    refused("{\"url\":\"http://h/\\r\\nHost: x\"}", "config.url", "control characters");
    refused("{\"url\":\"http://h/\\u0000\"}", "config.url", "NUL");
    refused("{\"url\":\"http://h\\u00e9.example/\"}", "config.url", "ASCII");
    refused("{\"url\":\"http://h<x>/\"}", "config.url", "not allowed in a host");
    refused("{\"url\":\"http://[::1/\"}", "config.url", "unterminated");
    refused("{\"url\":\"http://[]/\"}", "config.url", "empty [IPv6]");
    refused("{\"url\":\"http://[::1]x/\"}", "config.url", "after the [IPv6] host");
    refused("{\"url\":\"http://[g::1]/\"}", "config.url", "malformed [IPv6]");
    /* A zone id is fine in a link-local literal (the guard decides later). */
    httpspec_t s;
    parse_ok("{\"url\":\"http://[fe80::1%25eth0]:8080/\"}", &s);
    httpspec_free(&s);
}

static void test_refused_headers(void **state)
{
    refused("{\"url\":\"http://h\",\"headers\":[]}", "config.headers", "must be an object");
    refused("{\"url\":\"http://h\",\"headers\":{\"\":\"v\"}}", "config.headers.", "empty");
    refused("{\"url\":\"http://h\",\"headers\":{\"Bad Name\":\"v\"}}", "config.headers.Bad Name",
            "HTTP token");
    refused("{\"url\":\"http://h\",\"headers\":{\"X:Y\":\"v\"}}", "config.headers.X:Y",
            "HTTP token");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-\\u00e9\":\"v\"}}", "config.headers.X-\u00e9",
            "HTTP token");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":\"a\\r\\nX-B: b\"}}", "config.headers.X-A",
            "CR or LF");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":\"a\\nb\"}}", "config.headers.X-A",
            "CR or LF");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":\"a\\u0000b\"}}", "config.headers.X-A",
            "NUL");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":1}}", "config.headers.X-A",
            "{\"secret\": \"value\"}");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":null}}", "config.headers.X-A", NULL);
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":{}}}", "config.headers.X-A", "secret");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":{\"secret\":\"s\",\"x\":1}}}",
            "config.headers.X-A", "secret");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":{\"secret\":1}}}",
            "config.headers.X-A.secret", "must be a string");
    refused("{\"url\":\"http://h\",\"headers\":{\"X-A\":{\"secret\":\"a\\r\\nb\"}}}",
            "config.headers.X-A.secret", "CR or LF");
    refused("{\"url\":\"http://h\",\"headers\":{\"Accept\":\"a\",\"accept\":\"b\"}}",
            "config.headers.accept", "repeats header \"Accept\"");
    refused("{\"url\":\"http://h\",\"headers\":{\"content-length\":\"5\"}}",
            "config.headers.content-length", "from the body");
    refused("{\"url\":\"http://h\",\"headers\":{\"Transfer-Encoding\":\"chunked\"}}",
            "config.headers.Transfer-Encoding", "from the body");
    /* Limits of a name and a value. */
    char name[HTTPSPEC_HEADER_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    json_t *doc = json_pack("{s:s,s:{s:s}}", "url", "http://h", "headers", name, "v");
    jobspec_error_t err;
    assert_int_equal(httpspec_check(doc, &err), SKED_EINVAL);
    assert_non_null(strstr(err.detail, "at most 256 bytes"));
    json_decref(doc);
    char *value = xmalloc(HTTPSPEC_HEADER_VALUE_MAX + 2);
    memset(value, 'v', HTTPSPEC_HEADER_VALUE_MAX + 1);
    value[HTTPSPEC_HEADER_VALUE_MAX + 1] = '\0';
    doc = json_pack("{s:s,s:{s:{s:s}}}", "url", "http://h", "headers", "X", "secret", value);
    assert_int_equal(httpspec_check(doc, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config.headers.X.secret");
    value[HTTPSPEC_HEADER_VALUE_MAX] = '\0';
    json_decref(doc);
    doc = json_pack("{s:s,s:{s:{s:s}}}", "url", "http://h", "headers", "X", "secret", value);
    assert_int_equal(httpspec_check(doc, &err), 0);
    json_decref(doc);
    free(value);
}

static void test_refused_body_expect_numbers(void **state)
{
    refused("{\"url\":\"http://h\",\"body\":{}}", "config.body", "must be a string");
    refused("{\"url\":\"http://h\",\"body\":\"a\\u0000b\",\"method\":\"POST\"}", "config.body",
            "NUL");
    refused("{\"url\":\"http://h\",\"method\":\"HEAD\",\"body\":\"x\"}", "config.body",
            "not allowed with method HEAD");
    refused("{\"url\":\"http://h\",\"expect\":200}", "config.expect", "array");
    refused("{\"url\":\"http://h\",\"expect\":[]}", "config.expect", "must not be empty");
    refused("{\"url\":\"http://h\",\"expect\":[200,99]}", "config.expect[1]",
            "between 100 and 599");
    refused("{\"url\":\"http://h\",\"expect\":[600]}", "config.expect[0]", "between 100 and 599");
    refused("{\"url\":\"http://h\",\"expect\":[\"200\"]}", "config.expect[0]", "integer");
    refused("{\"url\":\"http://h\",\"expect\":[200.5]}", "config.expect[0]", "integer");
    refused("{\"url\":\"http://h\",\"expect\":[null]}", "config.expect[0]", "integer");
    json_t *doc = json_pack("{s:s,s:[]}", "url", "http://h", "expect");
    for (int i = 0; i <= HTTPSPEC_EXPECT_MAX; i++)
        json_array_append_new(json_object_get(doc, "expect"), json_integer(200));
    jobspec_error_t err;
    assert_int_equal(httpspec_check(doc, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config.expect");
    json_decref(doc);

    refused("{\"url\":\"http://h\",\"timeout\":30}", "config.timeout", "duration");
    refused("{\"url\":\"http://h\",\"timeout\":\"30 s\"}", "config.timeout", "duration");
    refused("{\"url\":\"http://h\",\"timeout\":\"0\"}", "config.timeout", "more than 0");
    refused("{\"url\":\"http://h\",\"timeout\":\"-1s\"}", "config.timeout", NULL);
    refused("{\"url\":\"http://h\",\"max_redirects\":21}", "config.max_redirects",
            "between 0 and 20");
    refused("{\"url\":\"http://h\",\"max_redirects\":-1}", "config.max_redirects", NULL);
    refused("{\"url\":\"http://h\",\"max_redirects\":\"5\"}", "config.max_redirects", "integer");
    refused("{\"url\":\"http://h\",\"max_response\":1048577}", "config.max_response",
            "between 0 and 1048576");
    refused("{\"url\":\"http://h\",\"max_response\":-1}", "config.max_response", NULL);
    refused("{\"url\":\"http://h\",\"max_response\":1e3}", "config.max_response", "integer");
}

/* The schema published for clients is JSON and lists exactly the members
 * httpspec accepts (a member added to one and not the other fails here). */
static void test_schema(void **state)
{
    json_error_t jerr;
    json_t *schema = json_loads(httpspec_schema, 0, &jerr);
    if (!schema) fail_msg("httpspec_schema is not JSON: %s", jerr.text);
    json_t *props = json_object_get(schema, "properties");
    assert_int_equal(json_object_size(props), 8);
    const char *key;
    json_t *v;
    json_object_foreach(props, key, v)
    {
        json_t *doc = json_pack("{s:s}", "url", "http://h");
        json_object_set_new(doc, key, json_string("?"));
        jobspec_error_t err;
        int rc = httpspec_check(doc, &err);
        /* Known: refused for its value (or accepted), never as unknown. */
        if (rc) assert_null(strstr(err.detail, "unknown field"));
        json_decref(doc);
    }
    assert_false(json_is_true(json_object_get(schema, "additionalProperties")));
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_every_member),
        cmocka_unit_test(test_limits_accepted), cmocka_unit_test(test_refused_shape),
        cmocka_unit_test(test_refused_method),  cmocka_unit_test(test_refused_url),
        cmocka_unit_test(test_refused_headers), cmocka_unit_test(test_refused_body_expect_numbers),
        cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
