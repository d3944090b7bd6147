/* synth.h — a simple simulated two-player Melee-like game whose scripted players follow a known
 * rule, written as .slp replays (`cphil synth`). The rule is a function of what the embedding
 * contains (docs/embedding.md), so a policy trained on these replays can learn it exactly; the
 * learning tests measure agreement with cphil_synth_rule(). The rule and the simulation are
 * documented in docs/data.md ("Synthetic replays").
 */
#ifndef CPHIL_GAME_SYNTH_H
#define CPHIL_GAME_SYNTH_H

#include "core/core.h"
#include "game/controller.h"

#include <stdint.h>

/* What the rule looks at for one player: fields of the Post-Frame Update after frame t. */
typedef struct cphil_synth_obs {
    int action;          /* action state id */
    float action_frame;  /* action-state frame counter */
    float x, y, facing;
    int airborne;        /* 0 on ground, 1 in the air */
    int jumps;           /* jumps remaining */
    float self_y_speed;  /* self-induced y speed */
    int character;       /* internal character id */
} cphil_synth_obs;

/* The scripted players' rule (documented in docs/data.md): the controller for frame t+1 given
 * the state after frame t of the player (self) and of the opponent, on stage `stage` (external
 * id). Deterministic; the same for both players. */
void cphil_synth_rule(const cphil_synth_obs *self, const cphil_synth_obs *opp, int stage,
                      cphil_controller *out);
/* Jab reach of an internal character id in the synthetic game (0 for characters it never uses). */
float cphil_synth_reach(int character_internal);
/* Stage edge |x| of the synthetic game's (and the embedding's) stage table; 0 if unknown. */
float cphil_stage_edge(int stage_external);

typedef struct cphil_synth_opts {
    uint64_t seed;
    int stocks;        /* starting stocks (default 4) */
    int max_seconds;   /* time limit (default 180) */
} cphil_synth_opts;

typedef struct cphil_synth_summary {
    int frames;        /* frames written (from -123) */
    int last_frame;
    int end_method;    /* 1 TIME, 2 GAME */
    int winner_port;   /* 1-based, 0 none */
    int char_ext[2], stage;
    int stocks_left[2];
} cphil_synth_summary;

/* Simulate game number `index` of the series seeded by opts->seed and return its .slp bytes
 * (*data is cphil_alloc'd; the caller frees it with cphil_free). */
cphil_status cphil_synth_game(const cphil_synth_opts *opts, int index, uint8_t **data,
                              size_t *size, cphil_synth_summary *summary);

#endif
