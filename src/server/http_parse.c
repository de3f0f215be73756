/*
 * The HTTP layer's parsers of hostile input; see http_parse.h. http.c
 * applies them to what microhttpd hands it.
 *
 * libmicrohttpd 0.9.75 (Debian 12) parses requests with C-string functions
 * and is lenient where a proxy in front of sked may not be, so sked checks
 * what it is handed before acting on any of it:
 *
 * - Escapes. microhttpd's own unescaper decodes %00 into a C string (so
 *   "job_x%00junk" reads as "job_x") and decodes %2f before routing (so an
 *   encoded slash separates segments). http.c has it leave the path and
 *   the query as sent instead; the path is split (http_path_split) and
 *   then each segment decoded, query keys and values are decoded, and
 *   both refuse %00 and invalid UTF-8 (http_pct_decode).
 * - Hidden bytes. A raw NUL in the request line or in a header value cuts
 *   what microhttpd reports; an empty header name (": v") ends its header
 *   block early, leaving the rest to be parsed as a second request; an
 *   obs-fold continuation line is glued onto the field *name*. All of these
 *   leave bytes in the header block that no reported field accounts for.
 *   microhttpd parses the block in place (the request line first, fields
 *   and separators turned into NUL-terminated strings), so http_frame_*
 *   audits it: each byte must belong to the method, the target, the
 *   version, a query key or value, a header name or value, or be a NUL or
 *   whitespace. A NUL that hides nothing (a target ending in one) goes
 *   unnoticed, and is harmless for that reason.
 * - Framing (RFC 9112 §3.2, §5.1, §6.1, §6.3): both Content-Length and
 *   Transfer-Encoding, two Content-Lengths, a transfer coding other than
 *   "chunked", no Host in HTTP/1.1 or more than one, header names that are
 *   no token, and control characters in values; microhttpd passes all of
 *   these through, picking one reading where a proxy may pick another.
 *
 * Framing problems are answered 400 with "Connection: close": once framing
 * is in doubt nothing more on the connection can be trusted to be a
 * request. What microhttpd refuses itself (no request line, a malformed
 * chunk size, oversized headers) it answers or closes before sked sees it.
 */
#include "server/http_parse.h"
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- escapes and UTF-8 ---------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

bool http_utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned ch = *s;
        size_t n;
        uint32_t cp, min;
        if (ch < 0x80) {
            s++;
            continue;
        }
        if ((ch & 0xe0) == 0xc0) {
            n = 1, cp = ch & 0x1f, min = 0x80;
        } else if ((ch & 0xf0) == 0xe0) {
            n = 2, cp = ch & 0x0f, min = 0x800;
        } else if ((ch & 0xf8) == 0xf0) {
            n = 3, cp = ch & 0x07, min = 0x10000;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) return false; /* also stops at the NUL */
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        s += n + 1;
    }
    return true;
}

/* An encoded NUL is refused everywhere: C strings would end there. An
 * encoded slash in a path segment would turn into a separator wherever the
 * id travels next. A '%' that starts no escape stands for itself, as
 * microhttpd and browsers read it (no id or name can hold one, so it
 * matches nothing). */
enum http_pct http_pct_decode(char *s, bool slash_ok)
{
    char *w = s;
    const char *r = s;
    while (*r) {
        if (*r != '%') {
            *w++ = *r++;
            continue;
        }
        int hi = hexval(r[1]);
        int lo = hi < 0 ? -1 : hexval(r[2]);
        if (lo < 0) {
            *w++ = *r++;
            continue;
        }
        char ch = (char)(hi << 4 | lo);
        if (!ch) return HTTP_PCT_NUL;
        if (ch == '/' && !slash_ok) return HTTP_PCT_SLASH;
        *w++ = ch;
        r += 3;
    }
    *w = 0;
    return http_utf8_valid(s) ? HTTP_PCT_OK : HTTP_PCT_UTF8;
}

const char *http_pct_what(enum http_pct e)
{
    switch (e) {
    case HTTP_PCT_NUL:
        return "contains a NUL byte (%00)";
    case HTTP_PCT_SLASH:
        return "contains an encoded slash (%2F)";
    case HTTP_PCT_UTF8:
        return "is not valid UTF-8";
    default:
        return "is fine";
    }
}

int http_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* ---- the path ------------------------------------------------------------- */

size_t http_path_split(char *path, char **segs, size_t max)
{
    size_t n = 0;
    for (char *s = path;;) {
        if (n == max) return 0; /* longer than any route */
        segs[n++] = s;
        char *slash = strchr(s, '/');
        if (!slash) return n;
        *slash = 0;
        s = slash + 1;
    }
}

bool http_path_match(const char *pattern, char *const *segs, size_t nsegs, const char **params,
                     size_t max_params)
{
    size_t i = 0, np = 0;
    const char *p = pattern;
    if (*p != '/') return false;
    while (*p == '/') {
        p++;
        size_t len = strcspn(p, "/");
        if (i >= nsegs) return false;
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (!*segs[i]) return false;
            if (np < max_params) params[np++] = segs[i];
        } else if (strlen(segs[i]) != len || memcmp(segs[i], p, len) != 0) {
            return false;
        }
        i++;
        p += len;
    }
    return i == nsegs;
}

/* ---- framing -------------------------------------------------------------- */

static void mark(http_frame_t *f, const char *p, size_t n)
{
    uintptr_t a = (uintptr_t)p;
    if (!f->seen || !p || a < f->base || a - f->base > f->size || n > f->size - (a - f->base))
        return; /* not in the block (a copy microhttpd made): nothing to mark */
    memset(f->seen + (a - f->base), 1, n);
}

/* RFC 9110 §5.6.2: a field name is a token. */
static bool is_tchar(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

void http_frame_begin(http_frame_t *f, const char *method, const char *target, const char *version,
                      size_t block_size)
{
    memset(f, 0, sizeof *f);
    f->version = version ? version : "";
    /* The audit needs microhttpd's in-place layout: method, target and
     * version in this order at the start of the block. Where that does not
     * hold (another microhttpd) the checks of the fields still run. */
    if (!block_size) return;
    f->base = (uintptr_t)method;
    f->size = block_size;
    uintptr_t ua = (uintptr_t)target, va = (uintptr_t)f->version;
    if (ua > f->base && va > ua && va - f->base < f->size) {
        f->seen = xcalloc(f->size, 1);
        mark(f, method, strlen(method));
        mark(f, target, strlen(target));
        mark(f, f->version, strlen(f->version));
    }
}

void http_frame_field(http_frame_t *f, bool is_header, const char *key, size_t key_len,
                      const char *value, size_t value_len)
{
    mark(f, key, key_len);
    mark(f, value, value_len);
    if (!is_header || f->why || !key) return;
    if (!key_len) f->why = "an empty header name";
    for (size_t i = 0; i < key_len && !f->why; i++)
        if (!is_tchar((unsigned char)key[i]))
            f->why = "a header name that is no token (whitespace before the colon?)";
    for (size_t i = 0; value && i < value_len && !f->why; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            f->why = "a control character (CR, LF or NUL) in a header value";
    }
    if (!strcasecmp(key, "Host")) {
        f->nhost++;
    } else if (!strcasecmp(key, "Content-Length")) {
        f->nlen++;
        f->clen = value;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        f->nte++;
        f->te = value;
    }
}

const char *http_frame_end(http_frame_t *f)
{
    const char *block = (const char *)f->base;
    for (size_t i = 0; f->seen && !f->why && i < f->size; i++) {
        char ch = block[i];
        if (!f->seen[i] && ch && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
            f->why = "bytes no field accounts for (a NUL byte inside the request line or a "
                     "header, an empty header name, or a folded header line)";
    }
    FREE_NULL(f->seen);
    uint64_t clen = 0;
    if (f->why) {
        /* already refused */
    } else if (f->nhost > 1) {
        f->why = "more than one Host header";
    } else if (!f->nhost && !strcmp(f->version, "HTTP/1.1")) {
        f->why = "an HTTP/1.1 request without a Host header";
    } else if (f->nlen && f->nte) {
        f->why = "both Content-Length and Transfer-Encoding";
    } else if (f->nlen > 1) {
        f->why = "more than one Content-Length";
    } else if (f->clen && http_parse_u64(f->clen, &clen) < 0) {
        f->why = "a Content-Length that is no decimal number";
    } else if (f->nte > 1 || (f->te && strcasecmp(f->te, "chunked"))) {
        f->why = "a Transfer-Encoding other than 'chunked'";
    }
    return f->why;
}
