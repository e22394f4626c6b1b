/* datasets/image_decode.c — JPEG decoding for the input pipeline with TurboJPEG (libjpeg-turbo
 * 2.1's tj* API): header, DCT scale choice, decode to RGB or grey.
 *
 * A DCT-scaled decode (num/den < 1) runs libjpeg's reduced-size inverse DCT, so it never
 * produces the pixels it would throw away: for ImageNet-sized JPEGs and vgg_preprocessing's
 * resize side of 256 that is scale 3/4 (0.56x the pixels). The decoder knows nothing of records
 * or preprocessing; pipeline.c asks prep_needed() what region and size it must keep.
 */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "datasets/pipeline.h"

struct img_decoder {
    tjhandle tj;
};

int img_decoder_create(img_decoder **out, sb_err *err) {
    *out = NULL;
    tjhandle tj = tjInitDecompress();
    if (!tj) return sb_err_set(err, SB_E_JPEG, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    img_decoder *d = sb_xcalloc(1, sizeof *d);
    d->tj = tj;
    *out = d;
    return 0;
}

void img_decoder_destroy(img_decoder *d) {
    if (!d) return;
    tjDestroy(d->tj);
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
