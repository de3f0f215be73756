/*
 * The worker role around the supervisor: the worker protocol of
 * docs/api.md over HTTP. Threads, each with its own HTTP client:
 *
 *   claim      long-polls POST /v1/workers/{id}/claim while slots are free
 *              and hands each claimed run to the supervisor;
 *   heartbeat  every heartbeat_interval renews the leases of every held run,
 *              ships each one's checkpoint when it changed (results.c), and
 *              learns which to stop; re-registers after a 404;
 *   report[k]  ship output chunks, in order per attempt (an attempt always
 *              goes to the same report thread), read its result files and
 *              hand its end to the completer; they also confirm and start
 *              the runs a report claimed (ITEM_START);
 *   completer  reports the ends of every report thread together, each
 *              with the attempt's checked result and last checkpoint, in
 *              one request that also claims runs for the slots they freed:
 *              what ends while a report is in flight goes in the next one.
 *              (Each report thread used to send its own, four at a time:
 *              0.9 reports and 0.9 confirmations per /bin/true run, where
 *              0.3 and 0.3 do.) A completion
 *              is retried until some server answers, because a result
 *              must never be lost while the server is briefly away;
 *   supervisor (supervise.c) forks and watches the processes.
 *
 * An attempt is "held" from its claim until its completion was answered
 * (or there is nothing to report); held attempts are what heartbeats renew.
 * A slot is freed as soon as the process is gone, so a slow report never
 * idles a slot. Lock order: reg_mu before mu; shard locks are leaves.
 *
 * Jobs are isolated (DESIGN §8): they run as the configured user with
 * resource limits, in a fresh directory per attempt, with an environment
 * built from a fixed base plus their own env and SKED_* (never the
 * worker's, which holds its token). Env values, secret or not, are never
 * logged here.
 */
#include "worker/worker.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/duration.h"
#include "core/results.h"
#include "core/secret.h"
#include "worker/worker_int.h"
#include "worker/http_job.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLAIM_WAIT "30s"
/* Runs due within this are claimed, and confirmed, before their time, and
 * started at it (the supervisor holds them): the claim's and the
 * confirmation's round trips are then off the path from fire to start. */
#define CLAIM_AHEAD             "50ms"
#define CLAIM_MAX               100   /* runs per claim the API accepts */
#define CLAIM_TIMEOUT_MS        45000 /* above the long-poll wait, so the server ends it */
#define REPORT_TIMEOUT_MS       30000
#define REGISTER_PATIENCE_MS    30000 /* worker_start keeps trying to reach a server this long */
#define LOG_SHIP_TRIES          7     /* backoff 0.2 s doubling to 5 s: rides out ~15 s of outage */
#define SHARD_QUEUE_MAX         (64 << 20) /* bytes of output queued per report thread before dropping */
#define MAX_SHARDS              4
#define BACKOFF_MAX_MS          5000
#define HB_CHECKPOINT_BUDGET    (512 * 1024) /* encoded checkpoint bytes one heartbeat carries */
#define COMPLETE_HANDOFF_BUDGET (960 * 1024) /* encoded result + checkpoint in a completion */
#define REPORT_BATCH_MAX        256          /* completions per request, at most */

/* A report thread's work: an attempt's output, its end, or (from the
 * completer) runs a report claimed, to confirm and start. */
enum item_kind { ITEM_CHUNK, ITEM_DONE, ITEM_START };

struct item {
    enum item_kind kind;
    attempt_t *a;
    int slot;        /* ITEM_DONE, ITEM_START: slots free again (credits, see on_done) */
    json_t *claimed; /* ITEM_START: the report's "claimed" */
    int stream;
    int64_t seq;
    char *data; /* owned */
    size_t len;
    struct item *next;
};

struct shard {
    worker_t *w;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;
    size_t queued; /* bytes of chunk data in the queue */
    int quit;
    httpc_t *http;
};

struct worker {
    /* Configuration, immutable after start. */
    char *servers, *token, *name, *host;
    int slots;
    int64_t kill_grace_ms;
    json_t *queues, *labels;
    spawn_user_t user;     /* who jobs run as */
    spawn_limits_t limits; /* per-attempt resource limits */
    char *work_dir;        /* parent of per-attempt directories */
    char *io_base;         /* parent of plugin attempts' result directories: in memory
                              (io_base_init); NULL = under work_dir */
    size_t result_max;     /* bytes of a result file taken (--result-max) */
    size_t checkpoint_max; /* bytes of a checkpoint file taken (--checkpoint-max) */
    char **env_base;       /* every job's base environment */
    plugin_set_t plugins;  /* job types run in plugin hosts */
    sup_isolation_t iso;   /* points into the five above */

    pthread_mutex_t reg_mu; /* serialises (re-)registration */
    pthread_mutex_t mu;     /* everything below */
    pthread_cond_t cv;      /* any change: slots, flags, held list (CLOCK_MONOTONIC) */
    char id[SKED_ID_LEN];
    int gen; /* registration generation */
    int64_t lease_ms, hb_ms;
    attempt_t *held;
    int free_slots;
    int server_draining;
    int starting; /* ITEM_STARTs queued or running: runs claimed, not yet held */
    int stopping; /* heartbeat thread: quit */

    atomic_int draining;    /* claim no more */
    atomic_int claim_abort; /* abort the claim in flight (httpc_set_abort) */
    atomic_int aborting;    /* hard stop: kill attempts, send nothing more */
    atomic_int no_batch;    /* the server has no batch completion route: one by one */

    httpc_t *claim_http, *hb_http;
    pthread_t claim_thread, hb_thread;
    int have_claim, have_hb;
    sup_t *sup;
    spawn_watcher_t watcher;
    struct shard shards[MAX_SHARDS + 1]; /* [nshards]: the completer (shard_main) */
    int nshards;
    int next_shard;
};

/* ---- small helpers ------------------------------------------------------ */

/* Sleeps up to ms on w->cv; returns early when *flag becomes non-zero.
 * Called with w->mu NOT held. */
static void nap(worker_t *w, int64_t ms, const atomic_int *aflag, const int *flag)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    while (!(aflag && atomic_load(aflag)) && !(flag && *flag) && !atomic_load(&w->aborting))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0) break;
    pthread_mutex_unlock(&w->mu);
}

static void broadcast(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int64_t backoff_next(int64_t cur)
{
    return cur <= 0 ? 200 : cur * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cur * 2;
}

static int post_json(httpc_t *h, const char *path, json_t *body, httpc_resp_t *resp)
{
    char *s = json_dumps(body, JSON_COMPACT);
    int rc = httpc_do(h, "POST", path, "application/json", s, strlen(s), NULL, resp);
    free(s);
    return rc;
}

static json_t *parse_body(const httpc_resp_t *r)
{
    return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

static int64_t json_duration_ms(json_t *v, int64_t dflt)
{
    int64_t ms;
    if (json_is_string(v) && duration_parse(json_string_value(v), &ms) == 0 && ms > 0) return ms;
    if (json_is_integer(v) && json_integer_value(v) > 0) return json_integer_value(v) * 1000;
    return dflt;
}

/* ---- registration ------------------------------------------------------- */

static int status_error(long status)
{
    return status == 401 ? SKED_EUNAUTH : status == 403 ? SKED_EFORBID : SKED_EIO;
}

/* POSTs /v1/workers and installs the new id, lease and heartbeat interval.
 * Only if the registration generation is still seen_gen (else another
 * thread already did it). Returns 0 or a negative error; *status OUT. */
static int do_register(worker_t *w, httpc_t *h, int seen_gen, long *status)
{
    int rc = 0;
    json_t *body = NULL, *ans = NULL;
    httpc_resp_t r = {0};
    *status = 0;
    pthread_mutex_lock(&w->reg_mu);
    pthread_mutex_lock(&w->mu);
    int gen = w->gen;
    pthread_mutex_unlock(&w->mu);
    if (gen != seen_gen) goto out;
    body = json_pack("{s:s, s:s, s:i, s:O, s:O}", "name", w->name, "host", w->host, "slots",
                     w->slots, "queues", w->queues, "labels", w->labels);
    /* The plugin types it runs, with their schemas (the built-in ones every
     * worker runs go unsaid). */
    if (json_array_size(w->plugins.advert)) json_object_set(body, "plugins", w->plugins.advert);
    rc = post_json(h, "/v1/workers", body, &r);
    if (rc < 0) goto out;
    *status = r.status;
    if (r.status != 200 && r.status != 201) {
        rc = status_error(r.status);
        goto out;
    }
    ans = parse_body(&r);
    const char *id = json_string_value(json_object_get(ans, "id"));
    if (!id || strlen(id) >= SKED_ID_LEN) {
        rc = SKED_EIO;
        goto out;
    }
    int64_t lease = json_duration_ms(json_object_get(ans, "lease"), 30000);
    int64_t hb = json_duration_ms(json_object_get(ans, "heartbeat_interval"), 5000);
    pthread_mutex_lock(&w->mu);
    snprintf(w->id, sizeof w->id, "%s", id);
    w->lease_ms = lease;
    w->hb_ms = hb;
    w->gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->sup) sup_set_lease(w->sup, lease, hb);
    log_info("worker", "registered as %s (lease %lld ms, heartbeat %lld ms)", id, (long long)lease,
             (long long)hb);
out:
    pthread_mutex_unlock(&w->reg_mu);
    if (rc < 0 && rc != SKED_EIO)
        log_error("worker", "registration refused: HTTP %ld %s", r.status, r.body ? r.body : "");
    else if (rc < 0)
        log_warn("worker", "registration failed: %s",
                 r.status ? (r.body ? r.body : "server error") : r.errbuf);
    httpc_resp_clear(&r);
    json_decref(body);
    json_decref(ans);
    return rc;
}

static void reregister(worker_t *w, httpc_t *h, int seen_gen)
{
    long status;
    log_warn("worker", "the server does not know this worker; registering again");
    do_register(w, h, seen_gen, &status);
}

/* ---- the report threads ------------------------------------------------- */

static void shard_push(struct shard *sh, struct item *it)
{
    it->next = NULL;
    pthread_mutex_lock(&sh->mu);
    if (it->kind == ITEM_CHUNK && sh->queued + it->len > SHARD_QUEUE_MAX) {
        /* The server has been away for long and the job is chatty: keep
         * the memory bounded; results (ITEM_DONE) are never dropped. */
        pthread_mutex_unlock(&sh->mu);
        attempt_log(log_warn, it->a, "run %s: output backlog full, %zu bytes of log dropped",
                    it->a->run_id, it->len);
        free(it->data);
        free(it);
        return;
    }
    sh->queued += it->len;
    if (sh->tail)
        sh->tail->next = it;
    else
        sh->head = it;
    sh->tail = it;
    pthread_cond_signal(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
}

static int lease_gone(attempt_t *a)
{
    int st = atomic_load(&a->stop);
    return st == ATTEMPT_STOP_LOST || st == ATTEMPT_STOP_FENCE || st == ATTEMPT_STOP_SHUTDOWN;
}

/* The lease is gone (a 409): kill the attempt, report nothing. */
static void mark_lost(worker_t *w, attempt_t *a)
{
    int expected = ATTEMPT_RUN;
    if (!atomic_compare_exchange_strong(&a->stop, &expected, ATTEMPT_STOP_LOST) &&
        expected == ATTEMPT_STOP_CANCEL)
        atomic_store(&a->stop, ATTEMPT_STOP_LOST);
    sup_poke(w->sup);
}

static void ship_chunk(struct shard *sh, struct item *it)
{
    worker_t *w = sh->w;
    attempt_t *a = it->a;
    char path[256];
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%d/log?fence=%lld&seq=%lld&stream=%d",
             a->run_id, a->n, (long long)a->fence, (long long)it->seq, it->stream);
    int64_t delay = 0;
    for (int tries = 0; tries < LOG_SHIP_TRIES; tries++) {
        if (atomic_load(&w->aborting) || lease_gone(a)) return;
        if (tries) nap(w, delay, NULL, NULL);
        httpc_resp_t r;
        int rc = httpc_do(sh->http, "POST", path, "application/octet-stream", it->data, it->len,
                          NULL, &r);
        long st = r.status;
        httpc_resp_clear(&r);
        if (rc == 0 && st >= 200 && st < 300) return;
        if (rc == 0 && st == 409) {
            attempt_log(log_info, a, "run %s attempt %d: lease lost (log answered 409); killing it",
                        a->run_id, a->n);
            mark_lost(w, a);
            return;
        }
        if (rc == 0 && st >= 400 && st < 500 && st != 429) {
            attempt_log(log_warn, a, "run %s: log chunk %lld refused with HTTP %ld; dropped",
                        a->run_id, (long long)it->seq, st);
            return;
        }
        delay = backoff_next(delay);
    }
    attempt_log(log_warn, a, "run %s: log chunk %lld (%zu bytes) dropped after %d tries", a->run_id,
                (long long)it->seq, it->len, LOG_SHIP_TRIES);
}

/* The completion report of a (docs/api.md "Completing an attempt"). */
static json_t *completion(const attempt_t *a)
{
    json_t *body = json_pack("{s:I, s:s}", "fence", (json_int_t)a->fence, "outcome", a->outcome);
    json_object_set_new(body, "exit_code",
                        a->exit_code >= 0 ? json_integer(a->exit_code) : json_null());
    json_object_set_new(body, "signal", a->signo > 0 ? json_integer(a->signo) : json_null());
    json_object_set_new(body, "reason", a->reason ? json_string(a->reason) : json_null());
    if (a->result) json_object_set_new(body, "result_json", json_string(a->result));
    if (a->last_checkpoint)
        json_object_set_new(body, "checkpoint", json_string(a->last_checkpoint));
    return body;
}

static void report_done(struct shard *sh, attempt_t *a)
{
    worker_t *w = sh->w;
    char path[160];
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%d/complete", a->run_id, a->n);
    json_t *body = completion(a);
    int64_t delay = 0;
    int warned = 0;
    /* Until some server gives a real answer: never lose a result. */
    while (!atomic_load(&w->aborting)) {
        httpc_resp_t r;
        int rc = post_json(sh->http, path, body, &r);
        long st = r.status;
        if (rc == 0 && st >= 200 && st < 300) {
            if (warned) attempt_log(log_info, a, "run %s: result delivered", a->run_id);
            httpc_resp_clear(&r);
            break;
        }
        if (rc == 0 && (st == 409 || st == 404)) {
            attempt_log(log_info, a, "run %s attempt %d: result is stale (HTTP %ld), dropped",
                        a->run_id, a->n, st);
            httpc_resp_clear(&r);
            break;
        }
        if (rc == 0 && st >= 400 && st < 500 && st != 429) {
            attempt_log(log_error, a, "run %s: result refused with HTTP %ld: %s", a->run_id, st,
                        r.body ? r.body : "");
            httpc_resp_clear(&r);
            break;
        }
        if (!warned++)
            attempt_log(log_warn, a, "run %s: reporting the result failed (%s); retrying",
                        a->run_id, rc ? r.errbuf : "server error");
        httpc_resp_clear(&r);
        delay = backoff_next(delay);
        nap(w, delay, NULL, NULL);
    }
    json_decref(body);
}

/* Reports the completions of v[0..n) in one request (POST
 * /v1/workers/{id}/complete, one durable commit for all), retried like
 * report_done until some server answers. A server without the route
 * (older), or one refusing the body as a whole, gets them one by one.
 * claim_max > 0: the request also claims up to that many runs (for the
 * slots these completions freed); returns the answer's "claimed" (new
 * reference; NULL when none came). */
static json_t *report_batch(struct shard *sh, attempt_t **v, size_t n, int claim_max)
{
    worker_t *w = sh->w;
    if ((n == 1 && claim_max <= 0) || atomic_load(&w->no_batch)) {
        for (size_t i = 0; i < n; i++)
            report_done(sh, v[i]);
        return NULL;
    }
    /* A request body holds at most 1 MiB: results and checkpoints that
     * would not fit together go in the next request. */
    size_t m = 0, bytes = 0;
    for (; m < n; m++) {
        size_t b = 256 + (v[m]->result ? results_json_len(v[m]->result, strlen(v[m]->result)) : 0) +
                   (v[m]->last_checkpoint
                        ? results_json_len(v[m]->last_checkpoint, strlen(v[m]->last_checkpoint))
                        : 0);
        if (m && bytes + b > COMPLETE_HANDOFF_BUDGET) break;
        bytes += b;
    }
    if (m < n) {
        report_batch(sh, v, m, 0);
        return report_batch(sh, v + m, n - m, claim_max);
    }
    json_t *runs = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *c = completion(v[i]);
        json_object_set_new(c, "run_id", json_string(v[i]->run_id));
        json_object_set_new(c, "attempt", json_integer(v[i]->n));
        json_array_append_new(runs, c);
    }
    json_t *body = json_pack("{s:o}", "runs", runs), *ans = NULL, *claimed = NULL;
    if (claim_max > 0)
        json_object_set_new(body, "claim",
                            json_pack("{s:i, s:s}", "max",
                                      claim_max < CLAIM_MAX ? claim_max : CLAIM_MAX, "ahead",
                                      CLAIM_AHEAD));
    int64_t delay = 0;
    int warned = 0, one_by_one = 0;
    while (!atomic_load(&w->aborting)) {
        char id[SKED_ID_LEN], path[128];
        worker__get_id(w, id);
        snprintf(path, sizeof path, "/v1/workers/%s/complete", id);
        httpc_resp_t r;
        int rc = post_json(sh->http, path, body, &r);
        long st = r.status;
        if (rc == 0 && st == 200 && (ans = parse_body(&r))) {
            if (warned) log_info("worker", "%zu results delivered", n);
            httpc_resp_clear(&r);
            break;
        }
        if (rc == 0 && st >= 400 && st < 500 && st != 429) {
            /* 404 naming this worker: the server lost it (the heartbeat
             * thread registers again); another 404 or a 405: an older
             * server, without the route. */
            bool gone = st == 404 && r.body && strstr(r.body, "register again");
            if ((st == 404 && !gone) || st == 405)
                atomic_store(&w->no_batch, 1); /* an older server */
            else if (gone)
                log_info("worker",
                         "the server does not know this worker; %zu results go one "
                         "by one",
                         n);
            else
                log_error("worker",
                          "a batch of %zu results was refused with HTTP %ld (%s); "
                          "reporting them one by one",
                          n, st, r.body ? r.body : "");
            httpc_resp_clear(&r);
            one_by_one = 1;
            break;
        }
        if (!warned++)
            log_warn("worker", "reporting %zu results failed (%s); retrying", n,
                     rc ? r.errbuf : "server error");
        httpc_resp_clear(&r);
        delay = backoff_next(delay);
        nap(w, delay, NULL, NULL);
    }
    json_decref(body);
    if (one_by_one) {
        for (size_t i = 0; i < n; i++)
            report_done(sh, v[i]);
        return NULL;
    }
    claimed = json_incref(json_object_get(ans, "claimed"));
    json_t *res = json_object_get(ans, "results");
    for (size_t i = 0; i < n && ans; i++) {
        json_t *e = json_array_get(res, i);
        long st = (long)json_integer_value(json_object_get(e, "status"));
        attempt_t *a = v[i];
        if (st == 409 || st == 404)
            attempt_log(log_info, a, "run %s attempt %d: result is stale (HTTP %ld), dropped",
                        a->run_id, a->n, st);
        else if (st != 200)
            attempt_log(log_error, a, "run %s: result refused with HTTP %ld: %s", a->run_id, st,
                        json_string_value(json_object_get(e, "detail")) ?: "");
    }
    json_decref(ans);
    return claimed;
}

/* Ships a line of the worker's own into the attempt's log, after all of
 * its output (stderr, marked "[sked]"), waiting for the answer. */
static void note(struct shard *sh, attempt_t *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(struct shard *sh, attempt_t *a, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len < 0) return;
    if ((size_t)len > sizeof line - 2) len = (int)sizeof line - 2;
    line[len++] = '\n';
    line[len] = '\0';
    char *text = xasprintf("[sked] %s", line);
    struct item it = {.kind = ITEM_CHUNK, .a = a, .stream = 2, .seq = a->nchunks++};
    it.data = text;
    it.len = strlen(text);
    ship_chunk(sh, &it);
    free(text);
}

/* Takes what the ended attempt left in its handoff files (docs/results.md):
 * its result, checked and capped, and its last checkpoint unless the
 * heartbeats shipped it already. A result that is not one JSON value, or
 * too big, or not a regular file of the job's user, is never reported: an
 * attempt that succeeded then fails with it as reason, so no downstream
 * reader ever sees it; any other outcome stands and the result is dropped.
 * Either way a note says so in the run's log. On a report thread: it may
 * block. */
static void collect(struct shard *sh, attempt_t *a)
{
    worker_t *w = sh->w;
    char *data = NULL, err[256] = "";
    size_t len = 0;
    if (!a->io_dir || !strcmp(a->outcome, "not_started")) return;
    int rc = results_read(a->io_dir, RESULTS_RESULT, w->user.cred.uid, w->result_max, NULL, NULL,
                          &data, &len, err, sizeof err);
    if (rc == 0 && results_check_json(data, &len, err, sizeof err) < 0) rc = SKED_EINVAL;
    if (rc == 0) {
        a->result = data;
        data = NULL;
    } else if (rc < 0) {
        bool fails = !strcmp(a->outcome, "succeeded");
        attempt_log(log_info, a, "run %s attempt %d: result %s: %s", a->run_id, a->n,
                    fails ? "refused" : "dropped", err);
        note(sh, a, "result %s: %s", fails ? "refused, the attempt fails" : "dropped", err);
        if (fails) {
            a->outcome = "failed";
            free(a->reason);
            a->reason = xasprintf("result: %s", err);
        }
    }
    free(data);
    data = NULL;

    pthread_mutex_lock(&w->mu);
    uint64_t sent_hash = a->cp_sent_hash;
    int sent = a->cp_sent;
    pthread_mutex_unlock(&w->mu);
    rc = results_read(a->io_dir, RESULTS_CHECKPOINT, w->user.cred.uid, w->checkpoint_max, NULL,
                      NULL, &data, &len, err, sizeof err);
    if (rc == 0 && results_check_text(data, len, err, sizeof err) < 0) rc = SKED_EINVAL;
    /* With the result, it must fit one body (as in a heartbeat, only text
     * made mostly of control characters grows that much encoded). */
    size_t enc = rc == 0 ? results_json_len(data, len) : 0;
    if (rc == 0 && a->result) enc += results_json_len(a->result, strlen(a->result));
    if (rc == 0 && enc > COMPLETE_HANDOFF_BUDGET) {
        snprintf(err, sizeof err,
                 "%zu bytes once encoded with the result, over the %d a "
                 "completion carries",
                 enc, COMPLETE_HANDOFF_BUDGET);
        rc = SKED_ETOOBIG;
    }
    if (rc < 0) {
        note(sh, a, "checkpoint not shipped: %s", err);
    } else if (rc == 0 && !(sent && results_hash(data, len) == sent_hash)) {
        a->last_checkpoint = data;
        data = NULL;
    }
    free(data);
}

static void release(worker_t *w, attempt_t *a)
{
    pthread_mutex_lock(&w->mu);
    for (attempt_t **pp = &w->held; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    attempt_free(a);
}

static int start_claimed(worker_t *w, httpc_t *h, json_t *ans, int credits);

static void *shard_main(void *arg)
{
    struct shard *sh = arg;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (!sh->head && !sh->quit)
            pthread_cond_wait(&sh->cv, &sh->mu);
        struct item *it = sh->head;
        if (it) {
            sh->head = it->next;
            if (!sh->head) sh->tail = NULL;
            sh->queued -= it->len;
        }
        pthread_mutex_unlock(&sh->mu);
        if (!it) break;
        if (it->kind == ITEM_CHUNK) {
            ship_chunk(sh, it);
            free(it->data);
            free(it);
            continue;
        }
        worker_t *w = sh->w;
        if (it->kind == ITEM_START) {
            start_claimed(w, sh->http, it->claimed, it->slot);
            json_decref(it->claimed);
            free(it);
            pthread_mutex_lock(&w->mu);
            w->starting--;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (sh != &w->shards[w->nshards]) {
            /* Its output is shipped: its result is read here, beside the
             * other report threads, and its end goes to the completer,
             * which reports the ends of every thread together. */
            if (it->a->outcome && !atomic_load(&w->aborting) && !lease_gone(it->a))
                collect(sh, it->a);
            shard_push(&w->shards[w->nshards], it);
            continue;
        }
        /* The completer: this completion and those queued behind it go in
         * one request, so what ends while a report is in flight goes in the
         * next one. */
        attempt_t *batch[REPORT_BATCH_MAX];
        size_t n = 0, k = 0;
        int credits = it->slot;
        batch[n++] = it->a;
        free(it);
        pthread_mutex_lock(&sh->mu);
        while (n < REPORT_BATCH_MAX && sh->head) {
            it = sh->head;
            sh->head = it->next;
            if (!sh->head) sh->tail = NULL;
            credits += it->slot;
            batch[n++] = it->a;
            free(it);
        }
        pthread_mutex_unlock(&sh->mu);
        attempt_t *report[REPORT_BATCH_MAX];
        for (size_t i = 0; i < n; i++) {
            attempt_t *a = batch[i];
            if (a->outcome && !atomic_load(&w->aborting) && !lease_gone(a)) report[k++] = a;
        }
        /* The freed slots ride on the report as a claim (one round trip
         * per run for a busy worker), unless this worker claims no more. */
        pthread_mutex_lock(&w->mu);
        int claim = credits > 0 && !w->server_draining && !atomic_load(&w->draining);
        pthread_mutex_unlock(&w->mu);
        json_t *claimed = NULL;
        if (k) claimed = report_batch(sh, report, k, claim ? credits : 0);
        if (json_array_size(json_object_get(claimed, "runs"))) {
            /* Confirmed and started by a report thread, so the next report
             * need not wait for that round trip. Counted as starting before
             * the reported ones are let go: a worker stopping waits until
             * nothing is held or starting, and must not stop while runs it
             * claimed are about to start. */
            struct item *st = xcalloc(1, sizeof *st);
            st->kind = ITEM_START;
            st->claimed = claimed;
            st->slot = credits;
            pthread_mutex_lock(&w->mu);
            w->starting++;
            struct shard *to = &w->shards[w->next_shard++ % w->nshards];
            pthread_mutex_unlock(&w->mu);
            shard_push(to, st);
        } else {
            start_claimed(w, sh->http, claimed, credits); /* only the credits */
            json_decref(claimed);
        }
        for (size_t i = 0; i < n; i++)
            release(w, batch[i]);
    }
    return NULL;
}

/* ---- supervisor callbacks (on the supervisor thread: never block) ------ */

static void on_chunk(void *arg, attempt_t *a, int stream, int64_t seq, char *data, size_t len)
{
    worker_t *w = arg;
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = ITEM_CHUNK;
    it->a = a;
    it->stream = stream;
    it->seq = seq;
    it->data = data;
    it->len = len;
    shard_push(&w->shards[a->shard], it);
}

static void on_done(void *arg, attempt_t *a)
{
    worker_t *w = arg;
    if (a->outcome) {
        log_ctx_run(a->run_id);
        log_msg(strcmp(a->outcome, "succeeded") ? LOG_INFO : LOG_DEBUG, "worker",
                "run %s attempt %d: %s (exit %d, signal %d)%s%s", a->run_id, a->n, a->outcome,
                a->exit_code, a->signo, a->reason ? ": " : "", a->reason ? a->reason : "");
        log_ctx_run(NULL);
    }
    /* The slot goes with the completion, which claims the next run for it
     * in the same request (shard_main); what that claim does not fill goes
     * back to the claim thread. */
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = ITEM_DONE;
    it->a = a;
    it->slot = 1;
    shard_push(&w->shards[a->shard], it);
}

static const sup_ops_t sup_ops = {on_chunk, on_done};

/* ---- claiming ----------------------------------------------------------- */

static char **json_argv(json_t *cmd)
{
    if (!json_is_array(cmd) || json_array_size(cmd) == 0) return NULL;
    size_t n = json_array_size(cmd);
    char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(cmd, i));
        if (!s) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
        v[i] = xstrdup(s);
    }
    return v;
}

/* Builds an attempt from one claimed run (docs/api.md "A claimed run");
 * read_ns: when the answer was read (monotonic), which a run's
 * "start_in_us" counts from. */
static attempt_t *attempt_from_claim(worker_t *w, json_t *run, int64_t read_ns)
{
    const char *run_id = json_string_value(json_object_get(run, "run_id"));
    if (!run_id || strlen(run_id) >= SKED_ID_LEN) return NULL;
    attempt_t *a = attempt_new();
    snprintf(a->run_id, sizeof a->run_id, "%s", run_id);
    a->n = (int)json_integer_value(json_object_get(run, "attempt"));
    a->fence = json_integer_value(json_object_get(run, "fence"));
    json_int_t start_in_us = json_integer_value(json_object_get(run, "start_in_us"));
    if (start_in_us > 0 && start_in_us <= 1000000) a->start_ns = read_ns + start_in_us * 1000;
    json_t *spec = json_object_get(run, "spec");
    json_t *t = json_object_get(run, "timeout");
    if (!json_is_string(t)) t = json_object_get(spec, "timeout");
    a->timeout_ms = json_duration_ms(t, 0);

    const char *type = json_string_value(json_object_get(spec, "type"));
    bool plugin = type && strcmp(type, "shell");
    if (plugin && !plugin_set_has(&w->plugins, type)) {
        a->reason = xasprintf("this worker does not run job type \"%s\"", type);
        return a;
    }
    /* The handoff files: made now, so the environment can name them; a
     * retry starts from the run's checkpoint, written there. */
    const char *cp = json_string_value(json_object_get(json_object_get(run, "checkpoint"), "data"));
    if (cp) a->checkpoint_in = xstrdup(cp);
    char **io_env = NULL;
    char *prefix = xasprintf("%s.%d.io", a->run_id, a->n);
    const char *ups = json_string_value(json_object_get(run, "upstream_results_json"));
    const char *base = plugin && w->io_base ? w->io_base : w->work_dir;
    int rc = results_dir_new(base, prefix, w->iso.cred, a->checkpoint_in, cp ? strlen(cp) : 0, ups,
                             &a->io_dir, &io_env);
    free(prefix);
    if (rc < 0) {
        a->reason = xasprintf("results directory under %s: %s", base, strerror(-rc));
        return a;
    }
    if (!plugin) {
        a->argv = json_argv(json_object_get(spec, "command"));
        if (!a->argv) {
            a->reason = xstrdup("spec: command must be a non-empty array of strings");
            spawn_env_free(io_env);
            return a;
        }
        const char *cwd = json_string_value(json_object_get(spec, "cwd"));
        a->cwd = cwd ? xstrdup(cwd) : NULL;
    }

    /* The job's env, then the SKED_* that let a job deduplicate (DESIGN §5). */
    json_t *env = json_object_get(spec, "env");
    size_t nenv = json_is_object(env) ? json_object_size(env) : 0;
    /* 5 SKED_* below, 2 of a group's member, the handoff files (results.c), NULL */
    char **extra = xcalloc(nenv + 5 + 2 + RESULTS_ENV_MAX + 1, sizeof *extra);
    size_t k = 0;
    const char *key;
    json_t *val;
    if (nenv) {
        json_object_foreach(env, key, val)
        {
            /* A secret comes as {"secret": "value"} (jobspec.h); the job
             * gets the value like any other. */
            if (json_is_object(val)) val = json_object_get(val, "secret");
            if (json_is_string(val)) extra[k++] = xasprintf("%s=%s", key, json_string_value(val));
        }
    }
    const char *fire = json_string_value(json_object_get(run, "fire_time"));
    const char *job_id = json_string_value(json_object_get(run, "job_id"));
    const char *job_name = json_string_value(json_object_get(run, "job_name"));
    extra[k++] = xasprintf("SKED_RUN_ID=%s", a->run_id);
    extra[k++] = xasprintf("SKED_ATTEMPT=%d", a->n);
    extra[k++] = xasprintf("SKED_FIRE_TIME=%s", fire ? fire : "");
    extra[k++] = xasprintf("SKED_JOB_ID=%s", job_id ? job_id : "");
    extra[k++] = xasprintf("SKED_JOB_NAME=%s", job_name ? job_name : "");
    /* A member of a job array learns its index; of a workflow run, its run. */
    json_t *ai = json_object_get(run, "array_index");
    if (json_is_integer(ai))
        extra[k++] = xasprintf("SKED_ARRAY_INDEX=%lld", (long long)json_integer_value(ai));
    const char *parent = json_string_value(json_object_get(run, "parent_id"));
    if (parent) extra[k++] = xasprintf("SKED_PARENT_RUN_ID=%s", parent);
    for (char **e = io_env; e && *e; e++) /* SKED_RESULT_FILE, SKED_CHECKPOINT_FILE, ... */
        extra[k++] = xstrdup(*e);
    spawn_env_free(io_env);
    extra[k] = NULL;
    if (plugin) {
        /* Its host gets the config, the job's env and SKED_* (never the
         * base environment: a plugin's getenv is the job's), and where the
         * handoff files are. */
        json_t *env_list = json_array(), *cfg = json_object_get(spec, "config");
        for (size_t i = 0; i < k; i++)
            json_array_append_new(env_list, json_string(extra[i]));
        /* Secrets resolved: a plugin never sees the {"secret": ...} wrapper
         * (include/sked/plugin.h). The time left before its timeout is
         * added when the START goes out (sup_plugin.c). */
        json_t *start = json_pack("{s:o, s:o, s:s}", "config",
                                  json_is_object(cfg) ? secret_resolve(cfg) : json_object(), "env",
                                  env_list, "io_dir", a->io_dir);
        a->start_json = json_dumps(start, JSON_COMPACT);
        json_decref(start);
        a->plugin = xstrdup(type);
    } else {
        a->envp = spawn_env_new((const char *const *)w->env_base, (const char *const *)extra);
    }
    for (size_t i = 0; i < k; i++)
        free(extra[i]);
    free(extra);
    return a;
}

/* Whether stop (a heartbeat answer's "stop" array) names attempt a. */
static bool stop_lists(json_t *stop, const attempt_t *a)
{
    size_t j;
    json_t *s;
    json_array_foreach(stop, j, s)
    {
        const char *rid = json_string_value(json_object_get(s, "run_id"));
        json_t *f = json_object_get(s, "fence");
        if (rid && !strcmp(rid, a->run_id) &&
            (!json_is_integer(f) || json_integer_value(f) == a->fence))
            return true;
    }
    return false;
}

/* Hands a claimed run that will not be started to its report thread as
 * "not started": the server gives it back at once and uncharged, whether or
 * not the confirmation it never answered was committed (a stale report is
 * dropped with 409). Never dropped silently: a confirmation committed and
 * then unanswered would otherwise leave the run leased to us for a whole
 * lease and charge it a lost attempt. */
static void give_back(worker_t *w, attempt_t *a, const char *why)
{
    a->outcome = "not_started";
    free(a->reason);
    a->reason = xstrdup(why);
    pthread_mutex_lock(&w->mu);
    a->shard = w->next_shard++ % w->nshards;
    a->next = w->held; /* held until reported, as any attempt */
    w->held = a;
    pthread_mutex_unlock(&w->mu);
    struct item *it = xcalloc(1, sizeof *it);
    it->kind = ITEM_DONE;
    it->a = a;
    shard_push(&w->shards[a->shard], it);
}

/* Confirms the runs of a claim answer (a claim's, or a completion's that
 * carried one) and starts the confirmed ones.
 *
 * A claim hands out short, unconfirmed leases. Before anything is started,
 * one heartbeat lists the claimed runs as started; the server turns each
 * lease it still holds for us into a full one and names the rest in
 * "stop" (re-queued meanwhile, or canceled). So no process ever runs on a
 * lease that the server may already have given away, and every attempt
 * that began is confirmed (charged if its worker dies): an answer read
 * late (a stalled worker, a slow network), a claim whose first server died
 * and was retried on another, or a claim committed whose answer never
 * came all end the same way, with the run back in the queue, uncharged.
 * When the confirmation itself gets no answer nothing starts and each run
 * is reported not started (give_back). The leases count from the send of
 * the confirming request that was answered (httpc's sent_ns), never from
 * the claim. h: the caller's connection (the claim thread's, a report
 * thread's). credits: free slots the caller brings (the slots of the
 * completions that carried the claim), added in the same locked step that
 * takes a slot for each run started. Returns the number started. */
static int start_claimed(worker_t *w, httpc_t *h, json_t *ans, int credits)
{
    json_t *runs = json_object_get(ans, "runs"), *run, *cans = NULL;
    size_t nruns = json_array_size(runs), i, n = 0;
    attempt_t **v = xcalloc(nruns ? nruns : 1, sizeof *v);
    json_t *list = json_array();
    int64_t read_ns = clock_mono_ns();
    json_array_foreach(runs, i, run)
    {
        attempt_t *a = attempt_from_claim(w, run, read_ns);
        if (!a) {
            log_error("worker", "claim answer without a valid run_id; ignored");
            continue;
        }
        v[n++] = a;
        json_array_append_new(list, json_pack("{s:s, s:I, s:b}", "run_id", a->run_id, "fence",
                                              (json_int_t)a->fence, "started", 1));
    }
    httpc_resp_t r = {0};
    bool ok = false;
    if (n && atomic_load(&w->aborting)) { /* sending nothing more: they come back uncharged */
        for (i = 0; i < n; i++)
            attempt_free(v[i]);
        n = 0;
    }
    if (n) {
        char id[SKED_ID_LEN], path[128];
        pthread_mutex_lock(&w->mu);
        int gen = w->gen;
        memcpy(id, w->id, sizeof id);
        pthread_mutex_unlock(&w->mu);
        snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", id);
        json_t *body = json_pack("{s:O}", "runs", list);
        int rc = post_json(h, path, body, &r);
        json_decref(body);
        ok = rc == 0 && r.status == 200 && (cans = parse_body(&r)) != NULL;
        if (!ok) {
            log_warn("worker",
                     "could not confirm %zu claimed run(s) (%s); not starting them: they go back "
                     "to the queue, uncharged",
                     n,
                     rc       ? r.errbuf
                     : r.body ? r.body
                              : "?");
            if (rc == 0 && r.status == 404) reregister(w, h, gen);
        }
    }
    json_decref(list);
    json_t *stop = ok ? json_object_get(cans, "stop") : NULL;
    int started = 0;
    attempt_t **go = xcalloc(n ? n : 1, sizeof *go);
    for (i = 0; i < n; i++) {
        attempt_t *a = v[i];
        if (!ok) {
            give_back(w, a, "not started: its confirmation got no answer");
        } else if (stop_lists(stop, a)) {
            attempt_log(log_info, a, "run %s was taken back before it started", a->run_id);
            attempt_free(a);
        } else {
            atomic_store(&a->renewed_ns, r.sent_ns);
            go[started++] = a;
        }
    }
    pthread_mutex_lock(&w->mu);
    w->free_slots += credits;
    for (int k = 0; k < started; k++) {
        go[k]->shard = w->next_shard++ % w->nshards;
        go[k]->next = w->held;
        w->held = go[k];
        w->free_slots--;
    }
    if (credits) pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int k = 0; k < started; k++) {
        attempt_log(log_debug, go[k], "claimed run %s attempt %d (fence %lld)", go[k]->run_id,
                    go[k]->n, (long long)go[k]->fence);
        sup_submit(w->sup, go[k]);
    }
    httpc_resp_clear(&r);
    json_decref(cans);
    free(go);
    free(v);
    return started;
}

static void *claim_main(void *arg)
{
    worker_t *w = arg;
    int64_t delay = 0;
    int failing = 0;
    while (!atomic_load(&w->draining)) {
        pthread_mutex_lock(&w->mu);
        while (w->free_slots <= 0 && !atomic_load(&w->draining) && !atomic_load(&w->aborting))
            pthread_cond_wait(&w->cv, &w->mu);
        int max = w->free_slots, sdrain = w->server_draining, gen = w->gen;
        int64_t hb = w->hb_ms;
        char id[SKED_ID_LEN];
        memcpy(id, w->id, sizeof id);
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&w->draining) || atomic_load(&w->aborting)) break;
        if (sdrain) { /* an admin drained us: idle until told otherwise */
            nap(w, hb, &w->draining, NULL);
            continue;
        }
        char path[128];
        snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
        if (max > CLAIM_MAX) max = CLAIM_MAX;
        json_t *body =
            json_pack("{s:i, s:s, s:s}", "max", max, "wait", CLAIM_WAIT, "ahead", CLAIM_AHEAD);
        httpc_resp_t r;
        int64_t t0 = clock_mono_ns();
        int rc = post_json(w->claim_http, path, body, &r);
        json_decref(body);
        if (rc == 0 && r.status == 200) {
            if (failing) log_info("worker", "claiming works again");
            failing = 0;
            delay = 0;
            json_t *ans = parse_body(&r);
            int n = ans ? start_claimed(w, w->claim_http, ans, 0) : 0;
            json_decref(ans);
            /* A server that answers an empty claim at once (not long-polling)
             * must not be hammered. */
            if (n == 0 && clock_mono_ns() - t0 < 500 * 1000000LL) nap(w, 1000, &w->draining, NULL);
        } else if (rc == 0 && r.status == 404) {
            reregister(w, w->claim_http, gen);
        } else if (!atomic_load(&w->draining)) {
            if (!failing++)
                log_warn("worker", "claim failed: %s", rc ? r.errbuf : r.body ? r.body : "?");
            delay = backoff_next(delay);
            nap(w, delay, &w->draining, NULL);
        }
        httpc_resp_clear(&r);
    }
    return NULL;
}

/* ---- heartbeats --------------------------------------------------------- */

/* A held attempt as a heartbeat snapshots it (under the lock), and what
 * the heartbeat did with its checkpoint file (outside it). */
struct held_ref {
    attempt_t *a;
    char run_id[SKED_ID_LEN];
    int64_t fence;
    char *io_dir;       /* a copy: the attempt may be freed while the file is read */
    results_sig_t seen; /* the file as last seen; OUT: as seen now (when looked) */
    uint64_t sent_hash; /* the content last shipped (when sent) */
    int sent, looked;   /* looked: seen is new, to keep once the server answered */
    int shipped;        /* this heartbeat carries the checkpoint whose hash is ship_hash */
    uint64_t ship_hash;
};

/* Logs why a checkpoint is not shipped: once per version of the file (the
 * heartbeat does not look at that version again). */
static void checkpoint_refused(struct held_ref *h, const char *why)
{
    log_ctx_run(h->run_id);
    log_warn("worker", "run %s: checkpoint not shipped: %s", h->run_id, why);
    log_ctx_run(NULL);
}

/* The attempt's checkpoint as a JSON string to ship, or NULL: no file,
 * unchanged since last seen, its content shipped already, refused (logged),
 * or over what is left of *budget (encoded bytes this heartbeat may still
 * carry; it is then read again next time). Blocking. */
static json_t *poll_checkpoint(worker_t *w, struct held_ref *h, size_t *budget)
{
    char *data = NULL, err[256] = "";
    size_t len = 0;
    results_sig_t sig;
    if (!h->io_dir) return NULL;
    int rc = results_read(h->io_dir, RESULTS_CHECKPOINT, w->user.cred.uid, w->checkpoint_max,
                          &h->seen, &sig, &data, &len, err, sizeof err);
    if (rc == RESULTS_SAME) return NULL;
    json_t *v = NULL;
    if (rc == 0 && results_check_text(data, len, err, sizeof err) < 0) rc = SKED_EINVAL;
    if (rc < 0) {
        checkpoint_refused(h, err);
    } else if (rc == 0 && !(h->sent && results_hash(data, len) == h->sent_hash)) {
        size_t enc = results_json_len(data, len);
        if (enc > HB_CHECKPOINT_BUDGET) {
            snprintf(err, sizeof err, "%zu bytes once encoded, over the %d a heartbeat carries",
                     enc, HB_CHECKPOINT_BUDGET);
            checkpoint_refused(h, err);
        } else if (enc > *budget) {
            free(data);
            return NULL; /* the next heartbeat takes it */
        } else {
            *budget -= enc;
            v = json_stringn(data, len);
            h->shipped = 1;
            h->ship_hash = results_hash(data, len);
        }
    }
    free(data);
    h->seen = sig;
    h->looked = 1;
    return v;
}

static void heartbeat_once(worker_t *w, int *failing)
{
    struct held_ref *refs = NULL;
    size_t n = 0, budget = HB_CHECKPOINT_BUDGET;
    json_t *runs = json_array(), *ans = NULL;
    pthread_mutex_lock(&w->mu);
    for (attempt_t *a = w->held; a; a = a->next)
        n++;
    refs = xcalloc(n ? n : 1, sizeof *refs);
    n = 0;
    for (attempt_t *a = w->held; a; a = a->next) {
        refs[n].a = a;
        memcpy(refs[n].run_id, a->run_id, SKED_ID_LEN);
        refs[n].fence = a->fence;
        refs[n].io_dir = a->io_dir ? xstrdup(a->io_dir) : NULL;
        refs[n].seen = a->cp_seen;
        refs[n].sent_hash = a->cp_sent_hash;
        refs[n].sent = a->cp_sent;
        n++;
    }
    int gen = w->gen;
    char path[128];
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", w->id);
    pthread_mutex_unlock(&w->mu);

    /* Checkpoint files are read outside the lock: claims and reports go on. */
    for (size_t k = 0; k < n; k++) {
        json_t *cp = poll_checkpoint(w, &refs[k], &budget);
        /* Every held attempt was confirmed started before it was held. */
        json_t *o = json_pack("{s:s, s:I, s:b}", "run_id", refs[k].run_id, "fence",
                              (json_int_t)refs[k].fence, "started", 1);
        if (cp) json_object_set_new(o, "checkpoint", cp);
        json_array_append_new(runs, o);
    }

    json_t *body = json_pack("{s:o}", "runs", runs);
    httpc_resp_t r;
    int rc = post_json(w->hb_http, path, body, &r);
    int64_t t0 = r.sent_ns; /* the server renewed at or after this instant */
    json_decref(body);
    if (rc == 0 && r.status == 200) {
        if (*failing) log_info("worker", "heartbeats reach the server again");
        *failing = 0;
        ans = parse_body(&r);
        json_t *stop = json_object_get(ans, "stop");
        int sdrain = json_is_true(json_object_get(ans, "draining"));
        int poke = 0;
        pthread_mutex_lock(&w->mu);
        for (attempt_t *a = w->held; a; a = a->next) {
            size_t k;
            for (k = 0; k < n; k++)
                if (refs[k].a == a && refs[k].fence == a->fence &&
                    !strcmp(refs[k].run_id, a->run_id))
                    break;
            if (k == n) continue; /* claimed after the snapshot */
            if (refs[k].looked) a->cp_seen = refs[k].seen;
            if (refs[k].shipped) {
                a->cp_sent_hash = refs[k].ship_hash;
                a->cp_sent = 1;
            }
            if (stop_lists(stop, a)) {
                int expected = ATTEMPT_RUN;
                if (atomic_compare_exchange_strong(&a->stop, &expected, ATTEMPT_STOP_CANCEL)) {
                    /* Also the normal answer for a run whose result the
                     * server took since this heartbeat was sent. */
                    attempt_log(log_debug, a, "run %s attempt %d: the server asks to stop it",
                                a->run_id, a->n);
                    poke = 1;
                }
            } else if (atomic_load(&a->renewed_ns) < t0) {
                atomic_store(&a->renewed_ns, t0);
            }
        }
        if (sdrain != w->server_draining) {
            log_info("worker", sdrain ? "the server drains this worker: claiming stops"
                                      : "the server lifted the drain: claiming resumes");
            w->server_draining = sdrain;
            pthread_cond_broadcast(&w->cv);
        }
        pthread_mutex_unlock(&w->mu);
        if (poke) sup_poke(w->sup);
    } else if (rc == 0 && r.status == 404) {
        reregister(w, w->hb_http, gen);
    } else if (!(*failing)++) {
        log_warn("worker", "heartbeat failed: %s", rc ? r.errbuf : r.body ? r.body : "?");
    }
    httpc_resp_clear(&r);
    json_decref(ans);
    for (size_t k = 0; k < n; k++)
        free(refs[k].io_dir);
    free(refs);
}

static void *hb_main(void *arg)
{
    worker_t *w = arg;
    int failing = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int64_t hb = w->hb_ms;
        int stop = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (stop) break;
        nap(w, hb, NULL, &w->stopping);
        pthread_mutex_lock(&w->mu);
        stop = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (stop || atomic_load(&w->aborting)) break;
        heartbeat_once(w, &failing);
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

/* "a, b" -> ["a","b"]. */
static json_t *parse_queues(const char *s)
{
    json_t *arr = json_array();
    char *copy = xstrdup(s && *s ? s : "default");
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            t[--n] = '\0';
        if (n) json_array_append_new(arr, json_string(t));
    }
    free(copy);
    if (json_array_size(arr) == 0) json_array_append_new(arr, json_string("default"));
    return arr;
}

/* "k=v,k2=v2" -> {"k":"v","k2":"v2"}; NULL when malformed. */
static json_t *parse_labels(const char *s)
{
    json_t *obj = json_object();
    char *copy = xstrdup(s ? s : "");
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char *eq = strchr(t, '=');
        if (!eq || eq == t) {
            json_decref(obj);
            obj = NULL;
            break;
        }
        *eq = '\0';
        json_object_set_new(obj, t, json_string(eq + 1));
    }
    free(copy);
    return obj;
}

static void worker_free(worker_t *w)
{
    if (!w) return;
    sup_free(w->sup);
    spawn_watcher_stop(&w->watcher);
    for (int i = 0; i <= w->nshards; i++) {
        httpc_free(w->shards[i].http);
        pthread_mutex_destroy(&w->shards[i].mu);
        pthread_cond_destroy(&w->shards[i].cv);
    }
    while (w->held) {
        attempt_t *a = w->held;
        w->held = a->next;
        attempt_free(a);
    }
    httpc_free(w->claim_http);
    httpc_free(w->hb_http);
    json_decref(w->queues);
    json_decref(w->labels);
    spawn_user_clear(&w->user);
    plugin_set_clear(&w->plugins);
    spawn_env_free(w->env_base);
    free(w->work_dir);
    free(w->io_base);
    free(w->servers);
    free(w->token);
    free(w->name);
    free(w->host);
    pthread_mutex_destroy(&w->reg_mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* One limit from the config: 0 = dflt (0 = none), WORKER_LIMIT_OFF = none. */
static int add_limit(worker_t *w, int resource, int64_t v, int64_t dflt, const char *what)
{
    if (v == 0) v = dflt;
    if (v <= 0) return 0;
    if (spawn_limits_add(&w->limits, resource, (rlim_t)v) < 0) return SKED_EINVAL;
    log_debug("worker", "jobs get %s %lld", what, (long long)v);
    return 0;
}

/* Resolves who jobs run as, their limits, work directory and base
 * environment (everything the children need, so they need not look it
 * up). Logs and returns an error when the setup is refused. */
/* Where plugin attempts' result directories go: /dev/shm (tmpfs) when the
 * worker may make its base there. A plugin attempt's result and checkpoint
 * files are written by its host, which holds them to --result-max and
 * --checkpoint-max, so they fit in memory; making and removing a directory
 * per attempt on a disk file system was most of a worker's CPU per plugin
 * run (on this VM's ext4: 427 µs a run, 140 on tmpfs; bench/burst.c). A
 * shell job's stay under the work directory: it writes its files itself,
 * of any size. */
static void io_base_init(worker_t *w)
{
    char err[512];
    char *base = geteuid() == 0 ? xstrdup("/dev/shm/sked-io")
                                : xasprintf("/dev/shm/sked-io-%u", (unsigned)geteuid());
    if (access("/dev/shm", W_OK) == 0 && spawn_workdir_init(base, err, sizeof err) == 0) {
        w->io_base = base;
        return;
    }
    log_debug("worker", "plugin attempts' result files go under the work directory: %s",
              access("/dev/shm", W_OK) ? "no writable /dev/shm" : err);
    free(base);
}

static int isolation_init(worker_t *w, const worker_config_t *cfg)
{
    char err[512] = "";
    int rc = spawn_user_lookup(cfg->run_as && *cfg->run_as ? cfg->run_as : NULL, &w->user, err,
                               sizeof err);
    if (rc < 0) {
        log_error("worker", "--run-as: %s", err);
        return rc;
    }
    if (w->user.switch_ids && geteuid() != 0) {
        log_error("worker",
                  "running jobs as '%s' needs a worker started as root (this one runs as uid %u)",
                  cfg->run_as, (unsigned)geteuid());
        return SKED_EINVAL;
    }
    if (w->user.cred.uid == 0 && !cfg->allow_root) {
        if (cfg->run_as && *cfg->run_as) {
            log_error("worker",
                      "refusing to run jobs as root ('%s'); give --allow-root if you "
                      "really mean it",
                      cfg->run_as);
            return SKED_EINVAL;
        }
        /* No run_as on a root worker: `sked worker` refuses this itself;
         * the in-process worker of `sked dev` runs jobs as its invoker. */
        log_warn("worker", "jobs run as root, the user this worker runs as");
    }
    if ((rc = add_limit(w, RLIMIT_CPU, cfg->limit_cpu_s, 0, "RLIMIT_CPU")) < 0 ||
        (rc = add_limit(w, RLIMIT_AS, cfg->limit_as_bytes, 0, "RLIMIT_AS")) < 0 ||
        (rc = add_limit(w, RLIMIT_NOFILE, cfg->limit_nofile, 1024, "RLIMIT_NOFILE")) < 0 ||
        (rc = add_limit(w, RLIMIT_NPROC, cfg->limit_nproc, w->user.switch_ids ? 512 : 0,
                        "RLIMIT_NPROC")) < 0)
        return rc;
    if (cfg->work_dir && *cfg->work_dir) {
        w->work_dir = xstrdup(cfg->work_dir);
    } else {
        /* Per user when not root: the base must belong to the worker's
         * user, and two people's `sked dev` may share a machine's /tmp. */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || *tmp != '/') tmp = "/tmp";
        w->work_dir = geteuid() == 0 ? xasprintf("%s/sked-work", tmp)
                                     : xasprintf("%s/sked-work-%u", tmp, (unsigned)geteuid());
    }
    if ((rc = spawn_workdir_init(w->work_dir, err, sizeof err)) < 0) {
        log_error("worker", "work directory: %s", err);
        return rc;
    }
    io_base_init(w);
    w->env_base = spawn_env_base(&w->user);
    w->iso.cred = w->user.switch_ids ? &w->user.cred : NULL;
    w->iso.limits = w->limits.n ? &w->limits : NULL;
    w->iso.work_dir = w->work_dir;
    log_info("worker", "jobs run as %s (uid %u, gid %u) in fresh directories under %s%s%s",
             w->user.name, (unsigned)w->user.cred.uid, (unsigned)w->user.cred.gid, w->work_dir,
             w->io_base ? "; plugin attempts' result files under " : "",
             w->io_base ? w->io_base : "");
    return 0;
}

int worker_start(const worker_config_t *cfg, worker_t **out)
{
    int rc = 0;
    worker_t *w = NULL;
    *out = NULL;
    if (!cfg || !cfg->servers || !*cfg->servers || cfg->slots < 0) return SKED_EINVAL;

    w = xcalloc(1, sizeof *w);
    w->watcher.pid = -1;
    w->watcher.fd = -1;
    pthread_mutex_init(&w->reg_mu, NULL);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&w->draining, 0);
    atomic_init(&w->claim_abort, 0);
    atomic_init(&w->aborting, 0);

    w->servers = xstrdup(cfg->servers);
    w->token = xstrdup(cfg->token);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    w->host = xstrdup(host);
    w->name =
        cfg->name && *cfg->name ? xstrdup(cfg->name) : xasprintf("%s-%d", host, (int)getpid());
    w->slots = cfg->slots > 0 ? cfg->slots : 4;
    w->free_slots = w->slots;
    w->kill_grace_ms = cfg->kill_grace_ms > 0 ? cfg->kill_grace_ms : 5000;
    w->queues = parse_queues(cfg->queues);
    w->labels = parse_labels(cfg->labels);
    if (!w->labels) {
        log_error("worker", "labels must look like k=v,k2=v2: '%s'", cfg->labels);
        rc = SKED_EINVAL;
        goto out;
    }
    w->lease_ms = 30000;
    w->hb_ms = 5000;
    if (cfg->result_max_bytes < 0 || cfg->result_max_bytes > RESULTS_MAX_BYTES ||
        cfg->checkpoint_max_bytes < 0 || cfg->checkpoint_max_bytes > RESULTS_MAX_BYTES) {
        log_error("worker", "the result and checkpoint caps are at most %d bytes",
                  RESULTS_MAX_BYTES);
        rc = SKED_EINVAL;
        goto out;
    }
    w->result_max = cfg->result_max_bytes ? (size_t)cfg->result_max_bytes : RESULTS_DEFAULT_BYTES;
    w->checkpoint_max =
        cfg->checkpoint_max_bytes ? (size_t)cfg->checkpoint_max_bytes : RESULTS_DEFAULT_BYTES;
    if ((rc = isolation_init(w, cfg)) < 0) goto out;
    /* A bad --http-allow would fail every http host at start: say so now.
     * (The list checked here is the worker's own copy; the hosts get the
     * text and set theirs.) */
    char allow_err[256];
    if (http_job_allow(cfg->http_allow, allow_err, sizeof allow_err) < 0) {
        log_error("worker", "%s", allow_err);
        rc = SKED_EINVAL;
        goto out;
    }
    plugin_set_config_t pc = {.dir = cfg->plugin_dir,
                              .http_allow = cfg->http_allow,
                              .result_max = w->result_max,
                              .checkpoint_max = w->checkpoint_max,
                              .envp = w->env_base,
                              .hang_ms = cfg->plugin_hang_ms};
    if ((rc = plugin_set_load(&w->plugins, &pc)) < 0) goto out;
    w->iso.plugins = &w->plugins.sup;

    /* A write to a dead watcher (or a closed socket) must be an error
     * return, not the end of the worker. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);

    w->claim_http = httpc_new(w->servers, w->token);
    w->hb_http = httpc_new(w->servers, w->token);
    if (!w->claim_http || !w->hb_http) {
        rc = SKED_ENOMEM;
        goto out;
    }
    httpc_set_timeout_ms(w->claim_http, CLAIM_TIMEOUT_MS);
    httpc_set_abort(w->claim_http, &w->claim_abort);

    long status = 0;
    int64_t deadline = clock_mono_ns() + REGISTER_PATIENCE_MS * 1000000LL, delay = 0;
    for (;;) {
        rc = do_register(w, w->hb_http, 0, &status);
        if (rc == 0 || (status && status < 500) || clock_mono_ns() > deadline) break;
        delay = backoff_next(delay);
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000};
        nanosleep(&ts, NULL); /* no thread of ours runs yet: nothing to wait on */
    }
    if (rc < 0) goto out;
    httpc_set_timeout_ms(w->hb_http, w->hb_ms * 2 > 10000 ? w->hb_ms * 2 : 10000);

    /* Before our threads exist, so the watcher inherits as little as
     * possible (it closes the rest anyway). */
    rc = spawn_watcher_start(&w->watcher);
    if (rc < 0) {
        log_error("worker", "cannot start the orphan watcher: %s", strerror(-rc));
        goto out;
    }
    rc = sup_new(&sup_ops, w, w->kill_grace_ms, &w->watcher, &w->iso, &w->sup);
    if (rc < 0) goto out;
    sup_set_lease(w->sup, w->lease_ms, w->hb_ms);

    w->nshards = w->slots < MAX_SHARDS ? w->slots : MAX_SHARDS;
    for (int i = 0; i <= w->nshards; i++) { /* the completer last */
        struct shard *sh = &w->shards[i];
        sh->w = w;
        pthread_mutex_init(&sh->mu, NULL);
        pthread_cond_init(&sh->cv, NULL);
        sh->http = httpc_new(w->servers, w->token);
        if (!sh->http) {
            rc = SKED_ENOMEM;
            goto out;
        }
        httpc_set_timeout_ms(sh->http, REPORT_TIMEOUT_MS);
        int err = pthread_create(&sh->thread, NULL, shard_main, sh);
        if (err) {
            httpc_free(sh->http);
            sh->http = NULL;
            rc = -err;
            goto out;
        }
    }
    int err = pthread_create(&w->hb_thread, NULL, hb_main, w);
    if (err) {
        rc = -err;
        goto out;
    }
    w->have_hb = 1;
    err = pthread_create(&w->claim_thread, NULL, claim_main, w);
    if (err) {
        rc = -err;
        goto out;
    }
    w->have_claim = 1;
out:
    if (rc < 0) {
        /* Unwind whatever started. */
        atomic_store(&w->draining, 1);
        atomic_store(&w->claim_abort, 1);
        atomic_store(&w->aborting, 1);
        pthread_mutex_lock(&w->mu);
        w->stopping = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (w->have_claim) pthread_join(w->claim_thread, NULL);
        if (w->have_hb) pthread_join(w->hb_thread, NULL);
        for (int i = 0; i <= w->nshards; i++) { /* the completer last */
            struct shard *sh = &w->shards[i];
            if (!sh->http) continue;
            pthread_mutex_lock(&sh->mu);
            sh->quit = 1;
            pthread_cond_signal(&sh->cv);
            pthread_mutex_unlock(&sh->mu);
            pthread_join(sh->thread, NULL);
        }
        worker_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void worker__get_id(worker_t *w, char out[SKED_ID_LEN])
{
    pthread_mutex_lock(&w->mu);
    memcpy(out, w->id, SKED_ID_LEN);
    pthread_mutex_unlock(&w->mu);
}

void worker__drain(worker_t *w)
{
    if (!w) return;
    atomic_store(&w->draining, 1);
    broadcast(w);
}

void worker__abort(worker_t *w)
{
    if (!w) return;
    atomic_store(&w->draining, 1);
    atomic_store(&w->claim_abort, 1);
    atomic_store(&w->aborting, 1);
    sup_kill_all(w->sup);
    broadcast(w);
}

/* Tells the server we drain, so it hands us nothing more: in particular
 * not to the long-poll claim it may still hold parked for us (a claim
 * aborted on our side stays parked on the server until its wait ends, and
 * whatever it claimed then would sit leased to a gone worker until the
 * lease lapsed). Returns 1 when the server knows. */
static int drain_on_server(worker_t *w)
{
    char id[SKED_ID_LEN], path[128];
    worker__get_id(w, id);
    snprintf(path, sizeof path, "/v1/workers/%s/drain", id);
    httpc_t *h = httpc_new(w->servers, w->token);
    if (!h) return 0;
    httpc_set_timeout_ms(h, 5000);
    httpc_resp_t r;
    int rc = httpc_do(h, "POST", path, NULL, NULL, 0, NULL, &r);
    int ok = rc == 0 && ((r.status >= 200 && r.status < 300) || r.status == 404);
    if (!ok)
        log_warn("worker",
                 "could not mark this worker draining on the server (%s); letting the "
                 "claim in flight finish instead",
                 rc       ? r.errbuf
                 : r.body ? r.body
                          : "?");
    httpc_resp_clear(&r);
    httpc_free(h);
    return ok;
}

void worker_stop(worker_t *w)
{
    if (!w) return;
    worker__drain(w);
    /* Abort the waiting claim only once the server will not fill it;
     * otherwise let it end by itself (at most the long-poll wait) and run
     * what it brings: a run is never stranded on us. */
    if (!atomic_load(&w->aborting) && drain_on_server(w)) atomic_store(&w->claim_abort, 1);
    pthread_join(w->claim_thread, NULL);
    int n = sup_active(w->sup);
    if (n) log_info("worker", "draining: waiting for %d running attempt(s)", n);
    /* Held attempts are the ones not yet reported; heartbeats go on
     * renewing their leases meanwhile. */
    pthread_mutex_lock(&w->mu);
    while (w->held || w->starting)
        pthread_cond_wait(&w->cv, &w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->hb_thread, NULL);
    for (int i = 0; i <= w->nshards; i++) { /* the completer last: the others feed it */
        struct shard *sh = &w->shards[i];
        pthread_mutex_lock(&sh->mu);
        sh->quit = 1;
        pthread_cond_signal(&sh->cv);
        pthread_mutex_unlock(&sh->mu);
        pthread_join(sh->thread, NULL);
    }
    log_info("worker", "stopped");
    worker_free(w);
}
