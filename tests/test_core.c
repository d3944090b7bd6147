/* test_core.c — errors, allocation hook, atomic writes, JSON output. */
#include "core/core.h"
#include "harness.h"

#include <unistd.h>

TEST(error_message_and_prefix) {
    cphil_status s = cphil_err(CPHIL_E_FORMAT, "offset %d: bad byte", 12);
    CHECK(s == CPHIL_E_FORMAT);
    cphil_err_prefix(s, "%s: ", "a.slp");
    CHECK_STR(cphil_last_error(), "a.slp: offset 12: bad byte");
    CHECK_STR(cphil_status_name(CPHIL_E_TRUNCATED), "truncated");
}

static size_t n_allocs;
static void *count_alloc(size_t size, size_t align, void *user) {
    (void)user;
    n_allocs++;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void count_free(void *p, void *user) { (void)user; free(p); }
static void *fail_alloc(size_t size, size_t align, void *user) { (void)size; (void)align; (void)user; return NULL; }

TEST(allocator_hook_counts_and_fails) {
    cphil_allocator a = {count_alloc, count_free, NULL};
    cphil_set_allocator(&a);
    n_allocs = 0;
    void *p = cphil_alloc(100);
    CHECK(p && ((uintptr_t)p % 64) == 0);
    cphil_free(p);
    CHECK_EQ_INT(n_allocs, 1);
    cphil_allocator f = {fail_alloc, count_free, NULL};
    cphil_set_allocator(&f);
    CHECK(cphil_alloc(10) == NULL);
    CHECK(cphil_calloc(SIZE_MAX / 2, 4) == NULL);
    cphil_set_allocator(NULL);
    size_t out;
    CHECK(!cphil_size_mul(SIZE_MAX / 2, 3, &out));
    CHECK(cphil_size_add(1, 2, &out) && out == 3);
}

TEST(atomic_write_replaces_whole_file) {
    char path[512];
    snprintf(path, sizeof path, "%s/core_atomic.txt", harness_tmpdir());
    CHECK(cphil_file_write_atomic(path, "hello", 5) == CPHIL_OK);
    uint8_t *d;
    size_t n;
    CHECK(cphil_file_read(path, 1 << 20, &d, &n) == CPHIL_OK);
    CHECK(n == 5 && !memcmp(d, "hello", 5));
    cphil_free(d);
    cphil_atomic_file af;
    CHECK(cphil_atomic_open(&af, path) == CPHIL_OK);
    CHECK(cphil_atomic_write(&af, "xx", 2) == CPHIL_OK);
    cphil_atomic_abort(&af); /* an aborted write leaves the old file */
    CHECK(cphil_file_read(path, 1 << 20, &d, &n) == CPHIL_OK);
    CHECK(n == 5);
    cphil_free(d);
    CHECK(cphil_file_read(path, 2, &d, &n) == CPHIL_E_FORMAT); /* size guard */
    CHECK(cphil_file_read(harness_tmpdir(), 100, &d, &n) == CPHIL_E_IO);
    CHECK(strstr(cphil_last_error(), "directory") != NULL);
    CHECK(cphil_file_read("/nonexistent/x", 100, &d, &n) == CPHIL_E_IO);
}

TEST(json_writer_escapes_and_nests) {
    char buf[512] = {0};
    FILE *f = fmemopen(buf, sizeof buf, "w");
    cphil_json_out j;
    cphil_json_begin(&j, f);
    cphil_json_obj_open(&j);
    cphil_json_key(&j, "a");
    cphil_json_str(&j, "q\"\n\x01");
    cphil_json_key(&j, "b");
    cphil_json_arr_open(&j);
    cphil_json_int(&j, -3);
    cphil_json_num(&j, 0.5);
    cphil_json_null(&j);
    cphil_json_arr_close(&j);
    cphil_json_key(&j, "c");
    cphil_json_bool(&j, true);
    cphil_json_obj_close(&j);
    fclose(f);
    CHECK_STR(buf, "{\"a\":\"q\\\"\\n\\u0001\",\"b\":[-3,0.5,null],\"c\":true}");
}

int main(void) {
    RUN(error_message_and_prefix);
    RUN(allocator_hook_counts_and_fails);
    RUN(atomic_write_replaces_whole_file);
    RUN(json_writer_escapes_and_nests);
    return harness_done();
}
