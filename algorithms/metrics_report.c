/* diffcr — one image's full report: reflectance errors, SSIM, and the paper protocol.
 *
 * Reflectance = DN / scale (scale 10000 for Sentinel-2 L1C/L2A and Sen2_MTC, DIFFCR.md §5), data
 * range 1.0 for PSNR and SSIM: the physical comparison. The paper protocol (§7) starts again from
 * DN, so its numbers are comparable with the published table (19.150 dB / 0.671 for DiffCR). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/metrics.h"

int dc_metrics_report_dn(const float *result_dn, const float *ref_dn, const uint8_t *mask, int h,
                         int w, int c, double scale, dc_metrics_report *rep, dc_error *err)
{
    if (!result_dn || !ref_dn || !rep || h < 1 || w < 1 || c < 1 || c > DC_METRICS_MAX_BANDS)
        return dc_fail(err, DC_ERR_ARG, "metrics: bad image size %dx%dx%d (at most %d bands)", w,
                       h, c, DC_METRICS_MAX_BANDS);
    if (!(scale > 0) || !isfinite(scale))
        return dc_fail(err, DC_ERR_ARG, "metrics: the DN scale must be positive");
    memset(rep, 0, sizeof *rep);
    rep->h = h;
    rep->w = w;
    rep->bands = c;
    rep->scale = scale;
    rep->pixels = (long long)h * w;
    rep->masked = mask != NULL;

    size_t n = (size_t)h * (size_t)w * (size_t)c;
    float *ra = malloc(n * sizeof *ra), *rb = malloc(n * sizeof *rb);
    if (!ra || !rb) {
        free(ra);
        free(rb);
        return dc_fail(err, DC_ERR_NOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        ra[i] = (float)(result_dn[i] / scale);
        rb[i] = (float)(ref_dn[i] / scale);
    }
    int rc = dc_error_stats_compute(ra, rb, mask, h, w, c, 1.0, rep->band, &rep->all, err);
    rep->compared = rc == DC_OK ? rep->all.count / c : 0;

    dc_ssim_options uni;
    dc_ssim_options_init(&uni, DC_SSIM_UNIFORM);
    rep->ssim = rep->ssim_uniform = NAN;
    for (int k = 0; k < c; k++)
        rep->ssim_band[k] = NAN;
    if (rc == DC_OK && h >= 11 && w >= 11) {
        rep->have_ssim = 1;
        rc = dc_ssim(ra, rb, h, w, c, 1.0, NULL, &rep->ssim, rep->ssim_band, NULL, err);
        if (rc == DC_OK)
            rc = dc_ssim(ra, rb, h, w, c, 1.0, &uni, &rep->ssim_uniform, NULL, NULL, err);
    } else if (rc == DC_OK && h >= 7 && w >= 7) {
        rc = dc_ssim(ra, rb, h, w, c, 1.0, &uni, &rep->ssim_uniform, NULL, NULL, err);
    }
    free(ra);
    free(rb);

    rep->paper.psnr = rep->paper.ssim = NAN;
    if (rc == DC_OK && c == 3 && rep->have_ssim) { /* get_rgb takes exactly R, G, B */
        rc = dc_paper_metrics_dn(result_dn, ref_dn, h, w, c, &rep->paper, err);
        rep->have_paper = rc == DC_OK;
    }
    return rc;
}
