/* diffcr — residual adds of the NAF blocks and the condition fusion sums (see ops.h).
 *
 * residual: y = inp + beta * x (+ the per-sample time bias) is NAFBlock's skip with its learned
 * per-channel scale, fused with the time bias so the residual stream is read and written once.
 * condsum: the main branch adds the sum over the dates of the condition branch after each encoder;
 * the dates sit sample-major in the condition batch (DiffCR's stack(dim=1).view(b*n)).
 *
 * All of it is streaming and memory-bound. The only reductions are residual_backward's dscale (over
 * every pixel) and dtbias (over each sample's pixels): each thread owns a fixed pixel range per sample
 * with double accumulators, combined in thread order, so results depend only on the thread count. */
#include "diffcr/ops.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/thread_partials.h"

/* Below this many floats an OpenMP fork/join costs more than the streaming loop it splits. The
 * reduction in residual_backward always runs parallel: it only sees full activations. */
enum { PARALLEL_MIN = 1 << 15 };


/* Separate in-place and out-of-place loops: with out == inp GCC's runtime alias check would see an
 * overlap and fall back to scalar code, while "+=" on one pointer vectorises directly. Both evaluate
 * (inp + scale*x) + tbias in the same order, so they give the same bits. */
static void residual_row_inplace(float *restrict y, const float *restrict x, const float *restrict scale,
                                 const float *restrict tb, int C)
{
    if (tb)
        for (int c = 0; c < C; c++)
            y[c] = y[c] + scale[c] * x[c] + tb[c];
    else
        for (int c = 0; c < C; c++)
            y[c] = y[c] + scale[c] * x[c];
}

static void residual_row(float *restrict y, const float *restrict in, const float *restrict x,
                         const float *restrict scale, const float *restrict tb, int C)
{
    if (tb)
        for (int c = 0; c < C; c++)
            y[c] = in[c] + scale[c] * x[c] + tb[c];
    else
        for (int c = 0; c < C; c++)
            y[c] = in[c] + scale[c] * x[c];
}

void residual_forward(float *out, const float *inp, const float *x, const float *scale,
                      const float *tbias, int N, size_t HW, int C)
{
    const int in_place = out == inp;
#pragma omp parallel for schedule(static) if ((size_t)N * HW * (size_t)C >= PARALLEL_MIN)
    for (size_t q = 0; q < (size_t)N * HW; q++) {
        const size_t at = q * (size_t)C;
        const float *tb = tbias ? tbias + (q / HW) * (size_t)C : NULL;
        if (in_place)
            residual_row_inplace(out + at, x + at, scale, tb, C);
        else
            residual_row(out + at, inp + at, x + at, scale, tb, C);
    }
}

void residual_backward(float *dx, float *dscale, float *dtbias, const float *dout, const float *x,
                       const float *scale, int N, size_t HW, int C)
{
    const size_t NC = (size_t)N * (size_t)C;
    const int max_threads = omp_get_max_threads();
    /* Per thread: C doubles for dscale, then N*C for dtbias. */
    const size_t per_thread = slice_stride((size_t)C + NC, sizeof(double));
    double *part = dc_thread_scratch(0, (size_t)max_threads * per_thread * sizeof(double));
    int used_threads = 1;

#pragma omp parallel num_threads(max_threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const size_t lo = HW * (size_t)t / (size_t)T, hi = HW * (size_t)(t + 1) / (size_t)T;
        if (t == 0)
            used_threads = T;
        double *restrict acc_scale = part + (size_t)t * per_thread;
        for (int c = 0; c < C; c++)
            acc_scale[c] = 0.0;
        for (int n = 0; n < N; n++) {
            double *restrict acc_tb = acc_scale + C + (size_t)n * (size_t)C;
            for (int c = 0; c < C; c++)
                acc_tb[c] = 0.0;
            for (size_t p = lo; p < hi; p++) {
                const size_t at = ((size_t)n * HW + p) * (size_t)C;
                const float *restrict g = dout + at, *restrict v = x + at;
                float *restrict d = dx + at;
                for (int c = 0; c < C; c++) {
                    d[c] = g[c] * scale[c];
                    acc_scale[c] += (double)(g[c] * v[c]);
                }
                if (dtbias)
                    for (int c = 0; c < C; c++)
                        acc_tb[c] += (double)g[c];
            }
        }
#pragma omp barrier

#pragma omp for schedule(static)
        for (size_t k = 0; k < (size_t)C + (dtbias ? NC : 0); k++) {
            double s = 0.0;
            for (int u = 0; u < used_threads; u++)
                s += part[(size_t)u * per_thread + k];
            if (k < (size_t)C)
                dscale[k] = (float)s;
            else
                dtbias[k - (size_t)C] = (float)s;
        }
    }
}

void condsum_add_forward(float *x, const float *cond, int B, int ndates, size_t HWC)
{
#pragma omp parallel if ((size_t)B * HWC >= PARALLEL_MIN)
    for (int n = 0; n < B; n++) {
        float *restrict y = x + (size_t)n * HWC;
        const float *first = cond + (size_t)n * (size_t)ndates * HWC;
        /* Sum the dates first, then add, as torch's x + cond.sum(dim=1) rounds. */
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < HWC; i++) {
            float s = 0.0f;
            for (int d = 0; d < ndates; d++)
                s += first[(size_t)d * HWC + i];
            y[i] += s;
        }
    }
}

void condsum_add_backward(float *dcond, const float *dx, int B, int ndates, size_t HWC)
{
    const size_t copies = (size_t)B * (size_t)ndates;
#pragma omp parallel for schedule(static) if (copies * HWC >= PARALLEL_MIN)
    for (size_t k = 0; k < copies; k++)
        memcpy(dcond + k * HWC, dx + (k / (size_t)ndates) * HWC, HWC * sizeof(float));
}

void condsum_forward(float *out, const float *cond, int B, int ndates, size_t HWC)
{
#pragma omp parallel if ((size_t)B * HWC >= PARALLEL_MIN)
    for (int n = 0; n < B; n++) {
        float *restrict y = out + (size_t)n * HWC;
        const float *first = cond + (size_t)n * (size_t)ndates * HWC;
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < HWC; i++) {
            float s = 0.0f;
            for (int d = 0; d < ndates; d++)
                s += first[(size_t)d * HWC + i];
            y[i] = s;
        }
    }
}

void add_inplace(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

void scale_inplace(float *x, float s, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}
