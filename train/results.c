/* train/results.c — the results CSV row of a training run (DESIGN.md "Results CSV"): identity of
 * the build and machine, what ran, throughput over the timed steps, and the FMA peak bench/peak
 * measured for this build, followed by the config columns the caller formats from the flag
 * tables. Knows the report, not the flags.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/train_loop.h"

static const char header[] =
    "timestamp,git_sha,build,cc,cflags,cpu_model,hosts,replicas,threads_per_replica,"
    "model_name,batch_size,global_batch_size,optimizer,data,image_size,steps,warmup_steps,"
    "images_per_sec,images_per_sec_stdev,step_ms_median,data_wait_ms,allreduce_ms,"
    "gflop_per_image,gflops,pct_of_peak,peak_rss_mb,final_loss";

const char *results_run_header(void) { return header; }

double results_peak_gflops(const char *peak_csv, const char *build, int threads) {
    char *text = NULL;
    size_t n;
    if (sb_read_file(peak_csv, &text, &n, NULL) != 0) return 0;
    double best = 0;
    char *save = NULL;
    int first = 1;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (first) { /* header: timestamp,build,isa,threads,gflops */
            first = 0;
            continue;
        }
        char *f[5] = {0}, *s2 = NULL;
        int k = 0;
        for (char *tok = strtok_r(line, ",", &s2); tok && k < 5; tok = strtok_r(NULL, ",", &s2))
            f[k++] = tok;
        if (k == 5 && strcmp(f[1], build) == 0 && atoi(f[3]) == threads) best = atof(f[4]);
    }
    free(text);
    return best;
}

int results_append_run(const char *path, const results_run_info *info, const train_report *rep,
                       const char *config_header, const char *config_values, sb_err *err) {
    char ts[32], cpu[256], host[256] = "localhost";
    sb_utc_timestamp(ts, sizeof ts);
    sb_cpu_model(cpu, sizeof cpu);
    gethostname(host, sizeof host - 1);
    if (info->hosts && info->hosts[0]) snprintf(host, sizeof host, "%s", info->hosts);
    /* peak.csv lives next to the results file (results/ by default). */
    char peak_path[4096];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(peak_path, sizeof peak_path, "%.*s/peak.csv", (int)(slash - path), path);
    else snprintf(peak_path, sizeof peak_path, "peak.csv");
    double peak = results_peak_gflops(peak_path, sb_build_variant(), info->threads_per_replica);
    double gflops = 3.0 * rep->gflop_per_image * rep->images_per_sec;

    sb_csv_line l;
    sb_csv_line_init(&l);
    sb_csv_add_str(&l, ts);
    sb_csv_add_str(&l, sb_build_git_sha());
    sb_csv_add_str(&l, sb_build_variant());
    sb_csv_add_str(&l, sb_build_cc());
    sb_csv_add_str(&l, sb_build_cflags());
    sb_csv_add_str(&l, cpu);
    sb_csv_add_str(&l, host);
    sb_csv_add_int(&l, info->replicas);
    sb_csv_add_int(&l, info->threads_per_replica);
    sb_csv_add_str(&l, info->model_name);
    sb_csv_add_int(&l, info->batch_size);
    sb_csv_add_int(&l, (long long)info->batch_size * info->replicas);
    sb_csv_add_str(&l, info->optimizer);
    sb_csv_add_str(&l, info->data);
    sb_csv_add_int(&l, rep->image_size);
    sb_csv_add_int(&l, rep->timed_steps);
    sb_csv_add_int(&l, rep->warmup_steps);
    sb_csv_add_double(&l, rep->images_per_sec, 3);
    sb_csv_add_double(&l, rep->images_per_sec_stdev, 3);
    sb_csv_add_double(&l, rep->step_ms_median, 3);
    sb_csv_add_double(&l, rep->data_wait_ms, 3);
    sb_csv_add_double(&l, rep->allreduce_ms, 3);
    sb_csv_add_double(&l, rep->gflop_per_image, 4);
    sb_csv_add_double(&l, gflops, 3);
    if (peak > 0) sb_csv_add_double(&l, 100.0 * gflops / peak, 2);
    else sb_csv_add_str(&l, "");
    sb_csv_add_double(&l, rep->peak_rss_mb, 1);
    sb_csv_add_double(&l, rep->final_loss, 6);

    size_t hl = strlen(header) + (config_header ? strlen(config_header) : 0) + 2;
    char *full_header = sb_xmalloc(hl);
    snprintf(full_header, hl, "%s%s%s", header, config_header && config_header[0] ? "," : "",
             config_header ? config_header : "");
    size_t rl = l.len + (config_values ? strlen(config_values) : 0) + 2;
    char *row = sb_xmalloc(rl);
    snprintf(row, rl, "%s%s%s", sb_csv_line_str(&l), config_header && config_header[0] ? "," : "",
             config_values ? config_values : "");
    int rc = sb_csv_append(path, full_header, row, err);
    free(row);
    free(full_header);
    sb_csv_line_fini(&l);
    return rc;
}
