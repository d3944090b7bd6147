/* model.h — cphil policies: the model config, the ONE tensor table per model, the training
 * workspace, forward / loss / backward of the whole policy (input layer + backbone + six heads),
 * AdamW with gradient-norm clipping and learning-rate schedules, and the policy file.
 *
 * A policy is   frames -> input layer (gather on ids) -> backbone -> six heads -> logits.
 * Backbones: mlp (per frame; the last frame at inference), lstm, gru (PyTorch semantics), mamba
 * (Gu & Dao selective SSM, residual RMSNorm blocks), attention (pre-norm causal MHA + RoPE + GELU
 * FFN). docs/model.md gives every tensor's name and shape per backbone and the math of each layer.
 *
 * The tensor table (cphil_model.tensors) is the single list of parameters: allocation (one
 * contiguous block), gradients and AdamW moments (same layout, same offsets), the policy file,
 * exports and tests all walk it. Nobody keeps a second list of names.
 *
 * Not here: inference plans (src/infer), the trainer loop (src/train), layer maths (src/nn).
 * Stability: this header only grows (additive changes); existing fields keep their meaning.
 */
#ifndef CPHIL_MODEL_H
#define CPHIL_MODEL_H

#include "cphil.h"
#include "game/controller.h" /* the action space: CPHIL_N_BUTTONS, CPHIL_STICK_CLASSES, ... */
#include "kernels/cpu/kernels.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- heads: order, sizes, offsets in the per-frame logit vector ------------------------- */
enum {
    CPHIL_HEAD_BUTTONS = 0, CPHIL_HEAD_MAIN_X, CPHIL_HEAD_MAIN_Y, CPHIL_HEAD_C_X,
    CPHIL_HEAD_C_Y, CPHIL_HEAD_SHOULDER, CPHIL_N_HEADS
};
#define CPHIL_N_CAT_HEADS CPHIL_N_AXES /* main_x main_y c_x c_y shoulder (targets cls[5]) */
/* Per frame the logits are [buttons 8 | main_x 17 | main_y 17 | c_x 17 | c_y 17 | shoulder 5]. */
#define CPHIL_N_LOGITS 81
extern const char *const cphil_head_names[CPHIL_N_HEADS];  /* "buttons", "main_x", ... */
extern const int cphil_head_classes[CPHIL_N_HEADS];        /* 8, 17, 17, 17, 17, 5 */
extern const int cphil_head_offset[CPHIL_N_HEADS];         /* 0, 8, 25, 42, 59, 76 */
extern const int cphil_head_hidden[CPHIL_N_HEADS];         /* 64 x5, 32 for shoulder */

/* ---- config ----------------------------------------------------------------------------- */
typedef enum cphil_backbone {
    CPHIL_BACKBONE_MLP = 0, CPHIL_BACKBONE_LSTM, CPHIL_BACKBONE_GRU, CPHIL_BACKBONE_MAMBA,
    CPHIL_BACKBONE_ATTENTION, CPHIL_N_BACKBONES
} cphil_backbone;
const char *cphil_backbone_name(cphil_backbone b);              /* "mlp", "lstm", ... */
cphil_status cphil_backbone_parse(const char *s, cphil_backbone *out); /* CPHIL_E_ARG if unknown */

#define CPHIL_MAX_MLP_LAYERS 8

/* How the six heads decide (docs/model.md "Autoregressive heads"). independent: each head from
 * the backbone features alone. autoregressive: in the fixed head order (buttons, main_x,
 * main_y, c_x, c_y, shoulder) each head's hidden layer also sees the values already chosen for
 * the heads before it (the button bits and one-hot classes: a gather of columns of
 * heads.<name>.ar.weight [hidden_h, offset_h]), so the policy models the joint controller
 * state. Training conditions on the human's values (teacher forcing); the agent on its own. */
typedef enum cphil_heads_mode { CPHIL_HEADS_INDEPENDENT = 0, CPHIL_HEADS_AUTOREGRESSIVE = 1 } cphil_heads_mode;
const char *cphil_heads_mode_name(cphil_heads_mode h);                     /* "independent", ... */
cphil_status cphil_heads_mode_parse(const char *s, cphil_heads_mode *out); /* CPHIL_E_ARG if unknown */

typedef struct cphil_model_config {
    cphil_backbone backbone;
    int n_cont;          /* continuous features per frame */
    int n_ids;           /* categorical ids per frame (absolute dense columns, n_cont <= id < E) */
    int E;               /* dense embedding width */
    uint64_t layout_hash;/* hash of the embedding layout (0 = unknown); checked on load */
    int hidden;          /* H for temporal backbones */
    int n_mlp;           /* MLP: number of hidden sizes (>= 1) */
    int mlp_hidden[CPHIL_MAX_MLP_LAYERS]; /* MLP hidden sizes; mlp_hidden[0] is input_proj's */
    int num_layers;      /* L for temporal backbones */
    int window;          /* W: frames per training window / inference window */
    int state_size;      /* Mamba N */
    int expand;          /* Mamba I = expand * H */
    int conv_size;       /* Mamba K */
    int num_heads;       /* attention heads (H % num_heads == 0, head dim even) */
    cphil_precision precision; /* matmul precision for training and f32/bf16 inference */
    cphil_heads_mode heads;    /* independent (0, what files without the key hold) or autoregressive */
} cphil_model_config;

/* What validation accepts (docs/model.md "Limits"): a policy file is untrusted input, so no
 * config may make a command allocate or compute far beyond what a real policy needs. */
#define CPHIL_MODEL_MAX_E 65536
#define CPHIL_MODEL_MAX_WINDOW 1024
#define CPHIL_MODEL_MAX_HIDDEN 4096      /* H and every MLP size; attention head dim <= 4096 */
#define CPHIL_MODEL_MAX_LAYERS 16
#define CPHIL_MODEL_MAX_HEADS 64
#define CPHIL_MODEL_MAX_STATE 256        /* Mamba N */
#define CPHIL_MODEL_MAX_EXPAND 8
#define CPHIL_MODEL_MAX_CONV 16
#define CPHIL_MODEL_MAX_SCAN_STATE 65536 /* Mamba I x N */
#define CPHIL_MODEL_MAX_PARAMS (1 << 26) /* 64 Mi parameters: 256 MiB in f32 */
#define CPHIL_MODEL_MAX_PARAM_FRAMES 8589934592.0 /* parameters x window, 2^33 */

/* The seed's defaults: mlp [512, 512], lstm/gru/mamba/attention H 256, L 2, W 60, N 16,
 * expand 2, K 4, heads 4, BF16. n_cont/n_ids/E/layout_hash are left 0 for the caller. */
void cphil_model_config_default(cphil_model_config *c, cphil_backbone b);
/* Checks every field (ranges, divisibility); CPHIL_E_ARG with the field name. */
cphil_status cphil_model_config_validate(const cphil_model_config *c);
/* The ONE check of a policy's embedding against data (every command that feeds a policy uses
 * it): n_cont, n_ids and E must equal the data's, and the layout hashes must agree where both
 * are known (0 = unknown). CPHIL_E_MISMATCH naming `what` (the policy path or a role) and both
 * embeddings otherwise. Buffers sized by the data then always fit the policy and vice versa. */
cphil_status cphil_model_check_embedding(const cphil_model_config *c, int n_cont, int n_ids, int E,
                                         uint64_t layout_hash, const char *what);
/* The embedding layout of this build (default, or with prev_action) that a policy was trained
 * with, for commands that embed replays themselves: matched by the layout hash when the policy
 * records one, and always by n_cont, n_ids and E. CPHIL_E_MISMATCH when none matches. */
struct cphil_embed_layout;
cphil_status cphil_model_find_layout(const cphil_model_config *c, struct cphil_embed_layout *L, const char *what);
/* Derived sizes. */
int cphil_model_features(const cphil_model_config *c);  /* Hb: what the heads see */
int cphil_model_input_width(const cphil_model_config *c); /* H0: input_proj's output size */
int cphil_mamba_inner(const cphil_model_config *c);      /* I = expand * H */
int cphil_mamba_dt_rank(const cphil_model_config *c);    /* R = ceil(H / 16) */

/* Config <-> JSON object, e.g. {"backbone":"lstm","n_cont":7,...,"mlp_hidden":[512,512],
 * "precision":"bf16","layout_hash":"0123456789abcdef"}. to_json writes a NUL-terminated string
 * into buf (CPHIL_E_ARG if cap is too small; *len excludes the NUL). from_json reads such an
 * object from untrusted bytes (unknown keys are ignored, missing keys keep the defaults of the
 * named backbone) and validates it; CPHIL_E_FORMAT with the byte offset on bad JSON. */
cphil_status cphil_model_config_to_json(const cphil_model_config *c, char *buf, size_t cap,
                                        size_t *len);
cphil_status cphil_model_config_from_json(const char *json, size_t n, cphil_model_config *c);

/* ---- the tensor table ------------------------------------------------------------------- */
#define CPHIL_TENSOR_NAME_MAX 64
#define CPHIL_TENSOR_MAX_DIMS 3

/* Initialisation rule of a tensor (what cphil_model_init_params does; PyTorch's defaults). */
typedef enum cphil_init {
    CPHIL_INIT_UNIFORM_FANIN = 0, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = init_fan */
    CPHIL_INIT_ZERO, CPHIL_INIT_ONE,
    CPHIL_INIT_MAMBA_A_LOG,       /* S4D-real: log(n + 1) */
    CPHIL_INIT_MAMBA_DT_BIAS      /* softplus^-1(dt), dt log-uniform in [1e-3, 1e-1] */
} cphil_init;

typedef struct cphil_tensor {
    char name[CPHIL_TENSOR_NAME_MAX]; /* PyTorch-style, e.g. "lstm.weight_ih_l0" */
    int ndim;                         /* 1..3 */
    int shape[CPHIL_TENSOR_MAX_DIMS]; /* PyTorch's shape (Linear weight: [out, in]) */
    size_t numel;                     /* product of shape */
    size_t offset;                    /* in floats from the block start; multiple of 16 */
    cphil_init init;
    int init_fan;                     /* fan_in for CPHIL_INIT_UNIFORM_FANIN */
} cphil_tensor;

typedef struct cphil_model {
    cphil_model_config cfg;
    int n_tensors;
    cphil_tensor *tensors;  /* the table, in a fixed order (docs/model.md) */
    size_t n_floats;        /* size of the block (each tensor starts 64-byte aligned; the gaps
                             * are zero and stay zero under AdamW) */
    size_t n_weights;       /* sum of numel (the parameter count) */
    float *params;          /* n_floats f32 master weights, 64-byte aligned, owned */
} cphil_model;

/* Build the table for cfg and allocate a zeroed parameter block. CPHIL_E_ARG on a bad config,
 * CPHIL_E_NOMEM. cphil_model_free accepts a zeroed struct and is safe twice. */
cphil_status cphil_model_init(cphil_model *m, const cphil_model_config *cfg);
void cphil_model_free(cphil_model *m);
/* Fill params with the initialisation rules from a seeded generator (deterministic). */
void cphil_model_init_params(cphil_model *m, uint64_t seed);
/* The tensor with this name, or NULL. */
const cphil_tensor *cphil_model_find(const cphil_model *m, const char *name);
/* Pointer into a block laid out like params (params, grads, AdamW m or v). */
static inline float *cphil_tensor_ptr(float *block, const cphil_tensor *t) {
    return block + t->offset;
}

/* ---- training workspace, forward, loss, backward ---------------------------------------- */
/* Inputs of a batch (batch-major): cont [B, T, n_cont] f32, ids [B, T, n_ids] int32 (absolute
 * dense columns, checked against [n_cont, E) by the caller: out-of-range ids are a programmer
 * error). Targets: buttons [B, T, 8] (0/1), cls [B, T, 5] (main_x main_y c_x c_y shoulder),
 * weight [B, T] (per-frame loss weight, >= 0). */
typedef struct cphil_model_batch {
    int B, T;
    const float *cont;
    const int32_t *ids;
    const uint8_t *buttons;
    const uint8_t *cls;
    const float *weight;
} cphil_model_batch;

typedef struct cphil_loss_config {
    float pos_weight[CPHIL_N_BUTTONS]; /* BCE positive weights (1 = plain BCE) */
    float button_weight;               /* multiplies the button term (1 by default) */
    float label_smoothing;             /* PyTorch's: target (1-e) one-hot + e/C uniform */
} cphil_loss_config;
void cphil_loss_config_default(cphil_loss_config *lc); /* pos_weight 1, button_weight 1, e 0 */

/* Per-head loss parts of the last cphil_model_loss call (weighted means like the total). */
typedef struct cphil_loss_parts {
    float total;
    float head[CPHIL_N_HEADS];  /* buttons term (before button_weight) and the five CEs */
    double weight_sum;
} cphil_loss_parts;

/* Activations, saved values and gradient scratch for one (B, T) shape: every buffer is
 * allocated once here; forward/loss/backward allocate nothing. Opaque. */
typedef struct cphil_model_ws cphil_model_ws;
cphil_status cphil_model_ws_create(const cphil_model *m, int B, int T, cphil_model_ws **out);
void cphil_model_ws_free(cphil_model_ws *ws);
size_t cphil_model_ws_bytes(const cphil_model_ws *ws);

/* Forward over every frame of the batch. Returns the logits [B, T, CPHIL_N_LOGITS] (owned by
 * ws, valid until the next forward). Autoregressive heads: with targets in the batch (buttons
 * and cls not NULL) each head is conditioned on the targets of the heads before it (teacher
 * forcing: the logits give the joint NLL as the sum of the heads' NLLs); without, on the
 * policy's own greedy choices (buttons sigmoid > 0.5, argmax), as the agent decides. For the MLP each frame is independent (the last frame of a
 * window is what inference uses); the temporal backbones start each row from zero state.
 * batch->B and batch->T must equal the workspace's (programmer error otherwise). */
const float *cphil_model_forward(const cphil_model *m, cphil_model_ws *ws,
                                 const cphil_model_batch *batch);
/* Loss of the last forward against batch's targets: sum over (b, t) of
 * weight * (button_weight * mean_j BCE_j + sum of the five CEs) / sum of weights (0 when the
 * weights sum to 0). Also stores dloss/dlogits in ws for the backward. */
float cphil_model_loss(const cphil_model *m, cphil_model_ws *ws, const cphil_model_batch *batch,
                       const cphil_loss_config *lc, cphil_loss_parts *parts);
/* Backward of the last forward+loss: ADDS dloss/dparams into grads (a block of n_floats laid
 * out like params; zero it before a step). */
void cphil_model_backward(const cphil_model *m, cphil_model_ws *ws, const cphil_model_batch *batch,
                          float *grads);
/* d(loss)/d(logits) [B, T, 81] that the backward reads, writable: a caller with its own loss
 * (distillation, src/train/distill_loss.h) overwrites it after cphil_model_forward and then
 * calls cphil_model_backward without cphil_model_loss. */
float *cphil_model_dlogits(cphil_model_ws *ws);
/* TBPTT for lstm and gru: floats of the carried state for batch B (0 for other backbones):
 * per layer k, lstm h [B, H] then c [B, H]; gru h [B, H]. With a carry block set, every forward
 * starts each row from its state and overwrites it with the row's final state; the backward
 * treats the initial state as a constant (gradients stop at the chunk boundary). Zero a row to
 * start that slot afresh. NULL (the default) = zero initial state. */
size_t cphil_model_carry_floats(const cphil_model_config *c, int B);
void cphil_model_set_carry(cphil_model_ws *ws, float *carry);
/* Data-parallel overlap (docs/distributed.md): during cphil_model_backward, fn(user, lo) is called
 * on the calling thread each time the gradients [lo, n_floats) are final (the backward finishes
 * the tensor table from its end: heads, backbone layers last to first, input projection), with lo
 * decreasing from call to call and 0 last, so the exchange of that tail can start while the
 * backward computes the rest. NULL (the default) = no calls. */
void cphil_model_set_grads_hook(cphil_model_ws *ws, void (*fn)(void *user, size_t lo), void *user);

/* ---- AdamW with gradient-norm clipping and schedules ------------------------------------ */
typedef enum cphil_schedule { CPHIL_SCHED_CONSTANT = 0, CPHIL_SCHED_WARMUP_COSINE } cphil_schedule;
typedef struct cphil_adamw_config {
    float lr, beta1, beta2, eps, weight_decay;
    float max_grad_norm;     /* <= 0: no clipping */
    cphil_schedule schedule;
    int warmup_steps;        /* warmup+cosine: lr * (s+1)/warmup for step index s < warmup */
    int total_steps;         /* then cosine from lr down to min_lr at total_steps */
    float min_lr;
} cphil_adamw_config;
/* lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-5, clip 1.0, constant schedule. */
void cphil_adamw_config_default(cphil_adamw_config *c);
/* The learning rate of step index s (0-based). */
float cphil_lr_at(const cphil_adamw_config *c, long step);

typedef struct cphil_adamw {
    cphil_adamw_config cfg;
    size_t n;        /* floats, = model n_floats */
    float *m, *v;    /* moments, laid out like params */
    long step;       /* number of updates done */
} cphil_adamw;
cphil_status cphil_adamw_init(cphil_adamw *opt, const cphil_adamw_config *cfg, size_t n);
void cphil_adamw_free(cphil_adamw *opt);
/* One update (PyTorch torch.optim.AdamW semantics, after clip_grad_norm_ with
 * coef = max_norm / (norm + 1e-6) when norm > max_norm). grads are scaled in place by the clip.
 * Returns the gradient norm before clipping (non-finite: nothing is updated). */
float cphil_adamw_step(cphil_adamw *opt, float *params, float *grads);

/* ---- policy file (safetensors; config JSON in __metadata__["cphil_config"]) ------------- */
/* Write every tensor of the table (F32, PyTorch names and shapes) and the config atomically.
 * __metadata__: "format" = "cphil-policy", "format_version" = "1", "cphil_config" = JSON. */
cphil_status cphil_policy_save(const cphil_model *m, const char *path);
/* The same plus __metadata__["cphil_train"] = train_meta_json (a JSON object describing the
 * training run; NULL: no such key, exactly cphil_policy_save). */
cphil_status cphil_policy_save_meta(const cphil_model *m, const char *path, const char *train_meta_json);
/* Read a policy file into a fresh model (cphil_model_init + weights). Every table tensor must be
 * present with its exact shape (F32/BF16/F16/F64 accepted, finite values required); a tensor
 * the table does not know is refused (CPHIL_E_MISMATCH). The caller compares
 * m->cfg.layout_hash with its embedding layout. On error *m is zeroed (nothing to free). */
cphil_status cphil_policy_load(const char *path, cphil_model *m);
/* The same from an open safetensors file (e.g. one opened from memory or a checkpoint that adds
 * tensors: use cphil_policy_load_file only on files holding exactly the policy). */
struct cphil_st_file;
cphil_status cphil_policy_load_file(const struct cphil_st_file *f, cphil_model *m);
/* The metadata every policy reader checks first: "format" = "cphil-policy", "format_version" =
 * "1" and a "cphil_config" key; CPHIL_E_FORMAT naming the file otherwise (an unknown version is
 * refused, never guessed at). Quantized files keep these keys and add "cphil_quant". */
cphil_status cphil_policy_check_format(const struct cphil_st_file *f);

#endif /* CPHIL_MODEL_H */
