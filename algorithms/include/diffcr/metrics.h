/* diffcr — image quality metrics for judging a decloud result against a clear reference.
 *
 * Images are float arrays [h][w][c] (channels last, row-major). Everything here is plain C with no
 * GDAL; the raster reading for diffcr-evaluate is at the end (metrics_raster.c) and takes paths.
 *
 * Three families, matching what the project reports (DIFFCR.md §7):
 *   - MAE / RMSE / PSNR over all channels (optionally inside a mask), per band and overall. The
 *     overall PSNR is 10·log10(R² / MSE) with the MSE over every value of every channel, as
 *     scikit-image's peak_signal_noise_ratio computes it (not the mean of per-band PSNRs).
 *   - SSIM exactly as scikit-image's structural_similarity computes it: the Gaussian window
 *     (sigma 1.5, truncate 3.5 -> 11x11, population covariance: Wang et al. 2004, the paper's
 *     setting) or the uniform 7x7 window with sample covariance (skimage's default), K1 = 0.01,
 *     K2 = 0.03, scipy.ndimage 'reflect' boundaries, mean over the map cropped by (win-1)/2 on each
 *     side, then the mean over channels.
 *   - The DiffCR paper protocol: each image on its own goes through get_rgb (clip to 2000 DN, global
 *     min-max stretch to uint8 with truncation), then PSNR with data range 255 and Gaussian SSIM.
 *
 * PSNR of identical images (MSE = 0) is +INFINITY, as skimage returns (numpy divides by zero).
 * The JSON writer prints it as the string "inf" (valid JSON; Python's float("inf") reads it). */
#ifndef DIFFCR_METRICS_H
#define DIFFCR_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DC_METRICS_MAX_BANDS 16

/* ---- MAE / RMSE / PSNR (metrics.c) ---- */

typedef struct dc_error_stats {
    double mae;   /* mean |a - b| */
    double mse;   /* mean (a - b)² */
    double rmse;  /* sqrt(mse) */
    double psnr;  /* 10·log10(range² / mse) in dB; +INFINITY when mse == 0; NAN when count == 0 */
    long long count; /* values compared (pixels x channels) */
} dc_error_stats;

/* Differences of result `a` against reference `b` ([h][w][c]). mask: [h][w], nonzero = compare
 * this pixel, or NULL for all pixels. Pixels where either image is NaN in any channel are skipped
 * like masked ones. per_band: c entries or NULL; overall: over all compared values, or NULL.
 * With no pixel left, count is 0 and the values are NAN (not an error). */
int dc_error_stats_compute(const float *a, const float *b, const uint8_t *mask, int h, int w,
                           int c, double data_range, dc_error_stats *per_band,
                           dc_error_stats *overall, dc_error *err);

/* ---- SSIM (metrics_ssim.c) ---- */

typedef enum dc_ssim_window {
    DC_SSIM_GAUSSIAN = 0, /* gaussian_weights=True, sigma=1.5, use_sample_covariance=False */
    DC_SSIM_UNIFORM = 1   /* skimage's default: 7x7 box, use_sample_covariance=True */
} dc_ssim_window;

typedef struct dc_ssim_options {
    dc_ssim_window window;
    double sigma;          /* Gaussian sigma (1.5) */
    double truncate;       /* Gaussian radius = int(truncate·sigma + 0.5) (3.5 -> 5, 11 taps) */
    int win_size;          /* uniform window side, odd (7) */
    int sample_covariance; /* 1: normalise by N-1 (cov_norm = N/(N-1)), 0: by N */
    double k1, k2;         /* 0.01, 0.03 */
} dc_ssim_options;

/* Fill the scikit-image settings for `window` (see the enum). */
void dc_ssim_options_init(dc_ssim_options *o, dc_ssim_window window);

/* Side of the window the options give (11 for the Gaussian default, 7 for the uniform). */
int dc_ssim_window_side(const dc_ssim_options *o);

/* Mean SSIM of a against b ([h][w][c]) with the given data range; opts NULL = Gaussian defaults.
 * per_band: c entries or NULL. map: [h][w][c] full SSIM map (reflect boundaries) or NULL.
 * Fails (DC_ERR_SHAPE) when h or w is smaller than the window, as skimage does. Symmetric in a, b
 * up to rounding. Computed in double whatever the input (skimage 0.18 and uint8 input: float64). */
int dc_ssim(const float *a, const float *b, int h, int w, int c, double data_range,
            const dc_ssim_options *opts, double *mean, double *per_band, float *map,
            dc_error *err);

/* ---- DiffCR paper protocol (metrics_paper.c, DIFFCR.md §7) ---- */

#define DC_PAPER_CLIP_DN 2000 /* get_rgb clips each band to [0, 2000] DN (reflectance 0.2) */

/* get_rgb from model-range values x ([h][w][c], normally c = 3, x = DN/5000 - 1): the float32
 * steps of the original (x·0.5 + 0.5, ×10000 + 0.5, clamp [0, 10000], truncate to uint16), then the
 * stretch below. NaN counts as 0 DN. out: [h][w][c] uint8. */
int dc_paper_rgb8_from_model(const float *x, int h, int w, int c, uint8_t *out, dc_error *err);

/* The same from DN (reflectance × 10000) floats: DN = floor(v + 0.5) clamped to [0, 10000] (what
 * the model-range route gives for DN inputs), then the stretch. */
int dc_paper_rgb8_from_dn(const float *dn, int h, int w, int c, uint8_t *out, dc_error *err);

/* The stretch on integer DN (already in [0, 10000]): clip to [0, 2000], subtract the minimum over
 * all bands, then uint8(255 · (v / max)) with truncation (division first, then the product, in
 * double, as numpy evaluates `255 * (rgb / max)`); max == 0 gives 255 everywhere, as get_rgb does. */
void dc_paper_stretch_u16(const uint16_t *dn, size_t n, uint8_t *out);

typedef struct dc_paper_metrics {
    double psnr; /* dB, data range 255 (uint8), +INFINITY for identical 8-bit images */
    double ssim; /* Gaussian SSIM (DC_SSIM_GAUSSIAN), data range 255, mean over channels */
} dc_paper_metrics;

/* PSNR and SSIM of two get_rgb images (gt8, out8: [h][w][c] uint8), as evaluation/eval.py does
 * with compare_psnr / compare_ssim. */
int dc_paper_metrics_u8(const uint8_t *out8, const uint8_t *gt8, int h, int w, int c,
                        dc_paper_metrics *m, dc_error *err);
/* The whole protocol: GT and prediction stretched separately, then the metrics above. */
int dc_paper_metrics_model(const float *out, const float *gt, int h, int w, int c,
                           dc_paper_metrics *m, dc_error *err);
int dc_paper_metrics_dn(const float *out_dn, const float *gt_dn, int h, int w, int c,
                        dc_paper_metrics *m, dc_error *err);

/* ---- Per-image report (metrics_report.c) ---- */

typedef struct dc_metrics_report {
    int h, w, bands;
    double scale;          /* DN per unit reflectance (10000) */
    long long pixels;      /* h·w */
    long long compared;    /* pixels used for MAE/RMSE/PSNR (mask, nodata, NaN excluded) */
    int masked;            /* a mask was given */
    /* reflectance (DN / scale), data range 1.0 */
    dc_error_stats band[DC_METRICS_MAX_BANDS];
    dc_error_stats all;
    int have_ssim;         /* 0 when the image is smaller than the 11x11 window */
    double ssim;           /* Gaussian (paper settings), data range 1.0 */
    double ssim_band[DC_METRICS_MAX_BANDS];
    double ssim_uniform;   /* uniform 7x7, sample covariance (skimage defaults); NAN if too small */
    /* paper protocol (§7): only for exactly 3 bands (R, G, B) and images of at least 11x11 */
    int have_paper;
    dc_paper_metrics paper;
} dc_metrics_report;

/* Fill `rep` for result vs reference, both in DN ([h][w][c] floats, c <= DC_METRICS_MAX_BANDS).
 * mask: [h][w] nonzero = use (MAE/RMSE/PSNR only), or NULL. SSIM and the paper protocol always use
 * the whole image, as the paper does. */
int dc_metrics_report_dn(const float *result_dn, const float *ref_dn, const uint8_t *mask, int h,
                         int w, int c, double scale, dc_metrics_report *rep, dc_error *err);

/* ---- Output formats (metrics_format.c) ---- */

/* Names shown for the bands (may be NULL: "band N"); title/result/reference label the output. */
typedef struct dc_metrics_labels {
    const char *result, *reference, *mask;
    const int *band_numbers; /* raster band numbers, rep->bands entries, or NULL */
} dc_metrics_labels;

void dc_metrics_write_text(FILE *f, const dc_metrics_report *rep, const dc_metrics_labels *lb);
void dc_metrics_write_json(FILE *f, const dc_metrics_report *rep, const dc_metrics_labels *lb);
void dc_metrics_write_html(FILE *f, const dc_metrics_report *rep, const dc_metrics_labels *lb);

/* ---- Raster reading for the evaluation tools (metrics_raster.c, GDAL) ---- */

typedef struct dc_eval_raster {
    int w, h, c;       /* size and bands read */
    float *data;       /* [h][w][c] */
    uint8_t *valid;    /* [h][w]: 0 where any band is nodata (NULL when no band has nodata) */
    int data_type;     /* GDALDataType of the first band read */
    double geotransform[6];
    int have_geotransform;
    char *wkt;         /* projection, or NULL */
} dc_eval_raster;

/* Read `nb` bands (1-based numbers) of `path`, channels last; nb = 0 (bands NULL) reads the first
 * 3 bands, or all bands of a file with fewer (r->c says how many). Errors name the file. */
int dc_eval_raster_read(const char *path, const int *bands, int nb, dc_eval_raster *r,
                        dc_error *err);
/* Read band 1 of a mask raster: out[h][w] = 1 where nonzero and not nodata. Size must be w x h. */
int dc_eval_mask_read(const char *path, int w, int h, uint8_t **out, dc_error *err);
void dc_eval_raster_free(dc_eval_raster *r);

/* Write [h][w][c] values as a GTiff with the grid of `like` and data type `data_type` (values
 * rounded and clipped for integer types). Written to a temporary sibling and renamed: the output
 * appears complete or not at all. */
int dc_eval_raster_write(const char *path, const dc_eval_raster *like, const float *data, int c,
                         int data_type, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
