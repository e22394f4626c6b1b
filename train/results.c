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

void results_sibling_path(char *buf, size_t cap, const char *path, const char *name) {
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(buf, cap, "%.*s/%s", (int)(slash - path), path, name);
    else snprintf(buf, cap, "%s", name);
}

double results_peak_near(const char *results_csv, int threads) {
    /* peak.csv lives next to the results file (results/ by default). */
    char peak_path[4096];
    results_sibling_path(peak_path, sizeof peak_path, results_csv, "peak.csv");
    return results_peak_gflops(peak_path, sb_build_variant(), threads);
}

int results_append_run(const char *path, const results_run_info *info, const train_report *rep,
                       const char *config_header, const char *config_values, sb_err *err) {
    char ts[32], cpu[256], host[256] = "localhost";
    sb_utc_timestamp(ts, sizeof ts);
    sb_cpu_model(cpu, sizeof cpu);
    gethostname(host, sizeof host - 1);
    if (info->hosts && info->hosts[0]) snprintf(host, sizeof host, "%s", info->hosts);
    double peak = results_peak_near(path, info->threads_per_replica);
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

/* ---------------------------------------------------------------------------------------------
 * launch --profile.
 * ------------------------------------------------------------------------------------------- */

static const char profile_header[] =
    "timestamp,git_sha,build,model_name,batch_size,threads,steps,layer,kind,fwd_ms,bwd_ms,"
    "total_ms,fwd_gflops,bwd_gflops,fwd_pct_of_peak,bwd_pct_of_peak";

/* The step's parts, in the order they are printed and written; the CSV wraps the names in
 * parentheses (they share the layer column) and adds the whole step. */
enum { PROFILE_PARTS = 5 };
typedef struct profile_part {
    const char *name;
    double ms;
} profile_part;

static void profile_parts(const train_profile *p, profile_part out[PROFILE_PARTS]) {
    out[0] = (profile_part){"forward", p->fwd_ms};
    out[1] = (profile_part){"backward", p->bwd_ms};
    out[2] = (profile_part){"data wait", p->wait_ms};
    out[3] = (profile_part){"allreduce", p->reduce_ms};
    out[4] = (profile_part){"optimizer and other", p->other_ms};
}

/* GFLOP/s of flops in ms, 0 when either is 0. */
static double rate(double flops, double ms) { return flops > 0 && ms > 0 ? flops / ms * 1e-6 : 0; }

static int cmp_layer_total_desc(const void *a, const void *b) {
    const train_profile_layer *x = *(train_profile_layer *const *)a;
    const train_profile_layer *y = *(train_profile_layer *const *)b;
    double tx = x->fwd_ms + x->bwd_ms, ty = y->fwd_ms + y->bwd_ms;
    return (tx < ty) - (tx > ty);
}

/* "  123.4  45%" or "      -     " for a layer without FLOPs. */
static void fmt_rate(char *buf, size_t cap, double flops, double ms, double peak) {
    const double g = rate(flops, ms);
    if (g <= 0) snprintf(buf, cap, "%7s %4s", "-", "");
    else if (peak > 0) snprintf(buf, cap, "%7.1f %3.0f%%", g, 100.0 * g / peak);
    else snprintf(buf, cap, "%7.1f %4s", g, "");
}

void results_print_profile(FILE *out, const char *model, const train_profile *p,
                           double peak_gflops) {
    if (p->steps == 0) return;
    const double step = p->step_ms > 0 ? p->step_ms : 1;
    fprintf(out, "profile of %s: mean over %d timed steps, %.1f ms per step", model, p->steps,
            p->step_ms);
    if (peak_gflops > 0) fprintf(out, " (%% of the %.1f GFLOP/s FMA peak in peak.csv)\n", peak_gflops);
    else fprintf(out, " (no peak.csv next to the results CSV: run bench/peak for %% of peak)\n");
    profile_part parts[PROFILE_PARTS];
    profile_parts(p, parts);
    fprintf(out, "\n  %-22s %10s %6s\n", "step part", "ms/step", "share");
    for (int i = 0; i < PROFILE_PARTS; i++)
        fprintf(out, "  %-22s %10.2f %5.1f%%\n", parts[i].name, parts[i].ms,
                100.0 * parts[i].ms / step);

    /* time and FLOPs by layer kind, in order of first appearance */
    const char *kinds[32];
    double kfwd[32] = {0}, kbwd[32] = {0}, kff[32] = {0}, kbf[32] = {0};
    int nk = 0;
    for (int i = 0; i < p->n_layers; i++) {
        const train_profile_layer *l = &p->layers[i];
        int k = 0;
        while (k < nk && strcmp(kinds[k], l->kind) != 0) k++;
        if (k == nk) {
            if (nk == (int)SB_ARRAY_LEN(kinds)) continue;
            kinds[nk++] = l->kind;
        }
        kfwd[k] += l->fwd_ms, kbwd[k] += l->bwd_ms, kff[k] += l->fwd_flops, kbf[k] += l->bwd_flops;
    }
    char a[32], b[32];
    fprintf(out, "\n  %-22s %10s %10s %6s %12s %12s\n", "layer kind", "fwd ms", "bwd ms", "share",
            "fwd GFLOP/s", "bwd GFLOP/s");
    for (int k = 0; k < nk; k++) {
        fmt_rate(a, sizeof a, kff[k], kfwd[k], peak_gflops);
        fmt_rate(b, sizeof b, kbf[k], kbwd[k], peak_gflops);
        fprintf(out, "  %-22s %10.2f %10.2f %5.1f%% %12s %12s\n", kinds[k], kfwd[k], kbwd[k],
                100.0 * (kfwd[k] + kbwd[k]) / step, a, b);
    }

    fprintf(out, "\n  every layer, in net order (fwd / bwd ms per step, GFLOP/s, %% of peak):\n");
    fprintf(out, "  %-64s %-16s %9s %9s %12s %12s\n", "layer", "kind", "fwd ms", "bwd ms",
            "fwd GFLOP/s", "bwd GFLOP/s");
    for (int i = 0; i < p->n_layers; i++) {
        const train_profile_layer *l = &p->layers[i];
        fmt_rate(a, sizeof a, l->fwd_flops, l->fwd_ms, peak_gflops);
        fmt_rate(b, sizeof b, l->bwd_flops, l->bwd_ms, peak_gflops);
        fprintf(out, "  %-64s %-16s %9.3f %9.3f %12s %12s\n", l->scope, l->kind, l->fwd_ms,
                l->bwd_ms, a, b);
    }

    /* the slowest layers last, where the eye lands */
    const train_profile_layer **order = sb_xmalloc((size_t)p->n_layers * sizeof *order);
    for (int i = 0; i < p->n_layers; i++) order[i] = &p->layers[i];
    qsort(order, (size_t)p->n_layers, sizeof *order, cmp_layer_total_desc);
    const int top = SB_MIN(p->n_layers, 10);
    fprintf(out, "\n  the %d slowest layers (fwd + bwd):\n", top);
    for (int i = 0; i < top; i++) {
        const train_profile_layer *l = order[i];
        fmt_rate(a, sizeof a, l->fwd_flops + l->bwd_flops, l->fwd_ms + l->bwd_ms, peak_gflops);
        fprintf(out, "  %-64s %-16s %9.2f ms %5.1f%% of the step %12s\n", l->scope, l->kind,
                l->fwd_ms + l->bwd_ms, 100.0 * (l->fwd_ms + l->bwd_ms) / step, a);
    }
    free(order);
    fflush(out);
}

/* One profile CSV row into l (cleared first). */
static void profile_row(sb_csv_line *l, const char *ts, const results_run_info *info,
                        const train_profile *p, const char *layer, const char *kind,
                        double fwd_ms, double bwd_ms, double total_ms, double fwd_flops,
                        double bwd_flops, double peak) {
    sb_csv_line_fini(l);
    sb_csv_line_init(l);
    sb_csv_add_str(l, ts);
    sb_csv_add_str(l, sb_build_git_sha());
    sb_csv_add_str(l, sb_build_variant());
    sb_csv_add_str(l, info->model_name);
    sb_csv_add_int(l, info->batch_size);
    sb_csv_add_int(l, info->threads_per_replica);
    sb_csv_add_int(l, p->steps);
    sb_csv_add_str(l, layer);
    sb_csv_add_str(l, kind);
    if (fwd_ms >= 0) sb_csv_add_double(l, fwd_ms, 3), sb_csv_add_double(l, bwd_ms, 3);
    else sb_csv_add_str(l, ""), sb_csv_add_str(l, "");
    sb_csv_add_double(l, total_ms, 3);
    const double gf = rate(fwd_flops, fwd_ms), gb = rate(bwd_flops, bwd_ms);
    const double v[4] = {gf, gb, peak > 0 && gf > 0 ? 100 * gf / peak : 0,
                         peak > 0 && gb > 0 ? 100 * gb / peak : 0};
    for (int k = 0; k < 4; k++)
        if (v[k] > 0) sb_csv_add_double(l, v[k], 2);
        else sb_csv_add_str(l, "");
}

int results_append_profile(const char *path, const results_run_info *info,
                           const train_profile *p, double peak_gflops, sb_err *err) {
    if (p->steps == 0) return 0;
    char ts[32];
    sb_utc_timestamp(ts, sizeof ts);
    size_t cap = 4096, len = 0;
    char *block = sb_xmalloc(cap);
    block[0] = 0;
    sb_csv_line l;
    sb_csv_line_init(&l);
    profile_part parts[PROFILE_PARTS + 1];
    profile_parts(p, parts);
    parts[PROFILE_PARTS] = (profile_part){"step", p->step_ms};
    const int rows = p->n_layers + PROFILE_PARTS + 1;
    for (int r = 0; r < rows; r++) {
        if (r < p->n_layers) {
            const train_profile_layer *y = &p->layers[r];
            profile_row(&l, ts, info, p, y->scope, y->kind, y->fwd_ms, y->bwd_ms,
                        y->fwd_ms + y->bwd_ms, y->fwd_flops, y->bwd_flops, peak_gflops);
        } else {
            const profile_part *k = &parts[r - p->n_layers];
            char name[64];
            snprintf(name, sizeof name, "(%s)", k->name);
            profile_row(&l, ts, info, p, name, "step", -1, -1, k->ms, 0, 0, 0);
        }
        const size_t rl = strlen(sb_csv_line_str(&l));
        while (len + rl + 2 > cap) block = sb_xrealloc(block, cap *= 2);
        if (len) block[len++] = '\n';
        memcpy(block + len, sb_csv_line_str(&l), rl + 1);
        len += rl;
    }
    sb_csv_line_fini(&l);
    int rc = sb_csv_append(path, profile_header, block, err); /* one write, one fsync */
    free(block);
    return rc;
}
