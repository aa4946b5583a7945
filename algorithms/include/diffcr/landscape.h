/* diffcr — synthetic landscape: a plausible clear 10 m scene for samples and tests.
 *
 * The project cannot ship real imagery, so samples/ generates a Brandenburg-like scene: a
 * patchwork of rectangular fields in farm blocks (bright and dark bare soil, green crops,
 * stubble, meadows, the odd yellow rapeseed field), textured forest (conifer and deciduous),
 * elongated lakes and a meandering river, a few roads and farm tracks (thin grey lines), and
 * villages of bright grey and red-tiled roofs with gardens. Bands are R, G, B, NIR surface
 * reflectance x 10000 (UInt16), values typical of Sentinel-2 L2A over central Europe.
 *
 * Every pixel is a pure function of (seed, scene size, absolute pixel position) through counter-
 * based hashes, so any window renders the same pixels as the whole scene. */
#ifndef DIFFCR_LANDSCAPE_H
#define DIFFCR_LANDSCAPE_H

#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DC_LANDSCAPE_BANDS 4 /* R, G, B, NIR */

typedef struct dc_landscape_options {
    int width, height;         /* scene size in pixels (default 512 x 512) */
    uint64_t seed;             /* default 1 */
    double origin_x, origin_y; /* top-left corner in the CRS (default 380000, 5820000) */
    double pixel_size;         /* metres (default 10) */
    int epsg;                  /* CRS (default 32633, WGS 84 / UTM 33N) */
} dc_landscape_options;

void dc_landscape_defaults(dc_landscape_options *o);

/* Render the window (x0, y0, w, h) of the scene into out[h][w][4] (R, G, B, NIR, reflectance x
 * 10000). The window must lie inside the scene. */
int dc_landscape_render(const dc_landscape_options *o, int x0, int y0, int w, int h, uint16_t *out,
                        dc_error *err);

/* Write the whole scene as a 4-band UInt16 raster (GDAL driver `format`, default GTiff, with
 * creation options `create_options`), georeferenced (origin, pixel size, EPSG), band colour
 * interpretation R, G, B and description "NIR" on band 4. A failed write leaves no file. */
int dc_landscape_write(const dc_landscape_options *o, const char *path, const char *format,
                       char **create_options, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
