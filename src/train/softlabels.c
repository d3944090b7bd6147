/* softlabels.c — the soft-label file (layout in softlabels.h). */
#include "train/softlabels.h"

#include "core/safetensors.h" /* cphil_f16_to_f32 */
#include "train/ckpt.h"        /* cphil_hash64 */

#include <math.h>
#include <string.h>

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

cphil_status cphil_softlabels_read(const char *path, cphil_softlabels *o) {
    memset(o, 0, sizeof *o);
    cphil_status s = cphil_file_read(path, (size_t)1 << 36, &o->buf, &o->size);
    if (s) return s;
    const uint8_t *b = o->buf;
    size_t n = o->size;
    if (n < 8 || memcmp(b, SL_MAGIC, 8) != 0) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: not a cphil soft-label file (offset 0: magic is not CPHILSL)", path);
        goto fail;
    }
    if (n < CPHIL_SL_HEADER) {
        s = cphil_err(CPHIL_E_TRUNCATED, "%s: truncated: %zu bytes, the header alone is %d", path, n, CPHIL_SL_HEADER);
        goto fail;
    }
    if (rd32(b + 8) != CPHIL_SL_VERSION) {
        s = cphil_err(CPHIL_E_MISMATCH, "%s: soft-label version %u, this cphil reads version %u", path, rd32(b + 8),
                      CPHIL_SL_VERSION);
        goto fail;
    }
    if (cphil_hash64(b, 112, 0) != rd64(b + 112)) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: the header is damaged (header checksum mismatch)", path);
        goto fail;
    }
    uint64_t size = rd64(b + 96);
    if (size != n) {
        s = cphil_err(size > n ? CPHIL_E_TRUNCATED : CPHIL_E_FORMAT, "%s: the header says %llu bytes, the file has %zu%s",
                      path, (unsigned long long)size, n, size > n ? " (truncated)" : "");
        goto fail;
    }
    o->n_frames = rd64(b + 16);
    uint64_t off_rows = rd64(b + 64), off_probs = rd64(b + 72), off_meta = rd64(b + 80), ml = rd64(b + 88);
    if (rd32(b + 12) != CPHIL_SL_HEADER || rd32(b + 24) != CPHIL_N_LOGITS || o->n_frames > n / 4 ||
        off_rows < CPHIL_SL_HEADER || off_rows + o->n_frames * 4 > n || off_probs < off_rows + o->n_frames * 4 ||
        off_probs + o->n_frames * CPHIL_N_LOGITS * 2 > n || off_meta < off_probs + o->n_frames * CPHIL_N_LOGITS * 2 ||
        ml > n || off_meta + ml != n) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: header sizes or offsets do not fit the file (%zu bytes)", path, n);
        goto fail;
    }
    if (cphil_hash64(b + CPHIL_SL_HEADER, n - CPHIL_SL_HEADER, 0) != rd64(b + 104)) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: the data is damaged (body checksum mismatch)", path);
        goto fail;
    }
    o->flags = rd32(b + 28);
    o->layout_hash = rd64(b + 32);
    o->dataset_checksum = rd64(b + 40);
    o->dataset_rows = rd64(b + 48);
    uint32_t tb = rd32(b + 56);
    memcpy(&o->temperature, &tb, 4);
    o->frame_delay = rd32(b + 60);
    o->rows = b + off_rows;
    o->probs = b + off_probs;
    for (uint64_t i = 0; i < o->n_frames; i++)
        if ((uint64_t)rd32(o->rows + 4 * i) + 1 + o->frame_delay >= o->dataset_rows) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: frame %llu refers to dataset row %u, past the dataset's %llu rows", path,
                          (unsigned long long)i, rd32(o->rows + 4 * i), (unsigned long long)o->dataset_rows);
            goto fail;
        }
    for (uint64_t i = 0; i < o->n_frames * CPHIL_N_LOGITS; i++) {
        float v = cphil_f16_to_f32((uint16_t)(o->probs[2 * i] | o->probs[2 * i + 1] << 8));
        if (!(v >= 0.0f && v <= 1.0f)) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: probability %llu of frame %llu is %g, not in [0, 1]", path,
                          (unsigned long long)(i % CPHIL_N_LOGITS), (unsigned long long)(i / CPHIL_N_LOGITS), (double)v);
            goto fail;
        }
    }
    if (!(o->temperature > 0 && isfinite(o->temperature))) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: bad temperature %g", path, (double)o->temperature);
        goto fail;
    }
    o->meta = cphil_alloc((size_t)ml + 1);
    if (!o->meta) {
        s = cphil_err(CPHIL_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(o->meta, b + off_meta, (size_t)ml);
    o->meta[ml] = '\0';
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
