/* diffcr tests — LayerNorm2d (ops.h): forward against a double-precision formula, backward against a
 * double-precision formula and central finite differences, NULL options, and determinism. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/ops.h"
#include "testutil.h"

/* Forward in double straight from the definition (biased variance, eps inside the sqrt). */
static void naive_ln_forward(double *out, double *mean, double *rstd, const float *x, const float *w,
                             const float *b, size_t P, int C)
{
    for (size_t p = 0; p < P; p++) {
        const float *row = x + p * (size_t)C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++)
            m += row[c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (row[c] - m) * (row[c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-6);
        for (int c = 0; c < C; c++)
            out[p * (size_t)C + (size_t)c] = (row[c] - m) * rs * w[c] + b[c];
        mean[p] = m;
        rstd[p] = rs;
    }
}

/* Backward in double, derived independently: d/dx of sum_c dout_c * (w_c * y_c + b_c). */
static void naive_ln_backward(double *dx, double *dw, double *db, const float *dout, const float *x,
                              const float *w, size_t P, int C)
{
    for (int c = 0; c < C; c++)
        dw[c] = db[c] = 0.0;
    for (size_t p = 0; p < P; p++) {
        const float *row = x + p * (size_t)C, *go = dout + p * (size_t)C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++)
            m += row[c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (row[c] - m) * (row[c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-6);
        /* Full Jacobian: dy_c/dx_k = rs * (delta_ck - 1/C - y_c y_k / C). */
        for (int k = 0; k < C; k++) {
            double yk = (row[k] - m) * rs, s = 0.0;
            for (int c = 0; c < C; c++) {
                double yc = (row[c] - m) * rs;
                double jac = rs * ((c == k ? 1.0 : 0.0) - 1.0 / C - yc * yk / C);
                s += (double)go[c] * w[c] * jac;
            }
            dx[p * (size_t)C + (size_t)k] = s;
        }
        for (int c = 0; c < C; c++) {
            dw[c] += (double)go[c] * (row[c] - m) * rs;
            db[c] += go[c];
        }
    }
}

typedef struct {
    size_t P;
    int C;
    float *x, *w, *b, *r;
    float *out, *mean, *rstd;
} ln_case;

static ln_case ln_make(size_t P, int C, uint64_t seed)
{
    ln_case k = {.P = P, .C = C};
    size_t n = P * (size_t)C;
    k.x = malloc(n * sizeof(float));
    k.r = malloc(n * sizeof(float));
    k.out = malloc(n * sizeof(float));
    k.w = malloc((size_t)C * sizeof(float));
    k.b = malloc((size_t)C * sizeof(float));
    k.mean = malloc(P * sizeof(float));
    k.rstd = malloc(P * sizeof(float));
    tu_fill_uniform(k.x, n, seed, 1.0f);
    for (size_t i = 0; i < n; i++) /* a per-pixel offset so the mean matters */
        k.x[i] += 0.5f * (float)((i / (size_t)C) % 5);
    tu_fill_uniform(k.r, n, seed + 1, 1.0f);
    tu_fill_uniform(k.w, (size_t)C, seed + 2, 1.0f);
    for (int c = 0; c < C; c++)
        k.w[c] += 1.0f;
    tu_fill_uniform(k.b, (size_t)C, seed + 3, 0.5f);
    return k;
}

static void ln_free(ln_case *k)
{
    free(k->x);
    free(k->r);
    free(k->out);
    free(k->w);
    free(k->b);
    free(k->mean);
    free(k->rstd);
}

static double ln_loss(void *ctx)
{
    ln_case *k = ctx;
    layernorm2d_forward(k->out, k->mean, k->rstd, k->x, k->w, k->b, k->P, k->C);
    return tu_dot(k->out, k->r, k->P * (size_t)k->C);
}

static void check_forward(size_t P, int C)
{
    ln_case k = ln_make(P, C, 11 + (uint64_t)C);
    size_t n = P * (size_t)C;
    double *want = malloc(n * sizeof(double)), *wm = malloc(P * sizeof(double)),
           *wr = malloc(P * sizeof(double));
    layernorm2d_forward(k.out, k.mean, k.rstd, k.x, k.w, k.b, P, C);
    naive_ln_forward(want, wm, wr, k.x, k.w, k.b, P, C);
    ck_assert_double_le(tu_max_rel_err(k.out, want, n), 1e-5);
    ck_assert_double_le(tu_max_rel_err(k.mean, wm, P), 1e-5);
    ck_assert_double_le(tu_max_rel_err(k.rstd, wr, P), 1e-5);

    /* Inference mode: no statistics saved, same output bits. */
    float *again = malloc(n * sizeof(float));
    layernorm2d_forward(again, NULL, NULL, k.x, k.w, k.b, P, C);
    ck_assert_int_eq(memcmp(again, k.out, n * sizeof(float)), 0);
    free(again);
    free(want);
    free(wm);
    free(wr);
    ln_free(&k);
}

START_TEST(test_forward_matches_formula)
{
    /* N=2, H=5, W=7; C below, at and above the 8-lane width, with a tail. */
    check_forward(2 * 5 * 7, 6);
    check_forward(2 * 5 * 7, 12);
    check_forward(2 * 5 * 7, 67);
    check_forward(1, 1);
}
END_TEST

START_TEST(test_forward_constant_pixel)
{
    /* A constant pixel has zero variance: the output is exactly the bias (eps keeps it finite). */
    const int C = 9;
    float x[9], w[9], b[9], out[9], mean, rstd;
    for (int c = 0; c < C; c++) {
        x[c] = 3.25f;
        w[c] = 2.0f;
        b[c] = 0.1f * (float)c;
    }
    layernorm2d_forward(out, &mean, &rstd, x, w, b, 1, C);
    for (int c = 0; c < C; c++)
        ck_assert_double_eq_tol(out[c], b[c], 1e-6);
    ck_assert_double_eq_tol(mean, 3.25, 1e-6);
    ck_assert_double_eq_tol(rstd, 1.0 / sqrt(1e-6), 1.0);
}
END_TEST

static void check_backward(size_t P, int C)
{
    ln_case k = ln_make(P, C, 29 + (uint64_t)C);
    size_t n = P * (size_t)C;
    float *dx = malloc(n * sizeof(float)), *dw = malloc((size_t)C * sizeof(float)),
          *db = malloc((size_t)C * sizeof(float));
    double *want_dx = malloc(n * sizeof(double)), *want_dw = malloc((size_t)C * sizeof(double)),
           *want_db = malloc((size_t)C * sizeof(double));
    layernorm2d_forward(k.out, k.mean, k.rstd, k.x, k.w, k.b, P, C);
    /* Poison the outputs: backward must write them, not accumulate. */
    for (size_t i = 0; i < n; i++)
        dx[i] = 1e30f;
    for (int c = 0; c < C; c++)
        dw[c] = db[c] = 1e30f;
    layernorm2d_backward(dx, dw, db, k.r, k.x, k.mean, k.rstd, k.w, P, C);

    naive_ln_backward(want_dx, want_dw, want_db, k.r, k.x, k.w, P, C);
    ck_assert_double_le(tu_max_rel_err(dx, want_dx, n), 1e-5);
    ck_assert_double_le(tu_max_rel_err(dw, want_dw, (size_t)C), 1e-5);
    ck_assert_double_le(tu_max_rel_err(db, want_db, (size_t)C), 1e-5);

    char msg[256];
    ck_assert_msg(tu_gradcheck(ln_loss, &k, k.x, dx, n, 1e-2f, 1e-3, 1e-2, 400, msg, sizeof msg),
                  "dinp: %s", msg);
    ck_assert_msg(tu_gradcheck(ln_loss, &k, k.w, dw, (size_t)C, 1e-2f, 1e-3, 1e-2, 400, msg, sizeof msg),
                  "dweight: %s", msg);
    ck_assert_msg(tu_gradcheck(ln_loss, &k, k.b, db, (size_t)C, 1e-2f, 1e-3, 1e-2, 400, msg, sizeof msg),
                  "dbias: %s", msg);

    /* Without parameter gradients: the same dinp bits. */
    float *dx2 = malloc(n * sizeof(float));
    layernorm2d_backward(dx2, NULL, NULL, k.r, k.x, k.mean, k.rstd, k.w, P, C);
    ck_assert_int_eq(memcmp(dx2, dx, n * sizeof(float)), 0);
    float *db2 = malloc((size_t)C * sizeof(float));
    layernorm2d_backward(dx2, NULL, db2, k.r, k.x, k.mean, k.rstd, k.w, P, C);
    ck_assert_int_eq(memcmp(db2, db, (size_t)C * sizeof(float)), 0);
    free(dx2);
    free(db2);
    free(dx);
    free(dw);
    free(db);
    free(want_dx);
    free(want_dw);
    free(want_db);
    ln_free(&k);
}

START_TEST(test_backward_gradients)
{
    check_backward(2 * 5 * 7, 6);
    check_backward(2 * 5 * 7, 12);
    check_backward(3 * 3, 19);
}
END_TEST

/* Runs forward + backward with the given thread count into the given outputs. */
static void run_ln(ln_case *k, int threads, float *out, float *dx, float *dw, float *db)
{
    omp_set_num_threads(threads);
    layernorm2d_forward(out, k->mean, k->rstd, k->x, k->w, k->b, k->P, k->C);
    layernorm2d_backward(dx, dw, db, k->r, k->x, k->mean, k->rstd, k->w, k->P, k->C);
}

START_TEST(test_determinism)
{
    const size_t P = 2 * 33 * 31;
    const int C = 64;
    const size_t n = P * (size_t)C;
    ln_case k = ln_make(P, C, 5);
    float *out[4], *dx[4], *dw[4], *db[4];
    for (int i = 0; i < 4; i++) {
        out[i] = malloc(n * sizeof(float));
        dx[i] = malloc(n * sizeof(float));
        dw[i] = malloc((size_t)C * sizeof(float));
        db[i] = malloc((size_t)C * sizeof(float));
    }
    run_ln(&k, 2, out[0], dx[0], dw[0], db[0]);
    run_ln(&k, 2, out[1], dx[1], dw[1], db[1]);
    ck_assert_int_eq(memcmp(out[0], out[1], n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(dx[0], dx[1], n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(dw[0], dw[1], (size_t)C * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(db[0], db[1], (size_t)C * sizeof(float)), 0);

    run_ln(&k, 1, out[2], dx[2], dw[2], db[2]);
    run_ln(&k, 3, out[3], dx[3], dw[3], db[3]);
    for (int i = 2; i < 4; i++) {
        ck_assert_double_le(tu_max_rel_diff(out[i], out[0], n, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(dx[i], dx[0], n, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(dw[i], dw[0], (size_t)C, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(db[i], db[0], (size_t)C, 1e-3), 1e-5);
    }
    for (int i = 0; i < 4; i++) {
        free(out[i]);
        free(dx[i]);
        free(dw[i]);
        free(db[i]);
    }
    ln_free(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_layernorm");
    TCase *tc = tcase_create("layernorm2d");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_forward_matches_formula);
    tcase_add_test(tc, test_forward_constant_pixel);
    tcase_add_test(tc, test_backward_gradients);
    tcase_add_test(tc, test_determinism);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
