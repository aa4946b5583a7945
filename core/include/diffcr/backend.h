/* diffcr — the table of operations a device provides.
 *
 * One binary chooses its backend at run time (`--device auto|cpu|ref|cuda[:N]`). The network, the
 * samplers and the optimiser only call through this table, so the CPU and CUDA paths share every line
 * above the kernels.
 *
 *   "ref"  plain reference: direct/OpenBLAS convolutions + the fused C loops of ops.h. Always built;
 *          the oracle for tests and the fallback where oneDNN is absent.
 *   "cpu"  oneDNN convolutions + the same fused C loops (the fast CPU path).
 *   "cuda" cuDNN/cuBLAS + CUDA kernels (core/cuda, when built with it).
 *
 * Element-wise entries have exactly the signatures of ops.h (on the backend's memory). Entries that
 * need per-backend state (convolutions) receive the backend. */
#ifndef DIFFCR_BACKEND_H
#define DIFFCR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/conv.h"
#include "diffcr/error.h"
#include "diffcr/ops.h"
#include "diffcr/optim.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_backend dc_backend;

/* Arithmetic of the convolutions and Linear layers (storage is always float32):
 *   FP32  strict IEEE fp32 FMA maths (the default; what the CPU computes)
 *   TF32  tensor cores with TF32 inputs (10-bit mantissa), fp32 accumulation
 *   FP16  tensor cores with inputs rounded to fp16 (cuDNN's ALLOW_CONVERSION), fp32 accumulation
 *   BF16  tensor cores on bfloat16 copies of the inputs (7-bit mantissa, fp32's exponent range),
 *         fp32 accumulation; a cuDNN convolution's result is also rounded to bf16 (cuDNN writes
 *         bf16 for bf16 inputs), cuBLAS GEMMs write fp32
 * CPU backends accept only FP32. */
typedef enum dc_precision {
    DC_PRECISION_FP32 = 0,
    DC_PRECISION_TF32,
    DC_PRECISION_FP16,
    DC_PRECISION_BF16,
    DC_PRECISION_COUNT
} dc_precision;

/* "fp32" / "tf32" / "fp16" / "bf16" <-> enum. */
int dc_precision_parse(const char *name, dc_precision *out, dc_error *err);
const char *dc_precision_name(dc_precision p);

/* Threads: one backend computes for one host thread at a time (callers that share one, such as
 * the plugin's tile cache, serialise their network calls). The CUDA backend keeps one cuDNN and
 * one cuBLAS handle, workspace and weight cache per backend, pointed at the calling thread's
 * stream by bind; two threads computing on one backend at once would race on them. alloc,
 * to_device, to_host and host_alloc/host_release touch only the CUDA runtime and may be called
 * from another thread (to stage the next tiles while the network runs); release also resets the
 * weight cache, so it belongs to the computing thread. */
struct dc_backend {
    const char *name;          /* "ref", "cpu", "cuda" */
    int is_host;               /* 1 if pointers are host memory (CPU backends) */
    int threads;               /* CPU threads in use */
    dc_precision precision;    /* convolution/Linear arithmetic in force; only set_precision sets it */
    char description[160];     /* for logs: "cpu (oneDNN, 2 threads)", "cuda:0 NVIDIA H100 80GB HBM3" */
    void *impl;                /* backend-private state */

    /* memory (all sizes in bytes) */
    void *(*alloc)(dc_backend *be, size_t bytes);     /* zero-filled; NULL on failure */
    void (*release)(dc_backend *be, void *ptr);
    void (*to_device)(dc_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*to_host)(dc_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(dc_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(dc_backend *be, void *dst, size_t bytes);
    /* Host staging memory for to_device/to_host: page-locked on CUDA (copies run at full bus speed
     * and can overlap compute), plain aligned memory on the CPU. Not zero-filled. */
    void *(*host_alloc)(dc_backend *be, size_t bytes);
    void (*host_release)(dc_backend *be, void *ptr);
    /* Make the backend current on the calling thread (CUDA: its device); called by every public
     * entry of the network and the optimiser. No-op on the CPU. */
    void (*bind)(dc_backend *be);
    /* Wait for all queued work; report an asynchronous failure (CUDA kernels run queued, so their
     * errors surface here). Always DC_OK on the CPU. */
    int (*synchronize)(dc_backend *be, dc_error *err);
    /* Convolution/Linear arithmetic (see dc_precision). */
    int (*set_precision)(dc_backend *be, dc_precision p, dc_error *err);

    /* convolution */
    int (*conv2d_forward)(dc_backend *be, float *out, const float *inp, const float *weight,
                          const float *bias, const dc_conv_desc *d, dc_error *err);
    int (*conv2d_backward)(dc_backend *be, float *dinp, float *dweight, float *dbias,
                           const float *dout, const float *inp, const float *weight,
                           const dc_conv_desc *d, dc_error *err);

    /* memory-bound ops (ops.h signatures) */
    void (*layernorm2d_forward)(float *, float *, float *, const float *, const float *,
                                const float *, size_t, int);
    void (*layernorm2d_backward)(float *, float *, float *, const float *, const float *,
                                 const float *, const float *, const float *, size_t, int);
    void (*simplegate_forward)(float *, const float *, size_t, int);
    void (*simplegate_backward)(float *, const float *, const float *, size_t, int);
    void (*sca_forward)(float *, float *, float *, int *, const float *, const float *,
                        const float *, const float *, const float *, int, size_t, int);
    void (*sca_backward)(float *, float *, float *, float *, float *, const float *, const float *,
                         const float *, const float *, const int *, const float *, const float *,
                         int, size_t, int);
    void (*residual_forward)(float *, const float *, const float *, const float *, const float *,
                             int, size_t, int);
    void (*residual_backward)(float *, float *, float *, const float *, const float *,
                              const float *, int, size_t, int);
    void (*condsum_add_forward)(float *, const float *, int, int, size_t);
    void (*condsum_add_backward)(float *, const float *, int, int, size_t);
    void (*condsum_forward)(float *, const float *, int, int, size_t);
    void (*add_inplace)(float *, const float *, size_t);
    void (*pixelshuffle2_forward)(float *, const float *, int, int, int, int);
    void (*pixelshuffle2_backward)(float *, const float *, int, int, int, int);
    void (*linear_forward)(float *, const float *, const float *, const float *, int, int, int);
    void (*linear_backward)(float *, float *, float *, const float *, const float *,
                            const float *, int, int, int);
    void (*silu_forward)(float *, const float *, size_t);
    void (*silu_backward)(float *, const float *, const float *, size_t);
    void (*gamma_embedding_forward)(float *, const float *, int, int);
    void (*pad_nhwc)(float *, const float *, int, int, int, int, int, int);
    void (*crop_nhwc)(float *, const float *, int, int, int, int, int, int);
    void (*slice_pad_nhwc)(float *, const float *, int, int, int, int, int, int, int, int);
    void (*scale_inplace)(float *, float, size_t);

    /* optimiser (optim.h signatures, on backend memory) */
    void (*adam_update)(float *, float *, float *, const float *, size_t, const dc_adam_config *,
                        long long);
    void (*ema_update)(float *, const float *, size_t, double);
    double (*grad_norm)(dc_backend *be, const float *grads, size_t n); /* L2, double accumulation */

    /* sampler helpers (philox.h / sampler.h semantics, on backend memory): the same normals as
     * dc_philox_fill_normal, bit for bit; dc_dynamic_threshold per sample (s_out: B host floats
     * or NULL). */
    int (*philox_fill_normal)(dc_backend *be, float *out, size_t n, uint64_t seed, uint32_t stream,
                              uint32_t tile, uint32_t step, dc_error *err);
    void (*dynamic_threshold)(dc_backend *be, float *x0, int B, size_t n, double ratio,
                              double max_val, int float32_rank, float *s_out);
    /* the samplers' vector passes (sampler.h), so a sampler runs on the backend's memory */
    void (*dpm_update)(float *, const float *, const float *, const float *, const float *,
                       const dc_dpm_coeffs *, size_t, int);
    void (*x0_roundtrip)(float *, const float *, float, float, size_t);
    void (*prediction_to_x0)(float *, dc_target_kind, const float *, const float *, size_t, double,
                             double);
    void (*clamp_abs)(float *, float, size_t);
    void (*ddim_update)(float *, const float *, const float *, double, double, double, double,
                        double, size_t);
    void (*ddpm_update)(float *, const float *, const float *, double, double, double, size_t);

    /* lifecycle */
    void (*weights_changed)(dc_backend *be);           /* weight memory was modified */
    void (*set_inference)(dc_backend *be, int inference);
    void (*destroy)(dc_backend *be);
};

/* "GPU" or "host": where a backend's tensors live, for out-of-memory messages. */
static inline const char *dc_backend_memory_name(const dc_backend *be) { return be->is_host ? "host" : "GPU"; }

/* Create a backend by name: "auto" (cuda if a GPU and the CUDA module are usable, else cpu),
 * "cpu", "ref", "cuda" (device 0), "cuda:N". threads <= 0 means all cores (OMP default).
 * Returns DC_OK and *out, or a one-line error such as "device 'cuda' requested but no CUDA GPU
 * is visible (...)".
 *
 * The CUDA backend is a separate module (libdiffcr_cuda.so) loaded on demand, so the same
 * binaries run on machines without a GPU or without the CUDA runtime. It is looked up in
 * $DIFFCR_CUDA_MODULE, next to the executable (and ../lib), in the build and install
 * directories, then by the dynamic loader's search path. */
int dc_backend_create(dc_backend **out, const char *name, int threads, dc_error *err);
/* Why "cuda" is not available here (NULL if it is): module missing, runtime missing, no GPU. The
 * text is static; used by tests to report a skip reason. */
const char *dc_cuda_unavailable_reason(void);
void dc_backend_destroy(dc_backend *be);
/* Set precision p on a backend made for `device`. For "auto" (or NULL) a reduced precision is a
 * wish for the GPU: when auto chose the CPU it stays fp32 and `note` gets the one-line remark to
 * show the user (else ""), so that one command (or VRT) runs on any machine. On an explicit device
 * a precision the backend cannot do is its error ("precision 'tf32' needs the cuda device"). */
int dc_backend_apply_precision(dc_backend *be, const char *device, dc_precision p, char *note, size_t note_size,
                               dc_error *err);

/* The CUDA module's entry point (core/cuda) and the ABI check it makes: a module built against
 * another dc_backend layout refuses to load. */
#define DC_BACKEND_ABI (1000 + (int)sizeof(dc_backend))
typedef int (*dc_cuda_module_create_fn)(dc_backend **out, int device, int abi, dc_error *err);
typedef int (*dc_cuda_module_devices_fn)(char *why, size_t why_size);

/* Helpers over the table. */
static inline float *dc_alloc_floats(dc_backend *be, size_t n) { return (float *)be->alloc(be, n * sizeof(float)); }

#ifdef __cplusplus
}
#endif
#endif
