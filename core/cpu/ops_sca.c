/* diffcr — DiffCR's split simplified channel attention (SCA), forward and backward (see ops.h).
 *
 * The first half of the channels is scaled by a 1x1 map of its global mean, the second half by a 1x1
 * map of its global max, with no sigmoid. The pooling halves are strided channel views in NHWC, which
 * oneDNN only handles with reference kernels (BACKENDS.md §4.5), so pooling, the tiny matrix-vector
 * product and the channel scale are written here as passes over the pixels of each sample.
 *
 * The pixel reductions (pooling; dscale in backward) are split into one fixed, contiguous pixel range
 * per thread, accumulated in double (a 256x256 mean sums 65536 floats), and combined in thread order,
 * so the result depends only on the thread count. The max keeps PyTorch's first-occurrence argmax:
 * strict ">" inside a range and, across ranges, a later range wins only when strictly greater. */
#include "diffcr/ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/thread_partials.h"

enum { DOT_LANES = 4 };


/* sum_j a[j] * b[j] in double; independent lanes let GCC vectorise without reassociating. */
static double dot_f32(const float *a, const float *b, int n)
{
    double lane[DOT_LANES] = {0};
    int j = 0;
    for (; j + DOT_LANES <= n; j += DOT_LANES)
        for (int l = 0; l < DOT_LANES; l++)
            lane[l] += (double)a[j + l] * (double)b[j + l];
    double s = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    for (; j < n; j++)
        s += (double)a[j] * (double)b[j];
    return s;
}

/* v beats the running maximum m: strictly greater, or the first NaN (PyTorch's max propagates NaN). */
static inline int beats_max(float v, float m)
{
    return (v > m) | ((v != v) & (m == m));
}

void sca_forward(float *out, float *pooled, float *scale, int *argmax, const float *x,
                 const float *w_avg, const float *b_avg, const float *w_max, const float *b_max,
                 int N, size_t HW, int C)
{
    const int h = C / 2;
    const int max_threads = omp_get_max_threads();
    /* Per thread: one slot per (sample, pooled channel). */
    const size_t per_thread = (size_t)N * (size_t)h;
    const size_t sum_stride = slice_stride(per_thread, sizeof(double));
    const size_t max_stride = slice_stride(per_thread, sizeof(float));
    const size_t arg_stride = slice_stride(per_thread, sizeof(int));
    double *part_sum = dc_thread_scratch(0, (size_t)max_threads * sum_stride * sizeof(double));
    float *part_max = dc_thread_scratch(1, (size_t)max_threads * max_stride * sizeof(float));
    int *part_arg = dc_thread_scratch(2, (size_t)max_threads * arg_stride * sizeof(int));
    int used_threads = 1;

#pragma omp parallel num_threads(max_threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const size_t lo = HW * (size_t)t / (size_t)T, hi = HW * (size_t)(t + 1) / (size_t)T;
        if (t == 0)
            used_threads = T;
        for (int n = 0; n < N; n++) {
            const size_t slot = (size_t)n * (size_t)h;
            double *restrict sum = part_sum + (size_t)t * sum_stride + slot;
            float *restrict best = part_max + (size_t)t * max_stride + slot;
            int *restrict best_at = part_arg + (size_t)t * arg_stride + slot;
            for (int c = 0; c < h; c++) {
                sum[c] = 0.0;
                best[c] = -INFINITY;
                best_at[c] = (int)lo;
            }
            for (size_t p = lo; p < hi; p++) {
                const float *restrict row = x + ((size_t)n * HW + p) * (size_t)C;
                for (int c = 0; c < h; c++)
                    sum[c] += (double)row[c];
                for (int c = 0; c < h; c++) {
                    const float v = row[h + c];
                    const int take = beats_max(v, best[c]);
                    best[c] = take ? v : best[c];
                    best_at[c] = take ? (int)p : best_at[c];
                }
            }
        }
#pragma omp barrier

        /* Combine the ranges in thread order. An empty range (HW < threads) holds -inf at index lo,
         * which any value beats and which, for leading empty ranges (lo = 0), is also the right answer
         * for an all -inf channel. */
#pragma omp for schedule(static)
        for (size_t k = 0; k < (size_t)N * (size_t)h; k++) {
            const size_t n = k / (size_t)h, c = k % (size_t)h;
            double s = 0.0;
            float m = -INFINITY;
            int m_at = 0;
            for (int u = 0; u < used_threads; u++) {
                const size_t at = n * (size_t)h + c;
                s += part_sum[(size_t)u * sum_stride + at];
                const float v = part_max[(size_t)u * max_stride + at];
                if (u == 0 || beats_max(v, m)) {
                    m = v;
                    m_at = part_arg[(size_t)u * arg_stride + at];
                }
            }
            pooled[n * (size_t)C + c] = (float)(s / (double)HW);
            pooled[n * (size_t)C + (size_t)h + c] = m;
            argmax[n * (size_t)h + c] = m_at;
        }

#pragma omp for schedule(static)
        for (size_t k = 0; k < (size_t)N * (size_t)C; k++) {
            const size_t n = k / (size_t)C;
            const int c = (int)(k % (size_t)C);
            const int is_max = c >= h, o = is_max ? c - h : c;
            const float *w_row = (is_max ? w_max : w_avg) + (size_t)o * (size_t)h;
            const float *in = pooled + n * (size_t)C + (is_max ? (size_t)h : 0);
            scale[k] = (float)((double)(is_max ? b_max : b_avg)[o] + dot_f32(w_row, in, h));
        }

#pragma omp for schedule(static)
        for (size_t q = 0; q < (size_t)N * HW; q++) {
            const float *restrict s = scale + (q / HW) * (size_t)C;
            const float *restrict row = x + q * (size_t)C;
            float *restrict y = out + q * (size_t)C;
            for (int c = 0; c < C; c++)
                y[c] = row[c] * s[c];
        }
    }
}

void sca_backward(float *dx, float *dw_avg, float *db_avg, float *dw_max, float *db_max,
                  const float *dout, const float *x, const float *pooled, const float *scale,
                  const int *argmax, const float *w_avg, const float *w_max, int N, size_t HW, int C)
{
    const int h = C / 2;
    const size_t NC = (size_t)N * (size_t)C;
    const int max_threads = omp_get_max_threads();
    const size_t part_stride = slice_stride(NC, sizeof(double)); /* per thread: dscale partials [N][C] */
    double *part = dc_thread_scratch(0, (size_t)max_threads * part_stride * sizeof(double));
    double *dscale = dc_thread_scratch(1, NC * sizeof(double));
    /* dpooled spread back over the pixels: the mean half adds dpooled/HW to every pixel, the max
     * half adds dpooled at the argmax only (done after the pixel pass). */
    float *spread = dc_thread_scratch(2, NC * sizeof(float));
    float *dpooled = dc_thread_scratch(3, NC * sizeof(float));
    int used_threads = 1;

#pragma omp parallel num_threads(max_threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const size_t lo = HW * (size_t)t / (size_t)T, hi = HW * (size_t)(t + 1) / (size_t)T;
        if (t == 0)
            used_threads = T;
        /* dscale[n,c] = sum over p of dout * x */
        for (int n = 0; n < N; n++) {
            double *restrict acc = part + (size_t)t * part_stride + (size_t)n * (size_t)C;
            for (int c = 0; c < C; c++)
                acc[c] = 0.0;
            for (size_t p = lo; p < hi; p++) {
                const size_t at = ((size_t)n * HW + p) * (size_t)C;
                const float *restrict g = dout + at, *restrict v = x + at;
                for (int c = 0; c < C; c++)
                    acc[c] += (double)(g[c] * v[c]);
            }
        }
#pragma omp barrier

#pragma omp for schedule(static)
        for (size_t k = 0; k < NC; k++) {
            double s = 0.0;
            for (int u = 0; u < used_threads; u++)
                s += part[(size_t)u * part_stride + k];
            dscale[k] = s;
        }

        /* dpooled[n, i] = sum over o of W[o][i] * dscale[n, o], per half. */
#pragma omp for schedule(static)
        for (size_t k = 0; k < NC; k++) {
            const size_t n = k / (size_t)C;
            const int c = (int)(k % (size_t)C);
            const int is_max = c >= h, i = is_max ? c - h : c;
            const float *w = is_max ? w_max : w_avg;
            const double *ds = dscale + n * (size_t)C + (is_max ? (size_t)h : 0);
            double s = 0.0;
            for (int o = 0; o < h; o++)
                s += (double)w[(size_t)o * (size_t)h + (size_t)i] * ds[o];
            dpooled[k] = (float)s;
            spread[k] = is_max ? 0.0f : (float)(s / (double)HW);
        }

        /* Parameter gradients: a sum over the N samples, in sample order. */
#pragma omp for schedule(static) nowait
        for (size_t k = 0; k < (size_t)h * (size_t)h * 2; k++) {
            const int is_max = k >= (size_t)h * (size_t)h;
            const size_t kk = is_max ? k - (size_t)h * (size_t)h : k;
            const size_t o = kk / (size_t)h, i = kk % (size_t)h, off = is_max ? (size_t)h : 0;
            double s = 0.0;
            for (int n = 0; n < N; n++) {
                const size_t row = (size_t)n * (size_t)C + off;
                s += dscale[row + o] * (double)pooled[row + i];
            }
            (is_max ? dw_max : dw_avg)[kk] = (float)s;
        }
#pragma omp for schedule(static)
        for (size_t k = 0; k < (size_t)C; k++) {
            const int is_max = k >= (size_t)h;
            double s = 0.0;
            for (int n = 0; n < N; n++)
                s += dscale[(size_t)n * (size_t)C + k];
            (is_max ? db_max : db_avg)[is_max ? k - (size_t)h : k] = (float)s;
        }

#pragma omp for schedule(static)
        for (size_t q = 0; q < (size_t)N * HW; q++) {
            const size_t n = q / HW;
            const float *restrict s = scale + n * (size_t)C, *restrict add = spread + n * (size_t)C;
            const float *restrict g = dout + q * (size_t)C;
            float *restrict d = dx + q * (size_t)C;
            for (int c = 0; c < C; c++)
                d[c] = g[c] * s[c] + add[c];
        }

        /* Each (n, c) owns a distinct element, so the argmax scatter needs no ordering. */
#pragma omp for schedule(static)
        for (size_t k = 0; k < (size_t)N * (size_t)h; k++) {
            const size_t n = k / (size_t)h, c = (size_t)h + k % (size_t)h;
            dx[(n * HW + (size_t)argmax[k]) * (size_t)C + c] += dpooled[n * (size_t)C + c];
        }
    }
}
