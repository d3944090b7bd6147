/* softlabels.h — the soft-label file of `cphil soft-labels` / `cphil distill`: a teacher's
 * probabilities at temperature T for every frame of a dataset cache, stored beside a reference
 * to the dataset rows that are the student's inputs (docs/distill.md).
 *
 * Layout (little-endian; 128-byte header):
 *   0   "CPHILSL\0"             8-byte magic
 *   8   u32 version (= 1)        12  u32 header_size (= 128)
 *   16  u64 n_frames             24  u32 n_probs (= 81)     28  u32 flags (bit 0: prev_action layout)
 *   32  u64 layout_hash          (embedding layout of the dataset = of teacher and student)
 *   40  u64 dataset_checksum     (the cache header's checksum: which dataset the rows refer to)
 *   48  u64 dataset_rows         56  f32 temperature        60  u32 frame_delay
 *   64  u64 off_rows             u32 per frame: the dataset row of the frame's state (targets: row+1+D)
 *   72  u64 off_probs            f16 (IEEE half) [n_frames][81]: sigmoid(z/T) for the 8 buttons,
 *                                softmax(z/T) for main_x, main_y, c_x, c_y (17) and shoulder (5)
 *   80  u64 off_meta             88  u64 meta_len (JSON: teacher path and config, dataset path)
 *   96  u64 file_size            104 u64 body_checksum (cphil_hash64 of bytes [128, file_size))
 *   112 u64 header_checksum      (cphil_hash64 of bytes [0, 112))    120 u64 reserved (0)
 * Refused with a message: wrong magic or version, any offset or size outside the file (checked
 * without wrapping), unknown flag bits, a checksum mismatch (damage), a probability that is not
 * finite or outside [0, 1], a categorical head whose probabilities do not sum to 1, and (cphil
 * distill) a dataset or embedding layout other than the one referenced. The header is read and
 * checked before the rest of the file.
 */
#ifndef CPHIL_TRAIN_SOFTLABELS_H
#define CPHIL_TRAIN_SOFTLABELS_H

#include "train/metrics.h"

#define CPHIL_SL_VERSION 1u
#define CPHIL_SL_HEADER 128

typedef struct cphil_softlabels {
    uint8_t *buf;
    size_t size;
    uint64_t n_frames, layout_hash, dataset_checksum, dataset_rows;
    uint32_t flags, frame_delay;
    float temperature;
    const uint8_t *rows;  /* u32 LE per frame */
    const uint8_t *probs; /* f16 LE [n][81] */
    char *meta;           /* NUL-terminated JSON */
} cphil_softlabels;

/* Writer: frames added in any order, then written atomically. */
typedef struct cphil_sl_writer {
    uint32_t *rows;
    uint16_t *probs;
    uint64_t n, cap;
} cphil_sl_writer;

void cphil_sl_writer_init(cphil_sl_writer *w);
void cphil_sl_writer_free(cphil_sl_writer *w);
/* Add one frame: dataset row and the 81 probabilities (stored as f16). */
cphil_status cphil_sl_writer_add(cphil_sl_writer *w, uint32_t row, const float p[CPHIL_N_LOGITS]);
cphil_status cphil_sl_writer_write(const cphil_sl_writer *w, const char *path, uint64_t layout_hash, uint32_t flags,
                                   uint64_t dataset_checksum, uint64_t dataset_rows, float temperature,
                                   uint32_t frame_delay, const char *meta_json);

cphil_status cphil_softlabels_read(const char *path, cphil_softlabels *out);
void cphil_softlabels_close(cphil_softlabels *s);
uint32_t cphil_softlabels_row(const cphil_softlabels *s, uint64_t i);
void cphil_softlabels_probs(const cphil_softlabels *s, uint64_t i, float p[CPHIL_N_LOGITS]);

/* f32 -> IEEE half (round to nearest even); the way back is core's cphil_f16_to_f32. */
uint16_t cphil_f32_to_f16(float f);

#endif
