/* onnx_build.c — ONNX graph builder on protobuf-c's generated onnx.pb-c (see onnx_build.h).
 * Every protobuf struct, string and tensor copy lives in one chunked arena freed at the end;
 * the growing lists (nodes, initializers, inputs, outputs) are pointer arrays. protobuf-c packs
 * the ModelProto; it allocates nothing while packing.
 * Reference: onnx/onnx.proto (IR version 8 pairs with opset 17), protobuf-c API docs.
 */
#include "export/onnx_build.h"
#include "onnxpb/onnx.pb-c.h"   /* generated into build/gen/ by mk/onnx.mk */

#include <string.h>

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
} arena_chunk;
#define CHUNK_HDR ((sizeof(arena_chunk) + 63) & ~(size_t)63)

typedef struct ptr_list {
    void **p;
    size_t n, cap;
} ptr_list;

struct cphil_onnx {
    arena_chunk *chunks;
    cphil_status err;
    char errmsg[256];
    unsigned long counter;
    int opset;
    char *graph_name, *doc;
    ptr_list nodes, inits, inputs, outputs, opsets, meta;
};

static void set_err(cphil_onnx *g, cphil_status s, const char *msg) {
    if (g->err) return;
    g->err = s;
    snprintf(g->errmsg, sizeof g->errmsg, "%s", msg);
}

static void *ar(cphil_onnx *g, size_t n) {
    if (g->err) return NULL;
    n = (n + 15) & ~(size_t)15;
    if (!n) n = 16;
    arena_chunk *c = g->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ((size_t)1 << 20) ? n : ((size_t)1 << 20), tot;
        if (!cphil_size_add(cap, CHUNK_HDR, &tot)) {
            set_err(g, CPHIL_E_NOMEM, "ONNX builder: size overflow");
            return NULL;
        }
        arena_chunk *nc = cphil_alloc(tot);
        if (!nc) {
            set_err(g, CPHIL_E_NOMEM, "ONNX builder: out of memory");
            return NULL;
        }
        nc->cap = cap;
        nc->used = 0;
        if (c && n > ((size_t)1 << 20)) { /* big one-off block: keep filling the current chunk */
            nc->next = c->next;
            c->next = nc;
            nc->used = n;
            return memset((char *)nc + CHUNK_HDR, 0, n);
        }
        nc->next = c;
        g->chunks = c = nc;
    }
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    return memset(p, 0, n);
}

static char *ar_str(cphil_onnx *g, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ar(g, n);
    if (d) memcpy(d, s, n);
    return d;
}

static void list_push(cphil_onnx *g, ptr_list *l, void *v) {
    if (g->err || !v) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        void **np = cphil_realloc(l->p, l->cap * sizeof *np, nc * sizeof *np);
        if (!np) {
            set_err(g, CPHIL_E_NOMEM, "ONNX builder: out of memory");
            return;
        }
        l->p = np;
        l->cap = nc;
    }
    l->p[l->n++] = v;
}

cphil_status cphil_onnx_new(const char *graph_name, int opset, cphil_onnx **out) {
    *out = cphil_calloc(1, sizeof **out);
    if (!*out) return cphil_err(CPHIL_E_NOMEM, "ONNX builder: out of memory");
    cphil_onnx *g = *out;
    g->opset = opset;
    g->graph_name = ar_str(g, graph_name ? graph_name : "graph");
    cphil_onnx_import_domain(g, "", opset);
    if (g->err) {
        cphil_status s = cphil_err(g->err, "%s", g->errmsg);
        cphil_onnx_free(g);
        *out = NULL;
        return s;
    }
    return CPHIL_OK;
}

void cphil_onnx_free(cphil_onnx *g) {
    if (!g) return;
    arena_chunk *c = g->chunks;
    while (c) {
        arena_chunk *n = c->next;
        cphil_free(c);
        c = n;
    }
    ptr_list *ls[] = {&g->nodes, &g->inits, &g->inputs, &g->outputs, &g->opsets, &g->meta};
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(ls); i++) cphil_free(ls[i]->p);
    cphil_free(g);
}

void cphil_onnx_import_domain(cphil_onnx *g, const char *domain, int version) {
    Onnx__OperatorSetIdProto *o = ar(g, sizeof *o);
    if (!o) return;
    onnx__operator_set_id_proto__init(o);
    o->domain = ar_str(g, domain);
    o->has_version = 1;
    o->version = version;
    list_push(g, &g->opsets, o);
}

void cphil_onnx_set_doc(cphil_onnx *g, const char *doc) { g->doc = ar_str(g, doc); }

void cphil_onnx_add_meta(cphil_onnx *g, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = ar(g, sizeof *e);
    if (!e) return;
    onnx__string_string_entry_proto__init(e);
    e->key = ar_str(g, key);
    e->value = ar_str(g, value);
    list_push(g, &g->meta, e);
}

static const char *fresh(cphil_onnx *g, const char *hint) {
    char b[96];
    snprintf(b, sizeof b, "%s_%lu", hint, ++g->counter);
    return ar_str(g, b);
}

static Onnx__ValueInfoProto *value_info(cphil_onnx *g, const char *name, cphil_onnx_type type, int ndim,
                                        const cphil_onnx_dim *dims) {
    Onnx__ValueInfoProto *vi = ar(g, sizeof *vi);
    Onnx__TypeProto *tp = ar(g, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ar(g, sizeof *tt);
    Onnx__TensorShapeProto *sh = ar(g, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dv = ar(g, sizeof *dv * (size_t)(ndim ? ndim : 1));
    if (!vi || !tp || !tt || !sh || !dv) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = ar(g, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i].param) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ar_str(g, dims[i].param);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i].value;
        }
        dv[i] = d;
    }
    sh->n_dim = (size_t)ndim;
    sh->dim = dv;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)type;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = ar_str(g, name);
    vi->type = tp;
    return vi->name ? vi : NULL;
}

const char *cphil_onnx_input_typed(cphil_onnx *g, const char *name, cphil_onnx_type type, int ndim,
                                   const cphil_onnx_dim *dims) {
    Onnx__ValueInfoProto *vi = value_info(g, name, type, ndim, dims);
    list_push(g, &g->inputs, vi);
    return (g->err || !vi) ? NULL : vi->name;
}

const char *cphil_onnx_input(cphil_onnx *g, const char *name, int ndim, const cphil_onnx_dim *dims) {
    return cphil_onnx_input_typed(g, name, CPHIL_ONNX_FLOAT, ndim, dims);
}

void cphil_onnx_output(cphil_onnx *g, const char *value, const char *name, int ndim, const cphil_onnx_dim *dims) {
    if (g->err) return;
    if (!value) {
        set_err(g, CPHIL_E_INTERNAL, "ONNX builder: output of a missing value");
        return;
    }
    bool found = false;
    for (size_t i = g->nodes.n; i-- > 0 && !found;) {
        Onnx__NodeProto *n = g->nodes.p[i];
        for (size_t k = 0; k < n->n_output; k++)
            if (!strcmp(n->output[k], value)) {
                n->output[k] = ar_str(g, name);
                found = true;
                break;
            }
    }
    if (!found) {
        set_err(g, CPHIL_E_INTERNAL, "ONNX builder: graph output's value is not a node output");
        return;
    }
    list_push(g, &g->outputs, value_info(g, name, CPHIL_ONNX_FLOAT, ndim, dims));
}

static size_t type_size(cphil_onnx_type t) {
    switch (t) {
    case CPHIL_ONNX_FLOAT: case CPHIL_ONNX_INT32: return 4;
    case CPHIL_ONNX_UINT8: case CPHIL_ONNX_INT8: return 1;
    case CPHIL_ONNX_INT64: return 8;
    }
    return 0;
}

const char *cphil_onnx_init(cphil_onnx *g, const char *name, cphil_onnx_type type, int ndim,
                            const int64_t *shape, const void *data) {
    if (g->err) return NULL;
    size_t nb = type_size(type);
    if (!nb || ndim < 0 || ndim > 8) {
        set_err(g, CPHIL_E_ARG, "ONNX builder: bad initializer type or rank");
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || !cphil_size_mul(nb, (size_t)shape[i], &nb)) {
            set_err(g, CPHIL_E_ARG, "ONNX builder: bad initializer shape");
            return NULL;
        }
    Onnx__TensorProto *t = ar(g, sizeof *t);
    int64_t *dims = ar(g, sizeof(int64_t) * (size_t)(ndim ? ndim : 1));
    uint8_t *raw = ar(g, nb);
    if (!t || !dims || !raw) return NULL;
    onnx__tensor_proto__init(t);
    for (int i = 0; i < ndim; i++) dims[i] = shape[i];
    if (nb) memcpy(raw, data, nb); /* little-endian host: raw_data is little-endian by spec */
    t->n_dims = (size_t)ndim;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = (int32_t)type;
    t->name = name ? ar_str(g, name) : (char *)fresh(g, "const");
    t->has_raw_data = 1;
    t->raw_data.len = nb;
    t->raw_data.data = raw;
    list_push(g, &g->inits, t);
    return g->err ? NULL : t->name;
}

const char *cphil_onnx_init_f32(cphil_onnx *g, const char *name, int ndim, const int64_t *shape, const float *data) {
    return cphil_onnx_init(g, name, CPHIL_ONNX_FLOAT, ndim, shape, data);
}

const char *cphil_onnx_init_i64(cphil_onnx *g, const char *name, int n, const int64_t *values) {
    return cphil_onnx_init(g, name, CPHIL_ONNX_INT64, 1, (int64_t[]){n}, values);
}

const char *cphil_onnx_scalar_f32(cphil_onnx *g, float v) {
    return cphil_onnx_init(g, NULL, CPHIL_ONNX_FLOAT, 0, NULL, &v);
}

const char *cphil_onnx_scalar_i64(cphil_onnx *g, int64_t v) {
    return cphil_onnx_init(g, NULL, CPHIL_ONNX_INT64, 0, NULL, &v);
}

const char *cphil_onnx_node(cphil_onnx *g, const char *op_type, const char *domain, int n_in,
                            const char *const *in, int n_out, const char **outs, int n_attr,
                            const cphil_onnx_attr *attrs) {
    if (g->err) return NULL;
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            char m[160];
            snprintf(m, sizeof m, "ONNX builder: %s input %d is missing (an earlier step failed)", op_type, i);
            set_err(g, CPHIL_E_INTERNAL, m);
            return NULL;
        }
    Onnx__NodeProto *n = ar(g, sizeof *n);
    char **iv = ar(g, sizeof(char *) * (size_t)(n_in ? n_in : 1));
    char **ov = ar(g, sizeof(char *) * (size_t)(n_out ? n_out : 1));
    Onnx__AttributeProto **av = ar(g, sizeof(void *) * (size_t)(n_attr ? n_attr : 1));
    if (!n || !iv || !ov || !av) return NULL;
    onnx__node_proto__init(n);
    for (int i = 0; i < n_in; i++)
        if (in[i][0] == '\0') iv[i] = (char *)"";
        else iv[i] = ar_str(g, in[i]);
    for (int i = 0; i < n_out; i++) {
        ov[i] = (char *)fresh(g, op_type);
        if (outs) outs[i] = ov[i];
    }
    for (int i = 0; i < n_attr; i++) {
        const cphil_onnx_attr *a = &attrs[i];
        Onnx__AttributeProto *p = ar(g, sizeof *p);
        if (!p) return NULL;
        onnx__attribute_proto__init(p);
        p->name = ar_str(g, a->name);
        p->has_type = 1;
        switch (a->kind) {
        case CPHIL_ONNX_ATTR_INT:
            p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            p->has_i = 1;
            p->i = a->i;
            break;
        case CPHIL_ONNX_ATTR_FLOAT:
            p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
            p->has_f = 1;
            p->f = a->f;
            break;
        case CPHIL_ONNX_ATTR_STRING:
            p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
            p->has_s = 1;
            p->s.data = (uint8_t *)ar_str(g, a->s);
            p->s.len = strlen(a->s);
            break;
        case CPHIL_ONNX_ATTR_INTS: {
            p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            int64_t *v = ar(g, sizeof(int64_t) * (size_t)(a->n ? a->n : 1));
            if (!v) return NULL;
            if (a->n) memcpy(v, a->ints, sizeof(int64_t) * (size_t)a->n);
            p->n_ints = (size_t)a->n;
            p->ints = v;
            break;
        }
        case CPHIL_ONNX_ATTR_FLOATS: {
            p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
            float *v = ar(g, sizeof(float) * (size_t)(a->n ? a->n : 1));
            if (!v) return NULL;
            if (a->n) memcpy(v, a->floats, sizeof(float) * (size_t)a->n);
            p->n_floats = (size_t)a->n;
            p->floats = v;
            break;
        }
        }
        av[i] = p;
    }
    n->n_input = (size_t)n_in;
    n->input = iv;
    n->n_output = (size_t)n_out;
    n->output = ov;
    n->n_attribute = (size_t)n_attr;
    n->attribute = av;
    n->op_type = ar_str(g, op_type);
    n->name = (char *)fresh(g, "node");
    if (domain && *domain) n->domain = ar_str(g, domain);
    list_push(g, &g->nodes, n);
    return g->err ? NULL : ov[0];
}

const char *cphil_onnx_op(cphil_onnx *g, const char *op_type, int n_in, const char *const *in, int n_attr,
                          const cphil_onnx_attr *attrs) {
    return cphil_onnx_node(g, op_type, NULL, n_in, in, 1, NULL, n_attr, attrs);
}

int cphil_onnx_node_count(const cphil_onnx *g) { return (int)g->nodes.n; }

cphil_status cphil_onnx_status(const cphil_onnx *g) {
    if (g->err) return cphil_err(g->err, "%s", g->errmsg);
    return CPHIL_OK;
}

cphil_status cphil_onnx_serialize(cphil_onnx *g, uint8_t **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    if (g->err) return cphil_onnx_status(g);
    if (!g->outputs.n) return cphil_err(CPHIL_E_INTERNAL, "ONNX builder: the graph has no outputs");
    Onnx__GraphProto graph;
    Onnx__ModelProto model;
    onnx__graph_proto__init(&graph);
    onnx__model_proto__init(&model);
    graph.name = g->graph_name;
    graph.n_node = g->nodes.n;
    graph.node = (Onnx__NodeProto **)g->nodes.p;
    graph.n_initializer = g->inits.n;
    graph.initializer = (Onnx__TensorProto **)g->inits.p;
    graph.n_input = g->inputs.n;
    graph.input = (Onnx__ValueInfoProto **)g->inputs.p;
    graph.n_output = g->outputs.n;
    graph.output = (Onnx__ValueInfoProto **)g->outputs.p;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.producer_name = (char *)"cphil";
    model.producer_version = (char *)CPHIL_VERSION_STRING;
    model.doc_string = g->doc;
    model.graph = &graph;
    model.n_opset_import = g->opsets.n;
    model.opset_import = (Onnx__OperatorSetIdProto **)g->opsets.p;
    model.n_metadata_props = g->meta.n;
    model.metadata_props = (Onnx__StringStringEntryProto **)g->meta.p;
    size_t n = onnx__model_proto__get_packed_size(&model);
    if (n > ((size_t)2 << 30) - 1)
        return cphil_err(CPHIL_E_UNSUPPORTED, "ONNX model of %zu bytes is over protobuf's 2 GB limit", n);
    uint8_t *b = cphil_alloc(n ? n : 1);
    if (!b) return cphil_err(CPHIL_E_NOMEM, "ONNX builder: out of memory (%zu bytes)", n);
    size_t w = onnx__model_proto__pack(&model, b);
    if (w != n) {
        cphil_free(b);
        return cphil_err(CPHIL_E_INTERNAL, "ONNX builder: packed %zu bytes, expected %zu", w, n);
    }
    *buf = b;
    *size = n;
    return CPHIL_OK;
}

cphil_status cphil_onnx_write(cphil_onnx *g, const char *path) {
    uint8_t *b;
    size_t n;
    cphil_status s = cphil_onnx_serialize(g, &b, &n);
    if (s) return s;
    s = cphil_file_write_atomic(path, b, n);
    cphil_free(b);
    return s;
}
