/*
 * Health probes for load balancers and orchestrators: liveness (the
 * process answers HTTP) and readiness (its store answers and takes a
 * durable write: a full disk or a read-only database is not ready). Both
 * are public and cheap, so they can be polled every second; the write is
 * probed at most once a second (store_ready).
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
    int rc = store_ready(req->st);
    if (rc < 0) {
        /* Not logged here: the store logged what failed when its probe met
         * it (at most once a second), and this answer is polled. */
        api_fail(resp, SKED_ESTORE, NULL, "the store does not answer or take writes: %s",
                 sked_strerror(rc));
        http_set_header(resp, "Retry-After", "1");
        return;
    }
    http_json(resp, 200, json_pack("{s:s}", "status", "ready"));
}
