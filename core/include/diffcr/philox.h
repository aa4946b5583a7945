/* diffcr — counter-based random numbers: Philox 4x32-10 and Box-Muller normals.
 *
 * Why counter-based: the noise for element i of a tile must not depend on how many threads draw
 * it, in which order tiles are processed, or whether the CPU or the CUDA backend runs. Philox
 * (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011) is a pure
 * function of (counter, key), so every element can be computed on its own.
 *
 * How diffcr keys it (DESIGN.md "Determinism"):
 *   key     = the 64-bit seed, split into two 32-bit words (low word first);
 *   counter = { element group g, step, tile id, stream }.
 * One Philox call gives 4 uint32 -> 4 uniforms -> 2 Box-Muller pairs -> the 4 normals of elements
 * 4g .. 4g+3 of a sample. `stream` separates independent uses of the same (seed, tile, step): the
 * initial noise of a sampler, the per-step noise of DDIM/DDPM, the training noise and the training
 * noise-level draws (DC_PHILOX_STREAM_*).
 *
 * Bit-exact on other devices: the uniform -> normal transform uses only IEEE-754 double +, -, *, /
 * and sqrt (own log and sin/cos polynomials, no libm), so a CUDA kernel compiled without FMA
 * contraction (or using __dadd_rn/__dmul_rn) produces the same float bits. */
#ifndef DIFFCR_PHILOX_H
#define DIFFCR_PHILOX_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Independent random streams for one (seed, tile, step). */
enum {
    DC_PHILOX_STREAM_INIT = 0,        /* sampler initial noise x_T */
    DC_PHILOX_STREAM_SAMPLER = 1,     /* per-step noise of DDIM (eta > 0) and DDPM */
    DC_PHILOX_STREAM_TRAIN_NOISE = 2, /* training epsilon */
    DC_PHILOX_STREAM_TRAIN_LEVEL = 3  /* training t and gamma draws */
};

/* The Philox 4x32 block function with 10 rounds: out = philox(ctr, key). */
void dc_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

/* Map a uint32 to a uniform double strictly inside (0, 1): (x + 0.5) / 2^32. Exact in double. */
double dc_philox_uniform(uint32_t x);

/* Two standard normals from two uint32 by Box-Muller (r = sqrt(-2 ln u0), angle 2 pi u1), computed
 * with the device-reproducible log/sin/cos described above; rounded to float at the end. */
void dc_philox_box_muller(float out[2], uint32_t a, uint32_t b);

/* The 4 normals of element group g (elements 4g..4g+3) for the given key and counter words. */
void dc_philox_normal4(float out[4], uint64_t seed, uint32_t stream, uint32_t tile, uint32_t step,
                       uint32_t group);

/* Fill out[0..n) with standard normals: element i is component i%4 of dc_philox_normal4(..., i/4).
 * OpenMP-parallel; the result does not depend on the thread count. n must be < 2^34
 * (DC_ERR_ARG otherwise). */
int dc_philox_fill_normal(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                          uint32_t step, dc_error *err);

/* Fill out[0..n) with uniforms in (0, 1) (element i = component i%4 of group i/4), rounded to
 * float (so a value may round up to exactly 1.0f; callers needing (0,1) use the double form). */
int dc_philox_fill_uniform(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                           uint32_t step, dc_error *err);

/* The raw 32-bit word i (component i%4 of group i/4) of a stream: for integer draws. */
uint32_t dc_philox_u32(uint64_t seed, uint32_t stream, uint32_t tile, uint32_t step, uint64_t i);

#ifdef __cplusplus
}
#endif
#endif
