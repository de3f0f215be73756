/*
 * Isolation of job attempts (DESIGN §8), prepared in the worker before a
 * fork; see spawn.h. Resolves the user jobs run as (the child may not read
 * /etc/passwd: it must not allocate), clamps resource limits, builds every
 * job's environment from a fixed minimal base rather than the worker's, and
 * makes and removes the fresh working directory of each attempt. The child
 * applies the identity and the limits itself (spawn.c).
 */
#include "worker/spawn.h"
#include "worker/spawn_int.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the environment ---------------------------------------------------- */

static int env_same_name(const char *a, const char *b)
{
    while (*a && *a != '=' && *a == *b)
        a++, b++;
    return (*a == '=' || !*a) && (*b == '=' || !*b);
}

char **spawn_env_new(const char *const *base, const char *const *extra)
{
    size_t n = 0, nextra = 0;
    for (const char *const *e = base; e && *e; e++)
        n++;
    for (const char *const *e = extra; e && *e; e++)
        nextra++;
    char **env = xmalloc((n + nextra + 1) * sizeof *env);
    size_t k = 0;
    const char *const *srcs[2] = {base, extra};
    for (int s = 0; s < 2; s++) {
        for (const char *const *e = srcs[s]; e && *e; e++) {
            size_t j;
            for (j = 0; j < k; j++)
                if (env_same_name(env[j], *e)) break;
            if (j < k)
                free(env[j]);
            else
                k++;
            env[j] = xstrdup(*e);
        }
    }
    env[k] = NULL;
    return env;
}

char **spawn_env_base(const spawn_user_t *u)
{
    const char *tz = getenv("TZ");
    char *v[8];
    int n = 0;
    v[n++] = xstrdup("PATH=" SPAWN_DEFAULT_PATH);
    v[n++] = xasprintf("HOME=%s", u && u->home ? u->home : "/");
    if (u && u->name) {
        v[n++] = xasprintf("USER=%s", u->name);
        v[n++] = xasprintf("LOGNAME=%s", u->name);
    }
    v[n++] = xstrdup("LANG=C.UTF-8");
    if (tz && *tz) v[n++] = xasprintf("TZ=%s", tz);
    v[n] = NULL;
    char **env = spawn_env_new((const char *const *)v, NULL);
    for (int i = 0; i < n; i++)
        free(v[i]);
    return env;
}

void spawn_env_free(char **env)
{
    if (!env) return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* ---- identity, limits, working directories ------------------------------ */

#define RM_DEPTH_MAX 256 /* directory levels spawn_tree_remove descends */

static void errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!buf || !len) return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* A decimal id, all digits, fitting id_t; 1 and *out, or 0. */
static int parse_id(const char *s, unsigned *out)
{
    if (!*s) return 0;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 0x7fffffffUL) return 0;
    }
    *out = (unsigned)v;
    return 1;
}

/* getpwnam_r/getpwuid_r with a buffer that grows. *pw is filled and
 * *bufp (new, caller frees) backs its strings. Returns 1 found, 0 not. */
static int pw_find(const char *name, uid_t uid, struct passwd *pw, char **bufp)
{
    size_t len = 1024;
    for (;;) {
        char *buf = xmalloc(len);
        struct passwd *res = NULL;
        int e = name ? getpwnam_r(name, pw, buf, len, &res) : getpwuid_r(uid, pw, buf, len, &res);
        if (e == ERANGE && len < (1u << 20)) {
            free(buf);
            len *= 4;
            continue;
        }
        if (!res) {
            free(buf);
            return 0;
        }
        *bufp = buf;
        return 1;
    }
}

static int gr_find(const char *name, gid_t *gid)
{
    size_t len = 1024;
    for (;;) {
        char *buf = xmalloc(len);
        struct group gr, *res = NULL;
        int e = getgrnam_r(name, &gr, buf, len, &res);
        if (e == ERANGE && len < (1u << 20)) {
            free(buf);
            len *= 4;
            continue;
        }
        if (res) *gid = gr.gr_gid;
        free(buf);
        return res != NULL;
    }
}

int spawn_user_lookup(const char *spec, spawn_user_t *out, char *errbuf, size_t errlen)
{
    char *user = NULL, *pwbuf = NULL;
    const char *group = NULL;
    struct passwd pw;
    int rc = 0, have_pw = 0;
    unsigned num;

    memset(out, 0, sizeof *out);
    if (!spec) {
        /* The worker's own identity: nothing to switch, but HOME and USER
         * still come from the password database, not the worker's env. */
        out->cred.uid = geteuid();
        out->cred.gid = getegid();
        have_pw = pw_find(NULL, out->cred.uid, &pw, &pwbuf);
        out->name = have_pw ? xstrdup(pw.pw_name) : xasprintf("%u", (unsigned)out->cred.uid);
        out->home = xstrdup(have_pw && pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/");
        goto out;
    }
    user = xstrdup(spec);
    char *colon = strchr(user, ':');
    if (colon) {
        *colon = '\0';
        group = colon + 1;
        if (!*group) {
            errf(errbuf, errlen, "'%s': the group after ':' is empty", spec);
            rc = SKED_EINVAL;
            goto out;
        }
    }
    if (!*user) {
        errf(errbuf, errlen, "'%s': the user is empty", spec);
        rc = SKED_EINVAL;
        goto out;
    }
    have_pw = pw_find(user, 0, &pw, &pwbuf);
    if (!have_pw && parse_id(user, &num)) {
        have_pw = pw_find(NULL, (uid_t)num, &pw, &pwbuf);
        if (!have_pw) { /* a bare number is fine (containers often have no entry) */
            out->cred.uid = (uid_t)num;
            out->cred.gid = (gid_t)num;
        }
    } else if (!have_pw) {
        errf(errbuf, errlen, "no such user '%s'", user);
        rc = SKED_EINVAL;
        goto out;
    }
    if (have_pw) {
        out->cred.uid = pw.pw_uid;
        out->cred.gid = pw.pw_gid;
    }
    if (group && !gr_find(group, &out->cred.gid)) {
        if (!parse_id(group, &num)) {
            errf(errbuf, errlen, "no such group '%s'", group);
            rc = SKED_EINVAL;
            goto out;
        }
        out->cred.gid = (gid_t)num;
    }
    out->name = xstrdup(have_pw ? pw.pw_name : user);
    out->home = xstrdup(have_pw && pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/");
    /* initgroups(3)'s list, resolved here: the child may not read files. */
    if (have_pw) {
        int n = 32;
        for (;;) {
            gid_t *g = xmalloc((size_t)n * sizeof *g);
            int want = n;
            if (getgrouplist(pw.pw_name, out->cred.gid, g, &want) >= 0) {
                out->cred.groups = g;
                out->cred.ngroups = (size_t)want;
                break;
            }
            free(g);
            if (want <= n || want > 65536) { /* cannot grow: fall back to the one group */
                want = 0;
                break;
            }
            n = want;
        }
    }
    if (!out->cred.groups) {
        out->cred.groups = xmalloc(sizeof *out->cred.groups);
        out->cred.groups[0] = out->cred.gid;
        out->cred.ngroups = 1;
    }
    out->switch_ids = 1;
    if (geteuid() != 0 && out->cred.uid == geteuid() && out->cred.gid == getegid())
        out->switch_ids = 0;
out:
    free(user);
    free(pwbuf);
    if (rc < 0) spawn_user_clear(out);
    return rc;
}

void spawn_user_clear(spawn_user_t *u)
{
    if (!u) return;
    free(u->cred.groups);
    free(u->name);
    free(u->home);
    memset(u, 0, sizeof *u);
}

int spawn_limits_add(spawn_limits_t *l, int resource, rlim_t value)
{
    if (l->n >= SPAWN_LIMITS_MAX) return SKED_EINVAL;
    struct rlimit cur;
    if (geteuid() != 0 && getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
        (value == RLIM_INFINITY || value > cur.rlim_max))
        value = cur.rlim_max;
    l->resource[l->n] = resource;
    l->value[l->n].rlim_cur = value;
    l->value[l->n].rlim_max = value;
    l->n++;
    return 0;
}

/* mkdir -p of the parents of path (mode 0755); the last component is the
 * caller's. */
static int mkdir_parents(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = '/';
    }
    free(p);
    return rc;
}

int spawn_workdir_init(const char *base, char *errbuf, size_t errlen)
{
    struct stat st;
    int rc = 0;
    if (!base || base[0] != '/') {
        errf(errbuf, errlen, "the work directory must be an absolute path, not '%s'",
             base ? base : "");
        return SKED_EINVAL;
    }
    if ((rc = mkdir_parents(base)) < 0 || (mkdir(base, 0711) < 0 && errno != EEXIST)) {
        if (!rc) rc = -errno;
        errf(errbuf, errlen, "cannot create %s: %s", base, strerror(-rc));
        return rc;
    }
    if (lstat(base, &st) < 0) {
        rc = -errno;
        errf(errbuf, errlen, "%s: %s", base, strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        errf(errbuf, errlen, "%s is not a directory (a symbolic link is refused too)", base);
        return SKED_EINVAL;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        errf(errbuf, errlen,
             "%s must be owned by the worker's user (uid %u) and writable by no one else; "
             "it is owned by uid %u with mode %04o",
             base, (unsigned)geteuid(), (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return SKED_EINVAL;
    }
    /* Run-as users must be able to pass through to their own directory. */
    if ((st.st_mode & 0111) != 0111 && chmod(base, (st.st_mode & 07777) | 0111) < 0) {
        rc = -errno;
        errf(errbuf, errlen, "chmod %s: %s", base, strerror(-rc));
        return rc;
    }
    return 0;
}

int spawn_workdir_new(const char *base, const char *prefix, const spawn_cred_t *cred, char **out)
{
    char *path = xasprintf("%s/%s-XXXXXX", base, prefix && *prefix ? prefix : "attempt");
    int rc = 0;
    *out = NULL;
    if (!mkdtemp(path)) {
        rc = -errno;
        goto out;
    }
    /* We just made it 0700 in a directory only we may write: nobody can
     * have swapped it for a link, so chown by name is safe. */
    if (cred && chown(path, cred->uid, cred->gid) < 0) {
        rc = -errno;
        rmdir(path);
        goto out;
    }
    *out = path;
    path = NULL;
out:
    free(path);
    return rc;
}

/* Removes name (in the directory dirfd) and, for a directory, all below
 * it, on file system dev. Returns 0 or the first -errno. */
static int rm_at(int dirfd, const char *name, dev_t dev, int depth)
{
    struct stat st;
    int rc = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (st.st_dev != dev) return -EXDEV; /* a mount point: never descend */
    if (depth > RM_DEPTH_MAX) return -ELOOP;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && st.st_uid == geteuid()) {
        /* A job may leave a directory it made unreadable (a non-root
         * worker is that same user, so the chmod crosses no boundary). */
        if (fchmodat(dirfd, name, 0700, 0) == 0)
            fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return -errno;
    /* What we opened is what we stat'ed only if it is on the same device;
     * a swap between the two calls could otherwise cross a mount. */
    struct stat st2;
    if (fstat(fd, &st2) < 0 || st2.st_dev != dev) {
        close(fd);
        return -EXDEV;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* Entries are removed while the stream is read; a second pass picks
     * up anything the stream skipped because of that. */
    for (int pass = 0; pass < 2; pass++) {
        struct dirent *e;
        errno = 0;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            int r = rm_at(fd, e->d_name, dev, depth + 1);
            if (r < 0 && !rc) rc = r;
        }
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            closedir(d);
            return rc;
        }
        /* Retry only a clean pass: after a failure below, a second pass
         * would fail the same way, at every level (exponential time). */
        if (errno != ENOTEMPTY || rc < 0) break;
        rewinddir(d);
    }
    if (!rc) rc = -errno;
    closedir(d);
    return rc;
}

int spawn_tree_remove(const char *path)
{
    char *parent = NULL;
    int pfd = -1, rc = 0;
    struct stat st;
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1]) return -EINVAL;
    parent = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstatat(pfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = errno == ENOENT ? 0 : -errno;
        goto out;
    }
    rc = rm_at(pfd, slash + 1, st.st_dev, 0);
out:
    if (pfd >= 0) close(pfd);
    free(parent);
    return rc;
}
