/*
 * The route table: every route the server answers, its access class and its
 * handler. docs/openapi.yaml lists exactly these (tests/e2e checks it via
 * `sked routes`). Order matters only for readability: matching is exact
 * per path segment, with {name} matching one segment.
 *
 * Drain is open to workers because a worker drains itself on SIGTERM, so
 * the server stops filling the claim it still holds parked.
 */
#include "server/http.h"
#include "server/api.h"

const http_route_t http_routes[] = {
    /* The dashboard (api_ui.c): files only; it calls the routes below. */
    {"GET", "/", ACCESS_PUBLIC, api_ui_index},
    {"GET", "/assets/{version}/{file}", ACCESS_PUBLIC, api_ui_asset},

    {"GET", "/healthz", ACCESS_PUBLIC, api_healthz},
    {"GET", "/readyz", ACCESS_PUBLIC, api_readyz},
    /* Also served, open, on the --metrics-listen address (http.c). */
    {"GET", "/metrics", ACCESS_METRICS, api_metrics},

    {"POST", "/v1/jobs", ACCESS_WRITE, api_jobs_create},
    {"POST", "/v1/jobs:batch", ACCESS_WRITE, api_jobs_batch},
    {"GET", "/v1/jobs", ACCESS_READ, api_jobs_list},
    {"GET", "/v1/jobs/{id}", ACCESS_READ, api_jobs_get},
    {"PATCH", "/v1/jobs/{id}", ACCESS_WRITE, api_jobs_patch},
    {"DELETE", "/v1/jobs/{id}", ACCESS_WRITE, api_jobs_delete},
    {"POST", "/v1/jobs/{id}/pause", ACCESS_WRITE, api_jobs_pause},
    {"POST", "/v1/jobs/{id}/resume", ACCESS_WRITE, api_jobs_resume},
    {"POST", "/v1/jobs/{id}/trigger", ACCESS_WRITE, api_jobs_trigger},
    {"GET", "/v1/jobs/{id}/preview", ACCESS_READ, api_jobs_preview},
    {"GET", "/v1/jobs/{id}/misses", ACCESS_READ, api_jobs_misses},
    {"GET", "/v1/jobs/{id}/explain", ACCESS_READ, api_jobs_explain},
    {"POST", "/v1/schedules/preview", ACCESS_READ, api_schedules_preview},

    {"POST", "/v1/workflows", ACCESS_WRITE, api_workflows_create},
    {"GET", "/v1/workflows", ACCESS_READ, api_workflows_list},
    {"GET", "/v1/workflows/{id}", ACCESS_READ, api_workflows_get},
    {"PUT", "/v1/workflows/{id}", ACCESS_WRITE, api_workflows_put},
    {"DELETE", "/v1/workflows/{id}", ACCESS_WRITE, api_workflows_delete},
    {"POST", "/v1/workflows/{id}/pause", ACCESS_WRITE, api_workflows_pause},
    {"POST", "/v1/workflows/{id}/resume", ACCESS_WRITE, api_workflows_resume},
    {"POST", "/v1/workflows/{id}/trigger", ACCESS_WRITE, api_workflows_trigger},
    {"GET", "/v1/workflows/{id}/runs", ACCESS_READ, api_workflows_runs},
    {"GET", "/v1/workflow-runs/{id}", ACCESS_READ, api_workflow_runs_get},
    {"POST", "/v1/workflow-runs/{id}/cancel", ACCESS_WRITE, api_workflow_runs_cancel},
    {"POST", "/v1/workflow-runs/{id}/tasks/{task}/retry", ACCESS_WRITE, api_workflow_runs_retry},

    {"GET", "/v1/runs", ACCESS_READ, api_runs_list},
    {"GET", "/v1/runs/{id}", ACCESS_READ, api_runs_get},
    {"POST", "/v1/runs/{id}/cancel", ACCESS_WRITE, api_runs_cancel},
    {"GET", "/v1/runs/{id}/log", ACCESS_READ, api_runs_log},
    {"GET", "/v1/runs/{id}/explain", ACCESS_READ, api_runs_explain},
    {"GET", "/v1/runs/{id}/result", ACCESS_READ, api_runs_result},
    {"GET", "/v1/stats/runs", ACCESS_READ, api_stats_runs},

    {"POST", "/v1/workers", ACCESS_WORKER, api_workers_register},
    {"GET", "/v1/workers", ACCESS_READ, api_workers_list},
    {"GET", "/v1/plugins", ACCESS_READ, api_plugins_list},
    {"GET", "/v1/events", ACCESS_READ, api_events},
    {"POST", "/v1/workers/{id}/drain", ACCESS_WORKER, api_workers_drain},
    {"POST", "/v1/workers/{id}/heartbeat", ACCESS_WORKER, api_workers_heartbeat},
    {"POST", "/v1/workers/{id}/claim", ACCESS_WORKER, api_workers_claim},
    {"POST", "/v1/workers/{id}/complete", ACCESS_WORKER, api_workers_complete},
    {"POST", "/v1/runs/{id}/attempts/{n}/log", ACCESS_WORKER, api_attempts_log},
    {"POST", "/v1/runs/{id}/attempts/{n}/complete", ACCESS_WORKER, api_attempts_complete},

    /* Identity and access. Login is public (it is how a token is had);
     * the token routes and PATCH of a user are open to every human role
     * because each acts only on the caller's own (an admin's on anyone's),
     * which the handlers decide. */
    {"POST", "/v1/login", ACCESS_PUBLIC, api_login},
    {"GET", "/v1/whoami", ACCESS_READ, api_whoami},
    {"POST", "/v1/users", ACCESS_ADMIN, api_users_create},
    {"GET", "/v1/users", ACCESS_ADMIN, api_users_list},
    {"PATCH", "/v1/users/{name}", ACCESS_READ, api_users_patch},
    {"DELETE", "/v1/users/{name}", ACCESS_ADMIN, api_users_delete},
    {"POST", "/v1/tokens", ACCESS_READ, api_tokens_create},
    {"GET", "/v1/tokens", ACCESS_READ, api_tokens_list},
    {"DELETE", "/v1/tokens/{id}", ACCESS_READ, api_tokens_revoke},
    {"GET", "/v1/audit", ACCESS_ADMIN, api_audit_list},

    /* Alerts: global rules are the admin's; an alert of a job is seen and
     * acknowledged as its job is (the handlers decide), others only by
     * callers who see every namespace. */
    {"POST", "/v1/alert-rules", ACCESS_ADMIN, api_alert_rules_create},
    {"GET", "/v1/alert-rules", ACCESS_ADMIN, api_alert_rules_list},
    {"GET", "/v1/alert-rules/{id}", ACCESS_ADMIN, api_alert_rules_get},
    {"PUT", "/v1/alert-rules/{id}", ACCESS_ADMIN, api_alert_rules_put},
    {"DELETE", "/v1/alert-rules/{id}", ACCESS_ADMIN, api_alert_rules_delete},
    {"GET", "/v1/alerts", ACCESS_READ, api_alerts_list},
    {"GET", "/v1/alerts/{id}", ACCESS_READ, api_alerts_get},
    {"POST", "/v1/alerts/{id}/ack", ACCESS_WRITE, api_alerts_ack},

    {NULL, NULL, ACCESS_PUBLIC, NULL},
};
