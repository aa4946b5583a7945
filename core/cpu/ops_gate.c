/* diffcr — SimpleGate forward and backward on NHWC activations (see ops.h).
 *
 * NAFNet's gate multiplies the two channel halves. In NHWC the halves are strided views that oneDNN's
 * fast kernels refuse (BACKENDS.md §4.5), while as a per-pixel loop it is one contiguous read of 2C
 * floats and one write of C: purely memory-bound, so a plain parallel loop is all it needs. */
#include "diffcr/ops.h"

/* Below this many floats an OpenMP fork/join costs more than the loop it splits. */
enum { PARALLEL_MIN = 1 << 15 };

void simplegate_forward(float *out, const float *inp, size_t P, int C)
{
#pragma omp parallel for schedule(static) if (P * (size_t)C >= PARALLEL_MIN)
    for (size_t p = 0; p < P; p++) {
        const float *restrict a = inp + p * 2 * (size_t)C;
        const float *restrict b = a + C;
        float *restrict y = out + p * (size_t)C;
        for (int c = 0; c < C; c++)
            y[c] = a[c] * b[c];
    }
}

void simplegate_backward(float *dinp, const float *dout, const float *inp, size_t P, int C)
{
#pragma omp parallel for schedule(static) if (P * (size_t)C >= PARALLEL_MIN)
    for (size_t p = 0; p < P; p++) {
        const float *restrict a = inp + p * 2 * (size_t)C;
        const float *restrict b = a + C;
        const float *restrict g = dout + p * (size_t)C;
        float *restrict da = dinp + p * 2 * (size_t)C;
        float *restrict db = da + C;
        for (int c = 0; c < C; c++) {
            da[c] = g[c] * b[c];
            db[c] = g[c] * a[c];
        }
    }
}
