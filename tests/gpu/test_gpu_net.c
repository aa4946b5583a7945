/* diffcr GPU tests — the whole DiffCR network, a training step and a full sampling run on the
 * device under test against "ref".
 *
 *   test_gpu_net [--quick] [--probe]
 *
 * Networks: width 16 with DiffCR's 4 levels [1,1,1,1], and width 32 with 2 levels [1,2]/[2,1];
 * batch 2 at 40x56 (not a multiple of 16: the padding and cropping paths run). Parameters are
 * DiffCR's init perturbed so that no block is an identity (DiffCR starts with beta = gamma = 0,
 * which would hide most of every NAFBlock). The sampler run uses the shipped width-16 model.
 *
 * Tolerances (tests/gpu/README.md):
 *   forward, cached forward      scaled error <= 1e-4 (as the ops; ~40 layers of fp32 rounding in
 *                                another summation order stay near 1e-6)
 *   parameter gradients          per tensor, max abs error / max(max|ref grad|, 1e-3 * max over
 *                                all tensors) <= 1e-3 (backward chains ~100 reductions)
 *   training step                Adam's update is Lipschitz in the gradient with constant
 *                                lr / eps, so params may differ by lr * max|dgrad| / eps (with the
 *                                measured gradient difference) + 1e-6; eps = 1e-3 keeps this tight
 *   sampler (21 calls)           abs 1e-3 on outputs in [-1, 1] (see SAMPLE_TOL)
 *   samplers on device memory    abs 1e-4 (a stand-in model made of table ops: rounding only)
 *   TF32 / FP16 forward          relative to max|ref| <= 5e-2 (README: ~30 convolutions in series,
 *                                each ~1e-3 relative)
 *   TF32 / FP16 backward         relative L2 error of all parameter gradients <= 1e-2, at a
 *                                training-sized output gradient (~1e-6 a value: fp16 needs
 *                                dc_unet_backward's loss scaling)
 * Exit: 0 all passed, 1 a check failed, 77 no CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diffcr/backend.h"
#include "diffcr/model.h"
#include "diffcr/ops.h"
#include "diffcr/optim.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "diffcr/unet.h"
#include "gpu_check.h"

#ifndef DIFFCR_SOURCE_DIR
#define DIFFCR_SOURCE_DIR "."
#endif

#define TOL_NET 1e-4
#define TOL_GRAD 1e-3
#define TOL_LOWP 5e-2
#define TOL_LOWP_GRAD 1e-2
/* bf16 keeps 7 mantissa bits to tf32/fp16's 10 (8x the rounding): simulated 5.1e-3..5.8e-3 */
#define TOL_LOWP_GRAD_BF16 2e-2
/* Sampler: a DPM-Solver++ step is a fixed linear combination of x_t and the x0 predictions, and
 * dynamic thresholding (a quantile, then clamp and divide by s >= 1) is 1-Lipschitz in each, so a
 * per-call network difference stays of its own order through the 21 calls instead of compounding.
 * Measured between "ref" and "cpu" (oneDNN: another summation order, as cuDNN's) on this model
 * and tile: 2e-6 for a per-call forward difference ~1e-6. 1e-3 allows a cuDNN algorithm 100x less
 * accurate than oneDNN's (Winograd/FFT pick by cudnnFind) and is still a quarter of one 8-bit grey
 * level (1/255 of the [-1, 1] range is 7.8e-3). */
#define SAMPLE_TOL 1e-3

static int quick;

typedef struct net_case {
    const char *label;
    dc_unet_config cfg;
    int B, H, W;
} net_case;

/* One network per side plus its input/output buffers in that backend's memory. */
typedef struct side {
    dc_unet *net;
    float *cond, *x, *x2, *out, *dout;
} side;

typedef struct fixture {
    net_case c;
    side sd[2];
    size_t ncond, nx; /* floats */
    float *h_cond, *h_x, *h_x2, *h_target;
    float tin[8], tin2[8];
    float *h_params;
    const dc_param_table *tab;
} fixture;

static dc_unet_config make_config(int width, int levels, const int *enc, const int *dec)
{
    dc_unet_config c;
    memset(&c, 0, sizeof c);
    c.img_channel = 3;
    c.width = width;
    c.n_levels = levels;
    for (int i = 0; i < levels; i++)
        c.enc_blk_nums[i] = enc[i], c.dec_blk_nums[i] = dec[i];
    c.middle_blk_num = 1;
    c.ndates = 3;
    return c;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* DiffCR's init, then: beta, gamma and biases uniform in +-0.1 (they start at 0), LayerNorm
 * weights 1 +- 0.1, and every other weight scaled by 1 +- 0.1, so every branch contributes.
 * Conv and Linear weights are also halved: DiffCR's kaiming init (ReLU gain sqrt 2 on every conv),
 * stacked through the levels and the condition sums, gives outputs ~1e3 once the blocks are live;
 * at half scale activations, outputs and gradients stay O(1..100), so absolute tolerances and the
 * Adam step bound below mean what they say. */
static float *random_params(const dc_param_table *tab, uint64_t seed)
{
    float *p = gc_xmalloc(tab->total * sizeof *p);
    dc_unet_init_params(p, tab, seed);
    float *u = gc_xmalloc(tab->total * sizeof *u);
    gc_fill_host(u, tab->total, seed + 1, -0.1f, 0.1f);
    const float wscale = 0.5f;
    for (int i = 0; i < tab->count; i++) {
        const dc_param_view *v = &tab->views[i];
        float *pv = p + v->offset, *uv = u + v->offset;
        int additive = ends_with(v->name, ".beta") || ends_with(v->name, ".gamma") || ends_with(v->name, ".bias");
        int scaled = v->ndim >= 2 && ends_with(v->name, ".weight");
        for (size_t k = 0; k < v->numel; k++)
            pv[k] = additive ? pv[k] + uv[k] : pv[k] * (1.0f + uv[k]) * (scaled ? wscale : 1.0f);
    }
    free(u);
    return p;
}

static float *upload(int s, const float *host, size_t n)
{
    dc_backend *be = gc.be[s];
    float *d = dc_alloc_floats(be, n);
    if (!d) {
        printf("FAIL  %s: alloc of %zu floats\n", be->name, n);
        exit(1);
    }
    if (host)
        be->to_device(be, d, host, n * sizeof(float));
    return d;
}

/* Side s's n floats at dev, on the host (caller frees); NULL after a failed synchronize. */
static float *download(int s, const float *dev, size_t n, const char *what)
{
    float *h = gc_xmalloc(n * sizeof *h);
    gc.be[s]->to_host(gc.be[s], h, dev, n * sizeof *h);
    if (!gc_sync(s, what)) {
        free(h);
        return NULL;
    }
    return h;
}

static int rc_ok(int rc, int s, const char *what, const dc_error *err)
{
    if (rc != DC_OK)
        gc_check(0, "%s on %s: %s", what, gc.be[s]->name, err->msg);
    return rc == DC_OK;
}

static void fixture_open(fixture *f, const net_case *c, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->c = *c;
    size_t P = (size_t)c->B * c->H * c->W;
    f->ncond = P * (size_t)(c->cfg.ndates * c->cfg.img_channel);
    f->nx = P * (size_t)c->cfg.img_channel;
    f->h_cond = gc_xmalloc(f->ncond * sizeof(float));
    f->h_x = gc_xmalloc(f->nx * sizeof(float));
    f->h_x2 = gc_xmalloc(f->nx * sizeof(float));
    f->h_target = gc_xmalloc(f->nx * sizeof(float));
    gc_fill_host(f->h_cond, f->ncond, seed + 1, -1, 1);
    gc_fill_host(f->h_x, f->nx, seed + 2, -1, 1);
    gc_fill_host(f->h_x2, f->nx, seed + 3, -1, 1);
    gc_fill_host(f->h_target, f->nx, seed + 4, -1, 1);
    for (int b = 0; b < c->B && b < 8; b++) {
        f->tin[b] = b % 2 ? 0.37f : 640.5f; /* a gamma and a DPM-style time input */
        f->tin2[b] = b % 2 ? 0.91f : 12.25f;
    }
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        if (dc_unet_create(&f->sd[s].net, &c->cfg, gc.be[s], &err) != DC_OK) {
            printf("FAIL  %s: dc_unet_create on %s: %s\n", c->label, gc.be[s]->name, err.msg);
            exit(1);
        }
        if (s == 0) {
            f->tab = dc_unet_params_table(f->sd[0].net);
            f->h_params = random_params(f->tab, seed);
        }
        if (dc_unet_set_params(f->sd[s].net, f->h_params, &err) != DC_OK) {
            printf("FAIL  %s: set_params on %s: %s\n", c->label, gc.be[s]->name, err.msg);
            exit(1);
        }
        side *sd = &f->sd[s];
        sd->cond = upload(s, f->h_cond, f->ncond);
        sd->x = upload(s, f->h_x, f->nx);
        sd->x2 = upload(s, f->h_x2, f->nx);
        sd->out = upload(s, NULL, f->nx);
        sd->dout = upload(s, NULL, f->nx);
    }
    gc_info("%s: width %d, %d levels, B=%d %dx%d, %zu parameters", c->label, c->cfg.width, c->cfg.n_levels, c->B,
            c->H, c->W, f->tab->total);
}

static void fixture_close(fixture *f)
{
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        side *sd = &f->sd[s];
        float *bufs[] = {sd->cond, sd->x, sd->x2, sd->out, sd->dout};
        for (int i = 0; i < 5; i++)
            be->release(be, bufs[i]);
        dc_unet_destroy(sd->net);
    }
    free(f->h_cond), free(f->h_x), free(f->h_x2), free(f->h_target), free(f->h_params);
}

/* Both sides' out buffers, compared (scaled error <= tol). Returns the reference copy if keep. */
static float *compare_out(fixture *f, const char *what, double tol, int keep)
{
    float *r = download(0, f->sd[0].out, f->nx, what), *g = download(1, f->sd[1].out, f->nx, what);
    if (r && g)
        gc_cmp_host(what, g, r, f->nx, tol);
    free(g);
    if (!keep) {
        free(r);
        return NULL;
    }
    return r;
}

static char *label(const fixture *f, const char *what)
{
    static char buf[200];
    snprintf(buf, sizeof buf, "%s %s", f->c.label, what);
    return buf;
}

/* --- inference ---------------------------------------------------------------------------------- */

/* Returns the reference forward output (host) for the precision checks. */
static float *check_forward(fixture *f)
{
    const net_case *c = &f->c;
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        rc_ok(dc_unet_forward(f->sd[s].net, f->sd[s].out, f->sd[s].cond, f->sd[s].x, f->tin, c->B, c->H, c->W, &err), s,
              "forward", &err);
    }
    float *ref = compare_out(f, label(f, "forward"), TOL_NET, 1);
    /* Information only: is a repeated forward bit-identical on the device? */
    float *first = download(1, f->sd[1].out, f->nx, "forward");
    dc_error err;
    dc_unet_forward(f->sd[1].net, f->sd[1].out, f->sd[1].cond, f->sd[1].x, f->tin, c->B, c->H, c->W, &err);
    float *again = download(1, f->sd[1].out, f->nx, "forward again");
    if (first && again)
        gc_info("%s: repeated forward on %s is %s", c->label, gc.be[1]->name,
                memcmp(first, again, f->nx * sizeof(float)) ? "NOT bit-identical" : "bit-identical");
    free(first);
    free(again);
    return ref;
}

/* One condition, then several main-branch calls with other x_t and time inputs. */
static void check_cached(fixture *f)
{
    const net_case *c = &f->c;
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        rc_ok(dc_unet_set_condition(f->sd[s].net, f->sd[s].cond, c->B, c->H, c->W, &err), s, "set_condition", &err);
        rc_ok(dc_unet_forward_cached(f->sd[s].net, f->sd[s].out, f->sd[s].x2, f->tin2, &err), s, "forward_cached", &err);
    }
    compare_out(f, label(f, "forward_cached (x2, t2)"), TOL_NET, 0);
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        rc_ok(dc_unet_forward_cached(f->sd[s].net, f->sd[s].out, f->sd[s].x, f->tin, &err), s, "forward_cached", &err);
    }
    compare_out(f, label(f, "forward_cached (x, t)"), TOL_NET, 0);
}

/* TF32, FP16 and BF16 forward on the device against the fp32 reference output. */
static void check_precisions(fixture *f, const float *ref)
{
    const net_case *c = &f->c;
    dc_backend *dut = gc.be[1];
    const dc_precision ps[3] = {DC_PRECISION_TF32, DC_PRECISION_FP16, DC_PRECISION_BF16};
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "forward %s", dc_precision_name(ps[i]));
        dc_error err;
        dc_error_clear(&err);
        if (dut->set_precision(dut, ps[i], &err) != DC_OK) {
            gc_info("%s: %s not measured: %s", c->label, what, err.msg);
            continue;
        }
        if (rc_ok(dc_unet_forward(f->sd[1].net, f->sd[1].out, f->sd[1].cond, f->sd[1].x, f->tin, c->B, c->H, c->W, &err),
                  1, what, &err)) {
            float *g = download(1, f->sd[1].out, f->nx, what);
            if (g)
                gc_cmp_host_rel(label(f, what), g, ref, f->nx, TOL_LOWP, NULL);
            free(g);
        }
    }
    dut->set_precision(dut, DC_PRECISION_FP32, NULL);
}

/* --- training ----------------------------------------------------------------------------------- */

/* Every parameter gradient, per tensor, relative to that tensor's scale; prints the worst tensor. */
static double compare_grads(fixture *f, const char *what, double tol, float **ref_out, float **dut_out)
{
    size_t n = f->tab->total;
    float *r = download(0, dc_unet_grads(f->sd[0].net), n, what);
    float *g = download(1, dc_unet_grads(f->sd[1].net), n, what);
    if (!r || !g) {
        free(r), free(g);
        return INFINITY;
    }
    gc_diff all = gc_diff_floats(g, r, n);
    double floor = 1e-3 * all.max_ref, worst = 0;
    int worst_i = -1, over = 0;
    for (int i = 0; i < f->tab->count; i++) {
        const dc_param_view *v = &f->tab->views[i];
        gc_diff d = gc_diff_floats(g + v->offset, r + v->offset, v->numel);
        double scale = d.max_ref > floor ? d.max_ref : floor;
        double e = scale > 0 ? d.max_abs / scale : d.max_abs;
        if (e > 1e-4)
            over++;
        if (e > worst || worst_i < 0) {
            worst = e;
            worst_i = i;
        }
    }
    gc_check(worst <= tol, "%s: %d tensors, worst %s rel err %.3g (max|grad| over all %.3g, %d tensors above 1e-4) tol %.0e",
             what, f->tab->count, f->tab->views[worst_i].name, worst, all.max_ref, over, tol);
    if (ref_out && dut_out) {
        *ref_out = r;
        *dut_out = g;
    } else {
        free(r), free(g);
    }
    return worst;
}

/* Side s: a training forward, then backward from the host output gradient dout (f->nx values). */
/* Device and pinned allocations made while fn(arg) runs, as logged by cudasim
 * (DIFFCR_CUDASIM_ALLOC_LOG); -1 when the device under test is not the simulator. The first
 * logged line goes to `first` (e.g. "cudaMalloc 4096"). */
static int count_allocations(void (*fn)(void *), void *arg, char *first, size_t cap)
{
    first[0] = '\0';
    if (!gc_dut_is_cudasim()) {
        fn(arg);
        return -1;
    }
    char log[64];
    snprintf(log, sizeof log, "/tmp/diffcr_alloc_%ld.log", (long)getpid());
    unlink(log);
    setenv("DIFFCR_CUDASIM_ALLOC_LOG", log, 1);
    fn(arg);
    unsetenv("DIFFCR_CUDASIM_ALLOC_LOG");
    int lines = 0, ch;
    FILE *f = fopen(log, "r");
    if (f) {
        if (!fgets(first, (int)cap, f))
            first[0] = '\0';
        first[strcspn(first, "\n")] = '\0';
        rewind(f);
        while ((ch = fgetc(f)) != EOF)
            lines += ch == '\n';
        fclose(f);
    }
    unlink(log);
    return lines;
}

static void train_pass(fixture *f, int s, const float *dout)
{
    const net_case *c = &f->c;
    dc_error err;
    dc_error_clear(&err);
    rc_ok(dc_unet_forward_train(f->sd[s].net, f->sd[s].out, f->sd[s].cond, f->sd[s].x, f->tin, c->B, c->H, c->W, &err),
          s, "forward_train", &err);
    gc.be[s]->to_device(gc.be[s], f->sd[s].dout, dout, f->nx * sizeof *dout);
    rc_ok(dc_unet_backward(f->sd[s].net, f->sd[s].dout, &err), s, "backward", &err);
}

typedef struct pass_args {
    fixture *f;
    const float *dout;
} pass_args;

static void device_train_pass(void *arg)
{
    pass_args *a = arg;
    train_pass(a->f, 1, a->dout);
}

static void check_backward(fixture *f)
{
    const net_case *c = &f->c;
    float *dout = gc_xmalloc(f->nx * sizeof *dout);
    gc_fill_host(dout, f->nx, 77, -1, 1);
    train_pass(f, 0, dout);
    /* a repeated training pass of one shape allocates nothing (the first sets plans and buffers) */
    pass_args pa = {f, dout};
    device_train_pass(&pa);
    char first[128];
    int n = count_allocations(device_train_pass, &pa, first, sizeof first);
    if (n >= 0)
        gc_check(n == 0, "%s: a second forward_train + backward allocates no GPU memory: %d allocations%s%s", c->label,
                 n, n ? ", first: " : "", first);
    free(dout);
    compare_out(f, label(f, "forward_train"), TOL_NET, 0);
    float *r = NULL, *g1 = NULL;
    compare_grads(f, label(f, "backward: parameter gradients"), TOL_GRAD, &r, &g1);
    /* Information only: a repeated backward (cuDNN's weight gradients may use atomics) */
    dc_error err;
    if (g1 && dc_unet_backward(f->sd[1].net, f->sd[1].dout, &err) == DC_OK) {
        float *g2 = download(1, dc_unet_grads(f->sd[1].net), f->tab->total, "backward again");
        if (g2)
            gc_info("%s: repeated backward on %s is %s", c->label, gc.be[1]->name,
                    memcmp(g1, g2, f->tab->total * sizeof(float)) ? "NOT bit-identical" : "bit-identical");
        free(g2);
    }
    free(r), free(g1);
}

/* TF32 / FP16 training: forward_train + backward on the device at reduced precision against the
 * fp32 reference, with an output gradient of the size diffcr-train feeds in: d MSE / d out =
 * 2 (out - target) / N with N = B * 3 * 256 * 256 values, about 1e-6 per value at batch 8. Below
 * fp16's normal range (6.1e-5): without loss scaling those gradients are subnormal or zero. */
#define TRAIN_DOUT_SCALE (2.0 / (8.0 * 3 * 256 * 256))
static void check_backward_precisions(fixture *f)
{
    const net_case *c = &f->c;
    dc_backend *dut = gc.be[1];
    float *dout = gc_xmalloc(f->nx * sizeof *dout);
    gc_fill_host(dout, f->nx, 78, -1, 1);
    for (size_t i = 0; i < f->nx; i++)
        dout[i] = (float)(dout[i] * TRAIN_DOUT_SCALE);
    train_pass(f, 0, dout); /* the fp32 reference gradients, compared with each device pass */
    const dc_precision ps[4] = {DC_PRECISION_FP32, DC_PRECISION_TF32, DC_PRECISION_FP16, DC_PRECISION_BF16};
    for (int i = 0; i < 4; i++) {
        dc_error err;
        dc_error_clear(&err);
        char what[96];
        snprintf(what, sizeof what, "backward %s, training-sized dout", dc_precision_name(ps[i]));
        if (dut->set_precision(dut, ps[i], &err) != DC_OK) {
            gc_info("%s: %s not measured: %s", c->label, what, err.msg);
            continue;
        }
        train_pass(f, 1, dout);
        if (ps[i] == DC_PRECISION_FP32) {
            compare_grads(f, label(f, what), TOL_GRAD, NULL, NULL);
            continue;
        }
        /* 10-bit mantissas through ~100 layers leave a few tiny tensors 10-15% off; what training
         * needs is the gradient as a whole: relative L2 error <= 1e-2. Measured on the simulator:
         * 7e-4 for tf32 and for fp16 with loss scaling; fp16 without it 0.11-0.13. */
        size_t n = f->tab->total;
        float *r = download(0, dc_unet_grads(f->sd[0].net), n, what);
        float *g = download(1, dc_unet_grads(f->sd[1].net), n, what);
        if (r && g) {
            double d2 = 0, r2 = 0;
            for (size_t k = 0; k < n; k++)
                d2 += ((double)g[k] - r[k]) * ((double)g[k] - r[k]), r2 += (double)r[k] * r[k];
            double rel = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
            const double tol = ps[i] == DC_PRECISION_BF16 ? TOL_LOWP_GRAD_BF16 : TOL_LOWP_GRAD;
            gc_check(rel <= tol, "%s: relative L2 error of all %zu gradients %.3g tol %.0e", label(f, what), n, rel,
                     tol);
        }
        free(r), free(g);
    }
    dut->set_precision(dut, DC_PRECISION_FP32, NULL);
    free(dout);
}

typedef struct train_state {
    float *m, *v, *ema;
    double norm;
} train_state;

/* forward_train, MSE on the host, backward, grad norm; returns the norm (or NAN). */
static double train_forward_backward(fixture *f, int s)
{
    const net_case *c = &f->c;
    dc_backend *be = gc.be[s];
    side *sd = &f->sd[s];
    dc_error err;
    dc_error_clear(&err);
    if (!rc_ok(dc_unet_forward_train(sd->net, sd->out, sd->cond, sd->x, f->tin, c->B, c->H, c->W, &err), s,
               "train step forward", &err))
        return NAN;
    float *out = download(s, sd->out, f->nx, "train step output");
    if (!out)
        return NAN;
    float *dout = gc_xmalloc(f->nx * sizeof *dout);
    mse_backward(dout, out, f->h_target, f->nx, 1.0f);
    be->to_device(be, sd->dout, dout, f->nx * sizeof *dout);
    free(out), free(dout);
    if (!rc_ok(dc_unet_backward(sd->net, sd->dout, &err), s, "train step backward", &err))
        return NAN;
    double norm = be->grad_norm(be, dc_unet_grads(sd->net), f->tab->total);
    gc_sync(s, "grad_norm");
    return norm;
}

/* One DiffCR-style step on both sides: gradients clipped to half their norm (so clipping acts),
 * AdamW, EMA; then the updated parameters, the EMA and a forward with the new weights must agree. */
static void check_train_step(fixture *f, const float *fwd_ref_before)
{
    const net_case *c = &f->c;
    size_t n = f->tab->total;
    dc_adam_config adam;
    dc_adam_config_default(&adam);
    adam.lr = 1e-3, adam.eps = 1e-3, adam.weight_decay = 0.01, adam.decoupled = 1;
    const double ema_decay = 0.999;
    train_state ts[2];
    double norm[2];
    for (int s = 0; s < 2; s++)
        norm[s] = train_forward_backward(f, s);
    double max_norm = 0.5 * norm[0];
    gc_check(fabs(norm[1] - norm[0]) <= 1e-4 * norm[0], "%s: grad_norm %.8g vs ref %.8g (rel tol 1e-4)",
             label(f, "train step"), norm[1], norm[0]);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        float *params = dc_unet_params(f->sd[s].net), *grads = dc_unet_grads(f->sd[s].net);
        /* torch.nn.utils.clip_grad_norm_'s coefficient, each side from its own norm */
        be->scale_inplace(grads, (float)(max_norm / (norm[s] + 1e-6)), n);
        ts[s].m = upload(s, NULL, n), ts[s].v = upload(s, NULL, n), ts[s].ema = upload(s, NULL, n);
        be->copy(be, ts[s].ema, params, n * sizeof(float));
    }
    float *gr = download(0, dc_unet_grads(f->sd[0].net), n, "clipped grads");
    float *gd = download(1, dc_unet_grads(f->sd[1].net), n, "clipped grads");
    double dgrad = (gr && gd) ? gc_diff_floats(gd, gr, n).max_abs : INFINITY;
    free(gr), free(gd);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        float *params = dc_unet_params(f->sd[s].net), *grads = dc_unet_grads(f->sd[s].net);
        be->adam_update(params, ts[s].m, ts[s].v, grads, n, &adam, 1);
        be->weights_changed(be);
        be->ema_update(ts[s].ema, params, n, ema_decay);
    }
    double tol_p = 1e-6 + 1.01 * adam.lr * dgrad / adam.eps, tol_e = 1e-6 + (1 - ema_decay) * tol_p;
    gc_info("%s: clipped-gradient max difference %.3g -> parameter tolerance %.3g (lr %g / eps %g)",
            label(f, "train step"), dgrad, tol_p, adam.lr, adam.eps);
    float *pr = download(0, dc_unet_params(f->sd[0].net), n, "params");
    float *pd = download(1, dc_unet_params(f->sd[1].net), n, "params");
    if (pr && pd)
        gc_cmp_host(label(f, "train step: params after clip + AdamW"), pd, pr, n, tol_p);
    free(pr), free(pd);
    float *er = download(0, ts[0].ema, n, "ema"), *ed = download(1, ts[1].ema, n, "ema");
    if (er && ed)
        gc_cmp_host(label(f, "train step: EMA"), ed, er, n, tol_e);
    free(er), free(ed);
    for (int s = 0; s < 2; s++) {
        gc.be[s]->release(gc.be[s], ts[s].m), gc.be[s]->release(gc.be[s], ts[s].v);
        gc.be[s]->release(gc.be[s], ts[s].ema);
    }
    /* The new weights are used (weights_changed drops any cached re-laid-out weights). */
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        rc_ok(dc_unet_forward(f->sd[s].net, f->sd[s].out, f->sd[s].cond, f->sd[s].x, f->tin, c->B, c->H, c->W, &err), s,
              "forward after step", &err);
    }
    float *after = compare_out(f, label(f, "forward after the step"), TOL_NET, 1);
    if (after && fwd_ref_before) {
        gc_diff moved = gc_diff_floats(after, fwd_ref_before, f->nx);
        gc_info("%s: the step moved the reference output by %.3g (the check above is meaningful when >> %.0e)",
                c->label, moved.max_abs, TOL_NET);
    }
    free(after);
}

/* --- sampler ------------------------------------------------------------------------------------ */

static const char *source_dir(void)
{
    const char *d = getenv("DIFFCR_SOURCE_DIR");
    return d && *d ? d : DIFFCR_SOURCE_DIR;
}

/* Smooth image-like condition in [-1, 1] (three dates of RGB), so thresholding acts as on data. */
static void make_condition(float *cond, int B, int H, int W)
{
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 9; c++) {
                    double v = 0.6 * sin(0.11 * x * (1 + c % 3) + 0.07 * y + b + c) + 0.3 * cos(0.05 * (x + 2 * y) - c);
                    cond[(((size_t)b * H + y) * W + x) * 9 + c] = (float)v;
                }
}

/* Sample on one device; returns the output (host) or NULL. */
static float *sample_on(const char *device, dc_precision prec, const float *cond, int B, int H, int W, int *calls)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/samples/model/diffcr_default.safetensors", source_dir());
    dc_model_options o;
    dc_model_options_default(&o);
    o.device = device;
    o.precision = prec;
    dc_model *m;
    dc_error err;
    dc_error_clear(&err);
    if (dc_model_open(&m, path, &o, &err) != DC_OK) {
        gc_check(0, "dc_model_open(%s, %s, %s): %s", path, device, dc_precision_name(prec), err.msg);
        return NULL;
    }
    float *out = gc_xmalloc((size_t)B * H * W * 3 * sizeof *out);
    dc_sampler_stats st = {0, 0};
    int rc = dc_model_sample(m, out, cond, B, H, W, NULL, 20240601, 0, NULL, NULL, &st, &err);
    dc_model_close(m);
    if (rc != DC_OK) {
        gc_check(0, "dc_model_sample on %s (%s): %s", device, dc_precision_name(prec), err.msg);
        free(out);
        return NULL;
    }
    *calls = st.model_calls;
    return out;
}

/* Memory flow (issue 7): once a tile shape has been sampled, sampling it again allocates no
 * device or pinned memory at all: plans, workspaces, weight copies, the sampler's state and the
 * staging buffers are all kept. Observable on the simulator only (DIFFCR_CUDASIM_ALLOC_LOG logs
 * its cudaMalloc / cudaMallocHost calls); on a real GPU this says so and checks nothing. */
typedef struct sample_args {
    dc_model *m;
    float *out;
    const float *cond;
    int B, H, W, calls, rc;
    dc_error err;
} sample_args;

static void sample_again(void *arg)
{
    sample_args *a = arg;
    dc_sampler_stats st = {0, 0};
    a->rc = dc_model_sample(a->m, a->out, a->cond, a->B, a->H, a->W, NULL, 2, 0, NULL, NULL, &st, &a->err);
    a->calls = st.model_calls;
}

static void check_sampling_allocates_nothing(void)
{
    if (!gc_dut_is_cudasim()) {
        gc_info("allocation-free sampling: observable on cudasim only, not checked on %s", gc.be[1]->description);
        return;
    }
    sample_args a = {.B = 1, .H = 32, .W = 48};
    char path[4096];
    snprintf(path, sizeof path, "%s/samples/model/diffcr_default.safetensors", source_dir());
    dc_model_options o;
    dc_model_options_default(&o);
    o.device = gc.device;
    dc_error_clear(&a.err);
    if (!gc_check(dc_model_open(&a.m, path, &o, &a.err) == DC_OK, "allocation check: model opens: %s", a.err.msg))
        return;
    float *cond = gc_xmalloc((size_t)a.B * a.H * a.W * 9 * sizeof *cond);
    a.out = gc_xmalloc((size_t)a.B * a.H * a.W * 3 * sizeof *a.out);
    make_condition(cond, a.B, a.H, a.W);
    a.cond = cond;
    sample_again(&a); /* the first sample of the shape sets everything up */
    if (gc_check(a.rc == DC_OK, "allocation check: first sample: %s", a.err.msg)) {
        char first[128];
        int n = count_allocations(sample_again, &a, first, sizeof first);
        gc_check(a.rc == DC_OK && n == 0,
                 "a second %dx%d sample (%d network calls) allocates no GPU or pinned memory: %d allocations%s%s", a.H,
                 a.W, a.calls, n, n ? ", first: " : "", first);
    }
    dc_model_close(a.m);
    free(cond), free(a.out);
}

static void check_sampler(void)
{
    const int B = 2, H = 64, W = 64;
    size_t n = (size_t)B * H * W * 3;
    float *cond = gc_xmalloc(n * 3 * sizeof *cond);
    make_condition(cond, B, H, W);
    int calls_r = 0, calls_d = 0;
    float *r = sample_on("ref", DC_PRECISION_FP32, cond, B, H, W, &calls_r);
    float *d = sample_on(gc.device, DC_PRECISION_FP32, cond, B, H, W, &calls_d);
    if (r && d) {
        gc_check(calls_r == 21 && calls_d == 21, "sampler: %d / %d network calls (DiffCR: 21)", calls_d, calls_r);
        gc_diff df = gc_diff_floats(d, r, n);
        double mean = 0;
        for (size_t i = 0; i < n; i++)
            mean += fabs((double)d[i] - r[i]);
        mean /= (double)n;
        gc_check(df.max_abs <= SAMPLE_TOL,
                 "sampler: DiffCR sample B=%d %dx%d, 21 calls, seed 20240601: max abs err %.3g (mean %.3g, max|ref| %.3g) tol %.0e",
                 B, H, W, df.max_abs, mean, df.max_ref, SAMPLE_TOL);
    }
    /* TF32 / FP16 sampling: reported, not asserted (is reduced precision good enough to decloud?) */
    const dc_precision ps[3] = {DC_PRECISION_TF32, DC_PRECISION_FP16, DC_PRECISION_BF16};
    for (int i = 0; r && !quick && gc_is_cuda(gc.device) && i < 3; i++) {
        int calls = 0;
        float *lp = sample_on(gc.device, ps[i], cond, B, H, W, &calls);
        if (lp) {
            gc_diff df = gc_diff_floats(lp, r, n);
            gc_info("sampler %s: max abs diff to fp32 ref %.3g", dc_precision_name(ps[i]), df.max_abs);
        }
        free(lp);
    }
    free(cond), free(r), free(d);
}

/* The samplers with their vectors on the device (dc_sampler_options.backend): DiffCR's DPM-Solver++
 * (dynamic thresholding, the x0 round trip), DDIM with eta > 0 and DDPM (Philox noise drawn on
 * the device, clipping), with a stand-in model x0 = 1.6 silu(x) made of table ops (cheap, not
 * saturating everything, and |x0| > 1 so the thresholding acts), against the same runs on "ref".
 * Rounding only: abs 1e-4. */
typedef struct toy_model {
    dc_backend *be;
    size_t n;
} toy_model;

static int toy_x0(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    toy_model *m = user;
    (void)tin, (void)err;
    m->be->silu_forward(x0, x, (size_t)B * m->n);
    m->be->scale_inplace(x0, 1.6f, (size_t)B * m->n);
    return DC_OK;
}

static void check_device_sampler(void)
{
    const int B = 2;
    const size_t n = (size_t)3 * 40 * 56;
    double betas[1000];
    dc_noise_schedule ns;
    dc_error err;
    dc_error_clear(&err);
    if (dc_make_beta_schedule(betas, DC_BETA_SIGMOID, 1000, 1e-4, 0.09, 8e-3, &err) != DC_OK ||
        dc_noise_schedule_init(&ns, betas, 1000, DC_NS_FLOAT32, &err) != DC_OK) {
        gc_check(0, "device sampler: schedule: %s", err.msg);
        return;
    }
    for (int v = 0; v < 3; v++) {
        dc_sampler_options so = dc_sampler_options_default();
        so.seed = 77, so.tile_id = 5;
        const char *what = "DPM-Solver++ (DiffCR)";
        if (v == 1) {
            so.kind = DC_SAMPLER_DDIM, so.steps = 10, so.eta = 0.5, so.x0_correction = DC_X0_CLIP;
            what = "DDIM eta 0.5, clip";
        } else if (v == 2) {
            so.kind = DC_SAMPLER_DDPM, so.steps = 10;
            what = "DDPM 10 steps, dynamic";
        }
        float *res[2] = {NULL, NULL};
        for (int s = 0; s < 2; s++) {
            dc_backend *be = gc.be[s];
            so.backend = be;
            toy_model m = {be, n};
            float *out = upload(s, NULL, (size_t)B * n);
            dc_sampler_stats st = {0, 0};
            dc_error_clear(&err);
            if (rc_ok(dc_sampler_run(&ns, &so, toy_x0, &m, NULL, out, B, n, NULL, 0, &st, &err), s, what, &err))
                res[s] = download(s, out, (size_t)B * n, what);
            be->release(be, out);
        }
        if (res[0] && res[1]) {
            char t[128];
            snprintf(t, sizeof t, "sampler on the device: %s, B=%d n=%zu", what, B, n);
            gc_cmp_host(t, res[1], res[0], (size_t)B * n, 1e-4);
            size_t inside = 0;
            for (size_t i = 0; i < (size_t)B * n; i++)
                inside += fabsf(res[0][i]) < 0.99f;
            gc_info("%s: %.0f%% of the sample strictly inside (-0.99, 0.99)", what, 100.0 * (double)inside / (double)(B * n));
        }
        free(res[0]), free(res[1]);
    }
    dc_noise_schedule_free(&ns);
}

/* --- main --------------------------------------------------------------------------------------- */

static void run_case(const net_case *c, uint64_t seed)
{
    fixture f;
    fixture_open(&f, c, seed);
    float *ref = check_forward(&f);
    check_cached(&f);
    if (ref && !quick)
        check_precisions(&f, ref);
    check_backward(&f);
    if (!quick)
        check_backward_precisions(&f);
    check_train_step(&f, ref);
    free(ref);
    fixture_close(&f);
}

int main(int argc, char **argv)
{
    gc_probe(argc, argv);
    quick = gc_quick(argc, argv);
    gc_open_backends();
    const int one4[4] = {1, 1, 1, 1}, enc2[2] = {1, 2}, dec2[2] = {2, 1}, one2[2] = {1, 1};
    net_case cases[2];
    int ncases;
    if (quick) {
        cases[0] = (net_case){"w16/L2 B=2 22x30", make_config(16, 2, one2, one2), 2, 22, 30};
        ncases = 1;
    } else {
        cases[0] = (net_case){"w16/L4 B=2 40x56", make_config(16, 4, one4, one4), 2, 40, 56};
        cases[1] = (net_case){"w32/L2 B=2 40x56", make_config(32, 2, enc2, dec2), 2, 40, 56};
        ncases = 2;
    }
    for (int i = 0; i < ncases; i++)
        run_case(&cases[i], 1000 + 7 * (uint64_t)i);
    check_device_sampler();
    check_sampling_allocates_nothing();
    if (!quick)
        check_sampler();
    gc_close_backends();
    return gc_finish("test_gpu_net");
}
