/*
 * refschema: a plugin whose config schema uses "$ref", which sked's JSON
 * Schema subset does not apply (docs/plugins.md "The config schema"). A
 * worker must refuse this plugin alone when it loads it — a line in its
 * log naming the keyword — and run everything else. Built to
 * build/test-plugins-bad/refschema.so; never deployed.
 */
#include <sked/plugin.h>

SKED_PLUGIN_MANIFEST("refschema", "1.0.0",
                     "{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#/$defs/x\"}}}");

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    (void)state;
    (void)att;
    (void)host;
    return SKED_PLUGIN_OK;
}

SKED_PLUGIN_DESCRIPTOR("refschema", "1.0.0", NULL, NULL, NULL, run);
