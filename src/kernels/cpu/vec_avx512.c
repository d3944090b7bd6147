/* vec_avx512.c — the vector helpers (exp, sigmoid, tanh, silu, softplus) in zmm: vec_impl.h
 * over AVX-512 macros. Accuracy: docs/kernels.md and tests/test_kernels.c. */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>

typedef __m512 V;
typedef __m512i VI;
#define VL 16
#define V_SET1 _mm512_set1_ps
#define V_LOAD _mm512_loadu_ps
#define V_STORE _mm512_storeu_ps
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_MIN _mm512_min_ps
#define V_MAX _mm512_max_ps
#define V_FMADD _mm512_fmadd_ps
#define V_FNMADD _mm512_fnmadd_ps
#define V_ROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT_I _mm512_cvtps_epi32
#define V_CVT_F _mm512_cvtepi32_ps
#define V_CAST_F _mm512_castsi512_ps
#define V_CAST_I _mm512_castps_si512
#define VI_SET1 _mm512_set1_epi32
#define VI_ADD _mm512_add_epi32
#define VI_SUB _mm512_sub_epi32
#define VI_AND _mm512_and_si512
#define VI_OR _mm512_or_si512
#define VI_SLLI _mm512_slli_epi32
#define VI_SRLI _mm512_srli_epi32
#define VI_SRAI _mm512_srai_epi32
#define V_ABS(a) _mm512_abs_ps(a)
#define V_SEL_GT(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), f, t)
#define V_SEL_LT(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t)
#define V_SEL_EQ0(a, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_EQ_OQ), f, t)
#define V_FIXNAN(x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x)
#define V_COPYSIGN(r, s) _mm512_or_ps(_mm512_abs_ps(r), _mm512_and_ps(s, _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u))))
#define VEC_IMPL_NAME(base) cphil_##base##_avx512

#include "kernels/cpu/vec_impl.h"
