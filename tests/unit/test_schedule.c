/* diffcr tests — beta schedules, the discrete VP noise schedule and the training maths
 * (schedule.h).
 *
 * Reference values are DIFFCR.md §3.1 (float32 gammas of the official code), §4.1 (N', la) and
 * §4.3 (the 20-step grid and the 21 time inputs the official code feeds its network). A value
 * printed with d digits is checked to half a unit of its last digit. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/philox.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "testutil.h"

/* |got - want| <= half a unit in the last printed digit of want (given as that unit). */
#define ASSERT_DIGITS(got, want, unit)                                                           \
    ck_assert_msg(fabs((double)(got) - (double)(want)) <= 0.5 * (unit) * (1 + 1e-9),             \
                  "%s = %.10g, want %.10g (+- %.1g)", #got, (double)(got), (double)(want),      \
                  0.5 * (unit))

static double *sigmoid_gammas(int n, double *betas)
{
    double *g = malloc((size_t)n * sizeof *g);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(dc_make_beta_schedule(betas, DC_BETA_SIGMOID, n, 1e-4, 0.09, 8e-3, NULL), DC_OK);
    dc_alphas_cumprod(g, betas, n);
    return g;
}

/* DIFFCR.md §3.1: the published float32 gammas of the train (2000) and test (1000) schedules. */
START_TEST(test_sigmoid_gammas)
{
    double *b2 = malloc(2000 * sizeof *b2), *b1 = malloc(1000 * sizeof *b1);
    ck_assert(b1 && b2);
    double *g2 = sigmoid_gammas(2000, b2);
    ASSERT_DIGITS((float)g2[0], 0.99985003, 1e-8);
    ASSERT_DIGITS((float)g2[1], 0.99969971, 1e-8);
    ASSERT_DIGITS((float)g2[2], 0.99954897, 1e-8);
    ASSERT_DIGITS((float)g2[1000], 0.49917141, 1e-8);
    ASSERT_DIGITS((float)g2[1998], 1.4994e-4, 1e-8);
    ASSERT_DIGITS((float)g2[1999], 1.4994e-7, 1e-11);
    ASSERT_DIGITS(b2[0], 1.4994e-4, 1e-8);
    ASSERT_DIGITS(b2[1000], 1.657e-3, 1e-6);
    ck_assert(b2[1999] == 0.999);

    double *g1 = sigmoid_gammas(1000, b1);
    ASSERT_DIGITS((float)g1[0], 0.99969971, 1e-8);
    ASSERT_DIGITS((float)g1[1], 0.99939781, 1e-8);
    ASSERT_DIGITS((float)g1[2], 0.99909425, 1e-8);
    ASSERT_DIGITS((float)g1[500], 0.49834281, 1e-8);
    /* 3.0029e-4 needs the float32 sigmoid(+-3) constants: with float64 ones it is 3.00279e-4 */
    ASSERT_DIGITS((float)g1[998], 3.0029e-4, 1e-8);
    ASSERT_DIGITS((float)g1[999], 3.0029e-7, 1e-11);
    ASSERT_DIGITS(b1[0], 3.0028e-4, 1e-8);
    ASSERT_DIGITS(b1[500], 3.314e-3, 1e-6);
    ck_assert(b1[999] == 0.999);

    /* the same continuous curve at two densities: gammas_1000[k] ~ gammas_2000[2k+1] */
    for (int k = 0; k < 999; k += 111)
        ck_assert(fabs(g1[k] - g2[2 * k + 1]) < 1e-12 + 1e-9 * g1[k]);
    /* linear_start / linear_end are ignored by the sigmoid schedule */
    double *b3 = malloc(1000 * sizeof *b3);
    ck_assert_int_eq(dc_make_beta_schedule(b3, DC_BETA_SIGMOID, 1000, 1e-6, 1e-2, 8e-3, NULL), DC_OK);
    ck_assert(memcmp(b1, b3, 1000 * sizeof *b1) == 0);
    free(b1);
    free(b2);
    free(b3);
    free(g1);
    free(g2);
}
END_TEST

/* Every schedule: betas in [0, 0.999 or 1], alpha-bar strictly decreasing, closed forms. */
START_TEST(test_other_schedules)
{
    const int n = 1000;
    double *b = malloc(n * sizeof *b), *g = malloc(n * sizeof *g);
    ck_assert(b && g);
    for (int kind = DC_BETA_LINEAR; kind <= DC_BETA_QUAD; kind++) {
        ck_assert_int_eq(dc_make_beta_schedule(b, kind, n, 1e-4, 0.02, 8e-3, NULL), DC_OK);
        dc_alphas_cumprod(g, b, n);
        for (int i = 0; i < n; i++) {
            ck_assert_msg(b[i] > 0.0 && b[i] <= 1.0, "%s beta[%d] = %g", dc_beta_kind_name(kind), i, b[i]);
            if (i > 0)
                ck_assert_msg(g[i] < g[i - 1] || g[i] == 0.0, "%s gamma not decreasing at %d",
                              dc_beta_kind_name(kind), i);
        }
        dc_beta_kind parsed;
        ck_assert_int_eq(dc_beta_kind_parse(dc_beta_kind_name(kind), &parsed, NULL), DC_OK);
        ck_assert_int_eq(parsed, kind);
    }
    /* linear: exact endpoints and constant step */
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_LINEAR, n, 1e-4, 0.02, 0, NULL), DC_OK);
    ck_assert(b[0] == 1e-4 && b[n - 1] == 0.02);
    ck_assert(fabs((b[500] - b[499]) - (0.02 - 1e-4) / (n - 1)) < 1e-15);
    /* quad: squares of a linspace of square roots */
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_QUAD, n, 1e-4, 0.02, 0, NULL), DC_OK);
    ck_assert(fabs(b[0] - 1e-4) < 1e-18 && fabs(b[n - 1] - 0.02) < 1e-17);
    ck_assert(fabs(sqrt(b[500]) - (0.01 + 500 * (sqrt(0.02) - 0.01) / (n - 1))) < 1e-15);
    /* warmup10: ramp over the first 100, then linear_end */
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_WARMUP10, n, 1e-4, 0.02, 0, NULL), DC_OK);
    ck_assert(b[0] == 1e-4 && b[99] == 0.02 && b[100] == 0.02 && b[n - 1] == 0.02);
    ck_assert(b[50] > 1e-4 && b[50] < 0.02);
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_WARMUP50, n, 1e-4, 0.02, 0, NULL), DC_OK);
    ck_assert(b[0] == 1e-4 && b[499] == 0.02 && b[498] < 0.02);
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_CONST, n, 1e-4, 0.02, 0, NULL), DC_OK);
    ck_assert(b[0] == 0.02 && b[n - 1] == 0.02);
    /* jsd: 1/n ... 1, so alpha-bar ends at exactly 0 */
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_JSD, n, 0, 0, 0, NULL), DC_OK);
    ck_assert(b[0] == 1.0 / n && b[n - 1] == 1.0);
    dc_alphas_cumprod(g, b, n);
    ck_assert(g[n - 1] == 0.0);
    ck_assert(fabs(g[n - 2] - 1.0 / n) < 1e-15); /* telescoping product (n-k)/n */
    /* cosine: alpha-bar = f(k+1)/f(0), f(x) = cos^2((x/n + s)/(1 + s) pi/2), until the 0.999 cap */
    const double s = 8e-3, pi = 3.14159265358979323846;
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_COSINE, n, 0, 0, s, NULL), DC_OK);
    dc_alphas_cumprod(g, b, n);
    double f0 = pow(cos(s / (1 + s) * pi / 2), 2);
    for (int k = 0; k < n - 1; k++) {
        double want = pow(cos(((k + 1.0) / n + s) / (1 + s) * pi / 2), 2) / f0;
        ck_assert_msg(fabs(g[k] - want) < 1e-12, "cosine alpha-bar[%d] %.15g vs %.15g", k, g[k], want);
    }
    ck_assert(b[n - 1] == 0.999);
    free(b);
    free(g);
}
END_TEST

START_TEST(test_schedule_errors)
{
    double b[4];
    dc_error err;
    dc_beta_kind k;
    ck_assert_int_eq(dc_beta_kind_parse("cosinus", &k, &err), DC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "cosinus"));
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_LINEAR, 1, 1e-4, 0.02, 0, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_LINEAR, 4, 1e-4, 2.0, 0, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_make_beta_schedule(b, (dc_beta_kind)99, 4, 1e-4, 0.02, 0, &err), DC_ERR_ARG);
    dc_noise_schedule ns;
    double bad[3] = {0.1, -0.2, 0.3};
    ck_assert_int_eq(dc_noise_schedule_init(&ns, bad, 3, DC_NS_FLOAT32, &err), DC_ERR_ARG);
    ck_assert_ptr_null(ns.log_alpha);
    dc_noise_schedule_free(&ns); /* safe after a failed init */
    double zero[3] = {0.1, 0.0, 0.3}; /* flat log alpha: no inverse */
    ck_assert_int_eq(dc_noise_schedule_init(&ns, zero, 3, DC_NS_DOUBLE, &err), DC_ERR_ARG);
    dc_target_kind tk;
    ck_assert_int_eq(dc_target_kind_parse("v", &tk, NULL), DC_OK);
    ck_assert_int_eq(tk, DC_TARGET_V);
    ck_assert_int_eq(dc_target_kind_parse("noise", &tk, &err), DC_ERR_ARG);
}
END_TEST

static void test_schedule_init(dc_noise_schedule *ns, int n, dc_ns_precision prec)
{
    double *b = malloc((size_t)n * sizeof *b);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_SIGMOID, n, 1e-4, 0.09, 8e-3, NULL), DC_OK);
    dc_error err;
    ck_assert_msg(dc_noise_schedule_init(ns, b, n, prec, &err) == DC_OK, "%s", err.msg);
    free(b);
}

/* DIFFCR.md §4.1: N' = 999 / 1999, la[0], la[998]. */
START_TEST(test_vp_table)
{
    for (int prec = DC_NS_FLOAT32; prec <= DC_NS_DOUBLE; prec++) {
        dc_noise_schedule ns;
        test_schedule_init(&ns, 1000, prec);
        ck_assert_int_eq(ns.total_n, 999);
        ck_assert_int_eq(ns.n_betas, 1000);
        ASSERT_DIGITS(ns.log_alpha[0], -1.5016e-4, 1e-8);
        ASSERT_DIGITS(ns.log_alpha[998], -4.055386, 1e-6);
        ASSERT_DIGITS(ns.t[0], 1.0 / 999, 1e-9);
        ck_assert(ns.t[998] == 1.0);
        ck_assert(dc_ns_t_max(&ns) == 1.0);
        ck_assert(fabs(dc_ns_t_min(&ns) - 1.0 / 999) < 1e-9);
        /* the dropped entry is the only one below lambda = -5.1 */
        ck_assert(dc_ns_lambda(&ns, 1.0) > DC_NS_CLIPPED_LAMBDA);
        dc_noise_schedule_free(&ns);
        test_schedule_init(&ns, 2000, prec);
        ck_assert_int_eq(ns.total_n, 1999);
        dc_noise_schedule_free(&ns);
    }
    /* cosine loses more entries to the -5.1 clip; the kept ones are all above it */
    double b[1000];
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_COSINE, 1000, 0, 0, 8e-3, NULL), DC_OK);
    dc_noise_schedule ns;
    ck_assert_int_eq(dc_noise_schedule_init(&ns, b, 1000, DC_NS_DOUBLE, NULL), DC_OK);
    ck_assert_int_lt(ns.total_n, 1000);
    ck_assert_int_gt(ns.total_n, 900);
    ck_assert(dc_ns_lambda(&ns, 1.0) >= DC_NS_CLIPPED_LAMBDA);
    dc_noise_schedule_free(&ns);
    /* jsd ends at alpha-bar = 0 (lambda = -inf): dropped, not a NaN */
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_JSD, 1000, 0, 0, 0, NULL), DC_OK);
    ck_assert_int_eq(dc_noise_schedule_init(&ns, b, 1000, DC_NS_DOUBLE, NULL), DC_OK);
    ck_assert_int_lt(ns.total_n, 1000);
    for (int k = 0; k < ns.total_n; k++)
        ck_assert(isfinite(ns.log_alpha[k]));
    dc_noise_schedule_free(&ns);
}
END_TEST

/* DIFFCR.md §4.3 grid table and the 21 recorded time inputs. */
START_TEST(test_grid_and_time_inputs)
{
    static const double tin_want[21] = {998.999, 949.049, 899.099, 849.149, 799.199, 749.249,
                                        699.299, 649.349, 599.399, 549.449, 499.4995, 449.55,
                                        399.60, 349.65, 299.70, 249.75, 199.80, 149.85,
                                        99.90, 49.95, 0.0};
    static const double tin_unit[21] = {1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3,
                                        1e-4, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 0};
    static const struct {
        int i;
        double t, tin, ab, ab_unit, lam;
    } grid[] = {
        {0, 1.00000, 998.999, 3.0028e-4, 1e-8, -4.0552},  {1, 0.95005, 949.049, 1.7529e-2, 1e-6, -2.0131},
        {2, 0.90010, 899.099, 3.9898e-2, 1e-6, -1.5904},  {5, 0.75025, 749.249, 0.14964, 1e-5, -0.8687},
        {10, 0.50050, 499.500, 0.50000, 1e-5, 0.0000},    {15, 0.25075, 249.750, 0.85036, 1e-5, 0.8687},
        {19, 0.05095, 49.950, 0.98247, 1e-5, 2.0131},     {20, 0.00100, 0.000, 0.99970, 1e-5, 4.0552},
    };
    for (int prec = DC_NS_FLOAT32; prec <= DC_NS_DOUBLE; prec++) {
        dc_noise_schedule ns;
        test_schedule_init(&ns, 1000, prec);
        double ts[21];
        ck_assert_int_eq(dc_dpm_time_steps(&ns, DC_SKIP_TIME_UNIFORM, 1.0, dc_ns_t_min(&ns), 20, ts, NULL), DC_OK);
        for (int i = 0; i <= 20; i++) {
            double tin = dc_sampler_time_input(&ns, DC_TIME_INPUT_DPM, ts[i]);
            if (i == 20)
                ck_assert_msg(tin == 0.0, "last time input %g", tin);
            else
                ASSERT_DIGITS(tin, tin_want[i], tin_unit[i]);
        }
        for (size_t g = 0; g < sizeof grid / sizeof grid[0]; g++) {
            double t = ts[grid[g].i];
            ASSERT_DIGITS(t, grid[g].t, 1e-5);
            /* the table rounds 499.4995 up to 499.500: allow one unit of its last digit */
            ASSERT_DIGITS(dc_sampler_time_input(&ns, DC_TIME_INPUT_DPM, t), grid[g].tin, 2e-3);
            /* DIFFCR.md prints alpha-bar(1) as 3.0028e-4, but it is exp(2 la[998]) = gammas[998]
             * = 3.00287e-4 (§3.1 prints 3.0029e-4): check it to 1e-8 absolute instead. */
            double ab = dc_ns_alpha_bar(&ns, t);
            if (grid[g].i == 0)
                ck_assert(fabs(ab - 3.00287e-4) < 1e-8);
            else
                ASSERT_DIGITS(ab, grid[g].ab, grid[g].ab_unit);
            ASSERT_DIGITS(dc_ns_lambda(&ns, t), grid[g].lam, 1e-4);
            /* the gamma time input is alpha-bar itself */
            ck_assert(dc_sampler_time_input(&ns, DC_TIME_INPUT_GAMMA, t) == ab);
        }
        dc_noise_schedule_free(&ns);
    }
}
END_TEST

/* Continuous functions: identities, knots, extension, inverse. */
START_TEST(test_vp_functions)
{
    for (int prec = DC_NS_FLOAT32; prec <= DC_NS_DOUBLE; prec++) {
        const double tol = prec == DC_NS_FLOAT32 ? 2e-6 : 1e-12;
        dc_noise_schedule ns;
        test_schedule_init(&ns, 1000, prec);
        for (double t = 0.0005; t <= 1.0; t += 0.0371) {
            double a = dc_ns_alpha(&ns, t), s = dc_ns_sigma(&ns, t);
            ck_assert(fabs(a * a + s * s - 1.0) < 4 * tol);
            ck_assert(fabs(dc_ns_lambda(&ns, t) - log(a / s)) < 20 * tol);
            ck_assert(fabs(dc_ns_alpha_bar(&ns, t) - a * a) < 4 * tol);
            /* inverse: lambda -> t. Float32 loses a little where lambda is steep in t. */
            double back = dc_ns_inverse_lambda(&ns, dc_ns_lambda(&ns, t));
            ck_assert_msg(fabs(back - t) < (prec == DC_NS_FLOAT32 ? 2e-4 : 1e-9), "inverse %g -> %g", t, back);
        }
        /* knots: the interpolation passes through la[k]; alpha-bar of step k is exp(2 la[k]) */
        for (int k = 0; k < ns.total_n; k += 97) {
            ck_assert(dc_ns_log_alpha(&ns, ns.t[k]) == ns.log_alpha[k]);
            ck_assert(fabs(dc_ns_discrete_alpha_bar(&ns, k) - exp(2 * ns.log_alpha[k])) < tol);
            ck_assert(dc_ns_discrete_t(&ns, k) == ns.t[k]);
        }
        /* outside [t_0, 1]: the first / last segments continue linearly */
        double s0 = (ns.log_alpha[1] - ns.log_alpha[0]) / (ns.t[1] - ns.t[0]);
        ck_assert(fabs(dc_ns_log_alpha(&ns, 0.0) - (ns.log_alpha[0] - s0 * ns.t[0])) < 1e-7);
        int L = ns.total_n - 1;
        double s1 = (ns.log_alpha[L] - ns.log_alpha[L - 1]) / (ns.t[L] - ns.t[L - 1]);
        ck_assert(fabs(dc_ns_log_alpha(&ns, 1.01) - (ns.log_alpha[L] + s1 * 0.01)) < 1e-5);
        dc_noise_schedule_free(&ns);
    }
    /* the two precisions agree to float round-off */
    dc_noise_schedule f, d;
    test_schedule_init(&f, 1000, DC_NS_FLOAT32);
    test_schedule_init(&d, 1000, DC_NS_DOUBLE);
    for (double t = 0.01; t < 1.0; t += 0.0437) {
        ck_assert(fabs(dc_ns_alpha(&f, t) - dc_ns_alpha(&d, t)) < 1e-6);
        ck_assert(fabs(dc_ns_lambda(&f, t) - dc_ns_lambda(&d, t)) < 1e-4);
    }
    dc_noise_schedule_free(&f);
    dc_noise_schedule_free(&d);
}
END_TEST

/* DPM-Solver's other skip types: endpoints, monotone, their defining spacing. */
START_TEST(test_time_grids)
{
    dc_noise_schedule ns;
    test_schedule_init(&ns, 1000, DC_NS_DOUBLE);
    double ts[11];
    const double t0 = dc_ns_t_min(&ns);
    ck_assert_int_eq(dc_dpm_time_steps(&ns, DC_SKIP_LOGSNR, 1.0, t0, 10, ts, NULL), DC_OK);
    double l0 = dc_ns_lambda(&ns, 1.0), l1 = dc_ns_lambda(&ns, t0);
    for (int i = 0; i <= 10; i++)
        ck_assert(fabs(dc_ns_lambda(&ns, ts[i]) - (l0 + (l1 - l0) * i / 10.0)) < 1e-9);
    ck_assert_int_eq(dc_dpm_time_steps(&ns, DC_SKIP_TIME_QUADRATIC, 1.0, t0, 10, ts, NULL), DC_OK);
    for (int i = 0; i <= 10; i++) {
        double r = 1.0 + (sqrt(t0) - 1.0) * i / 10.0;
        ck_assert(fabs(ts[i] - r * r) < 1e-14);
    }
    ck_assert_int_ne(dc_dpm_time_steps(&ns, DC_SKIP_LOGSNR, 1.0, t0, 0, ts, NULL), DC_OK);
    dc_noise_schedule_free(&ns);
    /* float32: the time_uniform grid is torch.linspace's float32 values */
    test_schedule_init(&ns, 1000, DC_NS_FLOAT32);
    double g[21];
    ck_assert_int_eq(dc_dpm_time_steps(&ns, DC_SKIP_TIME_UNIFORM, 1.0, 1.0 / 999, 20, g, NULL), DC_OK);
    for (int i = 0; i <= 20; i++)
        ck_assert(g[i] == (double)(float)g[i]);
    ck_assert(g[0] == 1.0 && g[20] == (double)(float)(1.0 / 999));
    dc_noise_schedule_free(&ns);
}
END_TEST

/* DiffCR's training noise level and the three targets. */
START_TEST(test_training_maths)
{
    const int N = 2000;
    double *b = malloc(N * sizeof *b), *g = malloc(N * sizeof *g);
    float *gf = malloc(N * sizeof *gf);
    ck_assert(b && g && gf);
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_SIGMOID, N, 1e-6, 1e-2, 8e-3, NULL), DC_OK);
    dc_alphas_cumprod(g, b, N);
    for (int i = 0; i < N; i++)
        gf[i] = (float)g[i];
    int t;
    float gam = dc_train_noise_level(gf, N, 0u, 0u, &t);
    ck_assert_int_eq(t, 1);
    ck_assert(gam <= gf[0] && gam >= gf[1]);
    gam = dc_train_noise_level(gf, N, 0xffffffffu, 0xffffffffu, &t);
    ck_assert_int_eq(t, N - 1);
    /* u < 1, but (g[t] - g[t-1]) u + g[t-1] rounds on the scale of g[t-1] */
    ck_assert(gam <= gf[N - 2] && gam >= gf[N - 1] - 2 * FLT_EPSILON * gf[N - 2]);
    /* t uniform on 1..N-1: mean N/2 */
    double tsum = 0;
    int tmin = N, tmax = 0;
    for (uint64_t i = 0; i < 200000; i++) {
        float gg = dc_train_noise_level(gf, N, dc_philox_u32(1, 3, 0, 0, 2 * i), dc_philox_u32(1, 3, 0, 0, 2 * i + 1), &t);
        ck_assert(gg <= gf[t - 1] && gg >= gf[t] - 2 * FLT_EPSILON * gf[t - 1]);
        tsum += t;
        tmin = t < tmin ? t : tmin;
        tmax = t > tmax ? t : tmax;
    }
    ck_assert_int_eq(tmin, 1);
    ck_assert_int_eq(tmax, N - 1);
    ck_assert(fabs(tsum / 200000 - N / 2.0) < 5.0);

    /* a batch: x_t = sqrt(g) x0 + sqrt(1-g) eps with eps from the training noise stream */
    enum { B = 3, n = 1001 };
    float *x0 = malloc(B * n * sizeof *x0), *xt = malloc(B * n * sizeof *xt);
    float *tg = malloc(B * n * sizeof *tg), *eps = malloc(n * sizeof *eps), *back = malloc(n * sizeof *back);
    ck_assert(x0 && xt && tg && eps && back);
    tu_fill_uniform(x0, B * n, 3, 1.0f);
    for (int kind = DC_TARGET_X0; kind <= DC_TARGET_V; kind++) {
        float gamma[B];
        int tt[B];
        ck_assert_int_eq(dc_train_make_batch(xt, tg, gamma, tt, x0, B, n, gf, N, kind, 77, 12, 40, NULL), DC_OK);
        for (int bb = 0; bb < B; bb++) {
            ck_assert(tt[bb] >= 1 && tt[bb] < N);
            ck_assert(gamma[bb] <= gf[tt[bb] - 1] && gamma[bb] >= gf[tt[bb]] - 2 * FLT_EPSILON * gf[tt[bb] - 1]);
            ck_assert_int_eq(dc_philox_fill_normal(eps, n, 77, DC_PHILOX_STREAM_TRAIN_NOISE, 40 + bb, 12, NULL), DC_OK);
            const float a = sqrtf(gamma[bb]), s = sqrtf(1.0f - gamma[bb]);
            const float *xb = x0 + bb * n, *yb = xt + bb * n, *tb = tg + bb * n;
            for (int i = 0; i < n; i++)
                ck_assert(yb[i] == a * xb[i] + s * eps[i]);
            /* the target converts back to x0 */
            dc_prediction_to_x0(back, kind, tb, yb, n, a, s);
            double tol = kind == DC_TARGET_EPS ? 1e-6 / a : 1e-6;
            ck_assert_msg(tu_max_abs_diff(back, xb, n) < tol, "%s: %g", dc_target_kind_name(kind),
                          tu_max_abs_diff(back, xb, n));
            float tgt2[8];
            dc_train_target(tgt2, kind, xb, eps, 8, a, s);
            ck_assert(memcmp(tgt2, tb, sizeof tgt2) == 0);
        }
        /* different tiles differ */
        ck_assert(memcmp(xt, xt + n, 64) != 0);
    }
    ck_assert_int_eq(dc_train_make_batch(xt, NULL, NULL, NULL, x0, B, n, gf, 1, DC_TARGET_X0, 0, 0, 0, NULL), DC_ERR_ARG);
    free(b);
    free(g);
    free(gf);
    free(x0);
    free(xt);
    free(tg);
    free(eps);
    free(back);
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tb = tcase_create("beta");
    tcase_add_test(tb, test_sigmoid_gammas);
    tcase_add_test(tb, test_other_schedules);
    tcase_add_test(tb, test_schedule_errors);
    suite_add_tcase(s, tb);
    TCase *tv = tcase_create("vp");
    tcase_add_test(tv, test_vp_table);
    tcase_add_test(tv, test_grid_and_time_inputs);
    tcase_add_test(tv, test_vp_functions);
    tcase_add_test(tv, test_time_grids);
    suite_add_tcase(s, tv);
    TCase *tt = tcase_create("training");
    tcase_add_test(tt, test_training_maths);
    suite_add_tcase(s, tt);
    return s;
}

int main(void)
{
    return tu_run_suite(schedule_suite());
}
