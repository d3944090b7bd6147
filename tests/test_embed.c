/* test_embed.c — the game module: controller <-> action heads, action names, the embedding
 * layout and values (golden frames of real replays), synthetic games. */
#include "harness.h"

#include "core/core.h"
#include "game/actions.h"
#include "game/controller.h"
#include "game/embed.h"
#include "game/synth.h"

/* Every class of every head survives decode -> encode, and encode picks the nearest class. */
TEST(controller_roundtrip_every_class) {
    for (int h = 0; h < CPHIL_N_AXES; h++) {
        int nc = h == CPHIL_HEAD_SHOULDER ? CPHIL_SHOULDER_CLASSES : CPHIL_STICK_CLASSES;
        for (int k = 0; k < nc; k++) {
            cphil_target t = {{0}, {8, 8, 8, 8, 0}};
            t.cls[h] = (uint8_t)k;
            cphil_controller c;
            cphil_controller_decode(&t, &c);
            cphil_target t2;
            cphil_controller_encode(&c, &t2);
            for (int j = 0; j < CPHIL_N_AXES; j++) CHECK_EQ_INT(t2.cls[j], t.cls[j]);
        }
    }
    for (int b = 0; b < 256; b++) { /* every button combination */
        cphil_target t = {{0}, {8, 8, 8, 8, 0}};
        for (int i = 0; i < 8; i++) t.buttons[i] = (uint8_t)((b >> i) & 1);
        cphil_controller c;
        cphil_controller_decode(&t, &c);
        cphil_target t2;
        cphil_controller_encode(&c, &t2);
        for (int i = 0; i < 8; i++) CHECK_EQ_INT(t2.buttons[i], t.buttons[i]);
    }
}

TEST(controller_nearest_class) {
    CHECK_EQ_INT(cphil_stick_class(0.0f), 8);
    CHECK_EQ_INT(cphil_stick_class(1.0f), 16);   /* ExPhil's floor(16u) never reached 16 */
    CHECK_EQ_INT(cphil_stick_class(-1.0f), 0);
    CHECK_EQ_INT(cphil_stick_class(0.9875f), 16); /* u = 0.99375 -> nearest 16/16 */
    CHECK_EQ_INT(cphil_stick_class(0.9f), 15);    /* u = 0.95 -> 15.2 -> 15 */
    CHECK_EQ_INT(cphil_stick_class(0.07f), 9);    /* 8.56 -> 9 */
    CHECK_EQ_INT(cphil_stick_class(0.06f), 8);    /* 8.48 -> 8 */
    CHECK_EQ_INT(cphil_stick_class(-0.07f), 7);
    CHECK_EQ_INT(cphil_stick_class(5.0f), 16);
    CHECK_EQ_INT(cphil_stick_class(0.0f / 0.0f), 8);
    CHECK_EQ_INT(cphil_shoulder_class(0.0f), 0);
    CHECK_EQ_INT(cphil_shoulder_class(1.0f), 4);
    CHECK_EQ_INT(cphil_shoulder_class(0.3f), 1);
    CHECK_EQ_INT(cphil_shoulder_class(0.4f), 2);
    CHECK_EQ_INT(cphil_shoulder_class(3.7793343e22f), 4); /* garbage R of 1.0.0 files */
    /* nearest: for many values, no other class centre is closer */
    for (int i = -1000; i <= 1000; i++) {
        float v = (float)i / 1000.0f;
        int k = cphil_stick_class(v);
        float d = fabsf(cphil_stick_value(k) - v);
        for (int j = 0; j < 17; j++) CHECK(d <= fabsf(cphil_stick_value(j) - v) + 1e-6f);
    }
    /* shoulder uses the larger trigger; buttons map to their heads */
    cphil_controller c = {0, 0, 0, 0, 0.2f, 0.8f, CPHIL_BTN_A | CPHIL_BTN_DUP | CPHIL_BTN_START};
    cphil_target t;
    cphil_controller_encode(&c, &t);
    CHECK_EQ_INT(t.cls[CPHIL_HEAD_SHOULDER], 3);
    CHECK_EQ_INT(t.buttons[0], 1);
    CHECK_EQ_INT(t.buttons[7], 1);
    for (int i = 1; i < 7; i++) CHECK_EQ_INT(t.buttons[i], 0);
    CHECK_STR(cphil_head_name(5), "shoulder");
    CHECK_STR(cphil_button_name(7), "D_UP");
}

TEST(action_names) {
    char buf[24];
    CHECK_STR(cphil_action_name(20, buf, sizeof buf), "DASH");
    CHECK_STR(cphil_action_name(27, buf, sizeof buf), "JUMP_AERIAL_F");
    CHECK_STR(cphil_action_name(322, buf, sizeof buf), "ENTRY");
    CHECK_STR(cphil_action_name(341, buf, sizeof buf), "SPECIAL_341");
    CHECK_STR(cphil_action_name(100, buf, sizeof buf), "ACTION_100");
    CHECK_STR(cphil_action_name(100, NULL, 0), "OTHER");
    CHECK_EQ_INT(cphil_action_from_name("guard"), 179);
    CHECK_EQ_INT(cphil_action_from_name("nope"), -1);
}

/* The rule: approach when far, jab when close and facing, shield against a jab, turn when
 * facing away, recover toward the stage. */
TEST(synth_rule) {
    cphil_synth_obs s = {CPHIL_ACT_WAIT, 5, 0, 0, 1, 0, 2, 0, 1 /* Fox */};
    cphil_synth_obs o = {CPHIL_ACT_WAIT, 5, 50, 0, -1, 0, 2, 0, 18 /* Marth */};
    cphil_controller c;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.main_x == 1.0f && c.buttons == 0);
    o.x = -50;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.main_x == -1.0f);
    o.x = 10;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == CPHIL_BTN_A && c.main_x == 0.0f);
    o.x = -10;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == 0 && c.main_x == -0.5f);
    o.x = 20;
    o.action = CPHIL_ACT_ATTACK_11;
    o.action_frame = 2;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == CPHIL_BTN_R && c.r_trigger == 1.0f);
    s.action = CPHIL_ACT_ATTACK_11;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == 0 && c.main_x == 0.0f && c.r_trigger == 0.0f);
    s.action = CPHIL_ACT_FALL;
    s.airborne = 1;
    s.x = -100;
    s.self_y_speed = -1;
    s.jumps = 1;
    cphil_synth_rule(&s, &o, 32, &c);
    CHECK(c.buttons == CPHIL_BTN_X && c.main_x == 1.0f);
}

TEST(synth_deterministic) {
    cphil_synth_opts o = {42, 1, 20};
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    cphil_synth_summary sa, sb;
    CHECK(cphil_synth_game(&o, 3, &a, &na, &sa) == CPHIL_OK);
    CHECK(cphil_synth_game(&o, 3, &b, &nb, &sb) == CPHIL_OK);
    CHECK(na == nb && na > 1000 && !memcmp(a, b, na));
    CHECK(sa.frames == sa.last_frame + 124);
    CHECK(a[0] == '{' && a[15] == 0x35);
    cphil_free(a);
    cphil_free(b);
}

/* The layout: blocks tile [0, E) without gaps, continuous first, ids absolute, hash stable. */
TEST(embed_layout) {
    cphil_embed_layout L, P;
    cphil_embed_layout_init(&L, NULL);
    cphil_embed_config c = {true};
    cphil_embed_layout_init(&P, &c);
    CHECK_EQ_INT(L.n_cont, 99);
    CHECK_EQ_INT(L.n_ids, 10);
    CHECK_EQ_INT(L.E, 2185);
    CHECK_EQ_INT(P.n_cont, 112);
    CHECK_EQ_INT(P.E, 2198);
    CHECK(L.hash != P.hash);
    cphil_embed_layout L2;
    cphil_embed_layout_init(&L2, NULL);
    CHECK(L.hash == L2.hash);
    int off = 0, seen_onehot = 0, ids = 0;
    for (int b = 0; b < L.n_blocks; b++) {
        const cphil_embed_block *bl = &L.blocks[b];
        CHECK_EQ_INT(bl->offset, off);
        if (bl->kind == CPHIL_EMBED_ONEHOT) {
            seen_onehot = 1;
            CHECK_EQ_INT(bl->id_index, ids);
            ids++;
        } else {
            CHECK(!seen_onehot); /* continuous first */
        }
        off += bl->width;
    }
    CHECK_EQ_INT(off, L.E);
    CHECK_EQ_INT(ids, L.n_ids);
    for (int i = 0; i < P.n_cont; i++) CHECK(cphil_embed_feature_info(&P, i) != NULL);
    CHECK(cphil_embed_feature_info(&L, L.n_cont) == NULL);
    CHECK_STR(cphil_embed_feature_info(&L, cphil_embed_layout_block(&L, "opp")->offset + 1)->name, "x");
    CHECK_STR(cphil_embed_feature_info(&P, 99)->name, "A");
    /* densify: continuous copied, one 1.0 per block at the id's column */
    float cont[CPHIL_EMBED_MAX_CONT];
    int32_t id[CPHIL_EMBED_MAX_IDS];
    for (int i = 0; i < L.n_cont; i++) cont[i] = (float)i * 0.5f;
    for (int k = 0; k < L.n_ids; k++) id[k] = L.blocks[L.n_blocks - L.n_ids + k].offset + k;
    float *dense = cphil_alloc(sizeof(float) * (size_t)L.E);
    CHECK(dense);
    cphil_embed_densify(&L, cont, id, dense);
    double sum = 0;
    for (int i = L.n_cont; i < L.E; i++) sum += dense[i];
    CHECK_NEAR(sum, L.n_ids, 0, 0);
    CHECK(dense[5] == 2.5f && dense[id[3]] == 1.0f);
    cphil_free(dense);
}

int main(void) {
    RUN(embed_layout);
    RUN(controller_roundtrip_every_class);
    RUN(controller_nearest_class);
    RUN(action_names);
    RUN(synth_rule);
    RUN(synth_deterministic);
    return harness_done();
}
