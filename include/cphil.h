/* cphil.h — the public C API of cphil.
 *
 * cphil reads Slippi replays, trains Melee policies by imitation and runs them in real time.
 * This header is the whole public surface: status codes and error messages, the allocation
 * hook, and (in the sections below) replay reading, policies and the agent.
 *
 * Conventions:
 *  - Every function that can fail returns a cphil_status; CPHIL_OK is 0. On failure a message
 *    naming the file, the byte offset or argument, and a hint is available from
 *    cphil_last_error() (thread-local; valid until the next failing call on that thread).
 *  - Library code never exits and never prints; only the cphil binary does.
 *  - Objects come in open/close (or init/free) pairs; close accepts NULL.
 */
#ifndef CPHIL_H
#define CPHIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CPHIL_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------------- */
typedef enum cphil_status {
    CPHIL_OK = 0,
    CPHIL_E_IO,          /* a file or stream could not be opened, read or written */
    CPHIL_E_FORMAT,      /* bytes do not follow the expected format */
    CPHIL_E_TRUNCATED,   /* input ended before a complete element */
    CPHIL_E_NOMEM,       /* an allocation failed */
    CPHIL_E_ARG,         /* a bad argument or option value */
    CPHIL_E_MISMATCH,    /* file made for a different model, layout or version */
    CPHIL_E_UNSUPPORTED, /* valid but not supported by this build or CPU */
    CPHIL_E_INTERRUPTED, /* stopped on request (Ctrl-C) */
    CPHIL_E_NUMERIC,     /* NaN or infinity where a finite value is required */
    CPHIL_E_INTERNAL     /* a bug in cphil */
} cphil_status;

/* The message of the last failure on this thread ("" when none). */
const char *cphil_last_error(void);
/* A short name for a status ("ok", "io", "format", ...). */
const char *cphil_status_name(cphil_status s);

/* ---------------------------------------------------------------------------------------------
 * Allocation hook: every heap allocation of the library goes through these functions. Install
 * a counting or failing allocator in tests. Pass NULL to restore the default (libc).
 * alloc(size, align, user): align is a power of two >= sizeof(void*); return NULL on failure.
 * ------------------------------------------------------------------------------------------- */
typedef struct cphil_allocator {
    void *(*alloc)(size_t size, size_t align, void *user);
    void  (*free)(void *ptr, void *user);
    void  *user;
} cphil_allocator;

void cphil_set_allocator(const cphil_allocator *a);

#ifdef __cplusplus
}
#endif
#endif /* CPHIL_H */
