/* fuzz_softlabels.c — libFuzzer target for the soft-label file reader (built by
 * `make fuzz_softlabels`, run bounded by tests/t_fuzz_train_files.sh).
 *
 * Each input is written to a file and read with cphil_softlabels_read; an accepted file has every
 * frame's row and probabilities read back, and they must hold what the reader promises (rows
 * before the dataset's end, probabilities in [0, 1]). Inputs whose first byte is odd are resealed
 * first (file size, body and header checksums recomputed as the writer does), so mutations of
 * counts, offsets, flags and probabilities reach the checks behind the checksums.
 * Seeds: with CPHIL_FUZZ_SEED_DIR set, LLVMFuzzerInitialize writes valid files there (a few
 * frames of teacher probabilities at temperature 2, with and without the prev-action flag). */
#include "train/distill_loss.h"
#include "train/softlabels.h"
#include "train/ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char in_path[300];

static void write_seed(const char *dir, const char *name, int frames, uint32_t flags) {
    char tmp[600], dst[600];
    snprintf(tmp, sizeof tmp, "%s.raw", in_path);
    cphil_sl_writer w;
    cphil_sl_writer_init(&w);
    float z[CPHIL_N_LOGITS], p[CPHIL_N_LOGITS];
    for (int f = 0; f < frames; f++) {
        for (int k = 0; k < CPHIL_N_LOGITS; k++) z[k] = (float)((k * 5 + f * 3) % 13) - 6.0f;
        cphil_soft_probs(z, 2.0, p);
        if (cphil_sl_writer_add(&w, (uint32_t)(3 * f), p) != CPHIL_OK) abort();
    }
    if (cphil_sl_writer_write(&w, tmp, 0x5eed, flags, 0xda7a, (uint64_t)(3 * frames + 4), 2.0f, 1,
                              "{\"teacher\":\"t.safetensors\"}") != CPHIL_OK)
        abort();
    cphil_sl_writer_free(&w);
    uint8_t *buf;
    size_t n;
    if (cphil_file_read(tmp, (size_t)1 << 24, &buf, &n) != CPHIL_OK) abort();
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    FILE *f = fopen(dst, "wb");
    if (!f) abort();
    fputc(1, f); /* mode byte: reseal (a no-op on a valid file) */
    if (fwrite(buf, 1, n, f) != n) abort();
    fclose(f);
    cphil_free(buf);
    unlink(tmp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(in_path, sizeof in_path, "%s/cphil_fuzz_sl.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    const char *seeds = getenv("CPHIL_FUZZ_SEED_DIR");
    if (seeds && *seeds) {
        if (cphil_mkdir_p(seeds) != CPHIL_OK) abort();
        write_seed(seeds, "three.seed", 3, 1);
        write_seed(seeds, "one.seed", 1, 0);
        write_seed(seeds, "empty.seed", 0, 0);
    }
    return 0;
}

static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t n = size - 1;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return 0;
    memcpy(b, data + 1, n);
    if ((data[0] & 1) && n >= CPHIL_SL_HEADER) {
        wr64(b + 96, n);
        wr64(b + 104, cphil_hash64(b + CPHIL_SL_HEADER, n - CPHIL_SL_HEADER, 0));
        wr64(b + 112, cphil_hash64(b, 112, 0));
    }
    FILE *f = fopen(in_path, "wb");
    if (!f) abort();
    if (n && fwrite(b, 1, n, f) != n) abort();
    fclose(f);
    free(b);
    cphil_softlabels s;
    if (cphil_softlabels_read(in_path, &s) == CPHIL_OK) {
        float p[CPHIL_N_LOGITS];
        for (uint64_t i = 0; i < s.n_frames; i++) {
            if ((uint64_t)cphil_softlabels_row(&s, i) + 1 + s.frame_delay >= s.dataset_rows) abort();
            cphil_softlabels_probs(&s, i, p);
            for (int k = 0; k < CPHIL_N_LOGITS; k++)
                if (!(p[k] >= 0.0f && p[k] <= 1.0f)) abort();
        }
        if (s.flags & ~1u) abort();
        cphil_softlabels_close(&s);
    }
    return 0;
}
