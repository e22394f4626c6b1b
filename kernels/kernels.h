/* kernels/kernels.h — the public API of kernels/: forward and backward of every op VGG, ResNet,
 * Inception, LeNet and CifarNet need, on flat float buffers.
 *
 * Layout (one for the whole project): activations NHWC, convolution weights HWIO
 * (KH, KW, IC, OC) and fully-connected weights (IC, OC) — TensorFlow's own layouts, so slim
 * checkpoints map 1:1, and the fastest choice for CPU training here: a 1x1 convolution is a plain
 * GEMM over (N*H*W, IC) x (IC, OC), im2col rows are KH*KW contiguous IC-runs, channel-wise ops
 * (bias, batch norm, ReLU) stream with unit stride and vectorize over C, and no layout
 * conversions are needed at any layer boundary. Sizes use one vocabulary: N, IH, IW, IC, OC,
 * OH, OW, KH, KW, SH, SW, and padding PT/PL/PB/PR (top/left/bottom/right).
 *
 * Conventions (STYLE.md §4–5):
 *  - Kernels never allocate. Ops that need scratch report its size (`*_workspace_size`, bytes)
 *    and take a caller-owned, 64-byte aligned workspace.
 *  - Forward is (y, saved..., x, w, b, shape); backward is (dx, dw, db, dy, x|saved..., w, shape).
 *  - dx, dw and db are OVERWRITTEN, as TensorFlow's gradient ops and PyTorch's backward
 *    functions produce them, and are dL/d(.) with PyTorch's sign. A parameter's gradient is
 *    written once per step by its own layer, so the grads arena needs no zeroing, and the fully
 *    connected layers' backward filter (dW = x^T dy with K = the batch, where dW is the memory
 *    traffic) writes dW without reading it: half the traffic of +=.
 *  - Each op is one OpenMP parallel region with (ith, nth) work splitting; call from outside any
 *    parallel region. The thread count is OpenMP's (omp_set_num_threads / OMP_NUM_THREADS).
 *  - Results are deterministic for a given thread count (no atomics on floats).
 *  - `<op>_ref` functions (kernels/<op>_ref.c) have the same signatures, are naive and obviously
 *    right, always compiled, and are the oracle for tests and the fallback for shapes a fast
 *    path rejects.
 */
#ifndef KERNELS_H
#define KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* Padding: TensorFlow semantics.                                                              */
/* SAME: OH = ceil(IH / SH); total pad = max((OH-1)*SH + KH - IH, 0), top = total/2, bottom =  */
/* the rest (the extra row goes to the bottom/right). VALID: OH = ceil((IH - KH + 1) / SH).     */
/* EXPLICIT: the caller sets PT/PL/PB/PR (slim's conv2d_same pads explicitly, then VALID).      */
/* ------------------------------------------------------------------------------------------ */
typedef enum kn_padding {
    KN_PADDING_SAME,
    KN_PADDING_VALID,
    KN_PADDING_EXPLICIT,
    KN_PADDING_COUNT
} kn_padding;

/* Output size and padding along one axis. in, k, stride > 0. For EXPLICIT, *pad_lo and *pad_hi
 * are inputs; otherwise outputs. Returns the output size (>= 1 for valid configurations, <= 0
 * when the window does not fit). */
int kn_out_size(int in, int k, int stride, kn_padding pad, int *pad_lo, int *pad_hi);

/* ------------------------------------------------------------------------------------------ */
/* 2-D convolution, NHWC x HWIO -> NHWC, optional bias (OC).                                  */
/* ------------------------------------------------------------------------------------------ */
typedef struct conv2d_shape {
    int N, IH, IW, IC;       /* input x: (N, IH, IW, IC) */
    int OC, KH, KW, SH, SW;  /* weights w: (KH, KW, IC, OC), strides */
    int PT, PL, PB, PR;      /* resolved padding */
    int OH, OW;              /* output y: (N, OH, OW, OC) */
} conv2d_shape;

/* Fill s from sizes and a padding mode (PT..PR are read for EXPLICIT, computed otherwise) and
 * compute OH/OW. Returns 0, or SB_E_RANGE-like -1 when the kernel does not fit the input. */
int conv2d_shape_init(conv2d_shape *s, int N, int IH, int IW, int IC, int OC, int KH, int KW,
                      int SH, int SW, kn_padding pad, int PT, int PL, int PB, int PR);

/* FLOPs of one forward pass (2 * N*OH*OW*OC*KH*KW*IC; the bias add is not counted). */
double conv2d_flops(const conv2d_shape *s);

/* Workspace bytes for conv2d_forward / backward_data / backward_filter with this shape and the
 * current OpenMP thread count (max of the three). May be 0. */
size_t conv2d_workspace_size(const conv2d_shape *s);

/* y: (N, OH, OW, OC) overwritten. x: (N, IH, IW, IC). w: (KH, KW, IC, OC). b: (OC) or NULL. */
void conv2d_forward(float *y, const float *x, const float *w, const float *b,
                    const conv2d_shape *s, void *ws);
/* dx: (N, IH, IW, IC) overwritten. dy: (N, OH, OW, OC). w: (KH, KW, IC, OC). */
void conv2d_backward_data(float *dx, const float *dy, const float *w, const conv2d_shape *s,
                          void *ws);
/* dw: (KH, KW, IC, OC) overwritten. db: (OC) overwritten or NULL. dy: (N, OH, OW, OC).
 * x: (N, IH, IW, IC). */
void conv2d_backward_filter(float *dw, float *db, const float *dy, const float *x,
                            const conv2d_shape *s, void *ws);

void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                        const conv2d_shape *s, void *ws);
void conv2d_backward_data_ref(float *dx, const float *dy, const float *w, const conv2d_shape *s,
                              void *ws);
void conv2d_backward_filter_ref(float *dw, float *db, const float *dy, const float *x,
                                const conv2d_shape *s, void *ws);

/* ------------------------------------------------------------------------------------------ */
/* GEMM, row-major: C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C.                      */
/* op(A) = A (lda >= K) or A^T when trans_a (A stored (K,M), lda >= M); likewise B.           */
/* beta = 0 ignores C's old contents (NaNs included). One parallel region.                    */
/* ------------------------------------------------------------------------------------------ */
size_t sgemm_workspace_size(int M, int N, int K);
void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc, void *ws);
void sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc, void *ws);

/* ------------------------------------------------------------------------------------------ */
/* Fully connected: y(N, OC) = x(N, IC) . w(IC, OC) + b(OC).                                   */
/* ------------------------------------------------------------------------------------------ */
size_t fc_workspace_size(int N, int IC, int OC);
void fc_forward(float *y, const float *x, const float *w, const float *b, int N, int IC, int OC,
                void *ws);
/* dx: (N, IC) overwritten (may be NULL to skip). dw: (IC, OC) overwritten. db: (OC) overwritten
 * or NULL. */
void fc_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                 const float *w, int N, int IC, int OC, void *ws);

/* ------------------------------------------------------------------------------------------ */
/* Batch normalization over the channel axis of (M, C) data, M = N*H*W (NHWC flattened).      */
/* ------------------------------------------------------------------------------------------ */
typedef struct bn_param {
    int M, C;
    float eps;    /* slim: 0.001 (resnet, inception), 1e-5 ... from the arg scope */
    float decay;  /* moving-average decay: moving = decay*moving + (1-decay)*batch */
    int relu;     /* 1: the forward passes output max(y, 0) (a ReLU fused in, saving its read
                     and write of the tensor) and bn_backward takes dy as the ReLU output's
                     gradient, masking it where that output was 0 (recomputed from x: needs
                     beta) */
} bn_param;

/* Training mode: batch statistics. mean, rstd: (C) saved for backward (rstd = 1/sqrt(var+eps),
 * var the biased batch variance). moving_mean/moving_var: (C) updated in place with decay, the
 * variance update using the unbiased batch variance (M/(M-1)), as TF's fused batch norm and
 * PyTorch do; either may be NULL to skip the update. gamma: (C) or NULL (scale=False -> 1).
 * beta: (C) or NULL (center=False -> 0). y may alias x. */
void bn_forward_train(float *y, float *mean, float *rstd, float *moving_mean, float *moving_var,
                      const float *x, const float *gamma, const float *beta, const bn_param *p);
/* Inference mode: y = gamma * (x - moving_mean) / sqrt(moving_var + eps) + beta. */
void bn_forward_infer(float *y, const float *x, const float *gamma, const float *beta,
                      const float *moving_mean, const float *moving_var, const bn_param *p);
/* dx: (M, C) overwritten (may alias dy). dgamma, dbeta: (C) overwritten or NULL. x is the
 * forward input (not normalized); mean/rstd from bn_forward_train; gamma, beta as given to it
 * (beta is read only with p->relu). */
void bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                 const float *mean, const float *rstd, const float *gamma, const float *beta,
                 const bn_param *p);

/* ------------------------------------------------------------------------------------------ */
/* Elementwise.                                                                                */
/* ------------------------------------------------------------------------------------------ */
/* y = max(x, 0); y may alias x. */
void relu_forward(float *y, const float *x, size_t n);
/* dx = dy * (y > 0), overwritten; y is relu's OUTPUT (so x need not be kept); dx may alias dy. */
void relu_backward(float *dx, const float *dy, const float *y, size_t n);
/* y = a + b (residual add); y may alias a or b. */
void add_forward(float *y, const float *a, const float *b, size_t n);
/* y = max(a + b, 0): the add with the ReLU after it (resnet v1's unit output); y may alias. */
void add_relu_forward(float *y, const float *a, const float *b, size_t n);
/* dst += src (the backward of a residual add accumulates into the shortcut's gradient). */
void add_accumulate(float *dst, const float *src, size_t n);
/* The backward of y = a + b in one pass over dy: da = dy, or da += dy when acc_a (likewise b);
 * a NULL da or db is skipped. relu_y: the output of add_relu_forward, whose zeros mask dy (as
 * relu_backward would), or NULL for a plain add. */
void add_backward(float *da, int acc_a, float *db, int acc_b, const float *dy,
                  const float *relu_y, size_t n);
/* y(M, C) += b(C), broadcasting the bias over rows. */
void bias_add_forward(float *y, const float *b, size_t M, int C);
/* db(C) = sum over rows of dy(M, C). */
void bias_add_backward(float *db, const float *dy, size_t M, int C);

/* Dropout, TF semantics: keep with probability keep_prob and scale kept values by 1/keep_prob.
 * mask: (n) bytes, 1 = kept, written by forward and read by backward. The random stream is a
 * counter-based hash of (seed, index), so results do not depend on the thread count. */
void dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float keep_prob,
                     uint64_t seed);
void dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep_prob);

/* Concatenation along channels (NHWC last axis) of k inputs over M = N*H*W rows:
 * y(M, sum C_i) = [x_0(M, C_0) | x_1(M, C_1) | ...]. */
void concat_forward(float *y, const float *const *xs, const int *cs, int k, size_t M);
/* dxs[i](M, C_i) overwritten with the matching slice of dy. */
void concat_backward(float *const *dxs, const float *dy, const int *cs, int k, size_t M);

/* ------------------------------------------------------------------------------------------ */
/* Pooling, NHWC, TF padding semantics.                                                        */
/* ------------------------------------------------------------------------------------------ */
typedef struct pool_shape {
    int N, IH, IW, C;
    int KH, KW, SH, SW;
    int PT, PL, PB, PR;
    int OH, OW;
} pool_shape;
int pool_shape_init(pool_shape *s, int N, int IH, int IW, int C, int KH, int KW, int SH, int SW,
                    kn_padding pad);
/* y: (N, OH, OW, C). argmax: (N, OH, OW, C) int32 index into x's (IH*IW) plane, saved for
 * backward. Padded positions never win (TF pads max pool with -inf). */
void maxpool_forward(float *y, int32_t *argmax, const float *x, const pool_shape *s);
/* dx: (N, IH, IW, C) overwritten. */
void maxpool_backward(float *dx, const float *dy, const int32_t *argmax, const pool_shape *s);
/* TF average pool: each output divides by the number of NON-padded inputs in its window. */
void avgpool_forward(float *y, const float *x, const pool_shape *s);
void avgpool_backward(float *dx, const float *dy, const pool_shape *s);
/* Global average over H*W: x (N, HW, C) -> y (N, C). dx overwritten. */
void global_avgpool_forward(float *y, const float *x, int N, int HW, int C);
void global_avgpool_backward(float *dx, const float *dy, int N, int HW, int C);

/* ------------------------------------------------------------------------------------------ */
/* Softmax cross-entropy with label smoothing, mean over the batch (tf.losses.softmax_cross_   */
/* entropy): target = onehot*(1-ls) + ls/K.                                                    */
/* ------------------------------------------------------------------------------------------ */
/* probs: (N, K) softmax output, saved for backward. logits: (N, K). labels: (N) in [0, K).
 * Returns the mean loss over the batch. */
float softmax_xent_forward(float *probs, const float *logits, const int32_t *labels, int N, int K,
                           float label_smoothing);
/* dlogits: (N, K) overwritten = scale * (probs - target) / N. scale lets the caller weight the
 * loss (1 for the main loss, 0.4 for inception_v3's auxiliary head). */
void softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int N,
                           int K, float label_smoothing, float scale);

#endif /* KERNELS_H */
