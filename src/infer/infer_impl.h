/* infer_impl.h — the engine's inside, shared by its files (not part of infer.h's API).
 *
 * One file per backbone (infer_mlp.c, infer_rnn.c for LSTM and GRU, infer_mamba.c,
 * infer_attention.c) behind one small interface, infer_backbone: load and pack its tensors,
 * open / reset / close its run state, the frame-local part of its first layer, a window over a
 * sequence of frames, and one stream step. infer.c holds what every backbone shares: the tensor
 * lookup and packing helpers, the input layer, the heads, the frame ring and the dispatch.
 *
 * Named state (as llama2.c's RunState): each backbone's weights and run state are structs of
 * its own file whose buffers are named for what they hold and allocated with that size where
 * they are declared (a comment gives the shape); no buffer is shared between pieces through
 * hand-computed offsets. Rows of a sequence buffer are exactly the width of what they hold.
 */
#ifndef CPHIL_INFER_IMPL_H
#define CPHIL_INFER_IMPL_H

#include "infer/infer.h"
#include "infer/infer_ar.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define INFER_MAX_MATS (8 + INFER_MAX_LAYERS * 6 + 8)

typedef struct infer_backbone infer_backbone;

/* A model being loaded (infer.c's helpers below take it). */
typedef struct infer_build {
    cphil_infer_lookup lookup;
    void *ctx;
    cphil_infer_model *m;
} infer_build;


struct cphil_infer_model {
    cphil_infer_spec spec;
    cphil_wtype prec;
    const infer_backbone *ops;
    int H0, H0p, Hb;   /* input-layer width (and rounded up to 16), backbone output width */
    int64_t params;
    /* input layer: the continuous columns as a packed product (with the bias), the one-hot
     * columns as a gather table (src/kernels: rows = columns of input_proj.weight) */
    cphil_pmat in_cont;  /* [H0, n_cont] */
    cphil_gtable in_tab; /* columns n_cont .. E-1 */
    bool has_tab;
    float *in_b;         /* [H0] */
    void *weights;       /* the backbone's weights: its file's struct */
    cphil_pmat head0;    /* the six first head layers fused: [352, Hb] */
    cphil_pmat head2[INFER_N_HEADS];
    infer_ar_heads ar;   /* autoregressive heads' tables (infer_ar.c) */
    cphil_pmat *mats[INFER_MAX_MATS]; /* every product, in load order (calibration indices) */
    char mat_names[INFER_MAX_MATS][96];
    int n_mats;
    size_t bytes;
    int max_kp;          /* the widest product input (scratch size) */
};

struct cphil_infer_state {
    const cphil_infer_model *m;
    cphil_infer_mode mode;
    int W, P;            /* window; width of the first layer's frame-local product ("pre"), 0 = none */
    int ring_n;          /* rows of the frame ring: W in window mode, 1 in stream mode */
    int64_t t;           /* frames since reset */
    int head;            /* ring slot of the newest frame */
    float *ring_x0;      /* [ring_n][H0p] input-layer outputs */
    float *ring_pre;     /* [ring_n][P] first layer's frame-local product */
    const float **seq_x0, **seq_pre; /* [W] pointers into the ring in window order (oldest first) */
    float *x0;           /* [H0p] stream mode: the current frame's input layer */
    float *feat;         /* [Hb] the last step's backbone features */
    float *head_h;       /* [head0.rows] the heads' hidden layer */
    cphil_infer_choose_fn choose; /* autoregressive heads: the chooser (greedy by default) */
    void *choose_user;
    uint8_t chosen[INFER_N_HEADS]; /* the last decision's values */
    void *scratch;       /* product scratch: cphil_pmat_scratch_bytes(W, max(max_kp, H0p)) */
    float *calib;        /* per-matrix max |input| (calibration) or NULL */
    bool inflight;       /* window mode: the backbone's window_step when it has one (default on) */
    int64_t stale_until; /* window_step: decisions of frames <= this index are recomputed from the
                          * ring (windows that hold a corrected frame, or begun while in-flight
                          * was off); -1 when none */
    void *run;           /* the backbone's run state: its file's struct */
};

/* The interface every backbone implements (NULL where noted). */
struct infer_backbone {
    /* Check the backbone's sizes beyond the common ones (NULL: nothing more). */
    cphil_status (*check)(const cphil_infer_spec *sp);
    /* Load and pack its tensors into m->weights (allocated here; freed by free_weights even on
     * a failed load) and register its products with infer_register in load order. */
    cphil_status (*load)(infer_build *b);
    void (*free_weights)(void *weights);
    /* Width of the first layer's frame-local product cached per frame (0: none). */
    int (*pre_width)(const cphil_infer_model *m);
    /* Allocate s->run for s->mode (every buffer sized as declared); free it. */
    cphil_status (*open)(cphil_infer_state *s);
    void (*close)(void *run);
    /* Forget the carried state (game start). */
    void (*reset)(cphil_infer_state *s);
    /* pre[P] = the first layer's frame-local part of x0 (NULL when pre_width is 0). */
    void (*pre)(cphil_infer_state *s, const float *x0, float *pre);
    /* Window over s->seq_x0 / s->seq_pre [T] from a zero state: the last position's features
     * into s->feat. */
    void (*window)(cphil_infer_state *s, int T);
    /* Window mode without recomputing the window (NULL: recompute with `window`): called once
     * per frame after the ring and s->seq_* hold the new frame (the newest is seq_*[W-1]);
     * writes s->feat equal to what window(s, W) would (int8 bit for bit), honouring
     * s->stale_until. s->t is the new frame's index. */
    void (*window_step)(cphil_infer_state *s);
    /* One stream step on this frame (x0, pre): the features into s->feat (NULL: the MLP, which
     * has no time axis and runs its window of one frame). */
    void (*stream)(cphil_infer_state *s, const float *x0, const float *pre);
};

extern const infer_backbone cphil_infer_mlp_ops, cphil_infer_rnn_ops, cphil_infer_mamba_ops, cphil_infer_attention_ops;

/* ---- loading helpers (infer.c) ------------------------------------------------------------ */

/* A float copy of a tensor of this shape (f32 or bf16 source; int8 dequantized). Caller frees. */
cphil_status cphil_infer_load_floats(infer_build *b, const char *name, int rank, const int64_t *shape, float **out);
/* A vector [n]. */
cphil_status cphil_infer_load_vec(infer_build *b, const char *name, int64_t n, float **out);
/* Pack a Linear into mat and register it: weight [rows, cols], + bias [rows] when bname, + a
 * second bias folded in when b2name. */
cphil_status cphil_infer_load_linear(infer_build *b, cphil_pmat *mat, const char *wname, const char *bname,
                               const char *b2name, int rows, int cols);

/* ---- shared pieces of a step (infer.c) ---------------------------------------------------- */
/* Y[M][rows] (=|+= by beta) X[M][cols] W^T + bias, through the state's scratch and calibration. */
static inline void infer_mm(cphil_infer_state *s, const cphil_pmat *w, int M, const float *X, int ldx, float *Y,
                            int ldy, int beta) {
    if (CPHIL_UNLIKELY(s->calib != NULL)) {
        float a = s->calib[w->id];
        for (int i = 0; i < M; i++)
            for (int k = 0; k < w->cols; k++) a = fmaxf(a, fabsf(X[(size_t)i * ldx + k]));
        s->calib[w->id] = a;
    }
    cphil_pmat_gemm(w, M, X, ldx, Y, ldy, beta, s->scratch);
}
/* x = max(x, 0) in place. */
void cphil_infer_relu(float *x, int n);
/* calloc of n elements of size sz, ANDed into *ok (a chain of allocations checks once). */
void *cphil_infer_calloc(bool *ok, size_t n, size_t sz);

#endif
