/* alloc.c — the one allocation hook. Every heap allocation of the library goes through
 * cphil_alloc/cphil_free, so tests can count allocations (the per-frame inference call must
 * make none) and inject failures (every failure in loading must return CPHIL_E_NOMEM cleanly).
 * All blocks are 64-byte aligned (cache lines, AVX-512 loads). */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t size, size_t align, void *user) {
    (void)user;
    void *p = NULL;
    if (size == 0) size = 1;
    if (posix_memalign(&p, align, size) != 0) return NULL;
    return p;
}
static void default_free(void *p, void *user) { (void)user; free(p); }

static cphil_allocator g_alloc = {default_alloc, default_free, NULL};

void cphil_set_allocator(const cphil_allocator *a) {
    if (a) g_alloc = *a;
    else {
        g_alloc.alloc = default_alloc;
        g_alloc.free = default_free;
        g_alloc.user = NULL;
    }
}

void *cphil_alloc(size_t size) { return g_alloc.alloc(size, 64, g_alloc.user); }

void *cphil_calloc(size_t n, size_t size) {
    size_t total;
    if (!cphil_size_mul(n, size, &total)) return NULL;
    void *p = cphil_alloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *cphil_realloc(void *p, size_t old_size, size_t new_size) {
    void *q = cphil_alloc(new_size);
    if (!q) return NULL;
    if (p) {
        memcpy(q, p, old_size < new_size ? old_size : new_size);
        cphil_free(p);
    }
    return q;
}

void cphil_free(void *p) {
    if (p) g_alloc.free(p, g_alloc.user);
}

char *cphil_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cphil_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

bool cphil_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

bool cphil_size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return false;
    *out = a + b;
    return true;
}
