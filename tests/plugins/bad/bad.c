/*
 * bad: a plugin built wrong on purpose, so that plugins.so.bad_is_refused
 * can show that check_plugin sees each fault: its manifest names another
 * type than its file, it exports a third symbol, and its descriptor
 * disagrees with its manifest (type and version). Built to
 * build/test-plugins-bad/bad.so, out of every plugin directory.
 */
#include <sked/plugin.h>

SKED_PLUGIN_MANIFEST("other", "1.0.0", "{\"type\":\"object\"}");

SKED_EXTERN int bad_leaked_helper(void);
SKED_EXTERN int bad_leaked_helper(void)
{
    return 1;
}

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    return SKED_PLUGIN_OK;
}

SKED_PLUGIN_DESCRIPTOR("bad", "2.0.0", NULL, NULL, NULL, run);
