/* diffcr — the two CPU backends behind the op table (backend.h).
 *
 * "ref": reference convolutions (direct loops + OpenBLAS). "cpu": oneDNN convolutions when the build
 * has oneDNN. Both use the fused C + OpenMP loops of ops.h for everything memory-bound, so the two
 * differ only where oneDNN is faster, and tests can hold one against the other. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/backend.h"
#include "diffcr/philox.h"
#include "diffcr/sampler.h"
#include "cpu/thread_partials.h"
#include "src/backend_internal.h"

typedef struct cpu_state {
    dc_dnnl *dnnl; /* NULL for "ref" */
} cpu_state;

static void *cpu_alloc(dc_backend *be, size_t bytes)
{
    (void)be;
    /* 64-byte alignment for vector loads; rounded size as aligned_alloc requires. */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p)
        memset(p, 0, rounded ? rounded : 64);
    return p;
}

static void cpu_release(dc_backend *be, void *p)
{
    (void)be;
    free(p);
}

static void cpu_copy(dc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (dst != src && bytes)
        memmove(dst, src, bytes);
}

static void cpu_zero(dc_backend *be, void *dst, size_t bytes)
{
    (void)be;
    if (bytes)
        memset(dst, 0, bytes);
}

static void *cpu_host_alloc(dc_backend *be, size_t bytes)
{
    (void)be;
    size_t rounded = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, rounded ? rounded : 64);
}

static void cpu_bind(dc_backend *be) { (void)be; }

static int cpu_synchronize(dc_backend *be, dc_error *err)
{
    (void)be;
    (void)err;
    return DC_OK;
}

static int cpu_set_precision(dc_backend *be, dc_precision p, dc_error *err)
{
    if (p != DC_PRECISION_FP32)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "precision '%s' needs the cuda device; the %s backend computes in fp32",
                       dc_precision_name(p), be->name);
    return DC_OK;
}

static double cpu_grad_norm(dc_backend *be, const float *grads, size_t n)
{
    (void)be;
    return dc_grad_norm(grads, n);
}

static int cpu_philox_fill_normal(dc_backend *be, float *out, size_t n, uint64_t seed, uint32_t stream,
                                  uint32_t tile, uint32_t step, dc_error *err)
{
    (void)be;
    return dc_philox_fill_normal(out, n, seed, stream, tile, step, err);
}

static void cpu_dynamic_threshold(dc_backend *be, float *x0, int B, size_t n, double ratio, double max_val,
                                  int float32_rank, float *s_out)
{
    (void)be;
    /* the selection reorders a copy: per-thread scratch, reused across calls */
    float *scratch = dc_thread_scratch(0, n * sizeof(float));
    if (scratch)
        dc_dynamic_threshold(x0, B, n, ratio, max_val, float32_rank, scratch, s_out);
}

static int ref_conv_forward(dc_backend *be, float *out, const float *inp, const float *weight,
                            const float *bias, const dc_conv_desc *d, dc_error *err)
{
    (void)be;
    DC_TRY(dc_conv_desc_check(d, "forward", err));
    conv2d_ref_forward(out, inp, weight, bias, d);
    return DC_OK;
}

static int ref_conv_backward(dc_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const dc_conv_desc *d, dc_error *err)
{
    (void)be;
    DC_TRY(dc_conv_desc_check(d, "backward", err));
    conv2d_ref_backward(dinp, dweight, dbias, dout, inp, weight, d);
    return DC_OK;
}

#ifdef DIFFCR_HAVE_DNNL
static int dnnl_conv_forward(dc_backend *be, float *out, const float *inp, const float *weight,
                             const float *bias, const dc_conv_desc *d, dc_error *err)
{
    cpu_state *st = be->impl;
    return conv2d_dnnl_forward(st->dnnl, out, inp, weight, bias, d, err);
}

static int dnnl_conv_backward(dc_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, const dc_conv_desc *d, dc_error *err)
{
    cpu_state *st = be->impl;
    return conv2d_dnnl_backward(st->dnnl, dinp, dweight, dbias, dout, inp, weight, d, err);
}
#endif

static void cpu_weights_changed(dc_backend *be)
{
#ifdef DIFFCR_HAVE_DNNL
    cpu_state *st = be->impl;
    if (st->dnnl)
        dc_dnnl_weights_changed(st->dnnl);
#else
    (void)be;
#endif
}

static void cpu_set_inference(dc_backend *be, int inference)
{
#ifdef DIFFCR_HAVE_DNNL
    cpu_state *st = be->impl;
    if (st->dnnl)
        dc_dnnl_set_inference(st->dnnl, inference);
#else
    (void)be;
    (void)inference;
#endif
}

static void cpu_destroy(dc_backend *be)
{
    cpu_state *st = be->impl;
#ifdef DIFFCR_HAVE_DNNL
    if (st && st->dnnl)
        dc_dnnl_destroy(st->dnnl);
#endif
    free(st);
    free(be);
}

static void fill_common(dc_backend *be)
{
    be->is_host = 1;
    be->alloc = cpu_alloc;
    be->release = cpu_release;
    be->to_device = cpu_copy;
    be->to_host = cpu_copy;
    be->copy = cpu_copy;
    be->zero = cpu_zero;
    be->host_alloc = cpu_host_alloc;
    be->host_release = cpu_release;
    be->bind = cpu_bind;
    be->synchronize = cpu_synchronize;
    be->set_precision = cpu_set_precision;
    be->layernorm2d_forward = layernorm2d_forward;
    be->layernorm2d_backward = layernorm2d_backward;
    be->simplegate_forward = simplegate_forward;
    be->simplegate_backward = simplegate_backward;
    be->sca_forward = sca_forward;
    be->sca_backward = sca_backward;
    be->residual_forward = residual_forward;
    be->residual_backward = residual_backward;
    be->condsum_add_forward = condsum_add_forward;
    be->condsum_add_backward = condsum_add_backward;
    be->condsum_forward = condsum_forward;
    be->add_inplace = add_inplace;
    be->pixelshuffle2_forward = pixelshuffle2_forward;
    be->pixelshuffle2_backward = pixelshuffle2_backward;
    be->linear_forward = linear_forward;
    be->linear_backward = linear_backward;
    be->silu_forward = silu_forward;
    be->silu_backward = silu_backward;
    be->gamma_embedding_forward = gamma_embedding_forward;
    be->pad_nhwc = pad_nhwc;
    be->crop_nhwc = crop_nhwc;
    be->slice_pad_nhwc = slice_pad_nhwc;
    be->scale_inplace = scale_inplace;
    be->adam_update = dc_adam_update;
    be->ema_update = dc_ema_update;
    be->grad_norm = cpu_grad_norm;
    be->philox_fill_normal = cpu_philox_fill_normal;
    be->dynamic_threshold = cpu_dynamic_threshold;
    be->dpm_update = dc_dpm_update;
    be->x0_roundtrip = dc_x0_roundtrip;
    be->prediction_to_x0 = dc_prediction_to_x0;
    be->clamp_abs = dc_clamp_abs;
    be->ddim_update = dc_ddim_update;
    be->ddpm_update = dc_ddpm_update;
    be->weights_changed = cpu_weights_changed;
    be->set_inference = cpu_set_inference;
    be->destroy = cpu_destroy;
}

int dc_cpu_backend_create(dc_backend **out, int use_dnnl, int threads, dc_error *err)
{
    dc_backend *be = calloc(1, sizeof *be);
    cpu_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory creating the CPU backend");
    }
    be->impl = st;
    fill_common(be);
    if (threads > 0)
        omp_set_num_threads(threads);
    be->threads = omp_get_max_threads();
    if (use_dnnl) {
#ifdef DIFFCR_HAVE_DNNL
        int rc = dc_dnnl_create(&st->dnnl, err);
        if (rc != DC_OK) {
            cpu_destroy(be);
            return rc;
        }
        be->name = "cpu";
        be->conv2d_forward = dnnl_conv_forward;
        be->conv2d_backward = dnnl_conv_backward;
#endif
    }
    if (!st->dnnl) {
        be->name = use_dnnl ? "cpu" : "ref"; /* "cpu" without oneDNN falls back to the reference convs */
        be->conv2d_forward = ref_conv_forward;
        be->conv2d_backward = ref_conv_backward;
    }
    snprintf(be->description, sizeof be->description, "%s (%s convolutions, %d thread%s)", be->name,
             st->dnnl ? "oneDNN" : "reference", be->threads, be->threads == 1 ? "" : "s");
    *out = be;
    return DC_OK;
}
