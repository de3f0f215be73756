/*
 * The shared half of the client commands (see cli.h): common options,
 * token resolution, API calls with one-line error reporting, the table
 * printer, time and schedule formatting, and the job-field options that
 * `sked submit` and `sked jobs edit` share. The cmd_*.c files sit on top of
 * this and of src/common/httpc.h; nothing here prints results except the
 * printing helpers themselves.
 */
#include "cli/cli.h"

#include "common/error.h"
#include "common/xalloc.h"
#include "core/duration.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_init(cli_t *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
}

void cli_fini(cli_t *c)
{
    if (c->http) httpc_free(c->http);
    c->http = NULL;
    FREE_NULL(c->token_buf);
}

int cli_common_opt(cli_t *c, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_SERVER:
        c->server = arg;
        return 1;
    case CLI_OPT_TOKEN:
        c->token = arg;
        return 1;
    case CLI_OPT_TOKEN_FILE:
        c->token_file = arg;
        return 1;
    case CLI_OPT_CA:
        c->ca = arg;
        return 1;
    case 'o':
        if (!strcmp(arg, "json")) {
            c->json = 1;
        } else if (!strcmp(arg, "table")) {
            c->json = 0;
        } else {
            cli_usage_error(c, "-o: unknown output format '%s' (use 'table' or 'json')", arg);
            return SKED_EINVAL;
        }
        return 1;
    case 'h':
        c->help = 1;
        return 1;
    default:
        return 0;
    }
}

int cli_usage_error(const cli_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sked %s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'sked %s --help' for usage.\n", c->cmd);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const cli_t *c, int opt, char **argv)
{
    /* With opterr = 0 getopt leaves the reporting to us; optind has already
     * moved past the offending word, and optopt is 0 for long options. */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (opt == ':') return cli_usage_error(c, "option '%s' needs a value", word);
    if (optopt && optopt < 0x100 && word[0] == '-' && word[1] != '-')
        return cli_usage_error(c, "unknown option '-%c'", optopt);
    return cli_usage_error(c, "unknown option '%s'", word);
}

const char *cli_servers(const cli_t *c)
{
    if (c->server && *c->server) return c->server;
    const char *e = getenv("SKED_SERVER");
    if (e && *e) return e;
    return CLI_DEFAULT_SERVER;
}

/* Reads a token file: the whole file, surrounding whitespace (the newline
 * editors and `echo` add) trimmed. Returns 0 with *out new, -errno when it
 * cannot be read, or SKED_EINVAL when it holds no token. */
static int read_token(const char *path, char **out)
{
    FILE *f = NULL;
    char *data = NULL;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        goto out;
    }
    data = xmalloc(CLI_TOKEN_MAX + 1);
    size_t n = fread(data, 1, CLI_TOKEN_MAX, f);
    if (ferror(f)) {
        rc = SKED_EIO;
        goto out;
    }
    data[n] = '\0';
    char *start = data;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len && isspace((unsigned char)start[len - 1]))
        start[--len] = '\0';
    if (!len) {
        rc = SKED_EINVAL;
        goto out;
    }
    *out = xstrdup(start);
out:
    free(data);
    if (f) fclose(f);
    return rc;
}

static int named_token_file(const char *path, const char *how, char **out)
{
    int rc = read_token(path, out);
    if (rc == SKED_EINVAL)
        fprintf(stderr, "sked: token file '%s' (%s) is empty\n", path, how);
    else if (rc < 0)
        fprintf(stderr, "sked: cannot read token file '%s' (%s): %s\n", path, how,
                rc == SKED_EIO ? sked_strerror(rc) : strerror(-rc));
    return rc;
}

int cli_token_resolve(const char *opt_token, const char *opt_file, char **out)
{
    *out = NULL;
    if (opt_token && *opt_token) {
        *out = xstrdup(opt_token);
        return 0;
    }
    if (opt_file && *opt_file) return named_token_file(opt_file, "--token-file", out);
    const char *e = getenv("SKED_TOKEN");
    if (e && *e) {
        *out = xstrdup(e);
        return 0;
    }
    e = getenv("SKED_TOKEN_FILE");
    if (e && *e) return named_token_file(e, "SKED_TOKEN_FILE", out);
    /* The `sked dev` default: absent or unreadable just means no token; the
     * server's 401 then says what is missing. */
    if (read_token(CLI_DEFAULT_TOKEN_FILE, out) < 0) *out = NULL;
    return 0;
}

const char *cli_ca(const cli_t *c)
{
    if (c->ca && *c->ca) return c->ca;
    const char *e = getenv("SKED_CA");
    return e && *e ? e : NULL;
}

httpc_t *cli_client(cli_t *c)
{
    if (c->http) return c->http;
    const char *ca = cli_ca(c);
    /* Checked here because libcurl would only say "problem with the SSL CA
     * cert" once a call is made, and never for http:// servers. */
    if (ca && access(ca, R_OK) != 0) {
        fprintf(stderr, "sked: cannot read the CA file '%s' (%s): %s\n", ca,
                c->ca && *c->ca ? "--ca" : "SKED_CA", strerror(errno));
        return NULL;
    }
    if (!c->token_buf && cli_token_resolve(c->token, c->token_file, &c->token_buf) < 0) return NULL;
    c->http = httpc_new(cli_servers(c), c->token_buf);
    if (!c->http) {
        fprintf(stderr, "sked: bad server list '%s'\n", cli_servers(c));
        return NULL;
    }
    httpc_set_ca(c->http, ca);
    return c->http;
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Server Error" : "Error";
    }
}

char *cli_error_text(long status, const char *body, size_t len)
{
    buf_t b = BUF_INIT;
    json_t *j = NULL;
    const char *title = NULL, *detail = NULL, *field = NULL;

    if (body && len) j = json_loadb(body, len, 0, NULL);
    if (json_is_object(j)) {
        title = cli_str(j, "title");
        detail = cli_str(j, "detail");
        field = cli_str(j, "field");
    }
    buf_printf(&b, "%ld %s", status, title && *title ? title : reason_phrase(status));
    if (field && *field) buf_printf(&b, ": %s", field);
    if (detail && *detail) {
        buf_printf(&b, ": %s", detail);
    } else if (!j && body && len) {
        /* Not problem+json (a proxy's page, say): its first line is still
         * the best clue there is. */
        size_t n = 0;
        while (n < len && n < 200 && body[n] != '\n' && body[n] != '\r')
            n++;
        if (n) {
            buf_puts(&b, ": ");
            buf_append(&b, body, n);
        }
    }
    json_decref(j);
    return buf_steal(&b);
}

char *cli_transport_text(const char *servers, const char *why)
{
    const char *what = strchr(servers, ',') ? "could not reach any server of" : "could not reach";
    /* The client's text may start with the server it last tried; the list
     * is already in the message, so drop the repeat. */
    for (const char *p = servers; why && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && p[n - 1] == '/')
            n--;
        if (n && !strncmp(why, p, n) && why[n] == ':' && why[n + 1] == ' ') {
            why += n + 2;
            break;
        }
        if (!end) break;
        p = end + 1;
    }
    /* The usual first HTTPS stumble is a private CA: say what fixes it. */
    const char *hint = why && strstr(why, "certificate")
                           ? " (to trust a private CA, pass --ca FILE or set SKED_CA)"
                           : "";
    return xasprintf("%s %s: %s%s", what, servers, why && *why ? why : "no answer", hint);
}

static int status_err(long status)
{
    switch (status) {
    case 400:
        return SKED_EINVAL;
    case 401:
        return SKED_EUNAUTH;
    case 403:
        return SKED_EFORBID;
    case 404:
        return SKED_ENOTFOUND;
    case 405:
        return SKED_EMETHOD;
    case 409:
        return SKED_ECONFLICT;
    case 412:
        return SKED_EPRECOND;
    case 413:
        return SKED_ETOOBIG;
    case 503:
        return SKED_ESTORE;
    default:
        return SKED_EIO;
    }
}

int cli_do(cli_t *c, const char *method, const char *path, const json_t *body,
           const char *const *headers, httpc_resp_t *resp)
{
    char *text = NULL;
    char *msg = NULL;
    int rc = 0;

    memset(resp, 0, sizeof *resp);
    httpc_t *h = cli_client(c);
    if (!h) {
        rc = SKED_EINVAL;
        goto out;
    }
    if (body) text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    rc = httpc_do(h, method, path, text ? "application/json" : NULL, text, text ? strlen(text) : 0,
                  headers, resp);
    if (rc < 0 || resp->status == 0) {
        msg = cli_transport_text(
            cli_servers(c), resp->errbuf[0] ? resp->errbuf : sked_strerror(rc < 0 ? rc : SKED_EIO));
        fprintf(stderr, "sked: %s\n", msg);
        if (rc >= 0) rc = SKED_EIO;
        httpc_resp_clear(resp);
        goto out;
    }
    if (resp->status < 200 || resp->status > 299) {
        msg = cli_error_text(resp->status, resp->body, resp->len);
        fprintf(stderr, "sked: %s\n", msg);
        if (resp->status == 401 && !c->token_buf)
            fprintf(stderr, "sked: no token given: use --token, --token-file, SKED_TOKEN or "
                            "SKED_TOKEN_FILE\n");
        rc = status_err(resp->status);
        httpc_resp_clear(resp);
        goto out;
    }
    rc = 0;
out:
    free(msg);
    free(text);
    return rc;
}

int cli_call(cli_t *c, const char *method, const char *path, const json_t *body,
             const char *const *headers, json_t **out)
{
    httpc_resp_t resp;
    json_error_t jerr;
    int rc;

    *out = NULL;
    rc = cli_do(c, method, path, body, headers, &resp);
    if (rc < 0) return rc;
    if (resp.body && resp.len) {
        *out = json_loadb(resp.body, resp.len, 0, &jerr);
        if (!*out) {
            fprintf(stderr, "sked: %s %s: the server's answer is not JSON: %s\n", method, path,
                    jerr.text);
            rc = SKED_EIO;
        }
    }
    httpc_resp_clear(&resp);
    return rc;
}

void cli_print_json(const json_t *j)
{
    if (j)
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    else
        fputs("null", stdout);
    fputc('\n', stdout);
}

char *cli_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_t b = BUF_INIT;
    buf_puts(&b, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* RFC 3986 unreserved characters pass; everything else is encoded. */
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf_append(&b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(&b, e, 3);
        }
    }
    return buf_steal(&b);
}

void cli_query_add(buf_t *b, const char *key, const char *value)
{
    if (!value) return;
    char *v = cli_url_escape(value);
    buf_printf(b, "%c%s=%s", b->data && strchr(b->data, '?') ? '&' : '?', key, v);
    free(v);
}

int cli_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    if (!s || !*s || isspace((unsigned char)*s)) return SKED_EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return SKED_EINVAL;
    *out = v;
    return 0;
}

/* --- table ------------------------------------------------------------ */

struct cli_table {
    int ncols;
    int has_header;
    size_t nrows; /* header row included when present */
    size_t cap;
    char **cells; /* nrows * ncols, owned */
};

static void table_push(cli_table_t *t, va_list ap)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof *t->cells);
    }
    for (int i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = xstrdup(s ? s : "-");
    }
    t->nrows++;
}

cli_table_t *cli_table_new(int ncols, ...)
{
    cli_table_t *t = xcalloc(1, sizeof *t);
    va_list ap;
    t->ncols = ncols;
    va_start(ap, ncols);
    const char *first = va_arg(ap, const char *);
    va_end(ap);
    if (first) {
        t->has_header = 1;
        va_start(ap, ncols);
        table_push(t, ap);
        va_end(ap);
    }
    return t;
}

void cli_table_add(cli_table_t *t, ...)
{
    va_list ap;
    va_start(ap, t);
    table_push(t, ap);
    va_end(ap);
}

/* Display width of UTF-8 text: one column per character (no East Asian
 * wide forms in ids, states or times, and names rarely have them). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

char *cli_table_render(const cli_table_t *t)
{
    buf_t b = BUF_INIT;
    size_t *width = xcalloc((size_t)t->ncols, sizeof *width);

    for (size_t r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++) {
            size_t w = text_width(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (w > width[i]) width[i] = w;
        }
    buf_puts(&b, "");
    for (size_t r = 0; r < t->nrows; r++) {
        for (int i = 0; i < t->ncols; i++) {
            const char *cell = t->cells[r * (size_t)t->ncols + (size_t)i];
            buf_puts(&b, cell);
            if (i == t->ncols - 1) break;
            for (size_t pad = text_width(cell); pad < width[i] + 2; pad++)
                buf_puts(&b, " ");
        }
        /* An empty last cell would leave the padding dangling. */
        while (b.len && b.data[b.len - 1] == ' ')
            b.data[--b.len] = '\0';
        buf_puts(&b, "\n");
    }
    free(width);
    return buf_steal(&b);
}

void cli_table_print(const cli_table_t *t, FILE *f)
{
    char *s = cli_table_render(t);
    fputs(s, f);
    free(s);
}

void cli_table_free(cli_table_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* --- formatting ------------------------------------------------------- */

const char *cli_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

const char *cli_fmt_time(const json_t *v, char *out, size_t outlen)
{
    const char *s = json_string_value(v);
    int64_t ms;
    if (!s || !*s) {
        snprintf(out, outlen, "-");
    } else if (clock_parse_rfc3339(s, &ms) < 0) {
        snprintf(out, outlen, "%s", s);
    } else {
        /* Whole seconds are what people read; -o json keeps the rest. */
        int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
        clock_format_rfc3339(secs * 1000, out, outlen);
    }
    return out;
}

const char *cli_fmt_scalar(const json_t *v, char *out, size_t outlen)
{
    if (json_is_string(v))
        snprintf(out, outlen, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, outlen, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, outlen, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, outlen, "-");
    return out;
}

const char *cli_fmt_schedule(const json_t *sch, char *out, size_t outlen)
{
    const char *cron = cli_str(sch, "cron"), *every = cli_str(sch, "every");
    const char *at = cli_str(sch, "at"), *tz = cli_str(sch, "timezone");
    char t[SKED_RFC3339_LEN];
    if (cron)
        snprintf(out, outlen, "cron %s%s%s", cron, tz && *tz ? " " : "", tz ? tz : "");
    else if (every)
        snprintf(out, outlen, "every %s", every);
    else if (at)
        snprintf(out, outlen, "at %s", cli_fmt_time(json_object_get(sch, "at"), t, sizeof t));
    else
        snprintf(out, outlen, "-");
    return out;
}

const char *cli_fmt_schedules(const json_t *schs, char *out, size_t outlen)
{
    size_t n = json_array_size(schs);
    if (n)
        cli_fmt_schedule(json_array_get(schs, 0), out, outlen);
    else
        snprintf(out, outlen, "-");
    if (n > 1) {
        size_t l = strlen(out);
        snprintf(out + l, outlen - l, " (+%zu)", n - 1);
    }
    return out;
}

const char *cli_job_next_fire(const json_t *job, char *out, size_t outlen)
{
    const json_t *best = NULL;
    int64_t best_ms = INT64_MAX;
    size_t i;
    json_t *sch;
    json_array_foreach(json_object_get(job, "schedules"), i, sch)
    {
        json_t *nf = json_object_get(sch, "next_fire_at");
        int64_t ms;
        if (json_is_string(nf) && clock_parse_rfc3339(json_string_value(nf), &ms) == 0 &&
            ms < best_ms) {
            best_ms = ms;
            best = nf;
        }
    }
    return cli_fmt_time(best, out, outlen);
}

/* Appends argv as a shell would need it typed: words with anything but
 * safe characters go in single quotes. */
static void append_argv(buf_t *b, const json_t *argv)
{
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a)
    {
        const char *s = json_string_value(a);
        if (!s) continue;
        if (i) buf_puts(b, " ");
        int safe = *s != '\0';
        for (const char *p = s; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("-_./=:,@%+", *p)) safe = 0;
        if (safe) {
            buf_puts(b, s);
            continue;
        }
        buf_puts(b, "'");
        for (const char *p = s; *p; p++) {
            if (*p == '\'')
                buf_puts(b, "'\\''");
            else
                buf_append(b, p, 1);
        }
        buf_puts(b, "'");
    }
}

/* The answer res to an action on the resource id (see cli_resource_action). */
static void print_action(const cli_t *c, const char *id, const char *verb, const json_t *res)
{
    if (c->json) {
        if (res) cli_print_json(res);
    } else if (!verb) {
        printf("%s deleted\n", id);
    } else if (!strcmp(verb, "trigger")) {
        /* Just the run id, so $(sked jobs trigger ID) composes. */
        printf("%s\n", cli_str(res, "id") ? cli_str(res, "id") : "");
    } else {
        printf("%s %s\n", id, cli_str(res, "state") ? cli_str(res, "state") : verb);
    }
}

int cli_resource_action(cli_t *c, const char *base, const char *id, const char *method,
                        const char *verb)
{
    char *esc = cli_url_escape(id);
    char *path = verb ? xasprintf("%s/%s/%s", base, esc, verb) : xasprintf("%s/%s", base, esc);
    json_t *res = NULL;
    int rc = CLI_EXIT_OK;
    if (cli_call(c, method, path, NULL, NULL, &res) < 0)
        rc = CLI_EXIT_FAIL;
    else
        print_action(c, id, verb, res);
    json_decref(res);
    free(path);
    free(esc);
    return rc;
}

void cli_fmt_argv(buf_t *b, const json_t *argv)
{
    append_argv(b, argv);
}

/* "k=v, k2=v2" of a JSON object of scalars; "-" when empty. */
static void append_pairs(buf_t *b, const json_t *obj)
{
    const char *k;
    json_t *v;
    char s[256];
    size_t start = b->len;
    json_object_foreach((json_t *)obj, k, v)
    {
        buf_printf(b, "%s%s=%s", b->len > start ? ", " : "", k, cli_fmt_scalar(v, s, sizeof s));
    }
    if (b->len == start) buf_puts(b, "-");
}

void cli_print_job(const json_t *job)
{
    cli_table_t *kv = cli_table_new(2, NULL, NULL);
    buf_t b = BUF_INIT;
    char s1[256], s3[SKED_RFC3339_LEN], s4[SKED_RFC3339_LEN];
    const json_t *retry = json_object_get(job, "retry");
    size_t i;
    json_t *v;

    cli_table_add(kv, "ID:", cli_str(job, "id"));
    cli_table_add(kv, "Name:", cli_str(job, "name"));
    cli_table_add(kv, "State:", cli_str(job, "state"));
    cli_table_add(kv, "Version:", cli_fmt_scalar(json_object_get(job, "version"), s1, sizeof s1));
    cli_table_add(kv, "Type:", cli_str(job, "type"));
    const json_t *config = json_object_get(job, "config");
    if (json_is_object(config)) {
        /* A non-shell job: its config (secrets come masked) instead of a
         * command. */
        char *text = json_dumps(config, JSON_COMPACT);
        cli_table_add(kv, "Config:", text);
        free(text);
    } else {
        buf_reset(&b);
        append_argv(&b, json_object_get(job, "command"));
        cli_table_add(kv, "Command:", b.data);
        cli_table_add(kv, "Cwd:", cli_str(job, "cwd"));
    }
    buf_reset(&b);
    append_pairs(&b, json_object_get(job, "env"));
    cli_table_add(kv, "Env:", b.data);
    cli_table_add(kv, "Queue:", cli_str(job, "queue"));
    cli_table_add(kv, "Priority:", cli_fmt_scalar(json_object_get(job, "priority"), s1, sizeof s1));
    buf_reset(&b);
    append_pairs(&b, json_object_get(job, "constraints"));
    cli_table_add(kv, "Constraints:", b.data);
    cli_table_add(kv, "Timeout:", cli_fmt_scalar(json_object_get(job, "timeout"), s1, sizeof s1));
    buf_reset(&b);
    if (json_is_object(retry)) append_pairs(&b, retry);
    cli_table_add(kv, "Retry:", b.len ? b.data : NULL);
    cli_table_add(kv, "Overlap:", cli_str(job, "overlap"));
    cli_table_add(kv, "Misfire:", cli_str(job, "misfire"));
    cli_table_add(kv, "Max concurrency:",
                  cli_fmt_scalar(json_object_get(job, "max_concurrency"), s1, sizeof s1));
    buf_reset(&b);
    json_array_foreach(json_object_get(job, "tags"), i, v)
    {
        buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(v) ? json_string_value(v) : "");
    }
    cli_table_add(kv, "Tags:", b.len ? b.data : NULL);
    cli_table_add(kv, "Next fire:", cli_job_next_fire(job, s3, sizeof s3));
    cli_table_add(kv, "Created:", cli_fmt_time(json_object_get(job, "created_at"), s3, sizeof s3));
    cli_table_add(kv, "Updated:", cli_fmt_time(json_object_get(job, "updated_at"), s3, sizeof s3));
    const json_t *lr = json_object_get(job, "last_run");
    if (json_is_object(lr)) {
        snprintf(s1, sizeof s1, "%s %s (fired %s)", cli_str(lr, "id") ? cli_str(lr, "id") : "-",
                 cli_str(lr, "state") ? cli_str(lr, "state") : "-",
                 cli_fmt_time(json_object_get(lr, "fire_time"), s3, sizeof s3));
        cli_table_add(kv, "Last run:", s1);
    } else if (json_object_get(job, "last_run")) {
        cli_table_add(kv, "Last run:", "-");
    }
    cli_table_print(kv, stdout);
    cli_table_free(kv);

    const json_t *schs = json_object_get(job, "schedules");
    if (json_array_size(schs)) {
        cli_table_t *st = cli_table_new(4, "SCHEDULE", "WHEN", "NEXT FIRE", "LAST FIRE");
        json_array_foreach(schs, i, v)
        {
            cli_table_add(st, cli_str(v, "id"), cli_fmt_schedule(v, s1, sizeof s1),
                          cli_fmt_time(json_object_get(v, "next_fire_at"), s3, sizeof s3),
                          cli_fmt_time(json_object_get(v, "last_fire_at"), s4, sizeof s4));
        }
        fputc('\n', stdout);
        cli_table_print(st, stdout);
        cli_table_free(st);
    }
    buf_free(&b);
}

/* --- schedule and job-field options ------------------------------------ */

int cli_sched_opt(cli_sched_t *s, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_CRON:
        s->cron = arg;
        return 1;
    case CLI_OPT_TZ:
        s->tz = arg;
        return 1;
    case CLI_OPT_EVERY:
        s->every = arg;
        return 1;
    case CLI_OPT_AT:
        s->at = arg;
        return 1;
    default:
        return 0;
    }
}

int cli_sched_build(const cli_sched_t *s, int64_t now_ms, json_t **out, char *err, size_t errlen)
{
    json_t *sch = NULL;
    int kinds = !!s->cron + !!s->every + !!s->at;
    int rc = 0;

    *out = NULL;
    if (s->tz && !s->cron) {
        snprintf(err, errlen, "--tz applies to --cron only");
        rc = SKED_EINVAL;
        goto out;
    }
    if (kinds > 1) {
        snprintf(err, errlen, "give only one of --cron, --every and --at");
        rc = SKED_EINVAL;
        goto out;
    }
    if (!kinds) goto out;
    sch = json_object();
    if (s->cron) {
        json_object_set_new(sch, "cron", json_string(s->cron));
        if (s->tz) json_object_set_new(sch, "timezone", json_string(s->tz));
    } else if (s->every) {
        json_object_set_new(sch, "every", json_string(s->every));
    } else {
        int64_t ms, d;
        char t[SKED_RFC3339_LEN];
        if (s->at[0] == '+' && duration_parse(s->at + 1, &d) == 0) {
            ms = now_ms + d;
        } else if (clock_parse_rfc3339(s->at, &ms) < 0) {
            snprintf(err, errlen,
                     "--at: '%s' is neither an RFC 3339 time (2026-12-24T18:00:00Z) nor +DURATION",
                     s->at);
            rc = SKED_EINVAL;
            goto out;
        }
        clock_format_rfc3339(ms, t, sizeof t);
        json_object_set_new(sch, "at", json_string(t));
    }
    *out = json_array();
    json_array_append_new(*out, sch);
    sch = NULL;
out:
    json_decref(sch);
    return rc;
}

/* doc[key] as an object, created (or replacing a non-object) when needed.
 * Borrowed from doc. */
static json_t *child_object(json_t *doc, const char *key)
{
    json_t *o = json_object_get(doc, key);
    if (json_is_object(o)) return o;
    o = json_object();
    json_object_set_new(doc, key, o);
    return o;
}

/* --array: "0-N" or "COUNT", each with an optional "%K" (Slurm's form;
 * indices always start at 0). */
static int set_array(json_t *doc, const char *arg, char *err, size_t errlen)
{
    char spec[64];
    long long count = 0, par = 0, hi = 0;
    snprintf(spec, sizeof spec, "%s", arg);
    char *pct = strchr(spec, '%');
    if (pct) {
        *pct = '\0';
        if (cli_parse_int(pct + 1, 1, INT32_MAX, &par) < 0) {
            snprintf(err, errlen, "--array: '%s' after %% is not a count of 1 or more", pct + 1);
            return SKED_EINVAL;
        }
    }
    char *dash = strchr(spec, '-');
    if (dash) {
        *dash = '\0';
        if (strcmp(spec, "0") != 0 || cli_parse_int(dash + 1, 0, INT32_MAX - 1, &hi) < 0) {
            snprintf(err, errlen,
                     "--array: '%s' is not 0-N[%%K]: indices run from 0 (e.g. 0-99%%10)", arg);
            return SKED_EINVAL;
        }
        count = hi + 1;
    } else if (cli_parse_int(spec, 1, INT32_MAX, &count) < 0) {
        snprintf(err, errlen, "--array: '%s' is not 0-N[%%K] or a count", arg);
        return SKED_EINVAL;
    }
    json_t *a = json_object();
    json_object_set_new(a, "count", json_integer(count));
    json_object_set_new(a, "parallel", json_integer(par));
    json_object_set_new(doc, "array", a);
    return 1;
}

/* --dependency: "afterok:JOB[:JOB...][,afterany:JOB...]" or just "JOB"
 * (afterok), appended to depends_on. */
static int add_dependencies(json_t *doc, const char *arg, char *err, size_t errlen)
{
    json_t *deps = json_object_get(doc, "depends_on");
    if (!json_is_array(deps)) {
        deps = json_array();
        json_object_set_new(doc, "depends_on", deps);
    }
    char *copy = xstrdup(arg), *save = NULL;
    int rc = 1;
    for (char *part = strtok_r(copy, ",", &save); part && rc == 1;
         part = strtok_r(NULL, ",", &save)) {
        const char *cond = "afterok";
        char *jobs = part, *colon = strchr(part, ':');
        if (colon && (!strncmp(part, "after", 5))) {
            *colon = '\0';
            cond = part;
            jobs = colon + 1;
            if (strcmp(cond, "afterok") && strcmp(cond, "afterany") && strcmp(cond, "afternotok")) {
                snprintf(err, errlen, "--dependency: '%s' is not afterok, afterany or afternotok",
                         cond);
                rc = SKED_EINVAL;
                break;
            }
        }
        char *save2 = NULL;
        bool any = false;
        for (char *j = strtok_r(jobs, ":", &save2); j; j = strtok_r(NULL, ":", &save2)) {
            json_t *d = json_object();
            json_object_set_new(d, "job", json_string(j));
            json_object_set_new(d, "condition", json_string(cond));
            json_array_append_new(deps, d);
            any = true;
        }
        if (!any) {
            snprintf(err, errlen, "--dependency: '%s' names no job", arg);
            rc = SKED_EINVAL;
        }
    }
    free(copy);
    return rc;
}

/* Splits "K=V" into obj[K] = "V". */
static int set_pair(json_t *obj, const char *opt, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        snprintf(err, errlen, "%s: expected KEY=VALUE, got '%s'", opt, arg);
        return SKED_EINVAL;
    }
    char *key = xstrndup(arg, (size_t)(eq - arg));
    json_object_set_new(obj, key, json_string(eq + 1));
    free(key);
    return 1;
}

int cli_job_opt(json_t *doc, int opt, const char *arg, char *err, size_t errlen)
{
    long long n;
    switch (opt) {
    case CLI_OPT_NAME:
        json_object_set_new(doc, "name", json_string(arg));
        return 1;
    case CLI_OPT_QUEUE:
        json_object_set_new(doc, "queue", json_string(arg));
        return 1;
    case CLI_OPT_TIMEOUT:
        json_object_set_new(doc, "timeout", json_string(arg));
        return 1;
    case CLI_OPT_CWD:
        json_object_set_new(doc, "cwd", json_string(arg));
        return 1;
    case CLI_OPT_OVERLAP:
        json_object_set_new(doc, "overlap", json_string(arg));
        return 1;
    case CLI_OPT_MISFIRE:
        json_object_set_new(doc, "misfire", json_string(arg));
        return 1;
    case CLI_OPT_PRIORITY:
        /* Only the syntax is checked here; the server owns the range and
         * names the field when it is out of it. */
        if (cli_parse_int(arg, INT32_MIN, INT32_MAX, &n) < 0) {
            snprintf(err, errlen, "--priority: '%s' is not an integer", arg);
            return SKED_EINVAL;
        }
        json_object_set_new(doc, "priority", json_integer(n));
        return 1;
    case CLI_OPT_RETRIES:
        if (cli_parse_int(arg, 0, INT32_MAX - 1, &n) < 0) {
            snprintf(err, errlen, "--retries: '%s' is not a count (0 or more)", arg);
            return SKED_EINVAL;
        }
        /* N retries after the first try. */
        json_object_set_new(child_object(doc, "retry"), "max_attempts", json_integer(n + 1));
        return 1;
    case CLI_OPT_MAX_CONC:
        if (cli_parse_int(arg, 0, INT32_MAX, &n) < 0) {
            snprintf(err, errlen, "--max-concurrency: '%s' is not a count (0 or more)", arg);
            return SKED_EINVAL;
        }
        json_object_set_new(doc, "max_concurrency", json_integer(n));
        return 1;
    case CLI_OPT_ENV:
        return set_pair(child_object(doc, "env"), "--env", arg, err, errlen);
    case CLI_OPT_CONSTRAINT:
        return set_pair(child_object(doc, "constraints"), "--constraint", arg, err, errlen);
    case CLI_OPT_ARRAY:
        return set_array(doc, arg, err, errlen);
    case CLI_OPT_DEPENDENCY:
        return add_dependencies(doc, arg, err, errlen);
    case CLI_OPT_TAG: {
        json_t *tags = json_object_get(doc, "tags");
        if (!json_is_array(tags)) {
            tags = json_array();
            json_object_set_new(doc, "tags", tags);
        }
        json_array_append_new(tags, json_string(arg));
        return 1;
    }
    default:
        return 0;
    }
}

/* --- argument parsing and lists ---------------------------------------- */

int cli_parse(cli_t *c, int argc, char **argv, const struct option *longopts, const char *shortopts,
              int in_order, cli_opt_fn fn, void *arg, int *first_pos)
{
    /* ':' first: getopt reports a missing value as ':' and stays quiet, so
     * every message comes out in one voice (cli_bad_option). */
    char *optstring =
        xasprintf("%s:%s%s", in_order ? "+" : "", CLI_COMMON_SHORTOPTS, shortopts ? shortopts : "");
    int rc = CLI_EXIT_OK, opt, r;

    optind = 0; /* glibc: 0 re-initialises, so commands (and tests) can parse again */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        if (opt == '?' || opt == ':') {
            rc = cli_bad_option(c, opt, argv);
            goto out;
        }
        r = cli_common_opt(c, opt, optarg);
        if (r == 0 && fn) r = fn(c, arg, opt, optarg);
        if (r < 0) {
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        if (r == 0) {
            rc = cli_bad_option(c, '?', argv);
            goto out;
        }
    }
    *first_pos = optind;
out:
    free(optstring);
    return rc;
}

int cli_want_args(const cli_t *c, int n, int min, int max, const char *what)
{
    if (n < min) return cli_usage_error(c, "missing %s", what);
    if (max >= 0 && n > max) return cli_usage_error(c, "too many arguments (expected %s)", what);
    return CLI_EXIT_OK;
}

int cli_list(cli_t *c, const char *path, int all, json_t **out)
{
    json_t *acc = NULL, *page = NULL;
    char *cursor = NULL;
    buf_t p = BUF_INIT;
    int rc = 0;

    *out = NULL;
    for (;;) {
        buf_reset(&p);
        buf_puts(&p, path);
        cli_query_add(&p, "cursor", cursor);
        rc = cli_call(c, "GET", p.data, NULL, NULL, &page);
        if (rc < 0) goto out;
        if (!json_is_array(json_object_get(page, "items"))) {
            fprintf(stderr, "sked: GET %s: the answer has no item list\n", p.data);
            rc = SKED_EIO;
            goto out;
        }
        char *next = xstrdup(cli_str(page, "next_cursor")); /* page may be freed below */
        if (!acc) {
            acc = page;
        } else {
            json_array_extend(json_object_get(acc, "items"), json_object_get(page, "items"));
            json_decref(page);
        }
        page = NULL;
        /* A cursor that does not move would loop forever; stop instead. */
        if (!all || !next || !*next || (cursor && !strcmp(cursor, next))) {
            free(next);
            break;
        }
        free(cursor);
        cursor = next;
    }
    if (all) json_object_set_new(acc, "next_cursor", json_null());
    *out = acc;
    acc = NULL;
out:
    json_decref(page);
    json_decref(acc);
    free(cursor);
    buf_free(&p);
    return rc;
}

int cli_job_ref(cli_t *c, const char *ref, char *id)
{
    /* What starts like an id is one (the server judges it): a job whose
     * name starts with "job_" is named by its id. */
    if (strncmp(ref, "job_", 4) == 0) {
        if (strlen(ref) >= SKED_ID_LEN) {
            fprintf(stderr, "sked %s: '%.40s...' is not a job id\n", c->cmd, ref);
            return CLI_EXIT_FAIL;
        }
        snprintf(id, SKED_ID_LEN, "%s", ref);
        return CLI_EXIT_OK;
    }
    /* The server's name filter matches substrings: keep the exact ones. */
    buf_t path = BUF_INIT;
    json_t *list = NULL, *j;
    size_t i, found = 0;
    const char *first_ns = NULL;
    int rc = CLI_EXIT_FAIL;
    buf_puts(&path, "/v1/jobs");
    cli_query_add(&path, "name", ref);
    cli_query_add(&path, "limit", "1000");
    if (cli_list(c, path.data, 1, &list) < 0) goto out;
    json_array_foreach(json_object_get(list, "items"), i, j)
    {
        const char *name = cli_str(j, "name");
        if (!name || strcmp(name, ref) != 0) continue;
        if (found++ == 0) {
            snprintf(id, SKED_ID_LEN, "%s", cli_str(j, "id") ? cli_str(j, "id") : "");
            first_ns = cli_str(j, "namespace");
        }
    }
    if (found == 1) {
        rc = CLI_EXIT_OK;
    } else if (found == 0) {
        fprintf(stderr, "sked %s: no job named or with the id '%s'\n", c->cmd, ref);
    } else {
        fprintf(stderr,
                "sked %s: %zu jobs are named '%s' (in namespaces %s and others); give the "
                "job's id\n",
                c->cmd, found, ref, first_ns ? first_ns : "?");
    }
out:
    json_decref(list);
    buf_free(&path);
    return rc;
}

int cli_list_show(cli_t *c, const char *path, int all, void (*print)(const json_t *list),
                  const char *noun)
{
    json_t *list = NULL;
    if (cli_list(c, path, all, &list) < 0) return CLI_EXIT_FAIL;
    if (c->json) {
        cli_print_json(list);
    } else {
        print(list);
        if (cli_str(list, "next_cursor"))
            fprintf(stderr, "sked: more %s exist; use --all to list them all\n", noun);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}
