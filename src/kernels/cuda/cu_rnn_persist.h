/* cu_rnn_persist.h — the weights-resident LSTM/GRU recurrence (cu_rnn_persist.cu), called by
 * cu_rnn.cu's layers with the tile count cphil_cu_rnn_persist_tiles gave them (> 0). Device
 * pointers and saved values are exactly those of cphil_cu_lstm_* / cphil_cu_gru_* (cu.h); these
 * run only the recurrent part:
 * the forward expects gates = x Wih^T and hprev[:, 0] = h_{-1} (cprev0 = c_{-1}) already in place,
 * the backward writes dG (dGi, dGh) for every step and dh, dc = dL/dh0, dL/dc0, and leaves the
 * products over all rows (dx, dWih, dWhh, the bias sums) to the caller. */
#ifndef CPHIL_CU_RNN_PERSIST_H
#define CPHIL_CU_RNN_PERSIST_H

#include "kernels/cuda/cu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tiles of 16 batch rows per cluster the persistent kernel takes this layer with (1..3), or 0 when
 * the per-step path runs it: bf16, the mode is not STEPS, H % 32 == 0 (LSTM, ng 4) or H % 128 == 0
 * (GRU, ng 3), B, T > 0, the weight slice fits in shared memory and the block in the registers;
 * then the context's forced count (cphil_cu_set_rnn_tiles) where it fits, else the fewest tiles
 * whose clusters are all resident at once; when none are, 0 under AUTO and the most tiles that
 * fit (several waves) under PERSISTENT. */
int cphil_cu_rnn_persist_tiles(cphil_cu *cu, int ng, int B, int T, int H, cphil_precision prec);
/* cphil_cu_rnn_persist_tiles(...) > 0 */
bool cphil_cu_rnn_persist_fits(cphil_cu *cu, int ng, int B, int T, int H, cphil_precision prec);

/* Clusters of the forward (backward != 0: backward) kernel with `tiles` tiles of 16 rows that can
 * be resident at once (cudaOccupancyMaxActiveClusters); -1 when the query fails. */
int cphil_cu_rnn_persist_max_clusters(cphil_cu *cu, int ng, int H, int tiles, int backward);

void cphil_cu_lstm_persist_forward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh,
                                   const float *bih, const float *bhh, float *gates, float *cs,
                                   const float *cprev0, float *y, float *hprev);
void cphil_cu_lstm_persist_backward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh,
                                    const float *gates, const float *cs, const float *cprev0, const float *dy,
                                    float *dG, float *dh, float *dc);
void cphil_cu_gru_persist_forward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh,
                                  const float *bih, const float *bhh, float *gates, float *gh, float *y,
                                  float *hprev);
void cphil_cu_gru_persist_backward(cphil_cu *cu, int tiles, int B, int T, int H, const float *Whh,
                                   const float *gates, const float *gh, const float *hprev, const float *dy,
                                   float *dGi, float *dGh, float *dh);

#ifdef __cplusplus
}
#endif
#endif
