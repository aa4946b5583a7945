/* diffcr — cloud simulator internals shared by cloud_sim.c (calibration and the pixel loop) and
 * cloud_sim_fields.c (the noise fields). Private to algorithms/. */
#ifndef DIFFCR_CLOUD_SIM_INTERNAL_H
#define DIFFCR_CLOUD_SIM_INTERNAL_H

#include <stdint.h>

#include "diffcr/cloud_sim.h"

/* Opacity at which a cumulus pixel is flagged (thin), and becomes thick. */
#define DC_SIM_ALPHA_FLAG 0.08
#define DC_SIM_ALPHA_THICK 0.6
/* Shadow strength from which a pixel is masked as shadow. */
#define DC_SIM_SHADOW_FLAG 0.4

/* Octave counts of the fields (coarsest wavelength in the comments). */
#define DC_SIM_CUMULUS_OCTAVES 6 /* cloud_scale_px */
#define DC_SIM_SHADOW_OCTAVES 4  /* the coarse cumulus octaves only: softer edges */
#define DC_SIM_WARP_OCTAVES 3    /* cloud_scale_px */
#define DC_SIM_CIRRUS_OCTAVES 4  /* cloud_scale_px across the streaks */

/* Everything random about one date: drawn from (seed, date) only, plus thresholds calibrated
 * over the frame. */
typedef struct dc_sim_date {
    uint64_t key_cumulus, key_warp_x, key_warp_y, key_cirrus, key_haze, key_phenology;
    double scale;               /* cloud_scale_px */
    double cover;               /* target flagged fraction */
    /* cumulus: optical depth tau = max(0, D - tau_zero) * tau_per_unit; +inf tau_zero: none */
    double tau_zero, tau_per_unit;
    double density_sd;          /* spread of D over the frame (for shading) */
    double brightness;          /* cloud-top brightness factor (about 0.9..1.1) */
    /* cirrus streaks: opacity strength * smoothstep((C - threshold) / width + 0.15) */
    double cirrus_threshold, cirrus_width, cirrus_strength;
    double cirrus_cos, cirrus_sin; /* streak direction */
    double haze_strength;       /* 0..1 */
    double shadow_dx, shadow_dy; /* ground offset of the shadow from its cloud, pixels */
    double shadow_darkness;     /* fraction of light removed under a full shadow */
    double phenology_amp;       /* signed */
    double gain[DC_CLOUD_SIM_MAX_BANDS], offset[DC_CLOUD_SIM_MAX_BANDS]; /* offset in DN */
} dc_sim_date;

/* Cumulus density D at pixel centre (px, py) (absolute raster coordinates + 0.5), octaves
 * [0, last). */
double dc_sim_cumulus_density(const dc_sim_date *d, double px, double py, int last);
/* Cirrus streak field C at (px, py). */
double dc_sim_cirrus_field(const dc_sim_date *d, double px, double py);
/* Haze amount 0..1 at (px, py) (already times the date's strength). */
double dc_sim_haze(const dc_sim_date *d, double px, double py);
/* Smooth phenology field in about [-1, 1] at (px, py). */
double dc_sim_phenology_field(const dc_sim_date *d, double px, double py);

/* smoothstep on [0, 1] with clamping. */
static inline double dc_sim_smooth01(double t)
{
    t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    return t * t * (3.0 - 2.0 * t);
}

#endif
