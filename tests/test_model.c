/* test_model.c — model config (defaults, validation, JSON round trip, hostile JSON), the tensor
 * table (names, shapes, offsets, parameter counts) and initialisation. Numerics: test_nn.c. */
#include "core/core.h"
#include "harness.h"
#include "model/model.h"
#include "core/safetensors.h"
#include "game/embed.h"

#include <stdlib.h>

static void small_cfg(cphil_model_config *c, cphil_backbone b) {
    cphil_model_config_default(c, b);
    c->n_cont = 7;
    c->n_ids = 3;
    c->E = 23;
    c->hidden = 6;
    c->num_layers = 2;
    c->window = 4;
    c->state_size = 3;
    c->conv_size = 3;
    c->num_heads = 3; /* head dim 2 */
    c->n_mlp = 2;
    c->mlp_hidden[0] = 9;
    c->mlp_hidden[1] = 5;
}

TEST(config_json_round_trip) {
    for (int b = 0; b < CPHIL_N_BACKBONES; b++) {
        cphil_model_config c, d;
        small_cfg(&c, (cphil_backbone)b);
        c.layout_hash = 0xfedcba9876543210ull;
        c.precision = CPHIL_PREC_F32;
        char buf[1024];
        size_t n;
        CHECK(cphil_model_config_to_json(&c, buf, sizeof buf, &n) == CPHIL_OK);
        CHECK(n == strlen(buf));
        CHECK(cphil_model_config_from_json(buf, n, &d) == CPHIL_OK);
        CHECK(!memcmp(&c, &d, sizeof c) || (d.backbone == c.backbone && d.E == c.E));
        CHECK_EQ_INT(d.layout_hash == c.layout_hash, 1);
        CHECK_EQ_INT(d.n_mlp, 2);
        CHECK_EQ_INT(d.mlp_hidden[1], 5);
        CHECK_EQ_INT(d.precision, CPHIL_PREC_F32);
        CHECK_EQ_INT(d.hidden, 6);
        char tiny[16];
        CHECK(cphil_model_config_to_json(&c, tiny, sizeof tiny, &n) == CPHIL_E_ARG);
    }
}

TEST(config_json_rejects_bad_input) {
    cphil_model_config c;
    const char *bad[] = {"", "{", "{\"backbone\":\"lstm\"", "{\"backbone\":\"xx\"}",
                         "{\"n_cont\":3}", "{\"backbone\":\"lstm\",\"hidden\":1.5}",
                         "{\"backbone\":\"lstm\",\"hidden\":-3,\"E\":5}",
                         "{\"backbone\":\"mlp\",\"E\":9,\"mlp_hidden\":[1,2,3,4,5,6,7,8,9]}",
                         "{\"backbone\":\"lstm\",\"E\":9,\"precision\":\"f16\"}",
                         "{\"backbone\":\"lstm\",\"E\":9,\"layout_hash\":\"zz\"}"};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(bad); i++)
        CHECK_MSG(cphil_model_config_from_json(bad[i], strlen(bad[i]), &c) != CPHIL_OK, "accepted %s", bad[i]);
    const char *ok = " { \"backbone\" : \"gru\", \"E\": 40, \"n_cont\": 4, \"extra\": [1, \"x\", true] } ";
    CHECK(cphil_model_config_from_json(ok, strlen(ok), &c) == CPHIL_OK);
    CHECK_EQ_INT(c.backbone, CPHIL_BACKBONE_GRU);
    CHECK_EQ_INT(c.hidden, 256);
    /* Truncations of a valid object never read past the end. */
    char buf[512];
    small_cfg(&c, CPHIL_BACKBONE_MAMBA);
    size_t n;
    CHECK(cphil_model_config_to_json(&c, buf, sizeof buf, &n) == CPHIL_OK);
    for (size_t k = 0; k < n; k++) {
        char *cut = cphil_alloc(k + 1);
        memcpy(cut, buf, k);
        CHECK(cphil_model_config_from_json(cut, k, &c) != CPHIL_OK);
        cphil_free(cut);
    }
}

TEST(tensor_table_shapes_and_counts) {
    cphil_model_config c;
    small_cfg(&c, CPHIL_BACKBONE_LSTM);
    cphil_model m;
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    const cphil_tensor *t = cphil_model_find(&m, "lstm.weight_hh_l1");
    CHECK(t && t->ndim == 2 && t->shape[0] == 24 && t->shape[1] == 6);
    CHECK(cphil_model_find(&m, "heads.shoulder.2.bias")->shape[0] == 5);
    CHECK(cphil_model_find(&m, "heads.shoulder.0.weight")->shape[0] == 32);
    /* input 6*23+6, lstm 2*(2*24*6+2*24), heads 6*(64+...) */
    size_t want = 6 * 23 + 6 + 2 * (2 * 24 * 6 + 2 * 24);
    for (int h = 0; h < CPHIL_N_HEADS; h++)
        want += (size_t)cphil_head_hidden[h] * (6 + 1) + (size_t)cphil_head_classes[h] * (cphil_head_hidden[h] + 1);
    CHECK_EQ_INT(m.n_weights, want);
    for (int i = 0; i < m.n_tensors; i++) {
        CHECK(m.tensors[i].offset % 16 == 0);
        if (i) CHECK(m.tensors[i].offset >= m.tensors[i - 1].offset + m.tensors[i - 1].numel);
    }
    cphil_model_free(&m);
    cphil_model_free(&m);

    small_cfg(&c, CPHIL_BACKBONE_MAMBA);
    c.hidden = 20; /* R = ceil(20/16) = 2, I = 40 */
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    t = cphil_model_find(&m, "layers.1.mixer.x_proj.weight");
    CHECK(t && t->shape[0] == 2 + 2 * 3 && t->shape[1] == 40);
    t = cphil_model_find(&m, "layers.0.mixer.conv1d.weight");
    CHECK(t && t->ndim == 3 && t->shape[0] == 40 && t->shape[1] == 1 && t->shape[2] == 3);
    cphil_model_init_params(&m, 1);
    t = cphil_model_find(&m, "layers.0.mixer.A_log");
    CHECK_NEAR(m.params[t->offset + 2], log(3.0), 1e-6, 0);
    t = cphil_model_find(&m, "layers.0.mixer.dt_proj.bias");
    for (int i = 0; i < 40; i++) {
        double sp = log1p(exp(m.params[t->offset + i]));
        CHECK(sp >= 0.99e-3 && sp <= 0.101);
    }
    CHECK(cphil_model_find(&m, "norm_f.weight") != NULL);
    CHECK(cphil_model_find(&m, "nope") == NULL);
    cphil_model_free(&m);

    small_cfg(&c, CPHIL_BACKBONE_MLP);
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    CHECK(cphil_model_find(&m, "input_proj.weight")->shape[0] == 9);
    CHECK(cphil_model_find(&m, "mlp.0.weight")->shape[0] == 5);
    CHECK(cphil_model_find(&m, "heads.buttons.0.weight")->shape[1] == 5);
    cphil_model_free(&m);

    small_cfg(&c, CPHIL_BACKBONE_ATTENTION);
    c.num_heads = 4; /* 6 / 4 does not split */
    CHECK(cphil_model_init(&m, &c) == CPHIL_E_ARG);
}

TEST(policy_file_round_trip) {
    for (int b = 0; b < CPHIL_N_BACKBONES; b++) {
        cphil_model_config c;
        small_cfg(&c, (cphil_backbone)b);
        c.layout_hash = 0x1122334455667788ull;
        cphil_model m, r;
        CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
        cphil_model_init_params(&m, 5 + (uint64_t)b);
        char path[512];
        snprintf(path, sizeof path, "%s/policy_%d.safetensors", harness_tmpdir(), b);
        CHECK(cphil_policy_save(&m, path) == CPHIL_OK);
        CHECK_MSG(cphil_policy_load(path, &r) == CPHIL_OK, "%s", cphil_last_error());
        CHECK(!memcmp(&r.cfg, &m.cfg, sizeof m.cfg) || (r.cfg.layout_hash == m.cfg.layout_hash && r.cfg.E == m.cfg.E));
        CHECK_EQ_INT(r.n_tensors, m.n_tensors);
        CHECK_EQ_INT(r.n_floats, m.n_floats);
        CHECK(!memcmp(r.params, m.params, m.n_floats * sizeof(float)));
        cphil_model_free(&r);
        cphil_model_free(&m);
    }
}

/* Autoregressive heads: the config records them ("heads":"autoregressive", only then, so the
 * config text of independent policies is what it always was and old files load as
 * independent); five extra tensors heads.<name>.ar.weight [hidden_h, offset_h], last in the
 * table, zero at init; the file round-trips. Teacher forcing conditions head h on the targets
 * of heads < h only, and the greedy forward equals teacher forcing on its own choices. */
TEST(autoregressive_heads_config_file_and_conditioning) {
    cphil_model_config c, d;
    small_cfg(&c, CPHIL_BACKBONE_MLP);
    char buf[1024];
    size_t len;
    CHECK(cphil_model_config_to_json(&c, buf, sizeof buf, &len) == CPHIL_OK);
    CHECK(strstr(buf, "heads\"") == NULL || strstr(buf, "\"heads\":") == NULL);
    CHECK(cphil_model_config_from_json(buf, len, &d) == CPHIL_OK && d.heads == CPHIL_HEADS_INDEPENDENT);
    c.heads = CPHIL_HEADS_AUTOREGRESSIVE;
    CHECK(cphil_model_config_to_json(&c, buf, sizeof buf, &len) == CPHIL_OK);
    CHECK(strstr(buf, "\"heads\":\"autoregressive\"}") != NULL);
    CHECK(cphil_model_config_from_json(buf, len, &d) == CPHIL_OK && d.heads == CPHIL_HEADS_AUTOREGRESSIVE);
    const char *bad = "{\"backbone\":\"mlp\",\"heads\":\"sideways\"}";
    CHECK(cphil_model_config_from_json(bad, strlen(bad), &d) == CPHIL_E_FORMAT);

    cphil_model mi, m, r;
    cphil_model_config ci = c;
    ci.heads = CPHIL_HEADS_INDEPENDENT;
    CHECK(cphil_model_init(&mi, &ci) == CPHIL_OK);
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    CHECK_EQ_INT(m.n_tensors, mi.n_tensors + 5);
    for (int i = 0; i < mi.n_tensors; i++) CHECK(!strcmp(m.tensors[i].name, mi.tensors[i].name) && m.tensors[i].offset == mi.tensors[i].offset);
    const cphil_tensor *t = cphil_model_find(&m, "heads.main_y.ar.weight");
    CHECK(t && t->shape[0] == 64 && t->shape[1] == 25);
    t = cphil_model_find(&m, "heads.shoulder.ar.weight");
    CHECK(t && t->shape[0] == 32 && t->shape[1] == 76);
    CHECK(cphil_model_find(&m, "heads.buttons.ar.weight") == NULL);
    cphil_model_init_params(&m, 9);
    t = cphil_model_find(&m, "heads.c_x.ar.weight");
    int zero = 1;
    for (size_t k = 0; k < t->numel; k++) zero &= m.params[t->offset + k] == 0.0f;
    CHECK(zero);
    /* make the conditioning matter, then round-trip the file */
    for (int h = 1; h < CPHIL_N_HEADS; h++) {
        char nm[64];
        snprintf(nm, sizeof nm, "heads.%s.ar.weight", cphil_head_names[h]);
        t = cphil_model_find(&m, nm);
        for (size_t k = 0; k < t->numel; k++) m.params[t->offset + k] = (float)((k * 37 % 11) - 5) * 0.3f;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/policy_ar.safetensors", harness_tmpdir());
    CHECK(cphil_policy_save(&m, path) == CPHIL_OK);
    CHECK_MSG(cphil_policy_load(path, &r) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(r.cfg.heads == CPHIL_HEADS_AUTOREGRESSIVE && r.n_tensors == m.n_tensors);
    CHECK(!memcmp(r.params, m.params, m.n_floats * sizeof(float)));
    cphil_model_free(&r);

    /* conditioning: one frame, B = T = 1 */
    cphil_model_ws *ws = NULL;
    CHECK(cphil_model_ws_create(&m, 1, 1, &ws) == CPHIL_OK);
    float cont[7];
    for (int k = 0; k < 7; k++) cont[k] = 0.3f * (float)k - 0.5f;
    int32_t ids[3] = {8, 12, 20};
    uint8_t btn[8] = {1, 0, 0, 1, 0, 0, 0, 0}, cls[5] = {3, 8, 8, 12, 2};
    float a[CPHIL_N_LOGITS], b2[CPHIL_N_LOGITS], g[CPHIL_N_LOGITS];
    cphil_model_batch mb = {1, 1, cont, ids, btn, cls, NULL};
    memcpy(a, cphil_model_forward(&m, ws, &mb), sizeof a);
    cls[1] = 14; /* main_y's target: changes c_x, c_y, shoulder only */
    memcpy(b2, cphil_model_forward(&m, ws, &mb), sizeof b2);
    CHECK(!memcmp(a, b2, (size_t)cphil_head_offset[CPHIL_HEAD_C_X] * sizeof(float)));
    CHECK(memcmp(a + cphil_head_offset[CPHIL_HEAD_C_X], b2 + cphil_head_offset[CPHIL_HEAD_C_X],
                 (size_t)(CPHIL_N_LOGITS - cphil_head_offset[CPHIL_HEAD_C_X]) * sizeof(float)) != 0);
    /* greedy: the same logits as teacher forcing on the greedy choices */
    cphil_model_batch gb = {1, 1, cont, ids, NULL, NULL, NULL};
    memcpy(g, cphil_model_forward(&m, ws, &gb), sizeof g);
    for (int k = 0; k < 8; k++) btn[k] = g[k] > 0;
    for (int h = 1; h < CPHIL_N_HEADS; h++) {
        const float *z = g + cphil_head_offset[h];
        int am = 0;
        for (int k = 1; k < cphil_head_classes[h]; k++)
            if (z[k] > z[am]) am = k;
        cls[h - 1] = (uint8_t)am;
    }
    memcpy(a, cphil_model_forward(&m, ws, &mb), sizeof a);
    CHECK(!memcmp(a, g, sizeof a));
    cphil_model_ws_free(ws);
    cphil_model_free(&m);
    cphil_model_free(&mi);
}

/* Files a policy loader must refuse: each built with the safetensors writer. */
TEST(policy_file_refuses_bad_files) {
    cphil_model_config c;
    small_cfg(&c, CPHIL_BACKBONE_GRU);
    cphil_model m, r;
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    cphil_model_init_params(&m, 3);
    char cfg[1024], path[512];
    CHECK(cphil_model_config_to_json(&c, cfg, sizeof cfg, NULL) == CPHIL_OK);
    snprintf(path, sizeof path, "%s/bad_policy.safetensors", harness_tmpdir());
    for (int k = 0; k < 5; k++) {
        cphil_st_writer *w;
        CHECK(cphil_st_writer_new(&w) == CPHIL_OK);
        if (k != 0) cphil_st_writer_meta(w, "format", "cphil-policy");
        cphil_st_writer_meta(w, "cphil_config", k == 4 ? "{\"backbone\":\"gru\"}" : cfg);
        for (int i = 0; i < m.n_tensors; i++) {
            const cphil_tensor *t = &m.tensors[i];
            if (k == 1 && i == 3) continue; /* a missing tensor */
            int64_t shape[3] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0, 0};
            if (k == 2 && i == 2) shape[0] = 1; /* a wrong shape (fewer values) */
            cphil_st_writer_add(w, t->name, CPHIL_DT_F32, t->ndim, shape, m.params + t->offset);
        }
        if (k == 3) cphil_st_writer_add(w, "extra.weight", CPHIL_DT_F32, 1, (int64_t[]){2}, m.params);
        CHECK(cphil_st_writer_write(w, path) == CPHIL_OK);
        cphil_st_writer_free(w);
        cphil_status st = cphil_policy_load(path, &r);
        CHECK_MSG(st != CPHIL_OK, "case %d accepted", k);
        CHECK(r.params == NULL && r.tensors == NULL);
        CHECK(strstr(cphil_last_error(), "bad_policy") != NULL);
    }
    /* every truncation of a good file fails cleanly */
    CHECK(cphil_policy_save(&m, path) == CPHIL_OK);
    uint8_t *data;
    size_t n;
    CHECK(cphil_file_read(path, 1 << 24, &data, &n) == CPHIL_OK);
    for (size_t cut = 0; cut < n; cut += 1 + n / 97) {
        cphil_st_file *f;
        cphil_status st = cphil_st_open_memory(data, cut, false, "cut", &f);
        if (st == CPHIL_OK) {
            st = cphil_policy_load_file(f, &r);
            cphil_st_close(f);
            if (st == CPHIL_OK) cphil_model_free(&r);
        }
        CHECK_MSG(st != CPHIL_OK, "truncation at %zu accepted", cut);
    }
    cphil_free(data);
    cphil_model_free(&m);
}

/* What validation accepts is bounded (docs/model.md "Limits"): a policy file's config can ask
 * for no more than a real policy needs. Window 100000 used to pass and make every command try a
 * workspace of tens of GB. */
TEST(config_bounds) {
    cphil_model_config c;
    small_cfg(&c, CPHIL_BACKBONE_LSTM);
    c.window = CPHIL_MODEL_MAX_WINDOW;
    CHECK(cphil_model_config_validate(&c) == CPHIL_OK);
    c.window = CPHIL_MODEL_MAX_WINDOW + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "window"));
    c.window = 100000;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG);
    small_cfg(&c, CPHIL_BACKBONE_GRU);
    c.hidden = CPHIL_MODEL_MAX_HIDDEN + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "hidden"));
    small_cfg(&c, CPHIL_BACKBONE_GRU);
    c.num_layers = CPHIL_MODEL_MAX_LAYERS + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "num_layers"));
    small_cfg(&c, CPHIL_BACKBONE_MLP);
    c.mlp_hidden[1] = CPHIL_MODEL_MAX_HIDDEN + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG);
    small_cfg(&c, CPHIL_BACKBONE_ATTENTION);
    c.hidden = 2 * (CPHIL_MODEL_MAX_HEADS + 1);
    c.num_heads = CPHIL_MODEL_MAX_HEADS + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "num_heads"));
    small_cfg(&c, CPHIL_BACKBONE_MAMBA);
    c.state_size = CPHIL_MODEL_MAX_STATE + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "state_size"));
    small_cfg(&c, CPHIL_BACKBONE_MAMBA);
    c.hidden = 1024, c.expand = 4, c.state_size = 32; /* I x N = 131072 */
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "state_size"));
    small_cfg(&c, CPHIL_BACKBONE_LSTM);
    c.E = CPHIL_MODEL_MAX_E + 1;
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG);
    c.E = CPHIL_MODEL_MAX_E, c.hidden = 4096; /* E x H alone is 256 Mi parameters */
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "parameters"));
    c.E = 2185, c.hidden = 1024, c.num_layers = 4, c.window = 60; /* 35 M parameters, window 60: fine */
    CHECK(cphil_model_config_validate(&c) == CPHIL_OK);
    c.window = 1024; /* the same model over 1024 frames: too much work per decision */
    CHECK(cphil_model_config_validate(&c) == CPHIL_E_ARG && strstr(cphil_last_error(), "window"));
    /* the seed's default sizes pass at the largest window */
    cphil_model_config_default(&c, CPHIL_BACKBONE_ATTENTION);
    c.n_cont = 99, c.n_ids = 10, c.E = 2185, c.window = CPHIL_MODEL_MAX_WINDOW;
    CHECK(cphil_model_config_validate(&c) == CPHIL_OK);
}

/* A workspace allocation that fails returns CPHIL_E_NOMEM without touching freed memory (the
 * error message used to read the freed workspace: ASan reports it). */
static int ws_budget;
static void *ws_alloc(size_t size, size_t align, void *user) {
    (void)user;
    if (ws_budget-- <= 0) return NULL;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void ws_free(void *p, void *user) { (void)user; free(p); }

TEST(workspace_allocation_failure_is_clean) {
    cphil_model_config c;
    small_cfg(&c, CPHIL_BACKBONE_LSTM);
    cphil_model m;
    CHECK(cphil_model_init(&m, &c) == CPHIL_OK);
    cphil_allocator a = {ws_alloc, ws_free, NULL};
    bool ok = false;
    for (int k = 0; k < 8 && !ok; k++) {
        ws_budget = k;
        cphil_set_allocator(&a);
        cphil_model_ws *ws = NULL;
        cphil_status st = cphil_model_ws_create(&m, 2, c.window, &ws);
        cphil_set_allocator(NULL);
        ok = st == CPHIL_OK;
        if (!ok) CHECK_MSG(st == CPHIL_E_NOMEM && !ws && strstr(cphil_last_error(), "workspace"), "budget %d", k);
        cphil_model_ws_free(ws);
    }
    CHECK(ok);
    cphil_model_free(&m);
}

/* The one embedding check every command uses: sizes must be equal (a smaller n_cont or n_ids
 * used to let eval write past its batch buffers), hashes equal where both are known. */
TEST(embedding_check) {
    cphil_model_config c;
    small_cfg(&c, CPHIL_BACKBONE_GRU);
    c.layout_hash = 0x1234;
    CHECK(cphil_model_check_embedding(&c, 7, 3, 23, 0x1234, "p") == CPHIL_OK);
    CHECK(cphil_model_check_embedding(&c, 7, 3, 23, 0, "p") == CPHIL_OK);
    CHECK(cphil_model_check_embedding(&c, 8, 3, 23, 0x1234, "p") == CPHIL_E_MISMATCH);
    CHECK(strstr(cphil_last_error(), "p: ") && strstr(cphil_last_error(), "n_cont 8"));
    CHECK(cphil_model_check_embedding(&c, 7, 2, 23, 0x1234, "p") == CPHIL_E_MISMATCH);
    CHECK(cphil_model_check_embedding(&c, 7, 4, 23, 0x1234, "p") == CPHIL_E_MISMATCH);
    CHECK(cphil_model_check_embedding(&c, 7, 3, 24, 0x1234, "p") == CPHIL_E_MISMATCH);
    CHECK(cphil_model_check_embedding(&c, 7, 3, 23, 0x9999, "p") == CPHIL_E_MISMATCH);
    /* this build's layouts: the right hash with another E is refused (predict --replay read past
     * its rows with E 3000 and the default layout's hash) */
    cphil_embed_layout L, D;
    cphil_embed_layout_init(&D, NULL);
    c.n_cont = D.n_cont, c.n_ids = D.n_ids, c.E = D.E, c.layout_hash = D.hash;
    CHECK(cphil_model_find_layout(&c, &L, "p") == CPHIL_OK && L.hash == D.hash);
    c.layout_hash = 0;
    CHECK(cphil_model_find_layout(&c, &L, "p") == CPHIL_OK && L.hash == D.hash);
    c.layout_hash = D.hash, c.E = 3000;
    CHECK(cphil_model_find_layout(&c, &L, "p") == CPHIL_E_MISMATCH && strstr(cphil_last_error(), "E 3000"));
    c.E = D.E, c.n_cont = D.n_cont - 1;
    CHECK(cphil_model_find_layout(&c, &L, "p") == CPHIL_E_MISMATCH);
}

int main(void) {
    RUN(policy_file_round_trip);
    RUN(autoregressive_heads_config_file_and_conditioning);
    RUN(policy_file_refuses_bad_files);
    RUN(config_json_round_trip);
    RUN(config_json_rejects_bad_input);
    RUN(tensor_table_shapes_and_counts);
    RUN(config_bounds);
    RUN(workspace_allocation_failure_is_clean);
    RUN(embedding_check);
    return harness_done();
}
