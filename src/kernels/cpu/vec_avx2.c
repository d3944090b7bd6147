/* vec_avx2.c — the vector helpers (exp, sigmoid, tanh, silu, softplus) in ymm: vec_impl.h over
 * AVX2/FMA macros. Accuracy: docs/kernels.md and tests/test_kernels.c. */
#include "kernels/cpu/kernels_internal.h"

#include <immintrin.h>

typedef __m256 V;
typedef __m256i VI;
#define VL 8
#define V_SET1 _mm256_set1_ps
#define V_LOAD _mm256_loadu_ps
#define V_STORE _mm256_storeu_ps
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_MIN _mm256_min_ps
#define V_MAX _mm256_max_ps
#define V_FMADD _mm256_fmadd_ps
#define V_FNMADD _mm256_fnmadd_ps
#define V_ROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT_I _mm256_cvtps_epi32
#define V_CVT_F _mm256_cvtepi32_ps
#define V_CAST_F _mm256_castsi256_ps
#define V_CAST_I _mm256_castps_si256
#define VI_SET1 _mm256_set1_epi32
#define VI_ADD _mm256_add_epi32
#define VI_SUB _mm256_sub_epi32
#define VI_AND _mm256_and_si256
#define VI_OR _mm256_or_si256
#define VI_SLLI _mm256_slli_epi32
#define VI_SRLI _mm256_srli_epi32
#define VI_SRAI _mm256_srai_epi32
#define V_ABS(a) _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))
#define V_SEL_GT(a, b, t, f) _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_GT_OQ))
#define V_SEL_LT(a, b, t, f) _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ))
#define V_SEL_EQ0(a, t, f) _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ))
#define V_FIXNAN(x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q))
#define V_COPYSIGN(r, s) _mm256_or_ps(V_ABS(r), _mm256_and_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))))
#define VEC_IMPL_NAME(base) cphil_##base##_avx2

#include "kernels/cpu/vec_impl.h"
