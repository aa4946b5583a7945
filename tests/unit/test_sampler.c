/* diffcr tests — samplers (sampler.h): DPM-Solver++, DDIM, DDPM, thresholding, respacing.
 *
 *  - DIFFCR.md §4.4: DiffCR's exact sampler call on a toy model, both published cases, to 1e-5.
 *  - Convergence on a Gaussian problem whose x0 predictor and probability-flow ODE solution are
 *    closed form: data x0_i ~ N(mu_i, s_i^2) per element, so E[x0 | x_t] is linear in x_t and the
 *    ODE maps x_T to x_t by standardising with the marginal N(alpha mu, alpha^2 s^2 + sigma^2).
 *    Error slopes in log-log show the orders; order 2 must beat order 1.
 *  - Stochastic samplers (DDPM, DDIM eta = 1) reproduce the data mean and spread, and agree with
 *    each other (the same chain).
 *  - Determinism (same bits for the same seed, at 1 and 2 threads, batched or not), call
 *    counts, cancellation, error propagation, workspace checks. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/backend.h"
#include "diffcr/philox.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "testutil.h"

/* DiffCR's test schedule (sigmoid, 1000 steps) in the given precision. */
static void diffcr_schedule(dc_noise_schedule *ns, dc_ns_precision prec)
{
    double b[1000];
    ck_assert_int_eq(dc_make_beta_schedule(b, DC_BETA_SIGMOID, 1000, 1e-4, 0.09, 8e-3, NULL), DC_OK);
    ck_assert_int_eq(dc_noise_schedule_init(ns, b, 1000, prec, NULL), DC_OK);
}

/* ---- DIFFCR.md §4.4 toy model ------------------------------------------------------------------ */

typedef struct {
    float A, B;
    int calls;
    float after_step1[4], after_step20[4];
} toy_model;

/* model(x_t, tin) = A tanh(x_t) + B cos(tin / 100); records the x it is called with on calls 2
 * (after solver step 1) and 21 (after step 20, the denoise_to_zero call). */
static int toy_fn(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    toy_model *m = user;
    (void)err;
    for (int i = 0; i < 48 * B; i++)
        x0[i] = m->A * tanhf(x[i]) + m->B * cosf(tin[i / 48] / 100.0f);
    m->calls++;
    if (m->calls == 2)
        memcpy(m->after_step1, x, sizeof m->after_step1);
    if (m->calls == 21)
        memcpy(m->after_step20, x, sizeof m->after_step20);
    return DC_OK;
}

static void toy_input(float *x)
{
    /* x_T[0, c, h, w] = sin(1 + 16c + 4h + w), NCHW 1x3x4x4 */
    for (int c = 0; c < 3; c++)
        for (int h = 0; h < 4; h++)
            for (int w = 0; w < 4; w++)
                x[c * 16 + h * 4 + w] = sinf((float)(1 + 16 * c + 4 * h + w));
}

static void check4(const float *got, const double *want, double tol, const char *what)
{
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol, "%s[%d] = %.7f, want %.6f", what, i, got[i], want[i]);
}

static void run_toy_case(dc_ns_precision prec, float A, float B, const double *s1, const double *s20,
                         const double *f000, const double *f023, double sum_want, double mabs_want)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, prec);
    toy_model m = {A, B, 0, {0}, {0}};
    float x[48], out[48];
    toy_input(x);
    ck_assert(fabs(x[0] - 0.841471) < 1e-6 && fabs(x[3] + 0.756802) < 1e-6);
    dc_sampler_options o = dc_sampler_options_default();
    dc_sampler_stats st;
    dc_error err;
    int rc = dc_sampler_run(&ns, &o, toy_fn, &m, x, out, 1, 48, NULL, 0, &st, &err);
    ck_assert_msg(rc == DC_OK, "%s", err.msg);
    ck_assert_int_eq(st.model_calls, 21);
    ck_assert_int_eq(m.calls, 21);
    const double tol = 1e-5;
    check4(m.after_step1, s1, tol, "after step 1");
    check4(m.after_step20, s20, tol, "after step 20");
    check4(out, f000, tol, "final [0,0,0,:]");
    check4(out + 44, f023, tol, "final [0,2,3,:]");
    double sum = 0, mabs = 0;
    for (int i = 0; i < 48; i++) {
        sum += out[i];
        mabs += fabs(out[i]);
    }
    ck_assert_msg(fabs(sum - sum_want) <= tol, "sum %.7f want %.6f", sum, sum_want);
    ck_assert_msg(fabs(mabs / 48 - mabs_want) <= tol, "mean |x| %.7f want %.6f", mabs / 48, mabs_want);
    dc_noise_schedule_free(&ns);
}

START_TEST(test_toy_vectors)
{
    /* _i: 0 = the official float32 arithmetic, 1 = double (also within 1e-5) */
    dc_ns_precision prec = _i == 0 ? DC_NS_FLOAT32 : DC_NS_DOUBLE;
    {
        const double s1[4] = {0.872769, 0.941980, 0.147002, -0.788049};
        const double s20[4] = {0.138461, 0.145758, 0.042391, -0.091878};
        const double f0[4] = {0.078791, 0.082367, 0.031183, -0.035810};
        const double f1[4] = {0.079297, 0.081978, 0.029744, -0.036473};
        run_toy_case(prec, 0.5f, 0.01f, s1, s20, f0, f1, 1.000362, 0.048159);
    }
    {
        const double s1[4] = {0.938062, 1.010477, 0.161108, -0.846955};
        const double s20[4] = {0.995279, 1.005131, 0.543570, -0.981287};
        const double f0[4] = {0.988306, 0.993688, 0.644926, -0.980523};
        const double f1[4] = {0.989094, 0.993123, 0.595049, -0.981659};
        run_toy_case(prec, 1.5f, 0.0f, s1, s20, f0, f1, 1.651250, 0.894815);
    }
}
END_TEST

/* ---- thresholding and quantiles ---------------------------------------------------------------- */

START_TEST(test_dynamic_threshold_linspace)
{
    float x[201], scratch[201], s;
    for (int i = 0; i < 201; i++)
        x[i] = (float)(-2.0 + 4.0 * i / 200.0);
    dc_dynamic_threshold(x, 1, 201, 0.995, 1.0, 1, scratch, &s);
    ck_assert(s == 2.0f);
    float mx = -INFINITY;
    for (int i = 0; i < 201; i++)
        mx = fmaxf(mx, x[i]);
    ck_assert(mx == 1.0f);
    ck_assert(fabsf(x[150] - 0.5f) < 1e-7f); /* the value at 1.0 */
    ck_assert(x[0] == -1.0f);
    /* |x0| mostly <= 1: a plain clamp to [-1, 1] (s = max value 1) */
    float y[1000], sc2[1000], s2[2];
    for (int i = 0; i < 1000; i++)
        y[i] = i == 7 ? 3.0f : (float)sin(i);
    memcpy(y + 500, y, 500 * sizeof *y);
    dc_dynamic_threshold(y, 2, 500, 0.995, 1.0, 0, sc2, s2);
    ck_assert(s2[0] == 1.0f && s2[1] == 1.0f);
    ck_assert(y[7] == 1.0f && y[8] == (float)sin(8));
}
END_TEST

/* Reference quantile: sort, then the same rank and interpolation rules. */
static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float sorted_quantile(const float *v, size_t n, double q, int f32)
{
    float *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_float);
    float r;
    if (f32) {
        float rank = (float)q * (float)(n - 1);
        size_t lo = (size_t)rank, hi = (size_t)ceilf(rank);
        float w = rank - (float)lo;
        r = w < 0.5f ? c[lo] + w * (c[hi] - c[lo]) : c[hi] - (c[hi] - c[lo]) * (1.0f - w);
    } else {
        double rank = q * (double)(n - 1);
        size_t lo = (size_t)rank, hi = (size_t)ceil(rank);
        double w = rank - (double)lo;
        r = w == 0.0 ? c[lo] : (float)((double)c[lo] + w * ((double)c[hi] - (double)c[lo]));
    }
    free(c);
    return r;
}

START_TEST(test_quantile_select)
{
    const size_t sizes[] = {1, 2, 3, 10, 48, 1000, 4097, 196608};
    const double qs[] = {0.0, 0.25, 0.5, 0.9, 0.995, 1.0};
    float *v = malloc(196608 * sizeof *v), *w = malloc(196608 * sizeof *w);
    ck_assert(v && w);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int dup = 0; dup < 3; dup++) {
            tu_fill_uniform(v, n, 100 + si, 3.0f);
            for (size_t i = 0; i < n; i++) {
                if (dup == 1)
                    v[i] = roundf(v[i] * 2.0f) / 2.0f; /* many ties */
                if (dup == 2)
                    v[i] = (float)i; /* already sorted */
            }
            for (size_t qi = 0; qi < sizeof qs / sizeof qs[0]; qi++) {
                for (int f32 = 0; f32 <= 1; f32++) {
                    memcpy(w, v, n * sizeof *w);
                    float got = dc_quantile_select(w, n, qs[qi], f32);
                    float want = sorted_quantile(v, n, qs[qi], f32);
                    ck_assert_msg(got == want, "n %zu q %g dup %d f32 %d: %.9g vs %.9g", n, qs[qi],
                                  dup, f32, got, want);
                }
            }
        }
    }
    /* the float32 rank of torch for a 3x256x256 tile: 195623.96875, not 195623.965 */
    for (size_t i = 0; i < 196608; i++)
        v[i] = (float)i;
    ck_assert(dc_quantile_select(v, 196608, 0.995, 1) == 195623.96875f);
    for (size_t i = 0; i < 196608; i++)
        v[i] = (float)i;
    ck_assert(fabsf(dc_quantile_select(v, 196608, 0.995, 0) - 195623.965f) < 0.01f);
    /* NaN counts as +inf, never loops or crashes */
    float nanv[5] = {1, NAN, 3, 2, 0};
    ck_assert(dc_quantile_select(nanv, 5, 0.5, 1) == 2.0f);
    free(v);
    free(w);
}
END_TEST

/* ---- respacing --------------------------------------------------------------------------------- */

START_TEST(test_respacing)
{
    int s[1000], count;
    dc_error err;
    ck_assert_int_eq(dc_space_timesteps(1000, "ddim10", s, 1000, &count, NULL), DC_OK);
    ck_assert_int_eq(count, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(s[i], 100 * i);
    ck_assert_int_eq(dc_space_timesteps(999, "ddim20", s, 1000, &count, NULL), DC_OK);
    ck_assert_int_eq(count, 20);
    ck_assert_int_eq(s[19], 950);
    /* two sections of 50: stride 49/9, Python round */
    const int want[10] = {0, 5, 11, 16, 22, 27, 33, 38, 44, 49};
    ck_assert_int_eq(dc_space_timesteps(100, "10,10", s, 1000, &count, NULL), DC_OK);
    ck_assert_int_eq(count, 20);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(s[i], want[i]);
        ck_assert_int_eq(s[10 + i], 50 + want[i]);
    }
    /* round half to even: 4.5 -> 4 */
    const int want2[5] = {0, 2, 4, 7, 9};
    ck_assert_int_eq(dc_space_timesteps(10, "5", s, 1000, &count, NULL), DC_OK);
    ck_assert_int_eq(count, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(s[i], want2[i]);
    /* uneven sections: 999 = 333 * 3; the first N % len sections are one longer */
    ck_assert_int_eq(dc_space_timesteps(1000, "1,1,1", s, 1000, &count, NULL), DC_OK);
    ck_assert_int_eq(count, 3);
    ck_assert(s[0] == 0 && s[1] == 334 && s[2] == 667);
    ck_assert_int_eq(dc_space_timesteps(1000, "ddim999", s, 1000, &count, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_space_timesteps(100, "200", s, 1000, &count, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_space_timesteps(100, "10,", s, 1000, &count, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_space_timesteps(100, "x", s, 1000, &count, &err), DC_ERR_ARG);
    ck_assert_int_eq(dc_space_timesteps(100, "ddim", s, 1000, &count, &err), DC_ERR_ARG);
}
END_TEST

/* ---- Gaussian problem: exact predictor, exact ODE solution ------------------------------------- */

enum { GN = 64, GB = 2 };

typedef struct {
    double mu[GN], s2[GN];
    dc_target_kind output;
    int calls;
} gauss_model;

static void gauss_init(gauss_model *g)
{
    for (int i = 0; i < GN; i++) {
        g->mu[i] = 0.8 * sin(i * 1.3);
        g->s2[i] = 0.2 + 0.4 * (1 + cos(i * 0.7));
    }
    g->output = DC_TARGET_X0;
    g->calls = 0;
}

/* E[x0 | x_t] for time input gamma = alpha-bar, as x0, eps or v. */
static int gauss_fn(void *user, float *out, const float *x, const float *tin, int B, dc_error *err)
{
    gauss_model *g = user;
    (void)err;
    for (int b = 0; b < B; b++) {
        double ab = tin[b], a = sqrt(ab), s = sqrt(1.0 - ab);
        for (int i = 0; i < GN; i++) {
            double xi = x[b * GN + i];
            double x0 = g->mu[i] + a * g->s2[i] / (ab * g->s2[i] + s * s) * (xi - a * g->mu[i]);
            double eps = (xi - a * x0) / s;
            out[b * GN + i] = (float)(g->output == DC_TARGET_X0 ? x0 : g->output == DC_TARGET_EPS ? eps : a * eps - s * x0);
        }
    }
    g->calls++;
    return DC_OK;
}

/* The exact probability-flow solution at t_end from x_T at t = 1 (and its x0 prediction). */
static void gauss_exact(const dc_noise_schedule *ns, const gauss_model *g, const float *xT,
                        double t_end, double *x_end, double *x0_end)
{
    double aT = dc_ns_alpha(ns, 1.0), sT = dc_ns_sigma(ns, 1.0);
    double a = dc_ns_alpha(ns, t_end), s = dc_ns_sigma(ns, t_end);
    for (int b = 0; b < GB; b++) {
        for (int i = 0; i < GN; i++) {
            double z = (xT[b * GN + i] - aT * g->mu[i]) / sqrt(aT * aT * g->s2[i] + sT * sT);
            double xt = a * g->mu[i] + sqrt(a * a * g->s2[i] + s * s) * z;
            x_end[b * GN + i] = xt;
            x0_end[b * GN + i] = g->mu[i] + a * g->s2[i] / (a * a * g->s2[i] + s * s) * (xt - a * g->mu[i]);
        }
    }
}

static double run_gauss(const dc_noise_schedule *ns, dc_sampler_options o, const float *xT,
                        const double *ref)
{
    gauss_model g;
    gauss_init(&g);
    float out[GB * GN];
    dc_error err;
    dc_sampler_stats st;
    int rc = dc_sampler_run(ns, &o, gauss_fn, &g, xT, out, GB, GN, NULL, 0, &st, &err);
    ck_assert_msg(rc == DC_OK, "%s", err.msg);
    int planned = 0;
    ck_assert_int_eq(dc_sampler_planned_calls(ns, &o, &planned, NULL), DC_OK);
    ck_assert_int_eq(st.model_calls, planned);
    double e = 0;
    for (int i = 0; i < GB * GN; i++)
        e = fmax(e, fabs(out[i] - ref[i]));
    return e;
}

/* least-squares slope of log(err) against log(steps) */
static double loglog_slope(const int *steps, const double *err, int k)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < k; i++) {
        double x = log((double)steps[i]), y = log(err[i]);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

START_TEST(test_convergence)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_DOUBLE);
    gauss_model g;
    gauss_init(&g);
    float xT[GB * GN];
    ck_assert_int_eq(dc_philox_fill_normal(xT, GB * GN, 3, 0, 0, 0, NULL), DC_OK);
    double x_end[GB * GN], x0_end[GB * GN];
    gauss_exact(&ns, &g, xT, dc_ns_t_min(&ns), x_end, x0_end);

    const int steps[4] = {12, 24, 48, 96};
    enum { MS1, MS2, MS3, SS1, SS2, SS3, DDIM, MS2_UNIFORM, NCASE };
    static const char *names[NCASE] = {"multistep 1", "multistep 2", "multistep 3", "singlestep 1",
                                       "singlestep 2", "singlestep 3", "DDIM", "multistep 2 time_uniform"};
    double err[NCASE][4], slope[NCASE];
    for (int c = 0; c < NCASE; c++) {
        for (int k = 0; k < 4; k++) {
            dc_sampler_options o = dc_sampler_options_default();
            o.x0_correction = DC_X0_NONE;
            o.time_input = DC_TIME_INPUT_GAMMA;
            o.denoise_to_zero = 0;
            o.skip = DC_SKIP_LOGSNR; /* uniform steps in lambda: the asymptotic regime early */
            o.steps = steps[k];
            o.order = c == MS1 || c == SS1 ? 1 : c == MS3 || c == SS3 ? 3 : 2;
            o.method = c >= SS1 && c <= SS3 ? DC_DPM_SINGLESTEP : DC_DPM_MULTISTEP;
            const double *ref = x_end;
            if (c == DDIM) {
                o.kind = DC_SAMPLER_DDIM; /* ends with the x0 prediction at step 0 = t_0 */
                ref = x0_end;
            }
            if (c == MS2_UNIFORM) {
                o.skip = DC_SKIP_TIME_UNIFORM;
                o.steps = 4 * steps[k];
            }
            err[c][k] = run_gauss(&ns, o, xT, ref);
        }
        slope[c] = loglog_slope(steps, err[c], 4);
        for (int k = 1; k < 4; k++)
            ck_assert_msg(err[c][k] < err[c][k - 1], "%s: error grows %g -> %g", names[c], err[c][k - 1], err[c][k]);
    }
    /* first order: slope -1 */
    ck_assert_msg(slope[MS1] < -0.85 && slope[MS1] > -1.2, "multistep 1 slope %g", slope[MS1]);
    ck_assert_msg(slope[DDIM] < -0.85 && slope[DDIM] > -1.2, "DDIM slope %g", slope[DDIM]);
    for (int k = 0; k < 4; k++) /* singlestep order 1 is the same DPM-Solver-1 chain */
        ck_assert(fabs(err[SS1][k] - err[MS1][k]) < 1e-6);
    /* second order and the order-3 variants (whose first/last lower-order steps cap them at 2) */
    ck_assert_msg(slope[MS2] < -1.7, "multistep 2 slope %g", slope[MS2]);
    ck_assert_msg(slope[SS2] < -1.7, "singlestep 2 slope %g", slope[SS2]);
    ck_assert_msg(slope[MS3] < -1.7, "multistep 3 slope %g", slope[MS3]);
    ck_assert_msg(slope[SS3] < -1.9, "singlestep 3 slope %g", slope[SS3]);
    ck_assert_msg(slope[MS2] < slope[MS1] - 0.6, "order 2 (%g) not faster than order 1 (%g)", slope[MS2], slope[MS1]);
    ck_assert(err[MS2][3] < err[MS1][3] / 10);
    ck_assert(err[MS3][3] < err[MS2][3] && err[SS3][3] < err[SS2][3]);
    ck_assert(err[MS2][3] < 2e-3 && err[SS3][3] < 1e-4);
    /* DiffCR's time_uniform grid converges too, just later (steep lambda near t_0) */
    ck_assert_msg(err[MS2_UNIFORM][3] < 1e-2, "time_uniform 384 steps: %g", err[MS2_UNIFORM][3]);

    /* denoise_to_zero returns the x0 prediction at t_0 */
    dc_sampler_options o = dc_sampler_options_default();
    o.x0_correction = DC_X0_NONE;
    o.time_input = DC_TIME_INPUT_GAMMA;
    o.skip = DC_SKIP_LOGSNR;
    o.steps = 96;
    ck_assert(run_gauss(&ns, o, xT, x0_end) < 2e-3);
    /* time_quadratic converges as well */
    o.denoise_to_zero = 0;
    o.skip = DC_SKIP_TIME_QUADRATIC;
    o.steps = 200;
    ck_assert(run_gauss(&ns, o, xT, x_end) < 1e-2);
    dc_noise_schedule_free(&ns);
}
END_TEST

/* An eps or v network gives the same samples as the x0 one. */
START_TEST(test_model_output_kinds)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_DOUBLE);
    float xT[GB * GN], out[3][GB * GN];
    ck_assert_int_eq(dc_philox_fill_normal(xT, GB * GN, 9, 0, 0, 0, NULL), DC_OK);
    for (int kind = DC_TARGET_X0; kind <= DC_TARGET_V; kind++) {
        gauss_model g;
        gauss_init(&g);
        g.output = kind;
        dc_sampler_options o = dc_sampler_options_default();
        o.time_input = DC_TIME_INPUT_GAMMA;
        o.model_output = kind;
        o.skip = DC_SKIP_LOGSNR;
        ck_assert_int_eq(dc_sampler_run(&ns, &o, gauss_fn, &g, xT, out[kind], GB, GN, NULL, 0, NULL, NULL), DC_OK);
    }
    ck_assert(tu_max_abs_diff(out[1], out[0], GB * GN) < 1e-4);
    ck_assert(tu_max_abs_diff(out[2], out[0], GB * GN) < 1e-5);
    dc_noise_schedule_free(&ns);
}
END_TEST

/* ---- stochastic samplers: right mean and spread ------------------------------------------------ */

typedef struct {
    double mu, s2;
} iid_gauss;

static int iid_fn(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    const iid_gauss *g = user;
    (void)err;
    enum { N = 16384 };
    for (int b = 0; b < B; b++) {
        double ab = tin[b], a = sqrt(ab);
        double k = a * g->s2 / (ab * g->s2 + 1.0 - ab);
        for (int i = 0; i < N; i++)
            x0[b * N + i] = (float)(g->mu + k * (x[b * N + i] - a * g->mu));
    }
    return DC_OK;
}

START_TEST(test_stochastic_samplers)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_DOUBLE);
    enum { N = 16384 };
    float *out = malloc(N * sizeof *out), *again = malloc(N * sizeof *again), *ddpm = malloc(N * sizeof *ddpm);
    ck_assert(out && again && ddpm);
    iid_gauss g = {0.3, 0.25};
    for (int c = 0; c < 3; c++) {
        dc_sampler_options o = dc_sampler_options_default();
        o.time_input = DC_TIME_INPUT_GAMMA;
        o.x0_correction = DC_X0_NONE;
        o.steps = 400;
        o.seed = 1234;
        o.kind = c == 0 ? DC_SAMPLER_DDPM : DC_SAMPLER_DDIM;
        o.eta = c == 1 ? 1.0 : 0.0;
        if (c == 2)
            o.respacing = "ddim200";
        dc_sampler_stats st;
        dc_error err;
        int rc = dc_sampler_run(&ns, &o, iid_fn, &g, NULL, out, 1, N, NULL, 0, &st, &err);
        ck_assert_msg(rc == DC_OK, "%s", err.msg);
        ck_assert_int_eq(st.model_calls, c == 2 ? 200 : 400);
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++) {
            s += out[i];
            s2 += (double)out[i] * out[i];
        }
        double mean = s / N, sd = sqrt(s2 / N - mean * mean);
        ck_assert_msg(fabs(mean - 0.3) < 0.015, "sampler %d: mean %g", c, mean);
        ck_assert_msg(fabs(sd - 0.5) < 0.02, "sampler %d: sd %g", c, sd);
        /* DDIM with eta = 1 is DDPM with the posterior ("fixed small") variance, step for step
         * and, with the same Philox noise, sample for sample */
        if (c == 0)
            memcpy(ddpm, out, N * sizeof *out);
        if (c == 1)
            ck_assert_msg(tu_max_abs_diff(out, ddpm, N) < 1e-4, "DDIM(eta=1) vs DDPM %g", tu_max_abs_diff(out, ddpm, N));
        /* same seed, same bits; another seed differs */
        ck_assert_int_eq(dc_sampler_run(&ns, &o, iid_fn, &g, NULL, again, 1, N, NULL, 0, NULL, NULL), DC_OK);
        ck_assert(memcmp(out, again, N * sizeof *out) == 0);
        o.seed = 1235;
        ck_assert_int_eq(dc_sampler_run(&ns, &o, iid_fn, &g, NULL, again, 1, N, NULL, 0, NULL, NULL), DC_OK);
        ck_assert(memcmp(out, again, N * sizeof *out) != 0);
    }
    free(out);
    free(again);
    free(ddpm);
    dc_noise_schedule_free(&ns);
}
END_TEST

/* ---- determinism, counts, control ------------------------------------------------------------- */

enum { BIG_N = 3 * 160 * 160 }; /* above the samplers' parallel threshold */

static int tanh_fn(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    (void)user;
    (void)err;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < BIG_N; i++) {
            size_t j = (size_t)b * BIG_N + i;
            x0[j] = 1.2f * tanhf(x[j]) + 0.01f * cosf(tin[b] / 100.0f);
        }
    return DC_OK;
}

START_TEST(test_determinism)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_FLOAT32);
    float *a = malloc(2 * BIG_N * sizeof *a), *b = malloc(2 * BIG_N * sizeof *b);
    ck_assert(a && b);
    for (int kind = DC_SAMPLER_DPM_SOLVER_PP; kind <= DC_SAMPLER_DDPM; kind++) {
        dc_sampler_options o = dc_sampler_options_default();
        o.kind = kind;
        o.seed = 77;
        o.tile_id = 5;
        o.steps = kind == DC_SAMPLER_DPM_SOLVER_PP ? 20 : 10;
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        ck_assert_int_eq(dc_sampler_run(&ns, &o, tanh_fn, NULL, NULL, a, 1, BIG_N, NULL, 0, NULL, NULL), DC_OK);
        omp_set_num_threads(2);
        ck_assert_int_eq(dc_sampler_run(&ns, &o, tanh_fn, NULL, NULL, b, 1, BIG_N, NULL, 0, NULL, NULL), DC_OK);
        omp_set_num_threads(saved);
        ck_assert_msg(memcmp(a, b, BIG_N * sizeof *a) == 0, "%s: 1 and 2 threads differ", dc_sampler_kind_name(kind));
        /* batching: sample 1 of a batch starting at tile 4 is tile 5 run alone */
        o.tile_id = 4;
        ck_assert_int_eq(dc_sampler_run(&ns, &o, tanh_fn, NULL, NULL, b, 2, BIG_N, NULL, 0, NULL, NULL), DC_OK);
        ck_assert_msg(memcmp(a, b + BIG_N, BIG_N * sizeof *a) == 0, "%s: batched tile differs", dc_sampler_kind_name(kind));
        ck_assert(memcmp(a, b, 256) != 0);
    }
    free(a);
    free(b);
    dc_noise_schedule_free(&ns);
}
END_TEST

/* The samplers driven through a backend's op table (how they run on a GPU) against the host path:
 * the "ref" backend's memory is host memory and its entries are the host references, so every
 * configuration must give the same bits. This checks the table-driven control flow (copies, noise,
 * thresholding, the update kinds) without a GPU; tests/gpu compares the CUDA entries. */
START_TEST(test_backend_driven)
{
    dc_noise_schedule ns32, ns64;
    diffcr_schedule(&ns32, DC_NS_FLOAT32);
    diffcr_schedule(&ns64, DC_NS_DOUBLE);
    dc_backend *be = NULL;
    ck_assert_int_eq(dc_backend_create(&be, "ref", 0, NULL), DC_OK);
    float *a = malloc(2 * BIG_N * sizeof *a), *b = malloc(2 * BIG_N * sizeof *b);
    ck_assert(a && b);
    struct { int kind, order, method, steps; dc_x0_correction corr; dc_target_kind out; double eta; int f64; } cases[] = {
        {DC_SAMPLER_DPM_SOLVER_PP, 2, DC_DPM_MULTISTEP, 20, DC_X0_DYNAMIC, DC_TARGET_X0, 0, 0},
        {DC_SAMPLER_DPM_SOLVER_PP, 3, DC_DPM_MULTISTEP, 12, DC_X0_CLIP, DC_TARGET_EPS, 0, 0},
        {DC_SAMPLER_DPM_SOLVER_PP, 1, DC_DPM_MULTISTEP, 6, DC_X0_NONE, DC_TARGET_V, 0, 1},
        {DC_SAMPLER_DPM_SOLVER_PP, 3, DC_DPM_SINGLESTEP, 10, DC_X0_DYNAMIC, DC_TARGET_X0, 0, 0},
        {DC_SAMPLER_DPM_SOLVER_PP, 2, DC_DPM_SINGLESTEP, 7, DC_X0_NONE, DC_TARGET_X0, 0, 1},
        {DC_SAMPLER_DDIM, 2, 0, 8, DC_X0_DYNAMIC, DC_TARGET_X0, 0.5, 0},
        {DC_SAMPLER_DDPM, 2, 0, 8, DC_X0_CLIP, DC_TARGET_EPS, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dc_sampler_options o = dc_sampler_options_default();
        o.kind = cases[c].kind;
        o.order = cases[c].order;
        o.method = cases[c].method;
        o.steps = cases[c].steps;
        o.x0_correction = cases[c].corr;
        o.model_output = cases[c].out;
        o.eta = cases[c].eta;
        o.seed = 3;
        o.tile_id = 9;
        const dc_noise_schedule *ns = cases[c].f64 ? &ns64 : &ns32;
        ck_assert_int_eq(dc_sampler_run(ns, &o, tanh_fn, NULL, NULL, a, 2, BIG_N, NULL, 0, NULL, NULL), DC_OK);
        o.backend = be;
        ck_assert_int_eq(dc_sampler_run(ns, &o, tanh_fn, NULL, NULL, b, 2, BIG_N, NULL, 0, NULL, NULL), DC_OK);
        ck_assert_msg(memcmp(a, b, 2 * BIG_N * sizeof *a) == 0, "case %zu (%s): backend-driven run differs", c,
                      dc_sampler_kind_name(cases[c].kind));
    }
    dc_backend_destroy(be);
    free(a);
    free(b);
    dc_noise_schedule_free(&ns32);
    dc_noise_schedule_free(&ns64);
}
END_TEST

START_TEST(test_call_counts)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_FLOAT32);
    dc_sampler_options o = dc_sampler_options_default();
    int calls = 0;
    ck_assert_int_eq(dc_sampler_planned_calls(&ns, &o, &calls, NULL), DC_OK);
    ck_assert_int_eq(calls, 21); /* DiffCR: 20 steps + denoise_to_zero */
    o.denoise_to_zero = 0;
    ck_assert_int_eq(dc_sampler_planned_calls(&ns, &o, &calls, NULL), DC_OK);
    ck_assert_int_eq(calls, 20);
    /* singlestep: the orders add up to `steps`, for every remainder */
    for (int order = 1; order <= 3; order++) {
        for (int steps = 1; steps <= 8; steps++) {
            dc_sampler_options s = dc_sampler_options_default();
            s.method = DC_DPM_SINGLESTEP;
            s.order = order;
            s.steps = steps;
            s.denoise_to_zero = 1;
            toy_model m = {0.5f, 0.01f, 0, {0}, {0}};
            float x[48], out[48];
            toy_input(x);
            dc_sampler_stats st;
            ck_assert_int_eq(dc_sampler_run(&ns, &s, toy_fn, &m, x, out, 1, 48, NULL, 0, &st, NULL), DC_OK);
            ck_assert_int_eq(st.model_calls, steps + 1);
            /* and multistep (steps >= order), with lower_order_final at < 10 steps */
            if (steps >= order) {
                s.method = DC_DPM_MULTISTEP;
                m.calls = 0;
                ck_assert_int_eq(dc_sampler_run(&ns, &s, toy_fn, &m, x, out, 1, 48, NULL, 0, &st, NULL), DC_OK);
                ck_assert_int_eq(st.model_calls, steps + 1);
            }
        }
    }
    o = dc_sampler_options_default();
    o.kind = DC_SAMPLER_DDIM;
    o.respacing = "ddim25";
    ck_assert_int_eq(dc_sampler_planned_calls(&ns, &o, &calls, NULL), DC_OK);
    ck_assert_int_eq(calls, 25);
    o.respacing = NULL;
    o.steps = 1000; /* more than N' = 999 */
    ck_assert_int_ne(dc_sampler_planned_calls(&ns, &o, &calls, NULL), DC_OK);
    dc_noise_schedule_free(&ns);
}
END_TEST

typedef struct {
    int calls, stop_after;
} progress_state;

static int progress_cb(double complete, const char *msg, void *arg)
{
    progress_state *p = arg;
    ck_assert(complete >= 0.0 && complete <= 1.0 && msg != NULL);
    return p->calls++ < p->stop_after; /* the first report is the 0.0 before any call */
}

static int failing_fn(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    int *count = user;
    (void)x0;
    (void)x;
    (void)tin;
    (void)B;
    if (++*count == 3)
        return dc_fail(err, DC_ERR_BACKEND, "toy backend refused");
    return DC_OK;
}

START_TEST(test_control)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_FLOAT32);
    float x[48], out[48], ref[48];
    toy_input(x);
    dc_error err;
    dc_sampler_stats st;
    /* cancel after 5 model calls */
    dc_sampler_options o = dc_sampler_options_default();
    progress_state p = {0, 5};
    o.progress = progress_cb;
    o.progress_arg = &p;
    toy_model m = {0.5f, 0.01f, 0, {0}, {0}};
    ck_assert_int_eq(dc_sampler_run(&ns, &o, toy_fn, &m, x, out, 1, 48, NULL, 0, &st, &err), DC_ERR_CANCELLED);
    ck_assert_int_eq(st.model_calls, 5);
    ck_assert_ptr_nonnull(strstr(err.msg, "cancel"));
    /* a full run reports 1.0 at the end */
    p.calls = 0;
    p.stop_after = 1000;
    m.calls = 0;
    ck_assert_int_eq(dc_sampler_run(&ns, &o, toy_fn, &m, x, ref, 1, 48, NULL, 0, &st, &err), DC_OK);
    ck_assert_int_eq(p.calls, 22);
    /* the model's error stops the sampler and comes back unchanged */
    int count = 0;
    o = dc_sampler_options_default();
    ck_assert_int_eq(dc_sampler_run(&ns, &o, failing_fn, &count, x, out, 1, 48, NULL, 0, &st, &err), DC_ERR_BACKEND);
    ck_assert_int_eq(count, 3);
    ck_assert_str_eq(err.msg, "toy backend refused");
    /* a caller workspace of exactly the advertised size gives the same bits; one less is refused */
    size_t need = dc_sampler_workspace_floats(&o, 1, 48);
    float *work = malloc(need * sizeof *work);
    ck_assert_ptr_nonnull(work);
    m.calls = 0;
    ck_assert_int_eq(dc_sampler_run(&ns, &o, toy_fn, &m, x, out, 1, 48, work, need, &st, &err), DC_OK);
    ck_assert(memcmp(out, ref, sizeof out) == 0);
    ck_assert_int_eq(dc_sampler_run(&ns, &o, toy_fn, &m, x, out, 1, 48, work, need - 1, &st, &err), DC_ERR_ARG);
    /* x_T may be the output buffer */
    memcpy(out, x, sizeof x);
    ck_assert_int_eq(dc_sampler_run(&ns, &o, toy_fn, &m, out, out, 1, 48, work, need, &st, &err), DC_OK);
    ck_assert(memcmp(out, ref, sizeof out) == 0);
    free(work);
    /* option validation */
    o.order = 4;
    ck_assert_int_eq(dc_sampler_run(&ns, &o, toy_fn, &m, x, out, 1, 48, NULL, 0, &st, &err), DC_ERR_ARG);
    o = dc_sampler_options_default();
    o.steps = 1; /* multistep order 2 needs 2 steps */
    ck_assert_int_eq(dc_sampler_validate(&ns, &o, &err), DC_ERR_ARG);
    o = dc_sampler_options_default();
    o.threshold_ratio = 1.5;
    ck_assert_int_eq(dc_sampler_validate(&ns, &o, &err), DC_ERR_ARG);
    o = dc_sampler_options_default();
    o.kind = DC_SAMPLER_DDIM;
    o.respacing = "ddim998";
    ck_assert_int_eq(dc_sampler_validate(&ns, &o, &err), DC_ERR_ARG);
    /* names */
    dc_sampler_kind k;
    dc_skip_type sk;
    dc_time_input ti;
    dc_x0_correction xc;
    dc_dpm_method me;
    ck_assert_int_eq(dc_sampler_kind_parse("ddpm", &k, NULL), DC_OK);
    ck_assert_int_eq(k, DC_SAMPLER_DDPM);
    ck_assert_int_eq(dc_skip_type_parse("logSNR", &sk, NULL), DC_OK);
    ck_assert_int_eq(sk, DC_SKIP_LOGSNR);
    ck_assert_int_eq(dc_time_input_parse("gamma", &ti, NULL), DC_OK);
    ck_assert_int_eq(ti, DC_TIME_INPUT_GAMMA);
    ck_assert_int_eq(dc_x0_correction_parse("clip", &xc, NULL), DC_OK);
    ck_assert_int_eq(xc, DC_X0_CLIP);
    ck_assert_int_eq(dc_dpm_method_parse("singlestep", &me, NULL), DC_OK);
    ck_assert_int_eq(me, DC_DPM_SINGLESTEP);
    ck_assert_int_eq(dc_time_input_parse("t", &ti, &err), DC_ERR_ARG);
    ck_assert_str_eq(dc_time_input_name(DC_TIME_INPUT_DPM), "dpm_tinput");
    dc_noise_schedule_free(&ns);
}
END_TEST

/* DDIM/DDPM time inputs are the DPM definitions at the knots. */
START_TEST(test_discrete_time_inputs)
{
    dc_noise_schedule ns;
    diffcr_schedule(&ns, DC_NS_DOUBLE);
    for (int k = 0; k < ns.total_n; k += 111) {
        double t = dc_ns_discrete_t(&ns, k);
        ck_assert(fabs(dc_sampler_time_input(&ns, DC_TIME_INPUT_DPM, t) - 1000.0 * k / 999.0) < 1e-9);
        ck_assert(fabs(dc_sampler_time_input(&ns, DC_TIME_INPUT_GAMMA, t) - dc_ns_discrete_alpha_bar(&ns, k)) < 1e-15);
    }
    dc_noise_schedule_free(&ns);
}
END_TEST

static Suite *sampler_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tr = tcase_create("reference");
    tcase_add_loop_test(tr, test_toy_vectors, 0, 2);
    tcase_add_test(tr, test_dynamic_threshold_linspace);
    tcase_add_test(tr, test_quantile_select);
    tcase_add_test(tr, test_respacing);
    tcase_add_test(tr, test_discrete_time_inputs);
    suite_add_tcase(s, tr);
    TCase *tc = tcase_create("convergence");
    tcase_add_test(tc, test_convergence);
    tcase_add_test(tc, test_model_output_kinds);
    tcase_add_test(tc, test_stochastic_samplers);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("control");
    tcase_add_test(td, test_determinism);
    tcase_add_test(td, test_backend_driven);
    tcase_add_test(td, test_call_counts);
    tcase_add_test(td, test_control);
    suite_add_tcase(s, td);
    return s;
}

int main(void)
{
    return tu_run_suite(sampler_suite());
}
