/* diffcr cudasim — stand-in for cuBLAS's cublas_v2.h: the part of the cuBLAS API the CUDA backend
 * calls, implemented on the host by tests/cudasim/fake_cublas.cpp (fakes_README.md).
 *
 * Names, signatures and enum values follow NVIDIA's documented API (cuBLAS 12), including the
 * _v2 entry points behind the cublasCreate/cublasSgemv/... macros, so core/cuda compiles
 * unchanged. Only host pointer mode exists: alpha and beta are read at the call. */
#ifndef DIFFCR_CUDASIM_CUBLAS_V2_H
#define DIFFCR_CUDASIM_CUBLAS_V2_H

#include "cuda_runtime.h"
#include "library_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16
} cublasStatus_t;

typedef enum {
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
    CUBLAS_OP_C = 2, /* conjugate transpose: the same as T for real data */
    CUBLAS_OP_HERMITAN = 2,
    CUBLAS_OP_CONJG = 3 /* not supported by cuBLAS either */
} cublasOperation_t;

/* cublasGemmEx's algorithm selector. The numbered algorithms are accepted and run as the
 * default (cuBLAS documents them as hints that are ignored on recent architectures). */
typedef enum {
    CUBLAS_GEMM_DEFAULT = -1,
    CUBLAS_GEMM_ALGO0 = 0,
    CUBLAS_GEMM_ALGO23 = 23,
    CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99,
    CUBLAS_GEMM_DFALT_TENSOR_OP = 99,
    CUBLAS_GEMM_ALGO0_TENSOR_OP = 100,
    CUBLAS_GEMM_ALGO15_TENSOR_OP = 115
} cublasGemmAlgo_t;

typedef enum {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,  /* fp32 accumulate; inputs may be rounded to fp16 */
    CUBLAS_COMPUTE_32F_FAST_16BF = 75, /* fp32 accumulate; inputs may be rounded to bf16 */
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77  /* fp32 accumulate; inputs may be rounded to TF32 */
} cublasComputeType_t;

struct cublasContext;
typedef struct cublasContext *cublasHandle_t;

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle);
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle);
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId);
cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *streamId);

const char *cublasGetStatusName(cublasStatus_t status);
const char *cublasGetStatusString(cublasStatus_t status);

/* C = alpha op(A) op(B) + beta C, column-major; C is not read when beta == 0. */
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo);

/* y = alpha op(A) x + beta y, column-major A (m x n); y is not read when beta == 0. */
cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t trans, int m, int n, const float *alpha,
                              const float *A, int lda, const float *x, int incx, const float *beta, float *y,
                              int incy);

#ifdef __cplusplus
}
#endif

/* The unsuffixed names of the v2 API, as cublas_v2.h defines them. */
#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2
#define cublasSetStream cublasSetStream_v2
#define cublasGetStream cublasGetStream_v2
#define cublasSgemv cublasSgemv_v2

#endif
