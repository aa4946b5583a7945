/* A stand-in for libdiffcr_cuda.so in CI, where there is no GPU: the reference maths behind a
 * "cuda" device whose memory the host cannot touch. Loaded through DIFFCR_CUDA_MODULE, it makes the
 * programs take every device-memory branch above the op table (dc_model's device buffers and
 * device-side sampler, the trainer's device optimiser state with pull/sync, diffcr-net's staging,
 * the decloud prefetch, the loader), and it turns any host access to device memory into a crash:
 * "device" pointers are host pointers moved by 2^47, outside the canonical x86-64 address range,
 * so dereferencing one faults, as it would on a GPU. Only the entries translate them back before
 * calling the reference code. It checks the plumbing, not CUDA kernels: tests/gpu does that on a
 * real GPU. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/backend.h"
#include "diffcr/philox.h"

#define TAG ((uintptr_t)1 << 47)

static void *tag(void *p) { return p ? (void *)((uintptr_t)p + TAG) : NULL; }
static void *untag_any(const void *p)
{
    if (!p)
        return NULL;
    if ((uintptr_t)p < TAG) { /* a host pointer where device memory belongs: the bug this catches */
        fprintf(stderr, "emulated device: host pointer %p passed as device memory\n", p);
        abort();
    }
    return (void *)((uintptr_t)p - TAG);
}
#define U(p) ((__typeof__(p))untag_any((const void *)(p)))

/* --- memory -------------------------------------------------------------------------------- */

static void *emu_alloc(dc_backend *be, size_t bytes)
{
    (void)be;
    return tag(calloc(1, bytes ? bytes : 4));
}
static void emu_release(dc_backend *be, void *p)
{
    (void)be;
    free(U(p));
}
static void emu_to_device(dc_backend *be, void *dst, const void *src, size_t n)
{
    (void)be;
    if (n)
        memcpy(U(dst), src, n);
}
static void emu_to_host(dc_backend *be, void *dst, const void *src, size_t n)
{
    (void)be;
    if (n)
        memcpy(dst, U(src), n);
}
static void emu_copy(dc_backend *be, void *dst, const void *src, size_t n)
{
    (void)be;
    if (n)
        memmove(U(dst), U(src), n);
}
static void emu_zero(dc_backend *be, void *dst, size_t n)
{
    (void)be;
    if (n)
        memset(U(dst), 0, n);
}
static void *emu_host_alloc(dc_backend *be, size_t bytes)
{
    (void)be;
    return malloc(bytes ? bytes : 4);
}
static void emu_host_release(dc_backend *be, void *p)
{
    (void)be;
    free(p);
}
static void emu_bind(dc_backend *be) { (void)be; }
static int emu_synchronize(dc_backend *be, dc_error *err)
{
    (void)be;
    (void)err;
    return DC_OK;
}
static int emu_set_precision(dc_backend *be, dc_precision p, dc_error *err)
{
    (void)err; /* accepted, computed in fp32: this device checks data flow, not arithmetic */
    be->precision = p;
    return DC_OK;
}
static void emu_weights_changed(dc_backend *be) { (void)be; }
static void emu_set_inference(dc_backend *be, int inference)
{
    (void)be;
    (void)inference;
}
static void emu_destroy(dc_backend *be) { free(be); }

/* --- the reference maths on translated pointers ---------------------------------------------- */

static int emu_conv_fwd(dc_backend *be, float *out, const float *inp, const float *w, const float *b,
                        const dc_conv_desc *d, dc_error *err)
{
    (void)be;
    DC_TRY(dc_conv_desc_check(d, "forward", err));
    conv2d_ref_forward(U(out), U(inp), U(w), U(b), d);
    return DC_OK;
}
static int emu_conv_bwd(dc_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const dc_conv_desc *d, dc_error *err)
{
    (void)be;
    DC_TRY(dc_conv_desc_check(d, "backward", err));
    conv2d_ref_backward(U(dinp), U(dw), U(db), U(dout), U(inp), U(w), d);
    return DC_OK;
}
static void emu_ln_fwd(float *o, float *m, float *r, const float *i, const float *w, const float *b, size_t P, int C)
{
    layernorm2d_forward(U(o), U(m), U(r), U(i), U(w), U(b), P, C);
}
static void emu_ln_bwd(float *di, float *dw, float *db, const float *d, const float *i, const float *m, const float *r,
                       const float *w, size_t P, int C)
{
    layernorm2d_backward(U(di), U(dw), U(db), U(d), U(i), U(m), U(r), U(w), P, C);
}
static void emu_gate_fwd(float *o, const float *i, size_t P, int C) { simplegate_forward(U(o), U(i), P, C); }
static void emu_gate_bwd(float *di, const float *d, const float *i, size_t P, int C)
{
    simplegate_backward(U(di), U(d), U(i), P, C);
}
static void emu_sca_fwd(float *o, float *po, float *s, int *am, const float *x, const float *wa, const float *ba,
                        const float *wm, const float *bm, int N, size_t HW, int C)
{
    sca_forward(U(o), U(po), U(s), U(am), U(x), U(wa), U(ba), U(wm), U(bm), N, HW, C);
}
static void emu_sca_bwd(float *dx, float *dwa, float *dba, float *dwm, float *dbm, const float *d, const float *x,
                        const float *po, const float *s, const int *am, const float *wa, const float *wm, int N,
                        size_t HW, int C)
{
    sca_backward(U(dx), U(dwa), U(dba), U(dwm), U(dbm), U(d), U(x), U(po), U(s), U(am), U(wa), U(wm), N, HW, C);
}
static void emu_res_fwd(float *o, const float *i, const float *x, const float *s, const float *tb, int N, size_t HW,
                        int C)
{
    residual_forward(U(o), U(i), U(x), U(s), U(tb), N, HW, C);
}
static void emu_res_bwd(float *dx, float *ds, float *dtb, const float *d, const float *x, const float *s, int N,
                        size_t HW, int C)
{
    residual_backward(U(dx), U(ds), U(dtb), U(d), U(x), U(s), N, HW, C);
}
static void emu_csa_fwd(float *x, const float *c, int B, int nd, size_t n) { condsum_add_forward(U(x), U(c), B, nd, n); }
static void emu_csa_bwd(float *dc, const float *dx, int B, int nd, size_t n) { condsum_add_backward(U(dc), U(dx), B, nd, n); }
static void emu_cs_fwd(float *o, const float *c, int B, int nd, size_t n) { condsum_forward(U(o), U(c), B, nd, n); }
static void emu_add(float *y, const float *x, size_t n) { add_inplace(U(y), U(x), n); }
static void emu_ps_fwd(float *o, const float *i, int N, int H, int W, int C) { pixelshuffle2_forward(U(o), U(i), N, H, W, C); }
static void emu_ps_bwd(float *di, const float *d, int N, int H, int W, int C) { pixelshuffle2_backward(U(di), U(d), N, H, W, C); }
static void emu_lin_fwd(float *o, const float *i, const float *w, const float *b, int B, int IC, int OC)
{
    linear_forward(U(o), U(i), U(w), U(b), B, IC, OC);
}
static void emu_lin_bwd(float *di, float *dw, float *db, const float *d, const float *i, const float *w, int B, int IC,
                        int OC)
{
    linear_backward(U(di), U(dw), U(db), U(d), U(i), U(w), B, IC, OC);
}
static void emu_silu_fwd(float *o, const float *i, size_t n) { silu_forward(U(o), U(i), n); }
static void emu_silu_bwd(float *di, const float *d, const float *i, size_t n) { silu_backward(U(di), U(d), U(i), n); }
static void emu_gamma(float *o, const float *g, int B, int dim) { gamma_embedding_forward(U(o), U(g), B, dim); }
static void emu_pad(float *o, const float *i, int N, int H, int W, int C, int PH, int PW)
{
    pad_nhwc(U(o), U(i), N, H, W, C, PH, PW);
}
static void emu_crop(float *o, const float *i, int N, int PH, int PW, int C, int H, int W)
{
    crop_nhwc(U(o), U(i), N, PH, PW, C, H, W);
}
static void emu_slice_pad(float *o, const float *i, int N, int H, int W, int Cin, int c0, int Cout, int PH, int PW)
{
    slice_pad_nhwc(U(o), U(i), N, H, W, Cin, c0, Cout, PH, PW);
}
static void emu_scale(float *x, float s, size_t n) { scale_inplace(U(x), s, n); }
static void emu_adam(float *p, float *m, float *v, const float *g, size_t n, const dc_adam_config *c, long long t)
{
    dc_adam_update(U(p), U(m), U(v), U(g), n, c, t);
}
static void emu_ema(float *e, const float *p, size_t n, double d) { dc_ema_update(U(e), U(p), n, d); }
static double emu_norm(dc_backend *be, const float *g, size_t n)
{
    (void)be;
    return dc_grad_norm(U(g), n);
}
static int emu_philox(dc_backend *be, float *o, size_t n, uint64_t seed, uint32_t st, uint32_t tile, uint32_t step,
                      dc_error *err)
{
    (void)be;
    return dc_philox_fill_normal(U(o), n, seed, st, tile, step, err);
}
static void emu_threshold(dc_backend *be, float *x0, int B, size_t n, double ratio, double mx, int f32, float *s_out)
{
    (void)be;
    float *scratch = malloc(n * sizeof *scratch);
    if (!scratch)
        abort();
    dc_dynamic_threshold(U(x0), B, n, ratio, mx, f32, scratch, s_out); /* s_out is host memory */
    free(scratch);
}
static void emu_dpm(float *dst, const float *x, const float *m0, const float *m1, const float *m2,
                    const dc_dpm_coeffs *k, size_t N, int f32)
{
    dc_dpm_update(U(dst), U(x), U(m0), U(m1), U(m2), k, N, f32);
}
static void emu_roundtrip(float *x0, const float *x, float a, float s, size_t N) { dc_x0_roundtrip(U(x0), U(x), a, s, N); }
static void emu_pred(float *x0, dc_target_kind k, const float *p, const float *x, size_t N, double a, double s)
{
    dc_prediction_to_x0(U(x0), k, U(p), U(x), N, a, s);
}
static void emu_clamp(float *x, float m, size_t N) { dc_clamp_abs(U(x), m, N); }
static void emu_ddim(float *x, const float *x0, const float *noise, double sa, double s1a, double sap, double ce,
                     double sg, size_t N)
{
    dc_ddim_update(U(x), U(x0), U(noise), sa, s1a, sap, ce, sg, N);
}
static void emu_ddpm(float *x, const float *x0, const float *noise, double c1, double c2, double sd, size_t N)
{
    dc_ddpm_update(U(x), U(x0), U(noise), c1, c2, sd, N);
}

__attribute__((visibility("default"))) int dc_cuda_module_devices(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    return 1;
}

__attribute__((visibility("default"))) int dc_cuda_module_create(dc_backend **out, int device, int abi, dc_error *err)
{
    (void)device;
    *out = NULL;
    if (abi != DC_BACKEND_ABI)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "emulated device: ABI mismatch");
    dc_backend *be = calloc(1, sizeof *be);
    if (!be)
        return dc_fail(err, DC_ERR_NOMEM, "emulated device: out of memory");
    be->name = "cuda";
    be->is_host = 0;
    be->threads = 1;
    snprintf(be->description, sizeof be->description, "cuda:0 emulated (reference maths, tests only)");
    be->alloc = emu_alloc, be->release = emu_release, be->to_device = emu_to_device, be->to_host = emu_to_host;
    be->copy = emu_copy, be->zero = emu_zero, be->host_alloc = emu_host_alloc, be->host_release = emu_host_release;
    be->bind = emu_bind, be->synchronize = emu_synchronize, be->set_precision = emu_set_precision;
    be->conv2d_forward = emu_conv_fwd, be->conv2d_backward = emu_conv_bwd;
    be->layernorm2d_forward = emu_ln_fwd, be->layernorm2d_backward = emu_ln_bwd;
    be->simplegate_forward = emu_gate_fwd, be->simplegate_backward = emu_gate_bwd;
    be->sca_forward = emu_sca_fwd, be->sca_backward = emu_sca_bwd;
    be->residual_forward = emu_res_fwd, be->residual_backward = emu_res_bwd;
    be->condsum_add_forward = emu_csa_fwd, be->condsum_add_backward = emu_csa_bwd, be->condsum_forward = emu_cs_fwd;
    be->add_inplace = emu_add, be->pixelshuffle2_forward = emu_ps_fwd, be->pixelshuffle2_backward = emu_ps_bwd;
    be->linear_forward = emu_lin_fwd, be->linear_backward = emu_lin_bwd;
    be->silu_forward = emu_silu_fwd, be->silu_backward = emu_silu_bwd, be->gamma_embedding_forward = emu_gamma;
    be->pad_nhwc = emu_pad, be->crop_nhwc = emu_crop, be->slice_pad_nhwc = emu_slice_pad, be->scale_inplace = emu_scale;
    be->adam_update = emu_adam, be->ema_update = emu_ema, be->grad_norm = emu_norm;
    be->philox_fill_normal = emu_philox, be->dynamic_threshold = emu_threshold;
    be->dpm_update = emu_dpm, be->x0_roundtrip = emu_roundtrip, be->prediction_to_x0 = emu_pred;
    be->clamp_abs = emu_clamp, be->ddim_update = emu_ddim, be->ddpm_update = emu_ddpm;
    be->weights_changed = emu_weights_changed, be->set_inference = emu_set_inference, be->destroy = emu_destroy;
    *out = be;
    return DC_OK;
}
