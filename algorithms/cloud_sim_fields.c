/* diffcr — the simulator's noise fields: cumulus density, cirrus streaks, haze, phenology.
 *
 * Each is a pure function of the date's keys and an absolute pixel position (see
 * cloud_sim_noise.h), so any tile of a raster sees the same clouds. Shapes are chosen for the
 * look at 10 m: cumulus fields of 0.5..2 km cells with fractal edges, cirrus streaks a few km
 * long, haze and phenology varying over several km. */
#include "cloud_sim_internal.h"
#include "cloud_sim_noise.h"

/* Gain per octave of the cumulus field: a little above 0.5 keeps the edges ragged. */
#define CUMULUS_GAIN 0.55
/* Domain warp strength in units of cloud_scale_px: bends the blobs into billows. */
#define WARP_AMOUNT 0.18
/* Cirrus streaks are this many times longer than wide. */
#define CIRRUS_STRETCH 4.0

double dc_sim_cumulus_density(const dc_sim_date *d, double px, double py, int last)
{
    double L = d->scale;
    double wx = dc_noise_fbm(d->key_warp_x, px, py, L, DC_SIM_WARP_OCTAVES, 0.5, 0,
                             DC_SIM_WARP_OCTAVES);
    double wy = dc_noise_fbm(d->key_warp_y, px, py, L, DC_SIM_WARP_OCTAVES, 0.5, 0,
                             DC_SIM_WARP_OCTAVES);
    double qx = px + WARP_AMOUNT * L * wx, qy = py + WARP_AMOUNT * L * wy;
    return dc_noise_fbm(d->key_cumulus, qx, qy, L, DC_SIM_CUMULUS_OCTAVES, CUMULUS_GAIN, 0, last);
}

double dc_sim_cirrus_field(const dc_sim_date *d, double px, double py)
{
    /* rotate into streak coordinates (u along, v across) and stretch along the streak */
    double u = d->cirrus_cos * px + d->cirrus_sin * py;
    double v = -d->cirrus_sin * px + d->cirrus_cos * py;
    /* a slow bend so streaks are not ruler-straight */
    v += 0.15 * d->scale * dc_noise_fbm(d->key_cirrus ^ 0x1234, u, v, 2.0 * d->scale, 2, 0.5, 0, 2);
    /* fibres: stretched noise; patches: an isotropic coarse field decides where streaks are */
    double fibres = dc_noise_fbm(d->key_cirrus, u / CIRRUS_STRETCH, v, d->scale,
                                 DC_SIM_CIRRUS_OCTAVES, 0.5, 0, DC_SIM_CIRRUS_OCTAVES);
    double patches = dc_noise_fbm(d->key_cirrus ^ 0x5678, px, py, 2.0 * d->scale, 2, 0.5, 0, 2);
    return 0.6 * fibres + 0.4 * patches;
}

double dc_sim_haze(const dc_sim_date *d, double px, double py)
{
    double n = dc_noise_fbm(d->key_haze, px, py, 4.0 * d->scale, 3, 0.5, 0, 3);
    double h = 0.55 + 0.9 * n;
    h = h < 0.0 ? 0.0 : (h > 1.0 ? 1.0 : h);
    return d->haze_strength * h;
}

double dc_sim_phenology_field(const dc_sim_date *d, double px, double py)
{
    return 1.6 * dc_noise_fbm(d->key_phenology, px, py, 3.0 * d->scale, 2, 0.5, 0, 2);
}
