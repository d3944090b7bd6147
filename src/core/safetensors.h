/* safetensors.h — read and write the safetensors format (Hugging Face), cphil's policy file.
 *
 * Layout: u64 little-endian N, then N bytes of JSON header
 *   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to the buffer's start, tensors are raw
 * little-endian, row-major (C order).
 *
 * The reader is strict (every check is one a malicious or damaged file could trip): header
 * length within the file and at most CPHIL_ST_MAX_HEADER, header starts with '{', valid JSON
 * (strict, duplicate names rejected), known dtype, shape of non-negative ints (rank <= 8),
 * offsets in range, no overlaps and no holes (the tensors tile the buffer exactly, as the
 * reference implementation requires), product(shape) * dtype size == end - begin, and
 * __metadata__ a string -> string map. Messages name the file, tensor and byte offset.
 *
 * The writer sorts the data by dtype size (largest first, then name), so every tensor is
 * naturally aligned when the file is mmap'd, and pads the header with spaces to a multiple of
 * 8. Files go through cphil_atomic_* (temporary + rename).
 *
 * Use from policy code (typical):
 *   cphil_st_writer *w; cphil_st_writer_new(&w);
 *   cphil_st_writer_meta(w, "config", json_text);
 *   cphil_st_writer_add(w, "input_proj.weight", CPHIL_DT_F32, 2, (int64_t[]){H, E}, ptr);
 *   s = cphil_st_writer_write(w, path); cphil_st_writer_free(w);
 *   cphil_st_file *f; cphil_st_open(path, CPHIL_ST_MMAP, &f);
 *   const cphil_st_tensor *t = cphil_st_find(f, "input_proj.weight");
 *   cphil_st_expect(f, t, "input_proj.weight", 2, (int64_t[]){H, E}) -> checks shape
 *   cphil_st_to_f32(t, dst, H*E);   (F32/BF16/F16 -> f32, handles unaligned data)
 *   const char *cfg = cphil_st_meta(f, "config"); cphil_st_close(f);
 * Deliberately not: F8 types, big-endian hosts, in-place editing.
 * Reference: https://github.com/huggingface/safetensors (format description in its README).
 */
#ifndef CPHIL_SAFETENSORS_H
#define CPHIL_SAFETENSORS_H

#include "core/core.h"

typedef enum cphil_dtype {
    CPHIL_DT_F32 = 0,
    CPHIL_DT_F16,
    CPHIL_DT_BF16,
    CPHIL_DT_F64,
    CPHIL_DT_I8,
    CPHIL_DT_U8,
    CPHIL_DT_I16,
    CPHIL_DT_I32,
    CPHIL_DT_I64,
    CPHIL_DT_BOOL,
    CPHIL_DT_COUNT
} cphil_dtype;

size_t cphil_dtype_size(cphil_dtype dt);            /* bytes per element (0 for bad values) */
const char *cphil_dtype_name(cphil_dtype dt);       /* safetensors spelling: "F32", "BF16", ... */
bool cphil_dtype_from_name(const char *s, cphil_dtype *out);

#define CPHIL_ST_MAX_NDIM 8
#define CPHIL_ST_MAX_HEADER ((size_t)100 << 20)      /* 100 MB, as the reference reader */

typedef struct cphil_st_tensor {
    const char *name;
    cphil_dtype dtype;
    int ndim;
    int64_t shape[CPHIL_ST_MAX_NDIM];
    size_t numel;
    const void *data;   /* into the file's buffer; aligned to dtype size when the file is ours */
    size_t nbytes;
    size_t file_offset; /* absolute byte offset of the data in the file (for messages) */
} cphil_st_tensor;

typedef struct cphil_st_file cphil_st_file;

enum { CPHIL_ST_MMAP = 1 };  /* flags for cphil_st_open: map the file instead of reading it */

/* Open and validate a file (mapped read-only in both modes since the header is checked before the
 * data is touched; CPHIL_ST_MMAP is kept for callers; a FIFO or other non-regular file is refused).
 * Errors: CPHIL_E_IO (open/read), CPHIL_E_FORMAT / CPHIL_E_TRUNCATED (bad bytes, message names
 * path, tensor and offset), CPHIL_E_NOMEM. */
cphil_status cphil_st_open(const char *path, int flags, cphil_st_file **out);
/* Same from memory. copy=false borrows data (it must outlive the file object). name is used in
 * messages (may be NULL). */
cphil_status cphil_st_open_memory(const void *data, size_t size, bool copy, const char *name,
                                  cphil_st_file **out);
void cphil_st_close(cphil_st_file *f);   /* NULL is fine */

size_t cphil_st_count(const cphil_st_file *f);
const cphil_st_tensor *cphil_st_at(const cphil_st_file *f, size_t i);  /* header order */
const cphil_st_tensor *cphil_st_find(const cphil_st_file *f, const char *name); /* NULL if absent */
const char *cphil_st_meta(const cphil_st_file *f, const char *key);      /* NULL if absent */
size_t cphil_st_meta_count(const cphil_st_file *f);
void cphil_st_meta_at(const cphil_st_file *f, size_t i, const char **key, const char **value);
const char *cphil_st_name(const cphil_st_file *f);  /* path or name given at open */

/* Check that t exists with the given rank and shape (dims < 0 are wildcards). Returns
 * CPHIL_E_MISMATCH naming the tensor, expected and found shapes; CPHIL_E_FORMAT if t is NULL
 * ("missing tensor <name>"). */
cphil_status cphil_st_expect(const cphil_st_file *f, const cphil_st_tensor *t, const char *name,
                             int ndim, const int64_t *shape);
/* Convert a float tensor (F32, F16, BF16, F64) to f32 into dst (n must equal t->numel).
 * CPHIL_E_MISMATCH for other dtypes or a size mismatch; CPHIL_E_NUMERIC if a value is not finite
 * and require_finite. Works on unaligned data. */
cphil_status cphil_st_to_f32(const cphil_st_tensor *t, float *dst, size_t n, bool require_finite);

/* ---- writer -------------------------------------------------------------------------------- */
typedef struct cphil_st_writer cphil_st_writer;

cphil_status cphil_st_writer_new(cphil_st_writer **out);
void cphil_st_writer_free(cphil_st_writer *w);   /* NULL is fine */
/* Add a tensor. name and shape are copied; data is BORROWED (it must stay valid until write).
 * Errors: CPHIL_E_ARG (empty/duplicate name, name "__metadata__", bad dtype/rank/dim). */
cphil_status cphil_st_writer_add(cphil_st_writer *w, const char *name, cphil_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data);
/* Add a metadata entry (both strings copied; a key set twice keeps the last value). */
cphil_status cphil_st_writer_meta(cphil_st_writer *w, const char *key, const char *value);
/* Write atomically to path. */
cphil_status cphil_st_writer_write(cphil_st_writer *w, const char *path);
/* Or serialize into a cphil_alloc'd buffer (caller frees with cphil_free). */
cphil_status cphil_st_writer_to_memory(cphil_st_writer *w, uint8_t **buf, size_t *size);

/* Half-precision helpers shared by the readers (round to nearest even on the way down). */
float cphil_bf16_to_f32(uint16_t h);
uint16_t cphil_f32_to_bf16(float f);
float cphil_f16_to_f32(uint16_t h);

#endif /* CPHIL_SAFETENSORS_H */
