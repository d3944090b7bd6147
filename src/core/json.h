/* json.h — a small, strict JSON reader (RFC 8259) that builds a read-only DOM in one arena.
 *
 * For safetensors headers, policy configs and other small documents from files. Strict: no
 * comments, no trailing commas, no NaN/Infinity, no leading zeros, no control characters in
 * strings, valid UTF-8 only, surrogate pairs checked, duplicate object keys rejected, nesting
 * limited (CPHIL_JSON_MAX_DEPTH). Every error names the byte offset and what was expected.
 * Deliberately not: a streaming/SAX interface, a writer (see cphil_json_out in core.h),
 * in-place mutation. Numbers keep an exact int64 when they are integers that fit, so
 * safetensors byte offsets above 2^53 stay exact.
 */
#ifndef CPHIL_JSON_H
#define CPHIL_JSON_H

#include "core/core.h"

#define CPHIL_JSON_MAX_DEPTH 64

typedef enum cphil_json_type {
    CPHIL_JSON_NULL = 0,
    CPHIL_JSON_BOOL,
    CPHIL_JSON_NUMBER,
    CPHIL_JSON_STRING,
    CPHIL_JSON_ARRAY,
    CPHIL_JSON_OBJECT
} cphil_json_type;

typedef struct cphil_json_member cphil_json_member;

typedef struct cphil_json_value {
    cphil_json_type type;
    bool is_int;          /* NUMBER: written without fraction/exponent and fits in int64 */
    bool b;               /* BOOL */
    size_t offset;        /* byte offset of the value's first character in the source */
    double num;           /* NUMBER (always set) */
    int64_t i;            /* NUMBER when is_int */
    const char *s;        /* STRING: NUL-terminated UTF-8 (may hold \u0000; then use len) */
    size_t len;           /* STRING: bytes; ARRAY/OBJECT: number of items/members */
    const struct cphil_json_value *items;   /* ARRAY */
    const cphil_json_member *members;       /* OBJECT, in document order */
} cphil_json_value;

struct cphil_json_member {
    const char *key;      /* NUL-terminated */
    size_t key_len;
    cphil_json_value value;
};

typedef struct cphil_json_doc cphil_json_doc;

/* Parse text[0..len) (need not be NUL-terminated). Whitespace around the one top-level value is
 * allowed, anything else after it is an error. On success *out owns every value; free it with
 * cphil_json_free. Errors: CPHIL_E_FORMAT (message "JSON offset N: ..."), CPHIL_E_NOMEM. */
cphil_status cphil_json_parse(const char *text, size_t len, cphil_json_doc **out);
void cphil_json_free(cphil_json_doc *doc);   /* NULL is fine */
const cphil_json_value *cphil_json_root(const cphil_json_doc *doc);

/* Object member by key (NULL if v is not an object or the key is absent). */
const cphil_json_value *cphil_json_get(const cphil_json_value *v, const char *key);
/* Typed getters: true when v is of that type (and, for ints, an exact integer in range). */
bool cphil_json_as_int64(const cphil_json_value *v, int64_t *out);
bool cphil_json_as_double(const cphil_json_value *v, double *out);
bool cphil_json_as_bool(const cphil_json_value *v, bool *out);
const char *cphil_json_as_string(const cphil_json_value *v);  /* NULL unless STRING */
const char *cphil_json_type_name(cphil_json_type t);

#endif /* CPHIL_JSON_H */
