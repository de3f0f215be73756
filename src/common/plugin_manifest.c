/*
 * Plugin manifests, read with libelf from the file (plugin_manifest.h).
 * Nothing here maps the file executable or resolves a symbol: the bytes of
 * one section are read and checked as data.
 */
#include "common/plugin_manifest.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTION ".sked_plugin"

/* The ELF class and machine of this build: a plugin must match them. */
#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#endif
#if UINTPTR_MAX > 0xffffffffu
#define HOST_CLASS ELFCLASS64
#else
#define HOST_CLASS ELFCLASS32
#endif

bool plugin_type_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= SKED_PLUGIN_TYPE_MAX || name[0] < 'a' || name[0] > 'z') return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool plugin_type_builtin(const char *name)
{
    return !strcmp(name, "shell") || !strcmp(name, "http");
}

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static int elf_ok;

static void elf_init(void)
{
    elf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

static int refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SKED_EINVAL;
}

/* Whether the fixed-size field s holds a NUL. */
static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

/* Checks the section's bytes and fills out's type, version, abi, schema. */
static int check(const unsigned char *p, size_t size, plugin_manifest_t *out, char *err,
                 size_t errlen)
{
    sked_plugin_manifest_head h;
    if (size < sizeof h)
        return refuse(err, errlen, "its " SECTION " section is %zu bytes, too small for a manifest",
                      size);
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, SKED_PLUGIN_MAGIC, sizeof h.magic))
        return refuse(err, errlen, "its " SECTION " section is not a sked plugin manifest");
    if (h.abi == 0 || h.abi > SKED_PLUGIN_ABI)
        return refuse(err, errlen,
                      "it was built for plugin ABI %u; this sked runs plugin ABI 1 to %d: rebuild "
                      "it against this sked's <sked/plugin.h>",
                      h.abi, SKED_PLUGIN_ABI);
    if (!terminated(h.type, sizeof h.type) || !plugin_type_name_ok(h.type))
        return refuse(err, errlen,
                      "its type name is not 1-%d bytes of [a-z0-9_-] starting with a letter",
                      SKED_PLUGIN_TYPE_MAX - 1);
    if (plugin_type_builtin(h.type))
        return refuse(err, errlen, "its type \"%s\" is one of sked's own", h.type);
    if (!terminated(h.version, sizeof h.version))
        return refuse(err, errlen, "its version is not a string of at most %d bytes",
                      SKED_PLUGIN_VERSION_MAX - 1);
    size_t rest = size - sizeof h;
    if (h.schema_len == 0 || h.schema_len > rest || h.schema_len > PLUGIN_SCHEMA_MAX)
        return refuse(err, errlen, "its schema length (%u bytes) does not fit its manifest",
                      h.schema_len);
    const char *schema = (const char *)p + sizeof h;
    if (schema[h.schema_len - 1] != '\0' || strlen(schema) != h.schema_len - 1)
        return refuse(err, errlen, "its schema is not one NUL-terminated string");
    memcpy(out->type, h.type, sizeof out->type);
    memcpy(out->version, h.version, sizeof out->version);
    out->abi = h.abi;
    out->schema = xstrdup(schema);
    return 0;
}

int plugin_manifest_read(const char *path, plugin_manifest_t *out, char *err, size_t errlen)
{
    int rc = 0;
    Elf *e = NULL;
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    pthread_once(&elf_once, elf_init);
    if (!elf_ok) return refuse(err, errlen, "libelf: %s", elf_errmsg(-1));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = refuse(err, errlen, "it is not a regular file");
        goto out;
    }
    e = elf_begin(fd, ELF_C_READ, NULL);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        rc = refuse(err, errlen, "it is not an ELF file");
        goto out;
    }
    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh) || eh.e_type != ET_DYN) {
        rc = refuse(err, errlen, "it is not an ELF shared object");
        goto out;
    }
#ifdef HOST_MACHINE
    if (eh.e_ident[EI_CLASS] != HOST_CLASS || eh.e_machine != HOST_MACHINE) {
        rc = refuse(err, errlen, "it was built for another machine (ELF class %d, machine %d)",
                    eh.e_ident[EI_CLASS], eh.e_machine);
        goto out;
    }
#endif
    size_t shstrndx;
    if (elf_getshdrstrndx(e, &shstrndx) != 0) {
        rc = refuse(err, errlen, "its section headers are unreadable: %s", elf_errmsg(-1));
        goto out;
    }
    Elf_Scn *scn = NULL, *found = NULL;
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) continue;
        const char *name = elf_strptr(e, shstrndx, sh.sh_name);
        if (name && !strcmp(name, SECTION)) {
            if (found) {
                rc = refuse(err, errlen, "it has two " SECTION " sections");
                goto out;
            }
            if (sh.sh_type != SHT_PROGBITS) {
                rc = refuse(err, errlen, "its " SECTION " section holds no data");
                goto out;
            }
            found = scn;
        }
    }
    if (!found) {
        rc = refuse(err, errlen,
                    "it has no " SECTION " section: not a sked plugin (SKED_PLUGIN_MANIFEST)");
        goto out;
    }
    Elf_Data *d = elf_getdata(found, NULL);
    if (!d || !d->d_buf) {
        rc = refuse(err, errlen, "its " SECTION " section is unreadable: %s", elf_errmsg(-1));
        goto out;
    }
    rc = check(d->d_buf, d->d_size, out, err, errlen);
    if (rc == 0) out->path = xstrdup(path);
out:
    if (e) elf_end(e);
    close(fd);
    if (rc < 0) plugin_manifest_clear(out);
    return rc;
}

void plugin_manifest_clear(plugin_manifest_t *m)
{
    if (!m) return;
    free(m->path);
    free(m->schema);
    memset(m, 0, sizeof *m);
}

void plugin_manifests_free(plugin_manifest_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        plugin_manifest_clear(&v[i]);
    free(v);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_so(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 3 && !strcmp(d->d_name + n - 3, ".so");
}

int plugin_manifest_scan(const char *dir, const char *component, plugin_manifest_t **out, size_t *n)
{
    struct dirent **names = NULL;
    *out = NULL;
    *n = 0;
    int k = scandir(dir, &names, is_so, by_name);
    if (k < 0) return -errno;
    plugin_manifest_t *v = xcalloc((size_t)k + 1, sizeof *v);
    size_t m = 0;
    for (int i = 0; i < k; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        char err[512];
        int rc = plugin_manifest_read(path, &v[m], err, sizeof err);
        if (rc < 0) {
            log_warn(component, "plugin %s refused: %s", path, err);
        } else {
            size_t j = 0;
            while (j < m && strcmp(v[j].type, v[m].type))
                j++;
            if (j < m) {
                log_warn(component, "plugin %s refused: type \"%s\" is already %s's", path,
                         v[m].type, v[j].path);
                plugin_manifest_clear(&v[m]);
            } else {
                m++;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    *out = v;
    *n = m;
    return 0;
}
