/*
 * libFuzzer target for the server's HTTP path: request parsing, routing,
 * authentication, body handling and every API handler behind them. One real
 * server (server_start on 127.0.0.1:0 with a throwaway SQLite store) runs in
 * this process for the whole session, so ASan and UBSan watch its threads;
 * each input is sent to it over a real loopback socket.
 *
 * An input reads like a request, so seeds are easy to write by hand:
 *
 *     POST /v1/jobs?x=1          <- method, space, path and query
 *     Content-Type: application/json
 *                                <- empty line
 *     {"name": "a", ...}         <- body
 *
 * The harness keeps the request well formed where framing is concerned
 * (that is libmicrohttpd's business, not sked's): method bytes outside the
 * token alphabet are dropped, bytes of the target that cannot appear in a
 * request line are %-escaped (the server decodes them back), header lines
 * lose control characters, and Content-Length, Transfer-Encoding,
 * Connection, Expect and Host are always the harness's own. Each input is
 * sent twice: with its own headers only, and with the bootstrap admin token,
 * which opens every route.
 *
 * Properties: the server answers every request, within a couple of seconds,
 * with a well-formed HTTP response (status line, headers, a body that
 * matches Content-Length or a complete chunked encoding) that is not a 500;
 * a JSON body is valid JSON; an error in JSON is problem+json carrying the
 * same status; and GET /healthz still answers 200 every so often and at
 * the end.
 */
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/server.h"
#include "fuzz.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define ANSWER_BUDGET_MS 2000  /* per request; two requests per input stay under -timeout=5 */
#define INPUT_MAX        65536 /* bytes; bodies past this teach the fuzzer nothing new */
#define HEADERS_MAX      32
#define HEALTH_EVERY     64 /* inputs between /healthz probes */

static char tmpdir[256];
static server_t *srv;
static char *admin_token; /* the bootstrap admin token; owned */
static uint16_t port;
static unsigned long inputs;
static bool trace; /* SKED_FUZZ_TRACE set: print each request and its answer */

/* ---- a minimal HTTP/1.1 client over one socket ---------------------------- */

static int64_t ms_left(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - clock_mono_ns()) / 1000000;
    return left > 0 ? left : 0;
}

/* A non-blocking connection to the server. Non-blocking because libFuzzer's
 * SIGALRM (the -timeout watchdog) interrupts blocking calls. */
static int connect_server(int64_t deadline_ns)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fuzz_fail("socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    if (errno != EINPROGRESS && errno != EINTR)
        fuzz_fail("connect to 127.0.0.1:%u: %s (is the server still up?)", port, strerror(errno));
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, (int)ms_left(deadline_ns));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            fuzz_fail("connect to 127.0.0.1:%u: no answer within %d ms", port, ANSWER_BUDGET_MS);
        break;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err)
        fuzz_fail("connect to 127.0.0.1:%u: %s (is the server still up?)", port, strerror(err));
    return fd;
}

/* Sends req and reads until the server closes the connection or the
 * deadline passes; *timed_out says which. The answer goes into *resp. */
static void exchange(const buf_t *req, buf_t *resp, bool *timed_out)
{
    int64_t deadline = clock_mono_ns() + (int64_t)ANSWER_BUDGET_MS * 1000000;
    int fd = connect_server(deadline);
    size_t sent = 0;
    bool writing = true;
    *timed_out = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (writing ? POLLOUT : 0)};
        int64_t left = ms_left(deadline);
        if (left == 0) {
            *timed_out = true;
            break;
        }
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fuzz_fail("poll: %s", strerror(errno));
        if (n == 0) continue;
        if (writing && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(fd, req->data + sent, req->len - sent, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
            /* A server may answer (413) and close before reading it all. */
            if ((w < 0 && errno != EINTR && errno != EAGAIN) || sent == req->len) writing = false;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char chunk[16384];
            ssize_t r = recv(fd, chunk, sizeof chunk, 0);
            if (r > 0) {
                buf_append(resp, chunk, (size_t)r);
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                break; /* closed (or reset): whatever arrived is the answer */
            }
        }
    }
    close(fd);
}

/* The value of header `name` in the header block [h, end), or NULL; the
 * length goes to *len. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    while (h < end) {
        const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - h) > nl && h[nl] == ':' && strncasecmp(h, name, nl) == 0) {
            const char *v = h + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *len = (size_t)(eol - v);
            return v;
        }
        h = eol + 2;
    }
    return NULL;
}

/* Decodes a chunked body; returns true when it is complete and well formed. */
static bool chunked_complete(const char *p, const char *end)
{
    for (;;) {
        char *after;
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) return false;
        unsigned long long n = strtoull(p, &after, 16);
        if (after == p || (after != eol && *after != ';')) return false;
        p = eol + 2;
        if (n == 0) return memmem(p, (size_t)(end - p), "\r\n", 2) != NULL; /* trailers end */
        if ((unsigned long long)(end - p) < n + 2) return false;
        p += n;
        if (p[0] != '\r' || p[1] != '\n') return false;
        p += 2;
    }
}

struct answer {
    int status;
    const char *body; /* into the response buffer */
    size_t body_len;
};

/* Checks that resp is one well-formed HTTP response to a request with the
 * given method and fills *a; any violation fails the run. `what` names the
 * request in the report. */
static void check_response(const buf_t *resp, bool timed_out, const char *method, const char *what,
                           struct answer *a)
{
    const char *p = resp->data ? resp->data : "";
    const char *end = p + resp->len;
    const char *hend;
    for (;;) {
        if (resp->len == 0)
            fuzz_fail("%s: no answer (%s)", what, timed_out ? "timed out" : "connection closed");
        if ((size_t)(end - p) < 12 || (strncmp(p, "HTTP/1.1 ", 9) && strncmp(p, "HTTP/1.0 ", 9)))
            fuzz_fail("%s: not an HTTP status line: %.40s", what, p);
        char code[4] = {p[9], p[10], p[11], 0};
        a->status = atoi(code);
        if (code[0] < '1' || code[0] > '5' || a->status < 100 || a->status > 599 ||
            (p[12] != ' ' && p[12] != '\r'))
            fuzz_fail("%s: bad status in: %.40s", what, p);
        hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend)
            fuzz_fail("%s: headers never end (%s)", what, timed_out ? "timed out" : "closed");
        if (a->status >= 200) break;
        p = hend + 4; /* an interim 1xx: the real answer follows */
    }
    const char *body = hend + 4;
    size_t got = (size_t)(end - body), len = 0;
    const char *te = find_header(p, hend, "Transfer-Encoding", &len);
    bool chunked = te && len >= 7 && strncasecmp(te + len - 7, "chunked", 7) == 0;
    bool no_body = strcmp(method, "HEAD") == 0 || a->status == 204 || a->status == 304;
    const char *cl = find_header(p, hend, "Content-Length", &len);

    if (no_body) {
        if (got)
            fuzz_fail("%s: %d answer to %s carries %zu body bytes", what, a->status, method, got);
    } else if (chunked) {
        /* A stream (a log follower) may legitimately still be open. */
        if (!timed_out && !chunked_complete(body, end))
            fuzz_fail("%s: chunked body is incomplete or malformed", what);
    } else if (timed_out) {
        fuzz_fail("%s: answer not finished within %d ms", what, ANSWER_BUDGET_MS);
    } else if (cl) {
        char *e;
        unsigned long long want = strtoull(cl, &e, 10);
        if (e == cl || want != got)
            fuzz_fail("%s: Content-Length %.*s but %zu body bytes", what, (int)len, cl, got);
    }
    a->body = body;
    a->body_len = got;
    /* 500 means the server failed on its own account (EINTERNAL, EIO,
     * ENOMEM): client input, however bad, must get a 4xx that says why. */
    if (a->status == 500)
        fuzz_fail("%s: 500 Internal Server Error: %.*s", what, (int)(got < 400 ? got : 400), body);

    const char *ct = find_header(p, hend, "Content-Type", &len);
    bool problem = ct && len >= 24 && strncasecmp(ct, "application/problem+json", 24) == 0;
    bool json = problem || (ct && len >= 16 && strncasecmp(ct, "application/json", 16) == 0);
    if (json && !no_body && !chunked && got) {
        json_error_t jerr;
        json_t *doc = json_loadb(body, got, 0, &jerr);
        if (!doc) fuzz_fail("%s: %d answer is not valid JSON (%s)", what, a->status, jerr.text);
        if (a->status >= 400) {
            json_t *st = json_object_get(doc, "status");
            if (!problem)
                fuzz_fail("%s: %d error is %.*s, not problem+json", what, a->status, (int)len, ct);
            if (!json_is_integer(st) || json_integer_value(st) != a->status)
                fuzz_fail("%s: problem+json status does not match HTTP %d", what, a->status);
            if (!json_is_string(json_object_get(doc, "title")))
                fuzz_fail("%s: problem+json without a title", what);
        }
        json_decref(doc);
    }
}

/* ---- turning an input into a request --------------------------------------- */

static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Headers whose value decides framing or routing of the connection itself. */
static bool reserved_header(const char *name, size_t len, bool authorized)
{
    static const char *const names[] = {
        "content-length", "transfer-encoding", "connection", "expect", "host",
        "upgrade",        "keep-alive",        "te",         "trailer"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0) return true;
    return authorized && len == 13 && strncasecmp(name, "authorization", 13) == 0;
}

/* Builds the request for one input. With `token`, the admin token replaces
 * any Authorization header of the input. *method gets the method sent. */
static void build_request(const uint8_t *data, size_t size, const char *token, buf_t *req,
                          char method[17])
{
    const char *p = (const char *)data, *end = p + size;
    const char *eol = memchr(p, '\n', size);
    const char *line_end = eol ? eol : end;

    /* Request line: METHOD SP TARGET. */
    size_t m = 0;
    const char *sp = memchr(p, ' ', (size_t)(line_end - p));
    const char *mend = sp ? sp : line_end;
    for (const char *q = p; q < mend && m < 16; q++)
        if (tchar((unsigned char)*q)) method[m++] = *q;
    method[m] = '\0';
    if (!m) strcpy(method, "GET");
    buf_printf(req, "%s ", method);
    const char *t = sp ? sp + 1 : line_end, *tend = line_end;
    if (tend > t && tend[-1] == '\r') tend--;
    if (t == tend || *t != '/') buf_puts(req, "/");
    for (; t < tend; t++) {
        unsigned char c = (unsigned char)*t;
        if (c <= 0x20 || c >= 0x7f || c == '#')
            buf_printf(req, "%%%02X", c);
        else
            buf_append(req, t, 1);
    }
    buf_puts(req, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if (token) buf_printf(req, "Authorization: Bearer %s\r\n", token);

    /* Header lines up to an empty line; the rest is the body. */
    p = eol ? eol + 1 : end;
    int nh = 0;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        line_end = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        const char *le = line_end;
        if (le > p && le[-1] == '\r') le--;
        if (le == p) { /* the empty line */
            p = next;
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        size_t nlen = colon ? (size_t)(colon - p) : 0;
        bool ok = colon && nlen > 0 && nh < HEADERS_MAX;
        for (size_t i = 0; ok && i < nlen; i++)
            ok = tchar((unsigned char)p[i]);
        if (ok && !reserved_header(p, nlen, token != NULL)) {
            buf_append(req, p, nlen + 1);
            for (const char *v = colon + 1; v < le; v++) {
                unsigned char c = (unsigned char)*v;
                char out = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
                buf_append(req, &out, 1);
            }
            buf_puts(req, "\r\n");
            nh++;
        }
        p = next;
    }
    size_t body_len = p < end ? (size_t)(end - p) : 0;
    buf_printf(req, "Content-Length: %zu\r\n\r\n", body_len);
    if (body_len) buf_append(req, p, body_len);
}

static void send_input(const uint8_t *data, size_t size, const char *token)
{
    buf_t req = BUF_INIT, resp = BUF_INIT;
    char method[17];
    bool timed_out;
    struct answer a;
    build_request(data, size, token, &req, method);
    exchange(&req, &resp, &timed_out);
    /* Name the request by its first line, for the report. */
    char what[160];
    size_t fl = strcspn(req.data, "\r");
    snprintf(what, sizeof what, "%s%.*s", token ? "[admin] " : "", (int)(fl < 120 ? fl : 120),
             req.data);
    check_response(&resp, timed_out, method, what, &a);
    if (trace) fprintf(stderr, "%s -> %d %.*s\n", what, a.status, (int)a.body_len, a.body);
    buf_free(&req);
    buf_free(&resp);
}

static void check_health(void)
{
    static const uint8_t probe[] = "GET /healthz\n\n";
    buf_t req = BUF_INIT, resp = BUF_INIT;
    char method[17];
    bool timed_out;
    struct answer a;
    build_request(probe, sizeof probe - 1, NULL, &req, method);
    exchange(&req, &resp, &timed_out);
    check_response(&resp, timed_out, method, "GET /healthz", &a);
    if (a.status != 200 || !memmem(a.body, a.body_len, "\"ok\"", 4))
        fuzz_fail("/healthz answered %d: %.*s", a.status, (int)a.body_len, a.body);
    buf_free(&req);
    buf_free(&resp);
}

/* ---- the server's lifetime -------------------------------------------------- */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        unlink(path);
        free(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Runs at exit (after the last input, before LeakSanitizer's own check):
 * the server must still be healthy, and must stop cleanly. */
static void at_exit(void)
{
    if (!srv) return;
    check_health();
    server_stop(srv);
    srv = NULL;
    FREE_NULL(admin_token);
    remove_tree(tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Thousands of requests would otherwise log a line each. */
    if (!getenv("SKED_LOG")) log_set_level(LOG_ERROR);
    trace = getenv("SKED_FUZZ_TRACE") != NULL;

    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/sked-fuzz-http.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) fuzz_fail("mkdtemp %s: %s", tmpdir, strerror(errno));
    char *store_url = xasprintf("sqlite:%s/sked.db", tmpdir);
    char *token_file = xasprintf("%s/admin.token", tmpdir);
    server_config_t cfg = {
        .listen = "127.0.0.1:0",
        .store_url = store_url,
        .token_file = token_file,
        .threads = 4,
        /* The fuzzer sends far more than a client may: with the default
         * limits most requests would get 429 and never reach a handler. */
        .rate_limit = -1,
        .max_connections_per_ip = -1,
    };
    int rc = server_start(&cfg, &srv, &admin_token);
    if (rc < 0 || !admin_token)
        fuzz_fail("server_start: %d (token %s)", rc, admin_token ? "yes" : "no");
    const char *colon = strrchr(server_url(srv), ':');
    port = colon ? (uint16_t)atoi(colon + 1) : 0;
    if (!port) fuzz_fail("cannot tell the port from %s", server_url(srv));
    free(store_url);
    free(token_file);
    atexit(at_exit);
    check_health();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_MAX) return 0;
    send_input(data, size, NULL);
    send_input(data, size, admin_token);
    if (++inputs % HEALTH_EVERY == 0) check_health();
    return 0;
}
