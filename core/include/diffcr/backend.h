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

#include "diffcr/conv.h"
#include "diffcr/error.h"
#include "diffcr/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_backend dc_backend;

struct dc_backend {
    const char *name;          /* "ref", "cpu", "cuda" */
    int is_host;               /* 1 if pointers are host memory (CPU backends) */
    int threads;               /* CPU threads in use */
    void *impl;                /* backend-private state */

    /* memory (all sizes in bytes) */
    void *(*alloc)(dc_backend *be, size_t bytes);     /* zero-filled; NULL on failure */
    void (*release)(dc_backend *be, void *ptr);
    void (*to_device)(dc_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*to_host)(dc_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(dc_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(dc_backend *be, void *dst, size_t bytes);

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

    /* lifecycle */
    void (*weights_changed)(dc_backend *be);           /* weight memory was modified */
    void (*set_inference)(dc_backend *be, int inference);
    void (*destroy)(dc_backend *be);
};

/* Create a backend by name: "auto" (cuda if usable, else cpu, else ref), "cpu", "ref", "cuda",
 * "cuda:N". threads <= 0 means all cores (OMP default). Returns DC_OK and *out, or an error such as
 * "device 'cuda' requested but this build has no CUDA support". */
int dc_backend_create(dc_backend **out, const char *name, int threads, dc_error *err);
void dc_backend_destroy(dc_backend *be);

/* Helpers over the table. */
static inline float *dc_alloc_floats(dc_backend *be, size_t n) { return (float *)be->alloc(be, n * sizeof(float)); }

#ifdef __cplusplus
}
#endif
#endif
