/* diffcr — blending accumulators (see diffcr/tile_blend.h). */
#include "diffcr/tile_blend.h"

#include <stdlib.h>
#include <string.h>

/* Per-axis weights of one tile, computed once per tile instead of once per pixel (cos). Tiles
 * larger than this fall back to computing them per pixel. */
#define MAX_CACHED_TILE 2048

int dc_blend_init(dc_blend_acc *acc, int x0, int width, int y0, int rows, int channels,
                  dc_error *err)
{
    memset(acc, 0, sizeof *acc);
    if (width <= 0 || rows <= 0 || channels <= 0)
        return dc_fail(err, DC_ERR_ARG, "empty blending window %dx%dx%d", width, rows, channels);
    size_t pixels = (size_t)width * (size_t)rows;
    acc->sum = calloc(pixels * (size_t)channels, sizeof(float));
    acc->weight = calloc(pixels, sizeof(float));
    if (!acc->sum || !acc->weight) {
        dc_blend_free(acc);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for a %dx%d blending window", width,
                       rows);
    }
    acc->x0 = x0;
    acc->width = width;
    acc->y0 = y0;
    acc->rows = rows;
    acc->channels = channels;
    return DC_OK;
}

void dc_blend_free(dc_blend_acc *acc)
{
    free(acc->sum);
    free(acc->weight);
    acc->sum = acc->weight = NULL;
}

void dc_blend_add_tile(dc_blend_acc *acc, const dc_tile_grid *grid, int tx, int ty,
                       const float *values)
{
    const int T = grid->x.tile, C = acc->channels;
    const int sx = dc_tile_axis_start(&grid->x, tx), sy = dc_tile_axis_start(&grid->y, ty);
    const int ex = dc_tile_axis_extent(&grid->x, tx), ey = dc_tile_axis_extent(&grid->y, ty);
    /* Clip the tile's in-raster part to the accumulator. */
    int kx0 = acc->x0 - sx > 0 ? acc->x0 - sx : 0;
    int kx1 = acc->x0 + acc->width - sx < ex ? acc->x0 + acc->width - sx : ex;
    int ky0 = acc->y0 - sy > 0 ? acc->y0 - sy : 0;
    int ky1 = acc->y0 + acc->rows - sy < ey ? acc->y0 + acc->rows - sy : ey;
    float wx[MAX_CACHED_TILE];
    const int cached = T <= MAX_CACHED_TILE;
    for (int kx = kx0; cached && kx < kx1; kx++)
        wx[kx] = dc_tile_axis_weight(&grid->x, tx, kx);
    for (int ky = ky0; ky < ky1; ky++) {
        float wy = dc_tile_axis_weight(&grid->y, ty, ky);
        size_t row = (size_t)(sy + ky - acc->y0) * (size_t)acc->width;
        for (int kx = kx0; kx < kx1; kx++) {
            float w = wy * (cached ? wx[kx] : dc_tile_axis_weight(&grid->x, tx, kx));
            size_t p = row + (size_t)(sx + kx - acc->x0);
            const float *v = values + ((size_t)ky * T + (size_t)kx) * (size_t)C;
            float *s = acc->sum + p * (size_t)C;
            for (int c = 0; c < C; c++)
                s[c] += w * v[c];
            acc->weight[p] += w;
        }
    }
}

void dc_blend_read_row(const dc_blend_acc *acc, int r, int x, int n, float *out)
{
    const int C = acc->channels;
    size_t p0 = (size_t)r * (size_t)acc->width + (size_t)(x - acc->x0);
    for (int i = 0; i < n; i++) {
        float w = acc->weight[p0 + (size_t)i];
        const float *s = acc->sum + (p0 + (size_t)i) * (size_t)C;
        for (int c = 0; c < C; c++)
            out[(size_t)i * C + c] = w > 0.0f ? s[c] / w : 0.0f;
    }
}

void dc_blend_shift(dc_blend_acc *acc, int n)
{
    if (n <= 0)
        return;
    if (n > acc->rows)
        n = acc->rows;
    size_t rowpix = (size_t)acc->width, C = (size_t)acc->channels;
    size_t keep = (size_t)(acc->rows - n);
    memmove(acc->sum, acc->sum + (size_t)n * rowpix * C, keep * rowpix * C * sizeof(float));
    memmove(acc->weight, acc->weight + (size_t)n * rowpix, keep * rowpix * sizeof(float));
    memset(acc->sum + keep * rowpix * C, 0, (size_t)n * rowpix * C * sizeof(float));
    memset(acc->weight + keep * rowpix, 0, (size_t)n * rowpix * sizeof(float));
    acc->y0 += n;
}
