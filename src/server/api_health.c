/*
 * Health probes for load balancers and orchestrators: liveness (the
 * process answers HTTP) and readiness (it can also reach its store). Both
 * are public and cheap, so they can be polled every second.
 */
#include "server/api.h"

#include "common/error.h"
#include "common/log.h"

void api_healthz(http_req_t *req, http_resp_t *resp)
{
    (void)req;
    http_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(http_req_t *req, http_resp_t *resp)
{
    int rc = store_ping(req->st);
    if (rc < 0) {
        log_warn("api", "readiness: store ping failed: %s", sked_strerror(rc));
        http_problem(resp, 503, NULL, "the store does not answer: %s", sked_strerror(rc));
        http_set_header(resp, "Retry-After", "1");
        return;
    }
    http_json(resp, 200, json_pack("{s:s}", "status", "ready"));
}
