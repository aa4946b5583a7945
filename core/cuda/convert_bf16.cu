/* diffcr — float32 <-> bfloat16 copies for the bf16 precision (conv_cudnn.cu).
 *
 * cuDNN computes a bf16 convolution only on bf16 tensors (its pseudo-bf16 configuration: bf16
 * data, fp32 accumulation), while every tensor of diffcr is stored in float32. So the inputs are
 * narrowed into scratch before the call and the result is widened after it. The bits are handled
 * as integers: bf16 is the top half of a float32, narrowing rounds to nearest with ties to even
 * (what cuDNN and PyTorch do), a NaN stays a (quiet) NaN instead of rounding into an infinity,
 * and widening is exact. */
#include "cuda/cuda_ops.h"
#include "cuda/launch.cuh"

__device__ __forceinline__ uint16_t bf16_from_float_bits(uint32_t u)
{
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep the sign, set the quiet bit */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__global__ void f32_to_bf16_kernel(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = bf16_from_float_bits(__float_as_uint(src[i]));
}

__global__ void bf16_to_f32_kernel(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

void cuda_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    if (n)
        f32_to_bf16_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(dst, src, n);
}

void cuda_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    if (n)
        bf16_to_f32_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(dst, src, n);
}
