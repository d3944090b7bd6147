/* infer.h — the real-time inference engine: a policy (input layer -> backbone -> six heads) run
 * one frame at a time, in window mode or stream mode, in f32, bf16 or int8.
 *
 * Split (llama2.c's Config / Weights / RunState): a cphil_infer_model holds the packed, read-only
 * weights and may be shared by any number of threads; a cphil_infer_state holds everything one
 * decision stream mutates (frame ring, recurrent state, scratch) — one per thread. The per-frame
 * call cphil_infer_step allocates nothing and takes no locks.
 *
 * Modes.
 *  window: the seed's semantics. A ring of the last W frames, left-padded with copies of the first
 *    frame until full; every frame the whole window is recomputed from a zero state and the last
 *    position's features go to the heads. Equals the training forward on that window. What is a
 *    function of one frame alone (input layer, and the first layer's input projection: LSTM/GRU
 *    W_ih x + b, Mamba in_proj(norm(x)), attention qkv(ln1(x)) before RoPE) is cached per frame in
 *    the ring, which changes nothing in the result. Only the last position of the last layer is
 *    computed where nothing later needs the others (attention queries/FFN, Mamba out_proj).
 *    LSTM/GRU: by default the W windows in flight (one per coming decision) are advanced together,
 *    one product of W rows per layer and matrix, instead of recomputing each window: the same
 *    decisions (cphil_infer_state_set_inflight; docs/inference.md, "In-flight windows").
 *  stream: O(1) work per frame: LSTM/GRU (h, c); Mamba's conv ring and SSM state; attention's
 *    key/value ring of W entries with RoPE at absolute positions. At the first frame after a
 *    reset the step runs W times on that frame (ExPhil's cold start), so the first decision
 *    equals window mode's; afterwards stream equals window mode for the MLP and one-layer
 *    attention exactly, and differs elsewhere (recurrent state sees the whole history, not the
 *    last W frames) — measured in docs/inference.md.
 *
 * Precision: weights f32, bf16 or int8 (per-output-channel scales); activations f32 between
 * layers; int8 products quantize their input per call (dynamic) or with a calibrated scale
 * (static). Norms, gates, scans, softmax and heads' elementwise work are f32.
 * Does not: batching several games, threads inside a step, sampling (src/agent does it).
 */
#ifndef CPHIL_INFER_H
#define CPHIL_INFER_H

#include "core/core.h"
#include "infer/infer_kern.h"
#include "model/model.h"

#include <stdint.h>

#define INFER_MAX_LAYERS 16
#define INFER_MAX_MLP CPHIL_MAX_MLP_LAYERS
#define INFER_N_HEADS CPHIL_N_HEADS
#define INFER_N_LOGITS CPHIL_N_LOGITS /* 8 + 4 x 17 + 5 */
/* The widest attention head the engine accepts (hidden / heads): a stream step keeps the head's
 * RoPE angles on its stack (8 KB x 2 at the bound); model build refuses wider heads. */
#define INFER_MAX_HEAD_DIM 4096

typedef struct cphil_infer_spec {
    cphil_backbone backbone;
    int n_cont, n_ids, E;    /* embedding: continuous features, ids per frame, dense width */
    int hidden;              /* H (temporal backbones) */
    int layers;              /* L */
    int window;              /* W (1 for the MLP) */
    int state;               /* Mamba N */
    int expand;              /* Mamba I = expand * H */
    int conv;                /* Mamba K */
    int heads;               /* attention heads */
    int n_mlp;               /* MLP: number of hidden layers */
    int mlp[INFER_MAX_MLP];  /* MLP hidden sizes */
    bool ar_heads;           /* autoregressive heads (docs/model.md): heads.<name>.ar.weight tables */
    float norm_eps;          /* RMSNorm / LayerNorm epsilon (1e-5 when 0) */
    float rope_base;         /* RoPE base (10000 when 0) */
} cphil_infer_spec;

/* A tensor handed to the engine by a loader: f32, or int8 [rows, cols] with per-row scales. */
typedef struct cphil_infer_tensor {
    cphil_wtype dtype;       /* CPHIL_W_F32, CPHIL_W_BF16 (uint16) or CPHIL_W_I8 */
    int rank;
    int64_t shape[4];
    const void *data;
    const float *scale;      /* int8: [shape[0]] */
    float act_scale;         /* int8 static: calibrated input scale (0 = dynamic) */
} cphil_infer_tensor;

/* Look a tensor up by its PyTorch-style name; return CPHIL_E_MISMATCH (with a message) when
 * absent. The data must stay valid until cphil_infer_model_build returns. */
typedef cphil_status (*cphil_infer_lookup)(void *ctx, const char *name, cphil_infer_tensor *out);

typedef struct cphil_infer_model cphil_infer_model;
typedef struct cphil_infer_state cphil_infer_state;

/* Build packed weights in `precision` from tensors found through lookup. Shapes are checked
 * against spec; a missing or misshapen tensor is CPHIL_E_MISMATCH naming the tensor. int8 source
 * tensors are used as they are (precision must then be CPHIL_W_I8). */
cphil_status cphil_infer_model_build(const cphil_infer_spec *spec, cphil_infer_lookup lookup, void *ctx,
                                     cphil_wtype precision, cphil_infer_model **out);
void cphil_infer_model_free(cphil_infer_model *m);
const cphil_infer_spec *cphil_infer_model_spec(const cphil_infer_model *m);
cphil_wtype cphil_infer_model_precision(const cphil_infer_model *m);
/* Number of parameters of the policy (as in the f32 file). */
int64_t cphil_infer_model_params(const cphil_infer_model *m);
/* Bytes of packed weights. */
size_t cphil_infer_model_bytes(const cphil_infer_model *m);
/* Read every packed weight, scale and bias of every product once (one load per cache line), so
 * the next decision finds them in cache: for a caller that knows when the next frame is due
 * (cphil_agent_warm). Returns the weight bytes read. Allocates nothing. */
size_t cphil_infer_model_touch(const cphil_infer_model *m);
/* Number of products (matrices) and their names, for static calibration. */
int cphil_infer_model_n_mats(const cphil_infer_model *m);
const char *cphil_infer_model_mat_name(const cphil_infer_model *m, int i);
/* Set static activation scales (one per matrix, 0 = dynamic) on an int8 model. */
void cphil_infer_model_set_act_scales(cphil_infer_model *m, const float *scales);

typedef enum cphil_infer_mode { CPHIL_INFER_WINDOW = 0, CPHIL_INFER_STREAM = 1 } cphil_infer_mode;

/* A decision stream on model m (which must outlive it). */
cphil_status cphil_infer_state_open(const cphil_infer_model *m, cphil_infer_mode mode, cphil_infer_state **out);
void cphil_infer_state_close(cphil_infer_state *s);
/* Forget every frame (game start). */
void cphil_infer_state_reset(cphil_infer_state *s);
/* One frame: cont[n_cont], ids[n_ids] (absolute dense columns, checked: an id outside
 * [n_cont, E) is CPHIL_E_ARG); writes the 81 logits (heads in order). Allocates nothing. */
cphil_status cphil_infer_step(cphil_infer_state *s, const float *cont, const int32_t *ids, float *logits);

/* Autoregressive heads: how the state picks each head's value from its logits, in head order,
 * before the next head's logits are computed (they depend on it). head 0 (buttons): the 8-bit
 * mask; other heads: the class. The default is greedy (cphil_infer_choose_greedy: logit > 0,
 * argmax with the first on ties); the agent installs its sampler. Without autoregressive heads
 * the chooser is never called. Allocation-free; called from cphil_infer_step/_correct. */
typedef uint8_t (*cphil_infer_choose_fn)(void *user, int head, const float *logits_h);
uint8_t cphil_infer_choose_greedy(void *user, int head, const float *logits_h);
void cphil_infer_set_chooser(cphil_infer_state *s, cphil_infer_choose_fn fn, void *user);
/* The values chosen at the last decision (button mask, five classes); autoregressive heads only. */
const uint8_t *cphil_infer_chosen(const cphil_infer_state *s);
/* Window mode: replace the frame `back` steps before the newest (0 = the newest) with a
 * corrected copy (a rollback re-send) and recompute the window: writes the newest position's
 * logits, as if that frame had first arrived corrected. When it is the first frame of the game
 * and the window is still padded, the padding copies are replaced too. Does not advance the
 * state. CPHIL_E_ARG when back is outside the frames the window holds (0 .. min(frames, W) - 1)
 * or the state is in stream mode (its carried state cannot be rewound). Allocates nothing. */
cphil_status cphil_infer_correct(cphil_infer_state *s, int back, const float *cont, const int32_t *ids, float *logits);
/* Window mode of the LSTM and GRU keeps up to W windows in flight, one per coming decision, and
 * advances them together by one batched product per layer and frame (docs/inference.md,
 * "In-flight windows"); the decisions equal recomputing each window (int8 bit for bit). Off:
 * recompute every window from the ring (the reference; tests and benchmarks). On by default;
 * a change takes effect at the next frame (windows begun while it was off are recomputed until
 * they end). Other backbones and stream mode ignore it. */
void cphil_infer_state_set_inflight(cphil_infer_state *s, bool on);
/* Frames stepped since the last reset. */
int64_t cphil_infer_state_frames(const cphil_infer_state *s);
/* Calibration: record per-matrix max |input| over steps into amax[n_mats] (NULL stops). */
void cphil_infer_state_calibrate(cphil_infer_state *s, float *amax);
/* The last step's backbone features (Hb floats), for tests. */
const float *cphil_infer_state_features(const cphil_infer_state *s, int *n);

/* Test hook: window mode over an explicit sequence (no ring, no padding, zero state): run
 * frames[0..T-1] and write the last position's logits. T <= window. Allocates nothing. The
 * state must be in window mode (a stream-mode state is refused with CPHIL_E_ARG and left as it
 * was); afterwards the next step starts a new game. */
cphil_status cphil_infer_run_sequence(cphil_infer_state *s, int T, const float *cont, const int32_t *ids,
                                      float *logits);

/* ---- random policies (bench, tests): a lookup over freshly made tensors ------------------ */
typedef struct cphil_infer_random cphil_infer_random;
/* Make every tensor of spec with PyTorch-like default init (uniform +-1/sqrt(fan_in)), seeded. */
cphil_status cphil_infer_random_open(const cphil_infer_spec *spec, uint64_t seed, cphil_infer_random **out);
void cphil_infer_random_close(cphil_infer_random *r);
cphil_status cphil_infer_random_lookup(void *ctx, const char *name, cphil_infer_tensor *out);
/* Walk the tensor names of a spec (the engine's view of the table): returns the count; names and
 * shapes written when non-NULL (names as static-lifetime strings in buf). */
int cphil_infer_random_count(const cphil_infer_random *r);
const char *cphil_infer_random_name(const cphil_infer_random *r, int i, int *rank, int64_t *shape);
float *cphil_infer_random_data(cphil_infer_random *r, int i);

/* The seed's default sizes (hidden 256, 2 layers, window 60, state 16, expand 2, conv 4,
 * 4 heads, MLP 512-512) with the given embedding. */
void cphil_infer_spec_default(cphil_infer_spec *s, cphil_backbone backbone, int n_cont, int n_ids, int E);
/* The engine's view of a model config. */
void cphil_infer_spec_from_config(cphil_infer_spec *s, const cphil_model_config *c);
/* A lookup over a model's parameter block (f32, through its tensor table): ctx = cphil_model*. */
cphil_status cphil_infer_model_lookup(void *ctx, const char *name, cphil_infer_tensor *out);

#endif
