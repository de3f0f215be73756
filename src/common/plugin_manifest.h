/*
 * Plugin manifests (include/sked/plugin.h): what a plugin says about itself
 * — its ABI, type name, version and the JSON Schema of its config — read
 * from the ".sked_plugin" section of its ELF file WITHOUT loading it, so a
 * plugin built for a newer (or unknown) ABI, or for another machine, is
 * refused before any of its code runs, constructors included. Workers read
 * them to know which plugin hosts to start and which types to advertise;
 * servers read them (--plugin-dir) to validate job configs without running
 * any plugin code at all.
 *
 * Reading an ELF file is elfutils' libelf's job; this file only checks what
 * the manifest holds.
 */
#ifndef SKED_COMMON_PLUGIN_MANIFEST_H
#define SKED_COMMON_PLUGIN_MANIFEST_H

#include <sked/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLUGIN_SCHEMA_MAX (256 * 1024) /* bytes of a manifest's schema */

typedef struct plugin_manifest {
    char *path; /* owned; the file it was read from */
    char type[SKED_PLUGIN_TYPE_MAX];
    char version[SKED_PLUGIN_VERSION_MAX];
    uint32_t abi;
    char *schema; /* owned; the JSON Schema text, NUL-terminated (syntax not checked here) */
} plugin_manifest_t;

/* Whether name is a plugin type name: 1 to SKED_PLUGIN_TYPE_MAX - 1 bytes of
 * [a-z0-9_-] starting with a letter. Says nothing of "shell"/"http". */
bool plugin_type_name_ok(const char *name);
/* Whether name is one of sked's own types ("shell", "http"), which no
 * plugin may take. */
bool plugin_type_builtin(const char *name);

/* Reads the manifest of the plugin file at path into *out (free with
 * plugin_manifest_clear). Refuses, with a sentence for the operator in err
 * (SKED_EINVAL; -errno when the file cannot be read): not an ELF shared
 * object of this machine's class and architecture, no ".sked_plugin"
 * section, a bad magic or size, an ABI newer than SKED_PLUGIN_ABI or 0, a
 * type or version not NUL-terminated or a bad type name, a builtin type
 * name, a schema over PLUGIN_SCHEMA_MAX or not NUL-terminated. Blocking;
 * thread-safe. */
int plugin_manifest_read(const char *path, plugin_manifest_t *out, char *err, size_t errlen);

/* Frees what m holds and zeroes it. NULL is a no-op. */
void plugin_manifest_clear(plugin_manifest_t *m);

/* Reads every "*.so" regular file of dir, in name order. A file that is
 * refused, or whose type an earlier file already took, is logged (warn,
 * under component, naming the file and why) and left out. Returns 0 with
 * *out (new array, free with plugin_manifests_free) and *n, or -errno when
 * dir cannot be read. */
int plugin_manifest_scan(const char *dir, const char *component, plugin_manifest_t **out,
                         size_t *n);
void plugin_manifests_free(plugin_manifest_t *v, size_t n);

#endif
