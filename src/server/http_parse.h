/*
 * The parsers of the HTTP layer that need no connection: percent-decoding
 * and UTF-8 checking of the request target, splitting a path into segments
 * and matching them against route patterns, Content-Length numbers, and
 * the framing audit of a request's header block. http.c feeds them what
 * microhttpd hands it (see http_parse.c for why each check exists); they
 * are pure functions over strings, so hostile input can be tested here
 * without a socket.
 *
 * All of it is thread-safe (no state besides the caller's).
 */
#ifndef SKED_SERVER_HTTP_PARSE_H
#define SKED_SERVER_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What percent-decoding found. */
enum http_pct {
    HTTP_PCT_OK = 0,
    HTTP_PCT_NUL,   /* an encoded NUL (%00) */
    HTTP_PCT_SLASH, /* an encoded slash (%2F) where none may be */
    HTTP_PCT_UTF8   /* the decoded text is not UTF-8 */
};

/* Whether s is strict UTF-8: no overlong forms, no surrogates, nothing
 * past U+10FFFF. */
bool http_utf8_valid(const char *s);

/* Decodes the %XX escapes of s in place (s only shrinks) and checks that
 * the result is UTF-8. A '%' that starts no escape stands for itself. An
 * encoded slash is refused unless slash_ok. On anything but HTTP_PCT_OK
 * the contents of s are unspecified. */
enum http_pct http_pct_decode(char *s, bool slash_ok);

/* What e means, as the end of a sentence ("contains a NUL byte (%00)").
 * Static string. */
const char *http_pct_what(enum http_pct e);

/* A strict non-negative decimal, as Content-Length must be: digits only,
 * no sign or space, at most 19 digits' worth (near UINT64_MAX it refuses
 * rather than risk overflow). Returns 0 with *out set, or -1. */
int http_parse_u64(const char *s, uint64_t *out);

/* Splits path (the request path after its leading '/') in place at each
 * '/' into segs[0..n-1]; an empty path is one empty segment, and "a//b"
 * has an empty middle one. Escapes are not decoded: decode each segment
 * afterwards, so that an escape never makes a separator. Returns n, or 0
 * when path has more than max segments (segs then holds garbage). */
size_t http_path_split(char *path, char **segs, size_t max);

/* Matches segments against a route pattern such as "/v1/jobs/{id}": a
 * literal must equal its segment, and {x} takes one non-empty segment,
 * stored in params[] in order (those past max_params are matched but not
 * stored). params point into segs. Returns whether it matched; params
 * may have been written either way. */
bool http_path_match(const char *pattern, char *const *segs, size_t nsegs, const char **params,
                     size_t max_params);

/*
 * The framing audit of one request: begin with the request line, feed it
 * every field microhttpd reports (header fields and query arguments), end
 * with the verdict. The strings must stay valid until http_frame_end.
 */
typedef struct http_frame {
    uintptr_t base;        /* the header block, parsed in place: starts at the method */
    size_t size;           /* its length in bytes; 0 = no audit of hidden bytes */
    unsigned char *seen;   /* owned until http_frame_end: per byte, part of a reported field */
    const char *version;   /* borrowed: "HTTP/1.1" */
    int nhost, nlen, nte;  /* Host, Content-Length and Transfer-Encoding fields seen */
    const char *clen, *te; /* borrowed: the last Content-Length and Transfer-Encoding values */
    const char *why;       /* the first problem found, or NULL */
} http_frame_t;

/* Starts an audit. method, target and version are the request line as
 * microhttpd reports it (version may be NULL); block_size is the length
 * of the header block that microhttpd parsed in place starting at method,
 * or 0 when unknown. The hidden-bytes audit runs only when the layout is
 * the expected one (method, target, version in this order inside the
 * block); the checks of the fields run always. */
void http_frame_begin(http_frame_t *f, const char *method, const char *target, const char *version,
                      size_t block_size);

/* One reported field: a header (is_header) or a query argument, which
 * only counts for the audit. key or value may be NULL. */
void http_frame_field(http_frame_t *f, bool is_header, const char *key, size_t key_len,
                      const char *value, size_t value_len);

/* Ends the audit (frees f->seen) and returns the first problem as a
 * phrase to follow "malformed request: " (static string), or NULL when
 * the request is framed soundly. */
const char *http_frame_end(http_frame_t *f);

#endif
