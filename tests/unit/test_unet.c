/* diffcr tests — the whole DiffCR network: parameter table, MAC count, cached vs uncached vs training
 * forward, backends against each other, gradients against finite differences, and weight loading
 * errors. The PyTorch oracle (tests/reference) checks exact agreement with DiffCR separately. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diffcr/backend.h"
#include "diffcr/safetensors.h"
#include "diffcr/unet.h"
#include "testutil.h"

static dc_unet_config tiny_config(void)
{
    dc_unet_config c;
    memset(&c, 0, sizeof c);
    c.img_channel = 3;
    c.width = 4;
    c.n_levels = 2;
    c.enc_blk_nums[0] = 1, c.enc_blk_nums[1] = 2;
    c.dec_blk_nums[0] = 2, c.dec_blk_nums[1] = 1;
    c.middle_blk_num = 1;
    c.ndates = 3;
    return c;
}

/* Random weights where no block is an identity (DiffCR's init has beta = gamma = 0). */
static float *random_params(const dc_param_table *tab, unsigned seed)
{
    float *p = malloc(tab->total * sizeof *p);
    dc_unet_init_params(p, tab, seed);
    for (int i = 0; i < tab->count; i++) {
        const dc_param_view *v = &tab->views[i];
        size_t n = v->numel;
        const char *nm = v->name;
        size_t len = strlen(nm);
        if ((len > 5 && !strcmp(nm + len - 5, ".beta")) || (len > 6 && !strcmp(nm + len - 6, ".gamma")) ||
            (len > 5 && !strcmp(nm + len - 5, ".bias")))
            tu_fill_uniform(p + v->offset, n, seed * 1000u + (unsigned)i, 0.1f);
    }
    return p;
}

typedef struct net_fixture {
    dc_backend *be;
    dc_unet *net;
    dc_unet_config cfg;
    int B, H, W;
    float *cond, *x, *tin, *out, *r;
} net_fixture;

static void fixture_open(net_fixture *f, const char *device, int B, int H, int W, unsigned seed)
{
    dc_error err;
    f->cfg = tiny_config();
    f->B = B, f->H = H, f->W = W;
    ck_assert_int_eq(dc_backend_create(&f->be, device, 0, &err), DC_OK);
    ck_assert_msg(dc_unet_create(&f->net, &f->cfg, f->be, &err) == DC_OK, "%s", err.msg);
    float *p = random_params(dc_unet_params_table(f->net), seed);
    ck_assert_int_eq(dc_unet_set_params(f->net, p, &err), DC_OK);
    free(p);
    size_t P = (size_t)B * H * W;
    f->cond = malloc(P * 9 * sizeof(float));
    f->x = malloc(P * 3 * sizeof(float));
    f->out = malloc(P * 3 * sizeof(float));
    f->r = malloc(P * 3 * sizeof(float));
    f->tin = malloc((size_t)B * sizeof(float));
    tu_fill_uniform(f->cond, P * 9, seed + 1, 1.0f);
    tu_fill_uniform(f->x, P * 3, seed + 2, 1.0f);
    tu_fill_uniform(f->r, P * 3, seed + 3, 1.0f);
    for (int b = 0; b < B; b++)
        f->tin[b] = b % 2 ? 0.37f : 640.5f; /* a gamma and a DPM-style time input */
}

static void fixture_close(net_fixture *f)
{
    dc_unet_destroy(f->net);
    dc_backend_destroy(f->be);
    free(f->cond), free(f->x), free(f->out), free(f->r), free(f->tin);
}

START_TEST(test_paper_param_table)
{
    dc_unet_config cfg;
    dc_unet_config_default(&cfg);
    dc_param_table tab;
    dc_error err;
    ck_assert_int_eq(dc_param_table_build(&tab, &cfg, &err), DC_OK);
    ck_assert_int_eq(tab.count, 308);                 /* DIFFCR.md §2.3 */
    ck_assert_uint_eq(tab.total, 22937731u);          /* DIFFCR.md §2.4 */
    const dc_param_view *v = dc_param_table_find(&tab, "middle_blks.0.conv1.weight");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->shape[0], 2048);
    ck_assert_int_eq(v->shape[1], 1024);
    v = dc_param_table_find(&tab, "ups.0.0.weight");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->shape[0], 2048);
    ck_assert_int_eq(v->shape[1], 1024);
    ck_assert_ptr_null(dc_param_table_find(&tab, "ups.0.0.bias"));
    v = dc_param_table_find(&tab, "cond_encoders.2.0.sca_max.1.weight");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->shape[0], 128);               /* dw_channel/4 = 2*256/4 at c = 256 */
    v = dc_param_table_find(&tab, "encoders.0.0.time_emb.1.weight");
    ck_assert_int_eq(v->shape[0], 64);
    ck_assert_int_eq(v->shape[1], 256);
    ck_assert_ptr_null(dc_param_table_find(&tab, "cond_encoders.0.0.time_emb.1.weight"));
    v = dc_param_table_find(&tab, "encoders.1.0.beta");
    ck_assert_int_eq(v->ndim, 4);
    ck_assert_int_eq(v->shape[1], 128);
    /* by-module counts of DIFFCR.md §2.4 */
    size_t enc = 0, cenc = 0, mid = 0, map = 0;
    for (int i = 0; i < tab.count; i++) {
        if (!strncmp(tab.views[i].name, "encoders.", 9)) enc += tab.views[i].numel;
        if (!strncmp(tab.views[i].name, "cond_encoders.", 14)) cenc += tab.views[i].numel;
        if (!strncmp(tab.views[i].name, "middle_blks.", 12)) mid += tab.views[i].numel;
        if (!strncmp(tab.views[i].name, "map.", 4)) map += tab.views[i].numel;
    }
    ck_assert_uint_eq(enc, 2541440u);
    ck_assert_uint_eq(cenc, 2294720u);
    ck_assert_uint_eq(mid, 7112704u);
    ck_assert_uint_eq(map, 82432u);
    dc_param_table_free(&tab);
}
END_TEST

START_TEST(test_paper_macs)
{
    dc_unet_config cfg;
    dc_unet_config_default(&cfg);
    double cond, main_;
    dc_unet_macs(&cfg, 1, 256, 256, &cond, &main_);
    /* BACKENDS.md §2: 45.841 GMAC with the unused last cond_down (1.61), 44.23 without; the count
     * here includes SCA and time linears (0.002 G). */
    ck_assert_msg(fabs((cond + main_) / 1e9 - 44.23) < 0.05, "total %.3f GMAC", (cond + main_) / 1e9);
    /* condition path: DIFFCR.md §2.4 gives 0.35 + 19.94 + (6.45 - 1.61) G *including biases*
     * (≈ 0.2 G of them); weights only, by hand: 0.340 (cond_intro) + 19.751 (blocks, 6c²+18c per
     * pixel) + 4.832 (three used cond_downs) = 24.92 G. */
    ck_assert_msg(fabs(cond / 1e9 - 24.92) < 0.02, "cond %.3f GMAC", cond / 1e9);
}
END_TEST

START_TEST(test_cached_equals_training_forward)
{
    net_fixture f;
    dc_error err;
    fixture_open(&f, "ref", 2, 10, 13, 7);
    size_t n = (size_t)f.B * f.H * f.W * 3;
    float *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
    ck_assert_msg(dc_unet_forward(f.net, o1, f.cond, f.x, f.tin, f.B, f.H, f.W, &err) == DC_OK, "%s", err.msg);
    ck_assert_msg(dc_unet_forward_train(f.net, o2, f.cond, f.x, f.tin, f.B, f.H, f.W, &err) == DC_OK, "%s", err.msg);
    double d = tu_max_abs_diff(o1, o2, n);
    ck_assert_msg(d <= 1e-5, "inference vs training forward differ by %g", d);
    /* the output is not trivially zero or constant */
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(o1[i] - o1[0]);
    ck_assert(s > 1e-3);
    /* the condition cache: one set_condition, several calls with other x / t */
    ck_assert_int_eq(dc_unet_set_condition(f.net, f.cond, f.B, f.H, f.W, &err), DC_OK);
    for (int rep = 0; rep < 2; rep++) {
        tu_fill_uniform(f.x, n, 100 + rep, 1.0f);
        f.tin[0] = 10.0f * rep;
        ck_assert_int_eq(dc_unet_forward_cached(f.net, o1, f.x, f.tin, &err), DC_OK);
        ck_assert_int_eq(dc_unet_forward_train(f.net, o2, f.cond, f.x, f.tin, f.B, f.H, f.W, &err), DC_OK);
        ck_assert(tu_max_abs_diff(o1, o2, n) <= 1e-5);
    }
    free(o1), free(o2);
    fixture_close(&f);
}
END_TEST

START_TEST(test_backends_agree)
{
    net_fixture a, b;
    dc_error err;
    fixture_open(&a, "ref", 1, 16, 20, 11);
    fixture_open(&b, "cpu", 1, 16, 20, 11);
    size_t n = (size_t)16 * 20 * 3;
    ck_assert_int_eq(dc_unet_forward(a.net, a.out, a.cond, a.x, a.tin, 1, 16, 20, &err), DC_OK);
    ck_assert_msg(dc_unet_forward(b.net, b.out, b.cond, b.x, b.tin, 1, 16, 20, &err) == DC_OK, "%s", err.msg);
    /* different summation orders: compare relative to the output's scale */
    double d = tu_max_rel_diff(b.out, a.out, n, 1.0);
    ck_assert_msg(d <= 1e-5, "ref vs cpu forward differ by %g (relative)", d);
    fixture_close(&a);
    fixture_close(&b);
}
END_TEST

typedef struct grad_ctx {
    net_fixture *f;
    float *params_host;
} grad_ctx;

static double net_loss(void *vctx)
{
    grad_ctx *g = vctx;
    net_fixture *f = g->f;
    dc_error err;
    dc_unet_set_params(f->net, g->params_host, &err);
    dc_unet_forward(f->net, f->out, f->cond, f->x, f->tin, f->B, f->H, f->W, &err);
    return tu_dot(f->out, f->r, (size_t)f->B * f->H * f->W * 3);
}

START_TEST(test_gradients_finite_differences)
{
    net_fixture f;
    dc_error err;
    fixture_open(&f, "ref", 2, 8, 12, 3);
    const dc_param_table *tab = dc_unet_params_table(f.net);
    float *host = malloc(tab->total * sizeof *host);
    f.be->to_host(f.be, host, dc_unet_params(f.net), tab->total * sizeof *host);
    /* Finite differences in float32 need a well-conditioned net: gamma-range time inputs and
     * halved weights keep activations O(1), so rounding and max-pool argmax flips stay small. */
    for (size_t i = 0; i < tab->total; i++)
        host[i] *= 0.5f;
    f.tin[0] = 0.3f, f.tin[1] = 0.8f;
    ck_assert_int_eq(dc_unet_set_params(f.net, host, &err), DC_OK);
    size_t n = (size_t)f.B * f.H * f.W * 3;
    ck_assert_int_eq(dc_unet_forward_train(f.net, f.out, f.cond, f.x, f.tin, f.B, f.H, f.W, &err), DC_OK);
    ck_assert_msg(dc_unet_backward(f.net, f.r, &err) == DC_OK, "%s", err.msg);
    float *grad = malloc(tab->total * sizeof *grad);
    f.be->to_host(f.be, grad, dc_unet_grads(f.net), tab->total * sizeof *grad);
    (void)n;
    grad_ctx ctx = {&f, host};
    char msg[256];
    int checked = 0;
    for (int i = 0; i < tab->count; i++) {
        const dc_param_view *v = &tab->views[i];
        int ok = tu_gradcheck(net_loss, &ctx, host + v->offset, grad + v->offset, v->numel, 3e-3f,
                              2e-3, 3e-2, 2, msg, sizeof msg);
        ck_assert_msg(ok, "%s: %s", v->name, msg);
        checked++;
    }
    ck_assert_int_eq(checked, tab->count);
    free(host), free(grad);
    fixture_close(&f);
}
END_TEST

/* fp16 loss scaling (dc_unet_backward): with the precision marked fp16 on the reference backend
 * (whose arithmetic stays fp32), the backward runs on a power-of-two-scaled dout and unscales the
 * gradients, which must then equal the unscaled fp32 pass bit for bit, at a training-sized dout
 * (~1e-6 a value) and at a large one; the caller's dout is left as it was. */
START_TEST(test_fp16_loss_scaling_is_exact)
{
    net_fixture f;
    dc_error err;
    fixture_open(&f, "ref", 2, 8, 12, 5);
    const dc_param_table *tab = dc_unet_params_table(f.net);
    size_t n = (size_t)f.B * f.H * f.W * 3;
    float *dout = malloc(n * sizeof *dout), *kept = malloc(n * sizeof *kept);
    float *g32 = malloc(tab->total * sizeof *g32), *g16 = malloc(tab->total * sizeof *g16);
    const float sizes[2] = {2.0f / (8 * 3 * 256 * 256), 300.0f};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n; i++)
            dout[i] = f.r[i] * sizes[k];
        memcpy(kept, dout, n * sizeof *dout);
        for (int pass = 0; pass < 2; pass++) {
            f.be->precision = pass ? DC_PRECISION_FP16 : DC_PRECISION_FP32;
            ck_assert_int_eq(dc_unet_forward_train(f.net, f.out, f.cond, f.x, f.tin, f.B, f.H, f.W, &err), DC_OK);
            ck_assert_msg(dc_unet_backward(f.net, dout, &err) == DC_OK, "%s", err.msg);
            f.be->to_host(f.be, pass ? g16 : g32, dc_unet_grads(f.net), tab->total * sizeof(float));
        }
        f.be->precision = DC_PRECISION_FP32;
        ck_assert_msg(!memcmp(dout, kept, n * sizeof *dout), "dc_unet_backward changed the caller's dout");
        size_t differ = 0, nonzero = 0;
        for (size_t i = 0; i < tab->total; i++)
            differ += g16[i] != g32[i], nonzero += g32[i] != 0;
        ck_assert_msg(differ == 0, "dout x %g: %zu of %zu gradients differ after fp16 loss scaling", sizes[k], differ,
                      tab->total);
        ck_assert_msg(nonzero > tab->total / 2, "only %zu gradients are non-zero", nonzero);
    }
    free(dout), free(kept), free(g32), free(g16);
    fixture_close(&f);
}
END_TEST

/* Writes the table's tensors from p to path as safetensors, without tensor `skip` and with tensor
 * `squash` declared 1x1x1x1 (its data a prefix of the real one); -1 for neither. */
static void write_params(const dc_param_table *tab, const float *p, const char *path, int skip, int squash)
{
    dc_error err;
    dc_st_writer *w = dc_st_writer_new();
    for (int i = 0; i < tab->count; i++) {
        if (i == skip)
            continue;
        int64_t shape[4];
        for (int k = 0; k < tab->views[i].ndim; k++)
            shape[k] = i == squash ? 1 : tab->views[i].shape[k];
        ck_assert_int_eq(dc_st_writer_add(w, tab->views[i].name, DC_DTYPE_F32, tab->views[i].ndim, shape,
                                          p + tab->views[i].offset, &err), DC_OK);
    }
    ck_assert_int_eq(dc_st_writer_write(w, path, &err), DC_OK);
    dc_st_writer_free(w);
}

START_TEST(test_load_rejects_mismatched_weights)
{
    dc_unet_config cfg = tiny_config();
    dc_backend *be;
    dc_unet *net;
    dc_error err;
    ck_assert_int_eq(dc_backend_create(&be, "ref", 1, &err), DC_OK);
    ck_assert_int_eq(dc_unet_create(&net, &cfg, be, &err), DC_OK);
    const dc_param_table *tab = dc_unet_params_table(net);
    float *p = random_params(tab, 5);
    const char *path = tu_tmp_path("weights.safetensors");
    /* write all but one tensor: the error names the missing key */
    write_params(tab, p, path, 0, -1);
    ck_assert_int_ne(dc_unet_load_params(net, path, &err), DC_OK);
    ck_assert_msg(strstr(err.msg, tab->views[0].name) != NULL, "message: %s", err.msg);
    /* a tensor with the wrong shape */
    write_params(tab, p, path, -1, 3);
    ck_assert_int_ne(dc_unet_load_params(net, path, &err), DC_OK);
    ck_assert_msg(strstr(err.msg, tab->views[3].name) && strstr(err.msg, "shape"), "message: %s", err.msg);
    /* every tensor right, one value NaN: refused, naming the tensor */
    p[tab->views[5].offset + 2] = NAN;
    write_params(tab, p, path, -1, -1);
    ck_assert_int_eq(dc_unet_load_params(net, path, &err), DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, tab->views[5].name) && strstr(err.msg, "nan at index 2"), "message: %s", err.msg);
    unlink(path);
    free(p);
    dc_unet_destroy(net);
    dc_backend_destroy(be);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("unet");
    TCase *tc = tcase_create("network");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_paper_param_table);
    tcase_add_test(tc, test_paper_macs);
    tcase_add_test(tc, test_cached_equals_training_forward);
    tcase_add_test(tc, test_backends_agree);
    tcase_add_test(tc, test_gradients_finite_differences);
    tcase_add_test(tc, test_fp16_loss_scaling_is_exact);
    tcase_add_test(tc, test_load_rejects_mismatched_weights);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
