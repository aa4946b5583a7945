/* diffcr — training-side diffusion maths: DiffCR's noise level, noisy input and targets
 * (DIFFCR.md §3.2).
 *
 * DiffCR (like Palette) does not train on discrete steps: it draws t uniformly from {1..N-1} and
 * then gamma uniformly between gammas[t-1] and gammas[t], so the network sees a continuous noise
 * level and is conditioned on gamma itself. The arithmetic is float32 as in the original
 * (gammas is a float32 buffer, torch.rand is float32). The x0 target is DiffCR's; epsilon and v
 * are options sharing the same noisy input, each with its conversion back to x0 for sampling. */
#include "diffcr/philox.h"
#include "diffcr/schedule.h"

#include <math.h>
#include <string.h>

static const char *const target_names[] = {"x0", "eps", "v"};

int dc_target_kind_parse(const char *name, dc_target_kind *kind, dc_error *err)
{
    if (!name || !kind)
        return dc_fail(err, DC_ERR_ARG, "target: NULL argument");
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, target_names[i]) == 0) {
            *kind = (dc_target_kind)i;
            return DC_OK;
        }
    }
    return dc_fail(err, DC_ERR_ARG, "unknown prediction target '%s' (x0, eps, v)", name);
}

const char *dc_target_kind_name(dc_target_kind kind)
{
    if ((int)kind < 0 || (int)kind > 2)
        return "unknown";
    return target_names[kind];
}

float dc_train_noise_level(const float *gammas, int n, uint32_t r_t, uint32_t r_u, int *t_out)
{
    /* Multiply-shift maps a 32-bit word onto {0..n-2} with a bias below n/2^32 (< 1e-6 for
     * DiffCR's 2000 steps), far below anything training can see. */
    int t = 1 + (int)(((uint64_t)r_t * (uint64_t)(n - 1)) >> 32);
    /* torch.rand's float32 construction: 24 random bits, u in [0, 1) */
    float u = (float)(r_u >> 8) * (1.0f / 16777216.0f);
    float g1 = gammas[t - 1], g2 = gammas[t];
    if (t_out)
        *t_out = t;
    return (g2 - g1) * u + g1; /* sample_gammas = (gammas[t] - gammas[t-1]) * rand + gammas[t-1] */
}

void dc_train_target(float *target, dc_target_kind kind, const float *x0, const float *eps,
                     size_t n, double alpha, double sigma)
{
    const float a = (float)alpha, s = (float)sigma;
    switch (kind) {
    case DC_TARGET_X0:
        if (target != x0)
            memcpy(target, x0, n * sizeof *target);
        break;
    case DC_TARGET_EPS:
        if (target != eps)
            memcpy(target, eps, n * sizeof *target);
        break;
    case DC_TARGET_V:
        for (size_t i = 0; i < n; i++)
            target[i] = a * eps[i] - s * x0[i];
        break;
    }
}

void dc_prediction_to_x0(float *x0, dc_target_kind kind, const float *pred, const float *x_t,
                         size_t n, double alpha, double sigma)
{
    const float a = (float)alpha, s = (float)sigma;
    switch (kind) {
    case DC_TARGET_X0:
        if (x0 != pred)
            memcpy(x0, pred, n * sizeof *x0);
        break;
    case DC_TARGET_EPS:
        for (size_t i = 0; i < n; i++)
            x0[i] = (x_t[i] - s * pred[i]) / a;
        break;
    case DC_TARGET_V:
        /* x_t = a x0 + s eps, v = a eps - s x0, a^2 + s^2 = 1  =>  x0 = a x_t - s v */
        for (size_t i = 0; i < n; i++)
            x0[i] = a * x_t[i] - s * pred[i];
        break;
    }
}

int dc_train_make_batch(float *x_t, float *target, float *gamma, int *t, const float *x0, int B,
                        size_t n, const float *gammas, int n_gammas, dc_target_kind kind,
                        uint64_t seed, uint32_t step, uint32_t first_tile, dc_error *err)
{
    if (!x_t || !x0 || !gammas || B < 0)
        return dc_fail(err, DC_ERR_ARG, "training batch: NULL argument");
    if (n_gammas < 2)
        return dc_fail(err, DC_ERR_ARG, "training batch: need at least 2 gammas, got %d", n_gammas);
    if ((int)kind < DC_TARGET_X0 || (int)kind > DC_TARGET_V)
        return dc_fail(err, DC_ERR_ARG, "training batch: unknown target %d", (int)kind);
    if ((uint64_t)n >= ((uint64_t)1 << 34))
        return dc_fail(err, DC_ERR_ARG, "training batch: %zu values per sample exceed 2^34", n);
    for (int b = 0; b < B; b++) {
        uint32_t tile = first_tile + (uint32_t)b;
        uint32_t r_t = dc_philox_u32(seed, DC_PHILOX_STREAM_TRAIN_LEVEL, tile, step, 0);
        uint32_t r_u = dc_philox_u32(seed, DC_PHILOX_STREAM_TRAIN_LEVEL, tile, step, 1);
        int tb;
        float g = dc_train_noise_level(gammas, n_gammas, r_t, r_u, &tb);
        if (gamma)
            gamma[b] = g;
        if (t)
            t[b] = tb;
        /* q_sample: sqrt(gamma) * y0 + sqrt(1 - gamma) * noise, float32 */
        const float a = sqrtf(g), s = sqrtf(1.0f - g);
        const float *xb = x0 + (size_t)b * n;
        float *yb = x_t + (size_t)b * n;
        float *tgt = target ? target + (size_t)b * n : NULL;
        long long groups = (long long)((n + 3) / 4);
#pragma omp parallel for schedule(static) if (groups > 4096)
        for (long long gi = 0; gi < groups; gi++) {
            float eps[4];
            dc_philox_normal4(eps, seed, DC_PHILOX_STREAM_TRAIN_NOISE, tile, step, (uint32_t)gi);
            size_t base = (size_t)gi * 4;
            for (size_t j = 0; j < 4 && base + j < n; j++) {
                size_t i = base + j;
                float x = xb[i];
                yb[i] = a * x + s * eps[j];
                if (tgt) {
                    if (kind == DC_TARGET_X0)
                        tgt[i] = x;
                    else if (kind == DC_TARGET_EPS)
                        tgt[i] = eps[j];
                    else
                        tgt[i] = a * eps[j] - s * x;
                }
            }
        }
    }
    return DC_OK;
}
