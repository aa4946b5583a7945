/* diffcr — SimpleGate and DiffCR's split simplified channel attention (SCA), CUDA (cuda_ops.h;
 * references core/cpu/ops_gate.c, core/cpu/ops_sca.c).
 *
 * SimpleGate is a flat streaming kernel. SCA needs per-(sample, channel) reductions over the HW
 * pixels (mean / first-argmax pooling forward, sum of dout*x backward). Summing down a column of
 * an NHWC tensor is coalesced when threads map to channels: a block is 32 channels x 8 pixel rows,
 * blocks cover contiguous pixel chunks, each block writes one partial per channel to scratch, and
 * a second kernel combines the chunks in chunk order. Sums are in double like the CPU's. The max
 * combines (value, index) pairs with a total order (NaN above everything, ties to the smaller
 * index), so any combination order yields PyTorch's first maximum, which is the CPU's answer.
 *
 * The tiny h x h matrix-vector products are one thread (or warp) per output, in double. */
#include <math.h>

#include "launch.cuh"
#include "diffcr/ops.h"

/* ---- SimpleGate ------------------------------------------------------------------------------ */

__global__ void simplegate_fwd_kernel(float *out, const float *inp, size_t P, int C)
{
    DC_FOR(i, P * (size_t)C)
    {
        const size_t p = i / (size_t)C, c = i % (size_t)C;
        const float *a = inp + p * 2 * (size_t)C;
        out[i] = a[c] * a[(size_t)C + c];
    }
}

__global__ void simplegate_bwd_kernel(float *dinp, const float *dout, const float *inp, size_t P,
                                      int C)
{
    DC_FOR(i, P * (size_t)C)
    {
        const size_t p = i / (size_t)C, c = i % (size_t)C;
        const float *a = inp + p * 2 * (size_t)C;
        float *da = dinp + p * 2 * (size_t)C;
        const float g = dout[i];
        da[c] = g * a[(size_t)C + c];
        da[(size_t)C + c] = g * a[c];
    }
}

void cuda_simplegate_forward(float *out, const float *inp, size_t P, int C)
{
    const size_t n = P * (size_t)(C > 0 ? C : 0);
    if (n == 0)
        return;
    simplegate_fwd_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(out, inp, P, C);
}

void cuda_simplegate_backward(float *dinp, const float *dout, const float *inp, size_t P, int C)
{
    const size_t n = P * (size_t)(C > 0 ? C : 0);
    if (n == 0)
        return;
    simplegate_bwd_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(dinp, dout, inp, P, C);
}

/* ---- SCA helpers ----------------------------------------------------------------------------- */

/* The CPU's scan step: v beats the running maximum m when strictly greater, or the first NaN. */
static __device__ __forceinline__ bool beats_max(float v, float m)
{
    return (v > m) || (v != v && m == m);
}

/* (v1, i1) comes before (v2, i2) in the max order: NaN first, then larger, ties to the smaller
 * index. A total order on distinct indices, so chunk partials combine in any grouping. */
static __device__ __forceinline__ bool better(float v1, int i1, float v2, int i2)
{
    const bool n1 = v1 != v1, n2 = v2 != v2;
    if (n1 || n2)
        return n1 && n2 ? i1 < i2 : n1;
    if (v1 != v2)
        return v1 > v2;
    return i1 < i2;
}

/* Blocks of the column kernels: channel tiles x pixel chunks x samples. */
static dim3 col_grid(int C, unsigned chunks, int N)
{
    return dim3((unsigned)((C + DC_COL_X - 1) / DC_COL_X), chunks,
                dc_min_u((size_t)N, DC_MAX_GRID_YZ));
}

/* ---- SCA forward ----------------------------------------------------------------------------- */

/* Per (sample, chunk): sums of the mean half and (max, first index) of the max half over the
 * chunk's pixels. Partials [N][chunks][h]. A thread with no pixels keeps (-inf, its first row),
 * an index past every real one of the chunk, so it never wins over a real element. */
__global__ void __launch_bounds__(DC_COL_X * DC_COL_Y)
sca_pool_kernel(double *psum, float *pmax, int *parg, const float *__restrict__ x, int N, size_t HW,
                int C, size_t rows_per_chunk, unsigned chunks)
{
    __shared__ double red_s[DC_COL_Y][DC_COL_X];
    __shared__ float red_v[DC_COL_Y][DC_COL_X];
    __shared__ int red_i[DC_COL_Y][DC_COL_X];
    const int tx = threadIdx.x, ty = threadIdx.y, h = C / 2;
    const int c = blockIdx.x * DC_COL_X + tx;
    const size_t lo = (size_t)blockIdx.y * rows_per_chunk;
    const size_t hi = lo + rows_per_chunk < HW ? lo + rows_per_chunk : HW;
    for (size_t n = blockIdx.z; n < (size_t)N; n += gridDim.z) { /* block-uniform */
        const float *xs = x + n * HW * (size_t)C;
        double s = 0.0;
        float best = -INFINITY;
        int best_at = (int)(lo + ty);
        if (c < h) {
            for (size_t p = lo + ty; p < hi; p += DC_COL_Y)
                s += (double)xs[p * (size_t)C + c];
        } else if (c < 2 * h) {
            for (size_t p = lo + ty; p < hi; p += DC_COL_Y) {
                const float v = xs[p * (size_t)C + c];
                if (beats_max(v, best)) {
                    best = v;
                    best_at = (int)p;
                }
            }
        }
        red_s[ty][tx] = s;
        red_v[ty][tx] = best;
        red_i[ty][tx] = best_at;
        __syncthreads();
        if (ty == 0 && c < 2 * h) {
            const size_t slot = (n * chunks + blockIdx.y) * (size_t)h;
            if (c < h) {
                double t = red_s[0][tx];
                for (int j = 1; j < DC_COL_Y; j++)
                    t += red_s[j][tx];
                psum[slot + c] = t;
            } else {
                float v = red_v[0][tx];
                int at = red_i[0][tx];
                for (int j = 1; j < DC_COL_Y; j++)
                    if (better(red_v[j][tx], red_i[j][tx], v, at)) {
                        v = red_v[j][tx];
                        at = red_i[j][tx];
                    }
                pmax[slot + (c - h)] = v;
                parg[slot + (c - h)] = at;
            }
        }
        __syncthreads(); /* red_* reused by the next sample */
    }
}

/* pooled and argmax from the chunk partials, chunks in order. One thread per (n, c < h). */
__global__ void sca_pool_final_kernel(float *pooled, int *argmax, const double *psum,
                                      const float *pmax, const int *parg, int N, size_t HW, int C,
                                      unsigned chunks)
{
    const int h = C / 2;
    DC_FOR(k, (size_t)N * (size_t)h)
    {
        const size_t n = k / (size_t)h, c = k % (size_t)h;
        const size_t first = n * chunks * (size_t)h + c;
        double s = 0.0;
        float v = pmax[first];
        int at = parg[first];
        for (unsigned j = 0; j < chunks; j++) {
            const size_t slot = first + (size_t)j * (size_t)h;
            s += psum[slot];
            if (j > 0 && better(pmax[slot], parg[slot], v, at)) {
                v = pmax[slot];
                at = parg[slot];
            }
        }
        pooled[n * (size_t)C + c] = (float)(s / (double)HW);
        pooled[n * (size_t)C + (size_t)h + c] = v;
        argmax[k] = at;
    }
}

/* scale[n, k] = b[o] + W[o] . pooled-half, one warp per (n, k): lanes read the weight row
 * coalesced and sum in double (products of floats are exact in double). */
__global__ void sca_scale_kernel(float *scale, const float *pooled, const float *w_avg,
                                 const float *b_avg, const float *w_max, const float *b_max, int N,
                                 int C)
{
    const int h = C / 2, lane = threadIdx.x & 31;
    const size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5;
    const size_t warps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t q = warp; q < (size_t)N * (size_t)C; q += warps) { /* warp-uniform */
        const size_t n = q / (size_t)C;
        const int k = (int)(q % (size_t)C);
        const int is_max = k >= h, o = is_max ? k - h : k;
        const float *w_row = (is_max ? w_max : w_avg) + (size_t)o * (size_t)h;
        const float *in = pooled + n * (size_t)C + (is_max ? (size_t)h : 0);
        double s = 0.0;
        for (int j = lane; j < h; j += 32)
            s += (double)w_row[j] * (double)in[j];
        s = dc_warp_sum_d(s);
        if (lane == 0)
            scale[q] = (float)((double)(is_max ? b_max : b_avg)[o] + s);
    }
}

/* out[n, p, c] = x[n, p, c] * scale[n, c]; y-rows are samples. */
__global__ void sca_apply_kernel(float *out, const float *x, const float *scale, int N, size_t HW,
                                 int C)
{
    const size_t per = HW * (size_t)C;
    DC_FOR_Y(n, N)
    {
        const float *s = scale + n * (size_t)C;
        DC_FOR(i, per)
        {
            const size_t at = n * per + i;
            out[at] = x[at] * s[i % (size_t)C];
        }
    }
}

void cuda_sca_forward(float *out, float *pooled, float *scale, int *argmax, const float *x,
                      const float *w_avg, const float *b_avg, const float *w_max, const float *b_max,
                      int N, size_t HW, int C)
{
    const int h = C / 2;
    if (N <= 0 || h <= 0)
        return;
    const dim3 grid0 = col_grid(C, 1, N);
    const dc_col_split split = dc_split_rows(HW, (size_t)grid0.x * grid0.z);
    const size_t slots = (size_t)N * split.chunks * (size_t)h;
    const size_t sum_bytes = dc_align(slots * sizeof(double)), max_bytes = dc_align(slots * sizeof(float));
    char *scratch = (char *)dc_scratch(sum_bytes + max_bytes + slots * sizeof(int),
                                       "sca_forward: no scratch");
    if (!scratch)
        return;
    double *psum = (double *)scratch;
    float *pmax = (float *)(scratch + sum_bytes);
    int *parg = (int *)(scratch + sum_bytes + max_bytes);

    sca_pool_kernel<<<col_grid(C, split.chunks, N), dim3(DC_COL_X, DC_COL_Y), 0, DC_STREAM>>>(
        psum, pmax, parg, x, N, HW, C, split.rows_per_chunk, split.chunks);
    sca_pool_final_kernel<<<dc_blocks((size_t)N * (size_t)h), DC_BLOCK, 0, DC_STREAM>>>(
        pooled, argmax, psum, pmax, parg, N, HW, C, split.chunks);
    const size_t outputs = (size_t)N * (size_t)C; /* one warp each */
    sca_scale_kernel<<<dc_blocks(outputs * 32), DC_BLOCK, 0, DC_STREAM>>>(scale, pooled, w_avg, b_avg,
                                                                        w_max, b_max, N, C);
    if (HW > 0)
        sca_apply_kernel<<<dc_grid_rows((size_t)N, HW * (size_t)C), DC_BLOCK, 0, DC_STREAM>>>(
            out, x, scale, N, HW, C);
}

/* ---- SCA backward ---------------------------------------------------------------------------- */

/* Chunk partials of dscale[n, c] = sum over p of (double)(dout * x). part: [N][chunks][C]. */
__global__ void __launch_bounds__(DC_COL_X * DC_COL_Y)
sca_dscale_kernel(double *part, const float *__restrict__ dout, const float *__restrict__ x, int N,
                  size_t HW, int C, size_t rows_per_chunk, unsigned chunks)
{
    __shared__ double red[DC_COL_Y][DC_COL_X];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int c = blockIdx.x * DC_COL_X + tx;
    const size_t lo = (size_t)blockIdx.y * rows_per_chunk;
    const size_t hi = lo + rows_per_chunk < HW ? lo + rows_per_chunk : HW;
    for (size_t n = blockIdx.z; n < (size_t)N; n += gridDim.z) {
        const size_t base = n * HW * (size_t)C;
        double s = 0.0;
        if (c < C)
            for (size_t p = lo + ty; p < hi; p += DC_COL_Y) {
                const size_t at = base + p * (size_t)C + c;
                s += (double)(dout[at] * x[at]);
            }
        red[ty][tx] = s;
        __syncthreads();
        if (ty == 0 && c < C) {
            double t = red[0][tx];
            for (int j = 1; j < DC_COL_Y; j++)
                t += red[j][tx];
            part[(n * chunks + blockIdx.y) * (size_t)C + c] = t;
        }
        __syncthreads();
    }
}

/* dscale[n, c] = the chunk partials added in chunk order. */
__global__ void sca_dscale_final_kernel(double *dscale, const double *part, int N, int C,
                                        unsigned chunks)
{
    DC_FOR(k, (size_t)N * (size_t)C)
    {
        const size_t n = k / (size_t)C, c = k % (size_t)C;
        const double *col = part + n * chunks * (size_t)C + c;
        double s = 0.0;
        for (unsigned j = 0; j < chunks; j++)
            s += col[(size_t)j * (size_t)C];
        dscale[k] = s;
    }
}

/* dpooled[n, i] = sum over o of W[o][i] * dscale[n, o] per half (o in order, as the CPU); the mean
 * half spreads dpooled / HW over every pixel, the max half goes to the argmax only. */
__global__ void sca_dpooled_kernel(float *dpooled, float *spread, const double *dscale,
                                   const float *w_avg, const float *w_max, int N, size_t HW, int C)
{
    const int h = C / 2;
    DC_FOR(k, (size_t)N * (size_t)C)
    {
        const size_t n = k / (size_t)C;
        const int c = (int)(k % (size_t)C);
        if (c >= 2 * h) { /* odd C: the reference never touches the last channel */
            dpooled[k] = 0.0f;
            spread[k] = 0.0f;
            continue;
        }
        const int is_max = c >= h, i = is_max ? c - h : c;
        const float *w = is_max ? w_max : w_avg;
        const double *ds = dscale + n * (size_t)C + (is_max ? (size_t)h : 0);
        double s = 0.0;
        for (int o = 0; o < h; o++)
            s += (double)w[(size_t)o * (size_t)h + (size_t)i] * ds[o];
        dpooled[k] = (float)s;
        spread[k] = is_max ? 0.0f : (float)(s / (double)HW);
    }
}

/* Parameter gradients, a sum over the N samples in sample order:
 *   dw[o][i] = sum_n dscale[n, off+o] * pooled[n, off+i];  db[k] = sum_n dscale[n, k]. */
__global__ void sca_param_kernel(float *dw_avg, float *db_avg, float *dw_max, float *db_max,
                                 const double *dscale, const float *pooled, int N, int C)
{
    const int h = C / 2;
    const size_t hh = (size_t)h * (size_t)h;
    DC_FOR(k, 2 * hh + 2 * (size_t)h)
    {
        if (k < 2 * hh) {
            const int is_max = k >= hh;
            const size_t kk = is_max ? k - hh : k;
            const size_t o = kk / (size_t)h, i = kk % (size_t)h, off = is_max ? (size_t)h : 0;
            double s = 0.0;
            for (int n = 0; n < N; n++) {
                const size_t row = (size_t)n * (size_t)C + off;
                s += dscale[row + o] * (double)pooled[row + i];
            }
            float *dw = is_max ? dw_max : dw_avg;
            if (dw)
                dw[kk] = (float)s;
        } else {
            const size_t kb = k - 2 * hh;
            const int is_max = kb >= (size_t)h;
            double s = 0.0;
            for (int n = 0; n < N; n++)
                s += dscale[(size_t)n * (size_t)C + kb];
            float *db = is_max ? db_max : db_avg;
            if (db)
                db[is_max ? kb - (size_t)h : kb] = (float)s;
        }
    }
}

/* dx = dout * scale + spread, plus dpooled at the argmax pixel of each max-half channel (the
 * CPU's scatter, fused: each (n, c) owns one pixel). */
__global__ void sca_dx_kernel(float *dx, const float *dout, const float *scale, const float *spread,
                              const float *dpooled, const int *argmax, int N, size_t HW, int C)
{
    const int h = C / 2;
    const size_t per = HW * (size_t)C;
    DC_FOR_Y(n, N)
    {
        const size_t row = n * (size_t)C;
        DC_FOR(i, per)
        {
            const size_t p = i / (size_t)C;
            const int c = (int)(i - p * (size_t)C);
            const size_t at = n * per + i;
            float d = dout[at] * scale[row + c] + spread[row + c];
            if (c >= h && c < 2 * h && (size_t)argmax[n * (size_t)h + (size_t)(c - h)] == p)
                d += dpooled[row + c];
            dx[at] = d;
        }
    }
}

void cuda_sca_backward(float *dx, float *dw_avg, float *db_avg, float *dw_max, float *db_max,
                       const float *dout, const float *x, const float *pooled, const float *scale,
                       const int *argmax, const float *w_avg, const float *w_max, int N, size_t HW,
                       int C)
{
    const int h = C / 2;
    if (N < 0 || C <= 0)
        return;
    const size_t NC = (size_t)N * (size_t)C;
    if (N == 0 || h == 0) { /* empty sums: zero parameter gradients, as the reference */
        if (h > 0) {
            const size_t hh = (size_t)h * (size_t)h * sizeof(float), hb = (size_t)h * sizeof(float);
            if (dw_avg)
                cudaMemsetAsync(dw_avg, 0, hh, DC_STREAM);
            if (dw_max)
                cudaMemsetAsync(dw_max, 0, hh, DC_STREAM);
            if (db_avg)
                cudaMemsetAsync(db_avg, 0, hb, DC_STREAM);
            if (db_max)
                cudaMemsetAsync(db_max, 0, hb, DC_STREAM);
        }
        return;
    }
    const dim3 grid0 = col_grid(C, 1, N);
    const dc_col_split split = dc_split_rows(HW, (size_t)grid0.x * grid0.z);
    const size_t part_bytes = dc_align((size_t)N * split.chunks * (size_t)C * sizeof(double));
    const size_t ds_bytes = dc_align(NC * sizeof(double)), f_bytes = dc_align(NC * sizeof(float));
    char *scratch = (char *)dc_scratch(part_bytes + ds_bytes + 2 * f_bytes, "sca_backward: no scratch");
    if (!scratch)
        return;
    double *part = (double *)scratch;
    double *dscale = (double *)(scratch + part_bytes);
    float *dpooled = (float *)(scratch + part_bytes + ds_bytes);
    float *spread = (float *)(scratch + part_bytes + ds_bytes + f_bytes);

    sca_dscale_kernel<<<col_grid(C, split.chunks, N), dim3(DC_COL_X, DC_COL_Y), 0, DC_STREAM>>>(
        part, dout, x, N, HW, C, split.rows_per_chunk, split.chunks);
    sca_dscale_final_kernel<<<dc_blocks(NC), DC_BLOCK, 0, DC_STREAM>>>(dscale, part, N, C,
                                                                     split.chunks);
    sca_dpooled_kernel<<<dc_blocks(NC), DC_BLOCK, 0, DC_STREAM>>>(dpooled, spread, dscale, w_avg,
                                                                w_max, N, HW, C);
    const size_t params = 2 * (size_t)h * (size_t)h + 2 * (size_t)h;
    sca_param_kernel<<<dc_blocks(params), DC_BLOCK, 0, DC_STREAM>>>(dw_avg, db_avg, dw_max, db_max,
                                                                  dscale, pooled, N, C);
    if (HW > 0)
        sca_dx_kernel<<<dc_grid_rows((size_t)N, HW * (size_t)C), DC_BLOCK, 0, DC_STREAM>>>(
            dx, dout, scale, spread, dpooled, argmax, N, HW, C);
}
