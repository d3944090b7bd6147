/* fuzz_policy.c — libFuzzer target for the policy readers: the training side's
 * (cphil_policy_load_file, from memory) and the inference engine's (cphil_infer_policy_open,
 * f32, bf16 and int8 files, from a file). A file either loads, and then every tensor is where
 * the config says, or is refused with a status; ASan/UBSan catch anything else. Seeds: an f32
 * MLP and LSTM policy and their bf16 and int8 copies (tiny configs: E 24). */
#include "core/safetensors.h"
#include "infer/infer_policy.h"
#include "model/model.h"

#include "fuzz_reader.h"

static void seed_policy(cphil_backbone bb, const char *name) {
    cphil_model_config c;
    cphil_model_config_default(&c, bb);
    c.n_cont = 20, c.n_ids = 2, c.E = 24, c.hidden = 8, c.num_layers = 1, c.window = 4;
    c.n_mlp = 2, c.mlp_hidden[0] = 8, c.mlp_hidden[1] = 8;
    cphil_model m;
    if (cphil_model_init(&m, &c)) abort();
    cphil_model_init_params(&m, 1);
    char p[1100], q[1100];
    snprintf(p, sizeof p, "%s", fuzz_seed_path(name));
    if (cphil_policy_save(&m, p)) abort();
    cphil_model_free(&m);
    cphil_infer_policy *ip;
    if (cphil_infer_policy_open(p, &ip)) abort();
    snprintf(q, sizeof q, "%s.int8", p);
    if (cphil_infer_policy_write_quantized(ip, q, CPHIL_W_I8, 0, NULL, NULL)) abort();
    snprintf(q, sizeof q, "%s.bf16", p);
    if (cphil_infer_policy_write_quantized(ip, q, CPHIL_W_BF16, 0, NULL, NULL)) abort();
    cphil_infer_policy_close(ip);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (!fuzz_seed_path("x")) return 0;
    seed_policy(CPHIL_BACKBONE_MLP, "mlp");
    seed_policy(CPHIL_BACKBONE_LSTM, "lstm");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cphil_st_file *f = NULL;
    if (cphil_st_open_memory(data, size, false, "fuzz", &f) == CPHIL_OK) {
        cphil_model m;
        if (cphil_policy_load_file(f, &m) == CPHIL_OK) {
            double sum = 0; /* every parameter is readable and finite */
            for (size_t i = 0; i < m.n_floats; i++) sum += m.params[i];
            if (sum != sum) abort();
            cphil_model_free(&m);
        }
        cphil_st_close(f);
    }
    cphil_infer_policy *p = NULL;
    if (cphil_infer_policy_open(fuzz_as_file(data, size, ".safetensors"), &p) == CPHIL_OK) {
        const cphil_model_config *c = cphil_infer_policy_config(p);
        if (c->window < 1 || c->window > CPHIL_MODEL_MAX_WINDOW) abort();
        cphil_infer_policy_close(p);
    }
    return 0;
}
