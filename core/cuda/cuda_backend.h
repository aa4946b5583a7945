/* diffcr — the CUDA backend's private state, shared by its host-side files (backend_cuda.cu,
 * conv_cudnn.cu, gemm_cublas.cu). Kernels do not see it: they get device pointers and run on the
 * calling thread's stream (cuda_ops.h). */
#ifndef DIFFCR_CUDA_BACKEND_H
#define DIFFCR_CUDA_BACKEND_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

#include "diffcr/backend.h"

/* One convolution shape with its cuDNN descriptors and chosen algorithms. */
typedef struct cuda_conv_plan {
    dc_conv_desc d;
    dc_precision precision;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int have_fwd, have_bwd_data, have_bwd_filter;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
} cuda_conv_plan;

/* A weight tensor re-laid out from PyTorch's [K][C][kh][kw] to cuDNN's NHWC filter [K][kh][kw][C]. */
typedef struct cuda_weight_copy {
    const float *src;
    float *krsc;              /* cuDNN-order fp32 copy (full 3x3 / 2x2 filters only) */
    uint16_t *bf16;           /* cuDNN-order bf16 copy, for the bf16 precision */
    size_t numel;
    int valid;                /* 0 after weights_changed: re-lay out on next use */
    int bf16_valid;           /* likewise for the bf16 copy */
} cuda_weight_copy;

typedef struct cuda_state {
    int device;
    int sm;                   /* compute capability, major * 10 + minor (90: Hopper) */
    char device_name[256];
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    const dc_backend *owner;  /* the table this state serves; owner->precision is the arithmetic in force */
    int dw_direct;            /* depthwise 3x3 by conv_depthwise.cu (1) or cuDNN (0): DIFFCR_CUDA_DWCONV */
    cuda_conv_plan **plans;   /* one allocation each: pointers stay valid as the list grows */
    int n_plans, cap_plans;
    cuda_weight_copy *weights;
    int n_weights, cap_weights;
    void *workspace;          /* cuDNN workspace, grown to the largest plan's need */
    size_t workspace_bytes;
    float *wgrad;             /* KRSC weight gradient before it is written back in PyTorch layout */
    size_t wgrad_bytes;
    void *bf16_scratch[3];    /* bf16 copies of a bf16 convolution's two inputs and its result */
    size_t bf16_scratch_bytes[3];
    float *ones;              /* ones vector for bias gradients (GEMV) */
    size_t ones_bytes, ones_floats;
} cuda_state;

/* Turn a CUDA / cuDNN / cuBLAS status into a dc_error ("what: message"). */
int cuda_check(cudaError_t e, const char *what, dc_error *err);
int cudnn_check(cudnnStatus_t s, const char *what, dc_error *err);
int cublas_check(cublasStatus_t s, const char *what, dc_error *err);

/* Grow-only device buffer (no allocation once large enough). */
int cuda_grow(void **buf, size_t *have, size_t need, const char *what, dc_error *err);

/* Row GEMM used by Linear and by 1x1 convolutions (NHWC makes a 1x1 conv a GEMM over pixels):
 *   out[rows][OC] = inp[rows][IC] . W[OC][IC]^T          (forward, beta 0)
 *   dinp[rows][IC] = dout[rows][OC] . W[OC][IC]          (backward data)
 *   dW[OC][IC]    = dout[rows][OC]^T . inp[rows][IC]     (backward weights)
 * in the backend's precision. */
int cuda_gemm_rows_forward(cuda_state *st, float *out, const float *inp, const float *w, size_t rows,
                           int IC, int OC, dc_error *err);
int cuda_gemm_rows_backward_data(cuda_state *st, float *dinp, const float *dout, const float *w,
                                 size_t rows, int IC, int OC, dc_error *err);
int cuda_gemm_rows_backward_weight(cuda_state *st, float *dw, const float *dout, const float *inp,
                                   size_t rows, int IC, int OC, dc_error *err);

/* dbias[OC] = sum over rows of dout[rows][OC]. */
int cuda_gemm_rows_bias_grad(cuda_state *st, float *dbias, const float *dout, size_t rows, int OC, dc_error *err);

/* Convolutions (conv_cudnn.cu). */
int cuda_conv2d_forward(dc_backend *be, float *out, const float *inp, const float *weight,
                        const float *bias, const dc_conv_desc *d, dc_error *err);
int cuda_conv2d_backward(dc_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const dc_conv_desc *d, dc_error *err);
void cuda_conv_forget_weights(cuda_state *st);
void cuda_conv_destroy(cuda_state *st);

#endif
