/*
 * The alert channel senders (alert_send.h): webhook and Slack are one JSON
 * POST each, email is one message handed to the server's SMTP relay, all
 * over a libcurl easy handle made for the call and dropped after it (a
 * delivery is rare; a shared handle would need a lock and would keep a
 * connection to every receiver open).
 *
 * What a receiver can rely on, and why it is done this way:
 * - The webhook signature covers "<t>.<body>" with t the send time in unix
 *   seconds, so a receiver that also bounds |now - t| rejects a replayed
 *   request (the scheme of Stripe's and Slack's signed requests). t is the
 *   wall clock, read here at the edge.
 * - Email headers are built here, not by libcurl: every byte that comes
 *   from a rule or a job (the subject, the recipients) is either stripped of
 *   control characters (the subject) or refused (recipients), so no input
 *   can add a header line or a recipient. The body goes out
 *   quoted-printable, which keeps every line short and 7-bit whatever the
 *   text holds, so no relay needs 8BITMIME and no line can be a lone ".".
 * - err is built from libcurl's error buffer and the HTTP status, which
 *   name hosts and ports but never a URL path, a header or a password;
 *   scrub() still removes any secret and the URL from it as a last guard.
 */
#include "server/alert_send.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"

/* The build may define it (sked_build_info wants one version for all). */
#ifndef SKED_VERSION
#define SKED_VERSION "dev"
#endif

#define DEFAULT_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 5000 /* a blackholed receiver must not eat the whole budget */
#define CRED_FILE_MAX      4096 /* bytes; a credentials file is one short line */
#define SUBJECT_MAX        900  /* bytes; a header line may hold 998 */
#define RECIPIENTS_MAX     50
#define ANSWER_KEEP        120 /* bytes of a failed answer's body kept for err */
#define ID_MAX             128

/* ---- one-time setup ----------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void global_init(void)
{
    /* Reference-counted in libcurl, so sharing it with httpc.c is fine;
     * done once before any handle, as older libcurl needs. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sodium_ok = sodium_init() >= 0;
}

/* ---- err ---------------------------------------------------------------- */

/* Replaces every occurrence of s (when 4 bytes or longer: a shorter one
 * would match ordinary words, and is no secret) in err with "***". */
static void redact(char *err, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *p;
    if (n < 4) return;
    while ((p = strstr(err, s)) != NULL) {
        size_t tail = strlen(p + n);
        memmove(p + 3, p + n, tail + 1);
        memcpy(p, "***", 3);
    }
}

/* The last guard on err: the secrets and the URL (a Slack URL is a
 * credential; a webhook URL may carry a token) never leave in it, and it
 * stays one line of printable text. */
static void scrub(char *err, const alert_channel_t *ch, const alert_smtp_t *smtp)
{
    if (ch) {
        redact(err, ch->secret);
        redact(err, ch->url);
        const char *path = ch->url ? strstr(ch->url, "://") : NULL;
        if (path && (path = strchr(path + 3, '/')) != NULL && strlen(path) > 1) redact(err, path);
    }
    if (smtp) {
        redact(err, smtp->password);
        redact(err, smtp->url);
    }
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

static int fail(char err[256], int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char err[256], int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 256, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- small validators --------------------------------------------------- */

/* 1..ID_MAX of [A-Za-z0-9._-]: safe in a header and in a Message-ID. */
static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return false;
    return true;
}

/* A plain address "local@domain" of printable ASCII without spaces,
 * quotes, brackets or separators: nothing that could end a header line or
 * an SMTP command, or smuggle in a second recipient. n bytes of s. */
static bool valid_addr(const char *s, size_t n)
{
    size_t at = 0, ats = 0;
    if (n < 3 || n > 254) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\"\\", c)) return false;
        if (c == '@') ats++, at = i;
    }
    return ats == 1 && at > 0 && at < n - 1;
}

/* ---- HTTP (webhook, slack) ---------------------------------------------- */

struct answer {
    char head[ANSWER_KEEP + 1]; /* the start of the body, for err */
    size_t len;
};

static size_t keep_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb, room = ANSWER_KEEP - a->len;
    if (room) {
        size_t k = n < room ? n : room;
        memcpy(a->head + a->len, data, k);
        a->len += k;
        a->head[a->len] = 0;
    }
    return n; /* the rest is read and dropped */
}

/* Options every handle gets: timeouts, no signals (threads), verified TLS
 * with the alert CA file if one is set, protocols limited to what the
 * channel speaks. */
static void common_opts(CURL *h, const char *protocols, const alert_smtp_t *smtp, long timeout_ms,
                        char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (smtp && smtp->ca_file) {
        /* "This CA and no other", as the worker's --ca. */
        curl_easy_setopt(h, CURLOPT_CAINFO, smtp->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
}

/* The transport error of a finished call: libcurl's detailed message when
 * it left one, else the code's. */
static int transport_fail(char err[256], CURLcode cc, const char *errbuf)
{
    return fail(err, SKED_EIO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

static bool is_http_url(const char *url)
{
    return url && (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8)) &&
           url[strcspn(url, "\r\n \t")] == 0;
}

/* POSTs body as application/json with the extra header lines hl (taken
 * over; freed here). 0 on a 2xx. */
static int post_json(const char *url, const alert_smtp_t *smtp, const char *body, size_t len,
                     struct curl_slist *hl, long timeout_ms, char err[256])
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct answer ans = {.len = 0};
    long status = 0;
    int rc;
    CURL *h = curl_easy_init();
    if (!h) {
        curl_slist_free_all(hl);
        return fail(err, SKED_ENOMEM, "cannot make a curl handle");
    }
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    common_opts(h, "http,https", smtp, timeout_ms, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sked/" SKED_VERSION);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_answer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = transport_fail(err, cc, errbuf);
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            rc = 0;
        } else {
            /* The start of the answer says why (Slack: "invalid_payload",
             * "no_service"); its first line only. */
            ans.head[strcspn(ans.head, "\r\n")] = 0;
            rc = ans.head[0] ? fail(err, SKED_EIO, "HTTP %ld: %s", status, ans.head)
                             : fail(err, SKED_EIO, "HTTP %ld", status);
        }
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    return rc;
}

/* hex HMAC-SHA256(secret, "<t>.<body>") into out. */
static void sign(const char *secret, long long t, const char *body, size_t len,
                 char out[crypto_auth_hmacsha256_BYTES * 2 + 1])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char ts[32];
    int n = snprintf(ts, sizeof ts, "%lld.", t);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, crypto_auth_hmacsha256_BYTES * 2 + 1, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(mac, sizeof mac);
}

static int send_webhook(const alert_channel_t *ch, const alert_smtp_t *smtp,
                        const alert_message_t *msg, long timeout_ms, char err[256])
{
    struct curl_slist *hl = NULL;
    if (!msg->json) return fail(err, SKED_EINVAL, "webhook: the message has no JSON body");
    size_t len = strlen(msg->json);
    if (ch->secret && *ch->secret) {
        char hex[crypto_auth_hmacsha256_BYTES * 2 + 1];
        char line[200];
        long long t = (long long)time(NULL);
        sign(ch->secret, t, msg->json, len, hex);
        snprintf(line, sizeof line, "X-Sked-Signature: t=%lld,v1=%s", t, hex);
        hl = curl_slist_append(hl, line);
    }
    if (msg->id) {
        char line[ID_MAX + 32];
        snprintf(line, sizeof line, "X-Sked-Delivery: %s", msg->id);
        hl = curl_slist_append(hl, line);
    }
    return post_json(ch->url, smtp, msg->json, len, hl, timeout_ms, err);
}

static int send_slack(const alert_channel_t *ch, const alert_smtp_t *smtp,
                      const alert_message_t *msg, long timeout_ms, char err[256])
{
    const char *text = msg->text ? msg->text : msg->subject;
    if (!text) return fail(err, SKED_EINVAL, "slack: the message has no text");
    json_t *s = json_string(text); /* NULL unless valid UTF-8 */
    if (!s) return fail(err, SKED_EINVAL, "slack: the text is not valid UTF-8");
    json_t *doc = json_object();
    json_object_set_new(doc, "text", s);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body) return fail(err, SKED_ENOMEM, "slack: cannot encode the text");
    int rc = post_json(ch->url, smtp, body, strlen(body), NULL, timeout_ms, err);
    free(body);
    return rc;
}

/* ---- email -------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (n bytes left), or 0 if it is not a
 * well-formed one (overlong forms and surrogates included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k;
    uint32_t cp;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xe0) == 0xc0)
        k = 2, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        k = 3, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        k = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (k > n) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

/* The subject as one header line's worth of text: at most SUBJECT_MAX
 * bytes, cut between characters, control characters (CR and LF above all:
 * they would start a new header) turned into spaces and malformed UTF-8
 * into '?'. New string. */
static char *clean_subject(const char *subject)
{
    const unsigned char *s = (const unsigned char *)subject;
    size_t n = strlen(subject), o = 0;
    char *out = xmalloc(n < SUBJECT_MAX ? n + 1 : SUBJECT_MAX + 1);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(s + i, n - i);
        if (o + (k ? k : 1) > SUBJECT_MAX) break;
        if (k == 0) {
            out[o++] = '?', i++;
        } else if (k == 1) {
            out[o++] = s[i] < 0x20 || s[i] == 0x7f ? ' ' : (char)s[i];
            i++;
        } else {
            memcpy(out + o, s + i, k), o += k, i += k;
        }
    }
    out[o] = 0;
    return out;
}

/* "Subject: ..." with its CRLF into b: as is when it is ASCII, else as
 * RFC 2047 encoded words ("=?UTF-8?B?...?="), each at most 75 characters
 * and never splitting a character, folded onto continuation lines. */
static void put_subject(buf_t *b, const char *subject)
{
    char *s = clean_subject(subject);
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        if (u[i] >= 0x80) ascii = false;
    buf_puts(b, "Subject: ");
    if (ascii) {
        buf_puts(b, s);
    } else {
        /* 39 bytes -> 52 base64 characters + 12 of framing: 73 on the
         * first line after "Subject: ", within RFC 2047's 76. */
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n) {
                size_t k = utf8_len(u + j, n - j); /* clean: never 0 */
                if (j + k - i > 39) break;
                j += k;
            }
            char b64[64];
            sodium_bin2base64(b64, sizeof b64, u + i, j - i, sodium_base64_VARIANT_ORIGINAL);
            buf_printf(b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", b64);
            i = j;
        }
    }
    buf_puts(b, "\r\n");
    free(s);
}

/* text as a quoted-printable body (RFC 2045 6.7) into b: lines end in
 * CRLF whatever the input used, none is longer than 76 characters, and
 * everything but printable ASCII is =XX. A '.' opening a line is encoded
 * too, so no line can read as SMTP's end of data. */
static void put_qp(buf_t *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)text;
    size_t col = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = s[i];
        if (c == '\n' || (c == '\r' && s[i + 1] == '\n')) {
            if (c == '\r') i++;
            buf_puts(b, "\r\n");
            col = 0;
            continue;
        }
        bool line_end = s[i + 1] == 0 || s[i + 1] == '\n' || (s[i + 1] == '\r' && s[i + 2] == '\n');
        bool literal = (c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0)) ||
                       ((c == ' ' || c == '\t') && !line_end);
        char tok[3] = {(char)c, 0, 0};
        size_t k = 1;
        if (!literal) tok[0] = '=', tok[1] = hex[c >> 4], tok[2] = hex[c & 15], k = 3;
        if (col + k > 75) { /* soft line break: '=' is the 76th character */
            buf_puts(b, "=\r\n");
            col = 0;
            if (c == '.') tok[0] = '=', tok[1] = '2', tok[2] = 'E', k = 3;
        }
        buf_append(b, tok, k);
        col += k;
    }
    if (col) buf_puts(b, "\r\n");
}

/* The address in a From value: "a@x", or the part in <> of "Name <a@x>".
 * Points into from; *n its length; NULL if there is none. */
static const char *from_addr(const char *from, size_t *n)
{
    const char *lt = strrchr(from, '<');
    if (!lt) {
        *n = strlen(from);
        return from;
    }
    const char *gt = strchr(lt, '>');
    if (!gt || gt[1]) return NULL;
    *n = (size_t)(gt - lt - 1);
    return lt + 1;
}

/* Checks an --smtp-from value: printable ASCII, a valid address. */
static bool valid_from(const char *from)
{
    size_t n;
    for (const unsigned char *p = (const unsigned char *)from; *p; p++)
        if (*p < 0x20 || *p >= 0x7f) return false;
    const char *a = from_addr(from, &n);
    return a && valid_addr(a, n);
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The whole message, headers and body, into b. rcpts: the recipients,
 * checked; from: the relay's sender, checked at init. */
static void build_message(buf_t *b, const alert_smtp_t *smtp, struct curl_slist *rcpts,
                          const alert_message_t *msg)
{
    time_t now = time(NULL);
    struct tm tm;
    size_t an;
    const char *addr = from_addr(smtp->from, &an);
    const char *domain = memchr(addr, '@', an) + 1;
    int dn = (int)(an - (size_t)(domain - addr));

    gmtime_r(&now, &tm);
    /* By hand: strftime's %a and %b follow the locale; RFC 5322 wants English. */
    buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", wdays[tm.tm_wday], tm.tm_mday,
               months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    buf_printf(b, "From: %s\r\n", smtp->from);
    buf_puts(b, "To: ");
    for (struct curl_slist *r = rcpts; r; r = r->next) {
        size_t n = strlen(r->data);
        buf_printf(b, "%s%.*s", r == rcpts ? "" : ",\r\n ", (int)(n - 2), r->data + 1);
    }
    buf_puts(b, "\r\n");
    put_subject(b, msg->subject ? msg->subject : "[sked] alert");
    if (msg->id) {
        /* Stable across retries: a relay or a mail client that sees the
         * message twice can tell. */
        buf_printf(b, "Message-ID: <sked.%s@%.*s>\r\n", msg->id, dn, domain);
    } else {
        unsigned char rnd[16];
        char hex[33];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        buf_printf(b, "Message-ID: <sked.%s@%.*s>\r\n", hex, dn, domain);
    }
    buf_puts(b, "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n"
                /* RFC 3834: no vacation auto-replies to a machine. */
                "Auto-Submitted: auto-generated\r\n"
                "\r\n");
    put_qp(b, msg->text ? msg->text : "");
}

/* Splits "a@x, b@y" into "<a@x>" entries. 0, or SKED_EINVAL with err. */
static int parse_rcpts(const char *to, struct curl_slist **out, char err[256])
{
    struct curl_slist *l = NULL;
    int count = 0;
    *out = NULL;
    for (const char *p = to;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        count++;
        if (!valid_addr(p, n) || count > RECIPIENTS_MAX) {
            curl_slist_free_all(l);
            return count > RECIPIENTS_MAX
                       ? fail(err, SKED_EINVAL, "email: more than %d recipients", RECIPIENTS_MAX)
                       : fail(err, SKED_EINVAL,
                              "email: recipient %d is not a plain address (user@host)", count);
        }
        char *r = xasprintf("<%.*s>", (int)n, p);
        l = curl_slist_append(l, r);
        free(r);
        if (!end) break;
        p = end + 1;
    }
    if (!l) return fail(err, SKED_EINVAL, "email: the channel has no recipients");
    *out = l;
    return 0;
}

/* Whether the URL's host is a loopback address or "localhost". */
static bool loopback_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool lo = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        struct in_addr a4;
        lo = !strcasecmp(host, "localhost") || !strcmp(host, "[::1]") ||
             (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127);
    }
    curl_free(host);
    curl_url_cleanup(u);
    return lo;
}

struct upload {
    const char *p;
    size_t left;
};

static size_t read_upload(char *dst, size_t size, size_t nmemb, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nmemb < u->left ? size * nmemb : u->left;
    memcpy(dst, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

static int send_email(const alert_channel_t *ch, const alert_smtp_t *smtp,
                      const alert_message_t *msg, long timeout_ms, char err[256])
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *rcpts = NULL;
    buf_t m = BUF_INIT;
    CURL *h = NULL;
    size_t an;
    int rc;

    if (!smtp || !smtp->url || !smtp->from)
        return fail(err, SKED_EINVAL, "email: no SMTP relay is configured (--smtp-url)");
    if (!valid_from(smtp->from))
        return fail(err, SKED_EINVAL, "email: the relay's sender is not an address");
    if (!ch->to) return fail(err, SKED_EINVAL, "email: the channel has no recipients");
    if ((rc = parse_rcpts(ch->to, &rcpts, err)) < 0) return rc;
    if (!(h = curl_easy_init())) {
        rc = fail(err, SKED_ENOMEM, "cannot make a curl handle");
        goto out;
    }
    build_message(&m, smtp, rcpts, msg);

    const char *addr = from_addr(smtp->from, &an);
    char *mail_from = xasprintf("<%.*s>", (int)an, addr);
    struct upload up = {m.data, m.len};
    bool implicit_tls = !strncasecmp(smtp->url, "smtps://", 8);
    common_opts(h, "smtp,smtps", smtp, timeout_ms, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, smtp->url);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m.len);
    /* STARTTLS whenever offered; required when a password would otherwise
     * cross a network in clear. smtps:// is TLS from the first byte. */
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     implicit_tls || (smtp->user && !loopback_host(smtp->url))
                         ? (long)CURLUSESSL_ALL
                         : (long)CURLUSESSL_TRY);
    if (smtp->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, smtp->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, smtp->password ? smtp->password : "");
    }
    CURLcode cc = curl_easy_perform(h);
    free(mail_from);
    if (cc == CURLE_OK) {
        rc = 0;
    } else if (cc == CURLE_LOGIN_DENIED) {
        rc = fail(err, SKED_EIO, "SMTP authentication failed: %s",
                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else if (cc == CURLE_USE_SSL_FAILED) {
        rc = fail(err, SKED_EIO,
                  "the SMTP relay does not offer STARTTLS, which sending the "
                  "password needs: %s",
                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else {
        rc = transport_fail(err, cc, errbuf);
    }
out:
    /* The message holds no secret, but the handle held the password. */
    if (h) curl_easy_cleanup(h);
    curl_slist_free_all(rcpts);
    buf_free(&m);
    return rc;
}

/* ---- the entry point ---------------------------------------------------- */

int alert_send(const alert_channel_t *ch, const alert_smtp_t *smtp, const alert_message_t *msg,
               long timeout_ms, char err[256])
{
    int rc;
    err[0] = 0;
    pthread_once(&global_once, global_init);
    if (!sodium_ok) return fail(err, SKED_EINTERNAL, "libsodium failed to initialise");
    if (timeout_ms <= 0) timeout_ms = DEFAULT_TIMEOUT_MS;
    if (msg->id && !valid_id(msg->id))
        return fail(err, SKED_EINVAL, "the delivery id is not 1-%d of [A-Za-z0-9._-]", ID_MAX);
    switch (ch->kind) {
    case ALERT_CHANNEL_WEBHOOK:
    case ALERT_CHANNEL_SLACK:
        if (!is_http_url(ch->url)) {
            rc = fail(err, SKED_EINVAL, "%s: the URL must be http:// or https://",
                      alert_channel_kind_name(ch->kind));
            break;
        }
        rc = ch->kind == ALERT_CHANNEL_WEBHOOK ? send_webhook(ch, smtp, msg, timeout_ms, err)
                                               : send_slack(ch, smtp, msg, timeout_ms, err);
        break;
    case ALERT_CHANNEL_EMAIL:
        rc = send_email(ch, smtp, msg, timeout_ms, err);
        break;
    default:
        rc = fail(err, SKED_EINVAL, "unknown channel kind %d", (int)ch->kind);
    }
    if (rc < 0) scrub(err, ch, smtp);
    return rc;
}

/* ---- the relay's configuration ------------------------------------------ */

/* Reads "user:password" from path into s->user and s->password. The file
 * must be a regular file closed to group and others (libpq's rule for
 * .pgpass, and ssh's for private keys: a password others can read is
 * already lost). Messages name the file and never quote it. */
static int read_credentials(alert_smtp_t *s, const char *path, char err[256])
{
    char data[CRED_FILE_MAX + 1];
    struct stat st;
    ssize_t n = 0, r;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return fail(err, SKED_EINVAL, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = fail(err, SKED_EINVAL, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(err, SKED_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = fail(err, SKED_EINVAL,
                  "%s: permissions %04o let group or others in; it holds a password, so it "
                  "must be the owner's only (chmod 600)",
                  path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    while (n <= CRED_FILE_MAX && (r = read(fd, data + n, (size_t)(CRED_FILE_MAX + 1 - n))) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            rc = fail(err, SKED_EINVAL, "%s: %s", path, strerror(errno));
            goto out;
        }
        n += r;
    }
    if (n > CRED_FILE_MAX) {
        rc = fail(err, SKED_EINVAL, "%s: larger than %d bytes; expected one line user:password",
                  path, CRED_FILE_MAX);
        goto out;
    }
    data[n] = 0;
    /* One line, its newline optional; nothing but line ends after it. */
    size_t line = strcspn(data, "\r\n");
    bool rest_blank = strspn(data + line, "\r\n") == (size_t)n - line;
    char *colon = memchr(data, ':', line);
    bool clean = memchr(data, 0, (size_t)n) == NULL;
    for (size_t i = 0; clean && i < line; i++)
        if ((unsigned char)data[i] < 0x20 || data[i] == 0x7f) clean = false;
    if (!rest_blank || !colon || colon == data || !clean) {
        rc = fail(err, SKED_EINVAL, "%s: expected one line user:password", path);
        goto out;
    }
    s->user = xstrndup(data, (size_t)(colon - data));
    s->password = xstrndup(colon + 1, line - (size_t)(colon + 1 - data));
out:
    sodium_memzero(data, sizeof data);
    close(fd);
    return rc;
}

int alert_smtp_init(alert_smtp_t *out, const char *url, const char *from,
                    const char *credentials_file, char err[256])
{
    int rc = 0;
    err[0] = 0;
    pthread_once(&global_once, global_init);
    memset(out, 0, sizeof *out);
    if (!url || !*url) {
        if ((from && *from) || (credentials_file && *credentials_file))
            return fail(err, SKED_EINVAL,
                        "--smtp-from and --smtp-credentials-file need "
                        "--smtp-url");
        return 0;
    }
    /* The URL may be named in messages, so it must not hold a password. */
    CURLU *u = curl_url();
    char *host = NULL, *user = NULL;
    bool scheme_ok = !strncasecmp(url, "smtp://", 7) || !strncasecmp(url, "smtps://", 8);
    if (!u || !scheme_ok || url[strcspn(url, "\r\n \t")] ||
        curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        rc = fail(err, SKED_EINVAL, "--smtp-url must be smtp://HOST[:PORT] or smtps://HOST[:PORT]");
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        rc = fail(err, SKED_EINVAL,
                  "--smtp-url must not carry credentials; put them in "
                  "--smtp-credentials-file");
    }
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    if (rc < 0) return rc;
    if (!from || !valid_from(from))
        return fail(err, SKED_EINVAL,
                    "--smtp-from must be an address, user@host or "
                    "'Name <user@host>', in printable ASCII");
    out->url = xstrdup(url);
    out->from = xstrdup(from);
    if (credentials_file && *credentials_file &&
        (rc = read_credentials(out, credentials_file, err)) < 0)
        alert_smtp_clear(out);
    return rc;
}

int alert_smtp_set_ca(alert_smtp_t *s, const char *ca_file, char err[256])
{
    char head[16384];
    size_t n;
    err[0] = 0;
    if (!ca_file || !*ca_file) {
        FREE_NULL(s->ca_file);
        return 0;
    }
    FILE *f = fopen(ca_file, "re");
    if (!f) return fail(err, SKED_EINVAL, "%s: %s", ca_file, strerror(errno));
    n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = 0;
    if (!strstr(head, "-----BEGIN CERTIFICATE-----"))
        return fail(err, SKED_EINVAL, "%s: not a PEM file holding a CERTIFICATE", ca_file);
    free(s->ca_file);
    s->ca_file = xstrdup(ca_file);
    return 0;
}

static void wipe_free(char *p)
{
    if (p) sodium_memzero(p, strlen(p));
    free(p);
}

void alert_smtp_clear(alert_smtp_t *s)
{
    if (!s) return;
    free(s->url);
    free(s->from);
    wipe_free(s->user);
    wipe_free(s->password);
    free(s->ca_file);
    memset(s, 0, sizeof *s);
}
