/* bench/scaling.c — the gradient exchange's bandwidth, run under mpirun (bench/scaling.sh):
 * for each buffer size, the same float buffer is averaged by
 *   ours     dist_grads_allreduce: 25 MiB buckets, one MPI_Iallreduce each, waited together
 *   mpi      one plain MPI_Allreduce(MPI_IN_PLACE, MPI_SUM) over the whole buffer
 * and copied by
 *   memcpy   one memcpy of the buffer (this host's memory bandwidth, the ceiling for shared
 *            memory transports)
 * Times are medians over repeats after one warm-up; bus bandwidth follows nccl-tests: bytes x
 * 2(n-1)/n / time for an allreduce, bytes / time for memcpy. Rank 0 appends one CSV row per
 * (size, method) to argv[1]:
 *   timestamp,hosts,ranks,bytes,method,median_ms,busbw_gbs
 * Usage: mpirun -np N scaling CSV [MiB ...]   (default sizes 1 4 25 100 MiB)
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "core/sb.h"
#include "dist/dist.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

enum method { METHOD_OURS, METHOD_MPI, METHOD_MEMCPY, METHOD_COUNT };
static const char *const k_method_names[] = {"ours", "mpi_allreduce", "memcpy"};
_Static_assert(SB_ARRAY_LEN(k_method_names) == METHOD_COUNT, "one name per method");

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mpirun -np N %s CSV [MiB ...]\n", argv[0]);
        return 2;
    }
    sb_err err;
    dist *d = NULL;
    if (dist_create(&d, &err)) {
        fprintf(stderr, "scaling: %s\n", err.msg);
        return 1;
    }
    const int rank = dist_rank(d), size = dist_size(d);
    double mib_default[] = {1, 4, 25, 100};
    int nsizes = argc > 2 ? argc - 2 : (int)SB_ARRAY_LEN(mib_default);
    const int reps = 10;
    double t[10];
    char ts[32];
    sb_utc_timestamp(ts, sizeof ts);
    for (int s = 0; s < nsizes; s++) {
        double mib = argc > 2 ? atof(argv[2 + s]) : mib_default[s];
        size_t n = (size_t)(mib * 1048576.0) / sizeof(float), bytes = n * sizeof(float);
        float *x = sb_aligned_alloc(bytes), *y = sb_aligned_alloc(bytes);
        for (size_t i = 0; i < n; i++) x[i] = (float)(i % 977) * 1e-3f;
        dist_grads *g = NULL;
        dist_grads_create(&g, d, x, n, DIST_BUCKET_BYTES);
        for (int m = 0; m < METHOD_COUNT; m++) {
            for (int r = -1; r < reps; r++) {
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = sb_now();
                if (m == METHOD_OURS) dist_grads_allreduce(g);
                else if (m == METHOD_MPI)
                    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                else memcpy(y, x, bytes);
                double dt = dist_max(d, sb_now() - t0);
                if (r >= 0) t[r] = dt;
            }
            double sec = median(t, reps);
            double factor = m == METHOD_MEMCPY ? 1.0 : 2.0 * (size - 1) / size;
            double busbw = sec > 0 ? (double)bytes * factor / sec / 1e9 : 0;
            if (rank == 0) {
                printf("%-14s %9.1f MiB  %2d ranks  %9.3f ms  %7.2f GB/s bus\n", k_method_names[m],
                       mib, size, sec * 1e3, busbw);
                sb_csv_line l;
                sb_csv_line_init(&l);
                sb_csv_add_str(&l, ts);
                sb_csv_add_str(&l, dist_hosts(d));
                sb_csv_add_int(&l, size);
                sb_csv_add_int(&l, (long long)bytes);
                sb_csv_add_str(&l, k_method_names[m]);
                sb_csv_add_double(&l, sec * 1e3, 4);
                sb_csv_add_double(&l, busbw, 3);
                if (sb_csv_append(argv[1], "timestamp,hosts,ranks,bytes,method,median_ms,busbw_gbs",
                                  sb_csv_line_str(&l), &err))
                    fprintf(stderr, "scaling: %s\n", err.msg);
                sb_csv_line_fini(&l);
            }
        }
        dist_grads_destroy(g);
        sb_aligned_free(x);
        sb_aligned_free(y);
    }
    fflush(stdout);
    dist_destroy(d, 0);
    return 0;
}
