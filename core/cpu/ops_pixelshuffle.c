/* diffcr — PixelShuffle(2) and the zero pad / crop that let any H x W run through the UNet (ops.h).
 *
 * PixelShuffle is a pure permutation: in NHWC each input pixel's 4C channels, read contiguously, are
 * de-interleaved (stride 4) into the C channels of its four output pixels. Writing the inner loop over
 * c with the four taps side by side lets GCC use grouped loads/stores instead of gathers. oneDNN has
 * no PixelShuffle, so this is the only implementation.
 *
 * pad/crop copy whole rows with memcpy: the UNet needs sides that are multiples of 16 and the output
 * must be cropped back, since DiffCR returns the padded size (DIFFCR.md §2.2). */
#include "diffcr/ops.h"

#include <string.h>

/* Below this many floats an OpenMP fork/join costs more than the loop it splits. */
enum { PARALLEL_MIN = 1 << 15 };

void pixelshuffle2_forward(float *out, const float *inp, int N, int H, int W, int C)
{
    const size_t out_row = (size_t)2 * (size_t)W * (size_t)C; /* floats in one output row */
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)H * 2 * out_row >= PARALLEL_MIN)
    for (size_t r = 0; r < (size_t)N * (size_t)H; r++) { /* r = n*H + y: input row */
        const float *src_row = inp + r * (size_t)W * 4 * (size_t)C;
        float *top = out + 2 * r * out_row; /* output row 2y of sample n */
        float *bottom = top + out_row;      /* output row 2y+1 */
        for (int x = 0; x < W; x++) {
            const float *restrict s = src_row + (size_t)x * 4 * (size_t)C;
            float *restrict o00 = top + (size_t)2 * (size_t)x * (size_t)C, *restrict o01 = o00 + C;
            float *restrict o10 = bottom + (size_t)2 * (size_t)x * (size_t)C, *restrict o11 = o10 + C;
            for (int c = 0; c < C; c++) {
                o00[c] = s[4 * c + 0];
                o01[c] = s[4 * c + 1];
                o10[c] = s[4 * c + 2];
                o11[c] = s[4 * c + 3];
            }
        }
    }
}

void pixelshuffle2_backward(float *dinp, const float *dout, int N, int H, int W, int C)
{
    const size_t out_row = (size_t)2 * (size_t)W * (size_t)C;
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)H * 2 * out_row >= PARALLEL_MIN)
    for (size_t r = 0; r < (size_t)N * (size_t)H; r++) {
        float *dst_row = dinp + r * (size_t)W * 4 * (size_t)C;
        const float *top = dout + 2 * r * out_row;
        const float *bottom = top + out_row;
        for (int x = 0; x < W; x++) {
            float *restrict d = dst_row + (size_t)x * 4 * (size_t)C;
            const float *restrict g00 = top + (size_t)2 * (size_t)x * (size_t)C, *restrict g01 = g00 + C;
            const float *restrict g10 = bottom + (size_t)2 * (size_t)x * (size_t)C, *restrict g11 = g10 + C;
            for (int c = 0; c < C; c++) {
                d[4 * c + 0] = g00[c];
                d[4 * c + 1] = g01[c];
                d[4 * c + 2] = g10[c];
                d[4 * c + 3] = g11[c];
            }
        }
    }
}

void slice_pad_nhwc(float *out, const float *inp, int N, int H, int W, int Cin, int c0, int Cout,
                    int PH, int PW)
{
    const size_t in_row = (size_t)W * (size_t)Cin, out_row = (size_t)PW * (size_t)Cout;
    const size_t valid = (size_t)W * (size_t)Cout;
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)PH * out_row >= PARALLEL_MIN)
    for (size_t r = 0; r < (size_t)N * (size_t)PH; r++) { /* r = n*PH + y: output row */
        const size_t n = r / (size_t)PH, y = r % (size_t)PH;
        float *dst = out + r * out_row;
        if (y >= (size_t)H) {
            memset(dst, 0, out_row * sizeof(float));
            continue;
        }
        const float *src = inp + (n * (size_t)H + y) * in_row + c0;
        if (Cin == Cout) {
            memcpy(dst, src, valid * sizeof(float));
        } else {
            for (int x = 0; x < W; x++)
                for (int c = 0; c < Cout; c++)
                    dst[(size_t)x * Cout + c] = src[(size_t)x * Cin + c];
        }
        memset(dst + valid, 0, (out_row - valid) * sizeof(float));
    }
}

void pad_nhwc(float *out, const float *inp, int N, int H, int W, int C, int PH, int PW)
{
    slice_pad_nhwc(out, inp, N, H, W, C, 0, C, PH, PW);
}

void crop_nhwc(float *out, const float *inp, int N, int PH, int PW, int C, int H, int W)
{
    const size_t in_row = (size_t)PW * (size_t)C, out_row = (size_t)W * (size_t)C;
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)H * out_row >= PARALLEL_MIN)
    for (size_t r = 0; r < (size_t)N * (size_t)H; r++) { /* r = n*H + y: output row */
        const size_t n = r / (size_t)H, y = r % (size_t)H;
        memcpy(out + r * out_row, inp + (n * (size_t)PH + y) * in_row, out_row * sizeof(float));
    }
}
