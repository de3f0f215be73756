/*
 * sleep: waits a number of seconds, then succeeds (or fails, if asked).
 * The example of a long, resumable attempt: it sleeps with host->sleep, so
 * a cancel or the job's timeout stops it at once; reports progress and
 * saves a checkpoint every second; and resumes from the checkpoint an
 * earlier attempt of the run saved, so a retry (after its worker died, or
 * its plugin host crashed) continues where the last one was instead of
 * starting over.
 *
 *     {"name": "nap", "type": "sleep", "config": {"seconds": 30},
 *      "retry": {"max_attempts": 3}}
 *
 * config: "seconds" (required, 0 to 86400, fractions allowed) and "fail"
 * (default false: when true the attempt fails once it has slept).
 * Checkpoint: {"slept_ms": n}, the milliseconds slept so far by every
 * attempt of the run. Result: {"slept_ms": n, "resumed_from_ms": m}, n the
 * total slept by the run and m where this attempt started.
 */
#include <sked/plugin.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_SECONDS 86400

SKED_PLUGIN_MANIFEST("sleep", "1.0.0",
                     "{\"type\":\"object\","
                     "\"properties\":{"
                     "\"seconds\":{\"type\":\"number\",\"minimum\":0,\"maximum\":86400,"
                     "\"description\":\"how long to sleep\"},"
                     "\"fail\":{\"type\":\"boolean\",\"default\":false,"
                     "\"description\":\"fail once slept\"}},"
                     "\"required\":[\"seconds\"],"
                     "\"additionalProperties\":false}");

typedef struct cfg {
    int64_t total_ms; /* the sleep the job asks for */
    int fail;         /* fail once slept */
} cfg;

/* Reads config into *c. Returns 0, or -1 with the bad field and a sentence.
 * The host has checked the config against the manifest's schema already;
 * this is the plugin's own guard, and what `validate` answers with. */
static int parse(const char *text, size_t len, cfg *c, char *field, size_t fieldlen, char *detail,
                 size_t detaillen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    int rc = -1;
    c->total_ms = 0;
    c->fail = 0;
    if (!json_is_object(root)) {
        snprintf(field, fieldlen, "config");
        snprintf(detail, detaillen, "must be a JSON object");
        goto out;
    }
    json_t *s = json_object_get(root, "seconds");
    if (!json_is_number(s) || !(json_number_value(s) >= 0 && json_number_value(s) <= MAX_SECONDS)) {
        snprintf(field, fieldlen, "config.seconds");
        snprintf(detail, detaillen, "must be a number from 0 to %d", MAX_SECONDS);
        goto out;
    }
    json_t *f = json_object_get(root, "fail");
    if (f && !json_is_boolean(f)) {
        snprintf(field, fieldlen, "config.fail");
        snprintf(detail, detaillen, "must be true or false");
        goto out;
    }
    c->total_ms = llround(json_number_value(s) * 1000.0);
    c->fail = json_is_true(f);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int validate(void *state, const char *config, size_t len, char *field, size_t fieldlen,
                    char *detail, size_t detaillen)
{
    cfg c;
    return parse(config, len, &c, field, fieldlen, detail, detaillen) ? SKED_PLUGIN_FAILED
                                                                      : SKED_PLUGIN_OK;
}

/* Where an earlier attempt of the run got to, from its checkpoint: 0 when
 * there is none or it cannot be read (then the attempt starts over, and
 * says why in the log). */
static int64_t resume_point(sked_attempt *att, const sked_host *host)
{
    size_t len = 0;
    const char *text = host->checkpoint_in(att, &len);
    if (!text) return 0;
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *v = json_object_get(root, "slept_ms");
    int64_t ms = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0) ms = json_integer_value(v);
    json_decref(root);
    if (ms < 0) {
        host->outputf(att, SKED_STDERR,
                      "sleep: ignoring a checkpoint that is not {\"slept_ms\": n}\n");
        return 0;
    }
    return ms;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    size_t len = 0;
    const char *config = host->config(att, &len);
    cfg c;
    char field[64], detail[128];
    if (parse(config, len, &c, field, sizeof field, detail, sizeof detail)) {
        host->fail(att, "%s: %s", field, detail);
        return SKED_PLUGIN_FAILED;
    }

    int64_t start = resume_point(att, host);
    if (start > c.total_ms) start = c.total_ms;
    if (start > 0)
        host->outputf(att, SKED_STDOUT, "sleep: resuming at %lld of %lld ms\n", (long long)start,
                      (long long)c.total_ms);

    /* A second at a time, so the checkpoint trails the truth by at most
     * that much: a retry sleeps again at most the second that was lost. */
    int64_t done = start;
    while (done < c.total_ms) {
        int64_t chunk = c.total_ms - done < 1000 ? c.total_ms - done : 1000;
        int64_t t0 = now_ms();
        if (host->sleep(att, chunk)) {
            int64_t part = now_ms() - t0;
            done += part < chunk ? part : chunk;
            host->fail(att, "stopped after %lld of %lld ms", (long long)done,
                       (long long)c.total_ms);
            return SKED_PLUGIN_FAILED;
        }
        done += chunk;
        char ckpt[64];
        int n = snprintf(ckpt, sizeof ckpt, "{\"slept_ms\":%lld}", (long long)done);
        host->checkpoint(att, ckpt, (size_t)n);
        char msg[96];
        snprintf(msg, sizeof msg, "slept %lld of %lld ms", (long long)done, (long long)c.total_ms);
        host->progress(att, (double)done / (double)c.total_ms, msg);
    }

    char res[96];
    int n = snprintf(res, sizeof res, "{\"slept_ms\":%lld,\"resumed_from_ms\":%lld}",
                     (long long)done, (long long)start);
    host->result(att, res, (size_t)n);
    if (c.fail) {
        host->fail(att, "asked to fail (config.fail) after sleeping %lld ms", (long long)done);
        return SKED_PLUGIN_FAILED;
    }
    return SKED_PLUGIN_OK;
}

SKED_PLUGIN_DESCRIPTOR("sleep", "1.0.0", NULL, NULL, validate, run);
