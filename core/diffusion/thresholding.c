/* diffcr — dynamic thresholding of x0 predictions (Imagen; DPM-Solver's correcting_x0_fn).
 *
 * Per sample: s = max(quantile_ratio(|x0|), max_val), x0 = clamp(x0, -s, s) / s (DIFFCR.md §4.2).
 * The quantile is torch.quantile's default, linear interpolation at rank q*(n-1). For a
 * 3x256x256 tile n = 196608 and the rank is ~195624: a full sort per model call would cost more
 * than the thresholding itself needs, so the two neighbouring order statistics come from one
 * quickselect (the k-th smallest, with everything above it in the upper part) and a scan for the
 * minimum of the upper part (the (k+1)-th smallest). Same values as sorting, O(n).
 *
 * torch computes the rank in the tensor's dtype: q is made a float32 scalar tensor and
 * multiplied by n-1 in float32, so for large n the fractional weight differs from the double
 * one in the 3rd digit (195623.96875 vs 195623.965). float32_rank reproduces that. */
#include "diffcr/sampler.h"

#include <math.h>

static inline void swap_float(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* Reorder v so that v[k] is the k-th smallest (0-based), v[<k] <= v[k] <= v[>k]. Hoare
 * partition around a median-of-three pivot; handles runs of equal values without degrading.
 * No NaN in v (callers map NaN to +inf). */
static float select_kth(float *v, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t lo = 0, hi = n - 1;
    while (hi > lo) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap_float(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swap_float(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swap_float(&v[hi], &v[mid]);
        const float pivot = v[mid];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                swap_float(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        /* v[lo..j] <= pivot <= v[i..hi], and anything strictly between j and i equals pivot. */
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

float dc_quantile_select(float *v, size_t n, double q, int float32_rank)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i]))
            v[i] = INFINITY;
    size_t below;
    double weight;
    if (float32_rank) {
        float rank = (float)q * (float)(n - 1);
        below = (size_t)rank;
        weight = (double)(rank - (float)below);
    } else {
        double rank = q * (double)(n - 1);
        below = (size_t)rank;
        weight = rank - (double)below;
    }
    if (below > n - 1) { /* q > 1 or rounding: clamp to the maximum */
        below = n - 1;
        weight = 0.0;
    }
    float lo = select_kth(v, (ptrdiff_t)n, (ptrdiff_t)below);
    float hi = lo;
    if (weight > 0.0 && below + 1 < n) {
        hi = v[below + 1];
        for (size_t i = below + 2; i < n; i++)
            if (v[i] < hi)
                hi = v[i];
    }
    if (float32_rank) {
        /* torch.lerp on float: the two-sided form keeps the endpoints exact */
        float w = (float)weight;
        return w < 0.5f ? lo + w * (hi - lo) : hi - (hi - lo) * (1.0f - w);
    }
    if (weight == 0.0)
        return lo;
    return (float)((double)lo + weight * ((double)hi - (double)lo));
}

void dc_dynamic_threshold(float *x0, int B, size_t n, double ratio, double max_val,
                          int float32_rank, float *scratch, float *s_out)
{
    for (int b = 0; b < B; b++) {
        float *xb = x0 + (size_t)b * n;
        for (size_t i = 0; i < n; i++)
            scratch[i] = fabsf(xb[i]);
        float s = dc_quantile_select(scratch, n, ratio, float32_rank);
        float floor_s = (float)max_val;
        if (!(s >= floor_s)) /* torch.maximum: NaN would propagate; NaN was mapped to inf */
            s = floor_s;
        if (s_out)
            s_out[b] = s;
        for (size_t i = 0; i < n; i++) {
            float v = xb[i];
            v = v < -s ? -s : v;
            v = v > s ? s : v;
            xb[i] = v / s;
        }
    }
}
