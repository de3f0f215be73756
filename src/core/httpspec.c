/*
 * The config of "http" jobs: validation and parsed form (see httpspec.h).
 * Checked with jobspec's own validators (core/jobspec_int.h), so a bad
 * config member reads like any other bad field of a job document
 * ("config.timeout: must be a duration such as ...").
 *
 * The URL is checked here only as far as sked promises something about it:
 * an http or https scheme and a host, so the request cannot be turned into
 * file://, gopher:// or a request to no host. Everything else about it
 * (which address the host resolves to, whether that address may be
 * reached) is decided at connect time by the worker, where the resolved
 * address is known; libcurl parses the URL again there.
 */
#include "core/httpspec.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/jobspec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                      "PATCH", "DELETE", "OPTIONS", NULL};

static const char *const members[] = {"method",  "url",           "headers",      "body", "expect",
                                      "timeout", "max_redirects", "max_response", NULL};

const char httpspec_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"url\"],"
    "\"properties\":{"
    "\"method\":{\"enum\":[\"GET\",\"HEAD\",\"POST\",\"PUT\",\"PATCH\",\"DELETE\",\"OPTIONS\"]},"
    "\"url\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":8192,"
    "\"pattern\":\"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+\"},"
    "\"headers\":{\"type\":\"object\",\"maxProperties\":64,\"additionalProperties\":"
    "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":8192},"
    "{\"type\":\"object\",\"required\":[\"secret\"],\"additionalProperties\":false,"
    "\"properties\":{\"secret\":{\"type\":\"string\",\"maxLength\":8192}}}]}},"
    "\"body\":{\"type\":\"string\",\"maxLength\":1048576},"
    "\"expect\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":64,"
    "\"items\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":599}},"
    "\"timeout\":{\"type\":\"string\"},"
    "\"max_redirects\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":20},"
    "\"max_response\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1048576}}}";

/* RFC 9110 token characters (header field names). */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 3986 reg-name characters (unreserved, sub-delims, and '%' of a
 * percent-encoding). */
static bool hostchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("-._~!$&'()*+,;=%", c));
}

/* url is n bytes without NUL (get_string checked). Returns NULL when it is
 * an http(s) URL with a host, else why not. */
static const char *url_problem(const char *url, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return "must be ASCII without spaces or control characters (percent-encode "
                   "others)";
    }
    const char *p;
    if (!strncasecmp(url, "http://", 7))
        p = url + 7;
    else if (!strncasecmp(url, "https://", 8))
        p = url + 8;
    else
        return "must start with http:// or https:// (no other scheme is allowed)";
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@') at = q;
    const char *host = at ? at + 1 : p;
    const char *port = NULL;
    if (host < end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close == host + 1) return "has an unterminated or empty [IPv6] host";
        bool zone = false; /* past the '%' of a zone id ("[fe80::1%25eth0]") */
        for (const char *q = host + 1; q < close; q++) {
            if (*q == '%') zone = true;
            if (zone ? !hostchar((unsigned char)*q) : !strchr("0123456789abcdefABCDEF:.", *q))
                return "has a malformed [IPv6] host";
        }
        if (close + 1 < end) {
            if (close[1] != ':') return "has characters after the [IPv6] host";
            port = close + 2;
        }
    } else {
        const char *q = host;
        while (q < end && *q != ':') {
            if (!hostchar((unsigned char)*q)) return "has a character not allowed in a host name";
            q++;
        }
        if (q == host) return "must name a host (http://host/...)";
        if (q < end) port = q + 1;
    }
    if (port) {
        long v = 0;
        if (port == end) return "has an empty port after ':'";
        for (const char *q = port; q < end; q++) {
            if (*q < '0' || *q > '9') return "has a port that is not a number";
            v = v * 10 + (*q - '0');
            if (v > 65535) break;
        }
        if (v < 1 || v > 65535) return "has a port outside 1..65535";
    }
    return NULL;
}

/* A header value: a string, or {"secret": string}. *secret OUT. */
static int header_value(const json_t *v, const char *name, const char **out, bool *secret,
                        jobspec_error_t *err)
{
    char field[sizeof err->field];
    jobspec__strf(field, sizeof field, "config.headers.%s", name);
    *secret = false;
    if (json_is_object(v)) {
        const json_t *sv = json_object_get(v, "secret");
        if (json_object_size(v) != 1 || !sv)
            return jobspec__fail(err, field, "must be a string or {\"secret\": \"value\"}");
        jobspec__strf(field, sizeof field, "config.headers.%s.secret", name);
        v = sv;
        *secret = true;
    } else if (!json_is_string(v)) {
        return jobspec__fail(err, field, "must be a string or {\"secret\": \"value\"}");
    }
    int rc = jobspec__get_string(v, field, 0, HTTPSPEC_HEADER_VALUE_MAX, out, err);
    if (rc) return rc;
    /* A CR or LF would end the header line and start another (header
     * injection); NUL was refused by get_string. */
    if (strpbrk(*out, "\r\n")) return jobspec__fail(err, field, "must not contain CR or LF");
    return 0;
}

static int parse_headers(const json_t *v, httpspec_t *out, jobspec_error_t *err)
{
    if (!json_is_object(v))
        return jobspec__fail(err, "config.headers", "must be an object of header names to values");
    size_t n = json_object_size(v);
    if (n > HTTPSPEC_HEADERS_MAX)
        return jobspec__fail(err, "config.headers", "must have at most %d entries",
                             HTTPSPEC_HEADERS_MAX);
    out->headers = xcalloc(n ? n : 1, sizeof *out->headers);
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)v, name, val)
    {
        char field[sizeof err->field];
        jobspec__strf(field, sizeof field, "config.headers.%s", name);
        size_t len = strlen(name);
        if (len == 0) return jobspec__fail(err, field, "a header name must not be empty");
        if (len > HTTPSPEC_HEADER_NAME_MAX)
            return jobspec__fail(err, field, "a header name must be at most %d bytes",
                                 HTTPSPEC_HEADER_NAME_MAX);
        for (const char *p = name; *p; p++)
            if (!tchar((unsigned char)*p))
                return jobspec__fail(err, field,
                                     "a header name must be an HTTP token (letters, digits "
                                     "and !#$%%&'*+-.^_`|~)");
        /* The request's framing is the client's business: a wrong length
         * would desynchronise the connection (request smuggling). */
        if (!strcasecmp(name, "Content-Length") || !strcasecmp(name, "Transfer-Encoding"))
            return jobspec__fail(err, field, "is set by sked from the body; leave it out");
        for (size_t i = 0; i < out->nheaders; i++)
            if (!strcasecmp(out->headers[i].name, name))
                return jobspec__fail(err, field,
                                     "repeats header \"%s\" (names are case-insensitive)",
                                     out->headers[i].name);
        const char *s;
        bool secret;
        int rc = header_value(val, name, &s, &secret, err);
        if (rc) return rc;
        httpspec_header_t *h = &out->headers[out->nheaders++];
        h->name = xstrdup(name);
        h->value = xstrdup(s);
        h->secret = secret;
    }
    return 0;
}

static int parse_expect(const json_t *v, httpspec_t *out, jobspec_error_t *err)
{
    if (!json_is_array(v))
        return jobspec__fail(err, "config.expect",
                             "must be an array of HTTP status codes, such as [200, 204]");
    size_t n = json_array_size(v);
    if (n == 0)
        return jobspec__fail(err, "config.expect",
                             "must not be empty (leave it out to accept any 2xx)");
    if (n > HTTPSPEC_EXPECT_MAX)
        return jobspec__fail(err, "config.expect", "must have at most %d entries",
                             HTTPSPEC_EXPECT_MAX);
    out->expect = xcalloc(n, sizeof *out->expect);
    for (size_t i = 0; i < n; i++) {
        char field[sizeof err->field];
        jobspec__strf(field, sizeof field, "config.expect[%zu]", i);
        int rc = jobspec__get_int(json_array_get(v, i), field, 100, 599, &out->expect[i], err);
        if (rc) return rc;
        out->nexpect++;
    }
    return 0;
}

static int parse(const json_t *config, httpspec_t *out, jobspec_error_t *err)
{
    const json_t *v;
    const char *s;
    int rc;
    if (!json_is_object(config)) return jobspec__fail(err, "config", "must be an object");
    if ((rc = jobspec__check_keys(config, members, NULL, "config.", err))) return rc;

    out->method = xstrdup("GET");
    if ((v = json_object_get(config, "method"))) {
        if ((rc = jobspec__get_string(v, "config.method", 1, 16, &s, err))) return rc;
        size_t i = 0;
        while (methods[i] && strcmp(methods[i], s))
            i++;
        if (!methods[i])
            return jobspec__fail(err, "config.method",
                                 "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS "
                                 "(in capitals)");
        free(out->method);
        out->method = xstrdup(methods[i]);
    }

    if (!(v = json_object_get(config, "url")))
        return jobspec__fail(err, "config.url", "is required: the http:// or https:// URL to call");
    if ((rc = jobspec__get_string(v, "config.url", 1, HTTPSPEC_URL_MAX, &s, err))) return rc;
    const char *why = url_problem(s, strlen(s));
    if (why) return jobspec__fail(err, "config.url", "%s", why);
    out->url = xstrdup(s);

    if ((v = json_object_get(config, "headers")) && (rc = parse_headers(v, out, err))) return rc;

    if ((v = json_object_get(config, "body"))) {
        if ((rc = jobspec__get_string(v, "config.body", 0, HTTPSPEC_BODY_MAX, &s, err))) return rc;
        if (!strcmp(out->method, "HEAD"))
            return jobspec__fail(err, "config.body", "is not allowed with method HEAD");
        out->body_len = strlen(s);
        out->body = xstrdup(s);
    }

    if ((v = json_object_get(config, "expect")) && (rc = parse_expect(v, out, err))) return rc;

    out->timeout_ms = HTTPSPEC_TIMEOUT_DEFAULT_MS;
    if ((v = json_object_get(config, "timeout"))) {
        if ((rc = jobspec__get_duration(v, "config.timeout", &out->timeout_ms, err))) return rc;
        if (out->timeout_ms <= 0)
            return jobspec__fail(err, "config.timeout",
                                 "must be more than 0 (leave it out for the default, 30s)");
    }

    out->max_redirects = HTTPSPEC_REDIRECTS_DEFAULT;
    if ((v = json_object_get(config, "max_redirects")) &&
        (rc = jobspec__get_int(v, "config.max_redirects", 0, HTTPSPEC_REDIRECTS_MAX,
                               &out->max_redirects, err)))
        return rc;

    out->max_response = HTTPSPEC_RESPONSE_DEFAULT;
    if ((v = json_object_get(config, "max_response"))) {
        int n;
        if ((rc = jobspec__get_int(v, "config.max_response", 0, (long long)HTTPSPEC_RESPONSE_MAX,
                                   &n, err)))
            return rc;
        out->max_response = (size_t)n;
    }
    return 0;
}

int httpspec_parse(const json_t *config, httpspec_t *out, jobspec_error_t *err)
{
    memset(out, 0, sizeof *out);
    int rc = parse(config, out, err);
    if (rc) httpspec_free(out);
    return rc;
}

int httpspec_check(const json_t *config, jobspec_error_t *err)
{
    httpspec_t s;
    int rc = httpspec_parse(config, &s, err);
    httpspec_free(&s);
    return rc;
}

void httpspec_free(httpspec_t *s)
{
    if (!s) return;
    free(s->method);
    free(s->url);
    for (size_t i = 0; i < s->nheaders; i++) {
        free(s->headers[i].name);
        free(s->headers[i].value);
    }
    free(s->headers);
    free(s->body);
    free(s->expect);
    memset(s, 0, sizeof *s);
}

bool httpspec_expected(const httpspec_t *s, long status)
{
    if (s->nexpect == 0) return status >= 200 && status <= 299;
    for (size_t i = 0; i < s->nexpect; i++)
        if (s->expect[i] == status) return true;
    return false;
}
