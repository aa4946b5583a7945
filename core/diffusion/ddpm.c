/* diffcr — DDPM ancestral sampling (Ho et al. 2020) over respaced discrete steps.
 *
 * The sampler DiffCR's Network.p_sample implements (dead code in the release, DIFFCR.md §3.4),
 * generalised to improved-diffusion's respacing: between kept steps k (alpha-bar ab) and the
 * previous kept step (ab_prev; 1 after the last), the step beta is 1 - ab/ab_prev and
 *   x' = coef1 x0 + coef2 x + sqrt(posterior variance) z       (z only while steps remain)
 *   coef1 = beta sqrt(ab_prev)/(1 - ab),  coef2 = (1 - ab_prev) sqrt(1 - beta)/(1 - ab),
 *   posterior variance = beta (1 - ab_prev)/(1 - ab)   ("fixed small", as DiffCR's p_sample).
 * DiffCR clips x0 to [-1, 1] there: use x0_correction = DC_X0_CLIP for that, or keep dynamic
 * thresholding. */
#include "diffcr/philox.h"
#include "diffcr/sampler.h"
#include "diffusion/sampler_vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int dc_ddpm_sample(dc_sampler_call *call, float *x, float *work, dc_error *err)
{
    const dc_noise_schedule *ns = call->ns;
    const dc_sampler_options *opt = call->opt;
    const size_t n = call->n, N = (size_t)call->B * n;
    float *x0 = work, *noise = work + N;
    const int total_n = ns->total_n;
    char buf[32];
    const char *spec = opt->respacing;
    if (!spec) {
        snprintf(buf, sizeof buf, "%d", opt->steps);
        spec = buf;
    }
    int *keep = malloc((size_t)total_n * sizeof *keep), count = 0;
    if (!keep)
        return dc_fail(err, DC_ERR_NOMEM, "DDPM: out of memory");
    int rc = dc_space_timesteps(total_n, spec, keep, total_n, &count, err);
    for (int j = count - 1; j >= 0 && rc == DC_OK; j--) {
        int k = keep[j];
        double ab = dc_ns_discrete_alpha_bar(ns, k);
        double ab_prev = j > 0 ? dc_ns_discrete_alpha_bar(ns, keep[j - 1]) : 1.0;
        rc = dc_sampler_eval_x0_discrete(call, x0, x, k, err);
        if (rc)
            break;
        double beta = 1.0 - ab / ab_prev;
        double coef1 = beta * sqrt(ab_prev) / (1.0 - ab);
        double coef2 = (1.0 - ab_prev) * sqrt(1.0 - beta) / (1.0 - ab);
        double var = beta * (1.0 - ab_prev) / (1.0 - ab);
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        int noisy = j > 0 && sd > 0.0;
        if (noisy) {
            rc = dc_sampler_step_noise(call, noise, (uint32_t)j, err);
            if (rc)
                break;
        }
        sv_ddpm_update(call, x, x0, noisy ? noise : NULL, coef1, coef2, sd, N);
    }
    free(keep);
    return rc;
}
