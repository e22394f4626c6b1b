/* bench/input_pipeline.c — images/sec per core of the input pipeline's per-image work (JPEG
 * decode + slim preprocessing into a float (224, 224, 3) image) on ImageNet-sized JPEGs, next
 * to libjpeg-turbo's own full-size decode rate on the same files, in the same run:
 *
 *   full decode     tjDecompress2 at full size to RGB (TurboJPEG defaults: islow IDCT, fancy
 *                   upsampling), timed in this process
 *   tjbench         Debian's libjpeg-turbo-progs `tjbench FILE -rgb -quiet` on the first files
 *                   (its wall-clock Mpixels/s turned into images/s); skipped if not installed
 *   vgg train       header + random choices + DCT scale + decode of the window the crop reads
 *                   + fused resize/crop/flip/mean: what a pipeline worker does per record
 *   vgg train, whole-image decode   the same decoding the whole image, for comparison
 *   vgg eval, inception train, inception eval   the other paths ImageNet training runs
 *   LMDB pipeline   pipe_create/pipe_next end to end (records from an LMDB shard, 1 worker
 *                   thread, batch 32, vgg train); per core = images / process CPU seconds
 *                   (worker and the consumer's batch copies)
 *
 * The JPEGs are synthetic but natural-ish: 500x375, smooth gradients, blobs, a texture and
 * Gaussian noise whose strength is tuned so the files are about 110 KB at quality 90 (4:2:0),
 * the size of an average ImageNet training JPEG.
 *
 * Rates are per core: images / thread CPU seconds (one thread does the work), so other processes
 * on the machine disturb them little; the table also shows wall-clock rates. One CSV row per
 * path is appended to results/input_pipeline_<build>.csv.
 *
 * usage: input_pipeline [--images=16] [--seconds=2] [--tjbench_files=4] [--csv=PATH]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "datasets/pipeline.h"
#include "models/slim/preprocessing/preprocessing.h"

#define IMG_H 375
#define IMG_W 500

typedef struct options {
    int images;
    double seconds;
    int tjbench_files;
    char csv[512];
} options;

typedef struct jpeg_file {
    uint8_t *data;
    size_t n;
    char path[600];
} jpeg_file;

static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Box-Muller from the LCG. */
static double gauss(uint32_t *s) {
    double u = (lcg(s) + 1.0) / 16777217.0, v = (lcg(s) + 1.0) / 16777217.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void natural_image(uint8_t *px, int h, int w, uint32_t seed, double sigma) {
    uint32_t s = seed * 2654435761u + 1;
    double cy[4], cx[4], r[4], amp[4][3];
    for (int b = 0; b < 4; b++) {
        cy[b] = lcg(&s) % h;
        cx[b] = lcg(&s) % w;
        r[b] = 20 + lcg(&s) % 80;
        for (int c = 0; c < 3; c++) amp[b][c] = (double)(lcg(&s) % 160) - 80;
    }
    const double ph = (lcg(&s) % 1000) / 100.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v[3] = {128 + 100 * sin(x * 3.1 / w + y * 1.3 / h + ph),
                           128 + 90 * cos(y * 4.2 / h - x * 0.7 / w),
                           60 + 150.0 * (x + y) / (w + h)};
            for (int b = 0; b < 4; b++) {
                double d2 = (y - cy[b]) * (y - cy[b]) + (x - cx[b]) * (x - cx[b]);
                double g = exp(-d2 / (2 * r[b] * r[b]));
                for (int c = 0; c < 3; c++) v[c] += amp[b][c] * g;
            }
            double tex = 12 * sin(x * 0.35 + ph) * sin(y * 0.27);
            for (int c = 0; c < 3; c++) {
                double t = v[c] + tex + sigma * gauss(&s);
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : lrint(t));
            }
        }
}

static uint8_t *encode(tjhandle tj, const uint8_t *px, size_t *n) {
    unsigned char *jpeg = NULL;
    unsigned long sz = 0;
    if (tjCompress2(tj, px, IMG_W, 0, IMG_H, TJPF_RGB, &jpeg, &sz, TJSAMP_420, 90, 0)) {
        fprintf(stderr, "tjCompress2: %s\n", tjGetErrorStr2(tj));
        exit(1);
    }
    uint8_t *out = sb_xmalloc(sz);
    memcpy(out, jpeg, sz);
    tjFree(jpeg);
    *n = sz;
    return out;
}

/* Files of about 110 KB: pick the noise strength on the first image, then make them all. */
static void make_files(jpeg_file *f, int count, const char *dir) {
    tjhandle tj = tjInitCompress();
    uint8_t *px = sb_xmalloc((size_t)IMG_H * IMG_W * 3);
    double sigma = 4, best = 4, best_err = 1e30;
    for (int i = 0; i < 10; i++, sigma += 3) {
        natural_image(px, IMG_H, IMG_W, 1, sigma);
        size_t n;
        free(encode(tj, px, &n));
        double err = fabs((double)n - 110e3);
        if (err < best_err) best_err = err, best = sigma;
    }
    for (int i = 0; i < count; i++) {
        natural_image(px, IMG_H, IMG_W, (uint32_t)i + 1, best);
        f[i].data = encode(tj, px, &f[i].n);
        snprintf(f[i].path, sizeof f[i].path, "%s/img%03d.jpg", dir, i);
        sb_err e;
        if (sb_atomic_write(f[i].path, f[i].data, f[i].n, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            exit(1);
        }
    }
    free(px);
    tjDestroy(tj);
}

/* ---------------------------------------------------------------------------------------------
 * Timed paths.
 * ------------------------------------------------------------------------------------------- */

typedef struct ctx {
    const jpeg_file *files;
    int count;
    img_decoder *dec;
    tjhandle tj;
    uint8_t *buf;
    size_t cap;
    float *out;
    void *work;
    prep_spec spec;
    int full_decode, whole;
    uint64_t iter;
    uint64_t scaled, px_decoded;
} ctx;

static void one_full_decode(ctx *c) {
    const jpeg_file *f = &c->files[c->iter++ % (uint64_t)c->count];
    if (tjDecompress2(c->tj, f->data, (unsigned long)f->n, c->buf, IMG_W, 0, IMG_H, TJPF_RGB, 0)) {
        fprintf(stderr, "tjDecompress2: %s\n", tjGetErrorStr2(c->tj));
        exit(1);
    }
    c->px_decoded += (uint64_t)IMG_W * IMG_H;
}

/* The pipeline's per-record work (as datasets/pipeline.c does it): header, random choices, DCT
 * scale, window, decode, preprocessing. whole = 1 decodes the whole image with TurboJPEG instead
 * (no window), full_decode = 1 turns DCT scaling off. */
static void one_preprocess(ctx *c) {
    const uint64_t i = c->iter++;
    const jpeg_file *f = &c->files[i % (uint64_t)c->count];
    sb_err e;
    int h, w, num = 1, den = 1;
    if (img_jpeg_size(c->dec, f->data, f->n, &h, &w, &e)) goto fail;
    prep_rng rng;
    prep_rng_seed(&rng, 1, i / (uint64_t)c->count, 0, i % (uint64_t)c->count);
    prep_params p;
    prep_sample(&c->spec, h, w, NULL, 0, &rng, &p);
    if (!c->full_decode) {
        int rh, rw, th, tw;
        prep_needed(&c->spec, h, w, &p, &rh, &rw, &th, &tw);
        img_pick_scale(rh, rw, th, tw, &num, &den);
    }
    c->scaled += num != den;
    if (c->whole) {
        int dh, dw;
        if (img_decode_jpeg(c->dec, f->data, f->n, num, den, 3, &c->buf, &c->cap, &dh, &dw, &e))
            goto fail;
        c->px_decoded += (uint64_t)dh * dw;
        prep_apply(c->out, c->buf, dh, dw, 3, h, w, num, den, &c->spec, &p, c->work);
        return;
    }
    const int ih = (h * num + den - 1) / den, iw = (w * num + den - 1) / den;
    int y0, x0, y1, x1;
    prep_window(&c->spec, ih, iw, h, w, num, den, &p, c->work, &y0, &x0, &y1, &x1);
    img_window win;
    if (img_decode_jpeg_window(c->dec, f->data, f->n, num, den, 3, y0, x0, y1, x1, &c->buf,
                               &c->cap, &win, &e))
        goto fail;
    c->px_decoded += (uint64_t)win.h * win.w;
    prep_apply_window(c->out, c->buf, win.y0, win.x0, win.h, win.w, 3, win.img_h, win.img_w, h, w,
                      num, den, &c->spec, &p, c->work);
    return;
fail:
    fprintf(stderr, "%s\n", e.msg);
    exit(1);
}

typedef struct result {
    const char *name;
    double cpu_rate, wall_rate;
    double scaled_frac, mpix_per_image;
    int valid;
} result;

static result timed(const char *name, void (*fn)(ctx *), ctx *c, double seconds) {
    for (int i = 0; i < c->count; i++) fn(c); /* warm-up: caches, page faults */
    c->iter = c->scaled = c->px_decoded = 0;
    double w0 = sb_now(), t0 = thread_cpu(), t;
    do {
        for (int i = 0; i < 8; i++) fn(c);
    } while ((t = thread_cpu()) - t0 < seconds);
    double wall = sb_now() - w0;
    result r = {name, c->iter / (t - t0), c->iter / wall, (double)c->scaled / c->iter,
                c->px_decoded / 1e6 / c->iter, 1};
    return r;
}

/* tjbench's decompression Mpixels/s on one file ("-quiet": the last field of the last line). */
static double run_tjbench(const char *path) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tjbench '%s' -rgb -benchtime 1 -warmup 1 -quiet 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512], last[512] = "";
    while (fgets(line, sizeof line, p))
        if (strstr(line, "YCbCr")) snprintf(last, sizeof last, "%s", line);
    int rc = pclose(p);
    if (rc != 0 || !*last) return -1;
    char *end = last + strlen(last);
    while (end > last && (end[-1] == '\n' || end[-1] == ' ')) *--end = 0;
    char *sp = strrchr(last, ' ');
    return sp ? atof(sp + 1) : -1;
}

/* The whole pipeline from an LMDB shard, one worker thread. */
static result lmdb_pipeline(const jpeg_file *f, int count, const char *dir, double seconds) {
    result r = {"LMDB pipeline (1 worker)", 0, 0, 0, 0, 0};
    char path[700];
    sb_err e;
    dsf_shard_path(path, sizeof path, dir, "train", 0, 1);
    rec_lmdb_writer *w;
    if (rec_lmdb_writer_open(path, NULL, &w, &e)) goto fail;
    ex_builder b;
    ex_buf buf;
    ex_builder_init(&b);
    ex_buf_init(&buf);
    const int records = SB_MAX(count, 64);
    for (int i = 0; i < records; i++) {
        ex_image img = {0};
        img.encoded = f[i % count].data;
        img.encoded_len = f[i % count].n;
        img.format = "JPEG";
        img.colorspace = "RGB";
        img.channels = 3;
        img.height = IMG_H;
        img.width = IMG_W;
        img.label = 1 + i % 1000;
        ex_encode_image(&img, &b, &buf);
        if (rec_lmdb_writer_put(w, buf.data, buf.len, &e)) goto fail;
    }
    ex_builder_fini(&b);
    ex_buf_fini(&buf);
    if (rec_lmdb_writer_commit(w, &e)) goto fail;
    pipe_config c = {0};
    c.dataset_dir = dir;
    c.split_name = "train";
    c.batch_size = 32;
    c.image_size = 224;
    c.model_name = "vgg_16";
    c.is_training = 1;
    c.num_readers = 4;
    c.num_preprocessing_threads = 1;
    c.shuffle = 1;
    c.seed = 1;
    c.labels_offset = 0;
    pipe_t *p;
    if (pipe_create(&p, &c, &e)) goto fail;
    float *images = sb_aligned_alloc((size_t)32 * 224 * 224 * 3 * sizeof(float));
    int32_t labels[32];
    if (pipe_next(p, images, labels, NULL, &e)) goto fail; /* warm-up */
    pipe_stats_t s0, s1;
    pipe_stats(p, &s0);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double w0 = sb_now();
    int batches = 0;
    while (sb_now() - w0 < seconds) {
        if (pipe_next(p, images, labels, NULL, &e)) goto fail;
        batches++;
    }
    double wall = sb_now() - w0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    pipe_stats(p, &s1);
    pipe_destroy(p);
    sb_aligned_free(images);
    r.wall_rate = batches * 32 / wall;
    /* per core: images over the CPU time of the whole process (worker + the consumer's copies) */
    r.cpu_rate = batches * 32 / ((c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9);
    r.scaled_frac = (double)(s1.dct_scaled - s0.dct_scaled) / (batches * 32);
    r.valid = 1;
    return r;
fail:
    fprintf(stderr, "LMDB pipeline: %s\n", e.msg);
    return r;
}

static void csv_row(const options *o, const result *r, double base, size_t avg_bytes) {
    char ts[32], cpu[256];
    sb_utc_timestamp(ts, sizeof ts);
    sb_cpu_model(cpu, sizeof cpu);
    sb_csv_line l;
    sb_csv_line_init(&l);
    sb_csv_add_str(&l, ts);
    sb_csv_add_str(&l, sb_build_git_sha());
    sb_csv_add_str(&l, sb_build_variant());
    sb_csv_add_str(&l, cpu);
    sb_csv_add_str(&l, r->name);
    sb_csv_add_int(&l, IMG_W);
    sb_csv_add_int(&l, IMG_H);
    sb_csv_add_int(&l, (long long)avg_bytes);
    sb_csv_add_double(&l, r->cpu_rate, 1);
    sb_csv_add_double(&l, r->wall_rate, 1);
    sb_csv_add_double(&l, base > 0 ? r->cpu_rate / base : 0, 3);
    sb_csv_add_double(&l, r->scaled_frac, 3);
    sb_err e;
    if (sb_csv_append(o->csv,
                      "timestamp,git_sha,build,cpu_model,path,width,height,avg_jpeg_bytes,"
                      "images_per_sec_per_core,images_per_sec_wall,vs_full_decode,dct_scaled_frac",
                      sb_csv_line_str(&l), &e))
        fprintf(stderr, "warning: %s\n", e.msg);
    sb_csv_line_fini(&l);
}

static void parse(int argc, char **argv, options *o) {
    o->images = 16;
    o->seconds = 2;
    o->tjbench_files = 4;
    snprintf(o->csv, sizeof o->csv, "results/input_pipeline_%s.csv", sb_build_variant());
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--images=", 9)) o->images = atoi(a + 9);
        else if (!strncmp(a, "--seconds=", 10)) o->seconds = atof(a + 10);
        else if (!strncmp(a, "--tjbench_files=", 16)) o->tjbench_files = atoi(a + 16);
        else if (!strncmp(a, "--csv=", 6)) snprintf(o->csv, sizeof o->csv, "%s", a + 6);
        else {
            fprintf(stderr, "usage: input_pipeline [--images=16] [--seconds=2] "
                            "[--tjbench_files=4] [--csv=PATH]\n");
            exit(2);
        }
    }
    if (o->images < 1 || o->seconds <= 0) {
        fprintf(stderr, "input_pipeline: --images must be >= 1 and --seconds > 0\n");
        exit(2);
    }
}

int main(int argc, char **argv) {
    options o;
    parse(argc, argv, &o);
    char dir[] = "/tmp/sb_input_pipeline.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    jpeg_file *files = sb_xcalloc((size_t)o.images, sizeof *files);
    make_files(files, o.images, dir);
    size_t total = 0;
    for (int i = 0; i < o.images; i++) total += files[i].n;
    const size_t avg = total / (size_t)o.images;
    sb_build_describe(stdout);
    printf("%d JPEGs %dx%d, quality 90, 4:2:0, average %.1f KB; %.1f s per path, one thread\n\n",
           o.images, IMG_W, IMG_H, avg / 1e3, o.seconds);

    ctx c = {0};
    c.files = files;
    c.count = o.images;
    c.tj = tjInitDecompress();
    sb_err e;
    if (img_decoder_create(&c.dec, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    c.cap = (size_t)IMG_W * IMG_H * 3;
    c.buf = sb_xmalloc(c.cap);
    c.out = sb_aligned_alloc((size_t)299 * 299 * 3 * sizeof(float));
    const prep_spec specs[4] = {{PREP_KIND_VGG, 1, 224, 224},
                                {PREP_KIND_VGG, 0, 224, 224},
                                {PREP_KIND_INCEPTION, 1, 299, 299},
                                {PREP_KIND_INCEPTION, 0, 299, 299}};
    size_t ws = 0;
    for (int i = 0; i < 4; i++) ws = SB_MAX(ws, prep_workspace_size(&specs[i], 3));
    c.work = sb_aligned_alloc(ws);

    result res[8];
    int nr = 0;
    res[nr++] = timed("full decode (tjDecompress2)", one_full_decode, &c, o.seconds);
    const double base = res[0].cpu_rate;

    double tj_mpix = 0;
    int tj_n = 0;
    for (int i = 0; i < SB_MIN(o.tjbench_files, o.images); i++) {
        double m = run_tjbench(files[i].path);
        if (m <= 0) break;
        tj_mpix += m;
        tj_n++;
    }
    if (tj_n) {
        double rate = tj_mpix / tj_n * 1e6 / (IMG_W * IMG_H);
        res[nr++] = (result){"tjbench decode (wall)", rate, rate, 0, IMG_W * IMG_H / 1e6, 1};
    } else {
        printf("(tjbench not available or failed: only the in-process full decode is shown)\n");
    }

    c.spec = specs[0];
    res[nr++] = timed("vgg train: decode+preprocess", one_preprocess, &c, o.seconds);
    c.whole = 1;
    res[nr++] = timed("vgg train, whole-image decode", one_preprocess, &c, o.seconds);
    c.whole = 0;
    c.spec = specs[1];
    res[nr++] = timed("vgg eval: decode+preprocess", one_preprocess, &c, o.seconds);
    c.spec = specs[2];
    res[nr++] = timed("inception train (299)", one_preprocess, &c, o.seconds);
    c.spec = specs[3];
    res[nr++] = timed("inception eval (299)", one_preprocess, &c, o.seconds);
    res[nr] = lmdb_pipeline(files, o.images, dir, o.seconds);
    if (res[nr].valid) nr++;

    printf("%-30s %12s %12s %9s %8s %10s\n", "path", "img/s/core", "img/s wall", "vs full",
           "scaled", "Mpx dec");
    /* Mpx dec: megapixels actually decoded (IDCT + colour conversion) per image */
    for (int i = 0; i < nr; i++) {
        printf("%-30s %12.1f %12.1f %8.2fx %7.0f%% %10.3f\n", res[i].name, res[i].cpu_rate,
               res[i].wall_rate, res[i].cpu_rate / base, 100 * res[i].scaled_frac,
               res[i].mpix_per_image);
        csv_row(&o, &res[i], base, avg);
    }
    if (tj_n)
        printf("\ntjbench: %.1f Mpixels/s average over %d file(s) = %.1f images/s\n",
               tj_mpix / tj_n, tj_n, tj_mpix / tj_n * 1e6 / (IMG_W * IMG_H));
    const result *vgg = &res[tj_n ? 2 : 1];
    printf("target: vgg train decode+preprocess >= 1.0x full decode per core: %.2fx %s\n",
           vgg->cpu_rate / base, vgg->cpu_rate >= base ? "(met)" : "(NOT met)");
    printf("rows appended to %s\n", o.csv);

    for (int i = 0; i < o.images; i++) {
        remove(files[i].path);
        free(files[i].data);
    }
    char shard[700];
    dsf_shard_path(shard, sizeof shard, dir, "train", 0, 1);
    remove(shard);
    remove(dir);
    free(files);
    free(c.buf);
    sb_aligned_free(c.out);
    sb_aligned_free(c.work);
    img_decoder_destroy(c.dec);
    tjDestroy(c.tj);
    return 0;
}
