/*
 * The sked plugin ABI: how a custom job type is written. Installed; the
 * only header a plugin includes, and it links against nothing of sked's.
 *
 * A plugin is a shared object (`plugins/<name>/<name>.so`) that defines a
 * job type. A job of that type ({"type": "<name>", "config": {...}}) runs
 * in a long-lived plugin host, a process the worker starts once per
 * plugin: no process is spawned per run. The host calls the plugin's `run`
 * for each attempt, on a thread of its own, many at once (up to the
 * worker's slots), so `run` must be thread-safe.
 *
 * A plugin exports two things, both made by the macros below:
 *
 *   - a manifest (SKED_PLUGIN_MANIFEST): its ABI version, type name,
 *     version and the JSON Schema of its config, as plain data in the ELF
 *     section ".sked_plugin". sked reads it from the file WITHOUT loading
 *     it: a plugin of a newer or unknown ABI is refused before any of its
 *     code (constructors included) runs, and servers validate job configs
 *     against the schema without running plugin code at all;
 *   - the descriptor `sked_plugin_v1` (SKED_PLUGIN_DESCRIPTOR): the entry
 *     points init, fini, validate and run.
 *
 * The host passes its services in as an append-only table of function
 * pointers (sked_host): a plugin never links against sked's symbols, and
 * a plugin built against an older ABI keeps working with a newer host,
 * which only ever adds members at the end. A plugin that wants a member
 * added in a later ABI checks `host->abi` (or SKED_HOST_HAS) first.
 *
 * Secrets: a config value written {"secret": "..."} in the job document is
 * shown as "***" everywhere but to the plugin, which gets the plain value
 * in config (the host resolves them): a plugin never sees the wrapper.
 *
 * Every string the host hands out is NUL-terminated UTF-8 and borrowed:
 * valid until `run` returns, unless said otherwise. Every string a plugin
 * hands in is copied before the call returns.
 *
 * Example (plugins/template/template.c is a complete one):
 *
 *     #include <sked/plugin.h>
 *
 *     SKED_PLUGIN_MANIFEST("hello", "1.0.0",
 *         "{\"type\":\"object\",\"properties\":{\"who\":{\"type\":\"string\"}},"
 *         "\"additionalProperties\":false}");
 *
 *     static int run(void *state, sked_attempt *att, const sked_host *host)
 *     {
 *         host->outputf(att, SKED_STDOUT, "hello, %s\n", host->config(att, NULL));
 *         return SKED_PLUGIN_OK;
 *     }
 *
 *     SKED_PLUGIN_DESCRIPTOR("hello", "1.0.0", NULL, NULL, NULL, run);
 */
#ifndef SKED_PLUGIN_H
#define SKED_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A host runs plugins built against any
 * ABI from 1 up to its own; a plugin whose ABI is newer (or 0) is refused
 * before it is loaded. Bumped only when members are added to sked_host or
 * sked_plugin (never changed or removed). */
#define SKED_PLUGIN_ABI 1

#if defined(__GNUC__)
#define SKED_EXTERN __attribute__((visibility("default")))
#else
#define SKED_EXTERN
#endif

/* Limits of the manifest's strings, NUL included. A type name is 1 to 63
 * bytes of [a-z0-9_-], starting with a letter; "shell" and "http" are
 * sked's own and cannot be taken. */
#define SKED_PLUGIN_TYPE_MAX    64
#define SKED_PLUGIN_VERSION_MAX 32

/* What `run` and `init` return. */
#define SKED_PLUGIN_OK     0 /* the attempt succeeded */
#define SKED_PLUGIN_FAILED 1 /* the attempt failed (reason from host->fail); retried by policy */

/* Streams for host->output. */
#define SKED_STDOUT 1
#define SKED_STDERR 2

/* One attempt of a run, as the host holds it. Opaque; valid only during
 * the `run` call it was passed to, and only on threads that call it while
 * that `run` is still executing. */
typedef struct sked_attempt sked_attempt;

/* The host's services. Members are only ever appended; `abi` is the
 * host's SKED_PLUGIN_ABI and `size` its sizeof(sked_host), so a plugin can
 * tell whether a member exists (SKED_HOST_HAS). Every function is
 * thread-safe and may be called from any thread while the attempt's
 * `run` is executing (for example from threads `run` started), never
 * after it returned. */
typedef struct sked_host {
    uint32_t abi;  /* the host's SKED_PLUGIN_ABI */
    uint32_t size; /* the host's sizeof(sked_host) */

    /* ---- ABI 1 ---- */

    /* The job's config as compact JSON text (an object; "{}" when the job
     * has none), secrets resolved. *len (OUT, may be NULL) its length. */
    const char *(*config)(sked_attempt *att, size_t *len);
    /* A variable of the attempt's environment, or NULL: the job's `env`
     * and sked's own (SKED_RUN_ID, SKED_ATTEMPT, SKED_FIRE_TIME,
     * SKED_JOB_ID, SKED_JOB_NAME, SKED_ARRAY_INDEX, SKED_PARENT_RUN_ID),
     * the same a shell job gets. Never the plugin host's own. */
    const char *(*getenv)(sked_attempt *att, const char *name);

    /* Appends output to the run's log (stream SKED_STDOUT or SKED_STDERR),
     * as a shell job's stdout/stderr. Returns 0, or -1 when the attempt is
     * being stopped (the output is then dropped). */
    int (*output)(sked_attempt *att, int stream, const char *data, size_t len);
    /* output of a printf-formatted text. */
    int (*outputf)(sked_attempt *att, int stream, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    /* Reports progress: fraction done in [0, 1] (or negative: unknown)
     * and a short message (may be NULL), written to the run's log as a
     * "progress:" line on stderr. A plugin that reports progress shows it
     * is alive; nothing requires it (the host's own liveness is checked
     * separately). Returns 0 or -1 as output. */
    int (*progress)(sked_attempt *att, double fraction, const char *msg);

    /* Saves a checkpoint (any UTF-8 text without NUL, up to the worker's
     * --checkpoint-max): shipped to the server with the next heartbeat and
     * handed to a retry of the run (checkpoint_in). The latest one wins.
     * Returns 0, or -1 with the reason in the run's log (too large, not
     * text, the attempt is being stopped). */
    int (*checkpoint)(sked_attempt *att, const char *data, size_t len);
    /* The checkpoint this attempt starts from (the last one an earlier
     * attempt of the run saved), or NULL when it starts afresh. *len OUT,
     * may be NULL. */
    const char *(*checkpoint_in)(sked_attempt *att, size_t *len);
    /* Sets the attempt's result: one JSON value as text, up to the
     * worker's --result-max; kept with the attempt and handed to
     * downstream runs. The latest call wins. Returns 0, or -1 with the
     * reason in the run's log (not JSON, too large). */
    int (*result)(sked_attempt *att, const char *json, size_t len);
    /* The results of the run's upstreams as one JSON object {name: result}
     * (workflows, depends_on), or NULL when it has none. *len OUT. */
    const char *(*upstream_results)(sked_attempt *att, size_t *len);

    /* Sets the reason a failing attempt reports (printf-formatted; the
     * latest call wins). Returning SKED_PLUGIN_FAILED without one reports
     * "failed". */
    void (*fail)(sked_attempt *att, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;

    /* 1 once the attempt should stop (canceled, timed out, its lease lost,
     * the worker stopping), else 0. A plugin that does long work checks it
     * (or waits on cancel_fd / sleep) and returns promptly: one that does
     * not stop within the worker's --kill-grace is killed with its whole
     * host (every other attempt in it fails with "plugin hung"). */
    int (*cancelled)(sked_attempt *att);
    /* A file descriptor that becomes readable (POLLIN) when the attempt
     * should stop, for plugins that poll. Owned by the host: never read,
     * write or close it. */
    int (*cancel_fd)(sked_attempt *att);
    /* Sleeps up to ms milliseconds, less if the attempt should stop first.
     * Returns 0 after the full sleep, 1 when woken to stop. */
    int (*sleep)(sked_attempt *att, int64_t ms);
    /* Milliseconds left before the job's timeout, or -1 when it has none. */
    int64_t (*deadline_ms)(sked_attempt *att);
} sked_host;

/* Whether host h has member m (it was built against an ABI that has it). */
#define SKED_HOST_HAS(h, m) (offsetof(sked_host, m) + sizeof((h)->m) <= (h)->size)

/* The descriptor a plugin exports as the symbol `sked_plugin_v1`. The host reads
 * only the first `size` bytes; members are only ever appended. */
typedef struct sked_plugin {
    uint32_t abi;     /* SKED_PLUGIN_ABI the plugin was built with (must match its manifest) */
    uint32_t size;    /* sizeof(sked_plugin) as the plugin was built */
    const char *type; /* "jobtype/<name>", <name> as in the manifest */
    const char *version;

    /* Called once when the host starts, before any run, on the host's
     * main thread. *state (OUT) is passed to every other call. Returns
     * SKED_PLUGIN_OK, or SKED_PLUGIN_FAILED with a sentence in err: then
     * nothing else is called and the host reports the plugin broken.
     * NULL = nothing to set up. */
    int (*init)(const sked_host *host, void **state, char *err, size_t errlen);
    /* Called once when the host stops cleanly, after every run returned.
     * NULL = nothing to tear down. */
    void (*fini)(void *state);
    /* Checks an attempt's config (compact JSON text) beyond what the
     * manifest's schema says. Returns SKED_PLUGIN_OK, or SKED_PLUGIN_FAILED
     * with the JSON path of the bad field in field ("config.url"; "" for
     * the whole config) and a sentence in detail: the attempt then fails
     * with "config.url: ..." without `run`. Thread-safe. NULL = the schema
     * says it all. */
    int (*validate)(void *state, const char *config, size_t len, char *field, size_t fieldlen,
                    char *detail, size_t detaillen);
    /* Runs one attempt; returns SKED_PLUGIN_OK or SKED_PLUGIN_FAILED. Called
     * on a host thread, many at once: must be thread-safe. Must return
     * promptly once host->cancelled(att) says so. Must not call exit(),
     * fork() without exec, or change process-wide state (signals, cwd,
     * environment, rlimits): it shares its process with other attempts. */
    int (*run)(void *state, sked_attempt *att, const sked_host *host);
} sked_plugin;

/* The manifest, as it lies in the ".sked_plugin" section. Pointer-free:
 * readable from the file without loading it. */
#define SKED_PLUGIN_MAGIC "SKEDPLG" /* 8 bytes with its NUL */

#define SKED_PLUGIN_MANIFEST_HEAD                                                                  \
    char magic[8];                                                                                 \
    uint32_t abi;                                                                                  \
    uint32_t schema_len; /* bytes of schema, NUL included */                                       \
    char type[SKED_PLUGIN_TYPE_MAX];                                                               \
    char version[SKED_PLUGIN_VERSION_MAX]

/* The fixed head of every manifest; the JSON Schema text follows it. */
typedef struct sked_plugin_manifest_head {
    SKED_PLUGIN_MANIFEST_HEAD;
} sked_plugin_manifest_head;

/* Defines the manifest: TYPE and VERSION string literals (see the limits
 * above), SCHEMA a string literal holding the JSON Schema (draft 2020-12,
 * the subset docs/plugins.md lists) of the job's config. Use once, at
 * file scope. */
#define SKED_PLUGIN_MANIFEST(TYPE, VERSION, SCHEMA)                                                \
    __attribute__((section(".sked_plugin"), used, aligned(8))) SKED_EXTERN const struct {          \
        SKED_PLUGIN_MANIFEST_HEAD;                                                                 \
        char schema[sizeof(SCHEMA)];                                                               \
    } sked_plugin_manifest = {SKED_PLUGIN_MAGIC, SKED_PLUGIN_ABI, sizeof(SCHEMA), TYPE,            \
                              VERSION,           SCHEMA}

/* Defines the descriptor sked_plugin_v1. INIT, FINI, VALIDATE may be
 * NULL; RUN may not. Use once, at file scope. */
#define SKED_PLUGIN_DESCRIPTOR(TYPE, VERSION, INIT, FINI, VALIDATE, RUN)                           \
    SKED_EXTERN const sked_plugin sked_plugin_v1 = {                                               \
        SKED_PLUGIN_ABI, sizeof(sked_plugin), "jobtype/" TYPE, VERSION, INIT, FINI, VALIDATE, RUN}

#ifdef __cplusplus
}
#endif

#endif
