/* diffcr — the training loss, mean squared error between the predicted and true x0 (see ops.h).
 *
 * The sum runs over B x 3 x 256 x 256 values, so it is accumulated in double: each thread owns a fixed
 * contiguous range, summed in a few independent double lanes (to break the add dependency chain; the
 * whole op is a fraction of a millisecond, so exactness beats vector width here), and the per-thread
 * sums are added in thread order, so the loss depends only on the thread count. */
#include "diffcr/ops.h"

#include <omp.h>

/* MAX_PARTS bounds the per-thread partial sums kept on the stack; below PARALLEL_MIN floats an
 * OpenMP fork/join costs more than the elementwise backward loop it splits. */
enum { LANES = 4, MAX_PARTS = 1024, PARALLEL_MIN = 1 << 15 };

double mse_forward(const float *pred, const float *target, size_t n)
{
    if (n == 0)
        return 0.0;
    double part[MAX_PARTS];
    int used_threads = 1;
    const int want = omp_get_max_threads();
#pragma omp parallel num_threads(want < MAX_PARTS ? want : MAX_PARTS)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const size_t lo = n * (size_t)t / (size_t)T, hi = n * (size_t)(t + 1) / (size_t)T;
        if (t == 0)
            used_threads = T;
        double lane[LANES] = {0};
        size_t i = lo;
        for (; i + LANES <= hi; i += LANES)
            for (int l = 0; l < LANES; l++) {
                const double d = (double)pred[i + l] - (double)target[i + l];
                lane[l] += d * d;
            }
        double s = (lane[0] + lane[1]) + (lane[2] + lane[3]);
        for (; i < hi; i++) {
            const double d = (double)pred[i] - (double)target[i];
            s += d * d;
        }
        part[t] = s;
    }
    double total = 0.0;
    for (int t = 0; t < used_threads; t++)
        total += part[t];
    return total / (double)n;
}

void mse_backward(float *dpred, const float *pred, const float *target, size_t n, float dloss)
{
    if (n == 0)
        return;
    const float k = (float)(2.0 * (double)dloss / (double)n);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dpred[i] = k * (pred[i] - target[i]);
}
