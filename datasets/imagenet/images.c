/* datasets/imagenet/images.c — what build_imagenet_data does to one image file before it becomes
 * a record, as slim's _process_image does: JPEG bytes are kept as they are; PNG files (ImageNet
 * has one named .JPEG) and CMYK JPEGs (22 in the training set) are decoded and re-encoded as RGB
 * JPEG at quality 100. slim finds those files through hard-coded name lists; we look at the
 * bytes, so any such file is caught. Empty, unreadable and truncated files (no end-of-image
 * marker) are refused with the reason. Knows nothing of records or shards.
 */
#include "datasets/imagenet/imagenet.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

struct imagenet_codec {
    tjhandle dec, enc;
    uint8_t *pix;
    size_t pix_cap;
    unsigned char *jpeg;   /* the last re-encoded image, allocated by TurboJPEG */
};

int imagenet_codec_create(imagenet_codec **out, sb_err *err) {
    imagenet_codec *c = sb_xcalloc(1, sizeof *c);
    c->dec = tjInitDecompress();
    c->enc = tjInitCompress();
    if (!c->dec || !c->enc) {
        int rc = sb_err_set(err, SB_E_JPEG, "TurboJPEG: %s", tjGetErrorStr2(NULL));
        imagenet_codec_destroy(c);
        *out = NULL;
        return rc;
    }
    *out = c;
    return 0;
}

void imagenet_codec_destroy(imagenet_codec *c) {
    if (!c) return;
    if (c->dec) tjDestroy(c->dec);
    if (c->enc) tjDestroy(c->enc);
    free(c->pix);
    tjFree(c->jpeg);
    free(c);
}

/* An APP14 "Adobe" segment before the first scan: CMYK samples are stored inverted. */
static int has_adobe_marker(const uint8_t *d, size_t n) {
    size_t at = 2;
    while (at + 4 <= n && d[at] == 0xFF) {
        uint8_t m = d[at + 1];
        if (m == 0xDA || m == 0xD9) break;
        size_t len = (size_t)d[at + 2] << 8 | d[at + 3];
        if (m == 0xEE && len >= 7 && at + 9 <= n && !memcmp(d + at + 4, "Adobe", 5)) return 1;
        at += 2 + len;
    }
    return 0;
}

/* A complete JPEG ends with EOI (FF D9), possibly followed by a little padding. Entropy-coded
 * data never holds FF D9, so finding it near the end is a cheap truncation test. */
static int has_eoi(const uint8_t *d, size_t n) {
    size_t from = n > 1024 ? n - 1024 : 0;
    for (size_t i = n; i-- > from + 1;)
        if (d[i - 1] == 0xFF && d[i] == 0xD9) return 1;
    return 0;
}

static int encode_rgb(imagenet_codec *c, const char *name, const uint8_t *rgb, int h, int w,
                      const uint8_t **out, size_t *out_n, sb_err *err) {
    /* a fresh buffer per image: handing TurboJPEG a used one it may have to grow risks losing it
     * (re-encodes are rare: one PNG and 22 CMYK files in ImageNet) */
    tjFree(c->jpeg);
    c->jpeg = NULL;
    unsigned long len = 0;
    /* TF's encode_jpeg(quality=100) as slim calls it: 4:2:0 */
    if (tjCompress2(c->enc, rgb, w, 0, h, TJPF_RGB, &c->jpeg, &len, TJSAMP_420, 100,
                    TJFLAG_ACCURATEDCT) != 0)
        return sb_err_set(err, SB_E_JPEG, "%s: JPEG encode: %s", name, tjGetErrorStr2(c->enc));
    *out = c->jpeg;
    *out_n = len;
    return 0;
}

int imagenet_image_prepare(imagenet_codec *c, const char *name, const uint8_t *data, size_t n,
                           const uint8_t **out, size_t *out_n, int *h, int *w,
                           enum imagenet_fix *fix, sb_err *err) {
    *fix = IMAGENET_FIX_NONE;
    if (n == 0) return sb_err_set(err, SB_E_TRUNCATED, "%s: empty file", name);
    if (imagenet_is_png(data, n)) {
        uint8_t *rgb;
        int rc = imagenet_png_decode(name, data, n, &rgb, h, w, err);
        if (rc) return rc;
        rc = encode_rgb(c, name, rgb, *h, *w, out, out_n, err);
        free(rgb);
        *fix = IMAGENET_FIX_PNG;
        return rc;
    }
    int subsamp, cs;
    int soi = n >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
    if (n > ULONG_MAX || tjDecompressHeader3(c->dec, data, (unsigned long)n, w, h, &subsamp, &cs)) {
        if (soi && !has_eoi(data, n))
            return sb_err_set(err, SB_E_TRUNCATED, "%s: JPEG ends inside its headers", name);
        return sb_err_set(err, SB_E_JPEG, "%s: %s: %s", name,
                          soi ? "corrupt JPEG header" : "neither JPEG nor PNG",
                          tjGetErrorStr2(c->dec));
    }
    if (!has_eoi(data, n))
        return sb_err_set(err, SB_E_TRUNCATED, "%s: JPEG data ends before its end-of-image marker",
                          name);
    if (cs != TJCS_CMYK && cs != TJCS_YCCK) {
        *out = data;
        *out_n = n;
        return 0;
    }
    size_t px = (size_t)*h * (size_t)*w;
    if (c->pix_cap < px * 4) {
        c->pix_cap = px * 4;
        c->pix = sb_xrealloc(c->pix, c->pix_cap);
    }
    if (tjDecompress2(c->dec, data, (unsigned long)n, c->pix, *w, 0, *h, TJPF_CMYK,
                      TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING))
        return sb_err_set(err, SB_E_JPEG, "%s: CMYK JPEG decode: %s", name,
                          tjGetErrorStr2(c->dec));
    /* CMYK -> RGB in place (the RGB triple of pixel i lands at 3i <= 4i), as TensorFlow's
     * decode_jpeg does: Adobe files store inverted samples */
    int inverted = has_adobe_marker(data, n);
    for (size_t i = 0; i < px; i++) {
        const uint8_t *s = c->pix + 4 * i;
        int k = inverted ? s[3] : 255 - s[3];
        uint8_t rgb[3];
        for (int ch = 0; ch < 3; ch++)
            rgb[ch] = (uint8_t)((inverted ? s[ch] : 255 - s[ch]) * k / 255);
        memcpy(c->pix + 3 * i, rgb, 3);
    }
    *fix = IMAGENET_FIX_CMYK;
    return encode_rgb(c, name, c->pix, *h, *w, out, out_n, err);
}
