/* bench/peak.h — the machine's fp32 FMA peak for the build's instruction set, shared by the
 * benchmark programs (peak.c prints and records it; kernels.c reports % of it in the same
 * process). Each thread runs independent multiply-add chains that live in registers — enough
 * of them to cover the FMA latency on every pipe — so the measurement is the issue rate of the
 * FP units, not memory. Header-only: bench programs are single translation units. */
#ifndef BENCH_PEAK_H
#define BENCH_PEAK_H

#include <omp.h>
#include <time.h>

#include "core/sb.h"
#include "kernels/simd.h"

#if defined(KN_ISA_AVX512) || defined(KN_ISA_AVX2)
#include <immintrin.h>
#endif

#if defined(KN_ISA_AVX512)
#define PEAK_CHAINS 16
#define PEAK_LANES 16
typedef __m512 peak_vec;
#define PEAK_SET1 _mm512_set1_ps
#define PEAK_FMA(a, m, c) _mm512_fmadd_ps(a, m, c)
#define PEAK_ADD _mm512_add_ps
#define PEAK_SUM(v) _mm512_reduce_add_ps(v)
#elif defined(KN_ISA_AVX2)
#define PEAK_CHAINS 12
#define PEAK_LANES 8
typedef __m256 peak_vec;
#define PEAK_SET1 _mm256_set1_ps
#define PEAK_FMA(a, m, c) _mm256_fmadd_ps(a, m, c)
#define PEAK_ADD _mm256_add_ps
static inline float peak_sum8(__m256 v) {
    float t[8];
    _mm256_storeu_ps(t, v);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#define PEAK_SUM(v) peak_sum8(v)
#else
/* SSE2 has no FMA: a multiply and an add per lane count as the same two flops. */
#define PEAK_CHAINS 12
#define PEAK_LANES 4
typedef float peak_vec __attribute__((vector_size(16)));
static inline peak_vec peak_set1(float a) { return (peak_vec){a, a, a, a}; }
#define PEAK_SET1 peak_set1
#define PEAK_FMA(a, m, c) ((a) * (m) + (c))
#define PEAK_ADD(a, b) ((a) + (b))
#define PEAK_SUM(v) ((v)[0] + (v)[1] + (v)[2] + (v)[3])
#endif

/* iters rounds of PEAK_CHAINS independent multiply-adds; returns a value that depends on all of
 * them so nothing is optimized away. acc -> acc*m + c converges to 1, so no denormals or
 * overflow whatever the count. */
static __attribute__((noinline)) float peak_run(long iters, float seed) {
    peak_vec acc[PEAK_CHAINS];
    const peak_vec m = PEAK_SET1(0.9999999f), c = PEAK_SET1(1e-7f);
#pragma GCC unroll 32
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = PEAK_SET1(seed + 0.001f * i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 32
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = PEAK_FMA(acc[i], m, c);
    }
    peak_vec s = acc[0];
#pragma GCC unroll 32
    for (int i = 1; i < PEAK_CHAINS; i++) s = PEAK_ADD(s, acc[i]);
    return PEAK_SUM(s);
}

/* Process CPU seconds (all threads). On a machine shared with other jobs, flops / (CPU time /
 * threads) is what the code would reach with the cores to itself: a thread that is preempted
 * stops accumulating CPU time, while spinning at a barrier still counts (so the figure is never
 * flattering). */
static inline double peak_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct peak_result {
    double wall; /* GFLOP/s from wall-clock time, best of the trials */
    double cpu;  /* GFLOP/s from CPU time per thread, best of the trials */
} peak_result;

/* Peak GFLOP/s over `threads` OpenMP threads (<= 0: OpenMP's default), best of `trials` runs
 * of about `seconds` each. */
static peak_result peak_measure(int threads, double seconds, int trials) {
    if (threads <= 0) threads = omp_get_max_threads();
    long iters = 1 << 16;
    for (;;) { /* calibrate on one thread to about `seconds` */
        double t0 = sb_now();
        volatile float sink = peak_run(iters, 1.0f);
        (void)sink;
        double dt = sb_now() - t0;
        if (dt > seconds / 8) {
            iters = (long)(iters * (seconds / dt));
            break;
        }
        iters *= 2;
    }
    peak_result best = {0.0, 0.0};
    for (int t = 0; t < trials; t++) {
        volatile float sink = 0.0f;
        double t0 = sb_now(), c0 = peak_cpu_seconds();
#pragma omp parallel num_threads(threads)
        {
            float r = peak_run(iters, 1.0f + omp_get_thread_num());
#pragma omp atomic
            sink += r;
        }
        double dt = sb_now() - t0, dc = (peak_cpu_seconds() - c0) / threads;
        double gflop = 2.0 * PEAK_LANES * PEAK_CHAINS * (double)iters * threads * 1e-9;
        if (gflop / dt > best.wall) best.wall = gflop / dt;
        if (gflop / dc > best.cpu) best.cpu = gflop / dc;
    }
    return best;
}

#endif /* BENCH_PEAK_H */
