/* kernels/vec.h — one vector of KN_VLEN floats for the kernels written directly on vectors
 * (conv2d_direct.c, conv2d_dxdot.c): the build's register type and the few operations they use.
 * The generic build multiplies and adds separately, like its micro-kernel (no FMA in its
 * baseline ISA), and stores ordinarily where the others stream. The GEMM micro-kernels
 * (ukernel_<isa>.c) use the intrinsics themselves. */
#ifndef KERNELS_VEC_H
#define KERNELS_VEC_H

#include <string.h>

#include "kernels/simd.h"

#if defined(KN_ISA_AVX512)
#include <immintrin.h>
typedef __m512 kn_vf;
static inline kn_vf kn_vzero(void) { return _mm512_setzero_ps(); }
static inline kn_vf kn_vload(const float *p) { return _mm512_loadu_ps(p); }
static inline kn_vf kn_vset1(float a) { return _mm512_set1_ps(a); }
static inline kn_vf kn_vfma(kn_vf a, kn_vf b, kn_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline void kn_vstore(float *p, kn_vf v) { _mm512_storeu_ps(p, v); }
/* p 64-byte aligned */
static inline void kn_vstream(float *p, kn_vf v) { _mm512_stream_ps(p, v); }
#elif defined(KN_ISA_AVX2)
#include <immintrin.h>
typedef __m256 kn_vf;
static inline kn_vf kn_vzero(void) { return _mm256_setzero_ps(); }
static inline kn_vf kn_vload(const float *p) { return _mm256_loadu_ps(p); }
static inline kn_vf kn_vset1(float a) { return _mm256_set1_ps(a); }
static inline kn_vf kn_vfma(kn_vf a, kn_vf b, kn_vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline void kn_vstore(float *p, kn_vf v) { _mm256_storeu_ps(p, v); }
/* p 32-byte aligned */
static inline void kn_vstream(float *p, kn_vf v) { _mm256_stream_ps(p, v); }
#else
typedef float kn_vf __attribute__((vector_size(4 * KN_VLEN)));
static inline kn_vf kn_vzero(void) { return (kn_vf){0}; }
static inline kn_vf kn_vload(const float *p) {
    kn_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline kn_vf kn_vset1(float a) { return (kn_vf){0} + a; }
static inline kn_vf kn_vfma(kn_vf a, kn_vf b, kn_vf c) { return a * b + c; }
static inline void kn_vstore(float *p, kn_vf v) { memcpy(p, &v, sizeof v); }
static inline void kn_vstream(float *p, kn_vf v) { kn_vstore(p, v); }
#endif

#endif /* KERNELS_VEC_H */
