/* diffcr — MAE, RMSE and PSNR of a result against a reference ([h][w][c] floats), per band and
 * over all bands, optionally inside a mask.
 *
 * PSNR follows scikit-image's peak_signal_noise_ratio: 10·log10(data_range² / MSE) with the MSE
 * taken over every compared value (all channels together), accumulated in double. MSE = 0 gives
 * +INFINITY (skimage returns inf there too). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/metrics.h"

static void finish(dc_error_stats *s, double sum_abs, double sum_sq, long long n, double range)
{
    s->count = n;
    if (n == 0) {
        s->mae = s->mse = s->rmse = s->psnr = NAN;
        return;
    }
    s->mae = sum_abs / (double)n;
    s->mse = sum_sq / (double)n;
    s->rmse = sqrt(s->mse);
    s->psnr = s->mse > 0 ? 10.0 * log10(range * range / s->mse) : INFINITY;
}

int dc_error_stats_compute(const float *a, const float *b, const uint8_t *mask, int h, int w,
                           int c, double data_range, dc_error_stats *per_band,
                           dc_error_stats *overall, dc_error *err)
{
    if (!a || !b || h < 1 || w < 1 || c < 1 || c > DC_METRICS_MAX_BANDS)
        return dc_fail(err, DC_ERR_ARG, "error statistics: bad image size %dx%dx%d", w, h, c);
    if (!(data_range > 0) || !isfinite(data_range))
        return dc_fail(err, DC_ERR_ARG, "error statistics: data range must be positive");
    double sum_abs[DC_METRICS_MAX_BANDS] = {0}, sum_sq[DC_METRICS_MAX_BANDS] = {0};
    long long n = 0;
    size_t npix = (size_t)h * (size_t)w;
    for (size_t p = 0; p < npix; p++) {
        if (mask && !mask[p])
            continue;
        const float *pa = a + p * (size_t)c, *pb = b + p * (size_t)c;
        int finite = 1;
        for (int k = 0; k < c; k++)
            finite &= !isnan(pa[k]) && !isnan(pb[k]);
        if (!finite)
            continue;
        for (int k = 0; k < c; k++) {
            double d = (double)pa[k] - (double)pb[k];
            sum_abs[k] += fabs(d);
            sum_sq[k] += d * d;
        }
        n++;
    }
    double all_abs = 0, all_sq = 0;
    for (int k = 0; k < c; k++) {
        if (per_band)
            finish(&per_band[k], sum_abs[k], sum_sq[k], n, data_range);
        all_abs += sum_abs[k];
        all_sq += sum_sq[k];
    }
    if (overall)
        finish(overall, all_abs, all_sq, n * c, data_range);
    return DC_OK;
}
