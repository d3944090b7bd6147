/* dataset.h — replay datasets: the cache file built by `cphil dataset`, and the batcher that
 * training reads it with. Format and options: docs/data.md.
 *
 * The cache holds compact per-frame records (no one-hot materialized): per row the embedding's
 * continuous features (f32 x n_cont), its ids (int16 absolute dense columns x n_ids) and the
 * controller of that frame as targets (8 bytes). Rows are grouped per (replay, controlled port)
 * "entry" with its range; a versioned header carries the layout hash and a checksum. The file is
 * mmap-able and read in place.
 *
 * A sample pairs the state of row t with the targets of row t+1+D (D = frame delay), both in the
 * same entry: windows and streams never cross entries.
 */
#ifndef CPHIL_DATA_DATASET_H
#define CPHIL_DATA_DATASET_H

#include "core/core.h"
#include "game/controller.h"
#include "game/embed.h"

#include <stdint.h>

#define CPHIL_DS_MAGIC "CPHILDS"
#define CPHIL_DS_FORMAT_VERSION 1
#define CPHIL_DS_HEADER_SIZE 256
#define CPHIL_DS_FIRST_FRAME (-39) /* first frame kept: players can act from frame -39 */

/* Target record of one row (8 bytes). */
typedef struct cphil_ds_target {
    uint8_t buttons; /* bit i = head button i (A B X Y Z L R D-up) */
    uint8_t cls[CPHIL_N_AXES];
    uint8_t flags;   /* bit 0: the controlled player's Pre-Frame was present */
    uint8_t pad;
} cphil_ds_target;

/* One entry: the rows of one replay seen from one controlled port (64 bytes in the file). */
typedef struct cphil_ds_entry {
    uint64_t row_start;
    uint32_t n_rows;
    int32_t first_frame;   /* frame number of the entry's first row */
    uint64_t content_hash; /* of the replay file's bytes */
    uint32_t name_offset;  /* into the string table (NUL-terminated path relative to --replays) */
    uint16_t stage;        /* external stage id */
    uint8_t port;          /* controlled player index 0..3 */
    uint8_t opp;           /* opponent player index (255 none) */
    uint8_t char_ext;      /* controlled player's external character id */
    uint8_t opp_char_ext;
    uint8_t is_val;        /* 1: validation split */
    uint8_t pad[29];
} cphil_ds_entry;

/* The 256-byte header (little-endian, host layout on x86-64). */
typedef struct cphil_ds_header {
    char magic[8];             /* "CPHILDS\0" */
    uint32_t format_version;   /* CPHIL_DS_FORMAT_VERSION */
    uint32_t header_size;      /* 256 */
    uint64_t layout_hash;
    uint32_t layout_version;
    uint32_t n_cont, n_ids, E;
    uint32_t flags;            /* bit 0: layout with prev_action */
    uint32_t n_entries;
    uint64_t n_rows;
    uint64_t off_entries, off_cont, off_ids, off_targets, off_strings, size_strings;
    uint64_t file_size;
    uint64_t checksum;         /* of bytes [header_size, file_size) */
    uint32_t n_files;          /* replay files used (entries may be 2 per file with --dual-port) */
    uint32_t n_val_files;
    double val_split;
    uint64_t split_seed;
    int32_t first_frame_kept;  /* CPHIL_DS_FIRST_FRAME */
    uint8_t reserved[256 - 148];
} cphil_ds_header;

/* An opened cache (read-only, mmap'd). */
typedef struct cphil_dataset {
    const cphil_ds_header *h;
    const cphil_ds_entry *entries;
    const float *cont;            /* [n_rows, n_cont] */
    const int16_t *ids;           /* [n_rows, n_ids] */
    const cphil_ds_target *targets; /* [n_rows] */
    const char *strings;
    cphil_embed_layout layout;
    void *map;
    size_t map_size;
} cphil_dataset;

/* Open and validate a cache (header, sizes, offsets, layout; checksum when verify). */
cphil_status cphil_dataset_open(cphil_dataset *ds, const char *path, bool verify);
void cphil_dataset_close(cphil_dataset *ds);
/* Name (relative path) of entry i. */
const char *cphil_dataset_entry_name(const cphil_dataset *ds, uint32_t i);
/* Row r as cont (copied), ids (int32) and a target. Any pointer may be NULL. */
void cphil_dataset_row(const cphil_dataset *ds, uint64_t r, float *cont, int32_t *ids, cphil_target *t);
/* Fast 64-bit checksum (word-wise multiply-xor; streamable). */
typedef struct cphil_ds_hasher {
    uint64_t h, carry;
    unsigned n_carry;
    uint64_t total;
} cphil_ds_hasher;
void cphil_ds_hash_init(cphil_ds_hasher *s);
void cphil_ds_hash_update(cphil_ds_hasher *s, const void *data, size_t n);
uint64_t cphil_ds_hash_final(const cphil_ds_hasher *s);

/* ---- building --------------------------------------------------------------------------- */
#define CPHIL_DS_MAX_NAMES 16
typedef struct cphil_ds_build_opts {
    const char *replays_dir;
    const char *out_path;
    int max_files;                 /* 0: all */
    int characters[CPHIL_DS_MAX_NAMES]; int n_characters; /* external ids: some player plays one */
    int stages[CPHIL_DS_MAX_NAMES]; int n_stages;         /* external stage ids */
    int player;                    /* controlled port 1..4 (0: the lowest occupied port) */
    int train_characters[CPHIL_DS_MAX_NAMES]; int n_train_characters; /* control every port playing one */
    bool dual_port;                /* control every port */
    bool any_players;              /* keep games that are not 1v1 */
    double val_split;              /* fraction of files held out (default 0.1) */
    uint64_t seed;                 /* split seed */
    cphil_embed_config embed;
    int jobs;                      /* worker threads (default 2) */
    bool quiet;                    /* no progress bar */
} cphil_ds_build_opts;

void cphil_ds_build_default_opts(cphil_ds_build_opts *o);

/* Why a file was not used. */
typedef enum cphil_ds_skip {
    CPHIL_DS_USED = 0, CPHIL_DS_SKIP_DAMAGED, CPHIL_DS_SKIP_DUPLICATE, CPHIL_DS_SKIP_NOT_1V1,
    CPHIL_DS_SKIP_CHARACTER, CPHIL_DS_SKIP_STAGE, CPHIL_DS_SKIP_PORT, CPHIL_DS_SKIP_EMPTY,
    CPHIL_DS_SKIP_MAX_FILES, CPHIL_DS_SKIP_COUNT
} cphil_ds_skip;
const char *cphil_ds_skip_name(cphil_ds_skip s);

typedef struct cphil_ds_file_report {
    char *path;                /* relative to replays_dir */
    cphil_ds_skip skip;
    char *message;             /* damaged: the reader's message; duplicate: "of <path>"; a file read
                                  up to damage in its middle (used, frames before it kept): the
                                  reader's warning; else NULL */
} cphil_ds_file_report;

typedef struct cphil_ds_build_report {
    uint32_t files_found, files_used, entries, val_files;
    uint32_t skipped[CPHIL_DS_SKIP_COUNT];
    uint32_t damaged_kept;     /* used files damaged in the middle (frames before the damage kept) */
    uint64_t rows, train_rows, val_rows;
    uint64_t button_presses[CPHIL_N_BUTTONS]; /* rows with the button pressed */
    uint32_t char_entries[64];                /* entries by controlled external character */
    uint32_t stage_files[64];                 /* used files by stage (ids >= 63 counted at 63) */
    double seconds;
    uint64_t bytes_written;
    cphil_ds_file_report *files;              /* files_found reports, sorted by path */
} cphil_ds_build_report;

/* Build the cache. On success the report lists every file with its fate (free it with
 * cphil_ds_build_report_free). Fails only when nothing can be written (no folder, no usable
 * replay, I/O errors); damaged replays are skipped and listed. */
cphil_status cphil_dataset_build(const cphil_ds_build_opts *o, cphil_ds_build_report *rep);
void cphil_ds_build_report_free(cphil_ds_build_report *rep);

/* ---- batcher ---------------------------------------------------------------------------- */
typedef enum cphil_batch_mode { CPHIL_BATCH_WINDOWS = 0, CPHIL_BATCH_STREAMS = 1 } cphil_batch_mode;
typedef enum cphil_batch_split { CPHIL_SPLIT_TRAIN = 0, CPHIL_SPLIT_VAL = 1, CPHIL_SPLIT_ALL = 2 } cphil_batch_split;

typedef struct cphil_batcher_opts {
    cphil_batch_mode mode;
    cphil_batch_split split;
    int B;                 /* batch slots */
    int W;                 /* window length / TBPTT chunk length */
    int stride;            /* windows: start every `stride` rows (default W) */
    int frame_delay;       /* D: targets from row t+1+D */
    uint64_t seed;         /* shuffle seed (epoch e uses seed + e) */
    bool shuffle;          /* windows: shuffle window order; streams: shuffle entry order */
    bool drop_last;        /* windows: drop the last partial batch */
    float neutral_weight;  /* weight of samples whose target is all-neutral (default 1) */
    /* Data-parallel ranks (docs/distributed.md): B is the GLOBAL batch (every rank's slots); this
     * process fills only slots [share_at, share_at + share) of each, into a batch of `share`
     * slots. The walk (window order, stream packing) is the global one, so N ranks together see
     * exactly the batches one process with B slots sees. share 0 = all B slots. */
    int share_at, share;
    /* windows: spread a batch's windows over cphil_parallel's threads (the GPU trainer's loader,
     * where the CPU is otherwise idle; the CPU trainer's steps use those threads themselves). The
     * batch is the same either way. */
    bool parallel_fill;
} cphil_batcher_opts;

void cphil_batcher_default_opts(cphil_batcher_opts *o);

/* One batch, allocated once (cphil_batch_alloc) and refilled by cphil_batcher_next. */
typedef struct cphil_batch {
    int B, W, n_cont, n_ids;
    float *cont;       /* [B, W, n_cont] */
    int32_t *ids;      /* [B, W, n_ids] absolute dense columns */
    uint8_t *buttons;  /* [B, W, 8] 0/1 */
    uint8_t *cls;      /* [B, W, 5] main_x main_y c_x c_y shoulder */
    float *weight;     /* [B, W] 0 for padding and frames without a controller */
    uint8_t *reset;    /* [B] streams: 1 when the slot starts a new entry at this chunk */
    int32_t *entry;    /* [B] entry index of the slot (-1 idle) */
    uint32_t *start;   /* [B] entry row of the slot's first position (window id with entry) */
    int n_valid;       /* slots holding data (the rest has weight 0) */
} cphil_batch;

typedef struct cphil_batcher cphil_batcher;

cphil_status cphil_batcher_open(cphil_batcher **out, const cphil_dataset *ds, const cphil_batcher_opts *o);
void cphil_batcher_close(cphil_batcher *b);
cphil_status cphil_batch_alloc(cphil_batch *batch, const cphil_batcher *b);
void cphil_batch_free(cphil_batch *batch);
/* Start epoch e (reshuffles with seed + e). cphil_batcher_open starts epoch 0. */
void cphil_batcher_epoch(cphil_batcher *b, uint64_t e);
/* Fill the next batch; false at the end of the epoch. Allocates nothing. */
bool cphil_batcher_next(cphil_batcher *b, cphil_batch *batch);
/* Windows in this epoch (window mode) or entries (stream mode); samples with weight > 0. */
uint64_t cphil_batcher_units(const cphil_batcher *b);
uint64_t cphil_batcher_batches(const cphil_batcher *b);

#endif
