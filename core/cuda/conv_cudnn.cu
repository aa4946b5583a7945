/* diffcr — convolutions on the GPU: cuDNN for 3x3, 2x2/2 and depthwise, cuBLAS for 1x1.
 *
 * Activations are NHWC (DESIGN.md), which cuDNN runs natively. Its NHWC kernels want the filter in
 * NHWC order too ([K][kh][kw][C/g]); DiffCR's weights are PyTorch's [K][C/g][kh][kw]. The two
 * layouts are the same memory for 1x1 and depthwise filters (one of the two axes has length 1),
 * so only the few full 3x3 and 2x2 filters (intro, ending, downs) are re-laid out, once per
 * weight pointer, and again only after weights_changed. Weight gradients of those come back in
 * cuDNN's order and are permuted into the PyTorch layout of the gradient buffer.
 *
 * A plan per shape holds the descriptors and the algorithm cuDNN's own benchmark (Find) picked,
 * restricted to the math the precision allows (strict FP32: FMA kernels only, never TF32). Plans
 * and the workspace are made on the first call of a shape; later calls allocate nothing.
 *
 * BF16: cuDNN takes bf16 tensors, not a conversion flag as for fp16, so the plan's descriptors
 * are bf16, the inputs are narrowed into scratch (weights once per pointer, like the re-layout)
 * and the result, which cuDNN writes in bf16, is widened into the float32 output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_ops.h"

/* --- filter layout ------------------------------------------------------------------------- */

/* to_krsc: dst[k][r][s][c] = src[k][c][r][s]; else the inverse. One thread per element. */
__global__ void permute_filter_kernel(float *dst, const float *src, int K, int C, int RS, int to_krsc)
{
    size_t total = (size_t)K * C * RS;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        /* i indexes the KCRS element: i = (k*C + c)*RS + rs */
        size_t rs = i % RS, kc = i / RS, c = kc % C, k = kc / C;
        size_t j = (k * RS + rs) * C + c; /* KRSC index */
        if (to_krsc)
            dst[j] = src[i];
        else
            dst[i] = src[j];
    }
}

static void permute_filter(float *dst, const float *src, int K, int C, int RS, int to_krsc)
{
    size_t total = (size_t)K * C * RS;
    unsigned blocks = (unsigned)((total + 255) / 256 < 65535 ? (total + 255) / 256 : 65535);
    permute_filter_kernel<<<blocks, 256, 0, cudaStreamPerThread>>>(dst, src, K, C, RS, to_krsc);
}

static int needs_relayout(const dc_conv_desc *d) { return d->kernel > 1 && d->C / d->groups > 1; }

static int is_gemm(const dc_conv_desc *d)
{
    return d->kernel == 1 && d->stride == 1 && d->pad == 0 && d->groups == 1;
}

static int is_dw3(const cuda_state *st, const dc_conv_desc *d)
{
    return st->dw_direct && d->kernel == 3 && d->stride == 1 && d->pad == 1 && d->groups == d->C && d->K == d->C;
}

/* The cache entry of a weight pointer (made on first use; buffers are allocated by the users). */
static int weight_entry(cuda_state *st, const float *w, size_t numel, cuda_weight_copy **out, dc_error *err)
{
    for (int i = 0; i < st->n_weights; i++)
        if (st->weights[i].src == w && st->weights[i].numel == numel) {
            *out = &st->weights[i];
            return DC_OK;
        }
    if (st->n_weights == st->cap_weights) {
        int cap = st->cap_weights ? 2 * st->cap_weights : 32;
        cuda_weight_copy *p = (cuda_weight_copy *)realloc(st->weights, (size_t)cap * sizeof *p);
        if (!p)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory for the weight cache");
        st->weights = p, st->cap_weights = cap;
    }
    cuda_weight_copy *wc = &st->weights[st->n_weights++];
    memset(wc, 0, sizeof *wc);
    wc->src = w, wc->numel = numel;
    *out = wc;
    return DC_OK;
}

/* The cuDNN-order copy of a PyTorch-order weight (re-laid out if stale). */
static int krsc_weight(cuda_state *st, const float *w, const dc_conv_desc *d, const float **out, dc_error *err)
{
    size_t numel = dc_conv_weight_numel(d);
    cuda_weight_copy *wc;
    DC_TRY(weight_entry(st, w, numel, &wc, err));
    if (!wc->krsc)
        DC_TRY(cuda_check(cudaMalloc((void **)&wc->krsc, numel * sizeof(float)), "allocating a re-laid-out filter", err));
    if (!wc->valid) {
        permute_filter(wc->krsc, w, d->K, d->C / d->groups, d->kernel * d->kernel, 1);
        wc->valid = 1;
    }
    *out = wc->krsc;
    return DC_OK;
}

/* The cuDNN-order bf16 copy of a weight (re-laid out and narrowed if stale). */
static int bf16_weight(cuda_state *st, const float *w, const dc_conv_desc *d, const uint16_t **out, dc_error *err)
{
    size_t numel = dc_conv_weight_numel(d);
    const float *src = w;
    if (needs_relayout(d))
        DC_TRY(krsc_weight(st, w, d, &src, err)); /* before the lookup below: it may move the cache */
    cuda_weight_copy *wc;
    DC_TRY(weight_entry(st, w, numel, &wc, err));
    if (!wc->bf16)
        DC_TRY(cuda_check(cudaMalloc((void **)&wc->bf16, numel * sizeof(uint16_t)), "allocating a bf16 filter", err));
    if (!wc->bf16_valid) {
        cuda_f32_to_bf16(wc->bf16, src, numel);
        wc->bf16_valid = 1;
    }
    *out = wc->bf16;
    return DC_OK;
}

/* Scratch slot `slot` (0..2) as room for n bf16 values; with src, a bf16 copy of src[0..n). */
static int bf16_scratch(cuda_state *st, int slot, const float *src, size_t n, uint16_t **out, dc_error *err)
{
    DC_TRY(cuda_grow(&st->bf16_scratch[slot], &st->bf16_scratch_bytes[slot], n * sizeof(uint16_t),
                     "bf16 convolution scratch", err));
    *out = (uint16_t *)st->bf16_scratch[slot];
    if (src)
        cuda_f32_to_bf16(*out, src, n);
    return DC_OK;
}

void cuda_conv_forget_weights(cuda_state *st)
{
    for (int i = 0; i < st->n_weights; i++)
        st->weights[i].valid = 0, st->weights[i].bf16_valid = 0;
}

/* --- plans --------------------------------------------------------------------------------- */

static cudnnMathType_t requested_math(dc_precision p)
{
    switch (p) {
    case DC_PRECISION_TF32: return CUDNN_DEFAULT_MATH; /* TF32 tensor cores allowed on Ampere+ */
    case DC_PRECISION_FP16: return CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    case DC_PRECISION_BF16: return CUDNN_TENSOR_OP_MATH; /* bf16 descriptors: tensor cores */
    default: return CUDNN_FMA_MATH;                     /* strict fp32 */
    }
}

/* Strict FP32 accepts an algorithm cuDNN lists under FMA or default maths and then runs it with
 * CUDNN_FMA_MATH (executed_math), which rules out TF32 whatever cuDNN's default is. */
static int math_allowed(dc_precision p, cudnnMathType_t m)
{
    if (p == DC_PRECISION_FP32)
        return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
    if (p == DC_PRECISION_TF32)
        return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    return 1;
}

static cudnnMathType_t executed_math(dc_precision p, cudnnMathType_t listed)
{
    return p == DC_PRECISION_FP32 ? CUDNN_FMA_MATH : listed;
}

static void plan_free(cuda_conv_plan *p)
{
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

static int plan_init(cuda_state *st, cuda_conv_plan *p, const dc_conv_desc *d, dc_error *err)
{
    (void)st;
    memset(p, 0, sizeof *p);
    p->d = *d;
    p->precision = st->owner->precision;
    int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d);
    const cudnnDataType_t data = p->precision == DC_PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    int rc = cudnn_check(cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor", err);
    if (rc == DC_OK) rc = cudnn_check(cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor", err);
    if (rc == DC_OK) rc = cudnn_check(cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor", err);
    if (rc == DC_OK) rc = cudnn_check(cudnnCreateConvolutionDescriptor(&p->conv), "cudnnCreateConvolutionDescriptor", err);
    if (rc == DC_OK)
        rc = cudnn_check(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, data, d->N, d->C, d->H, d->W),
                         "input descriptor", err);
    if (rc == DC_OK)
        rc = cudnn_check(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, data, d->N, d->K, OH, OW),
                         "output descriptor", err);
    if (rc == DC_OK)
        rc = cudnn_check(cudnnSetFilter4dDescriptor(p->w, data, CUDNN_TENSOR_NHWC, d->K, d->C / d->groups,
                                                    d->kernel, d->kernel),
                         "filter descriptor", err);
    if (rc == DC_OK)
        rc = cudnn_check(cudnnSetConvolution2dDescriptor(p->conv, d->pad, d->pad, d->stride, d->stride, 1, 1,
                                                         CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                         "convolution descriptor", err);
    if (rc == DC_OK)
        rc = cudnn_check(cudnnSetConvolutionGroupCount(p->conv, d->groups), "cudnnSetConvolutionGroupCount", err);
    if (rc == DC_OK)
        rc = cudnn_check(cudnnSetConvolutionMathType(p->conv, requested_math(st->owner->precision)),
                         "cudnnSetConvolutionMathType", err);
    if (rc != DC_OK)
        plan_free(p);
    return rc;
}

static int plan_get(cuda_state *st, const dc_conv_desc *d, cuda_conv_plan **out, dc_error *err)
{
    for (int i = 0; i < st->n_plans; i++)
        if (memcmp(&st->plans[i]->d, d, sizeof *d) == 0 && st->plans[i]->precision == st->owner->precision) {
            *out = st->plans[i];
            return DC_OK;
        }
    if (st->n_plans == st->cap_plans) {
        int cap = st->cap_plans ? 2 * st->cap_plans : 32;
        cuda_conv_plan **p = (cuda_conv_plan **)realloc(st->plans, (size_t)cap * sizeof *p);
        if (!p)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory for convolution plans");
        st->plans = p, st->cap_plans = cap;
    }
    cuda_conv_plan *plan = (cuda_conv_plan *)calloc(1, sizeof *plan);
    if (!plan)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for a convolution plan");
    int rc = plan_init(st, plan, d, err);
    if (rc != DC_OK) {
        free(plan);
        return rc;
    }
    st->plans[st->n_plans++] = plan;
    *out = plan;
    return DC_OK;
}

static void describe(const dc_conv_desc *d, char *buf, size_t size)
{
    snprintf(buf, size, "conv %dx%dx%dx%d -> %d, %dx%d stride %d pad %d groups %d", d->N, d->H, d->W, d->C, d->K,
             d->kernel, d->kernel, d->stride, d->pad, d->groups);
}

static const char *math_name(cudnnMathType_t m)
{
    switch (m) {
    case CUDNN_FMA_MATH: return "fma";
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op+conversion";
    default: return "?";
    }
}

/* DIFFCR_CUDA_LOG=1: one stderr line per algorithm choice, so a GPU session can see what cuDNN
 * picked for each shape and precision (and whether Find or the heuristics decided). */
static void log_choice(const cuda_conv_plan *p, const char *what, int algo, cudnnMathType_t math, size_t ws,
                       int by_find, float ms)
{
    const char *on = getenv("DIFFCR_CUDA_LOG");
    if (!on || !*on || !strcmp(on, "0"))
        return;
    char shape[160];
    describe(&p->d, shape, sizeof shape);
    if (by_find)
        fprintf(stderr, "diffcr cuda: %s %s: algo %d, math %s, workspace %zu B, %.3f ms (Find)\n", shape, what, algo,
                math_name(math), ws, (double)ms);
    else
        fprintf(stderr, "diffcr cuda: %s %s: algo %d, math %s, workspace %zu B (heuristics)\n", shape, what, algo,
                math_name(math), ws);
}

/* Pick the fastest allowed result of cuDNN's benchmark (Find), else of its heuristics (Get_v7). The
 * three directions share this shape through the macro's arguments.
 *  - The descriptor's math type is reset to the precision's request before each search: the calls
 *    leave it at the previous direction's executed math, which would otherwise restrict this
 *    direction's search (an FMA forward would hide every TF32 backward algorithm).
 *  - A candidate's workspace is re-queried with the math it will run with (strict FP32 runs an
 *    algorithm listed under DEFAULT_MATH with FMA_MATH) and must be allocatable; a candidate that
 *    fails either is skipped, so an FFT algorithm wanting gigabytes falls back to the next one.
 *  - Find allocates (and may fail to allocate) its own buffers; a failed allocation there or for a
 *    skipped candidate leaves CUDA's last error set, which is cleared here unless it was set
 *    before (cuda_conv2d_* report the last error on return). */
#define CHOOSE_ALGO(FIND_CALL, GET_CALL, WS_CALL, PERF_T, ALGO_FIELD, MATH_FIELD, WS_FIELD, HAVE_FIELD, WHAT)   \
    do {                                                                                                      \
        PERF_T perf[16];                                                                                      \
        int n = 0, found = 0, by_find_ = 0;                                                                   \
        float ms_ = 0;                                                                                        \
        const cudaError_t prior_ = cudaPeekAtLastError();                                                     \
        for (int pass_ = 0; pass_ < 2 && !found; pass_++) {                                                   \
            n = 0;                                                                                            \
            DC_TRY(cudnn_check(cudnnSetConvolutionMathType(p->conv, requested_math(p->precision)),             \
                               "cudnnSetConvolutionMathType", err));                                          \
            if ((pass_ == 0 ? (FIND_CALL) : (GET_CALL)) != CUDNN_STATUS_SUCCESS)                              \
                n = 0;                                                                                        \
            for (int i = 0; i < n && !found; i++) {                                                           \
                if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_allowed(p->precision, perf[i].mathType))  \
                    continue;                                                                                 \
                const cudnnMathType_t math_ = executed_math(p->precision, perf[i].mathType);                  \
                size_t ws_ = 0;                                                                               \
                if (cudnnSetConvolutionMathType(p->conv, math_) != CUDNN_STATUS_SUCCESS ||                    \
                    (WS_CALL) != CUDNN_STATUS_SUCCESS)                                                        \
                    continue;                                                                                 \
                if (ws_ < perf[i].memory)                                                                     \
                    ws_ = perf[i].memory;                                                                     \
                if (cuda_grow(&st->workspace, &st->workspace_bytes, ws_, "cuDNN workspace", NULL) != DC_OK)   \
                    continue;                                                                                 \
                p->ALGO_FIELD = perf[i].algo, p->MATH_FIELD = math_, p->WS_FIELD = ws_, found = 1;            \
                by_find_ = pass_ == 0, ms_ = perf[i].time;                                                    \
            }                                                                                                 \
        }                                                                                                     \
        if (prior_ == cudaSuccess)                                                                            \
            (void)cudaGetLastError();                                                                         \
        if (!found) {                                                                                         \
            char what_[160];                                                                                  \
            describe(&p->d, what_, sizeof what_);                                                             \
            return dc_fail(err, DC_ERR_UNSUPPORTED, "cuDNN has no usable %s %s algorithm for %s",             \
                           dc_precision_name(p->precision), WHAT, what_);                                     \
        }                                                                                                     \
        p->HAVE_FIELD = 1;                                                                                    \
        log_choice(p, WHAT, (int)p->ALGO_FIELD, p->MATH_FIELD, p->WS_FIELD, by_find_, ms_);                   \
    } while (0)

static int choose_fwd(cuda_state *st, cuda_conv_plan *p, dc_error *err)
{
    CHOOSE_ALGO(cudnnFindConvolutionForwardAlgorithm(st->cudnn, p->x, p->w, p->conv, p->y, 16, &n, perf),
                cudnnGetConvolutionForwardAlgorithm_v7(st->cudnn, p->x, p->w, p->conv, p->y, 16, &n, perf),
                cudnnGetConvolutionForwardWorkspaceSize(st->cudnn, p->x, p->w, p->conv, p->y, perf[i].algo, &ws_),
                cudnnConvolutionFwdAlgoPerf_t, fwd, fwd_math, fwd_ws, have_fwd, "forward");
    return DC_OK;
}

static int choose_bwd_data(cuda_state *st, cuda_conv_plan *p, dc_error *err)
{
    CHOOSE_ALGO(cudnnFindConvolutionBackwardDataAlgorithm(st->cudnn, p->w, p->y, p->conv, p->x, 16, &n, perf),
                cudnnGetConvolutionBackwardDataAlgorithm_v7(st->cudnn, p->w, p->y, p->conv, p->x, 16, &n, perf),
                cudnnGetConvolutionBackwardDataWorkspaceSize(st->cudnn, p->w, p->y, p->conv, p->x, perf[i].algo, &ws_),
                cudnnConvolutionBwdDataAlgoPerf_t, bwd_data, bwd_data_math, bwd_data_ws, have_bwd_data,
                "backward-data");
    return DC_OK;
}

static int choose_bwd_filter(cuda_state *st, cuda_conv_plan *p, dc_error *err)
{
    CHOOSE_ALGO(cudnnFindConvolutionBackwardFilterAlgorithm(st->cudnn, p->x, p->y, p->conv, p->w, 16, &n, perf),
                cudnnGetConvolutionBackwardFilterAlgorithm_v7(st->cudnn, p->x, p->y, p->conv, p->w, 16, &n, perf),
                cudnnGetConvolutionBackwardFilterWorkspaceSize(st->cudnn, p->x, p->y, p->conv, p->w, perf[i].algo,
                                                               &ws_),
                cudnnConvolutionBwdFilterAlgoPerf_t, bwd_filter, bwd_filter_math, bwd_filter_ws, have_bwd_filter,
                "backward-weights");
    return DC_OK;
}

/* The shared workspace is at least `need` bytes. A plan chosen earlier may meet a smaller buffer:
 * cuda_grow frees before it allocates, so a failed growth for another plan leaves none. */
static int workspace_for(cuda_state *st, size_t need, dc_error *err)
{
    return cuda_grow(&st->workspace, &st->workspace_bytes, need, "cuDNN workspace", err);
}

/* --- the table entries ----------------------------------------------------------------------- */

static size_t out_pixels(const dc_conv_desc *d) { return (size_t)d->N * dc_conv_out_h(d) * dc_conv_out_w(d); }
static size_t in_numel(const dc_conv_desc *d) { return (size_t)d->N * d->H * d->W * d->C; }

/* The filter in the form the plan's descriptor reads: its bf16 copy, its cuDNN-order copy, or
 * the weight itself (1x1 and depthwise layouts coincide). */
static int plan_filter(cuda_state *st, const cuda_conv_plan *p, const float *weight, const dc_conv_desc *d,
                       const void **out, dc_error *err)
{
    *out = weight;
    if (p->precision == DC_PRECISION_BF16) {
        const uint16_t *wb;
        DC_TRY(bf16_weight(st, weight, d, &wb, err));
        *out = wb;
    } else if (needs_relayout(d)) {
        const float *wk;
        DC_TRY(krsc_weight(st, weight, d, &wk, err));
        *out = wk;
    }
    return DC_OK;
}

int cuda_conv2d_forward(dc_backend *be, float *out, const float *inp, const float *weight,
                        const float *bias, const dc_conv_desc *d, dc_error *err)
{
    cuda_state *st = (cuda_state *)be->impl;
    DC_TRY(dc_conv_desc_check(d, "forward", err));
    if (is_gemm(d)) {
        DC_TRY(cuda_gemm_rows_forward(st, out, inp, weight, (size_t)d->N * d->H * d->W, d->C, d->K, err));
    } else if (is_dw3(st, d)) {
        cuda_dwconv3_forward(out, inp, weight, bias, d->N, d->H, d->W, d->C);
        bias = NULL; /* the kernel started its sums from it, as the reference */
    } else {
        cuda_conv_plan *p;
        DC_TRY(plan_get(st, d, &p, err));
        if (!p->have_fwd)
            DC_TRY(choose_fwd(st, p, err));
        const void *x = inp, *w;
        void *y = out;
        uint16_t *yb = NULL;
        DC_TRY(plan_filter(st, p, weight, d, &w, err));
        if (p->precision == DC_PRECISION_BF16) {
            uint16_t *xb;
            DC_TRY(bf16_scratch(st, 0, inp, in_numel(d), &xb, err));
            DC_TRY(bf16_scratch(st, 2, NULL, out_pixels(d) * d->K, &yb, err));
            x = xb, y = yb;
        }
        const float one = 1.0f, zero = 0.0f;
        DC_TRY(workspace_for(st, p->fwd_ws, err));
        DC_TRY(cudnn_check(cudnnSetConvolutionMathType(p->conv, p->fwd_math), "cudnnSetConvolutionMathType", err));
        DC_TRY(cudnn_check(cudnnConvolutionForward(st->cudnn, &one, p->x, x, p->w, w, p->conv, p->fwd, st->workspace,
                                                p->fwd_ws, &zero, p->y, y),
                        "cudnnConvolutionForward", err));
        if (yb)
            cuda_bf16_to_f32(out, yb, out_pixels(d) * d->K);
    }
    if (bias)
        cuda_add_bias_rows(out, bias, (int)out_pixels(d), d->K);
    return cuda_check(cudaPeekAtLastError(), "convolution forward", err);
}

int cuda_conv2d_backward(dc_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const dc_conv_desc *d, dc_error *err)
{
    cuda_state *st = (cuda_state *)be->impl;
    DC_TRY(dc_conv_desc_check(d, "backward", err));
    if (is_gemm(d)) {
        size_t rows = (size_t)d->N * d->H * d->W;
        if (dinp)
            DC_TRY(cuda_gemm_rows_backward_data(st, dinp, dout, weight, rows, d->C, d->K, err));
        if (dweight)
            DC_TRY(cuda_gemm_rows_backward_weight(st, dweight, dout, inp, rows, d->C, d->K, err));
    } else if (is_dw3(st, d)) {
        cuda_dwconv3_backward(dinp, dweight, dout, inp, weight, d->N, d->H, d->W, d->C);
    } else {
        cuda_conv_plan *p;
        DC_TRY(plan_get(st, d, &p, err));
        const float one = 1.0f, zero = 0.0f;
        const int bf16 = p->precision == DC_PRECISION_BF16;
        const size_t n_in = in_numel(d), n_out = out_pixels(d) * d->K;
        const void *dy = dout;
        if (bf16 && (dinp || dweight)) {
            uint16_t *dyb;
            DC_TRY(bf16_scratch(st, 1, dout, n_out, &dyb, err));
            dy = dyb;
        }
        if (dinp) {
            if (!p->have_bwd_data)
                DC_TRY(choose_bwd_data(st, p, err));
            const void *w;
            void *dx = dinp;
            uint16_t *dxb = NULL;
            DC_TRY(plan_filter(st, p, weight, d, &w, err));
            if (bf16) {
                DC_TRY(bf16_scratch(st, 0, NULL, n_in, &dxb, err));
                dx = dxb;
            }
            DC_TRY(workspace_for(st, p->bwd_data_ws, err));
            DC_TRY(cudnn_check(cudnnSetConvolutionMathType(p->conv, p->bwd_data_math), "cudnnSetConvolutionMathType", err));
            DC_TRY(cudnn_check(cudnnConvolutionBackwardData(st->cudnn, &one, p->w, w, p->y, dy, p->conv, p->bwd_data,
                                                         st->workspace, p->bwd_data_ws, &zero, p->x, dx),
                            "cudnnConvolutionBackwardData", err));
            if (dxb)
                cuda_bf16_to_f32(dinp, dxb, n_in);
        }
        if (dweight) {
            if (!p->have_bwd_filter)
                DC_TRY(choose_bwd_filter(st, p, err));
            size_t numel = dc_conv_weight_numel(d);
            float *dw = dweight;
            if (needs_relayout(d)) {
                DC_TRY(cuda_grow((void **)&st->wgrad, &st->wgrad_bytes, numel * sizeof(float), "weight-gradient scratch", err));
                dw = st->wgrad;
            }
            const void *x = inp;
            void *dw_arg = dw;
            uint16_t *dwb = NULL;
            if (bf16) {
                uint16_t *xb;
                DC_TRY(bf16_scratch(st, 0, inp, n_in, &xb, err)); /* slot 0's dx was widened already */
                DC_TRY(bf16_scratch(st, 2, NULL, numel, &dwb, err));
                x = xb, dw_arg = dwb;
            }
            DC_TRY(workspace_for(st, p->bwd_filter_ws, err));
            DC_TRY(cudnn_check(cudnnSetConvolutionMathType(p->conv, p->bwd_filter_math), "cudnnSetConvolutionMathType", err));
            DC_TRY(cudnn_check(cudnnConvolutionBackwardFilter(st->cudnn, &one, p->x, x, p->y, dy, p->conv, p->bwd_filter,
                                                           st->workspace, p->bwd_filter_ws, &zero, p->w, dw_arg),
                            "cudnnConvolutionBackwardFilter", err));
            if (dwb)
                cuda_bf16_to_f32(dw, dwb, numel);
            if (dw != dweight)
                permute_filter(dweight, dw, d->K, d->C / d->groups, d->kernel * d->kernel, 0);
        }
    }
    if (dbias)
        DC_TRY(cuda_gemm_rows_bias_grad(st, dbias, dout, out_pixels(d), d->K, err));
    return cuda_check(cudaPeekAtLastError(), "convolution backward", err);
}

void cuda_conv_destroy(cuda_state *st)
{
    for (int i = 0; i < st->n_plans; i++) {
        plan_free(st->plans[i]);
        free(st->plans[i]);
    }
    free(st->plans);
    for (int i = 0; i < st->n_weights; i++) {
        cudaFree(st->weights[i].krsc);
        cudaFree(st->weights[i].bf16);
    }
    free(st->weights);
    for (int i = 0; i < 3; i++) {
        cudaFree(st->bf16_scratch[i]);
        st->bf16_scratch[i] = NULL, st->bf16_scratch_bytes[i] = 0;
    }
    st->plans = NULL, st->weights = NULL;
    st->n_plans = st->cap_plans = st->n_weights = st->cap_weights = 0;
}
