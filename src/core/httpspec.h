/*
 * The config of a job of the built-in type "http" ({"type": "http",
 * "config": {...}}): its validation and its parsed form. Pure: no I/O, no
 * clock, no DNS (the SSRF guard, which needs addresses, lives with the
 * request in worker/http_job.c).
 *
 * The server checks a config as it is stored (httpspec_check: secret header
 * values still wrapped as {"secret": "..."}); the plugin parses the config
 * it is given, secrets already resolved to strings (httpspec_parse). Both
 * forms pass both functions, with the same words, so a config the server
 * took never fails in the plugin for a reason the server did not check.
 *
 * Members (docs/api.md, "HTTP jobs"):
 *   method         GET (default) HEAD POST PUT PATCH DELETE OPTIONS
 *   url            required; http:// or https:// with a host; at most 8 KiB
 *   headers        object: name -> string or {"secret": string}; at most 64
 *   body           string without NUL, at most 1 MiB; not with HEAD
 *   expect         array of status codes 100..599 that count as success;
 *                  default: any 2xx
 *   timeout        duration of the request, redirects included (default 30s)
 *   max_redirects  0..20 (default 5); 0 = a 3xx answer is the response
 *   max_response   bytes of the response body kept, 0..1 MiB (default 64 KiB)
 * Unknown members and JSON nulls are refused, naming the field
 * ("config.headers.X-Api-Key").
 */
#ifndef SKED_CORE_HTTPSPEC_H
#define SKED_CORE_HTTPSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jobspec.h"

#define HTTPSPEC_URL_MAX            8192
#define HTTPSPEC_HEADERS_MAX        64
#define HTTPSPEC_HEADER_NAME_MAX    256  /* bytes of a header name */
#define HTTPSPEC_HEADER_VALUE_MAX   8192 /* bytes of a header value */
#define HTTPSPEC_BODY_MAX           ((size_t)1 << 20)
#define HTTPSPEC_EXPECT_MAX         64 /* entries of expect */
#define HTTPSPEC_REDIRECTS_MAX      20
#define HTTPSPEC_RESPONSE_MAX       ((size_t)1 << 20)
#define HTTPSPEC_TIMEOUT_DEFAULT_MS ((int64_t)30000)
#define HTTPSPEC_REDIRECTS_DEFAULT  5
#define HTTPSPEC_RESPONSE_DEFAULT   ((size_t)65536)

/* One request header, as the config gives it. */
typedef struct httpspec_header {
    char *name;  /* owned; as written (HTTP names are case-insensitive) */
    char *value; /* owned; the plain value, secret or not */
    bool secret; /* written {"secret": "..."} (only seen in the stored form) */
} httpspec_header_t;

/* A parsed config. Every pointer owned; free with httpspec_free. */
typedef struct httpspec {
    char *method; /* "GET", ... */
    char *url;
    httpspec_header_t *headers; /* nheaders entries, in the config's order */
    size_t nheaders;
    char *body; /* NULL = no body; else body_len bytes, NUL-terminated (JSON text has no NUL) */
    size_t body_len;
    int *expect; /* nexpect status codes; nexpect == 0: any 2xx */
    size_t nexpect;
    int64_t timeout_ms;  /* > 0 */
    int max_redirects;   /* 0..HTTPSPEC_REDIRECTS_MAX */
    size_t max_response; /* bytes of response body kept */
} httpspec_t;

/* Checks config (the job's "config" member, stored form). Returns 0, or
 * SKED_EINVAL with err->field ("config.url", "config.headers.Accept",
 * "config.expect[2]"; "config" for the whole) and a sentence in
 * err->detail. Nothing is kept. */
int httpspec_check(const json_t *config, jobspec_error_t *err);

/* Parses config (either form) into *out. Returns 0 and fills *out (caller
 * frees with httpspec_free), or SKED_EINVAL with *err filled and *out left
 * empty (zeroed; httpspec_free on it is harmless). */
int httpspec_parse(const json_t *config, httpspec_t *out, jobspec_error_t *err);

/* Frees the members of s (not s itself) and zeroes it. NULL is a no-op. */
void httpspec_free(httpspec_t *s);

/* Whether status counts as success for s (its expect list, or any 2xx). */
bool httpspec_expected(const httpspec_t *s, long status);

/* The JSON Schema (draft 2020-12, the subset docs/plugins.md lists) of the
 * config, for GET /v1/plugins and clients. httpspec_check is stricter (URL
 * syntax, header name tokens, duplicates); both agree on the shape.
 * Static storage. */
extern const char httpspec_schema[];

#endif
