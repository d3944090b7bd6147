/* test_cuda_attention.c — the GPU causal attention with RoPE (src/kernels/cuda/cu_attention.cu)
 * against the CPU layer (cphil_nn_rope_table, cphil_nn_attention_*): the rope table, forward out
 * and the saved qkv (q, k after RoPE), P and att, then du, dWqkv, dbqkv, dWo, dbo ADDED into the
 * same random starting values on both sides (and the datt/dqkv scratch, same meaning as the
 * CPU's). Sizes: ragged (B=2, T=7, H=12, nh=2: hd 6), realistic (B=8, T=60, H=256, nh=4: one
 * shared-memory tile), several tiles along T (T=150, hd 12) and a small tile forced by a large
 * head (hd 256: tile 22, three tiles at T=60). Relative error <= 1e-4 with CPHIL_PREC_F32 on both
 * sides, <= 2e-2 with CPHIL_PREC_BF16; each GPU run is repeated and must give the same bits.
 * Needs a GPU (SKIPs without one). */
#include "cu_test.h"
#include "nn/nn.h"


enum { U, WQKV, BQKV, WO, BO, DOUT, DU, DWQKV, DBQKV, DWO, DBO, N_IN };
enum { ROPE, QKV, P, ATT, OUT, GDU, GDWQKV, GDBQKV, GDWO, GDBO, DATT, DQKV, N_OUT };

static void attention_case(int B, int T, int H, int nh, cphil_precision prec, double tol, uint64_t seed) {
    cphil_cu *cu = cu_ctx();
    const int hd = H / nh;
    const size_t BT = (size_t)B * T, H3 = 3 * (size_t)H;
    const float ws = 1.f / sqrtf((float)H);
    size_t in_n[N_IN] = {BT * H, H3 * H, H3, (size_t)H * H, (size_t)H, BT * H, BT * H, H3 * H, H3, (size_t)H * H,
                         (size_t)H};
    float in_lo[N_IN] = {-1, -ws, -0.1f, -ws, -0.1f, -1, -1, -1, -1, -1, -1};
    float *in[N_IN];
    for (int i = 0; i < N_IN; i++) in[i] = rnd_host(in_n[i], seed * 100 + (uint64_t)i, in_lo[i], -in_lo[i]);
    size_t out_n[N_OUT] = {(size_t)T * hd, BT * H3, (size_t)B * nh * T * T, BT * H, BT * H, BT * H, H3 * H, H3,
                           (size_t)H * H, (size_t)H, BT * H, BT * H3};
    const char *out_name[N_OUT] = {"rope", "qkv", "P", "att", "out", "du", "dWqkv", "dbqkv", "dWo", "dbo",
                                   "datt (scratch)", "dqkv (scratch)"};

    /* CPU reference, f32 layer with the same precision for the products */
    float *ref[N_OUT];
    for (int i = 0; i < N_OUT; i++) ref[i] = malloc(out_n[i] * sizeof(float));
    free(ref[GDU]); free(ref[GDWQKV]); free(ref[GDBQKV]); free(ref[GDWO]); free(ref[GDBO]);
    ref[GDU] = copy_of(in[DU], out_n[GDU]);
    ref[GDWQKV] = copy_of(in[DWQKV], out_n[GDWQKV]);
    ref[GDBQKV] = copy_of(in[DBQKV], out_n[GDBQKV]);
    ref[GDWO] = copy_of(in[DWO], out_n[GDWO]);
    ref[GDBO] = copy_of(in[DBO], out_n[GDBO]);
    float *dP_cpu = malloc((size_t)T * T * sizeof(float));
    cphil_nn_rope_table(T, hd, ref[ROPE]);
    cphil_nn_attention_forward(prec, B, T, H, nh, in[U], in[WQKV], in[BQKV], in[WO], in[BO], ref[ROPE], ref[QKV],
                               ref[P], ref[ATT], ref[OUT]);
    cphil_nn_attention_backward(prec, B, T, H, nh, in[U], in[WQKV], in[WO], ref[ROPE], ref[QKV], ref[P], ref[ATT],
                                in[DOUT], ref[GDU], ref[GDWQKV], ref[GDBQKV], ref[GDWO], ref[GDBO], ref[DATT],
                                ref[DQKV], dP_cpu);

    /* GPU, twice */
    float *d_in[N_IN], *d_out[2][N_OUT], *d_dP[2];
    for (int i = 0; i <= DOUT; i++) d_in[i] = dev_from(in[i], in_n[i]);
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < N_OUT; i++) d_out[r][i] = dev_alloc(out_n[i]);
        dev_set(d_out[r][GDU], in[DU], out_n[GDU]);
        dev_set(d_out[r][GDWQKV], in[DWQKV], out_n[GDWQKV]);
        dev_set(d_out[r][GDBQKV], in[DBQKV], out_n[GDBQKV]);
        dev_set(d_out[r][GDWO], in[DWO], out_n[GDWO]);
        dev_set(d_out[r][GDBO], in[DBO], out_n[GDBO]);
        d_dP[r] = dev_alloc((size_t)B * nh * T * T);
        float **o = d_out[r];
        cphil_cu_rope_table(cu, T, hd, o[ROPE]);
        cphil_cu_attention_forward(cu, prec, B, T, H, nh, d_in[U], d_in[WQKV], d_in[BQKV], d_in[WO], d_in[BO],
                                   o[ROPE], o[QKV], o[P], o[ATT], o[OUT]);
        cphil_cu_attention_backward(cu, prec, B, T, H, nh, d_in[U], d_in[WQKV], d_in[WO], o[ROPE], o[QKV], o[P],
                                    o[ATT], d_in[DOUT], o[GDU], o[GDWQKV], o[GDBQKV], o[GDWO], o[GDBO], o[DATT],
                                    o[DQKV], d_dP[r]);
    }
    printf("  attention B=%d T=%d H=%d nh=%d %s\n", B, T, H, nh, prec == CPHIL_PREC_BF16 ? "bf16" : "f32");
    for (int i = 0; i < N_OUT; i++) CHECK_DEV(out_name[i], d_out[0][i], ref[i], out_n[i], i == ROPE ? 1e-5 : tol);
    for (int i = 0; i < N_OUT; i++) same_bits(out_name[i], d_out[0][i], d_out[1][i], out_n[i]);

    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < N_OUT; i++) cphil_cu_free(d_out[r][i]);
        cphil_cu_free(d_dP[r]);
    }
    for (int i = 0; i <= DOUT; i++) cphil_cu_free(d_in[i]);
    for (int i = 0; i < N_IN; i++) free(in[i]);
    for (int i = 0; i < N_OUT; i++) free(ref[i]);
    free(dP_cpu);
}

TEST(attention_ragged_f32) { attention_case(2, 7, 12, 2, CPHIL_PREC_F32, 1e-4, 1); }
TEST(attention_ragged_bf16) { attention_case(2, 7, 12, 2, CPHIL_PREC_BF16, 2e-2, 2); }
TEST(attention_realistic_f32) { attention_case(8, 60, 256, 4, CPHIL_PREC_F32, 1e-4, 3); }
TEST(attention_realistic_bf16) { attention_case(8, 60, 256, 4, CPHIL_PREC_BF16, 2e-2, 4); }
TEST(attention_long_f32) { attention_case(2, 150, 24, 2, CPHIL_PREC_F32, 1e-4, 5); }
TEST(attention_wide_head_f32) { attention_case(2, 60, 256, 1, CPHIL_PREC_F32, 1e-4, 6); }

int main(void) {
    RUN(attention_ragged_f32);
    RUN(attention_ragged_bf16);
    RUN(attention_realistic_f32);
    RUN(attention_realistic_bf16);
    RUN(attention_long_f32);
    RUN(attention_wide_head_f32);
    return cu_test_done();
}
