/* diffcr — beta schedules (DiffCR/Palette `make_beta_schedule`, DIFFCR.md §3.1).
 *
 * Each schedule is computed the way the Python original computes it, operation for operation, so
 * the float32 "gammas" DiffCR stores come out identical:
 *  - numpy's linspace is start + i*step with the last value set to stop exactly;
 *  - the cosine schedule is torch float64: ((k/n + s) / (1+s) * pi) / 2, cos, squared;
 *  - the sigmoid schedule (the one the paper model uses) mixes precisions: sigmoid(-3) and
 *    sigmoid(3) are float32 0-dim tensors, and so is their difference, while the curve
 *    sigmoid(6 tau - 3) is float64 and absorbs the float32 constants by promotion. The float32
 *    constants are computed here with float arithmetic exactly as torch's scalar kernel does
 *    (1 / (1 + exp(-x))). Getting this wrong moves the gammas in their 7th digit. */
#include "diffcr/schedule.h"

#include <math.h>
#include <string.h>

static const char *const beta_names[] = {"linear", "warmup10", "warmup50", "const",
                                         "jsd",    "cosine",   "sigmoid",  "quad"};

int dc_beta_kind_parse(const char *name, dc_beta_kind *kind, dc_error *err)
{
    if (!name || !kind)
        return dc_fail(err, DC_ERR_ARG, "beta schedule: NULL argument");
    for (int i = 0; i < (int)(sizeof beta_names / sizeof beta_names[0]); i++) {
        if (strcmp(name, beta_names[i]) == 0) {
            *kind = (dc_beta_kind)i;
            return DC_OK;
        }
    }
    return dc_fail(err, DC_ERR_ARG,
                   "unknown beta schedule '%s' (linear, warmup10, warmup50, const, jsd, cosine, "
                   "sigmoid, quad)", name);
}

const char *dc_beta_kind_name(dc_beta_kind kind)
{
    if ((int)kind < 0 || (int)kind >= (int)(sizeof beta_names / sizeof beta_names[0]))
        return "unknown";
    return beta_names[kind];
}

/* numpy.linspace(start, stop, num) in float64 (endpoint included). */
static void np_linspace(double *y, double start, double stop, int num)
{
    if (num <= 0)
        return;
    if (num == 1) {
        y[0] = start;
        return;
    }
    double step = (stop - start) / (double)(num - 1);
    for (int i = 0; i < num; i++)
        y[i] = (double)i * step + start;
    y[num - 1] = stop;
}

static void warmup_betas(double *betas, double linear_start, double linear_end, int n, double frac)
{
    for (int i = 0; i < n; i++)
        betas[i] = linear_end;
    int warmup = (int)((double)n * frac); /* Python int(): truncation */
    np_linspace(betas, linear_start, linear_end, warmup);
}

/* Torch's float32 sigmoid on a 0-dim tensor: 1 / (1 + exp(-x)), every step rounded to float. */
static float sigmoid_f32(float x)
{
    float e = expf(-x);
    float d = 1.0f + e;
    return 1.0f / d;
}

static void sigmoid_betas(double *betas, int n)
{
    const double start = -3.0, end = 3.0, tau = 1.0;
    const float v_start = sigmoid_f32((float)(start / tau));
    const float v_end = sigmoid_f32((float)(end / tau));
    const float denom = v_end - v_start; /* float32 subtraction, like the 0-dim tensors */
    double prev = 0.0, first = 0.0;
    for (int k = 0; k <= n; k++) {
        double t = (double)k / (double)n;
        double x = (t * (end - start) + start) / tau;
        double sig = 1.0 / (1.0 + exp(-x));
        double ac = ((double)v_end - sig) / (double)denom;
        if (k == 0)
            first = ac;
        ac = ac / first;
        if (k > 0) {
            double b = 1.0 - ac / prev;
            betas[k - 1] = b < 0.0 ? 0.0 : (b > 0.999 ? 0.999 : b);
        }
        prev = ac;
    }
}

static void cosine_betas(double *betas, int n, double cosine_s)
{
    const double pi = 3.14159265358979323846;
    double a0 = 0.0, prev = 0.0;
    for (int k = 0; k <= n; k++) {
        double ts = (double)k / (double)n + cosine_s;
        double ang = ts / (1.0 + cosine_s) * pi / 2.0;
        double c = cos(ang);
        double a = c * c;
        if (k == 0)
            a0 = a;
        a = a / a0;
        if (k > 0) {
            double b = 1.0 - a / prev;
            betas[k - 1] = b > 0.999 ? 0.999 : b; /* clamp(max=0.999) only */
        }
        prev = a;
    }
}

int dc_make_beta_schedule(double *betas, dc_beta_kind kind, int n, double linear_start,
                          double linear_end, double cosine_s, dc_error *err)
{
    if (!betas)
        return dc_fail(err, DC_ERR_ARG, "beta schedule: NULL output");
    if (n < 2)
        return dc_fail(err, DC_ERR_ARG, "beta schedule: need at least 2 steps, got %d", n);
    switch (kind) {
    case DC_BETA_LINEAR:
        np_linspace(betas, linear_start, linear_end, n);
        break;
    case DC_BETA_WARMUP10:
        warmup_betas(betas, linear_start, linear_end, n, 0.1);
        break;
    case DC_BETA_WARMUP50:
        warmup_betas(betas, linear_start, linear_end, n, 0.5);
        break;
    case DC_BETA_CONST:
        for (int i = 0; i < n; i++)
            betas[i] = linear_end;
        break;
    case DC_BETA_JSD:
        np_linspace(betas, (double)n, 1.0, n);
        for (int i = 0; i < n; i++)
            betas[i] = 1.0 / betas[i];
        break;
    case DC_BETA_COSINE:
        cosine_betas(betas, n, cosine_s);
        break;
    case DC_BETA_SIGMOID:
        sigmoid_betas(betas, n);
        break;
    case DC_BETA_QUAD:
        if (linear_start < 0.0 || linear_end < 0.0)
            return dc_fail(err, DC_ERR_ARG, "quad beta schedule: negative linear_start/end");
        np_linspace(betas, sqrt(linear_start), sqrt(linear_end), n);
        for (int i = 0; i < n; i++)
            betas[i] = betas[i] * betas[i];
        break;
    default:
        return dc_fail(err, DC_ERR_ARG, "beta schedule: unknown kind %d", (int)kind);
    }
    for (int i = 0; i < n; i++) {
        if (!(betas[i] >= 0.0 && betas[i] <= 1.0))
            return dc_fail(err, DC_ERR_ARG,
                           "beta schedule '%s': beta[%d] = %g outside [0, 1] (check linear_start/end)",
                           dc_beta_kind_name(kind), i, betas[i]);
    }
    return DC_OK;
}

void dc_alphas_cumprod(double *gammas, const double *betas, int n)
{
    double g = 1.0;
    for (int i = 0; i < n; i++) {
        g *= 1.0 - betas[i];
        gammas[i] = g;
    }
}
