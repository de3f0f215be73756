/* The alerter's loops; see alerter.h. */
#include "server/alerter.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/alert.h"
#include "core/backoff.h"
#include "server/metrics.h"

#define DELIVERERS      2     /* threads sending at once: a slow receiver holds up one */
#define CLAIM_MAX       8     /* notices one deliverer claims at a time */
#define SEND_TIMEOUT_MS 10000 /* one send, whatever the channel */
/* A claim outlives any send of its batch, so a live deliverer's notice is
 * never taken by another server; a dead one's comes back after it. */
#define CLAIM_LEASE_MS (CLAIM_MAX * SEND_TIMEOUT_MS + 30000)
#define SWEEP_EVERY_MS 1000
#define NAP_MAX_MS     5000 /* deliverers look again at least this often */
/* ... and, between them, at most once per this: every commit that changes
 * a run (on any server) kicks the alerter, since the store's notify hook
 * cannot tell the ones that queued a notice, and a look is two
 * transactions. Looking at every kick was two thirds of the database's
 * transactions per job (bench/README.md, "PostgreSQL cost per job"). A
 * notice waits this much longer at worst. */
#define KICK_GAP_MS    250
#define RETRY_FIRST_MS 1000

struct alerter {
    store_t *st;
    const server_config_t *cfg;
    const alert_smtp_t *smtp;
    char owner[64]; /* this server's name on the outbox claims */
    pthread_mutex_t mu;
    pthread_cond_t cond;   /* on CLOCK_MONOTONIC: stop */
    pthread_cond_t kicked; /* on CLOCK_MONOTONIC: stop, or a kick for one deliverer */
    bool stop;
    unsigned kicks;       /* bumped by alerter_kick */
    int64_t last_look_ns; /* a deliverer's last look at the outbox (mono) */
    pthread_t thr[DELIVERERS + 1];
    int nthr;
};

/* ---- rendering ------------------------------------------------------------------ */

static json_t *time_or_null(int64_t ms)
{
    char t[SKED_RFC3339_LEN];
    if (ms < 0) return json_null();
    clock_format_rfc3339(ms, t, sizeof t);
    return json_string(t);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *alerter_alert_json(const store_alert_t *a)
{
    const char *kind = a->cond == ALERT_WORKER_LOST ? "worker"
                       : a->cond == ALERT_BACKLOG   ? "queue"
                                                    : "job";
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "condition", json_string(alert_cond_name(a->cond)));
    json_object_set_new(o, "state", json_string(a->state == ALERT_OPEN ? "open" : "resolved"));
    json_object_set_new(o, "rule_id", json_string(a->rule_id));
    json_object_set_new(o, "subject",
                        json_pack("{s:s, s:s, s:s}", "kind", kind, "id",
                                  a->subject ? a->subject : "", "name", a->name ? a->name : ""));
    json_object_set_new(o, "job_id", str_or_null(a->job_id));
    json_object_set_new(o, "namespace", str_or_null(a->ns));
    json_object_set_new(o, "run_id", str_or_null(a->run_id));
    json_object_set_new(o, "detail", json_string(a->detail ? a->detail : ""));
    json_object_set_new(o, "resolve_detail", str_or_null(a->resolve_detail));
    json_object_set_new(o, "opened_at", time_or_null(a->opened_ms));
    json_object_set_new(o, "resolved_at", time_or_null(a->resolved_ms));
    json_object_set_new(o, "acked_by", str_or_null(a->acked_by));
    json_object_set_new(o, "acked_at", time_or_null(a->acked_ms));
    return o;
}

/* ---- delivery ------------------------------------------------------------------- */

/* Counts a delivery attempt that ended, per channel (GET /metrics). */
static void count_delivery(alert_channel_kind_t kind, bool ok)
{
    metrics_alert_sent(alert_channel_kind_name(kind), ok);
}

/* When the next try of a notice tried `tries` times (this one included)
 * is due, or -1 when there is to be none. */
static int64_t retry_at(const server_config_t *cfg, int tries, int rc, int64_t now_ms)
{
    int max_tries = cfg && cfg->alert_tries > 0 ? cfg->alert_tries : ALERTER_DEFAULT_TRIES;
    int64_t cap =
        cfg && cfg->alert_retry_max_ms > 0 ? cfg->alert_retry_max_ms : ALERTER_DEFAULT_RETRY_MAX;
    /* Refused as given (no relay, a bad address): trying again changes
     * nothing. */
    if (rc == SKED_EINVAL || tries >= max_tries) return -1;
    retry_policy_t p = {max_tries, RETRY_FIRST_MS < cap ? RETRY_FIRST_MS : cap, cap, 2.0, true};
    /* Full jitter, but never sooner than a tenth of the delay: a receiver
     * that is down is not hammered. */
    double unit = 0.1 + 0.9 * ((double)randombytes_uniform(1u << 30) / (double)(1u << 30));
    return now_ms + backoff_delay_ms(&p, tries + 1, unit);
}

/* Sends one claimed notice and settles it. Returns 0 or a store error. */
static int deliver_one(store_t *st, const server_config_t *cfg, const alert_smtp_t *smtp,
                       const store_outbox_item_t *it)
{
    alert_notice_t n = {it->alert.id,
                        it->alert.cond,
                        it->d.event,
                        it->alert.name,
                        it->alert.run_id,
                        it->alert.detail,
                        it->alert.resolve_detail,
                        it->alert.opened_ms,
                        it->alert.resolved_ms};
    char *subject = alert_subject(&n), *text = alert_text(&n);
    json_t *doc = alerter_alert_json(&it->alert);
    json_object_set_new(doc, "event",
                        json_string(it->d.event == ALERT_EV_OPENED ? "opened" : "resolved"));
    char *body = json_dumps(doc, JSON_COMPACT);
    /* The delivery id, stable across tries: "<alert>:o0" -> "<alert>.o0". */
    char delivery[SKED_ID_LEN];
    snprintf(delivery, sizeof delivery, "%s", it->d.id);
    for (char *c = delivery; *c; c++)
        if (*c == ':') *c = '.';
    alert_message_t msg = {subject, text, body, delivery};
    alert_channel_t ch = {it->d.kind, NULL, NULL, NULL};
    if (it->d.kind == ALERT_CHANNEL_EMAIL)
        ch.to = it->d.target;
    else
        ch.url = it->d.target;
    ch.secret = it->d.kind == ALERT_CHANNEL_WEBHOOK && *it->secret ? it->secret : NULL;

    char err[256] = "";
    int rc = alert_send(&ch, smtp, &msg, SEND_TIMEOUT_MS, err);
    count_delivery(it->d.kind, rc == 0);
    int64_t now = store_now_ms(st);
    int64_t again = rc == 0 ? -1 : retry_at(cfg, it->d.tries + 1, rc, now);
    int src = store_outbox_settle(st, it->d.id, it->claim, rc == 0, err, again, now);
    if (rc == 0)
        log_info("alerts", "%s notice of alert %s (%s) sent by %s",
                 it->d.event == ALERT_EV_OPENED ? "opened" : "resolved", it->alert.id,
                 alert_cond_name(it->alert.cond), alert_channel_kind_name(it->d.kind));
    else if (again < 0)
        log_warn("alerts", "notice %s of alert %s by %s failed for good after %d tries: %s",
                 it->d.id, it->alert.id, alert_channel_kind_name(it->d.kind), it->d.tries + 1, err);
    else
        log_info("alerts", "notice %s of alert %s by %s failed (%s); trying again", it->d.id,
                 it->alert.id, alert_channel_kind_name(it->d.kind), err);
    if (src == SKED_ESTALE)
        log_warn("alerts", "notice %s: the claim expired during the send; another server has it",
                 it->d.id);
    free(body);
    json_decref(doc);
    free(subject);
    free(text);
    return src == SKED_ESTALE ? 0 : src;
}

int alerter_deliver(store_t *st, const server_config_t *cfg, const alert_smtp_t *smtp,
                    const char *owner, int max, int64_t now_ms)
{
    store_outbox_item_t *v = NULL;
    size_t n = 0;
    int rc = store_outbox_claim(st, owner, max, CLAIM_LEASE_MS, now_ms, &v, &n);
    if (rc < 0) return rc;
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        int r = deliver_one(st, cfg, smtp, &v[i]);
        if (r < 0 && rc == 0) rc = r;
        if (r == 0) done++;
        store_outbox_item_clear(&v[i]);
    }
    free(v);
    return rc < 0 ? rc : done;
}

/* ---- the loops ------------------------------------------------------------------ */

static bool stopping(alerter_t *a)
{
    pthread_mutex_lock(&a->mu);
    bool stop = a->stop;
    pthread_mutex_unlock(&a->mu);
    return stop;
}

/* Sleeps delay_ms, or until stopped, or (seen != NULL) until a kick after
 * *seen; a kick wakes one deliverer waiting for one. */
static void nap(alerter_t *a, int64_t delay_ms, unsigned *seen)
{
    if (delay_ms < 0) delay_ms = 0;
    int64_t deadline_ns = clock_mono_ns() + delay_ms * 1000000;
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    pthread_mutex_lock(&a->mu);
    while (!a->stop && !(seen && a->kicks != *seen))
        if (pthread_cond_timedwait(seen ? &a->kicked : &a->cond, &a->mu, &ts) == ETIMEDOUT) break;
    if (seen) *seen = a->kicks;
    pthread_mutex_unlock(&a->mu);
}

/* 0 when a deliverer may look at the outbox now (and the look is
 * recorded), else the ms to wait: the deliverers look at most once per
 * KICK_GAP_MS between them, unless the last look found a full batch. */
static int64_t look_wait_ms(alerter_t *a, bool more)
{
    int64_t now = clock_mono_ns(), wait = 0;
    pthread_mutex_lock(&a->mu);
    int64_t since_ms = (now - a->last_look_ns) / 1000000;
    if (!more && a->last_look_ns && since_ms < KICK_GAP_MS)
        wait = KICK_GAP_MS - since_ms;
    else
        a->last_look_ns = now;
    pthread_mutex_unlock(&a->mu);
    return wait;
}

static void *deliver_loop(void *arg)
{
    alerter_t *a = arg;
    unsigned seen = 0;
    int last_rc = 0;
    bool more = false;
    while (!stopping(a)) {
        int64_t wait = look_wait_ms(a, more);
        if (wait > 0) {
            nap(a, wait, NULL);
            continue;
        }
        nap(a, 0, &seen); /* this look answers every kick so far */
        int rc = alerter_deliver(a->st, a->cfg, a->smtp, a->owner, CLAIM_MAX, store_now_ms(a->st));
        if (rc < 0 && rc != last_rc)
            log_warn("alerts", "delivering alerts failed: %s; retrying", sked_strerror(rc));
        last_rc = rc < 0 ? rc : 0;
        more = rc == CLAIM_MAX;
        if (more) continue; /* more may be due */
        int64_t delay = NAP_MAX_MS, next = -1;
        if (rc >= 0 && store_outbox_next_due_ms(a->st, &next) == 0 && next >= 0) {
            int64_t d = next - store_now_ms(a->st);
            if (d < delay) delay = d > 0 ? d : 50; /* due but claimed elsewhere: not a spin */
        }
        nap(a, delay, &seen);
    }
    return NULL;
}

static void *sweep_loop(void *arg)
{
    alerter_t *a = arg;
    int last_rc = 0;
    while (!stopping(a)) {
        int changed = 0;
        int rc = store_alert_sweep(a->st, store_now_ms(a->st), &changed);
        if (rc < 0 && rc != last_rc)
            log_warn("alerts", "evaluating alert conditions failed: %s; retrying",
                     sked_strerror(rc));
        else if (changed > 0)
            log_info("alerts", "%d alerts opened or resolved", changed);
        last_rc = rc < 0 ? rc : 0;
        nap(a, SWEEP_EVERY_MS, NULL);
    }
    return NULL;
}

alerter_t *alerter_new(store_t *st, const server_config_t *cfg, const alert_smtp_t *smtp)
{
    alerter_t *a = xcalloc(1, sizeof *a);
    pthread_condattr_t ca;
    char rnd[SKED_ID_LEN];
    a->st = st;
    a->cfg = cfg;
    a->smtp = smtp;
    id_new("srv", clock_now_ms(), rnd);
    snprintf(a->owner, sizeof a->owner, "%d.%s", (int)getpid(), rnd);
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_cond_init(&a->kicked, &ca);
    pthread_condattr_destroy(&ca);
    return a;
}

int alerter_start(alerter_t *a)
{
    for (int i = 0; i < DELIVERERS + 1; i++) {
        int e = pthread_create(&a->thr[i], NULL, i == 0 ? sweep_loop : deliver_loop, a);
        if (e != 0) {
            log_error("alerts", "cannot start the alerter: %s", strerror(e));
            return -e;
        }
        a->nthr++;
    }
    return 0;
}

void alerter_kick(alerter_t *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->kicks++;
    /* One deliverer looks; it answers every kick before its look. */
    pthread_cond_signal(&a->kicked);
    pthread_mutex_unlock(&a->mu);
}

void alerter_stop(alerter_t *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cond);
    pthread_cond_broadcast(&a->kicked);
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; i < a->nthr; i++)
        pthread_join(a->thr[i], NULL);
    pthread_cond_destroy(&a->cond);
    pthread_cond_destroy(&a->kicked);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
