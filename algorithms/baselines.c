/* diffcr — baseline composites: per-pixel median of the dates, and the least-cloudy date.
 *
 * These are the "no model" answers the project compares DiffCR against: a learned method has to
 * beat the median (cheap, good when each pixel is clear on most dates) and the least-cloudy date
 * (what a user without any tool would pick). See baselines.h for the exact rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/baselines.h"

#define MAX_DATES 64

static int check_args(const float *const *dates, int n, int h, int w, int c, const float *out,
                      dc_error *err)
{
    if (!dates || !out || n < 1 || h < 1 || w < 1 || c < 1)
        return dc_fail(err, DC_ERR_ARG, "baseline: bad size (%d dates, %dx%dx%d)", n, w, h, c);
    if (n > MAX_DATES)
        return dc_fail(err, DC_ERR_ARG, "baseline: at most %d dates", MAX_DATES);
    for (int d = 0; d < n; d++)
        if (!dates[d])
            return dc_fail(err, DC_ERR_ARG, "baseline: date %d has no data", d + 1);
    return DC_OK;
}

static int usable(const float *const *dates, const uint8_t *const *valid, int d, size_t p,
                  size_t i)
{
    return (!valid || !valid[d] || valid[d][p]) && !isnan(dates[d][i]);
}

int dc_baseline_median(const float *const *dates, const uint8_t *const *valid, int n, int h,
                       int w, int c, float *out, dc_error *err)
{
    int rc = check_args(dates, n, h, w, c, out, err);
    if (rc != DC_OK)
        return rc;
    size_t npix = (size_t)h * (size_t)w;
    for (size_t p = 0; p < npix; p++) {
        for (int k = 0; k < c; k++) {
            size_t i = p * (size_t)c + (size_t)k;
            double v[MAX_DATES];
            int m = 0;
            for (int d = 0; d < n; d++) {
                if (!usable(dates, valid, d, p, i))
                    continue;
                /* insertion sort: n is a handful of dates */
                double x = dates[d][i];
                int j = m++;
                while (j > 0 && v[j - 1] > x) {
                    v[j] = v[j - 1];
                    j--;
                }
                v[j] = x;
            }
            if (m == 0)
                out[i] = NAN;
            else if (m % 2)
                out[i] = (float)v[m / 2];
            else
                out[i] = (float)((v[m / 2 - 1] + v[m / 2]) / 2.0);
        }
    }
    return DC_OK;
}

int dc_baseline_least_cloudy(const float *const *dates, const uint8_t *const *valid, int n, int h,
                             int w, int c, int blue, double threshold, int block, float *out,
                             int *choice, dc_error *err)
{
    int rc = check_args(dates, n, h, w, c, out, err);
    if (rc != DC_OK)
        return rc;
    if (blue < 0 || blue >= c)
        return dc_fail(err, DC_ERR_ARG, "baseline: blue band %d is not among the %d bands",
                       blue + 1, c);
    int bw = block > 0 ? block : w, bh = block > 0 ? block : h;
    int nbx = (w + bw - 1) / bw, nby = (h + bh - 1) / bh;
    for (int by = 0; by < nby; by++) {
        for (int bx = 0; bx < nbx; bx++) {
            int y0 = by * bh, y1 = y0 + bh < h ? y0 + bh : h;
            int x0 = bx * bw, x1 = x0 + bw < w ? x0 + bw : w;
            long long best_count = -1;
            int best = 0;
            for (int d = 0; d < n; d++) {
                long long bright = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        size_t p = (size_t)y * w + x, i = p * (size_t)c + (size_t)blue;
                        if (!usable(dates, valid, d, p, i) || dates[d][i] > threshold)
                            bright++;
                    }
                if (best_count < 0 || bright < best_count) { /* strict: ties keep the earlier */
                    best_count = bright;
                    best = d;
                }
            }
            if (choice)
                choice[by * nbx + bx] = best;
            for (int y = y0; y < y1; y++) {
                size_t p = (size_t)y * w + x0;
                memcpy(out + p * c, dates[best] + p * c, (size_t)(x1 - x0) * c * sizeof *out);
            }
        }
    }
    return DC_OK;
}
