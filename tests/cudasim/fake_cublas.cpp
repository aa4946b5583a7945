/* diffcr cudasim — a host implementation of the cuBLAS calls the CUDA backend makes (cublas_v2.h):
 * handles, cublasGemmEx on fp32 data and cublasSgemv, with cuBLAS's documented argument checks
 * and status codes.
 *
 * Checks happen at the call and return cuBLAS's status; the arithmetic is queued on the handle's
 * stream (dc_sim_enqueue) with everything it needs captured by value, so it runs in stream order
 * and reads device memory when a GPU would, not at the call. A device pointer that is not live
 * device memory for the whole extent the call touches is a crash on a GPU: dc_sim_fail.
 *
 * Precision: the GEMM's compute type decides how inputs are rounded before they are multiplied
 * (FAST_TF32: TF32, FAST_16F: fp16, FAST_16BF: bf16, 32F/PEDANTIC: exact); products are summed in float, one
 * multiply and one add at a time (build with -ffp-contract=off so the compiler keeps it so). The
 * rounding and accumulation helpers are shared with fake_cudnn.cpp (fake_arith.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "cublas_v2.h"
#include "fake_arith.h"
#include "sim_runtime.h"

/* --- handles ------------------------------------------------------------------------------------- */

/* The object behind a cublasHandle_t (the header leaves the struct incomplete, as cuBLAS does). */
struct cublasContext {
    cudaStream_t stream = nullptr; /* a new handle uses the legacy default stream */
};

namespace {

using namespace fake;
using Handle = cublasContext;

/* Live handles: a destroyed or never-created handle is a use-after-free in the real library. */
std::mutex g_lock;
std::unordered_set<const cublasContext *> g_handles;

/* The handle behind h (NULL for NULL); dies on a pointer that is no live handle. */
Handle *lookup(cublasHandle_t h, const char *call)
{
    if (!h)
        return nullptr;
    std::lock_guard<std::mutex> guard(g_lock);
    if (!g_handles.count(h))
        dc_sim_fail("%s: cuBLAS handle %p was destroyed or never created", call, (const void *)h);
    return h;
}

cudaStream_t handle_stream(Handle *h)
{
    std::lock_guard<std::mutex> guard(g_lock);
    return h->stream;
}

/* DIFFCR_CUDASIM_TRACE_LIBS=1: one line per GEMM on stderr (shapes and compute type). */
bool tracing()
{
    static const bool on = [] {
        const char *e = getenv("DIFFCR_CUDASIM_TRACE_LIBS");
        return e && *e && strcmp(e, "0") != 0;
    }();
    return on;
}

/* Elements a column-major rows x cols matrix with leading dimension ld spans. */
size_t matrix_span(int rows, int cols, int ld)
{
    if (rows == 0 || cols == 0)
        return 0;
    return (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
}

/* Elements a strided vector of n entries spans. */
size_t vector_span(int n, int inc)
{
    if (n == 0)
        return 0;
    return (size_t)(n - 1) * (size_t)(inc < 0 ? -(long)inc : inc) + 1;
}

/* --- GEMM ---------------------------------------------------------------------------------------- */

bool is_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

bool valid_algo(cublasGemmAlgo_t a)
{
    const int v = (int)a;
    return v == CUBLAS_GEMM_DEFAULT || (v >= CUBLAS_GEMM_ALGO0 && v <= CUBLAS_GEMM_ALGO23) ||
           v == CUBLAS_GEMM_DEFAULT_TENSOR_OP || (v >= CUBLAS_GEMM_ALGO0_TENSOR_OP && v <= CUBLAS_GEMM_ALGO15_TENSOR_OP);
}

/* How fp32 inputs are rounded under a compute type; false for compute types fp32 data cannot use
 * (16F, 64F, 32I need other data types). */
bool rounding_of(cublasComputeType_t t, Rounding *r)
{
    switch (t) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC: *r = Rounding::exact; return true;
    case CUBLAS_COMPUTE_32F_FAST_TF32: *r = Rounding::tf32; return true;
    case CUBLAS_COMPUTE_32F_FAST_16F: *r = Rounding::fp16; return true;
    case CUBLAS_COMPUTE_32F_FAST_16BF: *r = Rounding::bf16; return true;
    default: return false;
    }
}

/* Everything one queued GEMM needs, by value. */
struct GemmJob {
    bool ta, tb;
    int m, n, k;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
    Rounding rounding;
};

/* op(M) of a column-major matrix with leading dimension ld, packed column by column (cols columns
 * of rows entries; op transposes when trans), rounded as the compute type rounds inputs. op(A) is
 * m x k, op(B) is k x n. */
void pack_cols_of_op(const float *M, bool trans, int ld, int rows, int cols, Rounding rounding,
                     std::vector<float> &out)
{
    out.resize((size_t)rows * cols);
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) {
            const float v = trans ? M[(size_t)r * ld + c] : M[(size_t)c * ld + r];
            out[(size_t)c * rows + r] = round_input(v, rounding);
        }
}

/* A column of C at a time, as a sum of op(A)'s columns scaled by op(B)'s entries: each C entry
 * still adds its k products in the order l = 0, 1, ..., but the m sums are independent, so the
 * compiler can interleave them (a lone dot product would wait on every add). */
void run_gemm(const GemmJob &g)
{
    std::vector<float> a, b, acc((size_t)g.m);
    const bool products = g.k > 0 && g.alpha != 0.0f; /* BLAS: alpha == 0 reads neither A nor B */
    if (products) {
        pack_cols_of_op(g.A, g.ta, g.lda, g.m, g.k, g.rounding, a);
        pack_cols_of_op(g.B, g.tb, g.ldb, g.k, g.n, g.rounding, b);
    }
    for (int j = 0; j < g.n; j++) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        if (products)
            for (int l = 0; l < g.k; l++) {
                const float blj = b[(size_t)j * g.k + l];
                axpy(acc.data(), &a[(size_t)l * g.m], blj, g.m);
            }
        float *c = g.C + (size_t)j * g.ldc;
        for (int i = 0; i < g.m; i++)
            blend(&c[i], acc[(size_t)i], g.alpha, g.beta);
    }
}

/* --- GEMV ---------------------------------------------------------------------------------------- */

struct GemvJob {
    bool trans;
    int m, n;
    float alpha, beta;
    const float *A, *x;
    float *y;
    int lda, incx, incy;
};

/* Element i of a strided BLAS vector of length len (a negative increment walks it backwards). */
inline size_t vec_index(int i, int len, int inc)
{
    return inc >= 0 ? (size_t)i * inc : (size_t)(len - 1 - i) * (size_t)(-(long)inc);
}

void run_gemv(const GemvJob &g)
{
    const int ylen = g.trans ? g.n : g.m, xlen = g.trans ? g.m : g.n;
    std::vector<float> acc((size_t)ylen, 0.0f);
    if (g.alpha != 0.0f) {
        if (!g.trans) {
            /* column by column: acc[i] gets its terms in order of j, A is read contiguously */
            for (int j = 0; j < g.n; j++) {
                const float xj = g.x[vec_index(j, xlen, g.incx)];
                const float *col = g.A + (size_t)j * g.lda;
                for (int i = 0; i < g.m; i++)
                    acc[(size_t)i] += col[i] * xj;
            }
        } else {
            for (int j = 0; j < g.n; j++) {
                const float *col = g.A + (size_t)j * g.lda;
                float s = 0.0f;
                for (int i = 0; i < g.m; i++)
                    s += col[i] * g.x[vec_index(i, xlen, g.incx)];
                acc[(size_t)j] = s;
            }
        }
    }
    for (int i = 0; i < ylen; i++)
        blend(g.y + vec_index(i, ylen, g.incy), acc[(size_t)i], g.alpha, g.beta);
}

} // namespace

/* --- the API ------------------------------------------------------------------------------------- */

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    Handle *h = new Handle;
    std::lock_guard<std::mutex> guard(g_lock);
    g_handles.insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    Handle *h = lookup(handle, "cublasDestroy");
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    {
        std::lock_guard<std::mutex> guard(g_lock);
        g_handles.erase(handle);
    }
    delete h; /* queued work captured everything by value: nothing there refers to the handle */
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
{
    Handle *h = lookup(handle, "cublasSetStream");
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    std::lock_guard<std::mutex> guard(g_lock);
    h->stream = streamId; /* NULL, cudaStreamLegacy, cudaStreamPerThread pass through as given */
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *streamId)
{
    Handle *h = lookup(handle, "cublasGetStream");
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!streamId)
        return CUBLAS_STATUS_INVALID_VALUE;
    *streamId = handle_stream(h);
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    }
    return "unknown error";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo)
{
    static const char call[] = "cublasGemmEx";
    Handle *h = lookup(handle, call);
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    /* The documented INVALID_VALUE cases: sizes, operations, leading dimensions, scalars. */
    if (!is_op(transa) || !is_op(transb) || m < 0 || n < 0 || k < 0 || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int a_rows = ta ? k : m, b_rows = tb ? n : k; /* rows of A and B as stored */
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!valid_algo(algo))
        return CUBLAS_STATUS_INVALID_VALUE;
    /* The fake runs fp32 data only; other type combinations exist in cuBLAS but are not simulated. */
    Rounding rounding;
    if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F || !rounding_of(computeType, &rounding))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS; /* nothing to write */

    GemmJob g;
    g.ta = ta, g.tb = tb, g.m = m, g.n = n, g.k = k;
    memcpy(&g.alpha, alpha, sizeof g.alpha); /* host pointer mode: the scalars are read now */
    memcpy(&g.beta, beta, sizeof g.beta);
    g.A = static_cast<const float *>(A), g.B = static_cast<const float *>(B), g.C = static_cast<float *>(C);
    g.lda = lda, g.ldb = ldb, g.ldc = ldc, g.rounding = rounding;

    if (k > 0 && g.alpha != 0.0f) {
        need_device(A, matrix_span(a_rows, ta ? m : k, lda) * sizeof(float), call, "A");
        need_device(B, matrix_span(b_rows, tb ? k : n, ldb) * sizeof(float), call, "B");
    }
    need_device(C, matrix_span(m, n, ldc) * sizeof(float), call, "C");
    if (tracing())
        fprintf(stderr, "cudasim: cublasGemmEx %c%c m=%d n=%d k=%d lda=%d ldb=%d ldc=%d compute type %d\n", ta ? 'T' : 'N',
                tb ? 'T' : 'N', m, n, k, lda, ldb, ldc, (int)computeType);
    dc_sim_enqueue(handle_stream(h), [g]() { run_gemm(g); });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t trans, int m, int n, const float *alpha,
                              const float *A, int lda, const float *x, int incx, const float *beta, float *y,
                              int incy)
{
    static const char call[] = "cublasSgemv";
    Handle *h = lookup(handle, call);
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!is_op(trans) || m < 0 || n < 0 || lda < (m > 1 ? m : 1) || incx == 0 || incy == 0 || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;

    GemvJob g;
    g.trans = trans != CUBLAS_OP_N, g.m = m, g.n = n;
    g.alpha = *alpha, g.beta = *beta;
    g.A = A, g.x = x, g.y = y, g.lda = lda, g.incx = incx, g.incy = incy;
    const int xlen = g.trans ? m : n, ylen = g.trans ? n : m;
    if (g.alpha != 0.0f) {
        need_device(A, matrix_span(m, n, lda) * sizeof(float), call, "A");
        need_device(x, vector_span(xlen, incx) * sizeof(float), call, "x");
    }
    need_device(y, vector_span(ylen, incy) * sizeof(float), call, "y");
    dc_sim_enqueue(handle_stream(h), [g]() { run_gemv(g); });
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
