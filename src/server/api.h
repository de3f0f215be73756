/*
 * API handlers, one file per resource: api_jobs.c, api_runs.c,
 * api_workers.c, api_auth.c, api_health.c. Each takes the parsed request and fills the
 * response; see http.h. JSON rendering of store records is shared here so a
 * job or run looks the same wherever it appears.
 */
#ifndef SKED_SERVER_API_H
#define SKED_SERVER_API_H

#include <jansson.h>

#include "server/http.h"
#include "store/store.h"

/* api_jobs.c */
void api_jobs_create(http_req_t *req, http_resp_t *resp);
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

/* api_runs.c */
void api_runs_list(http_req_t *req, http_resp_t *resp);
void api_runs_get(http_req_t *req, http_resp_t *resp);
void api_runs_cancel(http_req_t *req, http_resp_t *resp);
void api_runs_log(http_req_t *req, http_resp_t *resp);

/* api_workers.c: the pool and the worker protocol */
void api_workers_register(http_req_t *req, http_resp_t *resp);
void api_workers_list(http_req_t *req, http_resp_t *resp);
void api_workers_drain(http_req_t *req, http_resp_t *resp);
void api_workers_heartbeat(http_req_t *req, http_resp_t *resp);
void api_workers_claim(http_req_t *req, http_resp_t *resp);
void api_attempts_log(http_req_t *req, http_resp_t *resp);
void api_attempts_complete(http_req_t *req, http_resp_t *resp);

/* api_auth.c: users, login, tokens, the audit log */
void api_users_create(http_req_t *req, http_resp_t *resp);
void api_users_list(http_req_t *req, http_resp_t *resp);
void api_users_patch(http_req_t *req, http_resp_t *resp);
void api_users_delete(http_req_t *req, http_resp_t *resp);
void api_login(http_req_t *req, http_resp_t *resp);
void api_tokens_create(http_req_t *req, http_resp_t *resp);
void api_tokens_list(http_req_t *req, http_resp_t *resp);
void api_tokens_revoke(http_req_t *req, http_resp_t *resp);
void api_audit_list(http_req_t *req, http_resp_t *resp);

/* api_health.c */
void api_healthz(http_req_t *req, http_resp_t *resp);
void api_readyz(http_req_t *req, http_resp_t *resp);

/* Renderers (api_render.c). New references. */
json_t *api_run_json(const store_run_t *run, const store_attempt_t *attempts, size_t nattempts);
json_t *api_worker_json(const store_worker_t *w);
/* An RFC 3339 string, or JSON null for ms < 0. */
json_t *api_time_json(int64_t ms);

#endif
