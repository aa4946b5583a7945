/* diffcr — where a sampler's vector passes run: through the op table when the vectors are a
 * backend's memory, else the host references directly (internal to core/diffusion). */
#ifndef DIFFCR_SAMPLER_VEC_H
#define DIFFCR_SAMPLER_VEC_H

#include <string.h>

#include "diffcr/backend.h"
#include "diffcr/philox.h"
#include "diffcr/sampler.h"

static inline void sv_dpm_update(const dc_sampler_call *c, float *dst, const float *x, const float *m0,
                                 const float *m1, const float *m2, const dc_dpm_coeffs *k, size_t N, int f32)
{
    if (c->be)
        c->be->dpm_update(dst, x, m0, m1, m2, k, N, f32);
    else
        dc_dpm_update(dst, x, m0, m1, m2, k, N, f32);
}

static inline void sv_copy(const dc_sampler_call *c, float *dst, const float *src, size_t N)
{
    if (c->be)
        c->be->copy(c->be, dst, src, N * sizeof(float));
    else if (dst != src)
        memmove(dst, src, N * sizeof(float));
}

static inline void sv_ddim_update(const dc_sampler_call *c, float *x, const float *x0, const float *noise,
                                  double sa, double s1a, double sap, double c_eps, double sigma, size_t N)
{
    if (c->be)
        c->be->ddim_update(x, x0, noise, sa, s1a, sap, c_eps, sigma, N);
    else
        dc_ddim_update(x, x0, noise, sa, s1a, sap, c_eps, sigma, N);
}

static inline void sv_ddpm_update(const dc_sampler_call *c, float *x, const float *x0, const float *noise,
                                  double coef1, double coef2, double sd, size_t N)
{
    if (c->be)
        c->be->ddpm_update(x, x0, noise, coef1, coef2, sd, N);
    else
        dc_ddpm_update(x, x0, noise, coef1, coef2, sd, N);
}

static inline void sv_x0_roundtrip(const dc_sampler_call *c, float *x0, const float *x, float a, float s,
                                   size_t N)
{
    if (c->be)
        c->be->x0_roundtrip(x0, x, a, s, N);
    else
        dc_x0_roundtrip(x0, x, a, s, N);
}

static inline void sv_prediction_to_x0(const dc_sampler_call *c, float *x0, dc_target_kind kind, const float *pred,
                                       const float *x, size_t N, double alpha, double sigma)
{
    if (c->be)
        c->be->prediction_to_x0(x0, kind, pred, x, N, alpha, sigma);
    else
        dc_prediction_to_x0(x0, kind, pred, x, N, alpha, sigma);
}

static inline void sv_dynamic_threshold(const dc_sampler_call *c, float *x0, double ratio, double max_val,
                                        int float32_rank)
{
    if (c->be)
        c->be->dynamic_threshold(c->be, x0, c->B, c->n, ratio, max_val, float32_rank, NULL);
    else
        dc_dynamic_threshold(x0, c->B, c->n, ratio, max_val, float32_rank, c->scratch, NULL);
}

static inline void sv_clamp_abs(const dc_sampler_call *c, float *x, float m, size_t N)
{
    if (c->be)
        c->be->clamp_abs(x, m, N);
    else
        dc_clamp_abs(x, m, N);
}

static inline int sv_fill_normal(const dc_sampler_call *c, float *out, size_t n, uint32_t stream, uint32_t tile,
                                 uint32_t step, dc_error *err)
{
    if (c->be)
        return c->be->philox_fill_normal(c->be, out, n, c->opt->seed, stream, tile, step, err);
    return dc_philox_fill_normal(out, n, c->opt->seed, stream, tile, step, err);
}

#endif
