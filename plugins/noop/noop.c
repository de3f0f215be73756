/*
 * noop: the job type that does nothing and succeeds. It measures what a
 * run costs sked itself (claim, lease, completion, the group commit) with
 * no work and no process spawn in the way: `make bench` counts durable
 * noop runs per second. Its config is {} and nothing else.
 *
 *     {"name": "tick", "type": "noop", "schedules": [{"every": "1s"}]}
 */
#include <sked/plugin.h>

SKED_PLUGIN_MANIFEST("noop", "1.0.0", "{\"type\":\"object\",\"additionalProperties\":false}");

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    return SKED_PLUGIN_OK;
}

SKED_PLUGIN_DESCRIPTOR("noop", "1.0.0", NULL, NULL, NULL, run);
