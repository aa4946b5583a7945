/* diffcr — cloud simulator: per-date parameters, threshold calibration and the pixel loop
 * (the model is described in include/diffcr/cloud_sim.h; the noise fields are in
 * cloud_sim_fields.c).
 *
 * Per date and pixel, in physical order: surface change (phenology) -> cloud shadow -> haze ->
 * cirrus -> cumulus -> sensor gain/offset -> clip. Computed in double, stored as float; no state
 * outside the call, so results depend only on (options, seed, clear pixels, absolute position). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_sim_internal.h"
#include "cloud_sim_noise.h"

/* Indices of the scalar draws of a date (dc_noise_uniform's `what`). */
enum {
    DRAW_COVER = 1, DRAW_CIRRUS_COVER, DRAW_CIRRUS_STRENGTH, DRAW_CIRRUS_ANGLE, DRAW_HAZE,
    DRAW_HEIGHT, DRAW_DARKNESS, DRAW_BRIGHTNESS, DRAW_PHENOLOGY, DRAW_GAIN = 100,
    DRAW_OFFSET = 200
};
/* Layers of noise keys. */
enum { KEY_CUMULUS = 1, KEY_WARP_X, KEY_WARP_Y, KEY_CIRRUS, KEY_HAZE, KEY_PHENOLOGY };

/* Per band kind (OTHER, BLUE, GREEN, RED, NIR). Clouds are spectrally flat with a slight blue
 * excess (Rayleigh above the cloud); haze is path radiance, roughly lambda^-2 (strong in blue,
 * weak in NIR); shadows are lit by blue skylight, so blue darkens less; vegetation change moves
 * NIR and red in opposite directions. */
static const double cloud_tint[5] = {1.0, 1.08, 1.03, 1.0, 0.95};
static const double haze_reflectance[5] = {0.03, 0.05, 0.035, 0.025, 0.012};
static const double cirrus_reflectance[5] = {0.5, 0.56, 0.52, 0.50, 0.45};
static const double shadow_response[5] = {0.95, 0.85, 0.93, 1.0, 1.0};
static const double phenology_response[5] = {0.0, -0.2, 0.15, -0.5, 1.0};

void dc_cloud_sim_defaults(dc_cloud_sim_options *o)
{
    memset(o, 0, sizeof *o);
    o->ndates = 3;
    o->cover_min = 0.1;
    o->cover_max = 0.6;
    o->sun_azimuth_deg = 160.0;
    o->sun_elevation_deg = 40.0;
    o->cloud_height_m = 1000.0;
    o->pixel_size_m = 10.0;
    o->dn_scale = 10000.0;
    o->max_dn = 65535.0;
    o->cloud_scale_px = 160.0;
    o->thick = o->cirrus = o->haze = o->shadows = o->radiometric = o->phenology = 1;
    o->cirrus_max_cover = 0.15;
    o->haze_max = 1.0;
    o->gain_max = 0.03;
    o->offset_max = 0.002;
    o->phenology_max = 0.15;
}

static int in_range(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

int dc_cloud_sim_check(const dc_cloud_sim_options *o, dc_error *err)
{
    if (!o)
        return dc_fail(err, DC_ERR_ARG, "cloud simulator: no options");
    if (o->ndates < 1 || o->ndates > DC_CLOUD_SIM_MAX_DATES)
        return dc_fail(err, DC_ERR_ARG, "number of dates %d out of range 1..%d", o->ndates,
                       DC_CLOUD_SIM_MAX_DATES);
    if (!in_range(o->cover_min, 0, 1) || !in_range(o->cover_max, 0, 1) ||
        o->cover_min > o->cover_max)
        return dc_fail(err, DC_ERR_ARG, "cloud cover %g,%g must satisfy 0 <= MIN <= MAX <= 1",
                       o->cover_min, o->cover_max);
    if (!in_range(o->sun_azimuth_deg, -360, 360))
        return dc_fail(err, DC_ERR_ARG, "sun azimuth %g out of range -360..360",
                       o->sun_azimuth_deg);
    if (!in_range(o->sun_elevation_deg, 5, 90))
        return dc_fail(err, DC_ERR_ARG, "sun elevation %g out of range 5..90",
                       o->sun_elevation_deg);
    if (!in_range(o->cloud_height_m, 0, 20000))
        return dc_fail(err, DC_ERR_ARG, "cloud height %g out of range 0..20000 m",
                       o->cloud_height_m);
    if (!in_range(o->pixel_size_m, 1e-3, 1e6))
        return dc_fail(err, DC_ERR_ARG, "pixel size %g must be positive", o->pixel_size_m);
    if (!in_range(o->dn_scale, 1e-6, 1e12) || !in_range(o->max_dn, 1e-6, 1e38))
        return dc_fail(err, DC_ERR_ARG, "DN scale %g and maximum %g must be positive",
                       o->dn_scale, o->max_dn);
    if (!in_range(o->cloud_scale_px, 4, 1e6))
        return dc_fail(err, DC_ERR_ARG, "cloud scale %g px must be at least 4",
                       o->cloud_scale_px);
    if (!in_range(o->cirrus_max_cover, 0, 1) || !in_range(o->haze_max, 0, 10) ||
        !in_range(o->gain_max, 0, 0.5) || !in_range(o->offset_max, 0, 0.5) ||
        !in_range(o->phenology_max, 0, 0.5))
        return dc_fail(err, DC_ERR_ARG, "cloud simulator: an amplitude option is out of range");
    if (o->frame_w < 0 || o->frame_h < 0 || (o->frame_w > 0) != (o->frame_h > 0))
        return dc_fail(err, DC_ERR_ARG, "calibration frame %dx%d is not a valid size",
                       o->frame_w, o->frame_h);
    return DC_OK;
}

static int band_kind_index(const int *band_kind, int b)
{
    int k = band_kind ? band_kind[b] : DC_BAND_OTHER;
    return (k >= DC_BAND_OTHER && k <= DC_BAND_NIR) ? k : DC_BAND_OTHER;
}

/* The seed-only part of a date: keys and scalar draws. */
static void draw_date(dc_sim_date *d, const dc_cloud_sim_options *o, uint64_t seed, int date,
                      int bands)
{
    memset(d, 0, sizeof *d);
    uint64_t dt = (uint64_t)date;
    d->key_cumulus = dc_noise_key(seed, dt, KEY_CUMULUS, 0);
    d->key_warp_x = dc_noise_key(seed, dt, KEY_WARP_X, 0);
    d->key_warp_y = dc_noise_key(seed, dt, KEY_WARP_Y, 0);
    d->key_cirrus = dc_noise_key(seed, dt, KEY_CIRRUS, 0);
    d->key_haze = dc_noise_key(seed, dt, KEY_HAZE, 0);
    /* phenology varies slowly in space; its shape is shared by all dates (the same fields
     * green up or dry out), only the signed amplitude differs per date */
    d->key_phenology = dc_noise_key(seed, 0, KEY_PHENOLOGY, 0);
    d->scale = o->cloud_scale_px;

    d->cover = o->cover_min + (o->cover_max - o->cover_min) * dc_noise_uniform(seed, dt, 0, DRAW_COVER);
    double angle = M_PI * dc_noise_uniform(seed, dt, 0, DRAW_CIRRUS_ANGLE);
    d->cirrus_cos = cos(angle);
    d->cirrus_sin = sin(angle);
    d->cirrus_strength = 0.12 + 0.25 * dc_noise_uniform(seed, dt, 0, DRAW_CIRRUS_STRENGTH);
    d->haze_strength = o->haze ? o->haze_max * (0.15 + 0.85 * dc_noise_uniform(seed, dt, 0, DRAW_HAZE)) : 0.0;
    d->brightness = 0.9 + 0.2 * dc_noise_uniform(seed, dt, 0, DRAW_BRIGHTNESS);

    /* the shadow lies away from the sun: ground offset = height / tan(elevation); azimuth is
     * clockwise from north and raster rows grow southward */
    double height = o->cloud_height_m * (0.75 + 0.5 * dc_noise_uniform(seed, dt, 0, DRAW_HEIGHT));
    double reach = height / tan(o->sun_elevation_deg * M_PI / 180.0) / o->pixel_size_m;
    double az = o->sun_azimuth_deg * M_PI / 180.0;
    d->shadow_dx = -sin(az) * reach;
    d->shadow_dy = cos(az) * reach;
    d->shadow_darkness = 0.55 + 0.2 * dc_noise_uniform(seed, dt, 0, DRAW_DARKNESS);

    d->phenology_amp = o->phenology ? o->phenology_max * (2.0 * dc_noise_uniform(seed, dt, 0, DRAW_PHENOLOGY) - 1.0) : 0.0;
    for (int b = 0; b < bands; b++) {
        double g = 2.0 * dc_noise_uniform(seed, dt, (uint64_t)b, DRAW_GAIN) - 1.0;
        double f = 2.0 * dc_noise_uniform(seed, dt, (uint64_t)b, DRAW_OFFSET) - 1.0;
        d->gain[b] = o->radiometric ? 1.0 + o->gain_max * g : 1.0;
        d->offset[b] = o->radiometric ? o->offset_max * o->dn_scale * f : 0.0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double std_dev(const double *v, int n)
{
    double m = 0.0, s = 0.0;
    for (int i = 0; i < n; i++)
        m += v[i];
    m /= n;
    for (int i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    return n > 1 ? sqrt(s / (n - 1)) : 0.0;
}

/* Thresholds from quantiles of the fields sampled over the frame: first the cirrus streaks take
 * their share of the cover (at most half of it), then the cumulus threshold is set so that the
 * flagged union reaches the date's cover. `buf` holds 2 * n doubles. */
static void calibrate_date(dc_sim_date *d, const dc_cloud_sim_options *o, int fx0, int fy0,
                           int step, int nx, int ny, double *buf)
{
    int n = nx * ny;
    double *cir = buf, *den = buf + n;
    d->cirrus_threshold = INFINITY;
    d->tau_zero = INFINITY;
    d->tau_per_unit = 1.0;
    d->density_sd = 1.0;
    int ncirrus = 0;

    if (o->cirrus) {
        for (int j = 0, s = 0; j < ny; j++)
            for (int i = 0; i < nx; i++, s++)
                cir[s] = dc_sim_cirrus_field(d, fx0 + i * step + step / 2 + 0.5,
                                             fy0 + j * step + step / 2 + 0.5);
        double share = o->cirrus_max_cover * dc_noise_uniform(d->key_cirrus, 0, 0, DRAW_CIRRUS_COVER);
        if (share > 0.5 * d->cover)
            share = 0.5 * d->cover;
        int k = (int)lround(share * n);
        if (k > 0) {
            d->cirrus_width = 1.6 * std_dev(cir, n);
            double *sorted = den; /* borrow the second half as scratch */
            memcpy(sorted, cir, (size_t)n * sizeof *sorted);
            qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
            d->cirrus_threshold = k >= n ? -INFINITY : 0.5 * (sorted[n - k - 1] + sorted[n - k]);
            if (d->cirrus_width <= 0.0)
                d->cirrus_width = 1e-6;
            for (int s = 0; s < n; s++)
                ncirrus += cir[s] >= d->cirrus_threshold;
        }
    }
    if (!o->thick)
        return;
    /* density of the pixels cirrus has not already flagged */
    int m = 0;
    double *all = buf; /* cirrus values are no longer needed past the flag test */
    for (int j = 0, s = 0; j < ny; j++)
        for (int i = 0; i < nx; i++, s++) {
            int flagged = o->cirrus && cir[s] >= d->cirrus_threshold;
            double v = dc_sim_cumulus_density(d, fx0 + i * step + step / 2 + 0.5,
                                              fy0 + j * step + step / 2 + 0.5,
                                              DC_SIM_CUMULUS_OCTAVES);
            if (!flagged)
                all[m++] = v; /* m <= s: never overwrites an unread cirrus value */
        }
    d->density_sd = std_dev(all, m);
    if (d->density_sd <= 0.0)
        d->density_sd = 1e-6;
    int k = (int)lround(d->cover * n) - ncirrus;
    if (k <= 0 || m == 0)
        return;
    qsort(all, (size_t)m, sizeof *all, cmp_double);
    double flag = k >= m ? -INFINITY : 0.5 * (all[m - k - 1] + all[m - k]);
    /* opacity 1 - exp(-tau) reaches 0.95 over 1.1 sd of density above the edge, and equals the
     * flag opacity at the flag threshold: the soft edge extends a little outside the mask */
    d->tau_per_unit = 3.0 / (1.1 * d->density_sd);
    d->tau_zero = flag + log(1.0 - DC_SIM_ALPHA_FLAG) / d->tau_per_unit;
}

/* Brightness of the cloud top in reflectance: thicker is brighter, slopes facing the sun are lit. */
static double cloud_top(const dc_sim_date *d, const dc_cloud_sim_options *o, double tau,
                        double px, double py)
{
    double az = o->sun_azimuth_deg * M_PI / 180.0;
    double sx = sin(az), sy = -cos(az); /* toward the sun, in raster axes */
    int oct = DC_SIM_CUMULUS_OCTAVES;
    double gx = dc_sim_cumulus_density(d, px + 1.0, py, oct) - dc_sim_cumulus_density(d, px - 1.0, py, oct);
    double gy = dc_sim_cumulus_density(d, px, py + 1.0, oct) - dc_sim_cumulus_density(d, px, py - 1.0, oct);
    double slope = 0.5 * (gx * sx + gy * sy) / d->density_sd;
    double shade = tanh(6.0 * slope);
    return d->brightness * (0.45 + 0.4 * (1.0 - exp(-tau / 2.5)) + 0.08 * shade);
}

int dc_cloud_sim_tile(const dc_cloud_sim_options *o, const float *clear, int h, int w, int bands,
                      const int *band_kind, uint64_t seed, int x0, int y0, float *dates_out,
                      uint8_t *masks_out, dc_error *err)
{
    int rc = dc_cloud_sim_check(o, err);
    if (rc != DC_OK)
        return rc;
    if (!clear || !dates_out || h <= 0 || w <= 0 || bands <= 0 || bands > DC_CLOUD_SIM_MAX_BANDS)
        return dc_fail(err, DC_ERR_ARG, "cloud simulator: bad tile %dx%d with %d bands", w, h,
                       bands);
    int fx0 = o->frame_w > 0 ? o->frame_x0 : x0, fy0 = o->frame_w > 0 ? o->frame_y0 : y0;
    int fw = o->frame_w > 0 ? o->frame_w : w, fh = o->frame_w > 0 ? o->frame_h : h;
    /* at most about 40 000 samples: quantiles to well under 1 % at modest cost */
    int step = (int)ceil(sqrt((double)fw * fh / 40000.0));
    step = step < 1 ? 1 : step;
    int nx = (fw + step - 1) / step, ny = (fh + step - 1) / step;
    double *buf = malloc(2 * (size_t)nx * ny * sizeof *buf);
    if (!buf)
        return dc_fail(err, DC_ERR_NOMEM, "cloud simulator: out of memory");

    int red = -1, nir = -1;
    for (int b = 0; b < bands; b++) {
        int k = band_kind_index(band_kind, b);
        if (k == DC_BAND_RED && red < 0)
            red = b;
        if (k == DC_BAND_NIR && nir < 0)
            nir = b;
    }
    size_t plane = (size_t)h * w;
    for (int date = 0; date < o->ndates; date++) {
        dc_sim_date d;
        draw_date(&d, o, seed, date, bands);
        calibrate_date(&d, o, fx0, fy0, step, nx, ny, buf);
        double cumulus_flag = d.tau_zero - log(1.0 - DC_SIM_ALPHA_FLAG) / d.tau_per_unit;
        int have_cumulus = o->thick && d.tau_zero != INFINITY;
        int have_cirrus = o->cirrus && d.cirrus_threshold != INFINITY;
        float *out_date = dates_out + (size_t)date * plane * bands;
        uint8_t *mask_date = masks_out ? masks_out + (size_t)date * plane : NULL;

        for (int j = 0; j < h; j++) {
            for (int i = 0; i < w; i++) {
                size_t pix = (size_t)j * w + i;
                const float *c = clear + pix * bands;
                float *out = out_date + pix * bands;
                double px = (double)x0 + i + 0.5, py = (double)y0 + j + 0.5;

                double alpha = 0.0, tau = 0.0, shadow = 0.0, top = 0.0;
                int cumulus_flagged = 0;
                if (have_cumulus) {
                    double den = dc_sim_cumulus_density(&d, px, py, DC_SIM_CUMULUS_OCTAVES);
                    tau = den > d.tau_zero ? (den - d.tau_zero) * d.tau_per_unit : 0.0;
                    alpha = 1.0 - exp(-tau);
                    cumulus_flagged = den > cumulus_flag;
                    if (alpha > 1e-3)
                        top = cloud_top(&d, o, tau, px, py);
                    if (o->shadows) {
                        /* coarse octaves only, a gentler ramp: shadows have softer edges */
                        double sd = dc_sim_cumulus_density(&d, px - d.shadow_dx, py - d.shadow_dy,
                                                           DC_SIM_SHADOW_OCTAVES);
                        double st = sd > d.tau_zero ? (sd - d.tau_zero) * d.tau_per_unit * 0.7 : 0.0;
                        shadow = 1.0 - exp(-st);
                    }
                }
                double cirrus = 0.0;
                int cirrus_flagged = 0;
                if (have_cirrus) {
                    double cf = dc_sim_cirrus_field(&d, px, py);
                    /* the ramp starts just below the flag threshold: what the mask misses
                     * of a cirrus streak is faint (a few % of its opacity) */
                    cirrus = d.cirrus_strength *
                             dc_sim_smooth01((cf - d.cirrus_threshold) / d.cirrus_width + 0.15);
                    cirrus_flagged = cf >= d.cirrus_threshold;
                }
                double haze = d.haze_strength > 0.0 ? dc_sim_haze(&d, px, py) : 0.0;
                /* the air under a cloud is in its shadow too: less path radiance there */
                haze *= 1.0 - d.shadow_darkness * shadow;
                double veg_change = 0.0;
                if (d.phenology_amp != 0.0 && red >= 0 && nir >= 0) {
                    double r = c[red], n = c[nir];
                    double ndvi = (n + r) > 0.0 ? (n - r) / (n + r) : 0.0;
                    double veg = dc_sim_smooth01((ndvi - 0.2) / 0.4);
                    if (veg > 0.0)
                        veg_change = d.phenology_amp * veg * dc_sim_phenology_field(&d, px, py);
                }

                for (int b = 0; b < bands; b++) {
                    int k = band_kind_index(band_kind, b);
                    double v = c[b];
                    v *= 1.0 + veg_change * phenology_response[k];
                    v *= 1.0 - d.shadow_darkness * shadow * shadow_response[k];
                    v = v * (1.0 - 0.08 * haze) + haze * o->dn_scale * haze_reflectance[k];
                    v = v * (1.0 - 0.35 * cirrus) + cirrus * o->dn_scale * cirrus_reflectance[k];
                    v = v * (1.0 - alpha) + alpha * top * cloud_tint[k] * o->dn_scale;
                    v = v * d.gain[b] + d.offset[b];
                    out[b] = (float)(v < 0.0 ? 0.0 : (v > o->max_dn ? o->max_dn : v));
                }
                if (mask_date) {
                    uint8_t m = DC_MASK_CLEAR;
                    if (alpha >= DC_SIM_ALPHA_THICK)
                        m = DC_MASK_THICK;
                    else if (cumulus_flagged || cirrus_flagged)
                        m = DC_MASK_THIN;
                    else if (shadow >= DC_SIM_SHADOW_FLAG)
                        m = DC_MASK_SHADOW;
                    mask_date[pix] = m;
                }
            }
        }
    }
    free(buf);
    return DC_OK;
}
