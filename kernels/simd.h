/* kernels/simd.h — the one place the instruction set is chosen, at compile time from the build
 * variant's -march: register-block sizes of the GEMM micro-kernel and the cache-block sizes the
 * drivers use. Exactly one of KN_ISA_AVX512 / KN_ISA_AVX2 / KN_ISA_GENERIC is defined to 1, and
 * exactly one of kernels/ukernel_{avx512,avx2,generic}.c compiles to code.
 *
 * Micro-tile (KN_MR x KN_NR): C rows x C columns held in registers; columns are the vectorized,
 * unit-stride dimension (output channels for NHWC convolutions).
 *   AVX-512: 6 x 64  (24 zmm accumulators, 4 B vectors, 1 broadcast; 6 row pointers fit in the
 *                     general registers, which the indirect kernel needs)
 *   AVX2+FMA: 6 x 16 (12 ymm accumulators)
 *   generic:  6 x 8  (12 SSE2 registers through GCC vector extensions, mul + add)
 */
#ifndef KERNELS_SIMD_H
#define KERNELS_SIMD_H

#if defined(__AVX512F__)
#define KN_ISA_AVX512 1
#define KN_ISA_NAME "avx512"
#define KN_MR 6
#define KN_NR 64
#define KN_VLEN 16
#elif defined(__AVX2__) && defined(__FMA__)
#define KN_ISA_AVX2 1
#define KN_ISA_NAME "avx2"
#define KN_MR 6
#define KN_NR 16
#define KN_VLEN 8
#else
#define KN_ISA_GENERIC 1
#define KN_ISA_NAME "generic"
#define KN_MR 6
#define KN_NR 8
#define KN_VLEN 4
#endif

/* Cache blocks: a KC x NC block of packed B stays in L2 and is streamed by the micro-kernel; an
 * MR x KC sliver of A sits in L1 while it meets every NR-panel of the block. MC only applies when
 * A is packed (transposed operands, backward-filter). KC and NC (like KN_DIRECT_B_ROWS in gemm.c
 * and CV_PARTIAL_MAX in conv2d.c) can be overridden with -D for tuning runs
 * (make EXTRA_CFLAGS=-DKN_KC=192); the defaults were measured best or equal on Zen 4. */
#ifndef KN_KC
#define KN_KC 256
#endif
#ifndef KN_NC
#define KN_NC 512
#endif
#define KN_MC (KN_MR * 24)

_Static_assert(KN_NC % KN_NR == 0, "NC must be a multiple of NR");
_Static_assert(KN_MC % KN_MR == 0, "MC must be a multiple of MR");

#endif /* KERNELS_SIMD_H */
