/* sample.c — seeded sampling of the six heads (see sample.h). xoshiro256** by Blackman and
 * Vigna (public-domain algorithm, written here from its description), seeded by splitmix64. */
#include "agent/sample.h"
#include "kernels/cpu/kernels.h"

#include <math.h>

static const int k_off[6] = {0, 8, 25, 42, 59, 76};
static const int k_cls[6] = {8, 17, 17, 17, 17, 5};

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void cphil_rng_seed(cphil_rng *r, uint64_t seed) {
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9E3779B97F4A7C15ull;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        r->s[i] = x ^ (x >> 31);
    }
}

uint64_t cphil_rng_next(cphil_rng *r) {
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double cphil_rng_uniform(cphil_rng *r) { return ((double)(cphil_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

void cphil_gumbel_f64_ref(const double *u, double *g, int n) {
    for (int i = 0; i < n; i++) g[i] = -log(-log(u[i]));
}

void cphil_gumbel_f64(const double *u, double *g, int n) {
    if (cphil_isa_active() == CPHIL_ISA_AVX512) cphil_gumbel_f64_avx512(u, g, n);
    else cphil_gumbel_f64_ref(u, g, n);
}

enum { N_CAT = 73 }; /* classes of the five categorical heads */

void cphil_sample_action(const float *logits, float temperature, bool deterministic, cphil_rng *rng,
                         uint8_t buttons[8], uint8_t cls[5]) {
    for (int i = 0; i < 8; i++) {
        float l = logits[i];
        if (deterministic) buttons[i] = l > 0.f;
        else buttons[i] = cphil_rng_uniform(rng) < 1.0 / (1.0 + exp(-(double)l));
    }
    float invT = temperature > 0.f ? 1.f / temperature : 1.f;
    double g[N_CAT];
    if (!deterministic) { /* one uniform per class in head and class order, then the noise at once */
        for (int i = 0; i < N_CAT; i++) g[i] = cphil_rng_uniform(rng);
        cphil_gumbel_f64(g, g, N_CAT);
    }
    for (int h = 1, j = 0; h < 6; h++) {
        const float *l = logits + k_off[h];
        int best = 0;
        double bv = -INFINITY;
        for (int k = 0; k < k_cls[h]; k++, j++) {
            double v = (double)l[k] * (deterministic ? 1.0 : invT);
            if (!deterministic) v += g[j];
            if (v > bv) {
                bv = v;
                best = k;
            }
        }
        cls[h - 1] = (uint8_t)best;
    }
}
