/* infer_ar.c — autoregressive heads in the engine (infer_ar.h). The same arithmetic as the
 * training forward (src/model/policy_impl.h, ar_heads_forward): a test compares the engine's
 * greedy logits with cphil_model_forward's on every backbone. */
#include "infer/infer_ar.h"

#include <string.h>

static float bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

cphil_status cphil_infer_ar_load(infer_ar_heads *ar, cphil_infer_lookup lookup, void *ctx) {
    memset(ar, 0, sizeof *ar);
    ar->on = true;
    for (int h = 1; h < INFER_N_HEADS; h++) {
        const int rows = cphil_head_hidden[h], cols = cphil_head_offset[h];
        char name[96];
        snprintf(name, sizeof name, "heads.%s.ar.weight", cphil_head_names[h]);
        cphil_infer_tensor t;
        memset(&t, 0, sizeof t);
        cphil_status s = lookup(ctx, name, &t);
        if (s) return s;
        if (t.rank != 2 || t.shape[0] != rows || t.shape[1] != cols || !t.data)
            return cphil_err(CPHIL_E_MISMATCH, "tensor '%s' must be [%d, %d] (file made for another model?)", name, rows,
                             cols);
        float *a = cphil_alloc(sizeof(float) * (size_t)rows * cols);
        if (!a) return cphil_err(CPHIL_E_NOMEM, "out of memory for the autoregressive heads");
        ar->A[h] = a;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                size_t i = (size_t)r * cols + c;
                if (t.dtype == CPHIL_W_F32) a[i] = ((const float *)t.data)[i];
                else if (t.dtype == CPHIL_W_BF16) a[i] = bf16_to_f32(((const uint16_t *)t.data)[i]);
                else a[i] = (float)((const int8_t *)t.data)[i] * (t.scale ? t.scale[r] : 1.f);
            }
    }
    return CPHIL_OK;
}

void cphil_infer_ar_free(infer_ar_heads *ar) {
    for (int h = 0; h < INFER_N_HEADS; h++) cphil_free(ar->A[h]);
    memset(ar, 0, sizeof *ar);
}

void cphil_infer_ar_forward(const infer_ar_heads *ar, float *hidden, float *logits, infer_ar_head2_fn head2, void *ctx,
                      cphil_infer_choose_fn choose, void *choose_user, uint8_t state[INFER_N_HEADS]) {
    int row = 0;
    for (int h = 0; h < INFER_N_HEADS; h++) {
        const int hh = cphil_head_hidden[h], off = cphil_head_offset[h];
        float *pre = hidden + row;
        if (h > 0) {
            const float *A = ar->A[h];
            for (int k = 0; k < CPHIL_N_BUTTONS; k++)
                if (state[0] >> k & 1)
                    for (int j = 0; j < hh; j++) pre[j] += A[(size_t)j * off + k];
            for (int g = 1; g < h; g++) {
                const int col = cphil_head_offset[g] + state[g];
                for (int j = 0; j < hh; j++) pre[j] += A[(size_t)j * off + col];
            }
        }
        for (int j = 0; j < hh; j++) pre[j] = pre[j] > 0.f ? pre[j] : 0.f;
        head2(ctx, h, pre, logits + off);
        state[h] = choose(choose_user, h, logits + off);
        row += hh;
    }
}
