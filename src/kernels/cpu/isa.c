/* isa.c — run-time choice of the kernel path: CPUID (and XGETBV for OS-enabled register state)
 * decides the best tier; CPHIL_ISA=scalar|avx2|avx512 or cphil_isa_set forces one.
 * Deliberately not here: per-kernel dispatch tables (each kernel family switches on
 * cphil_isa_active()). Reference: Intel SDM vol. 2 (CPUID leaf 7), vol. 1 ch. 13 (XCR0).
 */
#include "core/core.h"
#include "kernels/cpu/kernels.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cpu_feat {
    bool sse42, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, vnni, bf16;
    bool amx_tile, amx_int8; /* AMX: tile registers and their int8 products (tdpbssd) */
    bool os_ymm, os_zmm, os_amx;
} cpu_feat;

static cpu_feat g_feat;
static atomic_int g_state = 0; /* 0: not initialised, 1: done */
static _Atomic int g_active = CPHIL_ISA_SCALAR;
static _Atomic int g_default = CPHIL_ISA_SCALAR; /* the start-up choice (CPHIL_ISA or the best) */
static char g_describe[256];
/* AMX for the int8 products of more than one row: detected, the process allowed the tile state by
 * the kernel (arch_prctl ARCH_REQ_XCOMP_PERM, once at start-up), and not turned off (CPHIL_AMX=0
 * or cphil_amx_set). */
static bool g_amx_ok;
static _Atomic int g_amx_on = 0;

static void detect(cpu_feat *f) {
    memset(f, 0, sizeof *f);
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    f->sse42 = (c >> 20) & 1;
    f->fma = (c >> 12) & 1;
    f->f16c = (c >> 29) & 1;
    f->avx = (c >> 28) & 1;
    bool osxsave = (c >> 27) & 1;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        f->os_ymm = (lo & 0x6u) == 0x6u;
        f->os_zmm = (lo & 0xe6u) == 0xe6u;
        f->os_amx = (lo & 0x60000u) == 0x60000u; /* XTILECFG and XTILEDATA */
    }
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = (b >> 5) & 1;
        f->avx512f = (b >> 16) & 1;
        f->avx512dq = (b >> 17) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->vnni = (c >> 11) & 1;
        f->amx_tile = (d >> 24) & 1;
        f->amx_int8 = (d >> 25) & 1;
        __cpuid_count(7, 1, a, b, c, d);
        f->bf16 = (a >> 5) & 1;
    }
}

static bool tier_ok(const cpu_feat *f, cphil_isa isa) {
    switch (isa) {
    case CPHIL_ISA_SCALAR: return true;
    case CPHIL_ISA_AVX2: return f->avx && f->avx2 && f->fma && f->f16c && f->os_ymm;
    case CPHIL_ISA_AVX512:
        return tier_ok(f, CPHIL_ISA_AVX2) && f->avx512f && f->avx512bw && f->avx512vl &&
               f->avx512dq && f->vnni && f->os_zmm;
    }
    return false;
}

static cphil_isa best_of(const cpu_feat *f) {
    if (tier_ok(f, CPHIL_ISA_AVX512)) return CPHIL_ISA_AVX512;
    if (tier_ok(f, CPHIL_ISA_AVX2)) return CPHIL_ISA_AVX2;
    return CPHIL_ISA_SCALAR;
}

static void missing_list(const cpu_feat *f, cphil_isa isa, char *buf, size_t n) {
    buf[0] = 0;
#define MISS(cond, name) if (!(cond)) { strncat(buf, " " name, n - strlen(buf) - 1); }
    MISS(f->avx && f->os_ymm, "avx(os)");
    MISS(f->avx2, "avx2");
    MISS(f->fma, "fma");
    MISS(f->f16c, "f16c");
    if (isa == CPHIL_ISA_AVX512) {
        MISS(f->avx512f && f->os_zmm, "avx512f(os)");
        MISS(f->avx512bw, "avx512bw");
        MISS(f->avx512vl, "avx512vl");
        MISS(f->avx512dq, "avx512dq");
        MISS(f->vnni, "avx512vnni");
    }
#undef MISS
}

/* Ask Linux for the AMX tile data state (needed once per process before the first tile
 * instruction; without it they fault). ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18. */
static bool amx_request(const cpu_feat *f) {
    if (!(f->amx_tile && f->amx_int8 && f->os_amx && f->os_zmm && f->vnni && f->avx512bw)) return false;
    const char *env = getenv("CPHIL_AMX");
    if (env && !strcmp(env, "0")) return false;
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

static cphil_status init_once(void) {
    detect(&g_feat);
    g_amx_ok = amx_request(&g_feat);
    atomic_store(&g_amx_on, g_amx_ok ? 1 : 0);
    cphil_status st = CPHIL_OK;
    cphil_isa isa = best_of(&g_feat);
    const char *env = getenv("CPHIL_ISA");
    if (env && *env) {
        cphil_isa want;
        if (!strcmp(env, "scalar")) want = CPHIL_ISA_SCALAR;
        else if (!strcmp(env, "avx2")) want = CPHIL_ISA_AVX2;
        else if (!strcmp(env, "avx512")) want = CPHIL_ISA_AVX512;
        else {
            isa = CPHIL_ISA_SCALAR;
            st = cphil_err(CPHIL_E_ARG, "CPHIL_ISA='%s' is not a kernel path (use scalar, avx2 or avx512)", env);
            goto done;
        }
        if (!tier_ok(&g_feat, want)) {
            char miss[160];
            missing_list(&g_feat, want, miss, sizeof miss);
            isa = CPHIL_ISA_SCALAR;
            st = cphil_err(CPHIL_E_UNSUPPORTED,
                           "CPHIL_ISA=%s forced, but this CPU lacks:%s (unset CPHIL_ISA or use %s)",
                           env, miss, cphil_isa_name(best_of(&g_feat)));
            goto done;
        }
        isa = want;
    }
done:
    atomic_store(&g_default, (int)isa);
    atomic_store(&g_active, (int)isa);
    atomic_store(&g_state, 1);
    return st;
}

static void ensure_init(void) {
    if (atomic_load_explicit(&g_state, memory_order_acquire) == 0) (void)init_once();
}

cphil_status cphil_isa_init(void) { return init_once(); }

cphil_status cphil_isa_set(cphil_isa isa) {
    ensure_init();
    if ((int)isa < 0 || (int)isa > 2) return cphil_err(CPHIL_E_ARG, "unknown kernel path %d", (int)isa);
    if (!tier_ok(&g_feat, isa)) {
        char miss[160];
        missing_list(&g_feat, isa, miss, sizeof miss);
        return cphil_err(CPHIL_E_UNSUPPORTED, "kernel path %s needs CPU features this CPU lacks:%s",
                         cphil_isa_name(isa), miss);
    }
    atomic_store(&g_active, (int)isa);
    return CPHIL_OK;
}

cphil_isa cphil_isa_active(void) {
    ensure_init();
    return (cphil_isa)atomic_load_explicit(&g_active, memory_order_relaxed);
}

cphil_isa cphil_isa_default(void) {
    ensure_init();
    return (cphil_isa)atomic_load_explicit(&g_default, memory_order_relaxed);
}

cphil_isa cphil_isa_best(void) {
    ensure_init();
    return best_of(&g_feat);
}

bool cphil_isa_supported(cphil_isa isa) {
    ensure_init();
    return (int)isa >= 0 && (int)isa <= 2 && tier_ok(&g_feat, isa);
}

bool cphil_cpu_has_bf16(void) {
    ensure_init();
    return g_feat.bf16 && g_feat.os_zmm;
}

bool cphil_cpu_has_vnni(void) {
    ensure_init();
    return g_feat.vnni && g_feat.os_zmm;
}

bool cphil_amx_available(void) {
    ensure_init();
    return g_amx_ok;
}

bool cphil_amx_on(void) {
    ensure_init();
    return atomic_load_explicit(&g_amx_on, memory_order_relaxed) != 0;
}

bool cphil_amx_set(bool on) {
    ensure_init();
    atomic_store(&g_amx_on, on && g_amx_ok ? 1 : 0);
    return on && g_amx_ok;
}

const char *cphil_isa_name(cphil_isa isa) {
    switch (isa) {
    case CPHIL_ISA_SCALAR: return "scalar";
    case CPHIL_ISA_AVX2: return "avx2";
    case CPHIL_ISA_AVX512: return "avx512";
    }
    return "?";
}

const char *cphil_isa_describe(void) {
    ensure_init();
    const cpu_feat *f = &g_feat;
    snprintf(g_describe, sizeof g_describe,
             "kernels: %s (best %s)%s; cpu: avx2=%d fma=%d avx512f=%d bw=%d vl=%d dq=%d vnni=%d bf16=%d "
             "amx-int8=%d",
             cphil_isa_name(cphil_isa_active()), cphil_isa_name(best_of(f)),
             cphil_isa_active() == CPHIL_ISA_AVX512 && cphil_amx_on() ? ", int8 products of 2+ rows on AMX" : "",
             f->avx2, f->fma, f->avx512f, f->avx512bw, f->avx512vl, f->avx512dq, f->vnni, f->bf16,
             f->amx_int8 && f->os_amx);
    return g_describe;
}
