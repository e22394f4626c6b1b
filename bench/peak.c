/* bench/peak.c — measure this machine's fp32 multiply-add peak for the build's ISA on all
 * OpenMP threads (and on one), print it, and append a row to results/peak.csv
 * (timestamp,build,isa,threads,gflops), the figure pct_of_peak columns are computed against.
 * Both wall-clock and CPU-time rates are printed: on a shared machine only the second is the
 * machine's own figure, and it is the one recorded when it is the larger.
 *
 * usage: peak [--threads=N] [--seconds=S] [--csv=PATH] [--no-csv]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/peak.h"

int main(int argc, char **argv) {
    int threads = 0, write_csv = 1;
    double seconds = 0.5;
    const char *csv = "results/peak.csv";
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--threads=", 10)) threads = atoi(argv[i] + 10);
        else if (!strncmp(argv[i], "--seconds=", 10)) seconds = atof(argv[i] + 10);
        else if (!strncmp(argv[i], "--csv=", 6)) csv = argv[i] + 6;
        else if (!strcmp(argv[i], "--no-csv")) write_csv = 0;
        else {
            fprintf(stderr, "peak: unknown argument '%s'\n"
                            "usage: peak [--threads=N] [--seconds=S] [--csv=PATH] [--no-csv]\n",
                    argv[i]);
            return 2;
        }
    }
    if (threads <= 0) threads = omp_get_max_threads();
    if (seconds <= 0) seconds = 0.5;
    const peak_result one = peak_measure(1, seconds, 3);
    const peak_result all = peak_measure(threads, seconds, 5);
    printf("fp32 FMA peak, build %s, isa %s (%d lanes, %d chains)\n", sb_build_variant(),
           KN_ISA_NAME, PEAK_LANES, PEAK_CHAINS);
    printf("  1 thread:   %8.1f GFLOP/s  (from CPU time: %.1f)\n", one.wall, one.cpu);
    printf("  %d threads: %8.1f GFLOP/s  (from CPU time: %.1f)\n", threads, all.wall, all.cpu);
    /* Other jobs on the machine lower the wall-clock figure, never the CPU-time one; record the
     * larger (the peak is a property of the machine, not of its load). */
    const double rec = all.wall > all.cpu ? all.wall : all.cpu;
    if (write_csv) {
        sb_err err;
        char ts[32];
        sb_utc_timestamp(ts, sizeof ts);
        sb_csv_line l;
        sb_csv_line_init(&l);
        sb_csv_add_str(&l, ts);
        sb_csv_add_str(&l, sb_build_variant());
        sb_csv_add_str(&l, KN_ISA_NAME);
        sb_csv_add_int(&l, threads);
        sb_csv_add_double(&l, rec, 1);
        int rc = sb_mkdirs("results", &err);
        if (!rc) rc = sb_csv_append(csv, "timestamp,build,isa,threads,gflops", sb_csv_line_str(&l),
                                    &err);
        sb_csv_line_fini(&l);
        if (rc) {
            fprintf(stderr, "peak: %s\n", err.msg);
            return 1;
        }
        printf("  appended to %s\n", csv);
    }
    return 0;
}
