/* test_json.c — the strict JSON reader: values, exact integers, escapes, and malformed inputs
 * (each must fail with CPHIL_E_FORMAT and the right byte offset, never crash). */
#include "core/json.h"
#include "harness.h"

static cphil_json_doc *parse_ok(const char *s) {
    cphil_json_doc *d = NULL;
    cphil_status st = cphil_json_parse(s, strlen(s), &d);
    if (st) h_fail_at(__FILE__, __LINE__, "parse of '%s' failed: %s", s, cphil_last_error());
    return d;
}

TEST(json_values) {
    const char *t = " {\"a\": [1, -2, 3.5, 1e3, true, false, null], \"s\": \"x\\u00e9\\n\\ud83d\\ude00\", \"o\": {}, \"e\": []} ";
    cphil_json_doc *d = parse_ok(t);
    const cphil_json_value *r = cphil_json_root(d);
    CHECK(r->type == CPHIL_JSON_OBJECT && r->len == 4);
    const cphil_json_value *a = cphil_json_get(r, "a");
    CHECK(a && a->type == CPHIL_JSON_ARRAY && a->len == 7);
    int64_t i;
    CHECK(cphil_json_as_int64(&a->items[0], &i) && i == 1);
    CHECK(cphil_json_as_int64(&a->items[1], &i) && i == -2);
    CHECK(!cphil_json_as_int64(&a->items[2], &i));
    CHECK(a->items[2].num == 3.5 && a->items[3].num == 1000.0 && !a->items[3].is_int);
    CHECK(a->items[4].type == CPHIL_JSON_BOOL && a->items[4].b && !a->items[5].b);
    CHECK(a->items[6].type == CPHIL_JSON_NULL);
    const char *s = cphil_json_as_string(cphil_json_get(r, "s"));
    CHECK_STR(s, "x\xc3\xa9\n\xf0\x9f\x98\x80");
    CHECK(cphil_json_get(r, "o")->type == CPHIL_JSON_OBJECT && cphil_json_get(r, "o")->len == 0);
    CHECK(cphil_json_get(r, "e")->len == 0);
    CHECK(cphil_json_get(r, "missing") == NULL);
    CHECK_EQ_INT(a->offset, 7);
    cphil_json_free(d);
}

TEST(json_exact_int64) {
    cphil_json_doc *d = parse_ok("[9007199254740993, -9223372036854775808, 9223372036854775807, 9223372036854775808, 0, -0]");
    const cphil_json_value *r = cphil_json_root(d);
    int64_t i;
    CHECK(cphil_json_as_int64(&r->items[0], &i) && i == 9007199254740993LL); /* not representable as double */
    CHECK(cphil_json_as_int64(&r->items[1], &i) && i == INT64_MIN);
    CHECK(cphil_json_as_int64(&r->items[2], &i) && i == INT64_MAX);
    CHECK(!r->items[3].is_int && r->items[3].num > 9.2e18);
    CHECK(cphil_json_as_int64(&r->items[4], &i) && i == 0);
    CHECK(cphil_json_as_int64(&r->items[5], &i) && i == 0);
    cphil_json_free(d);
}

TEST(json_duplicate_keys_large_object) {
    /* 40 members (sorted check path) with a duplicate at the end. */
    char buf[2048];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{");
    for (int k = 0; k < 40; k++) n += (size_t)snprintf(buf + n, sizeof buf - n, "\"k%d\":%d,", k, k);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\"k7\":1}");
    cphil_json_doc *d = NULL;
    CHECK(cphil_json_parse(buf, n, &d) == CPHIL_E_FORMAT && !d);
    CHECK(strstr(cphil_last_error(), "duplicate key \"k7\""));
    buf[n - 6] = 'x'; /* "x7" is new: ok */
    d = NULL;
    CHECK(cphil_json_parse(buf, n, &d) == CPHIL_OK);
    cphil_json_free(d);
}

typedef struct bad_case {
    const char *text;
    size_t offset;        /* expected offset in the message */
    const char *fragment; /* expected words */
} bad_case;

TEST(json_malformed_inputs) {
    static const bad_case cases[] = {
        {"", 0, "unexpected end"},
        {"   ", 3, "unexpected end"},
        {"{", 0, "unterminated object"},
        {"[1,]", 3, "expected a value"},
        {"{\"a\":1,}", 7, "expected a string key"},
        {"{\"a\" 1}", 5, "expected ':'"},
        {"[1 2]", 3, "expected ',' or ']'"},
        {"01", 0, "leading zero"},
        {"-", 0, "expected a digit"},
        {"1.", 2, "after '.'"},
        {"1e", 2, "exponent"},
        {"NaN", 0, "expected a value"},
        {"tru", 0, "expected a value"},
        {"\"abc", 0, "unterminated string"},
        {"\"a\tb\"", 2, "control character"},
        {"\"\\x\"", 1, "unknown escape"},
        {"\"\\u12\"", 1, "4 hex digits"},
        {"\"\\ud800\"", 1, "low surrogate"},
        {"\"\\udc00\"", 1, "lone low surrogate"},
        {"\"\xc0\xaf\"", 1, "invalid UTF-8"},
        {"\"\xed\xa0\x80\"", 1, "invalid UTF-8"},
        {"\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"},
        {"{} x", 3, "after the top-level value"},
        {"{\"a\":1,\"a\":2}", 11, "duplicate key"},
        {"/* c */ 1", 0, "expected a value"},
    };
    for (size_t i = 0; i < CPHIL_ARRAY_LEN(cases); i++) {
        cphil_json_doc *d = NULL;
        cphil_status s = cphil_json_parse(cases[i].text, strlen(cases[i].text), &d);
        CHECK_MSG(s == CPHIL_E_FORMAT && d == NULL, "case %zu ('%s') returned %d", i, cases[i].text, (int)s);
        char want[64];
        snprintf(want, sizeof want, "JSON offset %zu:", cases[i].offset);
        CHECK_MSG(strstr(cphil_last_error(), want) && strstr(cphil_last_error(), cases[i].fragment),
                  "case %zu ('%s'): message '%s', wanted '%s' and '%s'", i, cases[i].text, cphil_last_error(), want,
                  cases[i].fragment);
    }
}

TEST(json_depth_limit_and_not_nul_terminated) {
    char deep[200];
    memset(deep, '[', sizeof deep);
    cphil_json_doc *d = NULL;
    CHECK(cphil_json_parse(deep, sizeof deep, &d) == CPHIL_E_FORMAT);
    CHECK(strstr(cphil_last_error(), "nesting"));
    /* Parsing stops at len: "[1]" followed by garbage outside the range is fine. */
    const char *t = "[1]xyz";
    CHECK(cphil_json_parse(t, 3, &d) == CPHIL_OK);
    cphil_json_free(d);
    /* A number at the very end of the buffer (no terminator after it). */
    char num[3] = {'4', '2', '7'};
    CHECK(cphil_json_parse(num, 2, &d) == CPHIL_OK);
    int64_t v;
    CHECK(cphil_json_as_int64(cphil_json_root(d), &v) && v == 42);
    cphil_json_free(d);
}

/* Every prefix of a valid document must fail cleanly (truncation), never crash. */
TEST(json_every_truncation_fails_cleanly) {
    const char *t = "{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"s\":\"\\u00e9\\ud83d\\ude00\"}";
    size_t n = strlen(t);
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, t, k);
        cphil_json_doc *d = NULL;
        cphil_status s = cphil_json_parse(copy, k, &d);
        free(copy);
        CHECK_MSG(s == CPHIL_E_FORMAT, "prefix %zu parsed", k);
    }
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

TEST(json_allocation_failures) {
    const char *t = "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"e\"}";
    cphil_allocator a = {failing_alloc, plain_free, NULL};
    for (size_t k = 0; k < 12; k++) {
        fail_after = k;
        cphil_set_allocator(&a);
        cphil_json_doc *d = NULL;
        cphil_status s = cphil_json_parse(t, strlen(t), &d);
        cphil_set_allocator(NULL);
        CHECK(s == CPHIL_OK || s == CPHIL_E_NOMEM);
        cphil_json_free(d);
    }
}

int main(void) {
    RUN(json_values);
    RUN(json_exact_int64);
    RUN(json_duplicate_keys_large_object);
    RUN(json_malformed_inputs);
    RUN(json_depth_limit_and_not_nul_terminated);
    RUN(json_every_truncation_fails_cleanly);
    RUN(json_allocation_failures);
    return harness_done();
}
