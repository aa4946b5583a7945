/* diffcr — the reference 2-D convolution: NHWC activations, PyTorch [K][C/g][k][k] weights.
 *
 * This file is the oracle the oneDNN and CUDA convolutions are tested against, and the fallback
 * backend where oneDNN is absent, so it must be obviously correct first and reasonably fast second.
 * Three paths:
 *
 *  - dense (groups == 1): an im2col with (ky, kx, c) column order, so that every gathered piece is a
 *    contiguous run of C floats of an NHWC pixel, followed by one OpenBLAS sgemm per chunk of output
 *    rows. For 2x2 stride 2 that im2col is exactly a space-to-depth. 1x1 stride 1 without padding
 *    needs no im2col at all: the NHWC input already is the [pixels][C] matrix. The im2col scratch is
 *    bounded (COL_BUDGET floats) whatever the image size, by processing chunks of output rows.
 *    With very few output channels (K <= NARROW_K, the final 64 -> 3 conv) all three directions
 *    use direct channel-vectorised loops instead, where sgemm with a dimension of 3 would crawl.
 *  - depthwise (groups == C == K): direct loops vectorised over channels.
 *  - anything else (other groupings), and every path whose scratch allocation fails: plain direct
 *    loops that allocate nothing. The functions return void (conv.h), so running out of memory
 *    must not be able to produce a wrong answer; the slow path guarantees that.
 *
 * Backward WRITES dinp, dweight and dbias (each may be NULL), following ops.h. Determinism: every
 * reduction over pixels either runs inside one sgemm call (deterministic for a fixed OpenBLAS
 * thread count) or over a fixed partition of rows that does not depend on the thread count, combined
 * in a fixed order. */
#include "diffcr/conv.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* Floats of im2col scratch per chunk (4 MiB): big enough that each sgemm has thousands of rows,
 * small enough to stay near the L3 and never matter next to the activations. */
#define COL_BUDGET ((size_t)1 << 20)
/* Most pixels per sgemm call on the 1x1 path: keeps every BLAS dimension far below INT_MAX. */
#define PIX_BUDGET ((size_t)1 << 22)
/* Row blocks of the depthwise weight-gradient reduction: a fixed count, so the summation order (and
 * hence the bits) does not depend on how many threads run it. */
#define DW_BLOCKS 16

/* ------------------------------------------------------------------------------------------------
 * Shared helpers */

/* dbias[k] = sum over all pixels of dout[p, k], accumulated in double. Parallel over channel blocks
 * so that each sum is computed by one thread in pixel order: deterministic for any thread count. */
static void bias_grad(float *dbias, const float *dout, size_t P, int K)
{
    int nblk = (K + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nblk; b++) {
        int k0 = b * 16, k1 = k0 + 16 < K ? k0 + 16 : K;
        double acc[16] = {0};
        for (size_t p = 0; p < P; p++) {
            const float *g = dout + p * (size_t)K;
            for (int k = k0; k < k1; k++)
                acc[k - k0] += (double)g[k];
        }
        for (int k = k0; k < k1; k++)
            dbias[k] = (float)acc[k - k0];
    }
}

/* out[p, k] += bias[k] */
static void add_bias(float *out, const float *bias, size_t P, int K)
{
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < P; p++) {
        float *o = out + p * (size_t)K;
        for (int k = 0; k < K; k++)
            o[k] += bias[k];
    }
}

/* ------------------------------------------------------------------------------------------------
 * Direct path: any grouping, no scratch. Slow (scalar, strided weights) but transparently right. */

static void direct_forward(float *out, const float *inp, const float *weight, const float *bias,
                           const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel;
    const int Cg = d->C / d->groups, Kg = d->K / d->groups;
    const long rows = (long)d->N * OH;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / OH), oy = (int)(r % OH);
        for (int ox = 0; ox < OW; ox++) {
            float *o = out + ((size_t)r * OW + ox) * d->K;
            for (int k = 0; k < d->K; k++) {
                const int g = k / Kg;
                float acc = bias ? bias[k] : 0.0f;
                for (int ky = 0; ky < ks; ky++) {
                    const int iy = oy * d->stride - d->pad + ky;
                    if (iy < 0 || iy >= d->H)
                        continue;
                    for (int kx = 0; kx < ks; kx++) {
                        const int ix = ox * d->stride - d->pad + kx;
                        if (ix < 0 || ix >= d->W)
                            continue;
                        const float *x = inp + (((size_t)n * d->H + iy) * d->W + ix) * d->C + (size_t)g * Cg;
                        const float *w = weight + ((size_t)k * Cg * ks + ky) * ks + kx;
                        for (int ci = 0; ci < Cg; ci++)
                            acc += x[ci] * w[(size_t)ci * ks * ks];
                    }
                }
                o[k] = acc;
            }
        }
    }
}

/* dinp by gathering, for each input element, every (output pixel, tap) that read it. */
static void direct_backward_data(float *dinp, const float *dout, const float *weight,
                                 const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, s = d->stride;
    const int Cg = d->C / d->groups, Kg = d->K / d->groups;
    const long rows = (long)d->N * d->H;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / d->H), iy = (int)(r % d->H);
        for (int ix = 0; ix < d->W; ix++) {
            float *gi = dinp + ((size_t)r * d->W + ix) * d->C;
            for (int c = 0; c < d->C; c++) {
                const int g = c / Cg, ci = c % Cg;
                float acc = 0.0f;
                for (int ky = 0; ky < ks; ky++) {
                    const int ty = iy + d->pad - ky;
                    if (ty < 0 || ty % s != 0 || ty / s >= OH)
                        continue;
                    for (int kx = 0; kx < ks; kx++) {
                        const int tx = ix + d->pad - kx;
                        if (tx < 0 || tx % s != 0 || tx / s >= OW)
                            continue;
                        const float *go = dout + (((size_t)n * OH + ty / s) * OW + tx / s) * d->K;
                        for (int kg = 0; kg < Kg; kg++) {
                            const int k = g * Kg + kg;
                            acc += go[k] * weight[(((size_t)k * Cg + ci) * ks + ky) * ks + kx];
                        }
                    }
                }
                gi[c] = acc;
            }
        }
    }
}

/* dweight: each weight's sum over all output pixels, one weight per iteration, in double. */
static void direct_backward_weights(float *dweight, const float *dout, const float *inp,
                                    const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel;
    const int Cg = d->C / d->groups, Kg = d->K / d->groups;
    const long nw = (long)dc_conv_weight_numel(d);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nw; i++) {
        const int kx = (int)(i % ks), ky = (int)(i / ks % ks);
        const int ci = (int)(i / ((long)ks * ks) % Cg), k = (int)(i / ((long)ks * ks * Cg));
        const int c = (k / Kg) * Cg + ci;
        double acc = 0.0;
        for (int n = 0; n < d->N; n++)
            for (int oy = 0; oy < OH; oy++) {
                const int iy = oy * d->stride - d->pad + ky;
                if (iy < 0 || iy >= d->H)
                    continue;
                for (int ox = 0; ox < OW; ox++) {
                    const int ix = ox * d->stride - d->pad + kx;
                    if (ix < 0 || ix >= d->W)
                        continue;
                    acc += (double)dout[(((size_t)n * OH + oy) * OW + ox) * d->K + k] *
                           (double)inp[(((size_t)n * d->H + iy) * d->W + ix) * d->C + c];
                }
            }
        dweight[i] = (float)acc;
    }
}

/* ------------------------------------------------------------------------------------------------
 * Depthwise path (groups == C == K): channels are the contiguous, vectorisable dimension. */

/* [C][1][k][k] -> [k*k][C] so the inner channel loop reads weights contiguously. NULL on failure. */
static float *dw_transpose_weights(const float *weight, int C, int kk)
{
    float *wt = malloc((size_t)kk * (size_t)C * sizeof *wt);
    if (!wt)
        return NULL;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++)
            wt[(size_t)t * C + c] = weight[(size_t)c * kk + t];
    return wt;
}

static int dw_forward(float *out, const float *inp, const float *weight, const float *bias,
                      const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, C = d->C;
    float *wt = dw_transpose_weights(weight, C, ks * ks);
    if (!wt)
        return 0;
    const long rows = (long)d->N * OH;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / OH), oy = (int)(r % OH);
        for (int ox = 0; ox < OW; ox++) {
            float *o = out + ((size_t)r * OW + ox) * C;
            for (int c = 0; c < C; c++)
                o[c] = bias ? bias[c] : 0.0f;
            for (int ky = 0; ky < ks; ky++) {
                const int iy = oy * d->stride - d->pad + ky;
                if (iy < 0 || iy >= d->H)
                    continue;
                for (int kx = 0; kx < ks; kx++) {
                    const int ix = ox * d->stride - d->pad + kx;
                    if (ix < 0 || ix >= d->W)
                        continue;
                    const float *x = inp + (((size_t)n * d->H + iy) * d->W + ix) * C;
                    const float *w = wt + (size_t)(ky * ks + kx) * C;
                    for (int c = 0; c < C; c++)
                        o[c] += x[c] * w[c];
                }
            }
        }
    }
    free(wt);
    return 1;
}

static int dw_backward_data(float *dinp, const float *dout, const float *weight, const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, s = d->stride, C = d->C;
    float *wt = dw_transpose_weights(weight, C, ks * ks);
    if (!wt)
        return 0;
    const long rows = (long)d->N * d->H;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / d->H), iy = (int)(r % d->H);
        for (int ix = 0; ix < d->W; ix++) {
            float *gi = dinp + ((size_t)r * d->W + ix) * C;
            for (int c = 0; c < C; c++)
                gi[c] = 0.0f;
            for (int ky = 0; ky < ks; ky++) {
                const int ty = iy + d->pad - ky;
                if (ty < 0 || ty % s != 0 || ty / s >= OH)
                    continue;
                for (int kx = 0; kx < ks; kx++) {
                    const int tx = ix + d->pad - kx;
                    if (tx < 0 || tx % s != 0 || tx / s >= OW)
                        continue;
                    const float *go = dout + (((size_t)n * OH + ty / s) * OW + tx / s) * C;
                    const float *w = wt + (size_t)(ky * ks + kx) * C;
                    for (int c = 0; c < C; c++)
                        gi[c] += go[c] * w[c];
                }
            }
        }
    }
    free(wt);
    return 1;
}

static int dw_backward_weights(float *dweight, const float *dout, const float *inp, const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, C = d->C, kk = ks * ks;
    const long rows = (long)d->N * OH;
    const int nblk = rows < DW_BLOCKS ? (int)rows : DW_BLOCKS;
    const size_t per = (size_t)kk * C;
    double *part = calloc((size_t)nblk * per, sizeof *part);
    if (!part)
        return 0;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nblk; b++) {
        double *acc = part + (size_t)b * per;
        const long r0 = rows * b / nblk, r1 = rows * (b + 1) / nblk;
        for (long r = r0; r < r1; r++) {
            const int n = (int)(r / OH), oy = (int)(r % OH);
            for (int ox = 0; ox < OW; ox++) {
                const float *go = dout + ((size_t)r * OW + ox) * C;
                for (int ky = 0; ky < ks; ky++) {
                    const int iy = oy * d->stride - d->pad + ky;
                    if (iy < 0 || iy >= d->H)
                        continue;
                    for (int kx = 0; kx < ks; kx++) {
                        const int ix = ox * d->stride - d->pad + kx;
                        if (ix < 0 || ix >= d->W)
                            continue;
                        const float *x = inp + (((size_t)n * d->H + iy) * d->W + ix) * C;
                        double *a = acc + (size_t)(ky * ks + kx) * C;
                        for (int c = 0; c < C; c++)
                            a[c] += (double)go[c] * (double)x[c];
                    }
                }
            }
        }
    }
    /* Combine the blocks in block order, then back to PyTorch's [C][1][k][k]. */
    for (int b = 1; b < nblk; b++)
        for (size_t i = 0; i < per; i++)
            part[i] += part[(size_t)b * per + i];
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++)
            dweight[(size_t)c * kk + t] = (float)part[(size_t)t * C + c];
    free(part);
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * Dense path (groups == 1): im2col + sgemm. */

static int is_pointwise(const dc_conv_desc *d)
{
    return d->kernel == 1 && d->stride == 1 && d->pad == 0;
}

/* Output rows (n, oy) per chunk so that rows * OW * kkC floats fit COL_BUDGET (at least one). */
static long chunk_rows(int OW, size_t kkC)
{
    size_t per_row = (size_t)OW * kkC;
    long R = (long)(COL_BUDGET / (per_row ? per_row : 1));
    return R < 1 ? 1 : R;
}

/* col[i*OW + ox][(ky*k + kx)*C + c] = inp[n, oy*s - p + ky, ox*s - p + kx, c] (0 outside) for the
 * output rows r0 .. r0+nr-1 (row r = n*OH + oy). */
static void im2col(float *col, const float *inp, const dc_conv_desc *d, int OH, int OW, long r0, long nr)
{
    const int ks = d->kernel, C = d->C;
    const size_t kkC = (size_t)ks * ks * C;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nr; i++) {
        const long r = r0 + i;
        const int n = (int)(r / OH), oy = (int)(r % OH);
        for (int ox = 0; ox < OW; ox++) {
            float *dst = col + ((size_t)i * OW + ox) * kkC;
            for (int ky = 0; ky < ks; ky++) {
                const int iy = oy * d->stride - d->pad + ky;
                for (int kx = 0; kx < ks; kx++, dst += C) {
                    const int ix = ox * d->stride - d->pad + kx;
                    if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W)
                        memset(dst, 0, (size_t)C * sizeof *dst);
                    else
                        memcpy(dst, inp + (((size_t)n * d->H + iy) * d->W + ix) * C, (size_t)C * sizeof *dst);
                }
            }
        }
    }
}

/* The adjoint of im2col: dinp[n, iy, ix, c] += dcol[...] for every column entry of rows r0.. .
 * When stride >= kernel no two column entries share an input pixel, so rows run in parallel; when
 * windows overlap (3x3 stride 1), threads take disjoint channel blocks instead, so no two threads
 * ever add into the same float and the order of additions is fixed. */
static void col2im_add(float *dinp, const float *dcol, const dc_conv_desc *d, int OH, int OW, long r0,
                       long nr)
{
    const int ks = d->kernel, C = d->C;
    const size_t kkC = (size_t)ks * ks * C;
    const int overlap = d->stride < ks;
    const int nblk = overlap ? (C + 15) / 16 : 1;
    const long nouter = overlap ? nblk : nr;
#pragma omp parallel for schedule(static)
    for (long u = 0; u < nouter; u++) {
        const int c0 = overlap ? (int)u * 16 : 0;
        const int c1 = overlap ? (c0 + 16 < C ? c0 + 16 : C) : C;
        const long i0 = overlap ? 0 : u, i1 = overlap ? nr : u + 1;
        for (long i = i0; i < i1; i++) {
            const long r = r0 + i;
            const int n = (int)(r / OH), oy = (int)(r % OH);
            for (int ox = 0; ox < OW; ox++) {
                const float *src = dcol + ((size_t)i * OW + ox) * kkC;
                for (int ky = 0; ky < ks; ky++) {
                    const int iy = oy * d->stride - d->pad + ky;
                    for (int kx = 0; kx < ks; kx++, src += C) {
                        const int ix = ox * d->stride - d->pad + kx;
                        if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W)
                            continue;
                        float *dst = dinp + (((size_t)n * d->H + iy) * d->W + ix) * C;
                        for (int c = c0; c < c1; c++)
                            dst[c] += src[c];
                    }
                }
            }
        }
    }
}

/* [K][C][k][k] -> [K][k][k][C], the column order of im2col. NULL on failure. */
static float *dense_transpose_weights(const float *weight, int K, int C, int kk)
{
    float *wt = malloc((size_t)K * kk * C * sizeof *wt);
    if (!wt)
        return NULL;
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++)
                wt[((size_t)k * kk + t) * C + c] = weight[((size_t)k * C + c) * kk + t];
    return wt;
}

/* Few output channels (the 64 -> 3 "ending" conv): sgemm with an M, N or K of 3 runs at 1-2
 * GFLOP/s in OpenBLAS, and the im2col matrix is 20x larger than the output. Direct loops over the
 * contiguous NHWC channels do better: the forward is a dot product per (pixel, k, tap), kept in 8
 * fixed partial sums so GCC vectorises it without reassociating anything; backward data is a
 * gather of axpys per input pixel; backward weights accumulates axpys per row block. */
#define NARROW_K 4

static int is_narrow(const dc_conv_desc *d)
{
    return d->K <= NARROW_K;
}

/* sum of x[c] * w[c], c < C, with a fixed summation order. */
static float dot8(const float *x, const float *w, int C)
{
    float a[8] = {0};
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int j = 0; j < 8; j++)
            a[j] += x[c + j] * w[c + j];
    float tail = 0.0f;
    for (; c < C; c++)
        tail += x[c] * w[c];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + tail;
}

/* wt: weights in [K][k][k][C] order. */
static void narrow_forward(float *out, const float *inp, const float *wt, const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, K = d->K, C = d->C;
    const long rows = (long)d->N * OH;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / OH), oy = (int)(r % OH);
        for (int ox = 0; ox < OW; ox++) {
            float *o = out + ((size_t)r * OW + ox) * K;
            for (int k = 0; k < K; k++) {
                float acc = 0.0f;
                for (int ky = 0; ky < ks; ky++) {
                    const int iy = oy * d->stride - d->pad + ky;
                    if (iy < 0 || iy >= d->H)
                        continue;
                    for (int kx = 0; kx < ks; kx++) {
                        const int ix = ox * d->stride - d->pad + kx;
                        if (ix < 0 || ix >= d->W)
                            continue;
                        acc += dot8(inp + (((size_t)n * d->H + iy) * d->W + ix) * C,
                                    wt + ((size_t)k * ks * ks + ky * ks + kx) * C, C);
                    }
                }
                o[k] = acc;
            }
        }
    }
}

static void narrow_backward_data(float *dinp, const float *dout, const float *wt, const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, s = d->stride;
    const int K = d->K, C = d->C;
    const long rows = (long)d->N * d->H;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / d->H), iy = (int)(r % d->H);
        for (int ix = 0; ix < d->W; ix++) {
            float *gi = dinp + ((size_t)r * d->W + ix) * C;
            for (int c = 0; c < C; c++)
                gi[c] = 0.0f;
            for (int ky = 0; ky < ks; ky++) {
                const int ty = iy + d->pad - ky;
                if (ty < 0 || ty % s != 0 || ty / s >= OH)
                    continue;
                for (int kx = 0; kx < ks; kx++) {
                    const int tx = ix + d->pad - kx;
                    if (tx < 0 || tx % s != 0 || tx / s >= OW)
                        continue;
                    const float *go = dout + (((size_t)n * OH + ty / s) * OW + tx / s) * K;
                    for (int k = 0; k < K; k++) {
                        const float g = go[k];
                        const float *w = wt + ((size_t)k * ks * ks + ky * ks + kx) * C;
                        for (int c = 0; c < C; c++)
                            gi[c] += g * w[c];
                    }
                }
            }
        }
    }
}

/* dW for few output channels: a rank-K update per (pixel, tap) in double, over a fixed partition of
 * output rows into blocks (part: nblk * K*k*k*C doubles), combined in block order. */
static long narrow_blocks(const dc_conv_desc *d)
{
    const long rows = (long)d->N * dc_conv_out_h(d);
    return rows < DW_BLOCKS ? rows : DW_BLOCKS;
}

static void narrow_backward_weights(float *dweight, double *part, const float *dout, const float *inp,
                                    const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, K = d->K, C = d->C;
    const int kk = ks * ks;
    const long rows = (long)d->N * OH, nblk = narrow_blocks(d);
    const size_t per = (size_t)K * kk * C;
    memset(part, 0, (size_t)nblk * per * sizeof *part);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < nblk; b++) {
        double *acc = part + (size_t)b * per;
        const long r0 = rows * b / nblk, r1 = rows * (b + 1) / nblk;
        for (long r = r0; r < r1; r++) {
            const int n = (int)(r / OH), oy = (int)(r % OH);
            for (int ox = 0; ox < OW; ox++) {
                const float *go = dout + ((size_t)r * OW + ox) * K;
                for (int ky = 0; ky < ks; ky++) {
                    const int iy = oy * d->stride - d->pad + ky;
                    if (iy < 0 || iy >= d->H)
                        continue;
                    for (int kx = 0; kx < ks; kx++) {
                        const int ix = ox * d->stride - d->pad + kx;
                        if (ix < 0 || ix >= d->W)
                            continue;
                        const float *x = inp + (((size_t)n * d->H + iy) * d->W + ix) * C;
                        for (int k = 0; k < K; k++) {
                            const double g = go[k];
                            double *a = acc + ((size_t)k * kk + ky * ks + kx) * C;
                            for (int c = 0; c < C; c++)
                                a[c] += g * (double)x[c];
                        }
                    }
                }
            }
        }
    }
    for (long b = 1; b < nblk; b++)
        for (size_t i = 0; i < per; i++)
            part[i] += part[(size_t)b * per + i];
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++)
                dweight[((size_t)k * C + c) * kk + t] = (float)part[((size_t)k * kk + t) * C + c];
}

static int dense_forward(float *out, const float *inp, const float *weight, const dc_conv_desc *d)
{
    /* The GEMMs never span two samples: OpenBLAS's kernels (its small-matrix path on AVX-512
     * machines) round differently for another M, and a sample's pixels must not depend on the
     * batch it is drawn in (diffcr-decloud --batch equals single tiles bit for bit). */
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, K = d->K, C = d->C;
    if (is_pointwise(d) && !is_narrow(d)) {
        /* out[P, K] = inp[P, C] . W[K, C]^T, the NHWC input is the matrix as it stands. */
        const size_t P = (size_t)OH * OW;
        for (int n = 0; n < d->N; n++)
            for (size_t p0 = 0; p0 < P; p0 += PIX_BUDGET) {
                const size_t m = P - p0 < PIX_BUDGET ? P - p0 : PIX_BUDGET, at = (size_t)n * P + p0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, K, C, 1.0f, inp + at * C, C,
                            weight, C, 0.0f, out + at * K, K);
            }
        return 1;
    }
    const int kkC = ks * ks * C;
    float *wt = dense_transpose_weights(weight, K, C, ks * ks);
    if (!wt)
        return 0;
    if (is_narrow(d)) {
        narrow_forward(out, inp, wt, d);
        free(wt);
        return 1;
    }
    const long R = chunk_rows(OW, (size_t)kkC);
    float *col = malloc((size_t)(R < OH ? R : OH) * OW * kkC * sizeof *col);
    if (!col) {
        free(wt);
        return 0;
    }
    for (int n = 0; n < d->N; n++)
        for (long r = 0; r < OH; r += R) {
            const long nr = OH - r < R ? OH - r : R, r0 = (long)n * OH + r;
            im2col(col, inp, d, OH, OW, r0, nr);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nr * OW), K, kkC, 1.0f, col, kkC,
                        wt, kkC, 0.0f, out + (size_t)r0 * OW * K, K);
        }
    free(wt);
    free(col);
    return 1;
}

static int dense_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const dc_conv_desc *d)
{
    const int OH = dc_conv_out_h(d), OW = dc_conv_out_w(d), ks = d->kernel, K = d->K, C = d->C;
    const long rows = (long)d->N * OH;
    if (is_pointwise(d) && !is_narrow(d)) {
        /* dinp[P, C] = dout[P, K] . W[K, C];  dW[K, C] = sum over pixel chunks of dout^T . inp. */
        const size_t P = (size_t)rows * OW;
        for (size_t p0 = 0; p0 < P; p0 += PIX_BUDGET) {
            const size_t m = P - p0 < PIX_BUDGET ? P - p0 : PIX_BUDGET;
            if (dinp)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, C, K, 1.0f, dout + p0 * K,
                            K, weight, C, 0.0f, dinp + p0 * C, C);
            if (dweight)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, C, (int)m, 1.0f, dout + p0 * K, K,
                            inp + p0 * C, C, p0 ? 1.0f : 0.0f, dweight, C);
        }
        return 1;
    }
    const int kk = ks * ks, kkC = kk * C;
    const long R = chunk_rows(OW, (size_t)kkC);
    if (is_narrow(d)) {
        float *wt = dinp ? dense_transpose_weights(weight, K, C, kk) : NULL;
        double *part = dweight ? malloc((size_t)narrow_blocks(d) * K * kkC * sizeof *part) : NULL;
        if ((dinp && !wt) || (dweight && !part)) {
            free(wt);
            free(part);
            return 0;
        }
        if (dinp)
            narrow_backward_data(dinp, dout, wt, d);
        if (dweight)
            narrow_backward_weights(dweight, part, dout, inp, d);
        free(wt);
        free(part);
        return 1;
    }
    float *col = malloc((size_t)(R < rows ? R : rows) * OW * kkC * sizeof *col);
    /* wt: the weights in column order for dinp; reused afterwards as dW in column order. */
    float *wt = dinp ? dense_transpose_weights(weight, K, C, kk) : malloc((size_t)K * kkC * sizeof *wt);
    if (!col || !wt) {
        free(col);
        free(wt);
        return 0;
    }
    if (dinp) {
        /* dcol[rows, kkC] = dout[rows, K] . Wt[K, kkC], then scattered back onto the input. */
        memset(dinp, 0, (size_t)d->N * d->H * d->W * C * sizeof *dinp);
        for (long r0 = 0; r0 < rows; r0 += R) {
            const long nr = rows - r0 < R ? rows - r0 : R;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(nr * OW), kkC, K, 1.0f,
                        dout + (size_t)r0 * OW * K, K, wt, kkC, 0.0f, col, kkC);
            col2im_add(dinp, col, d, OH, OW, r0, nr);
        }
    }
    if (dweight) {
        /* dWt[K, kkC] = sum over chunks of dout_chunk^T . col_chunk, then back to [K][C][k][k]. */
        for (long r0 = 0; r0 < rows; r0 += R) {
            const long nr = rows - r0 < R ? rows - r0 : R;
            im2col(col, inp, d, OH, OW, r0, nr);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, kkC, (int)(nr * OW), 1.0f,
                        dout + (size_t)r0 * OW * K, K, col, kkC, r0 ? 1.0f : 0.0f, wt, kkC);
        }
        for (int k = 0; k < K; k++)
            for (int c = 0; c < C; c++)
                for (int t = 0; t < kk; t++)
                    dweight[((size_t)k * C + c) * kk + t] = wt[((size_t)k * kk + t) * C + c];
    }
    free(col);
    free(wt);
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * Public entry points */

static int is_depthwise(const dc_conv_desc *d)
{
    return d->groups > 1 && d->groups == d->C && d->groups == d->K;
}

void conv2d_ref_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const dc_conv_desc *d)
{
    const size_t P = (size_t)d->N * dc_conv_out_h(d) * dc_conv_out_w(d);
    if (d->groups == 1) {
        if (dense_forward(out, inp, weight, d)) {
            if (bias)
                add_bias(out, bias, P, d->K);
            return;
        }
    } else if (is_depthwise(d)) {
        if (dw_forward(out, inp, weight, bias, d))
            return;
    }
    direct_forward(out, inp, weight, bias, d);
}

void conv2d_ref_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const dc_conv_desc *d)
{
    const size_t P = (size_t)d->N * dc_conv_out_h(d) * dc_conv_out_w(d);
    if (dbias)
        bias_grad(dbias, dout, P, d->K);
    if (!dinp && !dweight)
        return;
    if (d->groups == 1) {
        if (dense_backward(dinp, dweight, dout, inp, weight, d))
            return;
    } else if (is_depthwise(d)) {
        int ok_data = !dinp || dw_backward_data(dinp, dout, weight, d);
        int ok_weights = !dweight || dw_backward_weights(dweight, dout, inp, d);
        if (!ok_data)
            direct_backward_data(dinp, dout, weight, d);
        if (!ok_weights)
            direct_backward_weights(dweight, dout, inp, d);
        return;
    }
    if (dinp)
        direct_backward_data(dinp, dout, weight, d);
    if (dweight)
        direct_backward_weights(dweight, dout, inp, d);
}
