/* diffcr — Philox normals on the device (cuda_ops.h; reference dc_philox_fill_normal in
 * core/diffusion/philox.c).
 *
 * Bit-exact with the CPU: the kernel compiles the same source (diffusion/philox_math.h), whose
 * transform is IEEE double +, -, *, /, sqrt and frexp only. That holds because this module is
 * built with --fmad=false (no contraction, like the C build's -ffp-contract=off) and without
 * --use_fast_math (CUDA's double division and sqrt are then correctly rounded).
 *
 * One thread per group of 4 elements (one Philox block), written as one 16-byte store when the
 * output is aligned and the group is whole. */
#include <stdint.h>

#include "launch.cuh"
#include "diffcr/error.h"
#include "diffusion/philox_math.h"

__global__ void philox_normal_kernel(float *out, size_t n, size_t groups, uint64_t seed,
                                     uint32_t stream, uint32_t tile, uint32_t step, int vec4)
{
    DC_FOR(g, groups)
    {
        float v[4];
        dc_pm_normal4(v, seed, stream, tile, step, (uint32_t)g);
        const size_t base = g * 4;
        if (vec4 && base + 4 <= n) {
            *(float4 *)(out + base) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
            for (size_t j = 0; j < 4 && base + j < n; j++)
                out[base + j] = v[j];
        }
    }
}

int cuda_philox_fill_normal(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                            uint32_t step)
{
    /* the reference's argument checks (check_fill in philox.c) */
    if (!out && n)
        return DC_ERR_ARG;
    if ((uint64_t)n >= ((uint64_t)1 << 34)) /* 2^32 groups of 4 */
        return DC_ERR_ARG;
    if (n == 0)
        return DC_OK;
    const size_t groups = (n + 3) / 4;
    const int vec4 = ((uintptr_t)out % 16) == 0;
    philox_normal_kernel<<<dc_blocks(groups), DC_BLOCK, 0, DC_STREAM>>>(out, n, groups, seed, stream,
                                                                       tile, step, vec4);
    return DC_OK;
}
