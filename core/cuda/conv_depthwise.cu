/* diffcr — NAFNet's depthwise 3x3 convolution (stride 1, pad 1) as direct NHWC kernels, the
 * alternative to cuDNN's grouped convolution for this one shape (selected per backend,
 * DIFFCR_CUDA_DWCONV=direct|cudnn; the GPU benchmark times both).
 *
 * Why a hand-written kernel may win: with one input channel per group there is no reduction over
 * channels, so the work is 9 multiply-adds per output read from a 3x3 neighbourhood; NHWC makes
 * neighbouring threads (consecutive channels) read consecutive addresses, and the 9 reads of a
 * pixel's neighbours hit L1/L2. Reference: conv2d_ref_forward/backward (core/cpu/conv_ref.c).
 *
 * Weights keep PyTorch's [C][1][3][3]. The forward starts each sum from the bias, as the reference
 * does (no separate pass over the output); the bias gradient is the caller's (a GEMV, as for the
 * cuDNN path). Sums over the 9 taps run in the reference's order (ky, then kx); the weight gradient sums pixels in fixed chunks then the chunks in order, so
 * results are deterministic and agree with the CPU to float rounding. */
#include "launch.cuh"

/* out[n,y,x,c] = b[c] + sum_{ky,kx} in[n, y+s(ky-1), x+s(kx-1), c] * w[c][ky][kx]  (zero outside;
 * b = 0 when bias is NULL), with
 * s = +1 for the forward pass and s = -1 for backward-data (the gradient of a 3x3 correlation is
 * the correlation of dout with the flipped filter, i.e. the offsets reversed). */
__global__ void dw3_correlate_kernel(float *out, const float *inp, const float *w, const float *bias, int N, int H,
                                     int W, int C, int s)
{
    const size_t total = (size_t)N * H * W * C;
    DC_FOR(i, total)
    {
        const int c = (int)(i % C);
        const size_t pix = i / C;
        const int x = (int)(pix % W), y = (int)((pix / W) % H);
        const size_t n = pix / ((size_t)W * H);
        const float *wc = w + (size_t)c * 9;
        float acc = bias ? bias[c] : 0.0f;
        for (int ky = 0; ky < 3; ky++) {
            const int yy = y + s * (ky - 1);
            if (yy < 0 || yy >= H)
                continue;
            for (int kx = 0; kx < 3; kx++) {
                const int xx = x + s * (kx - 1);
                if (xx < 0 || xx >= W)
                    continue;
                acc += inp[((n * H + yy) * W + xx) * C + c] * wc[ky * 3 + kx];
            }
        }
        out[i] = acc;
    }
}

/* Weight-gradient partials: block (channel tile, pixel chunk); each thread owns one channel and
 * sums its 9 taps over a slice of the chunk's pixels; the block's DC_COL_Y slices are added in
 * order into partial[chunk][c][9] (double). */
__global__ void __launch_bounds__(DC_COL_X * DC_COL_Y)
dw3_wgrad_partial_kernel(double *partial, const float *dout, const float *inp, int N, int H, int W, int C,
                         size_t rows_per_chunk)
{
    __shared__ double sh[DC_COL_Y][DC_COL_X][9];
    const int c = blockIdx.x * DC_COL_X + threadIdx.x;
    const size_t P = (size_t)N * H * W;
    const size_t p0 = (size_t)blockIdx.y * rows_per_chunk;
    size_t p1 = p0 + rows_per_chunk;
    if (p1 > P)
        p1 = P;
    double acc[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    if (c < C) {
        for (size_t p = p0 + threadIdx.y; p < p1; p += DC_COL_Y) {
            const int x = (int)(p % W), y = (int)((p / W) % H);
            const size_t n = p / ((size_t)W * H);
            const float g = dout[p * C + c];
            for (int ky = 0; ky < 3; ky++) {
                const int yy = y + ky - 1;
                if (yy < 0 || yy >= H)
                    continue;
                for (int kx = 0; kx < 3; kx++) {
                    const int xx = x + kx - 1;
                    if (xx < 0 || xx >= W)
                        continue;
                    acc[ky * 3 + kx] += (double)(g * inp[((n * H + yy) * W + xx) * C + c]);
                }
            }
        }
    }
    for (int k = 0; k < 9; k++)
        sh[threadIdx.y][threadIdx.x][k] = acc[k];
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int k = 0; k < 9; k++) {
            double s = 0.0;
            for (int j = 0; j < DC_COL_Y; j++)
                s += sh[j][threadIdx.x][k];
            partial[((size_t)blockIdx.y * C + c) * 9 + k] = s;
        }
    }
}

__global__ void dw3_wgrad_final_kernel(float *dw, const double *partial, int C, unsigned chunks)
{
    DC_FOR(i, (size_t)C * 9)
    {
        double s = 0.0;
        for (unsigned k = 0; k < chunks; k++)
            s += partial[(size_t)k * C * 9 + i];
        dw[i] = (float)s;
    }
}

extern "C" void cuda_dwconv3_forward(float *out, const float *inp, const float *w, const float *bias, int N, int H,
                                     int W, int C)
{
    size_t total = (size_t)N * H * W * C;
    if (total)
        dw3_correlate_kernel<<<dc_blocks(total), DC_BLOCK, 0, DC_STREAM>>>(out, inp, w, bias, N, H, W, C, 1);
}

extern "C" void cuda_dwconv3_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                      int N, int H, int W, int C)
{
    size_t total = (size_t)N * H * W * C, P = (size_t)N * H * W;
    if (dinp && total)
        dw3_correlate_kernel<<<dc_blocks(total), DC_BLOCK, 0, DC_STREAM>>>(dinp, dout, w, NULL, N, H, W, C, -1);
    if (!dw || C <= 0)
        return;
    const unsigned ctiles = (unsigned)((C + DC_COL_X - 1) / DC_COL_X);
    dc_col_split split = dc_split_rows(P, ctiles);
    double *partial = (double *)dc_scratch((size_t)split.chunks * C * 9 * sizeof(double),
                                           "out of device memory for depthwise weight-gradient partials");
    if (!partial)
        return;
    dim3 grid(ctiles, split.chunks, 1), block(DC_COL_X, DC_COL_Y, 1);
    dw3_wgrad_partial_kernel<<<grid, block, 0, DC_STREAM>>>(partial, dout, inp, N, H, W, C, split.rows_per_chunk);
    dw3_wgrad_final_kernel<<<dc_blocks((size_t)C * 9), DC_BLOCK, 0, DC_STREAM>>>(dw, partial, C, split.chunks);
}
