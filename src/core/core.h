/* core.h — internal foundation shared by every module: errors, allocation, asserts, small
 * utilities (files, timing, JSON output, progress bar).
 *
 * Errors come in two tiers (docs/conventions.md): recoverable ones are returned as a
 * cphil_status with a message set by cphil_err(); programmer errors hit CPHIL_ASSERT, which is
 * always on, prints file:line and aborts. Data from files never reaches an assert.
 */
#ifndef CPHIL_CORE_H
#define CPHIL_CORE_H

#include "cphil.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#if defined(__GNUC__)
#define CPHIL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CPHIL_NORETURN __attribute__((noreturn))
#define CPHIL_LIKELY(x) __builtin_expect(!!(x), 1)
#define CPHIL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define CPHIL_PRINTF(a, b)
#define CPHIL_NORETURN
#define CPHIL_LIKELY(x) (x)
#define CPHIL_UNLIKELY(x) (x)
#endif

#define CPHIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CPHIL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CPHIL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- errors ---------------------------------------------------------------------------- */
/* Set the thread's error message and return `s`, so callers write `return cphil_err(...)`. */
cphil_status cphil_err(cphil_status s, const char *fmt, ...) CPHIL_PRINTF(2, 3);
/* Prefix the current message with more context ("file.slp: " + message); returns s. */
cphil_status cphil_err_prefix(cphil_status s, const char *fmt, ...) CPHIL_PRINTF(2, 3);
void cphil_err_clear(void);

CPHIL_NORETURN void cphil_assert_fail(const char *expr, const char *file, int line);
#define CPHIL_ASSERT(e) ((e) ? (void)0 : cphil_assert_fail(#e, __FILE__, __LINE__))

/* ---- allocation (all heap use goes through here) --------------------------------------- */
void *cphil_alloc(size_t size);                 /* 64-byte aligned, NULL on failure */
void *cphil_calloc(size_t n, size_t size);      /* zeroed, overflow-checked, 64-byte aligned */
void *cphil_realloc(void *p, size_t old_size, size_t new_size); /* copy-based, aligned */
void  cphil_free(void *p);
char *cphil_strdup(const char *s);
/* Overflow-checked size arithmetic: returns false on overflow. */
bool cphil_size_mul(size_t a, size_t b, size_t *out);
bool cphil_size_add(size_t a, size_t b, size_t *out);

/* ---- files ----------------------------------------------------------------------------- */
/* Read a whole regular file (max_size guards against absurd inputs). *data is cphil_alloc'd. */
cphil_status cphil_file_read(const char *path, size_t max_size, uint8_t **data, size_t *size);
/* Open a regular file for reading without ever blocking: a FIFO, device, socket or directory is
 * refused with CPHIL_E_IO (O_NONBLOCK open, then fstat; the flag is cleared). *fd is the caller's
 * to close; *size is the file's size. cphil_file_read and every file reader go through it. */
cphil_status cphil_file_open_regular(const char *path, int *fd, size_t *size);
/* Map a regular file read-only (nothing is read until touched, so a reader that refuses a bad
 * header costs one page, not the file). Release with cphil_file_unmap(data, size). An empty file
 * gives a valid non-NULL pointer and size 0. Errors as cphil_file_read. */
cphil_status cphil_file_map(const char *path, size_t max_size, const uint8_t **data, size_t *size);
void cphil_file_unmap(const uint8_t *data, size_t size);
/* Write atomically: path.tmp.<pid> then fsync and rename. Never leaves a half-written path. */
cphil_status cphil_file_write_atomic(const char *path, const void *data, size_t size);
/* Streamed atomic writer for large outputs. */
typedef struct cphil_atomic_file {
    FILE *f;
    char *final_path;
    char *tmp_path;
} cphil_atomic_file;
cphil_status cphil_atomic_open(cphil_atomic_file *af, const char *path);
cphil_status cphil_atomic_write(cphil_atomic_file *af, const void *data, size_t size);
cphil_status cphil_atomic_commit(cphil_atomic_file *af); /* flush, fsync, rename, close */
void cphil_atomic_abort(cphil_atomic_file *af);          /* remove the temporary; safe twice */
bool cphil_path_is_dir(const char *path);
cphil_status cphil_mkdir_p(const char *path);

/* ---- time ------------------------------------------------------------------------------ */
double cphil_now_sec(void);      /* monotonic seconds */
uint64_t cphil_now_ns(void);

/* ---- JSON output (writer) -------------------------------------------------------------- */
/* A minimal streaming JSON writer that handles commas and escaping. */
typedef struct cphil_json_out {
    FILE *f;
    int depth;
    bool need_comma[32];
    bool after_key;
} cphil_json_out;
void cphil_json_begin(cphil_json_out *j, FILE *f);
void cphil_json_obj_open(cphil_json_out *j);
void cphil_json_obj_close(cphil_json_out *j);
void cphil_json_arr_open(cphil_json_out *j);
void cphil_json_arr_close(cphil_json_out *j);
void cphil_json_key(cphil_json_out *j, const char *key);
void cphil_json_str(cphil_json_out *j, const char *s);   /* NULL writes null */
void cphil_json_int(cphil_json_out *j, long long v);
void cphil_json_uint(cphil_json_out *j, unsigned long long v);
void cphil_json_num(cphil_json_out *j, double v);        /* non-finite writes null */
void cphil_json_bool(cphil_json_out *j, bool v);
void cphil_json_null(cphil_json_out *j);
/* Escape s (UTF-8) as a JSON string literal into f, quotes included. */
void cphil_json_write_string(FILE *f, const char *s);

/* ---- progress bar (stderr; off when stderr is not a terminal or when quiet) ----------- */
typedef struct cphil_progress {
    const char *label;
    uint64_t total, done;
    double start, last_draw;
    bool enabled;
    char extra[96];
} cphil_progress;
void cphil_progress_begin(cphil_progress *p, const char *label, uint64_t total, bool quiet);
void cphil_progress_update(cphil_progress *p, uint64_t done, const char *extra);
void cphil_progress_end(cphil_progress *p);

#endif /* CPHIL_CORE_H */
