/* safetensors.c — strict safetensors reader (memory or mmap) and atomic writer.
 * See safetensors.h for the format, the checks and the usage. Little-endian hosts only (x86-64,
 * aarch64); the data is used in place.
 * Reference: huggingface/safetensors README ("Format" section) and its validation rules
 * (offsets must tile the buffer: no holes, no overlaps).
 */
#include "core/safetensors.h"
#include "core/json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dtypes -------------------------------------------------------------------------------- */
static const struct { const char *name; size_t size; } dtype_info[CPHIL_DT_COUNT] = {
    [CPHIL_DT_F32] = {"F32", 4},  [CPHIL_DT_F16] = {"F16", 2}, [CPHIL_DT_BF16] = {"BF16", 2},
    [CPHIL_DT_F64] = {"F64", 8},  [CPHIL_DT_I8] = {"I8", 1},   [CPHIL_DT_U8] = {"U8", 1},
    [CPHIL_DT_I16] = {"I16", 2},  [CPHIL_DT_I32] = {"I32", 4}, [CPHIL_DT_I64] = {"I64", 8},
    [CPHIL_DT_BOOL] = {"BOOL", 1},
};

size_t cphil_dtype_size(cphil_dtype dt) {
    return ((unsigned)dt < CPHIL_DT_COUNT) ? dtype_info[dt].size : 0;
}

const char *cphil_dtype_name(cphil_dtype dt) {
    return ((unsigned)dt < CPHIL_DT_COUNT) ? dtype_info[dt].name : "?";
}

bool cphil_dtype_from_name(const char *s, cphil_dtype *out) {
    for (int i = 0; i < CPHIL_DT_COUNT; i++)
        if (s && !strcmp(s, dtype_info[i].name)) {
            *out = (cphil_dtype)i;
            return true;
        }
    return false;
}

float cphil_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t cphil_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float cphil_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7F800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- reader -------------------------------------------------------------------------------- */
struct cphil_st_file {
    char *name;
    const uint8_t *bytes;  /* whole file */
    size_t size;
    uint8_t *owned;        /* cphil_alloc'd copy, or NULL */
    void *map;             /* mmap base, or NULL */
    size_t map_size;
    cphil_json_doc *doc;
    cphil_st_tensor *tensors;
    size_t n;
    const char **meta_keys, **meta_vals;
    size_t n_meta;
};

void cphil_st_close(cphil_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    cphil_free(f->owned);
    cphil_json_free(f->doc);
    cphil_free(f->tensors);
    cphil_free((void *)f->meta_keys);
    cphil_free((void *)f->meta_vals);
    cphil_free(f->name);
    cphil_free(f);
}

static int by_offset(const void *a, const void *b) {
    const cphil_st_tensor *x = *(const cphil_st_tensor *const *)a, *y = *(const cphil_st_tensor *const *)b;
    if (x->file_offset != y->file_offset) return x->file_offset < y->file_offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Parse and validate f->bytes[0..size). Messages are "name: ..." */
static cphil_status st_parse(cphil_st_file *f) {
    const char *nm = f->name;
    if (f->size < 8)
        return cphil_err(CPHIL_E_TRUNCATED, "%s: %zu bytes, too short for a safetensors file (needs an 8-byte header length)", nm, f->size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | f->bytes[i];
    if (hl > CPHIL_ST_MAX_HEADER)
        return cphil_err(CPHIL_E_FORMAT, "%s: header length %llu at offset 0 is absurd (limit %zu): not a safetensors file?",
                         nm, (unsigned long long)hl, CPHIL_ST_MAX_HEADER);
    if (hl > f->size - 8)
        return cphil_err(CPHIL_E_TRUNCATED, "%s: header length %llu runs past the end of the file (%zu bytes)",
                         nm, (unsigned long long)hl, f->size);
    if (hl < 2 || f->bytes[8] != '{')
        return cphil_err(CPHIL_E_FORMAT, "%s: header at offset 8 does not start with '{': not a safetensors file?", nm);
    const char *hdr = (const char *)f->bytes + 8;
    cphil_status s = cphil_json_parse(hdr, (size_t)hl, &f->doc);
    if (s) return cphil_err_prefix(s, "%s: header (file offset = JSON offset + 8): ", nm);
    const cphil_json_value *root = cphil_json_root(f->doc);
    if (root->type != CPHIL_JSON_OBJECT)
        return cphil_err(CPHIL_E_FORMAT, "%s: header is a JSON %s, expected an object", nm, cphil_json_type_name(root->type));
    size_t data_start = 8 + (size_t)hl, data_len = f->size - data_start;
    size_t nt = 0;
    const cphil_json_value *meta = NULL;
    for (size_t i = 0; i < root->len; i++) {
        if (!strcmp(root->members[i].key, "__metadata__")) meta = &root->members[i].value;
        else nt++;
    }
    if (meta) {
        if (meta->type != CPHIL_JSON_OBJECT)
            return cphil_err(CPHIL_E_FORMAT, "%s: __metadata__ at offset %zu is a %s, expected an object of strings",
                             nm, meta->offset + 8, cphil_json_type_name(meta->type));
        f->n_meta = meta->len;
        f->meta_keys = cphil_calloc(meta->len ? meta->len : 1, sizeof(char *));
        f->meta_vals = cphil_calloc(meta->len ? meta->len : 1, sizeof(char *));
        if (!f->meta_keys || !f->meta_vals) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", nm);
        for (size_t i = 0; i < meta->len; i++) {
            const cphil_json_member *m = &meta->members[i];
            if (m->value.type != CPHIL_JSON_STRING)
                return cphil_err(CPHIL_E_FORMAT, "%s: __metadata__[\"%s\"] at offset %zu is a %s, expected a string",
                                 nm, m->key, m->value.offset + 8, cphil_json_type_name(m->value.type));
            f->meta_keys[i] = m->key;
            f->meta_vals[i] = m->value.s;
        }
    }
    f->tensors = cphil_calloc(nt ? nt : 1, sizeof *f->tensors);
    if (!f->tensors) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", nm);
    f->n = 0;
    for (size_t i = 0; i < root->len; i++) {
        const cphil_json_member *m = &root->members[i];
        if (!strcmp(m->key, "__metadata__")) continue;
        const cphil_json_value *v = &m->value;
        size_t off = v->offset + 8;
        if (m->key_len == 0 || strlen(m->key) != m->key_len)
            return cphil_err(CPHIL_E_FORMAT, "%s: tensor name at offset %zu is empty or holds a NUL", nm, off);
        if (v->type != CPHIL_JSON_OBJECT)
            return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\" at offset %zu is a %s, expected {dtype, shape, data_offsets}",
                             nm, m->key, off, cphil_json_type_name(v->type));
        for (size_t k = 0; k < v->len; k++) {
            const char *kk = v->members[k].key;
            if (strcmp(kk, "dtype") && strcmp(kk, "shape") && strcmp(kk, "data_offsets"))
                return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\" at offset %zu has unknown field \"%s\"", nm, m->key, off, kk);
        }
        cphil_st_tensor *t = &f->tensors[f->n++];
        t->name = m->key;
        const char *dt = cphil_json_as_string(cphil_json_get(v, "dtype"));
        if (!dt) return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\" at offset %zu: missing or non-string \"dtype\"", nm, m->key, off);
        if (!cphil_dtype_from_name(dt, &t->dtype))
            return cphil_err(CPHIL_E_UNSUPPORTED, "%s: tensor \"%s\": dtype \"%s\" is not supported (F32 F16 BF16 F64 I8 U8 I16 I32 I64 BOOL)",
                             nm, m->key, dt);
        const cphil_json_value *sh = cphil_json_get(v, "shape");
        if (!sh || sh->type != CPHIL_JSON_ARRAY)
            return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\" at offset %zu: missing or non-array \"shape\"", nm, m->key, off);
        if (sh->len > CPHIL_ST_MAX_NDIM)
            return cphil_err(CPHIL_E_UNSUPPORTED, "%s: tensor \"%s\": rank %zu (at most %d supported)", nm, m->key, sh->len, CPHIL_ST_MAX_NDIM);
        t->ndim = (int)sh->len;
        size_t numel = 1;
        for (size_t k = 0; k < sh->len; k++) {
            int64_t d;
            if (!cphil_json_as_int64(&sh->items[k], &d) || d < 0)
                return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\": shape[%zu] at offset %zu is not a non-negative integer",
                                 nm, m->key, k, sh->items[k].offset + 8);
            t->shape[k] = d;
            if ((uint64_t)d > SIZE_MAX || !cphil_size_mul(numel, (size_t)d, &numel))
                return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\": shape overflows", nm, m->key);
        }
        t->numel = numel;
        size_t need;
        if (!cphil_size_mul(numel, cphil_dtype_size(t->dtype), &need))
            return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\": absurd size (shape x dtype overflows)", nm, m->key);
        const cphil_json_value *dof = cphil_json_get(v, "data_offsets");
        int64_t b, e;
        if (!dof || dof->type != CPHIL_JSON_ARRAY || dof->len != 2 || !cphil_json_as_int64(&dof->items[0], &b) ||
            !cphil_json_as_int64(&dof->items[1], &e) || b < 0 || e < b)
            return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\" at offset %zu: \"data_offsets\" must be [begin, end] with 0 <= begin <= end",
                             nm, m->key, off);
        if ((uint64_t)e > data_len)
            return cphil_err(CPHIL_E_TRUNCATED, "%s: tensor \"%s\": data_offsets [%lld, %lld] run past the data buffer (%zu bytes): truncated file?",
                             nm, m->key, (long long)b, (long long)e, data_len);
        t->nbytes = (size_t)(e - b);
        if (t->nbytes != need)
            return cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\": %zu data bytes but shape x %s needs %zu",
                             nm, m->key, t->nbytes, dt, need);
        t->file_offset = data_start + (size_t)b;
        t->data = f->bytes + t->file_offset;
    }
    /* The tensors must tile the data buffer: sorted by begin, each starts where the last ended. */
    if (f->n) {
        cphil_st_tensor **ord = cphil_calloc(f->n, sizeof *ord);
        if (!ord) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", nm);
        for (size_t i = 0; i < f->n; i++) ord[i] = &f->tensors[i];
        qsort(ord, f->n, sizeof *ord, by_offset);
        size_t at = data_start;
        s = CPHIL_OK;
        for (size_t i = 0; i < f->n && !s; i++) {
            if (ord[i]->file_offset < at)
                s = cphil_err(CPHIL_E_FORMAT, "%s: tensor \"%s\" (data offset %zu) overlaps the tensor before it (which ends at %zu)",
                              nm, ord[i]->name, ord[i]->file_offset - data_start, at - data_start);
            else if (ord[i]->file_offset > at)
                s = cphil_err(CPHIL_E_FORMAT, "%s: hole in the data buffer between offsets %zu and %zu (before tensor \"%s\")",
                              nm, at - data_start, ord[i]->file_offset - data_start, ord[i]->name);
            at = ord[i]->file_offset + ord[i]->nbytes;
        }
        cphil_free(ord);
        if (s) return s;
        if (at != f->size)
            return cphil_err(CPHIL_E_FORMAT, "%s: %zu bytes after the last tensor are not described by the header",
                             nm, f->size - at);
    } else if (data_len != 0) {
        return cphil_err(CPHIL_E_FORMAT, "%s: no tensors but %zu data bytes", nm, data_len);
    }
    return CPHIL_OK;
}

static cphil_st_file *st_new(const char *name) {
    cphil_st_file *f = cphil_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->name = cphil_strdup(name ? name : "(memory)");
    if (!f->name) {
        cphil_free(f);
        return NULL;
    }
    return f;
}

cphil_status cphil_st_open_memory(const void *data, size_t size, bool copy, const char *name,
                                  cphil_st_file **out) {
    *out = NULL;
    if (!data && size) return cphil_err(CPHIL_E_ARG, "safetensors: NULL data");
    cphil_st_file *f = st_new(name);
    if (!f) return cphil_err(CPHIL_E_NOMEM, "safetensors: out of memory");
    if (copy) {
        f->owned = cphil_alloc(size ? size : 1);
        if (!f->owned) {
            cphil_st_close(f);
            return cphil_err(CPHIL_E_NOMEM, "%s: out of memory (%zu bytes)", name ? name : "safetensors", size);
        }
        if (size) memcpy(f->owned, data, size);
        f->bytes = f->owned;
    } else {
        f->bytes = data;
    }
    f->size = size;
    cphil_status s = st_parse(f);
    if (s) {
        cphil_st_close(f);
        return s;
    }
    *out = f;
    return CPHIL_OK;
}

cphil_status cphil_st_open(const char *path, int flags, cphil_st_file **out) {
    *out = NULL;
    cphil_st_file *f = st_new(path);
    if (!f) return cphil_err(CPHIL_E_NOMEM, "safetensors: out of memory");
    cphil_status s;
    /* Both modes map: the header is parsed before any tensor byte is touched, so a bogus file
     * is refused at the cost of a page (reading it whole cost its full size). A map is private
     * and read-only, which is all a reader needs. */
    (void)flags;
    const uint8_t *m;
    size_t n;
    if ((s = cphil_file_map(path, (size_t)1 << 40, &m, &n))) goto fail;
    if (n == 0) {
        cphil_file_unmap(m, n);
        s = cphil_err(CPHIL_E_TRUNCATED, "%s: empty file (a safetensors file has at least 8 bytes)", path);
        goto fail;
    }
    f->map = (void *)m;
    f->map_size = n;
    f->size = n;
    f->bytes = m;
    s = st_parse(f);
    if (s) goto fail;
    *out = f;
    return CPHIL_OK;
fail:
    cphil_st_close(f);
    return s;
}

size_t cphil_st_count(const cphil_st_file *f) { return f ? f->n : 0; }
const cphil_st_tensor *cphil_st_at(const cphil_st_file *f, size_t i) { return (f && i < f->n) ? &f->tensors[i] : NULL; }
const char *cphil_st_name(const cphil_st_file *f) { return f ? f->name : ""; }

const cphil_st_tensor *cphil_st_find(const cphil_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *cphil_st_meta(const cphil_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

size_t cphil_st_meta_count(const cphil_st_file *f) { return f ? f->n_meta : 0; }

void cphil_st_meta_at(const cphil_st_file *f, size_t i, const char **key, const char **value) {
    *key = (f && i < f->n_meta) ? f->meta_keys[i] : NULL;
    *value = (f && i < f->n_meta) ? f->meta_vals[i] : NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

cphil_status cphil_st_expect(const cphil_st_file *f, const cphil_st_tensor *t, const char *name,
                             int ndim, const int64_t *shape) {
    const char *fn = cphil_st_name(f);
    if (!t) return cphil_err(CPHIL_E_FORMAT, "%s: missing tensor \"%s\"", fn, name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = false;
    if (!ok) {
        char a[160], b[160];
        shape_str(a, sizeof a, ndim, shape);
        shape_str(b, sizeof b, t->ndim, t->shape);
        return cphil_err(CPHIL_E_MISMATCH, "%s: tensor \"%s\" has shape %s, the model config needs %s", fn, t->name, b, a);
    }
    return CPHIL_OK;
}

cphil_status cphil_st_to_f32(const cphil_st_tensor *t, float *dst, size_t n, bool require_finite) {
    if (n != t->numel)
        return cphil_err(CPHIL_E_MISMATCH, "tensor \"%s\": %zu elements, caller expected %zu", t->name, t->numel, n);
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case CPHIL_DT_F32: if (n) memcpy(dst, p, n * 4); break;
    case CPHIL_DT_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = cphil_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    case CPHIL_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = cphil_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    case CPHIL_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default:
        return cphil_err(CPHIL_E_MISMATCH, "tensor \"%s\" has dtype %s, expected a float type", t->name, cphil_dtype_name(t->dtype));
    }
    if (require_finite)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(dst[i]))
                return cphil_err(CPHIL_E_NUMERIC, "tensor \"%s\": element %zu is %s (file offset %zu)", t->name, i,
                                 isnan(dst[i]) ? "NaN" : "infinite", t->file_offset + i * cphil_dtype_size(t->dtype));
    return CPHIL_OK;
}

/* ---- writer -------------------------------------------------------------------------------- */
typedef struct st_entry {
    char *name;
    cphil_dtype dtype;
    int ndim;
    int64_t shape[CPHIL_ST_MAX_NDIM];
    const void *data;
    size_t nbytes;
    size_t begin;
} st_entry;

struct cphil_st_writer {
    st_entry *e;
    size_t n, cap;
    char **mk, **mv;
    size_t nm, mcap;
};

cphil_status cphil_st_writer_new(cphil_st_writer **out) {
    *out = cphil_calloc(1, sizeof **out);
    return *out ? CPHIL_OK : cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
}

void cphil_st_writer_free(cphil_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) cphil_free(w->e[i].name);
    for (size_t i = 0; i < w->nm; i++) {
        cphil_free(w->mk[i]);
        cphil_free(w->mv[i]);
    }
    cphil_free(w->e);
    cphil_free(w->mk);
    cphil_free(w->mv);
    cphil_free(w);
}

cphil_status cphil_st_writer_add(cphil_st_writer *w, const char *name, cphil_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data) {
    if (!name || !*name || !strcmp(name, "__metadata__"))
        return cphil_err(CPHIL_E_ARG, "safetensors writer: bad tensor name \"%s\"", name ? name : "(null)");
    if ((unsigned)dtype >= CPHIL_DT_COUNT) return cphil_err(CPHIL_E_ARG, "safetensors writer: %s: bad dtype", name);
    if (ndim < 0 || ndim > CPHIL_ST_MAX_NDIM)
        return cphil_err(CPHIL_E_ARG, "safetensors writer: %s: rank %d (0..%d)", name, ndim, CPHIL_ST_MAX_NDIM);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name)) return cphil_err(CPHIL_E_ARG, "safetensors writer: duplicate tensor name \"%s\"", name);
    size_t nb = cphil_dtype_size(dtype);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX || !cphil_size_mul(nb, (size_t)shape[i], &nb))
            return cphil_err(CPHIL_E_ARG, "safetensors writer: %s: bad dimension %d", name, i);
    if (nb && !data) return cphil_err(CPHIL_E_ARG, "safetensors writer: %s: NULL data", name);
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 32;
        st_entry *ne = cphil_realloc(w->e, w->cap * sizeof *ne, nc * sizeof *ne);
        if (!ne) return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
        w->e = ne;
        w->cap = nc;
    }
    st_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = cphil_strdup(name);
    if (!e->name) return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = nb;
    w->n++;
    return CPHIL_OK;
}

cphil_status cphil_st_writer_meta(cphil_st_writer *w, const char *key, const char *value) {
    if (!key || !value) return cphil_err(CPHIL_E_ARG, "safetensors writer: NULL metadata key or value");
    for (size_t i = 0; i < w->nm; i++)
        if (!strcmp(w->mk[i], key)) {
            char *v = cphil_strdup(value);
            if (!v) return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
            cphil_free(w->mv[i]);
            w->mv[i] = v;
            return CPHIL_OK;
        }
    if (w->nm == w->mcap) {
        size_t nc = w->mcap ? w->mcap * 2 : 8;
        char **a = cphil_realloc(w->mk, w->mcap * sizeof *a, nc * sizeof *a);
        if (!a) return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
        w->mk = a;
        char **b = cphil_realloc(w->mv, w->mcap * sizeof *b, nc * sizeof *b);
        if (!b) return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
        w->mv = b;
        w->mcap = nc;
    }
    w->mk[w->nm] = cphil_strdup(key);
    w->mv[w->nm] = cphil_strdup(value);
    if (!w->mk[w->nm] || !w->mv[w->nm]) {
        cphil_free(w->mk[w->nm]);
        cphil_free(w->mv[w->nm]);
        return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
    }
    w->nm++;
    return CPHIL_OK;
}

/* A small growable byte buffer (through cphil_alloc). */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->cap - b->n < n + 1) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc - b->n < n + 1) nc *= 2;
        char *np = cphil_realloc(b->p, b->n, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, long long v) {
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "%lld", v);
    sb_put(b, tmp, (size_t)k);
}

static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"') sb_put(b, "\\\"", 2);
        else if (c == '\\') sb_put(b, "\\\\", 2);
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\r') sb_put(b, "\\r", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c < 0x20) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)c);
            sb_put(b, tmp, 6);
        }
        else sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static int entry_order(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    size_t sx = cphil_dtype_size(x->dtype), sy = cphil_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Build the 8-byte length + padded header; sorts entries and assigns their offsets. */
static cphil_status build_header(cphil_st_writer *w, sbuf *b, size_t *total) {
    qsort(w->e, w->n, sizeof *w->e, entry_order);
    size_t at = 0;
    for (size_t i = 0; i < w->n; i++) {
        w->e[i].begin = at;
        if (!cphil_size_add(at, w->e[i].nbytes, &at)) return cphil_err(CPHIL_E_ARG, "safetensors writer: total size overflows");
    }
    sb_put(b, "\0\0\0\0\0\0\0\0", 8);
    sb_str(b, "{");
    bool first = true;
    if (w->nm) {
        sb_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nm; i++) {
            if (i) sb_str(b, ",");
            sb_json_string(b, w->mk[i]);
            sb_str(b, ":");
            sb_json_string(b, w->mv[i]);
        }
        sb_str(b, "}");
        first = false;
    }
    for (size_t i = 0; i < w->n; i++) {
        const st_entry *e = &w->e[i];
        if (!first) sb_str(b, ",");
        first = false;
        sb_json_string(b, e->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, cphil_dtype_name(e->dtype));
        sb_str(b, "\",\"shape\":[");
        for (int k = 0; k < e->ndim; k++) {
            if (k) sb_str(b, ",");
            sb_int(b, (long long)e->shape[k]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_int(b, (long long)e->begin);
        sb_str(b, ",");
        sb_int(b, (long long)(e->begin + e->nbytes));
        sb_str(b, "]}");
    }
    sb_str(b, "}");
    while (!b->oom && (b->n - 8) % 8) sb_put(b, " ", 1);
    if (b->oom) return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory");
    uint64_t hl = b->n - 8;
    for (int i = 0; i < 8; i++) b->p[i] = (char)(hl >> (8 * i));
    if (!cphil_size_add(b->n, at, total)) return cphil_err(CPHIL_E_ARG, "safetensors writer: total size overflows");
    return CPHIL_OK;
}

cphil_status cphil_st_writer_to_memory(cphil_st_writer *w, uint8_t **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    sbuf b = {0};
    size_t total;
    cphil_status s = build_header(w, &b, &total);
    if (s) {
        cphil_free(b.p);
        return s;
    }
    uint8_t *o = cphil_alloc(total);
    if (!o) {
        cphil_free(b.p);
        return cphil_err(CPHIL_E_NOMEM, "safetensors writer: out of memory (%zu bytes)", total);
    }
    memcpy(o, b.p, b.n);
    for (size_t i = 0; i < w->n; i++)
        if (w->e[i].nbytes) memcpy(o + b.n + w->e[i].begin, w->e[i].data, w->e[i].nbytes);
    cphil_free(b.p);
    *buf = o;
    *size = total;
    return CPHIL_OK;
}

cphil_status cphil_st_writer_write(cphil_st_writer *w, const char *path) {
    sbuf b = {0};
    size_t total;
    cphil_status s = build_header(w, &b, &total);
    if (s) {
        cphil_free(b.p);
        return s;
    }
    cphil_atomic_file af;
    s = cphil_atomic_open(&af, path);
    if (!s) s = cphil_atomic_write(&af, b.p, b.n);
    for (size_t i = 0; i < w->n && !s; i++)
        if (w->e[i].nbytes) s = cphil_atomic_write(&af, w->e[i].data, w->e[i].nbytes);
    if (!s) s = cphil_atomic_commit(&af);
    else cphil_atomic_abort(&af);
    cphil_free(b.p);
    return s;
}
