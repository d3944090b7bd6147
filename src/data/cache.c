/* cache.c — the dataset cache file: open (mmap, validate every header field, layout and ids),
 * row access and the checksum. The builder is in build.c, the batcher in batcher.c; the format
 * is in docs/data.md. Deliberately: no write here, no byte swapping (the format is the x86-64
 * little-endian layout; a big-endian host is refused by the magic/version check).
 */
#include "data/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(cphil_ds_header) == CPHIL_DS_HEADER_SIZE, "header is 256 bytes");
_Static_assert(sizeof(cphil_ds_entry) == 64, "entry is 64 bytes");
_Static_assert(sizeof(cphil_ds_target) == 8, "target is 8 bytes");

/* ---- checksum: 8-byte words, h = rotl(h ^ w, 29) * K, then a final mix with the length ---- */
#define HK 0x9E3779B97F4A7C15ull
static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t step(uint64_t h, uint64_t w) { return rotl(h ^ w, 29) * HK; }

void cphil_ds_hash_init(cphil_ds_hasher *s) { memset(s, 0, sizeof *s), s->h = 0x243F6A8885A308D3ull; }

void cphil_ds_hash_update(cphil_ds_hasher *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->total += n;
    while (n && s->n_carry) { /* finish a partial word */
        s->carry |= (uint64_t)*p++ << (8 * s->n_carry);
        n--;
        if (++s->n_carry == 8) {
            s->h = step(s->h, s->carry);
            s->carry = 0;
            s->n_carry = 0;
        }
    }
    uint64_t h = s->h;
    /* four independent lanes would be faster; one lane runs at several GB/s, enough here */
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = step(h, w);
    }
    s->h = h;
    while (n--) {
        s->carry |= (uint64_t)*p++ << (8 * s->n_carry);
        s->n_carry++;
    }
}

uint64_t cphil_ds_hash_final(const cphil_ds_hasher *s) {
    uint64_t h = s->h;
    if (s->n_carry) h = step(h, s->carry);
    h = step(h, s->total);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

/* ---- open ------------------------------------------------------------------------------- */
static bool range_ok(uint64_t off, uint64_t size, uint64_t file) {
    return off <= file && size <= file - off;
}

cphil_status cphil_dataset_open(cphil_dataset *ds, const char *path, bool verify) {
    memset(ds, 0, sizeof *ds);
    int fd;
    size_t size;
    cphil_status os = cphil_file_open_regular(path, &fd, &size); /* a FIFO is refused, not waited on */
    if (os) return cphil_err_prefix(os, "dataset cache: ");
    if (size < CPHIL_DS_HEADER_SIZE) {
        close(fd);
        return cphil_err(CPHIL_E_FORMAT, "%s: %zu bytes, shorter than the 256-byte header (not a cphil dataset)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return cphil_err(CPHIL_E_IO, "%s: mmap failed: %s", path, strerror(errno));
    ds->map = map;
    ds->map_size = size;
    const cphil_ds_header *h = map;
    ds->h = h;
    cphil_status s = CPHIL_E_FORMAT;
#define BAD(...) do { cphil_err(s, __VA_ARGS__); goto fail; } while (0)
    if (memcmp(h->magic, CPHIL_DS_MAGIC, 8)) BAD("%s: offset 0: bad magic (not a cphil dataset cache)", path);
    if (h->format_version != CPHIL_DS_FORMAT_VERSION) {
        s = CPHIL_E_MISMATCH;
        BAD("%s: offset 8: format version %u, this cphil reads %u (rebuild with cphil dataset)", path,
            h->format_version, CPHIL_DS_FORMAT_VERSION);
    }
    if (h->header_size != CPHIL_DS_HEADER_SIZE) BAD("%s: offset 12: header size %u, expected 256", path, h->header_size);
    if (h->file_size != size) {
        s = CPHIL_E_TRUNCATED;
        BAD("%s: file is %zu bytes, header says %llu (truncated or appended)", path, size, (unsigned long long)h->file_size);
    }
    cphil_embed_config cfg = {(h->flags & 1u) != 0};
    cphil_embed_layout_init(&ds->layout, &cfg);
    if (h->layout_hash != ds->layout.hash || h->n_cont != (uint32_t)ds->layout.n_cont ||
        h->n_ids != (uint32_t)ds->layout.n_ids || h->E != (uint32_t)ds->layout.E) {
        s = CPHIL_E_MISMATCH;
        BAD("%s: built with another embedding layout (hash %016llx, E %u; this cphil: %016llx, E %d); rebuild with cphil dataset",
            path, (unsigned long long)h->layout_hash, h->E, (unsigned long long)ds->layout.hash, ds->layout.E);
    }
    uint64_t n = h->n_rows;
    if (n > size) BAD("%s: offset 48: %llu rows cannot fit in %zu bytes", path, (unsigned long long)n, size);
    if (!range_ok(h->off_entries, (uint64_t)h->n_entries * sizeof(cphil_ds_entry), size) ||
        !range_ok(h->off_cont, n * h->n_cont * 4, size) || !range_ok(h->off_ids, n * h->n_ids * 2, size) ||
        !range_ok(h->off_targets, n * sizeof(cphil_ds_target), size) ||
        !range_ok(h->off_strings, h->size_strings, size) ||
        (h->off_entries | h->off_cont | h->off_ids | h->off_targets) % 64 || h->off_entries < CPHIL_DS_HEADER_SIZE)
        BAD("%s: offsets 64..111: a section lies outside the file or is misaligned", path);
    if (h->n_entries == 0 || n == 0)
        BAD("%s: offsets 44/48: %u entries, %llu rows: an empty dataset (no replay passed the filters; rebuild it)", path,
            h->n_entries, (unsigned long long)n);
    { /* the sections must lie after the header and not overlap one another */
        uint64_t so[5] = {h->off_entries, h->off_cont, h->off_ids, h->off_targets, h->off_strings};
        uint64_t sz[5] = {(uint64_t)h->n_entries * sizeof(cphil_ds_entry), n * h->n_cont * 4, n * h->n_ids * 2,
                          n * sizeof(cphil_ds_target), h->size_strings};
        for (int i = 0; i < 5; i++) {
            if (sz[i] && so[i] < CPHIL_DS_HEADER_SIZE) BAD("%s: offsets 56..103: section %d starts inside the header", path, i);
            for (int j = 0; j < i; j++)
                if (sz[i] && sz[j] && so[i] < so[j] + sz[j] && so[j] < so[i] + sz[i])
                    BAD("%s: offsets 56..103: sections %d and %d overlap", path, j, i);
        }
    }
    ds->entries = (const cphil_ds_entry *)((const uint8_t *)map + h->off_entries);
    ds->cont = (const float *)((const uint8_t *)map + h->off_cont);
    ds->ids = (const int16_t *)((const uint8_t *)map + h->off_ids);
    ds->targets = (const cphil_ds_target *)((const uint8_t *)map + h->off_targets);
    ds->strings = (const char *)map + h->off_strings;
    if (h->size_strings == 0 || ds->strings[h->size_strings - 1] != '\0') BAD("%s: string table not terminated", path);
    for (uint32_t i = 0; i < h->n_entries; i++) {
        const cphil_ds_entry *e = &ds->entries[i];
        if (e->row_start > n || e->n_rows > n - e->row_start || e->name_offset >= h->size_strings ||
            e->port > 3 || (e->opp > 3 && e->opp != 255))
            BAD("%s: entry %u (offset %llu): rows or name out of range", path, i,
                (unsigned long long)(h->off_entries + i * sizeof(cphil_ds_entry)));
    }
    if (verify) {
        cphil_ds_hasher hs;
        cphil_ds_hash_init(&hs);
        cphil_ds_hash_update(&hs, (const uint8_t *)map + CPHIL_DS_HEADER_SIZE, size - CPHIL_DS_HEADER_SIZE);
        if (cphil_ds_hash_final(&hs) != h->checksum) BAD("%s: checksum mismatch (the file is damaged; rebuild it)", path);
    }
    /* ids and classes are indices downstream: check every one (cheap: ~1 ms per 100k rows) */
    int32_t lo = (int32_t)h->n_cont, hi = (int32_t)h->E;
    for (uint64_t i = 0; i < n * h->n_ids; i++)
        if (ds->ids[i] < lo || ds->ids[i] >= hi)
            BAD("%s: row %llu: id %d outside [%d, %d)", path, (unsigned long long)(i / h->n_ids), ds->ids[i], lo, hi);
    /* a NaN or inf feature would reach the model's exp/log as NaN: refuse it here, with its place */
    for (uint64_t i = 0; i < n * h->n_cont; i++)
        if (!isfinite(ds->cont[i]))
            BAD("%s: row %llu: continuous feature %llu is %g (not finite; rebuild the cache)", path,
                (unsigned long long)(i / h->n_cont), (unsigned long long)(i % h->n_cont), (double)ds->cont[i]);
    for (uint64_t i = 0; i < n; i++) {
        const cphil_ds_target *t = &ds->targets[i];
        if (t->cls[0] > 16 || t->cls[1] > 16 || t->cls[2] > 16 || t->cls[3] > 16 || t->cls[4] > 4)
            BAD("%s: row %llu: target class out of range", path, (unsigned long long)i);
    }
#undef BAD
    return CPHIL_OK;
fail:
    munmap(map, size);
    memset(ds, 0, sizeof *ds);
    return s;
}

void cphil_dataset_close(cphil_dataset *ds) {
    if (!ds) return;
    if (ds->map) munmap(ds->map, ds->map_size);
    memset(ds, 0, sizeof *ds);
}

const char *cphil_dataset_entry_name(const cphil_dataset *ds, uint32_t i) {
    if (i >= ds->h->n_entries) return "";
    return ds->strings + ds->entries[i].name_offset;
}

void cphil_dataset_row(const cphil_dataset *ds, uint64_t r, float *cont, int32_t *ids, cphil_target *t) {
    const cphil_ds_header *h = ds->h;
    if (cont) memcpy(cont, ds->cont + r * h->n_cont, sizeof(float) * h->n_cont);
    if (ids)
        for (uint32_t k = 0; k < h->n_ids; k++) ids[k] = ds->ids[r * h->n_ids + k];
    if (t) {
        const cphil_ds_target *d = &ds->targets[r];
        for (int i = 0; i < CPHIL_N_BUTTONS; i++) t->buttons[i] = (uint8_t)((d->buttons >> i) & 1);
        memcpy(t->cls, d->cls, CPHIL_N_AXES);
    }
}
