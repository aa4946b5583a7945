/* diffcr — the tile grid and the blending window, in raster space.
 *
 * Pure functions (no GDAL, no I/O) shared by diffcr-decloud and the GDAL pixel-function plugin:
 * both must produce the same pixels for any requested window, so tile positions depend only on
 * (raster size, tile side, overlap), never on the window being computed, and blending sums the
 * tiles in one fixed order (tile row, then tile column, ascending).
 *
 * Along one axis of length L with tile side T and overlap O (stride S = T - O):
 *   L <= T : one tile at 0; the T - L pixels past the raster are padding (reflected), cropped after;
 *   L >  T : n = ceil((L - T) / S) + 1 tiles at i*S, the last one shifted inward to L - T, so every
 *            tile lies inside the raster (no padding where the raster is large enough).
 * Blend weight of pixel k of a tile (per axis, the 2-D weight is the product):
 *   w(k) = 0.5 - 0.5 cos(2 pi (k + 0.5) / T)   (raised cosine, > 0 for every k in 0..T-1)
 * except that on the half of a tile facing the raster border (where no other tile will overlap)
 * the weight is 1: a pixel covered by one tile only then gets that tile's value bit-exactly.
 * Output = sum(w * v) / sum(w), so the normalised weights form a partition of unity. */
#ifndef DIFFCR_TILE_GRID_H
#define DIFFCR_TILE_GRID_H

#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One axis of the grid. */
typedef struct dc_tile_axis {
    int length;   /* raster pixels along this axis (> 0) */
    int tile;     /* tile side (multiple of 16) */
    int overlap;  /* 0 <= overlap < tile */
    int stride;   /* tile - overlap */
    int count;    /* number of tiles along the axis */
} dc_tile_axis;

typedef struct dc_tile_grid {
    dc_tile_axis x, y;
} dc_tile_grid;

/* Set up a grid for a width x height raster. tile must be a positive multiple of 16 and
 * 0 <= overlap < tile; returns DC_ERR_ARG (with a message) otherwise. */
int dc_tile_grid_init(dc_tile_grid *grid, int width, int height, int tile, int overlap,
                      dc_error *err);

/* First pixel of tile i (0 <= i < count) along the axis. */
int dc_tile_axis_start(const dc_tile_axis *axis, int i);

/* Pixels of tile i that lie inside the raster: min(tile, length - start). */
int dc_tile_axis_extent(const dc_tile_axis *axis, int i);

/* Tiles touching the pixel range [lo, hi) (0 <= lo < hi <= length): first..last inclusive. */
void dc_tile_axis_touching(const dc_tile_axis *axis, int lo, int hi, int *first, int *last);

/* Rows (or columns) that are final once tiles 0..i have been blended: every pixel below the
 * returned index is covered by no later tile. Equals length for the last tile. */
int dc_tile_axis_final_before(const dc_tile_axis *axis, int i);

/* Blend weight of pixel k (0 <= k < tile) of tile i along the axis (see the header comment). */
float dc_tile_axis_weight(const dc_tile_axis *axis, int i, int k);

/* Source index for padded position k of an axis of n pixels: mirror reflection without repeating
 * the edge pixel (-1 -> 1, n -> n - 2), periodic for any k; n == 1 gives 0. */
int dc_reflect_index(int k, int n);

/* Identifier of a tile in raster space (its top-left pixel), used to key the sampler's noise so
 * a tile's result does not depend on processing order or on the requested window. */
uint64_t dc_tile_key(int x0, int y0);

#ifdef __cplusplus
}
#endif
#endif
