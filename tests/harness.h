/* harness.h — the tiny test framework of cphil's C tests (header-only).
 *
 *   TEST(name) { CHECK(x == 1); CHECK_NEAR(a, b, atol, rtol); ... }
 *   int main(void) { RUN(name); ...; return harness_done(); }
 *
 * Each test prints "PASS name", "FAIL name: file:line: message" or "SKIP name: reason"; the
 * last line of an executable is "# passed=N failed=N skipped=N", which tests/run_tests.sh sums
 * into the final "N passed, N failed". A failed CHECK ends the current test (not the process).
 */
#ifndef CPHIL_TEST_HARNESS_H
#define CPHIL_TEST_HARNESS_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define H_UNUSED __attribute__((unused))
static int h_passed, h_failed, h_skipped;
static jmp_buf h_jmp;
static char h_skip_reason[512];

#define TEST(name) static void name(void)

H_UNUSED static void h_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stdout, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    longjmp(h_jmp, 1);
}

#define CHECK(cond) \
    do { if (!(cond)) h_fail_at(__FILE__, __LINE__, "CHECK(%s) failed", #cond); } while (0)
#define CHECK_MSG(cond, ...) \
    do { if (!(cond)) h_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b) \
    do { long long _a = (long long)(a), _b = (long long)(b); \
         if (_a != _b) h_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b); } while (0)
#define CHECK_STR(a, b) \
    do { const char *_a = (a), *_b = (b); \
         if (!_a || !_b || strcmp(_a, _b)) h_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)
#define CHECK_NEAR(a, b, atol, rtol) \
    do { double _a = (double)(a), _b = (double)(b); \
         if (!(fabs(_a - _b) <= (atol) + (rtol) * fabs(_b))) \
             h_fail_at(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (atol %g rtol %g)", #a, #b, _a, _b, (double)(atol), (double)(rtol)); } while (0)
/* Skip the current test with a reason (e.g. data missing). */
#define SKIP(...) \
    do { snprintf(h_skip_reason, sizeof h_skip_reason, __VA_ARGS__); longjmp(h_jmp, 2); } while (0)

#define RUN(name) h_run(#name, name)

H_UNUSED static void h_run(const char *name, void (*fn)(void)) {
    const char *only = getenv("TEST_ONLY"); /* run only the tests whose name contains it */
    if (only && *only && !strstr(name, only)) return;
    int r = setjmp(h_jmp);
    if (r == 0) {
        fn();
        h_passed++;
        fprintf(stdout, "PASS %s\n", name);
    } else if (r == 1) {
        h_failed++;
        fprintf(stdout, "FAIL %s\n", name);
    } else {
        h_skipped++;
        fprintf(stdout, "SKIP %s: %s\n", name, h_skip_reason);
    }
    fflush(stdout);
}

H_UNUSED static int harness_done(void) {
    fprintf(stdout, "# passed=%d failed=%d skipped=%d\n", h_passed, h_failed, h_skipped);
    return h_failed ? 1 : 0;
}

/* The shared replays folder: $CPHIL_REPLAYS, else ../shared/replays from the repo root. */
H_UNUSED static const char *harness_replays_dir(void) {
    const char *d = getenv("CPHIL_REPLAYS");
    return d && *d ? d : "../shared/replays";
}

/* Skip the current test unless the shared replays are there. */
#define NEED_REPLAYS() \
    do { struct stat _st; const char *_d = harness_replays_dir(); \
         if (stat(_d, &_st) != 0 || !S_ISDIR(_st.st_mode)) \
             SKIP("needs the shared replays at '%s' (missing; set CPHIL_REPLAYS)", _d); } while (0)

/* A scratch directory for this test executable (created on demand). */
H_UNUSED static const char *harness_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *b = getenv("CPHIL_TEST_TMP");
        snprintf(dir, sizeof dir, "%s", b && *b ? b : "build/test-tmp");
        char cmd[300];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        if (system(cmd) != 0) { fprintf(stderr, "cannot create %s\n", dir); exit(2); }
    }
    return dir;
}

#endif
