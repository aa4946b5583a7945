/* diffcr tests — the small ops of ops.h: PixelShuffle(2), pad/crop, Linear, SiLU, the gamma embedding,
 * MSE and the condition sums. Forwards are checked against formulas written here in double, backwards
 * against central finite differences; the reductions also for determinism across thread counts. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/ops.h"
#include "testutil.h"

static double *alloc_d(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void poison(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 1e30f;
}

#define GRADCHECK(fn, ctx, x, g, n, h, what)                                                            \
    do {                                                                                              \
        char msg_[256];                                                                               \
        ck_assert_msg(tu_gradcheck(fn, ctx, x, g, n, h, 1e-3, 1e-2, 2000, msg_, sizeof msg_), "%s: %s", \
                      what, msg_);                                                                    \
    } while (0)

/* ---------------------------------------------------------------- PixelShuffle(2) */

typedef struct {
    int N, H, W, C;
    float *inp, *out, *r;
} ps_case;

static double ps_loss(void *ctx)
{
    ps_case *k = ctx;
    pixelshuffle2_forward(k->out, k->inp, k->N, k->H, k->W, k->C);
    return tu_dot(k->out, k->r, (size_t)k->N * 4 * k->H * k->W * k->C);
}

START_TEST(test_pixelshuffle)
{
    const int N = 2, H = 5, W = 7, C = 3;
    const size_t n = (size_t)N * H * W * 4 * C;
    ps_case k = {N, H, W, C, tu_alloc_floats(n), tu_alloc_floats(n), tu_alloc_floats(n)};
    tu_fill_uniform(k.inp, n, 1, 1.0f);
    tu_fill_uniform(k.r, n, 2, 1.0f);
    pixelshuffle2_forward(k.out, k.inp, N, H, W, C);
    /* PyTorch's definition in NCHW terms, out[c, 2h+i, 2w+j] = in[4c+2i+j, h, w], indexed in NHWC. */
    for (int s = 0; s < N; s++)
        for (int oy = 0; oy < 2 * H; oy++)
            for (int ox = 0; ox < 2 * W; ox++)
                for (int c = 0; c < C; c++) {
                    int y = oy / 2, i = oy % 2, x = ox / 2, j = ox % 2;
                    float want = k.inp[(((size_t)s * H + y) * W + x) * 4 * C + (size_t)(4 * c + 2 * i + j)];
                    float got = k.out[(((size_t)s * 2 * H + oy) * 2 * W + ox) * C + c];
                    ck_assert_float_eq(got, want);
                }
    float *dinp = tu_alloc_floats(n);
    poison(dinp, n);
    pixelshuffle2_backward(dinp, k.r, N, H, W, C);
    GRADCHECK(ps_loss, &k, k.inp, dinp, n, 1e-2f, "pixelshuffle dinp");
    free(dinp);
    free(k.inp);
    free(k.out);
    free(k.r);
}
END_TEST

/* ---------------------------------------------------------------- pad / crop */

START_TEST(test_pad_crop)
{
    const int N = 2, H = 5, W = 7, C = 6, PH = 16, PW = 9;
    const size_t n = (size_t)N * H * W * C, pn = (size_t)N * PH * PW * C;
    float *x = tu_alloc_floats(n), *padded = tu_alloc_floats(pn), *back = tu_alloc_floats(n), *r = tu_alloc_floats(pn);
    tu_fill_uniform(x, n, 3, 1.0f);
    poison(padded, pn);
    pad_nhwc(padded, x, N, H, W, C, PH, PW);
    for (int s = 0; s < N; s++)
        for (int y = 0; y < PH; y++)
            for (int xx = 0; xx < PW; xx++)
                for (int c = 0; c < C; c++) {
                    float want = (y < H && xx < W) ? x[(((size_t)s * H + y) * W + xx) * C + c] : 0.0f;
                    ck_assert_float_eq(padded[(((size_t)s * PH + y) * PW + xx) * C + c], want);
                }
    crop_nhwc(back, padded, N, PH, PW, C, H, W);
    ck_assert_int_eq(memcmp(back, x, n * sizeof(float)), 0);

    /* crop is pad's adjoint: <pad(x), r> == <x, crop(r)>. */
    tu_fill_uniform(r, pn, 4, 1.0f);
    crop_nhwc(back, r, N, PH, PW, C, H, W);
    ck_assert_double_eq_tol(tu_dot(padded, r, pn), tu_dot(x, back, n), 1e-9);

    /* Degenerate padding (PH == H, PW == W) is a copy. */
    pad_nhwc(back, x, N, H, W, C, H, W);
    ck_assert_int_eq(memcmp(back, x, n * sizeof(float)), 0);
    free(x);
    free(padded);
    free(back);
    free(r);
}
END_TEST

/* ---------------------------------------------------------------- Linear */

typedef struct {
    int B, IC, OC;
    float *inp, *w, *b, *out, *r;
} lin_case;

static double lin_loss(void *ctx)
{
    lin_case *k = ctx;
    linear_forward(k->out, k->inp, k->w, k->b, k->B, k->IC, k->OC);
    return tu_dot(k->out, k->r, (size_t)k->B * k->OC);
}

START_TEST(test_linear)
{
    const int B = 3, IC = 7, OC = 5;
    lin_case k = {B, IC, OC, tu_alloc_floats((size_t)B * IC), tu_alloc_floats((size_t)OC * IC), tu_alloc_floats((size_t)OC),
                  tu_alloc_floats((size_t)B * OC), tu_alloc_floats((size_t)B * OC)};
    tu_fill_uniform(k.inp, (size_t)B * IC, 5, 1.0f);
    tu_fill_uniform(k.w, (size_t)OC * IC, 6, 1.0f);
    tu_fill_uniform(k.b, (size_t)OC, 7, 1.0f);
    tu_fill_uniform(k.r, (size_t)B * OC, 8, 1.0f);
    double *want = alloc_d((size_t)B * OC), *want_nb = alloc_d((size_t)B * OC);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int i = 0; i < IC; i++)
                s += (double)k.inp[b * IC + i] * k.w[o * IC + i];
            want_nb[b * OC + o] = s;
            want[b * OC + o] = s + k.b[o];
        }
    poison(k.out, (size_t)B * OC);
    linear_forward(k.out, k.inp, k.w, k.b, B, IC, OC);
    ck_assert_double_le(tu_max_rel_err(k.out, want, (size_t)B * OC), 1e-5);
    poison(k.out, (size_t)B * OC);
    linear_forward(k.out, k.inp, k.w, NULL, B, IC, OC);
    ck_assert_double_le(tu_max_rel_err(k.out, want_nb, (size_t)B * OC), 1e-5);

    float *dinp = tu_alloc_floats((size_t)B * IC), *dw = tu_alloc_floats((size_t)OC * IC), *db = tu_alloc_floats((size_t)OC);
    poison(dinp, (size_t)B * IC);
    poison(dw, (size_t)OC * IC);
    poison(db, (size_t)OC);
    linear_backward(dinp, dw, db, k.r, k.inp, k.w, B, IC, OC);
    GRADCHECK(lin_loss, &k, k.inp, dinp, (size_t)B * IC, 1e-2f, "linear dinp");
    GRADCHECK(lin_loss, &k, k.w, dw, (size_t)OC * IC, 1e-2f, "linear dweight");
    GRADCHECK(lin_loss, &k, k.b, db, (size_t)OC, 1e-2f, "linear dbias");

    /* Optional gradients skipped: dweight unchanged. */
    float *dw2 = tu_alloc_floats((size_t)OC * IC);
    linear_backward(NULL, dw2, NULL, k.r, k.inp, k.w, B, IC, OC);
    ck_assert_int_eq(memcmp(dw2, dw, (size_t)OC * IC * sizeof(float)), 0);
    free(dw2);
    free(dinp);
    free(dw);
    free(db);
    free(want);
    free(want_nb);
    free(k.inp);
    free(k.w);
    free(k.b);
    free(k.out);
    free(k.r);
}
END_TEST

/* ---------------------------------------------------------------- SiLU */

typedef struct {
    size_t n;
    float *inp, *out, *r;
} silu_case;

static double silu_loss(void *ctx)
{
    silu_case *k = ctx;
    silu_forward(k->out, k->inp, k->n);
    return tu_dot(k->out, k->r, k->n);
}

START_TEST(test_silu)
{
    const size_t n = 2 * 5 * 7 + 5;
    silu_case k = {n, tu_alloc_floats(n), tu_alloc_floats(n), tu_alloc_floats(n)};
    tu_fill_uniform(k.inp, n, 9, 6.0f);
    k.inp[0] = 0.0f;
    k.inp[1] = -100.0f; /* exp overflows to inf: the result must be -0, not NaN */
    k.inp[2] = 100.0f;
    tu_fill_uniform(k.r, n, 10, 1.0f);
    double *want = alloc_d(n);
    for (size_t i = 0; i < n; i++)
        want[i] = (double)k.inp[i] / (1.0 + exp(-(double)k.inp[i]));
    silu_forward(k.out, k.inp, n);
    ck_assert_double_le(tu_max_rel_err(k.out, want, n), 1e-6);

    /* In place. */
    float *y = tu_alloc_floats(n);
    memcpy(y, k.inp, n * sizeof(float));
    silu_forward(y, y, n);
    ck_assert_int_eq(memcmp(y, k.out, n * sizeof(float)), 0);

    float *dinp = tu_alloc_floats(n);
    poison(dinp, n);
    silu_backward(dinp, k.r, k.inp, n);
    ck_assert(isfinite(dinp[1]) && isfinite(dinp[2]));
    GRADCHECK(silu_loss, &k, k.inp, dinp, n, 1e-2f, "silu dinp");
    free(y);
    free(dinp);
    free(want);
    free(k.inp);
    free(k.out);
    free(k.r);
}
END_TEST

/* ---------------------------------------------------------------- gamma embedding */

static void check_embedding(int B, int dim, const float *g)
{
    const int half = dim / 2;
    float *out = tu_alloc_floats((size_t)B * dim);
    double *want = alloc_d((size_t)B * dim);
    poison(out, (size_t)B * dim);
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * k / half);
            want[b * dim + k] = cos((double)g[b] * f);
            want[b * dim + half + k] = sin((double)g[b] * f);
        }
        if (dim % 2)
            want[b * dim + dim - 1] = 0.0;
    }
    gamma_embedding_forward(out, g, B, dim);
    ck_assert_double_le(tu_max_rel_err(out, want, (size_t)B * dim), 1e-5);
    free(out);
    free(want);
}

START_TEST(test_gamma_embedding)
{
    const float g[4] = {0.0f, 0.37f, 0.9999f, 0.001f};
    check_embedding(4, 64, g); /* DiffCR's size */
    check_embedding(4, 12, g);
    check_embedding(4, 7, g); /* odd: trailing zero */
    check_embedding(1, 1, g);

    /* At g = 0 the embedding is [1]*32 + [0]*32 exactly (DIFFCR.md §2.1). */
    float out[64];
    const float zero = 0.0f;
    gamma_embedding_forward(out, &zero, 1, 64);
    for (int k = 0; k < 32; k++) {
        ck_assert_float_eq(out[k], 1.0f);
        ck_assert_float_eq(out[32 + k], 0.0f);
    }
    /* f_0 = 1 exactly, so the first pair is cos(g), sin(g) of the float argument. */
    const float g1 = 0.625f;
    gamma_embedding_forward(out, &g1, 1, 64);
    ck_assert_float_eq(out[0], cosf(g1));
    ck_assert_float_eq(out[32], sinf(g1));
}
END_TEST

/* ---------------------------------------------------------------- MSE */

typedef struct {
    size_t n;
    float *pred, *target;
    float dloss;
} mse_case;

static double mse_loss(void *ctx)
{
    mse_case *k = ctx;
    return (double)k->dloss * mse_forward(k->pred, k->target, k->n);
}

START_TEST(test_mse)
{
    const size_t n = 2 * 5 * 7 * 3 + 1;
    mse_case k = {n, tu_alloc_floats(n), tu_alloc_floats(n), 0.75f};
    tu_fill_uniform(k.pred, n, 11, 1.0f);
    tu_fill_uniform(k.target, n, 12, 1.0f);
    double want = 0.0;
    for (size_t i = 0; i < n; i++)
        want += ((double)k.pred[i] - k.target[i]) * ((double)k.pred[i] - k.target[i]);
    want /= (double)n;
    ck_assert_double_eq_tol(mse_forward(k.pred, k.target, n), want, 1e-12 * want + 1e-15);

    float *dpred = tu_alloc_floats(n);
    poison(dpred, n);
    mse_backward(dpred, k.pred, k.target, n, k.dloss);
    double *want_d = alloc_d(n);
    for (size_t i = 0; i < n; i++)
        want_d[i] = 0.75 * 2.0 * ((double)k.pred[i] - k.target[i]) / (double)n;
    ck_assert_double_le(tu_max_rel_err(dpred, want_d, n), 1e-5);
    GRADCHECK(mse_loss, &k, k.pred, dpred, n, 1e-2f, "mse dpred");
    free(dpred);
    free(want_d);
    free(k.pred);
    free(k.target);
}
END_TEST

START_TEST(test_mse_determinism)
{
    const size_t n = 3 * 256 * 256 + 17;
    float *p = tu_alloc_floats(n), *t = tu_alloc_floats(n);
    tu_fill_uniform(p, n, 13, 1.0f);
    tu_fill_uniform(t, n, 14, 1.0f);
    omp_set_num_threads(2);
    double a = mse_forward(p, t, n), b = mse_forward(p, t, n);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    for (int threads = 1; threads <= 3; threads += 2) {
        omp_set_num_threads(threads);
        double c = mse_forward(p, t, n);
        ck_assert_double_eq_tol(c, a, 1e-5 * a);
    }
    free(p);
    free(t);
}
END_TEST

/* ---------------------------------------------------------------- condition sums */

typedef struct {
    int B, nd;
    size_t HWC;
    float *x0, *cond, *x, *r;
} cond_case;

static double cond_loss(void *ctx)
{
    cond_case *k = ctx;
    memcpy(k->x, k->x0, (size_t)k->B * k->HWC * sizeof(float));
    condsum_add_forward(k->x, k->cond, k->B, k->nd, k->HWC);
    return tu_dot(k->x, k->r, (size_t)k->B * k->HWC);
}

/* One date's image out of the stacked condition: a channel slice, zero-padded (what the network
 * feeds its condition branch). Checked against the definition, element by element. */
START_TEST(test_slice_pad)
{
    const int N = 2, H = 5, W = 7, D = 3, C = 3, PH = 8, PW = 16;
    const size_t n = (size_t)N * H * W * D * C, pn = (size_t)N * PH * PW * C;
    float *x = tu_alloc_floats(n), *out = tu_alloc_floats(pn);
    tu_fill_uniform(x, n, 5, 1.0f);
    for (int d = 0; d < D; d++) {
        poison(out, pn);
        slice_pad_nhwc(out, x, N, H, W, D * C, d * C, C, PH, PW);
        for (int s = 0; s < N; s++)
            for (int y = 0; y < PH; y++)
                for (int xx = 0; xx < PW; xx++)
                    for (int c = 0; c < C; c++) {
                        float want = (y < H && xx < W) ? x[(((size_t)s * H + y) * W + xx) * D * C + d * C + c] : 0.0f;
                        ck_assert_float_eq(out[(((size_t)s * PH + y) * PW + xx) * C + c], want);
                    }
    }
    free(x);
    free(out);
}
END_TEST

START_TEST(test_scale_inplace)
{
    const size_t n = 100003; /* above the parallel threshold, odd */
    float *x = tu_alloc_floats(n), *ref = tu_alloc_floats(n);
    tu_fill_uniform(x, n, 6, 2.0f);
    for (size_t i = 0; i < n; i++)
        ref[i] = x[i] * 0.37f;
    scale_inplace(x, 0.37f, n);
    ck_assert_int_eq(memcmp(x, ref, n * sizeof(float)), 0);
    free(x);
    free(ref);
}
END_TEST

START_TEST(test_condsum)
{
    const int B = 2, nd = 3;
    const size_t HWC = 5 * 7 * 6, n = (size_t)B * HWC, cn = (size_t)B * nd * HWC;
    cond_case k = {B, nd, HWC, tu_alloc_floats(n), tu_alloc_floats(cn), tu_alloc_floats(n), tu_alloc_floats(n)};
    tu_fill_uniform(k.x0, n, 15, 1.0f);
    tu_fill_uniform(k.cond, cn, 16, 1.0f);
    tu_fill_uniform(k.r, n, 17, 1.0f);
    double *want_sum = alloc_d(n), *want_add = alloc_d(n);
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < HWC; i++) {
            double s = 0.0;
            for (int d = 0; d < nd; d++) /* dates sample-major: cond[(b*nd + d), i] */
                s += k.cond[((size_t)b * nd + d) * HWC + i];
            want_sum[b * HWC + i] = s;
            want_add[b * HWC + i] = k.x0[b * HWC + i] + s;
        }
    float *sum = tu_alloc_floats(n);
    poison(sum, n);
    condsum_forward(sum, k.cond, B, nd, HWC);
    ck_assert_double_le(tu_max_rel_err(sum, want_sum, n), 1e-6);
    cond_loss(&k);
    ck_assert_double_le(tu_max_rel_err(k.x, want_add, n), 1e-6);

    float *dcond = tu_alloc_floats(cn);
    poison(dcond, cn);
    condsum_add_backward(dcond, k.r, B, nd, HWC);
    GRADCHECK(cond_loss, &k, k.cond, dcond, cn, 1e-2f, "condsum dcond");
    free(dcond);
    free(sum);
    free(want_sum);
    free(want_add);
    free(k.x0);
    free(k.cond);
    free(k.x);
    free(k.r);
}
END_TEST

/* The elementwise ops only go parallel past a size threshold: run each once above it, at 2 threads. */
START_TEST(test_large_parallel_paths)
{
    omp_set_num_threads(2);
    /* PixelShuffle: forward against the index formula, backward undoes it exactly. */
    const int N = 2, H = 17, W = 19, C = 32;
    const size_t n = (size_t)N * H * W * 4 * C;
    float *a = tu_alloc_floats(n), *b = tu_alloc_floats(n), *c = tu_alloc_floats(n);
    tu_fill_uniform(a, n, 21, 1.0f);
    pixelshuffle2_forward(b, a, N, H, W, C);
    for (int oy = 0; oy < 2 * H; oy += 5)
        for (int ox = 0; ox < 2 * W; ox++)
            for (int ch = 0; ch < C; ch++) {
                const int y = oy / 2, i = oy % 2, x = ox / 2, j = ox % 2;
                ck_assert_float_eq(b[(((size_t)1 * 2 * H + oy) * 2 * W + ox) * C + ch],
                                   a[(((size_t)1 * H + y) * W + x) * 4 * C + (size_t)(4 * ch + 2 * i + j)]);
            }
    pixelshuffle2_backward(c, b, N, H, W, C);
    ck_assert_int_eq(memcmp(c, a, n * sizeof(float)), 0);

    /* pad then crop is the identity; the padding is zero. */
    const int PH = 2 * H + 3, PW = 2 * W + 1;
    float *padded = tu_alloc_floats((size_t)N * PH * PW * 4 * C);
    pad_nhwc(padded, a, N, 2 * H, 2 * W, C, PH, PW);
    crop_nhwc(c, padded, N, PH, PW, C, 2 * H, 2 * W);
    ck_assert_int_eq(memcmp(c, a, n * sizeof(float)), 0);
    ck_assert_float_eq(padded[(((size_t)1 * PH + PH - 1) * PW + 3) * C + 5], 0.0f);
    ck_assert_float_eq(padded[(((size_t)0 * PH + 7) * PW + PW - 1) * C + 2], 0.0f);
    free(padded);

    /* SiLU forward and backward against the formulas. */
    silu_forward(b, a, n);
    silu_backward(c, a, a, n); /* dout = a */
    for (size_t i = 0; i < n; i += 7) {
        const double v = a[i], s = 1.0 / (1.0 + exp(-v));
        ck_assert_double_eq_tol(b[i], v * s, 1e-6);
        ck_assert_double_eq_tol(c[i], v * s * (1.0 + v * (1.0 - s)), 1e-6);
    }

    /* MSE backward. */
    mse_backward(c, a, b, n, 3.0f);
    for (size_t i = 0; i < n; i += 7)
        ck_assert_double_eq_tol(c[i], 6.0 * ((double)a[i] - b[i]) / (double)n, 1e-9);

    /* Condition sums: 2 samples x 3 dates of n/6 floats each. */
    const size_t hwc = n / 6;
    float *sum = tu_alloc_floats(2 * hwc);
    condsum_forward(sum, a, 2, 3, hwc);
    memcpy(c, b, 2 * hwc * sizeof(float));
    condsum_add_forward(c, a, 2, 3, hwc);
    for (size_t i = 0; i < 2 * hwc; i += 5) {
        const size_t s = i / hwc, e = i % hwc;
        const double want =
            (double)a[(s * 3 + 0) * hwc + e] + a[(s * 3 + 1) * hwc + e] + a[(s * 3 + 2) * hwc + e];
        ck_assert_double_eq_tol(sum[i], want, 1e-6);
        ck_assert_double_eq_tol(c[i], b[i] + want, 1e-5);
    }
    condsum_add_backward(c, sum, 2, 3, hwc);
    for (size_t k = 0; k < 6; k++)
        ck_assert_int_eq(memcmp(c + k * hwc, sum + (k / 3) * hwc, hwc * sizeof(float)), 0);
    free(sum);
    free(a);
    free(b);
    free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_misc");
    TCase *tc = tcase_create("misc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pixelshuffle);
    tcase_add_test(tc, test_pad_crop);
    tcase_add_test(tc, test_linear);
    tcase_add_test(tc, test_silu);
    tcase_add_test(tc, test_gamma_embedding);
    tcase_add_test(tc, test_mse);
    tcase_add_test(tc, test_mse_determinism);
    tcase_add_test(tc, test_condsum);
    tcase_add_test(tc, test_slice_pad);
    tcase_add_test(tc, test_scale_inplace);
    tcase_add_test(tc, test_large_parallel_paths);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
