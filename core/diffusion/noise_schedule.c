/* diffcr — the discrete VP noise schedule every sampler shares (DIFFCR.md §4.1).
 *
 * DPM-Solver turns a discrete beta array into a continuous-time schedule:
 *   la[k] = 0.5 * cumsum(log(1 - beta))      computed in float64, as in the official run
 *   lambda[k] = la[k] - 0.5 log(1 - exp(2 la[k]));  drop the last m entries with lambda < -5.1
 *   t_k = (k+1)/N'  (torch.linspace(0, 1, N'+1)[1:])
 *   log alpha(t) = piecewise-linear interpolation of (t_k, la[k]), first/last segment extended.
 * Sigmoid schedules lose exactly one entry (N' = 999 for the 1000-step test schedule).
 *
 * In DC_NS_FLOAT32 the table is stored float32 and every later scalar operation is rounded to
 * float, in the same order as torch evaluates the Python expressions (interpolate_fn,
 * marginal_std, marginal_lambda, inverse_lambda). The rounding matters: near t_0,
 * 1 - exp(2 la) ~ 3e-4 loses four digits in float32, which moves the last solver step by ~1e-5
 * (DIFFCR.md §4.4 vectors). DC_NS_DOUBLE uses expm1 instead and keeps doubles throughout. */
#include "diffcr/schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define F32(v) ((double)(float)(v))

double dc_ns_round(const dc_noise_schedule *ns, double v)
{
    return ns->precision == DC_NS_FLOAT32 ? F32(v) : v;
}

/* torch.linspace(start, end, steps) in float32, value for value as ATen 1.13's CPU kernel (AVX2
 * build) produces it: step = (end - start) / (steps - 1) in float; the first half counted from
 * start, the second from end; while at least 16 values remain they come in blocks of 8 whose
 * base is a fused multiply-add and whose members are base + step * i (Vectorized::arange); the
 * tail is fused multiply-add per value. Checked against torch for 2..60, 999..4001 steps. The
 * difference from the naive formula is one float ulp here and there; matching it keeps the
 * t-table and the time grid bit-identical to the official run. */
static void linspace_f32(double *out, double start, double end, int steps)
{
    const float s = (float)start, e = (float)end;
    if (steps == 1) {
        out[0] = s;
        return;
    }
    const float step = (e - s) / (float)(steps - 1);
    const int half = steps / 2;
    int idx = 0;
    while (idx < steps) {
        if (steps - idx >= 16) {
            for (int block = 0; block < 2; block++, idx += 8) {
                float base = idx < half ? fmaf(step, (float)idx, s)
                                        : fmaf(-step, (float)(steps - idx - 1), e);
                for (int i = 0; i < 8; i++) {
                    float si = step * (float)i;
                    out[idx + i] = (double)(base + si);
                }
            }
        } else {
            out[idx] = idx < half ? (double)fmaf(step, (float)idx, s)
                                  : (double)fmaf(-step, (float)(steps - idx - 1), e);
            idx++;
        }
    }
}

void dc_ns_linspace(const dc_noise_schedule *ns, double *out, double start, double end, int steps)
{
    if (steps <= 0)
        return;
    if (ns->precision == DC_NS_FLOAT32) {
        linspace_f32(out, start, end, steps);
        return;
    }
    if (steps == 1) {
        out[0] = start;
        return;
    }
    for (int i = 0; i < steps; i++)
        out[i] = start + (end - start) * ((double)i / (double)(steps - 1));
    out[steps - 1] = end;
}

int dc_noise_schedule_init(dc_noise_schedule *ns, const double *betas, int n,
                           dc_ns_precision precision, dc_error *err)
{
    if (!ns || !betas)
        return dc_fail(err, DC_ERR_ARG, "noise schedule: NULL argument");
    ns->log_alpha = ns->t = NULL;
    ns->n_betas = ns->total_n = 0;
    ns->precision = precision;
    if (precision != DC_NS_FLOAT32 && precision != DC_NS_DOUBLE)
        return dc_fail(err, DC_ERR_ARG, "noise schedule: unknown precision %d", (int)precision);
    if (n < 2)
        return dc_fail(err, DC_ERR_ARG, "noise schedule: need at least 2 betas, got %d", n);

    double *la = malloc((size_t)n * sizeof *la);
    if (!la)
        return dc_fail(err, DC_ERR_NOMEM, "noise schedule: out of memory");
    /* float64 cumsum of log(1 - beta), exactly as the official code (betas come from numpy). */
    double acc = 0.0;
    for (int k = 0; k < n; k++) {
        if (!(betas[k] >= 0.0 && betas[k] <= 1.0)) {
            free(la);
            return dc_fail(err, DC_ERR_ARG, "noise schedule: beta[%d] = %g outside [0, 1]", k, betas[k]);
        }
        acc += log(1.0 - betas[k]);
        la[k] = 0.5 * acc;
    }
    /* numerical_clip_alpha: count the entries with lambda < -5.1; lambda decreases with k, so
     * they are the last ones (torch.searchsorted on the flipped array). la = -inf (beta = 1)
     * gives lambda = -inf and is dropped too. */
    int m = 0;
    for (int k = n - 1; k >= 0; k--) {
        double log_sigma = 0.5 * log(1.0 - exp(2.0 * la[k]));
        double lam = la[k] - log_sigma;
        if (lam < DC_NS_CLIPPED_LAMBDA)
            m++;
        else
            break;
    }
    int total = n - m;
    if (total < 2) {
        free(la);
        return dc_fail(err, DC_ERR_ARG, "noise schedule: only %d entries left above lambda = -5.1", total);
    }
    /* t_k = linspace(0, 1, N'+1)[k+1]: build all N'+1 values, then drop the leading 0. */
    double *t = malloc((size_t)(total + 1) * sizeof *t);
    if (!t) {
        free(la);
        return dc_fail(err, DC_ERR_NOMEM, "noise schedule: out of memory");
    }
    if (precision == DC_NS_FLOAT32) {
        linspace_f32(t, 0.0, 1.0, total + 1);
        memmove(t, t + 1, (size_t)total * sizeof *t);
        for (int k = 0; k < total; k++)
            la[k] = F32(la[k]); /* the table is a float32 tensor in the official run */
    } else {
        for (int k = 0; k < total; k++)
            t[k] = (double)(k + 1) / (double)total;
    }
    /* The interpolation (and its inverse) needs strictly monotone knots. */
    for (int k = 1; k < total; k++) {
        if (!(la[k] < la[k - 1]) || !(t[k] > t[k - 1])) {
            free(la);
            free(t);
            return dc_fail(err, DC_ERR_ARG,
                           "noise schedule: log alpha not strictly decreasing at %d (a zero beta, or "
                           "float32 rounding: use DC_NS_DOUBLE)", k);
        }
    }
    ns->log_alpha = la;
    ns->t = t;
    ns->n_betas = n;
    ns->total_n = total;
    return DC_OK;
}

void dc_noise_schedule_free(dc_noise_schedule *ns)
{
    if (!ns)
        return;
    free(ns->log_alpha);
    free(ns->t);
    ns->log_alpha = ns->t = NULL;
    ns->n_betas = ns->total_n = 0;
}

double dc_ns_t_max(const dc_noise_schedule *ns)
{
    (void)ns;
    return 1.0;
}

double dc_ns_t_min(const dc_noise_schedule *ns)
{
    return dc_ns_round(ns, 1.0 / (double)ns->total_n);
}

/* Piecewise-linear y(x) through (xp[k], yp[k]), xp increasing, extended linearly outside:
 * DPM-Solver's interpolate_fn. The segment formula and its evaluation order
 * (y0 + ((x - x0) * (y1 - y0)) / (x1 - x0)) follow the original so FLOAT32 rounds alike. */
static double interp(const dc_noise_schedule *ns, double x, const double *xp, const double *yp,
                     int count, int reversed)
{
#define XP(i) (reversed ? xp[count - 1 - (i)] : xp[i])
#define YP(i) (reversed ? yp[count - 1 - (i)] : yp[i])
    int lo = 0, hi = count - 1;
    int seg;
    if (x < XP(0)) {
        seg = 0;
    } else if (x >= XP(count - 1)) {
        seg = count - 2;
    } else {
        /* binary search for the last knot <= x */
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            if (XP(mid) <= x)
                lo = mid;
            else
                hi = mid;
        }
        seg = lo;
    }
    double x0 = XP(seg), x1 = XP(seg + 1), y0 = YP(seg), y1 = YP(seg + 1);
#undef XP
#undef YP
    double dx = dc_ns_round(ns, x - x0);
    double dy = dc_ns_round(ns, y1 - y0);
    double num = dc_ns_round(ns, dx * dy);
    double q = dc_ns_round(ns, num / dc_ns_round(ns, x1 - x0));
    return dc_ns_round(ns, y0 + q);
}

double dc_ns_log_alpha(const dc_noise_schedule *ns, double t)
{
    return interp(ns, dc_ns_round(ns, t), ns->t, ns->log_alpha, ns->total_n, 0);
}

double dc_ns_alpha(const dc_noise_schedule *ns, double t)
{
    return dc_ns_round(ns, exp(dc_ns_log_alpha(ns, t)));
}

/* 1 - exp(2 la): float32 as torch writes it, or the cancellation-free -expm1 in double. */
static double one_minus_alpha_bar(const dc_noise_schedule *ns, double la)
{
    if (ns->precision == DC_NS_FLOAT32)
        return F32(1.0 - F32(exp(F32(2.0 * la))));
    return -expm1(2.0 * la);
}

double dc_ns_sigma(const dc_noise_schedule *ns, double t)
{
    double la = dc_ns_log_alpha(ns, t);
    return dc_ns_round(ns, sqrt(one_minus_alpha_bar(ns, la)));
}

double dc_ns_lambda(const dc_noise_schedule *ns, double t)
{
    double la = dc_ns_log_alpha(ns, t);
    double log_std = dc_ns_round(ns, 0.5 * dc_ns_round(ns, log(one_minus_alpha_bar(ns, la))));
    return dc_ns_round(ns, la - log_std);
}

double dc_ns_alpha_bar(const dc_noise_schedule *ns, double t)
{
    double la = dc_ns_log_alpha(ns, t);
    return dc_ns_round(ns, exp(dc_ns_round(ns, 2.0 * la)));
}

/* torch.logaddexp(0, b): max + log1p(exp(-|a - b|)). */
static double logaddexp0(const dc_noise_schedule *ns, double b)
{
    double m = b > 0.0 ? b : 0.0;
    double d = dc_ns_round(ns, -fabs(b));
    double e = dc_ns_round(ns, exp(d));
    return dc_ns_round(ns, m + dc_ns_round(ns, log1p(e)));
}

double dc_ns_inverse_lambda(const dc_noise_schedule *ns, double lambda)
{
    double lam = dc_ns_round(ns, lambda);
    double la = dc_ns_round(ns, -0.5 * logaddexp0(ns, dc_ns_round(ns, -2.0 * lam)));
    /* log alpha decreases with t: interpolate over the reversed (increasing) table. */
    return interp(ns, la, ns->log_alpha, ns->t, ns->total_n, 1);
}

double dc_ns_discrete_t(const dc_noise_schedule *ns, int k)
{
    return ns->t[k];
}

double dc_ns_discrete_alpha_bar(const dc_noise_schedule *ns, int k)
{
    return dc_ns_round(ns, exp(dc_ns_round(ns, 2.0 * ns->log_alpha[k])));
}
