/* diffcr tests — SimpleGate and the split simplified channel attention (ops.h): forward against
 * double-precision formulas, backward against central finite differences, PyTorch's first-occurrence
 * argmax (also across thread ranges), and determinism. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/ops.h"
#include "testutil.h"

/* ---------------------------------------------------------------- SimpleGate */

typedef struct {
    size_t P;
    int C;
    float *inp, *out, *r;
} gate_case;

static double gate_loss(void *ctx)
{
    gate_case *k = ctx;
    simplegate_forward(k->out, k->inp, k->P, k->C);
    return tu_dot(k->out, k->r, k->P * (size_t)k->C);
}

START_TEST(test_gate)
{
    const size_t P = 2 * 5 * 7;
    const int C = 6;
    gate_case k = {.P = P, .C = C, .inp = tu_alloc_floats(P * 2 * C), .out = tu_alloc_floats(P * C), .r = tu_alloc_floats(P * C)};
    tu_fill_uniform(k.inp, P * 2 * C, 1, 2.0f);
    tu_fill_uniform(k.r, P * C, 2, 1.0f);
    double *want = malloc(P * C * sizeof(double));
    for (size_t p = 0; p < P; p++)
        for (int c = 0; c < C; c++)
            want[p * C + c] = (double)k.inp[p * 2 * C + c] * k.inp[p * 2 * C + C + c];
    simplegate_forward(k.out, k.inp, P, C);
    ck_assert_double_le(tu_max_rel_err(k.out, want, P * C), 1e-6);

    float *dinp = tu_alloc_floats(P * 2 * C);
    for (size_t i = 0; i < P * 2 * C; i++)
        dinp[i] = 1e30f;
    simplegate_backward(dinp, k.r, k.inp, P, C);
    char msg[256];
    ck_assert_msg(tu_gradcheck(gate_loss, &k, k.inp, dinp, P * 2 * C, 1e-2f, 1e-3, 1e-2, 1000, msg,
                               sizeof msg),
                  "dinp: %s", msg);
    free(want);
    free(dinp);
    free(k.inp);
    free(k.out);
    free(k.r);
}
END_TEST

START_TEST(test_gate_large)
{
    /* Big enough for the parallel path: compare with the formula at 1 and 2 threads. */
    const size_t P = 2 * 33 * 31;
    const int C = 32;
    float *inp = tu_alloc_floats(P * 2 * C), *out = tu_alloc_floats(P * C), *g = tu_alloc_floats(P * C), *dinp = tu_alloc_floats(P * 2 * C);
    tu_fill_uniform(inp, P * 2 * C, 3, 1.0f);
    tu_fill_uniform(g, P * C, 4, 1.0f);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        simplegate_forward(out, inp, P, C);
        simplegate_backward(dinp, g, inp, P, C);
        for (size_t p = 0; p < P; p++)
            for (int c = 0; c < C; c++) {
                const float a = inp[p * 2 * C + c], b = inp[p * 2 * C + C + c], go = g[p * C + c];
                ck_assert_double_eq_tol(out[p * C + c], (double)a * b, 1e-6);
                ck_assert_double_eq_tol(dinp[p * 2 * C + c], (double)go * b, 1e-6);
                ck_assert_double_eq_tol(dinp[p * 2 * C + C + c], (double)go * a, 1e-6);
            }
    }
    free(inp);
    free(out);
    free(g);
    free(dinp);
}
END_TEST

/* ---------------------------------------------------------------- split SCA */

typedef struct {
    int N, C;
    size_t HW;
    float *x, *w_avg, *b_avg, *w_max, *b_max, *r;
    float *out, *pooled, *scale;
    int *argmax;
} sca_case;

/* Random x, except that each max-half channel of each sample holds a permutation of well separated
 * levels (0.1 apart, plus noise under 0.01), so a finite-difference step cannot move the argmax. */
static sca_case sca_make(int N, size_t HW, int C, uint64_t seed)
{
    const int h = C / 2;
    const size_t n = (size_t)N * HW * (size_t)C;
    sca_case k = {.N = N, .HW = HW, .C = C};
    k.x = tu_alloc_floats(n);
    k.r = tu_alloc_floats(n);
    k.out = tu_alloc_floats(n);
    k.w_avg = tu_alloc_floats((size_t)h * h);
    k.w_max = tu_alloc_floats((size_t)h * h);
    k.b_avg = tu_alloc_floats((size_t)h);
    k.b_max = tu_alloc_floats((size_t)h);
    k.pooled = tu_alloc_floats((size_t)N * C);
    k.scale = tu_alloc_floats((size_t)N * C);
    k.argmax = malloc((size_t)N * h * sizeof(int));
    tu_fill_uniform(k.x, n, seed, 1.0f);
    float *noise = tu_alloc_floats(n);
    tu_fill_uniform(noise, n, seed + 7, 0.004f);
    /* (p * stride + offset) mod HW with stride coprime to HW is a permutation of 0..HW-1. */
    size_t stride = 7;
    for (;; stride++) {
        size_t a = stride, b = HW;
        while (b) {
            size_t t = a % b;
            a = b;
            b = t;
        }
        if (a == 1)
            break;
    }
    for (int s = 0; s < N; s++)
        for (int c = 0; c < h; c++)
            for (size_t p = 0; p < HW; p++) {
                size_t level = (p * stride + (size_t)(3 * c + 5 * s)) % HW;
                size_t at = ((size_t)s * HW + p) * (size_t)C + (size_t)(h + c);
                k.x[at] = 0.1f * (float)level - 0.05f * (float)HW + noise[at];
            }
    free(noise);
    tu_fill_uniform(k.r, n, seed + 1, 1.0f);
    tu_fill_uniform(k.w_avg, (size_t)h * h, seed + 2, 0.5f);
    tu_fill_uniform(k.w_max, (size_t)h * h, seed + 3, 0.5f);
    tu_fill_uniform(k.b_avg, (size_t)h, seed + 4, 0.5f);
    tu_fill_uniform(k.b_max, (size_t)h, seed + 5, 0.5f);
    return k;
}

static void sca_free(sca_case *k)
{
    free(k->x);
    free(k->r);
    free(k->out);
    free(k->w_avg);
    free(k->w_max);
    free(k->b_avg);
    free(k->b_max);
    free(k->pooled);
    free(k->scale);
    free(k->argmax);
}

static void sca_run(sca_case *k)
{
    sca_forward(k->out, k->pooled, k->scale, k->argmax, k->x, k->w_avg, k->b_avg, k->w_max, k->b_max,
                k->N, k->HW, k->C);
}

static double sca_loss(void *ctx)
{
    sca_case *k = ctx;
    sca_run(k);
    return tu_dot(k->out, k->r, (size_t)k->N * k->HW * (size_t)k->C);
}

/* The forward straight from the definition, in double. */
static void naive_sca(double *out, double *pooled, double *scale, int *argmax, const sca_case *k)
{
    const int C = k->C, h = C / 2;
    for (int n = 0; n < k->N; n++) {
        for (int c = 0; c < h; c++) {
            double s = 0.0;
            for (size_t p = 0; p < k->HW; p++)
                s += k->x[((size_t)n * k->HW + p) * C + c];
            pooled[n * C + c] = s / (double)k->HW;
            double m = -INFINITY;
            int at = -1;
            for (size_t p = 0; p < k->HW; p++) {
                double v = k->x[((size_t)n * k->HW + p) * C + h + c];
                if (at < 0 || v > m) {
                    m = v;
                    at = (int)p;
                }
            }
            pooled[n * C + h + c] = m;
            argmax[n * h + c] = at;
        }
        for (int o = 0; o < h; o++) {
            double sa = k->b_avg[o], sm = k->b_max[o];
            for (int i = 0; i < h; i++) {
                sa += (double)k->w_avg[o * h + i] * pooled[n * C + i];
                sm += (double)k->w_max[o * h + i] * pooled[n * C + h + i];
            }
            scale[n * C + o] = sa;
            scale[n * C + h + o] = sm;
        }
        for (size_t p = 0; p < k->HW; p++)
            for (int c = 0; c < C; c++) {
                size_t at = ((size_t)n * k->HW + p) * C + c;
                out[at] = k->x[at] * scale[n * C + c];
            }
    }
}

static void check_sca_forward(int N, size_t HW, int C, int threads)
{
    omp_set_num_threads(threads);
    sca_case k = sca_make(N, HW, C, 100 + (uint64_t)C);
    const size_t n = (size_t)N * HW * C;
    const int h = C / 2;
    double *out = malloc(n * sizeof(double)), *pooled = malloc((size_t)N * C * sizeof(double)),
           *scale = malloc((size_t)N * C * sizeof(double));
    int *argmax = malloc((size_t)N * h * sizeof(int));
    /* Random max half too, ties impossible in practice; the tie rule has its own test. */
    tu_fill_uniform(k.x, n, 77 + (uint64_t)C, 1.5f);
    sca_run(&k);
    naive_sca(out, pooled, scale, argmax, &k);
    ck_assert_double_le(tu_max_rel_err(k.pooled, pooled, (size_t)N * C), 1e-5);
    ck_assert_double_le(tu_max_rel_err(k.scale, scale, (size_t)N * C), 1e-5);
    ck_assert_double_le(tu_max_rel_err(k.out, out, n), 1e-5);
    for (int i = 0; i < N * h; i++)
        ck_assert_int_eq(k.argmax[i], argmax[i]);
    free(out);
    free(pooled);
    free(scale);
    free(argmax);
    sca_free(&k);
}

START_TEST(test_sca_forward)
{
    check_sca_forward(2, 5 * 7, 12, 2);
    check_sca_forward(2, 5 * 7, 6, 1);
    check_sca_forward(3, 9 * 11, 34, 3);
    /* Fewer pixels than threads: some threads own empty ranges. */
    check_sca_forward(2, 1, 8, 3);
    check_sca_forward(1, 2, 4, 3);
}
END_TEST

START_TEST(test_sca_argmax_first_occurrence)
{
    /* Ties must resolve to the first pixel, whichever thread owns it. */
    const int N = 1, C = 4, h = 2;
    const size_t HW = 35;
    for (int threads = 1; threads <= 4; threads++) {
        omp_set_num_threads(threads);
        sca_case k = sca_make(N, HW, C, 3);
        for (size_t p = 0; p < HW; p++) {
            k.x[p * C + h + 0] = (p == 5 || p == 20 || p == 30) ? 2.0f : -1.0f; /* spans ranges */
            k.x[p * C + h + 1] = (p == 30 || p == 33) ? 2.0f : -1.0f;           /* inside one */
        }
        sca_run(&k);
        ck_assert_int_eq(k.argmax[0], 5);
        ck_assert_int_eq(k.argmax[1], 30);
        ck_assert_float_eq(k.pooled[h + 0], 2.0f);
        /* All equal, including all -inf: index 0. */
        for (size_t p = 0; p < HW; p++) {
            k.x[p * C + h + 0] = 0.5f;
            k.x[p * C + h + 1] = -INFINITY;
        }
        sca_run(&k);
        ck_assert_int_eq(k.argmax[0], 0);
        ck_assert_int_eq(k.argmax[1], 0);
        ck_assert_float_eq(k.pooled[h + 0], 0.5f);
        sca_free(&k);
    }
}
END_TEST

static void check_sca_backward(int N, size_t HW, int C, int threads)
{
    omp_set_num_threads(threads);
    sca_case k = sca_make(N, HW, C, 200 + (uint64_t)C);
    const int h = C / 2;
    const size_t n = (size_t)N * HW * C;
    float *dx = tu_alloc_floats(n), *dwa = tu_alloc_floats((size_t)h * h), *dwm = tu_alloc_floats((size_t)h * h),
          *dba = tu_alloc_floats((size_t)h), *dbm = tu_alloc_floats((size_t)h);
    sca_run(&k);
    for (size_t i = 0; i < n; i++)
        dx[i] = 1e30f;
    for (int i = 0; i < h * h; i++)
        dwa[i] = dwm[i] = 1e30f;
    sca_backward(dx, dwa, dba, dwm, dbm, k.r, k.x, k.pooled, k.scale, k.argmax, k.w_avg, k.w_max, N, HW,
                 C);
    char msg[256];
    ck_assert_msg(tu_gradcheck(sca_loss, &k, k.x, dx, n, 1e-2f, 1e-3, 1e-2, 500, msg, sizeof msg),
                  "dx: %s", msg);
    ck_assert_msg(tu_gradcheck(sca_loss, &k, k.w_avg, dwa, (size_t)h * h, 1e-2f, 1e-3, 1e-2, 1000, msg,
                               sizeof msg),
                  "dw_avg: %s", msg);
    ck_assert_msg(tu_gradcheck(sca_loss, &k, k.w_max, dwm, (size_t)h * h, 1e-2f, 1e-3, 1e-2, 1000, msg,
                               sizeof msg),
                  "dw_max: %s", msg);
    ck_assert_msg(tu_gradcheck(sca_loss, &k, k.b_avg, dba, (size_t)h, 1e-2f, 1e-3, 1e-2, 1000, msg,
                               sizeof msg),
                  "db_avg: %s", msg);
    ck_assert_msg(tu_gradcheck(sca_loss, &k, k.b_max, dbm, (size_t)h, 1e-2f, 1e-3, 1e-2, 1000, msg,
                               sizeof msg),
                  "db_max: %s", msg);
    free(dx);
    free(dwa);
    free(dwm);
    free(dba);
    free(dbm);
    sca_free(&k);
}

START_TEST(test_sca_backward)
{
    check_sca_backward(2, 5 * 7, 12, 2);
    check_sca_backward(2, 5 * 7, 6, 1);
    check_sca_backward(1, 3 * 5, 10, 3);
}
END_TEST

/* Forward and backward at one thread count, into freshly allocated buffers (caller frees). */
typedef struct {
    float *out, *pooled, *scale, *dx, *dwa, *dba, *dwm, *dbm;
    int *argmax;
} sca_result;

static sca_result sca_all(sca_case *k, int threads)
{
    const int h = k->C / 2;
    const size_t n = (size_t)k->N * k->HW * k->C, nc = (size_t)k->N * k->C;
    sca_result r = {tu_alloc_floats(n),   tu_alloc_floats(nc), tu_alloc_floats(nc), tu_alloc_floats(n), tu_alloc_floats((size_t)h * h),
                    tu_alloc_floats((size_t)h), tu_alloc_floats((size_t)h * h), tu_alloc_floats((size_t)h),
                    malloc((size_t)k->N * h * sizeof(int))};
    omp_set_num_threads(threads);
    sca_forward(r.out, r.pooled, r.scale, r.argmax, k->x, k->w_avg, k->b_avg, k->w_max, k->b_max, k->N,
                k->HW, k->C);
    sca_backward(r.dx, r.dwa, r.dba, r.dwm, r.dbm, k->r, k->x, r.pooled, r.scale, r.argmax, k->w_avg,
                 k->w_max, k->N, k->HW, k->C);
    return r;
}

static void sca_result_free(sca_result *r)
{
    free(r->out);
    free(r->pooled);
    free(r->scale);
    free(r->dx);
    free(r->dwa);
    free(r->dba);
    free(r->dwm);
    free(r->dbm);
    free(r->argmax);
}

START_TEST(test_sca_determinism)
{
    const int N = 2, C = 64, h = C / 2;
    const size_t HW = 33 * 31, n = (size_t)N * HW * C, nc = (size_t)N * C;
    sca_case k = sca_make(N, HW, C, 9);
    tu_fill_uniform(k.x, n, 10, 1.0f);
    sca_result a = sca_all(&k, 2), b = sca_all(&k, 2);
    ck_assert_int_eq(memcmp(a.out, b.out, n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.dx, b.dx, n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.dwa, b.dwa, (size_t)h * h * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.dbm, b.dbm, (size_t)h * sizeof(float)), 0);
    for (int threads = 1; threads <= 3; threads += 2) {
        sca_result c = sca_all(&k, threads);
        ck_assert_double_le(tu_max_rel_diff(c.pooled, a.pooled, nc, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(c.out, a.out, n, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(c.dx, a.dx, n, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(c.dwa, a.dwa, (size_t)h * h, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(c.dwm, a.dwm, (size_t)h * h, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(c.dba, a.dba, (size_t)h, 1e-3), 1e-5);
        ck_assert_double_le(tu_max_rel_diff(c.dbm, a.dbm, (size_t)h, 1e-3), 1e-5);
        ck_assert_int_eq(memcmp(c.argmax, a.argmax, (size_t)N * h * sizeof(int)), 0);
        sca_result_free(&c);
    }
    sca_result_free(&a);
    sca_result_free(&b);
    sca_free(&k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_gate_sca");
    TCase *tc = tcase_create("gate_sca");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gate);
    tcase_add_test(tc, test_gate_large);
    tcase_add_test(tc, test_sca_forward);
    tcase_add_test(tc, test_sca_argmax_first_occurrence);
    tcase_add_test(tc, test_sca_backward);
    tcase_add_test(tc, test_sca_determinism);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
