/*
 * check_plugin: the build's check of one plugin file, registered per
 * plugin in tests/tests.cmake (plugins.so.<name>). It reads the file the
 * way the contract of include/sked/plugin.h says sked may, with its own
 * small ELF reader (the test's oracle, not sked's loader):
 *
 *   - the ".sked_plugin" section holds one well-formed manifest: the magic,
 *     the expected ABI, a type name that is the file's own name and obeys
 *     [a-z][a-z0-9_-]{0,62} (not "shell" or "http"), a version, and a
 *     schema_len that covers exactly a NUL-terminated JSON object (or
 *     boolean) to the section's end (padding aside);
 *   - the file exports exactly two defined dynamic symbols,
 *     sked_plugin_manifest (inside that section) and sked_plugin_v1: the
 *     -fvisibility=hidden build leaks nothing into the host's namespace;
 *   - loaded (dlopen RTLD_NOW|RTLD_LOCAL, unless --no-load), its descriptor
 *     agrees with the manifest: the same ABI, sizeof(sked_plugin), type
 *     "jobtype/<type>", version, and a run entry point.
 *
 *   check_plugin FILE ABI [--no-load]
 *
 * Prints what is wrong and exits 1; exits 0 when all holds.
 */
#include <sked/plugin.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file;
static int failures;

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

typedef struct elf {
    const unsigned char *base;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh; /* the section headers */
} elf;

/* Section i's header, or NULL when the file does not hold it. */
static const Elf64_Shdr *section(const elf *e, size_t i)
{
    if (i >= e->eh->e_shnum) return NULL;
    return &e->sh[i];
}

/* Whether [off, off+len) lies in the file. */
static int in_file(const elf *e, uint64_t off, uint64_t len)
{
    return off <= e->size && len <= e->size - off;
}

/* The NUL-terminated string at off in string section strtab, or NULL. */
static const char *string_at(const elf *e, const Elf64_Shdr *strtab, uint64_t off)
{
    if (!strtab || off >= strtab->sh_size || !in_file(e, strtab->sh_offset, strtab->sh_size))
        return NULL;
    const char *s = (const char *)e->base + strtab->sh_offset + off;
    return memchr(s, '\0', strtab->sh_size - off) ? s : NULL;
}

static const Elf64_Shdr *find_section(const elf *e, const char *name, size_t *index)
{
    const Elf64_Shdr *names = section(e, e->eh->e_shstrndx);
    for (size_t i = 0; i < e->eh->e_shnum; i++) {
        const char *n = string_at(e, names, e->sh[i].sh_name);
        if (n && !strcmp(n, name)) {
            if (index) *index = i;
            return &e->sh[i];
        }
    }
    return NULL;
}

static int type_name_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > 63 || t[0] < 'a' || t[0] > 'z') return 0;
    for (size_t i = 1; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_' ||
              t[i] == '-'))
            return 0;
    return strcmp(t, "shell") && strcmp(t, "http");
}

/* Checks the manifest; copies its head to *out. */
static void check_manifest(const elf *e, uint32_t want_abi, const char *want_type, size_t *shndx,
                           sked_plugin_manifest_head *out)
{
    const Elf64_Shdr *s = find_section(e, ".sked_plugin", shndx);
    memset(out, 0, sizeof *out);
    if (!s) {
        bad("no .sked_plugin section");
        return;
    }
    if (s->sh_type != SHT_PROGBITS || !in_file(e, s->sh_offset, s->sh_size)) {
        bad(".sked_plugin is not a section of data in the file");
        return;
    }
    if (s->sh_size < sizeof *out) {
        bad(".sked_plugin holds %llu bytes, less than a manifest's head (%zu)",
            (unsigned long long)s->sh_size, sizeof *out);
        return;
    }
    const unsigned char *p = e->base + s->sh_offset;
    memcpy(out, p, sizeof *out);
    if (memcmp(out->magic, SKED_PLUGIN_MAGIC, sizeof out->magic))
        bad("manifest: bad magic %.8s", out->magic);
    if (out->abi != want_abi) bad("manifest: abi %u, expected %u", out->abi, want_abi);
    if (!memchr(out->type, '\0', sizeof out->type)) {
        bad("manifest: type is not NUL-terminated");
        out->type[0] = '\0';
    } else if (!type_name_ok(out->type)) {
        bad("manifest: type \"%s\" is not a plugin type name", out->type);
    } else if (strcmp(out->type, want_type)) {
        bad("manifest: type \"%s\" in a file named %s.so", out->type, want_type);
    }
    if (!memchr(out->version, '\0', sizeof out->version)) {
        bad("manifest: version is not NUL-terminated");
        out->version[0] = '\0';
    } else if (!out->version[0]) {
        bad("manifest: empty version");
    }

    /* The schema: schema_len bytes, the last one its NUL, and nothing but
     * NUL padding after it in the section (alignment; clang's
     * AddressSanitizer also pads the object with a redzone): one manifest,
     * not a second object behind it. */
    uint64_t room = s->sh_size - sizeof *out;
    const char *schema = (const char *)p + sizeof *out;
    if (out->schema_len < 1 || out->schema_len > room) {
        bad("manifest: schema_len %u, but the section has room for %llu", out->schema_len,
            (unsigned long long)room);
        return;
    }
    for (uint64_t i = out->schema_len; i < room; i++)
        if (schema[i]) {
            bad("manifest: a byte other than NUL at %llu after the schema",
                (unsigned long long)(i - out->schema_len));
            break;
        }
    if (schema[out->schema_len - 1] != '\0' || strlen(schema) != out->schema_len - 1) {
        bad("manifest: the schema is not one NUL-terminated text of schema_len bytes");
        return;
    }
    json_error_t jerr;
    json_t *js = json_loads(schema, JSON_DECODE_ANY, &jerr);
    if (!js)
        bad("manifest: the schema is not JSON: %s (column %d)", jerr.text, jerr.column);
    else if (!json_is_object(js) && !json_is_boolean(js))
        bad("manifest: the schema is neither an object nor a boolean");
    json_decref(js);
}

/* Checks the defined dynamic symbols: exactly the two, the manifest in its
 * section. */
static void check_exports(const elf *e, size_t manifest_shndx)
{
    const Elf64_Shdr *dynsym = find_section(e, ".dynsym", NULL);
    if (!dynsym || !in_file(e, dynsym->sh_offset, dynsym->sh_size) ||
        dynsym->sh_entsize != sizeof(Elf64_Sym)) {
        bad("no readable .dynsym");
        return;
    }
    const Elf64_Shdr *strtab = section(e, dynsym->sh_link);
    const Elf64_Sym *sym = (const Elf64_Sym *)(e->base + dynsym->sh_offset);
    size_t n = dynsym->sh_size / sizeof *sym;
    int manifest = 0, descriptor = 0;
    for (size_t i = 1; i < n; i++) { /* 0 is the null symbol */
        if (sym[i].st_shndx == SHN_UNDEF) continue;
        const char *name = string_at(e, strtab, sym[i].st_name);
        if (!name) {
            bad("dynamic symbol %zu has no name", i);
        } else if (!strncmp(name, "__odr_asan", 10)) {
            /* AddressSanitizer's one-definition-rule indicator of an
             * exported global (sanitizer builds only): not the plugin's. */
        } else if (!strcmp(name, "sked_plugin_manifest")) {
            manifest++;
            if (sym[i].st_shndx != manifest_shndx)
                bad("sked_plugin_manifest is not in the .sked_plugin section");
            if (ELF64_ST_TYPE(sym[i].st_info) != STT_OBJECT)
                bad("sked_plugin_manifest is not a data object");
        } else if (!strcmp(name, "sked_plugin_v1")) {
            descriptor++;
            if (ELF64_ST_TYPE(sym[i].st_info) != STT_OBJECT)
                bad("sked_plugin_v1 is not a data object");
        } else {
            bad("exports %s: a plugin exports only sked_plugin_manifest and sked_plugin_v1", name);
        }
    }
    if (manifest != 1) bad("exports sked_plugin_manifest %d times", manifest);
    if (descriptor != 1) bad("exports sked_plugin_v1 %d times", descriptor);
}

/* Loads the plugin and compares its descriptor with the manifest. */
static void check_descriptor(const char *path, const sked_plugin_manifest_head *m)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        bad("dlopen: %s", dlerror());
        return;
    }
    const sked_plugin *d = dlsym(h, "sked_plugin_v1");
    char type[8 + SKED_PLUGIN_TYPE_MAX];
    snprintf(type, sizeof type, "jobtype/%s", m->type);
    if (!d) {
        bad("dlsym sked_plugin_v1: %s", dlerror());
    } else {
        if (d->abi != m->abi) bad("descriptor: abi %u, the manifest says %u", d->abi, m->abi);
        if (d->size != sizeof(sked_plugin))
            bad("descriptor: size %u, sizeof(sked_plugin) is %zu", d->size, sizeof(sked_plugin));
        if (!d->type || strcmp(d->type, type))
            bad("descriptor: type \"%s\", the manifest makes it \"%s\"", d->type ? d->type : "",
                type);
        if (!d->version || strcmp(d->version, m->version))
            bad("descriptor: version \"%s\", the manifest says \"%s\"",
                d->version ? d->version : "", m->version);
        if (!d->run) bad("descriptor: no run");
    }
    dlclose(h);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc == 4 && strcmp(argv[3], "--no-load")) || argc > 4) {
        fprintf(stderr, "usage: check_plugin FILE ABI [--no-load]\n");
        return 2;
    }
    file = argv[1];
    uint32_t want_abi = (uint32_t)strtoul(argv[2], NULL, 10);
    int load = argc == 3;

    /* The type name the file's name promises: basename without ".so". */
    char *copy = strdup(file);
    char want_type[SKED_PLUGIN_TYPE_MAX + 4];
    snprintf(want_type, sizeof want_type, "%s", basename(copy));
    free(copy);
    size_t tl = strlen(want_type);
    if (tl < 4 || strcmp(want_type + tl - 3, ".so")) {
        bad("not named <type>.so");
        return 1;
    }
    want_type[tl - 3] = '\0';

    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(file);
        return 1;
    }
    elf e = {.size = (size_t)st.st_size};
    e.base = mmap(NULL, e.size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (e.base == MAP_FAILED || e.size < sizeof(Elf64_Ehdr)) {
        bad("cannot map, or too small for ELF");
        return 1;
    }
    e.eh = (const Elf64_Ehdr *)e.base;
    if (memcmp(e.eh->e_ident, ELFMAG, SELFMAG) || e.eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        e.eh->e_type != ET_DYN || e.eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(&e, e.eh->e_shoff, (uint64_t)e.eh->e_shnum * sizeof(Elf64_Shdr))) {
        bad("not a 64-bit ELF shared object with readable section headers");
        return 1;
    }
    e.sh = (const Elf64_Shdr *)(e.base + e.eh->e_shoff);

    sked_plugin_manifest_head m;
    size_t shndx = 0;
    check_manifest(&e, want_abi, want_type, &shndx, &m);
    check_exports(&e, shndx);
    munmap((void *)e.base, e.size);
    /* Loaded even when something above is wrong (as long as the manifest
     * is readable), so every disagreement is reported at once. */
    if (load && !memcmp(m.magic, SKED_PLUGIN_MAGIC, sizeof m.magic)) check_descriptor(file, &m);
    if (!failures)
        printf("%s: manifest %s %s (abi %u) and exports as promised%s\n", file, m.type, m.version,
               m.abi, load ? ", descriptor agrees" : " (not loaded)");
    return failures ? 1 : 0;
}
