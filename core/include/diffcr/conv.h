/* diffcr — 2-D convolution shapes and the two CPU implementations.
 *
 * Activations NHWC; weights PyTorch [K][C/groups][k][k]; bias [K] or NULL. Square kernels with
 * symmetric padding cover every conv of DiffCR: 3x3 pad 1 (intro, ending), 1x1, 2x2 stride 2
 * (downs), depthwise 3x3 (groups = C = K).
 *
 * Backward follows ops.h: everything produced is WRITTEN, never accumulated; any of dinp, dweight,
 * dbias may be NULL to skip it. */
#ifndef DIFFCR_CONV_H
#define DIFFCR_CONV_H

#include <stddef.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_conv_desc {
    int N, H, W, C;   /* input */
    int K;            /* output channels */
    int kernel;       /* kernel height = width */
    int stride;
    int pad;          /* symmetric zero padding */
    int groups;       /* 1, or C (= K) for depthwise */
} dc_conv_desc;

static inline int dc_conv_out_h(const dc_conv_desc *d) { return (d->H + 2 * d->pad - d->kernel) / d->stride + 1; }
static inline int dc_conv_out_w(const dc_conv_desc *d) { return (d->W + 2 * d->pad - d->kernel) / d->stride + 1; }
static inline size_t dc_conv_weight_numel(const dc_conv_desc *d)
{
    return (size_t)d->K * (size_t)(d->C / d->groups) * (size_t)d->kernel * (size_t)d->kernel;
}

/* Every backend's conv2d entry checks its shape with this first: an empty batch or image, a
 * kernel larger than the padded image, or groups that do not divide the channels is one error
 * naming the shape, the same on every backend (cuDNN and cuBLAS would reject some with a status
 * code, launch empty grids for others, and the reference loops would read out of bounds). */
static inline int dc_conv_desc_check(const dc_conv_desc *d, const char *op, dc_error *err)
{
    if (!d)
        return dc_fail(err, DC_ERR_ARG, "convolution %s: NULL descriptor", op);
    if (d->N < 1 || d->H < 1 || d->W < 1 || d->C < 1 || d->K < 1 || d->kernel < 1 || d->stride < 1 ||
        d->pad < 0 || d->groups < 1 || d->C % d->groups || d->K % d->groups ||
        d->H + 2 * d->pad < d->kernel || d->W + 2 * d->pad < d->kernel)
        return dc_fail(err, DC_ERR_SHAPE, "convolution %s: invalid shape N%d H%d W%d C%d -> K%d k%d s%d p%d g%d",
                       op, d->N, d->H, d->W, d->C, d->K, d->kernel, d->stride, d->pad, d->groups);
    return DC_OK;
}

/* --- Reference implementation: direct loops + OpenBLAS sgemm (always built, the test oracle). --- */
void conv2d_ref_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const dc_conv_desc *d);
void conv2d_ref_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const dc_conv_desc *d);

/* --- oneDNN implementation (built when DIFFCR_HAVE_DNNL). ---
 * A dc_dnnl holds the engine, stream, a primitive cache keyed by shape, a weight re-layout cache keyed
 * by weight pointer, and one user scratchpad. Not thread-safe: one per thread of callers. */
typedef struct dc_dnnl dc_dnnl;

int dc_dnnl_create(dc_dnnl **out, dc_error *err);
void dc_dnnl_destroy(dc_dnnl *ctx);
/* Weight memory changed (optimiser step, new checkpoint): forget cached re-laid-out weights. */
void dc_dnnl_weights_changed(dc_dnnl *ctx);
/* Inference (forward_inference) vs training (forward_training) primitives. Default: training. */
void dc_dnnl_set_inference(dc_dnnl *ctx, int inference);
int conv2d_dnnl_forward(dc_dnnl *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, const dc_conv_desc *d, dc_error *err);
int conv2d_dnnl_backward(dc_dnnl *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const dc_conv_desc *d, dc_error *err);
/* Implementation names oneDNN chose so far ("jit_1x1:avx512_core", ...), for tests that must fail on
 * a "ref:" kernel. Returns the number of distinct names written to names[0..max-1] (NUL-terminated
 * strings owned by ctx). */
int dc_dnnl_impl_names(dc_dnnl *ctx, const char **names, int max);

#ifdef __cplusplus
}
#endif
#endif
