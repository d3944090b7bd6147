/* slp_internal.h — shared internals of the replay reader (src/slp/): big-endian readers,
 * the frame-table storage, and the metadata decoder. Not part of the public API. */
#ifndef CPHIL_SLP_INTERNAL_H
#define CPHIL_SLP_INTERNAL_H

#include "core/core.h"

#include <string.h>

/* ---- big-endian readers (every integer and float of the format is big-endian) ---------- */
static inline uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(((unsigned)p[0] << 8) | p[1]); }
static inline uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}
static inline int32_t rd_i32(const uint8_t *p) {
    uint32_t u = rd_u32(p);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}
static inline float rd_f32(const uint8_t *p) {
    uint32_t u = rd_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}
/* Readers by type name, for the X-macro field tables of cphil.h. */
#define SLP_RD_uint8_t(p) ((uint8_t)(p)[0])
#define SLP_RD_int8_t(p) ((int8_t)(p)[0])
#define SLP_RD_uint16_t(p) rd_u16(p)
#define SLP_RD_uint32_t(p) rd_u32(p)
#define SLP_RD_int32_t(p) rd_i32(p)
#define SLP_RD_float(p) rd_f32(p)

/* Event codes (reference/slp_format.md §2.1). */
enum {
    SLP_EV_SPLIT = 0x10,
    SLP_EV_PAYLOADS = 0x35,
    SLP_EV_GAME_START = 0x36,
    SLP_EV_PRE = 0x37,
    SLP_EV_POST = 0x38,
    SLP_EV_GAME_END = 0x39,
    SLP_EV_FRAME_START = 0x3A,
    SLP_EV_ITEM = 0x3B,
    SLP_EV_BOOKEND = 0x3C,
    SLP_EV_GECKO = 0x3D,
    SLP_EV_FOD = 0x3F,
    SLP_EV_WHISPY = 0x40,
    SLP_EV_STADIUM = 0x41,
};

/* Largest number of rows (frame numbers) a replay may have: 2^24 frames = 77 hours. */
#define SLP_MAX_ROWS (1u << 24)

/* Storage behind a cphil_replay (r->priv_). */
typedef struct slp_store {
    uint32_t cap;              /* rows allocated in every column */
    void *frame_block;         /* frame-level columns */
    void *char_block[CPHIL_SLP_PORTS][2];
    uint32_t items_cap, stage_cap;
    uint32_t gecko_cap;
} slp_store;

cphil_replay *cphil_slp_replay_new(void);
/* Make room for at least `rows` rows in every allocated column (amortized doubling). */
cphil_status cphil_slp_reserve(cphil_replay *r, uint32_t rows);
/* The columns of (port, follower), allocated (zeroed, r->n_frames rows) on first use. */
cphil_status cphil_slp_char_columns(cphil_replay *r, unsigned port, unsigned follower, cphil_char_columns **out);
/* Zero row `row` of every character (a re-sent frame starts from nothing). */
void cphil_slp_clear_row(cphil_replay *r, uint32_t row);
/* Set the frame-level columns of a new row. */
void cphil_slp_row_init(cphil_replay *r, uint32_t row);
/* Zero the Pre/Post fields of characters absent from a row (done when the row is final). */
void cphil_slp_zero_absent(cphil_replay *r, uint32_t row);
/* Empty r for a new replay, keeping its storage (capacity) for reuse. */
void cphil_slp_replay_reset(cphil_replay *r);
cphil_status cphil_slp_push_item(cphil_replay *r, cphil_item **out);
cphil_status cphil_slp_push_stage(cphil_replay *r, cphil_stage_event **out);
/* Keep only the final copies' items and stage events, in frame order. */
cphil_status cphil_slp_compact_extras(cphil_replay *r);

/* cphil_slp_stream_open, building into `reuse` (reset first) when it is not NULL. On failure
 * `reuse` is freed. */
cphil_status cphil_slp_stream_open_reuse(cphil_slp_stream **out, const cphil_slp_callbacks *cb, const char *name,
                                   cphil_replay *reuse);

/* The metadata object starting at p[0] == '{'. base = file offset of p[0]. */
cphil_status cphil_slp_metadata_parse(const uint8_t *p, size_t n, uint64_t base, const char *name,
                                cphil_metadata *m, size_t *consumed);

#endif
