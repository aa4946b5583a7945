/* diffcr — float accumulators that blend overlapping tiles into rows of the output.
 *
 * The accumulator holds `rows` raster rows starting at raster row y0 and the columns [x0, x0+width)
 * of the output, for `channels` values per pixel: sum(w * v) per channel and sum(w) per pixel.
 * Memory is width x rows, never the raster's size: the decloud pipeline keeps one tile height of
 * rows open, emits the rows no later tile touches and shifts the rest up (dc_blend_shift).
 * Tiles must be added in the grid's fixed order (tile row, then column) so every window of the
 * raster sums the same floats in the same order and gets the same bits. */
#ifndef DIFFCR_TILE_BLEND_H
#define DIFFCR_TILE_BLEND_H

#include <stddef.h>

#include "diffcr/error.h"
#include "diffcr/tile_grid.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_blend_acc {
    int x0, width;     /* raster columns held */
    int y0, rows;      /* first raster row held, rows held */
    int channels;      /* values per pixel */
    float *sum;        /* [rows][width][channels] */
    float *weight;     /* [rows][width] */
} dc_blend_acc;

int dc_blend_init(dc_blend_acc *acc, int x0, int width, int y0, int rows, int channels,
                  dc_error *err);
void dc_blend_free(dc_blend_acc *acc);

/* Add tile (tx, ty) of `grid`: values [tile][tile][channels] (the model's output for the whole
 * padded tile). Only the part inside both the raster and the accumulator is added. */
void dc_blend_add_tile(dc_blend_acc *acc, const dc_tile_grid *grid, int tx, int ty,
                       const float *values);

/* Normalised value of accumulator row r (0-based within the accumulator), columns
 * [x, x+n) in raster space, into out[n][channels]. Pixels with zero weight (not yet covered,
 * which cannot happen inside a finished row) give 0. */
void dc_blend_read_row(const dc_blend_acc *acc, int r, int x, int n, float *out);

/* Drop the first `n` rows (they were emitted), move the rest up, zero the freed rows and
 * advance y0 by n. */
void dc_blend_shift(dc_blend_acc *acc, int n);

#ifdef __cplusplus
}
#endif
#endif
