/* diffcr — internal: the pure maths of Philox 4x32-10 and its Box-Muller normals, shared by the
 * CPU (philox.c) and the CUDA kernel (core/cuda/philox.cu) so both compile the very same source.
 *
 * Philox is written from the published algorithm (Salmon et al. 2011): each round multiplies
 * counter words 0 and 2 by the constants 0xD2511F53 and 0xCD9E8D57 into 64-bit products, swaps
 * and XORs the halves with the other counter words and the key, and the key is bumped by the Weyl
 * constants 0x9E3779B9 and 0xBB67AE85 between rounds.
 *
 * The normal transform avoids libm on purpose: glibc's log/sin/cos and CUDA's differ in the last
 * bit now and then, which would make a CPU tile and a GPU tile differ. A short atanh series for
 * log and Taylor polynomials for sin/cos on [-pi/4, pi/4], evaluated with plain IEEE double
 * +, -, *, / and sqrt (frexp only moves the exponent), give the same double on any IEEE-754
 * device as long as nothing is contracted into FMAs: the C build has -ffp-contract=off, the CUDA
 * build --fmad=false. The float we keep is then the same too. Accuracy is ~1e-16, far below the
 * float rounding. */
#ifndef DIFFCR_PHILOX_MATH_H
#define DIFFCR_PHILOX_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define DC_HOSTDEV __host__ __device__
#else
#define DC_HOSTDEV
#endif

#define DC_PHILOX_M0 0xD2511F53u
#define DC_PHILOX_M1 0xCD9E8D57u
#define DC_PHILOX_W0 0x9E3779B9u
#define DC_PHILOX_W1 0xBB67AE85u

DC_HOSTDEV static inline void dc_pm_round(uint32_t ctr[4], const uint32_t key[2])
{
    uint64_t p0 = (uint64_t)DC_PHILOX_M0 * ctr[0];
    uint64_t p1 = (uint64_t)DC_PHILOX_M1 * ctr[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = ctr[1], c3 = ctr[3];
    ctr[0] = hi1 ^ c1 ^ key[0];
    ctr[1] = lo1;
    ctr[2] = hi0 ^ c3 ^ key[1];
    ctr[3] = lo0;
}

/* out = philox4x32_10(ctr, key) */
DC_HOSTDEV static inline void dc_pm_philox4x32_10(uint32_t out[4], const uint32_t ctr[4],
                                                  const uint32_t key[2])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += DC_PHILOX_W0;
            k[1] += DC_PHILOX_W1;
        }
        dc_pm_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

/* (x + 0.5) / 2^32: strictly inside (0, 1), exact in double. */
DC_HOSTDEV static inline double dc_pm_uniform(uint32_t x)
{
    return ((double)x + 0.5) * (1.0 / 4294967296.0);
}

/* ln(u) for u in (0, 1]. u = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s) with
 * s = (m-1)/(m+1), |s| <= 0.1716, so s^2 <= 0.0295 and 13 terms reach double precision.
 * frexp only moves the exponent (exact everywhere). ln 2 is split so e*ln2_hi is exact. */
DC_HOSTDEV static inline double dc_pm_log(double u)
{
    int e;
    double m = frexp(u, &e);
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double z = s * s;
    double p = 1.0 / 25.0;
    p = p * z + 1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    p = p * z + 1.0;
    const double ln2_hi = 6.93147180369123816490e-01; /* upper bits of ln 2, trailing zeros */
    const double ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + ((double)e * ln2_lo + 2.0 * s * p);
}

/* sin and cos of 2*pi*v for v in (0, 1): reduce to the nearest quarter turn k (exact: 4v has at
 * most 34 significant bits), evaluate Taylor polynomials on |a| <= pi/4, rotate by k. */
DC_HOSTDEV static inline void dc_pm_sincos_2pi(double v, double *sin_out, double *cos_out)
{
    double q = 4.0 * v;
    int k = (int)(q + 0.5);
    double f = q - (double)k; /* [-0.5, 0.5] */
    double a = f * 1.57079632679489661923;
    double z = a * a;
    double sp = -1.0 / 121645100408832000.0;          /* -1/19! */
    sp = sp * z + 1.0 / 355687428096000.0;            /* 1/17! */
    sp = sp * z - 1.0 / 1307674368000.0;              /* 1/15! */
    sp = sp * z + 1.0 / 6227020800.0;                 /* 1/13! */
    sp = sp * z - 1.0 / 39916800.0;                   /* 1/11! */
    sp = sp * z + 1.0 / 362880.0;                     /* 1/9! */
    sp = sp * z - 1.0 / 5040.0;
    sp = sp * z + 1.0 / 120.0;
    sp = sp * z - 1.0 / 6.0;
    double s = a + a * z * sp;
    double cp = 1.0 / 6402373705728000.0;             /* 1/18! */
    cp = cp * z - 1.0 / 20922789888000.0;             /* 1/16! */
    cp = cp * z + 1.0 / 87178291200.0;                /* 1/14! */
    cp = cp * z - 1.0 / 479001600.0;                  /* 1/12! */
    cp = cp * z + 1.0 / 3628800.0;                    /* 1/10! */
    cp = cp * z - 1.0 / 40320.0;
    cp = cp * z + 1.0 / 720.0;
    cp = cp * z - 1.0 / 24.0;
    cp = cp * z + 0.5;
    double c = 1.0 - z * cp;
    switch (k & 3) {
    case 0: *sin_out = s; *cos_out = c; break;
    case 1: *sin_out = c; *cos_out = -s; break;
    case 2: *sin_out = -s; *cos_out = -c; break;
    default: *sin_out = -c; *cos_out = s; break;
    }
}

/* Two standard normals from two uint32: r = sqrt(-2 ln u0), angle 2 pi u1. */
DC_HOSTDEV static inline void dc_pm_box_muller(float out[2], uint32_t a, uint32_t b)
{
    double u0 = dc_pm_uniform(a), u1 = dc_pm_uniform(b);
    double r = sqrt(-2.0 * dc_pm_log(u0));
    double s, c;
    dc_pm_sincos_2pi(u1, &s, &c);
    out[0] = (float)(r * c);
    out[1] = (float)(r * s);
}

/* The Philox block of element group `group`: key = seed (low word first), counter =
 * {group, step, tile, stream} (philox.h). */
DC_HOSTDEV static inline void dc_pm_block(uint32_t out[4], uint64_t seed, uint32_t stream,
                                          uint32_t tile, uint32_t step, uint32_t group)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {group, step, tile, stream};
    dc_pm_philox4x32_10(out, ctr, key);
}

/* The 4 normals of elements 4*group .. 4*group+3. */
DC_HOSTDEV static inline void dc_pm_normal4(float out[4], uint64_t seed, uint32_t stream,
                                            uint32_t tile, uint32_t step, uint32_t group)
{
    uint32_t r[4];
    dc_pm_block(r, seed, stream, tile, step, group);
    dc_pm_box_muller(out, r[0], r[1]);
    dc_pm_box_muller(out + 2, r[2], r[3]);
}

#endif
