/* tests/test_bench_scripts.c — the benchmark scripts in bench/, checked without running a
 * benchmark: they pass shellcheck; compare_builds.sh --dry-run lists the make, peak and launch
 * commands of each variant in the interleaved order (rotated each repeat) with the card's
 * configuration by default; bad options exit 2; peers.sh without PyTorch says it skips the peer;
 * bench/report turns a small set of CSVs (written here) into a Markdown report with its tables
 * and readable PNG plots; bench/kernels selects the layers --layer names (--list, no timing);
 * compare_kernels.sh alternates the variants layer by layer and tabulates a smoke run. Seconds
 * in all. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sb.h"
#include "tests/support/testutil.h"

static const char *const k_scripts[] = {"bench/compare_builds.sh", "bench/compare_kernels.sh",
                                        "bench/peers.sh",          "bench/report",
                                        "bench/all.sh",            "bench/lib.sh",
                                        "bench/scaling.sh"};

static int have(const char *tool) {
    char *out;
    int rc = tu_run(&out, "command -v %s", tool);
    free(out);
    return rc == 0;
}

static void test_scripts_pass_shellcheck(void **state) {
    (void)state;
    if (!have("shellcheck")) {
        print_message("skipped: shellcheck is not installed (make deps installs it)\n");
        skip();
    }
    for (size_t i = 0; i < SB_ARRAY_LEN(k_scripts); i++) {
        char *out;
        int rc = tu_run(&out, "shellcheck -x %s", k_scripts[i]);
        if (rc != 0) fail_msg("shellcheck -x %s (exit %d):\n%s", k_scripts[i], rc, out);
        free(out);
        struct stat st;
        assert_int_equal(stat(k_scripts[i], &st), 0);
        if (strcmp(k_scripts[i], "bench/lib.sh") != 0 && !(st.st_mode & S_IXUSR))
            fail_msg("%s is not executable", k_scripts[i]);
    }
}

/* The lines of out that start with prefix, in order, into lines (at most max); returns count. */
static int lines_starting(char *out, const char *prefix, char **lines, int max) {
    int n = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
        if (!strncmp(l, prefix, strlen(prefix)) && n < max) lines[n++] = l;
    return n;
}

static void test_compare_builds_dry_run_order(void **state) {
    (void)state;
    char *out;
    int rc = tu_run(&out, "bench/compare_builds.sh --dry-run --variants=generic,native "
                          "--models=lenet,cifarnet --repeats=2 --steps=3 --warmup=1 --batch_size=4 "
                          "--threads=2 --out=/nonexistent/results");
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    char *copy = strdup(out);
    char *mk[8], *ln[16];
    assert_int_equal(lines_starting(copy, "make ", mk, 8), 2);
    assert_non_null(strstr(mk[0], "BUILD=generic all bench"));
    assert_non_null(strstr(mk[1], "BUILD=native all bench"));
    free(copy);
    copy = strdup(out);
    enum { NPEAK = 3 * 2 }; /* three rounds of one peak per variant */
    assert_int_equal(lines_starting(copy, "build/", ln, 16), NPEAK + 2 * 2 * 2);
    /* peaks first, the variants interleaved, into the run's directory */
    for (int i = 0; i < NPEAK; i++) {
        assert_non_null(strstr(ln[i], i % 2 ? "build/native/bench/peak --threads=2"
                                             : "build/generic/bench/peak --threads=2"));
        assert_non_null(strstr(ln[i], "/nonexistent/results/compare_builds.d/"));
    }
    /* repeat 1: generic then native for each model; repeat 2: native first */
    const char *want[][2] = {{"generic", "lenet"},  {"native", "lenet"},
                             {"generic", "cifarnet"}, {"native", "cifarnet"},
                             {"native", "lenet"},   {"generic", "lenet"},
                             {"native", "cifarnet"}, {"generic", "cifarnet"}};
    for (int i = 0; i < 8; i++) {
        char exe[64], model[64];
        snprintf(exe, sizeof exe, "build/%s/bin/launch ", want[i][0]);
        snprintf(model, sizeof model, "--model_name=%s ", want[i][1]);
        const char *l = ln[NPEAK + i];
        if (strncmp(l, exe, strlen(exe)) || !strstr(l, model))
            fail_msg("launch %d: want %s%s, got: %s", i, exe, model, l);
        assert_non_null(strstr(l, "--batch_size=4 --optimizer=rmsprop"));
        assert_non_null(strstr(l, "--max_number_of_steps=4 --num_warmup_steps=1"));
        assert_non_null(strstr(l, "--threads_per_replica=2"));
    }
    free(copy);
    free(out);
}

static void test_compare_builds_defaults(void **state) {
    (void)state;
    char *out;
    int rc = tu_run(&out, "bench/compare_builds.sh --dry-run --variants=generic --no-build");
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    assert_null(strstr(out, "make "));
    /* the card's one-liner and resnet_v1_50, 2 warm-up + 10 timed steps, 3 repeats */
    assert_non_null(strstr(out, "--model_name=vgg_16 --batch_size=32 --optimizer=rmsprop "
                                "--max_number_of_steps=12 --num_warmup_steps=2"));
    assert_non_null(strstr(out, "--model_name=resnet_v1_50 --batch_size=32"));
    char *copy = strdup(out), *ln[16];
    assert_int_equal(lines_starting(copy, "build/generic/bin/launch", ln, 16), 2 * 3);
    free(copy);
    free(out);
}

static void test_bad_options_exit_2(void **state) {
    (void)state;
    const char *cmds[] = {
        "bench/compare_builds.sh --dry-run --nosuchflag",
        "bench/compare_builds.sh --dry-run --variants=avx9",
        "bench/compare_builds.sh --dry-run --repeats=0",
        "bench/peers.sh --dry-run --models=lenet",
        "bench/peers.sh --dry-run --steps=x",
        "bench/report --bogus",
        "bench/scaling.sh --bogus",
        "bench/scaling.sh lenet 0",
        "bench/compare_kernels.sh --dry-run --bogus",
        "bench/compare_kernels.sh --dry-run --variants=native",
        "bench/compare_kernels.sh --dry-run --variants=avx9,native",
        "bench/compare_kernels.sh --dry-run --rounds=0",
        "bench/compare_kernels.sh --dry-run --model=lenet",
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(cmds); i++) {
        char *out;
        int rc = tu_run(&out, "%s", cmds[i]);
        if (rc != 2) fail_msg("%s: exit %d, want 2:\n%s", cmds[i], rc, out);
        free(out);
    }
}

static void test_peers_without_torch(void **state) {
    (void)state;
    char *out;
    int rc = tu_run(&out, "bench/peers.sh --dry-run --no-build --python=/nonexistent/python3 "
                          "--models=resnet_v1_50 --repeats=2 --threads=2");
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    assert_non_null(strstr(out, "PyTorch peer is skipped"));
    assert_null(strstr(out, "torch_peer.py"));
    char *copy = strdup(out), *ln[8];
    assert_int_equal(lines_starting(copy, "build/native/bin/launch --model_name=resnet_v1_50 "
                                          "--batch_size=32 --optimizer=rmsprop", ln, 8), 2);
    free(copy);
    free(out);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_png(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/report_files/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s was not written", path);
    unsigned char magic[8] = {0};
    size_t n = fread(magic, 1, 8, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (n != 8 || memcmp(magic, "\x89PNG\r\n\x1a\n", 8) != 0) fail_msg("%s is not a PNG", path);
    if (size < 5000) fail_msg("%s is only %ld bytes", path, size);
}

static void test_report_from_small_csvs(void **state) {
    (void)state;
    if (!have("gnuplot")) {
        print_message("skipped: gnuplot is not installed (make deps installs gnuplot-nox)\n");
        skip();
    }
    char dir[4096];
    tu_make_tmpdir(dir, sizeof dir);
    const char *cbh =
        "run_id,timestamp,git_sha,build,cflags,cpu_model,threads,model_name,batch_size,optimizer,"
        "data,image_size,warmup_steps,steps,repeat,images_per_sec,images_per_sec_stdev,"
        "step_ms_median,data_wait_ms,allreduce_ms,gflop_per_image,gflops,peak_gflops,pct_of_peak,"
        "peak_rss_mb,final_loss,command\n";
    char cb[8192];
    int o = snprintf(cb, sizeof cb, "%s", cbh);
    /* an older run that must be ignored, then two repeats of generic and avx2 */
    o += snprintf(cb + o, sizeof cb - (size_t)o,
                  "R0,t,abc,generic,-O3,\"CPU, Inc.\",2,lenet,8,rmsprop,synthetic,28,1,3,1,999,0,1,0,"
                  "0,0.03,1,100,1,50,1.0,cmd\n");
    const char *rows[][3] = {{"generic", "10", "100"}, {"avx2", "30", "200"},
                             {"avx2", "34", "200"},    {"generic", "12", "100"}};
    for (int i = 0; i < 4; i++)
        o += snprintf(cb + o, sizeof cb - (size_t)o,
                      "R1,t,abc,%s,-O3,\"CPU, Inc.\",2,lenet,8,rmsprop,synthetic,28,1,3,%d,%s,0.5,"
                      "100,0.1,0,0.03,5,%s,2.5,50,1.0,\"build/x/bin/launch --a=1\"\n",
                      rows[i][0], i / 2 + 1, rows[i][1], rows[i][2]);
    write_text(dir, "compare_builds.csv", cb);
    write_text(dir, "peers.csv",
               "run_id,timestamp,impl,version,cpu_model,threads,model_name,batch_size,optimizer,"
               "warmup_steps,steps,repeat,images_per_sec,images_per_sec_stdev,step_ms_median,"
               "final_loss,command\n"
               "P1,t,slimbench-native,abc,cpu,2,resnet_v1_50,2,rmsprop,1,1,1,4.0,0,500,1,c\n"
               "P1,t,pytorch-torchvision,1.13,cpu,2,resnet_v1_50,2,rmsprop,1,1,1,2.0,0,1000,1,c\n");
    write_text(dir, "scaling_test.csv",
               "model_name,replicas,images_per_sec,build,batch_size\n"
               "lenet,1,100,native,8\nlenet,2,190,native,8\nlenet,4,350,native,8\n");
    /* bench/scaling.sh's own file: the cores split over the replicas, its efficiency column */
    write_text(dir, "scaling.csv",
               "timestamp,git_sha,build,model_name,hosts,replicas,threads_per_replica,batch_size,"
               "global_batch_size,images_per_sec,step_ms_median,allreduce_ms,scaling_efficiency\n"
               "t,a,native,resnet_v1_50,1 host,1,2,8,8,7.0,1140,0,1.000\n"
               "t,a,native,resnet_v1_50,1 host,2,1,8,16,6.3,2527,31,0.900\n"
               "t,a,native,resnet_v1_50,3 hosts,3,1,8,24,6.0,4000,50,0.857\n");
    write_text(dir, "kernels_native.csv",
               "timestamp,git_sha,build,isa,threads,peak_gflops,model,layer,count,batch,IH,IW,IC,"
               "OC,KH,KW,SH,SW,gemm_M,gemm_N,gemm_K,pass,impl,gflops,pct_of_peak,ms_best,"
               "ms_median,gflops_cpu,pct_of_peak_cpu\n"
               "t,a,native,avx512,2,200,vgg_16,conv1,1,32,8,8,3,4,3,3,1,1,2048,4,27,forward,slimbench,100,50,1,1,120,60\n"
               "t,a,native,avx512,2,200,vgg_16,conv1,1,32,8,8,3,4,3,3,1,1,2048,4,27,backward_data,slimbench,80,40,1,1,90,45\n"
               "t,a,native,avx512,2,200,vgg_16,conv1,1,32,8,8,3,4,3,3,1,1,2048,4,27,backward_filter,slimbench,60,30,1,1,70,35\n"
               "t,a,native,avx512,2,200,vgg_16,conv2,2,32,8,8,4,4,3,3,1,1,2048,4,36,forward,slimbench,150,75,1,1,160,80\n"
               "t,a,native,avx512,2,200,vgg_16,conv2,2,32,8,8,4,4,3,3,1,1,2048,4,36,forward,openblas,170,85,1,1,180,90\n");
    /* an older compare_kernels run that must be ignored, then the latest */
    write_text(dir, "compare_kernels.csv",
               "run_id,model,layer,pass,build,baseline,gflops,speedup\n"
               "K0,vgg_16,conv1,forward,native,avx2,999,9.999\n"
               "K1,vgg_16,conv1,forward,avx2,avx2,100,1.000\n"
               "K1,vgg_16,conv1,forward,native,avx2,190,1.900\n"
               "K1,vgg_16,conv1,backward_data,avx2,avx2,90,1.000\n"
               "K1,vgg_16,conv1,backward_data,native,avx2,160,1.778\n"
               "K1,vgg_16,conv1,backward_filter,avx2,avx2,80,1.000\n"
               "K1,vgg_16,conv1,backward_filter,native,avx2,150,1.875\n"
               "K1,vgg_16,fc6,forward,avx2,avx2,50,1.000\n"
               "K1,vgg_16,fc6,forward,native,avx2,80,1.600\n"
               "K1,vgg_16,fc6,backward_data,avx2,avx2,40,1.000\n"
               "K1,vgg_16,fc6,backward_data,native,avx2,70,1.750\n"
               "K1,vgg_16,fc6,backward_filter,avx2,avx2,60,1.000\n"
               "K1,vgg_16,fc6,backward_filter,native,avx2,100,1.667\n");
    write_text(dir, "runs.csv",
               "timestamp,model_name,build,batch_size,replicas,data,step_ms_median,data_wait_ms,"
               "allreduce_ms,images_per_sec,extra\n"
               "2026-01-01T00:00:00Z,lenet,native,8,1,synthetic,100,0,0,80,x\n"
               "2026-01-01T00:00:01Z,lenet,native,8,2,/d,100,20,30,160,x\n");
    write_text(dir, "convert.csv",
               "timestamp,git_sha,build,cpu_model,threads,images,mean_kbytes,width,height,shards,"
               "rep,seconds,images_per_sec,mb_per_sec\n"
               "t,a,native,cpu,2,100,108.0,500,375,4,1,0.05,2000.0,216.0\n");
    write_text(dir, "profile.csv",
               "timestamp,git_sha,build,model_name,batch_size,threads,steps,layer,kind,fwd_ms,"
               "bwd_ms,total_ms,fwd_gflops,bwd_gflops,fwd_pct_of_peak,bwd_pct_of_peak\n"
               "t1,a,native,lenet,8,2,3,lenet/conv1,conv2d,1.000,2.000,3.000,50.00,40.00,25.00,20.00\n"
               "t1,a,native,lenet,8,2,3,lenet/pool1,max_pool,0.500,0.250,0.750,,,,\n"
               "t1,a,native,lenet,8,2,3,(forward),step,,,1.500,,,,\n"
               "t1,a,native,lenet,8,2,3,(backward),step,,,2.250,,,,\n"
               "t1,a,native,lenet,8,2,3,(data wait),step,,,0.250,,,,\n"
               "t1,a,native,lenet,8,2,3,(allreduce),step,,,0.000,,,,\n"
               "t1,a,native,lenet,8,2,3,(optimizer and other),step,,,1.000,,,,\n"
               "t1,a,native,lenet,8,2,3,(step),step,,,5.000,,,,\n");
    char *out;
    int rc = tu_run(&out, "bench/report --results=%s --title='tiny'", dir);
    if (rc != 0) fail_msg("bench/report exit %d:\n%s", rc, out);
    free(out);
    char path[4200], *md;
    size_t n;
    sb_err e;
    snprintf(path, sizeof path, "%s/report.md", dir);
    if (sb_read_file(path, &md, &n, &e) != 0) fail_msg("%s", e.msg);
    const char *want[] = {
        "# tiny",
        "## Throughput by build variant",
        "| lenet | generic | 11.00 | 10.00 - 12.00 | 1.00x |",  /* medians of R1 only */
        "| lenet | avx2 | 32.00 | 30.00 - 34.00 | 2.91x |",
        "| resnet_v1_50 | 4.00 | 2.00 | 2.00x |",                 /* peers */
        "| lenet native b8 | 4 | 350.00 | 87.50 | 88% |",              /* scaling */
        "| resnet_v1_50 native b8 | 2 | 6.30 | 3.15 | 90% |",           /* cores split */
        "| resnet_v1_50 native b8 (3 hosts) | 3 | 6.00 | 2.00 | 86% |",
        "### vgg_16, build `native`",
        "| conv1 | 120.0 (60%) | 90.0 (45%) | 70.0 (35%) | 100 / 80 / 60 |", /* CPU-time rate */
        "### vgg_16, build `native` against `avx2`",                      /* speedups */
        "| conv1 | 1.900x | 1.778x | 1.875x |",
        "| fc6 | 1.600x | 1.750x | 1.667x |",
        "| lenet native b8 x2 data | 100.0 | 50.0 | 20.0 | 30.0 |",         /* step breakdown */
        "| t | native | 2 | 100 | 108.0 | 2000.0 | 216.0 |",               /* convert */
        "](report_files/builds.png)",
        "Median step 5.0 ms: forward 1.5 ms (30%), backward 2.2 ms (45%), data wait 0.2 ms (5%)",
        "| conv2d | 1.0 | 2.0 | 60.0% |",                                 /* profile by kind */
        "| lenet/conv1 | conv2d | 1.00 | 2.00 | 50.00 (25.00%) | 40.00 (20.00%) |",
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(want); i++)
        if (!strstr(md, want[i])) fail_msg("report.md lacks \"%s\":\n%s", want[i], md);
    if (strstr(md, "999"))
        fail_msg("report.md used an older compare_builds or compare_kernels run:\n%s", md);
    free(md);
    assert_png(dir, "builds.png");
    assert_png(dir, "peers.png");
    assert_png(dir, "scaling.png");
    assert_png(dir, "layers_native_vgg_16.png");
    assert_png(dir, "speedup_native_vgg_16.png");
    assert_png(dir, "steps.png");
    assert_png(dir, "profile_native_lenet.png");
    tu_remove_tree(dir);
}

/* bench/kernels's layer selection, without timing anything (--list): a name selects the layer
 * of that exact name (resnet's stem "conv1", which 10 other names contain), or else every layer
 * containing it; a comma list adds up; a name that selects nothing exits 2 and is named. */
static void kernels_list(const char *args, int want_rc, const char *const *want, int nwant) {
    const char *bd = getenv("SB_BUILD_DIR");
    if (!bd) fail_msg("SB_BUILD_DIR is not set (tests/run_tests.sh sets it)");
    char *out;
    int rc = tu_run(&out, "%s/bench/kernels --list %s", bd, args);
    if (rc != want_rc) fail_msg("kernels --list %s: exit %d, want %d:\n%s", args, rc, want_rc, out);
    if (want_rc == 0) {
        char *copy = strdup(out), *ln[64];
        const int n = lines_starting(copy, "", ln, 64);
        if (n != nwant) fail_msg("kernels --list %s: %d layers, want %d:\n%s", args, n, nwant, out);
        for (int i = 0; i < nwant; i++) {
            char model[32], name[64];
            if (sscanf(ln[i], "%31s %63s", model, name) != 2 || strcmp(name, want[i]) != 0)
                fail_msg("kernels --list %s: line %d is '%s', want layer %s", args, i, ln[i],
                         want[i]);
        }
        free(copy);
    } else if (!strstr(out, want[0])) {
        fail_msg("kernels --list %s: the message does not name '%s':\n%s", args, want[0], out);
    }
    free(out);
}

static void test_kernels_layer_selection(void **state) {
    (void)state;
    const char *stem[] = {"conv1"};
    kernels_list("--layer=conv1", 0, stem, 1);
    const char *unit1[] = {"block1/unit_1/conv1", "block2/unit_1/conv1", "block3/unit_1/conv1",
                           "block4/unit_1/conv1"};
    kernels_list("--model=resnet_v1_50 --layer=unit_1/conv1", 0, unit1, 4);
    const char *listed[] = {"logits", "conv1/conv1_1", "conv4/conv4_1", "conv4/conv4_2"};
    kernels_list("--layer=conv1_1,logits,conv4", 0, listed, 4);
    const char *none[] = {"logits"};
    kernels_list("--model=vgg_16 --layer=logits", 2, none, 1);
    const char *bogus[] = {"nosuch"};
    kernels_list("--layer=conv1,nosuch", 2, bogus, 1);
    const char *badpeak[] = {"--peak=12x"};
    kernels_list("--peak=12x", 2, badpeak, 1);
    char *out;
    const char *bd = getenv("SB_BUILD_DIR");
    assert_int_equal(tu_run(&out, "%s/bench/kernels --list", bd), 0);
    char *ln[64];
    assert_int_equal(lines_starting(out, "", ln, 64), 39); /* 27 resnet shapes, 12 vgg */
    free(out);
}

/* compare_kernels.sh measures the variants' peaks at the start of each round, then runs the
 * variants layer by layer, alternating, the order reversed in the second round, each call given
 * its variant's best peak so far.
 * Before any build it cannot list the layers and makes one call per variant. */
static void test_compare_kernels_dry_run_order(void **state) {
    (void)state;
    char *out;
    int rc = tu_run(&out, "bench/compare_kernels.sh --dry-run --no-build --variants=generic,native "
                          "--layer=conv1,fc8 --rounds=2 --out=/nonexistent/results");
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    char *copy = strdup(out), *all[24], *ln[16];
    const int nall = lines_starting(copy, "build/", all, 24);
    int n = 0, npeak = 0; /* the kernels commands; each round starts with the variants' peaks */
    for (int i = 0; i < nall; i++) {
        if (strstr(all[i], "/bench/peak ")) npeak++;
        else if (n < 16) ln[n++] = all[i];
    }
    if (npeak != 4 || !strstr(all[0], "/bench/peak ") || !strstr(all[1], "/bench/peak "))
        fail_msg("want the 2 variants' peaks first in each of 2 rounds:\n%s", out);
    static const char *const listed[] = {"generic", "native",  "generic", "native",
                                         "native",  "generic", "native",  "generic"};
    static const char *const unlisted[] = {"generic", "native", "native", "generic"};
    const char *const *want = n == 8 ? listed : unlisted;
    if (n != 8 && n != 4)
        fail_msg("%d kernels commands, want 8 (or 4 before a build):\n%s", n, out);
    for (int i = 0; i < n; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "build/%s/bench/kernels ", want[i]);
        if (strncmp(ln[i], prefix, strlen(prefix)) != 0 || !strstr(ln[i], "--no-blas") ||
            !strstr(ln[i], "--peak="))
            fail_msg("command %d is '%s', want %s...", i, ln[i], prefix);
        if (n == 8 && !strstr(ln[i], i % 4 < 2 ? "--layer=conv1 " : "--layer=fc8 "))
            fail_msg("command %d is '%s', want layer %s", i, ln[i], i % 4 < 2 ? "conv1" : "fc8");
    }
    free(copy);
    free(out);
}

/* A real (smoke) run over one layer with the generic and native builds of `make test`: the
 * table and one CSV row per (pass, variant), the baseline's speedup 1. */
static void test_compare_kernels_quick(void **state) {
    (void)state;
    if (access("build/generic/bench/kernels", X_OK) || access("build/native/bench/kernels", X_OK)) {
        print_message("skipped: build/generic and build/native benches are not built\n");
        skip();
    }
    char dir[256], *out;
    tu_make_tmpdir(dir, sizeof dir);
    int rc = tu_run(&out, "bench/compare_kernels.sh --no-build --quick --variants=generic,native "
                          "--layer=fc8 --out=%s", dir);
    if (rc != 0) fail_msg("exit %d:\n%s", rc, out);
    if (!strstr(out, "vgg_16       fc8") || !strstr(out, "(these layers)"))
        fail_msg("no fc8 rows or whole-net lines in:\n%s", out);
    free(out);
    rc = tu_run(&out, "grep -c ',vgg_16,fc8,' %s/compare_kernels.csv; "
                      "grep -c ',vgg_16,fc8,[a-z_]*,generic,generic,[0-9.]*,1.000$' "
                      "%s/compare_kernels.csv",
                dir, dir);
    if (rc != 0 || strcmp(out, "6\n3\n") != 0) fail_msg("compare_kernels.csv rows:\n%s", out);
    free(out);
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts_pass_shellcheck),
        cmocka_unit_test(test_compare_builds_dry_run_order),
        cmocka_unit_test(test_compare_builds_defaults),
        cmocka_unit_test(test_bad_options_exit_2),
        cmocka_unit_test(test_peers_without_torch),
        cmocka_unit_test(test_report_from_small_csvs),
        cmocka_unit_test(test_kernels_layer_selection),
        cmocka_unit_test(test_compare_kernels_dry_run_order),
        cmocka_unit_test(test_compare_kernels_quick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
