/* slp_writer.h — writes Slippi replays (.slp) in the 3.18.0 layout, for synthetic games.
 *
 * The writer appends events to an in-memory buffer in the order real recorders use
 * (reference/slp_format.md sections 1-8): Event Payloads, Game Start, then per frame Frame Start,
 * Pre-Frame per port, Post-Frame per port, Frame Bookend; then Game End and a UBJSON metadata
 * object. Payload sizes are the 3.18.0 ones (Game Start 760, Pre 66, Post 84, Game End 6,
 * Frame Start 12, Item 44, Bookend 8). It does not write Gecko lists, items, stage events or
 * followers (the synthetic game has none), and it does not validate game logic: callers pass
 * consistent frames. Deliberately separate from the reader (src/slp/), which it is tested against.
 */
#ifndef CPHIL_SLP_WRITER_H
#define CPHIL_SLP_WRITER_H

#include "core/core.h"

#include <stdint.h>

#define CPHIL_SLPW_VERSION_MAJOR 3
#define CPHIL_SLPW_VERSION_MINOR 18
#define CPHIL_SLPW_VERSION_BUILD 0

/* Game settings the writer puts into Game Start. Ports without a player have type 3. */
typedef struct cphil_slpw_player {
    uint8_t character_ext; /* external (character-select) id */
    uint8_t type;          /* 0 human, 1 CPU, 2 demo, 3 empty */
    uint8_t stocks;        /* starting stocks */
    uint8_t costume;
    char netplay[32];      /* metadata names.netplay and the Game Start display name (ASCII) */
    char code[16];         /* metadata names.code and the connect code (ASCII, with '#') */
} cphil_slpw_player;

typedef struct cphil_slpw_game {
    uint16_t stage;        /* external stage id */
    uint32_t random_seed;
    cphil_slpw_player players[4];
    char start_at[32];     /* metadata startAt, ISO-8601 */
} cphil_slpw_game;

/* One Pre-Frame Update (fields as in reference/slp_format.md section 4). */
typedef struct cphil_slpw_pre {
    int32_t frame;
    uint8_t index, follower;
    uint32_t seed;
    uint16_t action;
    float x, y, facing;
    float joy_x, joy_y, c_x, c_y, trigger; /* processed */
    uint32_t buttons_processed;
    uint16_t buttons;                       /* physical */
    float l, r;                             /* physical analog triggers */
    int8_t raw_x;
    float percent;
    int8_t raw_y, raw_cx, raw_cy;
} cphil_slpw_pre;

/* One Post-Frame Update (section 5). */
typedef struct cphil_slpw_post {
    int32_t frame;
    uint8_t index, follower, character; /* character: internal id */
    uint16_t action;
    float x, y, facing, percent, shield;
    uint8_t last_attack, combo, last_hit_by, stocks;
    float action_frame;
    uint8_t flags[5];
    float misc;
    uint8_t airborne;
    uint16_t ground;
    uint8_t jumps, lcancel, hurtbox;
    float self_air_x, self_y, attack_x, attack_y, self_ground_x;
    float hitlag;
    uint32_t animation;
    uint16_t last_hit_instance, instance;
} cphil_slpw_post;

typedef struct cphil_slpw {
    uint8_t *buf;
    size_t len, cap;
    int32_t last_frame;
    uint32_t post_count[4]; /* Post-Frame events per port (metadata characters) */
    uint8_t post_char[4];
    cphil_slpw_game game;
    int failed;             /* an allocation failed; finish reports it */
} cphil_slpw;

/* Start a replay: writes the container header, Event Payloads and Game Start. */
cphil_status cphil_slpw_begin(cphil_slpw *w, const cphil_slpw_game *g);
/* One frame: Frame Start, the n Pre-Frames, the n Post-Frames, Frame Bookend. pre[i] and
 * post[i] belong to the same port; ports in ascending order. */
void cphil_slpw_frame(cphil_slpw *w, int32_t frame, uint32_t seed, const cphil_slpw_pre *pre,
                      const cphil_slpw_post *post, int n);
/* Game End: method (1 TIME, 2 GAME, 7 No contest), LRAS initiator (-1 none), placements per
 * port (-1 no player). */
void cphil_slpw_end(cphil_slpw *w, uint8_t method, int8_t lras, const int8_t placements[4]);
/* Close the raw element, write the metadata and return the finished bytes (owned by w). */
cphil_status cphil_slpw_finish(cphil_slpw *w, const uint8_t **data, size_t *size);
void cphil_slpw_free(cphil_slpw *w);

#endif
