/*
 * Unit tests for server/http_parse: the parsers that stand between
 * microhttpd and sked, fed normal and hostile input directly, with no
 * socket. Percent-decoding (every escape form, %00, %2F, bad and
 * truncated escapes, overlong UTF-8, surrogates, long input), strict
 * UTF-8, Content-Length numbers, path splitting and route matching, and
 * the framing audit over header blocks laid out the way microhttpd
 * parses them in place (hidden bytes, smuggling shapes). Requests over a
 * real socket are test_http.c's and e2e/test_hostile.py's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/http_parse.h"

#include <stdlib.h>
#include <string.h>

/* Decodes a copy of in; returns the verdict and, when OK, checks out. */
static enum http_pct decode(const char *in, bool slash_ok, const char *want)
{
    char *s = strdup(in);
    assert_non_null(s);
    enum http_pct e = http_pct_decode(s, slash_ok);
    if (e == HTTP_PCT_OK && want) assert_string_equal(s, want);
    free(s);
    return e;
}

static void test_pct_plain_and_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } ok[] = {
        {"", ""},
        {"job_01abc", "job_01abc"},
        {"a%20b", "a b"},
        {"%41%42%43", "ABC"},
        {"%6a%6A", "jj"},         /* either case of hex digit */
        {"%25", "%"},             /* an escaped '%' */
        {"%2541", "%41"},         /* decoded once, never twice */
        {"%", "%"},               /* a '%' that starts no escape stands for itself */
        {"abc%", "abc%"},         /* ... at the end */
        {"%4", "%4"},             /* ... one digit short */
        {"%zz", "%zz"},           /* ... no hex digits */
        {"%4g", "%4g"},           /* ... a bad second digit */
        {"%g4", "%g4"},           /* ... a bad first digit */
        {"%%41", "%A"},           /* a lone '%' before a real escape */
        {"a+b", "a+b"},           /* '+' is not a space in a path or here */
        {"%C3%A9t%C3%A9", "été"}, /* UTF-8 in escapes */
        {"été", "été"},           /* ... and raw */
        {"%F0%9F%98%80", "\xF0\x9F\x98\x80"},
        {"%F4%8F%BF%BF", "\xF4\x8F\xBF\xBF"}, /* U+10FFFF, the last code point */
        {"%7F%01", "\x7F\x01"},               /* control characters are UTF-8 too */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(decode(ok[i].in, false, ok[i].want), HTTP_PCT_OK);
}

static void test_pct_nul_and_slash(void **state)
{
    (void)state;
    assert_int_equal(decode("%00", true, NULL), HTTP_PCT_NUL);
    assert_int_equal(decode("job_x%00junk", true, NULL), HTTP_PCT_NUL);
    assert_int_equal(decode("%2500", true, "%00"), HTTP_PCT_OK); /* an escaped "%00" is text */
    assert_int_equal(decode("a%2fb", false, NULL), HTTP_PCT_SLASH);
    assert_int_equal(decode("a%2Fb", false, NULL), HTTP_PCT_SLASH);
    assert_int_equal(decode("a%2Fb", true, "a/b"), HTTP_PCT_OK);
    assert_int_equal(decode("..%2F..%2Fetc", false, NULL), HTTP_PCT_SLASH);
    assert_int_equal(decode("a/b", false, "a/b"), HTTP_PCT_OK); /* only an encoded one */
    /* NUL wins over a later slash and a later bad byte: the first one met. */
    assert_int_equal(decode("%00%2F", false, NULL), HTTP_PCT_NUL);
    assert_int_equal(decode("%2F%00", false, NULL), HTTP_PCT_SLASH);
}

static void test_pct_bad_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {
        "%C3",             /* truncated at the end */
        "%C3x",            /* truncated before ASCII */
        "%E2%82",          /* three bytes, two given */
        "%80",             /* a lone continuation byte */
        "%BF%BF",          /* ... two */
        "%C0%AF",          /* overlong '/', the classic traversal */
        "%C1%BF",          /* overlong */
        "%E0%80%AF",       /* overlong in three bytes */
        "%F0%80%80%AF",    /* overlong in four bytes */
        "%ED%A0%80",       /* a UTF-16 surrogate */
        "%ED%BF%BF",       /* ... the last one */
        "%F4%90%80%80",    /* past U+10FFFF */
        "%F8%88%80%80%80", /* five-byte form */
        "%FE",             /* never valid */
        "%FF",
        "\xff",   /* raw, not escaped */
        "ok\xc3", /* raw, truncated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(decode(bad[i], true, NULL), HTTP_PCT_UTF8);
}

static void test_pct_long_input(void **state)
{
    (void)state;
    enum { N = 100000 };
    char *in = malloc(3 * N + 1), *want = malloc(N + 1);
    assert_non_null(in);
    assert_non_null(want);
    for (size_t i = 0; i < N; i++) {
        memcpy(in + 3 * i, "%41", 3);
        want[i] = 'A';
    }
    in[3 * N] = want[N] = 0;
    assert_int_equal(decode(in, false, want), HTTP_PCT_OK);
    /* One bad escape at the very end still counts. */
    memcpy(in + 3 * (N - 1), "%00", 3);
    assert_int_equal(decode(in, false, NULL), HTTP_PCT_NUL);
    /* A run of lone '%'s is all text. */
    memset(in, '%', 3 * N);
    assert_int_equal(decode(in, false, in), HTTP_PCT_OK);
    free(in);
    free(want);
}

static void test_pct_what(void **state)
{
    (void)state;
    assert_non_null(strstr(http_pct_what(HTTP_PCT_NUL), "%00"));
    assert_non_null(strstr(http_pct_what(HTTP_PCT_SLASH), "%2F"));
    assert_non_null(strstr(http_pct_what(HTTP_PCT_UTF8), "UTF-8"));
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(http_utf8_valid(""));
    assert_true(http_utf8_valid("plain ascii"));
    assert_true(http_utf8_valid("\xC2\x80"));          /* U+0080, the first two-byte */
    assert_true(http_utf8_valid("\xDF\xBF"));          /* U+07FF */
    assert_true(http_utf8_valid("\xE0\xA0\x80"));      /* U+0800 */
    assert_true(http_utf8_valid("\xED\x9F\xBF"));      /* U+D7FF, just below surrogates */
    assert_true(http_utf8_valid("\xEE\x80\x80"));      /* U+E000, just above */
    assert_true(http_utf8_valid("\xF0\x90\x80\x80"));  /* U+10000 */
    assert_false(http_utf8_valid("\xC2"));             /* cut by the NUL */
    assert_false(http_utf8_valid("\xE0\x9F\xBF"));     /* overlong U+07FF */
    assert_false(http_utf8_valid("\xF0\x8F\xBF\xBF")); /* overlong U+FFFF */
    assert_false(http_utf8_valid("\xC2\xC2\x80"));     /* a lead where a tail belongs */
    assert_false(http_utf8_valid("abc\x80"));
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 1;
    assert_int_equal(http_parse_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(http_parse_u64("1048576", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(http_parse_u64("007", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(http_parse_u64("18446744073709551609", &v), 0);
    assert_true(v == UINT64_C(18446744073709551609));
    static const char *bad[] = {
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1\t",
        "0x10",
        "1e3",
        "1.0",
        "١",
        "18446744073709551616", /* UINT64_MAX + 1 */
        "99999999999999999999",
        "1000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        assert_int_equal(http_parse_u64(bad[i], &v), -1);
        assert_int_equal(v, 42); /* untouched on failure */
    }
    assert_int_equal(http_parse_u64(NULL, &v), -1);
}

static void test_path_split(void **state)
{
    (void)state;
    char *segs[4];
    char p1[] = "v1/jobs/job_1";
    assert_int_equal(http_path_split(p1, segs, 4), 3);
    assert_string_equal(segs[0], "v1");
    assert_string_equal(segs[1], "jobs");
    assert_string_equal(segs[2], "job_1");
    char p2[] = "";
    assert_int_equal(http_path_split(p2, segs, 4), 1);
    assert_string_equal(segs[0], "");
    char p3[] = "a//b/";
    assert_int_equal(http_path_split(p3, segs, 4), 4);
    assert_string_equal(segs[1], "");
    assert_string_equal(segs[3], "");
    char p4[] = "a%2Fb/c"; /* escapes are not separators */
    assert_int_equal(http_path_split(p4, segs, 4), 2);
    assert_string_equal(segs[0], "a%2Fb");
    char p5[] = "1/2/3/4";
    assert_int_equal(http_path_split(p5, segs, 4), 4);
    char p6[] = "1/2/3/4/5"; /* one too many */
    assert_int_equal(http_path_split(p6, segs, 4), 0);
    char p7[] = "/////"; /* six empty segments */
    assert_int_equal(http_path_split(p7, segs, 4), 0);
}

/* Splits a copy of path (after its '/') and matches it. */
static bool matches(const char *pattern, const char *path, const char **params, size_t max)
{
    static char buf[256];
    char *segs[16];
    assert_true(path[0] == '/' && strlen(path) < sizeof buf);
    strcpy(buf, path + 1);
    size_t n = http_path_split(buf, segs, 16);
    assert_true(n > 0);
    return http_path_match(pattern, segs, n, params, max);
}

static void test_path_match(void **state)
{
    (void)state;
    const char *p[2] = {NULL, NULL};
    assert_true(matches("/v1/jobs", "/v1/jobs", p, 2));
    assert_true(matches("/v1/jobs/{id}", "/v1/jobs/job_1", p, 2));
    assert_string_equal(p[0], "job_1");
    assert_true(matches("/v1/jobs/{id}/runs/{n}", "/v1/jobs/a/runs/7", p, 2));
    assert_string_equal(p[0], "a");
    assert_string_equal(p[1], "7");
    p[1] = NULL;
    assert_true(matches("/v1/jobs/{id}/runs/{n}", "/v1/jobs/a/runs/7", p, 1)); /* capped */
    assert_null(p[1]);

    assert_false(matches("/v1/jobs/{id}", "/v1/jobs/", p, 2)); /* {x} takes no empty one */
    assert_false(matches("/v1/jobs/{id}", "/v1/jobs", p, 2));  /* too few */
    assert_false(matches("/v1/jobs", "/v1/jobs/x", p, 2));     /* too many */
    assert_false(matches("/v1/jobs", "/v1/jobs/", p, 2));      /* a trailing slash is one */
    assert_false(matches("/v1/jobs", "/v1/job", p, 2));
    assert_false(matches("/v1/jobs", "/v1/jobsx", p, 2));
    assert_false(matches("/v1/jobs", "/V1/jobs", p, 2)); /* case matters */
    assert_false(matches("/v1/jobs", "//v1/jobs", p, 2));
    assert_false(matches("v1/jobs", "/v1/jobs", p, 2)); /* a pattern must start with '/' */
    assert_true(matches("/", "/", p, 2));
    assert_false(matches("/", "/x", p, 2));
    assert_true(matches("/{x}", "/{x}", p, 2)); /* a literal brace is just a segment */
}

/*
 * Header blocks as microhttpd leaves them: parsed in place, the request
 * line and each field turned into NUL-terminated strings. A block is built
 * piece by piece; `field` pieces are reported to the audit, `raw` bytes
 * are not (what microhttpd would have hidden).
 */
struct block {
    char b[512];
    size_t n;
};

static const char *put(struct block *k, const char *s, size_t len)
{
    assert_true(k->n + len <= sizeof k->b);
    char *at = k->b + k->n;
    memcpy(at, s, len);
    k->n += len;
    return at;
}

/* A string piece with its NUL. */
static const char *str(struct block *k, const char *s)
{
    return put(k, s, strlen(s) + 1);
}

struct hfield {
    const char *key, *value;
};

/* Audits "METHOD\0TARGET\0VERSION\0\n" then each header "KEY\0 VALUE\0\n"
 * (both reported), with raw (unreported) bytes after the request line. */
static const char *audit(const char *version, const char *hidden, size_t hidden_len,
                         const struct hfield *h, size_t nh)
{
    struct block k = {.n = 0};
    http_frame_t f;
    const char *m = str(&k, "GET");
    const char *t = str(&k, "/v1/jobs");
    const char *v = version ? str(&k, version) : NULL;
    put(&k, "\r\n", 2);
    if (hidden) put(&k, hidden, hidden_len);
    const char *keys[8], *vals[8];
    assert_true(nh <= 8);
    for (size_t i = 0; i < nh; i++) {
        keys[i] = str(&k, h[i].key);
        put(&k, " ", 1);
        vals[i] = str(&k, h[i].value);
        put(&k, "\r\n", 2);
    }
    http_frame_begin(&f, m, t, v, k.n);
    for (size_t i = 0; i < nh; i++)
        http_frame_field(&f, true, keys[i], strlen(keys[i]), vals[i], strlen(vals[i]));
    const char *why = http_frame_end(&f);
    assert_null(f.seen);
    return why;
}

#define HOST                                                                                       \
    {                                                                                              \
        "Host", "x"                                                                                \
    }

static void test_frame_sound(void **state)
{
    (void)state;
    const struct hfield h1[] = {HOST, {"Accept", "*/*"}, {"X-Tab", "a\tb"}};
    assert_null(audit("HTTP/1.1", NULL, 0, h1, 3));
    const struct hfield h2[] = {HOST, {"content-length", "12"}};
    assert_null(audit("HTTP/1.1", NULL, 0, h2, 2));
    const struct hfield h3[] = {HOST, {"Transfer-Encoding", "Chunked"}};
    assert_null(audit("HTTP/1.1", NULL, 0, h3, 2));
    /* HTTP/1.0 needs no Host. */
    assert_null(audit("HTTP/1.0", NULL, 0, NULL, 0));
    /* Whitespace and NULs nobody reports hide nothing. */
    assert_null(audit("HTTP/1.1", " \t\r\n\0\0", 6, h1, 1));
}

static void test_frame_hidden_bytes(void **state)
{
    (void)state;
    const struct hfield h[] = {HOST};
    /* "GET /a\0junk HTTP/1.1": the bytes after a raw NUL. */
    const char *why = audit("HTTP/1.1", "junk", 4, h, 1);
    assert_non_null(why);
    assert_non_null(strstr(why, "no field accounts for"));
    /* What follows an empty header name: a second request in the block. */
    static const char smuggled[] = "GET /admin HTTP/1.1\r\n";
    why = audit("HTTP/1.1", smuggled, sizeof smuggled - 1, h, 1);
    assert_non_null(why);
    assert_non_null(strstr(why, "no field accounts for"));
    /* A single hidden byte is enough. */
    assert_non_null(audit("HTTP/1.1", "\x01", 1, h, 1));
}

static void test_frame_fields(void **state)
{
    (void)state;
    static const struct {
        struct hfield h[3];
        size_t n;
        const char *version, *why; /* a word of the verdict */
    } cases[] = {
        {{{"Accept", "*/*"}}, 1, "HTTP/1.1", "without a Host"},
        {{HOST, {"host", "y"}}, 2, "HTTP/1.1", "more than one Host"},
        {{HOST, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}},
         3,
         "HTTP/1.1",
         "both Content-Length and Transfer-Encoding"},
        {{HOST, {"Content-Length", "5"}, {"Content-Length", "5"}},
         3,
         "HTTP/1.1",
         "more than one Content-Length"},
        {{HOST, {"Content-Length", "-5"}}, 2, "HTTP/1.1", "no decimal number"},
        {{HOST, {"Content-Length", "5, 5"}}, 2, "HTTP/1.1", "no decimal number"},
        {{HOST, {"Content-Length", "99999999999999999999"}}, 2, "HTTP/1.1", "no decimal"},
        {{HOST, {"Transfer-Encoding", "gzip, chunked"}}, 2, "HTTP/1.1", "other than 'chunked'"},
        {{HOST, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
         3,
         "HTTP/1.1",
         "other than 'chunked'"},
        {{HOST, {"", "v"}}, 2, "HTTP/1.1", "an empty header name"},
        {{HOST, {"Bad Name", "v"}}, 2, "HTTP/1.1", "no token"},
        {{HOST, {"Host ", "v"}}, 2, "HTTP/1.1", "no token"},
        {{HOST, {"X(y)", "v"}}, 2, "HTTP/1.1", "no token"},
        {{HOST, {"X-A", "a\rb"}}, 2, "HTTP/1.1", "control character"},
        {{HOST, {"X-A", "a\nInjected: 1"}}, 2, "HTTP/1.1", "control character"},
        {{HOST, {"X-A", "\x7f"}}, 2, "HTTP/1.1", "control character"},
        {{HOST, {"X-A", "\x1b[2J"}}, 2, "HTTP/1.1", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = audit(cases[i].version, NULL, 0, cases[i].h, cases[i].n);
        if (!why || !strstr(why, cases[i].why))
            fail_msg("case %zu: want '%s', got '%s'", i, cases[i].why, why ? why : "(none)");
    }
}

/* Fields outside the block (copies microhttpd made) mark nothing and are
 * still checked; query arguments count for the audit only; and without a
 * block size, or with another layout, only the fields are checked. */
static void test_frame_outside_and_layouts(void **state)
{
    (void)state;
    http_frame_t f;
    struct block k = {.n = 0};
    const char *m = str(&k, "GET"), *t = str(&k, "/x?a=b"), *v = str(&k, "HTTP/1.1");
    const char *qk = str(&k, "a"), *qv = str(&k, "b");

    http_frame_begin(&f, m, t, v, k.n);
    http_frame_field(&f, false, qk, 1, qv, 1);
    http_frame_field(&f, true, "Host", 4, "x", 1); /* a copy: not in the block */
    assert_null(http_frame_end(&f));

    /* A query argument named Host is no Host header. */
    http_frame_begin(&f, m, t, v, k.n);
    http_frame_field(&f, false, "Host", 4, "x", 1);
    assert_non_null(http_frame_end(&f));

    /* Unknown block size: no audit of bytes, but the fields count. */
    struct block k2 = {.n = 0};
    const char *m2 = str(&k2, "GET"), *t2 = str(&k2, "/x"), *v2 = str(&k2, "HTTP/1.0");
    put(&k2, "junk", 4);
    http_frame_begin(&f, m2, t2, v2, 0);
    assert_null(f.seen);
    assert_null(http_frame_end(&f));
    http_frame_begin(&f, m2, t2, v2, k2.n);
    assert_non_null(http_frame_end(&f));

    /* The version before the target: not microhttpd's layout, no audit. */
    http_frame_begin(&f, m2, v2, t2, k2.n);
    assert_null(f.seen);
    http_frame_end(&f);

    /* No version at all (HTTP/0.9-ish): treated as "", needs no Host. */
    http_frame_begin(&f, "GET", "/", NULL, 0);
    assert_null(http_frame_end(&f));

    /* Only the first problem is kept. */
    http_frame_begin(&f, "GET", "/", "HTTP/1.1", 0);
    http_frame_field(&f, true, "", 0, "v", 1);
    http_frame_field(&f, true, "A B", 3, "v", 1);
    assert_string_equal(http_frame_end(&f), "an empty header name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pct_plain_and_escapes),
        cmocka_unit_test(test_pct_nul_and_slash),
        cmocka_unit_test(test_pct_bad_utf8),
        cmocka_unit_test(test_pct_long_input),
        cmocka_unit_test(test_pct_what),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_path_split),
        cmocka_unit_test(test_path_match),
        cmocka_unit_test(test_frame_sound),
        cmocka_unit_test(test_frame_hidden_bytes),
        cmocka_unit_test(test_frame_fields),
        cmocka_unit_test(test_frame_outside_and_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
