/*
 * The built-in "http" job type (see http_job.h): a plugin of sked's own
 * ABI, compiled in, that makes one HTTP request per attempt with libcurl.
 *
 * Each attempt has its own easy handle, driven through a multi handle of
 * its own so that the wait can include the host's cancel fd: a canceled or
 * timed-out attempt stops at once, not at libcurl's next progress tick.
 *
 * The SSRF guard sits in CURLOPT_OPENSOCKETFUNCTION, which libcurl calls
 * with the resolved address of every connection it is about to open, the
 * ones of redirects included. Checking there, rather than the host name in
 * the URL, is what defeats names that resolve to internal addresses (DNS
 * rebinding, "localhost", nip.io-style names) and redirects to internal
 * URLs. A connection libcurl reuses was checked when it was opened. A
 * refused address makes the callback return CURL_SOCKET_BAD: libcurl then
 * tries the host's next address, if any, and fails with "could not
 * connect" when none is left; the first refusal's reason replaces that.
 */
#include "worker/http_job.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "core/httpspec.h"
#include "core/results.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define XFER_MAGIC  0x48545450u /* "HTTP" */
#define POLL_MAX_MS 1000        /* the longest wait between looks at host->cancelled */
/* How config text is read: any JSON value (so that a non-object config is
 * told "must be an object" by httpspec, as the server tells it) and NULs
 * let through to httpspec's own, clearer, refusal. */
#define JSON_LOAD_FLAGS   (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)
#define DEADLINE_SLACK_MS 1000  /* past the job's deadline before a request gives up itself */
#define CONNECT_MAX_MS    10000 /* a blackholed address must not eat a long timeout alone */

/* ---- addresses ----------------------------------------------------------- */

/* An address in a family-neutral form: IPv4 as the first 4 bytes. */
struct addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t b[16];
};

struct cidr {
    struct addr a;
    int prefix; /* bits */
};

static struct cidr allow_list[HTTP_JOB_ALLOW_MAX];
static size_t allow_n;

static bool from_sockaddr(const struct sockaddr *sa, struct addr *out, int *port)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        memcpy(out->b, &in->sin_addr, 4);
        if (port) *port = ntohs(in->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        out->family = AF_INET6;
        memcpy(out->b, &in6->sin6_addr, 16);
        if (port) *port = ntohs(in6->sin6_port);
        return true;
    }
    return false;
}

/* Whether the first bits of a and b agree. */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole)) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* The IPv4 address an IPv6 one stands for, if it embeds one: mapped
 * (::ffff:a.b.c.d), compatible (::a.b.c.d, deprecated but still routed by
 * some stacks), NAT64 (64:ff9b::a.b.c.d, which a NAT64 gateway forwards to
 * a.b.c.d) and 6to4 (2002:aabb:ccdd::, tunnelled to a.b.c.d). */
static bool embedded_v4(const struct addr *a, uint8_t v4[4])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (a->family != AF_INET6) return false;
    if (!memcmp(a->b, mapped, 12) || !memcmp(a->b, nat64, 12)) {
        memcpy(v4, a->b + 12, 4);
        return true;
    }
    /* :: and ::1 are IPv6's own unspecified and loopback, not ::0.0.0.x. */
    if (!memcmp(a->b, zero, 12) && (a->b[12] | a->b[13] | a->b[14] || a->b[15] > 1)) {
        memcpy(v4, a->b + 12, 4);
        return true;
    }
    if (a->b[0] == 0x20 && a->b[1] == 0x02) {
        memcpy(v4, a->b + 2, 4);
        return true;
    }
    return false;
}

static const char *class_v4(const uint8_t *b)
{
    static const struct {
        uint8_t net[4];
        int bits;
        const char *what;
    } ranges[] = {
        {{169, 254, 169, 254}, 32, "cloud metadata"},
        {{255, 255, 255, 255}, 32, "broadcast"},
        {{0, 0, 0, 0}, 32, "unspecified"},
        {{0, 0, 0, 0}, 8, "this network"},
        {{127, 0, 0, 0}, 8, "loopback"},
        {{10, 0, 0, 0}, 8, "private"},
        {{172, 16, 0, 0}, 12, "private"},
        {{192, 168, 0, 0}, 16, "private"},
        {{169, 254, 0, 0}, 16, "link-local"},
        {{100, 64, 0, 0}, 10, "shared"},   /* RFC 6598 carrier-grade NAT */
        {{192, 0, 0, 0}, 24, "reserved"},  /* IETF protocol assignments */
        {{198, 18, 0, 0}, 15, "reserved"}, /* benchmarking */
        {{224, 0, 0, 0}, 4, "multicast"},
        {{240, 0, 0, 0}, 4, "reserved"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (prefix_eq(b, ranges[i].net, ranges[i].bits)) return ranges[i].what;
    return NULL;
}

static const char *class_of(const struct addr *a)
{
    if (a->family == AF_INET) return class_v4(a->b);
    static const struct {
        uint8_t net[16];
        int bits;
        const char *what;
    } ranges[] = {
        /* AWS's IPv6 instance metadata address, inside fc00::/7. */
        {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, 0x54}, 128, "cloud metadata"},
        {{0}, 128, "unspecified"},
        {{[15] = 1}, 128, "loopback"},
        {{0xfe, 0x80}, 10, "link-local"},
        {{0xfe, 0xc0}, 10, "private"}, /* site-local, deprecated */
        {{0xfc}, 7, "private"},        /* unique local */
        {{0xff}, 8, "multicast"},
        {{0x01, 0x00}, 64, "reserved"}, /* discard-only */
    };
    uint8_t v4[4];
    if (embedded_v4(a, v4)) return class_v4(v4);
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (prefix_eq(a->b, ranges[i].net, ranges[i].bits)) return ranges[i].what;
    return NULL;
}

const char *http_job_addr_class(const struct sockaddr *sa)
{
    struct addr a;
    return from_sockaddr(sa, &a, NULL) ? class_of(&a) : NULL;
}

static bool allowed(const struct addr *a)
{
    uint8_t v4[4];
    bool has_v4 = embedded_v4(a, v4);
    for (size_t i = 0; i < allow_n; i++) {
        const struct cidr *c = &allow_list[i];
        if (c->a.family == a->family && prefix_eq(a->b, c->a.b, c->prefix)) return true;
        if (c->a.family == AF_INET && has_v4 && prefix_eq(v4, c->a.b, c->prefix)) return true;
    }
    return false;
}

bool http_job_addr_allowed(const struct sockaddr *sa)
{
    struct addr a;
    return from_sockaddr(sa, &a, NULL) && allowed(&a);
}

/* One entry, "addr" or "addr/prefix", of n bytes at s. */
static int parse_cidr(const char *s, size_t n, struct cidr *out, char *err, size_t errlen)
{
    char text[INET6_ADDRSTRLEN + 8];
    if (n == 0) {
        snprintf(err, errlen, "--http-allow: an entry is empty (write CIDR,CIDR,...)");
        return SKED_EINVAL;
    }
    if (n >= sizeof text) goto bad;
    memcpy(text, s, n);
    text[n] = '\0';
    char *slash = strchr(text, '/');
    if (slash) *slash = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->a.b) == 1) {
        out->a.family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, text, out->a.b) == 1) {
        out->a.family = AF_INET6;
        out->prefix = 128;
    } else {
        goto bad;
    }
    if (slash) {
        const char *p = slash + 1;
        int v = 0;
        if (!*p || strlen(p) > 3) goto bad;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') goto bad;
            v = v * 10 + (*p - '0');
        }
        if (v > out->prefix) goto bad;
        out->prefix = v;
    }
    /* 10.1.2.3/8 is most likely a typo for 10.1.2.3/32, or for 10.0.0.0/8:
     * ask rather than guess. */
    struct addr net = out->a;
    size_t len = out->a.family == AF_INET ? 4 : 16;
    for (size_t bit = (size_t)out->prefix; bit < len * 8; bit++)
        net.b[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
    if (memcmp(net.b, out->a.b, len)) {
        char fixed[INET6_ADDRSTRLEN];
        inet_ntop(out->a.family, net.b, fixed, sizeof fixed);
        snprintf(err, errlen,
                 "--http-allow: \"%.*s\" has bits set past its /%d prefix (did you mean "
                 "%s/%d?)",
                 (int)n, s, out->prefix, fixed, out->prefix);
        return SKED_EINVAL;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "--http-allow: \"%.*s\" is not an address or CIDR such as 10.0.0.0/8, "
             "127.0.0.1 or fd00::/8",
             (int)(n > 100 ? 100 : n), s);
    return SKED_EINVAL;
}

int http_job_allow(const char *cidrs, char *err, size_t errlen)
{
    struct cidr list[HTTP_JOB_ALLOW_MAX];
    size_t n = 0;
    const char *p = cidrs ? cidrs : "";
    while (*p == ' ')
        p++;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t t = len;
        while (t && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (n == HTTP_JOB_ALLOW_MAX) {
            snprintf(err, errlen, "--http-allow: at most %d entries", HTTP_JOB_ALLOW_MAX);
            return SKED_EINVAL;
        }
        int rc = parse_cidr(p, t, &list[n], err, errlen);
        if (rc) return rc;
        n++;
        p += len;
        if (*p == ',') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (!*p) return parse_cidr(p, 0, &list[0], err, errlen); /* trailing comma */
        }
    }
    memcpy(allow_list, list, n * sizeof *list);
    allow_n = n;
    return 0;
}

/* "127.0.0.1:8080" or "[::1]:8080". */
static void format_endpoint(const struct sockaddr *sa, char *out, size_t outlen)
{
    struct addr a;
    int port = 0;
    char text[INET6_ADDRSTRLEN] = "?";
    if (!from_sockaddr(sa, &a, &port)) {
        snprintf(out, outlen, "an address of family %d", sa->sa_family);
        return;
    }
    inet_ntop(a.family, a.b, text, sizeof text);
    if (a.family == AF_INET6)
        snprintf(out, outlen, "[%s]:%d", text, port);
    else
        snprintf(out, outlen, "%s:%d", text, port);
}

/* ---- one attempt --------------------------------------------------------- */

struct xfer {
    uint32_t magic;
    CURL *h;
    const sked_host *host;
    sked_attempt *att;
    const httpspec_t *spec;
    char refused[256]; /* the first refused connection's reason; "" = none */
    long status;       /* of the response whose headers are arriving */
    json_t *headers;   /* of that response: lower-case name -> value */
    buf_t body;        /* its first spec->max_response bytes */
    bool truncated;    /* more body arrived than was kept */
    int64_t req_ns;    /* when the current request started (monotonic) */
    bool logged;       /* the current response's log line is written */
};

static struct xfer *xfer_of(void *p)
{
    struct xfer *x = p;
    assert(x->magic == XFER_MAGIC);
    return x;
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    struct xfer *x = xfer_of(clientp);
    struct addr a;
    const struct sockaddr *sa = &address->addr;
    const char *why = NULL;
    if (!from_sockaddr(sa, &a, NULL))
        why = "not an IP address";
    else if ((why = class_of(&a)) && allowed(&a))
        why = NULL;
    if (why) {
        if (!x->refused[0]) {
            char ep[INET6_ADDRSTRLEN + 16];
            format_endpoint(sa, ep, sizeof ep);
            snprintf(x->refused, sizeof x->refused,
                     "http: refused to connect to %s (%s; allow it with --http-allow)", ep, why);
        }
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* The URL as it may be shown: without user and password. New. */
static char *shown_url(const char *url)
{
    CURLU *u = curl_url();
    char *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        char *s = NULL;
        if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) out = xstrdup(s);
        curl_free(s);
    }
    curl_url_cleanup(u);
    return out ? out : xstrdup("(a URL libcurl cannot parse)");
}

/* libcurl hands every header line of every response, those of redirects
 * and 1xx interim answers included: a status line starts a response,
 * an empty line ends its headers. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = xfer_of(arg);
    size_t n = size * nmemb;
    if (n >= 5 && !memcmp(data, "HTTP/", 5)) {
        const char *sp = memchr(data, ' ', n);
        x->status = sp && sp + 4 <= data + n ? strtol(sp + 1, NULL, 10) : 0;
        json_object_clear(x->headers);
        buf_reset(&x->body);
        x->truncated = false;
        x->logged = false;
        return n;
    }
    if ((n == 2 && data[0] == '\r') || (n == 1 && data[0] == '\n')) {
        /* Once per response: trailers after a chunked body end with an
         * empty line too. */
        if (x->status >= 200 && !x->logged) {
            x->logged = true;
            char *url = NULL, *method = NULL;
            curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &url);
            curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_METHOD, &method);
            char *shown = shown_url(url ? url : "");
            int64_t now = clock_mono_ns();
            x->host->outputf(x->att, SKED_STDOUT, "%s %s -> %ld (%lld ms)\n",
                             method ? method : x->spec->method, shown, x->status,
                             (long long)((now - x->req_ns) / 1000000));
            x->req_ns = now; /* a redirect's request starts now */
            free(shown);
        }
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon || colon == data) return n; /* a folded line or junk: not kept */
    char *name = xstrndup(data, (size_t)(colon - data));
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    /* A header value need not be UTF-8; jansson only takes UTF-8. */
    json_t *val = json_stringn(v, (size_t)(end - v));
    if (!val) val = json_string("(not UTF-8)");
    json_t *prev = json_object_get(x->headers, name);
    if (prev) {
        char *joined = xasprintf("%s, %s", json_string_value(prev), json_string_value(val));
        json_decref(val);
        val = json_string(joined);
        free(joined);
    }
    json_object_set_new(x->headers, name, val);
    free(name);
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = xfer_of(arg);
    size_t n = size * nmemb;
    size_t room = x->spec->max_response - x->body.len;
    if (n > room) {
        buf_append(&x->body, data, room);
        x->truncated = true;
        /* The rest of the final answer is not wanted: stop reading it
         * (libcurl then ends with CURLE_WRITE_ERROR, which run takes for
         * success). libcurl does not hand over the bodies of redirects it
         * follows; were one to come, stopping would also stop the
         * redirect, so a 3xx body that may be followed is only drained. */
        if (x->spec->max_redirects == 0 || x->status < 300 || x->status > 399) return 0;
        return n;
    }
    buf_append(&x->body, data, n);
    return n;
}

/* Adds the body of the response to o: "body" when it is UTF-8 text without
 * NUL (cut back to a whole character if it was truncated inside one),
 * else "body_base64". At most cap bytes of it. Returns whether it is text. */
static bool add_body(json_t *o, const char *data, size_t len, bool truncated, size_t cap)
{
    if (len > cap) {
        len = cap;
        truncated = true;
    }
    if (!memchr(data, '\0', len)) {
        for (size_t cut = 0; cut <= (truncated ? 3 : 0) && cut <= len; cut++) {
            json_t *s = json_stringn(data, len - cut);
            if (s) {
                json_object_set_new(o, "body", s);
                return true;
            }
        }
    }
    size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(b64len);
    sodium_bin2base64(b64, b64len, (const unsigned char *)data, len,
                      sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(o, "body_base64", json_string(b64));
    free(b64);
    return false;
}

static char *result_text(struct xfer *x, const char *final_url, long redirects, int64_t time_ms,
                         size_t cap)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_integer(x->status));
    json_object_set(o, "headers", x->headers);
    add_body(o, x->body.data ? x->body.data : "", x->body.len, x->truncated, cap);
    json_object_set_new(o, "truncated", json_boolean(x->truncated || x->body.len > cap));
    json_object_set_new(o, "url", json_string(final_url));
    json_object_set_new(o, "redirects", json_integer(redirects));
    json_object_set_new(o, "time_ms", json_integer(time_ms));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* Sets the result. When the worker refuses it (too large for its
 * --result-max), again with the body cut to fit the default --result-max,
 * and at last with no body at all ("truncated" says so each time). */
static void set_result(struct xfer *x, const char *final_url, long redirects, int64_t time_ms)
{
    size_t cap = x->body.len;
    char *text = result_text(x, final_url, redirects, time_ms, cap);
    size_t len = strlen(text);
    if (x->host->result(x->att, text, len) == 0) goto out;
    /* Escaping and base64 make the text longer than the body: shrink the
     * body by the text's overshoot, and a tenth more, until it fits. */
    while (len > RESULTS_DEFAULT_BYTES && cap > 0) {
        cap = (size_t)((double)cap * RESULTS_DEFAULT_BYTES / (double)len * 0.9);
        free(text);
        text = result_text(x, final_url, redirects, time_ms, cap);
        len = strlen(text);
    }
    if (cap < x->body.len) {
        if (x->host->result(x->att, text, len) == 0) goto out;
        if (cap == 0) goto out; /* that was the body-less one */
    }
    if (x->body.len > 0) {
        free(text);
        text = result_text(x, final_url, redirects, time_ms, 0);
        x->host->result(x->att, text, strlen(text));
    }
out:
    free(text);
}

/* Writes the kept body to the log: text as it is, anything else as a note
 * (the result holds it in base64). */
static void log_body(struct xfer *x)
{
    if (!x->body.len) return;
    json_t *probe = json_object();
    bool text = add_body(probe, x->body.data, x->body.len, x->truncated, x->body.len);
    json_decref(probe);
    if (text) {
        x->host->output(x->att, SKED_STDOUT, x->body.data, x->body.len);
        if (x->body.data[x->body.len - 1] != '\n') x->host->output(x->att, SKED_STDOUT, "\n", 1);
    } else {
        x->host->outputf(x->att, SKED_STDOUT,
                         "(%zu bytes of binary response body; base64 in the result)\n",
                         x->body.len);
    }
    if (x->truncated)
        x->host->outputf(x->att, SKED_STDOUT, "(response body cut at %zu bytes: max_response)\n",
                         x->spec->max_response);
}

static struct curl_slist *request_headers(const httpspec_t *s)
{
    struct curl_slist *hl = NULL;
    bool has_ct = false, has_expect = false;
    for (size_t i = 0; i < s->nheaders; i++) {
        const httpspec_header_t *h = &s->headers[i];
        if (!strcasecmp(h->name, "Content-Type")) has_ct = true;
        if (!strcasecmp(h->name, "Expect")) has_expect = true;
        /* "Name:" would make libcurl drop the header; "Name;" sends it
         * empty. */
        char *line =
            h->value[0] ? xasprintf("%s: %s", h->name, h->value) : xasprintf("%s;", h->name);
        hl = curl_slist_append(hl, line);
        free(line);
    }
    /* libcurl would otherwise claim a form (application/x-www-form-urlencoded). */
    if (s->body && !has_ct) hl = curl_slist_append(hl, "Content-Type:");
    /* "Expect: 100-continue" costs a round trip, or a second's stall, on
     * every body over 1 KiB. */
    if (!has_expect) hl = curl_slist_append(hl, "Expect:");
    return hl;
}

static void setup(struct xfer *x, char *errbuf, int64_t timeout_ms)
{
    CURL *h = x->h;
    const httpspec_t *s = x->spec;
    curl_easy_setopt(h, CURLOPT_URL, s->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never http_proxy & co. from the environment */
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sked/" SKED_VERSION);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < CONNECT_MAX_MS ? timeout_ms : CONNECT_MAX_MS));
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    if (s->max_redirects > 0) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)s->max_redirects);
    }
    const char *m = s->method;
    if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(m, "GET") && !s->body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(m, "POST")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
        if (s->body || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, s->body ? s->body : "");
        }
    }
}

/* Drives the transfer until it ends or the attempt must stop. Returns
 * libcurl's result, or -1 when stopped. */
static int perform(struct xfer *x)
{
    CURLM *m = curl_multi_init();
    if (!m) return CURLE_OUT_OF_MEMORY;
    curl_multi_add_handle(m, x->h);
    int cancel_fd = x->host->cancel_fd(x->att);
    int running = 1, rc = -1;
    for (;;) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = CURLE_FAILED_INIT;
            break;
        }
        if (!running) {
            int left;
            CURLMsg *msg;
            rc = CURLE_OK;
            while ((msg = curl_multi_info_read(m, &left)))
                if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
            break;
        }
        struct curl_waitfd wfd = {cancel_fd, CURL_WAIT_POLLIN, 0};
        curl_multi_poll(m, &wfd, cancel_fd >= 0 ? 1 : 0, POLL_MAX_MS, NULL);
        if (wfd.revents || x->host->cancelled(x->att)) {
            rc = -1;
            break;
        }
    }
    curl_multi_remove_handle(m, x->h);
    curl_multi_cleanup(m);
    return rc;
}

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    size_t len = 0;
    const char *text = host->config(att, &len);
    json_error_t jerr;
    json_t *config = json_loadb(text ? text : "", len, JSON_LOAD_FLAGS, &jerr);
    httpspec_t spec;
    jobspec_error_t err;
    memset(&spec, 0, sizeof spec);
    struct xfer x = {.magic = XFER_MAGIC, .host = host, .att = att, .spec = &spec};
    struct curl_slist *hl = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    int ret = SKED_PLUGIN_FAILED;
    if (!config) {
        host->fail(att, "config: not JSON (%s)", jerr.text);
        goto out;
    }
    if (httpspec_parse(config, &spec, &err)) {
        host->fail(att, "%s", err.detail);
        goto out;
    }
    int64_t timeout_ms = spec.timeout_ms;
    /* The job's own timeout is the worker's to enforce (it stops the
     * attempt through cancel_fd and reports the outcome "timeout", as for
     * a shell job); ours, a little later, is only a backstop. */
    int64_t left_ms = host->deadline_ms(att);
    if (left_ms >= 0 && left_ms + DEADLINE_SLACK_MS < timeout_ms)
        timeout_ms = left_ms + DEADLINE_SLACK_MS;
    if (left_ms == 0) {
        host->fail(att, "timeout");
        goto out;
    }
    if (!(x.h = curl_easy_init())) {
        host->fail(att, "http: cannot start libcurl");
        goto out;
    }
    x.headers = json_object();
    setup(&x, errbuf, timeout_ms);
    hl = request_headers(&spec);
    curl_easy_setopt(x.h, CURLOPT_HTTPHEADER, hl);

    int64_t t0 = clock_mono_ns();
    x.req_ns = t0;
    int cc = perform(&x);
    int64_t time_ms = (clock_mono_ns() - t0) / 1000000;
    if (cc == -1) {
        host->fail(att, "canceled");
        goto out;
    }
    /* A write error is ours: the body reached max_response and the rest
     * was not read. */
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && x.truncated)) {
        char *shown = shown_url(spec.url);
        /* A refused address is what made the connect fail; when another
         * address of the host was taken, the failure is something else. */
        if (x.refused[0] && cc == CURLE_COULDNT_CONNECT)
            host->fail(att, "%s", x.refused);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            host->fail(att, "timeout");
        else if (cc == CURLE_TOO_MANY_REDIRECTS)
            host->fail(att, "http: more than %d redirects (config.max_redirects)",
                       spec.max_redirects);
        else
            host->fail(att, "http: %s %s: %s", spec.method, shown,
                       errbuf[0] ? errbuf : curl_easy_strerror((CURLcode)cc));
        if (cc == CURLE_OPERATION_TIMEDOUT)
            host->outputf(att, SKED_STDERR, "http: %s %s: no complete answer within %lld ms\n",
                          spec.method, shown, (long long)timeout_ms);
        free(shown);
        goto out;
    }
    char *final = NULL;
    long redirects = 0;
    curl_easy_getinfo(x.h, CURLINFO_EFFECTIVE_URL, &final);
    curl_easy_getinfo(x.h, CURLINFO_REDIRECT_COUNT, &redirects);
    char *shown = shown_url(final ? final : spec.url);
    log_body(&x);
    set_result(&x, shown, redirects, time_ms);
    free(shown);
    if (httpspec_expected(&spec, x.status)) {
        ret = SKED_PLUGIN_OK;
    } else if (spec.nexpect == 0) {
        host->fail(att, "HTTP %ld (expected 2xx)", x.status);
    } else {
        buf_t b = BUF_INIT;
        for (size_t i = 0; i < spec.nexpect; i++)
            buf_printf(&b, "%s%d", i ? ", " : "", spec.expect[i]);
        host->fail(att, "HTTP %ld (expected %s)", x.status, b.data);
        buf_free(&b);
    }
out:
    if (x.h) curl_easy_cleanup(x.h);
    curl_slist_free_all(hl);
    json_decref(x.headers);
    buf_free(&x.body);
    httpspec_free(&spec);
    json_decref(config);
    return ret;
}

/* ---- the descriptor ------------------------------------------------------ */

static int init(const sked_host *host, void **state, char *err, size_t errlen)
{
    *state = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl failed to initialise");
        return SKED_PLUGIN_FAILED;
    }
    return SKED_PLUGIN_OK;
}

static void fini(void *state)
{
    curl_global_cleanup();
}

static int validate(void *state, const char *config, size_t len, char *field, size_t fieldlen,
                    char *detail, size_t detaillen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(config, len, JSON_LOAD_FLAGS, &jerr);
    if (!doc) {
        snprintf(field, fieldlen, "config");
        snprintf(detail, detaillen, "config: not JSON (%s)", jerr.text);
        return SKED_PLUGIN_FAILED;
    }
    httpspec_t s;
    jobspec_error_t err;
    int rc = httpspec_parse(doc, &s, &err);
    json_decref(doc);
    httpspec_free(&s);
    if (!rc) return SKED_PLUGIN_OK;
    snprintf(field, fieldlen, "%s", err.field);
    snprintf(detail, detaillen, "%s", err.detail);
    return SKED_PLUGIN_FAILED;
}

const sked_plugin http_job_plugin = {
    SKED_PLUGIN_ABI, sizeof(sked_plugin), "jobtype/http", SKED_VERSION, init, fini, validate, run,
};
