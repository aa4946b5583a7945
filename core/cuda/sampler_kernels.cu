/* diffcr — the samplers' vector passes on the GPU (reference: core/diffusion/sampler_kernels.c).
 *
 * One thread per element, the reference's expressions in the same order; the module is built with
 * --fmad=false and float division is IEEE by default, so the float32 paths give the CPU's bits
 * and a whole sampling run stays on the device (no vector crosses the bus per step). */
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "launch.cuh"

__global__ void dpm_update_f32_kernel(float *dst, const float *x, const float *m0, const float *m1,
                                      const float *m2, int kind, float a, float b, float c, float d, float e,
                                      float f, float g, float p, float q, size_t N)
{
    DC_FOR(i, N)
    {
        if (kind == 1) {
            dst[i] = a * x[i] - b * m0[i];
        } else if (kind == 2) {
            float diff = d * (m1[i] - m2[i]);
            dst[i] = (a * x[i] - b * m0[i]) + c * diff;
        } else {
            float D10 = d * (m0[i] - m1[i]);
            float D11 = e * (m1[i] - m2[i]);
            float D1 = D10 + f * (D10 - D11);
            float D2 = g * (D10 - D11);
            dst[i] = ((a * x[i] - b * m0[i]) + p * D1) - q * D2;
        }
    }
}

__global__ void dpm_update_f64_kernel(float *dst, const float *x, const float *m0, const float *m1,
                                      const float *m2, int kind, double a, double b, double c, double d,
                                      double e, double f, double g, double p, double q, size_t N)
{
    DC_FOR(i, N)
    {
        if (kind == 1) {
            dst[i] = (float)(a * (double)x[i] - b * (double)m0[i]);
        } else if (kind == 2) {
            double diff = d * ((double)m1[i] - (double)m2[i]);
            dst[i] = (float)((a * (double)x[i] - b * (double)m0[i]) + c * diff);
        } else {
            double D10 = d * ((double)m0[i] - (double)m1[i]);
            double D11 = e * ((double)m1[i] - (double)m2[i]);
            double D1 = D10 + f * (D10 - D11);
            double D2 = g * (D10 - D11);
            dst[i] = (float)(((a * (double)x[i] - b * (double)m0[i]) + p * D1) - q * D2);
        }
    }
}

extern "C" void cuda_dpm_update(float *dst, const float *x, const float *m0, const float *m1, const float *m2,
                                const dc_dpm_coeffs *k, size_t N, int f32)
{
    if (N == 0)
        return;
    if (f32)
        dpm_update_f32_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(
            dst, x, m0, m1, m2, k->kind, (float)k->a, (float)k->b, (float)k->c, (float)k->d, (float)k->e,
            (float)k->f, (float)k->g, (float)k->p, (float)k->q, N);
    else
        dpm_update_f64_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(dst, x, m0, m1, m2, k->kind, k->a, k->b, k->c,
                                                                       k->d, k->e, k->f, k->g, k->p, k->q, N);
}

__global__ void x0_roundtrip_kernel(float *x0, const float *x, float a, float s, size_t N)
{
    DC_FOR(i, N)
    {
        float noise = (x[i] - a * x0[i]) / s;
        x0[i] = (x[i] - s * noise) / a;
    }
}

extern "C" void cuda_x0_roundtrip(float *x0, const float *x, float a, float s, size_t N)
{
    if (N)
        x0_roundtrip_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(x0, x, a, s, N);
}

/* kind: DC_TARGET_EPS or DC_TARGET_V (x0 is a copy, done by the caller's copy). */
__global__ void prediction_to_x0_kernel(float *x0, int kind, const float *pred, const float *x_t, float a,
                                        float s, size_t N)
{
    DC_FOR(i, N)
    {
        if (kind == DC_TARGET_EPS)
            x0[i] = (x_t[i] - s * pred[i]) / a;
        else
            x0[i] = a * x_t[i] - s * pred[i];
    }
}

extern "C" void cuda_prediction_to_x0(float *x0, dc_target_kind kind, const float *pred, const float *x_t, size_t N,
                                      double alpha, double sigma)
{
    if (N == 0)
        return;
    if (kind == DC_TARGET_X0) {
        if (x0 != pred && cudaMemcpyAsync(x0, pred, N * sizeof(float), cudaMemcpyDeviceToDevice, DC_STREAM) != cudaSuccess)
            cuda_note_error("prediction_to_x0: device copy failed");
        return;
    }
    prediction_to_x0_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(x0, (int)kind, pred, x_t, (float)alpha,
                                                                      (float)sigma, N);
}

__global__ void clamp_abs_kernel(float *x, float m, size_t N)
{
    DC_FOR(i, N)
    {
        x[i] = x[i] < -m ? -m : (x[i] > m ? m : x[i]);
    }
}

extern "C" void cuda_clamp_abs(float *x, float m, size_t N)
{
    if (N)
        clamp_abs_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(x, m, N);
}

__global__ void ddim_update_kernel(float *x, const float *x0, const float *noise, double sa, double s1a, double sap,
                                   double c_eps, double sigma, size_t N)
{
    DC_FOR(i, N)
    {
        double eps = ((double)x[i] - sa * (double)x0[i]) / s1a;
        double v = sap * (double)x0[i] + c_eps * eps;
        if (noise)
            v += sigma * (double)noise[i];
        x[i] = (float)v;
    }
}

extern "C" void cuda_ddim_update(float *x, const float *x0, const float *noise, double sa, double s1a, double sap,
                                 double c_eps, double sigma, size_t N)
{
    if (N)
        ddim_update_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(x, x0, noise, sa, s1a, sap, c_eps, sigma, N);
}

__global__ void ddpm_update_kernel(float *x, const float *x0, const float *noise, double coef1, double coef2,
                                   double sd, size_t N)
{
    DC_FOR(i, N)
    {
        double v = coef1 * (double)x0[i] + coef2 * (double)x[i];
        if (noise)
            v += sd * (double)noise[i];
        x[i] = (float)v;
    }
}

extern "C" void cuda_ddpm_update(float *x, const float *x0, const float *noise, double coef1, double coef2, double sd,
                                 size_t N)
{
    if (N)
        ddpm_update_kernel<<<dc_blocks(N), DC_BLOCK, 0, DC_STREAM>>>(x, x0, noise, coef1, coef2, sd, N);
}
