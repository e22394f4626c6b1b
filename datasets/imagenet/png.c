/* datasets/imagenet/png.c — a small PNG decoder for the PNG files ImageNet ships under .JPEG
 * names, so build_imagenet_data can re-encode them to JPEG as slim does, without a libpng
 * dependency (zlib inflates, this file unfilters). Non-interlaced images of 8 or 16 bits per
 * sample, grey, grey+alpha, RGB, RGBA and 8-bit palette; alpha is dropped (decode_png with
 * channels=3). Every chunk CRC is checked. Knows nothing of records or JPEG.
 */
#include "datasets/imagenet/imagenet.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int imagenet_is_png(const uint8_t *data, size_t n) {
    return n >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8);
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

int imagenet_png_decode(const char *name, const uint8_t *data, size_t n, uint8_t **rgb, int *h,
                        int *w, sb_err *err) {
    *rgb = NULL;
    if (!imagenet_is_png(data, n)) return sb_err_set(err, SB_E_FORMAT, "%s: not a PNG", name);
    uint32_t width = 0, height = 0;
    int depth = 0, ctype = -1, interlace = 0;
    uint8_t palette[256 * 3];
    int n_palette = 0;
    uint8_t *idat = NULL, *raw = NULL;
    size_t idat_len = 0;
    int rc = 0, seen_end = 0;
    for (size_t at = 8; at < n && !seen_end;) {
        if (n - at < 12) {
            rc = sb_err_set(err, SB_E_TRUNCATED, "%s: PNG chunk at byte %zu truncated", name, at);
            goto done;
        }
        uint32_t len = be32(data + at);
        const uint8_t *type = data + at + 4, *body = data + at + 8;
        if (len > n - at - 12) {
            rc = sb_err_set(err, SB_E_TRUNCATED, "%s: PNG chunk at byte %zu truncated", name, at);
            goto done;
        }
        if ((uint32_t)crc32(crc32(0, NULL, 0), type, len + 4) != be32(body + len)) {
            rc = sb_err_set(err, SB_E_CRC, "%s: PNG chunk %.4s at byte %zu: bad CRC", name,
                            (const char *)type, at);
            goto done;
        }
        if (!memcmp(type, "IHDR", 4) && len >= 13) {
            width = be32(body);
            height = be32(body + 4);
            depth = body[8];
            ctype = body[9];
            interlace = body[12];
        } else if (!memcmp(type, "PLTE", 4)) {
            n_palette = (int)SB_MIN(len / 3, 256u);
            memcpy(palette, body, (size_t)n_palette * 3);
        } else if (!memcmp(type, "IDAT", 4)) {
            idat = sb_xrealloc(idat, idat_len + len + 1);
            memcpy(idat + idat_len, body, len);
            idat_len += len;
        } else if (!memcmp(type, "IEND", 4)) {
            seen_end = 1;
        }
        at += 12 + (size_t)len;
    }
    int channels = ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 3 ? 1 : ctype == 4 ? 2 : ctype == 6 ? 4 : 0;
    if (!channels || !(depth == 8 || (depth == 16 && ctype != 3)) || interlace || !width ||
        !height || width > 65535 || height > 65535 || (ctype == 3 && !n_palette)) {
        rc = sb_err_set(err, SB_E_UNSUPPORTED,
                        "%s: PNG %ux%u, colour type %d, %d bits, interlace %d is not supported",
                        name, width, height, ctype, depth, interlace);
        goto done;
    }
    if (!seen_end || !idat_len) {
        rc = sb_err_set(err, SB_E_TRUNCATED, "%s: PNG without %s", name, idat_len ? "IEND" : "IDAT");
        goto done;
    }
    size_t bpp = (size_t)channels * (size_t)(depth / 8), stride = bpp * width;
    uLongf raw_len = (uLongf)((stride + 1) * height);
    raw = sb_xmalloc(raw_len);
    uLongf got = raw_len;
    if (uncompress(raw, &got, idat, (uLong)idat_len) != Z_OK || got != raw_len) {
        rc = sb_err_set(err, SB_E_CORRUPT, "%s: PNG image data does not inflate to %ux%u", name,
                        width, height);
        goto done;
    }
    /* unfilter in place: row y's bytes follow its filter byte; prior row already restored */
    for (uint32_t y = 0; y < height; y++) {
        uint8_t *row = raw + y * (stride + 1) + 1, *prev = y ? row - (stride + 1) : NULL;
        int filter = row[-1];
        for (size_t i = 0; i < stride; i++) {
            int a = i >= bpp ? row[i - bpp] : 0, b = prev ? prev[i] : 0,
                c = prev && i >= bpp ? prev[i - bpp] : 0;
            switch (filter) {
            case 0: break;
            case 1: row[i] = (uint8_t)(row[i] + a); break;
            case 2: row[i] = (uint8_t)(row[i] + b); break;
            case 3: row[i] = (uint8_t)(row[i] + ((a + b) >> 1)); break;
            case 4: row[i] = (uint8_t)(row[i] + paeth(a, b, c)); break;
            default:
                rc = sb_err_set(err, SB_E_CORRUPT, "%s: PNG row %u has filter %d", name, y, filter);
                goto done;
            }
        }
    }
    uint8_t *out = sb_xmalloc((size_t)width * height * 3);
    size_t step = (size_t)depth / 8; /* 16-bit samples: the high byte */
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *row = raw + y * (stride + 1) + 1;
        for (uint32_t x = 0; x < width; x++) {
            const uint8_t *px = row + x * bpp;
            uint8_t *o = out + ((size_t)y * width + x) * 3;
            if (ctype == 3) {
                int k = px[0] < n_palette ? px[0] : 0;
                memcpy(o, palette + 3 * k, 3);
            } else if (channels <= 2) {
                o[0] = o[1] = o[2] = px[0];
            } else {
                o[0] = px[0];
                o[1] = px[step];
                o[2] = px[2 * step];
            }
        }
    }
    *rgb = out;
    *h = (int)height;
    *w = (int)width;
done:
    free(idat);
    free(raw);
    return rc;
}
