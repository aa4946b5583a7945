/* diffcr — Adam/AdamW, EMA and gradient clipping over flat buffers (optim.h).
 *
 * Why float32 state with double scalars: PyTorch keeps m, v in the parameter dtype and computes the
 * bias corrections in Python floats (double); doing the same keeps one step equal to PyTorch's. */
#include <math.h>
#include <omp.h>

#include "diffcr/ops.h"
#include "diffcr/optim.h"

void dc_adam_config_default(dc_adam_config *cfg)
{
    cfg->lr = 5e-5;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.0;
    cfg->decoupled = 0;
}

void dc_adam_update(float *params, float *m, float *v, const float *grads, size_t n,
                    const dc_adam_config *cfg, long long t)
{
    /* 1 - beta in double then rounded, as PyTorch does: (1.0f - b2) in float is 0.0010000467, a
     * constant 4.7e-5 relative error in v. */
    const float b1 = (float)cfg->beta1, b2 = (float)cfg->beta2;
    const float one_minus_b1 = (float)(1.0 - cfg->beta1), one_minus_b2 = (float)(1.0 - cfg->beta2);
    const double bc1 = 1.0 - pow(cfg->beta1, (double)t);
    const double bc2 = 1.0 - pow(cfg->beta2, (double)t);
    const float step_size = (float)(cfg->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)cfg->eps;
    const float wd = (float)cfg->weight_decay;
    const float decay_factor = (float)(1.0 - cfg->lr * cfg->weight_decay);
    const int decoupled = cfg->decoupled;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        float p = params[i];
        if (wd != 0.0f) {
            if (decoupled)
                p *= decay_factor;
            else
                g += wd * p;
        }
        float mi = b1 * m[i] + one_minus_b1 * g;
        float vi = b2 * v[i] + one_minus_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        params[i] = p - step_size * (mi / denom);
    }
}

void dc_ema_update(float *ema, const float *params, size_t n, double decay)
{
    const float d = (float)decay, one_minus = (float)(1.0 - decay);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        ema[i] = d * ema[i] + one_minus * params[i];
}

double dc_grad_norm(const float *grads, size_t n)
{
    /* Fixed chunks summed in order: the same bits for any thread count. */
    enum { CHUNK = 1 << 16 };
    size_t chunks = (n + CHUNK - 1) / CHUNK;
    double total = 0.0;
    for (size_t c0 = 0; c0 < chunks; c0 += 64) {
        double part[64] = {0};
        size_t cn = chunks - c0 < 64 ? chunks - c0 : 64;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < cn; c++) {
            size_t lo = (c0 + c) * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            double s = 0.0;
            for (size_t i = lo; i < hi; i++)
                s += (double)grads[i] * grads[i];
            part[c] = s;
        }
        for (size_t c = 0; c < cn; c++)
            total += part[c];
    }
    return sqrt(total);
}

double dc_clip_grad_norm(float *grads, size_t n, double max_norm)
{
    double norm = dc_grad_norm(grads, n);
    if (norm > max_norm && norm > 0.0) {
        /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6) */
        float coef = (float)(max_norm / (norm + 1e-6));
        scale_inplace(grads, coef, n);
    }
    return norm;
}
