/* diffcr — cuBLAS GEMMs for Linear and for 1x1 convolutions.
 *
 * NHWC makes a 1x1 convolution a plain GEMM over pixels (rows = N*H*W, contiguous channels), the
 * same shape as Linear over a batch; both go through the three row GEMMs below. cuBLAS is
 * column-major: a row-major [rows][IC] matrix is a column-major IC x rows one, so every product
 * is written transposed (out^T = W inp^T, ...).
 *
 * Precision: cublasGemmEx on float32 data with the compute type of the backend's precision,
 * strict FP32 by default (no TF32 unless asked). */
#include <limits.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_ops.h"

static cublasComputeType_t compute_type(dc_precision p)
{
    switch (p) {
    case DC_PRECISION_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case DC_PRECISION_FP16: return CUBLAS_COMPUTE_32F_FAST_16F;
    case DC_PRECISION_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
    }
}

static int gemm(cuda_state *st, cublasOperation_t ta, cublasOperation_t tb, size_t m, size_t n, size_t k,
                const float *a, int lda, const float *b, int ldb, float *c, int ldc, const char *what,
                dc_error *err)
{
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return dc_fail(err, DC_ERR_SHAPE, "%s: GEMM of %zux%zux%zu exceeds cuBLAS's int sizes", what, m, n, k);
    if (m == 0 || n == 0)
        return DC_OK;
    const float one = 1.0f, zero = 0.0f;
    return cublas_check(cublasGemmEx(st->cublas, ta, tb, (int)m, (int)n, (int)k, &one, a, CUDA_R_32F, lda, b,
                                     CUDA_R_32F, ldb, &zero, c, CUDA_R_32F, ldc, compute_type(st->owner->precision),
                                     CUBLAS_GEMM_DEFAULT),
                        what, err);
}

int cuda_gemm_rows_forward(cuda_state *st, float *out, const float *inp, const float *w, size_t rows,
                           int IC, int OC, dc_error *err)
{
    /* out^T (OC x rows) = W (IC x OC col-major)^T . inp^T (IC x rows) */
    return gemm(st, CUBLAS_OP_T, CUBLAS_OP_N, (size_t)OC, rows, (size_t)IC, w, IC, inp, IC, out, OC,
                "GEMM forward", err);
}

int cuda_gemm_rows_backward_data(cuda_state *st, float *dinp, const float *dout, const float *w,
                                 size_t rows, int IC, int OC, dc_error *err)
{
    /* dinp^T (IC x rows) = W (IC x OC col-major) . dout^T (OC x rows) */
    return gemm(st, CUBLAS_OP_N, CUBLAS_OP_N, (size_t)IC, rows, (size_t)OC, w, IC, dout, OC, dinp, IC,
                "GEMM backward-data", err);
}

int cuda_gemm_rows_backward_weight(cuda_state *st, float *dw, const float *dout, const float *inp,
                                   size_t rows, int IC, int OC, dc_error *err)
{
    /* dW (IC x OC col-major = PyTorch [OC][IC]) = inp^T (IC x rows) . dout (rows x OC) */
    if (rows == 0)
        return cuda_check(cudaMemsetAsync(dw, 0, (size_t)IC * OC * sizeof(float), cudaStreamPerThread),
                          "zeroing a weight gradient", err);
    return gemm(st, CUBLAS_OP_N, CUBLAS_OP_T, (size_t)IC, (size_t)OC, rows, inp, IC, dout, OC, dw, IC,
                "GEMM backward-weights", err);
}

__global__ void fill_ones_kernel(float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = 1.0f;
}

int cuda_gemm_rows_bias_grad(cuda_state *st, float *dbias, const float *dout, size_t rows, int OC, dc_error *err)
{
    /* dbias = dout^T . ones: a GEMV over all rows (a convolution's pixels), which cuBLAS runs as
     * a proper column reduction; one thread per channel summing a million pixels would not. */
    if (rows > INT_MAX)
        return dc_fail(err, DC_ERR_SHAPE, "bias gradient over %zu rows exceeds cuBLAS's int sizes", rows);
    if (rows == 0)
        return cuda_check(cudaMemsetAsync(dbias, 0, (size_t)OC * sizeof(float), cudaStreamPerThread),
                          "zeroing a bias gradient", err);
    if (st->ones_floats < rows || !st->ones) {
        st->ones_floats = 0; /* cuda_grow frees first: a failure below leaves no ones vector */
        int rc = cuda_grow((void **)&st->ones, &st->ones_bytes, rows * sizeof(float), "ones vector", err);
        if (rc != DC_OK)
            return rc;
        st->ones_floats = rows;
        size_t blocks = (rows + 255) / 256;
        fill_ones_kernel<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, cudaStreamPerThread>>>(st->ones, rows);
    }
    const float one = 1.0f, zero = 0.0f;
    return cublas_check(cublasSgemv(st->cublas, CUBLAS_OP_N, OC, (int)rows, &one, dout, OC, st->ones, 1, &zero, dbias, 1),
                        "bias gradient (GEMV)", err);
}
