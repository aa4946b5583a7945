/* diffcr — SiLU and DiffCR's gamma (noise level) embedding, the pieces of the time MLP (see ops.h).
 *
 * Both act on B x 256 values per step, so they are written for exactness against PyTorch rather than
 * speed: SiLU as torch computes it, x / (1 + exp(-x)), and the embedding frequencies rounded through
 * float32 in the same order as torch's expression (see gamma_embedding_forward). */
#include "diffcr/ops.h"

#include <math.h>

/* Below this many floats an OpenMP fork/join costs more than the loop it splits (the time MLP's
 * B x 256 activations always stay below it). */
enum { PARALLEL_MIN = 1 << 15 };

void silu_forward(float *out, const float *inp, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        const float v = inp[i];
        out[i] = v / (1.0f + expf(-v));
    }
}

void silu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        const float v = inp[i];
        const float s = 1.0f / (1.0f + expf(-v));
        dinp[i] = dout[i] * (s * (1.0f + v * (1.0f - s)));
    }
}

void gamma_embedding_forward(float *out, const float *g, int B, int dim)
{
    const int half = dim / 2;
    /* torch: exp(-math.log(max_period) * arange(half, dtype=float32) / half). The Python double
     * constant is cast to float32 by the tensor-scalar multiply, and the product and the division
     * are each rounded to float32 before the float32 exp. */
    const float neg_log_period = (float)-log(10000.0);
    for (int b = 0; b < B; b++) {
        float *e = out + (size_t)b * (size_t)dim;
        for (int k = 0; k < half; k++) {
            const float exponent = (neg_log_period * (float)k) / (float)half;
            const float arg = g[b] * expf(exponent);
            e[k] = cosf(arg);
            e[half + k] = sinf(arg);
        }
        if (dim % 2)
            e[dim - 1] = 0.0f;
    }
}
