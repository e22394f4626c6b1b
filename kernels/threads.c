/* kernels/threads.c — thread-count and work-splitting helpers for the ops' single OpenMP
 * region each: (ith, nth) ranges aligned to register-block sizes, so every thread's part starts
 * on a micro-tile boundary and results depend only on the thread count. */
#include <omp.h>

#include "core/sb.h"
#include "kernels/kernels_impl.h"

int kn_max_threads(void) {
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
}

void kn_split(int n, int ith, int nth, int align, int *lo, int *hi) {
    SB_ASSERT(nth > 0 && ith >= 0 && ith < nth && align > 0);
    long units = ((long)n + align - 1) / align;
    long u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
    long a = u0 * align, b = u1 * align;
    *lo = (int)(a < n ? a : n);
    *hi = (int)(b < n ? b : n);
}
