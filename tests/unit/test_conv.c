/* diffcr tests — convolutions (conv.h).
 *
 * conv_ref is checked against a naive 7-loop convolution written here in double (forward and
 * backward), and against central finite differences, for each kind the network uses (1x1, dense
 * 3x3 pad 1, 2x2 stride 2, depthwise 3x3) plus a generic grouping, on odd sizes. The oneDNN path
 * is then checked against conv_ref, on odd sizes and DiffCR-like sizes, and must never have picked
 * a "ref:" implementation (BACKENDS.md §4.5: those are 100-1000x slower and fail silently). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/conv.h"
#include "testutil.h"

/* ------------------------------------------------------------------------------------------------
 * Oracle: naive direct convolution in double */

static size_t in_numel(const dc_conv_desc *d) { return (size_t)d->N * d->H * d->W * d->C; }
static size_t out_numel(const dc_conv_desc *d)
{
    return (size_t)d->N * dc_conv_out_h(d) * dc_conv_out_w(d) * d->K;
}

/* Calls f(ctx, out_index, in_index, weight_index) for every multiply of the convolution: the one
 * definition both naive directions are built from. */
#define FOR_EACH_TAP(d, BODY)                                                                      \
    do {                                                                                           \
        const int OH_ = dc_conv_out_h(d), OW_ = dc_conv_out_w(d), ks_ = (d)->kernel;               \
        const int Cg_ = (d)->C / (d)->groups, Kg_ = (d)->K / (d)->groups;                          \
        for (int n = 0; n < (d)->N; n++)                                                           \
            for (int oy = 0; oy < OH_; oy++)                                                       \
                for (int ox = 0; ox < OW_; ox++)                                                   \
                    for (int k = 0; k < (d)->K; k++)                                               \
                        for (int ci = 0; ci < Cg_; ci++)                                           \
                            for (int ky = 0; ky < ks_; ky++)                                       \
                                for (int kx = 0; kx < ks_; kx++) {                                 \
                                    int iy = oy * (d)->stride - (d)->pad + ky;                     \
                                    int ix = ox * (d)->stride - (d)->pad + kx;                     \
                                    if (iy < 0 || iy >= (d)->H || ix < 0 || ix >= (d)->W)          \
                                        continue;                                                  \
                                    int c = (k / Kg_) * Cg_ + ci;                                  \
                                    size_t oi = (((size_t)n * OH_ + oy) * OW_ + ox) * (d)->K + k;  \
                                    size_t ii = (((size_t)n * (d)->H + iy) * (d)->W + ix) * (d)->C + c; \
                                    size_t wi = (((size_t)k * Cg_ + ci) * ks_ + ky) * ks_ + kx;    \
                                    BODY;                                                          \
                                }                                                                  \
    } while (0)

static void naive_forward(float *out, const float *inp, const float *w, const float *b,
                          const dc_conv_desc *d)
{
    size_t no = out_numel(d);
    double *acc = calloc(no, sizeof *acc);
    ck_assert_ptr_nonnull(acc);
    FOR_EACH_TAP(d, acc[oi] += (double)inp[ii] * (double)w[wi]);
    for (size_t i = 0; i < no; i++)
        out[i] = (float)(acc[i] + (b ? b[i % (size_t)d->K] : 0.0));
    free(acc);
}

static void naive_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const dc_conv_desc *d)
{
    size_t ni = in_numel(d), nw = dc_conv_weight_numel(d), no = out_numel(d);
    double *gi = calloc(ni, sizeof *gi), *gw = calloc(nw, sizeof *gw), *gb = calloc((size_t)d->K, sizeof *gb);
    ck_assert(gi && gw && gb);
    FOR_EACH_TAP(d, {
        gi[ii] += (double)dout[oi] * (double)w[wi];
        gw[wi] += (double)dout[oi] * (double)inp[ii];
    });
    for (size_t i = 0; i < no; i++)
        gb[i % (size_t)d->K] += dout[i];
    for (size_t i = 0; i < ni; i++)
        dinp[i] = (float)gi[i];
    for (size_t i = 0; i < nw; i++)
        dw[i] = (float)gw[i];
    for (int k = 0; k < d->K; k++)
        db[k] = (float)gb[k];
    free(gi);
    free(gw);
    free(gb);
}

/* ------------------------------------------------------------------------------------------------
 * Test data */

typedef struct conv_data {
    dc_conv_desc d;
    size_t ni, nw, no;
    float *inp, *w, *b, *out, *dout;
    float *dinp, *dw, *db;     /* gradients under test */
    float *rinp, *rw, *rb;     /* reference gradients */
    float *rout;
} conv_data;

static float *xalloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Gradient buffers start as NaN so a path that accumulates instead of writing is caught. */
static void fill_nan(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

static void data_init(conv_data *t, const dc_conv_desc *d, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->d = *d;
    t->ni = in_numel(d);
    t->nw = dc_conv_weight_numel(d);
    t->no = out_numel(d);
    t->inp = xalloc(t->ni);
    t->w = xalloc(t->nw);
    t->b = xalloc((size_t)d->K);
    t->out = xalloc(t->no);
    t->rout = xalloc(t->no);
    t->dout = xalloc(t->no);
    t->dinp = xalloc(t->ni);
    t->dw = xalloc(t->nw);
    t->db = xalloc((size_t)d->K);
    t->rinp = xalloc(t->ni);
    t->rw = xalloc(t->nw);
    t->rb = xalloc((size_t)d->K);
    /* Weights scaled like PyTorch's default init, so outputs stay O(1) at any fan-in. */
    float wscale = 1.0f / sqrtf((float)(d->C / d->groups * d->kernel * d->kernel));
    tu_fill_uniform(t->inp, t->ni, seed, 1.0f);
    tu_fill_uniform(t->w, t->nw, seed + 1, wscale);
    tu_fill_uniform(t->b, (size_t)d->K, seed + 2, 0.5f);
    tu_fill_uniform(t->dout, t->no, seed + 3, 1.0f);
}

static void data_free(conv_data *t)
{
    float *p[] = {t->inp, t->w, t->b, t->out, t->rout, t->dout, t->dinp, t->dw, t->db, t->rinp, t->rw, t->rb};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        free(p[i]);
}

static const char *desc_str(const dc_conv_desc *d)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "N%d %dx%d C%d->K%d k%d s%d p%d g%d", d->N, d->H, d->W, d->C, d->K,
             d->kernel, d->stride, d->pad, d->groups);
    return buf;
}

/* Odd sizes, one per kind: 1x1, dense 3x3 pad 1 (C=3 -> 8), 2x2 stride 2, depthwise 3x3, a generic
 * grouping, a 3x3 wide enough for several channel blocks in col2im, a strided depthwise, the
 * few-output-channel direct path (3x3, 2x2, 1x1 with K <= 4), and (chunked_case) a 3x3 whose im2col
 * needs several row chunks. */
static const dc_conv_desc small_cases[] = {
    {2, 9, 7, 5, 6, 1, 1, 0, 1},
    {2, 9, 7, 3, 8, 3, 1, 1, 1},
    {2, 9, 7, 4, 6, 2, 2, 0, 1},
    {2, 9, 7, 6, 6, 3, 1, 1, 6},
    {2, 9, 7, 4, 6, 3, 1, 1, 2},
    {1, 6, 5, 20, 5, 3, 1, 1, 1},
    {1, 9, 7, 6, 6, 3, 2, 1, 6},
    {2, 9, 7, 21, 3, 3, 1, 1, 1},
    {2, 9, 7, 10, 3, 2, 2, 0, 1},
    {2, 9, 7, 6, 4, 1, 1, 0, 1},
};
#define N_SMALL ((int)(sizeof small_cases / sizeof small_cases[0]))
static const dc_conv_desc chunked_case = {1, 64, 60, 64, 8, 3, 1, 1, 1};

/* ------------------------------------------------------------------------------------------------
 * conv_ref */

static void check_ref_against_naive(const dc_conv_desc *d, int with_bias)
{
    conv_data t;
    data_init(&t, d, 11);
    const float *b = with_bias ? t.b : NULL;
    naive_forward(t.rout, t.inp, t.w, b, d);
    fill_nan(t.out, t.no);
    conv2d_ref_forward(t.out, t.inp, t.w, b, d);
    double e = tu_max_rel_diff(t.out, t.rout, t.no, 1e-6);
    ck_assert_msg(e <= 1e-5, "ref forward %s bias %d: rel err %g", desc_str(d), with_bias, e);

    naive_backward(t.rinp, t.rw, t.rb, t.dout, t.inp, t.w, d);
    fill_nan(t.dinp, t.ni);
    fill_nan(t.dw, t.nw);
    fill_nan(t.db, (size_t)d->K);
    conv2d_ref_backward(t.dinp, t.dw, t.db, t.dout, t.inp, t.w, d);
    double ei = tu_max_rel_diff(t.dinp, t.rinp, t.ni, 1e-6);
    double ew = tu_max_rel_diff(t.dw, t.rw, t.nw, 1e-6);
    double eb = tu_max_rel_diff(t.db, t.rb, (size_t)d->K, 1e-6);
    ck_assert_msg(ei <= 1e-5 && ew <= 1e-5 && eb <= 1e-5,
                  "ref backward %s: rel err dinp %g dweight %g dbias %g", desc_str(d), ei, ew, eb);

    /* Each gradient alone (the others NULL) gives the same bits as all together. */
    float *gi = xalloc(t.ni), *gw = xalloc(t.nw), *gb = xalloc((size_t)d->K);
    fill_nan(gi, t.ni);
    fill_nan(gw, t.nw);
    fill_nan(gb, (size_t)d->K);
    conv2d_ref_backward(gi, NULL, NULL, t.dout, t.inp, t.w, d);
    conv2d_ref_backward(NULL, gw, NULL, t.dout, t.inp, t.w, d);
    conv2d_ref_backward(NULL, NULL, gb, t.dout, t.inp, t.w, d);
    ck_assert_msg(memcmp(gi, t.dinp, t.ni * sizeof *gi) == 0, "ref dinp alone differs: %s", desc_str(d));
    ck_assert_msg(memcmp(gw, t.dw, t.nw * sizeof *gw) == 0, "ref dweight alone differs: %s", desc_str(d));
    ck_assert_msg(memcmp(gb, t.db, (size_t)d->K * sizeof *gb) == 0, "ref dbias alone differs: %s", desc_str(d));

    /* Determinism: the same calls again give identical bits. */
    conv2d_ref_forward(t.rout, t.inp, t.w, b, d);
    ck_assert_msg(memcmp(t.rout, t.out, t.no * sizeof *t.out) == 0, "ref forward not deterministic: %s", desc_str(d));
    conv2d_ref_backward(gi, gw, gb, t.dout, t.inp, t.w, d);
    ck_assert_msg(memcmp(gi, t.dinp, t.ni * sizeof *gi) == 0 && memcmp(gw, t.dw, t.nw * sizeof *gw) == 0,
                  "ref backward not deterministic: %s", desc_str(d));
    free(gi);
    free(gw);
    free(gb);
    data_free(&t);
}

START_TEST(test_ref_forward_backward_naive)
{
    for (int i = 0; i < N_SMALL; i++) {
        check_ref_against_naive(&small_cases[i], 1);
        check_ref_against_naive(&small_cases[i], 0);
    }
    check_ref_against_naive(&chunked_case, 1);
}
END_TEST

/* A sample's output does not depend on the batch around it: forward over N = 3 equals three N = 1
 * calls bit for bit, for each kind the network uses, at tile sizes (64x64 and its downs). BLAS
 * rounds differently for another GEMM height on some machines (OpenBLAS's AVX-512 small-matrix
 * path), which made diffcr-decloud --batch 3 differ from single tiles by 1 DN. */
START_TEST(test_ref_forward_batch_invariant)
{
    const dc_conv_desc cases[] = {
        {3, 64, 64, 9, 16, 3, 1, 1, 1},    /* intro */
        {3, 64, 64, 16, 16, 3, 1, 1, 1},   /* dense 3x3 */
        {3, 64, 64, 16, 32, 1, 1, 0, 1},   /* 1x1 */
        {3, 16, 16, 64, 128, 1, 1, 0, 1},  /* deeper 1x1 */
        {3, 64, 64, 16, 32, 2, 2, 0, 1},   /* down */
        {3, 32, 32, 32, 32, 3, 1, 1, 32},  /* depthwise */
        {3, 8, 8, 256, 3, 3, 1, 1, 1},     /* ending-like, narrow output */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const dc_conv_desc *d = &cases[i];
        dc_conv_desc one = *d;
        one.N = 1;
        size_t ni = in_numel(d), no = out_numel(d), nw = dc_conv_weight_numel(d);
        float *inp = tu_alloc_floats(ni), *w = tu_alloc_floats(nw), *b = tu_alloc_floats((size_t)d->K);
        float *all = tu_alloc_floats(no), *each = tu_alloc_floats(no);
        tu_fill_uniform(inp, ni, 11 + i, 1.0f);
        tu_fill_uniform(w, nw, 12 + i, 0.2f);
        tu_fill_uniform(b, (size_t)d->K, 13 + i, 0.1f);
        conv2d_ref_forward(all, inp, w, b, d);
        for (int n = 0; n < d->N; n++)
            conv2d_ref_forward(each + (size_t)n * (no / d->N), inp + (size_t)n * (ni / d->N), w, b, &one);
        ck_assert_msg(memcmp(all, each, no * sizeof(float)) == 0,
                      "case %zu (C%d -> K%d, %dx%d kernel): batch of 3 differs from single samples", i, d->C,
                      d->K, d->kernel, d->kernel);
        free(inp), free(w), free(b), free(all), free(each);
    }
}
END_TEST

/* loss = sum(conv(inp, w, b) * dout) for finite differences. */
static double conv_loss(void *ctx)
{
    conv_data *t = ctx;
    conv2d_ref_forward(t->out, t->inp, t->w, t->b, &t->d);
    return tu_dot(t->out, t->dout, t->no);
}

START_TEST(test_ref_gradcheck)
{
    for (int i = 0; i < N_SMALL; i++) {
        const dc_conv_desc *d = &small_cases[i];
        conv_data t;
        char msg[256];
        data_init(&t, d, 23);
        conv2d_ref_backward(t.dinp, t.dw, t.db, t.dout, t.inp, t.w, d);
        ck_assert_msg(tu_gradcheck(conv_loss, &t, t.inp, t.dinp, t.ni, 1e-2f, 2e-3, 1e-3, 200, msg, sizeof msg),
                      "dinp %s: %s", desc_str(d), msg);
        ck_assert_msg(tu_gradcheck(conv_loss, &t, t.w, t.dw, t.nw, 1e-2f, 2e-3, 1e-3, 200, msg, sizeof msg),
                      "dweight %s: %s", desc_str(d), msg);
        ck_assert_msg(tu_gradcheck(conv_loss, &t, t.b, t.db, (size_t)d->K, 1e-2f, 2e-3, 1e-3, 200, msg, sizeof msg),
                      "dbias %s: %s", desc_str(d), msg);
        data_free(&t);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------
 * oneDNN */

#ifdef DIFFCR_HAVE_DNNL

#define DNNL_TOL 1e-4

static void print_names(dc_dnnl *ctx, const char *label)
{
    const char *names[64];
    int n = dc_dnnl_impl_names(ctx, names, 64);
    printf("oneDNN implementations, %s:", label);
    for (int i = 0; i < n; i++)
        printf(" %s%s", names[i], i + 1 < n ? "," : "");
    printf("\n");
}

/* Runs fwd inference, fwd training, bwd data + weights (+ bias) on ctx and compares with conv_ref.
 * Also checks determinism and the NULL-gradient variants. */
static void check_dnnl_case(dc_dnnl *ctx, const dc_conv_desc *d, int with_bias, int full)
{
    dc_error err = {0};
    conv_data t;
    data_init(&t, d, 37);
    const float *b = with_bias ? t.b : NULL;
    conv2d_ref_forward(t.rout, t.inp, t.w, b, d);
    conv2d_ref_backward(t.rinp, t.rw, with_bias ? t.rb : NULL, t.dout, t.inp, t.w, d);

    float *out2 = xalloc(t.no);
    dc_dnnl_set_inference(ctx, 1);
    fill_nan(out2, t.no);
    ck_assert_msg(conv2d_dnnl_forward(ctx, out2, t.inp, t.w, b, d, &err) == DC_OK, "%s", err.msg);
    dc_dnnl_set_inference(ctx, 0);
    fill_nan(t.out, t.no);
    ck_assert_msg(conv2d_dnnl_forward(ctx, t.out, t.inp, t.w, b, d, &err) == DC_OK, "%s", err.msg);
    double e = tu_max_rel_diff(t.out, t.rout, t.no, 1e-6);
    ck_assert_msg(e <= DNNL_TOL, "dnnl forward %s: rel err %g", desc_str(d), e);
    e = tu_max_rel_diff(out2, t.out, t.no, 1e-6);
    ck_assert_msg(e <= 1e-6, "dnnl inference vs training forward %s: rel err %g", desc_str(d), e);

    fill_nan(t.dinp, t.ni);
    fill_nan(t.dw, t.nw);
    fill_nan(t.db, (size_t)d->K);
    ck_assert_msg(conv2d_dnnl_backward(ctx, t.dinp, t.dw, with_bias ? t.db : NULL, t.dout, t.inp, t.w, d,
                                       &err) == DC_OK, "%s", err.msg);
    double ei = tu_max_rel_diff(t.dinp, t.rinp, t.ni, 1e-6);
    double ew = tu_max_rel_diff(t.dw, t.rw, t.nw, 1e-6);
    double eb = with_bias ? tu_max_rel_diff(t.db, t.rb, (size_t)d->K, 1e-6) : 0.0;
    ck_assert_msg(ei <= DNNL_TOL && ew <= DNNL_TOL && eb <= DNNL_TOL,
                  "dnnl backward %s: rel err dinp %g dweight %g dbias %g", desc_str(d), ei, ew, eb);

    if (full) {
        /* Determinism: same calls, same bits. */
        ck_assert_msg(conv2d_dnnl_forward(ctx, out2, t.inp, t.w, b, d, &err) == DC_OK, "%s", err.msg);
        ck_assert_msg(memcmp(out2, t.out, t.no * sizeof *out2) == 0, "dnnl forward not deterministic: %s", desc_str(d));
        float *gi = xalloc(t.ni), *gw = xalloc(t.nw), *gb = xalloc((size_t)d->K);
        ck_assert_msg(conv2d_dnnl_backward(ctx, gi, gw, with_bias ? gb : NULL, t.dout, t.inp, t.w, d, &err) == DC_OK,
                      "%s", err.msg);
        ck_assert_msg(memcmp(gi, t.dinp, t.ni * sizeof *gi) == 0 && memcmp(gw, t.dw, t.nw * sizeof *gw) == 0 &&
                          (!with_bias || memcmp(gb, t.db, (size_t)d->K * sizeof *gb) == 0),
                      "dnnl backward not deterministic: %s", desc_str(d));
        /* Gradients one at a time (the others NULL), into NaN-filled buffers. */
        fill_nan(gi, t.ni);
        fill_nan(gw, t.nw);
        fill_nan(gb, (size_t)d->K);
        ck_assert_msg(conv2d_dnnl_backward(ctx, gi, NULL, NULL, t.dout, t.inp, t.w, d, &err) == DC_OK, "%s", err.msg);
        ck_assert_msg(conv2d_dnnl_backward(ctx, NULL, gw, NULL, t.dout, t.inp, t.w, d, &err) == DC_OK, "%s", err.msg);
        ck_assert_msg(conv2d_dnnl_backward(ctx, NULL, NULL, gb, t.dout, t.inp, t.w, d, &err) == DC_OK, "%s", err.msg);
        ck_assert_msg(tu_max_rel_diff(gi, t.rinp, t.ni, 1e-6) <= DNNL_TOL, "dnnl dinp alone %s", desc_str(d));
        ck_assert_msg(tu_max_rel_diff(gw, t.rw, t.nw, 1e-6) <= DNNL_TOL, "dnnl dweight alone %s", desc_str(d));
        conv2d_ref_backward(NULL, NULL, t.rb, t.dout, t.inp, t.w, d);
        ck_assert_msg(tu_max_rel_diff(gb, t.rb, (size_t)d->K, 1e-6) <= DNNL_TOL, "dnnl dbias alone %s", desc_str(d));
        free(gi);
        free(gw);
        free(gb);
    }
    free(out2);
    data_free(&t);
}

START_TEST(test_dnnl_small)
{
    dc_dnnl *ctx = NULL;
    dc_error err = {0};
    ck_assert_msg(dc_dnnl_create(&ctx, &err) == DC_OK, "%s", err.msg);
    for (int i = 0; i < N_SMALL; i++) {
        check_dnnl_case(ctx, &small_cases[i], 1, 1);
        check_dnnl_case(ctx, &small_cases[i], 0, 1);
    }
    print_names(ctx, "odd sizes");
    dc_dnnl_destroy(ctx);
}
END_TEST

/* DiffCR-like sizes, one context per conv kind so the names print per kind. */
static const dc_conv_desc like_1x1[] = {{1, 32, 32, 64, 128, 1, 1, 0, 1}, {1, 32, 32, 128, 64, 1, 1, 0, 1}};
static const dc_conv_desc like_2x2[] = {{1, 32, 32, 64, 128, 2, 2, 0, 1}};
static const dc_conv_desc like_dw[] = {{1, 32, 32, 128, 128, 3, 1, 1, 128}};
static const dc_conv_desc like_3x3[] = {{1, 32, 32, 3, 64, 3, 1, 1, 1}, {1, 32, 32, 64, 3, 3, 1, 1, 1}};

static void run_like(const char *label, const dc_conv_desc *cases, int n)
{
    dc_dnnl *ctx = NULL;
    dc_error err = {0};
    ck_assert_msg(dc_dnnl_create(&ctx, &err) == DC_OK, "%s", err.msg);
    for (int i = 0; i < n; i++)
        check_dnnl_case(ctx, &cases[i], 1, 1);
    print_names(ctx, label);
    dc_dnnl_destroy(ctx);
}

START_TEST(test_dnnl_diffcr_sizes)
{
    run_like("1x1 (32x32)", like_1x1, 2);
    run_like("2x2/s2 (32x32)", like_2x2, 1);
    run_like("depthwise 3x3 (32x32)", like_dw, 1);
    run_like("dense 3x3 (32x32)", like_3x3, 2);
}
END_TEST

START_TEST(test_dnnl_weights_changed)
{
    const dc_conv_desc cases[] = {{1, 16, 16, 32, 64, 1, 1, 0, 1}, {1, 16, 16, 32, 32, 3, 1, 1, 32},
                                  {1, 16, 16, 32, 64, 2, 2, 0, 1}, {1, 16, 16, 3, 32, 3, 1, 1, 1}};
    dc_dnnl *ctx = NULL;
    dc_error err = {0};
    ck_assert_msg(dc_dnnl_create(&ctx, &err) == DC_OK, "%s", err.msg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const dc_conv_desc *d = &cases[i];
        conv_data t;
        data_init(&t, d, 51);
        ck_assert_msg(conv2d_dnnl_forward(ctx, t.out, t.inp, t.w, t.b, d, &err) == DC_OK, "%s", err.msg);
        ck_assert_msg(conv2d_dnnl_backward(ctx, t.dinp, NULL, NULL, t.dout, t.inp, t.w, d, &err) == DC_OK, "%s", err.msg);
        /* New values in the same memory (an optimiser step), then tell the context. */
        tu_fill_uniform(t.w, t.nw, 99, 0.3f);
        dc_dnnl_weights_changed(ctx);
        ck_assert_msg(conv2d_dnnl_forward(ctx, t.out, t.inp, t.w, t.b, d, &err) == DC_OK, "%s", err.msg);
        ck_assert_msg(conv2d_dnnl_backward(ctx, t.dinp, NULL, NULL, t.dout, t.inp, t.w, d, &err) == DC_OK, "%s", err.msg);
        conv2d_ref_forward(t.rout, t.inp, t.w, t.b, d);
        conv2d_ref_backward(t.rinp, NULL, NULL, t.dout, t.inp, t.w, d);
        double e = tu_max_rel_diff(t.out, t.rout, t.no, 1e-6);
        double ei = tu_max_rel_diff(t.dinp, t.rinp, t.ni, 1e-6);
        ck_assert_msg(e <= DNNL_TOL && ei <= DNNL_TOL, "new weights not picked up %s: fwd %g bwd_data %g",
                      desc_str(d), e, ei);
        data_free(&t);
    }
    dc_dnnl_destroy(ctx);
}
END_TEST

START_TEST(test_dnnl_bad_args)
{
    dc_dnnl *ctx = NULL;
    dc_error err = {0};
    ck_assert_msg(dc_dnnl_create(&ctx, &err) == DC_OK, "%s", err.msg);
    float x[64] = {0}, y[64] = {0}, w[64] = {0};
    dc_conv_desc bad = {1, 4, 4, 3, 4, 1, 1, 0, 2}; /* C not divisible by groups */
    ck_assert_int_eq(conv2d_dnnl_forward(ctx, y, x, w, NULL, &bad, &err), DC_ERR_SHAPE);
    ck_assert(strlen(err.msg) > 0);
    dc_conv_desc ok = {1, 4, 4, 4, 4, 1, 1, 0, 1};
    ck_assert_int_eq(conv2d_dnnl_forward(ctx, NULL, x, w, NULL, &ok, &err), DC_ERR_ARG);
    ck_assert_int_eq(conv2d_dnnl_backward(ctx, y, NULL, NULL, x, x, NULL, &ok, &err), DC_ERR_ARG);
    ck_assert_int_eq(conv2d_dnnl_backward(ctx, NULL, NULL, NULL, x, x, w, &ok, &err), DC_OK);
    dc_dnnl_destroy(ctx);
    dc_dnnl_destroy(NULL);
}
END_TEST

/* Every kind at the network's sizes (widths 64..1024 at 64..16, the cond batch of 3, the 2048-wide
 * middle block), forward and backward: oneDNN must not have fallen back to a reference kernel. */
START_TEST(test_dnnl_no_ref_impl)
{
    const dc_conv_desc cases[] = {
        {1, 64, 64, 64, 128, 1, 1, 0, 1},    {1, 64, 64, 128, 64, 1, 1, 0, 1},
        {3, 64, 64, 64, 128, 1, 1, 0, 1},    {1, 32, 32, 256, 512, 1, 1, 0, 1},
        {1, 16, 16, 1024, 2048, 1, 1, 0, 1}, {1, 16, 16, 2048, 1024, 1, 1, 0, 1},
        {1, 16, 16, 1024, 1024, 1, 1, 0, 1}, {1, 64, 64, 128, 128, 3, 1, 1, 128},
        {1, 32, 32, 512, 512, 3, 1, 1, 512}, {1, 16, 16, 2048, 2048, 3, 1, 1, 2048},
        {1, 64, 64, 64, 128, 2, 2, 0, 1},    {1, 32, 32, 512, 1024, 2, 2, 0, 1},
        {1, 64, 64, 3, 64, 3, 1, 1, 1},      {1, 64, 64, 64, 3, 3, 1, 1, 1},
    };
    dc_dnnl *ctx = NULL;
    dc_error err = {0};
    ck_assert_msg(dc_dnnl_create(&ctx, &err) == DC_OK, "%s", err.msg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_dnnl_case(ctx, &cases[i], 1, 0);
    print_names(ctx, "network sizes");
    const char *names[64];
    int n = dc_dnnl_impl_names(ctx, names, 64);
    ck_assert_int_gt(n, 0);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strncmp(names[i], "ref", 3) != 0, "oneDNN picked a reference kernel: %s", names[i]);
    dc_dnnl_destroy(ctx);
}
END_TEST

#endif /* DIFFCR_HAVE_DNNL */

static Suite *conv_suite(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("ref");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_ref_forward_backward_naive);
    tcase_add_test(tc, test_ref_gradcheck);
    tcase_add_test(tc, test_ref_forward_batch_invariant);
    suite_add_tcase(s, tc);
#ifdef DIFFCR_HAVE_DNNL
    tc = tcase_create("dnnl");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_dnnl_small);
    tcase_add_test(tc, test_dnnl_diffcr_sizes);
    tcase_add_test(tc, test_dnnl_weights_changed);
    tcase_add_test(tc, test_dnnl_bad_args);
    tcase_add_test(tc, test_dnnl_no_ref_impl);
    suite_add_tcase(s, tc);
#else
    printf("test_conv: oneDNN cases SKIPPED (built without DIFFCR_HAVE_DNNL)\n");
#endif
    return s;
}

int main(void)
{
    return tu_run_suite(conv_suite());
}
