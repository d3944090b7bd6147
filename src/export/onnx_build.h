/* onnx_build.h — a small ONNX graph builder over protobuf-c (bindings generated at build time
 * from Debian's onnx.proto, see mk/onnx.mk). It hides the protobuf structs: callers add
 * initializers, nodes with attributes, graph inputs/outputs, and serialize.
 *
 *   cphil_onnx *g; cphil_onnx_new("policy", 17, &g);
 *   const char *x = cphil_onnx_input(g, "state_sequence", 3, (cphil_onnx_dim[]){
 *                                     CPHIL_ONNX_SYM("batch"), CPHIL_ONNX_FIX(60), CPHIL_ONNX_FIX(E)});
 *   const char *w = cphil_onnx_init_f32(g, "input_proj.weightT", 2, (int64_t[]){E, H}, data);
 *   const char *y = cphil_onnx_op(g, "MatMul", 2, (const char *[]){x, w}, 0, NULL);
 *   cphil_onnx_output(g, y, "buttons", 2, ...);        (renames y's producer output)
 *   s = cphil_onnx_status(g); s = cphil_onnx_write(g, path); cphil_onnx_free(g);
 *
 * Errors are sticky: builder calls return NULL names after an error (out of memory, bad
 * argument) and cphil_onnx_status()/cphil_onnx_write() report the first one, so graph code
 * reads straight through without a check per node. Names returned are owned by the builder.
 * Deliberately not: shape inference, optimization, external data (graphs over 2 GB), reading.
 * Reference: onnx/onnx.proto (IR version 8 for opset 17), ONNX operator docs.
 */
#ifndef CPHIL_ONNX_BUILD_H
#define CPHIL_ONNX_BUILD_H

#include "core/core.h"

typedef struct cphil_onnx cphil_onnx;

/* Element types (the TensorProto.DataType numbers). */
typedef enum cphil_onnx_type {
    CPHIL_ONNX_FLOAT = 1, CPHIL_ONNX_UINT8 = 2, CPHIL_ONNX_INT8 = 3, CPHIL_ONNX_INT32 = 6,
    CPHIL_ONNX_INT64 = 7
} cphil_onnx_type;

typedef struct cphil_onnx_dim {
    int64_t value;       /* >= 0 when fixed */
    const char *param;   /* symbolic name when non-NULL */
} cphil_onnx_dim;
#define CPHIL_ONNX_FIX(v) ((cphil_onnx_dim){(v), NULL})
#define CPHIL_ONNX_SYM(s) ((cphil_onnx_dim){-1, (s)})

typedef enum cphil_onnx_attr_kind {
    CPHIL_ONNX_ATTR_INT, CPHIL_ONNX_ATTR_FLOAT, CPHIL_ONNX_ATTR_INTS, CPHIL_ONNX_ATTR_STRING,
    CPHIL_ONNX_ATTR_FLOATS
} cphil_onnx_attr_kind;

typedef struct cphil_onnx_attr {
    const char *name;
    cphil_onnx_attr_kind kind;
    int64_t i;
    float f;
    const int64_t *ints;
    const float *floats;
    int n;               /* elements of ints/floats */
    const char *s;
} cphil_onnx_attr;
#define CPHIL_ONNX_AI(nm, v) ((cphil_onnx_attr){.name = (nm), .kind = CPHIL_ONNX_ATTR_INT, .i = (v)})
#define CPHIL_ONNX_AF(nm, v) ((cphil_onnx_attr){.name = (nm), .kind = CPHIL_ONNX_ATTR_FLOAT, .f = (v)})
#define CPHIL_ONNX_AS(nm, v) ((cphil_onnx_attr){.name = (nm), .kind = CPHIL_ONNX_ATTR_STRING, .s = (v)})
#define CPHIL_ONNX_AINTS(nm, arr, cnt) \
    ((cphil_onnx_attr){.name = (nm), .kind = CPHIL_ONNX_ATTR_INTS, .ints = (arr), .n = (cnt)})

/* A builder for one model: graph name, default-domain opset (17). */
cphil_status cphil_onnx_new(const char *graph_name, int opset, cphil_onnx **out);
void cphil_onnx_free(cphil_onnx *g);   /* NULL is fine */
/* Also import another operator domain (e.g. "com.microsoft", 1) for contrib ops. */
void cphil_onnx_import_domain(cphil_onnx *g, const char *domain, int version);
void cphil_onnx_set_doc(cphil_onnx *g, const char *doc);            /* model doc_string */
void cphil_onnx_add_meta(cphil_onnx *g, const char *key, const char *value); /* metadata_props */

/* Graph input of element type FLOAT (or `type`) with the given dims; returns its name. */
const char *cphil_onnx_input(cphil_onnx *g, const char *name, int ndim, const cphil_onnx_dim *dims);
const char *cphil_onnx_input_typed(cphil_onnx *g, const char *name, cphil_onnx_type type, int ndim,
                                   const cphil_onnx_dim *dims);
/* Declare `value` (a node output already in the graph) as graph output `name`: the producing
 * node's output is renamed, so `value` must be an output of a node added by this builder and
 * must not already be consumed under its old name by a later node (call it right after the
 * producing node). */
void cphil_onnx_output(cphil_onnx *g, const char *value, const char *name, int ndim,
                       const cphil_onnx_dim *dims);

/* Initializers (data copied). name may be NULL for a generated unique name. */
const char *cphil_onnx_init(cphil_onnx *g, const char *name, cphil_onnx_type type, int ndim,
                            const int64_t *shape, const void *data);
const char *cphil_onnx_init_f32(cphil_onnx *g, const char *name, int ndim, const int64_t *shape,
                                const float *data);
const char *cphil_onnx_init_i64(cphil_onnx *g, const char *name, int n, const int64_t *values); /* 1-D */
const char *cphil_onnx_scalar_f32(cphil_onnx *g, float v);   /* 0-d */
const char *cphil_onnx_scalar_i64(cphil_onnx *g, int64_t v); /* 0-d */

/* A node of op_type (default domain when domain is NULL) with n_in inputs (an input may be ""
 * for an omitted optional one) and n_out outputs, whose generated names go to outs[] (may be
 * NULL when n_out is 1: use the return value). Returns the first output's name. */
const char *cphil_onnx_node(cphil_onnx *g, const char *op_type, const char *domain, int n_in,
                            const char *const *in, int n_out, const char **outs, int n_attr,
                            const cphil_onnx_attr *attrs);
/* Shorthand: one output, default domain. */
const char *cphil_onnx_op(cphil_onnx *g, const char *op_type, int n_in, const char *const *in,
                          int n_attr, const cphil_onnx_attr *attrs);
#define CPHIL_ONNX_OP1(g, op, a) cphil_onnx_op((g), (op), 1, (const char *[]){(a)}, 0, NULL)
#define CPHIL_ONNX_OP2(g, op, a, b) cphil_onnx_op((g), (op), 2, (const char *[]){(a), (b)}, 0, NULL)

int cphil_onnx_node_count(const cphil_onnx *g);
cphil_status cphil_onnx_status(const cphil_onnx *g);
/* Serialize (ModelProto, IR version 8) into a cphil_alloc'd buffer, or write atomically. */
cphil_status cphil_onnx_serialize(cphil_onnx *g, uint8_t **buf, size_t *size);
cphil_status cphil_onnx_write(cphil_onnx *g, const char *path);

#endif /* CPHIL_ONNX_BUILD_H */
