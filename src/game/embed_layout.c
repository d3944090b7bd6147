/* embed_layout.c — the embedding layout: blocks, offsets, widths, hash, and the description of
 * every continuous feature (the source of docs/embedding.md and `cphil embed-info`).
 *
 * Implements the layout half of embed.h; the values are computed in embed.c. Deliberately no
 * dependency on the replay reader, so the model and trainer can size their inputs from it.
 */
#include "game/embed.h"

#include <string.h>

#define F(b, n, s, f, v) {b, n, s, f, v}
#define POS(b, n, src) F(b, n, src, "v * 0.05, clamp [-10, 10]", "0.1.0")

/* Continuous features, in dense order. "P" rows are repeated for self and opp. */
static const cphil_embed_feature game_feats[CPHIL_EMBED_GAME_FEATS] = {
    F("game", "mask_post_v2", "Post payload >= 0x2F (flags, misc, airborne, jumps)", "1 if the replay carries them else 0", "2.0.0"),
    F("game", "mask_hurtbox", "Post payload >= 0x34 (hurtbox state)", "1/0", "2.1.0"),
    F("game", "mask_speeds", "Post payload >= 0x48 (five speeds)", "1/0", "3.5.0"),
    F("game", "mask_hitlag", "Post payload >= 0x4C (hitlag)", "1/0", "3.8.0"),
    F("game", "mask_items", "Item Update (0x3B) declared", "1/0", "3.0.0"),
    F("game", "time", "frame number", "max(frame, 0) / 28800, clamp [0, 1]", "0.1.0"),
};

static const cphil_embed_feature player_feats[CPHIL_EMBED_PLAYER_FEATS] = {
    F("P", "present", "Post-Frame seen for the leader this frame", "1/0 (all features 0 when 0)", "0.1.0"),
    POS("P", "x", "Post x (0x0A)"),
    POS("P", "y", "Post y (0x0E)"),
    F("P", "percent", "Post percent (0x16)", "v * 0.01, clamp [0, 5]", "0.1.0"),
    F("P", "shield", "Post shield size (0x1A)", "v / 60, clamp [0, 1]", "0.1.0"),
    F("P", "stocks", "Post stocks (0x21)", "v / 4, clamp [0, 1]", "0.1.0"),
    F("P", "facing", "Post facing (0x12)", "sign: -1, +1 (0 when 0)", "0.1.0"),
    F("P", "on_ground", "Post airborne (0x2F)", "1 - airborne (0 without mask_post_v2)", "2.0.0"),
    F("P", "jumps_left", "Post jumps remaining (0x32)", "v / 6, clamp [0, 1]", "2.0.0"),
    F("P", "speed_air_x", "Post self-induced air x speed (0x35)", "v * 0.5, clamp [-10, 10]", "3.5.0"),
    F("P", "speed_y", "Post self-induced y speed (0x39)", "v * 0.5, clamp [-10, 10]", "3.5.0"),
    F("P", "speed_attack_x", "Post attack x speed (0x3D)", "v * 0.5, clamp [-10, 10]", "3.5.0"),
    F("P", "speed_attack_y", "Post attack y speed (0x41)", "v * 0.5, clamp [-10, 10]", "3.5.0"),
    F("P", "speed_ground_x", "Post self-induced ground x speed (0x45)", "v * 0.5, clamp [-10, 10]", "3.5.0"),
    F("P", "hitstun", "Post misc (0x2B) while flags4 & 0x02 (in hitstun)", "v / 120, clamp [0, 1]; 0 when not in hitstun or not finite", "2.0.0"),
    F("P", "hitlag", "Post hitlag frames remaining (0x49)", "v / 20, clamp [0, 1]", "3.8.0"),
    F("P", "action_frame", "Post action-state frame counter (0x22)", "v / 60, clamp [0, 2]", "0.2.0"),
    F("P", "invulnerable", "Post hurtbox state (0x34)", "1 if != 0 (invulnerable or intangible)", "2.1.0"),
    F("P", "shielding", "Post flags3 & 0x80 (shield active)", "1/0", "2.0.0"),
    F("P", "fastfall", "Post flags2 & 0x08", "1/0", "2.0.0"),
    F("P", "in_hitlag", "Post flags2 & 0x20", "1/0", "2.0.0"),
    F("P", "dead", "Post flags5 & 0x40", "1/0", "2.0.0"),
    F("P", "offstage", "Post x vs the stage edge table (docs/embedding.md)", "1 if |x| > edge (0 on unknown stages)", "0.1.0"),
    F("P", "edge_distance", "Post x and the stage edge", "(edge - |x|) / edge, clamp [-2, 1] (0 on unknown stages)", "0.1.0"),
};

static const cphil_embed_feature nana_feats[CPHIL_EMBED_NANA_FEATS] = {
    F("N", "present", "Post-Frame of the follower (Nana) seen this frame", "1/0 (all 0 when 0)", "0.1.0"),
    POS("N", "x", "follower Post x"),
    POS("N", "y", "follower Post y"),
    F("N", "percent", "follower Post percent", "v * 0.01, clamp [0, 5]", "0.1.0"),
    F("N", "facing", "follower Post facing", "sign", "0.1.0"),
    F("N", "on_ground", "follower Post airborne", "1 - airborne (0 without mask_post_v2)", "2.0.0"),
    F("N", "action_frame", "follower Post action-state frame counter", "v / 60, clamp [0, 2]", "0.2.0"),
    F("N", "dx_leader", "follower x - leader x", "v * 0.05, clamp [-10, 10]", "0.1.0"),
};

static const cphil_embed_feature rel_feats[CPHIL_EMBED_REL_FEATS] = {
    F("rel", "dx", "opp x - self x (Post)", "v * 0.005, clamp [-2, 2]", "0.1.0"),
    F("rel", "dy", "opp y - self y (Post)", "v * 0.01, clamp [-2, 2]", "0.1.0"),
    F("rel", "distance", "Euclidean distance self-opp", "v * 0.005, clamp [0, 2]", "0.1.0"),
    F("rel", "self_facing_opp", "self facing * dx > 0", "1/0", "0.1.0"),
    F("rel", "opp_facing_self", "opp facing * (-dx) > 0", "1/0", "0.1.0"),
};

static const cphil_embed_feature item_feats[CPHIL_EMBED_ITEM_FEATS] = {
    F("I", "present", "an Item Update in this slot (slots: nearest to self first)", "1/0 (all 0 when 0)", "3.0.0"),
    F("I", "owner_self", "Item owner (0x2A) == self", "1/0", "3.6.0"),
    F("I", "owner_opp", "Item owner (0x2A) == opp", "1/0", "3.6.0"),
    F("I", "dx", "item x (0x14) - self x", "v * 0.05, clamp [-10, 10]", "3.0.0"),
    F("I", "dy", "item y (0x18) - self y", "v * 0.05, clamp [-10, 10]", "3.0.0"),
    F("I", "vx", "item x velocity (0x0C)", "v * 0.5, clamp [-10, 10]", "3.0.0"),
    F("I", "vy", "item y velocity (0x10)", "v * 0.5, clamp [-10, 10]", "3.0.0"),
    F("I", "distance", "Euclidean distance item-self", "v * 0.005, clamp [0, 2]", "3.0.0"),
};

static const cphil_embed_feature prev_feats[CPHIL_EMBED_PREV_FEATS] = {
    F("prev", "A", "self Pre physical buttons (0x31) & 0x0100, frame t", "1/0", "0.1.0"),
    F("prev", "B", "& 0x0200", "1/0", "0.1.0"),
    F("prev", "X", "& 0x0400", "1/0", "0.1.0"),
    F("prev", "Y", "& 0x0800", "1/0", "0.1.0"),
    F("prev", "Z", "& 0x0010", "1/0", "0.1.0"),
    F("prev", "L", "& 0x0040", "1/0", "0.1.0"),
    F("prev", "R", "& 0x0020", "1/0", "0.1.0"),
    F("prev", "D_UP", "& 0x0008", "1/0", "0.1.0"),
    F("prev", "main_x", "self Pre processed joystick x (0x19)", "clamp [-1, 1]", "0.1.0"),
    F("prev", "main_y", "self Pre processed joystick y (0x1D)", "clamp [-1, 1]", "0.1.0"),
    F("prev", "c_x", "self Pre processed C-stick x (0x21)", "clamp [-1, 1]", "0.1.0"),
    F("prev", "c_y", "self Pre processed C-stick y (0x25)", "clamp [-1, 1]", "0.1.0"),
    F("prev", "shoulder", "max(self Pre physical L (0x33), R (0x37))", "clamp [0, 1]", "0.1.0"),
};

typedef struct group {
    const char *name;
    const cphil_embed_feature *feats;
    int n;
} group;

/* Continuous groups in dense order; the last one only with cfg.prev_action. */
static int groups_of(const cphil_embed_config *cfg, group *g) {
    int n = 0;
    g[n++] = (group){"game", game_feats, CPHIL_EMBED_GAME_FEATS};
    g[n++] = (group){"self", player_feats, CPHIL_EMBED_PLAYER_FEATS};
    g[n++] = (group){"opp", player_feats, CPHIL_EMBED_PLAYER_FEATS};
    g[n++] = (group){"self_nana", nana_feats, CPHIL_EMBED_NANA_FEATS};
    g[n++] = (group){"opp_nana", nana_feats, CPHIL_EMBED_NANA_FEATS};
    g[n++] = (group){"rel", rel_feats, CPHIL_EMBED_REL_FEATS};
    g[n++] = (group){"item0", item_feats, CPHIL_EMBED_ITEM_FEATS};
    g[n++] = (group){"item1", item_feats, CPHIL_EMBED_ITEM_FEATS};
    g[n++] = (group){"item2", item_feats, CPHIL_EMBED_ITEM_FEATS};
    if (cfg->prev_action) g[n++] = (group){"prev", prev_feats, CPHIL_EMBED_PREV_FEATS};
    return n;
}

static const struct {
    const char *name;
    int width;
} onehots[CPHIL_EMBED_MAX_IDS] = {
    {"self_action", CPHIL_EMBED_ACTION_VOCAB}, {"opp_action", CPHIL_EMBED_ACTION_VOCAB},
    {"self_character", CPHIL_EMBED_CHAR_VOCAB}, {"opp_character", CPHIL_EMBED_CHAR_VOCAB},
    {"self_nana_action", CPHIL_EMBED_ACTION_VOCAB}, {"opp_nana_action", CPHIL_EMBED_ACTION_VOCAB},
    {"stage", CPHIL_EMBED_STAGE_VOCAB}, {"item0_type", CPHIL_EMBED_ITEM_VOCAB},
    {"item1_type", CPHIL_EMBED_ITEM_VOCAB}, {"item2_type", CPHIL_EMBED_ITEM_VOCAB},
};

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

void cphil_embed_layout_init(cphil_embed_layout *L, const cphil_embed_config *cfg) {
    memset(L, 0, sizeof *L);
    if (cfg) L->cfg = *cfg;
    group g[12];
    int ng = groups_of(&L->cfg, g);
    int off = 0;
    for (int i = 0; i < ng; i++) {
        L->blocks[L->n_blocks++] = (cphil_embed_block){g[i].name, CPHIL_EMBED_CONT, off, g[i].n, -1};
        off += g[i].n;
    }
    L->n_cont = off;
    for (int k = 0; k < CPHIL_EMBED_MAX_IDS; k++) {
        L->blocks[L->n_blocks++] = (cphil_embed_block){onehots[k].name, CPHIL_EMBED_ONEHOT, off, onehots[k].width, k};
        off += onehots[k].width;
    }
    L->n_ids = CPHIL_EMBED_MAX_IDS;
    L->E = off;
    uint64_t h = 0xCBF29CE484222325ull;
    uint32_t v = CPHIL_EMBED_LAYOUT_VERSION;
    h = fnv(h, &v, sizeof v);
    for (int i = 0; i < L->n_blocks; i++) {
        const cphil_embed_block *b = &L->blocks[i];
        h = fnv(h, b->name, strlen(b->name) + 1);
        int32_t w[3] = {(int32_t)b->kind, b->offset, b->width};
        h = fnv(h, w, sizeof w);
    }
    L->hash = h;
}

const cphil_embed_block *cphil_embed_layout_block(const cphil_embed_layout *L, const char *name) {
    for (int i = 0; i < L->n_blocks; i++)
        if (!strcmp(L->blocks[i].name, name)) return &L->blocks[i];
    return NULL;
}

const cphil_embed_feature *cphil_embed_feature_info(const cphil_embed_layout *L, int i) {
    if (i < 0 || i >= L->n_cont) return NULL;
    for (int b = 0; b < L->n_blocks; b++) {
        const cphil_embed_block *bl = &L->blocks[b];
        if (bl->kind != CPHIL_EMBED_CONT || i < bl->offset || i >= bl->offset + bl->width) continue;
        group g[12];
        int ng = groups_of(&L->cfg, g);
        for (int k = 0; k < ng; k++)
            if (!strcmp(g[k].name, bl->name)) return &g[k].feats[i - bl->offset];
    }
    return NULL;
}

void cphil_embed_densify(const cphil_embed_layout *L, const float *cont, const int32_t *ids, float *dense) {
    memset(dense, 0, sizeof(float) * (size_t)L->E);
    memcpy(dense, cont, sizeof(float) * (size_t)L->n_cont);
    for (int k = 0; k < L->n_ids; k++)
        if (ids[k] >= L->n_cont && ids[k] < L->E) dense[ids[k]] += 1.0f;
}
