/* infer_testing.h — write a small random policy file (model tensor table, seeded PyTorch-style
 * init, cphil_policy_save) for tests and demos. Plain-int interface: callers need not know the
 * model's tensor table.
 */
#ifndef CPHIL_INFER_TESTING_H
#define CPHIL_INFER_TESTING_H

#include "cphil.h"

#include <stdint.h>

typedef struct cphil_test_policy_opts {
    const char *backbone;   /* "mlp", "lstm", "gru", "mamba", "attention" */
    int n_cont, n_ids, E;   /* the embedding */
    uint64_t layout_hash;   /* 0 = unknown */
    int hidden, layers, window, state, conv, heads;
    int mlp0, mlp1;         /* MLP hidden sizes */
    uint64_t seed;
} cphil_test_policy_opts;

cphil_status cphil_write_test_policy(const char *path, const cphil_test_policy_opts *o);

#endif
