/* bench/kernels.c — speed of the convolution and FC kernels on every distinct layer shape of
 * resnet_v1_50 and vgg_16 (TF-slim definitions, 224x224 input), forward, backward-data and
 * backward-filter, as GFLOP/s and % of this machine's FMA peak measured in the same process;
 * next to OpenBLAS's cblas_sgemm on the same GEMM shapes (M = N*OH*OW, N = OC,
 * K = KH*KW*IC) in the same run, each computing what the pass computes: C = A B, beta = 0 (the
 * backward filter overwrites dW, kernels.h). Table to stdout, one CSV row per (shape, pass,
 * impl) appended to results/kernels_<build>.csv.
 *
 * usage: kernels [--model=resnet_v1_50|vgg_16|all] [--batch=32] [--reps=3] [--threads=N]
 *                [--quick] [--no-blas] [--layer=NAME[,NAME...]] [--list] [--peak=GFLOPS]
 *                [--csv=PATH]
 *
 * Timing: one warm-up call, then --reps timed calls, or more for a short pass: as many as fill
 * KN_BENCH_MIN_SECONDS (0.05 s) by the warm-up's time, at most 64 (a fully connected pass takes
 * about 1 ms, and three samples of it moved by a third from run to run); the table shows the
 * best (least disturbed by other processes), the CSV has best and median. OpenBLAS times only
 * the GEMM (no im2col, which favours it), and for very tall GEMMs on a leading slice of at most
 * 16M A elements: its rate does not depend on M at those sizes, and a full im2col of vgg_16
 * conv1_2 would need 3.7 GB.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/peak.h"
#include "core/sb.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/simd.h"

/* OpenBLAS's kernel family for the ISA this variant was built for. */
#if defined(KN_ISA_AVX512)
#define OPENBLAS_CORE_FOR_ISA "SkylakeX"
#elif defined(KN_ISA_AVX2)
#define OPENBLAS_CORE_FOR_ISA "Haswell"
#else
#define OPENBLAS_CORE_FOR_ISA "Prescott"
#endif
char *openblas_get_corename(void);

typedef struct layer {
    const char *model;
    char name[48];
    int count; /* how many layers of the net have this shape */
    int IH, IW, IC, OC, K, S;
    kn_padding pad;
    int P;        /* explicit symmetric pad */
    int selected; /* by --layer (select_layers) */
} layer;

typedef struct layer_list {
    layer v[64];
    int n;
} layer_list;

static void add_layer(layer_list *l, const char *model, const char *name, int H, int IC, int OC,
                      int K, int S, kn_padding pad, int P) {
    for (int i = 0; i < l->n; i++) {
        layer *o = &l->v[i];
        if (!strcmp(o->model, model) && o->IH == H && o->IC == IC && o->OC == OC && o->K == K &&
            o->S == S && o->pad == pad && o->P == P) {
            o->count++;
            return;
        }
    }
    SB_ASSERT(l->n < (int)SB_ARRAY_LEN(l->v));
    layer *o = &l->v[l->n++];
    *o = (layer){.model = model, .count = 1, .IH = H, .IW = H, .IC = IC, .OC = OC, .K = K,
                 .S = S, .pad = pad, .P = P};
    snprintf(o->name, sizeof o->name, "%s", name);
}

/* slim resnet_v1_50: conv1 7x7/2 via conv2d_same (explicit pad 3), max pool, 4 blocks of
 * bottleneck units (1x1, 3x3, 1x1) with the stride in the 3x3 of each block's last unit
 * (blocks 1-3; conv2d_same: explicit pad 1 then VALID), 1x1 projection shortcuts where the depth
 * changes, and the logits as a 1x1 conv 2048 -> 1000 on the pooled 1x1 map. */
static void resnet_v1_50(layer_list *l) {
    const char *m = "resnet_v1_50";
    add_layer(l, m, "conv1", 224, 3, 64, 7, 2, KN_PADDING_EXPLICIT, 3);
    static const int depth[4] = {256, 512, 1024, 2048}, units[4] = {3, 4, 6, 3};
    static const int stride[4] = {2, 2, 2, 1};
    int H = 56, in = 64;
    for (int b = 0; b < 4; b++) {
        const int d = depth[b], bn = d / 4;
        for (int u = 0; u < units[b]; u++) {
            char nm[48];
            const int s = u == units[b] - 1 ? stride[b] : 1;
            if (in != d) {
                snprintf(nm, sizeof nm, "block%d/unit_%d/shortcut", b + 1, u + 1);
                add_layer(l, m, nm, H, in, d, 1, 1, KN_PADDING_SAME, 0);
            }
            snprintf(nm, sizeof nm, "block%d/unit_%d/conv1", b + 1, u + 1);
            add_layer(l, m, nm, H, in, bn, 1, 1, KN_PADDING_SAME, 0);
            snprintf(nm, sizeof nm, "block%d/unit_%d/conv2", b + 1, u + 1);
            if (s == 1) add_layer(l, m, nm, H, bn, bn, 3, 1, KN_PADDING_SAME, 0);
            else add_layer(l, m, nm, H, bn, bn, 3, s, KN_PADDING_EXPLICIT, 1);
            H = (H + s - 1) / s;
            snprintf(nm, sizeof nm, "block%d/unit_%d/conv3", b + 1, u + 1);
            add_layer(l, m, nm, H, bn, d, 1, 1, KN_PADDING_SAME, 0);
            in = d;
        }
    }
    add_layer(l, m, "logits", 1, 2048, 1000, 1, 1, KN_PADDING_SAME, 0);
}

/* --layer=NAME[,NAME...]: each NAME selects the layer of that exact name in each model, or,
 * when no layer has that name, every layer whose name contains it (resnet's stem is "conv1",
 * which 10 other names contain). Without --layer every layer is selected. Returns the first
 * NAME that selects nothing, or NULL. */
static const char *select_layers(layer_list *l, const char *spec, char *bad, size_t badsz) {
    for (int i = 0; i < l->n; i++) l->v[i].selected = spec == NULL;
    if (!spec) return NULL;
    if (!*spec) {
        snprintf(bad, badsz, "%s", "");
        return bad;
    }
    const char *p = spec;
    while (*p) {
        const size_t len = strcspn(p, ",");
        char name[sizeof l->v[0].name];
        snprintf(name, sizeof name, "%.*s", (int)SB_MIN(len, sizeof name - 1), p);
        int exact = 0, hits = 0;
        for (int i = 0; i < l->n; i++) exact |= !strcmp(l->v[i].name, name);
        for (int i = 0; i < l->n; i++) {
            layer *ly = &l->v[i];
            if (len > 0 && (exact ? !strcmp(ly->name, name) : strstr(ly->name, name) != NULL)) {
                ly->selected = 1;
                hits++;
            }
        }
        if (!hits || len >= sizeof name) {
            snprintf(bad, badsz, "%.*s", (int)len, p);
            return bad;
        }
        p += len + (p[len] == ',');
    }
    return NULL;
}

/* slim vgg_16: 13 3x3 SAME convs in 5 blocks with 2x2 max pools, fc6 a 7x7 VALID conv
 * 512 -> 4096, fc7 and fc8 1x1 convs. */
static void vgg_16(layer_list *l) {
    const char *m = "vgg_16";
    static const int reps[5] = {2, 2, 3, 3, 3}, depth[5] = {64, 128, 256, 512, 512};
    int H = 224, in = 3;
    for (int b = 0; b < 5; b++) {
        for (int u = 0; u < reps[b]; u++) {
            char nm[48];
            snprintf(nm, sizeof nm, "conv%d/conv%d_%d", b + 1, b + 1, u + 1);
            add_layer(l, m, nm, H, in, depth[b], 3, 1, KN_PADDING_SAME, 0);
            in = depth[b];
        }
        H /= 2;
    }
    add_layer(l, m, "fc6", 7, 512, 4096, 7, 1, KN_PADDING_VALID, 0);
    add_layer(l, m, "fc7", 1, 4096, 4096, 1, 1, KN_PADDING_SAME, 0);
    add_layer(l, m, "fc8", 1, 4096, 1000, 1, 1, KN_PADDING_SAME, 0);
}

static float *alloc_fill(size_t n, unsigned salt) {
    float *p = sb_aligned_alloc(sizeof(float) * (n ? n : 1));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u + salt) % 2001u) * 1e-3f - 1.0f;
    return p;
}

typedef struct timing {
    double best, median; /* wall seconds */
    double cpu;          /* least process CPU seconds per thread of one call */
} timing;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum pass { PASS_FWD, PASS_BWD_DATA, PASS_BWD_FILTER, PASS_COUNT };
static const char *const pass_names[] = {"forward", "backward_data", "backward_filter"};
_Static_assert(SB_ARRAY_LEN(pass_names) == PASS_COUNT, "pass names");

typedef struct bench_bufs {
    const conv2d_shape *s;
    float *x, *w, *y, *dy, *dx, *dw;
    void *ws;
    /* OpenBLAS operands: A (Mb, K), W (K, OC), C (Mb, OC), D (Mb, K) */
    int Mb;
    float *A, *C, *D;
} bench_bufs;

static void run_ours(const bench_bufs *b, int pass) {
    switch (pass) {
    case PASS_FWD: conv2d_forward(b->y, b->x, b->w, NULL, b->s, b->ws); break;
    case PASS_BWD_DATA: conv2d_backward_data(b->dx, b->dy, b->w, b->s, b->ws); break;
    case PASS_BWD_FILTER: conv2d_backward_filter(b->dw, NULL, b->dy, b->x, b->s, b->ws); break;
    }
}

static void run_blas(const bench_bufs *b, int pass) {
    const int K = b->s->KH * b->s->KW * b->s->IC, OC = b->s->OC, M = b->Mb;
    switch (pass) {
    case PASS_FWD:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, OC, K, 1.0f, b->A, K, b->w, OC,
                    0.0f, b->C, OC);
        break;
    case PASS_BWD_DATA:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, OC, 1.0f, b->C, OC, b->w, OC,
                    0.0f, b->D, K);
        break;
    case PASS_BWD_FILTER:
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, OC, M, 1.0f, b->A, K, b->C, OC,
                    0.0f, b->dw, OC);
        break;
    }
}

/* Seconds of timed calls a pass gets at least (see the header). */
#define KN_BENCH_MIN_SECONDS 0.05

/* Each OpenMP thread's own CPU seconds, read by the thread itself (another thread's clock lags
 * until that thread is next scheduled out; its own is exact). */
static void thread_cpu_seconds(double *out) {
#pragma omp parallel
    {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        out[omp_get_thread_num()] = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
}

/* Times fn's calls. cpu: for our kernels (per_thread), the least CPU time any of the OpenMP
 * threads got during the call: a thread that waits for a preempted sibling spins and is
 * charged for it, the preempted one is not, so that is the call's time less the longest time a
 * thread spent off its core. OpenBLAS runs on its own threads, so for it: process CPU time per
 * thread. */
static timing time_it(void (*fn)(const bench_bufs *, int), const bench_bufs *b, int pass,
                      int reps, int threads, int per_thread) {
    double t[64], cpu = INFINITY;
    double *c0 = sb_xcalloc((size_t)threads, sizeof *c0);
    double *c1 = sb_xcalloc((size_t)threads, sizeof *c1);
    const double w0 = sb_now();
    fn(b, pass); /* warm-up: page faults, caches, thread start */
    const double warm = sb_now() - w0;
    if (warm > 0 && warm * reps < KN_BENCH_MIN_SECONDS)
        reps = (int)SB_MIN(KN_BENCH_MIN_SECONDS / warm, (double)SB_ARRAY_LEN(t));
    if (reps > (int)SB_ARRAY_LEN(t)) reps = SB_ARRAY_LEN(t);
    for (int r = 0; r < reps; r++) {
        double p0 = 0, c;
        if (per_thread) thread_cpu_seconds(c0);
        else p0 = peak_cpu_seconds();
        const double t0 = sb_now();
        fn(b, pass);
        t[r] = sb_now() - t0;
        if (per_thread) {
            thread_cpu_seconds(c1);
            c = INFINITY;
            for (int i = 0; i < threads; i++) c = SB_MIN(c, c1[i] - c0[i]);
        } else {
            c = (peak_cpu_seconds() - p0) / threads;
        }
        if (c < cpu) cpu = c;
    }
    free(c0), free(c1);
    qsort(t, reps, sizeof t[0], cmp_double);
    return (timing){.best = t[0], .median = t[reps / 2], .cpu = cpu};
}

typedef struct options {
    const char *model;
    const char *layer; /* --layer's list (select_layers), or NULL */
    int batch, reps, rounds, threads, quick, blas, list;
    double peak; /* --peak: GFLOP/s measured elsewhere (bench/peak), or 0: measure each round */
    char csv[256];
} options;

static void usage(void) {
    fprintf(stderr, "usage: kernels [--model=resnet_v1_50|vgg_16|all] [--batch=32] [--reps=3] "
                    "[--rounds=1] [--threads=N] [--quick] [--no-blas] [--layer=NAME[,NAME...]] "
                    "[--list] [--peak=GFLOPS] [--csv=PATH]\n");
}

static void csv_row(const options *o, double peak, const layer *L, const conv2d_shape *s,
                    int pass, const char *impl, int M, double flops, timing t) {
    static const char *header =
        "timestamp,git_sha,build,isa,threads,peak_gflops,model,layer,count,batch,IH,IW,IC,OC,"
        "KH,KW,SH,SW,gemm_M,gemm_N,gemm_K,pass,impl,gflops,pct_of_peak,ms_best,ms_median,"
        "gflops_cpu,pct_of_peak_cpu";
    char ts[32];
    sb_utc_timestamp(ts, sizeof ts);
    sb_csv_line l;
    sb_csv_line_init(&l);
    sb_csv_add_str(&l, ts);
    sb_csv_add_str(&l, sb_build_git_sha());
    sb_csv_add_str(&l, sb_build_variant());
    sb_csv_add_str(&l, KN_ISA_NAME);
    sb_csv_add_int(&l, o->threads);
    sb_csv_add_double(&l, peak, 1);
    sb_csv_add_str(&l, L->model);
    sb_csv_add_str(&l, L->name);
    sb_csv_add_int(&l, L->count);
    sb_csv_add_int(&l, s->N);
    sb_csv_add_int(&l, s->IH);
    sb_csv_add_int(&l, s->IW);
    sb_csv_add_int(&l, s->IC);
    sb_csv_add_int(&l, s->OC);
    sb_csv_add_int(&l, s->KH);
    sb_csv_add_int(&l, s->KW);
    sb_csv_add_int(&l, s->SH);
    sb_csv_add_int(&l, s->SW);
    sb_csv_add_int(&l, M);
    sb_csv_add_int(&l, s->OC);
    sb_csv_add_int(&l, s->KH * s->KW * s->IC);
    sb_csv_add_str(&l, pass_names[pass]);
    sb_csv_add_str(&l, impl);
    sb_csv_add_double(&l, flops / t.best * 1e-9, 1);
    sb_csv_add_double(&l, 100.0 * flops / t.best * 1e-9 / peak, 1);
    sb_csv_add_double(&l, t.best * 1e3, 3);
    sb_csv_add_double(&l, t.median * 1e3, 3);
    sb_csv_add_double(&l, flops / t.cpu * 1e-9, 1);
    sb_csv_add_double(&l, 100.0 * flops / t.cpu * 1e-9 / peak, 1);
    sb_err err;
    if (sb_csv_append(o->csv, header, sb_csv_line_str(&l), &err))
        fprintf(stderr, "kernels: %s\n", err.msg);
    sb_csv_line_fini(&l);
}

/* One layer's best timings over the rounds so far. */
typedef struct layer_result {
    int done;
    conv2d_shape s;
    int Mb; /* OpenBLAS's rows (capped for the largest layers) */
    timing ours[PASS_COUNT], blas[PASS_COUNT];
} layer_result;

static void timing_keep_best(timing *keep, timing t, int first) {
    if (first) {
        *keep = t;
        return;
    }
    if (t.best < keep->best) keep->best = t.best, keep->median = t.median;
    if (t.cpu < keep->cpu) keep->cpu = t.cpu;
}

/* Allocate one layer's tensors, time our passes and OpenBLAS's, free them. */
static void bench_layer(const options *o, const layer *ly, layer_result *r) {
    conv2d_shape s;
    int rc = conv2d_shape_init(&s, o->batch, ly->IH, ly->IW, ly->IC, ly->OC, ly->K, ly->K, ly->S,
                               ly->S, ly->pad, ly->P, ly->P, ly->P, ly->P);
    SB_ASSERT(rc == 0);
    const int M = s.N * s.OH * s.OW, K = s.KH * s.KW * s.IC;
    const size_t nx = (size_t)s.N * s.IH * s.IW * s.IC, ny = (size_t)M * s.OC;
    bench_bufs b = {.s = &s};
    b.x = alloc_fill(nx, 1);
    b.w = alloc_fill((size_t)K * s.OC, 2);
    b.y = alloc_fill(ny, 3);
    b.dy = alloc_fill(ny, 4);
    b.dx = alloc_fill(nx, 5);
    b.dw = alloc_fill((size_t)K * s.OC, 6);
    b.ws = sb_aligned_alloc(conv2d_workspace_size(&s));
    const int first = !r->done;
    for (int p = 0; p < PASS_COUNT; p++)
        timing_keep_best(&r->ours[p], time_it(run_ours, &b, p, o->reps, o->threads, 1), first);
    if (o->blas) {
        /* our idle OpenMP threads spin for ~8 ms (libgomp's default) before they sleep: let
         * them, so that OpenBLAS's threads do not share a core with a spinner */
        usleep(50 * 1000);
        long cap = 16L << 20;
        b.Mb = (long)M * K <= cap ? M : (int)SB_MAX(256L, cap / K);
        b.A = alloc_fill((size_t)b.Mb * K, 7);
        b.C = alloc_fill((size_t)b.Mb * s.OC, 8);
        b.D = alloc_fill((size_t)b.Mb * K, 9);
        for (int p = 0; p < PASS_COUNT; p++)
            timing_keep_best(&r->blas[p], time_it(run_blas, &b, p, o->reps, o->threads, 0), first);
        sb_aligned_free(b.A), sb_aligned_free(b.C), sb_aligned_free(b.D);
        /* OpenBLAS's worker threads spin for a while after a call (2^28 cycles by default,
         * ~75 ms) before they sleep: the next layer's first pass then shared a core with a
         * spinner and ran at half speed (resnet's block4/unit_1/conv1 forward: 44% of peak
         * after OpenBLAS, 86% without). Let them settle instead of changing how OpenBLAS runs. */
        usleep(250 * 1000);
    }
    r->done = 1;
    r->s = s;
    r->Mb = b.Mb;
    sb_aligned_free(b.x), sb_aligned_free(b.w), sb_aligned_free(b.y);
    sb_aligned_free(b.dy), sb_aligned_free(b.dx), sb_aligned_free(b.dw);
    sb_aligned_free(b.ws);
}

int main(int argc, char **argv) {
    /* OpenMP's wait policy is left as the user (and `launch`) has it: libgomp's default spins
     * for a while before a waiting thread sleeps. Under OMP_WAIT_POLICY=passive (this bench's
     * setting in its first seven sessions) every call began by waking a sleeping thread, which
     * cost a fully connected pass (0.3-1 ms) 10-15% and does not happen in training.
     * OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels from CPUID and falls back to
     * Prescott (SSE3, ~25 GFLOP/s here) on CPUs it does not know, as it did on a Sapphire
     * Rapids VM. Compare like with like: its kernels for our variant's ISA. It reads the
     * variable when it loads, hence the re-exec. */
    if (!getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", OPENBLAS_CORE_FOR_ISA, 1);
        execv("/proc/self/exe", argv);
    }
    options o = {.model = "all", .batch = 32, .reps = 3, .rounds = 1, .threads = 0, .blas = 1};
    snprintf(o.csv, sizeof o.csv, "results/kernels_%s.csv", sb_build_variant());
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--model=", 8)) o.model = a + 8;
        else if (!strncmp(a, "--batch=", 8)) o.batch = atoi(a + 8);
        else if (!strncmp(a, "--reps=", 7)) o.reps = atoi(a + 7);
        else if (!strncmp(a, "--rounds=", 9)) o.rounds = atoi(a + 9);
        else if (!strncmp(a, "--threads=", 10)) o.threads = atoi(a + 10);
        else if (!strcmp(a, "--quick")) o.quick = 1;
        else if (!strcmp(a, "--no-blas")) o.blas = 0;
        else if (!strcmp(a, "--list")) o.list = 1;
        else if (!strncmp(a, "--peak=", 7)) {
            char *end;
            o.peak = strtod(a + 7, &end);
            if (end == a + 7 || *end || !(o.peak > 0) || !isfinite(o.peak)) {
                fprintf(stderr, "kernels: --peak=%s: not a positive GFLOP/s figure\n", a + 7);
                return 2;
            }
        }
        else if (!strncmp(a, "--layer=", 8)) o.layer = a + 8;
        else if (!strncmp(a, "--csv=", 6)) snprintf(o.csv, sizeof o.csv, "%s", a + 6);
        else if (!strcmp(a, "--help")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "kernels: unknown argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (strcmp(o.model, "all") && strcmp(o.model, "resnet_v1_50") && strcmp(o.model, "vgg_16")) {
        fprintf(stderr, "kernels: --model=%s: not one of resnet_v1_50, vgg_16, all\n", o.model);
        return 2;
    }
    if (o.quick) o.batch = 2, o.reps = 1, o.rounds = 1;
    if (o.batch < 1 || o.reps < 1 || o.rounds < 1) {
        fprintf(stderr, "kernels: --batch, --reps and --rounds must be >= 1\n");
        usage();
        return 2;
    }
    if (o.threads > 0) omp_set_num_threads(o.threads);
    o.threads = omp_get_max_threads();
    openblas_set_num_threads(o.threads);

    layer_list L = {.n = 0};
    if (!strcmp(o.model, "all") || !strcmp(o.model, "resnet_v1_50")) resnet_v1_50(&L);
    if (!strcmp(o.model, "all") || !strcmp(o.model, "vgg_16")) vgg_16(&L);
    char bad[sizeof L.v[0].name + 16];
    if (select_layers(&L, o.layer, bad, sizeof bad)) {
        fprintf(stderr, "kernels: --layer: no layer of %s is named or contains '%s' (--list shows "
                        "them)\n",
                strcmp(o.model, "all") ? o.model : "resnet_v1_50 or vgg_16", bad);
        return 2;
    }
    if (o.list) {
        for (int i = 0; i < L.n; i++) {
            const layer *ly = &L.v[i];
            if (ly->selected)
                printf("%-12s %-26s %2d %dx%dx%d>%d %dx%d/%d\n", ly->model, ly->name, ly->count,
                       ly->IH, ly->IW, ly->IC, ly->OC, ly->K, ly->K, ly->S);
        }
        return 0;
    }

    /* Every layer is timed in each round and keeps its best: a burst of load from another job
     * on a shared host (which can halve a pass for seconds) then costs one round, not the
     * layer's figure. The table is printed once all rounds are done. */
    layer_result *res = sb_xcalloc((size_t)L.n, sizeof *res);
    peak_result pk = {0};
    const int progress = isatty(STDERR_FILENO);
    for (int round = 0; round < o.rounds; round++) {
        /* the machine's peak: other jobs can only lower the wall-clock measurement. A caller
         * that times one layer per call (compare_kernels.sh) measures it once and passes it:
         * measured here, it was 1.5 s of every call. */
        const peak_result pr =
            o.peak > 0 ? (peak_result){o.peak, o.peak} : peak_measure(o.threads, 0.3, 5);
        if (SB_MAX(pr.wall, pr.cpu) > SB_MAX(pk.wall, pk.cpu)) pk = pr;
        for (int li = 0; li < L.n; li++) {
            const layer *ly = &L.v[li];
            if (!ly->selected) continue;
            if (progress)
                fprintf(stderr, "\rkernels: round %d/%d, %-12s %-26s", round + 1, o.rounds,
                        ly->model, ly->name);
            bench_layer(&o, ly, &res[li]);
        }
    }
    if (progress) fprintf(stderr, "\n");
    const double peak = pk.wall > pk.cpu ? pk.wall : pk.cpu;
    sb_err err;
    if (sb_mkdirs("results", &err)) fprintf(stderr, "kernels: %s\n", err.msg);
    printf("slimbench kernels: build %s, isa %s, %d threads, batch %d, best of %d reps x %d "
           "round%s\n",
           sb_build_variant(), KN_ISA_NAME, o.threads, o.batch, o.reps, o.rounds,
           o.rounds > 1 ? "s" : "");
    printf("measured fp32 FMA peak: %.1f GFLOP/s (wall clock %.1f, CPU time %.1f)\n", peak, pk.wall,
           pk.cpu);
    printf("GEMM blocks: micro-tile %dx%d, KC %d, NC %d, MC %d rows (from the %ld KB L2 of a "
           "core)\n",
           KN_MR, KN_NR, KN_KC, KN_NC, kn_block_rows(), sysconf(_SC_LEVEL2_CACHE_SIZE) >> 10);
    const char *wait = getenv("OMP_WAIT_POLICY");
    printf("OpenMP wait policy: %s\n", wait ? wait : "libgomp's default (spin, then sleep)");
    if (o.blas)
        printf("OpenBLAS %s kernels (OPENBLAS_CORETYPE=%s)\n", openblas_get_corename(),
               getenv("OPENBLAS_CORETYPE"));
    printf("per pass: GFLOP/s (wall clock, best rep), %% of peak, and [%% of peak from the CPU "
           "time\nof its least-scheduled thread: about what it reaches when no other job shares "
           "the cores]\n\n");
    printf("%-12s %-26s %2s %-20s %7s %5s %5s | %-20s| %-20s| %-20s| %s\n", "model", "layer", "n",
           "shape", "M", "N", "K", "forward", "backward-data", "backward-filter",
           "OpenBLAS f/bd/bf GF/s wall[CPU time]");

    double tot_flops[2] = {0}, tot_time[2][PASS_COUNT] = {{0}}, tot_cpu[2][PASS_COUNT] = {{0}};
    for (int li = 0; li < L.n; li++) {
        const layer *ly = &L.v[li];
        const layer_result *r = &res[li];
        if (!r->done) continue;
        const conv2d_shape *sp = &r->s;
        const int M = sp->N * sp->OH * sp->OW, K = sp->KH * sp->KW * sp->IC;
        const double flops = conv2d_flops(sp);
        const double bflops = 2.0 * r->Mb * sp->OC * K;
        char shape[40];
        snprintf(shape, sizeof shape, "%dx%dx%d>%d %dx%d/%d", sp->IH, sp->IW, sp->IC, sp->OC,
                 sp->KH, sp->KW, sp->SH);
        printf("%-12s %-26s %2d %-20s %7d %5d %5d |", ly->model, ly->name, ly->count, shape, M,
               sp->OC, K);
        const int mi = strcmp(ly->model, "vgg_16") == 0;
        tot_flops[mi] += flops * ly->count;
        for (int p = 0; p < PASS_COUNT; p++) {
            const double g = flops / r->ours[p].best * 1e-9;
            printf(" %5.1f %3.0f%% [%3.0f%%] |", g, 100.0 * g / peak,
                   100.0 * flops / r->ours[p].cpu * 1e-9 / peak);
            tot_time[mi][p] += r->ours[p].best * ly->count;
            tot_cpu[mi][p] += r->ours[p].cpu * ly->count;
            csv_row(&o, peak, ly, sp, p, "slimbench", M, flops, r->ours[p]);
        }
        if (o.blas) {
            for (int p = 0; p < PASS_COUNT; p++) {
                printf(" %5.1f[%5.1f]", bflops / r->blas[p].best * 1e-9,
                       bflops / r->blas[p].cpu * 1e-9);
                csv_row(&o, peak, ly, sp, p, "openblas", r->Mb, bflops, r->blas[p]);
            }
        }
        printf("\n");
    }
    printf("\nwhole-net conv+fc layers (each shape weighted by its count):\n");
    static const char *const names[2] = {"resnet_v1_50", "vgg_16"};
    for (int mi = 0; mi < 2; mi++) {
        if (tot_flops[mi] == 0) continue;
        printf("  %-12s %7.1f GFLOP per pass:", names[mi], tot_flops[mi] * 1e-9);
        for (int p = 0; p < PASS_COUNT; p++) {
            const double g = tot_flops[mi] / tot_time[mi][p] * 1e-9;
            const double gc = tot_flops[mi] / tot_cpu[mi][p] * 1e-9;
            printf("\n      %-16s %6.1f GFLOP/s %5.1f%% of peak [CPU time: %6.1f, %5.1f%%]",
                   pass_names[p], g, 100.0 * g / peak, gc, 100.0 * gc / peak);
        }
        printf("\n");
    }
    printf("rows appended to %s\n", o.csv);
    free(res);
    return 0;
}
