/* kernels/shape.c — output sizes and padding with TensorFlow's SAME/VALID semantics, shared by
 * convolution and pooling so both agree to the pixel (slim's nets depend on the asymmetric SAME
 * padding: an odd total pad puts the extra row/column at the bottom/right). */
#include "kernels/kernels.h"

#include "core/sb.h"

int kn_out_size(int in, int k, int stride, kn_padding pad, int *pad_lo, int *pad_hi) {
    SB_ASSERT(in > 0 && k > 0 && stride > 0);
    switch (pad) {
    case KN_PADDING_SAME: {
        int out = (in + stride - 1) / stride;
        int total = (out - 1) * stride + k - in;
        if (total < 0) total = 0;
        *pad_lo = total / 2;
        *pad_hi = total - total / 2;
        return out;
    }
    case KN_PADDING_VALID:
        *pad_lo = *pad_hi = 0;
        return in < k ? 0 : (in - k) / stride + 1;
    case KN_PADDING_EXPLICIT: {
        SB_ASSERT(*pad_lo >= 0 && *pad_hi >= 0);
        int span = in + *pad_lo + *pad_hi;
        return span < k ? 0 : (span - k) / stride + 1;
    }
    case KN_PADDING_COUNT:
        break;
    }
    SB_ASSERTF(0, "bad padding mode %d", (int)pad);
}

int conv2d_shape_init(conv2d_shape *s, int N, int IH, int IW, int IC, int OC, int KH, int KW,
                      int SH, int SW, kn_padding pad, int PT, int PL, int PB, int PR) {
    *s = (conv2d_shape){.N = N, .IH = IH, .IW = IW, .IC = IC, .OC = OC, .KH = KH, .KW = KW,
                        .SH = SH, .SW = SW, .PT = PT, .PL = PL, .PB = PB, .PR = PR};
    SB_ASSERT(N > 0 && IC > 0 && OC > 0);
    s->OH = kn_out_size(IH, KH, SH, pad, &s->PT, &s->PB);
    s->OW = kn_out_size(IW, KW, SW, pad, &s->PL, &s->PR);
    return (s->OH > 0 && s->OW > 0) ? 0 : -1;
}

double conv2d_flops(const conv2d_shape *s) {
    return 2.0 * s->N * s->OH * s->OW * (double)s->OC * s->KH * s->KW * s->IC;
}

int pool_shape_init(pool_shape *s, int N, int IH, int IW, int C, int KH, int KW, int SH, int SW,
                    kn_padding pad) {
    SB_ASSERT(pad != KN_PADDING_EXPLICIT);
    *s = (pool_shape){.N = N, .IH = IH, .IW = IW, .C = C, .KH = KH, .KW = KW, .SH = SH, .SW = SW};
    s->OH = kn_out_size(IH, KH, SH, pad, &s->PT, &s->PB);
    s->OW = kn_out_size(IW, KW, SW, pad, &s->PL, &s->PR);
    return (s->OH > 0 && s->OW > 0) ? 0 : -1;
}
