/* diffcr — cloud simulator: N cloudy dates (and their masks) from one clear image.
 *
 * Training needs cloudy/clear pairs; the project ships no real ones. The simulator lays physically
 * shaped disturbances over a clear DN image, different for each date:
 *   - thick cumulus: a thresholded, domain-warped fractal noise field turned into an opacity with
 *     1 - exp(-optical depth), so edges are soft and textured; the cloud top is bright, slightly
 *     blue-white (about 0.45..0.9 reflectance, i.e. 4500..9000+ DN at scale 10000), shaded by the
 *     slope of the field toward the sun so it looks puffy;
 *   - thin cirrus: elongated streaks (anisotropic noise), additive and semi-transparent;
 *   - haze: a broad additive path radiance, stronger in blue than in red and NIR;
 *   - cloud shadows: the coarse octaves of the cumulus field displaced away from the sun by
 *     cloud height / tan(sun elevation), darkened with softer edges;
 *   - surface and sensor changes: a smooth low-frequency multiplicative phenology field on
 *     vegetated pixels (NIR up/red down, or the reverse) and a per-band gain/offset per date.
 *
 * Every random value is a counter-based hash of (seed, date, layer, octave, absolute lattice
 * position): the same seed and options give identical outputs, and a tile at (x0, y0) equals the
 * matching window of a larger simulation, whatever the tiling or thread count.
 *
 * Cloud cover: the fraction of cloud-flagged pixels (mask 1 or 2; shadows not counted) of each
 * date is drawn uniformly in [cover_min, cover_max] and met exactly (up to sampling) over the
 * calibration frame: the noise thresholds are quantiles of the fields sampled over that frame.
 * Give the whole raster as frame when simulating it in strips or tiles, so all pieces share one
 * threshold; leave it empty (w = 0) to calibrate on each tile itself (the trainer's case). */
#ifndef DIFFCR_CLOUD_SIM_H
#define DIFFCR_CLOUD_SIM_H

#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DC_CLOUD_SIM_MAX_DATES 64
#define DC_CLOUD_SIM_MAX_BANDS 64

/* What a band measures: decides the cloud tint, haze strength and phenology response. */
typedef enum dc_band_kind {
    DC_BAND_OTHER = 0, /* treated as a grey visible band */
    DC_BAND_BLUE = 1,
    DC_BAND_GREEN = 2,
    DC_BAND_RED = 3,
    DC_BAND_NIR = 4
} dc_band_kind;

/* Mask values (one Byte per pixel and date). Thick cloud wins over thin cloud over shadow. */
enum {
    DC_MASK_CLEAR = 0,
    DC_MASK_THIN = 1,   /* cumulus edge (opacity 0.08..0.6) or cirrus streak */
    DC_MASK_THICK = 2,  /* cumulus with opacity >= 0.6 */
    DC_MASK_SHADOW = 3  /* cloud shadow (strength >= 0.4), not under a flagged cloud */
};

typedef struct dc_cloud_sim_options {
    int ndates;               /* dates to make, 1..DC_CLOUD_SIM_MAX_DATES (default 3) */
    double cover_min;         /* cloud-flagged fraction per date, 0 <= min <= max <= 1 */
    double cover_max;         /* (default 0.1, 0.6) */
    double sun_azimuth_deg;   /* clockwise from north (default 160) */
    double sun_elevation_deg; /* above the horizon, 5..90 (default 40) */
    double cloud_height_m;    /* mean cloud base height (default 1000; +-25 % per date) */
    double pixel_size_m;      /* ground size of a pixel (default 10) */
    double dn_scale;          /* DN of reflectance 1.0 (default 10000) */
    double max_dn;            /* outputs are clipped to [0, max_dn] (default 65535) */
    double cloud_scale_px;    /* wavelength of the coarsest cumulus octave, pixels (default 160) */
    /* components, each on (1) by default; tests switch them off to isolate one effect */
    int thick, cirrus, haze, shadows, radiometric, phenology;
    double cirrus_max_cover;  /* largest cirrus-flagged fraction of a date (default 0.15) */
    double haze_max;          /* haze strength is drawn in [0.15, 1] x haze_max (default 1) */
    double gain_max;          /* per band gain in 1 +- gain_max (default 0.03) */
    double offset_max;        /* per band offset in +- offset_max reflectance (default 0.002) */
    double phenology_max;     /* multiplicative NIR change amplitude (default 0.15) */
    /* calibration frame in raster pixels (see above); frame_w == 0: the tile itself */
    int frame_x0, frame_y0, frame_w, frame_h;
} dc_cloud_sim_options;

/* Fill *o with the defaults above. */
void dc_cloud_sim_defaults(dc_cloud_sim_options *o);

/* Check an options record; fills err with what is wrong. */
int dc_cloud_sim_check(const dc_cloud_sim_options *o, dc_error *err);

/* Simulate o->ndates cloudy versions of one clear tile.
 *   clear      [h][w][bands] DN, channels last (NHWC)
 *   band_kind  [bands] dc_band_kind of each band (NULL: all DC_BAND_OTHER)
 *   seed       run seed; dates differ through the date index
 *   x0, y0     the tile's position in the raster (pixels): noise is a function of x0 + i, y0 + j
 *   dates_out  [ndates][h][w][bands] DN, clipped to [0, max_dn], not rounded
 *   masks_out  [ndates][h][w] DC_MASK_* values (may be NULL)
 * Allocates only a small scratch buffer for the calibration (freed before returning). */
int dc_cloud_sim_tile(const dc_cloud_sim_options *o, const float *clear, int h, int w, int bands,
                      const int *band_kind, uint64_t seed, int x0, int y0, float *dates_out,
                      uint8_t *masks_out, dc_error *err);

/* ---- raster level (GDAL): what diffcr-simulate runs ---- */

typedef struct dc_cloud_sim_raster_options {
    const char *input;          /* clear raster (any GDAL raster) */
    int bands[DC_CLOUD_SIM_MAX_BANDS]; /* 1-based bands to use; nbands == 0: all */
    int nbands;
    int band_kind[DC_CLOUD_SIM_MAX_BANDS]; /* per selected band; have_band_kind == 0: guess */
    int have_band_kind;
    const char *out_prefix;     /* writes PREFIX_date<k>.EXT, PREFIX_mask<k>.EXT, PREFIX_clear.EXT */
    const char *format;         /* GDAL driver (default GTiff) */
    char **create_options;      /* -co list (CSL), not owned */
    int write_clear;            /* write PREFIX_clear (skipped when it is the input itself) */
    int have_dn_scale;          /* 0: 10000, or 250 for Byte inputs */
    int have_pixel_size;        /* 0: from the geotransform when the CRS is projected, else 10 m */
    uint64_t seed;
    dc_cloud_sim_options sim;   /* frame_* are set to the whole raster */
    int (*progress)(double done, void *arg); /* may be NULL; returning 0 cancels */
    void *progress_arg;
} dc_cloud_sim_raster_options;

void dc_cloud_sim_raster_defaults(dc_cloud_sim_raster_options *o);

/* Read the clear raster in row strips, simulate, write the dates, masks and clear target on the
 * input's grid, CRS and data type (DN rounded and clipped to the type's range). Input pixels equal
 * to a band's nodata value are copied unchanged and masked clear. On failure nothing is left
 * behind (files already created are deleted). */
int dc_cloud_sim_raster(const dc_cloud_sim_raster_options *o, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
