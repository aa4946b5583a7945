/* diffcr — tile positions and blend weights fixed in raster space (see diffcr/tile_grid.h). */
#include "diffcr/tile_grid.h"

#include <math.h>

static int axis_init(dc_tile_axis *a, int length, int tile, int overlap)
{
    a->length = length;
    a->tile = tile;
    a->overlap = overlap;
    a->stride = tile - overlap;
    if (length <= tile)
        a->count = 1;
    else
        a->count = (length - tile + a->stride - 1) / a->stride + 1;
    return DC_OK;
}

int dc_tile_grid_init(dc_tile_grid *grid, int width, int height, int tile, int overlap,
                      dc_error *err)
{
    if (width <= 0 || height <= 0)
        return dc_fail(err, DC_ERR_ARG, "raster size %dx%d is empty", width, height);
    if (tile < 16 || tile % 16 != 0)
        return dc_fail(err, DC_ERR_ARG, "tile side %d is not a positive multiple of 16", tile);
    if (overlap < 0 || overlap >= tile)
        return dc_fail(err, DC_ERR_ARG, "overlap %d must be in 0..%d for tile %d", overlap,
                       tile - 1, tile);
    axis_init(&grid->x, width, tile, overlap);
    axis_init(&grid->y, height, tile, overlap);
    return DC_OK;
}

int dc_tile_axis_start(const dc_tile_axis *a, int i)
{
    if (a->length <= a->tile)
        return 0;
    int start = i * a->stride;
    /* The last tile shifts inward so it ends on the raster's last pixel. */
    return start + a->tile > a->length ? a->length - a->tile : start;
}

int dc_tile_axis_extent(const dc_tile_axis *a, int i)
{
    int left = a->length - dc_tile_axis_start(a, i);
    return left < a->tile ? left : a->tile;
}

void dc_tile_axis_touching(const dc_tile_axis *a, int lo, int hi, int *first, int *last)
{
    /* Starts are non-decreasing and every tile is `tile` long, so a linear scan from an
     * estimate is enough; counts are small (length / stride). */
    int f = 0;
    while (f < a->count - 1 && dc_tile_axis_start(a, f) + a->tile <= lo)
        f++;
    int l = f;
    while (l < a->count - 1 && dc_tile_axis_start(a, l + 1) < hi)
        l++;
    *first = f;
    *last = l;
}

int dc_tile_axis_final_before(const dc_tile_axis *a, int i)
{
    return i + 1 < a->count ? dc_tile_axis_start(a, i + 1) : a->length;
}

float dc_tile_axis_weight(const dc_tile_axis *a, int i, int k)
{
    int start = dc_tile_axis_start(a, i);
    int half = a->tile / 2;
    /* No tile overlaps the border-facing half of a border tile: weight 1 keeps those pixels
     * exact (a single-tile pixel would otherwise be v*w/w, rounded). */
    if (start == 0 && k < half)
        return 1.0f;
    if (start + a->tile >= a->length && k >= half)
        return 1.0f;
    const double pi = 3.14159265358979323846;
    return (float)(0.5 - 0.5 * cos(2.0 * pi * (k + 0.5) / a->tile));
}

int dc_reflect_index(int k, int n)
{
    if (n <= 1)
        return 0;
    int period = 2 * (n - 1);
    int m = k % period;
    if (m < 0)
        m += period;
    return m < n ? m : period - m;
}

uint64_t dc_tile_key(int x0, int y0)
{
    return ((uint64_t)(uint32_t)y0 << 32) | (uint64_t)(uint32_t)x0;
}
