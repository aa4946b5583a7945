/* diffcr — the samplers' vector passes on host arrays (sampler.h). The CPU backends put these in
 * the op table as they are; core/cuda has the same passes as kernels, so a sampler runs wherever
 * its vectors live. Each element's value depends only on its inputs (no cross-element order), so
 * the results are the same for any thread count, and CUDA built without FMA contraction gives the
 * same bits. */
#include "diffcr/sampler.h"

enum { PARALLEL_MIN = 65536 };

void dc_dpm_update(float *dst, const float *x, const float *m0, const float *m1, const float *m2,
                   const dc_dpm_coeffs *k, size_t N, int f32)
{
    long long n = (long long)N;
    if (f32) {
        const float a = (float)k->a, b = (float)k->b, c = (float)k->c, d = (float)k->d;
        const float e = (float)k->e, f = (float)k->f, g = (float)k->g, p = (float)k->p, q = (float)k->q;
        switch (k->kind) {
        case 1:
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
            for (long long i = 0; i < n; i++)
                dst[i] = a * x[i] - b * m0[i];
            break;
        case 2:
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
            for (long long i = 0; i < n; i++) {
                float diff = d * (m1[i] - m2[i]);
                dst[i] = (a * x[i] - b * m0[i]) + c * diff;
            }
            break;
        default:
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
            for (long long i = 0; i < n; i++) {
                float D10 = d * (m0[i] - m1[i]);
                float D11 = e * (m1[i] - m2[i]);
                float D1 = D10 + f * (D10 - D11);
                float D2 = g * (D10 - D11);
                dst[i] = ((a * x[i] - b * m0[i]) + p * D1) - q * D2;
            }
            break;
        }
        return;
    }
    const double a = k->a, b = k->b, c = k->c, d = k->d, e = k->e, f = k->f, g = k->g, p = k->p, q = k->q;
    switch (k->kind) {
    case 1:
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (long long i = 0; i < n; i++)
            dst[i] = (float)(a * (double)x[i] - b * (double)m0[i]);
        break;
    case 2:
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (long long i = 0; i < n; i++) {
            double diff = d * ((double)m1[i] - (double)m2[i]);
            dst[i] = (float)((a * (double)x[i] - b * (double)m0[i]) + c * diff);
        }
        break;
    default:
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (long long i = 0; i < n; i++) {
            double D10 = d * ((double)m0[i] - (double)m1[i]);
            double D11 = e * ((double)m1[i] - (double)m2[i]);
            double D1 = D10 + f * (D10 - D11);
            double D2 = g * (D10 - D11);
            dst[i] = (float)(((a * (double)x[i] - b * (double)m0[i]) + p * D1) - q * D2);
        }
        break;
    }
}

void dc_x0_roundtrip(float *x0, const float *x, float a, float s, size_t N)
{
    long long n = (long long)N;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long long i = 0; i < n; i++) {
        float noise = (x[i] - a * x0[i]) / s;
        x0[i] = (x[i] - s * noise) / a;
    }
}

void dc_clamp_abs(float *x, float m, size_t N)
{
    long long n = (long long)N;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long long i = 0; i < n; i++)
        x[i] = x[i] < -m ? -m : (x[i] > m ? m : x[i]);
}

void dc_ddim_update(float *x, const float *x0, const float *noise, double sa, double s1a, double sap,
                    double c_eps, double sigma, size_t N)
{
    long long n = (long long)N;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long long i = 0; i < n; i++) {
        double eps = ((double)x[i] - sa * (double)x0[i]) / s1a;
        double v = sap * (double)x0[i] + c_eps * eps;
        if (noise)
            v += sigma * (double)noise[i];
        x[i] = (float)v;
    }
}

void dc_ddpm_update(float *x, const float *x0, const float *noise, double coef1, double coef2,
                    double sd, size_t N)
{
    long long n = (long long)N;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (long long i = 0; i < n; i++) {
        double v = coef1 * (double)x0[i] + coef2 * (double)x[i];
        if (noise)
            v += sd * (double)noise[i];
        x[i] = (float)v;
    }
}
