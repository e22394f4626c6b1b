/* tests/test_datasets_download.c — downloads and download_and_convert_data, offline.
 *
 * A small HTTP/1.1 server runs in a forked child on 127.0.0.1 (ephemeral port) and serves files
 * from a directory: "/X" normally (with Range support), "/cut/X" cuts the connection halfway
 * through the first response, "/norange/X" ignores Range headers. Every request is logged so the
 * tests can check what the client asked for. Then: resume after a cut, resume of an earlier
 * run's .part, a server without ranges, checksum mismatch, 404 without retries; and the command
 * on Debian's fashion-mnist over file:// (counts, labels and pixels against the IDX files), on
 * the same files over HTTP as mnist, on a generated CIFAR-10 binary tarball, and on a generated
 * flower_photos.tgz (JPEG bytes kept, sizes, labels, a non-JPEG skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "tests/support/testutil.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---------------------------------------------------------------------------------------------
 * The server (child process)
 * ------------------------------------------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int port;
    char root[300];
    char log[320];
} server;

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static void serve_one(int fd, const server *s, int *cut_done) {
    char req[4096];
    size_t len = 0;
    req[0] = '\0';
    while (len + 1 < sizeof req && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (r <= 0) return;
        len += (size_t)r;
        req[len] = '\0';
    }
    char path[1024] = "";
    if (sscanf(req, "GET %1000s", path) != 1) return;
    long long from = -1;
    const char *range = strcasestr(req, "\r\nRange: bytes=");
    if (range) from = atoll(range + 15);
    FILE *log = fopen(s->log, "a");
    if (log) {
        fprintf(log, "GET %s range=%lld\n", path, from);
        fclose(log);
    }
    int cut = !strncmp(path, "/cut/", 5), norange = !strncmp(path, "/norange/", 9);
    const char *name = cut ? path + 4 : norange ? path + 8 : path;
    char file[1400];
    snprintf(file, sizeof file, "%s%s", s->root, name);
    char *data = NULL;
    size_t n = 0;
    sb_err e;
    char hdr[512];
    if (strstr(name, "..") || sb_read_file(file, &data, &n, &e) != 0) {
        int h = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        send_all(fd, hdr, (size_t)h);
        return;
    }
    if (norange) from = -1;
    if (from >= (long long)n) {
        int h = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n", n);
        send_all(fd, hdr, (size_t)h);
    } else if (from >= 0) {
        int h = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %lld-%zu/%zu\r\n"
                         "Content-Length: %lld\r\nConnection: close\r\n\r\n",
                         from, n - 1, n, (long long)n - from);
        send_all(fd, hdr, (size_t)h);
        send_all(fd, data + from, n - (size_t)from);
    } else {
        int h = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
        send_all(fd, hdr, (size_t)h);
        if (cut && !*cut_done) {
            *cut_done = 1;
            send_all(fd, data, n / 2); /* then hang up mid-body */
        } else {
            send_all(fd, data, n);
        }
    }
    free(data);
}

static void server_start(server *s, const char *root) {
    snprintf(s->root, sizeof s->root, "%s", root);
    snprintf(s->log, sizeof s->log, "%s.log", root);
    unlink(s->log);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    fflush(NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        /* never outlive the test: die with the parent, and after two minutes in any case */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        alarm(120);
        signal(SIGPIPE, SIG_IGN);
        int cut_done = 0;
        for (;;) {
            int fd = accept(ls, NULL, NULL);
            if (fd < 0) {
                if (errno == EINTR) continue;
                _exit(0);
            }
            serve_one(fd, s, &cut_done);
            shutdown(fd, SHUT_RDWR);
            close(fd);
        }
    }
    close(ls);
}

static void server_stop(server *s) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    unlink(s->log);
}

static int log_count(const server *s, const char *line) {
    char *text;
    size_t n;
    sb_err e;
    if (sb_read_file(s->log, &text, &n, &e)) return 0;
    int c = 0;
    for (const char *p = text; (p = strstr(p, line)); p++) c++;
    free(text);
    return c;
}

/* ---------------------------------------------------------------------------------------------
 * dl_fetch against the server
 * ------------------------------------------------------------------------------------------- */

static void sha_hex(const uint8_t *d, size_t n, char out[65]) {
    dl_sha256 s;
    dl_sha256_init(&s);
    dl_sha256_update(&s, d, n);
    uint8_t h[32];
    dl_sha256_final(&s, h);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", h[i]);
}

static void assert_file_is(const char *path, const uint8_t *want, size_t n) {
    char *d;
    size_t got;
    sb_err e;
    if (sb_read_file(path, &d, &got, &e)) fail_msg("%s", e.msg);
    if (got != n || memcmp(d, want, n)) fail_msg("%s: %zu bytes, want %zu (or content differs)", path, got, n);
    free(d);
}

static void test_fetch_resume_and_errors(void **state) {
    (void)state;
    char dir[256], root[300], url[512], dest[512], part[520];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(root, sizeof root, "%s/www", dir);
    sb_err e;
    assert_int_equal(sb_mkdirs(root, &e), 0);
    const size_t n = 300001;
    uint8_t *payload = malloc(n);
    for (size_t i = 0; i < n; i++) payload[i] = (uint8_t)((i * 2654435761u) >> 13);
    snprintf(dest, sizeof dest, "%s/file.bin", root);
    assert_int_equal(sb_atomic_write(dest, payload, n, &e), 0);
    char sum[65];
    sha_hex(payload, n, sum);
    server s;
    server_start(&s, root);
    dl_opts o = {.retries = 3, .retry_delay_ms = 10, .progress = 0, .low_speed_secs = 10};

    /* the connection is cut halfway: the retry asks for the rest with a Range header */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/cut/file.bin", s.port);
    snprintf(dest, sizeof dest, "%s/a.bin", dir);
    int rc = dl_fetch(url, dest, sum, &o, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_file_is(dest, payload, n);
    assert_int_equal(log_count(&s, "GET /cut/file.bin range=-1"), 1);
    char want[100];
    snprintf(want, sizeof want, "GET /cut/file.bin range=%zu", n / 2);
    if (log_count(&s, want) != 1) fail_msg("no resume request \"%s\"", want);
    snprintf(part, sizeof part, "%s.part", dest);
    assert_int_not_equal(access(part, F_OK), 0);

    /* an existing, verified file is not fetched again */
    assert_int_equal(dl_fetch(url, dest, sum, &o, &e), 0);
    assert_int_equal(log_count(&s, "GET /cut/"), 2);

    /* an earlier run's .part is resumed */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/file.bin", s.port);
    snprintf(dest, sizeof dest, "%s/b.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    assert_int_equal(sb_atomic_write(part, payload, 50000, &e), 0);
    assert_int_equal(dl_fetch(url, dest, sum, &o, &e), 0);
    assert_file_is(dest, payload, n);
    assert_int_equal(log_count(&s, "GET /file.bin range=50000"), 1);

    /* a server that ignores ranges: the stale .part is dropped and the file fetched whole */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/norange/file.bin", s.port);
    snprintf(dest, sizeof dest, "%s/c.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    assert_int_equal(sb_atomic_write(part, "garbage", 7, &e), 0);
    rc = dl_fetch(url, dest, sum, &o, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_file_is(dest, payload, n);

    /* a wrong checksum: no file, no .part, both sums named */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/file.bin", s.port);
    snprintf(dest, sizeof dest, "%s/d.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    const char *bad = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(dl_fetch(url, dest, bad, &o, &e), SB_E_CRC);
    assert_non_null(strstr(e.msg, sum));
    assert_non_null(strstr(e.msg, bad));
    assert_int_not_equal(access(dest, F_OK), 0);
    assert_int_not_equal(access(part, F_OK), 0);

    /* 404: one request, no retries, the URL in the message */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing.bin", s.port);
    snprintf(dest, sizeof dest, "%s/e.bin", dir);
    rc = dl_fetch(url, dest, NULL, &o, &e);
    assert_int_equal(rc, SB_E_CURL_BASE - CURLE_HTTP_RETURNED_ERROR);
    assert_non_null(strstr(e.msg, url));
    assert_non_null(strstr(e.msg, "404"));
    assert_int_equal(log_count(&s, "GET /missing.bin"), 1);
    assert_int_not_equal(access(dest, F_OK), 0);

    server_stop(&s);
    /* nobody listening: retried, then the connection error */
    rc = dl_fetch(url, dest, NULL, &o, &e);
    assert_int_equal(rc, SB_E_CURL_BASE - CURLE_COULDNT_CONNECT);
    assert_non_null(strstr(e.msg, "attempt 4 of 4"));
    free(payload);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------
 * download_and_convert_data
 * ------------------------------------------------------------------------------------------- */

static uint8_t *gunzip_file(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    if (!g) fail_msg("cannot open %s", path);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    int got;
    while ((got = gzread(g, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)got;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(g);
    *n = len;
    return buf;
}

/* Check a converted split against the IDX files: count, and records at a few indices. */
static void check_idx_split(const char *shard, const char *images_gz, const char *labels_gz,
                            const char *const *names) {
    size_t ni, nl;
    uint8_t *img = gunzip_file(images_gz, &ni), *lab = gunzip_file(labels_gz, &nl);
    size_t count = nl - 8;
    assert_int_equal(ni, 16 + count * 784);
    rec_lmdb_reader *r;
    sb_err e;
    if (rec_lmdb_reader_open(shard, &r, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rec_lmdb_reader_count(r), count);
    ex_example ex;
    ex_init(&ex);
    size_t idx[] = {0, 1, 2, 777, count / 2, count - 1};
    for (size_t k = 0; k < SB_ARRAY_LEN(idx); k++) {
        const uint8_t *d, *p;
        size_t n, pn, cnt;
        assert_int_equal(rec_lmdb_reader_get(r, idx[k], &d, &n, &e), 0);
        assert_int_equal(ex_decode(&ex, d, n, &e), 0);
        assert_int_equal(ex_get_bytes(&ex, "image/encoded", 0, &p, &pn), 0);
        assert_int_equal(pn, 784);
        assert_memory_equal(p, img + 16 + idx[k] * 784, 784);
        int64_t v;
        assert_int_equal(ex_get_int64(&ex, "image/class/label", &v, 1, &cnt), 0);
        assert_int_equal(v, lab[8 + idx[k]]);
        assert_int_equal(ex_get_bytes(&ex, "image/class/text", 0, &p, &pn), 0);
        assert_memory_equal(p, names[v], pn);
        assert_int_equal(ex_get_bytes(&ex, "image/format", 0, &p, &pn), 0);
        assert_memory_equal(p, "raw", 3);
        assert_int_equal(ex_get_int64(&ex, "image/height", &v, 1, &cnt), 0);
        assert_int_equal(v, 28);
        assert_int_equal(ex_get_int64(&ex, "image/channels", &v, 1, &cnt), 0);
        assert_int_equal(v, 1);
    }
    ex_fini(&ex);
    rec_lmdb_reader_close(r);
    free(img);
    free(lab);
}

static void test_fashion_mnist_file_url(void **state) {
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fail_msg("Debian's dataset-fashion-mnist is not installed (%s); run make deps", FASHION_DIR);
    }
    char dir[256], out_dir[300], a[600];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(out_dir, sizeof out_dir, "%s/fm", dir);
    char *out;
    int rc = tu_run(&out, "{bin}/download_and_convert_data --dataset_name=fashion_mnist "
                          "--dataset_dir=%s --source_url=file://" FASHION_DIR, out_dir);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "Finished converting the fashion_mnist dataset!"));
    assert_non_null(strstr(out, "not verified"));
    free(out);
    const char *const *names = dsf_class_names(dsf_find("fashion_mnist"));
    snprintf(a, sizeof a, "%s/train-00000-of-00001", out_dir);
    check_idx_split(a, FASHION_DIR "/train-images-idx3-ubyte.gz",
                    FASHION_DIR "/train-labels-idx1-ubyte.gz", names);
    snprintf(a, sizeof a, "%s/test-00000-of-00001", out_dir);
    check_idx_split(a, FASHION_DIR "/t10k-images-idx3-ubyte.gz",
                    FASHION_DIR "/t10k-labels-idx1-ubyte.gz", names);
    snprintf(a, sizeof a, "%s/labels.txt", out_dir);
    dsf_labels l;
    sb_err e;
    assert_int_equal(dsf_labels_read(a, &l, &e), 0);
    assert_int_equal(l.count, 10);
    assert_string_equal(l.names[0], "T-shirt/top");
    assert_string_equal(l.names[9], "Ankle boot");
    dsf_labels_free(&l);
    /* downloads are cleaned up, as slim does */
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", out_dir);
    assert_int_not_equal(access(a, F_OK), 0);
    /* a second run keeps the shards */
    rc = tu_run(&out, "{bin}/download_and_convert_data --dataset_name=fashion_mnist "
                      "--dataset_dir=%s --source_url=file:///nonexistent", out_dir);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "already exists; skipping"));
    free(out);
    tu_remove_tree(dir);
}

static void test_mnist_over_http_and_errors(void **state) {
    (void)state;
    char dir[256], root[300], out_dir[300], a[700];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(root, sizeof root, "%s/www", dir);
    snprintf(out_dir, sizeof out_dir, "%s/mnist", dir);
    char *out;
    assert_int_equal(tu_run(&out, "mkdir -p %s/m && cp " FASHION_DIR "/*.gz %s/m/", root, root), 0);
    free(out);
    server s;
    server_start(&s, root);
    /* the published MNIST sums do not match these (fashion) files */
    int rc = tu_run(&out, "{bin}/download_and_convert_data --dataset_name=mnist --dataset_dir=%s "
                          "--source_url=http://127.0.0.1:%d/m/ --noprogress", out_dir, s.port);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "SHA-256"));
    assert_non_null(strstr(out, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"));
    free(out);
    snprintf(a, sizeof a, "%s/train-00000-of-00001", out_dir);
    assert_int_not_equal(access(a, F_OK), 0);
    /* served with the first transfer cut, checksums off */
    rc = tu_run(&out, "{bin}/download_and_convert_data --dataset_name=mnist --dataset_dir=%s "
                      "--source_url=http://127.0.0.1:%d/cut/m --noverify_checksums "
                      "--download_retry_delay_ms=10", out_dir, s.port);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "retrying from byte"));
    free(out);
    check_idx_split(a, FASHION_DIR "/train-images-idx3-ubyte.gz",
                    FASHION_DIR "/train-labels-idx1-ubyte.gz", dsf_class_names(dsf_find("mnist")));
    server_stop(&s);

    assert_int_equal(tu_run(&out, "{bin}/download_and_convert_data --dataset_dir=%s", out_dir), 2);
    assert_non_null(strstr(out, "--dataset_name"));
    free(out);
    assert_int_equal(tu_run(&out, "{bin}/download_and_convert_data --dataset_name=mnist"), 2);
    free(out);
    assert_int_equal(
        tu_run(&out, "{bin}/download_and_convert_data --dataset_name=svhn --dataset_dir=%s", out_dir), 2);
    assert_non_null(strstr(out, "svhn"));
    free(out);
    assert_int_equal(
        tu_run(&out, "{bin}/download_and_convert_data --dataset_name=imagenet --dataset_dir=%s", out_dir), 2);
    assert_non_null(strstr(out, "mnist, fashion_mnist, cifar10 and flowers"));
    free(out);
    tu_remove_tree(dir);
}

static void test_cifar10_tarball(void **state) {
    (void)state;
    char dir[256], src[300], out_dir[300], a[700];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(out_dir, sizeof out_dir, "%s/cifar", dir);
    sb_err e;
    snprintf(a, sizeof a, "%s/cifar-10-batches-bin", src);
    assert_int_equal(sb_mkdirs(a, &e), 0);
    /* 3 records in each train batch, 2 in the test batch; pixel (c, p) = label*7 + c*3 + p */
    uint8_t rec[3073 * 3];
    for (int b = 0; b < 6; b++) {
        int nrec = b == 5 ? 2 : 3;
        for (int r = 0; r < nrec; r++) {
            uint8_t *x = rec + r * 3073;
            x[0] = (uint8_t)((b * 3 + r) % 10);
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 1024; p++) x[1 + c * 1024 + p] = (uint8_t)(x[0] * 7 + c * 3 + p);
        }
        if (b == 5) snprintf(a, sizeof a, "%s/cifar-10-batches-bin/test_batch.bin", src);
        else snprintf(a, sizeof a, "%s/cifar-10-batches-bin/data_batch_%d.bin", src, b + 1);
        assert_int_equal(sb_atomic_write(a, rec, (size_t)nrec * 3073, &e), 0);
    }
    char *out;
    /* members in an unusual order, plus one we do not need */
    assert_int_equal(tu_run(&out, "cd %s && echo x > cifar-10-batches-bin/readme.html && "
                                  "tar czf cifar-10-binary.tar.gz cifar-10-batches-bin/test_batch.bin "
                                  "cifar-10-batches-bin/readme.html cifar-10-batches-bin/data_batch_3.bin "
                                  "cifar-10-batches-bin/data_batch_1.bin cifar-10-batches-bin/data_batch_2.bin "
                                  "cifar-10-batches-bin/data_batch_5.bin cifar-10-batches-bin/data_batch_4.bin",
                            src), 0);
    free(out);
    int rc = tu_run(&out, "{bin}/download_and_convert_data --dataset_name=cifar10 --dataset_dir=%s "
                          "--source_url=file://%s --noverify_checksums --keep_downloads",
                    out_dir, src);
    if (rc) fail_msg("exit %d: %s", rc, out);
    free(out);
    snprintf(a, sizeof a, "%s/cifar-10-binary.tar.gz", out_dir);
    assert_int_equal(access(a, F_OK), 0); /* --keep_downloads */
    snprintf(a, sizeof a, "%s/train-00000-of-00001", out_dir);
    rec_lmdb_reader *r;
    assert_int_equal(rec_lmdb_reader_open(a, &r, &e), 0);
    assert_int_equal(rec_lmdb_reader_count(r), 15);
    ex_example ex;
    ex_init(&ex);
    const uint8_t *d, *p;
    size_t n, pn, cnt;
    uint64_t idx;
    for (int i = 0; i < 15; i++) { /* batches in order 1..5 whatever the tar order */
        assert_int_equal(rec_lmdb_reader_next(r, &d, &n, &idx, &e), 0);
        assert_int_equal(ex_decode(&ex, d, n, &e), 0);
        int64_t label;
        assert_int_equal(ex_get_int64(&ex, "image/class/label", &label, 1, &cnt), 0);
        assert_int_equal(label, i % 10);
        assert_int_equal(ex_get_bytes(&ex, "image/encoded", 0, &p, &pn), 0);
        assert_int_equal(pn, 3072);
        for (int px = 0; px < 1024; px += 97) /* HWC: pixel px, channel c */
            for (int c = 0; c < 3; c++) assert_int_equal(p[px * 3 + c], (uint8_t)(label * 7 + c * 3 + px));
    }
    rec_lmdb_reader_close(r);
    snprintf(a, sizeof a, "%s/test-00000-of-00001", out_dir);
    assert_int_equal(rec_lmdb_reader_open(a, &r, &e), 0);
    assert_int_equal(rec_lmdb_reader_count(r), 2);
    assert_int_equal(rec_lmdb_reader_get(r, 1, &d, &n, &e), 0);
    assert_int_equal(ex_decode(&ex, d, n, &e), 0);
    assert_int_equal(ex_get_bytes(&ex, "image/class/text", 0, &p, &pn), 0);
    assert_memory_equal(p, "frog", pn); /* record 1 of batch 6: label (5 * 3 + 1) % 10 = 6 */
    ex_fini(&ex);
    rec_lmdb_reader_close(r);
    snprintf(a, sizeof a, "%s/labels.txt", out_dir);
    char *text;
    assert_int_equal(sb_read_file(a, &text, &n, &e), 0);
    assert_non_null(strstr(text, "0:airplane\n1:automobile\n"));
    assert_non_null(strstr(text, "9:truck\n"));
    free(text);
    tu_remove_tree(dir);
}

static const char *const k_flower_classes[] = {"daisy", "dandelion", "roses", "sunflowers", "tulips"};

/* A small JPEG of h x w (grey when gray) into path. */
static void write_jpeg(const char *path, int h, int w, int gray, int seed) {
    tjhandle tj = tjInitCompress();
    assert_non_null(tj);
    int c = gray ? 1 : 3;
    uint8_t *px = malloc((size_t)(h * w * c));
    for (int i = 0; i < h * w * c; i++) px[i] = (uint8_t)(i * 7 + seed * 13);
    unsigned char *jpeg = NULL;
    unsigned long n = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, &jpeg, &n,
                                 gray ? TJSAMP_GRAY : TJSAMP_420, 90, 0), 0);
    sb_err e;
    assert_int_equal(sb_atomic_write(path, jpeg, n, &e), 0);
    tjFree(jpeg);
    free(px);
    tjDestroy(tj);
}

static void test_flowers_tarball(void **state) {
    (void)state;
    char dir[256], src[300], out_dir[300], a[800];
    tu_make_tmpdir(dir, sizeof dir);
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(out_dir, sizeof out_dir, "%s/flowers", dir);
    sb_err e;
    int total = 0;
    for (int c = 0; c < 5; c++) {
        snprintf(a, sizeof a, "%s/flower_photos/%s", src, k_flower_classes[c]);
        assert_int_equal(sb_mkdirs(a, &e), 0);
        for (int i = 0; i < 72 + (c == 2); i++, total++) {
            snprintf(a, sizeof a, "%s/flower_photos/%s/%d_%d.jpg", src, k_flower_classes[c], c, i);
            write_jpeg(a, 8 + i % 5, 10 + c, c == 2 && i == 72, i);
        }
    }
    snprintf(a, sizeof a, "%s/flower_photos/daisy/notes.txt", src);
    assert_int_equal(sb_atomic_write(a, "not a photo", 11, &e), 0);
    snprintf(a, sizeof a, "%s/flower_photos/LICENSE.txt", src);
    assert_int_equal(sb_atomic_write(a, "license", 7, &e), 0);
    char *out;
    assert_int_equal(tu_run(&out, "cd %s && tar czf flower_photos.tgz flower_photos", src), 0);
    free(out);
    int rc = tu_run(&out, "{bin}/download_and_convert_data --dataset_name=flowers --dataset_dir=%s "
                          "--source_url=file://%s", out_dir, src);
    if (rc) fail_msg("exit %d: %s", rc, out);
    assert_non_null(strstr(out, "skipped daisy/notes.txt: not a JPEG"));
    free(out);
    /* every photo once, in 5 + 5 shards, its bytes, size and label intact */
    uint64_t seen = 0, val = 0;
    ex_example ex;
    ex_init(&ex);
    for (int sp = 0; sp < 2; sp++)
        for (int k = 0; k < 5; k++) {
            snprintf(a, sizeof a, "%s/%s-%05d-of-00005", out_dir, sp ? "validation" : "train", k);
            rec_lmdb_reader *r;
            if (rec_lmdb_reader_open(a, &r, &e)) fail_msg("%s", e.msg);
            const uint8_t *d, *p;
            size_t n, pn, cnt;
            uint64_t idx;
            while (rec_lmdb_reader_next(r, &d, &n, &idx, &e) == 0) {
                seen++;
                val += sp;
                assert_int_equal(ex_decode(&ex, d, n, &e), 0);
                char cls[64], name[64];
                assert_int_equal(ex_get_bytes(&ex, "image/class/text", 0, &p, &pn), 0);
                snprintf(cls, sizeof cls, "%.*s", (int)pn, (const char *)p);
                assert_int_equal(ex_get_bytes(&ex, "image/filename", 0, &p, &pn), 0);
                snprintf(name, sizeof name, "%.*s", (int)pn, (const char *)p);
                int64_t label, h, w, ch;
                assert_int_equal(ex_get_int64(&ex, "image/class/label", &label, 1, &cnt), 0);
                assert_string_equal(k_flower_classes[label], cls);
                int c, i;
                assert_int_equal(sscanf(name, "%d_%d.jpg", &c, &i), 2);
                assert_int_equal(c, label);
                assert_int_equal(ex_get_int64(&ex, "image/height", &h, 1, &cnt), 0);
                assert_int_equal(ex_get_int64(&ex, "image/width", &w, 1, &cnt), 0);
                assert_int_equal(ex_get_int64(&ex, "image/channels", &ch, 1, &cnt), 0);
                assert_int_equal(h, 8 + i % 5);
                assert_int_equal(w, 10 + c);
                assert_int_equal(ch, c == 2 && i == 72 ? 1 : 3);
                snprintf(a, sizeof a, "%s/flower_photos/%s/%s", src, cls, name);
                char *file;
                size_t fn;
                assert_int_equal(sb_read_file(a, &file, &fn, &e), 0);
                assert_int_equal(ex_get_bytes(&ex, "image/encoded", 0, &p, &pn), 0);
                assert_int_equal(pn, fn);
                assert_memory_equal(p, file, fn);
                free(file);
            }
            rec_lmdb_reader_close(r);
        }
    ex_fini(&ex);
    assert_int_equal(seen, (uint64_t)total);
    assert_true(val == 350 || val == 349); /* notes.txt may have been drawn for validation */
    snprintf(a, sizeof a, "%s/labels.txt", out_dir);
    char *text;
    size_t n;
    assert_int_equal(sb_read_file(a, &text, &n, &e), 0);
    assert_string_equal(text, "0:daisy\n1:dandelion\n2:roses\n3:sunflowers\n4:tulips\n");
    free(text);
    snprintf(a, sizeof a, "%s/flower_photos.tgz", out_dir);
    assert_int_not_equal(access(a, F_OK), 0);
    tu_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_resume_and_errors),
        cmocka_unit_test(test_fashion_mnist_file_url),
        cmocka_unit_test(test_mnist_over_http_and_errors),
        cmocka_unit_test(test_cifar10_tarball),
        cmocka_unit_test(test_flowers_tarball),
    };
    return cmocka_run_group_tests_name("datasets_download", tests, NULL, NULL);
}
