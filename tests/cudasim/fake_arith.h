/* diffcr cudasim — the arithmetic and checks the two simulated libraries (fake_cublas.cpp,
 * fake_cudnn.cpp) share: how a compute/math type rounds fp32 inputs (exact, TF32, IEEE half,
 * bfloat16) and how bf16 data is stored, the
 * accumulation step of their products, BLAS/cuDNN's alpha/beta blend, and the device-pointer check
 * every call makes. C++ only; everything is inline so each fake stays one translation unit. */
#ifndef DIFFCR_CUDASIM_FAKE_ARITH_H
#define DIFFCR_CUDASIM_FAKE_ARITH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <vector>

#include "sim_runtime.h"

namespace fake {

enum class Rounding { exact, tf32, fp16, bf16 };

/* Round to nearest, ties to even, keeping `keep` of float's 23 explicit mantissa bits; the
 * exponent range stays float's (a carry out of the largest binade gives inf, as it should). */
inline float round_mantissa(float v, int keep)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u)
        return v; /* inf and NaN pass through */
    const int drop = 23 - keep;
    const uint32_t half = (1u << (drop - 1)) - 1u;
    const uint32_t lsb = (bits >> drop) & 1u;
    bits += half + lsb; /* ties: only an odd kept lsb pushes a tie up */
    bits &= ~((1u << drop) - 1u);
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* TF32: 10 explicit mantissa bits, float's exponent range (what tensor cores multiply). */
inline float round_tf32(float v) { return round_mantissa(v, 10); }

/* IEEE binary16, returned as the float of the same value: 10 mantissa bits for normals, a fixed
 * 2^-24 quantum below 2^-14 (subnormals), inf beyond the largest half 65504. */
inline float round_fp16(float v)
{
    if (!isfinite(v))
        return v;
    const float a = fabsf(v);
    float r;
    if (a < 0x1p-14f)
        r = nearbyintf(a * 0x1p24f) * 0x1p-24f; /* exact scaling; default mode rounds ties to even */
    else
        r = round_mantissa(a, 10);
    if (r > 65504.0f)
        r = INFINITY;
    return copysignf(r, v);
}

/* bfloat16: 7 explicit mantissa bits, float's exponent range (subnormals included: bf16 keeps
 * float's layout, so rounding the mantissa is all there is). */
inline float round_bf16(float v) { return round_mantissa(v, 7); }

/* bf16 storage (the top half of a float32's bits): written from a float rounded to nearest with
 * ties to even, a NaN kept NaN (its payload may sit in the dropped half); read back exactly. */
inline uint16_t bf16_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x0040u);
    const float r = round_bf16(v);
    memcpy(&bits, &r, sizeof bits);
    return (uint16_t)(bits >> 16);
}

inline float bf16_value(uint16_t h)
{
    const uint32_t bits = (uint32_t)h << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

inline float round_input(float v, Rounding r)
{
    switch (r) {
    case Rounding::tf32: return round_tf32(v);
    case Rounding::fp16: return round_fp16(v);
    case Rounding::bf16: return round_bf16(v);
    default: return v;
    }
}

/* p itself for exact math, else a rounded copy in buf (inputs are rounded, never the sums). */
inline const float *rounded_inputs(const float *p, size_t n, Rounding r, std::vector<float> &buf)
{
    if (r == Rounding::exact)
        return p;
    buf.resize(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = round_input(p[i], r);
    return buf.data();
}

/* acc[i] += a[i] * b for i < n. Written in blocks of 8 on non-aliasing pointers so that g++ -O2
 * turns it into vector multiplies and adds; each lane is the same IEEE multiply then add as the
 * scalar loop, so the results do not change. */
inline void axpy(float *__restrict acc, const float *__restrict a, float b, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++)
            acc[i + u] += a[i + u] * b;
    for (; i < n; i++)
        acc[i] += a[i] * b;
}

/* *dst = alpha * sum + beta * *dst, the libraries' output rule; with beta 0 the output is never
 * read (it may hold NaN). */
inline void blend(float *dst, float sum, float alpha, float beta)
{
    const float scaled = alpha * sum;
    *dst = beta == 0.0f ? scaled : scaled + beta * *dst;
}

/* Dies unless [p, p + bytes) is live device memory. */
inline void need_device(const void *p, size_t bytes, const char *call, const char *arg)
{
    if (bytes > 0 && !dc_sim_device_range(p, bytes))
        dc_sim_fail("%s: %s = %p is not device memory for the %zu bytes the call touches", call, arg, p, bytes);
}

} // namespace fake

#endif
