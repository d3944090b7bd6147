/* npy.h — NumPy .npy arrays and .npz archives (uncompressed zip), read and write.
 *
 * .npy: magic "\x93NUMPY", version 1.0 (u16 header length) or 2.0/3.0 (u32), a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces to a
 * multiple of 64 bytes and ended by '\n', then the raw data in C order. We write version 1.0
 * when the header fits (2.0 otherwise); we read 1.0, 2.0 and 3.0, little-endian or
 * byte-order-free descr ('<f4' '<f8' '<f2' '<i1' '|i1' '|u1' '<i2' '<i4' '<i8' '|b1'), C order.
 * Fortran order and big-endian data are refused with a clear message (CPHIL_E_UNSUPPORTED).
 *
 * .npz: a zip archive with one "<name>.npy" member per array, every member STORED (method 0,
 * which is what numpy.savez writes), CRC-32 computed by us (so no zlib). The reader finds the
 * central directory, accepts ZIP64 extra fields in local headers (numpy writes them), checks
 * every CRC, and refuses deflated members (np.savez_compressed) with a clear message: cphil
 * only reads its own .npz and numpy.savez output. Archives over 4 GiB are refused on writing.
 * Reference: numpy/lib/format.py docstring (NEP 1); PKWARE APPNOTE.TXT 4.3 (zip layout).
 */
#ifndef CPHIL_NPY_H
#define CPHIL_NPY_H

#include "core/core.h"
#include "core/safetensors.h"   /* cphil_dtype */

#define CPHIL_NPY_MAX_NDIM 8

/* An array read from .npy/.npz: owns data (cphil_alloc'd, 64-byte aligned, or for cphil_npy_read
 * a private copy-on-write map of the file, whose data NumPy aligns to 64 bytes). */
typedef struct cphil_npy_array {
    char *name;         /* npz member name without ".npy" (NULL for a plain .npy) */
    cphil_dtype dtype;
    int ndim;
    int64_t shape[CPHIL_NPY_MAX_NDIM];
    size_t numel;
    void *data;
    size_t nbytes;
    const void *map_;   /* cphil_npy_read: the file's private map data points into (NULL: data is owned) */
    size_t map_size_;
} cphil_npy_array;

void cphil_npy_array_free(cphil_npy_array *a);   /* frees name and data; the struct is the caller's */

/* Encode one array as .npy bytes into a cphil_alloc'd buffer. dtype: any but BF16 (NumPy has no
 * bfloat16; convert to F32 first). */
cphil_status cphil_npy_encode(cphil_dtype dtype, int ndim, const int64_t *shape, const void *data,
                              uint8_t **buf, size_t *size);
/* Write a .npy file atomically. */
cphil_status cphil_npy_write(const char *path, cphil_dtype dtype, int ndim, const int64_t *shape,
                             const void *data);
/* Decode .npy bytes (name is for messages). out->data is a copy. */
cphil_status cphil_npy_decode(const uint8_t *buf, size_t size, const char *name, cphil_npy_array *out);
cphil_status cphil_npy_read(const char *path, cphil_npy_array *out);

/* ---- .npz ---------------------------------------------------------------------------------- */
typedef struct cphil_npz_writer cphil_npz_writer;

/* Start an .npz at path (written atomically on close; nothing appears before). */
cphil_status cphil_npz_writer_open(const char *path, cphil_npz_writer **out);
/* Add an array as member "<name>.npy". Data is encoded and written immediately (not borrowed).
 * Errors: CPHIL_E_ARG (bad/duplicate name, BF16), CPHIL_E_UNSUPPORTED (over 4 GiB), CPHIL_E_IO. */
cphil_status cphil_npz_writer_add(cphil_npz_writer *w, const char *name, cphil_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data);
/* Add a string as a 0-d unicode array ('<U<n>' descr), as np.savez(config=json_str) would. */
cphil_status cphil_npz_writer_add_string(cphil_npz_writer *w, const char *name, const char *utf8);
/* Write the central directory and commit the file. */
cphil_status cphil_npz_writer_close(cphil_npz_writer *w);
/* Abandon (removes the temporary); NULL is fine. Use after a failure, instead of close. */
void cphil_npz_writer_abort(cphil_npz_writer *w);

/* Read every member of an .npz (each must be a .npy we can decode, '<U' string members come back
 * with dtype U8 holding the UTF-8 text). *arrays is cphil_alloc'd; free with cphil_npz_free. */
cphil_status cphil_npz_read(const char *path, cphil_npy_array **arrays, size_t *count);
cphil_status cphil_npz_decode(const uint8_t *buf, size_t size, const char *name,
                              cphil_npy_array **arrays, size_t *count);
void cphil_npz_free(cphil_npy_array *arrays, size_t count);
/* Find by member name (without .npy); NULL if absent. */
const cphil_npy_array *cphil_npz_find(const cphil_npy_array *arrays, size_t count, const char *name);

uint32_t cphil_crc32(uint32_t crc, const void *data, size_t n);  /* crc=0 to start */

#endif /* CPHIL_NPY_H */
