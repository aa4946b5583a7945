/* diffcr — gradient, value and fractal noise from counter-based hashes (see cloud_sim_noise.h).
 *
 * Why hand-written rather than a library: the values must be a pure function of
 * (key, absolute position) so that tiles, strips and threads agree bit for bit, and the same
 * code must serve the trainer's in-memory tiles and the raster program. */
#include <math.h>

#include "cloud_sim_noise.h"

/* Eight unit gradient directions: cheaper than hashing an angle and calling sin/cos. */
static const double grad_dirs[8][2] = {
    {1.0, 0.0},  {0.70710678118654752, 0.70710678118654752},
    {0.0, 1.0},  {-0.70710678118654752, 0.70710678118654752},
    {-1.0, 0.0}, {-0.70710678118654752, -0.70710678118654752},
    {0.0, -1.0}, {0.70710678118654752, -0.70710678118654752},
};

/* Quintic fade 6t^5 - 15t^4 + 10t^3: continuous second derivative, so no grid creases. */
static inline double fade(double t)
{
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
}

static inline double lerp(double a, double b, double t)
{
    return a + (b - a) * t;
}

static inline double corner_dot(uint64_t key, int64_t ix, int64_t iy, double dx, double dy)
{
    const double *g = grad_dirs[dc_noise_hash2(key, ix, iy) >> 61];
    return g[0] * dx + g[1] * dy;
}

double dc_noise_gradient(uint64_t key, double x, double y)
{
    double fx = floor(x), fy = floor(y);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    double dx = x - fx, dy = y - fy;
    double u = fade(dx), v = fade(dy);
    double n00 = corner_dot(key, ix, iy, dx, dy);
    double n10 = corner_dot(key, ix + 1, iy, dx - 1.0, dy);
    double n01 = corner_dot(key, ix, iy + 1, dx, dy - 1.0);
    double n11 = corner_dot(key, ix + 1, iy + 1, dx - 1.0, dy - 1.0);
    /* the 2-D Perlin range is [-sqrt(1/2), sqrt(1/2)]: scale to [-1, 1] */
    return 1.4142135623730951 * lerp(lerp(n00, n10, u), lerp(n01, n11, u), v);
}

double dc_noise_value(uint64_t key, double x, double y)
{
    double fx = floor(x), fy = floor(y);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    double u = fade(x - fx), v = fade(y - fy);
    double n00 = dc_noise_unit(dc_noise_hash2(key, ix, iy));
    double n10 = dc_noise_unit(dc_noise_hash2(key, ix + 1, iy));
    double n01 = dc_noise_unit(dc_noise_hash2(key, ix, iy + 1));
    double n11 = dc_noise_unit(dc_noise_hash2(key, ix + 1, iy + 1));
    return 2.0 * lerp(lerp(n00, n10, u), lerp(n01, n11, u), v) - 1.0;
}

double dc_noise_fbm(uint64_t key, double px, double py, double wavelength, int octaves,
                    double gain, int first, int last)
{
    double total = 0.0, amp = 1.0;
    for (int o = 0; o < octaves; o++, amp *= gain)
        total += amp;
    if (first < 0)
        first = 0;
    if (last > octaves)
        last = octaves;
    double sum = 0.0;
    amp = pow(gain, first);
    double freq = ldexp(1.0 / wavelength, first);
    for (int o = first; o < last; o++, amp *= gain, freq *= 2.0) {
        uint64_t k = dc_noise_key(key, (uint64_t)o, 0, 0);
        /* an irrational per-octave shift keeps octave lattices from lining up at the origin */
        sum += amp * dc_noise_gradient(k, px * freq + 0.3183098861837907 * o,
                                       py * freq + 0.6180339887498949 * o);
    }
    return sum / total;
}
