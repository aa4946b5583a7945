/* diffcr — LayerNorm2d forward and backward on NHWC activations (see ops.h).
 *
 * In NHWC the channels of a pixel are contiguous, so the per-pixel statistics are short row reductions
 * that stay in L1, and the whole op is one streaming pass per direction. oneDNN's LayerNorm is only fast
 * on some layouts and its API has traps (BACKENDS.md §4.5), so this hand-written loop is the one used.
 *
 * Row sums use LANES independent float accumulators: without -ffast-math GCC will not reorder a single
 * float accumulator, so this is how the reduction gets vectorised, and the fixed lane order keeps it
 * deterministic. The parameter gradients sum over every pixel: each thread owns a fixed, contiguous
 * pixel range with double accumulators, and the partials are added in thread order. */
#include "diffcr/ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/thread_partials.h"

/* Below PARALLEL_MIN floats an OpenMP fork/join costs more than the forward loop it splits (the
 * backward always runs parallel: it only sees full activations). */
enum { LANES = 8, PARALLEL_MIN = 1 << 15 };



static float row_sum(const float *x, int C)
{
    float lane[LANES] = {0};
    int c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += x[c + l];
    float s = 0.0f;
    for (int l = 0; l < LANES; l++)
        s += lane[l];
    for (; c < C; c++)
        s += x[c];
    return s;
}

/* sum of (x - m)^2: two-pass variance, which unlike E[x^2] - m^2 does not cancel catastrophically. */
static float row_sum_sq_dev(const float *x, float m, int C)
{
    float lane[LANES] = {0};
    int c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[c + l] - m;
            lane[l] += d * d;
        }
    float s = 0.0f;
    for (int l = 0; l < LANES; l++)
        s += lane[l];
    for (; c < C; c++) {
        float d = x[c] - m;
        s += d * d;
    }
    return s;
}

void layernorm2d_forward(float *out, float *mean, float *rstd, const float *inp,
                         const float *weight, const float *bias, size_t P, int C)
{
#pragma omp parallel for schedule(static) if (P * (size_t)C >= PARALLEL_MIN)
    for (size_t p = 0; p < P; p++) {
        const float *restrict x = inp + p * (size_t)C;
        float *restrict y = out + p * (size_t)C;
        /* Divide (as torch's mean does) rather than multiply by 1/C: a constant pixel then gets its
         * exact value as mean and a zero variance. */
        float m = row_sum(x, C) / (float)C;
        float var = row_sum_sq_dev(x, m, C) / (float)C;
        float rs = 1.0f / sqrtf(var + DC_LAYERNORM_EPS);
        for (int c = 0; c < C; c++)
            y[c] = (x[c] - m) * rs * weight[c] + bias[c];
        if (mean)
            mean[p] = m;
        if (rstd)
            rstd[p] = rs;
    }
}

/* dx of one pixel: rstd * (g - mean_c(g) - y * mean_c(g*y)) with g = dout * weight. */
static void pixel_dinp(float *restrict dx, const float *restrict g_out, const float *restrict x,
                       const float *restrict weight, float m, float rs, int C, float inv_c)
{
    float lane_g[LANES] = {0}, lane_gy[LANES] = {0};
    int c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int l = 0; l < LANES; l++) {
            float g = g_out[c + l] * weight[c + l];
            float y = (x[c + l] - m) * rs;
            lane_g[l] += g;
            lane_gy[l] += g * y;
        }
    float sum_g = 0.0f, sum_gy = 0.0f;
    for (int l = 0; l < LANES; l++) {
        sum_g += lane_g[l];
        sum_gy += lane_gy[l];
    }
    for (; c < C; c++) {
        float g = g_out[c] * weight[c];
        float y = (x[c] - m) * rs;
        sum_g += g;
        sum_gy += g * y;
    }
    const float mean_g = sum_g * inv_c, mean_gy = sum_gy * inv_c;
    for (int k = 0; k < C; k++) {
        float g = g_out[k] * weight[k];
        float y = (x[k] - m) * rs;
        dx[k] = rs * (g - mean_g - y * mean_gy);
    }
}

/* Adds one pixel's dweight/dbias contributions into double accumulators (either may be NULL). */
static void pixel_param_grads(double *restrict acc_w, double *restrict acc_b, const float *restrict go,
                              const float *restrict x, float m, float rs, int C)
{
    if (acc_w)
        for (int c = 0; c < C; c++)
            acc_w[c] += (double)(go[c] * ((x[c] - m) * rs));
    if (acc_b)
        for (int c = 0; c < C; c++)
            acc_b[c] += (double)go[c];
}

void layernorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *mean, const float *rstd,
                          const float *weight, size_t P, int C)
{
    const float inv_c = 1.0f / (float)C;
    const int want_params = dweight != NULL || dbias != NULL;
    const int max_threads = omp_get_max_threads();
    /* Per thread: C doubles for dweight then C for dbias. */
    const size_t stride = slice_stride(2 * (size_t)C, sizeof(double));
    double *partial = want_params ? dc_thread_scratch(0, (size_t)max_threads * stride * sizeof(double)) : NULL;
    int used_threads = 1;

#pragma omp parallel num_threads(max_threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const size_t lo = P * (size_t)t / (size_t)T, hi = P * (size_t)(t + 1) / (size_t)T;
        if (t == 0)
            used_threads = T;
        double *mine = want_params ? partial + (size_t)t * stride : NULL;
        if (mine)
            for (int c = 0; c < 2 * C; c++)
                mine[c] = 0.0;
        double *acc_w = mine && dweight ? mine : NULL;
        double *acc_b = mine && dbias ? mine + C : NULL;
        /* One pass: the parameter sums reuse the pixel's dout and x while they are still in L1. */
        for (size_t p = lo; p < hi; p++) {
            const float *go = dout + p * (size_t)C, *x = inp + p * (size_t)C;
            pixel_dinp(dinp + p * (size_t)C, go, x, weight, mean[p], rstd[p], C, inv_c);
            if (mine)
                pixel_param_grads(acc_w, acc_b, go, x, mean[p], rstd[p], C);
        }
    }

    if (want_params) {
        for (int c = 0; c < C; c++) {
            double sw = 0.0, sb = 0.0;
            for (int t = 0; t < used_threads; t++) {
                sw += partial[(size_t)t * stride + (size_t)c];
                sb += partial[(size_t)t * stride + (size_t)C + (size_t)c];
            }
            if (dweight)
                dweight[c] = (float)sw;
            if (dbias)
                dbias[c] = (float)sb;
        }
    }
}
