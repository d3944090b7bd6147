/* test_npy.c — .npy and .npz: round trips, CRC-32, and interchange with Debian's NumPy in both
 * directions (numpy.load reads ours; we read numpy.save / numpy.savez output, refuse
 * savez_compressed, Fortran order and big-endian with clear messages); damaged inputs. */
#include "export/npy.h"
#include "harness.h"

#include <unistd.h>

TEST(npy_crc32_known_values) {
    CHECK(cphil_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(cphil_crc32(0, "", 0) == 0);
    uint32_t c = cphil_crc32(0, "1234", 4);
    CHECK(cphil_crc32(c, "56789", 5) == 0xCBF43926u); /* incremental */
}

TEST(npy_roundtrip_dtypes_and_ranks) {
    float f[6] = {1, 2, 3, 4, 5, 6};
    int32_t i[4] = {-1, 2, -3, 4};
    const struct { cphil_dtype dt; int ndim; int64_t shape[3]; const void *d; } cases[] = {
        {CPHIL_DT_F32, 2, {2, 3}, f}, {CPHIL_DT_F32, 1, {6}, f}, {CPHIL_DT_F32, 0, {0}, f},
        {CPHIL_DT_I32, 3, {1, 2, 2}, i}, {CPHIL_DT_I8, 1, {4}, i}, {CPHIL_DT_U8, 1, {0}, i},
        {CPHIL_DT_I64, 1, {2}, i}, {CPHIL_DT_F64, 1, {3}, f},
    };
    for (size_t k = 0; k < CPHIL_ARRAY_LEN(cases); k++) {
        uint8_t *b;
        size_t n;
        CHECK(cphil_npy_encode(cases[k].dt, cases[k].ndim, cases[k].shape, cases[k].d, &b, &n) == CPHIL_OK);
        CHECK(b[6] == 1 && ((size_t)b[8] + 10) % 64 == 0);  /* v1.0, data 64-aligned */
        cphil_npy_array a;
        CHECK(cphil_npy_decode(b, n, "x.npy", &a) == CPHIL_OK);
        CHECK(a.dtype == cases[k].dt && a.ndim == cases[k].ndim);
        for (int d = 0; d < a.ndim; d++) CHECK(a.shape[d] == cases[k].shape[d]);
        CHECK(a.nbytes == 0 || !memcmp(a.data, cases[k].d, a.nbytes));
        cphil_npy_array_free(&a);
        cphil_free(b);
    }
    uint8_t *b;
    size_t n;
    CHECK(cphil_npy_encode(CPHIL_DT_BF16, 1, (int64_t[]){1}, f, &b, &n) == CPHIL_E_ARG);
    CHECK(strstr(cphil_last_error(), "BF16"));
}

TEST(npy_decode_rejects_damage) {
    float f[6] = {1, 2, 3, 4, 5, 6};
    uint8_t *b;
    size_t n;
    CHECK(cphil_npy_encode(CPHIL_DT_F32, 2, (int64_t[]){2, 3}, f, &b, &n) == CPHIL_OK);
    cphil_npy_array a;
    for (size_t k = 0; k < n; k++) {
        cphil_status s = cphil_npy_decode(b, k, "cut.npy", &a);
        CHECK_MSG(s == CPHIL_E_TRUNCATED || s == CPHIL_E_FORMAT, "prefix %zu: %d", k, (int)s);
    }
    /* Header edits: replace text in place (same length). */
    const struct { const char *from, *to; cphil_status want; const char *frag; } ed[] = {
        {"'<f4'", "'>f4'", CPHIL_E_UNSUPPORTED, "'>f4'"},
        {"False", "True ", CPHIL_E_UNSUPPORTED, "Fortran"},
        {"(2, 3)", "(2, 4)", CPHIL_E_TRUNCATED, "needs 32"},
        {"'descr'", "'descX'", CPHIL_E_FORMAT, "unknown key"},
        {"(2, 3)", "[2, 3]", CPHIL_E_FORMAT, "tuple"},
    };
    for (size_t k = 0; k < CPHIL_ARRAY_LEN(ed); k++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        char *p = strstr((char *)c + 10, ed[k].from);
        CHECK(p);
        memcpy(p, ed[k].to, strlen(ed[k].to));
        cphil_status s = cphil_npy_decode(c, n, "e.npy", &a);
        free(c);
        CHECK_MSG(s == ed[k].want && strstr(cphil_last_error(), ed[k].frag), "edit %zu: %d %s", k, (int)s, cphil_last_error());
    }
    b[0] = 'X';
    CHECK(cphil_npy_decode(b, n, "m.npy", &a) == CPHIL_E_FORMAT && strstr(cphil_last_error(), "magic"));
    cphil_free(b);
}

static void write_npz(const char *path) {
    float w[6] = {0.5f, -1, 2, -3, 4, 1e-7f};
    int32_t ids[3] = {7, -8, 9};
    cphil_npz_writer *z = NULL;
    CHECK(cphil_npz_writer_open(path, &z) == CPHIL_OK);
    CHECK(cphil_npz_writer_add(z, "input_proj.weight", CPHIL_DT_F32, 2, (int64_t[]){2, 3}, w) == CPHIL_OK);
    CHECK(cphil_npz_writer_add(z, "ids", CPHIL_DT_I32, 1, (int64_t[]){3}, ids) == CPHIL_OK);
    CHECK(cphil_npz_writer_add(z, "ids", CPHIL_DT_I32, 1, (int64_t[]){3}, ids) == CPHIL_E_ARG);
    CHECK(cphil_npz_writer_add(z, "a/b", CPHIL_DT_I32, 1, (int64_t[]){3}, ids) == CPHIL_E_ARG);
    CHECK(cphil_npz_writer_add_string(z, "config", "{\"backbone\": \"mlp\", \"name\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}") == CPHIL_OK);
    CHECK(cphil_npz_writer_close(z) == CPHIL_OK);
}

TEST(npz_roundtrip_and_crc) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.npz", harness_tmpdir());
    write_npz(path);
    cphil_npy_array *a;
    size_t n;
    CHECK(cphil_npz_read(path, &a, &n) == CPHIL_OK);
    CHECK_EQ_INT(n, 3);
    const cphil_npy_array *w = cphil_npz_find(a, n, "input_proj.weight");
    CHECK(w && w->dtype == CPHIL_DT_F32 && w->shape[0] == 2 && w->shape[1] == 3 && ((float *)w->data)[1] == -1);
    const cphil_npy_array *c = cphil_npz_find(a, n, "config");
    CHECK(c && c->dtype == CPHIL_DT_U8);
    CHECK_STR((const char *)c->data, "{\"backbone\": \"mlp\", \"name\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
    cphil_npz_free(a, n);
    /* Flip one data byte: CRC mismatch. */
    uint8_t *b;
    size_t size;
    CHECK(cphil_file_read(path, 1 << 20, &b, &size) == CPHIL_OK);
    b[200] ^= 1;
    CHECK(cphil_npz_decode(b, size, "flip.npz", &a, &n) == CPHIL_E_FORMAT && strstr(cphil_last_error(), "CRC"));
    b[200] ^= 1;
    for (size_t k = 0; k < size; k += 7) {
        cphil_status s = cphil_npz_decode(b, k, "cut.npz", &a, &n);
        CHECK_MSG(s != CPHIL_OK, "prefix %zu accepted", k);
    }
    cphil_free(b);
    /* A failed writer leaves nothing behind. */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/aborted.npz", harness_tmpdir());
    unlink(p2);
    cphil_npz_writer *z;
    CHECK(cphil_npz_writer_open(p2, &z) == CPHIL_OK);
    cphil_npz_writer_abort(z);
    CHECK(access(p2, F_OK) != 0);
}

static bool have_numpy(void) {
    return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

TEST(npz_numpy_interchange) {
    if (!have_numpy()) SKIP("needs /usr/bin/python3 with numpy (apt install python3-numpy)");
    const char *d = harness_tmpdir();
    char ours[512], npy[512], py[512], cmd[4096];
    snprintf(ours, sizeof ours, "%s/ours.npz", d);
    snprintf(npy, sizeof npy, "%s/ours.npy", d);
    snprintf(py, sizeof py, "%s/npz_check.py", d);
    write_npz(ours);
    float big[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
    CHECK(cphil_npy_write(npy, CPHIL_DT_F32, 2, (int64_t[]){3, 4}, big) == CPHIL_OK);
    FILE *f = fopen(py, "w");
    CHECK(f);
    fputs("import json, sys, numpy as np\n"
          "d = sys.argv[1]\n"
          "z = np.load(d + '/ours.npz')\n"
          "assert sorted(z.files) == ['config', 'ids', 'input_proj.weight'], z.files\n"
          "w = z['input_proj.weight']; assert w.dtype == np.float32 and w.shape == (2, 3)\n"
          "assert np.array_equal(w, np.array([[0.5, -1, 2], [-3, 4, 1e-7]], np.float32))\n"
          "assert z['ids'].dtype == np.int32 and z['ids'].tolist() == [7, -8, 9]\n"
          "cfg = json.loads(str(z['config'])); assert cfg['name'] == 'caf\\u00e9 \\U0001F600', cfg\n"
          "a = np.load(d + '/ours.npy'); assert a.shape == (3, 4) and a[2, 3] == 12 and a.flags['C_CONTIGUOUS']\n"
          "rng = np.random.default_rng(0)\n"
          "np.save(d + '/np_f8.npy', rng.standard_normal((2, 5, 7)))\n"
          "np.save(d + '/np_i4_1d.npy', np.arange(5, dtype=np.int32))\n"
          "np.save(d + '/np_scalar.npy', np.float32(3.5))\n"
          "np.save(d + '/np_fortran.npy', np.asfortranarray(np.ones((2, 3), np.float32)))\n"
          "np.save(d + '/np_be.npy', np.ones(3, '>f4'))\n"
          "np.savez(d + '/np_stored.npz', a=np.ones((2, 2), np.float32), b=np.arange(3, dtype=np.int64), c='hi')\n"
          "np.savez_compressed(d + '/np_deflate.npz', a=np.ones(3, np.float32))\n"
          "np.save(d + '/np_f8_sum.npy', np.array(np.load(d + '/np_f8.npy').astype(np.float32).sum(), np.float64))\n"
          "print('numpy ok')\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", py, d);
    CHECK_MSG(system(cmd) == 0, "numpy side failed: %s", cmd);
    char p[512];
    cphil_npy_array a, s;
    snprintf(p, sizeof p, "%s/np_f8.npy", d);
    CHECK(cphil_npy_read(p, &a) == CPHIL_OK);
    CHECK(a.dtype == CPHIL_DT_F64 && a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 5 && a.shape[2] == 7);
    snprintf(p, sizeof p, "%s/np_f8_sum.npy", d);
    CHECK(cphil_npy_read(p, &s) == CPHIL_OK && s.ndim == 0 && s.dtype == CPHIL_DT_F64);
    double sum = 0;
    for (size_t k = 0; k < a.numel; k++) sum += (float)((double *)a.data)[k];
    CHECK_NEAR(sum, *(double *)s.data, 1e-4, 1e-5);
    cphil_npy_array_free(&a);
    cphil_npy_array_free(&s);
    snprintf(p, sizeof p, "%s/np_i4_1d.npy", d);
    CHECK(cphil_npy_read(p, &a) == CPHIL_OK && a.dtype == CPHIL_DT_I32 && a.ndim == 1 && ((int32_t *)a.data)[4] == 4);
    cphil_npy_array_free(&a);
    snprintf(p, sizeof p, "%s/np_scalar.npy", d);
    CHECK(cphil_npy_read(p, &a) == CPHIL_OK && a.ndim == 0 && *(float *)a.data == 3.5f);
    cphil_npy_array_free(&a);
    snprintf(p, sizeof p, "%s/np_fortran.npy", d);
    CHECK(cphil_npy_read(p, &a) == CPHIL_E_UNSUPPORTED && strstr(cphil_last_error(), "Fortran"));
    snprintf(p, sizeof p, "%s/np_be.npy", d);
    CHECK(cphil_npy_read(p, &a) == CPHIL_E_UNSUPPORTED && strstr(cphil_last_error(), ">f4"));
    cphil_npy_array *z;
    size_t n;
    snprintf(p, sizeof p, "%s/np_stored.npz", d);
    CHECK_MSG(cphil_npz_read(p, &z, &n) == CPHIL_OK, "%s", cphil_last_error());
    CHECK(n == 3 && cphil_npz_find(z, n, "a")->numel == 4 && ((int64_t *)cphil_npz_find(z, n, "b")->data)[2] == 2);
    CHECK_STR((const char *)cphil_npz_find(z, n, "c")->data, "hi");
    cphil_npz_free(z, n);
    snprintf(p, sizeof p, "%s/np_deflate.npz", d);
    CHECK(cphil_npz_read(p, &z, &n) == CPHIL_E_UNSUPPORTED && strstr(cphil_last_error(), "savez_compressed"));
}

int main(void) {
    RUN(npy_crc32_known_values);
    RUN(npy_roundtrip_dtypes_and_ranks);
    RUN(npy_decode_rejects_damage);
    RUN(npz_roundtrip_and_crc);
    RUN(npz_numpy_interchange);
    return harness_done();
}
