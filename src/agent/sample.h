/* sample.h — turning the 81 logits of one decision into an action, the seed's sampling
 * (reference/exphil_system.md 2.4): buttons Bernoulli on sigmoid(logit) (temperature does not
 * apply to buttons, as in ExPhil), categorical heads by Gumbel-max on logits / T
 * (argmax(l/T + g), g = -log(-log u)); deterministic mode: buttons sigmoid > 0.5 (logit > 0),
 * categorical argmax. Seeded (xoshiro256**) and reproducible; allocates nothing. The 73 uniforms
 * of the categorical heads are drawn first (in head and class order, as one draw per class), then
 * their Gumbel noise in one vector call (cphil_gumbel_f64).
 * Does not: hysteresis, jump debounce or confidence (ExPhil's opt-in extras).
 */
#ifndef CPHIL_AGENT_SAMPLE_H
#define CPHIL_AGENT_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cphil_rng { uint64_t s[4]; } cphil_rng;

void cphil_rng_seed(cphil_rng *r, uint64_t seed);
uint64_t cphil_rng_next(cphil_rng *r);
/* uniform in (0, 1), never 0 or 1 */
double cphil_rng_uniform(cphil_rng *r);

/* logits[81] (heads in order) -> buttons[8] (0/1), cls[5] (main_x main_y c_x c_y shoulder). */
void cphil_sample_action(const float *logits, float temperature, bool deterministic, cphil_rng *rng,
                         uint8_t buttons[8], uint8_t cls[5]);

/* g[i] = -log(-log(u[i])) for u[i] in (0, 1), in double. _ref: libm log. _avx512: its own
 * log (getexp/getmant, atanh series to q^10, ln 2 split in two), within ~2 ulp of libm; the
 * tier in use is the kernels' (CPHIL_ISA). n >= 0; g may alias u. */
void cphil_gumbel_f64(const double *u, double *g, int n);
void cphil_gumbel_f64_ref(const double *u, double *g, int n);
void cphil_gumbel_f64_avx512(const double *u, double *g, int n);

#endif
