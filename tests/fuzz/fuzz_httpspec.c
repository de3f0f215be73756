/*
 * libFuzzer target for the config of http jobs (src/core/httpspec.h) and
 * the built-in plugin's validate entry point (src/worker/http_job.h). The
 * input is JSON text: the job's "config" member.
 *
 * Properties, beyond "no crash, no leak, no undefined behaviour":
 *  - httpspec_check, httpspec_parse and http_job_plugin.validate agree:
 *    all accept, or all refuse with the same field and detail;
 *  - a refusal names a field under "config", its detail starts with that
 *    field, and leaves the parsed spec empty;
 *  - an accepted config keeps the limits httpspec.h promises (method one
 *    of the seven, URL of http(s) and at most 8 KiB, at most 64 headers
 *    without CR/LF, expect codes 100..599, timeout above 0, bounded
 *    redirects and response cap);
 *  - the config with its secrets resolved (each {"secret": s} replaced by
 *    s, as the plugin gets it) parses to the same request, the secret
 *    marks aside: the server never takes a config the plugin then refuses.
 */
#include "core/httpspec.h"
#include "fuzz.h"
#include "worker/http_job.h"

#include <jansson.h>
#include <strings.h>

static void check_refusal(const jobspec_error_t *err, const httpspec_t *s)
{
    static const httpspec_t zero;
    size_t fl = strnlen(err->field, sizeof err->field);
    size_t dl = strnlen(err->detail, sizeof err->detail);
    if (fl == sizeof err->field || dl == sizeof err->detail)
        fuzz_fail("unterminated error field or detail");
    if (strncmp(err->field, "config", 6))
        fuzz_fail("refusal names '%s', not a config field", err->field);
    if (dl <= fl || strncmp(err->detail, err->field, fl))
        fuzz_fail("detail '%s' does not start with its field '%s'", err->detail, err->field);
    if (memcmp(s, &zero, sizeof zero)) fuzz_fail("refused spec is not empty");
}

static void check_limits(const httpspec_t *s)
{
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    bool known = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        known |= !strcmp(s->method, methods[i]);
    if (!known) fuzz_fail("accepted method '%s'", s->method);
    size_t ul = strlen(s->url);
    if (ul > HTTPSPEC_URL_MAX ||
        (strncasecmp(s->url, "http://", 7) && strncasecmp(s->url, "https://", 8)))
        fuzz_fail("accepted url '%.200s'", s->url);
    for (size_t i = 0; i < ul; i++)
        if ((unsigned char)s->url[i] <= 0x20 || (unsigned char)s->url[i] >= 0x7f)
            fuzz_fail("accepted a url with byte 0x%02x", (unsigned char)s->url[i]);
    if (s->nheaders > HTTPSPEC_HEADERS_MAX) fuzz_fail("accepted %zu headers", s->nheaders);
    for (size_t i = 0; i < s->nheaders; i++) {
        if (!s->headers[i].name[0] || strpbrk(s->headers[i].name, " :\r\n\t"))
            fuzz_fail("accepted header name '%s'", s->headers[i].name);
        if (strpbrk(s->headers[i].value, "\r\n"))
            fuzz_fail("accepted a CR or LF in header %s", s->headers[i].name);
    }
    if (s->body && (s->body_len > HTTPSPEC_BODY_MAX || !strcmp(s->method, "HEAD")))
        fuzz_fail("accepted a body of %zu bytes with %s", s->body_len, s->method);
    for (size_t i = 0; i < s->nexpect; i++)
        if (s->expect[i] < 100 || s->expect[i] > 599) fuzz_fail("accepted status %d", s->expect[i]);
    if (s->timeout_ms <= 0 || s->max_redirects < 0 || s->max_redirects > HTTPSPEC_REDIRECTS_MAX ||
        s->max_response > HTTPSPEC_RESPONSE_MAX)
        fuzz_fail("accepted numbers out of range");
}

/* config with every header {"secret": s} replaced by s. New reference. */
static json_t *resolved(const json_t *config)
{
    json_t *c = json_deep_copy(config);
    json_t *h = json_object_get(c, "headers");
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v)
    {
        if (json_is_object(v)) json_object_set(h, k, json_object_get(v, "secret"));
    }
    return c;
}

static void check_same(const httpspec_t *a, const httpspec_t *b)
{
    if (strcmp(a->method, b->method) || strcmp(a->url, b->url) || a->nheaders != b->nheaders ||
        !a->body != !b->body || a->body_len != b->body_len ||
        (a->body && memcmp(a->body, b->body, a->body_len)) || a->nexpect != b->nexpect ||
        (a->nexpect && memcmp(a->expect, b->expect, a->nexpect * sizeof *a->expect)) ||
        a->timeout_ms != b->timeout_ms || a->max_redirects != b->max_redirects ||
        a->max_response != b->max_response)
        fuzz_fail("the resolved config parses to another request");
    for (size_t i = 0; i < a->nheaders; i++)
        if (strcmp(a->headers[i].name, b->headers[i].name) ||
            strcmp(a->headers[i].value, b->headers[i].value) || b->headers[i].secret)
            fuzz_fail("header %s changed when resolved", a->headers[i].name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384) return 0;
    json_error_t jerr;
    json_t *config = json_loadb((const char *)data, size,
                                JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!config) return 0;

    jobspec_error_t e1, e2;
    httpspec_t s;
    int rc1 = httpspec_check(config, &e1);
    int rc2 = httpspec_parse(config, &s, &e2);
    if (!rc1 != !rc2) fuzz_fail("check says %d, parse says %d", rc1, rc2);

    /* validate takes text: the compact dump of the same value. */
    char *text = json_dumps(config, JSON_COMPACT | JSON_ENCODE_ANY);
    char field[128], detail[256];
    int rc3 = text ? http_job_plugin.validate(NULL, text, strlen(text), field, sizeof field, detail,
                                              sizeof detail)
                   : SKED_PLUGIN_OK;
    if (text && (rc3 == SKED_PLUGIN_OK) != (rc1 == 0))
        fuzz_fail("validate says %d, check says %d", rc3, rc1);

    if (rc1) {
        if (strcmp(e1.field, e2.field) || strcmp(e1.detail, e2.detail))
            fuzz_fail("check and parse refuse differently: %s / %s", e1.detail, e2.detail);
        if (text && (strcmp(field, e1.field) || strcmp(detail, e1.detail)))
            fuzz_fail("validate and check refuse differently: %s / %s", detail, e1.detail);
        check_refusal(&e2, &s);
    } else {
        check_limits(&s);
        json_t *plain = resolved(config);
        httpspec_t r;
        jobspec_error_t e3;
        if (httpspec_parse(plain, &r, &e3))
            fuzz_fail("resolved config refused at %s: %s", e3.field, e3.detail);
        check_same(&s, &r);
        httpspec_free(&r);
        json_decref(plain);
    }
    httpspec_free(&s);
    free(text);
    json_decref(config);
    return 0;
}
