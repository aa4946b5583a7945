/* diffcr — the learning-rate schedule: DiffCR's constant lr, optionally with a linear warm-up and
 * a cosine decay (options of diffcr, not of DiffCR; train.h lists the config keys).
 *
 * A pure function of the step so that a resumed run continues the same curve. */
#include <math.h>

#include "diffcr/train.h"

double dc_train_lr(const dc_train_config *cfg, long long step, long long decay_end)
{
    double lr = cfg->adam.lr;
    if (cfg->warmup_iter > 0 && step <= cfg->warmup_iter)
        return lr * (double)step / (double)cfg->warmup_iter;
    if (!cfg->cosine)
        return lr;
    long long end = cfg->lr_decay_iter > 0 ? cfg->lr_decay_iter : decay_end;
    long long span = end - cfg->warmup_iter;
    if (span <= 0)
        return cfg->min_lr;
    double p = (double)(step - cfg->warmup_iter) / (double)span;
    if (p > 1)
        p = 1;
    return cfg->min_lr + (lr - cfg->min_lr) * 0.5 * (1.0 + cos(M_PI * p));
}
