/* infer_ar.h — autoregressive heads in the engine (docs/model.md "Autoregressive heads"): the
 * six heads decided in order, each head's hidden layer adding the columns of its
 * heads.<name>.ar.weight that the values already chosen for the heads before it select.
 *
 * The engine computes the fused first head layer as for independent heads (one product of
 * every precision), then hands its pre-activations here: per head, add the columns, ReLU, the
 * head's second product (through the engine's callback, so f32, bf16 and int8 stay the
 * engine's), then choose the head's value with the state's chooser (greedy by default; the
 * agent installs a sampler). The tables stay f32 in every precision: they are gathers of at
 * most 12 columns per head, not products (quantize leaves them f32, like the biases).
 * Allocates nothing per frame. Not here: the backbones, the fused product, sampling maths. */
#ifndef CPHIL_INFER_AR_H
#define CPHIL_INFER_AR_H

#include "infer/infer.h"

typedef struct infer_ar_heads {
    bool on;
    float *A[INFER_N_HEADS]; /* [hidden_h][offset_h], row-major; A[0] = NULL (buttons come first) */
} infer_ar_heads;

/* Load the five tables (f32, bf16 or int8 sources, as f32) through the engine's lookup. */
cphil_status cphil_infer_ar_load(infer_ar_heads *ar, cphil_infer_lookup lookup, void *ctx);
void cphil_infer_ar_free(infer_ar_heads *ar);

/* logits_h [C_h] of head h (at logits + cphil_head_offset[h]) from hidden_h [hidden_h]. */
typedef void (*infer_ar_head2_fn)(void *ctx, int head, const float *hidden_h, float *logits);

/* hidden [352]: the fused first layer's pre-activations (ReLU not applied); logits [81] out;
 * state [6] out: the values chosen (button mask, then the five classes). */
void cphil_infer_ar_forward(const infer_ar_heads *ar, float *hidden, float *logits, infer_ar_head2_fn head2, void *ctx,
                      cphil_infer_choose_fn choose, void *choose_user, uint8_t state[INFER_N_HEADS]);

#endif
