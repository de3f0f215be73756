/*
 * template: a complete plugin to copy. It says a message a few times, a
 * step at a time, and along the way uses every entry point of the ABI and
 * every service of the host, each with a comment on the rules that go
 * with it. include/sked/plugin.h is the contract; docs/plugins.md walks
 * through it; plugins/template/README.md builds this file outside sked's
 * tree.
 *
 * To start your own: copy this directory, rename the type (the manifest's
 * and the descriptor's, and the file), write your config's JSON Schema,
 * and replace the body of run().
 *
 *     {"name": "greet", "type": "template",
 *      "config": {"message": "hello", "steps": 5, "step_ms": 1000}}
 *
 * config: "message" (default "hello"), "steps" (1 to 1000, default 3),
 * "step_ms" (0 to 60000, default 100: the pause after each step), "wait"
 * ("sleep", the default, or "poll": two ways to wait, below). Checkpoint:
 * the number of steps done. Result: {"message", "steps", "resumed_from",
 * "run_id"}.
 */
#include <sked/plugin.h>

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The manifest: plain data in the ELF section ".sked_plugin", read by sked
 * WITHOUT loading this file (so a worker refuses a plugin of a newer ABI
 * before any of its code runs, and a server validates jobs without running
 * it). Type name: [a-z][a-z0-9_-]{0,62}. Version: yours, free-form, up to
 * 31 bytes (semver advised). The schema (JSON Schema, the subset
 * docs/plugins.md lists) describes the job's "config"; the server refuses a
 * job whose config fails it, naming the field ("config.steps: must be at
 * most 1000"), before it is ever stored. */
#define PLUGIN_TYPE    "template"
#define PLUGIN_VERSION "1.0.0"

SKED_PLUGIN_MANIFEST(PLUGIN_TYPE, PLUGIN_VERSION,
                     "{\"type\":\"object\","
                     "\"properties\":{"
                     "\"message\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
                     "\"steps\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000},"
                     "\"step_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":60000},"
                     "\"wait\":{\"enum\":[\"sleep\",\"poll\"]}},"
                     "\"additionalProperties\":false}");

#define STATE_MAGIC 0x74706c31u /* "tpl1": a check that `state` is ours */

/* What init sets up and every run shares: read-only after init, or
 * atomic, because runs execute on many threads at once. */
typedef struct tpl_state {
    uint32_t magic;
    atomic_long runs; /* attempts run by this host so far */
} tpl_state;

/* A job's config, parsed. */
typedef struct cfg {
    char message[201];
    int steps;
    int step_ms;
    int poll; /* wait with poll() on cancel_fd instead of host->sleep */
} cfg;

/* Parses config (compact JSON text from the host, secrets resolved).
 * Returns 0, or -1 with the JSON path of the bad field and a sentence. */
static int parse(const char *text, size_t len, cfg *c, char *field, size_t fieldlen, char *detail,
                 size_t detaillen)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *v;
    int rc = -1;
    snprintf(c->message, sizeof c->message, "hello");
    c->steps = 3;
    c->step_ms = 100;
    c->poll = 0;
    snprintf(field, fieldlen, "config");
    if (!json_is_object(root)) {
        snprintf(detail, detaillen, "must be a JSON object");
        goto out;
    }
    if ((v = json_object_get(root, "message"))) {
        if (!json_is_string(v) || json_string_length(v) >= sizeof c->message) {
            snprintf(field, fieldlen, "config.message");
            snprintf(detail, detaillen, "must be a string of at most 200 bytes");
            goto out;
        }
        snprintf(c->message, sizeof c->message, "%s", json_string_value(v));
    }
    if ((v = json_object_get(root, "steps"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000) {
            snprintf(field, fieldlen, "config.steps");
            snprintf(detail, detaillen, "must be an integer from 1 to 1000");
            goto out;
        }
        c->steps = (int)json_integer_value(v);
    }
    if ((v = json_object_get(root, "step_ms"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 60000) {
            snprintf(field, fieldlen, "config.step_ms");
            snprintf(detail, detaillen, "must be an integer from 0 to 60000");
            goto out;
        }
        c->step_ms = (int)json_integer_value(v);
    }
    if ((v = json_object_get(root, "wait")))
        c->poll = json_is_string(v) && !strcmp(json_string_value(v), "poll");
    /* A rule across fields, which a JSON Schema cannot say: */
    if ((long)c->steps * c->step_ms > 3600L * 1000) {
        snprintf(field, fieldlen, "config.steps");
        snprintf(detail, detaillen, "steps x step_ms must be at most one hour");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* init: once per plugin host, on its main thread, before any run. Set up
 * what every run shares (a connection pool, a library's global init) and
 * hand it back in *state. On failure, write a sentence in err and return
 * SKED_PLUGIN_FAILED: the host then reports the plugin broken and runs
 * nothing. Optional (NULL in the descriptor). */
static int init(const sked_host *host, void **state, char *err, size_t errlen)
{
    /* host->abi is the host's ABI, never older than the plugin's (sked
     * refuses to load a plugin newer than itself). Every member of ABI 1
     * exists in every host; a plugin that uses a member added by a later
     * ABI checks first and does without it on an older host:
     *     if (SKED_HOST_HAS(host, some_later_member)) ...  */
    if (host->abi < 1) {
        snprintf(err, errlen, "host ABI %u is too old", (unsigned)host->abi);
        return SKED_PLUGIN_FAILED;
    }
    tpl_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return SKED_PLUGIN_FAILED;
    }
    st->magic = STATE_MAGIC;
    atomic_init(&st->runs, 0);
    *state = st;
    return SKED_PLUGIN_OK;
}

/* fini: once, when the host stops cleanly, after every run returned. A
 * host that crashed or was killed never calls it: keep nothing here that
 * must happen (a run's work is done when run returns). Optional. */
static void fini(void *state)
{
    tpl_state *st = state;
    if (st) st->magic = 0;
    free(st);
}

/* validate: what the schema cannot say, checked before run (on any host
 * thread, so thread-safe). SKED_PLUGIN_FAILED with the field's JSON path
 * ("config.steps") and a sentence fails the attempt with
 * "config.steps: ..." without calling run. Optional. */
static int validate(void *state, const char *config, size_t len, char *field, size_t fieldlen,
                    char *detail, size_t detaillen)
{
    (void)state; /* what init set up; this check needs none of it */
    cfg c;
    return parse(config, len, &c, field, fieldlen, detail, detaillen) ? SKED_PLUGIN_FAILED
                                                                      : SKED_PLUGIN_OK;
}

/* The pause after a step. Returns 1 when the attempt should stop.
 * host->sleep is the simple way. A plugin that waits on sockets or pipes
 * of its own puts host->cancel_fd in its poll() set instead: it becomes
 * readable when the attempt should stop (never read or close it). */
static int pause_step(sked_attempt *att, const sked_host *host, const cfg *c)
{
    if (!c->poll) return host->sleep(att, c->step_ms);
    struct pollfd pfd = {.fd = host->cancel_fd(att), .events = POLLIN};
    int n;
    do
        n = poll(&pfd, 1, c->step_ms);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

/* run: one attempt, on a host thread, while other attempts run on others.
 * Thread-safe, then: no unguarded globals, no exit(), no signal handlers,
 * chdir or setenv (the process is shared). Everything the host hands out
 * (config, env, checkpoint_in, ...) is borrowed until run returns; what
 * the plugin hands in is copied at once. Return promptly once the attempt
 * should stop: a run still going after the worker's --kill-grace is killed
 * with its whole host, and every attempt in it fails "plugin hung". */
static int run(void *state, sked_attempt *att, const sked_host *host)
{
    tpl_state *st = state;
    if (!st || st->magic != STATE_MAGIC) {
        host->fail(att, "template: bad state (init did not run?)");
        return SKED_PLUGIN_FAILED;
    }
    long nth = atomic_fetch_add(&st->runs, 1) + 1;

    /* The config, as compact JSON, with every {"secret": "..."} resolved:
     * never write secrets to the log or the result. */
    size_t len = 0;
    const char *config = host->config(att, &len);
    cfg c;
    char field[64], detail[128];
    if (parse(config, len, &c, field, sizeof field, detail, sizeof detail)) {
        host->fail(att, "%s: %s", field, detail); /* the attempt's reason */
        return SKED_PLUGIN_FAILED;                /* retried by the job's policy */
    }

    /* The attempt's environment: the job's env and SKED_RUN_ID,
     * SKED_ATTEMPT, ... (the plugin host's own environment is not it). */
    const char *run_id = host->getenv(att, "SKED_RUN_ID");
    const char *attempt = host->getenv(att, "SKED_ATTEMPT");
    host->outputf(att, SKED_STDOUT, "template: run %s attempt %s (this host's run %ld)\n",
                  run_id ? run_id : "?", attempt ? attempt : "?", nth);

    /* The job's timeout: -1 when it has none. Nothing to do about it but
     * plan; the host stops the attempt when it passes. */
    int64_t left = host->deadline_ms(att);
    if (left >= 0 && left < (int64_t)c.steps * c.step_ms)
        host->outputf(att, SKED_STDERR, "template: %lld ms left, %lld needed: expect a timeout\n",
                      (long long)left, (long long)c.steps * c.step_ms);

    /* What the runs this one depends on produced ({"name": result}). */
    size_t ulen = 0;
    if (host->upstream_results(att, &ulen))
        host->outputf(att, SKED_STDOUT, "template: upstream results: %zu bytes of JSON\n", ulen);

    /* A retry starts from the last checkpoint an earlier attempt saved. */
    int from = 0;
    const char *ck = host->checkpoint_in(att, NULL);
    if (ck) {
        from = atoi(ck);
        if (from < 0 || from > c.steps) from = 0;
        host->outputf(att, SKED_STDOUT, "template: resuming after step %d\n", from);
    }

    for (int i = from; i < c.steps; i++) {
        if (host->cancelled(att)) { /* canceled, timed out, lease lost, worker stopping */
            host->fail(att, "stopped at step %d of %d", i, c.steps);
            return SKED_PLUGIN_FAILED;
        }
        /* Output goes to the run's log, as a shell job's stdout/stderr. */
        host->outputf(att, SKED_STDOUT, "[%d/%d] %s\n", i + 1, c.steps, c.message);
        /* Progress shows in the log as a "progress:" line. */
        host->progress(att, (double)(i + 1) / c.steps, c.message);
        /* The checkpoint: any text; the latest wins; a retry gets it. */
        char text[16];
        int n = snprintf(text, sizeof text, "%d", i + 1);
        host->checkpoint(att, text, (size_t)n);
        if (i + 1 < c.steps && pause_step(att, host, &c)) {
            host->fail(att, "stopped after step %d of %d", i + 1, c.steps);
            return SKED_PLUGIN_FAILED;
        }
    }

    /* The result: one JSON value, kept with the attempt and handed to the
     * runs after this one. Built with jansson so the message is escaped. */
    json_t *res = json_pack("{s:s, s:i, s:i, s:s?}", "message", c.message, "steps", c.steps,
                            "resumed_from", from, "run_id", run_id);
    char *json = res ? json_dumps(res, JSON_COMPACT) : NULL;
    json_decref(res);
    if (!json || host->result(att, json, strlen(json)) != 0) {
        free(json);
        host->fail(att, "template: could not set the result");
        return SKED_PLUGIN_FAILED;
    }
    free(json);
    return SKED_PLUGIN_OK;
}

/* The descriptor: the symbol sked_plugin_v1, with the same type and
 * version as the manifest (sked reads one and runs the other: the two
 * #defines above keep them in step). */
SKED_PLUGIN_DESCRIPTOR(PLUGIN_TYPE, PLUGIN_VERSION, init, fini, validate, run);
