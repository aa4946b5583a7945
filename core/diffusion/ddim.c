/* diffcr — DDIM sampling (Song et al. 2021) over respaced discrete steps.
 *
 * improved-diffusion's ddim_sample on DiffCR's discrete schedule: from the kept steps
 * k_{S-1} > ... > k_0 (dc_space_timesteps over the N' steps of the noise schedule), each step
 * predicts x0, recovers eps = (x - sqrt(ab) x0) / sqrt(1 - ab), and moves to the previous kept
 * step:
 *   x' = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z,
 *   sigma = eta sqrt((1 - ab_prev)/(1 - ab)) sqrt(1 - ab/ab_prev),
 * with ab_prev = 1 after the last step, so the result is the final x0 prediction. eta = 0 is the
 * deterministic ODE sampler (the same first-order update DPM-Solver++ makes). The x0 prediction
 * goes through the options' x0 correction like every sampler's. */
#include "diffcr/philox.h"
#include "diffcr/sampler.h"
#include "diffusion/sampler_vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The kept steps for DDIM/DDPM: the options' respacing, or one section of `steps`. */
static int respaced_steps(const dc_sampler_call *call, int **steps, int *count, dc_error *err)
{
    const dc_sampler_options *opt = call->opt;
    int total = call->ns->total_n;
    char buf[32];
    const char *spec = opt->respacing;
    if (!spec) {
        snprintf(buf, sizeof buf, "%d", opt->steps);
        spec = buf;
    }
    *steps = malloc((size_t)total * sizeof **steps);
    if (!*steps)
        return dc_fail(err, DC_ERR_NOMEM, "DDIM: out of memory");
    int rc = dc_space_timesteps(total, spec, *steps, total, count, err);
    if (rc) {
        free(*steps);
        *steps = NULL;
    }
    return rc;
}

int dc_ddim_sample(dc_sampler_call *call, float *x, float *work, dc_error *err)
{
    const dc_noise_schedule *ns = call->ns;
    const dc_sampler_options *opt = call->opt;
    const size_t n = call->n, N = (size_t)call->B * n;
    float *x0 = work, *noise = work + N;
    int *keep = NULL, count = 0;
    if (!(opt->eta >= 0.0))
        return dc_fail(err, DC_ERR_ARG, "DDIM: eta must be >= 0 (got %g)", opt->eta);
    int rc = respaced_steps(call, &keep, &count, err);
    if (rc)
        return rc;
    for (int j = count - 1; j >= 0; j--) {
        int k = keep[j];
        double ab = dc_ns_discrete_alpha_bar(ns, k);
        double ab_prev = j > 0 ? dc_ns_discrete_alpha_bar(ns, keep[j - 1]) : 1.0;
        rc = dc_sampler_eval_x0_discrete(call, x0, x, k, err);
        if (rc)
            break;
        double sigma = opt->eta * sqrt((1.0 - ab_prev) / (1.0 - ab)) * sqrt(1.0 - ab / ab_prev);
        double c_eps2 = 1.0 - ab_prev - sigma * sigma;
        double c_eps = c_eps2 > 0.0 ? sqrt(c_eps2) : 0.0;
        double sa = sqrt(ab), s1a = sqrt(1.0 - ab), sap = sqrt(ab_prev);
        int noisy = sigma > 0.0 && j > 0;
        if (noisy) {
            rc = dc_sampler_step_noise(call, noise, (uint32_t)j, err);
            if (rc)
                break;
        }
        sv_ddim_update(call, x, x0, noisy ? noise : NULL, sa, s1a, sap, c_eps, sigma, N);
    }
    free(keep);
    return rc;
}
