/* error.c — thread-local error messages and the always-on assert.
 * A failing call sets one message per thread; callers up the stack may prefix context
 * (the file name) with cphil_err_prefix. Nothing here allocates, so it works out of memory. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define CPHIL_ERR_CAP 1024
static _Thread_local char err_msg[CPHIL_ERR_CAP];

const char *cphil_last_error(void) { return err_msg; }

void cphil_err_clear(void) { err_msg[0] = '\0'; }

cphil_status cphil_err(cphil_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return s;
}

cphil_status cphil_err_prefix(cphil_status s, const char *fmt, ...) {
    char prefix[512];
    char old[CPHIL_ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t np = strlen(prefix), no = strlen(old);
    if (np > sizeof err_msg - 1) np = sizeof err_msg - 1;
    if (no > sizeof err_msg - 1 - np) no = sizeof err_msg - 1 - np;
    memcpy(err_msg, prefix, np);
    memcpy(err_msg + np, old, no);
    err_msg[np + no] = '\0';
    return s;
}

const char *cphil_status_name(cphil_status s) {
    switch (s) {
    case CPHIL_OK: return "ok";
    case CPHIL_E_IO: return "io";
    case CPHIL_E_FORMAT: return "format";
    case CPHIL_E_TRUNCATED: return "truncated";
    case CPHIL_E_NOMEM: return "out of memory";
    case CPHIL_E_ARG: return "argument";
    case CPHIL_E_MISMATCH: return "mismatch";
    case CPHIL_E_UNSUPPORTED: return "unsupported";
    case CPHIL_E_INTERRUPTED: return "interrupted";
    case CPHIL_E_NUMERIC: return "numeric";
    case CPHIL_E_INTERNAL: return "internal";
    }
    return "unknown";
}

void cphil_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "cphil: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    fflush(stderr);
    abort();
}
