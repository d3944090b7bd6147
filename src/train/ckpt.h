/* ckpt.h — the full training checkpoint container (`NAME.ckpt`) and the 64-bit checksum shared
 * by the training files (checkpoints, soft labels).
 *
 * A checkpoint is a list of named binary sections (parameters, AdamW moments, trainer state,
 * RNG, data position, ...) plus a JSON metadata string (the model and training config). It does
 * not know what a section means: the trainer decides (src/train/trainer.c), so the container is
 * tested on its own. Layout (little-endian), documented in docs/training.md:
 *
 *   0   "CPHILCKP"                 8-byte magic
 *   8   u32 version (= 1)
 *   12  u32 n_sections
 *   16  u64 meta_len               then meta_len bytes of JSON, zero-padded to a multiple of 8
 *   ..  per section: u32 name_len, name bytes, zero pad to 8; u64 size; u64 hash64(data);
 *       data, zero pad to 8
 *   end u64 body_len (bytes before this trailer), u64 hash64(body), "CKPTEND1"
 *
 * Reading checks the magic, version, every length against the file size, each section's hash
 * and the whole-file hash, so a truncated or corrupted file is refused with a message that says
 * which part is wrong. Writes are atomic (temporary file, fsync, rename).
 */
#ifndef CPHIL_TRAIN_CKPT_H
#define CPHIL_TRAIN_CKPT_H

#include "core/core.h"

#define CPHIL_CKPT_VERSION 1u
#define CPHIL_CKPT_MAX_SECTIONS 64
#define CPHIL_CKPT_MAX_NAME 63

/* A fast 64-bit checksum (8 bytes per step, multiply-xorshift; not cryptographic). The same
 * bytes always give the same value on every machine. `seed` chains calls. */
uint64_t cphil_hash64(const void *data, size_t n, uint64_t seed);

typedef struct cphil_ckpt_section {
    const char *name; /* <= 63 bytes, unique */
    const void *data;
    uint64_t size;
} cphil_ckpt_section;

/* Write a checkpoint atomically. meta_json may be NULL (written as "{}"). */
cphil_status cphil_ckpt_write(const char *path, const char *meta_json, const cphil_ckpt_section *secs,
                              int n_secs);

/* A checkpoint read into memory; section data point into buf. */
typedef struct cphil_ckpt {
    uint8_t *buf;
    size_t size;
    char *meta; /* NUL-terminated copy of the metadata JSON */
    int n;
    struct {
        char name[CPHIL_CKPT_MAX_NAME + 1];
        const uint8_t *data;
        uint64_t size;
    } sec[CPHIL_CKPT_MAX_SECTIONS];
} cphil_ckpt;

/* Read and verify a checkpoint. On failure the message names the file, the offset and the part. */
cphil_status cphil_ckpt_read(const char *path, cphil_ckpt *out);
/* Find a section; NULL when absent. */
const void *cphil_ckpt_find(const cphil_ckpt *c, const char *name, uint64_t *size);
/* Find a section that must exist with exactly `size` bytes (else CPHIL_E_MISMATCH with a message). */
cphil_status cphil_ckpt_get(const cphil_ckpt *c, const char *path, const char *name, uint64_t size,
                            const void **data);
void cphil_ckpt_close(cphil_ckpt *c);

#endif
