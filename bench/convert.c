/* bench/convert.c — images/sec of build_imagenet_data (imagenet_build) on ImageNet-sized JPEGs.
 * Generates a train tree of synset folders of 500x375 JPEGs of about 110 KB each (the ImageNet
 * train set's typical size: 4:2:0, quality 90, a smooth scene plus texture whose amplitude is
 * calibrated once so the files land near the target size), then converts it to LMDB shards with
 * the same code the command runs, timing only the conversion. Nothing is re-encoded: every file
 * is a plain RGB JPEG, the case the ≥ 1,000 images/sec goal of issue 6 is about. The source
 * files are freshly written, so they are read from the page cache: this measures the converter,
 * not the disk.
 *
 * usage: convert [--images=N] [--threads=N] [--shards=N] [--reps=N] [--kbytes=K] [--dir=PATH]
 *                [--quick] [--csv=PATH] [--no-csv]
 * Appends one row per run to results/convert.csv
 * (timestamp,git_sha,build,cpu_model,threads,images,mean_kbytes,width,height,shards,rep,seconds,
 *  images_per_sec,mb_per_sec).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "core/sb.h"
#include "datasets/imagenet/imagenet.h"

#define W 500
#define H 375

static uint64_t rng_next(uint64_t *s) { /* SplitMix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A scene: three colour gradients with a few soft discs, plus uniform texture of amplitude amp.
 * rgb: (H, W, 3). */
static void make_image(uint8_t *rgb, uint64_t seed, double amp) {
    uint64_t s = seed;
    double base[3], gx[3], gy[3], cx[4], cy[4], cr[4], cc[4][3];
    for (int c = 0; c < 3; c++) {
        base[c] = 40 + (double)(rng_next(&s) % 160);
        gx[c] = ((double)(rng_next(&s) % 200) - 100) / W;
        gy[c] = ((double)(rng_next(&s) % 200) - 100) / H;
    }
    for (int k = 0; k < 4; k++) {
        cx[k] = (double)(rng_next(&s) % W);
        cy[k] = (double)(rng_next(&s) % H);
        cr[k] = 30 + (double)(rng_next(&s) % 120);
        for (int c = 0; c < 3; c++) cc[k][c] = ((double)(rng_next(&s) % 160) - 80);
    }
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            uint64_t r = rng_next(&s);
            for (int c = 0; c < 3; c++) {
                double v = base[c] + gx[c] * x + gy[c] * y;
                for (int k = 0; k < 4; k++) {
                    double dx = x - cx[k], dy = y - cy[k];
                    if (dx * dx + dy * dy < cr[k] * cr[k]) v += cc[k][c];
                }
                v += amp * ((double)((r >> (16 * c)) & 0xffff) / 65535.0 - 0.5);
                rgb[((size_t)y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

/* A fresh TurboJPEG buffer per call (*jpg is freed first): reusing one with a stale size is
 * what TurboJPEG 2.1 crashes on. */
static size_t encode(tjhandle tj, const uint8_t *rgb, uint8_t **jpg) {
    unsigned long n = 0;
    tjFree(*jpg);
    *jpg = NULL;
    if (tjCompress2(tj, rgb, W, 0, H, TJPF_RGB, jpg, &n, TJSAMP_420, 90, 0) != 0) {
        fprintf(stderr, "convert: tjCompress2: %s\n", tjGetErrorStr2(tj));
        exit(1);
    }
    return (size_t)n;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "convert: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int images = 1000, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), shards = 0, reps = 3;
    int write_csv = 1, kbytes = 110;
    const char *csv = "results/convert.csv", *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--images=", 9)) images = atoi(a + 9);
        else if (!strncmp(a, "--threads=", 10)) threads = atoi(a + 10);
        else if (!strncmp(a, "--shards=", 9)) shards = atoi(a + 9);
        else if (!strncmp(a, "--reps=", 7)) reps = atoi(a + 7);
        else if (!strncmp(a, "--kbytes=", 9)) kbytes = atoi(a + 9);
        else if (!strncmp(a, "--dir=", 6)) dir = a + 6;
        else if (!strncmp(a, "--csv=", 6)) csv = a + 6;
        else if (!strcmp(a, "--no-csv")) write_csv = 0;
        else if (!strcmp(a, "--quick")) images = 100, reps = 1;
        else {
            fprintf(stderr, "convert: unknown argument '%s'\nusage: convert [--images=N] "
                            "[--threads=N] [--shards=N] [--reps=N] [--kbytes=K] [--dir=PATH] "
                            "[--quick] [--csv=PATH] [--no-csv]\n", a);
            return 2;
        }
    }
    if (images < 1 || threads < 1 || reps < 1 || kbytes < 1) {
        fprintf(stderr, "convert: --images, --threads, --reps and --kbytes must be positive\n");
        return 2;
    }
    if (shards <= 0) shards = threads * 2;
    if (shards % threads) {
        fprintf(stderr, "convert: --shards=%d must be a multiple of --threads=%d (as "
                        "build_imagenet_data requires)\n", shards, threads);
        return 2;
    }
    char root[4096];
    if (dir) snprintf(root, sizeof root, "%s", dir);
    else {
        const char *t = getenv("TMPDIR");
        snprintf(root, sizeof root, "%s/sb_convert_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(root)) {
            perror("convert: mkdtemp");
            return 1;
        }
    }
    sb_err err;
    sb_err_clear(&err);

    /* Calibrate the texture amplitude on one image so files are about kbytes KB. */
    tjhandle tj = tjInitCompress();
    uint8_t *rgb = sb_xmalloc((size_t)W * H * 3), *jpg = NULL;
    double lo = 0, hi = 255, amp = 64;
    for (int it = 0; it < 12; it++) {
        amp = 0.5 * (lo + hi);
        make_image(rgb, 12345, amp);
        size_t n = encode(tj, rgb, &jpg);
        if (n > (size_t)kbytes * 1000) hi = amp;
        else lo = amp;
    }

    /* The tree: 10 synsets, images spread round-robin. */
    static const char *const synsets[] = {"n01440764", "n01443537", "n01484850", "n01491361",
                                          "n01494475", "n01496331", "n01498041", "n01514668",
                                          "n01514859", "n01518878"};
    const int nsyn = (int)SB_ARRAY_LEN(synsets);
    char path[8192];
    snprintf(path, sizeof path, "%s/train", root);
    int rc = sb_mkdirs(path, &err);
    FILE *lf = NULL;
    snprintf(path, sizeof path, "%s/synsets.txt", root);
    if (!rc && !(lf = fopen(path, "w"))) rc = sb_err_set(&err, 1, "cannot write %s", path);
    for (int s = 0; !rc && s < nsyn; s++) {
        fprintf(lf, "%s\n", synsets[s]);
        snprintf(path, sizeof path, "%s/train/%s", root, synsets[s]);
        rc = sb_mkdirs(path, &err);
    }
    if (lf) fclose(lf);
    if (rc) {
        fprintf(stderr, "convert: %s\n", err.msg);
        return 1;
    }
    double total_bytes = 0, t0 = sb_now();
    for (int i = 0; i < images; i++) {
        make_image(rgb, 1000 + (uint64_t)i, amp);
        size_t n = encode(tj, rgb, &jpg);
        total_bytes += (double)n;
        const char *syn = synsets[i % nsyn];
        snprintf(path, sizeof path, "%s/train/%s/%s_%d.JPEG", root, syn, syn, i);
        if (write_file(path, jpg, n)) return 1;
    }
    tjFree(jpg);
    tjDestroy(tj);
    free(rgb);
    const double mean_kb = total_bytes / images / 1000;
    printf("convert: %d JPEGs of %dx%d, mean %.1f KB (target %d KB), generated in %.1f s under %s\n",
           images, W, H, mean_kb, kbytes, sb_now() - t0, root);

    double *ips = sb_xmalloc((size_t)reps * sizeof *ips);
    char train_dir[4200], labels[4200], out[4200], cpu[256], ts[32];
    snprintf(train_dir, sizeof train_dir, "%s/train", root);
    snprintf(labels, sizeof labels, "%s/synsets.txt", root);
    sb_cpu_model(cpu, sizeof cpu);
    sb_log_config(SB_LOG_WARN, 0);
    for (int r = 0; r < reps; r++) {
        snprintf(out, sizeof out, "%s/out%d", root, r);
        imagenet_build_stats st = {0};
        imagenet_build_opts o = {.train_directory = train_dir,
                                 .output_directory = out,
                                 .labels_file = labels,
                                 .train_shards = shards,
                                 .validation_shards = shards,
                                 .num_threads = threads,
                                 .progress = 0,
                                 .stats = &st};
        double w0 = sb_now();
        rc = imagenet_build(&o, &err);
        double wall = sb_now() - w0;
        if (rc) {
            fprintf(stderr, "convert: build_imagenet_data failed: %s\n", err.msg);
            return 1;
        }
        if (st.images != (uint64_t)images || st.skipped) {
            fprintf(stderr, "convert: expected %d images written, got %llu (%llu skipped)\n",
                    images, (unsigned long long)st.images, (unsigned long long)st.skipped);
            return 1;
        }
        ips[r] = images / wall;
        printf("  rep %d: %d images in %.2f s: %.0f images/sec, %.1f MB/s (%d threads, %d shards)\n",
               r + 1, images, wall, ips[r], total_bytes / wall / 1e6, threads, shards);
        if (write_csv) {
            sb_utc_timestamp(ts, sizeof ts);
            sb_csv_line l;
            sb_csv_line_init(&l);
            sb_csv_add_str(&l, ts);
            sb_csv_add_str(&l, sb_build_git_sha());
            sb_csv_add_str(&l, sb_build_variant());
            sb_csv_add_str(&l, cpu);
            sb_csv_add_int(&l, threads);
            sb_csv_add_int(&l, images);
            sb_csv_add_double(&l, mean_kb, 1);
            sb_csv_add_int(&l, W);
            sb_csv_add_int(&l, H);
            sb_csv_add_int(&l, shards);
            sb_csv_add_int(&l, r + 1);
            sb_csv_add_double(&l, wall, 3);
            sb_csv_add_double(&l, ips[r], 1);
            sb_csv_add_double(&l, total_bytes / wall / 1e6, 1);
            const char *slash = strrchr(csv, '/');
            if (slash) {
                snprintf(path, sizeof path, "%.*s", (int)(slash - csv), csv);
                rc = sb_mkdirs(path, &err);
            }
            if (!rc)
                rc = sb_csv_append(csv,
                                   "timestamp,git_sha,build,cpu_model,threads,images,mean_kbytes,"
                                   "width,height,shards,rep,seconds,images_per_sec,mb_per_sec",
                                   sb_csv_line_str(&l), &err);
            sb_csv_line_fini(&l);
            if (rc) {
                fprintf(stderr, "convert: %s\n", err.msg);
                return 1;
            }
        }
    }
    qsort(ips, (size_t)reps, sizeof *ips, cmp_double);
    printf("build_imagenet_data: %.0f images/sec (median of %d runs; min %.0f, max %.0f) on %d "
           "threads, %s build, %s%s\n",
           reps % 2 ? ips[reps / 2] : 0.5 * (ips[reps / 2 - 1] + ips[reps / 2]), reps, ips[0],
           ips[reps - 1], threads, sb_build_variant(), cpu, write_csv ? "; rows appended" : "");
    free(ips);
    if (!dir) {
        char cmd[8300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0) fprintf(stderr, "convert: could not remove %s\n", root);
    }
    return 0;
}
