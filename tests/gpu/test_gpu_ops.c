/* diffcr GPU tests — every entry of the op table on the device under test against "ref".
 *
 *   test_gpu_ops [--quick] [--probe]
 *
 * Random O(1) inputs from fixed seeds, at shapes chosen to break kernels tuned for the common case:
 * pixel counts that are not multiples of 32 (or 4 for vector loads), one pixel, channel counts from
 * 16 to 2048 (DiffCR's widths at every level), N > 1, and the NULL gradient pointers the network
 * passes. Outputs are pre-filled with junk so that an op which accumulates instead of writing, or
 * leaves part of its output untouched, disagrees with the reference.
 *
 * Tolerances (tests/gpu/README.md): fp32 scaled error (max abs error / max(1, max|ref|)) <= 1e-4;
 * bit-exact for data movement, Philox normals and SCA's argmax; relative 1e-6 for the grad norm;
 * 1e-6 for the samplers' element-wise passes; TF32 / FP16 convolutions relative to max|ref| <= 1e-2.
 *
 * Exit: 0 all passed, 1 a check failed, 77 no CUDA device (ctest: skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/backend.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "gpu_check.h"

#define TOL 1e-4        /* fp32, scaled error */
#define TOL_OPT 2e-6    /* optimiser: a few float roundings of O(1) parameters */
#define TOL_LOWP 1e-2   /* TF32 and FP16 convolutions, relative to max|ref| */

static int quick;

/* "<prefix> <part>" for a check label (used at once by the caller). */
static const char *lbl(const char *prefix, const char *part)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s %s", prefix, part);
    return buf;
}

/* --- errors and memory -------------------------------------------------------------------------- */

static void test_errors(void)
{
    dc_error err;
    const char *cpu_names[2] = {"ref", "cpu"};
    for (int i = 0; i < 2; i++) {
        dc_backend *be;
        dc_error_clear(&err);
        if (dc_backend_create(&be, cpu_names[i], 0, &err) != DC_OK) {
            gc_check(0, "create %s: %s", cpu_names[i], err.msg);
            continue;
        }
        for (int p = DC_PRECISION_TF32; p <= DC_PRECISION_FP16; p++) {
            dc_error_clear(&err);
            int rc = be->set_precision(be, (dc_precision)p, &err);
            gc_check(rc != DC_OK && err.msg[0], "%s set_precision(%s) is refused: \"%s\"", cpu_names[i],
                     dc_precision_name((dc_precision)p), err.msg);
        }
        gc_check(be->set_precision(be, DC_PRECISION_FP32, &err) == DC_OK, "%s set_precision(fp32) accepted",
                 cpu_names[i]);
        dc_backend_destroy(be);
    }
    if (!gc_is_cuda(gc.device))
        return;
    dc_backend *be = NULL;
    dc_error_clear(&err);
    int rc = dc_backend_create(&be, "cuda:99", 0, &err);
    gc_check(rc != DC_OK && be == NULL && strstr(err.msg, "cuda:99"), "cuda:99 is refused with a clear error: \"%s\"",
             err.msg);
    if (be)
        dc_backend_destroy(be);
    dc_error_clear(&err);
    rc = dc_backend_create(&be, "cuda:x", 0, &err);
    gc_check(rc == DC_ERR_ARG, "cuda:x is refused: \"%s\"", err.msg);
    dc_backend *dut = gc.be[1];
    gc_check(!strcmp(dut->name, "cuda") && !dut->is_host, "cuda backend: name '%s', is_host %d", dut->name,
             dut->is_host);
    for (int p = DC_PRECISION_FP32; p < DC_PRECISION_COUNT; p++) {
        dc_error_clear(&err);
        gc_check(dut->set_precision(dut, (dc_precision)p, &err) == DC_OK, "cuda set_precision(%s) accepted %s",
                 dc_precision_name((dc_precision)p), err.msg);
    }
    dut->set_precision(dut, DC_PRECISION_FP32, &err);
    if (gc_dut_is_cudasim()) {
        /* a Turing GPU: bf16 refused at once with the reason, the other precisions accepted */
        setenv("DIFFCR_CUDASIM_SM", "75", 1);
        dc_backend *old = NULL;
        dc_error_clear(&err);
        if (gc_check(dc_backend_create(&old, "cuda", 0, &err) == DC_OK, "second cuda backend (sm_75): %s", err.msg)) {
            rc = old->set_precision(old, DC_PRECISION_BF16, &err);
            gc_check(rc == DC_ERR_UNSUPPORTED && strstr(err.msg, "sm_75") && strstr(err.msg, "bf16"),
                     "bf16 on sm_75 refused: %d \"%s\"", rc, err.msg);
            gc_check(old->set_precision(old, DC_PRECISION_FP16, &err) == DC_OK, "fp16 on sm_75 accepted");
            dc_backend_destroy(old);
        }
        unsetenv("DIFFCR_CUDASIM_SM");
        dut->bind(dut); /* the test calls table entries directly: make the device under test current again */
    }
}

/* Fresh allocations are zero even where the allocator reuses memory just released dirty. */
static void test_alloc_zero(dc_backend *be, size_t bytes)
{
    unsigned char *h = gc_xmalloc(bytes);
    memset(h, 0xA5, bytes);
    void *a = be->alloc(be, bytes);
    if (!gc_check(a != NULL, "alloc(%zu)", bytes)) {
        free(h);
        return;
    }
    be->to_device(be, a, h, bytes);
    gc_sync(1, "dirty buffer");
    be->release(be, a);
    void *b = be->alloc(be, bytes);
    gc_check(b != NULL, "alloc(%zu) after release", bytes);
    if (b) {
        memset(h, 0x5A, bytes);
        be->to_host(be, h, b, bytes);
        gc_sync(1, "alloc zero");
        size_t nz = 0;
        for (size_t i = 0; i < bytes; i++)
            nz += h[i] != 0;
        gc_check(nz == 0, "alloc(%zu) is zero-filled (%zu non-zero bytes)", bytes, nz);
        be->release(be, b);
    }
    free(h);
}

static void test_copy_zero(dc_backend *be, size_t n)
{
    size_t bytes = n * sizeof(float);
    float *h = gc_xmalloc(bytes), *back = gc_xmalloc(bytes);
    gc_fill_host(h, n, 42, -1, 1);
    float *src = be->alloc(be, bytes), *dst = be->alloc(be, bytes);
    if (!src || !dst) {
        gc_check(0, "alloc for copy test");
        return;
    }
    be->to_device(be, src, h, bytes);
    /* odd float offsets: copies that assume 16-byte alignment get caught */
    size_t so = 5, dof = 3, cnt = n - 8;
    be->copy(be, dst + dof, src + so, cnt * sizeof(float));
    be->to_host(be, back, dst, bytes);
    gc_sync(1, "copy");
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = (i >= dof && i < dof + cnt) ? h[i - dof + so] : 0.0f;
        bad += memcmp(&back[i], &want, sizeof want) != 0;
    }
    gc_check(bad == 0, "copy %zu floats at offsets 5 -> 3: %zu wrong", cnt, bad);

    be->to_device(be, src, h, bytes);
    size_t zo = 7, zc = n / 3;
    be->zero(be, src + zo, zc * sizeof(float));
    be->to_host(be, back, src, bytes);
    gc_sync(1, "zero");
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = (i >= zo && i < zo + zc) ? 0.0f : h[i];
        bad += memcmp(&back[i], &want, sizeof want) != 0;
    }
    gc_check(bad == 0, "zero %zu floats at offset 7 of %zu: %zu wrong", zc, n, bad);
    be->release(be, src);
    be->release(be, dst);
    free(h);
    free(back);
}

static void test_host_alloc(dc_backend *be, size_t n)
{
    size_t bytes = n * sizeof(float);
    float *pin = be->host_alloc(be, bytes);
    float *dev = be->alloc(be, bytes);
    if (!gc_check(pin && dev, "host_alloc(%zu) + alloc", bytes))
        return;
    gc_fill_host(pin, n, 9, -1, 1);
    float *want = gc_xmalloc(bytes);
    memcpy(want, pin, bytes);
    be->to_device(be, dev, pin, bytes);
    memset(pin, 0, bytes);
    /* the host buffer may be overwritten right after to_device returns and synchronize: */
    gc_sync(1, "to_device from host_alloc memory");
    be->to_host(be, pin, dev, bytes);
    gc_sync(1, "to_host into host_alloc memory");
    gc_check(memcmp(pin, want, bytes) == 0, "host_alloc round trip of %zu floats", n);
    be->host_release(be, pin);
    be->release(be, dev);
    free(want);
}

static void test_memory(void)
{
    dc_backend *be = gc.be[1];
    be->bind(be); /* what every public entry of the network does first */
    size_t sizes[] = {1, 4097, (1u << 24) + 12};
    for (int i = 0; i < 3; i++)
        test_alloc_zero(be, sizes[i]);
    test_copy_zero(be, 100003);
    test_host_alloc(be, 1u << 20);
    dc_error err;
    dc_error_clear(&err);
    gc_check(be->synchronize(be, &err) == DC_OK, "synchronize when idle %s", err.msg);
}

/* --- network ops -------------------------------------------------------------------------------- */

static void test_layernorm(size_t P, int C, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "layernorm P=%zu C=%d", P, C);
    size_t n = P * (size_t)C;
    gc_buf inp = gc_floats(n), w = gc_floats(C), b = gc_floats(C), dout = gc_floats(n);
    gc_buf out = gc_floats(n), out2 = gc_floats(n), mean = gc_floats(P), rstd = gc_floats(P);
    gc_buf dinp = gc_floats(n), dinp2 = gc_floats(n), dw = gc_floats(C), db = gc_floats(C);
    gc_fill(&inp, seed, -0.5f, 1.5f); /* mean away from 0: a one-pass variance would lose digits */
    gc_fill(&w, seed + 1, 0.5f, 1.5f);
    gc_fill(&b, seed + 2, -0.5f, 0.5f);
    gc_fill(&dout, seed + 3, -1, 1);
    gc_junk_list(seed, &out, &out2, &mean, &rstd, &dinp, &dinp2, &dw, &db, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        be->layernorm2d_forward(gc_f(&out, s), gc_f(&mean, s), gc_f(&rstd, s), gc_f(&inp, s), gc_f(&w, s),
                                gc_f(&b, s), P, C);
        be->layernorm2d_forward(gc_f(&out2, s), NULL, NULL, gc_f(&inp, s), gc_f(&w, s), gc_f(&b, s), P, C);
        be->layernorm2d_backward(gc_f(&dinp, s), gc_f(&dw, s), gc_f(&db, s), gc_f(&dout, s), gc_f(&inp, s),
                                 gc_f(&mean, s), gc_f(&rstd, s), gc_f(&w, s), P, C);
        be->layernorm2d_backward(gc_f(&dinp2, s), NULL, NULL, gc_f(&dout, s), gc_f(&inp, s), gc_f(&mean, s),
                                 gc_f(&rstd, s), gc_f(&w, s), P, C);
    }
    gc_cmp(lbl(t, "fwd out"), &out, TOL);
    gc_cmp(lbl(t, "fwd mean"), &mean, TOL);
    gc_cmp(lbl(t, "fwd rstd"), &rstd, TOL);
    gc_cmp(lbl(t, "fwd out (mean/rstd NULL)"), &out2, TOL);
    gc_cmp(lbl(t, "bwd dinp"), &dinp, TOL);
    gc_cmp(lbl(t, "bwd dweight"), &dw, TOL);
    gc_cmp(lbl(t, "bwd dbias"), &db, TOL);
    gc_cmp(lbl(t, "bwd dinp (dweight/dbias NULL)"), &dinp2, TOL);
    gc_free_list(&inp, &w, &b, &dout, &out, &out2, &mean, &rstd, &dinp, &dinp2, &dw, &db, GC_END);
}

static void test_simplegate(size_t P, int C, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "simplegate P=%zu C=%d", P, C);
    size_t n = P * (size_t)C;
    gc_buf inp = gc_floats(2 * n), out = gc_floats(n), dout = gc_floats(n), dinp = gc_floats(2 * n);
    gc_fill(&inp, seed, -2, 2);
    gc_fill(&dout, seed + 1, -1, 1);
    gc_junk_list(seed, &out, &dinp, GC_END);
    for (int s = 0; s < 2; s++) {
        gc.be[s]->simplegate_forward(gc_f(&out, s), gc_f(&inp, s), P, C);
        gc.be[s]->simplegate_backward(gc_f(&dinp, s), gc_f(&dout, s), gc_f(&inp, s), P, C);
    }
    gc_cmp(lbl(t, "fwd"), &out, TOL);
    gc_cmp(lbl(t, "bwd"), &dinp, TOL);
    gc_free_list(&inp, &out, &dout, &dinp, GC_END);
}

/* ties: inputs quantised to {-1, -0.5, 0, 0.5, 1}, so the max over HW is reached many times and the
 * first-index rule (PyTorch's) decides argmax; it must match exactly. */
static void test_sca(int N, size_t HW, int C, int ties, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "sca N=%d HW=%zu C=%d%s", N, HW, C, ties ? " ties" : "");
    int h = C / 2;
    size_t n = (size_t)N * HW * C;
    gc_buf x = gc_floats(n), wa = gc_floats((size_t)h * h), ba = gc_floats(h), wm = gc_floats((size_t)h * h);
    gc_buf bm = gc_floats(h), out = gc_floats(n), pooled = gc_floats((size_t)N * C), scale = gc_floats((size_t)N * C);
    gc_buf argmax = gc_alloc((size_t)N * h * sizeof(int)), dout = gc_floats(n), dx = gc_floats(n);
    gc_buf dwa = gc_floats((size_t)h * h), dba = gc_floats(h), dwm = gc_floats((size_t)h * h), dbm = gc_floats(h);
    float *hx = gc_xmalloc(n * sizeof *hx);
    gc_fill_host(hx, n, seed, -1, 1);
    if (ties)
        for (size_t i = 0; i < n; i++)
            hx[i] = roundf(hx[i] * 2.0f) * 0.5f;
    gc_set(&x, hx);
    free(hx);
    float a = 1.0f / sqrtf((float)h);
    gc_fill(&wa, seed + 1, -a, a);
    gc_fill(&wm, seed + 2, -a, a);
    gc_fill(&ba, seed + 3, -0.1f, 0.1f);
    gc_fill(&bm, seed + 4, -0.1f, 0.1f);
    gc_fill(&dout, seed + 5, -1, 1);
    gc_junk_list(seed, &out, &pooled, &scale, &argmax, &dx, &dwa, &dba, &dwm, &dbm, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        be->sca_forward(gc_f(&out, s), gc_f(&pooled, s), gc_f(&scale, s), gc_i(&argmax, s), gc_f(&x, s), gc_f(&wa, s),
                        gc_f(&ba, s), gc_f(&wm, s), gc_f(&bm, s), N, HW, C);
        be->sca_backward(gc_f(&dx, s), gc_f(&dwa, s), gc_f(&dba, s), gc_f(&dwm, s), gc_f(&dbm, s), gc_f(&dout, s),
                         gc_f(&x, s), gc_f(&pooled, s), gc_f(&scale, s), gc_i(&argmax, s), gc_f(&wa, s),
                         gc_f(&wm, s), N, HW, C);
    }
    gc_cmp(lbl(t, "fwd out"), &out, TOL);
    gc_cmp(lbl(t, "fwd pooled"), &pooled, TOL);
    gc_cmp(lbl(t, "fwd scale"), &scale, TOL);
    gc_cmp_exact(lbl(t, "fwd argmax"), &argmax);
    gc_cmp(lbl(t, "bwd dx"), &dx, TOL);
    gc_cmp(lbl(t, "bwd dw_avg"), &dwa, TOL);
    gc_cmp(lbl(t, "bwd db_avg"), &dba, TOL);
    gc_cmp(lbl(t, "bwd dw_max"), &dwm, TOL);
    gc_cmp(lbl(t, "bwd db_max"), &dbm, TOL);
    gc_free_list(&x, &wa, &ba, &wm, &bm, &out, &pooled, &scale, &argmax, &dout, &dx, &dwa, &dba, &dwm, &dbm, GC_END);
}

static void test_residual(int N, size_t HW, int C, int with_tbias, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "residual N=%d HW=%zu C=%d%s", N, HW, C, with_tbias ? " tbias" : "");
    size_t n = (size_t)N * HW * C;
    gc_buf inp = gc_floats(n), x = gc_floats(n), sc = gc_floats(C), tb = gc_floats((size_t)N * C);
    gc_buf out = gc_floats(n), alias = gc_floats(n), dout = gc_floats(n), dx = gc_floats(n);
    gc_buf dsc = gc_floats(C), dtb = gc_floats((size_t)N * C);
    gc_fill(&inp, seed, -1, 1);
    gc_fill(&x, seed + 1, -1, 1);
    gc_fill(&sc, seed + 2, -0.5f, 0.5f);
    gc_fill(&tb, seed + 3, -0.5f, 0.5f);
    gc_fill(&dout, seed + 4, -1, 1);
    gc_junk_list(seed, &out, &dx, &dsc, &dtb, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        const float *tbias = with_tbias ? gc_f(&tb, s) : NULL;
        be->residual_forward(gc_f(&out, s), gc_f(&inp, s), gc_f(&x, s), gc_f(&sc, s), tbias, N, HW, C);
        be->copy(be, gc_f(&alias, s), gc_f(&inp, s), n * sizeof(float));
        be->residual_forward(gc_f(&alias, s), gc_f(&alias, s), gc_f(&x, s), gc_f(&sc, s), tbias, N, HW, C);
        be->residual_backward(gc_f(&dx, s), gc_f(&dsc, s), with_tbias ? gc_f(&dtb, s) : NULL, gc_f(&dout, s),
                              gc_f(&x, s), gc_f(&sc, s), N, HW, C);
    }
    gc_cmp(lbl(t, "fwd"), &out, TOL);
    gc_cmp(lbl(t, "fwd in place (out == inp)"), &alias, TOL);
    gc_cmp(lbl(t, "bwd dx"), &dx, TOL);
    gc_cmp(lbl(t, "bwd dscale"), &dsc, TOL);
    if (with_tbias)
        gc_cmp(lbl(t, "bwd dtbias"), &dtb, TOL);
    gc_free_list(&inp, &x, &sc, &tb, &out, &alias, &dout, &dx, &dsc, &dtb, GC_END);
}

static void test_condsum(int B, int nd, size_t HWC, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "condsum B=%d ndates=%d HWC=%zu", B, nd, HWC);
    size_t n = (size_t)B * HWC, nc = n * nd;
    gc_buf x = gc_floats(n), cond = gc_floats(nc), out = gc_floats(n), dx = gc_floats(n), dcond = gc_floats(nc);
    gc_fill(&x, seed, -1, 1);
    gc_fill(&cond, seed + 1, -1, 1);
    gc_fill(&dx, seed + 2, -1, 1);
    gc_junk_list(seed, &out, &dcond, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        be->condsum_add_forward(gc_f(&x, s), gc_f(&cond, s), B, nd, HWC);
        be->condsum_add_backward(gc_f(&dcond, s), gc_f(&dx, s), B, nd, HWC);
        be->condsum_forward(gc_f(&out, s), gc_f(&cond, s), B, nd, HWC);
    }
    gc_cmp(lbl(t, "add fwd"), &x, TOL);
    gc_cmp_exact(lbl(t, "add bwd"), &dcond);
    gc_cmp(lbl(t, "sum fwd"), &out, TOL);
    gc_free_list(&x, &cond, &out, &dx, &dcond, GC_END);
}

static void test_add_scale(size_t n, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "n=%zu", n);
    gc_buf y = gc_floats(n), x = gc_floats(n), z = gc_floats(n);
    gc_fill(&y, seed, -1, 1);
    gc_fill(&x, seed + 1, -1, 1);
    gc_fill(&z, seed + 2, -1, 1);
    for (int s = 0; s < 2; s++) {
        gc.be[s]->add_inplace(gc_f(&y, s), gc_f(&x, s), n);
        gc.be[s]->scale_inplace(gc_f(&x, s), 0.37f, n);
        gc.be[s]->scale_inplace(gc_f(&z, s), 0.0f, n);
    }
    gc_cmp(lbl("add_inplace", t), &y, TOL);
    gc_cmp(lbl("scale_inplace x0.37", t), &x, TOL);
    gc_cmp_exact(lbl("scale_inplace x0", t), &z);
    gc_free_list(&y, &x, &z, GC_END);
}

static void test_pixelshuffle(int N, int H, int W, int C, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "pixelshuffle2 N=%d H=%d W=%d C=%d", N, H, W, C);
    size_t n = (size_t)N * H * W * 4 * C;
    gc_buf inp = gc_floats(n), out = gc_floats(n), dout = gc_floats(n), dinp = gc_floats(n);
    gc_fill(&inp, seed, -1, 1);
    gc_fill(&dout, seed + 1, -1, 1);
    gc_junk_list(seed, &out, &dinp, GC_END);
    for (int s = 0; s < 2; s++) {
        gc.be[s]->pixelshuffle2_forward(gc_f(&out, s), gc_f(&inp, s), N, H, W, C);
        gc.be[s]->pixelshuffle2_backward(gc_f(&dinp, s), gc_f(&dout, s), N, H, W, C);
    }
    gc_cmp_exact(lbl(t, "fwd"), &out);
    gc_cmp_exact(lbl(t, "bwd"), &dinp);
    gc_free_list(&inp, &out, &dout, &dinp, GC_END);
}

static void test_linear(int B, int IC, int OC, int with_bias, int with_dinp, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "linear B=%d IC=%d OC=%d%s%s", B, IC, OC, with_bias ? "" : " no-bias",
             with_dinp ? "" : " no-dinp");
    gc_buf inp = gc_floats((size_t)B * IC), w = gc_floats((size_t)OC * IC), b = gc_floats(OC);
    gc_buf out = gc_floats((size_t)B * OC), dout = gc_floats((size_t)B * OC), dinp = gc_floats((size_t)B * IC);
    gc_buf dw = gc_floats((size_t)OC * IC), db = gc_floats(OC);
    float a = sqrtf(3.0f / (float)IC); /* unit-variance outputs */
    gc_fill(&inp, seed, -1, 1);
    gc_fill(&w, seed + 1, -a, a);
    gc_fill(&b, seed + 2, -0.1f, 0.1f);
    gc_fill(&dout, seed + 3, -1, 1);
    gc_junk_list(seed, &out, &dinp, &dw, &db, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        be->linear_forward(gc_f(&out, s), gc_f(&inp, s), gc_f(&w, s), with_bias ? gc_f(&b, s) : NULL, B, IC, OC);
        be->linear_backward(with_dinp ? gc_f(&dinp, s) : NULL, gc_f(&dw, s), with_bias ? gc_f(&db, s) : NULL,
                            gc_f(&dout, s), gc_f(&inp, s), gc_f(&w, s), B, IC, OC);
    }
    gc_cmp(lbl(t, "fwd"), &out, TOL);
    if (with_dinp)
        gc_cmp(lbl(t, "bwd dinp"), &dinp, TOL);
    gc_cmp(lbl(t, "bwd dweight"), &dw, TOL);
    if (with_bias)
        gc_cmp(lbl(t, "bwd dbias"), &db, TOL);
    gc_free_list(&inp, &w, &b, &out, &dout, &dinp, &dw, &db, GC_END);
}

static void test_silu(size_t n, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "silu n=%zu", n);
    gc_buf inp = gc_floats(n), out = gc_floats(n), alias = gc_floats(n), dout = gc_floats(n), dinp = gc_floats(n);
    gc_fill(&inp, seed, -8, 8);
    gc_fill(&dout, seed + 1, -1, 1);
    gc_junk_list(seed, &out, &dinp, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        be->silu_forward(gc_f(&out, s), gc_f(&inp, s), n);
        be->copy(be, gc_f(&alias, s), gc_f(&inp, s), n * sizeof(float));
        be->silu_forward(gc_f(&alias, s), gc_f(&alias, s), n);
        be->silu_backward(gc_f(&dinp, s), gc_f(&dout, s), gc_f(&inp, s), n);
    }
    gc_cmp(lbl(t, "fwd"), &out, TOL);
    gc_cmp(lbl(t, "fwd in place"), &alias, TOL);
    gc_cmp(lbl(t, "bwd"), &dinp, TOL);
    gc_free_list(&inp, &out, &alias, &dout, &dinp, GC_END);
}

/* tol: 1e-4 for gamma inputs in (0, 1); 1e-3 for DPM-style time inputs up to 1000, where the angle
 * g * f_k reaches 1e3 rad and one ulp of difference in expf (CUDA's expf is within 2 ulp, glibc's
 * is correctly rounded) moves it by 1e3 * 2^-23 * 2 ~ 2.4e-4. */
static void test_gamma_embedding(int B, int dim, float gmax, double tol, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "gamma_embedding B=%d dim=%d g<=%g", B, dim, gmax);
    gc_buf g = gc_floats(B), out = gc_floats((size_t)B * dim);
    gc_fill(&g, seed, 0, gmax);
    gc_junk(&out, seed);
    for (int s = 0; s < 2; s++)
        gc.be[s]->gamma_embedding_forward(gc_f(&out, s), gc_f(&g, s), B, dim);
    gc_cmp(t, &out, tol);
    gc_free_list(&g, &out, GC_END);
}

static void test_pad_crop(int N, int H, int W, int C, int PH, int PW, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "N=%d %dx%d C=%d <-> %dx%d", N, H, W, C, PH, PW);
    size_t small = (size_t)N * H * W * C, big = (size_t)N * PH * PW * C;
    gc_buf inp = gc_floats(small), pad = gc_floats(big), src = gc_floats(big), crop = gc_floats(small);
    gc_fill(&inp, seed, -1, 1);
    gc_fill(&src, seed + 1, -1, 1);
    gc_junk_list(seed, &pad, &crop, GC_END);
    for (int s = 0; s < 2; s++) {
        gc.be[s]->pad_nhwc(gc_f(&pad, s), gc_f(&inp, s), N, H, W, C, PH, PW);
        gc.be[s]->crop_nhwc(gc_f(&crop, s), gc_f(&src, s), N, PH, PW, C, H, W);
    }
    gc_cmp_exact(lbl("pad_nhwc", t), &pad);
    gc_cmp_exact(lbl("crop_nhwc", t), &crop);
    gc_free_list(&inp, &pad, &src, &crop, GC_END);
}

static void test_slice_pad(int N, int H, int W, int Cin, int c0, int Cout, int PH, int PW, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "slice_pad_nhwc N=%d %dx%d Cin=%d c0=%d Cout=%d -> %dx%d", N, H, W, Cin, c0, Cout, PH, PW);
    gc_buf inp = gc_floats((size_t)N * H * W * Cin), out = gc_floats((size_t)N * PH * PW * Cout);
    gc_fill(&inp, seed, -1, 1);
    gc_junk(&out, seed);
    for (int s = 0; s < 2; s++)
        gc.be[s]->slice_pad_nhwc(gc_f(&out, s), gc_f(&inp, s), N, H, W, Cin, c0, Cout, PH, PW);
    gc_cmp_exact(t, &out);
    gc_free_list(&inp, &out, GC_END);
}

/* --- convolutions ------------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *kind;
    dc_conv_desc d;
    int bias;     /* forward with a bias (the up convs have none) */
    int lowp;     /* also run TF32 / FP16 */
    int combos;   /* every NULL combination of (dinp, dweight, dbias) in backward */
} conv_case;

typedef struct conv_bufs {
    gc_buf inp, w, b, out, dout, dinp, dw, db;
    size_t nin, nout, nw;
} conv_bufs;

/* Uniform weights in +-a with a = sqrt(3 / fan_in): unit-variance outputs for unit inputs. */
static float conv_weight_bound(const dc_conv_desc *d)
{
    return sqrtf(3.0f / (float)((d->C / d->groups) * d->kernel * d->kernel));
}

static void conv_bufs_open(conv_bufs *c, const dc_conv_desc *d, uint64_t seed)
{
    int Ho = dc_conv_out_h(d), Wo = dc_conv_out_w(d);
    c->nin = (size_t)d->N * d->H * d->W * d->C;
    c->nout = (size_t)d->N * Ho * Wo * d->K;
    c->nw = dc_conv_weight_numel(d);
    c->inp = gc_floats(c->nin), c->w = gc_floats(c->nw), c->b = gc_floats(d->K);
    c->out = gc_floats(c->nout), c->dout = gc_floats(c->nout), c->dinp = gc_floats(c->nin);
    c->dw = gc_floats(c->nw), c->db = gc_floats(d->K);
    float a = conv_weight_bound(d);
    gc_fill(&c->inp, seed, -1, 1);
    gc_fill(&c->w, seed + 1, -a, a);
    gc_fill(&c->b, seed + 2, -0.1f, 0.1f);
    gc_fill(&c->dout, seed + 3, -1, 1);
}

static void conv_bufs_close(conv_bufs *c)
{
    gc_free_list(&c->inp, &c->w, &c->b, &c->out, &c->dout, &c->dinp, &c->dw, &c->db, GC_END);
}

static int conv_fwd(int s, conv_bufs *c, const conv_case *cc, const char *t)
{
    dc_error err;
    dc_error_clear(&err);
    dc_backend *be = gc.be[s];
    int rc = be->conv2d_forward(be, gc_f(&c->out, s), gc_f(&c->inp, s), gc_f(&c->w, s), cc->bias ? gc_f(&c->b, s) : NULL,
                                &cc->d, &err);
    if (rc != DC_OK)
        gc_check(0, "%s forward on %s: %s", t, be->name, err.msg);
    return rc == DC_OK;
}

/* mask bits: 1 dinp, 2 dweight, 4 dbias. */
static void conv_bwd_check(conv_bufs *c, const conv_case *cc, const char *t, int mask)
{
    char tt[256], which[32] = "";
    const char *names[3] = {"dinp", "dweight", "dbias"};
    for (int i = 0; i < 3; i++)
        if (mask & (1 << i))
            snprintf(which + strlen(which), sizeof which - strlen(which), "%s%s", which[0] ? "," : "", names[i]);
    snprintf(tt, sizeof tt, "%s bwd[%s]", t, which);
    gc_junk_list(mask, &c->dinp, &c->dw, &c->db, GC_END);
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        dc_backend *be = gc.be[s];
        int rc = be->conv2d_backward(be, mask & 1 ? gc_f(&c->dinp, s) : NULL, mask & 2 ? gc_f(&c->dw, s) : NULL,
                                     mask & 4 ? gc_f(&c->db, s) : NULL, gc_f(&c->dout, s), gc_f(&c->inp, s),
                                     gc_f(&c->w, s), &cc->d, &err);
        if (rc != DC_OK) {
            gc_check(0, "%s on %s: %s", tt, be->name, err.msg);
            return;
        }
    }
    if (mask == 0) {
        gc_check(gc_sync(1, tt), "%s (all NULL) runs", tt);
        return;
    }
    if (mask & 1)
        gc_cmp(lbl(tt, "dinp"), &c->dinp, TOL);
    if (mask & 2)
        gc_cmp(lbl(tt, "dweight"), &c->dw, TOL);
    if (mask & 4)
        gc_cmp(lbl(tt, "dbias"), &c->db, TOL);
}

/* TF32, FP16 and BF16 forward against the fp32 reference, then back to FP32 (which must be exact
 * fp32 again: a precision switch that sticks would show here). */
static void conv_lowp_check(conv_bufs *c, const conv_case *cc, const char *t)
{
    dc_backend *dut = gc.be[1];
    float *ref = gc_get(&c->out, 0, t);
    if (!ref)
        return;
    float *got = gc_xmalloc(c->nout * sizeof *got);
    const dc_precision ps[4] = {DC_PRECISION_TF32, DC_PRECISION_FP16, DC_PRECISION_BF16, DC_PRECISION_FP32};
    for (int i = 0; i < 4; i++) {
        char tt[256];
        snprintf(tt, sizeof tt, "%s fwd %s", t, dc_precision_name(ps[i]));
        dc_error err;
        dc_error_clear(&err);
        if (dut->set_precision(dut, ps[i], &err) != DC_OK) {
            gc_info("%s: set_precision refused (%s), not measured", tt, err.msg);
            continue;
        }
        gc_junk(&c->out, 99);
        if (!conv_fwd(1, c, cc, tt))
            continue;
        dut->to_host(dut, got, gc_f(&c->out, 1), c->nout * sizeof *got);
        if (!gc_sync(1, tt))
            continue;
        if (ps[i] == DC_PRECISION_FP32) {
            gc_cmp_host(lbl(tt, "(after switching back)"), got, ref, c->nout, TOL);
            continue;
        }
        double e;
        gc_cmp_host_rel(tt, got, ref, c->nout, TOL_LOWP, &e);
        if (e < 1e-6)
            gc_info("%s: error %.2g is fp32-like: is %s really applied to this convolution?", tt, e,
                    dc_precision_name(ps[i]));
    }
    dut->set_precision(dut, DC_PRECISION_FP32, NULL);
    free(ref);
    free(got);
}

/* Weights rewritten in place (same pointer, as the optimiser does) + weights_changed: a backend
 * that caches converted (fp16) or re-laid-out weights by pointer must drop them. Per precision. */
static void test_weights_changed(const conv_case *cc, uint64_t seed)
{
    const dc_precision ps[4] = {DC_PRECISION_FP32, DC_PRECISION_TF32, DC_PRECISION_FP16, DC_PRECISION_BF16};
    conv_bufs c;
    conv_bufs_open(&c, &cc->d, seed);
    dc_backend *dut = gc.be[1];
    for (int i = 0; i < (quick ? 1 : 4); i++) {
        char t[160];
        snprintf(t, sizeof t, "conv %s weights_changed %s", cc->kind, dc_precision_name(ps[i]));
        if (dut->set_precision(dut, ps[i], NULL) != DC_OK)
            continue;
        if (!conv_fwd(0, &c, cc, t) || !conv_fwd(1, &c, cc, t))
            continue;
        float a = conv_weight_bound(&cc->d);
        gc_fill(&c.w, seed + 100 + (uint64_t)i, -a, a);
        for (int s = 0; s < 2; s++)
            gc.be[s]->weights_changed(gc.be[s]);
        gc_junk(&c.out, seed);
        if (!conv_fwd(0, &c, cc, t) || !conv_fwd(1, &c, cc, t))
            continue;
        if (ps[i] == DC_PRECISION_FP32) {
            gc_cmp(lbl(t, "new weights used"), &c.out, TOL);
        } else {
            float *r = gc_get(&c.out, 0, t), *g = gc_get(&c.out, 1, t);
            if (r && g)
                gc_cmp_host_rel(lbl(t, "new weights used"), g, r, c.nout, TOL_LOWP, NULL);
            free(r), free(g);
        }
    }
    dut->set_precision(dut, DC_PRECISION_FP32, NULL);
    conv_bufs_close(&c);
}

static void test_conv(const conv_case *cc, uint64_t seed)
{
    const dc_conv_desc *d = &cc->d;
    char t[160];
    snprintf(t, sizeof t, "conv %s N=%d %dx%d C=%d K=%d k=%d s=%d p=%d g=%d%s", cc->kind, d->N, d->H, d->W, d->C, d->K,
             d->kernel, d->stride, d->pad, d->groups, cc->bias ? "" : " no-bias");
    conv_bufs c;
    conv_bufs_open(&c, d, seed);
    gc_junk(&c.out, seed);
    if (conv_fwd(0, &c, cc, t) && conv_fwd(1, &c, cc, t))
        gc_cmp(lbl(t, "fwd"), &c.out, TOL);
    conv_bwd_check(&c, cc, t, 7);
    conv_bwd_check(&c, cc, t, 6); /* intro convs: no input gradient */
    if (cc->combos)
        for (int mask = 0; mask < 6; mask++)
            conv_bwd_check(&c, cc, t, mask);
    if (cc->lowp && !quick)
        conv_lowp_check(&c, cc, t);
    conv_bufs_close(&c);
}

static dc_conv_desc cd(int N, int H, int W, int C, int K, int k, int stride, int pad, int groups)
{
    dc_conv_desc d = {N, H, W, C, K, k, stride, pad, groups};
    return d;
}

/* Round to nearest-even bfloat16, written here from the format's definition (the value, as a float). */
static float host_bf16(float v)
{
    if (!isfinite(v))
        return v;
    double a = fabs((double)v), q = ldexp(1.0, ilogb(a) - 7); /* the bf16 quantum of v's binade */
    double r = nearbyint(a / q) * q;                            /* default rounding: ties to even */
    return copysignf((float)r, v);
}

/* BF16 end to end, exactly: a 3x3 convolution whose only tap is the identity at the centre returns
 * each input rounded to bf16 (one exact product, exact zeros, the result stored in bf16), after
 * the zero bias. Ties both ways, a wide range of magnitudes, negative values. Then the data
 * gradient of the same convolution, likewise one exact product per value: dinp = bf16(dout). */
static void test_conv_bf16_rounding(void)
{
    dc_backend *dut = gc.be[1];
    if (gc_dut_is_emulated()) {
        gc_info("bf16 rounding: not checked on the emulated device (it computes every precision in fp32)");
        return;
    }
    const conv_case cc = {"bf16 identity", cd(1, 3, 5, 8, 8, 3, 1, 1, 1), 1, 0, 0};
    const dc_conv_desc *d = &cc.d;
    conv_bufs c;
    conv_bufs_open(&c, d, 4242);
    float *x = gc_xmalloc(c.nin * sizeof *x), *w = gc_xmalloc(c.nw * sizeof *w), *b = gc_xmalloc(8 * sizeof *b);
    float *want = gc_xmalloc(c.nin * sizeof *want), *got = gc_xmalloc(c.nin * sizeof *got);
    const float special[8] = {1.0f + 0x1p-8f, 1.0f + 3.0f * 0x1p-8f, -(1.0f + 0x1p-8f), 3.0f + 3.0f * 0x1p-7f,
                              1.0e-3f, -7.0e4f, 1.0e30f, 0.1f};
    gc_fill_host(x, c.nin, 4243, -4, 4);
    for (size_t i = 0; i < c.nin; i++) {
        if (i < 8)
            x[i] = special[i];
        else if (i % 5 == 0)
            x[i] = ldexpf(x[i], (int)(i % 40) - 20);
    }
    memset(w, 0, c.nw * sizeof *w);
    for (int k = 0; k < d->K; k++)
        w[(((size_t)k * d->C + k) * 3 + 1) * 3 + 1] = 1.0f; /* [K][C][3][3], centre tap */
    memset(b, 0, 8 * sizeof *b);
    gc_set(&c.inp, x);
    gc_set(&c.w, w);
    gc_set(&c.b, b);
    dc_error err;
    dc_error_clear(&err);
    if (dut->set_precision(dut, DC_PRECISION_BF16, &err) != DC_OK) {
        gc_check(0, "bf16 accepted by %s: %s", dut->name, err.msg);
    } else {
        for (size_t i = 0; i < c.nin; i++)
            want[i] = host_bf16(x[i]);
        gc_junk(&c.out, 3);
        if (conv_fwd(1, &c, &cc, "bf16 identity")) {
            dut->to_host(dut, got, gc_f(&c.out, 1), c.nin * sizeof *got);
            if (gc_sync(1, "bf16 identity")) {
                size_t bad = 0, first = 0;
                for (size_t i = 0; i < c.nin; i++)
                    if (memcmp(&got[i], &want[i], sizeof got[i]) && bad++ == 0)
                        first = i;
                gc_check(bad == 0, "bf16 identity convolution returns bf16(x) exactly: %zu of %zu differ (first at %zu: "
                         "x %a got %a want %a)", bad, c.nin, first, (double)x[first], (double)got[first], (double)want[first]);
            }
        }
        /* backward data through the same identity: dinp = bf16(dout) */
        gc_set(&c.dout, x);
        gc_junk(&c.dinp, 4);
        int rc = dut->conv2d_backward(dut, gc_f(&c.dinp, 1), NULL, NULL, gc_f(&c.dout, 1), gc_f(&c.inp, 1),
                                      gc_f(&c.w, 1), d, &err);
        if (gc_check(rc == DC_OK, "bf16 identity backward-data runs: %s", err.msg)) {
            dut->to_host(dut, got, gc_f(&c.dinp, 1), c.nin * sizeof *got);
            if (gc_sync(1, "bf16 identity backward")) {
                size_t bad = 0;
                for (size_t i = 0; i < c.nin; i++)
                    bad += memcmp(&got[i], &want[i], sizeof got[i]) != 0;
                gc_check(bad == 0, "bf16 identity backward-data returns bf16(dout) exactly: %zu of %zu differ", bad, c.nin);
            }
        }
    }
    dut->set_precision(dut, DC_PRECISION_FP32, NULL);
    free(x), free(w), free(b), free(want), free(got);
    conv_bufs_close(&c);
}

/* Shapes no convolution can have are refused before any library or kernel sees them, with the
 * same code on both backends: an empty batch (cuDNN's descriptors reject N=0, a depthwise grid of
 * zero blocks is a launch error), an empty image, a kernel wider than the padded image, groups
 * that do not divide the channels. The buffers are those of a valid shape; nothing may be read. */
static void test_conv_bad_shapes(void)
{
    const dc_conv_desc ok = cd(1, 4, 4, 4, 4, 3, 1, 1, 1);
    const conv_case bad[] = {
        {"N=0", cd(0, 4, 4, 4, 4, 3, 1, 1, 1), 1, 0, 0},
        {"N=0 dw3x3", cd(0, 4, 4, 4, 4, 3, 1, 1, 4), 1, 0, 0},
        {"N=0 1x1", cd(0, 4, 4, 4, 4, 1, 1, 0, 1), 1, 0, 0},
        {"W=0", cd(1, 4, 0, 4, 4, 3, 1, 1, 1), 1, 0, 0},
        {"C=0 1x1", cd(1, 4, 4, 0, 4, 1, 1, 0, 1), 1, 0, 0},
        {"kernel > padded image", cd(1, 1, 1, 4, 4, 3, 1, 0, 1), 1, 0, 0},
        {"groups do not divide C", cd(1, 4, 4, 4, 4, 3, 1, 1, 3), 1, 0, 0},
        {"stride 0", cd(1, 4, 4, 4, 4, 2, 0, 0, 1), 1, 0, 0},
    };
    conv_bufs c;
    conv_bufs_open(&c, &ok, 77);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int s = 0; s < 2; s++) {
            dc_backend *be = gc.be[s];
            dc_error err;
            dc_error_clear(&err);
            int rc = be->conv2d_forward(be, gc_f(&c.out, s), gc_f(&c.inp, s), gc_f(&c.w, s), gc_f(&c.b, s),
                                        &bad[i].d, &err);
            gc_check(rc == DC_ERR_SHAPE && strstr(err.msg, "invalid shape"), "conv %s forward on %s refused: %d \"%s\"",
                     bad[i].kind, be->name, rc, err.msg);
            dc_error_clear(&err);
            rc = be->conv2d_backward(be, gc_f(&c.dinp, s), gc_f(&c.dw, s), gc_f(&c.db, s), gc_f(&c.dout, s),
                                     gc_f(&c.inp, s), gc_f(&c.w, s), &bad[i].d, &err);
            gc_check(rc == DC_ERR_SHAPE && strstr(err.msg, "invalid shape"), "conv %s backward on %s refused: %d \"%s\"",
                     bad[i].kind, be->name, rc, err.msg);
        }
    gc_check(gc_sync(1, "bad shapes"), "device usable after refused convolutions");
    conv_bufs_close(&c);
}

static void test_convs(void)
{
    const conv_case cases[] = {
        {"3x3 odd", cd(3, 7, 9, 16, 16, 3, 1, 1, 1), 1, 0, 1},
        {"3x3 intro", cd(2, 40, 56, 3, 16, 3, 1, 1, 1), 1, 0, 0},
        {"3x3 ending", cd(2, 40, 56, 16, 3, 3, 1, 1, 1), 1, 0, 0},
        {"3x3 wide", cd(2, 20, 28, 64, 64, 3, 1, 1, 1), 1, 1, 0},
        {"1x1 conv1", cd(2, 40, 56, 16, 32, 1, 1, 0, 1), 1, 0, 0},
        {"1x1 conv3", cd(2, 40, 56, 32, 16, 1, 1, 0, 1), 1, 0, 0},
        {"1x1 up", cd(2, 5, 7, 256, 512, 1, 1, 0, 1), 0, 1, 0},
        {"1x1 up deep", cd(1, 2, 3, 1024, 2048, 1, 1, 0, 1), 0, 0, 0},
        {"2x2/2 down", cd(2, 40, 56, 16, 32, 2, 2, 0, 1), 1, 0, 0},
        {"2x2/2 cond down", cd(6, 20, 28, 32, 64, 2, 2, 0, 1), 1, 0, 0},
        {"2x2/2 odd", cd(2, 7, 9, 16, 32, 2, 2, 0, 1), 1, 0, 1},
        {"2x2/2 deep", cd(2, 10, 14, 128, 256, 2, 2, 0, 1), 1, 1, 0},
        {"dw3x3", cd(2, 40, 56, 32, 32, 3, 1, 1, 32), 1, 1, 0},
        {"dw3x3 odd", cd(3, 7, 9, 16, 16, 3, 1, 1, 16), 1, 0, 1},
        {"dw3x3 deep", cd(2, 5, 7, 512, 512, 3, 1, 1, 512), 1, 0, 0},
        {"dw3x3 2048", cd(1, 2, 3, 2048, 2048, 3, 1, 1, 2048), 1, 0, 0},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        if (quick && !(cases[i].combos || i == 3 || i == 6 || i == 12))
            continue;
        test_conv(&cases[i], 1000 + (uint64_t)i * 17);
    }
    test_weights_changed(&cases[3], 2000);
    test_weights_changed(&cases[6], 2001);
    test_conv_bad_shapes();
    test_conv_bf16_rounding();
}

/* --- optimiser ---------------------------------------------------------------------------------- */

/* Five steps with fresh gradients (some exactly zero, some tiny next to eps). */
static void test_adam(size_t n, int decoupled, double wd, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "adam_update %s wd=%g n=%zu", decoupled ? "AdamW" : "Adam", wd, n);
    dc_adam_config cfg;
    dc_adam_config_default(&cfg);
    cfg.lr = 1e-3, cfg.weight_decay = wd, cfg.decoupled = decoupled;
    gc_buf p = gc_floats(n), m = gc_floats(n), v = gc_floats(n), g = gc_floats(n);
    gc_fill(&p, seed, -1, 1);
    float *hg = gc_xmalloc(n * sizeof *hg);
    for (long long step = 1; step <= 5; step++) {
        gc_fill_host(hg, n, seed + (uint64_t)step, -0.1f, 0.1f);
        for (size_t i = 0; i < n; i += 97)
            hg[i] = 0.0f;
        for (size_t i = 5; i < n; i += 89)
            hg[i] = 1e-9f;
        gc_set(&g, hg);
        for (int s = 0; s < 2; s++)
            gc.be[s]->adam_update(gc_f(&p, s), gc_f(&m, s), gc_f(&v, s), gc_f(&g, s), n, &cfg, step);
    }
    free(hg);
    gc_cmp(lbl(t, "params after 5 steps"), &p, TOL_OPT);
    gc_cmp_rel(lbl(t, "m"), &m, 1e-5);
    gc_cmp_rel(lbl(t, "v"), &v, 1e-5);
    gc_free_list(&p, &m, &v, &g, GC_END);
}

static void test_ema(size_t n, double decay, uint64_t seed)
{
    char t[96];
    snprintf(t, sizeof t, "ema_update decay=%g n=%zu", decay, n);
    gc_buf e = gc_floats(n), p = gc_floats(n);
    gc_fill(&e, seed, -1, 1);
    gc_fill(&p, seed + 1, -1, 1);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 3; k++)
            gc.be[s]->ema_update(gc_f(&e, s), gc_f(&p, s), n, decay);
    gc_cmp(t, &e, TOL_OPT);
    gc_free_list(&e, &p, GC_END);
}

/* Relative 1e-6: a double accumulation agrees to ~1e-15; a float one drifts by ~1e-4 at 3M values
 * of 1e3 (the second case), so this also catches a float accumulator. */
static void test_grad_norm(size_t n, float scale, uint64_t seed)
{
    gc_buf g = gc_floats(n);
    gc_fill(&g, seed, -scale, scale);
    double r = gc.be[0]->grad_norm(gc.be[0], gc_f(&g, 0), n);
    double d = gc.be[1]->grad_norm(gc.be[1], gc_f(&g, 1), n);
    gc_sync(1, "grad_norm");
    double rel = fabs(d - r) / (r > 0 ? r : 1.0);
    gc_check(rel <= 1e-6, "grad_norm n=%zu |g|<=%g: %.10g vs ref %.10g, rel err %.3g tol 1e-06", n, scale, d, r, rel);
    gc_free(&g);
}

/* --- sampler helpers ---------------------------------------------------------------------------- */

/* offset: write through a pointer one float past an allocation's start (vector stores must not
 * assume 16-byte alignment; the sampler fills per-sample slices). */
static void test_philox(size_t n, uint64_t seed, uint32_t stream, uint32_t tile, uint32_t step, size_t offset)
{
    char t[128];
    snprintf(t, sizeof t, "philox_fill_normal n=%zu seed=%#llx stream=%u tile=%u step=%u offset=%zu", n,
             (unsigned long long)seed, stream, tile, step, offset);
    gc_buf out = gc_floats(n + offset);
    gc_junk(&out, seed);
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        int rc = gc.be[s]->philox_fill_normal(gc.be[s], gc_f(&out, s) + offset, n, seed, stream, tile, step, &err);
        if (rc != DC_OK)
            gc_check(0, "%s on %s: %s", t, gc.be[s]->name, err.msg);
    }
    gc_cmp_exact(t, &out);
    gc_free(&out);
}

enum { TH_NORMAL, TH_SMALL, TH_TIES, TH_FEW_NAN, TH_MANY_NAN, TH_INF };
static const char *const th_names[] = {"normal", "below-1", "ties", "few-NaN", "many-NaN", "inf"};

static void threshold_data(float *x, size_t n, int kind, uint64_t seed)
{
    gc_fill_host(x, n, seed, -1, 1);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case TH_NORMAL: x[i] *= 3.0f; break;                          /* quantile > 1: s > 1 */
        case TH_SMALL: x[i] *= 0.9f; break;                           /* s = max_val = 1 */
        case TH_TIES: x[i] = roundf(x[i] * 3.0f) * 0.75f; break;      /* few levels, tied order stats */
        case TH_FEW_NAN: x[i] = (i % 1000 == 3) ? NAN : 2.0f * x[i]; break; /* 0.1% NaN: above the rank */
        case TH_MANY_NAN: x[i] = (i % 50 == 3) ? NAN : 2.0f * x[i]; break;  /* 2% NaN: s = inf */
        case TH_INF: x[i] = (i % 701 == 1) ? (i % 2 ? INFINITY : -INFINITY) : 2.0f * x[i]; break;
        default: break;
        }
    }
}

static void test_threshold(int B, size_t n, int kind, int f32rank, int with_s, uint64_t seed)
{
    char t[128];
    snprintf(t, sizeof t, "dynamic_threshold B=%d n=%zu %s rank=%s%s", B, n, th_names[kind], f32rank ? "f32" : "f64",
             with_s ? "" : " s_out=NULL");
    size_t total = (size_t)B * n;
    gc_buf x = gc_floats(total);
    float *h = gc_xmalloc(total * sizeof *h);
    for (int b = 0; b < B; b++)
        threshold_data(h + (size_t)b * n, n, kind, seed + (uint64_t)b);
    gc_set(&x, h);
    free(h);
    float *sv[2];
    for (int s = 0; s < 2; s++) {
        sv[s] = gc_xmalloc((size_t)B * sizeof(float));
        for (int b = 0; b < B; b++)
            sv[s][b] = -12345.0f;
        gc.be[s]->dynamic_threshold(gc.be[s], gc_f(&x, s), B, n, 0.995, 1.0, f32rank, with_s ? sv[s] : NULL);
    }
    gc_sync(1, t);
    gc_cmp(lbl(t, "x0"), &x, 1e-6);
    if (with_s) {
        gc_diff d = gc_diff_floats(sv[1], sv[0], (size_t)B);
        double rel = d.max_abs / (d.max_ref > 0 ? d.max_ref : 1.0);
        gc_check(rel <= 1e-6, "%s s: %g vs ref %g (sample 0), rel err %.3g tol 1e-06", t, sv[1][0], sv[0][0], rel);
    }
    free(sv[0]);
    free(sv[1]);
    gc_free(&x);
}

/* --- the samplers' vector passes (sampler.h) ----------------------------------------------------
 * Element-wise, no reductions: the CUDA kernels (no FMA contraction) can match the CPU to the bit,
 * and a sampler repeats them 20+ times, so the bound is tight: scaled error <= 1e-6 (x 1/alpha for
 * the x0 round trip, whose division by alpha magnifies one rounding of x by that much). */
#define TOL_VEC 1e-6

static void test_dpm_update(int kind, int f32, int alias, size_t n, uint64_t seed)
{
    char t[128];
    snprintf(t, sizeof t, "dpm_update kind=%d %s%s n=%zu", kind, f32 ? "f32" : "f64", alias ? " dst==x" : "", n);
    const dc_dpm_coeffs k = {kind, 0.93, 0.31, 0.52, 1.7, 0.83, 0.25, 0.61, 0.44, 0.19};
    gc_buf x = gc_floats(n), m0 = gc_floats(n), m1 = gc_floats(n), m2 = gc_floats(n), dst = gc_floats(n);
    gc_fill(&x, seed, -2, 2);
    gc_fill(&m0, seed + 1, -1, 1);
    gc_fill(&m1, seed + 2, -1, 1);
    gc_fill(&m2, seed + 3, -1, 1);
    gc_junk(&dst, seed);
    gc_buf *out = alias ? &x : &dst;
    for (int s = 0; s < 2; s++)
        gc.be[s]->dpm_update(gc_f(out, s), gc_f(&x, s), gc_f(&m0, s), kind >= 2 ? gc_f(&m1, s) : NULL,
                             kind >= 2 ? gc_f(&m2, s) : NULL, &k, n, f32);
    gc_cmp(t, out, TOL_VEC);
    gc_free_list(&x, &m0, &m1, &m2, &dst, GC_END);
}

static void test_x0_paths(size_t n, float alpha, uint64_t seed)
{
    char t[128];
    float sigma = sqrtf(1.0f - alpha * alpha);
    snprintf(t, sizeof t, "alpha=%g sigma=%g n=%zu", alpha, sigma, n);
    gc_buf x = gc_floats(n), x0 = gc_floats(n), pe = gc_floats(n), pv = gc_floats(n), c = gc_floats(n);
    gc_fill(&x, seed, -2, 2);
    gc_fill(&x0, seed + 1, -1, 1);
    gc_fill(&pe, seed + 2, -1, 1);
    gc_fill(&pv, seed + 3, -1, 1);
    gc_fill(&c, seed + 4, -3, 3);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        be->x0_roundtrip(gc_f(&x0, s), gc_f(&x, s), alpha, sigma, n);
        be->prediction_to_x0(gc_f(&pe, s), DC_TARGET_EPS, gc_f(&pe, s), gc_f(&x, s), n, alpha, sigma); /* in place */
        be->prediction_to_x0(gc_f(&pv, s), DC_TARGET_V, gc_f(&pv, s), gc_f(&x, s), n, alpha, sigma);
        be->clamp_abs(gc_f(&c, s), 1.25f, n);
    }
    gc_cmp(lbl("x0_roundtrip", t), &x0, TOL_VEC / alpha);
    gc_cmp(lbl("prediction_to_x0 eps", t), &pe, TOL_VEC / alpha);
    gc_cmp(lbl("prediction_to_x0 v", t), &pv, TOL_VEC);
    gc_cmp_exact(lbl("clamp_abs 1.25", t), &c);
    gc_free_list(&x, &x0, &pe, &pv, &c, GC_END);
}

static void test_ddim_ddpm(size_t n, int with_noise, uint64_t seed)
{
    char t[128];
    snprintf(t, sizeof t, "n=%zu%s", n, with_noise ? " noise" : " noise=NULL");
    gc_buf x = gc_floats(n), x2 = gc_floats(n), x0 = gc_floats(n), noise = gc_floats(n);
    gc_fill(&x, seed, -2, 2);
    gc_fill(&x2, seed, -2, 2);
    gc_fill(&x0, seed + 1, -1, 1);
    gc_fill(&noise, seed + 2, -3, 3);
    for (int s = 0; s < 2; s++) {
        dc_backend *be = gc.be[s];
        const float *nz = with_noise ? gc_f(&noise, s) : NULL;
        be->ddim_update(gc_f(&x, s), gc_f(&x0, s), nz, 0.62, 0.78, 0.71, 0.66, with_noise ? 0.12 : 0.0, n);
        be->ddpm_update(gc_f(&x2, s), gc_f(&x0, s), nz, 0.35, 0.61, with_noise ? 0.2 : 0.0, n);
    }
    gc_cmp(lbl("ddim_update", t), &x, TOL_VEC);
    gc_cmp(lbl("ddpm_update", t), &x2, TOL_VEC);
    gc_free_list(&x, &x2, &x0, &noise, GC_END);
}

static void run_sampler_vectors(void)
{
    const size_t ns[] = {1, 4097, 3 * 256 * 256 + 5};
    for (int i = 0; i < 3; i++) {
        if (quick && i == 2)
            continue;
        for (int kind = 1; kind <= 3; kind++)
            for (int f32 = 0; f32 < 2; f32++)
                test_dpm_update(kind, f32, kind == 2, ns[i], 400 + (uint64_t)(10 * i + kind));
        test_x0_paths(ns[i], 0.7f, 430 + (uint64_t)i);
        test_x0_paths(ns[i], 0.05f, 440 + (uint64_t)i);
        test_ddim_ddpm(ns[i], 1, 450 + (uint64_t)i);
        test_ddim_ddpm(ns[i], 0, 460 + (uint64_t)i);
    }
}

/* --- the lists ---------------------------------------------------------------------------------- */

static void run_network_ops(void)
{
    const struct { size_t P; int C; } ln[] = {{1, 16}, {31, 32}, {333, 1024}, {1000, 64}, {4097, 256}, {2 * 128 * 128, 32}};
    for (int i = 0; i < 6 && (!quick || i < 3); i++)
        test_layernorm(ln[i].P, ln[i].C, 10 + (uint64_t)i);
    const struct { size_t P; int C; } sg[] = {{1, 16}, {37, 1024}, {1000, 32}, {4097, 64}};
    for (int i = 0; i < 4 && (!quick || i < 2); i++)
        test_simplegate(sg[i].P, sg[i].C, 20 + (uint64_t)i);
    const struct { int N; size_t HW; int C, ties; } sca[] = {
        {1, 1, 16, 0}, {2, 31, 32, 1}, {2, 17, 1024, 0}, {2, 31, 32, 0},
        {2, 1000, 64, 1}, {1, 4096, 256, 0}, {2, 16384, 64, 1}, {3, 70 * 90, 32, 0}};
    for (int i = 0; i < 8 && (!quick || i < 3); i++)
        test_sca(sca[i].N, sca[i].HW, sca[i].C, sca[i].ties, 30 + (uint64_t)i);
    const struct { int N; size_t HW; int C; } rs[] = {{1, 1, 16}, {2, 5, 1024}, {2, 31, 32}, {2, 1000, 64}, {1, 4097, 256}};
    for (int i = 0; i < 5 && (!quick || i < 2); i++)
        for (int tb = 0; tb < 2; tb++)
            test_residual(rs[i].N, rs[i].HW, rs[i].C, tb, 40 + (uint64_t)i);
    const struct { int B, nd; size_t HWC; } cs[] = {{1, 3, 1}, {2, 3, 31 * 16}, {2, 2, 1001}, {2, 3, 40 * 56 * 16}};
    for (int i = 0; i < 4 && (!quick || i < 2); i++)
        test_condsum(cs[i].B, cs[i].nd, cs[i].HWC, 50 + (uint64_t)i);
    const size_t as[] = {1, 4097, (1u << 20) + 3};
    for (int i = 0; i < 3 && (!quick || i < 2); i++)
        test_add_scale(as[i], 60 + (uint64_t)i);
    const struct { int N, H, W, C; } ps[] = {{1, 1, 1, 16}, {2, 5, 7, 16}, {1, 2, 3, 256}, {2, 20, 28, 32}};
    for (int i = 0; i < 4 && (!quick || i < 2); i++)
        test_pixelshuffle(ps[i].N, ps[i].H, ps[i].W, ps[i].C, 70 + (uint64_t)i);
    const struct { int B, IC, OC, bias, dinp; } li[] = {
        {1, 64, 256, 1, 1}, {2, 64, 256, 1, 0}, {5, 7, 3, 0, 1}, {2, 256, 256, 1, 1}, {4, 256, 64, 0, 0}, {3, 1024, 512, 1, 1}};
    for (int i = 0; i < 6 && (!quick || i < 3); i++)
        test_linear(li[i].B, li[i].IC, li[i].OC, li[i].bias, li[i].dinp, 80 + (uint64_t)i);
    const size_t sl[] = {1, 2 * 256, 4097, 1u << 20};
    for (int i = 0; i < 4 && (!quick || i < 2); i++)
        test_silu(sl[i], 90 + (uint64_t)i);
    test_gamma_embedding(3, 64, 1.0f, 1e-4, 100);
    test_gamma_embedding(2, 7, 1.0f, 1e-4, 101);
    test_gamma_embedding(1, 1, 1.0f, 1e-4, 102);
    test_gamma_embedding(4, 64, 1000.0f, 1e-3, 103);
    test_gamma_embedding(2, 63, 1000.0f, 1e-3, 104);
    const struct { int N, H, W, C, PH, PW; } pc[] = {
        {2, 37, 50, 3, 48, 64}, {1, 1, 1, 16, 16, 16}, {1, 16, 16, 3, 16, 16}, {2, 40, 56, 16, 48, 64}};
    for (int i = 0; i < 4 && (!quick || i < 2); i++)
        test_pad_crop(pc[i].N, pc[i].H, pc[i].W, pc[i].C, pc[i].PH, pc[i].PW, 110 + (uint64_t)i);
    const int c0s[] = {0, 3, 6};
    for (int i = 0; i < 3; i++)
        test_slice_pad(2, 37, 50, 9, c0s[i], 3, 48, 64, 120 + (uint64_t)i);
    test_slice_pad(1, 5, 7, 12, 4, 4, 16, 16, 123);
}

static void run_optimiser(void)
{
    size_t n = quick ? 1001 : 100003;
    test_adam(n, 1, 0.01, 200);
    test_adam(n, 0, 0.01, 201);
    test_adam(n, 0, 0.0, 202);
    test_ema(n, 0.9999, 203);
    test_ema(n, 0.5, 204);
    test_grad_norm(1, 1.0f, 205);
    test_grad_norm(1000, 1.0f, 206);
    if (!quick) {
        test_grad_norm(3000017, 1.0f, 207);
        test_grad_norm(3000017, 1000.0f, 208);
    }
}

static void run_sampler_helpers(void)
{
    const size_t ns[] = {1, 2, 3, 5, 7, 4097, 1000003, (1u << 22) + 1};
    const uint64_t seeds[] = {0, 0x123456789ABCDEF0ull};
    for (int i = 0; i < 8; i++) {
        if (quick && ns[i] > 5000)
            continue;
        for (int k = 0; k < 2; k++)
            test_philox(ns[i], seeds[k], (uint32_t)(i % 4), k ? 0xFFFFFFFFu : 7u, (uint32_t)(19 * k), 0);
    }
    test_philox(4097, 5, 1, 2, 3, 1);
    test_threshold(2, 12288, TH_NORMAL, 1, 1, 300);
    test_threshold(2, 12288, TH_NORMAL, 0, 1, 301);
    test_threshold(1, 12288, TH_SMALL, 1, 1, 302);
    test_threshold(2, 12288, TH_TIES, 1, 1, 303);
    test_threshold(2, 4097, TH_FEW_NAN, 1, 1, 304);
    test_threshold(1, 1000, TH_MANY_NAN, 1, 1, 305);
    test_threshold(1, 1000, TH_INF, 1, 1, 306);
    test_threshold(1, 1, TH_NORMAL, 1, 1, 307);
    test_threshold(1, 5, TH_TIES, 1, 0, 308);
    if (!quick)
        test_threshold(3, 3 * 256 * 256, TH_NORMAL, 1, 1, 309);
}

int main(int argc, char **argv)
{
    gc_probe(argc, argv);
    quick = gc_quick(argc, argv);
    gc_open_backends();
    test_errors();
    test_memory();
    run_network_ops();
    test_convs();
    run_optimiser();
    run_sampler_helpers();
    run_sampler_vectors();
    gc_close_backends();
    return gc_finish("test_gpu_ops");
}
