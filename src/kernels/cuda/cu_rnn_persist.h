/* cu_rnn_persist.h — the weights-resident LSTM/GRU recurrence (cu_rnn_persist.cu), called by
 * cu_rnn.cu's layers when cphil_cu_rnn_persist_fits says yes. Device pointers and saved values
 * are exactly those of cphil_cu_lstm_* / cphil_cu_gru_* (cu.h); these run only the recurrent part:
 * the forward expects gates = x Wih^T and hprev[:, 0] = h_{-1} (cprev0 = c_{-1}) already in place,
 * the backward writes dG (dGi, dGh) for every step and dh, dc = dL/dh0, dL/dc0, and leaves the
 * products over all rows (dx, dWih, dWhh, the bias sums) to the caller. */
#ifndef CPHIL_CU_RNN_PERSIST_H
#define CPHIL_CU_RNN_PERSIST_H

#include "kernels/cuda/cu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when the persistent kernel takes this layer: bf16, the mode is not STEPS, H % 32 == 0
 * (LSTM, ng 4) or H % 128 == 0 (GRU, ng 3), B, T > 0, and the weight slice fits in shared memory. */
bool cphil_cu_rnn_persist_fits(cphil_cu *cu, int ng, int B, int T, int H, cphil_precision prec);

/* Clusters of the forward (backward != 0: backward) kernel that can be resident at once
 * (cudaOccupancyMaxActiveClusters); -1 when the query fails. Each cluster serves 16 batch rows. */
int cphil_cu_rnn_persist_max_clusters(cphil_cu *cu, int ng, int H, int backward);

void cphil_cu_lstm_persist_forward(cphil_cu *cu, int B, int T, int H, const float *Whh, const float *bih,
                                   const float *bhh, float *gates, float *cs, const float *cprev0, float *y,
                                   float *hprev);
void cphil_cu_lstm_persist_backward(cphil_cu *cu, int B, int T, int H, const float *Whh, const float *gates,
                                    const float *cs, const float *cprev0, const float *dy, float *dG, float *dh,
                                    float *dc);
void cphil_cu_gru_persist_forward(cphil_cu *cu, int B, int T, int H, const float *Whh, const float *bih,
                                  const float *bhh, float *gates, float *gh, float *y, float *hprev);
void cphil_cu_gru_persist_backward(cphil_cu *cu, int B, int T, int H, const float *Whh, const float *gates,
                                   const float *gh, const float *hprev, const float *dy, float *dGi, float *dGh,
                                   float *dh);

#ifdef __cplusplus
}
#endif
#endif
