/*
 * Alert rule documents: parsing and validation of global rules and of a
 * job's "alerts", and their canonical JSON. See alertspec.h. The field
 * validators are jobspec.c's own (jobspec_int.h), so a rule is refused in
 * the same words and limits as the job document it may sit in.
 */
#include "core/alertspec.h"
#include "core/jobspec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/duration.h"

#define FACTOR_MAX  100.0
#define SAMPLES_MAX ALERT_OVERRUN_SAMPLES
#define DEPTH_MAX   1000000000

/* The parameter keys, and which condition each belongs to. */
static const struct {
    const char *key;
    alert_cond_t cond;
} param_keys[] = {
    {"overrun_factor", ALERT_OVERRUN}, {"overrun_min_samples", ALERT_OVERRUN},
    {"missed_window", ALERT_MISSED},   {"backlog_depth", ALERT_BACKLOG},
    {"backlog_for", ALERT_BACKLOG},
};
#define NPARAMS (sizeof param_keys / sizeof *param_keys)

/* ---- parsing ------------------------------------------------------------ */

/* A channel URL: http(s)://, a host, no spaces or control characters. */
static int check_url(const char *s, const char *field, jobspec_error_t *err)
{
    const char *host = !strncmp(s, "https://", 8)  ? s + 8
                       : !strncmp(s, "http://", 7) ? s + 7
                                                   : NULL;
    if (!host) return jobspec__fail(err, field, "must be an http:// or https:// URL");
    if (!*host || *host == '/' || *host == ':')
        return jobspec__fail(err, field, "must name a host after the scheme");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return jobspec__fail(err, field, "must not contain spaces or control characters");
    return 0;
}

/* One address: local@domain, printable ASCII without the characters that
 * would let it break out of a header or an address list. */
static bool address_ok(const char *a, size_t len)
{
    const char *at = memchr(a, '@', len);
    if (len < 3 || len > 254 || !at || at == a || at == a + len - 1) return false;
    if (memchr(at + 1, '@', len - (size_t)(at + 1 - a))) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c)) return false;
    }
    return true;
}

/* "a@x, b@y" -> "a@x,b@y" (new in *out). */
static int parse_recipients(const char *s, const char *field, char **out, jobspec_error_t *err)
{
    buf_t b = BUF_INIT;
    size_t n = 0;
    for (const char *p = s;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t trim = len;
        while (trim > 0 && p[trim - 1] == ' ')
            trim--;
        if (!address_ok(p, trim)) {
            buf_free(&b);
            return jobspec__fail(err, field,
                                 "must be e-mail addresses such as \"ops@example.com\", "
                                 "separated by commas");
        }
        if (++n > ALERT_RECIPIENTS) {
            buf_free(&b);
            return jobspec__fail(err, field, "must have at most %d recipients", ALERT_RECIPIENTS);
        }
        buf_printf(&b, "%s%.*s", b.len ? "," : "", (int)trim, p);
        p += len;
        if (!*p) break;
        p++;
    }
    *out = buf_steal(&b);
    return 0;
}

/* The channel members of obj (prefix: "channels[0]." or "alerts[0].");
 * exactly one of webhook, slack, email, and a secret only with a webhook. */
static int parse_channel(const json_t *obj, const char *prefix, alert_channel_spec_t *out,
                         jobspec_error_t *err)
{
    char field[sizeof err->field], base[sizeof err->field];
    const char *s = NULL;
    int found = 0, rc;
    jobspec__strf(base, sizeof base, "%.*s", (int)strlen(prefix) - 1, prefix);
    for (int k = 0; k < 3; k++) {
        const json_t *v = jobspec__opt(obj, alert_channel_kind_name((alert_channel_kind_t)k));
        if (!v) continue;
        found++;
        out->kind = (alert_channel_kind_t)k;
        jobspec__strf(field, sizeof field, "%s%s", prefix,
                      alert_channel_kind_name((alert_channel_kind_t)k));
        if ((rc = jobspec__get_string(v, field, 1, ALERT_TARGET_MAX, &s, err))) return rc;
    }
    if (found != 1)
        return jobspec__fail(err, base,
                             "must have exactly one of \"webhook\", \"slack\" or \"email\"");
    if (out->kind == ALERT_CHANNEL_EMAIL) {
        if ((rc = parse_recipients(s, field, &out->target, err))) return rc;
    } else {
        if ((rc = check_url(s, field, err))) return rc;
        out->target = xstrdup(s);
    }
    const json_t *sv = jobspec__opt(obj, "secret");
    if (!sv) return 0;
    jobspec__strf(field, sizeof field, "%ssecret", prefix);
    if (out->kind != ALERT_CHANNEL_WEBHOOK)
        return jobspec__fail(err, field,
                             "only a webhook takes a secret (it signs the body: "
                             "X-Sked-Signature)");
    if ((rc = jobspec__get_string(sv, field, 1, ALERT_SECRET_MAX, &s, err))) return rc;
    if (!strcmp(s, JOBSPEC_SECRET_MASK))
        return jobspec__fail(err, field,
                             "\"%s\" is how sked shows a secret; send the real value (sent back "
                             "unchanged, with the same webhook URL, it keeps the stored one)",
                             JOBSPEC_SECRET_MASK);
    out->secret = xstrdup(s);
    return 0;
}

/* "on": a non-empty array of distinct condition names, each in allowed. */
static int parse_on(const json_t *v, const char *prefix, unsigned allowed, const char *why,
                    unsigned *out, jobspec_error_t *err)
{
    char field[sizeof err->field];
    jobspec__strf(field, sizeof field, "%son", prefix);
    if (!v) return jobspec__fail(err, field, "is required: the conditions to alert on");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return jobspec__fail(err, field,
                             "must be a non-empty array of conditions (failed, retrying, "
                             "sla_missed, overrun, missed, worker_lost, backlog)");
    size_t i;
    const json_t *c;
    *out = 0;
    json_array_foreach(v, i, c)
    {
        alert_cond_t cond;
        jobspec__strf(field, sizeof field, "%son[%zu]", prefix, i);
        if (!json_is_string(c) || alert_cond_parse(json_string_value(c), &cond) != 0)
            return jobspec__fail(err, field,
                                 "must be one of \"failed\", \"retrying\", \"sla_missed\", "
                                 "\"overrun\", \"missed\", \"worker_lost\", \"backlog\"");
        if (!(allowed & ALERT_BIT(cond)))
            return jobspec__fail(err, field, "\"%s\" %s", alert_cond_name(cond), why);
        if (*out & ALERT_BIT(cond))
            return jobspec__fail(err, field, "\"%s\" is listed twice", alert_cond_name(cond));
        *out |= ALERT_BIT(cond);
    }
    return 0;
}

/* The parameters in obj; each only with its condition in conds. */
static int parse_params(const json_t *obj, const char *prefix, unsigned conds, alert_params_t *p,
                        jobspec_error_t *err)
{
    char field[sizeof err->field];
    int rc;
    *p = alert_params_default();
    for (size_t i = 0; i < NPARAMS; i++) {
        const json_t *v = jobspec__opt(obj, param_keys[i].key);
        if (!v) continue;
        jobspec__strf(field, sizeof field, "%s%s", prefix, param_keys[i].key);
        if (!(conds & ALERT_BIT(param_keys[i].cond)))
            return jobspec__fail(err, field, "only applies with \"%s\" in \"on\"",
                                 alert_cond_name(param_keys[i].cond));
        switch (i) {
        case 0:
            if (!json_is_number(v) || !(json_number_value(v) >= 1.0) ||
                json_number_value(v) > FACTOR_MAX)
                return jobspec__fail(err, field, "must be a number from 1 to %g", FACTOR_MAX);
            p->overrun_factor = json_number_value(v);
            break;
        case 1:
            if ((rc = jobspec__get_int(v, field, 1, SAMPLES_MAX, &p->overrun_min_samples, err)))
                return rc;
            break;
        case 2:
            if ((rc = jobspec__get_duration(v, field, &p->missed_window_ms, err))) return rc;
            if (p->missed_window_ms <= 0)
                return jobspec__fail(err, field, "must be greater than 0");
            break;
        case 3:
            if ((rc = jobspec__get_int(v, field, 0, DEPTH_MAX, &p->backlog_depth, err))) return rc;
            break;
        default:
            if ((rc = jobspec__get_duration(v, field, &p->backlog_for_ms, err))) return rc;
            break;
        }
    }
    return 0;
}

static int parse_scope(const json_t *v, alert_rule_spec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {"namespace", "queue", "job", "tag", NULL};
    char **dst[] = {&out->scope_ns, &out->scope_queue, &out->scope_job, &out->scope_tag};
    int rc;
    for (int i = 0; i < 4; i++)
        *dst[i] = xstrdup("");
    if (!v) return 0;
    if (!json_is_object(v))
        return jobspec__fail(err, "scope",
                             "must be an object: {\"namespace\", \"queue\", \"job\", \"tag\"}");
    if ((rc = jobspec__check_keys(v, keys, NULL, "scope.", err))) return rc;
    for (int i = 0; i < 4; i++) {
        const json_t *m = jobspec__opt(v, keys[i]);
        const char *s;
        char field[32];
        if (!m) continue;
        jobspec__strf(field, sizeof field, "scope.%s", keys[i]);
        if ((rc = jobspec__get_label(m, field, ",", &s, err))) return rc;
        free(*dst[i]);
        *dst[i] = xstrdup(s);
    }
    return 0;
}

int alert_rule_parse(const json_t *doc, alert_rule_spec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {"name",           "on",
                                       "scope",          "channels",
                                       "overrun_factor", "overrun_min_samples",
                                       "missed_window",  "backlog_depth",
                                       "backlog_for",    NULL};
    jobspec_error_t scratch;
    const char *s;
    int rc;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    if (!json_is_object(doc)) {
        rc = jobspec__fail(err, "", "an alert rule must be a JSON object");
        goto out;
    }
    if ((rc = jobspec__check_keys(doc, keys, NULL, "", err))) goto out;
    const json_t *v = jobspec__opt(doc, "name");
    if (!v) {
        rc = jobspec__fail(err, "name", "is required");
        goto out;
    }
    if ((rc = jobspec__get_label(v, "name", NULL, &s, err))) goto out;
    out->name = xstrdup(s);
    if ((rc = parse_on(jobspec__opt(doc, "on"), "", ~0u, "", &out->conds, err))) goto out;
    if ((rc = parse_scope(jobspec__opt(doc, "scope"), out, err))) goto out;
    if ((rc = parse_params(doc, "", out->conds, &out->params, err))) goto out;

    const json_t *ch = jobspec__opt(doc, "channels");
    if (!ch || !json_is_array(ch) || json_array_size(ch) == 0 ||
        json_array_size(ch) > ALERT_CHANNELS_MAX) {
        rc = jobspec__fail(err, "channels",
                           "must be an array of 1 to %d channels such as "
                           "{\"webhook\": \"https://...\"}, {\"slack\": \"https://hooks...\"}, "
                           "{\"email\": \"ops@example.com\"}",
                           ALERT_CHANNELS_MAX);
        goto out;
    }
    out->channels = xcalloc(json_array_size(ch), sizeof *out->channels);
    size_t i;
    const json_t *c;
    json_array_foreach(ch, i, c)
    {
        static const char *const ckeys[] = {"webhook", "slack", "email", "secret", NULL};
        char prefix[32];
        jobspec__strf(prefix, sizeof prefix, "channels[%zu].", i);
        if (!json_is_object(c)) {
            rc = jobspec__fail(err, "channels", "each channel must be an object");
            goto out;
        }
        if ((rc = jobspec__check_keys(c, ckeys, NULL, prefix, err))) goto out;
        out->nchannels = i + 1;
        if ((rc = parse_channel(c, prefix, &out->channels[i], err))) goto out;
    }
out:
    if (rc) alert_rule_spec_clear(out);
    return rc;
}

int alert_job_entries_parse(const json_t *v, bool has_sla, bool has_schedules,
                            alert_rule_spec_t **out, size_t *n, jobspec_error_t *err)
{
    static const char *const keys[] = {"on",
                                       "webhook",
                                       "slack",
                                       "email",
                                       "secret",
                                       "overrun_factor",
                                       "overrun_min_samples",
                                       "missed_window",
                                       NULL};
    alert_rule_spec_t *rules = NULL;
    size_t k = 0;
    int rc = 0;
    *out = NULL;
    *n = 0;
    if (!v) return 0;
    if (!json_is_array(v))
        return jobspec__fail(err, "alerts",
                             "must be an array such as [{\"on\": [\"failed\"], \"webhook\": "
                             "\"https://...\"}]");
    if (json_array_size(v) > ALERT_JOB_MAX)
        return jobspec__fail(err, "alerts", "must have at most %d entries", ALERT_JOB_MAX);
    rules = xcalloc(json_array_size(v) + 1, sizeof *rules);
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        char prefix[32], base[32], field[64];
        alert_rule_spec_t *r = &rules[k++];
        jobspec__strf(base, sizeof base, "alerts[%zu]", i);
        jobspec__strf(prefix, sizeof prefix, "%s.", base);
        if (!json_is_object(e)) {
            rc = jobspec__fail(err, base, "must be an object");
            goto out;
        }
        if ((rc = jobspec__check_keys(e, keys, NULL, prefix, err))) goto out;
        if ((rc = parse_on(jobspec__opt(e, "on"), prefix, ALERT_JOB_CONDS,
                           "is about the whole pool, not one job: give it to a global rule "
                           "(POST /v1/alert-rules)",
                           &r->conds, err)))
            goto out;
        size_t ci;
        const json_t *c;
        json_array_foreach(jobspec__opt(e, "on"), ci, c)
        {
            jobspec__strf(field, sizeof field, "%son[%zu]", prefix, ci);
            if (!strcmp(json_string_value(c), "sla_missed") && !has_sla) {
                rc = jobspec__fail(err, field,
                                   "needs the job's \"sla\" (start_within and/or "
                                   "finish_within)");
                goto out;
            }
            if (!strcmp(json_string_value(c), "missed") && !has_schedules) {
                rc = jobspec__fail(err, field,
                                   "needs a schedule: a job that runs once, now, "
                                   "has no fire times to miss");
                goto out;
            }
        }
        r->scope_ns = xstrdup("");
        r->scope_queue = xstrdup("");
        r->scope_job = xstrdup("");
        r->scope_tag = xstrdup("");
        if ((rc = parse_params(e, prefix, r->conds, &r->params, err))) goto out;
        r->channels = xcalloc(1, sizeof *r->channels);
        r->nchannels = 1;
        if ((rc = parse_channel(e, prefix, &r->channels[0], err))) goto out;
    }
    *out = rules;
    *n = k;
    rules = NULL;
out:
    alert_rules_free(rules, k);
    return rc;
}

/* ---- canonical JSON ------------------------------------------------------- */

static json_t *duration_json(int64_t ms)
{
    char text[64];
    duration_format(ms, text, sizeof text);
    return json_string(text);
}

static json_t *on_json(unsigned conds)
{
    json_t *a = json_array();
    for (int c = 0; c < ALERT_COND_COUNT; c++)
        if (conds & ALERT_BIT(c)) json_array_append_new(a, json_string(alert_cond_name(c)));
    return a;
}

/* The parameters of the rule's conditions, each with its value. */
static void params_json(json_t *o, unsigned conds, const alert_params_t *p)
{
    if (conds & ALERT_BIT(ALERT_OVERRUN)) {
        double f = p->overrun_factor;
        json_object_set_new(o, "overrun_factor",
                            f == (double)(json_int_t)f ? json_integer((json_int_t)f)
                                                       : json_real(f));
        json_object_set_new(o, "overrun_min_samples", json_integer(p->overrun_min_samples));
    }
    if (conds & ALERT_BIT(ALERT_MISSED))
        json_object_set_new(o, "missed_window", duration_json(p->missed_window_ms));
    if (conds & ALERT_BIT(ALERT_BACKLOG)) {
        json_object_set_new(o, "backlog_depth", json_integer(p->backlog_depth));
        json_object_set_new(o, "backlog_for", duration_json(p->backlog_for_ms));
    }
}

static void channel_json(json_t *o, const alert_channel_spec_t *c)
{
    json_object_set_new(o, alert_channel_kind_name((alert_channel_kind_t)c->kind),
                        json_string(c->target ? c->target : ""));
    if (c->secret) json_object_set_new(o, "secret", json_string(c->secret));
}

json_t *alert_rule_to_json(const alert_rule_spec_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name ? r->name : ""));
    json_object_set_new(o, "on", on_json(r->conds));
    json_t *scope = json_object();
    const char *keys[] = {"namespace", "queue", "job", "tag"};
    const char *vals[] = {r->scope_ns, r->scope_queue, r->scope_job, r->scope_tag};
    for (int i = 0; i < 4; i++)
        if (vals[i] && *vals[i]) json_object_set_new(scope, keys[i], json_string(vals[i]));
    json_object_set_new(o, "scope", scope);
    json_t *ch = json_array();
    for (size_t i = 0; i < r->nchannels; i++) {
        json_t *c = json_object();
        channel_json(c, &r->channels[i]);
        json_array_append_new(ch, c);
    }
    json_object_set_new(o, "channels", ch);
    params_json(o, r->conds, &r->params);
    return o;
}

json_t *alert_job_entries_to_json(const alert_rule_spec_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "on", on_json(v[i].conds));
        if (v[i].nchannels) channel_json(o, &v[i].channels[0]);
        params_json(o, v[i].conds, &v[i].params);
        json_array_append_new(a, o);
    }
    return a;
}

void alert_redact(json_t *arr)
{
    size_t i;
    json_t *e;
    if (!json_is_array(arr)) return;
    json_array_foreach(arr, i, e)
    {
        if (json_is_object(e) && json_object_get(e, "secret"))
            json_object_set_new(e, "secret", json_string(JOBSPEC_SECRET_MASK));
    }
}

void alert_keep_secrets(json_t *next, const json_t *cur)
{
    size_t i;
    json_t *e;
    if (!json_is_array(next) || !json_is_array(cur)) return;
    json_array_foreach(next, i, e)
    {
        const json_t *s = json_object_get(e, "secret");
        const json_t *c = json_array_get(cur, i);
        if (!json_is_string(s) || strcmp(json_string_value(s), JOBSPEC_SECRET_MASK) != 0) continue;
        const json_t *nu = json_object_get(e, "webhook"), *cu = json_object_get(c, "webhook");
        const json_t *cs = json_object_get(c, "secret");
        if (json_is_string(nu) && json_is_string(cu) && json_is_string(cs) &&
            !strcmp(json_string_value(nu), json_string_value(cu)))
            json_object_set_new(e, "secret", json_string(json_string_value(cs)));
    }
}
