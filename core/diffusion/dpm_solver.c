/* diffcr — DPM-Solver++ (data prediction), multistep and singlestep, orders 1-3.
 *
 * Lu et al., "DPM-Solver++: fast solver for guided sampling of diffusion probabilistic models"
 * (2022), as implemented in DPM-Solver's dpm_solver_pytorch.py with algorithm_type="dpmsolver++"
 * and solver_type="dpmsolver" — the configuration DiffCR calls (DIFFCR.md §4, §4.3):
 *
 *   first order (DDIM):  x_t = sigma_t/sigma_s x - alpha_t expm1(-h) D(s)
 *   multistep 2:         ... - 0.5 alpha_t expm1(-h) (D0 - D1)/r0,          r0 = h0/h
 *   multistep 3:         ... + alpha_t phi2 D1 - alpha_t phi3 D2  (phi2 = phi1/h + 1,
 *                                                                  phi3 = phi2/h - 1/2)
 *   singlestep 2 and 3:  intermediate points at lambda_s + r h, r from the inner time grid.
 * with h = lambda_t - lambda_s and D = the (thresholded) x0 prediction. Multistep starts with
 * lower orders, and with lower_order_final drops orders at the end when steps < 10; singlestep
 * ("DPM-Solver-fast") mixes orders so the model calls add up to `steps`. denoise_to_zero returns
 * one more x0 prediction at t_0 (the 21st call of DiffCR's default).
 *
 * Scalars (h, r, phi, the per-step coefficients) are evaluated in the order the Python
 * expressions evaluate them, rounded by the schedule's precision; the tensor arithmetic is float
 * in DC_NS_FLOAT32 (as torch), double-then-float in DC_NS_DOUBLE (convergence tests). One quirk
 * fixed: the original singlestep with order 1 and skip_type logSNR indexes past its time grid;
 * here it uses `steps` logSNR-uniform intervals. */
#include "diffcr/sampler.h"
#include "diffusion/sampler_vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define R(v) dc_ns_round(ns, (v))

static int is_f32(const dc_noise_schedule *ns)
{
    return ns->precision == DC_NS_FLOAT32;
}

/* DPM-Solver-1 from s to t with the model value ms at s (dpm_solver_first_update). */
static void first_update(const dc_sampler_call *call, float *dst, const float *x, const float *ms,
                         double s, double t, size_t N)
{
    const dc_noise_schedule *ns = call->ns;
    double h = R(dc_ns_lambda(ns, t) - dc_ns_lambda(ns, s));
    double sigma_s = dc_ns_sigma(ns, s), sigma_t = dc_ns_sigma(ns, t);
    double alpha_t = dc_ns_alpha(ns, t);
    double phi_1 = R(expm1(-h));
    dc_dpm_coeffs k = {.kind = 1, .a = R(sigma_t / sigma_s), .b = R(alpha_t * phi_1)};
    sv_dpm_update(call, dst, x, ms, NULL, NULL, &k, N, is_f32(ns));
}

/* Multistep DPM-Solver-2 from t1 (= T[-1]) to t, with m0 = model at t1 and m1 = model at
 * t2 (= T[-2]) (multistep_dpm_solver_second_update). */
static void multistep2_update(const dc_sampler_call *call, float *x, const float *m0,
                              const float *m1, double t1, double t2, double t, size_t N)
{
    const dc_noise_schedule *ns = call->ns;
    double lam_1 = dc_ns_lambda(ns, t2), lam_0 = dc_ns_lambda(ns, t1), lam_t = dc_ns_lambda(ns, t);
    double sigma_0 = dc_ns_sigma(ns, t1), sigma_t = dc_ns_sigma(ns, t);
    double alpha_t = dc_ns_alpha(ns, t);
    double h_0 = R(lam_0 - lam_1);
    double h = R(lam_t - lam_0);
    double r0 = R(h_0 / h);
    double phi_1 = R(expm1(-h));
    double b = R(alpha_t * phi_1);
    /* x_t = sigma_t/sigma_0 x - b m0 - (0.5 b) * ((1/r0) (m0 - m1)) */
    dc_dpm_coeffs k = {.kind = 2, .a = R(sigma_t / sigma_0), .b = b, .c = -R(0.5 * b), .d = R(1.0 / r0)};
    sv_dpm_update(call, x, x, m0, m0, m1, &k, N, is_f32(ns));
}

/* Multistep DPM-Solver-3 (multistep_dpm_solver_third_update): m0, m1, m2 at t0 > ... newest
 * first: m0 at ta (T[-1]), m1 at tb (T[-2]), m2 at tc (T[-3]). */
static void multistep3_update(const dc_sampler_call *call, float *x, const float *m0,
                              const float *m1, const float *m2, double ta, double tb, double tc,
                              double t, size_t N)
{
    const dc_noise_schedule *ns = call->ns;
    double lam_2 = dc_ns_lambda(ns, tc), lam_1 = dc_ns_lambda(ns, tb);
    double lam_0 = dc_ns_lambda(ns, ta), lam_t = dc_ns_lambda(ns, t);
    double sigma_0 = dc_ns_sigma(ns, ta), sigma_t = dc_ns_sigma(ns, t);
    double alpha_t = dc_ns_alpha(ns, t);
    double h_1 = R(lam_1 - lam_2);
    double h_0 = R(lam_0 - lam_1);
    double h = R(lam_t - lam_0);
    double r0 = R(h_0 / h), r1 = R(h_1 / h);
    double d0 = R(1.0 / r0), d1 = R(1.0 / r1);
    double r01 = R(r0 + r1);
    double e = R(r0 / r01), f = R(1.0 / r01);
    double phi_1 = R(expm1(-h));
    double phi_2 = R(R(phi_1 / h) + 1.0);
    double phi_3 = R(R(phi_2 / h) - 0.5);
    dc_dpm_coeffs k = {.kind = 3, .a = R(sigma_t / sigma_0), .b = R(alpha_t * phi_1), .d = d0, .e = d1,
                       .f = e, .g = f, .p = R(alpha_t * phi_2), .q = R(alpha_t * phi_3)};
    sv_dpm_update(call, x, x, m0, m1, m2, &k, N, is_f32(ns));
}

/* Singlestep DPM-Solver of the given order from s to t; r1, r2 from the inner grid. Uses the
 * model slots ms, m1, m2 and the temporary xs (all [B][n]). */
static int singlestep_update(dc_sampler_call *call, float *x, int order, double s, double t,
                             double r1, double r2, float *ms, float *m1, float *m2, float *xs,
                             dc_error *err)
{
    const dc_noise_schedule *ns = call->ns;
    const size_t N = (size_t)call->B * call->n;
    const int f32 = is_f32(ns);
    int rc = dc_sampler_eval_x0(call, ms, x, s, err);
    if (rc)
        return rc;
    if (order == 1) {
        first_update(call, x, x, ms, s, t, N);
        return DC_OK;
    }
    double lam_s = dc_ns_lambda(ns, s), lam_t = dc_ns_lambda(ns, t);
    double h = R(lam_t - lam_s);
    double sigma_s = dc_ns_sigma(ns, s), sigma_t = dc_ns_sigma(ns, t);
    double alpha_t = dc_ns_alpha(ns, t);
    double phi_1 = R(expm1(-h));
    double s1 = dc_ns_inverse_lambda(ns, R(lam_s + R(r1 * h)));
    double sigma_s1 = dc_ns_sigma(ns, s1), alpha_s1 = dc_ns_alpha(ns, s1);
    double phi_11 = R(expm1(R(-r1 * h)));
    /* x_s1 = sigma_s1/sigma_s x - (alpha_s1 phi_11) ms */
    dc_dpm_coeffs k1 = {.kind = 1, .a = R(sigma_s1 / sigma_s), .b = R(alpha_s1 * phi_11)};
    sv_dpm_update(call, xs, x, ms, NULL, NULL, &k1, N, f32);
    rc = dc_sampler_eval_x0(call, m1, xs, s1, err);
    if (rc)
        return rc;
    if (order == 2) {
        /* x_t = sigma_t/sigma_s x - (alpha_t phi_1) ms - (0.5/r1)(alpha_t phi_1)(m1 - ms) */
        double b = R(alpha_t * phi_1);
        dc_dpm_coeffs k2 = {.kind = 2, .a = R(sigma_t / sigma_s), .b = b, .c = -R(R(0.5 / r1) * b), .d = 1.0};
        sv_dpm_update(call, x, x, ms, m1, ms, &k2, N, f32);
        return DC_OK;
    }
    double s2 = dc_ns_inverse_lambda(ns, R(lam_s + R(r2 * h)));
    double sigma_s2 = dc_ns_sigma(ns, s2), alpha_s2 = dc_ns_alpha(ns, s2);
    double phi_12 = R(expm1(R(-r2 * h)));
    double phi_22 = R(R(phi_12 / R(r2 * h)) + 1.0);
    double phi_2 = R(R(phi_1 / h) + 1.0);
    /* x_s2 = sigma_s2/sigma_s x - (alpha_s2 phi_12) ms + (r2/r1)(alpha_s2 phi_22)(m1 - ms) */
    dc_dpm_coeffs k3 = {.kind = 2, .a = R(sigma_s2 / sigma_s), .b = R(alpha_s2 * phi_12),
                        .c = R(R(r2 / r1) * R(alpha_s2 * phi_22)), .d = 1.0};
    sv_dpm_update(call, xs, x, ms, m1, ms, &k3, N, f32);
    rc = dc_sampler_eval_x0(call, m2, xs, s2, err);
    if (rc)
        return rc;
    /* x_t = sigma_t/sigma_s x - (alpha_t phi_1) ms + (1/r2)(alpha_t phi_2)(m2 - ms) */
    dc_dpm_coeffs k4 = {.kind = 2, .a = R(sigma_t / sigma_s), .b = R(alpha_t * phi_1),
                        .c = R(R(1.0 / r2) * R(alpha_t * phi_2)), .d = 1.0};
    sv_dpm_update(call, x, x, ms, m2, ms, &k4, N, f32);
    return DC_OK;
}

int dc_dpm_time_steps(const dc_noise_schedule *ns, dc_skip_type skip, double t_T, double t_0,
                      int N, double *ts, dc_error *err)
{
    if (!ns || !ts || N < 1)
        return dc_fail(err, DC_ERR_ARG, "dpm time steps: bad arguments (N = %d)", N);
    switch (skip) {
    case DC_SKIP_TIME_UNIFORM:
        dc_ns_linspace(ns, ts, t_T, t_0, N + 1);
        return DC_OK;
    case DC_SKIP_LOGSNR: {
        double lam_T = dc_ns_lambda(ns, t_T), lam_0 = dc_ns_lambda(ns, t_0);
        dc_ns_linspace(ns, ts, lam_T, lam_0, N + 1);
        for (int i = 0; i <= N; i++)
            ts[i] = dc_ns_inverse_lambda(ns, ts[i]);
        return DC_OK;
    }
    case DC_SKIP_TIME_QUADRATIC:
        dc_ns_linspace(ns, ts, sqrt(t_T), sqrt(t_0), N + 1);
        for (int i = 0; i <= N; i++)
            ts[i] = R(ts[i] * ts[i]);
        return DC_OK;
    }
    return dc_fail(err, DC_ERR_ARG, "dpm time steps: unknown skip type %d", (int)skip);
}

/* The singlestep order schedule of DPM-Solver-fast (get_orders_and_timesteps_for_singlestep_
 * solver); returns the number of outer steps. orders has room for `steps` entries. */
static int singlestep_orders(int steps, int order, int *orders)
{
    int k = 0;
    if (order == 3) {
        int K = steps / 3 + 1;
        int threes = steps % 3 == 0 ? K - 2 : K - 1;
        for (int i = 0; i < threes; i++)
            orders[k++] = 3;
        if (steps % 3 == 0) {
            orders[k++] = 2;
            orders[k++] = 1;
        } else {
            orders[k++] = steps % 3 == 1 ? 1 : 2;
        }
    } else if (order == 2) {
        for (int i = 0; i < steps / 2; i++)
            orders[k++] = 2;
        if (steps % 2)
            orders[k++] = 1;
    } else {
        for (int i = 0; i < steps; i++)
            orders[k++] = 1;
    }
    return k;
}

static int run_multistep(dc_sampler_call *call, float *x, float *const *slots, const double *ts,
                         dc_error *err)
{
    const dc_sampler_options *opt = call->opt;
    const size_t N = (size_t)call->B * call->n;
    const int order = opt->order, steps = opt->steps;
    float *M[3]; /* model values, oldest first: M[cnt-1] is the newest (model_prev_list) */
    double T[3];
    float *free_slot;
    int cnt = 0, rc;

    M[0] = slots[0];
    T[0] = ts[0];
    rc = dc_sampler_eval_x0(call, M[0], x, ts[0], err);
    if (rc)
        return rc;
    cnt = 1;
    /* Warm-up: the first order-1 steps use orders 1, 2, ... */
    for (int step = 1; step < order; step++) {
        double t = ts[step];
        if (step == 1)
            first_update(call, x, x, M[0], T[0], t, N);
        else
            multistep2_update(call, x, M[1], M[0], T[1], T[0], t, N);
        M[cnt] = slots[cnt];
        T[cnt] = t;
        rc = dc_sampler_eval_x0(call, M[cnt], x, t, err);
        if (rc)
            return rc;
        cnt++;
    }
    for (int step = order; step <= steps; step++) {
        double t = ts[step];
        int step_order = order;
        if (opt->lower_order_final && steps < 10 && steps + 1 - step < order)
            step_order = steps + 1 - step;
        if (step_order == 1)
            first_update(call, x, x, M[cnt - 1], T[cnt - 1], t, N);
        else if (step_order == 2)
            multistep2_update(call, x, M[cnt - 1], M[cnt - 2], T[cnt - 1], T[cnt - 2], t, N);
        else
            multistep3_update(call, x, M[2], M[1], M[0], T[2], T[1], T[0], t, N);
        /* slide the window; the oldest slot receives the next model value */
        free_slot = M[0];
        for (int i = 0; i < order - 1; i++) {
            M[i] = M[i + 1];
            T[i] = T[i + 1];
        }
        T[order - 1] = t;
        if (step < steps) {
            M[order - 1] = free_slot;
            rc = dc_sampler_eval_x0(call, free_slot, x, t, err);
            if (rc)
                return rc;
        }
    }
    return DC_OK;
}

static int run_singlestep(dc_sampler_call *call, float *x, float *const *slots, double *grid,
                          double *outer, int *orders, dc_error *err)
{
    const dc_noise_schedule *ns = call->ns;
    const dc_sampler_options *opt = call->opt;
    const double t_T = opt->t_start > 0.0 ? opt->t_start : dc_ns_t_max(ns);
    const double t_0 = opt->t_end > 0.0 ? opt->t_end : dc_ns_t_min(ns);
    int K = singlestep_orders(opt->steps, opt->order, orders);
    int rc;
    if (opt->skip == DC_SKIP_LOGSNR) {
        rc = dc_dpm_time_steps(ns, opt->skip, t_T, t_0, K, outer, err);
        if (rc)
            return rc;
    } else {
        rc = dc_dpm_time_steps(ns, opt->skip, t_T, t_0, opt->steps, grid, err);
        if (rc)
            return rc;
        int idx = 0;
        outer[0] = grid[0];
        for (int i = 0; i < K; i++) {
            idx += orders[i];
            outer[i + 1] = grid[idx];
        }
    }
    for (int i = 0; i < K; i++) {
        double s = outer[i], t = outer[i + 1];
        int o = orders[i];
        double r1 = 0.0, r2 = 0.0;
        if (o >= 2) {
            double inner[4], lam[4];
            rc = dc_dpm_time_steps(ns, opt->skip, s, t, o, inner, err);
            if (rc)
                return rc;
            for (int j = 0; j <= o; j++)
                lam[j] = dc_ns_lambda(ns, inner[j]);
            double h = R(lam[o] - lam[0]);
            r1 = R(R(lam[1] - lam[0]) / h);
            if (o >= 3)
                r2 = R(R(lam[2] - lam[0]) / h);
        }
        rc = singlestep_update(call, x, o, s, t, r1, r2, slots[0], slots[1], slots[2], slots[3],
                               err);
        if (rc)
            return rc;
    }
    return DC_OK;
}

int dc_dpm_solver_sample(dc_sampler_call *call, float *x, float *work, dc_error *err)
{
    const dc_noise_schedule *ns = call->ns;
    const dc_sampler_options *opt = call->opt;
    const size_t N = (size_t)call->B * call->n;
    const int steps = opt->steps;
    if (opt->order < 1 || opt->order > 3)
        return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: order must be 1, 2 or 3 (got %d)", opt->order);
    if (steps < 1 || (opt->method == DC_DPM_MULTISTEP && steps < opt->order))
        return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: %d steps for order %d", steps, opt->order);
    /* order + 1 slots of [B][n]: model values, plus the singlestep intermediate x */
    float *slots[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i <= opt->order; i++)
        slots[i] = work + (size_t)i * N;
    /* the time grids: ts/grid (steps+1), outer (steps+1), orders (steps) — allocated once here */
    double *times = malloc((size_t)(2 * (steps + 1)) * sizeof *times);
    int *orders = malloc((size_t)steps * sizeof *orders);
    if (!times || !orders) {
        free(times);
        free(orders);
        return dc_fail(err, DC_ERR_NOMEM, "DPM-Solver++: out of memory");
    }
    const double t_T = opt->t_start > 0.0 ? opt->t_start : dc_ns_t_max(ns);
    const double t_0 = opt->t_end > 0.0 ? opt->t_end : dc_ns_t_min(ns);
    int rc;
    if (opt->method == DC_DPM_MULTISTEP) {
        rc = dc_dpm_time_steps(ns, opt->skip, t_T, t_0, steps, times, err);
        if (rc == DC_OK)
            rc = run_multistep(call, x, slots, times, err);
    } else {
        /* singlestep: model values in slots[0..order-1], the intermediate x_s in slots[order]
         * (for lower orders the unused m1/m2 arguments alias it harmlessly) */
        slots[3] = slots[opt->order];
        for (int i = opt->order; i < 3; i++)
            slots[i] = slots[opt->order];
        rc = run_singlestep(call, x, slots, times, times + steps + 1, orders, err);
    }
    if (rc == DC_OK && opt->denoise_to_zero) {
        /* the extra call at t_0 itself: its x0 prediction is the result */
        float *tmp = slots[opt->order];
        rc = dc_sampler_eval_x0(call, tmp, x, t_0, err);
        if (rc == DC_OK)
            sv_copy(call, x, tmp, N);
    }
    free(times);
    free(orders);
    return rc;
}
