/* datasets/image_decode.c — JPEG decoding for the input pipeline with libjpeg-turbo: TurboJPEG
 * (2.1's tj* API) for the header and whole-image decodes, and libjpeg-turbo's libjpeg API for
 * region-of-interest decodes, which TurboJPEG only offers from 3.0 (tj3SetCroppingRegion).
 *
 * Two ways to skip work, both exact for the pixels they return:
 *   DCT scaling (1/2, 1/4, 1/8): the reduced inverse DCT never produces the pixels a shrinking
 *     resize would throw away. TurboJPEG's other factors (7/8 .. 3/8) are left out: on x86 their
 *     IDCTs have no SIMD and decode slower than full size (tjbench on a 500x375 JPEG: 7/8 at
 *     0.53x and 3/4 at 0.67x the full-size rate, 1/2 at 1.16x).
 *   Windows: only the rows and columns the preprocessing reads are decoded. Rows below the
 *     window are never entropy-decoded, rows above are skipped (entropy decoding only), columns
 *     outside are not inverse-transformed or colour-converted (jpeg_crop_scanline). vgg's random
 *     224 crop of a 256..512 resize reads on average about 40 % of an ImageNet image.
 * The decoder knows nothing of records or preprocessing; pipeline.c asks the preprocessing which
 * scale and window it needs.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
/* jpeglib.h needs size_t and FILE first */
#include <jerror.h>
#include <jpeglib.h>

#include "datasets/pipeline.h"

typedef struct jerr_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
} jerr_mgr;

struct img_decoder {
    tjhandle tj;
    struct jpeg_decompress_struct cinfo;
    jerr_mgr jerr;
    JSAMPROW *rows;
    size_t rows_cap;
};

static void jerr_exit(j_common_ptr c) {
    jerr_mgr *e = (jerr_mgr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

static void jerr_emit(j_common_ptr c, int level) {
    jerr_mgr *e = (jerr_mgr *)c->err;
    /* a premature end of data leaves grey rows in the window: tf.image.decode_jpeg rejects it */
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        e->truncated = 1;
        (*c->err->format_message)(c, e->msg);
    }
}

int img_decoder_create(img_decoder **out, sb_err *err) {
    *out = NULL;
    tjhandle tj = tjInitDecompress();
    if (!tj) return sb_err_set(err, SB_E_JPEG, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    img_decoder *d = sb_xcalloc(1, sizeof *d);
    d->tj = tj;
    d->cinfo.err = jpeg_std_error(&d->jerr.pub);
    d->jerr.pub.error_exit = jerr_exit;
    d->jerr.pub.emit_message = jerr_emit;
    if (setjmp(d->jerr.jb)) {
        int rc = sb_err_set(err, SB_E_JPEG, "jpeg_create_decompress: %s", d->jerr.msg);
        tjDestroy(tj);
        free(d);
        return rc;
    }
    jpeg_create_decompress(&d->cinfo);
    *out = d;
    return 0;
}

void img_decoder_destroy(img_decoder *d) {
    if (!d) return;
    jpeg_destroy_decompress(&d->cinfo);
    tjDestroy(d->tj);
    free(d->rows);
    free(d);
}

int img_jpeg_size(img_decoder *d, const uint8_t *jpeg, size_t n, int *h, int *w, sb_err *err) {
    int subsamp = -1, colorspace = -1;
    *w = *h = 0; /* TurboJPEG leaves them untouched on some malformed headers */
    if (n > (size_t)0xffffffffu)
        return sb_err_set(err, SB_E_JPEG, "JPEG of %zu bytes is too large", n);
    if (tjDecompressHeader3(d->tj, jpeg, (unsigned long)n, w, h, &subsamp, &colorspace))
        return sb_err_set(err, SB_E_JPEG, "JPEG header: %s", tjGetErrorStr2(d->tj));
    if (*w <= 0 || *h <= 0 || *w > 65535 || *h > 65535 || subsamp < 0)
        return sb_err_set(err, SB_E_JPEG, "JPEG header: no valid image size (%dx%d)", *w, *h);
    return 0;
}

void img_pick_scale(int region_h, int region_w, int target_h, int target_w, int *num, int *den) {
    int nf = 0;
    const tjscalingfactor *sf = tjGetScalingFactors(&nf);
    *num = *den = 1;
    double best = 1.0;
    for (int i = 0; sf && i < nf; i++) {
        const int sn = sf[i].num, sd = sf[i].denom;
        if (sn != 1 || (sd != 2 && sd != 4 && sd != 8)) continue; /* slower than full size */
        const double f = (double)sn / sd;
        if (f >= best) continue;
        if ((int64_t)region_h * sn >= (int64_t)target_h * sd &&
            (int64_t)region_w * sn >= (int64_t)target_w * sd) {
            best = f;
            *num = sn;
            *den = sd;
        }
    }
}

int img_decode_jpeg(img_decoder *d, const uint8_t *jpeg, size_t n, int num, int den, int channels,
                    uint8_t **buf, size_t *cap, int *h, int *w, sb_err *err) {
    SB_ASSERT(channels == 1 || channels == 3);
    int sw, sh;
    int rc = img_jpeg_size(d, jpeg, n, &sh, &sw, err);
    if (rc) return rc;
    const tjscalingfactor f = {num, den};
    *w = TJSCALED(sw, f);
    *h = TJSCALED(sh, f);
    const size_t need = (size_t)*w * (size_t)*h * (size_t)channels;
    if (need > *cap) {
        *buf = sb_xrealloc(*buf, need);
        *cap = need;
    }
    const int pf = channels == 3 ? TJPF_RGB : TJPF_GRAY;
    if (tjDecompress2(d->tj, jpeg, (unsigned long)n, *buf, *w, 0, *h, pf, 0)) {
        const char *msg = tjGetErrorStr2(d->tj);
        /* Warnings leave a complete image, except a premature end of data (grey fill), which
         * tf.image.decode_jpeg rejects as well. */
        if (tjGetErrorCode(d->tj) != TJERR_WARNING || strstr(msg, "Premature end"))
            return sb_err_set(err, SB_E_JPEG, "JPEG decode (%dx%d at %d/%d): %s", sw, sh, num,
                              den, msg);
    }
    return 0;
}

/* The body of img_decode_jpeg_window; libjpeg errors longjmp out of it to the caller's setjmp. */
static __attribute__((noinline)) int window_body(img_decoder *d, const uint8_t *jpeg, size_t n,
                                                 int num, int den, int channels, int y0, int x0,
                                                 int y1, int x1, uint8_t **buf, size_t *cap,
                                                 img_window *win, sb_err *err) {
    struct jpeg_decompress_struct *ci = &d->cinfo;
    jpeg_mem_src(ci, jpeg, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    ci->out_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    ci->scale_num = (unsigned)num;
    ci->scale_denom = (unsigned)den;
    ci->dct_method = JDCT_ISLOW;
    ci->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(ci);
    const int oh = (int)ci->output_height, ow = (int)ci->output_width;
    win->img_h = oh;
    win->img_w = ow;
    y0 = SB_MAX(y0, 0);
    x0 = SB_MAX(x0, 0);
    y1 = SB_MIN(y1, oh);
    x1 = SB_MIN(x1, ow);
    if (y0 >= y1 || x0 >= x1) {
        jpeg_abort_decompress(ci);
        return sb_err_set(err, SB_E_JPEG, "JPEG window [%d,%d)x[%d,%d) outside the %dx%d image", y0,
                          y1, x0, x1, oh, ow);
    }
    /* jpeg_crop_scanline widens the columns to iMCU boundaries. The first and last columns of a
     * crop inside the image come out of the fancy upsampler without their outer neighbour and
     * differ from a whole decode, so ask for one column more on each side and drop it. */
    JDIMENSION xoff = (JDIMENSION)SB_MAX(x0 - 1, 0), cw = (JDIMENSION)(SB_MIN(x1 + 1, ow)) - xoff;
    if (xoff > 0 || (int)(xoff + cw) < ow) jpeg_crop_scanline(ci, &xoff, &cw);
    const int drop = xoff > 0, drop_right = (int)(xoff + cw) < ow;
    const int w = (int)ci->output_width, h = y1 - y0;
    const size_t need = (size_t)w * (size_t)h * (size_t)channels;
    if (need > *cap) {
        *buf = sb_xrealloc(*buf, need);
        *cap = need;
    }
    if ((size_t)h > d->rows_cap) {
        d->rows = sb_xrealloc(d->rows, (size_t)h * sizeof *d->rows);
        d->rows_cap = (size_t)h;
    }
    for (int r = 0; r < h; r++) d->rows[r] = *buf + (size_t)r * w * channels;
    if (y0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)y0);
    int got = 0;
    while (got < h) got += (int)jpeg_read_scanlines(ci, d->rows + got, (JDIMENSION)(h - got));
    /* the rows below the window are never decoded */
    jpeg_abort_decompress(ci);
    if (d->jerr.truncated)
        return sb_err_set(err, SB_E_JPEG, "JPEG decode (%dx%d at %d/%d): %s", ow, oh, num, den,
                          d->jerr.msg);
    const int keep = w - drop - drop_right;
    if (keep != w) /* compact the rows in place, without the edge pixels */
        for (int r = 0; r < h; r++)
            memmove(*buf + (size_t)r * keep * channels, *buf + ((size_t)r * w + drop) * channels,
                    (size_t)keep * channels);
    win->y0 = y0;
    win->x0 = (int)xoff + drop;
    win->h = h;
    win->w = keep;
    return 0;
}

int img_decode_jpeg_window(img_decoder *d, const uint8_t *jpeg, size_t n, int num, int den,
                           int channels, int y0, int x0, int y1, int x1, uint8_t **buf,
                           size_t *cap, img_window *win, sb_err *err) {
    SB_ASSERT(channels == 1 || channels == 3);
    d->jerr.truncated = 0;
    if (n > (size_t)0xffffffffu)
        return sb_err_set(err, SB_E_JPEG, "JPEG of %zu bytes is too large", n);
    if (setjmp(d->jerr.jb)) {
        jpeg_abort_decompress(&d->cinfo);
        return sb_err_set(err, SB_E_JPEG, "JPEG decode: %s", d->jerr.msg);
    }
    return window_body(d, jpeg, n, num, den, channels, y0, x0, y1, x1, buf, cap, win, err);
}
