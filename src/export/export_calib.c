/* export_calib.c — calibration data and cphil's int8 engine on dense windows (export_calib.h).
 *
 * The inference engine (src/infer) runs the policy in window mode as a twin whose input layer is
 * a dense product over all E columns (n_cont = E, n_ids = 0), so any float inputs work; with
 * cphil_infer_state_calibrate it records the max |input| of every matrix product, by the
 * weight's name ("heads.*.0.weight" for the six first head layers, which share their input).
 * Deliberately not: percentile or entropy calibration (max |x| is what cphil's engine uses).
 */
#include "export/export_calib.h"
#include "export/npy.h"
#include "export/predict.h"
#include "infer/infer.h"

#include <dirent.h>
#include <string.h>

#define CALIB_MAX_WINDOWS 4096
#define CALIB_MAX_FILES 16

struct cphil_export_calib {
    long windows;
    int n;
    char (*names)[96];
    float *amax;
    float input_amax;
};

/* ---- dense windows from a .npy, a replay or a folder of replays ------------------------------ */
static cphil_status append(float **X, int *N, const float *add, int n, size_t row) {
    float *nx = cphil_realloc(*X, (size_t)*N * row * sizeof(float), (size_t)(*N + n) * row * sizeof(float));
    if (!nx) return cphil_err(CPHIL_E_NOMEM, "calibration: out of memory");
    memcpy(nx + (size_t)*N * row, add, (size_t)n * row * sizeof(float));
    *X = nx;
    *N += n;
    return CPHIL_OK;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Windows of one replay, every port that is a player, ends spread evenly (at most `budget`). */
static cphil_status replay_windows(const cphil_model *m, const char *path, int budget, float **X, int *N) {
    cphil_status last = CPHIL_OK;
    int used = 0;
    for (int port = 1; port <= 4 && used < budget; port++) {
        float *w = NULL;
        int n = 0, W = 0;
        cphil_status s = cphil_predict_replay_windows(m, path, port, INT32_MIN, INT32_MAX, (budget - used) / (5 - port) + 1,
                                                      &w, &n, &W);
        if (s == CPHIL_E_ARG) { /* not a player on that port */
            last = s;
            continue;
        }
        if (s) return s;
        s = append(X, N, w, n, (size_t)W * m->cfg.E);
        cphil_free(w);
        if (s) return s;
        used += n;
    }
    return used ? CPHIL_OK : (last ? last : cphil_err(CPHIL_E_ARG, "%s: no player to calibrate on", path));
}

cphil_status cphil_export_calib_windows_of(const cphil_model *m, const char *data, float **X, int *N, int *W) {
    *X = NULL;
    *N = 0;
    *W = m->cfg.window;
    if (ends_with(data, ".npy")) {
        cphil_npy_array a;
        cphil_status s = cphil_npy_read(data, &a);
        if (s) return s;
        if (a.ndim != 3 || a.shape[2] != m->cfg.E || a.shape[0] < 1 || a.shape[1] < 1 ||
            (m->cfg.backbone != CPHIL_BACKBONE_MLP && a.shape[1] != m->cfg.window)) {
            cphil_npy_array_free(&a);
            return cphil_err(CPHIL_E_ARG, "%s: calibration inputs must be [N, %d, %d] (the policy's window and E)", data,
                             m->cfg.window, m->cfg.E);
        }
        int n = (int)(a.shape[0] < CALIB_MAX_WINDOWS ? a.shape[0] : CALIB_MAX_WINDOWS);
        *W = (int)a.shape[1];
        float *x = cphil_alloc((size_t)n * *W * m->cfg.E * sizeof(float));
        if (!x) {
            cphil_npy_array_free(&a);
            return cphil_err(CPHIL_E_NOMEM, "calibration: out of memory");
        }
        size_t cnt = (size_t)n * *W * m->cfg.E;
        cphil_status s2 = CPHIL_OK;
        if (a.dtype == CPHIL_DT_F32) memcpy(x, a.data, cnt * sizeof(float));
        else if (a.dtype == CPHIL_DT_F64) for (size_t i = 0; i < cnt; i++) x[i] = (float)((const double *)a.data)[i];
        else s2 = cphil_err(CPHIL_E_ARG, "%s: calibration inputs must be float32 or float64", data);
        cphil_npy_array_free(&a);
        if (s2) {
            cphil_free(x);
            return s2;
        }
        *X = x;
        *N = n;
        return CPHIL_OK;
    }
    if (cphil_path_is_dir(data)) {
        DIR *d = opendir(data);
        if (!d) return cphil_err(CPHIL_E_IO, "%s: cannot open folder", data);
        char *files[CALIB_MAX_FILES];
        int nf = 0;
        struct dirent *e;
        while ((e = readdir(d)) && nf < CALIB_MAX_FILES)
            if (ends_with(e->d_name, ".slp")) {
                size_t l = strlen(data) + strlen(e->d_name) + 2;
                files[nf] = cphil_alloc(l);
                if (!files[nf]) break;
                snprintf(files[nf], l, "%s/%s", data, e->d_name);
                nf++;
            }
        closedir(d);
        cphil_status s = nf ? CPHIL_OK : cphil_err(CPHIL_E_ARG, "%s: no .slp replays in the folder", data);
        for (int i = 0; i < nf; i++) {
            if (!s) s = replay_windows(m, files[i], CALIB_MAX_WINDOWS / nf, X, N);
            cphil_free(files[i]);
        }
        if (s) {
            cphil_free(*X);
            *X = NULL;
            *N = 0;
        }
        return s;
    }
    if (ends_with(data, ".slp")) return replay_windows(m, data, CALIB_MAX_WINDOWS, X, N);
    return cphil_err(CPHIL_E_ARG, "%s: calibration data must be a .npy of inputs [N, W, E], a .slp replay or a folder of them", data);
}

/* ---- the engine on dense windows --------------------------------------------------------------- */
struct cphil_dense_engine {
    cphil_model twin;
    cphil_infer_model *im;
    cphil_infer_state *st;
    float *logits;
};

cphil_status cphil_dense_engine_open(const cphil_model *m, bool int8, cphil_dense_engine **out) {
    *out = cphil_calloc(1, sizeof **out);
    if (!*out) return cphil_err(CPHIL_E_NOMEM, "engine: out of memory");
    cphil_dense_engine *e = *out;
    e->twin = *m;
    e->twin.cfg.n_cont = m->cfg.E;
    e->twin.cfg.n_ids = 0;
    cphil_infer_spec sp;
    cphil_infer_spec_from_config(&sp, &e->twin.cfg);
    cphil_status s = cphil_infer_model_build(&sp, cphil_infer_model_lookup, &e->twin, int8 ? CPHIL_W_I8 : CPHIL_W_F32, &e->im);
    if (!s) s = cphil_infer_state_open(e->im, CPHIL_INFER_WINDOW, &e->st);
    if (s) {
        cphil_dense_engine_close(e);
        *out = NULL;
    }
    return s;
}

void cphil_dense_engine_close(cphil_dense_engine *e) {
    if (!e) return;
    cphil_infer_state_close(e->st);
    cphil_infer_model_free(e->im);
    cphil_free(e);
}


cphil_status cphil_dense_engine_run(cphil_dense_engine *e, const float *X, int N, int W, float *logits, float *amax) {
    const int E = e->twin.cfg.E, win = e->twin.cfg.window;
    const int T = e->twin.cfg.backbone == CPHIL_BACKBONE_MLP ? 1 : (W < win ? W : win); /* the engine sees the MLP's last frame */
    cphil_infer_state_calibrate(e->st, amax);
    cphil_status s = CPHIL_OK;
    for (int i = 0; i < N && !s; i++)
        s = cphil_infer_run_sequence(e->st, T, X + ((size_t)i * W + (size_t)(W - T)) * E, NULL,
                                     logits + (size_t)i * CPHIL_N_LOGITS);
    cphil_infer_state_calibrate(e->st, NULL);
    return s;
}

cphil_status cphil_export_calib_run(const cphil_model *m, const char *data, cphil_export_calib **out) {
    *out = NULL;
    float *X = NULL;
    int N = 0, W = 0;
    cphil_status s = cphil_export_calib_windows_of(m, data, &X, &N, &W);
    if (s) return s;
    cphil_export_calib *c = cphil_calloc(1, sizeof *c);
    cphil_dense_engine *e = NULL;
    float *lg = cphil_alloc((size_t)(N ? N : 1) * CPHIL_N_LOGITS * sizeof(float));
    if (!c || !lg) s = cphil_err(CPHIL_E_NOMEM, "calibration: out of memory");
    if (!s) s = cphil_dense_engine_open(m, false, &e);
    if (!s) {
        c->n = cphil_infer_model_n_mats(e->im);
        c->amax = cphil_calloc((size_t)(c->n ? c->n : 1), sizeof(float));
        c->names = cphil_calloc((size_t)(c->n ? c->n : 1), sizeof *c->names);
        if (!c->amax || !c->names) s = cphil_err(CPHIL_E_NOMEM, "calibration: out of memory");
    }
    if (!s) s = cphil_dense_engine_run(e, X, N, W, lg, c->amax);
    if (!s) {
        for (int i = 0; i < c->n; i++) snprintf(c->names[i], sizeof c->names[i], "%s", cphil_infer_model_mat_name(e->im, i));
        for (size_t i = 0; i < (size_t)N * W * m->cfg.E; i++) {
            float a = X[i] < 0 ? -X[i] : X[i];
            if (a > c->input_amax) c->input_amax = a;
        }
        c->windows = N;
    }
    cphil_dense_engine_close(e);
    cphil_free(lg);
    cphil_free(X);
    if (s) {
        cphil_export_calib_free(c);
        return s;
    }
    *out = c;
    return CPHIL_OK;
}

bool cphil_export_calib_amax(void *ctx, const char *weight_name, float *amax) {
    const cphil_export_calib *c = ctx;
    if (!c) return false;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], weight_name)) {
            *amax = c->amax[i];
            return true;
        }
    /* The six first head layers share one input: the engine records it once. */
    if (!strncmp(weight_name, "heads.", 6) && strstr(weight_name, ".0.weight"))
        for (int i = 0; i < c->n; i++)
            if (!strcmp(c->names[i], "heads.*.0.weight")) {
                *amax = c->amax[i];
                return true;
            }
    if (!strcmp(weight_name, "input_proj.weight")) {
        *amax = c->input_amax;
        return true;
    }
    return false;
}

int cphil_export_calib_count(const cphil_export_calib *c) { return c ? c->n : 0; }
const char *cphil_export_calib_name(const cphil_export_calib *c, int i) { return c && i >= 0 && i < c->n ? c->names[i] : NULL; }
float cphil_export_calib_value(const cphil_export_calib *c, int i) { return c && i >= 0 && i < c->n ? c->amax[i] : 0; }

long cphil_export_calib_windows(const cphil_export_calib *c) { return c ? c->windows : 0; }

void cphil_export_calib_free(cphil_export_calib *c) {
    if (!c) return;
    cphil_free(c->amax);
    cphil_free(c->names);
    cphil_free(c);
}

cphil_status cphil_dense_engine_set_static_fn(cphil_dense_engine *e, cphil_export_amax_fn amax, void *ctx) {
    int n = cphil_infer_model_n_mats(e->im);
    float *sc = cphil_calloc((size_t)(n ? n : 1), sizeof(float));
    if (!sc) return cphil_err(CPHIL_E_NOMEM, "engine: out of memory");
    for (int i = 0; i < n; i++) {
        float a = 0;
        if (amax(ctx, cphil_infer_model_mat_name(e->im, i), &a) && a > 0) sc[i] = a / 127.0f;
    }
    cphil_infer_model_set_act_scales(e->im, sc);
    cphil_free(sc);
    return CPHIL_OK;
}

cphil_status cphil_dense_engine_set_static(cphil_dense_engine *e, const cphil_export_calib *c) {
    return cphil_dense_engine_set_static_fn(e, cphil_export_calib_amax, (void *)c);
}
