/* slp_read.c — reading a whole replay: the incremental parser (slp_stream.c) fed once, with the
 * frame table sized up front from the metadata's lastFrame when the file has one (so the
 * columns never grow). Reference: docs/slp.md. */
#include "slp/slp_internal.h"

/* Rows to reserve: lastFrame + 124 from the metadata when it is plausible, else a guess from the
 * raw length (the table grows by doubling when a guess is short). */
static uint32_t guess_rows(const uint8_t *d, size_t n) {
    if (n < 15 || d[0] != '{') return 0;
    uint32_t raw = rd_u32(d + 11);
    if (raw == 0 || (uint64_t)raw + 15 + 11 > n) return 0;
    size_t m = 15 + (size_t)raw;
    if (d[m] != 'U' || d[m + 1] != 8 || memcmp(d + m + 2, "metadata", 8)) return 0;
    cphil_metadata meta;
    size_t used;
    cphil_status st = cphil_slp_metadata_parse(d + m + 10, n - m - 10, m + 10, "", &meta, &used);
    cphil_err_clear();
    if (st || !meta.has_last_frame) return 0;
    int64_t rows = (int64_t)meta.last_frame - CPHIL_SLP_FIRST_FRAME + 1 + 8;
    /* a frame takes at least ~70 bytes (one Pre and one Post); refuse absurd values */
    if (rows <= 0 || (uint64_t)rows * 70 > (uint64_t)raw + 70 * 64) return 0;
    return (uint32_t)rows;
}

cphil_status cphil_slp_read_mem_reuse(const void *data, size_t size, const char *name, cphil_replay **r) {
    cphil_replay *reuse = *r;
    *r = NULL;
    cphil_slp_stream *s;
    cphil_status st = cphil_slp_stream_open_reuse(&s, NULL, name, reuse);
    if (st) return st;
    uint32_t rows = guess_rows(data, size);
    if (rows && (st = cphil_slp_stream_reserve(s, rows))) {
        cphil_slp_stream_close(s);
        return st;
    }
    st = cphil_slp_stream_feed(s, data, size);
    if (!st) st = cphil_slp_stream_finish(s);
    if (st == CPHIL_OK || st == CPHIL_E_TRUNCATED) *r = cphil_slp_stream_take(s);
    cphil_slp_stream_close(s);
    return st;
}

cphil_status cphil_slp_read_mem(const void *data, size_t size, const char *name, cphil_replay **out) {
    *out = NULL;
    return cphil_slp_read_mem_reuse(data, size, name, out);
}

cphil_status cphil_slp_read_file(const char *path, cphil_replay **out) {
    *out = NULL;
    const uint8_t *data;
    size_t size;
    /* mapped, not read: a file that is not a replay is refused after its first bytes */
    cphil_status st = cphil_file_map(path, (size_t)1 << 31, &data, &size);
    if (st) return st;
    st = cphil_slp_read_mem(data, size, path, out);
    cphil_file_unmap(data, size);
    return st;
}
