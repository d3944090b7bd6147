/* infer_policy.c — policy files for the engine (see infer_policy.h): reading f32 / bf16 / int8
 * policies through the strict safetensors reader, checking them against the tensor table of
 * their config, and writing quantized copies.
 * Does not: training checkpoints (src/train), ONNX (src/export).
 */
#include "infer/infer_policy.h"

#include "core/safetensors.h"

#include <math.h>
#include <string.h>

/* The largest int8 weight or activation scale a file may hold. A trained policy's are far below
 * 1 (scale = max|w| / 127); this bound keeps every dequantized weight (at most 127 x scale) and
 * the products' sums finite, where a scale near FLT_MAX gave infinities that the packing then
 * turned into NaN and out-of-range integers (issue 13, C9). */
#define I8_MAX_SCALE 1e20f

typedef struct pol_tensor {
    const char *name;   /* points into the st file (kept open) */
    cphil_wtype dtype;  /* CPHIL_W_F32 (data = floats) or CPHIL_W_I8 (data = int8) */
    int rank;
    int64_t shape[4];
    void *data;         /* owned */
    float *scale;       /* int8: owned [shape[0]] */
    float act_scale;
} pol_tensor;

struct cphil_infer_policy {
    char *path;
    cphil_st_file *f;
    cphil_model_config cfg;
    cphil_infer_spec spec;
    cphil_wtype prec;
    bool is_static;
    int n;
    pol_tensor *t;
};

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* A "*_scale" / "*_act_scale" tensor belongs to the int8 matrix of its stem; one without that
 * matrix is refused, not ignored (a file edited by hand, or made for another engine). */
static cphil_status check_companion(const cphil_infer_policy *p, const char *name) {
    size_t n = strlen(name), cut = ends_with(name, "_act_scale") ? 10 : 6;
    char stem[160];
    const cphil_st_tensor *base = NULL;
    if (n - cut < sizeof stem) {
        memcpy(stem, name, n - cut);
        stem[n - cut] = '\0';
        base = cphil_st_find(p->f, stem);
    }
    if (!base || base->dtype != CPHIL_DT_I8)
        return cphil_err(CPHIL_E_FORMAT, "%s: tensor '%s' is a scale without an int8 matrix '%.*s' (file edited or made "
                         "for another model?)", p->path, name, (int)(n - cut), name);
    return CPHIL_OK;
}

static cphil_status load_tensors(cphil_infer_policy *p) {
    const char *path = p->path;
    size_t n = cphil_st_count(p->f);
    p->t = cphil_calloc(n ? n : 1, sizeof *p->t);
    if (!p->t) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const cphil_st_tensor *st = cphil_st_at(p->f, i);
        if (ends_with(st->name, "_scale")) { /* companions, read with their tensor */
            cphil_status s = check_companion(p, st->name);
            if (s) return s;
            continue;
        }
        pol_tensor *t = &p->t[p->n++];
        t->name = st->name;
        t->rank = st->ndim;
        if (st->ndim > 4) return cphil_err(CPHIL_E_MISMATCH, "%s: tensor '%s' has rank %d", path, st->name, st->ndim);
        for (int d = 0; d < st->ndim; d++) t->shape[d] = st->shape[d];
        if (st->dtype == CPHIL_DT_I8) {
            if (st->ndim != 2 || st->shape[0] < 1)
                return cphil_err(CPHIL_E_FORMAT, "%s: int8 tensor '%s' must be a matrix", path, st->name);
            t->dtype = CPHIL_W_I8;
            t->data = cphil_alloc(st->numel ? st->numel : 1);
            if (!t->data) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
            memcpy(t->data, st->data, st->numel);
            char sn[160];
            snprintf(sn, sizeof sn, "%s_scale", st->name);
            const cphil_st_tensor *sc = cphil_st_find(p->f, sn);
            int64_t rows = st->shape[0];
            cphil_status s = cphil_st_expect(p->f, sc, sn, 1, &rows);
            if (s) return s;
            t->scale = cphil_alloc(sizeof(float) * (size_t)rows);
            if (!t->scale) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
            if ((s = cphil_st_to_f32(sc, t->scale, (size_t)rows, true))) return cphil_err_prefix(s, "%s: ", path);
            for (int64_t r = 0; r < rows; r++)
                if (!(t->scale[r] > 0.f && t->scale[r] <= I8_MAX_SCALE))
                    return cphil_err(CPHIL_E_FORMAT, "%s: tensor '%s' scale %lld is %g (must be > 0 and <= %g)", path, sn,
                                     (long long)r, (double)t->scale[r], (double)I8_MAX_SCALE);
            snprintf(sn, sizeof sn, "%s_act_scale", st->name);
            const cphil_st_tensor *as = cphil_st_find(p->f, sn);
            if (as) {
                int64_t one = 1;
                if ((s = cphil_st_expect(p->f, as, sn, 1, &one))) return s;
                if ((s = cphil_st_to_f32(as, &t->act_scale, 1, true))) return cphil_err_prefix(s, "%s: ", path);
                if (!(t->act_scale >= 0.f && t->act_scale <= I8_MAX_SCALE))
                    return cphil_err(CPHIL_E_FORMAT, "%s: '%s' is %g (must be >= 0 and <= %g)", path, sn,
                                     (double)t->act_scale, (double)I8_MAX_SCALE);
                if (t->act_scale > 0.f) p->is_static = true;
            }
            p->prec = CPHIL_W_I8;
        } else {
            t->dtype = CPHIL_W_F32;
            t->data = cphil_alloc(sizeof(float) * (st->numel ? st->numel : 1));
            if (!t->data) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
            cphil_status s = cphil_st_to_f32(st, t->data, st->numel, true);
            if (s) return cphil_err_prefix(s, "%s: tensor '%s': ", path, st->name);
            if (st->dtype == CPHIL_DT_BF16 && p->prec == CPHIL_W_F32) p->prec = CPHIL_W_BF16;
        }
    }
    return CPHIL_OK;
}

static const pol_tensor *find(const cphil_infer_policy *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->t[i].name, name)) return &p->t[i];
    return NULL;
}

cphil_status cphil_infer_policy_lookup(void *ctx, const char *name, cphil_infer_tensor *out) {
    const cphil_infer_policy *p = ctx;
    const pol_tensor *t = find(p, name);
    if (!t)
        return cphil_err(CPHIL_E_MISMATCH, "%s: tensor '%s' is missing (file made for another model?)", p->path, name);
    memset(out, 0, sizeof *out);
    out->dtype = t->dtype;
    out->rank = t->rank;
    for (int d = 0; d < 4; d++) out->shape[d] = t->shape[d];
    out->data = t->data;
    out->scale = t->scale;
    out->act_scale = t->act_scale;
    return CPHIL_OK;
}

cphil_status cphil_infer_policy_open(const char *path, cphil_infer_policy **out) {
    *out = NULL;
    cphil_infer_policy *p = cphil_calloc(1, sizeof *p);
    if (!p) return cphil_err(CPHIL_E_NOMEM, "out of memory");
    cphil_status s = CPHIL_OK;
    p->path = cphil_strdup(path);
    if (!p->path) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = cphil_st_open(path, CPHIL_ST_MMAP, &p->f)) || (s = cphil_policy_check_format(p->f))) goto fail;
    const char *cfg = cphil_st_meta(p->f, "cphil_config");
    if ((s = cphil_model_config_from_json(cfg, strlen(cfg), &p->cfg))) {
        cphil_err_prefix(s, "%s: cphil_config: ", path);
        goto fail;
    }
    cphil_infer_spec_from_config(&p->spec, &p->cfg);
    p->prec = CPHIL_W_F32;
    if ((s = load_tensors(p))) goto fail;
    /* every tensor of the config's table must be there with its shape (the engine reads them) */
    cphil_model tab;
    if ((s = cphil_model_init(&tab, &p->cfg))) {
        cphil_err_prefix(s, "%s: ", path);
        goto fail;
    }
    for (int i = 0; i < tab.n_tensors && !s; i++) {
        const cphil_tensor *tt = &tab.tensors[i];
        const pol_tensor *t = find(p, tt->name);
        if (!t) {
            s = cphil_err(CPHIL_E_MISMATCH, "%s: tensor '%s' is missing (the config says %s)", path, tt->name,
                          cphil_backbone_name(p->cfg.backbone));
            break;
        }
        bool ok = t->rank == tt->ndim;
        for (int d = 0; ok && d < tt->ndim; d++) ok = t->shape[d] == tt->shape[d];
        if (!ok) s = cphil_err(CPHIL_E_MISMATCH, "%s: tensor '%s' does not have the shape its config gives", path, tt->name);
    }
    if (!s && tab.n_tensors != p->n)
        s = cphil_err(CPHIL_E_MISMATCH, "%s: %d tensors where the config's model has %d (file made for another model?)",
                      path, p->n, tab.n_tensors);
    cphil_model_free(&tab);
    if (s) goto fail;
    *out = p;
    return CPHIL_OK;
fail:
    cphil_infer_policy_close(p);
    return s;
}

void cphil_infer_policy_close(cphil_infer_policy *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        cphil_free(p->t[i].data);
        cphil_free(p->t[i].scale);
    }
    cphil_free(p->t);
    cphil_st_close(p->f);
    cphil_free(p->path);
    cphil_free(p);
}

const cphil_infer_spec *cphil_infer_policy_spec(const cphil_infer_policy *p) { return &p->spec; }
const cphil_model_config *cphil_infer_policy_config(const cphil_infer_policy *p) { return &p->cfg; }
cphil_wtype cphil_infer_policy_precision(const cphil_infer_policy *p) { return p->prec; }
bool cphil_infer_policy_is_static(const cphil_infer_policy *p) { return p->is_static; }
const char *cphil_infer_policy_path(const cphil_infer_policy *p) { return p->path; }

cphil_status cphil_infer_policy_build(const cphil_infer_policy *p, cphil_wtype precision, cphil_infer_model **out) {
    if (p->prec == CPHIL_W_I8 && precision != CPHIL_W_I8)
        return cphil_err(CPHIL_E_MISMATCH, "%s holds int8 weights: it runs only in int8 (use the f32 policy for %s)",
                         p->path, precision == CPHIL_W_F32 ? "f32" : "bf16");
    cphil_status s = cphil_infer_model_build(&p->spec, cphil_infer_policy_lookup, (void *)p, precision, out);
    if (s) cphil_err_prefix(s, "%s: ", p->path);
    return s;
}

/* Matrices the engine runs as products (quantized in int8 files): 2-D Linear ".weight" tensors
 * and the recurrent nets' "weight_ih_l{k}" / "weight_hh_l{k}" (not Mamba's A_log). */
static bool is_matrix(const pol_tensor *t) {
    /* autoregressive heads' tables are gathers, not products: they stay f32 (infer_ar.h) */
    if (ends_with(t->name, ".ar.weight")) return false;
    return t->rank == 2 && (ends_with(t->name, ".weight") || strstr(t->name, ".weight_ih_l") || strstr(t->name, ".weight_hh_l"));
}

cphil_status cphil_infer_policy_write_quantized(const cphil_infer_policy *p, const char *path, cphil_wtype dt,
                                                int n_act, const char *const *act_names, const float *act_scales) {
    if (p->prec != CPHIL_W_F32 && !(p->prec == CPHIL_W_BF16 && dt == CPHIL_W_I8))
        return cphil_err(CPHIL_E_ARG, "%s: quantize an f32 policy (this one is already %s)", p->path,
                         p->prec == CPHIL_W_I8 ? "int8" : "bf16");
    cphil_st_writer *w = NULL;
    cphil_status s = cphil_st_writer_new(&w);
    if (s) return s;
    /* buffers live until the write */
    void **bufs = cphil_calloc((size_t)p->n * 3 + 1, sizeof(void *));
    char (*names)[160] = cphil_calloc((size_t)p->n * 2 + 1, sizeof *names);
    int nb = 0;
    if (!bufs || !names) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cphil_st_meta_count(p->f) && !s; i++) {
        const char *k, *v;
        cphil_st_meta_at(p->f, i, &k, &v);
        s = cphil_st_writer_meta(w, k, v);
    }
    bool any_static = false;
    for (int i = 0; i < p->n && !s; i++) {
        const pol_tensor *t = &p->t[i];
        int64_t rows = t->shape[0], cols = t->rank == 2 ? t->shape[1] : 1;
        if (!is_matrix(t) || dt == CPHIL_W_F32) {
            s = cphil_st_writer_add(w, t->name, CPHIL_DT_F32, t->rank, t->shape, t->data);
            continue;
        }
        const float *src = t->data;
        if (dt == CPHIL_W_BF16) {
            uint16_t *b = cphil_alloc(sizeof(uint16_t) * (size_t)(rows * cols));
            if (!b) {
                s = cphil_err(CPHIL_E_NOMEM, "out of memory");
                break;
            }
            bufs[nb++] = b;
            for (int64_t j = 0; j < rows * cols; j++) b[j] = infer_f32_to_bf16(src[j]);
            s = cphil_st_writer_add(w, t->name, CPHIL_DT_BF16, 2, t->shape, b);
            continue;
        }
        int8_t *q = cphil_alloc((size_t)(rows * cols));
        float *sc = cphil_alloc(sizeof(float) * (size_t)rows);
        if (!q || !sc) {
            cphil_free(q);
            cphil_free(sc);
            s = cphil_err(CPHIL_E_NOMEM, "out of memory");
            break;
        }
        bufs[nb++] = q;
        bufs[nb++] = sc;
        for (int64_t r = 0; r < rows; r++) {
            float amax = 0.f;
            for (int64_t c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(src[r * cols + c]));
            sc[r] = amax > 0.f ? amax / 127.f : 1.f;
            for (int64_t c = 0; c < cols; c++) {
                float v = nearbyintf(src[r * cols + c] / sc[r]);
                q[r * cols + c] = (int8_t)(v > 127.f ? 127.f : v < -127.f ? -127.f : v);
            }
        }
        if ((s = cphil_st_writer_add(w, t->name, CPHIL_DT_I8, 2, t->shape, q))) break;
        snprintf(names[2 * i], sizeof names[0], "%s_scale", t->name);
        if ((s = cphil_st_writer_add(w, names[2 * i], CPHIL_DT_F32, 1, &rows, sc))) break;
        for (int a = 0; a < n_act; a++) {
            bool match = !strcmp(act_names[a], t->name) ||
                         (!strcmp(act_names[a], "heads.*.0.weight") && !strncmp(t->name, "heads.", 6) && ends_with(t->name, ".0.weight"));
            if (match && act_scales[a] > 0.f) {
                snprintf(names[2 * i + 1], sizeof names[0], "%s_act_scale", t->name);
                int64_t one = 1;
                s = cphil_st_writer_add(w, names[2 * i + 1], CPHIL_DT_F32, 1, &one, &act_scales[a]);
                any_static = true;
                break;
            }
        }
    }
    if (!s) {
        const char *qm = dt == CPHIL_W_BF16 ? "{\"weights\":\"bf16\",\"activations\":\"f32\"}"
                       : any_static ? "{\"weights\":\"int8\",\"activations\":\"static\"}"
                                    : "{\"weights\":\"int8\",\"activations\":\"dynamic\"}";
        s = cphil_st_writer_meta(w, "cphil_quant", qm);
    }
    if (!s) s = cphil_st_writer_write(w, path);
out:
    for (int i = 0; i < nb; i++) cphil_free(bufs[i]);
    cphil_free(bufs);
    cphil_free(names);
    cphil_st_writer_free(w);
    return s;
}
