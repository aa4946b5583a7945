/* diffcr — LayerNorm2d forward and backward on NHWC activations, CUDA (cuda_ops.h; reference
 * core/cpu/ops_layernorm.c).
 *
 * A pixel's C channels are contiguous, so each pixel is reduced by a group of G lanes of one warp
 * (G = 32 for C > 32; 4..16 for narrow layers, several pixels per warp) with shuffles. Each lane
 * keeps its NV channels (c = lane + k*G) in registers, so the input is read from memory once;
 * G and NV are template constants (C <= 1024). Wider rows take a generic warp-per-pixel path
 * that re-reads the row from L1/L2.
 *
 * The statistics follow the CPU exactly but for the summation order: float sums, two-pass
 * variance, var / C, rstd = 1 / sqrtf(var + eps), y = ((x - m) * rs) * w + b.
 *
 * dweight/dbias sum over every pixel. In the fused backward each lane accumulates its channels'
 * terms in float over the few pixels its group sees (P / (groups in the grid)), the groups of a
 * block are added in group order in double in shared memory, one double row per block goes to
 * scratch, and a last kernel adds the rows in block order. The grid is a function of (P, C)
 * only, so the result is deterministic. */
#include <math.h>

#include "launch.cuh"
#include "diffcr/ops.h"

enum {
    LN_BLOCK = 256,
    LN_MAX_BLOCKS_FWD = 2048,
    LN_MAX_BLOCKS_BWD = 1024, /* = partial rows of the parameter gradients */
    LN_MAX_FAST_C = 1024
};

/* Sum over the G lanes of a group (G a power of two <= 32); all lanes get the same bits. The
 * whole warp must call it (the pixel loop below is warp-uniform). */
template <int G> static __device__ __forceinline__ float group_sum(float v)
{
#pragma unroll
    for (int off = G / 2; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* ---- forward --------------------------------------------------------------------------------- */

template <int G, int NV>
__global__ void __launch_bounds__(LN_BLOCK)
ln_forward_kernel(float *out, float *mean, float *rstd, const float *__restrict__ inp,
                  const float *__restrict__ weight, const float *__restrict__ bias, size_t P, int C)
{
    const int lane = threadIdx.x & 31, sub = lane % G;
    const int per_warp = 32 / G; /* pixels per warp and round */
    const size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    const size_t warps = ((size_t)gridDim.x * blockDim.x) >> 5;
    const float fc = (float)C;
    /* warp-uniform trip count: the shuffles need all 32 lanes */
    for (size_t base = warp * per_warp; base < P; base += warps * per_warp) {
        const size_t p = base + (size_t)(lane / G);
        const bool valid = p < P;
        const float *x = inp + (valid ? p : 0) * (size_t)C;
        float xv[NV];
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < NV; k++) {
            const int c = sub + k * G;
            xv[k] = valid && c < C ? x[c] : 0.0f;
            s += xv[k];
        }
        const float m = group_sum<G>(s) / fc;
        float d2 = 0.0f;
#pragma unroll
        for (int k = 0; k < NV; k++) {
            const int c = sub + k * G;
            if (c < C) {
                const float d = xv[k] - m;
                d2 += d * d;
            }
        }
        const float var = group_sum<G>(d2) / fc;
        const float rs = 1.0f / sqrtf(var + DC_LAYERNORM_EPS);
        if (valid) {
            float *y = out + p * (size_t)C;
#pragma unroll
            for (int k = 0; k < NV; k++) {
                const int c = sub + k * G;
                if (c < C)
                    y[c] = (xv[k] - m) * rs * weight[c] + bias[c];
            }
            if (sub == 0) {
                if (mean)
                    mean[p] = m;
                if (rstd)
                    rstd[p] = rs;
            }
        }
    }
}

/* C > LN_MAX_FAST_C: one warp per pixel, the row read three times (L1/L2 hits after the first). */
__global__ void __launch_bounds__(LN_BLOCK)
ln_forward_wide_kernel(float *out, float *mean, float *rstd, const float *__restrict__ inp,
                       const float *__restrict__ weight, const float *__restrict__ bias, size_t P,
                       int C)
{
    const int lane = threadIdx.x & 31;
    const size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    const size_t warps = ((size_t)gridDim.x * blockDim.x) >> 5;
    const float fc = (float)C;
    for (size_t p = warp; p < P; p += warps) { /* p is warp-uniform */
        const float *x = inp + p * (size_t)C;
        float s = 0.0f;
        for (int c = lane; c < C; c += 32)
            s += x[c];
        const float m = dc_warp_sum_f(s) / fc;
        float d2 = 0.0f;
        for (int c = lane; c < C; c += 32) {
            const float d = x[c] - m;
            d2 += d * d;
        }
        const float var = dc_warp_sum_f(d2) / fc;
        const float rs = 1.0f / sqrtf(var + DC_LAYERNORM_EPS);
        float *y = out + p * (size_t)C;
        for (int c = lane; c < C; c += 32)
            y[c] = (x[c] - m) * rs * weight[c] + bias[c];
        if (lane == 0) {
            if (mean)
                mean[p] = m;
            if (rstd)
                rstd[p] = rs;
        }
    }
}

/* ---- backward -------------------------------------------------------------------------------- */

/* dx = rs * ((g - mean_c(g)) - y * mean_c(g*y)) with g = dout * weight, y = (x - m) * rs, as the
 * CPU. partial (gridDim.x rows of [2][C] doubles: dweight terms, dbias terms) may be NULL when no
 * parameter gradient is wanted. Dynamic shared memory: 2*C doubles when partial is set. */
template <int G, int NV>
__global__ void __launch_bounds__(LN_BLOCK)
ln_backward_kernel(float *dinp, double *partial, const float *__restrict__ dout,
                   const float *__restrict__ inp, const float *__restrict__ mean,
                   const float *__restrict__ rstd, const float *__restrict__ weight, size_t P, int C,
                   float inv_c)
{
    extern __shared__ double ln_acc[]; /* [2][C] */
    const int lane = threadIdx.x & 31, sub = lane % G;
    const int per_warp = 32 / G;
    const size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    const size_t warps = ((size_t)gridDim.x * blockDim.x) >> 5;
    float acc_w[NV], acc_b[NV];
#pragma unroll
    for (int k = 0; k < NV; k++) {
        acc_w[k] = 0.0f;
        acc_b[k] = 0.0f;
    }
    for (size_t base = warp * per_warp; base < P; base += warps * per_warp) {
        const size_t p = base + (size_t)(lane / G);
        const bool valid = p < P;
        const size_t row = (valid ? p : 0) * (size_t)C;
        const float m = valid ? mean[p] : 0.0f, rs = valid ? rstd[p] : 0.0f;
        float gv[NV], yv[NV];
        float sum_g = 0.0f, sum_gy = 0.0f;
#pragma unroll
        for (int k = 0; k < NV; k++) {
            const int c = sub + k * G;
            gv[k] = 0.0f;
            yv[k] = 0.0f;
            if (valid && c < C) {
                const float go = dout[row + c];
                const float g = go * weight[c];
                const float y = (inp[row + c] - m) * rs;
                gv[k] = g;
                yv[k] = y;
                sum_g += g;
                sum_gy += g * y;
                acc_w[k] += go * y;
                acc_b[k] += go;
            }
        }
        const float mean_g = group_sum<G>(sum_g) * inv_c;
        const float mean_gy = group_sum<G>(sum_gy) * inv_c;
        if (valid) {
            float *dx = dinp + row;
#pragma unroll
            for (int k = 0; k < NV; k++) {
                const int c = sub + k * G;
                if (c < C)
                    dx[c] = rs * (gv[k] - mean_g - yv[k] * mean_gy);
            }
        }
    }
    if (!partial)
        return; /* uniform over the grid */

    /* Add the groups of this block in group order (each group's lanes cover all C channels). */
    double *sw = ln_acc, *sb = ln_acc + C;
    const int group = threadIdx.x / G, groups = blockDim.x / G;
    for (int gi = 0; gi < groups; gi++) {
        if (group == gi) {
#pragma unroll
            for (int k = 0; k < NV; k++) {
                const int c = sub + k * G;
                if (c < C) {
                    sw[c] = (gi ? sw[c] : 0.0) + (double)acc_w[k];
                    sb[c] = (gi ? sb[c] : 0.0) + (double)acc_b[k];
                }
            }
        }
        __syncthreads();
    }
    double *row_w = partial + (size_t)blockIdx.x * 2 * (size_t)C, *row_b = row_w + C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        row_w[c] = sw[c];
        row_b[c] = sb[c];
    }
}

/* C > LN_MAX_FAST_C: dinp only, one warp per pixel; the parameter sums are ln_param_col_kernel. */
__global__ void __launch_bounds__(LN_BLOCK)
ln_backward_wide_kernel(float *dinp, const float *__restrict__ dout, const float *__restrict__ inp,
                        const float *__restrict__ mean, const float *__restrict__ rstd,
                        const float *__restrict__ weight, size_t P, int C, float inv_c)
{
    const int lane = threadIdx.x & 31;
    const size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    const size_t warps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t p = warp; p < P; p += warps) {
        const size_t row = p * (size_t)C;
        const float m = mean[p], rs = rstd[p];
        float sum_g = 0.0f, sum_gy = 0.0f;
        for (int c = lane; c < C; c += 32) {
            const float g = dout[row + c] * weight[c];
            const float y = (inp[row + c] - m) * rs;
            sum_g += g;
            sum_gy += g * y;
        }
        const float mean_g = dc_warp_sum_f(sum_g) * inv_c;
        const float mean_gy = dc_warp_sum_f(sum_gy) * inv_c;
        for (int c = lane; c < C; c += 32) {
            const float g = dout[row + c] * weight[c];
            const float y = (inp[row + c] - m) * rs;
            dinp[row + c] = rs * (g - mean_g - y * mean_gy);
        }
    }
}

/* Parameter-gradient partials for the wide path: threads on channels (coalesced), blocks on pixel
 * chunks; per thread double sums of go * ((x - m) * rs) and go over its rows of the chunk, the 8
 * rows of a block added in order. partial: [chunks][2][C]. */
__global__ void __launch_bounds__(DC_COL_X * DC_COL_Y)
ln_param_col_kernel(double *partial, const float *__restrict__ dout, const float *__restrict__ inp,
                    const float *__restrict__ mean, const float *__restrict__ rstd, size_t P, int C,
                    size_t rows_per_chunk)
{
    __shared__ double red_w[DC_COL_Y][DC_COL_X], red_b[DC_COL_Y][DC_COL_X];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int c = blockIdx.x * DC_COL_X + tx;
    const size_t lo = (size_t)blockIdx.y * rows_per_chunk;
    const size_t hi = lo + rows_per_chunk < P ? lo + rows_per_chunk : P;
    double aw = 0.0, ab = 0.0;
    if (c < C)
        for (size_t p = lo + ty; p < hi; p += DC_COL_Y) {
            const size_t at = p * (size_t)C + c;
            const float go = dout[at];
            aw += (double)(go * ((inp[at] - mean[p]) * rstd[p]));
            ab += (double)go;
        }
    red_w[ty][tx] = aw;
    red_b[ty][tx] = ab;
    __syncthreads();
    if (ty == 0 && c < C) {
        double sw = red_w[0][tx], sb = red_b[0][tx];
        for (int j = 1; j < DC_COL_Y; j++) {
            sw += red_w[j][tx];
            sb += red_b[j][tx];
        }
        double *row = partial + (size_t)blockIdx.y * 2 * (size_t)C;
        row[c] = sw;
        row[C + c] = sb;
    }
}

/* dweight[c] / dbias[c] = the partial rows ([rows][2][C]) added in row order. */
__global__ void ln_param_sum_kernel(float *dweight, float *dbias, const double *partial,
                                    unsigned rows, int C)
{
    DC_FOR(c, C)
    {
        double sw = 0.0, sb = 0.0;
        for (unsigned r = 0; r < rows; r++) {
            const double *row = partial + (size_t)r * 2 * (size_t)C;
            sw += row[c];
            sb += row[C + c];
        }
        if (dweight)
            dweight[c] = (float)sw;
        if (dbias)
            dbias[c] = (float)sb;
    }
}

/* ---- launchers ------------------------------------------------------------------------------- */

/* Group width and registers per lane for the fast path: G lanes (>= 4) per pixel when C <= 32,
 * else a full warp with NV = next power of two of ceil(C/32) channels per lane. 0 = wide path. */
static int ln_shape(int C, int *G, int *NV)
{
    if (C > LN_MAX_FAST_C)
        return 0;
    if (C <= 32) {
        int g = 4;
        while (g < C)
            g *= 2;
        *G = g;
        *NV = 1;
    } else {
        int nv = 2;
        while (nv * 32 < C)
            nv *= 2;
        *G = 32;
        *NV = nv;
    }
    return 1;
}

static unsigned ln_blocks(size_t P, int G, unsigned cap)
{
    const size_t pixels_per_block = (size_t)(LN_BLOCK / 32) * (size_t)(32 / G);
    size_t b = (P + pixels_per_block - 1) / pixels_per_block;
    return b > cap ? cap : (unsigned)b;
}

/* Calls MACRO(G, NV) for the (G, NV) pair chosen by ln_shape. */
#define LN_DISPATCH(G, NV, MACRO)                                                                  \
    do {                                                                                           \
        if ((G) == 4)                                                                              \
            MACRO(4, 1);                                                                           \
        else if ((G) == 8)                                                                         \
            MACRO(8, 1);                                                                           \
        else if ((G) == 16)                                                                        \
            MACRO(16, 1);                                                                          \
        else if ((NV) == 1)                                                                        \
            MACRO(32, 1);                                                                          \
        else if ((NV) == 2)                                                                        \
            MACRO(32, 2);                                                                          \
        else if ((NV) == 4)                                                                        \
            MACRO(32, 4);                                                                          \
        else if ((NV) == 8)                                                                        \
            MACRO(32, 8);                                                                          \
        else if ((NV) == 16)                                                                       \
            MACRO(32, 16);                                                                         \
        else                                                                                       \
            MACRO(32, 32);                                                                         \
    } while (0)

void cuda_layernorm2d_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, size_t P, int C)
{
    if (P == 0 || C <= 0)
        return;
    int G = 32, NV = 1;
    if (!ln_shape(C, &G, &NV)) {
        const unsigned blocks = ln_blocks(P, 32, LN_MAX_BLOCKS_FWD);
        ln_forward_wide_kernel<<<blocks, LN_BLOCK, 0, DC_STREAM>>>(out, mean, rstd, inp, weight,
                                                                    bias, P, C);
        return;
    }
    const unsigned blocks = ln_blocks(P, G, LN_MAX_BLOCKS_FWD);
#define LN_FWD(g, nv)                                                                              \
    ln_forward_kernel<g, nv><<<blocks, LN_BLOCK, 0, DC_STREAM>>>(out, mean, rstd, inp, weight,     \
                                                                  bias, P, C)
    LN_DISPATCH(G, NV, LN_FWD);
#undef LN_FWD
}

void cuda_layernorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *mean, const float *rstd,
                               const float *weight, size_t P, int C)
{
    if (C <= 0)
        return;
    const float inv_c = 1.0f / (float)C; /* as the CPU: mean_g = sum_g * (1/C) */
    const int want_params = dweight != NULL || dbias != NULL;
    if (P == 0) { /* no pixels: the sums are zero */
        if (want_params) {
            if (dweight)
                cudaMemsetAsync(dweight, 0, (size_t)C * sizeof(float), DC_STREAM);
            if (dbias)
                cudaMemsetAsync(dbias, 0, (size_t)C * sizeof(float), DC_STREAM);
        }
        return;
    }
    int G = 32, NV = 1;
    if (!ln_shape(C, &G, &NV)) {
        const unsigned blocks = ln_blocks(P, 32, LN_MAX_BLOCKS_FWD);
        ln_backward_wide_kernel<<<blocks, LN_BLOCK, 0, DC_STREAM>>>(dinp, dout, inp, mean, rstd,
                                                                     weight, P, C, inv_c);
        if (!want_params)
            return;
        const unsigned tiles = (unsigned)((C + DC_COL_X - 1) / DC_COL_X);
        const dc_col_split split = dc_split_rows(P, tiles);
        double *partial = (double *)dc_scratch((size_t)split.chunks * 2 * (size_t)C * sizeof(double),
                                               "layernorm2d_backward: no scratch");
        if (!partial)
            return;
        ln_param_col_kernel<<<dim3(tiles, split.chunks), dim3(DC_COL_X, DC_COL_Y), 0, DC_STREAM>>>(
            partial, dout, inp, mean, rstd, P, C, split.rows_per_chunk);
        ln_param_sum_kernel<<<dc_blocks((size_t)C), DC_BLOCK, 0, DC_STREAM>>>(dweight, dbias, partial,
                                                                            split.chunks, C);
        return;
    }
    const unsigned blocks = ln_blocks(P, G, LN_MAX_BLOCKS_BWD);
    double *partial = NULL;
    size_t smem = 0;
    if (want_params) {
        partial = (double *)dc_scratch((size_t)blocks * 2 * (size_t)C * sizeof(double),
                                       "layernorm2d_backward: no scratch");
        if (!partial)
            return;
        smem = 2 * (size_t)C * sizeof(double); /* <= 16 KiB */
    }
#define LN_BWD(g, nv)                                                                              \
    ln_backward_kernel<g, nv><<<blocks, LN_BLOCK, smem, DC_STREAM>>>(dinp, partial, dout, inp,     \
                                                                      mean, rstd, weight, P, C,    \
                                                                      inv_c)
    LN_DISPATCH(G, NV, LN_BWD);
#undef LN_BWD
    if (want_params)
        ln_param_sum_kernel<<<dc_blocks((size_t)C), DC_BLOCK, 0, DC_STREAM>>>(dweight, dbias, partial,
                                                                            blocks, C);
}
