/* diffcr — optimiser and EMA as single loops over the flat parameter buffers.
 *
 * Parameters, gradients, Adam moments and EMA copies share one layout (unet.h), so an update is one
 * pass over n floats whatever the network. The arithmetic follows torch.optim.Adam / AdamW (the
 * non-fused, single-tensor path) so that one step equals PyTorch's to float rounding. */
#ifndef DIFFCR_OPTIM_H
#define DIFFCR_OPTIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_adam_config {
    double lr;            /* DiffCR: 5e-5 */
    double beta1, beta2;  /* 0.9, 0.999 */
    double eps;           /* 1e-8 */
    double weight_decay;  /* DiffCR: 0 */
    int decoupled;        /* 1 = AdamW (decay applied to the weights), 0 = Adam (L2 added to the gradient) */
} dc_adam_config;

void dc_adam_config_default(dc_adam_config *cfg);

/* One update at step t (1-based: the first update is t = 1). m and v start at zero. */
void dc_adam_update(float *params, float *m, float *v, const float *grads, size_t n,
                    const dc_adam_config *cfg, long long t);

/* ema = decay * ema + (1 - decay) * params (DiffCR's EMA, decay 0.9999). */
void dc_ema_update(float *ema, const float *params, size_t n, double decay);

/* Global L2 norm of the gradients (double accumulation, fixed order), and in-place clipping to
 * max_norm (no-op when the norm is smaller); returns the norm before clipping. */
double dc_grad_norm(const float *grads, size_t n);
double dc_clip_grad_norm(float *grads, size_t n, double max_norm);

#ifdef __cplusplus
}
#endif
#endif
