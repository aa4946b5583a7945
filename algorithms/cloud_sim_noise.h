/* diffcr — counter-based hash noise for the cloud simulator and the landscape generator
 * (private to algorithms/).
 *
 * Every random quantity is a pure function of integer counters (seed, date, layer, octave,
 * lattice x, y) through a splitmix64-style mixer. Nothing keeps state, so a pixel's value does not
 * depend on the tile it is computed in, on the order of computation, or on the thread doing it:
 * a 64x64 tile at (x0, y0) is bit-identical to the same window of a larger simulation. */
#ifndef DIFFCR_CLOUD_SIM_NOISE_H
#define DIFFCR_CLOUD_SIM_NOISE_H

#include <stdint.h>

/* splitmix64's finaliser: a bijective 64-bit mixer with good avalanche. */
static inline uint64_t dc_noise_mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A key for one independent stream: (seed, a, b, c) -> 64 bits. Chained mixing so that
 * (a, b) = (1, 2) and (2, 1) give unrelated keys. */
static inline uint64_t dc_noise_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t k = dc_noise_mix64(seed ^ 0x5DEECE66Dull);
    k = dc_noise_mix64(k ^ a);
    k = dc_noise_mix64(k ^ (b * 0xD6E8FEB86659FD93ull));
    return dc_noise_mix64(k ^ (c * 0xA0761D6478BD642Full));
}

/* Hash of a lattice point under a key. */
static inline uint64_t dc_noise_hash2(uint64_t key, int64_t x, int64_t y)
{
    /* two rounds: x and y enter through different odd multipliers and separate mixes */
    return dc_noise_mix64(dc_noise_mix64(key + (uint64_t)x * 0x9E3779B97F4A7C15ull) +
                          (uint64_t)y * 0xC2B2AE3D27D4EB4Full);
}

/* Uniform double in [0, 1) from the top 53 bits of a hash. */
static inline double dc_noise_unit(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [0, 1) for scalar parameter `what` of stream (seed, a, b). */
static inline double dc_noise_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t what)
{
    return dc_noise_unit(dc_noise_key(seed, a, b, what));
}

/* Clamp to [0, 1]. */
static inline double dc_noise_clamp01(double t)
{
    return t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
}

/* 2-D gradient (Perlin-style) noise with quintic fade at point (x, y) in lattice units; output
 * within [-1, 1], zero at lattice points. */
double dc_noise_gradient(uint64_t key, double x, double y);

/* 2-D value noise (smooth interpolation of hashed lattice values), output in [-1, 1]. */
double dc_noise_value(uint64_t key, double x, double y);

/* Fractal sum of gradient noise: octave o (0 = coarsest) has wavelength `wavelength` / 2^o pixels,
 * amplitude gain^o and key dc_noise_key(key, o, 0, 0). Sums the octaves in [first, last) and
 * divides by the amplitude sum of all `octaves`, so partial sums add up to the full one (the
 * cloud shadow uses only the coarse octaves of the cloud's field) and stay within about [-1, 1]. */
double dc_noise_fbm(uint64_t key, double px, double py, double wavelength, int octaves,
                    double gain, int first, int last);

#endif
