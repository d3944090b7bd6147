/* softlabels.c — the soft-label file (layout in softlabels.h). */
#include "train/softlabels.h"

#include "core/safetensors.h" /* cphil_f16_to_f32 */
#include "train/ckpt.h"        /* cphil_hash64 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char SL_MAGIC[8] = {'C', 'P', 'H', 'I', 'L', 'S', 'L', 0};

static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

uint16_t cphil_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0)); /* inf / nan */
    int ex = (int)e - 127 + 15;
    if (ex >= 31) return (uint16_t)(sign | 0x7c00u);                       /* overflow -> inf */
    if (ex <= 0) {                                                          /* subnormal or zero */
        if (ex < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int shift = 14 - ex;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)ex << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into the exponent: fine */
    return (uint16_t)(sign | h);
}

void cphil_sl_writer_init(cphil_sl_writer *w) { memset(w, 0, sizeof *w); }

void cphil_sl_writer_free(cphil_sl_writer *w) {
    cphil_free(w->rows);
    cphil_free(w->probs);
    memset(w, 0, sizeof *w);
}

cphil_status cphil_sl_writer_add(cphil_sl_writer *w, uint32_t row, const float p[CPHIL_N_LOGITS]) {
    if (w->n == w->cap) {
        uint64_t nc = w->cap ? w->cap * 2 : 4096;
        uint32_t *r = cphil_realloc(w->rows, w->cap * sizeof(uint32_t), nc * sizeof(uint32_t));
        if (!r) return cphil_err(CPHIL_E_NOMEM, "soft labels: out of memory");
        w->rows = r;
        uint16_t *q = cphil_realloc(w->probs, w->cap * CPHIL_N_LOGITS * sizeof(uint16_t),
                                    nc * CPHIL_N_LOGITS * sizeof(uint16_t));
        if (!q) return cphil_err(CPHIL_E_NOMEM, "soft labels: out of memory");
        w->probs = q;
        w->cap = nc;
    }
    w->rows[w->n] = row;
    for (int k = 0; k < CPHIL_N_LOGITS; k++) w->probs[w->n * CPHIL_N_LOGITS + k] = cphil_f32_to_f16(p[k]);
    w->n++;
    return CPHIL_OK;
}

cphil_status cphil_sl_writer_write(const cphil_sl_writer *w, const char *path, uint64_t layout_hash, uint32_t flags,
                                   uint64_t dataset_checksum, uint64_t dataset_rows, float temperature,
                                   uint32_t frame_delay, const char *meta_json) {
    if (!meta_json) meta_json = "{}";
    size_t ml = strlen(meta_json);
    uint64_t off_rows = CPHIL_SL_HEADER, rows_bytes = w->n * 4, off_probs = off_rows + ((rows_bytes + 7) & ~7ull);
    uint64_t probs_bytes = w->n * CPHIL_N_LOGITS * 2, off_meta = off_probs + ((probs_bytes + 7) & ~7ull);
    uint64_t size = off_meta + ml;
    uint8_t *buf = cphil_calloc((size_t)size, 1);
    if (!buf) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory (%llu bytes)", path, (unsigned long long)size);
    for (uint64_t i = 0; i < w->n; i++) wr32(buf + off_rows + 4 * i, w->rows[i]);
    for (uint64_t i = 0; i < w->n * CPHIL_N_LOGITS; i++) {
        buf[off_probs + 2 * i] = (uint8_t)(w->probs[i] & 0xff);
        buf[off_probs + 2 * i + 1] = (uint8_t)(w->probs[i] >> 8);
    }
    memcpy(buf + off_meta, meta_json, ml);
    memcpy(buf, SL_MAGIC, 8);
    wr32(buf + 8, CPHIL_SL_VERSION);
    wr32(buf + 12, CPHIL_SL_HEADER);
    wr64(buf + 16, w->n);
    wr32(buf + 24, CPHIL_N_LOGITS);
    wr32(buf + 28, flags);
    wr64(buf + 32, layout_hash);
    wr64(buf + 40, dataset_checksum);
    wr64(buf + 48, dataset_rows);
    uint32_t tb;
    memcpy(&tb, &temperature, 4);
    wr32(buf + 56, tb);
    wr32(buf + 60, frame_delay);
    wr64(buf + 64, off_rows);
    wr64(buf + 72, off_probs);
    wr64(buf + 80, off_meta);
    wr64(buf + 88, ml);
    wr64(buf + 96, size);
    wr64(buf + 104, cphil_hash64(buf + CPHIL_SL_HEADER, (size_t)(size - CPHIL_SL_HEADER), 0));
    wr64(buf + 112, cphil_hash64(buf, 112, 0));
    cphil_status s = cphil_file_write_atomic(path, buf, (size_t)size);
    cphil_free(buf);
    return s;
}

void cphil_softlabels_close(cphil_softlabels *s) {
    if (!s) return;
    cphil_free(s->buf);
    cphil_free(s->meta);
    memset(s, 0, sizeof *s);
}

/* The header's fields, checked against the file's size before any of the body is read. */
typedef struct sl_header {
    uint64_t n_frames, off_rows, off_probs, off_meta, meta_len;
} sl_header;

#define SL_KNOWN_FLAGS 1u /* bit 0: prev_action layout */
#define SL_MAX_FRAME_DELAY 600u /* the batcher's limit */

/* Check the 128-byte header h of a file of n bytes. Every offset is compared with what is left
 * of the file after it (never "offset + size <= n", which wraps for offsets near 2^64). */
static cphil_status sl_check_header(const char *path, const uint8_t *h, uint64_t n, sl_header *out) {
    if (n < 8 || memcmp(h, SL_MAGIC, 8) != 0)
        return cphil_err(CPHIL_E_FORMAT, "%s: not a cphil soft-label file (offset 0: magic is not CPHILSL)", path);
    if (n < CPHIL_SL_HEADER)
        return cphil_err(CPHIL_E_TRUNCATED, "%s: truncated: %llu bytes, the header alone is %d", path,
                         (unsigned long long)n, CPHIL_SL_HEADER);
    if (rd32(h + 8) != CPHIL_SL_VERSION)
        return cphil_err(CPHIL_E_MISMATCH, "%s: soft-label version %u, this cphil reads version %u", path, rd32(h + 8),
                         CPHIL_SL_VERSION);
    if (cphil_hash64(h, 112, 0) != rd64(h + 112))
        return cphil_err(CPHIL_E_FORMAT, "%s: the header is damaged (header checksum mismatch)", path);
    uint64_t size = rd64(h + 96);
    if (size != n)
        return cphil_err(size > n ? CPHIL_E_TRUNCATED : CPHIL_E_FORMAT, "%s: the header says %llu bytes, the file has %llu%s",
                         path, (unsigned long long)size, (unsigned long long)n, size > n ? " (truncated)" : "");
    if (rd32(h + 12) != CPHIL_SL_HEADER || rd32(h + 24) != CPHIL_N_LOGITS)
        return cphil_err(CPHIL_E_FORMAT, "%s: offset 12/24: header size %u and %u probabilities a frame (expected %d and %d)",
                         path, rd32(h + 12), rd32(h + 24), CPHIL_SL_HEADER, CPHIL_N_LOGITS);
    uint32_t flags = rd32(h + 28);
    if (flags & ~SL_KNOWN_FLAGS)
        return cphil_err(CPHIL_E_FORMAT, "%s: offset 28: unknown flag bits 0x%x (this cphil knows 0x%x: made by a newer "
                                         "version, or damaged)", path, flags & ~SL_KNOWN_FLAGS, SL_KNOWN_FLAGS);
    if (rd64(h + 120) != 0) return cphil_err(CPHIL_E_FORMAT, "%s: offset 120: the reserved word is not 0", path);
    uint32_t tb = rd32(h + 56);
    float T;
    memcpy(&T, &tb, 4);
    if (!(T > 0 && isfinite(T))) return cphil_err(CPHIL_E_FORMAT, "%s: offset 56: bad temperature %g", path, (double)T);
    if (rd32(h + 60) > SL_MAX_FRAME_DELAY)
        return cphil_err(CPHIL_E_FORMAT, "%s: offset 60: frame delay %u (at most %u)", path, rd32(h + 60), SL_MAX_FRAME_DELAY);
    sl_header x = {rd64(h + 16), rd64(h + 64), rd64(h + 72), rd64(h + 80), rd64(h + 88)};
    const uint64_t per_frame = 4 + CPHIL_N_LOGITS * 2;
    const char *bad = NULL;
    if (x.n_frames > (n - CPHIL_SL_HEADER) / per_frame) bad = "the frame count";
    else if (x.off_rows < CPHIL_SL_HEADER || x.off_rows > n || x.n_frames * 4 > n - x.off_rows) bad = "the rows offset";
    else if (x.off_probs < x.off_rows + x.n_frames * 4 || x.off_probs > n ||
             x.n_frames * CPHIL_N_LOGITS * 2 > n - x.off_probs)
        bad = "the probabilities offset";
    else if (x.off_meta < x.off_probs + x.n_frames * CPHIL_N_LOGITS * 2 || x.off_meta > n || x.meta_len != n - x.off_meta)
        bad = "the metadata offset or length";
    if (bad)
        return cphil_err(CPHIL_E_FORMAT,
                         "%s: %s does not fit the file (%llu bytes; frames %llu, rows at %llu, probabilities at %llu, "
                         "metadata at %llu, %llu bytes)",
                         path, bad, (unsigned long long)n, (unsigned long long)x.n_frames, (unsigned long long)x.off_rows,
                         (unsigned long long)x.off_probs, (unsigned long long)x.off_meta, (unsigned long long)x.meta_len);
    *out = x;
    return CPHIL_OK;
}

/* Read the header alone (a 2 GB file that is not a soft-label file is refused after 128 bytes). */
static cphil_status sl_peek(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return cphil_err(CPHIL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cphil_err(CPHIL_E_IO, "%s: %s, expected a soft-label file", path,
                         S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
    FILE *f = fopen(path, "rb");
    if (!f) return cphil_err(CPHIL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t h[CPHIL_SL_HEADER] = {0};
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    sl_header x;
    /* a short read is judged on what is there: magic first, then "truncated" */
    return sl_check_header(path, h, got < sizeof h ? got : (uint64_t)sb.st_size, &x);
}

cphil_status cphil_softlabels_read(const char *path, cphil_softlabels *o) {
    memset(o, 0, sizeof *o);
    cphil_status s = sl_peek(path);
    if (s) return s;
    if ((s = cphil_file_read(path, (size_t)1 << 36, &o->buf, &o->size)) != CPHIL_OK) return s;
    const uint8_t *b = o->buf;
    size_t n = o->size;
    sl_header x;
    /* again on the bytes read: the file may have changed since the peek */
    if ((s = sl_check_header(path, b, n, &x)) != CPHIL_OK) goto fail;
    if (cphil_hash64(b + CPHIL_SL_HEADER, n - CPHIL_SL_HEADER, 0) != rd64(b + 104)) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: the data is damaged (body checksum mismatch)", path);
        goto fail;
    }
    o->n_frames = x.n_frames;
    o->flags = rd32(b + 28);
    o->layout_hash = rd64(b + 32);
    o->dataset_checksum = rd64(b + 40);
    o->dataset_rows = rd64(b + 48);
    uint32_t tb = rd32(b + 56);
    memcpy(&o->temperature, &tb, 4);
    o->frame_delay = rd32(b + 60);
    o->rows = b + x.off_rows;
    o->probs = b + x.off_probs;
    for (uint64_t i = 0; i < o->n_frames; i++)
        if ((uint64_t)rd32(o->rows + 4 * i) + 1 + o->frame_delay >= o->dataset_rows) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: frame %llu refers to dataset row %u, past the dataset's %llu rows", path,
                          (unsigned long long)i, rd32(o->rows + 4 * i), (unsigned long long)o->dataset_rows);
            goto fail;
        }
    for (uint64_t f = 0; f < o->n_frames; f++) {
        float p[CPHIL_N_LOGITS];
        cphil_softlabels_probs(o, f, p);
        for (int k = 0; k < CPHIL_N_LOGITS; k++)
            if (!(p[k] >= 0.0f && p[k] <= 1.0f)) {
                s = cphil_err(CPHIL_E_FORMAT, "%s: probability %d of frame %llu is %g, not in [0, 1]", path, k,
                              (unsigned long long)f, (double)p[k]);
                goto fail;
            }
        /* each categorical head is a softmax: its probabilities sum to 1 (f16 rounds each of at
         * most 17 values by <= 2^-11 relative, so 0.02 is loose); all 0 or all 1 is no distribution */
        for (int hd = 1; hd < CPHIL_TR_N_HEADS; hd++) {
            int lo = cphil_head_offset[hd], hi = hd + 1 < CPHIL_TR_N_HEADS ? cphil_head_offset[hd + 1] : CPHIL_N_LOGITS;
            double sum = 0;
            for (int k = lo; k < hi; k++) sum += p[k];
            if (fabs(sum - 1.0) > 0.02) {
                s = cphil_err(CPHIL_E_FORMAT,
                              "%s: frame %llu: the %s probabilities sum to %g, not 1 (not a distribution: a damaged "
                              "or hand-made file)",
                              path, (unsigned long long)f, cphil_head_names[hd], sum);
                goto fail;
            }
        }
    }
    o->meta = cphil_alloc((size_t)x.meta_len + 1);
    if (!o->meta) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(o->meta, b + x.off_meta, (size_t)x.meta_len);
    o->meta[x.meta_len] = '\0';
    return CPHIL_OK;
fail:
    cphil_softlabels_close(o);
    return s;
}

uint32_t cphil_softlabels_row(const cphil_softlabels *s, uint64_t i) { return rd32(s->rows + 4 * i); }

void cphil_softlabels_probs(const cphil_softlabels *s, uint64_t i, float p[CPHIL_N_LOGITS]) {
    const uint8_t *q = s->probs + i * CPHIL_N_LOGITS * 2;
    for (int k = 0; k < CPHIL_N_LOGITS; k++) p[k] = cphil_f16_to_f32((uint16_t)(q[2 * k] | q[2 * k + 1] << 8));
}
