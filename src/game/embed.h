/* embed.h — the game-state embedding: one frame -> continuous features + categorical ids.
 *
 * Contract (docs/interfaces.md): the dense embedding of a frame is a float vector of width E laid
 * out as [ continuous (n_cont) | one-hot block 0 | one-hot block 1 | ... ]. Inside cphil the
 * one-hot part is never materialized: a frame is float cont[n_cont] plus int32 ids[n_ids], each
 * id the ABSOLUTE dense column of its one-hot (n_cont <= ids[k] < E). Every vocabulary has an
 * "other" class, so every id is valid whatever the replay holds.
 *
 * Ego-centric: the controlled player ("self") first, then the opponent. Every feature, its dense
 * offset, source field, scale, clamp and version gate is listed in docs/embedding.md (generated
 * from this layout by `cphil embed-info --markdown`, checked by a test).
 *
 * The SAME function (cphil_embed_frame) builds dataset rows and the agent's live inputs.
 */
#ifndef CPHIL_GAME_EMBED_H
#define CPHIL_GAME_EMBED_H

#include "cphil.h"

#include <stdbool.h>
#include <stdint.h>

struct cphil_frame;
struct cphil_replay;

#define CPHIL_EMBED_LAYOUT_VERSION 1

/* Vocabulary sizes (each includes its "other" class as the last class). */
#define CPHIL_EMBED_ACTION_VOCAB 400 /* action state 0..398, 399 other (>= 399, absent) */
#define CPHIL_EMBED_CHAR_VOCAB 34    /* internal character 0..32, 33 other (absent) */
#define CPHIL_EMBED_STAGE_VOCAB 34   /* external stage 0..32, 33 other */
#define CPHIL_EMBED_ITEM_VOCAB 128   /* item type 0..125, 126 other, 127 empty slot */
#define CPHIL_EMBED_N_ITEMS 3        /* nearest items/projectiles embedded */

/* Widths of the continuous groups. */
#define CPHIL_EMBED_GAME_FEATS 6
#define CPHIL_EMBED_PLAYER_FEATS 24
#define CPHIL_EMBED_NANA_FEATS 8
#define CPHIL_EMBED_REL_FEATS 5
#define CPHIL_EMBED_ITEM_FEATS 8
#define CPHIL_EMBED_PREV_FEATS 13

#define CPHIL_EMBED_MAX_BLOCKS 24
#define CPHIL_EMBED_MAX_CONT 128
#define CPHIL_EMBED_MAX_IDS 10

typedef struct cphil_embed_config {
    bool prev_action; /* add the self player's controller of frame t (13 features) */
} cphil_embed_config;

typedef enum cphil_embed_kind { CPHIL_EMBED_CONT = 0, CPHIL_EMBED_ONEHOT = 1 } cphil_embed_kind;

/* A block of the dense vector: a group of continuous features or one one-hot block. */
typedef struct cphil_embed_block {
    const char *name;  /* "self", "opp", "self_action", ... */
    cphil_embed_kind kind;
    int offset;        /* first dense column */
    int width;         /* columns */
    int id_index;      /* one-hot blocks: index k in ids[] (-1 for continuous groups) */
} cphil_embed_block;

typedef struct cphil_embed_layout {
    cphil_embed_config cfg;
    int n_cont;        /* continuous features (dense columns [0, n_cont)) */
    int n_ids;         /* categorical ids per frame (one per one-hot block) */
    int E;             /* dense width = n_cont + sum of one-hot widths */
    int n_blocks;
    cphil_embed_block blocks[CPHIL_EMBED_MAX_BLOCKS];
    uint64_t hash;     /* FNV-1a over the version, config and every block (name, offset, width) */
} cphil_embed_layout;

/* Build the layout for a config (cfg NULL = defaults: no prev_action). */
void cphil_embed_layout_init(cphil_embed_layout *L, const cphil_embed_config *cfg);
/* The block with this name, or NULL. */
const cphil_embed_block *cphil_embed_layout_block(const cphil_embed_layout *L, const char *name);

/* One continuous feature (for docs and embed-info): name, source, scale, clamp, version. */
typedef struct cphil_embed_feature {
    const char *block;   /* continuous group name */
    const char *name;
    const char *source;  /* replay field(s) it comes from */
    const char *formula; /* how the value is computed (scale, clamp) */
    const char *version; /* replay version that provides it */
} cphil_embed_feature;
/* The description of continuous feature i (0 <= i < L->n_cont), NULL when out of range. */
const cphil_embed_feature *cphil_embed_feature_info(const cphil_embed_layout *L, int i);

/* Per-game context: which ports, which stage, which fields the replay's version carries. */
typedef struct cphil_embed_game {
    int self, opp;       /* player indices 0..3 (opp -1: no opponent) */
    int stage;           /* external stage id */
    float edge;          /* stage edge |x| (0 unknown) */
    uint8_t has_post_v2; /* Post: flags, misc, airborne, jumps (2.0.0) */
    uint8_t has_hurtbox; /* 2.1.0 */
    uint8_t has_speeds;  /* 3.5.0 */
    uint8_t has_hitlag;  /* 3.8.0 */
    uint8_t has_items;   /* Item Update declared (3.0.0) */
} cphil_embed_game;

/* Context for controlling player index `self` of replay r (Game Start must have been read).
 * opp < 0 picks the lowest other occupied port. Fails (CPHIL_E_ARG) when self is not a player. */
cphil_status cphil_embed_game_init(cphil_embed_game *g, const struct cphil_replay *r, int self, int opp);
/* The same context from its parts, for a harness without a replay (cphil_agent_game_start_bot):
 * the external stage id, which player indexes play, and the CPHIL_BOT_HAS_* fields its frames
 * carry. cphil_embed_game_init is this with the replay's players, stage and fields. */
cphil_status cphil_embed_game_init_parts(cphil_embed_game *g, int stage, const int playing[4], unsigned fields,
                                        int self, int opp);
/* The CPHIL_BOT_HAS_* fields a replay's event payloads carry (by payload size, not by version). */
unsigned cphil_embed_replay_fields(const struct cphil_replay *r);

/* Embed one final frame for g->self: writes cont[L->n_cont] and ids[L->n_ids]. Allocates
 * nothing; never fails (absent players give zeros with present = 0 and the "other" ids). */
void cphil_embed_frame(const cphil_embed_layout *L, const cphil_embed_game *g,
                       const struct cphil_frame *f, float *cont, int32_t *ids);

/* Write the dense vector (E floats) of cont + ids (for ONNX parity tests and exports). */
void cphil_embed_densify(const cphil_embed_layout *L, const float *cont, const int32_t *ids, float *dense);

#endif
