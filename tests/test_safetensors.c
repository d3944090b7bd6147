/* test_safetensors.c — safetensors writer/reader round trips (memory, read, mmap), alignment,
 * every validation rule on hand-made bad headers, truncations, allocation failures, and
 * interchange with Debian's Python + NumPy in both directions (a 15-line reader and writer in
 * the test, since the safetensors package is not installed). */
#include "core/safetensors.h"
#include "harness.h"

#include <unistd.h>

static const float F32V[6] = {1.5f, -2.25f, 3.0f, 0.0f, 1e-3f, -7.0f};
static const int8_t I8V[5] = {-128, -1, 0, 1, 127};
static const uint8_t U8V[3] = {0, 128, 255};
static const int32_t I32V[3] = {-5, 0, 2147483647};
static const int64_t I64V[2] = {-9000000000LL, 42};

static cphil_st_writer *make_writer(uint16_t *bf, uint16_t *hf) {
    cphil_st_writer *w = NULL;
    CHECK(cphil_st_writer_new(&w) == CPHIL_OK);
    for (int i = 0; i < 6; i++) bf[i] = cphil_f32_to_bf16(F32V[i]);
    /* f16 of 1.5, -2.25, 3, 0, 0.000999 (0x1418), -7 */
    const uint16_t h[6] = {0x3E00, 0xC080, 0x4200, 0x0000, 0x1418, 0xC700};
    memcpy(hf, h, sizeof h);
    CHECK(cphil_st_writer_add(w, "u8", CPHIL_DT_U8, 1, (int64_t[]){3}, U8V) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "layer.weight", CPHIL_DT_F32, 2, (int64_t[]){2, 3}, F32V) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "i8", CPHIL_DT_I8, 1, (int64_t[]){5}, I8V) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "bf", CPHIL_DT_BF16, 2, (int64_t[]){3, 2}, bf) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "hf", CPHIL_DT_F16, 1, (int64_t[]){6}, hf) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "i32", CPHIL_DT_I32, 1, (int64_t[]){3}, I32V) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "i64", CPHIL_DT_I64, 1, (int64_t[]){2}, I64V) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "scalar", CPHIL_DT_F32, 0, NULL, &F32V[1]) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "empty", CPHIL_DT_F32, 2, (int64_t[]){0, 4}, NULL) == CPHIL_OK);
    CHECK(cphil_st_writer_meta(w, "config", "{\"backbone\": \"mlp\", \"quote\": \"a\\\"b\"}") == CPHIL_OK);
    CHECK(cphil_st_writer_meta(w, "format", "pt") == CPHIL_OK);
    CHECK(cphil_st_writer_meta(w, "format", "cphil") == CPHIL_OK); /* last value wins */
    return w;
}

static void check_contents(const cphil_st_file *f) {
    CHECK_EQ_INT(cphil_st_count(f), 9);
    const cphil_st_tensor *t = cphil_st_find(f, "layer.weight");
    CHECK(cphil_st_expect(f, t, "layer.weight", 2, (int64_t[]){2, 3}) == CPHIL_OK);
    CHECK(cphil_st_expect(f, t, "layer.weight", 2, (int64_t[]){-1, 3}) == CPHIL_OK);
    CHECK(cphil_st_expect(f, t, "layer.weight", 2, (int64_t[]){3, 2}) == CPHIL_E_MISMATCH);
    CHECK(strstr(cphil_last_error(), "[2, 3]") && strstr(cphil_last_error(), "[3, 2]"));
    CHECK(cphil_st_expect(f, cphil_st_find(f, "nope"), "nope", 1, (int64_t[]){1}) == CPHIL_E_FORMAT);
    CHECK(t->dtype == CPHIL_DT_F32 && t->numel == 6 && !memcmp(t->data, F32V, sizeof F32V));
    CHECK(((uintptr_t)t->data % 4) == 0);
    float got[6];
    t = cphil_st_find(f, "bf");
    CHECK(t && t->dtype == CPHIL_DT_BF16 && ((uintptr_t)t->data % 2) == 0);
    CHECK(cphil_st_to_f32(t, got, 6, true) == CPHIL_OK);
    for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], F32V[i], 1e-6, 1e-2);
    t = cphil_st_find(f, "hf");
    CHECK(cphil_st_to_f32(t, got, 6, true) == CPHIL_OK);
    for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], F32V[i], 1e-6, 1e-3);
    CHECK(cphil_st_to_f32(cphil_st_find(f, "i8"), got, 5, false) == CPHIL_E_MISMATCH);
    t = cphil_st_find(f, "i64");
    CHECK(t && ((uintptr_t)t->data % 8) == 0 && !memcmp(t->data, I64V, sizeof I64V));
    t = cphil_st_find(f, "i32");
    CHECK(t && !memcmp(t->data, I32V, sizeof I32V));
    t = cphil_st_find(f, "i8");
    CHECK(t && !memcmp(t->data, I8V, sizeof I8V));
    t = cphil_st_find(f, "u8");
    CHECK(t && !memcmp(t->data, U8V, sizeof U8V));
    t = cphil_st_find(f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && !memcmp(t->data, &F32V[1], 4));
    t = cphil_st_find(f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0);
    CHECK_STR(cphil_st_meta(f, "config"), "{\"backbone\": \"mlp\", \"quote\": \"a\\\"b\"}");
    CHECK_STR(cphil_st_meta(f, "format"), "cphil");
    CHECK(cphil_st_meta(f, "absent") == NULL);
    CHECK_EQ_INT(cphil_st_meta_count(f), 2);
}

TEST(st_roundtrip_memory_file_mmap) {
    uint16_t bf[6], hf[6];
    cphil_st_writer *w = make_writer(bf, hf);
    uint8_t *buf;
    size_t size;
    CHECK(cphil_st_writer_to_memory(w, &buf, &size) == CPHIL_OK);
    uint64_t hl;
    memcpy(&hl, buf, 8);
    CHECK((8 + hl) % 8 == 0); /* data buffer starts 8-aligned */
    cphil_st_file *f = NULL;
    CHECK(cphil_st_open_memory(buf, size, false, "mem", &f) == CPHIL_OK);
    check_contents(f);
    cphil_st_close(f);
    char path[512];
    snprintf(path, sizeof path, "%s/st_roundtrip.safetensors", harness_tmpdir());
    CHECK(cphil_st_writer_write(w, path) == CPHIL_OK);
    cphil_st_writer_free(w);
    uint8_t *fb;
    size_t fs;
    CHECK(cphil_file_read(path, 1 << 20, &fb, &fs) == CPHIL_OK);
    CHECK(fs == size && !memcmp(fb, buf, size)); /* deterministic */
    cphil_free(fb);
    cphil_free(buf);
    CHECK(cphil_st_open(path, 0, &f) == CPHIL_OK);
    check_contents(f);
    cphil_st_close(f);
    CHECK(cphil_st_open(path, CPHIL_ST_MMAP, &f) == CPHIL_OK);
    check_contents(f);
    cphil_st_close(f);
    CHECK(cphil_st_open("/nonexistent/x.safetensors", 0, &f) == CPHIL_E_IO && f == NULL);
    CHECK(strstr(cphil_last_error(), "/nonexistent/x.safetensors"));
    CHECK(cphil_st_open("/nonexistent/x.safetensors", CPHIL_ST_MMAP, &f) == CPHIL_E_IO);
}

TEST(st_writer_rejects_bad_arguments) {
    cphil_st_writer *w = NULL;
    CHECK(cphil_st_writer_new(&w) == CPHIL_OK);
    float x = 1;
    CHECK(cphil_st_writer_add(w, "a", CPHIL_DT_F32, 1, (int64_t[]){1}, &x) == CPHIL_OK);
    CHECK(cphil_st_writer_add(w, "a", CPHIL_DT_F32, 1, (int64_t[]){1}, &x) == CPHIL_E_ARG);
    CHECK(strstr(cphil_last_error(), "duplicate"));
    CHECK(cphil_st_writer_add(w, "__metadata__", CPHIL_DT_F32, 1, (int64_t[]){1}, &x) == CPHIL_E_ARG);
    CHECK(cphil_st_writer_add(w, "", CPHIL_DT_F32, 1, (int64_t[]){1}, &x) == CPHIL_E_ARG);
    CHECK(cphil_st_writer_add(w, "b", CPHIL_DT_F32, 1, (int64_t[]){-1}, &x) == CPHIL_E_ARG);
    CHECK(cphil_st_writer_add(w, "c", CPHIL_DT_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, &x) == CPHIL_E_ARG);
    CHECK(cphil_st_writer_add(w, "d", CPHIL_DT_F32, 1, (int64_t[]){1}, NULL) == CPHIL_E_ARG);
    CHECK(cphil_st_writer_write(w, "/nonexistent/dir/x.safetensors") == CPHIL_E_IO);
    cphil_st_writer_free(w);
}

/* A file from a header text and `data` bytes of zeros. */
static uint8_t *mk(const char *hdr, size_t data, size_t *size) {
    size_t hl = strlen(hdr);
    *size = 8 + hl + data;
    uint8_t *b = calloc(1, *size);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    return b;
}

typedef struct bad_st {
    const char *hdr;
    size_t data;
    cphil_status want;
    const char *fragment;
} bad_st;

TEST(st_rejects_bad_headers) {
    static const bad_st cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, CPHIL_E_FORMAT, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, CPHIL_E_FORMAT, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, CPHIL_E_TRUNCATED, "run past"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, CPHIL_E_FORMAT, "needs 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, CPHIL_E_FORMAT, "after the last tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, CPHIL_E_FORMAT, "duplicate key \"a\""},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, CPHIL_E_UNSUPPORTED, "dtype \"Q4\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, CPHIL_E_FORMAT, "non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, CPHIL_E_FORMAT, "non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, CPHIL_E_FORMAT, "begin <= end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, CPHIL_E_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, CPHIL_E_FORMAT, "data_offsets"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, CPHIL_E_FORMAT, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, CPHIL_E_FORMAT, "unknown field"},
        {"{\"a\":[1]}", 0, CPHIL_E_FORMAT, "expected {dtype"},
        {"{\"__metadata__\":{\"k\":1}}", 0, CPHIL_E_FORMAT, "expected a string"},
        {"{\"__metadata__\":[]}", 0, CPHIL_E_FORMAT, "__metadata__"},
        {"[1]", 0, CPHIL_E_FORMAT, "does not start with '{'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, CPHIL_E_FORMAT, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, CPHIL_E_UNSUPPORTED, "rank"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, CPHIL_E_FORMAT, "JSON offset"},
        {"{}", 4, CPHIL_E_FORMAT, "no tensors"},
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(cases); i++) {
        size_t size;
        uint8_t *b = mk(cases[i].hdr, cases[i].data, &size);
        cphil_st_file *f = NULL;
        cphil_status s = cphil_st_open_memory(b, size, true, "bad.safetensors", &f);
        free(b);
        CHECK_MSG(s == cases[i].want && !f, "case %zu: status %d (want %d): %s", i, (int)s, (int)cases[i].want, cphil_last_error());
        CHECK_MSG(strstr(cphil_last_error(), cases[i].fragment) && strstr(cphil_last_error(), "bad.safetensors"),
                  "case %zu: message '%s' lacks '%s'", i, cphil_last_error(), cases[i].fragment);
    }
    /* Header length: absurd, past the end, too short a file. */
    uint8_t b[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    cphil_st_file *f = NULL;
    CHECK(cphil_st_open_memory(b, 16, false, "x", &f) == CPHIL_E_FORMAT && strstr(cphil_last_error(), "absurd"));
    b[0] = 100; memset(b + 1, 0, 7);
    CHECK(cphil_st_open_memory(b, 16, false, "x", &f) == CPHIL_E_TRUNCATED && strstr(cphil_last_error(), "past the end"));
    CHECK(cphil_st_open_memory(b, 5, false, "x", &f) == CPHIL_E_TRUNCATED);
}

TEST(st_every_truncation_fails_cleanly) {
    uint16_t bf[6], hf[6];
    cphil_st_writer *w = make_writer(bf, hf);
    uint8_t *buf;
    size_t size;
    CHECK(cphil_st_writer_to_memory(w, &buf, &size) == CPHIL_OK);
    cphil_st_writer_free(w);
    for (size_t k = 0; k < size; k++) {
        cphil_st_file *f = NULL;
        /* copy=true so ASan sees reads past k */
        cphil_status s = cphil_st_open_memory(buf, k, true, "cut", &f);
        CHECK_MSG(s == CPHIL_E_TRUNCATED || s == CPHIL_E_FORMAT, "prefix %zu: status %d", k, (int)s);
        CHECK(!f);
    }
    /* Flip each header byte: never crashes (some flips stay valid, e.g. inside a name). */
    for (size_t k = 8; k < 8 + 64 && k < size; k++) {
        buf[k] ^= 0x5A;
        cphil_st_file *f = NULL;
        if (cphil_st_open_memory(buf, size, true, "flip", &f) == CPHIL_OK) cphil_st_close(f);
        buf[k] ^= 0x5A;
    }
    cphil_free(buf);
}

static size_t fail_after;
static void *failing_alloc(size_t size, size_t align, void *user) {
    (void)user;
    if (fail_after == 0) return NULL;
    fail_after--;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void plain_free(void *p, void *user) { (void)user; free(p); }

TEST(st_allocation_failures_are_errors) {
    uint16_t bf[6], hf[6];
    cphil_st_writer *w = make_writer(bf, hf);
    uint8_t *buf;
    size_t size;
    CHECK(cphil_st_writer_to_memory(w, &buf, &size) == CPHIL_OK);
    cphil_st_writer_free(w);
    cphil_allocator a = {failing_alloc, plain_free, NULL};
    bool succeeded = false;
    for (size_t k = 0; k < 20 && !succeeded; k++) {
        fail_after = k;
        cphil_set_allocator(&a);
        cphil_st_file *f = NULL;
        cphil_status s = cphil_st_open_memory(buf, size, true, "m", &f);
        cphil_set_allocator(NULL);
        CHECK_MSG(s == CPHIL_OK || s == CPHIL_E_NOMEM, "k=%zu status %d", k, (int)s);
        if (s == CPHIL_OK) succeeded = true;
        cphil_st_close(f);
    }
    CHECK(succeeded);
    cphil_free(buf);
}

TEST(st_half_conversions) {
    CHECK(cphil_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(cphil_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(cphil_f32_to_bf16(1.00390625f) == 0x3F80);      /* tie -> even */
    CHECK(cphil_f32_to_bf16(1.01171875f) == 0x3F82);      /* tie -> even (up) */
    CHECK(isnan(cphil_bf16_to_f32(cphil_f32_to_bf16(NAN))));
    CHECK(cphil_f16_to_f32(0x3C00) == 1.0f);
    CHECK(cphil_f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    CHECK(cphil_f16_to_f32(0x7C00) == INFINITY);
    CHECK(cphil_f16_to_f32(0xFBFF) == -65504.0f);
}

static bool have_numpy(void) {
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/* Python reads what we wrote (header JSON + numpy.frombuffer), and writes a file for us with
 * its own ordering and padding, which we read. */
TEST(st_python_numpy_interchange) {
    if (!have_numpy()) SKIP("needs /usr/bin/python3 with numpy (apt install python3-numpy)");
    uint16_t bf[6], hf[6];
    cphil_st_writer *w = make_writer(bf, hf);
    char path[512], py[512], path2[512], cmd[2048];
    snprintf(path, sizeof path, "%s/st_py.safetensors", harness_tmpdir());
    snprintf(path2, sizeof path2, "%s/st_from_py.safetensors", harness_tmpdir());
    snprintf(py, sizeof py, "%s/st_check.py", harness_tmpdir());
    CHECK(cphil_st_writer_write(w, path) == CPHIL_OK);
    cphil_st_writer_free(w);
    FILE *f = fopen(py, "w");
    CHECK(f);
    fputs("import json, struct, sys, numpy as np\n"
          "def load(p):\n"
          "    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); d = b[8+n:]\n"
          "    dt = {'F32': '<f4', 'F16': '<f2', 'I8': 'i1', 'U8': 'u1', 'I32': '<i4', 'I64': '<i8', 'BF16': '<u2'}\n"
          "    out = {k: np.frombuffer(d[v['data_offsets'][0]:v['data_offsets'][1]], dt[v['dtype']]).reshape(v['shape'])\n"
          "           for k, v in h.items() if k != '__metadata__'}\n"
          "    return out, h.get('__metadata__', {})\n"
          "t, m = load(sys.argv[1])\n"
          "assert np.array_equal(t['layer.weight'], np.array([[1.5, -2.25, 3.0], [0.0, 1e-3, -7.0]], np.float32))\n"
          "assert np.allclose(t['hf'].astype(np.float32), t['layer.weight'].ravel(), rtol=1e-3)\n"
          "bf = (t['bf'].astype(np.uint32) << 16).view(np.float32)\n"
          "assert bf.shape == (3, 2) and np.allclose(bf.ravel(), t['layer.weight'].ravel(), rtol=1e-2)\n"
          "assert t['i8'].tolist() == [-128, -1, 0, 1, 127] and t['u8'].tolist() == [0, 128, 255]\n"
          "assert t['i32'].tolist() == [-5, 0, 2147483647] and t['i64'].tolist() == [-9000000000, 42]\n"
          "assert t['scalar'].shape == () and float(t['scalar']) == -2.25 and t['empty'].shape == (0, 4)\n"
          "assert json.loads(m['config'])['quote'] == 'a\"b' and m['format'] == 'cphil'\n"
          "# now write one the way the reference writer does (names sorted, header padded to 8)\n"
          "ts = {'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'ids': np.array([3, -1], np.int64)}\n"
          "hdr, data = {'__metadata__': {'who': 'python'}}, b''\n"
          "for k in sorted(ts):\n"
          "    a = ts[k]; hdr[k] = {'dtype': {'float32': 'F32', 'int64': 'I64'}[str(a.dtype)], 'shape': list(a.shape),\n"
          "                         'data_offsets': [len(data), len(data) + a.nbytes]}; data += a.tobytes()\n"
          "hb = json.dumps(hdr).encode(); hb += b' ' * (-len(hb) % 8)\n"
          "open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hb)) + hb + data)\n"
          "print('python ok')\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s", py, path, path2);
    CHECK_MSG(system(cmd) == 0, "python check failed: %s", cmd);
    cphil_st_file *sf = NULL;
    CHECK(cphil_st_open(path2, CPHIL_ST_MMAP, &sf) == CPHIL_OK);
    const cphil_st_tensor *t = cphil_st_find(sf, "w");
    float want[6] = {0, 1, 2, 3, 4, 5}, got[6];
    CHECK(cphil_st_expect(sf, t, "w", 2, (int64_t[]){2, 3}) == CPHIL_OK);
    CHECK(cphil_st_to_f32(t, got, 6, true) == CPHIL_OK && !memcmp(got, want, sizeof want));
    t = cphil_st_find(sf, "ids");
    int64_t ids[2];
    memcpy(ids, t->data, 16);
    CHECK(t->dtype == CPHIL_DT_I64 && ids[0] == 3 && ids[1] == -1);
    CHECK_STR(cphil_st_meta(sf, "who"), "python");
    cphil_st_close(sf);
}

int main(void) {
    RUN(st_roundtrip_memory_file_mmap);
    RUN(st_writer_rejects_bad_arguments);
    RUN(st_rejects_bad_headers);
    RUN(st_every_truncation_fails_cleanly);
    RUN(st_allocation_failures_are_errors);
    RUN(st_half_conversions);
    RUN(st_python_numpy_interchange);
    return harness_done();
}
