/* diffcr — the CUDA backend: device memory, streams, errors and the op table (backend.h).
 *
 * Built as libdiffcr_cuda.so and opened by core/src/backend_loader.c only when a GPU is asked for,
 * so programs start on machines without the CUDA runtime.
 *
 * Streams: every call from a host thread goes to that thread's cudaStreamPerThread (kernels,
 * cuBLAS, cuDNN and copies alike), so one thread's work runs in order without explicit events,
 * and several threads (the GDAL plugin's readers) each get their own stream. Copies to the host
 * wait for the stream; copies to the device return once the source may be reused.
 *
 * Errors: kernels are queued, so a failure inside one surfaces at the next synchronize (or the next
 * call that returns a status); launch errors noted by the element-wise entries (which return
 * void, as their CPU references do) are kept per thread and reported there too. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_ops.h"

#define DC_EXPORT extern "C" __attribute__((visibility("default")))

/* --- errors ------------------------------------------------------------------------------- */

static __thread char tls_error[256];

void cuda_note_error(const char *what)
{
    if (!tls_error[0]) { /* keep the first: later failures are usually its consequences */
        size_t n = strnlen(what, sizeof tls_error - 1);
        memcpy(tls_error, what, n);
        tls_error[n] = '\0';
    }
}

int cuda_check(cudaError_t e, const char *what, dc_error *err)
{
    if (e == cudaSuccess)
        return DC_OK;
    return dc_fail(err, e == cudaErrorMemoryAllocation ? DC_ERR_NOMEM : DC_ERR_IO, "%s: CUDA error %s (%s)", what,
                   cudaGetErrorName(e), cudaGetErrorString(e));
}

int cudnn_check(cudnnStatus_t s, const char *what, dc_error *err)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return DC_OK;
    /* cuDNN 9's ALLOC_FAILED alias is the host allocation failure; device memory running out is
     * its own code, and both are "out of memory" to the caller. */
    int nomem = s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
    return dc_fail(err, nomem ? DC_ERR_NOMEM : DC_ERR_IO, "%s: cuDNN error %s", what, cudnnGetErrorString(s));
}

int cublas_check(cublasStatus_t s, const char *what, dc_error *err)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return DC_OK;
    return dc_fail(err, s == CUBLAS_STATUS_ALLOC_FAILED ? DC_ERR_NOMEM : DC_ERR_IO, "%s: cuBLAS error %s (%d)", what,
                   cublasGetStatusName(s), (int)s);
}

/* A failed allocation is reported through its return value; it must not also stay in CUDA's
 * last-error slot, where every later cuda_conv2d_* (cudaPeekAtLastError) and synchronize would
 * report it again. Out-of-memory is not a sticky error: the context stays usable. */
static void forget_failure(void **buf)
{
    *buf = NULL;
    (void)cudaGetLastError();
}

int cuda_grow(void **buf, size_t *have, size_t need, const char *what, dc_error *err)
{
    if (need <= *have && *buf)
        return DC_OK;
    if (*buf) {
        cudaFree(*buf);
        *buf = NULL;
        *have = 0;
    }
    if (need == 0)
        need = 256;
    int rc = cuda_check(cudaMalloc(buf, need), what, err);
    if (rc == DC_OK)
        *have = need;
    else
        forget_failure(buf);
    return rc;
}

/* --- per-thread state: scratch and the current backend -------------------------------------- */

typedef struct thread_scratch {
    void *ptr;
    size_t bytes;
    int device;
} thread_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread cuda_state *tls_current; /* set by bind: Linear needs the cuBLAS handle */

static void scratch_free(void *p)
{
    thread_scratch *s = (thread_scratch *)p;
    if (s) {
        if (s->ptr)
            cudaFree(s->ptr);
        free(s);
    }
}

static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

void *cuda_scratch(size_t bytes)
{
    pthread_once(&scratch_once, scratch_key_init);
    thread_scratch *s = (thread_scratch *)pthread_getspecific(scratch_key);
    if (!s) {
        s = (thread_scratch *)calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            cuda_note_error("out of host memory for per-thread CUDA scratch");
            return NULL;
        }
    }
    int device = 0;
    cudaGetDevice(&device);
    if (s->ptr && (s->bytes < bytes || s->device != device)) {
        /* the old buffer may still be read by queued kernels of this thread's stream */
        cudaStreamSynchronize(cudaStreamPerThread);
        cudaFree(s->ptr);
        s->ptr = NULL;
        s->bytes = 0;
    }
    if (!s->ptr) {
        size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
        if (cudaMalloc(&s->ptr, want) != cudaSuccess) {
            forget_failure(&s->ptr);
            cuda_note_error("out of device memory for reduction scratch");
            return NULL;
        }
        s->bytes = want;
        s->device = device;
    }
    return s->ptr;
}

/* --- memory --------------------------------------------------------------------------------- */

static void *cu_alloc(dc_backend *be, size_t bytes)
{
    (void)be;
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 4) != cudaSuccess) {
        forget_failure(&p); /* the caller sees NULL */
        return NULL;
    }
    if (cudaMemsetAsync(p, 0, bytes ? bytes : 4, cudaStreamPerThread) != cudaSuccess) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_release(dc_backend *be, void *p)
{
    if (p) {
        cudaFree(p);
        /* the re-laid-out filter cache is keyed by weight pointer: a later allocation may get this
         * address back holding other weights */
        if (be && be->impl)
            cuda_conv_forget_weights((cuda_state *)be->impl);
    }
}

/* A copy across the bus that returns once done: a page-locked source may be rewritten by the
 * caller, or the destination read, as soon as this returns. */
static void copy_sync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what)
{
    if (!bytes)
        return;
    if (cudaMemcpyAsync(dst, src, bytes, kind, cudaStreamPerThread) != cudaSuccess ||
        cudaStreamSynchronize(cudaStreamPerThread) != cudaSuccess)
        cuda_note_error(what);
}

static void cu_to_device(dc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    copy_sync(dst, src, bytes, cudaMemcpyHostToDevice, "copy to the device failed");
}

static void cu_to_host(dc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    copy_sync(dst, src, bytes, cudaMemcpyDeviceToHost, "copy to the host failed");
}

static void cu_copy(dc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes && dst != src &&
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cudaStreamPerThread) != cudaSuccess)
        cuda_note_error("device copy failed");
}

static void cu_zero(dc_backend *be, void *dst, size_t bytes)
{
    (void)be;
    if (bytes && cudaMemsetAsync(dst, 0, bytes, cudaStreamPerThread) != cudaSuccess)
        cuda_note_error("device memset failed");
}

static void *cu_host_alloc(dc_backend *be, size_t bytes)
{
    (void)be;
    void *p = NULL;
    if (cudaMallocHost(&p, bytes ? bytes : 4) != cudaSuccess) {
        forget_failure(&p);
        return NULL;
    }
    return p;
}

static void cu_host_release(dc_backend *be, void *p)
{
    (void)be;
    if (p)
        cudaFreeHost(p);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static void cu_bind(dc_backend *be)
{
    cuda_state *st = (cuda_state *)be->impl;
    if (cudaSetDevice(st->device) != cudaSuccess)
        cuda_note_error("bind: selecting the GPU failed");
    tls_current = st;
    /* handles follow the calling thread's stream */
    if (cublasSetStream(st->cublas, cudaStreamPerThread) != CUBLAS_STATUS_SUCCESS)
        cuda_note_error("bind: cublasSetStream failed");
    if (cudnnSetStream(st->cudnn, cudaStreamPerThread) != CUDNN_STATUS_SUCCESS)
        cuda_note_error("bind: cudnnSetStream failed");
}

static int cu_synchronize(dc_backend *be, dc_error *err)
{
    (void)be;
    cudaError_t e = cudaStreamSynchronize(cudaStreamPerThread);
    if (e == cudaSuccess)
        e = cudaGetLastError();
    if (e != cudaSuccess)
        return cuda_check(e, "CUDA work failed", err);
    if (tls_error[0]) {
        int rc = dc_fail(err, DC_ERR_IO, "CUDA: %s", tls_error);
        tls_error[0] = '\0';
        return rc;
    }
    return DC_OK;
}

static int cu_set_precision(dc_backend *be, dc_precision p, dc_error *err)
{
    if ((unsigned)p >= DC_PRECISION_COUNT)
        return dc_fail(err, DC_ERR_ARG, "unknown precision %d", (int)p);
    const cuda_state *st = (const cuda_state *)be->impl;
    /* cuDNN has no bf16 convolutions before Ampere: say so now, not at the first convolution */
    if (p == DC_PRECISION_BF16 && st->sm < 80)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "precision 'bf16' needs an Ampere or newer GPU (sm_80+); %s is sm_%d: "
                       "use fp16 or fp32", st->device_name, st->sm);
    be->precision = p; /* plans are per precision; the next call of each shape picks its algorithm */
    return DC_OK;
}

static void cu_weights_changed(dc_backend *be) { cuda_conv_forget_weights((cuda_state *)be->impl); }

static void cu_set_inference(dc_backend *be, int inference)
{
    (void)be;
    (void)inference; /* cuDNN has one forward; nothing to switch */
}

static void cu_destroy(dc_backend *be)
{
    cuda_state *st = (cuda_state *)be->impl;
    if (st) {
        cudaSetDevice(st->device);
        cudaStreamSynchronize(cudaStreamPerThread);
        cuda_conv_destroy(st);
        if (st->workspace)
            cudaFree(st->workspace);
        if (st->wgrad)
            cudaFree(st->wgrad);
        if (st->ones)
            cudaFree(st->ones);
        if (st->cudnn)
            cudnnDestroy(st->cudnn);
        if (st->cublas)
            cublasDestroy(st->cublas);
        if (tls_current == st)
            tls_current = NULL;
        free(st);
    }
    free(be);
}

/* --- entries that need the backend's handles -------------------------------------------------- */

static cuda_state *current(const char *what)
{
    if (!tls_current)
        cuda_note_error(what);
    return tls_current;
}

static void cu_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int IC,
                              int OC)
{
    cuda_state *st = current("Linear called on a thread the CUDA backend was not bound to");
    dc_error err;
    if (!st)
        return;
    if (cuda_gemm_rows_forward(st, out, inp, weight, (size_t)B, IC, OC, &err) != DC_OK) {
        cuda_note_error(err.msg);
        return;
    }
    if (bias)
        cuda_add_bias_rows(out, bias, B, OC);
}

static void cu_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int B, int IC, int OC)
{
    cuda_state *st = current("Linear backward called on a thread the CUDA backend was not bound to");
    dc_error err;
    if (!st)
        return;
    if (dinp && cuda_gemm_rows_backward_data(st, dinp, dout, weight, (size_t)B, IC, OC, &err) != DC_OK) {
        cuda_note_error(err.msg);
        return;
    }
    if (dweight && cuda_gemm_rows_backward_weight(st, dweight, dout, inp, (size_t)B, IC, OC, &err) != DC_OK) {
        cuda_note_error(err.msg);
        return;
    }
    if (dbias)
        cuda_bias_grad_rows(dbias, dout, B, OC);
}

static double cu_grad_norm(dc_backend *be, const float *grads, size_t n)
{
    (void)be;
    return cuda_grad_norm(grads, n);
}

static int cu_philox_fill_normal(dc_backend *be, float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                                 uint32_t step, dc_error *err)
{
    (void)be;
    if (n >= ((size_t)1 << 34))
        return dc_fail(err, DC_ERR_ARG, "philox fill of %zu values exceeds 2^34", n);
    return cuda_philox_fill_normal(out, n, seed, stream, tile, step) == 0
               ? DC_OK
               : dc_fail(err, DC_ERR_IO, "philox fill launch failed");
}

static void cu_dynamic_threshold(dc_backend *be, float *x0, int B, size_t n, double ratio, double max_val,
                                 int float32_rank, float *s_out)
{
    (void)be;
    cuda_dynamic_threshold(x0, B, n, ratio, max_val, float32_rank, s_out);
}

static void fill_table(dc_backend *be)
{
    be->name = "cuda";
    be->is_host = 0;
    be->threads = 1;
    be->alloc = cu_alloc;
    be->release = cu_release;
    be->to_device = cu_to_device;
    be->to_host = cu_to_host;
    be->copy = cu_copy;
    be->zero = cu_zero;
    be->host_alloc = cu_host_alloc;
    be->host_release = cu_host_release;
    be->bind = cu_bind;
    be->synchronize = cu_synchronize;
    be->set_precision = cu_set_precision;
    be->conv2d_forward = cuda_conv2d_forward;
    be->conv2d_backward = cuda_conv2d_backward;
    be->layernorm2d_forward = cuda_layernorm2d_forward;
    be->layernorm2d_backward = cuda_layernorm2d_backward;
    be->simplegate_forward = cuda_simplegate_forward;
    be->simplegate_backward = cuda_simplegate_backward;
    be->sca_forward = cuda_sca_forward;
    be->sca_backward = cuda_sca_backward;
    be->residual_forward = cuda_residual_forward;
    be->residual_backward = cuda_residual_backward;
    be->condsum_add_forward = cuda_condsum_add_forward;
    be->condsum_add_backward = cuda_condsum_add_backward;
    be->condsum_forward = cuda_condsum_forward;
    be->add_inplace = cuda_add_inplace;
    be->pixelshuffle2_forward = cuda_pixelshuffle2_forward;
    be->pixelshuffle2_backward = cuda_pixelshuffle2_backward;
    be->linear_forward = cu_linear_forward;
    be->linear_backward = cu_linear_backward;
    be->silu_forward = cuda_silu_forward;
    be->silu_backward = cuda_silu_backward;
    be->gamma_embedding_forward = cuda_gamma_embedding_forward;
    be->pad_nhwc = cuda_pad_nhwc;
    be->crop_nhwc = cuda_crop_nhwc;
    be->slice_pad_nhwc = cuda_slice_pad_nhwc;
    be->scale_inplace = cuda_scale_inplace;
    be->adam_update = cuda_adam_update;
    be->ema_update = cuda_ema_update;
    be->grad_norm = cu_grad_norm;
    be->philox_fill_normal = cu_philox_fill_normal;
    be->dynamic_threshold = cu_dynamic_threshold;
    be->dpm_update = cuda_dpm_update;
    be->x0_roundtrip = cuda_x0_roundtrip;
    be->prediction_to_x0 = cuda_prediction_to_x0;
    be->clamp_abs = cuda_clamp_abs;
    be->ddim_update = cuda_ddim_update;
    be->ddpm_update = cuda_ddpm_update;
    be->weights_changed = cu_weights_changed;
    be->set_inference = cu_set_inference;
    be->destroy = cu_destroy;
}

/* --- module entry points (backend_loader.c) --------------------------------------------------- */

DC_EXPORT int dc_cuda_module_devices(char *why, size_t why_size)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(why, why_size, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky-free error so a later probe starts clean */
        return 0;
    }
    return count;
}

DC_EXPORT int dc_cuda_module_create(dc_backend **out, int device, int abi, dc_error *err)
{
    *out = NULL;
    if (abi != DC_BACKEND_ABI)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "libdiffcr_cuda.so was built for another diffcr version (ABI %d, need %d)",
                       DC_BACKEND_ABI, abi);
    dc_backend *be = (dc_backend *)calloc(1, sizeof *be);
    cuda_state *st = (cuda_state *)calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory creating the CUDA backend");
    }
    be->impl = st;
    st->owner = be;
    st->device = device;
    /* depthwise 3x3: the direct kernels unless DIFFCR_CUDA_DWCONV=cudnn (the benchmark times both) */
    const char *dw = getenv("DIFFCR_CUDA_DWCONV");
    st->dw_direct = !(dw && strcmp(dw, "cudnn") == 0);
    fill_table(be);
    int rc = cuda_check(cudaSetDevice(device), "selecting the GPU", err);
    cudaDeviceProp prop;
    if (rc == DC_OK)
        rc = cuda_check(cudaGetDeviceProperties(&prop, device), "reading the GPU's properties", err);
    if (rc == DC_OK) {
        snprintf(st->device_name, sizeof st->device_name, "%s", prop.name);
        st->sm = prop.major * 10 + prop.minor;
        snprintf(be->description, sizeof be->description, "cuda:%d %.100s (sm_%d%d, %.0f GiB)", device, prop.name,
                 prop.major, prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
        rc = cublas_check(cublasCreate(&st->cublas), "cublasCreate", err);
    }
    if (rc == DC_OK)
        rc = cudnn_check(cudnnCreate(&st->cudnn), "cudnnCreate", err);
    if (rc != DC_OK) {
        cu_destroy(be);
        return rc;
    }
    cu_bind(be);
    *out = be;
    return DC_OK;
}
