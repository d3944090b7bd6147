/* ckpt.c — the checkpoint container (see ckpt.h for the byte layout) and cphil_hash64.
 * Deliberately not here: what the sections mean (trainer.c) and compression (checkpoints are
 * written rarely and read once; plain bytes keep resume exact and the format trivial). */
#include "train/ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char CKPT_MAGIC[8] = {'C', 'P', 'H', 'I', 'L', 'C', 'K', 'P'};
static const char CKPT_END[8] = {'C', 'K', 'P', 'T', 'E', 'N', 'D', '1'};

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t cphil_hash64(const void *data, size_t n, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (n + 1));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h ^= mix64(rd64(p + i) + 0x9e3779b97f4a7c15ull);
        h = (h << 27 | h >> 37) * 0x100000001b3ull + 0x52dce729;
    }
    uint64_t t = 0;
    for (size_t k = 0; i + k < n; k++) t |= (uint64_t)p[i + k] << (8 * k);
    h ^= mix64(t ^ 0x2545f4914f6cdd1dull);
    return mix64(h);
}

static size_t pad8(size_t n) { return (8 - (n & 7)) & 7; }

cphil_status cphil_ckpt_write(const char *path, const char *meta_json, const cphil_ckpt_section *secs,
                              int n_secs) {
    if (n_secs < 0 || n_secs > CPHIL_CKPT_MAX_SECTIONS)
        return cphil_err(CPHIL_E_ARG, "%s: %d sections (at most %d)", path, n_secs, CPHIL_CKPT_MAX_SECTIONS);
    if (!meta_json) meta_json = "{}";
    static const uint8_t zeros[8] = {0};
    cphil_atomic_file af;
    cphil_status s = cphil_atomic_open(&af, path);
    if (s) return s;
    uint64_t h = 0x43504849; /* manifest hash, chained */
    uint64_t body = 0;
/* PUT writes bytes; PUTH also chains them into the manifest hash h (header, metadata, section
 * names, sizes and data hashes: everything but the data, which has its own hash). */
#define PUT(ptr, len)                                                        \
    do {                                                                     \
        size_t _n = (len);                                                   \
        if ((s = cphil_atomic_write(&af, (ptr), _n)) != CPHIL_OK) goto fail; \
        body += _n;                                                          \
    } while (0)
#define PUTH(ptr, len)                  \
    do {                                \
        PUT(ptr, len);                  \
        h = cphil_hash64((ptr), (len), h); \
    } while (0)
    uint8_t hdr[24];
    memcpy(hdr, CKPT_MAGIC, 8);
    wr32(hdr + 8, CPHIL_CKPT_VERSION);
    wr32(hdr + 12, (uint32_t)n_secs);
    size_t ml = strlen(meta_json);
    wr64(hdr + 16, ml);
    PUTH(hdr, 24);
    PUTH(meta_json, ml);
    PUT(zeros, pad8(ml));
    for (int i = 0; i < n_secs; i++) {
        size_t nl = strlen(secs[i].name);
        if (nl == 0 || nl > CPHIL_CKPT_MAX_NAME) {
            s = cphil_err(CPHIL_E_ARG, "%s: section name '%s' is empty or too long", path, secs[i].name);
            goto fail;
        }
        uint8_t b[4];
        wr32(b, (uint32_t)nl);
        PUT(b, 4);
        PUTH(secs[i].name, nl);
        PUT(zeros, pad8(4 + nl));
        uint8_t sh[16];
        wr64(sh, secs[i].size);
        wr64(sh + 8, cphil_hash64(secs[i].data, secs[i].size, 0));
        PUTH(sh, 16);
        if (secs[i].size) PUT(secs[i].data, secs[i].size);
        PUT(zeros, pad8(secs[i].size));
    }
#undef PUTH
#undef PUT
    uint8_t tr[24];
    wr64(tr, body);
    wr64(tr + 8, h);
    memcpy(tr + 16, CKPT_END, 8);
    if ((s = cphil_atomic_write(&af, tr, 24)) != CPHIL_OK) goto fail;
    return cphil_atomic_commit(&af);
fail:
    cphil_atomic_abort(&af);
    return s;
}

void cphil_ckpt_close(cphil_ckpt *c) {
    if (!c) return;
    cphil_free(c->buf);
    cphil_free(c->meta);
    memset(c, 0, sizeof *c);
}

/* Check the 24-byte header and the 24-byte trailer before reading the body, so that a large
 * file that is not a checkpoint (or a truncated one) is refused after 48 bytes, not after
 * reading it whole. */
static cphil_status ckpt_peek(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return cphil_err(CPHIL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return cphil_err(CPHIL_E_IO, "%s: %s, expected a checkpoint file", path,
                         S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
    FILE *f = fopen(path, "rb");
    if (!f) return cphil_err(CPHIL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t h[24], t[24];
    size_t n = (size_t)sb.st_size, got = fread(h, 1, n < 24 ? n : 24, f);
    cphil_status s = CPHIL_OK;
    if (got < 8 || memcmp(h, CKPT_MAGIC, 8) != 0)
        s = cphil_err(CPHIL_E_FORMAT, "%s: not a cphil checkpoint (offset 0: magic is not CPHILCKP)", path);
    else if (n < 48)
        s = cphil_err(CPHIL_E_TRUNCATED, "%s: truncated checkpoint (%zu bytes, header and trailer need 48)", path, n);
    else if (rd32(h + 8) != CPHIL_CKPT_VERSION)
        s = cphil_err(CPHIL_E_MISMATCH, "%s: checkpoint version %u, this cphil reads version %u", path, rd32(h + 8),
                      CPHIL_CKPT_VERSION);
    else if (fseeko(f, (off_t)(n - 24), SEEK_SET) != 0 || fread(t, 1, 24, f) != 24)
        s = cphil_err(CPHIL_E_IO, "%s: cannot read the trailer at offset %zu", path, n - 24);
    else if (memcmp(t + 16, CKPT_END, 8) != 0)
        s = cphil_err(CPHIL_E_TRUNCATED,
                      "%s: truncated or damaged checkpoint: the end marker is missing at offset %zu "
                      "(the write was interrupted? use the _best checkpoint or an earlier copy)",
                      path, n - 8);
    else if (rd64(t) != n - 24)
        s = cphil_err(CPHIL_E_TRUNCATED, "%s: checkpoint says its body is %llu bytes but the file holds %zu", path,
                      (unsigned long long)rd64(t), n - 24);
    fclose(f);
    return s;
}

cphil_status cphil_ckpt_read(const char *path, cphil_ckpt *c) {
    memset(c, 0, sizeof *c);
    cphil_status s = ckpt_peek(path);
    if (s) return s;
    s = cphil_file_read(path, (size_t)1 << 36, &c->buf, &c->size);
    if (s) return s;
    const uint8_t *b = c->buf;
    size_t n = c->size;
    if (n < 8 || memcmp(b, CKPT_MAGIC, 8) != 0) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: not a cphil checkpoint (offset 0: magic is not CPHILCKP)", path);
        goto fail;
    }
    if (n < 24 + 24) {
        s = cphil_err(CPHIL_E_TRUNCATED, "%s: truncated checkpoint (%zu bytes, header and trailer need 48)", path, n);
        goto fail;
    }
    if (memcmp(b + n - 8, CKPT_END, 8) != 0) {
        s = cphil_err(CPHIL_E_TRUNCATED,
                      "%s: truncated or damaged checkpoint: the end marker is missing at offset %zu "
                      "(the write was interrupted? use the _best checkpoint or an earlier copy)",
                      path, n - 8);
        goto fail;
    }
    uint64_t body = rd64(b + n - 24);
    if (body != n - 24) {
        s = cphil_err(CPHIL_E_TRUNCATED, "%s: checkpoint says its body is %llu bytes but the file holds %zu",
                      path, (unsigned long long)body, n - 24);
        goto fail;
    }
    uint32_t ver = rd32(b + 8);
    if (ver != CPHIL_CKPT_VERSION) {
        s = cphil_err(CPHIL_E_MISMATCH, "%s: checkpoint version %u, this cphil reads version %u", path, ver,
                      CPHIL_CKPT_VERSION);
        goto fail;
    }
    uint32_t ns = rd32(b + 12);
    if (ns > CPHIL_CKPT_MAX_SECTIONS) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: offset 12: %u sections (at most %d)", path, ns, CPHIL_CKPT_MAX_SECTIONS);
        goto fail;
    }
    /* Verify the per-section hashes first, so the message can name the damaged section; then
     * the whole-body hash catches damage in padding and headers. */
    size_t off = 16, end = n - 24;
    uint64_t h = cphil_hash64(b, 24, 0x43504849);
    uint64_t ml = rd64(b + off);
    off += 8;
    if (ml > end - off) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: offset 16: metadata length %llu runs past the end", path,
                      (unsigned long long)ml);
        goto fail;
    }
    c->meta = cphil_alloc((size_t)ml + 1);
    if (!c->meta) {
        s = cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(c->meta, b + off, (size_t)ml);
    c->meta[ml] = '\0';
    h = cphil_hash64(b + off, (size_t)ml, h);
    off += (size_t)ml + pad8((size_t)ml);
    for (uint32_t i = 0; i < ns; i++) {
        if (off + 4 > end) goto trunc;
        uint32_t nl = rd32(b + off);
        if (nl == 0 || nl > CPHIL_CKPT_MAX_NAME) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: offset %zu: bad section name length %u", path, off, nl);
            goto fail;
        }
        off += 4;
        if (nl > end - off) goto trunc;
        memcpy(c->sec[i].name, b + off, nl);
        c->sec[i].name[nl] = '\0';
        if (memchr(c->sec[i].name, '\0', nl)) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: offset %zu: section name holds a NUL byte", path, off);
            goto fail;
        }
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(c->sec[k].name, c->sec[i].name)) {
                s = cphil_err(CPHIL_E_FORMAT, "%s: offset %zu: section '%s' appears twice", path, off,
                              c->sec[i].name);
                goto fail;
            }
        h = cphil_hash64(b + off, nl, h);
        off += nl + pad8(4 + nl);
        if (off + 16 > end) goto trunc;
        uint64_t sz = rd64(b + off), hh = rd64(b + off + 8);
        h = cphil_hash64(b + off, 16, h);
        off += 16;
        if (sz > end - off) goto trunc;
        c->sec[i].data = b + off;
        c->sec[i].size = sz;
        if (cphil_hash64(b + off, (size_t)sz, 0) != hh) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: section '%s' at offset %zu is corrupt (checksum mismatch)", path,
                          c->sec[i].name, off);
            goto fail;
        }
        off += (size_t)sz + pad8((size_t)sz);
        if (off > end) goto trunc;
        c->n = (int)i + 1;
    }
    if (off != end) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: %zu unexpected bytes after the last section at offset %zu", path,
                      end - off, off);
        goto fail;
    }
    if (h != rd64(b + n - 16)) {
        s = cphil_err(CPHIL_E_FORMAT, "%s: checkpoint header or metadata is corrupt (manifest checksum mismatch)",
                      path);
        goto fail;
    }
    return CPHIL_OK;
trunc:
    s = cphil_err(CPHIL_E_TRUNCATED, "%s: truncated or damaged checkpoint near offset %zu", path, off);
fail:
    cphil_ckpt_close(c);
    return s;
}

const void *cphil_ckpt_find(const cphil_ckpt *c, const char *name, uint64_t *size) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->sec[i].name, name)) {
            if (size) *size = c->sec[i].size;
            return c->sec[i].data;
        }
    return NULL;
}

cphil_status cphil_ckpt_get(const cphil_ckpt *c, const char *path, const char *name, uint64_t size,
                            const void **data) {
    uint64_t got = 0;
    const void *d = cphil_ckpt_find(c, name, &got);
    if (!d && size)
        return cphil_err(CPHIL_E_MISMATCH, "%s: checkpoint has no section '%s' (made by another model or version?)",
                         path, name);
    if (got != size)
        return cphil_err(CPHIL_E_MISMATCH,
                         "%s: section '%s' holds %llu bytes, this model needs %llu (checkpoint of a different model)",
                         path, name, (unsigned long long)got, (unsigned long long)size);
    *data = d;
    return CPHIL_OK;
}
