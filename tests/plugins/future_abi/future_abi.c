/*
 * future_abi: a plugin built against an ABI sked does not know (999), to
 * prove that a host refuses it before any of its code runs. Its manifest
 * is written by hand (SKED_PLUGIN_MANIFEST always writes the ABI of the
 * header it is compiled with), and it has a constructor, which the dynamic
 * loader would run on dlopen before sked could look at anything: it
 * creates the file MARKER (compiled in by tests/tests.cmake). A test that
 * finds no MARKER after a worker met this plugin knows it was never
 * loaded, and that its type was not advertised is a separate check.
 * Built to build/test-plugins/future_abi.so; never deployed.
 */
#include <sked/plugin.h>

#include <fcntl.h>
#include <unistd.h>

#ifndef MARKER
#error "build with -DMARKER=\"/path/of/the/marker\""
#endif

#define FUTURE_ABI 999
#define SCHEMA     "{\"type\":\"object\"}"

/* The manifest's layout is the same in every ABI (the head is fixed;
 * sked reads `abi` before anything else): only the number is from the
 * future. */
__attribute__((section(".sked_plugin"), used, aligned(8))) SKED_EXTERN const struct {
    SKED_PLUGIN_MANIFEST_HEAD;
    char schema[sizeof(SCHEMA)];
} sked_plugin_manifest = {SKED_PLUGIN_MAGIC, FUTURE_ABI, sizeof(SCHEMA),
                          "future_abi",      "9.9.9",    SCHEMA};

__attribute__((constructor)) static void loaded(void)
{
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
}

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    return SKED_PLUGIN_OK;
}

/* The descriptor says the same ABI; a future one may be larger, which is
 * what `size` is for. */
SKED_EXTERN const sked_plugin sked_plugin_v1 = {
    FUTURE_ABI, sizeof(sked_plugin), "jobtype/future_abi", "9.9.9", NULL, NULL, NULL, run};
