/*
 * Secret values in job documents; see secret.h. Every walk here is bounded
 * by the depth of the document, which the job parser limits
 * (JOBSPEC_CONFIG_DEPTH) before anything else walks a config.
 */
#include "core/secret.h"

#include <stdio.h>
#include <string.h>

bool secret_is(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 1 &&
           json_is_string(json_object_get(v, "secret"));
}

bool secret_is_masked(const json_t *v)
{
    return secret_is(v) && !strcmp(json_string_value(json_object_get(v, "secret")), SECRET_MASK);
}

/* A deep copy of v in which each secret becomes what map makes of it. */
static json_t *map_secrets(const json_t *v, json_t *(*map)(const json_t *secret))
{
    if (secret_is(v)) return map(v);
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            json_object_set_new(o, key, map_secrets(m, map));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            json_array_append_new(a, map_secrets(m, map));
        }
        return a;
    }
    return json_deep_copy(v);
}

static json_t *plain(const json_t *secret)
{
    return json_deep_copy(json_object_get(secret, "secret"));
}

static json_t *masked(const json_t *secret)
{
    (void)secret;
    return json_pack("{s:s}", "secret", SECRET_MASK);
}

json_t *secret_resolve(const json_t *v)
{
    return map_secrets(v, plain);
}

json_t *secret_redact(const json_t *v)
{
    return map_secrets(v, masked);
}

bool secret_find_masked(const json_t *v, const char *base, char *path, size_t n)
{
    if (secret_is_masked(v)) {
        snprintf(path, n, "%s.secret", base);
        return true;
    }
    char sub[512];
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            snprintf(sub, sizeof sub, "%s.%s", base, key);
            if (secret_find_masked(m, sub, path, n)) return true;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            snprintf(sub, sizeof sub, "%s[%zu]", base, i);
            if (secret_find_masked(m, sub, path, n)) return true;
        }
    }
    return false;
}

/* Writes, in p (a copy of the patch, changed in place), the stored secret
 * of c over every masked secret that stands where c has a secret. */
static void keep(const json_t *c, json_t *p)
{
    if (json_is_object(p) && json_is_object(c)) {
        const char *key;
        json_t *m;
        json_object_foreach(p, key, m)
        {
            const json_t *cm = json_object_get(c, key);
            if (secret_is_masked(m) && secret_is(cm))
                json_object_set_new(p, key, json_deep_copy(cm));
            else
                keep(cm, m);
        }
    } else if (json_is_array(p) && json_is_array(c)) {
        for (size_t i = 0; i < json_array_size(p); i++) {
            json_t *m = json_array_get(p, i);
            const json_t *cm = json_array_get(c, i);
            if (secret_is_masked(m) && secret_is(cm))
                json_array_set_new(p, i, json_deep_copy(cm));
            else
                keep(cm, m);
        }
    }
}

/* Whether keep would change anything: a masked secret in p over a secret
 * in c. */
static bool keeps(const json_t *c, const json_t *p)
{
    if (json_is_object(p) && json_is_object(c)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)p, key, m)
        {
            const json_t *cm = json_object_get(c, key);
            if ((secret_is_masked(m) && secret_is(cm)) || keeps(cm, m)) return true;
        }
    } else if (json_is_array(p) && json_is_array(c)) {
        for (size_t i = 0; i < json_array_size(p); i++) {
            const json_t *m = json_array_get(p, i), *cm = json_array_get(c, i);
            if ((secret_is_masked(m) && secret_is(cm)) || keeps(cm, m)) return true;
        }
    }
    return false;
}

json_t *secret_keep(const json_t *current, const json_t *patch)
{
    if (!keeps(current, patch)) return NULL;
    json_t *copy = json_deep_copy(patch);
    keep(current, copy);
    return copy;
}
