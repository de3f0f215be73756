/*
 * misbehave: a test plugin that does, on request, what a plugin host must
 * survive: crash (SIGABRT, SIGSEGV), call exit(), hang (blocked or
 * spinning, deaf to cancel), keep working after a cancel, flood the log,
 * return nonsense, and hand in bad results and checkpoints; and, to check
 * the plumbing, the ordinary things: succeed, fail with a reason, echo its
 * environment, set results and checkpoints. Built to
 * build/test-plugins/misbehave.so (tests/tests.cmake); never deployed.
 *
 * config {"do": WHAT, ...}, WHAT one of:
 *   ok           succeed; with "env": [names] print NAME=value (or
 *                "NAME unset") for each, with "echo_config": true print the
 *                config text as the plugin got it (secrets resolved)
 *   fail         fail with "reason" (default "misbehave: asked to fail";
 *                "" reports no reason, so the host's default shows)
 *   abort        abort(): SIGABRT kills the host
 *   segv         write to a page mapped PROT_NONE: a real SIGSEGV, by the
 *                default disposition even in a sanitizer build
 *   exit         exit("code", default 3) from the plugin
 *   hang         block, deaf to cancel, for "seconds" (default 3600)
 *   ignore_cancel  keep working (a line of output a second) for "seconds"
 *                (default 3600), deaf to cancel, then succeed
 *   spin         burn CPU, deaf to cancel, for "seconds" (default 3600)
 *   output       write "bytes" (default 1 MiB) to "stream" ("stdout",
 *                default, or "stderr"): numbered 64-byte lines, or with
 *                "binary": true every byte value 0..255 in turn; stops
 *                early when output says the attempt is stopping. Result
 *                {"bytes": n written}
 *   result       set the result to "value" (any JSON; default null)
 *   checkpoint   print "checkpoint_in: TEXT" (or "checkpoint_in: none"),
 *                set the result {"checkpoint_in": TEXT or null}, then save
 *                the checkpoint "data" (default: one more than the integer
 *                in checkpoint_in, or "1")
 *   bad_result   hand in what the host must refuse, by "kind": not_json
 *                (default), result_nul (JSON with a NUL in it),
 *                result_too_large ("bytes", default 64 MiB, of a JSON
 *                string), checkpoint_nul, checkpoint_not_utf8,
 *                checkpoint_too_large ("bytes", default 64 MiB); prints
 *                what the call returned ("bad_result: -1") and succeeds
 *   bad_return   return 42 from run, neither OK nor FAILED
 * For result, checkpoint and output: "wait_ms" (default 0) sleeps (cancel-
 * aware) after the deed, then "then" (default "ok") does one of ok, fail,
 * abort, segv, exit, hang: so a test can crash a host right after a
 * checkpoint was shipped.
 * "reject": true makes validate refuse the config (field "config.reject"),
 * so run is never called. "retry_do": WHAT is what attempts after the
 * first do instead of "do" (a run that hangs once, then succeeds).
 *
 * Files beside the .so steer init and fini (not the environment, which a
 * worker scrubs; copy misbehave.so into a test's own plugin directory to
 * use them): "misbehave.init" holding fail, abort or exit makes init fail
 * (with a sentence), abort or exit(4); "misbehave.fini" holding a PATH
 * makes fini create PATH, to show it ran.
 *
 * Every wait is bounded ("seconds"), so a host that fails to kill a deaf
 * attempt still ends within the hour.
 */
#include <sked/plugin.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

SKED_PLUGIN_MANIFEST(
    "misbehave", "1.0.0",
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"do\":{\"enum\":[\"ok\",\"fail\",\"abort\",\"segv\",\"exit\",\"hang\",\"ignore_cancel\","
    "\"spin\",\"output\",\"result\",\"checkpoint\",\"bad_result\",\"bad_return\"]},"
    "\"then\":{\"enum\":[\"ok\",\"fail\",\"abort\",\"segv\",\"exit\",\"hang\"]},"
    "\"retry_do\":{\"enum\":[\"ok\",\"fail\",\"abort\",\"segv\",\"exit\",\"hang\"]},"
    "\"seconds\":{\"type\":\"number\",\"minimum\":0,\"maximum\":3600},"
    "\"wait_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3600000},"
    "\"code\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":255},"
    "\"reason\":{\"type\":\"string\",\"maxLength\":1000},"
    "\"bytes\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1073741824},"
    "\"stream\":{\"enum\":[\"stdout\",\"stderr\"]},"
    "\"binary\":{\"type\":\"boolean\"},"
    "\"value\":true,"
    "\"data\":{\"type\":\"string\"},"
    "\"kind\":{\"enum\":[\"not_json\",\"result_nul\",\"result_too_large\",\"checkpoint_nul\","
    "\"checkpoint_not_utf8\",\"checkpoint_too_large\"]},"
    "\"env\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":64},"
    "\"echo_config\":{\"type\":\"boolean\"},"
    "\"reject\":{\"type\":\"boolean\"}},"
    "\"required\":[\"do\"],"
    "\"additionalProperties\":false}");

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds whatever happens: nanosleep, not host->sleep. */
static void deaf_sleep(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static const char *str(json_t *cfg, const char *key, const char *dflt)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static int64_t num(json_t *cfg, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_number(v) ? (int64_t)json_number_value(v) : dflt;
}

static int64_t seconds_ms(json_t *cfg)
{
    json_t *v = json_object_get(cfg, "seconds");
    return json_is_number(v) ? (int64_t)(json_number_value(v) * 1000.0) : 3600 * 1000;
}

/* A real SIGSEGV that kills the process. The default disposition first:
 * a sanitizer build's host has AddressSanitizer's handler installed, which
 * would turn the fault into a report and exit(1), and the host must be
 * seen to die of the signal in every build. */
static void segv(void)
{
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigaction(SIGSEGV, &sa, NULL);
    volatile int *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) abort();
    *page = 1;
    abort(); /* not reached */
}

/* The ends every behaviour can come to (the whole of "do" for the
 * simple ones, "then" for the rest). */
static int finish(const char *what, json_t *cfg, sked_attempt *att, const sked_host *host)
{
    if (!strcmp(what, "fail")) {
        const char *reason = str(cfg, "reason", "misbehave: asked to fail");
        if (*reason) host->fail(att, "%s", reason);
        return SKED_PLUGIN_FAILED;
    }
    if (!strcmp(what, "abort")) abort();
    if (!strcmp(what, "segv")) segv();
    if (!strcmp(what, "exit")) exit((int)num(cfg, "code", 3));
    if (!strcmp(what, "hang")) {
        deaf_sleep(seconds_ms(cfg));
        return SKED_PLUGIN_OK;
    }
    return SKED_PLUGIN_OK;
}

static int do_ok(json_t *cfg, const char *text, size_t len, sked_attempt *att,
                 const sked_host *host)
{
    host->outputf(att, SKED_STDOUT, "misbehave: ok\n");
    json_t *env = json_object_get(cfg, "env");
    size_t i;
    json_t *name;
    json_array_foreach(env, i, name)
    {
        if (!json_is_string(name)) continue;
        const char *v = host->getenv(att, json_string_value(name));
        if (v)
            host->outputf(att, SKED_STDOUT, "%s=%s\n", json_string_value(name), v);
        else
            host->outputf(att, SKED_STDOUT, "%s unset\n", json_string_value(name));
    }
    if (json_is_true(json_object_get(cfg, "echo_config"))) {
        host->output(att, SKED_STDOUT, text, len);
        host->output(att, SKED_STDOUT, "\n", 1);
    }
    return SKED_PLUGIN_OK;
}

static int do_output(json_t *cfg, sked_attempt *att, const sked_host *host)
{
    int stream = !strcmp(str(cfg, "stream", "stdout"), "stderr") ? SKED_STDERR : SKED_STDOUT;
    int64_t want = num(cfg, "bytes", 1 << 20), done = 0;
    int binary = json_is_true(json_object_get(cfg, "binary"));
    char block[4096];
    long line = 0;
    while (done < want) {
        size_t n = 0;
        if (binary) {
            for (; n < sizeof block; n++)
                block[n] = (char)(unsigned char)((done + (int64_t)n) & 0xff);
        } else {
            /* 64-byte numbered lines, so a test can see none is lost. */
            char one[80];
            while (n + 64 <= sizeof block) {
                snprintf(one, sizeof one, "misbehave output line %08ld %032d\n", line++ % 100000000,
                         0);
                memcpy(block + n, one, 64);
                n += 64;
            }
        }
        if ((int64_t)n > want - done) n = (size_t)(want - done);
        if (host->output(att, stream, block, n) != 0) break;
        done += (int64_t)n;
    }
    char res[64];
    int len = snprintf(res, sizeof res, "{\"bytes\":%lld}", (long long)done);
    host->result(att, res, (size_t)len);
    return SKED_PLUGIN_OK;
}

static int do_checkpoint(json_t *cfg, sked_attempt *att, const sked_host *host)
{
    size_t len = 0;
    const char *in = host->checkpoint_in(att, &len);
    json_t *res = json_object();
    json_t *v = in ? json_stringn(in, len) : NULL; /* NULL too when in is not UTF-8 */
    json_object_set_new(res, "checkpoint_in", v ? v : json_null());
    char *text = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    if (text) host->result(att, text, strlen(text));
    free(text);
    if (in)
        host->outputf(att, SKED_STDOUT, "checkpoint_in: %.*s\n", (int)len, in);
    else
        host->outputf(att, SKED_STDOUT, "checkpoint_in: none\n");
    char next[32];
    const char *data = str(cfg, "data", NULL);
    if (!data) {
        snprintf(next, sizeof next, "%lld", in ? atoll(in) + 1 : 1LL);
        data = next;
    }
    int rc = host->checkpoint(att, data, strlen(data));
    host->outputf(att, SKED_STDOUT, "checkpoint: %s (%d)\n", data, rc);
    return SKED_PLUGIN_OK;
}

static int do_bad(json_t *cfg, sked_attempt *att, const sked_host *host)
{
    const char *kind = str(cfg, "kind", "not_json");
    size_t big = (size_t)num(cfg, "bytes", 64 << 20);
    int rc;
    if (!strcmp(kind, "result_nul")) {
        rc = host->result(att, "\"a\0b\"", 5);
    } else if (!strcmp(kind, "result_too_large") || !strcmp(kind, "checkpoint_too_large")) {
        char *s = malloc(big + 2);
        if (!s) abort();
        memset(s, 'x', big + 2);
        s[0] = '"';
        s[big + 1] = '"';
        rc = kind[0] == 'r' ? host->result(att, s, big + 2) : host->checkpoint(att, s, big + 2);
        free(s);
    } else if (!strcmp(kind, "checkpoint_nul")) {
        rc = host->checkpoint(att, "a\0b", 3);
    } else if (!strcmp(kind, "checkpoint_not_utf8")) {
        rc = host->checkpoint(att, "a\xff\xfe", 3);
    } else {
        rc = host->result(att, "{not json", 9);
    }
    host->outputf(att, SKED_STDOUT, "bad_result: %d\n", rc);
    return SKED_PLUGIN_OK;
}

/* The path of FILE beside this .so in out (empty when not found). */
static void beside_me(const char *file, char *out, size_t outlen)
{
    Dl_info info;
    out[0] = '\0';
    if (!dladdr((void *)beside_me, &info) || !info.dli_fname) return;
    const char *slash = strrchr(info.dli_fname, '/');
    int dirlen = slash ? (int)(slash - info.dli_fname) : 1;
    snprintf(out, outlen, "%.*s/%s", dirlen, slash ? info.dli_fname : ".", file);
}

/* The first line of FILE beside this .so, in out (empty when none). */
static void read_beside_me(const char *file, char *out, size_t outlen)
{
    char path[4096];
    beside_me(file, path, sizeof path);
    out[0] = '\0';
    FILE *f = path[0] ? fopen(path, "re") : NULL;
    if (!f) return;
    if (fgets(out, (int)outlen, f)) out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static int init(const sked_host *host, void **state, char *err, size_t errlen)
{
    char how[64];
    read_beside_me("misbehave.init", how, sizeof how);
    if (!how[0]) return SKED_PLUGIN_OK;
    if (!strcmp(how, "abort")) abort();
    if (!strcmp(how, "exit")) exit(4);
    snprintf(err, errlen, "misbehave: asked to fail init (misbehave.init says \"%s\")", how);
    return SKED_PLUGIN_FAILED;
}

static void fini(void *state)
{
    char path[4096];
    read_beside_me("misbehave.fini", path, sizeof path);
    if (path[0]) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
    }
}

static int validate(void *state, const char *config, size_t len, char *field, size_t fieldlen,
                    char *detail, size_t detaillen)
{
    json_t *cfg = json_loadb(config, len, 0, NULL);
    int reject = json_is_true(json_object_get(cfg, "reject"));
    json_decref(cfg);
    if (!reject) return SKED_PLUGIN_OK;
    snprintf(field, fieldlen, "config.reject");
    snprintf(detail, detaillen, "misbehave: asked to refuse this config");
    return SKED_PLUGIN_FAILED;
}

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    size_t len = 0;
    const char *text = host->config(att, &len);
    json_t *cfg = json_loadb(text, len, 0, NULL);
    const char *what = str(cfg, "do", "");
    int rc = SKED_PLUGIN_OK, then = 0;
    const char *attempt = host->getenv(att, "SKED_ATTEMPT");
    if (attempt && atoi(attempt) > 1 && *str(cfg, "retry_do", "")) what = str(cfg, "retry_do", "");

    if (!strcmp(what, "ok")) {
        rc = do_ok(cfg, text, len, att, host);
    } else if (!strcmp(what, "ignore_cancel")) {
        int64_t end = now_ms() + seconds_ms(cfg);
        for (long i = 0; now_ms() < end; i++) {
            host->outputf(att, SKED_STDOUT, "misbehave: still working (%ld)\n", i);
            deaf_sleep(end - now_ms() < 1000 ? end - now_ms() : 1000);
        }
    } else if (!strcmp(what, "spin")) {
        int64_t end = now_ms() + seconds_ms(cfg);
        volatile unsigned long n = 0;
        while (now_ms() < end)
            n++;
    } else if (!strcmp(what, "output")) {
        rc = do_output(cfg, att, host);
        then = 1;
    } else if (!strcmp(what, "result")) {
        json_t *v = json_object_get(cfg, "value");
        char *json = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        int r = json ? host->result(att, json, strlen(json)) : -1;
        host->outputf(att, SKED_STDOUT, "result: %d\n", r);
        free(json);
        then = 1;
    } else if (!strcmp(what, "checkpoint")) {
        rc = do_checkpoint(cfg, att, host);
        then = 1;
    } else if (!strcmp(what, "bad_result")) {
        rc = do_bad(cfg, att, host);
    } else if (!strcmp(what, "bad_return")) {
        rc = 42;
    } else if (!strcmp(what, "fail") || !strcmp(what, "abort") || !strcmp(what, "segv") ||
               !strcmp(what, "exit") || !strcmp(what, "hang")) {
        rc = finish(what, cfg, att, host);
    } else {
        host->fail(att, "config.do: unknown behaviour \"%s\"", what);
        rc = SKED_PLUGIN_FAILED;
    }

    if (then && rc == SKED_PLUGIN_OK) {
        int64_t wait = num(cfg, "wait_ms", 0);
        if (wait > 0 && host->sleep(att, wait)) {
            host->fail(att, "misbehave: stopped while waiting");
            rc = SKED_PLUGIN_FAILED;
        } else {
            rc = finish(str(cfg, "then", "ok"), cfg, att, host);
        }
    }
    json_decref(cfg);
    return rc;
}

SKED_PLUGIN_DESCRIPTOR("misbehave", "1.0.0", init, fini, validate, run);
