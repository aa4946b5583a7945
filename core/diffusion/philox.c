/* diffcr — Philox 4x32-10 and Box-Muller normals (see philox.h for the keying scheme).
 *
 * The maths (the Philox rounds, the uniform map and the libm-free log/sin/cos of the Box-Muller
 * transform) lives in philox_math.h, which the CUDA kernel compiles too, so a CPU tile and a GPU
 * tile get the same bits; this file holds the public entry points and the OpenMP fill loops.
 * The test checks the Random123 known-answer vectors. */
#include "diffcr/philox.h"

#include "diffusion/philox_math.h"

void dc_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    dc_pm_philox4x32_10(out, ctr, key);
}

double dc_philox_uniform(uint32_t x)
{
    return dc_pm_uniform(x);
}

void dc_philox_box_muller(float out[2], uint32_t a, uint32_t b)
{
    dc_pm_box_muller(out, a, b);
}

static void philox_block(uint32_t out[4], uint64_t seed, uint32_t stream, uint32_t tile,
                         uint32_t step, uint32_t group)
{
    dc_pm_block(out, seed, stream, tile, step, group);
}

void dc_philox_normal4(float out[4], uint64_t seed, uint32_t stream, uint32_t tile, uint32_t step,
                       uint32_t group)
{
    dc_pm_normal4(out, seed, stream, tile, step, group);
}

uint32_t dc_philox_u32(uint64_t seed, uint32_t stream, uint32_t tile, uint32_t step, uint64_t i)
{
    uint32_t r[4];
    philox_block(r, seed, stream, tile, step, (uint32_t)(i >> 2));
    return r[i & 3];
}

#define PHILOX_MAX_ELEMENTS (((size_t)1) << 34) /* 2^32 groups of 4 */

static int check_fill(const float *out, size_t n, dc_error *err)
{
    if (!out && n)
        return dc_fail(err, DC_ERR_ARG, "philox: NULL output");
    if ((uint64_t)n >= (uint64_t)PHILOX_MAX_ELEMENTS)
        return dc_fail(err, DC_ERR_ARG, "philox: %zu elements exceed the 2^34 counter range", n);
    return DC_OK;
}

int dc_philox_fill_normal(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                          uint32_t step, dc_error *err)
{
    int rc = check_fill(out, n, err);
    if (rc != DC_OK)
        return rc;
    long long groups = (long long)((n + 3) / 4);
#pragma omp parallel for schedule(static) if (groups > 4096)
    for (long long g = 0; g < groups; g++) {
        float v[4];
        dc_philox_normal4(v, seed, stream, tile, step, (uint32_t)g);
        size_t base = (size_t)g * 4;
        for (size_t j = 0; j < 4 && base + j < n; j++)
            out[base + j] = v[j];
    }
    return DC_OK;
}

int dc_philox_fill_uniform(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                           uint32_t step, dc_error *err)
{
    int rc = check_fill(out, n, err);
    if (rc != DC_OK)
        return rc;
    long long groups = (long long)((n + 3) / 4);
#pragma omp parallel for schedule(static) if (groups > 4096)
    for (long long g = 0; g < groups; g++) {
        uint32_t r[4];
        philox_block(r, seed, stream, tile, step, (uint32_t)g);
        size_t base = (size_t)g * 4;
        for (size_t j = 0; j < 4 && base + j < n; j++)
            out[base + j] = (float)dc_philox_uniform(r[j]);
    }
    return DC_OK;
}
