/* models/slim/preprocessing/preprocessing.h — TF-slim's preprocessing/ for one image at a time:
 * preprocessing_factory (name -> kind), vgg_preprocessing, inception_preprocessing (fast_mode),
 * lenet_preprocessing and cifarnet_preprocessing, train and eval paths.
 *
 * One image goes through three calls:
 *   prep_sample()  draws the image's random choices (resize side, crop, flip, colour factors) in
 *                  slim's order from a caller-seeded prep_rng, knowing only the source's size
 *                  (from the JPEG header) -- or the caller fills prep_params itself (tests pin
 *                  every choice this way);
 *   prep_needed()  says which region of the source the output is interpolated from and to what
 *                  size, so the decoder can pick a DCT scale that still has enough pixels;
 *   prep_apply()   runs the preprocessing on the decoded pixels (uint8 HWC, full size or a DCT-
 *                  scaled decode) into a float (out_h, out_w, C) image.
 *
 * Geometry and arithmetic follow TensorFlow 1.x as slim calls it: tf.image.resize_bilinear with
 * align_corners=False and half_pixel_centers=False (in = out * in_size/out_size, float maths in
 * TF's order), crops and flips as integer index maps, mean subtraction and scaling exact. For a
 * full-size decode the output equals slim's to float rounding; a DCT-scaled decode maps the same
 * coordinates onto the smaller image (pixel centres aligned), which is close but not equal.
 *
 * This module includes only core/. It neither allocates nor keeps state: prep_apply works in a
 * caller-owned workspace of prep_workspace_size() bytes.
 */
#ifndef PREPROCESSING_H
#define PREPROCESSING_H

#include <stddef.h>
#include <stdint.h>

#include "core/sb.h"

enum prep_kind {
    PREP_KIND_VGG,        /* vgg_preprocessing: vgg*, resnet_v1_*, resnet_v2_* */
    PREP_KIND_INCEPTION,  /* inception_preprocessing: inception*, mobilenet*, nasnet*, pnasnet* */
    PREP_KIND_LENET,      /* lenet_preprocessing */
    PREP_KIND_CIFARNET,   /* cifarnet_preprocessing */
    PREP_KIND_COUNT
};

/* slim's constants. */
#define PREP_VGG_R_MEAN 123.68f
#define PREP_VGG_G_MEAN 116.78f
#define PREP_VGG_B_MEAN 103.94f
#define PREP_VGG_RESIZE_SIDE_MIN 256
#define PREP_VGG_RESIZE_SIDE_MAX 512
#define PREP_INCEPTION_CENTRAL_FRACTION 0.875
#define PREP_CIFARNET_PADDING 4

/* slim's preprocessing_factory: the kind for a preprocessing or model name ("vgg_16",
 * "resnet_v1_50", "inception_v3", "lenet", "cifarnet", "mobilenet_v1", ...). Returns 0, or
 * SB_E_NOTFOUND with err naming the name (slim's "Preprocessing name [x] was not recognized"). */
int prep_kind_from_name(const char *name, enum prep_kind *out, sb_err *err);
/* "vgg_preprocessing", "inception_preprocessing", ... Static string. */
const char *prep_kind_name(enum prep_kind kind);

/* ---------------------------------------------------------------------------------------------
 * Random streams: a counter-based generator (splitmix64) keyed by (seed, a, b, c), so each record
 * gets its own stream from (seed, epoch, record) and results do not depend on thread count.
 * ------------------------------------------------------------------------------------------- */
typedef struct prep_rng {
    uint64_t state;
} prep_rng;
void prep_rng_seed(prep_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
uint64_t prep_rng_u64(prep_rng *r);
/* Uniform float in [0, 1) with 24 random bits (TF's RandFloat resolution). */
float prep_rng_uniform(prep_rng *r);
/* Uniform integer in [0, n), n >= 1. */
uint32_t prep_rng_below(prep_rng *r, uint32_t n);

/* ---------------------------------------------------------------------------------------------
 * One image.
 * ------------------------------------------------------------------------------------------- */

/* What to produce. out_h/out_w: slim's train_image_size / eval_image_size (both = image_size). */
typedef struct prep_spec {
    enum prep_kind kind;
    int is_training;
    int out_h, out_w;
} prep_spec;

/* Every choice the preprocessing makes for one image. prep_sample fills it; a caller may fill it
 * instead (all fields meaningful for the kind and mode must be set; the others are ignored).
 *   vgg        resize_side (smaller side after the aspect-preserving resize; eval: 256),
 *              crop_y/crop_x (top-left of the out_h x out_w crop in the resized image), flip
 *   inception  train: crop_y/crop_x/crop_h/crop_w (the distorted bounding box, source pixels),
 *              flip, brightness (delta in [0,1] units), saturation (factor);
 *              eval: crop_* = the central 87.5 % region (prep_sample computes it)
 *   lenet      nothing
 *   cifarnet   train: crop_y/crop_x (in the image padded by 4 on each side), flip, brightness
 *              (delta in 0..255 units), contrast (factor); eval: nothing */
typedef struct prep_params {
    int resize_side;
    int crop_y, crop_x, crop_h, crop_w;
    int flip;
    float brightness;
    float saturation;
    float contrast;
} prep_params;

/* Draw p for a source of src_h x src_w pixels, in slim's order. boxes: (n_boxes, 4) normalized
 * [ymin, xmin, ymax, xmax] (inception train only; n_boxes = 0 means the whole image, as slim's
 * default bbox). Eval modes draw nothing and fill the deterministic choices. */
void prep_sample(const prep_spec *s, int src_h, int src_w, const float *boxes, size_t n_boxes,
                 prep_rng *rng, prep_params *p);

/* slim's _smallest_size_at_least: the size (new_h, new_w) of the aspect-preserving resize whose
 * smaller side is `side` (float32 scale, round half to even, as tf.rint). */
void prep_vgg_resized_size(int src_h, int src_w, int side, int *new_h, int *new_w);

/* TF's sample_distorted_bounding_box with slim's parameters (min_object_covered 0.1, aspect
 * ratio [0.75, 1.33], area [0.05, 1.0], 100 attempts, the whole image when nothing fits). */
void prep_distorted_box(int src_h, int src_w, const float *boxes, size_t n_boxes, prep_rng *rng,
                        int *y, int *x, int *h, int *w);

/* The source region (region_h x region_w pixels) the output is interpolated from, and the size
 * (target_h x target_w) it is resampled to. A decode at scale f is good enough when
 * region * f >= target in both dimensions (no upsampling from a reduced image). Kinds without
 * a resize report target = region (no DCT scaling). */
void prep_needed(const prep_spec *s, int src_h, int src_w, const prep_params *p, int *region_h,
                 int *region_w, int *target_h, int *target_w);

/* Bytes of workspace prep_apply needs for s with C channels. */
size_t prep_workspace_size(const prep_spec *s, int C);

/* Preprocess one image.
 *   out   (out_h, out_w, C) float, written
 *   img   (img_h, img_w, C) uint8, the decoded source: full size (img_h = src_h, scale 1/1) or
 *         a DCT-scaled decode at scale_num/scale_den of a src_h x src_w image
 *   p     the choices (prep_sample's, or the caller's)
 *   work  prep_workspace_size(s, C) bytes
 * C is 1 or 3 (inception's saturation step needs 3 and is skipped otherwise). Geometry that does
 * not fit (a crop outside the image) is a bug: SB_ASSERT. */
void prep_apply(float *out, const uint8_t *img, int img_h, int img_w, int C, int src_h, int src_w,
                int scale_num, int scale_den, const prep_spec *s, const prep_params *p,
                void *work);

/* The window of the decoded image (img_h x img_w, a decode of the src_h x src_w source at
 * scale_num/scale_den) that prep_apply reads: rows [*y0, *y1), columns [*x0, *x1). Kinds that do
 * not resample read the whole image. work: prep_workspace_size(s, C) bytes (any C). */
void prep_window(const prep_spec *s, int img_h, int img_w, int src_h, int src_w, int scale_num,
                 int scale_den, const prep_params *p, void *work, int *y0, int *x0, int *y1,
                 int *x1);

/* prep_apply on a decoded window: win holds (win_h, win_w, C), rows win_y0.. and columns
 * win_x0.. of the img_h x img_w decode; it must contain prep_window's window (SB_ASSERT). */
void prep_apply_window(float *out, const uint8_t *win, int win_y0, int win_x0, int win_h,
                       int win_w, int C, int img_h, int img_w, int src_h, int src_w,
                       int scale_num, int scale_den, const prep_spec *s, const prep_params *p,
                       void *work);

/* ---------------------------------------------------------------------------------------------
 * Building blocks (exposed for the tests).
 * ------------------------------------------------------------------------------------------- */

/* One output coordinate of a bilinear resample: source indices and the weight of hi. */
typedef struct prep_tap {
    int32_t lo, hi;
    float lerp;
} prep_tap;

/* Taps for n outputs along one axis: output i is index k = first + i (first + n-1-i when flip)
 * of TF's resize of a region [off, off + region_n) of the source to length resized_n
 * (in = k * (region_n / resized_n), legacy, no half-pixel centres). When the decoded image is a
 * DCT scale num/den of the source (img_n pixels along the axis), the source coordinate maps to
 * (c + 0.5) * num/den - 0.5 in it. */
void prep_taps(prep_tap *t, int n, int first, int flip, int off, int region_n, int resized_n,
               int img_n, int num, int den);

/* out[y][x][c] = bilinear(img; ty[y], tx[x]) * mul[c] + add[c], where the source values are
 * first multiplied by pre (1 for uint8 values as they are, 1/255 for convert_image_dtype).
 * Arithmetic in TF's order: top = tl + (tr - tl) * xl, bottom likewise, top + (bottom - top) * yl.
 *   out  (ny, nx, C); img (.., img_w, C); work: 2 * nx * C floats */
void prep_resample(float *out, const uint8_t *img, int img_w, int C, const prep_tap *ty, int ny,
                   const prep_tap *tx, int nx, float pre, const float *mul, const float *add,
                   float *work);

/* TF's adjust_saturation kernel on one RGB image in place (HSV round trip, s clipped to [0,1]).
 * x: (n, 3). */
void prep_adjust_saturation(float *x, size_t n, float factor);
/* The same, written as TF's scalar helpers (the reference the fast version is tested against). */
void prep_adjust_saturation_ref(float *x, size_t n, float factor);
/* tf.image.per_image_standardization in place. x: n values. */
void prep_per_image_standardization(float *x, size_t n);
/* tf.image.adjust_contrast in place: per channel (x - mean) * factor + mean. x: (n, C). */
void prep_adjust_contrast(float *x, size_t n, int C, float factor);

#endif /* PREPROCESSING_H */
