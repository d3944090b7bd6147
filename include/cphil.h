/* cphil.h — the public C API of cphil.
 *
 * cphil reads Slippi replays, trains Melee policies by imitation and runs them in real time.
 * This header is the whole public surface: status codes and error messages, the allocation
 * hook, and (in the sections below) replay reading, policies and the agent.
 *
 * Conventions:
 *  - Every function that can fail returns a cphil_status; CPHIL_OK is 0. On failure a message
 *    naming the file, the byte offset or argument, and a hint is available from
 *    cphil_last_error() (thread-local; valid until the next failing call on that thread).
 *  - Library code never exits and never prints; only the cphil binary does.
 *  - Objects come in open/close (or init/free) pairs; close accepts NULL.
 */
#ifndef CPHIL_H
#define CPHIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CPHIL_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------------- */
typedef enum cphil_status {
    CPHIL_OK = 0,
    CPHIL_E_IO,          /* a file or stream could not be opened, read or written */
    CPHIL_E_FORMAT,      /* bytes do not follow the expected format */
    CPHIL_E_TRUNCATED,   /* input ended before a complete element */
    CPHIL_E_NOMEM,       /* an allocation failed */
    CPHIL_E_ARG,         /* a bad argument or option value */
    CPHIL_E_MISMATCH,    /* file made for a different model, layout or version */
    CPHIL_E_UNSUPPORTED, /* valid but not supported by this build or CPU */
    CPHIL_E_INTERRUPTED, /* stopped on request (Ctrl-C) */
    CPHIL_E_NUMERIC,     /* NaN or infinity where a finite value is required */
    CPHIL_E_INTERNAL     /* a bug in cphil */
} cphil_status;

/* The message of the last failure on this thread ("" when none). */
const char *cphil_last_error(void);
/* A short name for a status ("ok", "io", "format", ...). */
const char *cphil_status_name(cphil_status s);

/* ---------------------------------------------------------------------------------------------
 * Allocation hook: every heap allocation of the library goes through these functions. Install
 * a counting or failing allocator in tests. Pass NULL to restore the default (libc).
 * alloc(size, align, user): align is a power of two >= sizeof(void*); return NULL on failure.
 * ------------------------------------------------------------------------------------------- */
typedef struct cphil_allocator {
    void *(*alloc)(size_t size, size_t align, void *user);
    void  (*free)(void *ptr, void *user);
    void  *user;
} cphil_allocator;

void cphil_set_allocator(const cphil_allocator *a);

/* ---------------------------------------------------------------------------------------------
 * Replays (.slp): src/slp/, format in docs/slp.md (after reference/slp_format.md)
 *
 * A replay is read into a cphil_replay: game settings (Game Start), Game End, metadata, the
 * Gecko list, counters, and a FRAME TABLE in structure-of-arrays form. The table has one row per
 * frame number: row i holds frame number first_frame + i (normally first_frame = -123). When a
 * frame was sent several times (rollback), the row holds the LAST copy received (it is final);
 * re-sends are counted. Each port (player index 0..3) has two characters: the leader and the
 * follower (Nana of the Ice Climbers), kept apart. Each character has one column per Pre-Frame
 * and per Post-Frame field plus a `present` column (bit 0 Pre seen, bit 1 Post seen in the final
 * copy): a character not in play on a frame (eliminated player, dead Nana) has present = 0 and
 * all its fields 0 in that row. Fields that the replay's version lacks are 0 (payload_size[]
 * says which exist: a field exists iff its offset + width <= the event's payload size + 1).
 *
 * The same parser reads a byte stream in pieces (cphil_slp_stream; live play sends this stream):
 * it reports each frame once, when it is final, as a cphil_frame (one row gathered from the
 * table), plus game start and game end. Reading a whole file is that parser fed once.
 *
 * Ids: Game Start characters are EXTERNAL ids, Post-Frame characters INTERNAL ids
 * (src/game/ids.h maps and names them). Strings are UTF-8, converted from Shift-JIS and then
 * normalized like slippi-js (full-width ASCII -> ASCII, U+3000 -> space), NUL-terminated.
 * ------------------------------------------------------------------------------------------- */
#define CPHIL_SLP_PORTS 4
#define CPHIL_SLP_FIRST_FRAME (-123) /* frame number of the first frame of every game */

/* The Pre-Frame (0x37) fields kept per character per frame: X(type, name, event offset).
 * Offsets count from the event's code byte; see docs/slp.md for units and versions. */
#define CPHIL_PRE_FIELDS(X)                                                                       \
    X(uint32_t, random_seed, 0x07)      /* game RNG seed                                 0.1.0 */ \
    X(uint16_t, action_state, 0x0B)     /* action state id                               0.1.0 */ \
    X(float, x, 0x0D)                   /* position                                      0.1.0 */ \
    X(float, y, 0x11)                                                                             \
    X(float, facing, 0x15)              /* -1 left, +1 right                             0.1.0 */ \
    X(float, joystick_x, 0x19)          /* processed main stick, -1..1                   0.1.0 */ \
    X(float, joystick_y, 0x1D)                                                                    \
    X(float, cstick_x, 0x21)            /* processed C-stick, -1..1                      0.1.0 */ \
    X(float, cstick_y, 0x25)                                                                      \
    X(float, trigger, 0x29)             /* processed analog trigger, 0..1                0.1.0 */ \
    X(uint32_t, buttons, 0x2D)          /* processed buttons (bitmask in docs/slp.md)    0.1.0 */ \
    X(uint16_t, buttons_physical, 0x31) /* physical buttons: 0x100 A, 0x200 B, ...      0.1.0 */ \
    X(float, trigger_l, 0x33)           /* physical L analog                             0.1.0 */ \
    X(float, trigger_r, 0x37)           /* physical R analog                             0.1.0 */ \
    X(int8_t, raw_x, 0x3B)              /* raw main stick x (UCF)                        1.2.0 */ \
    X(float, percent, 0x3C)             /* damage percent                                1.4.0 */ \
    X(int8_t, raw_y, 0x40)              /* raw main stick y                             3.15.0 */ \
    X(int8_t, raw_cx, 0x41)             /* raw C-stick x                                3.17.0 */ \
    X(int8_t, raw_cy, 0x42)             /* raw C-stick y                                3.17.0 */

/* The Post-Frame (0x38) fields kept per character per frame: X(type, name, event offset). */
#define CPHIL_POST_FIELDS(X)                                                                      \
    X(uint8_t, character, 0x07)         /* INTERNAL character id                         0.1.0 */ \
    X(uint16_t, action_state, 0x08)     /* action state id                               0.1.0 */ \
    X(float, x, 0x0A)                                                                             \
    X(float, y, 0x0E)                                                                             \
    X(float, facing, 0x12)                                                                        \
    X(float, percent, 0x16)                                                                       \
    X(float, shield, 0x1A)              /* shield size 0..60                             0.1.0 */ \
    X(uint8_t, last_attack_landed, 0x1E)                                                          \
    X(uint8_t, combo_count, 0x1F)                                                                 \
    X(uint8_t, last_hit_by, 0x20)       /* player index (game may leave 6)               0.1.0 */ \
    X(uint8_t, stocks, 0x21)            /* stocks remaining                              0.1.0 */ \
    X(float, action_frame, 0x22)        /* action-state frame counter                    0.2.0 */ \
    X(uint8_t, flags1, 0x26)            /* state bit flags 1..5 (docs/slp.md)            2.0.0 */ \
    X(uint8_t, flags2, 0x27)                                                                      \
    X(uint8_t, flags3, 0x28)                                                                      \
    X(uint8_t, flags4, 0x29)            /* 0x02 = in hitstun                                   */ \
    X(uint8_t, flags5, 0x2A)            /* 0x40 = dead, 0x10 = inactive                        */ \
    X(float, misc_as, 0x2B)             /* hitstun left; may hold integer bit patterns   2.0.0 */ \
    X(uint8_t, airborne, 0x2F)          /* 1 in the air                                  2.0.0 */ \
    X(uint16_t, ground, 0x30)           /* last ground id                                2.0.0 */ \
    X(uint8_t, jumps, 0x32)             /* jumps remaining                               2.0.0 */ \
    X(uint8_t, l_cancel, 0x33)          /* 0 none, 1 success, 2 failure                  2.0.0 */ \
    X(uint8_t, hurtbox, 0x34)           /* 0 vulnerable, 1 invulnerable, 2 intangible    2.1.0 */ \
    X(float, self_air_x, 0x35)          /* self-induced air x speed                      3.5.0 */ \
    X(float, self_y, 0x39)              /* self-induced y speed                          3.5.0 */ \
    X(float, attack_x, 0x3D)            /* knockback x speed                             3.5.0 */ \
    X(float, attack_y, 0x41)            /* knockback y speed                             3.5.0 */ \
    X(float, self_ground_x, 0x45)       /* self-induced ground x speed                   3.5.0 */ \
    X(float, hitlag, 0x49)              /* hitlag frames remaining                       3.8.0 */ \
    X(uint32_t, animation, 0x4D)        /* animation index                              3.11.0 */ \
    X(uint16_t, last_hit_by_instance, 0x51) /* instance id of the last attacker         3.16.0 */ \
    X(uint16_t, instance_id, 0x53)      /* this character's instance id                 3.16.0 */

/* One character's Pre-Frame / Post-Frame state on one frame (AoS form, used by cphil_frame). */
typedef struct cphil_pre_frame {
#define CPHIL_X_(t, n, o) t n;
    CPHIL_PRE_FIELDS(CPHIL_X_)
#undef CPHIL_X_
} cphil_pre_frame;

typedef struct cphil_post_frame {
#define CPHIL_X_(t, n, o) t n;
    CPHIL_POST_FIELDS(CPHIL_X_)
#undef CPHIL_X_
} cphil_post_frame;

/* The same fields as columns (SoA): column[row], row = frame number - first_frame. */
typedef struct cphil_pre_columns {
#define CPHIL_X_(t, n, o) t *n;
    CPHIL_PRE_FIELDS(CPHIL_X_)
#undef CPHIL_X_
} cphil_pre_columns;

typedef struct cphil_post_columns {
#define CPHIL_X_(t, n, o) t *n;
    CPHIL_POST_FIELDS(CPHIL_X_)
#undef CPHIL_X_
} cphil_post_columns;

#define CPHIL_PRESENT_PRE 0x01u
#define CPHIL_PRESENT_POST 0x02u

/* One character's (leader's or follower's) columns. All pointers are NULL when the character
 * never appeared (allocated == false); otherwise each has n_frames valid rows. */
typedef struct cphil_char_columns {
    bool allocated;
    uint8_t *present; /* CPHIL_PRESENT_PRE | CPHIL_PRESENT_POST in the final copy of the row */
    cphil_pre_columns pre;
    cphil_post_columns post;
} cphil_char_columns;

typedef struct cphil_port_columns {
    cphil_char_columns leader;   /* the player's character (Popo for the Ice Climbers) */
    cphil_char_columns follower; /* Nana; allocated only if a follower event was seen */
} cphil_port_columns;

/* An Item Update (0x3B). */
typedef struct cphil_item {
    uint16_t type;           /* item type id (99 turnip, 209 target, ...)        3.0.0 */
    uint8_t state;           /*                                                   3.0.0 */
    int8_t owner;            /* owner player index, -1 none                       3.6.0 */
    float facing;            /*                                                   3.0.0 */
    float vx, vy, x, y;      /* velocity, position                               3.0.0 */
    uint16_t damage;         /* damage taken                                     3.0.0 */
    uint16_t owner_instance; /* owner's instance id                              3.16.0 */
    float expire;            /* expiration timer (frames left)                   3.0.0 */
    uint32_t spawn_id;       /* 0, 1, 2, ... in spawn order                       3.0.0 */
    uint8_t misc[4];         /* missile type, turnip face, launched, charge       3.2.0 */
} cphil_item;

/* A stage event: FOD platform (0x3F), Whispy blow direction (0x40), Stadium transformation
 * (0x41). Only the fields of its code are meaningful. */
typedef struct cphil_stage_event {
    uint8_t code;            /* 0x3F, 0x40 or 0x41 */
    uint8_t platform;        /* 0x3F: 0 right, 1 left */
    uint8_t direction;       /* 0x40: 0 none, 1 left, 2 right */
    uint8_t pad_;
    uint16_t stadium_event;  /* 0x41: 2 initiate, 3 on monitor, 4 receding, 5 rising, 6 finish */
    uint16_t transformation; /* 0x41: 3 fire, 4 grass, 5 normal, 6 rock, 9 water */
    float height;            /* 0x3F: new platform height */
} cphil_stage_event;

/* One player slot of Game Start (index = port - 1). Strings UTF-8, "" when absent. */
typedef struct cphil_player_info {
    uint8_t port;             /* 1..4 */
    uint8_t type;             /* 0 human, 1 CPU, 2 demo, 3 empty slot */
    uint8_t character;        /* EXTERNAL id; for < 1.6.0 Sheik starts, fixed from frame -123 */
    uint8_t character_stored; /* the EXTERNAL id as stored in Game Start (before that fix) */
    uint8_t stocks, costume, team_shade, handicap, team_id, player_bitfield, cpu_level;
    uint16_t start_damage, spawn_damage;
    float offense_ratio, defense_ratio, model_scale;
    uint32_t dashback_fix, shielddrop_fix; /* 0 off, 1 UCF, 2 Dween                    1.0.0 */
    char nametag[64];         /*                                                       1.3.0 */
    char display_name[96];    /* Slippi online display name                            3.9.0 */
    char connect_code[32];    /* e.g. "ABCD#123"                                       3.9.0 */
    char user_id[32];         /*                                                      3.11.0 */
} cphil_player_info;

/* Game Start (0x36). The has_* flags say whether the file's payload carries the field. */
typedef struct cphil_game_info {
    uint8_t version[4];        /* major, minor, build, (unused) */
    uint16_t payload_size;     /* Game Start payload bytes */
    uint8_t game_bitfield[4];  /* offsets 0x05..0x08 */
    uint8_t bomb_rain;
    bool teams;
    int8_t item_spawn;         /* -1 off, 0 very low .. 4 very high */
    int8_t self_destruct_score;
    uint16_t stage;            /* external stage id (src/game/ids.h) */
    uint32_t timer_seconds;
    uint8_t item_bitfield[5];
    float damage_ratio;
    uint32_t random_seed;
    bool is_pal;               /* 1.5.0 */
    bool frozen_ps;            /* 2.0.0 */
    bool has_scene;            /* 3.7.0 */
    uint8_t minor_scene, major_scene; /* major: 2 VS, 8 online, 0x0F target test, 0x20 HRC */
    bool has_language;         /* 3.12.0 */
    uint8_t language;          /* 0 Japanese, 1 English */
    bool has_match_info;       /* 3.14.0 */
    char match_id[64];
    uint32_t game_number, tiebreaker_number;
    cphil_player_info players[CPHIL_SLP_PORTS];
} cphil_game_info;

/* Game End (0x39). */
typedef struct cphil_game_end {
    bool present;              /* a Game End was read */
    uint32_t count;            /* Game End events read (2 in some files; the last one is kept) */
    uint8_t method;            /* raw byte: <2.0 0 unresolved, 3 resolved; 1 TIME, 2 GAME, 7 no contest; 6, 9 seen */
    bool has_lras;             /* 2.0.0 */
    int8_t lras_initiator;     /* player index, -1 none */
    bool has_placements;       /* 3.13.0 */
    int8_t placements[CPHIL_SLP_PORTS]; /* 0-based placement per port, -1 no player */
} cphil_game_end;

/* The metadata element (UBJSON). Strings "" when absent. */
typedef struct cphil_metadata {
    bool present;              /* the file has a metadata element that decoded */
    char start_at[64];         /* "2017-12-18T21:14:14Z" */
    bool has_last_frame;
    int32_t last_frame;
    char played_on[32];        /* dolphin, nintendont, network, mainline dolphin */
    char console_nick[64];
    struct {
        bool present;          /* the player index appears under "players" */
        char netplay[96];
        char code[32];         /* ASCII '#' */
        uint32_t n_characters;
        struct { uint8_t internal_id; uint32_t frames; } characters[4]; /* frames incl. re-sends */
    } players[CPHIL_SLP_PORTS];
} cphil_metadata;

/* The whole replay. Read-only for callers; free with cphil_replay_free. */
typedef struct cphil_replay {
    /* container */
    uint64_t bytes_read;       /* bytes consumed */
    uint32_t raw_length;       /* the raw length field (0 = the file was still being written) */
    bool in_progress;          /* raw length 0 (or a bare event stream): read every complete event */
    bool truncated;            /* the input ended inside the raw data or inside an event */
    /* Damaged in the middle: a byte where an event should start is not a declared code (a run
     * of zero bytes in place of events, say) inside a sized raw element. The read still
     * succeeds, like slippi-js: the frames before the damaged frame are kept, the rest of the
     * raw element is skipped, the metadata after it is read when it is intact. damaged_at is
     * the byte offset (0 = not damaged); warning says what was kept (empty when not damaged). */
    bool damaged;
    uint64_t damaged_at;
    char warning[384];
    uint16_t payload_size[256];/* from Event Payloads (0x35) */
    bool declared[256];

    cphil_game_info game;
    bool has_game_start;
    cphil_game_end end;
    cphil_metadata meta;

    /* Gecko list (0x3D), reassembled from Message Splitter pieces; NULL when absent. */
    uint8_t *gecko_list;
    uint32_t gecko_list_size;

    /* counters */
    uint32_t n_frames;         /* rows = distinct frame numbers (last_frame - first_frame + 1) */
    int32_t first_frame, last_frame; /* frame numbers of rows 0 and n_frames - 1 */
    uint64_t frame_copies;     /* frames received, rollback re-sends included */
    uint64_t rollback_resends; /* copies of a frame number already received */
    uint64_t rollback_runs;    /* rollbacks: runs of consecutive re-sent copies ended by a new frame */
    uint64_t item_events;      /* Item Updates received (all copies) */
    uint64_t stage_event_count;/* stage events received (all copies) */
    uint64_t unknown_events;   /* declared but unknown codes skipped */
    uint8_t follower_mask;     /* bit p set: port index p has follower (Nana) events */

    /* frame-level columns, n_frames rows each */
    uint8_t *copies;           /* copies received of this frame number (1 without rollback) */
    uint32_t *seed;            /* Frame Start random seed                             2.2.0 */
    uint32_t *scene_frame;     /* Frame Start scene frame counter                     3.10.0 */
    int32_t *latest_finalized; /* Frame Bookend latest finalized frame                3.7.0 */
    uint32_t *item_first;      /* this row's items: items[item_first[i] ..+ item_count[i]] */
    uint16_t *item_count;
    uint32_t *stage_first;     /* this row's stage events, likewise */
    uint16_t *stage_count;
    cphil_item *items;         /* items of the final copies, in frame order (after the read) */
    uint32_t n_items;
    cphil_stage_event *stage_events;
    uint32_t n_stage_events;

    cphil_port_columns ports[CPHIL_SLP_PORTS]; /* by player index (port - 1) */

    void *priv_;               /* internal storage; do not touch */
} cphil_replay;

/* One character on one frame, as gathered into a cphil_frame. */
typedef struct cphil_char_frame {
    uint8_t present;           /* CPHIL_PRESENT_PRE | CPHIL_PRESENT_POST; 0 = not in play */
    cphil_pre_frame pre;       /* zero when absent */
    cphil_post_frame post;
} cphil_char_frame;

/* One final frame: what the agent takes per frame in live play, and one row of the table. */
typedef struct cphil_frame {
    int32_t frame;             /* frame number (-123 first) */
    uint32_t index;            /* row = frame - first_frame */
    uint8_t copies;            /* copies received so far (> 1 after rollback) */
    uint32_t seed, scene_frame;
    int32_t latest_finalized;
    cphil_char_frame ports[CPHIL_SLP_PORTS][2]; /* [player index][0 leader, 1 follower] */
    const cphil_item *items;   /* valid until the next call into the parser that produced it */
    uint32_t n_items;
    const cphil_stage_event *stage_events;
    uint32_t n_stage_events;
} cphil_frame;

/* Read a whole .slp file. On success *out is a new replay (free with cphil_replay_free);
 * check r->damaged (a warning, not an error: see r->warning) for a file damaged in the middle.
 * A truncated file (cut inside the raw data) returns CPHIL_E_TRUNCATED AND a replay holding
 * the frames before the cut (r->truncated set); the caller frees it too. Any other failure
 * returns its status with *out = NULL; the message (cphil_last_error) names the file, the
 * byte offset and what was expected. */
cphil_status cphil_slp_read_file(const char *path, cphil_replay **out);
/* The same on bytes in memory; `name` is used in messages (may be NULL). */
cphil_status cphil_slp_read_mem(const void *data, size_t size, const char *name, cphil_replay **out);
/* cphil_slp_read_mem reusing the storage of *r when *r is not NULL (a replay returned by an
 * earlier read, whose contents are replaced): reading many files this way allocates the frame
 * table once. On a failure other than truncation *r is freed and set to NULL. */
cphil_status cphil_slp_read_mem_reuse(const void *data, size_t size, const char *name, cphil_replay **r);
void cphil_replay_free(cphil_replay *r);

/* Gather row `index` (0 <= index < n_frames) of the table into *f. */
void cphil_replay_get_frame(const cphil_replay *r, uint32_t index, cphil_frame *f);

/* "3.19.1" into buf. Versions compare as cphil_slp_version(maj, min, build) integers. */
void cphil_replay_version_string(const cphil_replay *r, char *buf, size_t cap);
#define cphil_slp_version(maj, min, build) (((uint32_t)(maj) << 16) | ((uint32_t)(min) << 8) | (uint32_t)(build))
uint32_t cphil_replay_version(const cphil_replay *r);
/* Number of Gecko codes in the reassembled list (slippi-js's code-length rules); the address
 * of the first code in *first_address (0 when none). */
uint32_t cphil_replay_gecko_codes(const cphil_replay *r, uint32_t *first_address);

/* ---- incremental parser ---------------------------------------------------------------------
 * Feed the bytes of a .slp file (starting with '{') or of a bare event stream (starting with
 * the Event Payloads event 0x35, what Slippi Dolphin sends live) in pieces of any size. The
 * callbacks run inside feed/finish:
 *   on_game_start  once, after Game Start (r->game filled; the frame table is still empty);
 *   on_frame       once per frame number, in order, when the frame is final: at a Frame
 *                  Bookend whose latest-finalized frame reaches it (3.7.0+), else when its
 *                  bookend arrives or the next frame starts; all remaining ones at Game End and
 *                  at finish. A re-send of an already reported frame (rare) updates the table
 *                  but is not reported again. `f` is valid during the call only;
 *   on_game_end    at each Game End event (r->end filled).
 * Any callback may be NULL. Feeding byte by byte gives exactly the result of feeding at once. */
typedef struct cphil_slp_callbacks {
    void (*on_game_start)(void *user, const cphil_replay *r);
    void (*on_frame)(void *user, const cphil_replay *r, const cphil_frame *f);
    void (*on_game_end)(void *user, const cphil_replay *r);
    void *user;
} cphil_slp_callbacks;

typedef struct cphil_slp_stream cphil_slp_stream;

/* name: used in messages (may be NULL). cb may be NULL. */
cphil_status cphil_slp_stream_open(cphil_slp_stream **out, const cphil_slp_callbacks *cb, const char *name);
/* Optional, for acting on the newest frame before it is final (online games finalize up to 7
 * frames late): `fn` is called (with the callbacks' user) once per COPY of a frame as soon as
 * that copy is complete (at its Frame Bookend; before 3.0.0 when the next frame starts; at
 * Game End or finish), with the frame as that copy left it (f->copies > 1: a rollback
 * re-send). In offline 3.7.0+ games it runs just before on_frame for the same frame. */
typedef void (*cphil_slp_copy_fn)(void *user, const cphil_replay *r, const cphil_frame *f);
void cphil_slp_stream_on_copy(cphil_slp_stream *s, cphil_slp_copy_fn fn);
/* Optional: reserve rows for this many frames (avoids growth when the length is known). */
cphil_status cphil_slp_stream_reserve(cphil_slp_stream *s, uint32_t n_frames);
/* Parse the next n bytes. A failure is final: later calls return the same status. */
cphil_status cphil_slp_stream_feed(cphil_slp_stream *s, const void *data, size_t n);
/* End of input: reports the remaining frames, decodes the metadata, compacts the items.
 * Returns CPHIL_E_TRUNCATED (replay still usable) when the input stopped inside the raw data. */
cphil_status cphil_slp_stream_finish(cphil_slp_stream *s);
/* The replay being built (valid until close or take). Rows [0, n_final) are final. */
const cphil_replay *cphil_slp_stream_replay(const cphil_slp_stream *s);
uint32_t cphil_slp_stream_final_frames(const cphil_slp_stream *s);
/* Move the replay out (the caller frees it with cphil_replay_free); the stream is then spent. */
cphil_replay *cphil_slp_stream_take(cphil_slp_stream *s);
void cphil_slp_stream_close(cphil_slp_stream *s);


/* ---------------------------------------------------------------------------------------------
 * Agent: a policy driven one game frame at a time, as a bot harness embeds it (src/agent/,
 * docs/inference.md), with the calls of ExPhil.Agents (ExPhil: the Elixir project cphil
 * reimplements): start with a policy (its config is read from the file: backbone, sizes, window,
 * embedding layout, weight precision), get an action per game frame (frame buffer or recurrent
 * state kept inside), reset at game start, get_config. Harnesses that do not use cphil's replay
 * parser use the cphil_bot_* structs below instead of cphil_replay / cphil_frame.
 *
 *   cphil_agent_params p = cphil_agent_default_params();  p.port = 0;  (player index, port 1)
 *   cphil_agent *a;  cphil_agent_open("policy.safetensors", &p, &a);
 *   on game start:   cphil_agent_game_start(a, replay)      (the parser's cphil_replay header)
 *   on every frame:  cphil_agent_step(a, frame, &ctrl)      (the parser's final cphil_frame)
 *   cphil_agent_close(a);
 *
 * Live input and replays take one path: the frame type is the replay reader's. The step
 * allocates nothing and takes no lock; an agent is used by one thread at a time (open one per
 * thread; they may share nothing else). Frames before CPHIL_AGENT_FIRST_FRAME (players cannot
 * act yet) give the neutral controller and do not enter the buffer, as the dataset drops them.
 * Frame numbers (live play re-sends frames: an online game rolls back up to 7 frames and sends
 * the corrected copies again, in order, before the next new frame):
 *   higher than the newest consumed: a new frame; the state advances (a gap is not filled in).
 *   equal to or lower than the newest by at most CPHIL_AGENT_MAX_ROLLBACK: a re-send. It never
 *     resets or advances the state, and the controls returned are again for the frame after the
 *     newest. Window mode: the re-sent frame replaces its copy in the window (when the window
 *     still holds it) and the decision is recomputed with the sampler rewound to where the
 *     newest decision started, so an identical copy gives the same controls, and after a
 *     rollback's re-sends the window is what it would be had the frames first come corrected.
 *     Stream mode cannot rewind its carried state: a re-send returns the newest decision again
 *     and the correction is not applied (feed final frames only, or use window mode, where
 *     corrections matter).
 *   lower than the newest by more than CPHIL_AGENT_MAX_ROLLBACK (a new game starts at -123):
 *     the state is reset, as cphil_agent_reset does, and the frame is a game's first.
 * Sampling: buttons Bernoulli on sigmoid(logit) (temperature does not apply, as in ExPhil),
 * sticks and shoulder by Gumbel-max on logits / temperature; deterministic: logit > 0 and
 * argmax. Seeded: the same seed and frames give the same controls.
 * ------------------------------------------------------------------------------------------- */
#define CPHIL_AGENT_FIRST_FRAME (-39)
/* One Melee frame: the game runs at 59.94 frames per second (NTSC), 16,683,350 ns a frame. Live
 * play waits and warms up by it, the fake Dolphin serves at it, play-replay counts decisions
 * longer than it. */
#define CPHIL_FPS 59.94
#define CPHIL_FRAME_NS 16683350u
/* The deepest re-send the agent treats as a rollback (Slippi rolls back at most 7 frames; a new
 * game restarts at -123, at least 84 below any frame the agent consumed). */
#define CPHIL_AGENT_MAX_ROLLBACK 15

typedef enum cphil_agent_mode {
    CPHIL_AGENT_WINDOW = 0, /* ExPhil's: the last W frames recomputed each frame */
    CPHIL_AGENT_STREAM = 1  /* O(1) per frame: recurrent state / conv ring / key-value ring */
} cphil_agent_mode;

typedef enum cphil_agent_precision {
    CPHIL_AGENT_PREC_AUTO = 0, /* the file's: int8 files run int8, bf16 files bf16, else f32 */
    CPHIL_AGENT_PREC_F32,
    CPHIL_AGENT_PREC_BF16,
    CPHIL_AGENT_PREC_INT8      /* from an f32 file: dynamic int8 quantized at load */
} cphil_agent_precision;

typedef struct cphil_agent_params {
    cphil_agent_mode mode;           /* default CPHIL_AGENT_WINDOW */
    cphil_agent_precision precision; /* default CPHIL_AGENT_PREC_AUTO */
    float temperature;               /* > 0, default 1 */
    int deterministic;               /* default 0 */
    uint64_t seed;                   /* default 0 */
    /* NOTE: 0-BASED PLAYER INDEXES, NOT PORTS. The CLI (--port, --player), Slippi and every message
     * number ports 1..4; here port 1 is index 0 (index = port - 1), as in cphil_frame.ports[]. */
    int port;                        /* controlled player INDEX 0..3 (port 1 = 0), default 0 */
    int opponent;                    /* player INDEX 0..3, -1 (default): the lowest other player */
} cphil_agent_params;

/* The controller the agent decides for the next frame. */
typedef struct cphil_controller_state {
    uint8_t button[8];          /* A B X Y Z L R D-up: 0 or 1 */
    float main_x, main_y;       /* [0, 1], 0.5 neutral (class k of 17 is k/16) */
    float c_x, c_y;             /* [0, 1] */
    float shoulder;             /* [0, 1] (class k of 5 is k/4) */
} cphil_controller_state;

/* ExPhil's get_config. Strings are static. */
typedef struct cphil_agent_config {
    const char *backbone;       /* "mlp", "lstm", "gru", "mamba", "attention" */
    int temporal;               /* 0 for the MLP */
    int window;                 /* W (1 for the MLP) */
    int hidden, num_layers, state_size, expand, conv_size, num_heads;
    int n_mlp, mlp_hidden[8];
    int n_cont, n_ids, E;       /* the embedding */
    long long params;
    const char *precision;      /* "f32", "bf16", "int8" (what runs) */
    const char *activations;    /* int8: "dynamic" or "static"; else "f32" */
    const char *mode;           /* "window" or "stream" */
} cphil_agent_config;

typedef struct cphil_agent cphil_agent;

cphil_agent_params cphil_agent_default_params(void);
/* Open an agent on a policy file. Errors: CPHIL_E_IO / CPHIL_E_FORMAT (unreadable or malformed
 * file), CPHIL_E_MISMATCH (tensors or embedding layout not those the config says, or an int8
 * file asked to run f32), CPHIL_E_ARG (bad params), CPHIL_E_NOMEM. */
cphil_status cphil_agent_open(const char *policy_path, const cphil_agent_params *params, cphil_agent **out);
void cphil_agent_close(cphil_agent *a);
/* A new game: read the ports, stage and replay version from the Game Start (r->game), reset the
 * buffer. CPHIL_E_ARG when the controlled port is not a player of this game. */
cphil_status cphil_agent_game_start(cphil_agent *a, const cphil_replay *game);
/* One final frame -> the controller for the next frame. CPHIL_E_ARG before game_start. */
cphil_status cphil_agent_step(cphil_agent *a, const cphil_frame *frame, cphil_controller_state *out);
/* Forget the frames seen (ExPhil's reset_buffer); the game context stays. */
void cphil_agent_reset(cphil_agent *a);
/* Read the policy's weights once so they are in cache for the next step (after the core sat
 * idle most of a frame, a step costs several times what it costs back to back: docs/live.md).
 * Call it shortly before the next frame is due, and again every ~100 us while waiting for it
 * (cphil play --warm-us does: what one call loads is partly evicted by other work). Changes no
 * state, allocates nothing; returns the bytes read. */
size_t cphil_agent_warm(cphil_agent *a);
void cphil_agent_get_config(const cphil_agent *a, cphil_agent_config *out);
/* After a step that decided: its 81 logits (heads in order), the deterministic choice
 * (buttons[8] 0/1, cls[5] main_x main_y c_x c_y shoulder) and the embedded frame (cont[n_cont],
 * ids[n_ids]). NULL / 0 before the first decision. */
const float *cphil_agent_last_logits(const cphil_agent *a);
int cphil_agent_last_choice(const cphil_agent *a, uint8_t buttons[8], uint8_t cls[5]);
int cphil_agent_last_inputs(const cphil_agent *a, const float **cont, const int32_t **ids);


/* ---------------------------------------------------------------------------------------------
 * Driving the agent without cphil's replay parser. A bot harness that reads the game some other
 * way (libmelee, a memory reader, its own Slippi client) fills these compact structs with what it
 * knows about the game each frame, and calls cphil_agent_game_start_bot / cphil_agent_step_bot
 * instead of the replay-typed pair above. They hold exactly what the policy's features read
 * (docs/embedding.md lists each feature and its source), in the game's own units; the agent then
 * runs the same embedding, engine and sampling, so the decisions are identical to those taken
 * from the parser's frames (tests/test_agent.c checks it on every frame of shared replays).
 *
 *   cphil_bot_game g = cphil_bot_game_default();  g.stage = 32;  g.playing[0] = g.playing[1] = 1;
 *   cphil_agent_game_start_bot(a, &g);
 *   every frame: fill a cphil_bot_frame s (memset 0, then the fields), cphil_agent_step_bot(a, &s, &ctrl)
 *
 * Player slots are 0-based player indexes (port 1 = 0), as everywhere in this header.
 * ------------------------------------------------------------------------------------------- */

/* Which fields the harness's frames carry. A replay of an old Slippi version lacks some; a live
 * harness (libmelee, ...) normally has them all (the default). A field left out reads as 0 and the
 * model sees that it is missing (the embedding's mask features). */
#define CPHIL_BOT_HAS_STATE_FLAGS 0x01u /* on_ground, jumps_left, hitstun_left, shielding, fastfall, in_hitlag, dead (Slippi 2.0.0) */
#define CPHIL_BOT_HAS_HURTBOX 0x02u     /* invulnerable (2.1.0) */
#define CPHIL_BOT_HAS_SPEEDS 0x04u      /* the five speed_* fields (3.5.0) */
#define CPHIL_BOT_HAS_HITLAG 0x08u      /* hitlag_left (3.8.0) */
#define CPHIL_BOT_HAS_ITEMS 0x10u       /* items[] (3.0.0) */
#define CPHIL_BOT_HAS_ALL 0x1Fu

/* One game's context: given once, at game start. */
typedef struct cphil_bot_game {
    int stage;          /* EXTERNAL stage id (32 Final Destination, 31 Battlefield, ...) */
    int playing[4];     /* 1 for each player index in the game */
    unsigned fields;    /* CPHIL_BOT_HAS_* (default CPHIL_BOT_HAS_ALL) */
} cphil_bot_game;

/* A controller as the player held it on this frame (used by policies trained with prev_action). */
typedef struct cphil_bot_pad {
    uint8_t button[8];        /* A B X Y Z L R D-up held: 0 or 1 (physical buttons) */
    float main_x, main_y;     /* processed main stick, -1..1 */
    float c_x, c_y;           /* processed C-stick, -1..1 */
    float l, r;               /* physical analog triggers, 0..1 */
} cphil_bot_pad;

/* One character (a player, or Nana for the Ice Climbers) on one frame, after the frame ran. */
typedef struct cphil_bot_player {
    int present;              /* 0: absent this frame (no such player, Nana dead): every other field ignored */
    int character;            /* INTERNAL character id (the in-game one: 0 Mario, 1 Fox, ...) */
    int action_state;         /* action state id */
    float action_frame;       /* frames into the action state */
    float x, y;               /* position */
    float facing;             /* +1 right, -1 left */
    float percent;            /* damage */
    float shield;             /* shield size, 0..60 */
    int stocks;               /* stocks left */
    int on_ground;            /* 1 standing on the ground, 0 in the air */
    int jumps_left;
    float hitstun_left;       /* hitstun frames left; 0 when not in hitstun */
    float hitlag_left;        /* hitlag frames left */
    int in_hitlag, shielding, fastfall, dead, invulnerable; /* 0 or 1 (invulnerable: or intangible) */
    float speed_air_x, speed_y;           /* self-induced air x and y speed */
    float speed_attack_x, speed_attack_y; /* knockback speed */
    float speed_ground_x;                 /* self-induced ground x speed */
    int pad_present;          /* 1 when pad holds this frame's controller (players, not Nana) */
    cphil_bot_pad pad;
} cphil_bot_player;

/* A projectile or item on the stage. */
typedef struct cphil_bot_item {
    int type;                 /* item type id (the game's) */
    int owner;                /* owner's player index, -1 none */
    float x, y, vx, vy;       /* position and velocity */
} cphil_bot_item;

#define CPHIL_BOT_MAX_ITEMS 64

/* The game on one frame, after it ran: what the bot sees. */
typedef struct cphil_bot_frame {
    int32_t frame;            /* frame number (-123 the first; the agent decides from CPHIL_AGENT_FIRST_FRAME on) */
    cphil_bot_player player[4];   /* by player index */
    cphil_bot_player follower[4]; /* Nana of an Ice Climbers player (else present = 0) */
    int n_items;                  /* 0..CPHIL_BOT_MAX_ITEMS */
    cphil_bot_item items[CPHIL_BOT_MAX_ITEMS];
} cphil_bot_frame;

cphil_bot_game cphil_bot_game_default(void); /* fields = CPHIL_BOT_HAS_ALL, nobody playing, stage 0 */
/* The same structs from the parser's types (for harnesses that have both, and for tests).
 * cphil_bot_frame_from_frame: CPHIL_E_ARG when the frame has more than CPHIL_BOT_MAX_ITEMS items. */
void cphil_bot_game_from_replay(const cphil_replay *r, cphil_bot_game *out);
cphil_status cphil_bot_frame_from_frame(const cphil_frame *f, cphil_bot_frame *out);
/* cphil_agent_game_start and cphil_agent_step for those structs: the same contracts (frame
 * numbers, re-sends, first frame), no allocation, no lock. Errors: CPHIL_E_ARG (the controlled
 * player is not playing; a step before game start; n_items out of range). */
cphil_status cphil_agent_game_start_bot(cphil_agent *a, const cphil_bot_game *game);
cphil_status cphil_agent_step_bot(cphil_agent *a, const cphil_bot_frame *frame, cphil_controller_state *out);

#ifdef __cplusplus
}
#endif
#endif /* CPHIL_H */
