/* npy.c — .npy encode/decode and .npz (stored zip) write/read. See npy.h for the contract.
 * Deliberately not: compression (deflate), Fortran order, big-endian data, object arrays,
 * zip64 archives (single members and archives stay under 4 GiB; policies are megabytes).
 * Reference: numpy/lib/format.py (NEP 1 .npy format), PKWARE APPNOTE.TXT sections 4.3.7
 * (local header), 4.3.12 (central directory), 4.3.16 (end of central directory), 4.5.3 (zip64
 * extra field), CRC-32 polynomial 0xEDB88320 (reflected).
 */
#include "export/npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- CRC-32 -------------------------------------------------------------------------------- */
static uint32_t crc_table[256];
static bool crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    crc_ready = true;
}

uint32_t cphil_crc32(uint32_t crc, const void *data, size_t n) {
    if (!crc_ready) crc_init(); /* benign race: every thread writes the same table */
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---- dtype <-> descr ------------------------------------------------------------------------ */
static const char *descr_of(cphil_dtype dt) {
    switch (dt) {
    case CPHIL_DT_F32: return "<f4";
    case CPHIL_DT_F64: return "<f8";
    case CPHIL_DT_F16: return "<f2";
    case CPHIL_DT_I8: return "|i1";
    case CPHIL_DT_U8: return "|u1";
    case CPHIL_DT_I16: return "<i2";
    case CPHIL_DT_I32: return "<i4";
    case CPHIL_DT_I64: return "<i8";
    case CPHIL_DT_BOOL: return "|b1";
    default: return NULL;
    }
}

static bool dtype_of(const char *d, cphil_dtype *out) {
    static const struct { const char *a, *b; cphil_dtype dt; } map[] = {
        {"<f4", NULL, CPHIL_DT_F32}, {"<f8", NULL, CPHIL_DT_F64}, {"<f2", NULL, CPHIL_DT_F16},
        {"|i1", "<i1", CPHIL_DT_I8}, {"|u1", "<u1", CPHIL_DT_U8}, {"<i2", NULL, CPHIL_DT_I16},
        {"<i4", NULL, CPHIL_DT_I32}, {"<i8", NULL, CPHIL_DT_I64}, {"|b1", "<b1", CPHIL_DT_BOOL},
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(map); i++)
        if (!strcmp(d, map[i].a) || (map[i].b && !strcmp(d, map[i].b))) {
            *out = map[i].dt;
            return true;
        }
    return false;
}

void cphil_npy_array_free(cphil_npy_array *a) {
    if (!a) return;
    cphil_free(a->name);
    if (a->map_) munmap((void *)a->map_, a->map_size_);
    else cphil_free(a->data);
    a->name = NULL;
    a->data = NULL;
    a->map_ = NULL;
}

/* ---- .npy encode ---------------------------------------------------------------------------- */
/* The header (magic..'\n') for descr/shape; returns its length, 0 if it does not fit in cap. */
static size_t npy_header(char *out, size_t cap, const char *descr, int ndim, const int64_t *shape) {
    char sh[CPHIL_NPY_MAX_NDIM * 24 + 8];
    size_t k = 0;
    sh[k++] = '(';
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(sh + k, sizeof sh - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (ndim == 1) sh[k++] = ','; /* Python's repr of a 1-tuple: (3,) */
    sh[k++] = ')';
    sh[k] = '\0';
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, sh);
    size_t dl = (size_t)n;
    /* version 1.0: 10-byte preamble, total multiple of 64 */
    size_t pre = 10, total = (pre + dl + 1 + 63) / 64 * 64;
    int major = 1;
    if (total - pre > 65535) {
        pre = 12;
        total = (pre + dl + 1 + 63) / 64 * 64;
        major = 2;
    }
    if (total > cap) return 0;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (char)major;
    out[7] = 0;
    size_t hl = total - pre;
    if (major == 1) {
        out[8] = (char)(hl & 0xFF);
        out[9] = (char)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++) out[8 + i] = (char)(hl >> (8 * i));
    }
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', total - pre - dl - 1);
    out[total - 1] = '\n';
    return total;
}

static cphil_status npy_check(cphil_dtype dtype, int ndim, const int64_t *shape, size_t *nbytes, const char **descr) {
    *descr = descr_of(dtype);
    if (!*descr)
        return cphil_err(CPHIL_E_ARG, "npy: dtype %s has no NumPy equivalent (convert BF16 to F32 first)", cphil_dtype_name(dtype));
    if (ndim < 0 || ndim > CPHIL_NPY_MAX_NDIM) return cphil_err(CPHIL_E_ARG, "npy: rank %d (0..%d)", ndim, CPHIL_NPY_MAX_NDIM);
    size_t nb = cphil_dtype_size(dtype);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX || !cphil_size_mul(nb, (size_t)shape[i], &nb))
            return cphil_err(CPHIL_E_ARG, "npy: bad dimension %d (%lld)", i, (long long)shape[i]);
    *nbytes = nb;
    return CPHIL_OK;
}

cphil_status cphil_npy_encode(cphil_dtype dtype, int ndim, const int64_t *shape, const void *data,
                              uint8_t **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    size_t nb;
    const char *descr;
    cphil_status s = npy_check(dtype, ndim, shape, &nb, &descr);
    if (s) return s;
    char hdr[640];
    size_t hl = npy_header(hdr, sizeof hdr, descr, ndim, shape);
    if (!hl) return cphil_err(CPHIL_E_INTERNAL, "npy: header too long");
    size_t total;
    if (!cphil_size_add(hl, nb, &total)) return cphil_err(CPHIL_E_ARG, "npy: size overflows");
    uint8_t *o = cphil_alloc(total);
    if (!o) return cphil_err(CPHIL_E_NOMEM, "npy: out of memory (%zu bytes)", total);
    memcpy(o, hdr, hl);
    if (nb) memcpy(o + hl, data, nb);
    *buf = o;
    *size = total;
    return CPHIL_OK;
}

cphil_status cphil_npy_write(const char *path, cphil_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    size_t nb;
    const char *descr;
    cphil_status s = npy_check(dtype, ndim, shape, &nb, &descr);
    if (s) return cphil_err_prefix(s, "%s: ", path);
    char hdr[640];
    size_t hl = npy_header(hdr, sizeof hdr, descr, ndim, shape);
    cphil_atomic_file af;
    s = cphil_atomic_open(&af, path);
    if (s) return s;
    s = cphil_atomic_write(&af, hdr, hl);
    if (!s && nb) s = cphil_atomic_write(&af, data, nb);
    if (s) {
        cphil_atomic_abort(&af);
        return s;
    }
    return cphil_atomic_commit(&af);
}

/* ---- .npy decode: the header dict is a tiny subset of Python literal syntax ----------------- */
typedef struct lit_parser {
    const char *s;
    size_t n, i;
} lit_parser;

static void lp_ws(lit_parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n')) p->i++;
}

static bool lp_char(lit_parser *p, char c) {
    lp_ws(p);
    if (p->i < p->n && p->s[p->i] == c) {
        p->i++;
        return true;
    }
    return false;
}

static bool lp_str(lit_parser *p, char *out, size_t cap) {
    lp_ws(p);
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"')) return false;
    char q = p->s[p->i++];
    size_t k = 0;
    while (p->i < p->n && p->s[p->i] != q) {
        if (k + 1 >= cap || p->s[p->i] == '\\') return false;
        out[k++] = p->s[p->i++];
    }
    if (p->i >= p->n) return false;
    p->i++;
    out[k] = '\0';
    return true;
}

static cphil_status npy_bad(const char *name, const char *what) {
    return cphil_err(CPHIL_E_FORMAT, "%s: bad .npy header: %s", name, what);
}

/* borrow: out->data may point into buf (a private writable map the array then owns) when the
 * data starts 64-byte aligned, as NumPy writes it; otherwise it is copied. */
static cphil_status npy_decode(const uint8_t *buf, size_t size, const char *name, cphil_npy_array *out, bool borrow) {
    memset(out, 0, sizeof *out);
    if (!name) name = "(npy)";
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return cphil_err(size < 10 ? CPHIL_E_TRUNCATED : CPHIL_E_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic at offset 0)", name);
    int major = buf[6];
    size_t pre, hl;
    if (major == 1) {
        pre = 10;
        hl = (size_t)buf[8] | ((size_t)buf[9] << 8);
    } else if (major == 2 || major == 3) {
        if (size < 12) return cphil_err(CPHIL_E_TRUNCATED, "%s: .npy header cut short", name);
        pre = 12;
        hl = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
    } else {
        return cphil_err(CPHIL_E_UNSUPPORTED, "%s: .npy version %d.%d (1.0, 2.0 and 3.0 are supported)", name, major, buf[7]);
    }
    if (hl > size - pre) return cphil_err(CPHIL_E_TRUNCATED, "%s: .npy header length %zu runs past the end (%zu bytes)", name, hl, size);
    lit_parser p = {(const char *)buf + pre, hl, 0};
    char descr[32] = "", key[32];
    int have = 0, fortran = -1, ndim = -1;
    int64_t shape[CPHIL_NPY_MAX_NDIM];
    if (!lp_char(&p, '{')) return npy_bad(name, "expected '{'");
    while (!lp_char(&p, '}')) {
        if (!lp_str(&p, key, sizeof key)) return npy_bad(name, "expected a quoted key");
        if (!lp_char(&p, ':')) return npy_bad(name, "expected ':'");
        if (!strcmp(key, "descr")) {
            if (!lp_str(&p, descr, sizeof descr)) return npy_bad(name, "'descr' must be a simple type string like '<f4' (structured dtypes are not supported)");
            have |= 1;
        } else if (!strcmp(key, "fortran_order")) {
            lp_ws(&p);
            if (p.n - p.i >= 4 && !memcmp(p.s + p.i, "True", 4)) { fortran = 1; p.i += 4; }
            else if (p.n - p.i >= 5 && !memcmp(p.s + p.i, "False", 5)) { fortran = 0; p.i += 5; }
            else return npy_bad(name, "'fortran_order' must be True or False");
            have |= 2;
        } else if (!strcmp(key, "shape")) {
            if (!lp_char(&p, '(')) return npy_bad(name, "'shape' must be a tuple");
            ndim = 0;
            while (!lp_char(&p, ')')) {
                lp_ws(&p);
                int64_t v = 0;
                size_t st = p.i;
                while (p.i < p.n && p.s[p.i] >= '0' && p.s[p.i] <= '9') {
                    if (v > (INT64_MAX - 9) / 10) return npy_bad(name, "dimension too large");
                    v = v * 10 + (p.s[p.i++] - '0');
                }
                if (p.i < p.n && p.s[p.i] == 'L') p.i++; /* Python 2 longs */
                if (st == p.i) return npy_bad(name, "expected a dimension in 'shape'");
                if (ndim == CPHIL_NPY_MAX_NDIM) return cphil_err(CPHIL_E_UNSUPPORTED, "%s: .npy rank over %d", name, CPHIL_NPY_MAX_NDIM);
                shape[ndim++] = v;
                if (!lp_char(&p, ',')) {
                    if (!lp_char(&p, ')')) return npy_bad(name, "expected ',' or ')' in 'shape'");
                    break;
                }
            }
            have |= 4;
        } else {
            return npy_bad(name, "unknown key (expected descr, fortran_order, shape)");
        }
        if (!lp_char(&p, ',')) {
            if (!lp_char(&p, '}')) return npy_bad(name, "expected ',' or '}'");
            break;
        }
    }
    if (have != 7) return npy_bad(name, "missing 'descr', 'fortran_order' or 'shape'");
    if (fortran) return cphil_err(CPHIL_E_UNSUPPORTED, "%s: Fortran-order .npy (save with np.ascontiguousarray first)", name);
    cphil_dtype dt;
    bool is_unicode = false;
    size_t ucount = 0;
    if (descr[0] == '<' && descr[1] == 'U') {
        char *end;
        unsigned long u = strtoul(descr + 2, &end, 10);
        if (*end || u > (1u << 24)) return npy_bad(name, "bad '<U' length");
        is_unicode = true;
        ucount = u;
        dt = CPHIL_DT_U8;
    } else if (!dtype_of(descr, &dt)) {
        return cphil_err(CPHIL_E_UNSUPPORTED, "%s: .npy dtype '%s' is not supported (little-endian f2 f4 f8 i1 u1 i2 i4 i8 b1)", name, descr);
    }
    size_t esz = is_unicode ? 4 * ucount : cphil_dtype_size(dt), numel = 1;
    for (int i = 0; i < ndim; i++)
        if ((uint64_t)shape[i] > SIZE_MAX || !cphil_size_mul(numel, (size_t)shape[i], &numel))
            return npy_bad(name, "shape overflows");
    size_t nb;
    if (!cphil_size_mul(numel, esz, &nb)) return npy_bad(name, "shape overflows");
    size_t off = pre + hl;
    if (size - off != nb)
        return cphil_err(size - off < nb ? CPHIL_E_TRUNCATED : CPHIL_E_FORMAT,
                         "%s: .npy data is %zu bytes, shape x '%s' needs %zu", name, size - off, descr, nb);
    if (is_unicode) {
        /* UTF-32LE -> UTF-8 (only 0-d or 1-element string arrays, as np.savez of a str gives). */
        if (numel != 1) return cphil_err(CPHIL_E_UNSUPPORTED, "%s: string arrays with %zu elements (only single strings)", name, numel);
        char *o = cphil_alloc(4 * ucount + 1);
        if (!o) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", name);
        size_t k = 0;
        for (size_t i = 0; i < ucount; i++) {
            const uint8_t *q = buf + off + 4 * i;
            uint32_t c = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
            if (c == 0) break; /* NumPy pads short strings with NULs */
            if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
                cphil_free(o);
                return npy_bad(name, "invalid code point in '<U' string");
            }
            if (c < 0x80) o[k++] = (char)c;
            else if (c < 0x800) { o[k++] = (char)(0xC0 | (c >> 6)); o[k++] = (char)(0x80 | (c & 0x3F)); }
            else if (c < 0x10000) { o[k++] = (char)(0xE0 | (c >> 12)); o[k++] = (char)(0x80 | ((c >> 6) & 0x3F)); o[k++] = (char)(0x80 | (c & 0x3F)); }
            else { o[k++] = (char)(0xF0 | (c >> 18)); o[k++] = (char)(0x80 | ((c >> 12) & 0x3F)); o[k++] = (char)(0x80 | ((c >> 6) & 0x3F)); o[k++] = (char)(0x80 | (c & 0x3F)); }
        }
        o[k] = '\0';
        out->dtype = CPHIL_DT_U8;
        out->ndim = 1;
        out->shape[0] = (int64_t)k;
        out->numel = k;
        out->data = o;
        out->nbytes = k;
        return CPHIL_OK;
    }
    if (borrow && nb && (off % 64) == 0) {
        out->data = (void *)(buf + off);
        out->map_ = buf;
        out->map_size_ = size;
    } else {
        out->data = cphil_alloc(nb ? nb : 1);
        if (!out->data) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory (%zu bytes)", name, nb);
        if (nb) memcpy(out->data, buf + off, nb);
    }
    out->dtype = dt;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) out->shape[i] = shape[i];
    out->numel = numel;
    out->nbytes = nb;
    return CPHIL_OK;
}

cphil_status cphil_npy_decode(const uint8_t *buf, size_t size, const char *name, cphil_npy_array *out) {
    return npy_decode(buf, size, name, out, false);
}

/* The file is mapped (private, copy-on-write): the header is checked before the data is touched
 * (a 2 GB file that is not a .npy costs a page), and a valid array's data stays in the map
 * instead of being copied (a 2 GB array cost 2 GB read + 2 GB copy). */
cphil_status cphil_npy_read(const char *path, cphil_npy_array *out) {
    memset(out, 0, sizeof *out);
    int fd;
    size_t size;
    cphil_status s = cphil_file_open_regular(path, &fd, &size);
    if (s) return s;
    if (size > ((size_t)1 << 38)) {
        close(fd);
        return cphil_err(CPHIL_E_FORMAT, "%s: file is %zu bytes, larger than the 256 GiB limit", path, size);
    }
    if (size == 0) {
        close(fd);
        return npy_bad(path, "empty file");
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return cphil_err(CPHIL_E_IO, "%s: mmap failed: %s", path, strerror(errno));
    s = npy_decode(m, size, path, out, true);
    if (!out->map_) munmap(m, size);
    if (s) cphil_npy_array_free(out);
    return s;
}

/* ---- .npz writer ----------------------------------------------------------------------------- */
typedef struct npz_entry {
    char *fname;     /* "<name>.npy" */
    uint32_t crc, size, offset;
} npz_entry;

struct cphil_npz_writer {
    cphil_atomic_file af;
    npz_entry *e;
    size_t n, cap;
    uint64_t at;
};

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static unsigned get16(const uint8_t *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }

#define DOS_DATE 0x21u  /* 1980-01-01: fixed, so the same arrays give the same bytes */
#define DOS_TIME 0u

cphil_status cphil_npz_writer_open(const char *path, cphil_npz_writer **out) {
    *out = NULL;
    cphil_npz_writer *w = cphil_calloc(1, sizeof *w);
    if (!w) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", path);
    cphil_status s = cphil_atomic_open(&w->af, path);
    if (s) {
        cphil_free(w);
        return s;
    }
    *out = w;
    return CPHIL_OK;
}

void cphil_npz_writer_abort(cphil_npz_writer *w) {
    if (!w) return;
    cphil_atomic_abort(&w->af);
    for (size_t i = 0; i < w->n; i++) cphil_free(w->e[i].fname);
    cphil_free(w->e);
    cphil_free(w);
}

static cphil_status npz_add_bytes(cphil_npz_writer *w, const char *name, const uint8_t *hdr, size_t hl,
                                  const void *data, size_t nb) {
    size_t nl = strlen(name);
    if (!nl || nl > 1000 || strchr(name, '/') || strchr(name, '\\'))
        return cphil_err(CPHIL_E_ARG, "npz: bad member name \"%s\"", name);
    for (size_t i = 0; i < w->n; i++)
        if (!strncmp(w->e[i].fname, name, nl) && !strcmp(w->e[i].fname + nl, ".npy"))
            return cphil_err(CPHIL_E_ARG, "npz: duplicate member \"%s\"", name);
    uint64_t total = (uint64_t)hl + nb;
    if (total >= 0xFFFFFFFFu || w->at + 30 + nl + 4 + total >= 0xFFFFFFFFu || w->n >= 65535)
        return cphil_err(CPHIL_E_UNSUPPORTED, "npz: member \"%s\" would take the archive over 4 GiB or 65535 members (zip64 is not written)", name);
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 32;
        npz_entry *ne = cphil_realloc(w->e, w->cap * sizeof *ne, nc * sizeof *ne);
        if (!ne) return cphil_err(CPHIL_E_NOMEM, "npz: out of memory");
        w->e = ne;
        w->cap = nc;
    }
    npz_entry *e = &w->e[w->n];
    e->fname = cphil_alloc(nl + 5);
    if (!e->fname) return cphil_err(CPHIL_E_NOMEM, "npz: out of memory");
    memcpy(e->fname, name, nl);
    memcpy(e->fname + nl, ".npy", 5);
    e->crc = cphil_crc32(cphil_crc32(0, hdr, hl), data, nb);
    e->size = (uint32_t)total;
    e->offset = (uint32_t)w->at;
    w->n++;
    uint8_t lh[30];
    put32(lh, 0x04034b50u);
    put16(lh + 4, 20);        /* version needed: 2.0 */
    put16(lh + 6, 0);         /* flags */
    put16(lh + 8, 0);         /* method: stored */
    put16(lh + 10, DOS_TIME);
    put16(lh + 12, DOS_DATE);
    put32(lh + 14, e->crc);
    put32(lh + 18, e->size);  /* compressed */
    put32(lh + 22, e->size);  /* uncompressed */
    put16(lh + 26, (unsigned)(nl + 4));
    put16(lh + 28, 0);
    cphil_status s = cphil_atomic_write(&w->af, lh, 30);
    if (!s) s = cphil_atomic_write(&w->af, e->fname, nl + 4);
    if (!s) s = cphil_atomic_write(&w->af, hdr, hl);
    if (!s && nb) s = cphil_atomic_write(&w->af, data, nb);
    w->at += 30 + nl + 4 + total;
    return s;
}

cphil_status cphil_npz_writer_add(cphil_npz_writer *w, const char *name, cphil_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data) {
    size_t nb;
    const char *descr;
    cphil_status s = npy_check(dtype, ndim, shape, &nb, &descr);
    if (s) return cphil_err_prefix(s, "npz member \"%s\": ", name);
    char hdr[640];
    size_t hl = npy_header(hdr, sizeof hdr, descr, ndim, shape);
    if (!hl) return cphil_err(CPHIL_E_INTERNAL, "npy: header too long");
    return npz_add_bytes(w, name, (const uint8_t *)hdr, hl, data, nb);
}

cphil_status cphil_npz_writer_add_string(cphil_npz_writer *w, const char *name, const char *utf8) {
    /* UTF-8 -> UTF-32LE code points ('<U<n>', 0-d). Invalid UTF-8 is an argument error. */
    size_t n = strlen(utf8), cp = 0;
    uint32_t *u = cphil_calloc(n ? n : 1, 4);
    if (!u) return cphil_err(CPHIL_E_NOMEM, "npz: out of memory");
    const uint8_t *p = (const uint8_t *)utf8;
    for (size_t i = 0; i < n;) {
        uint32_t c = p[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) {
            cphil_free(u);
            return cphil_err(CPHIL_E_ARG, "npz member \"%s\": string is not valid UTF-8 (byte %zu)", name, i);
        }
        if (k > 1) c &= (0x7Fu >> k);
        for (size_t j = 1; j < k; j++) c = (c << 6) | (p[i + j] & 0x3F);
        u[cp++] = c;
        i += k;
    }
    char descr[32], hdr[640];
    snprintf(descr, sizeof descr, "<U%zu", cp ? cp : 1);
    size_t hl = npy_header(hdr, sizeof hdr, descr, 0, NULL);
    uint8_t *le = (uint8_t *)u; /* little-endian host: already UTF-32LE */
    cphil_status s = npz_add_bytes(w, name, (const uint8_t *)hdr, hl, le, 4 * (cp ? cp : 1));
    cphil_free(u);
    return s;
}

cphil_status cphil_npz_writer_close(cphil_npz_writer *w) {
    cphil_status s = CPHIL_OK;
    uint64_t cd_start = w->at, cd_size = 0;
    for (size_t i = 0; i < w->n && !s; i++) {
        const npz_entry *e = &w->e[i];
        size_t fl = strlen(e->fname);
        uint8_t c[46];
        put32(c, 0x02014b50u);
        put16(c + 4, (3u << 8) | 20u); /* made by: Unix, 2.0 */
        put16(c + 6, 20);
        put16(c + 8, 0);
        put16(c + 10, 0);
        put16(c + 12, DOS_TIME);
        put16(c + 14, DOS_DATE);
        put32(c + 16, e->crc);
        put32(c + 20, e->size);
        put32(c + 24, e->size);
        put16(c + 28, (unsigned)fl);
        put16(c + 30, 0);
        put16(c + 32, 0);
        put16(c + 34, 0);
        put16(c + 36, 0);
        put32(c + 38, 0100644u << 16); /* regular file, rw-r--r-- */
        put32(c + 42, e->offset);
        s = cphil_atomic_write(&w->af, c, 46);
        if (!s) s = cphil_atomic_write(&w->af, e->fname, fl);
        cd_size += 46 + fl;
    }
    if (!s && cd_start + cd_size >= 0xFFFFFFFFu) s = cphil_err(CPHIL_E_UNSUPPORTED, "npz: archive over 4 GiB");
    if (!s) {
        uint8_t eo[22];
        put32(eo, 0x06054b50u);
        put16(eo + 4, 0);
        put16(eo + 6, 0);
        put16(eo + 8, (unsigned)w->n);
        put16(eo + 10, (unsigned)w->n);
        put32(eo + 12, (uint32_t)cd_size);
        put32(eo + 16, (uint32_t)cd_start);
        put16(eo + 20, 0);
        s = cphil_atomic_write(&w->af, eo, 22);
    }
    if (!s) s = cphil_atomic_commit(&w->af);
    else cphil_atomic_abort(&w->af);
    for (size_t i = 0; i < w->n; i++) cphil_free(w->e[i].fname);
    cphil_free(w->e);
    cphil_free(w);
    return s;
}

/* ---- .npz reader ------------------------------------------------------------------------------ */
void cphil_npz_free(cphil_npy_array *arrays, size_t count) {
    if (!arrays) return;
    for (size_t i = 0; i < count; i++) cphil_npy_array_free(&arrays[i]);
    cphil_free(arrays);
}

const cphil_npy_array *cphil_npz_find(const cphil_npy_array *arrays, size_t count, const char *name) {
    for (size_t i = 0; i < count; i++)
        if (arrays[i].name && !strcmp(arrays[i].name, name)) return &arrays[i];
    return NULL;
}

cphil_status cphil_npz_decode(const uint8_t *buf, size_t size, const char *name,
                              cphil_npy_array **arrays, size_t *count) {
    *arrays = NULL;
    *count = 0;
    if (!name) name = "(npz)";
    if (size < 22) return cphil_err(CPHIL_E_TRUNCATED, "%s: %zu bytes, too short for a zip archive", name, size);
    /* End of central directory: the last "PK\5\6" within the final 22 + 65535 bytes. */
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0, eocd = SIZE_MAX;
    for (size_t i = size - 22 + 1; i-- > lo;)
        if (get32(buf + i) == 0x06054b50u && i + 22 + get16(buf + i + 20) == size) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX) return cphil_err(CPHIL_E_FORMAT, "%s: no zip end-of-central-directory record: not an .npz (or truncated)", name);
    unsigned n = get16(buf + eocd + 10);
    uint32_t cd_size = get32(buf + eocd + 12), cd_off = get32(buf + eocd + 16);
    if (n == 0xFFFF || cd_off == 0xFFFFFFFFu)
        return cphil_err(CPHIL_E_UNSUPPORTED, "%s: zip64 archive (over 65535 members or 4 GiB) is not supported", name);
    if ((uint64_t)cd_off + cd_size > eocd)
        return cphil_err(CPHIL_E_FORMAT, "%s: central directory [%u, +%u) runs past its end record at %zu", name, cd_off, cd_size, eocd);
    cphil_npy_array *a = cphil_calloc(n ? n : 1, sizeof *a);
    if (!a) return cphil_err(CPHIL_E_NOMEM, "%s: out of memory", name);
    cphil_status s = CPHIL_OK;
    size_t at = cd_off, end = (size_t)cd_off + cd_size, got = 0;
    for (unsigned i = 0; i < n && !s; i++) {
        if (end - at < 46 || get32(buf + at) != 0x02014b50u) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: central directory entry %u at offset %zu is damaged", name, i, at);
            break;
        }
        const uint8_t *c = buf + at;
        unsigned flags = get16(c + 8), method = get16(c + 10), fl = get16(c + 28), xl = get16(c + 30), cl = get16(c + 32);
        uint32_t crc = get32(c + 16);
        uint64_t csize = get32(c + 20), usize = get32(c + 24), loff = get32(c + 42);
        if ((size_t)46 + fl + xl + cl > end - at) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: central directory entry %u at offset %zu runs past the directory", name, i, at);
            break;
        }
        const char *fname = (const char *)c + 46;
        /* zip64 extra field (id 1): the 0xFFFFFFFF fields, in order usize, csize, offset. */
        for (size_t x = 0; x + 4 <= xl;) {
            unsigned id = get16(c + 46 + fl + x), len = get16(c + 46 + fl + x + 2);
            if (x + 4 + len > xl) break;
            if (id == 1) {
                const uint8_t *q = c + 46 + fl + x + 4;
                size_t k = 0;
                if (usize == 0xFFFFFFFFu && k + 8 <= len) { usize = get64(q + k); k += 8; }
                if (csize == 0xFFFFFFFFu && k + 8 <= len) { csize = get64(q + k); k += 8; }
                if (loff == 0xFFFFFFFFu && k + 8 <= len) { loff = get64(q + k); k += 8; }
            }
            x += 4 + len;
        }
        at += 46 + fl + xl + cl;
        if (fl < 5 || memcmp(fname + fl - 4, ".npy", 4) != 0) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: member \"%.*s\" is not a .npy", name, (int)fl, fname);
            break;
        }
        if (method != 0 || (flags & 1)) {
            s = cphil_err(CPHIL_E_UNSUPPORTED, "%s: member \"%.*s\" is %s (only stored members, as numpy.savez writes; "
                          "re-save with np.savez instead of np.savez_compressed)", name, (int)fl, fname,
                          (flags & 1) ? "encrypted" : "compressed");
            break;
        }
        if (csize != usize || loff > size || size - loff < 30 || get32(buf + loff) != 0x04034b50u) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: member \"%.*s\": bad local header at offset %llu", name, (int)fl, fname, (unsigned long long)loff);
            break;
        }
        uint64_t doff = loff + 30 + get16(buf + loff + 26) + get16(buf + loff + 28);
        if (doff > size || size - doff < usize) {
            s = cphil_err(CPHIL_E_TRUNCATED, "%s: member \"%.*s\": data runs past the end of the file", name, (int)fl, fname);
            break;
        }
        const uint8_t *d = buf + doff;
        uint32_t real = cphil_crc32(0, d, (size_t)usize);
        if (real != crc) {
            s = cphil_err(CPHIL_E_FORMAT, "%s: member \"%.*s\": CRC-32 mismatch (stored %08x, data %08x): damaged file",
                          name, (int)fl, fname, crc, real);
            break;
        }
        char mname[1024];
        snprintf(mname, sizeof mname, "%s:%.*s", name, (int)fl, fname);
        s = cphil_npy_decode(d, (size_t)usize, mname, &a[got]);
        if (s) break;
        a[got].name = cphil_alloc(fl - 4 + 1);
        if (!a[got].name) {
            got++;
            s = cphil_err(CPHIL_E_NOMEM, "%s: out of memory", name);
            break;
        }
        memcpy(a[got].name, fname, fl - 4);
        a[got].name[fl - 4] = '\0';
        got++;
    }
    if (s) {
        cphil_npz_free(a, got);
        return s;
    }
    *arrays = a;
    *count = got;
    return CPHIL_OK;
}

cphil_status cphil_npz_read(const char *path, cphil_npy_array **arrays, size_t *count) {
    *arrays = NULL;
    *count = 0;
    const uint8_t *buf;
    size_t size;
    cphil_status s = cphil_file_map(path, (size_t)1 << 38, &buf, &size); /* headers first, then members */
    if (s) return s;
    s = cphil_npz_decode(buf, size, path, arrays, count);
    cphil_file_unmap(buf, size);
    return s;
}
