/* diffcr — the streaming ops of the network on CUDA (cuda_ops.h): residual + its backward
 * reductions, condition sums, in-place add/scale, PixelShuffle(2), SiLU, the gamma embedding,
 * pad/crop/slice, and the Linear bias helpers. References: core/cpu/ops_residual.c,
 * ops_pixelshuffle.c, ops_activation.c, ops_linear.c.
 *
 * All are memory-bound: grid-stride loops (size_t indices) with one element per thread and
 * iteration, so each warp access is a contiguous run. The float expressions are written in the
 * reference's order and the module has no FMA contraction (--fmad=false), so element-wise results
 * are the CPU's bits wherever the CPU uses only +, -, *, /. Per-sample ops put the sample on the
 * grid's y axis so the channel index is a single modulo.
 *
 * residual_backward's dscale / dtbias are column sums over pixels: threads on channels, blocks on
 * pixel chunks, double partials in scratch combined in a fixed order by a second kernel
 * (deterministic), with dx written in the same pass. */
#include <math.h>

#include "launch.cuh"
#include "diffcr/ops.h"

/* ---- residual -------------------------------------------------------------------------------- */

/* out may alias inp: every element is read before it is written by the same thread. */
__global__ void residual_fwd_kernel(float *out, const float *inp, const float *x, const float *scale,
                                    const float *tbias, int N, size_t HW, int C)
{
    const size_t per = HW * (size_t)C;
    DC_FOR_Y(n, N)
    {
        const float *tb = tbias ? tbias + n * (size_t)C : NULL;
        DC_FOR(i, per)
        {
            const size_t at = n * per + i, c = i % (size_t)C;
            float v = inp[at] + scale[c] * x[at];
            if (tb)
                v = v + tb[c];
            out[at] = v;
        }
    }
}

void cuda_residual_forward(float *out, const float *inp, const float *x, const float *scale,
                           const float *tbias, int N, size_t HW, int C)
{
    if (N <= 0 || C <= 0 || HW == 0)
        return;
    residual_fwd_kernel<<<dc_grid_rows((size_t)N, HW * (size_t)C), DC_BLOCK, 0, DC_STREAM>>>(
        out, inp, x, scale, tbias, N, HW, C);
}

/* dx = dout * scale, and per (sample, chunk) the sums of dout*x and dout over the chunk's pixels:
 * pscale / ptb [N][chunks][C] (ptb NULL: not wanted). */
__global__ void __launch_bounds__(DC_COL_X * DC_COL_Y)
residual_bwd_kernel(float *dx, double *pscale, double *ptb, const float *__restrict__ dout,
                    const float *__restrict__ x, const float *__restrict__ scale, int N, size_t HW,
                    int C, size_t rows_per_chunk, unsigned chunks)
{
    __shared__ double red_s[DC_COL_Y][DC_COL_X], red_t[DC_COL_Y][DC_COL_X];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int c = blockIdx.x * DC_COL_X + tx;
    const size_t lo = (size_t)blockIdx.y * rows_per_chunk;
    const size_t hi = lo + rows_per_chunk < HW ? lo + rows_per_chunk : HW;
    for (size_t n = blockIdx.z; n < (size_t)N; n += gridDim.z) { /* block-uniform */
        const size_t base = n * HW * (size_t)C;
        double as = 0.0, at = 0.0;
        if (c < C) {
            const float sc = scale[c];
            for (size_t p = lo + ty; p < hi; p += DC_COL_Y) {
                const size_t k = base + p * (size_t)C + c;
                const float g = dout[k];
                dx[k] = g * sc;
                as += (double)(g * x[k]);
                at += (double)g;
            }
        }
        red_s[ty][tx] = as;
        red_t[ty][tx] = at;
        __syncthreads();
        if (ty == 0 && c < C) {
            double s = red_s[0][tx], t = red_t[0][tx];
            for (int j = 1; j < DC_COL_Y; j++) {
                s += red_s[j][tx];
                t += red_t[j][tx];
            }
            const size_t slot = (n * chunks + blockIdx.y) * (size_t)C + c;
            pscale[slot] = s;
            if (ptb)
                ptb[slot] = t;
        }
        __syncthreads();
    }
}

/* k < C: dscale[k] = sum over n, then chunks; k >= C: dtbias[n*C + c] = sum over chunks. */
__global__ void residual_bwd_final_kernel(float *dscale, float *dtbias, const double *pscale,
                                          const double *ptb, int N, int C, unsigned chunks)
{
    const size_t total = (size_t)C + (dtbias ? (size_t)N * (size_t)C : 0);
    DC_FOR(k, total)
    {
        double s = 0.0;
        if (k < (size_t)C) {
            for (size_t r = 0; r < (size_t)N * chunks; r++)
                s += pscale[r * (size_t)C + k];
            dscale[k] = (float)s;
        } else {
            const size_t nc = k - (size_t)C, n = nc / (size_t)C, c = nc % (size_t)C;
            const double *col = ptb + n * chunks * (size_t)C + c;
            for (unsigned j = 0; j < chunks; j++)
                s += col[(size_t)j * (size_t)C];
            dtbias[nc] = (float)s;
        }
    }
}

void cuda_residual_backward(float *dx, float *dscale, float *dtbias, const float *dout,
                            const float *x, const float *scale, int N, size_t HW, int C)
{
    if (C <= 0 || N < 0)
        return;
    const unsigned tiles = (unsigned)((C + DC_COL_X - 1) / DC_COL_X);
    const unsigned gz = dc_min_u((size_t)N, DC_MAX_GRID_YZ);
    const dc_col_split split = dc_split_rows(HW, (size_t)tiles * (gz ? gz : 1));
    const size_t slots = (size_t)N * split.chunks * (size_t)C;
    const size_t s_bytes = dc_align(slots * sizeof(double));
    char *scratch = (char *)dc_scratch(s_bytes + (dtbias ? slots * sizeof(double) : 0),
                                       "residual_backward: no scratch");
    if (!scratch)
        return;
    double *pscale = (double *)scratch;
    double *ptb = dtbias ? (double *)(scratch + s_bytes) : NULL;
    /* N == 0 leaves no partial rows: the final kernel writes dscale = 0, as the reference */
    if (N > 0)
        residual_bwd_kernel<<<dim3(tiles, split.chunks, gz), dim3(DC_COL_X, DC_COL_Y), 0,
                              DC_STREAM>>>(dx, pscale, ptb, dout, x, scale, N, HW, C,
                                           split.rows_per_chunk, split.chunks);
    const size_t total = (size_t)C + (dtbias ? (size_t)N * (size_t)C : 0);
    residual_bwd_final_kernel<<<dc_blocks(total), DC_BLOCK, 0, DC_STREAM>>>(dscale, dtbias, pscale,
                                                                          ptb, N, C, split.chunks);
}

/* ---- condition sums -------------------------------------------------------------------------- */

/* x[n] (+)= sum over d of cond[n*ndates + d]; the dates are summed first (from 0.0f, in date
 * order) and then added, as torch's x + cond.sum(dim=1). */
__global__ void condsum_kernel(float *x, const float *cond, int B, int ndates, size_t HWC, int add)
{
    DC_FOR_Y(n, B)
    {
        float *y = x + n * HWC;
        const float *first = cond + n * (size_t)ndates * HWC;
        DC_FOR(i, HWC)
        {
            float s = 0.0f;
            for (int d = 0; d < ndates; d++)
                s += first[(size_t)d * HWC + i];
            if (add)
                y[i] += s;
            else
                y[i] = s;
        }
    }
}

void cuda_condsum_add_forward(float *x, const float *cond, int B, int ndates, size_t HWC)
{
    if (B <= 0 || HWC == 0)
        return;
    condsum_kernel<<<dc_grid_rows((size_t)B, HWC), DC_BLOCK, 0, DC_STREAM>>>(x, cond, B, ndates,
                                                                            HWC, 1);
}

void cuda_condsum_forward(float *out, const float *cond, int B, int ndates, size_t HWC)
{
    if (B <= 0 || HWC == 0)
        return;
    condsum_kernel<<<dc_grid_rows((size_t)B, HWC), DC_BLOCK, 0, DC_STREAM>>>(out, cond, B, ndates,
                                                                            HWC, 0);
}

/* dcond[k] = dx[k / ndates] for the B*ndates folded rows. */
__global__ void condsum_bwd_kernel(float *dcond, const float *dx, size_t copies, int ndates, size_t HWC)
{
    DC_FOR_Y(k, copies)
    {
        const float *src = dx + (k / (size_t)ndates) * HWC;
        float *dst = dcond + k * HWC;
        DC_FOR(i, HWC) { dst[i] = src[i]; }
    }
}

void cuda_condsum_add_backward(float *dcond, const float *dx, int B, int ndates, size_t HWC)
{
    if (B <= 0 || ndates <= 0 || HWC == 0)
        return;
    const size_t copies = (size_t)B * (size_t)ndates;
    condsum_bwd_kernel<<<dc_grid_rows(copies, HWC), DC_BLOCK, 0, DC_STREAM>>>(dcond, dx, copies,
                                                                             ndates, HWC);
}

/* ---- flat element-wise ----------------------------------------------------------------------- */

__global__ void add_inplace_kernel(float *y, const float *x, size_t n)
{
    DC_FOR(i, n) { y[i] += x[i]; }
}

__global__ void scale_inplace_kernel(float *x, float s, size_t n)
{
    DC_FOR(i, n) { x[i] *= s; }
}

void cuda_add_inplace(float *y, const float *x, size_t n)
{
    if (n == 0)
        return;
    add_inplace_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(y, x, n);
}

void cuda_scale_inplace(float *x, float s, size_t n)
{
    if (n == 0)
        return;
    scale_inplace_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(x, s, n);
}

/* SiLU as torch computes it, x / (1 + exp(-x)). exp is taken in double and rounded to float: the
 * correctly rounded expf in all but vanishingly rare cases, as glibc's expf on the CPU side, where
 * CUDA's expf may be 1-2 ulp off. The time MLP's few thousand values make the cost irrelevant. */
static __device__ __forceinline__ float exp_neg(float v)
{
    return (float)exp((double)-v);
}

/* out may alias inp. */
__global__ void silu_fwd_kernel(float *out, const float *inp, size_t n)
{
    DC_FOR(i, n)
    {
        const float v = inp[i];
        out[i] = v / (1.0f + exp_neg(v));
    }
}

__global__ void silu_bwd_kernel(float *dinp, const float *dout, const float *inp, size_t n)
{
    DC_FOR(i, n)
    {
        const float v = inp[i];
        const float s = 1.0f / (1.0f + exp_neg(v));
        dinp[i] = dout[i] * (s * (1.0f + v * (1.0f - s)));
    }
}

void cuda_silu_forward(float *out, const float *inp, size_t n)
{
    if (n == 0)
        return;
    silu_fwd_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(out, inp, n);
}

void cuda_silu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
    if (n == 0)
        return;
    silu_bwd_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(dinp, dout, inp, n);
}

/* ---- PixelShuffle(2) ------------------------------------------------------------------------- */

/* One thread per (input pixel, c): its 4 taps 4c..4c+3 are adjacent in the input and go to the
 * same channel of the 4 output pixels (coalesced across c on the output side). y-rows are the
 * N*H input rows. */
__global__ void pixelshuffle2_fwd_kernel(float *out, const float *inp, size_t rows, int W, int C)
{
    const size_t out_row = (size_t)2 * (size_t)W * (size_t)C;
    const size_t row_items = (size_t)W * (size_t)C;
    DC_FOR_Y(r, rows)
    {
        const float *src_row = inp + r * (size_t)W * 4 * (size_t)C;
        float *top = out + 2 * r * out_row;
        DC_FOR(i, row_items)
        {
            const size_t xw = i / (size_t)C, c = i % (size_t)C;
            const float *s = src_row + xw * 4 * (size_t)C + 4 * c;
            float *o00 = top + 2 * xw * (size_t)C + c;
            float *o10 = o00 + out_row;
            o00[0] = s[0];
            o00[C] = s[1];
            o10[0] = s[2];
            o10[C] = s[3];
        }
    }
}

__global__ void pixelshuffle2_bwd_kernel(float *dinp, const float *dout, size_t rows, int W, int C)
{
    const size_t out_row = (size_t)2 * (size_t)W * (size_t)C;
    const size_t row_items = (size_t)W * (size_t)C;
    DC_FOR_Y(r, rows)
    {
        float *dst_row = dinp + r * (size_t)W * 4 * (size_t)C;
        const float *top = dout + 2 * r * out_row;
        DC_FOR(i, row_items)
        {
            const size_t xw = i / (size_t)C, c = i % (size_t)C;
            float *d = dst_row + xw * 4 * (size_t)C + 4 * c;
            const float *g00 = top + 2 * xw * (size_t)C + c;
            const float *g10 = g00 + out_row;
            d[0] = g00[0];
            d[1] = g00[C];
            d[2] = g10[0];
            d[3] = g10[C];
        }
    }
}

void cuda_pixelshuffle2_forward(float *out, const float *inp, int N, int H, int W, int C)
{
    if (N <= 0 || H <= 0 || W <= 0 || C <= 0)
        return;
    const size_t rows = (size_t)N * (size_t)H;
    pixelshuffle2_fwd_kernel<<<dc_grid_rows(rows, (size_t)W * (size_t)C), DC_BLOCK, 0, DC_STREAM>>>(
        out, inp, rows, W, C);
}

void cuda_pixelshuffle2_backward(float *dinp, const float *dout, int N, int H, int W, int C)
{
    if (N <= 0 || H <= 0 || W <= 0 || C <= 0)
        return;
    const size_t rows = (size_t)N * (size_t)H;
    pixelshuffle2_bwd_kernel<<<dc_grid_rows(rows, (size_t)W * (size_t)C), DC_BLOCK, 0, DC_STREAM>>>(
        dinp, dout, rows, W, C);
}

/* ---- gamma embedding ------------------------------------------------------------------------- */

/* The frequencies depend only on dim: they are computed on the host with the reference's exact
 * float expression and libm expf (so they are the CPU's bits) and passed by value, in pieces of
 * GAMMA_PIECE. cos/sin of g*f are taken in double and rounded to float (correctly rounded but for
 * vanishingly rare ties; glibc's cosf/sinf are too). */
enum { GAMMA_PIECE = 512 };

typedef struct gamma_freqs {
    float f[GAMMA_PIECE];
} gamma_freqs;

__global__ void gamma_embedding_kernel(float *out, const float *g, int B, int dim, int k0, int count,
                                       gamma_freqs fr)
{
    const int half = dim / 2;
    DC_FOR(q, (size_t)B * (size_t)count)
    {
        const size_t b = q / (size_t)count;
        const int j = (int)(q % (size_t)count), k = k0 + j;
        const float arg = g[b] * fr.f[j];
        float *e = out + b * (size_t)dim;
        e[k] = (float)cos((double)arg);
        e[half + k] = (float)sin((double)arg);
        if ((dim & 1) && k == 0)
            e[dim - 1] = 0.0f;
    }
}

__global__ void gamma_embedding_odd_kernel(float *out, int B, int dim)
{
    DC_FOR(b, B) { out[b * (size_t)dim + (size_t)(dim - 1)] = 0.0f; }
}

void cuda_gamma_embedding_forward(float *out, const float *g, int B, int dim)
{
    if (B <= 0 || dim <= 0)
        return;
    const int half = dim / 2;
    if (half == 0) { /* dim = 1: only the trailing zero */
        gamma_embedding_odd_kernel<<<dc_blocks((size_t)B), DC_BLOCK, 0, DC_STREAM>>>(out, B, dim);
        return;
    }
    const float neg_log_period = (float)-log(10000.0);
    for (int k0 = 0; k0 < half; k0 += GAMMA_PIECE) {
        const int count = half - k0 < GAMMA_PIECE ? half - k0 : GAMMA_PIECE;
        gamma_freqs fr;
        for (int j = 0; j < GAMMA_PIECE; j++) {
            float f = 0.0f;
            if (j < count) {
                /* volatile: the float rounding of each step, as in ops_activation.c */
                volatile float exponent = (neg_log_period * (float)(k0 + j)) / (float)half;
                f = expf(exponent);
            }
            fr.f[j] = f;
        }
        gamma_embedding_kernel<<<dc_blocks((size_t)B * (size_t)count), DC_BLOCK, 0, DC_STREAM>>>(
            out, g, B, dim, k0, count, fr);
    }
}

/* ---- pad / crop / slice ---------------------------------------------------------------------- */

/* out [N,PH,PW,Cout] = inp[n,y,x,c0+c] (inp [N,H,W,Cin]) inside H x W, 0 outside. y-rows are the
 * N*PH output rows. */
__global__ void slice_pad_kernel(float *out, const float *inp, int H, int W, int Cin, int c0,
                                 int Cout, size_t rows, int PH, int PW)
{
    const size_t out_row = (size_t)PW * (size_t)Cout;
    DC_FOR_Y(r, rows)
    {
        const size_t n = r / (size_t)PH, y = r % (size_t)PH;
        float *dst = out + r * out_row;
        const float *src = y < (size_t)H ? inp + (n * (size_t)H + y) * (size_t)W * (size_t)Cin + c0 : NULL;
        DC_FOR(i, out_row)
        {
            const size_t x = i / (size_t)Cout, c = i % (size_t)Cout;
            dst[i] = src && x < (size_t)W ? src[x * (size_t)Cin + c] : 0.0f;
        }
    }
}

void cuda_slice_pad_nhwc(float *out, const float *inp, int N, int H, int W, int Cin, int c0,
                         int Cout, int PH, int PW)
{
    if (N <= 0 || PH <= 0 || PW <= 0 || Cout <= 0)
        return;
    const size_t rows = (size_t)N * (size_t)PH;
    slice_pad_kernel<<<dc_grid_rows(rows, (size_t)PW * (size_t)Cout), DC_BLOCK, 0, DC_STREAM>>>(
        out, inp, H, W, Cin, c0, Cout, rows, PH, PW);
}

void cuda_pad_nhwc(float *out, const float *inp, int N, int H, int W, int C, int PH, int PW)
{
    cuda_slice_pad_nhwc(out, inp, N, H, W, C, 0, C, PH, PW);
}

/* out [N,H,W,C] = the top-left H x W of inp [N,PH,PW,C]; y-rows are the N*H output rows. */
__global__ void crop_kernel(float *out, const float *inp, size_t rows, int H, int PH, int PW, int W,
                            int C)
{
    const size_t in_row = (size_t)PW * (size_t)C, out_row = (size_t)W * (size_t)C;
    DC_FOR_Y(r, rows)
    {
        const size_t n = r / (size_t)H, y = r % (size_t)H;
        const float *src = inp + (n * (size_t)PH + y) * in_row;
        float *dst = out + r * out_row;
        DC_FOR(i, out_row) { dst[i] = src[i]; }
    }
}

void cuda_crop_nhwc(float *out, const float *inp, int N, int PH, int PW, int C, int H, int W)
{
    if (N <= 0 || H <= 0 || W <= 0 || C <= 0)
        return;
    const size_t rows = (size_t)N * (size_t)H;
    crop_kernel<<<dc_grid_rows(rows, (size_t)W * (size_t)C), DC_BLOCK, 0, DC_STREAM>>>(
        out, inp, rows, H, PH, PW, W, C);
}

/* ---- Linear bias ----------------------------------------------------------------------------- */

__global__ void add_bias_rows_kernel(float *out, const float *bias, size_t n, int OC)
{
    DC_FOR(i, n) { out[i] += bias[i % (size_t)OC]; }
}

void cuda_add_bias_rows(float *out, const float *bias, int B, int OC)
{
    if (B <= 0 || OC <= 0 || !bias)
        return;
    const size_t n = (size_t)B * (size_t)OC;
    add_bias_rows_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(out, bias, n, OC);
}

/* dbias[o] = sum over b of dout[b, o], in double in batch order as ops_linear.c (bit-exact):
 * one thread per o, so a warp reads 32 adjacent outputs of a row. */
__global__ void bias_grad_rows_kernel(float *dbias, const float *dout, int B, int OC)
{
    DC_FOR(o, OC)
    {
        double s = 0.0;
        for (int b = 0; b < B; b++)
            s += (double)dout[(size_t)b * (size_t)OC + o];
        dbias[o] = (float)s;
    }
}

void cuda_bias_grad_rows(float *dbias, const float *dout, int B, int OC)
{
    if (OC <= 0 || !dbias)
        return;
    bias_grad_rows_kernel<<<dc_blocks((size_t)OC), DC_BLOCK, 0, DC_STREAM>>>(dbias, dout,
                                                                           B < 0 ? 0 : B, OC);
}
