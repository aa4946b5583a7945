/* diffcr — the DiffCR paper's evaluation protocol (DIFFCR.md §7).
 *
 * run.py saves GT and prediction as 8-bit PNGs through core/util.get_rgb, each image stretched on
 * its own; evaluation/eval.py then takes compare_psnr (data range 255 from uint8) and compare_ssim
 * (multichannel, gaussian_weights, sigma 1.5, use_sample_covariance False). get_rgb, step by step:
 *   torch float32: x·0.5 + 0.5, then ·10000 + 0.5, clamp [0, 10000]; numpy astype(uint16) truncates;
 *   np.clip(band, 0, 2000) per band; rgb - nanmin(rgb) (one minimum over all bands);
 *   max == 0 ? 255 everywhere : 255 · (rgb / max) in float64; astype(uint8) truncates.
 * The float32 steps are kept as separate float operations (one rounding each, as torch's separate
 * kernels do), so the uint16 values match the original bit for bit. */
#include <math.h>
#include <stdlib.h>

#include "diffcr/metrics.h"

void dc_paper_stretch_u16(const uint16_t *dn, size_t n, uint8_t *out)
{
    if (n == 0)
        return;
    unsigned lo = DC_PAPER_CLIP_DN, hi = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = dn[i] > DC_PAPER_CLIP_DN ? DC_PAPER_CLIP_DN : dn[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    unsigned range = hi - lo; /* max of (rgb - min) */
    for (size_t i = 0; i < n; i++) {
        unsigned v = dn[i] > DC_PAPER_CLIP_DN ? DC_PAPER_CLIP_DN : dn[i];
        if (range == 0) {
            out[i] = 255; /* get_rgb's "saturated image" branch */
            continue;
        }
        /* numpy: 255 * (rgb / max) — the quotient first, rounded, then the product */
        double q = (double)(v - lo) / (double)range;
        out[i] = (uint8_t)(255.0 * q);
    }
}

/* One model-range value to get_rgb's uint16 DN, in torch's float32 steps. volatile keeps each
 * product and sum rounded to float on its own (no fused multiply-add, no wider temporaries). */
static uint16_t model_to_dn(float x)
{
    if (isnan(x))
        return 0; /* NaN has no uint16 value; numpy's cast gives 0 on common platforms */
    volatile float t = x * 0.5f;
    t = t + 0.5f;
    t = t * 10000.0f;
    t = t + 0.5f;
    float v = t;
    v = v < 0.0f ? 0.0f : (v > 10000.0f ? 10000.0f : v);
    return (uint16_t)v; /* truncation, as astype(np.uint16) */
}

static uint16_t dn_to_dn(float x)
{
    if (isnan(x))
        return 0;
    double v = floor((double)x + 0.5);
    v = v < 0.0 ? 0.0 : (v > 10000.0 ? 10000.0 : v);
    return (uint16_t)v;
}

static int rgb8(const float *x, int h, int w, int c, uint8_t *out, int model, dc_error *err)
{
    if (!x || !out || h < 1 || w < 1 || c < 1)
        return dc_fail(err, DC_ERR_ARG, "get_rgb: bad image size %dx%dx%d", w, h, c);
    size_t n = (size_t)h * (size_t)w * (size_t)c;
    uint16_t *dn = malloc(n * sizeof *dn);
    if (!dn)
        return dc_fail(err, DC_ERR_NOMEM, "get_rgb: out of memory");
    for (size_t i = 0; i < n; i++)
        dn[i] = model ? model_to_dn(x[i]) : dn_to_dn(x[i]);
    dc_paper_stretch_u16(dn, n, out);
    free(dn);
    return DC_OK;
}

int dc_paper_rgb8_from_model(const float *x, int h, int w, int c, uint8_t *out, dc_error *err)
{
    return rgb8(x, h, w, c, out, 1, err);
}

int dc_paper_rgb8_from_dn(const float *dn, int h, int w, int c, uint8_t *out, dc_error *err)
{
    return rgb8(dn, h, w, c, out, 0, err);
}

int dc_paper_metrics_u8(const uint8_t *out8, const uint8_t *gt8, int h, int w, int c,
                        dc_paper_metrics *m, dc_error *err)
{
    if (!out8 || !gt8 || !m || h < 1 || w < 1 || c < 1 || c > DC_METRICS_MAX_BANDS)
        return dc_fail(err, DC_ERR_ARG, "paper metrics: bad image size %dx%dx%d", w, h, c);
    size_t n = (size_t)h * (size_t)w * (size_t)c;
    float *fo = malloc(n * sizeof *fo), *fg = malloc(n * sizeof *fg);
    if (!fo || !fg) {
        free(fo);
        free(fg);
        return dc_fail(err, DC_ERR_NOMEM, "paper metrics: out of memory");
    }
    for (size_t i = 0; i < n; i++) { /* uint8 -> float is exact */
        fo[i] = out8[i];
        fg[i] = gt8[i];
    }
    dc_error_stats st;
    /* compare_psnr(gt, out): data range 255 from the uint8 dtype */
    int rc = dc_error_stats_compute(fo, fg, NULL, h, w, c, 255.0, NULL, &st, err);
    if (rc == DC_OK) {
        m->psnr = st.psnr;
        rc = dc_ssim(fo, fg, h, w, c, 255.0, NULL, &m->ssim, NULL, NULL, err);
    }
    free(fo);
    free(fg);
    return rc;
}

static int paper_metrics(const float *out, const float *gt, int h, int w, int c, int model,
                         dc_paper_metrics *m, dc_error *err)
{
    if (h < 1 || w < 1 || c < 1)
        return dc_fail(err, DC_ERR_ARG, "paper metrics: bad image size %dx%dx%d", w, h, c);
    size_t n = (size_t)h * (size_t)w * (size_t)c;
    uint8_t *o8 = malloc(n), *g8 = malloc(n);
    int rc = DC_OK;
    if (!o8 || !g8)
        rc = dc_fail(err, DC_ERR_NOMEM, "paper metrics: out of memory");
    if (rc == DC_OK)
        rc = rgb8(out, h, w, c, o8, model, err);
    if (rc == DC_OK)
        rc = rgb8(gt, h, w, c, g8, model, err); /* each image stretched on its own */
    if (rc == DC_OK)
        rc = dc_paper_metrics_u8(o8, g8, h, w, c, m, err);
    free(o8);
    free(g8);
    return rc;
}

int dc_paper_metrics_model(const float *out, const float *gt, int h, int w, int c,
                           dc_paper_metrics *m, dc_error *err)
{
    return paper_metrics(out, gt, h, w, c, 1, m, err);
}

int dc_paper_metrics_dn(const float *out_dn, const float *gt_dn, int h, int w, int c,
                        dc_paper_metrics *m, dc_error *err)
{
    return paper_metrics(out_dn, gt_dn, h, w, c, 0, m, err);
}
