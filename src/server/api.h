/*
 * API handlers, one file per resource: api_jobs.c, api_runs.c,
 * api_workers.c, api_auth.c, api_health.c. Each takes the parsed request and fills the
 * response; see http.h. JSON rendering of store records is shared here so a
 * job or run looks the same wherever it appears.
 */
#ifndef SKED_SERVER_API_H
#define SKED_SERVER_API_H

#include <jansson.h>
#include <stdbool.h>

#include "server/http.h"
#include "store/store.h"

/* api_events.c */
void api_events(http_req_t *req, http_resp_t *resp);

/* api_jobs.c */
void api_jobs_create(http_req_t *req, http_resp_t *resp);
void api_jobs_batch(http_req_t *req, http_resp_t *resp);
void api_jobs_list(http_req_t *req, http_resp_t *resp);
void api_jobs_get(http_req_t *req, http_resp_t *resp);
void api_jobs_patch(http_req_t *req, http_resp_t *resp);
void api_jobs_delete(http_req_t *req, http_resp_t *resp);
void api_jobs_pause(http_req_t *req, http_resp_t *resp);
void api_jobs_resume(http_req_t *req, http_resp_t *resp);
void api_jobs_trigger(http_req_t *req, http_resp_t *resp);
void api_jobs_preview(http_req_t *req, http_resp_t *resp);
void api_jobs_misses(http_req_t *req, http_resp_t *resp);
void api_schedules_preview(http_req_t *req, http_resp_t *resp);
void api_jobs_explain(http_req_t *req, http_resp_t *resp);

/* The jobs API's access check, shared by resources that belong to a job
 * (alerts): whether the caller may see (write = false) or change (write =
 * true) job id; on false resp holds the answer (404 for a job out of the
 * caller's namespaces, 403 for one it may see but not change). *ns_out
 * (may be NULL): the job's namespace when it was read (new; caller frees). */
bool api_job_access(http_req_t *req, http_resp_t *resp, const char *id, bool write, char **ns_out);
/* Shared by the jobs and workflows APIs (api_jobs.c): a job service call
 * for req; a refusal of a document or of the service answered with the
 * field it names (else the part of the request rc is about); the ETag of
 * a version; id, next_fire_at and last_fire_at added to each schedule of
 * a document's "schedules" array from the stored ones. */
struct jobsvc_call;
struct jobspec_error;
struct jobsvc_call api_jobsvc_call(http_req_t *req);
void api_job_fail(http_resp_t *resp, int rc, const struct jobspec_error *err);
void api_set_etag(http_resp_t *resp, int64_t version);
void api_enrich_schedules(json_t *arr, const store_schedule_t *scheds, size_t n);
/* An idempotent repeat of a create (the store's SKED_EEXIST) names id, the
 * job first created with that key: true when it is of kind (a job for
 * POST /v1/jobs, a workflow for POST /v1/workflows); else the key was
 * used for the other kind, and resp holds a 409 naming the header. */
bool api_idem_repeat_ok(http_req_t *req, http_resp_t *resp, const char *id, job_kind_t kind);
/* Shared by the create and list handlers of jobs and workflows
 * (api_jobs.c): the start of a create, and a list of one kind of job,
 * each item rendered (with its schedules) by render. */
json_t *api__create_body(http_req_t *req, http_resp_t *resp, const char **idem, char *nsbuf,
                         size_t nslen);
typedef json_t *(*api_job_render_fn)(const store_job_t *job, const store_schedule_t *scheds,
                                     size_t n);
void api__job_list(http_req_t *req, http_resp_t *resp, job_kind_t kind, api_job_render_fn render);
/* Whether the caller may see (write = false) or change run id (as its
 * job); on false resp holds the answer. *ns_out as api_job_access. */
bool api_run_access(http_req_t *req, http_resp_t *resp, const char *id, bool write, char **ns_out);

/* An If-Match value ("3", "\"3\"", W/ tolerated, "*" = 0: any) as a
 * version. 0 or SKED_EINVAL. */
int api_if_match(const char *s, int64_t *out);

/* api_alerts.c: global alert rules (admin) and alerts */
void api_alert_rules_create(http_req_t *req, http_resp_t *resp);
void api_alert_rules_list(http_req_t *req, http_resp_t *resp);
void api_alert_rules_get(http_req_t *req, http_resp_t *resp);
void api_alert_rules_put(http_req_t *req, http_resp_t *resp);
void api_alert_rules_delete(http_req_t *req, http_resp_t *resp);
void api_alerts_list(http_req_t *req, http_resp_t *resp);
void api_alerts_get(http_req_t *req, http_resp_t *resp);
void api_alerts_ack(http_req_t *req, http_resp_t *resp);

/* api_workflows.c: workflows and their runs */
void api_workflows_create(http_req_t *req, http_resp_t *resp);
void api_workflows_list(http_req_t *req, http_resp_t *resp);
void api_workflows_get(http_req_t *req, http_resp_t *resp);
void api_workflows_put(http_req_t *req, http_resp_t *resp);
void api_workflows_delete(http_req_t *req, http_resp_t *resp);
void api_workflows_pause(http_req_t *req, http_resp_t *resp);
void api_workflows_resume(http_req_t *req, http_resp_t *resp);
void api_workflows_trigger(http_req_t *req, http_resp_t *resp);
void api_workflows_runs(http_req_t *req, http_resp_t *resp);
void api_workflow_runs_get(http_req_t *req, http_resp_t *resp);
void api_workflow_runs_cancel(http_req_t *req, http_resp_t *resp);
void api_workflow_runs_retry(http_req_t *req, http_resp_t *resp);

/* api_runs.c */
void api_runs_list(http_req_t *req, http_resp_t *resp);
void api_runs_get(http_req_t *req, http_resp_t *resp);
void api_runs_cancel(http_req_t *req, http_resp_t *resp);
void api_runs_log(http_req_t *req, http_resp_t *resp);
void api_runs_explain(http_req_t *req, http_resp_t *resp);
void api_runs_result(http_req_t *req, http_resp_t *resp);
void api_stats_runs(http_req_t *req, http_resp_t *resp);

/* api_workers.c: the pool and the worker protocol */
void api_workers_register(http_req_t *req, http_resp_t *resp);
void api_workers_list(http_req_t *req, http_resp_t *resp);
void api_workers_drain(http_req_t *req, http_resp_t *resp);
void api_workers_heartbeat(http_req_t *req, http_resp_t *resp);
void api_workers_claim(http_req_t *req, http_resp_t *resp);
void api_attempts_log(http_req_t *req, http_resp_t *resp);
void api_attempts_complete(http_req_t *req, http_resp_t *resp);
void api_workers_complete(http_req_t *req, http_resp_t *resp);

/* api_plugins.c: the job types the cluster runs */
void api_plugins_list(http_req_t *req, http_resp_t *resp);

/* api_auth.c: users, login, tokens, the audit log */
void api_users_create(http_req_t *req, http_resp_t *resp);
void api_users_list(http_req_t *req, http_resp_t *resp);
void api_users_patch(http_req_t *req, http_resp_t *resp);
void api_users_delete(http_req_t *req, http_resp_t *resp);
void api_login(http_req_t *req, http_resp_t *resp);
void api_whoami(http_req_t *req, http_resp_t *resp);
void api_tokens_create(http_req_t *req, http_resp_t *resp);
void api_tokens_list(http_req_t *req, http_resp_t *resp);
void api_tokens_revoke(http_req_t *req, http_resp_t *resp);
void api_audit_list(http_req_t *req, http_resp_t *resp);

/* api_ui.c: the dashboard's files */
void api_ui_index(http_req_t *req, http_resp_t *resp);
void api_ui_asset(http_req_t *req, http_resp_t *resp);

/* api_health.c */
void api_healthz(http_req_t *req, http_resp_t *resp);
void api_readyz(http_req_t *req, http_resp_t *resp);

/* metrics.c: the Prometheus exposition */
void api_metrics(http_req_t *req, http_resp_t *resp);

/* ---- answering a failure (api_render.c) ----
 *
 * The one error path of the API: every problem answer a handler gives for
 * a SKED_E* code goes through api_fail, which takes the HTTP status from
 * the error table (sked_http_status, common/error.h), so no handler writes
 * a status number for an error.
 *
 * Logging rule: an error is logged once, by the layer that meets it.
 *  - 4xx codes are answers, not faults (bad input, no such job, a name
 *    taken, a stale version or fence): nobody logs them.
 *  - SKED_ESTORE, SKED_EBUSY and SKED_ENOSPC come from the store's engine,
 *    and the store logs them where it meets them, with the engine's own
 *    message (dberr in store_sqlite.c and store_pg.c): the API does not log
 *    them again. (A
 *    busy answer from elsewhere, such as a password hash refused for want
 *    of memory, sheds load and asks the client to retry: no fault either.)
 *  - Every other 5xx code (SKED_EINTERNAL, SKED_EIO, SKED_ENOMEM,
 *    SKED_ESCHEMA, a code the table does not know) no layer below has
 *    logged: api_fail logs it, with the detail, as an error.
 * A handler that answers through api_fail therefore logs nothing of the
 * error itself; one that handles an error without answering it (a
 * rendering that leaves a part out) logs it only if api_logged_below(err)
 * is false. */

/* Fills resp with an application/problem+json answer for err: the status
 * the error table gives err, field (the part of the request to blame:
 * "name", "query.limit", "path.id"; NULL = none) and a detail sentence
 * (printf-style). Logs per the rule above. */
void api_fail(http_resp_t *resp, int err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* api_fail's wording for a store verb that failed doing `what` ("reading
 * the job"): SKED_ENOTFOUND is "no such <noun>" naming "path.id" when noun
 * is non-NULL; anything else is "<what>: <the code's message>". */
void api_fail_store(http_resp_t *resp, int err, const char *noun, const char *what);
/* Whether a layer below the API logged err where it met it (see above). */
bool api_logged_below(int err);

/* Renderers (api_render.c). New references. */
json_t *api_run_json(const store_run_t *run, const store_attempt_t *attempts, size_t nattempts);
/* A run as GET /v1/runs/{id} shows it: api_run_json with its attempts and
 * their results, the run's result (its latest attempt's) and checkpoint
 * (cp->data NULL: null). */
json_t *api_run_detail_json(const store_run_t *run, const store_attempt_t *attempts,
                            size_t nattempts, const store_checkpoint_t *cp);
/* A stored result (JSON text) as a value; NULL, logged, if it does not
 * parse (the store holds only what was checked, so that is a bug). */
json_t *api_result_json(const char *run_id, const char *text);
json_t *api_worker_json(const store_worker_t *w);
/* An RFC 3339 string, or JSON null for ms < 0. */
json_t *api_time_json(int64_t ms);

#endif
