/*
 * loadgen: one thread, one epoll, N non-blocking keep-alive connections
 * (loadgen.h has the contract). Written to cost the client as little CPU
 * per request as the kernel allows: one send() per request (the whole
 * request is formatted into the connection's buffer first), one recv() per
 * readiness event (level-triggered epoll calls again if more is waiting),
 * EPOLLOUT registered only while a write is incomplete or a connect is in
 * progress, and no allocation on the steady path.
 *
 * The open loop's schedule is implicit: request k is due at
 * t0 + k / rate, so the queue of due requests is the range
 * [next_send, due) and costs nothing to keep. A timerfd armed at the next
 * due time wakes the loop with nanosecond precision (an epoll timeout has
 * only milliseconds, which would send in bursts and add up to a
 * millisecond of the generator's own lateness to every latency).
 */
#include "loadgen.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

const double loadgen_pct[LOADGEN_NPCT] = {0.50, 0.90, 0.95, 0.99, 0.999, 1.0};

#define IN_BUF_MIN      16384
#define IN_BUF_MAX      (4u << 20) /* an answer bigger than this is a protocol error */
#define OUT_BUF_MIN     4096
#define MAX_EVENTS      256
#define TIMER_TAG       UINT32_MAX
#define SCAN_NS         INT64_C(50000000)  /* request timeouts are checked every 50 ms */
#define CONNECT_BACKOFF INT64_C(100000000) /* no new connection for 100 ms after one failed */
#define RAMP_NS         INT64_C(5000000)   /* closed loop: at most this between first connects */

/* ---- the latency histogram ------------------------------------------------ */

/* Log-linear, as HdrHistogram: values below 128 ns exact, then 128
 * sub-buckets per power of two, so a bucket is at most 1/128 (< 1%) of its
 * values wide. Index = shift * 128 + (v >> shift), shift = msb(v) - 7. */
#define SUB_BITS 7
#define SUB      (1 << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS) * SUB + SUB)

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB) return (unsigned)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - SUB_BITS;
    return shift * SUB + (unsigned)(v >> shift);
}

/* The middle of bucket i's range of values. */
static double bucket_value(unsigned i)
{
    if (i < 2 * SUB) return (double)i;
    unsigned shift = i / SUB - 1, sub = i % SUB + SUB;
    return ((double)sub + 0.5) * (double)(UINT64_C(1) << shift);
}

/* ---- connections ---------------------------------------------------------- */

enum cstate { C_FREE, C_CONNECTING, C_IDLE, C_BUSY };
enum body_kind { B_NONE, B_LENGTH, B_CHUNKED, B_EOF };
enum chunk_state { CH_SIZE, CH_DATA, CH_TRAILER };

struct conn {
    int fd; /* -1 when C_FREE */
    enum cstate st;
    int want_out; /* EPOLLOUT is registered */
    int idle_pos; /* index in lg.idle while C_IDLE */
    char *out;    /* the request being written */
    size_t out_len, out_off, out_cap;
    char *in; /* the answer being read */
    size_t in_len, in_cap;
    int has_req;       /* a request is assigned (C_CONNECTING or C_BUSY) */
    int head;          /* ... and it is a HEAD: its answer has no body */
    int64_t origin_ns; /* ... its latency counts from here (send or scheduled time) */
    int64_t sent_ns;   /* ... its timeout counts from here */
    int warming;       /* opened, and no answer came on it yet */
    /* The answer's parse. */
    size_t scanned;  /* bytes already searched for the end of the headers */
    size_t hdr_len;  /* 0 until the headers are complete */
    int status;      /* HTTP status */
    int close_after; /* Connection: close, HTTP/1.0, or a body ending at EOF */
    enum body_kind body;
    size_t body_len;   /* B_LENGTH: Content-Length */
    size_t chunk_pos;  /* B_CHUNKED: parse position */
    size_t chunk_left; /* B_CHUNKED: data bytes of the current chunk */
    enum chunk_state ch;
    size_t end; /* where the complete answer ends */
};

/* A server, resolved once. */
struct target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host_hdr[300]; /* "Host: h:p\r\n" */
};

struct lg {
    const loadgen_opts_t *o;
    loadgen_result_t *r;
    struct target *t; /* nt of them; slot i connects to t[i % nt] */
    int nt;
    int ep, tfd;
    struct conn *c; /* o->connections slots */
    int n;
    int *idle, nidle;     /* a stack of C_IDLE slots */
    int *free_, nfree;    /* a stack of C_FREE slots */
    int inflight;         /* requests assigned to a connection and not finished */
    int warming;          /* connections without an answer yet */
    int64_t last_open_ns; /* when the last connection was opened */
    int64_t t0, t_end, t_hard, last_answer_ns, connect_block_ns, next_scan_ns;
    int issuing; /* closed loop: requests may still be issued */
    /* Open loop: request k is due at t0 + k * interval_ns; total in the window. */
    double interval_ns;
    uint64_t total, next_send;
    int64_t timer_at; /* the timerfd's armed time, 0 if disarmed */
    uint64_t *hist;
    double sum_ns;
    uint64_t max_ns;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void idle_push(struct lg *g, int i)
{
    g->c[i].st = C_IDLE;
    g->c[i].idle_pos = g->nidle;
    g->idle[g->nidle++] = i;
}

static void idle_remove(struct lg *g, int i)
{
    int p = g->c[i].idle_pos, last = g->idle[--g->nidle];
    g->idle[p] = last;
    g->c[last].idle_pos = p;
}

static void set_out(struct lg *g, struct conn *c, int want)
{
    if (c->want_out == want) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u),
                             .data.u32 = (uint32_t)(c - g->c)};
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Closes c's socket; the slot becomes free. A request still assigned is
 * not counted here: the caller says what became of it. */
static void conn_close(struct lg *g, struct conn *c)
{
    if (c->st == C_FREE) return;
    if (c->st == C_IDLE) idle_remove(g, (int)(c - g->c));
    if (c->has_req) g->inflight--;
    if (c->warming) g->warming--;
    c->warming = 0;
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->st = C_FREE;
    c->has_req = 0;
    c->want_out = 0;
    c->in_len = c->out_len = c->out_off = 0;
    g->free_[g->nfree++] = (int)(c - g->c);
}

static void reset_parse(struct conn *c)
{
    c->in_len = c->scanned = c->hdr_len = c->end = 0;
    c->status = c->close_after = 0;
    c->body = B_NONE;
    c->body_len = c->chunk_pos = c->chunk_left = 0;
    c->ch = CH_SIZE;
}

static void reserve(char **p, size_t *cap, size_t need)
{
    if (need <= *cap) return;
    size_t n = *cap ? *cap : OUT_BUF_MIN;
    while (n < need)
        n *= 2;
    *p = xrealloc(*p, n);
    *cap = n;
}

static void put(struct conn *c, const void *s, size_t n)
{
    reserve(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void puts_(struct conn *c, const char *s)
{
    put(c, s, strlen(s));
}

/* Builds request number n into c's buffer. Returns 0, or -1 when the
 * callback ends the issuing. */
static int build(struct lg *g, struct conn *c, uint64_t n)
{
    loadgen_req_t q = {0};
    if (g->o->build(g->o->arg, n, &q) || !q.method || !q.path) return -1;
    c->out_len = c->out_off = 0;
    puts_(c, q.method);
    put(c, " ", 1);
    puts_(c, q.path);
    puts_(c, " HTTP/1.1\r\n");
    puts_(c, g->t[(c - g->c) % g->nt].host_hdr);
    if (q.headers) puts_(c, q.headers);
    int bodyless = !strcmp(q.method, "GET") || !strcmp(q.method, "HEAD");
    if (q.body_len || !bodyless) {
        char cl[48];
        int k = snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", q.body_len);
        put(c, cl, (size_t)k);
    }
    put(c, "\r\n", 2);
    if (q.body_len) put(c, q.body, q.body_len);
    c->head = !strcmp(q.method, "HEAD");
    return 0;
}

/* Writes what is left of c's request. Returns 0, or -1 when the connection
 * failed (the caller counts the request and closes). */
static int flush(struct lg *g, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (k > 0) {
            c->out_off += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(g, c, 1);
            return 0;
        }
        return -1;
    }
    set_out(g, c, 0);
    return 0;
}

/* Gives c (connected, C_IDLE or fresh) request n with latency origin
 * origin_ns and sends it. Returns -1 when the callback ended the issuing
 * (c is left as it was). */
static int assign(struct lg *g, struct conn *c, uint64_t n, int64_t origin_ns, int64_t now)
{
    if (build(g, c, n)) return -1;
    if (c->st == C_IDLE) idle_remove(g, (int)(c - g->c));
    g->r->issued++;
    c->has_req = 1;
    g->inflight++;
    c->origin_ns = origin_ns;
    c->sent_ns = now;
    reset_parse(c);
    if (c->st == C_CONNECTING) return 0; /* written once connected */
    c->st = C_BUSY;
    g->r->sent++;
    if (flush(g, c)) {
        g->r->err_closed++;
        conn_close(g, c);
    }
    return 0;
}

/* Opens a connection in a free slot; -1 if none is free or opening is
 * blocked after a failure. The socket is C_CONNECTING until writable. */
static struct conn *open_conn(struct lg *g, int64_t now)
{
    if (!g->nfree || now < g->connect_block_ns) return NULL;
    struct conn *c = &g->c[g->free_[g->nfree - 1]];
    const struct target *t = &g->t[(c - g->c) % g->nt];
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { /* EMFILE, most likely: more connections than the fd limit */
        g->connect_block_ns = now + CONNECT_BACKOFF;
        g->r->connect_failed++;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
        close(fd);
        g->connect_block_ns = now + CONNECT_BACKOFF;
        g->r->connect_failed++;
        return NULL;
    }
    /* Writable = connected (or failed: SO_ERROR says which). */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - g->c)};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev)) {
        close(fd);
        g->connect_block_ns = now + CONNECT_BACKOFF;
        g->r->connect_failed++;
        return NULL;
    }
    g->nfree--;
    g->r->connects++;
    g->warming++;
    g->last_open_ns = now;
    c->warming = 1;
    c->fd = fd;
    c->st = C_CONNECTING;
    c->want_out = 1;
    c->has_req = 0;
    return c;
}

/* ---- the answer's parse --------------------------------------------------- */

static int header_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl)) return 0;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *val = v;
    *vlen = (size_t)(e - v);
    return 1;
}

static int contains_ci(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (!strncasecmp(s + i, word, w)) return 1;
    return 0;
}

/* Parses the status line and headers in in[0, hdr_len). 0 or -1. */
static int parse_headers(struct conn *c)
{
    const char *p = c->in, *end = c->in + c->hdr_len - 2; /* up to the last line's CRLF */
    if (c->hdr_len < 14 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    int http10 = p[7] == '0';
    if (p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    int has_len = 0, chunked = 0, keep_alive = 0;
    c->close_after = 0;
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && ++line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line) + 1);
        if (!nl) return -1;
        size_t len = (size_t)(nl - line);
        if (len && line[len - 1] == '\r') len--;
        const char *v;
        size_t vl;
        if (header_is(line, len, "Content-Length", &v, &vl)) {
            if (!vl || vl > 15) return -1;
            size_t n = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') return -1;
                n = n * 10 + (size_t)(v[i] - '0');
            }
            if (has_len && n != c->body_len) return -1;
            c->body_len = n;
            has_len = 1;
        } else if (header_is(line, len, "Transfer-Encoding", &v, &vl)) {
            chunked = contains_ci(v, vl, "chunked");
            if (!chunked) return -1; /* other codings: not for a load generator */
        } else if (header_is(line, len, "Connection", &v, &vl)) {
            if (contains_ci(v, vl, "close")) c->close_after = 1;
            if (contains_ci(v, vl, "keep-alive")) keep_alive = 1;
        }
        line = nl;
    }
    if (http10 && !keep_alive) c->close_after = 1;
    if (c->head || c->status == 204 || c->status == 304)
        c->body = B_NONE;
    else if (chunked)
        c->body = B_CHUNKED;
    else if (has_len)
        c->body = B_LENGTH;
    else {
        c->body = B_EOF;
        c->close_after = 1;
    }
    c->chunk_pos = c->hdr_len;
    return 0;
}

/* Walks the chunks from chunk_pos. 1 when the last chunk and trailers are
 * in (end set), 0 for more bytes, -1 on a malformed body. */
static int parse_chunks(struct conn *c)
{
    for (;;) {
        if (c->ch == CH_DATA) {
            if (c->in_len - c->chunk_pos < c->chunk_left + 2) return 0;
            c->chunk_pos += c->chunk_left;
            if (c->in[c->chunk_pos] != '\r' || c->in[c->chunk_pos + 1] != '\n') return -1;
            c->chunk_pos += 2;
            c->ch = CH_SIZE;
            continue;
        }
        const char *s = c->in + c->chunk_pos;
        const char *nl = memchr(s, '\n', c->in_len - c->chunk_pos);
        if (!nl) return c->in_len - c->chunk_pos > 4096 ? -1 : 0;
        size_t len = (size_t)(nl - s);
        if (!len || s[len - 1] != '\r') return -1;
        len--;
        c->chunk_pos += len + 2;
        if (c->ch == CH_TRAILER) {
            if (!len) {
                c->end = c->chunk_pos;
                return 1;
            }
            continue; /* a trailer field: ignored */
        }
        size_t n = 0, i = 0;
        for (; i < len && i < 15; i++) {
            int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                    : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                    : s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
                                                 : -1;
            if (d < 0) break;
            n = n * 16 + (size_t)d;
        }
        if (!i || (i < len && s[i] != ';' && s[i] != ' ')) return -1;
        if (n > IN_BUF_MAX) return -1;
        c->chunk_left = n;
        c->ch = n ? CH_DATA : CH_TRAILER;
    }
}

/* 1 when a complete answer is in the buffer (end set), 0 for more bytes
 * (also at eof: the caller counts an answer cut short), -1 on a protocol
 * error. eof: the peer closed its side. */
static int parse(struct conn *c, int eof)
{
    while (!c->hdr_len) {
        size_t i = c->scanned > 3 ? c->scanned - 3 : 0;
        const char *e = NULL;
        while (i + 4 <= c->in_len) {
            const char *q = memchr(c->in + i, '\r', c->in_len - 3 - i);
            if (!q) break;
            if (q[1] == '\n' && q[2] == '\r' && q[3] == '\n') {
                e = q + 4;
                break;
            }
            i = (size_t)(q - c->in) + 1;
        }
        c->scanned = c->in_len;
        if (!e) return c->in_len > IN_BUF_MIN * 4 ? -1 : 0; /* 64 KiB of headers: not HTTP */
        c->hdr_len = (size_t)(e - c->in);
        if (parse_headers(c)) return -1;
        if (c->status == 100) { /* an interim answer: drop it, the real one follows */
            memmove(c->in, c->in + c->hdr_len, c->in_len - c->hdr_len);
            c->in_len -= c->hdr_len;
            c->scanned = c->hdr_len = 0;
            continue;
        }
        if (c->status < 200) return -1; /* 101 and the rest: nothing we asked for */
    }
    switch (c->body) {
    case B_NONE:
        c->end = c->hdr_len;
        return 1;
    case B_LENGTH:
        if (c->in_len - c->hdr_len < c->body_len) return 0;
        c->end = c->hdr_len + c->body_len;
        return 1;
    case B_CHUNKED:
        return parse_chunks(c);
    case B_EOF:
        if (!eof) return 0;
        c->end = c->in_len;
        return 1;
    }
    return -1;
}

/* ---- the loop ------------------------------------------------------------- */

static void record(struct lg *g, struct conn *c, int64_t now)
{
    loadgen_result_t *r = g->r;
    int64_t d = now - c->origin_ns;
    uint64_t v = d > 0 ? (uint64_t)d : 0;
    g->hist[bucket_of(v)]++;
    g->sum_ns += (double)v;
    if (v > g->max_ns) g->max_ns = v;
    r->answered++;
    int cls = c->status / 100;
    r->status[cls >= 2 && cls <= 5 ? cls : 0]++;
    if ((cls != 2) && !r->first_bad_status) {
        r->first_bad_status = c->status;
        size_t n = c->end - c->hdr_len;
        if (n > sizeof r->first_bad_body - 1) n = sizeof r->first_bad_body - 1;
        memcpy(r->first_bad_body, c->in + c->hdr_len, n);
        r->first_bad_body[n] = '\0';
    }
    g->last_answer_ns = now;
}

/* Open loop: how many requests are due by now (all, once the window is over). */
static uint64_t due(struct lg *g, int64_t now)
{
    if (now >= g->t_end) return g->total;
    uint64_t k = (uint64_t)((double)(now - g->t0) / g->interval_ns) + 1;
    return k < g->total ? k : g->total;
}

static int64_t due_at(struct lg *g, uint64_t k)
{
    return g->t0 + (int64_t)((double)k * g->interval_ns);
}

/* Closed loop: may another request be issued now? Ends the issuing once
 * the window is over or the count reached. */
static int can_issue(struct lg *g, int64_t now)
{
    if (g->issuing && (now >= g->t_end || (g->o->requests && g->r->issued >= g->o->requests)))
        g->issuing = 0;
    return g->issuing;
}

/* c is connected and has nothing to do: the next request, or idle. */
static void feed(struct lg *g, struct conn *c, int64_t now)
{
    if (g->o->rate > 0) {
        if (g->next_send < due(g, now)) {
            uint64_t k = g->next_send;
            if (!assign(g, c, k, due_at(g, k), now)) {
                g->next_send++;
                return;
            }
            g->total = g->next_send; /* the callback ended it */
        }
    } else if (can_issue(g, now)) {
        if (!assign(g, c, g->r->issued, now, now)) return;
        g->issuing = 0;
    }
    if (c->st != C_FREE) {
        c->has_req = 0;
        if (c->st != C_IDLE) idle_push(g, (int)(c - g->c));
    }
}

/* c finished an answer (complete in its buffer). */
static void answered(struct lg *g, struct conn *c, int64_t now)
{
    if (c->end != c->in_len) {
        /* Bytes beyond the answer, which we never asked for (no
         * pipelining): the stream cannot be trusted. */
        g->r->err_protocol++;
        conn_close(g, c);
        return;
    }
    record(g, c, now);
    if (c->warming) g->warming--;
    c->warming = 0;
    c->has_req = 0;
    g->inflight--;
    if (c->close_after) {
        conn_close(g, c);
        return;
    }
    reset_parse(c);
    /* An answer before the whole request was written (a server refusing
     * it early) leaves EPOLLOUT on, which an idle connection must not. */
    if (c->want_out) set_out(g, c, 0);
    feed(g, c, now);
}

static void on_readable(struct lg *g, struct conn *c, int64_t now)
{
    if (c->in_len == c->in_cap) {
        if (c->in_cap >= IN_BUF_MAX) goto protocol;
        reserve(&c->in, &c->in_cap, c->in_cap ? c->in_cap * 2 : IN_BUF_MIN);
    }
    ssize_t k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (k <= 0 && !c->has_req) { /* an idle keep-alive connection ended by the server */
        conn_close(g, c);
        return;
    }
    if (k < 0) {
        g->r->err_closed++;
        conn_close(g, c);
        return;
    }
    if (!c->has_req) goto protocol; /* bytes nobody asked for */
    c->in_len += (size_t)k;
    int done = parse(c, k == 0);
    if (done > 0) {
        answered(g, c, now);
        return;
    }
    if (done < 0) goto protocol;
    if (k == 0) {
        g->r->err_closed++;
        conn_close(g, c);
    }
    return;
protocol:
    if (c->has_req) g->r->err_protocol++;
    conn_close(g, c);
}

static void on_writable(struct lg *g, struct conn *c, int64_t now)
{
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            g->r->connect_failed++;
            if (c->has_req) g->r->err_connect++;
            g->connect_block_ns = now + CONNECT_BACKOFF;
            conn_close(g, c);
            return;
        }
        if (c->has_req) {
            c->st = C_BUSY;
            g->r->sent++;
            c->sent_ns = now;
        } else {
            set_out(g, c, 0);
            c->st = C_BUSY;
            feed(g, c, now);
            return;
        }
    }
    if (c->has_req && flush(g, c)) {
        g->r->err_closed++;
        conn_close(g, c);
    }
}

/* The first `connections` connections are opened one at a
 * time, each once the one before has had its first answer or RAMP_NS
 * after it was opened. A burst of connects lands on few of the server's
 * threads: libmicrohttpd's thread pool accepts up to 10 pending
 * connections in a row in whichever worker wakes first, so 32 connects
 * within microseconds end up on 4 of its 16 workers, which independent
 * clients would not do. Reconnects later are not paced. */
static int ramping(struct lg *g, int64_t now)
{
    return g->r->connects < (uint64_t)g->n && g->warming && now < g->last_open_ns + RAMP_NS;
}

/* Opens connections and hands out requests as the mode allows. */
static void dispatch(struct lg *g, int64_t now)
{
    if (g->o->rate > 0) {
        uint64_t d = due(g, now);
        while (g->next_send < d) {
            struct conn *c = NULL;
            if (g->nidle)
                c = &g->c[g->idle[g->nidle - 1]];
            else if (ramping(g, now) || !(c = open_conn(g, now)))
                break;
            uint64_t k = g->next_send;
            if (assign(g, c, k, due_at(g, k), now)) {
                g->total = g->next_send; /* the callback ended it */
                if (c->st == C_CONNECTING) conn_close(g, c);
                break;
            }
            g->next_send++;
        }
        uint64_t q = d - g->next_send;
        if (q > g->r->max_queue) g->r->max_queue = q;
    } else {
        while (can_issue(g, now) && g->nfree && !ramping(g, now)) {
            struct conn *c = open_conn(g, now);
            if (!c) break;
            if (assign(g, c, g->r->issued, now, now)) {
                g->issuing = 0;
                conn_close(g, c);
            }
        }
    }
}

static void check_timeouts(struct lg *g, int64_t now, int all)
{
    int64_t limit = (int64_t)(g->o->timeout_s * 1e9);
    for (int i = 0; i < g->n; i++) {
        struct conn *c = &g->c[i];
        if (!c->has_req || (!all && now - c->sent_ns < limit)) continue;
        if (c->st == C_CONNECTING)
            g->r->err_connect++;
        else
            g->r->err_timeout++;
        conn_close(g, c);
    }
}

static void arm_timer(struct lg *g, int64_t at)
{
    if (g->timer_at == at) return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = at / 1000000000;
    its.it_value.tv_nsec = at % 1000000000;
    timerfd_settime(g->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    g->timer_at = at;
}

static int resolve(struct target *t, const char *host, int port)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (!host || getaddrinfo(host, ps, &hints, &ai) || !ai) return -EINVAL;
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(t->host_hdr, sizeof t->host_hdr,
             strchr(host, ':') ? "Host: [%s]:%d\r\n" : "Host: %s:%d\r\n", host, port);
    return 0;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int loadgen_run(const loadgen_opts_t *opts, loadgen_result_t *out)
{
    memset(out, 0, sizeof *out);
    loadgen_opts_t o = *opts;
    if (o.connections < 1) o.connections = 1;
    if (o.timeout_s <= 0) o.timeout_s = 10.0;
    if (!o.build || o.seconds < 0 || o.rate < 0) return -EINVAL;
    struct lg g = {.o = &o, .r = out, .ep = -1, .tfd = -1, .n = o.connections};
    g.nt = o.ntargets > 0 ? o.ntargets : 1;
    g.t = xcalloc((size_t)g.nt, sizeof *g.t);
    int rc = 0;
    for (int i = 0; i < g.nt && !rc; i++)
        rc = o.ntargets > 0 ? resolve(&g.t[i], o.targets[i].host, o.targets[i].port)
                            : resolve(&g.t[i], o.host, o.port);
    if (rc) goto done;
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g.ep < 0 || g.tfd < 0) {
        rc = -errno;
        goto done;
    }
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = TIMER_TAG};
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &tev)) {
        rc = -errno;
        goto done;
    }
    g.c = xcalloc((size_t)g.n, sizeof *g.c);
    g.idle = xcalloc((size_t)g.n, sizeof *g.idle);
    g.free_ = xcalloc((size_t)g.n, sizeof *g.free_);
    g.hist = xcalloc(NBUCKETS, sizeof *g.hist);
    for (int i = g.n - 1; i >= 0; i--) {
        g.c[i].fd = -1;
        g.free_[g.nfree++] = i;
    }

    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    g.t0 = mono_ns();
    g.t_end = g.t0 + (int64_t)(o.seconds * 1e9);
    g.t_hard = g.t_end + (int64_t)(o.timeout_s * 1e9);
    g.next_scan_ns = g.t0 + SCAN_NS;
    g.issuing = 1;
    if (o.rate > 0) {
        g.interval_ns = 1e9 / o.rate;
        g.total = (uint64_t)ceil(o.seconds * o.rate - 1e-9);
        if (o.requests && g.total > o.requests) g.total = o.requests;
    }

    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        int64_t now = mono_ns();
        dispatch(&g, now);
        int pending = o.rate > 0 ? g.next_send < g.total : can_issue(&g, now);
        if (!pending && !g.inflight) break;
        if (now >= g.t_hard) {
            check_timeouts(&g, now, 1);
            break;
        }
        if (now >= g.next_scan_ns) {
            check_timeouts(&g, now, 0);
            g.next_scan_ns = now + SCAN_NS;
        }
        /* The next thing to wake for without an event. */
        int64_t wake = g.next_scan_ns < g.t_hard ? g.next_scan_ns : g.t_hard;
        if (g.issuing && o.rate == 0 && g.t_end > now && g.t_end < wake) wake = g.t_end;
        if (g.connect_block_ns > now && g.connect_block_ns < wake) wake = g.connect_block_ns;
        if (ramping(&g, now) && g.last_open_ns + RAMP_NS < wake) wake = g.last_open_ns + RAMP_NS;
        if (o.rate > 0 && g.next_send < g.total) {
            int64_t at = due_at(&g, g.next_send);
            if (at > now) arm_timer(&g, at);
        }
        int ms = (int)((wake - now + 999999) / 1000000);
        int k = epoll_wait(g.ep, ev, MAX_EVENTS, ms < 0 ? 0 : ms);
        if (k < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        now = mono_ns();
        for (int i = 0; i < k; i++) {
            uint32_t tag = ev[i].data.u32;
            if (tag == TIMER_TAG) {
                uint64_t x;
                if (read(g.tfd, &x, sizeof x) < 0) {
                }
                g.timer_at = 0;
                continue;
            }
            struct conn *c = &g.c[tag];
            if (c->st == C_FREE) continue; /* closed by an earlier event of this batch */
            if (ev[i].events & (EPOLLOUT | EPOLLERR) && (c->st == C_CONNECTING || c->want_out))
                on_writable(&g, c, now);
            if (c->st != C_FREE && c->st != C_CONNECTING &&
                ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(&g, c, now);
        }
    }
    int64_t t_stop = g.last_answer_ns > g.t0 ? g.last_answer_ns : mono_ns();
    getrusage(RUSAGE_THREAD, &ru1);

    /* Open loop: what was scheduled in the window and never handed to a
     * connection (the server was too slow, or could not be reached). */
    if (o.rate > 0) {
        out->unsent = g.total - g.next_send;
        out->issued += out->unsent;
    }
    out->elapsed_s = (double)(t_stop - g.t0) / 1e9;
    if (out->elapsed_s <= 0) out->elapsed_s = 1e-9;
    out->rate = (double)out->answered / out->elapsed_s;
    out->cpu_user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
    out->cpu_sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    if (out->answered)
        out->cpu_us_per_req = (out->cpu_user_s + out->cpu_sys_s) * 1e6 / (double)out->answered;
    if (out->answered) {
        out->lat_mean_ms = g.sum_ns / (double)out->answered / 1e6;
        uint64_t seen = 0;
        unsigned b = 0;
        for (int p = 0; p < LOADGEN_NPCT; p++) {
            if (loadgen_pct[p] >= 1.0) {
                out->lat_ms[p] = (double)g.max_ns / 1e6;
                continue;
            }
            uint64_t want = (uint64_t)ceil(loadgen_pct[p] * (double)out->answered);
            if (!want) want = 1;
            while (b < NBUCKETS && seen + g.hist[b] < want)
                seen += g.hist[b++];
            double v = bucket_value(b);
            out->lat_ms[p] = (v > (double)g.max_ns ? (double)g.max_ns : v) / 1e6;
        }
    }

done:
    for (int i = 0; g.c && i < g.n; i++) {
        if (g.c[i].fd >= 0) close(g.c[i].fd);
        free(g.c[i].in);
        free(g.c[i].out);
    }
    free(g.c);
    free(g.idle);
    free(g.free_);
    free(g.hist);
    free(g.t);
    if (g.tfd >= 0) close(g.tfd);
    if (g.ep >= 0) close(g.ep);
    return rc;
}
