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
#define KN_STREAM_STORES 1
#elif defined(__AVX2__) && defined(__FMA__)
#define KN_ISA_AVX2 1
#define KN_ISA_NAME "avx2"
#define KN_MR 6
#define KN_NR 16
#define KN_VLEN 8
#define KN_STREAM_STORES 1
#else
#define KN_ISA_GENERIC 1
#define KN_ISA_NAME "generic"
#define KN_MR 6
#define KN_NR 8
#define KN_VLEN 4
#define KN_STREAM_STORES 0
#endif

/* Cache blocks: a KC x NC block of packed B and an MC x KC block of A stay in L2, and one KC x
 * NR micro-panel of B meets every A micro-panel of the MC block (16 KB with AVX2's 16-wide
 * panels, in L1; 64 KB with AVX-512's 64-wide ones, from L2). KC = 128 kept the AVX-512 panel in
 * Zen 4's 32 KB L1, but each C tile was then loaded and stored once per 128 k steps, and
 * the 256 k steps of KC = 256 measured faster on nearly every pass: 1.05x geometric mean over
 * the 117 passes of bench/kernels, block 3-4 1x1 layers 1.03-1.08x, vgg fc6's backward data
 * 0.96x. (512 measured no further gain with AVX-512, and 1.00x with AVX2.) KC, NC and MC (like
 * KN_DIRECT_B_ROWS in gemm.c and CV_PARTIAL_MAX in conv2d.c) can be overridden with -D for
 * tuning runs (make EXTRA_CFLAGS=-DKN_KC=192). */
#ifndef KN_KC
#define KN_KC 256
#endif
/* K rows of B packed at a time at the full NC width (whole KC blocks; a narrower NC block takes
 * proportionally more rows, the same KB x NC floats): an MC x NC block of C stays in L2 while it
 * accumulates them, instead of going to memory and back once per KC block. 512 keeps the
 * packed chunk (1 MB at NC = 512) in a 2 MB L2 next to the C and A blocks; 2048 (4 MB, from
 * L3) measured 5-15 points of peak slower on Sapphire Rapids with two threads. */
#ifndef KN_KB
#define KN_KB 512
#endif
#ifndef KN_NC
#define KN_NC 512
#endif
/* The largest MC block (the workspace and the engine's panel arrays are sized for it); the
 * engine runs the block height kn_block_rows() derives from this machine's L2 (gemm.c): the A
 * and C blocks of one MC block (MC x (KC + NC) floats) in at most KN_L2_SHARE of it, the rest
 * for the B panels that stream through and the prefetchers' lines. 144 rows (A 144 KB + C 288
 * KB with AVX2's KC = 256) was tuned on 1 and 2 MB L2s; on Zen 3's 512 KB it overflowed L2 and
 * each C block went to L3 and back once per K chunk: 72 rows measured 1.05-1.16x on
 * resnet_v1_50's conv layers there (whole-net medians of alternating runs; 36 to 96 rows all
 * beat 144). */
#ifndef KN_MC
#define KN_MC (KN_MR * 24)
#endif
#ifndef KN_L2_SHARE
#define KN_L2_SHARE 0.45
#endif

_Static_assert(KN_NC % KN_NR == 0, "NC must be a multiple of NR");
_Static_assert(KN_MC % KN_MR == 0, "MC must be a multiple of MR");

#endif /* KERNELS_SIMD_H */
