/* diffcr unit tests — tile grid and blending maths (algorithms/tile_grid.c, tile_blend.c):
 * tiles inside the raster with the edge tile shifted inward, small rasters padded, touching
 * ranges, partition of unity, and identical bits for any window. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/tile_blend.h"
#include "diffcr/tile_grid.h"
#include "testutil.h"

static const int sizes[][3] = {/* length, tile, overlap */
                               {300, 256, 64}, {200, 256, 64}, {1000, 64, 16}, {64, 64, 16},
                               {65, 64, 16},   {129, 32, 0},   {17, 16, 15},   {1, 16, 4},
                               {777, 48, 20},  {256, 256, 0}};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

START_TEST(test_tiles_inside_and_shifted)
{
    for (int s = 0; s < NSIZES; s++) {
        dc_tile_grid g;
        ck_assert_int_eq(dc_tile_grid_init(&g, sizes[s][0], 8, sizes[s][1], sizes[s][2], NULL),
                         DC_OK);
        const dc_tile_axis *a = &g.x;
        int L = a->length, T = a->tile;
        if (L <= T) {
            ck_assert_int_eq(a->count, 1);
            ck_assert_int_eq(dc_tile_axis_start(a, 0), 0);
            ck_assert_int_eq(dc_tile_axis_extent(a, 0), L);
            continue;
        }
        ck_assert_int_eq(dc_tile_axis_start(a, 0), 0);
        /* last tile ends exactly at the raster's end (shifted inward) */
        ck_assert_int_eq(dc_tile_axis_start(a, a->count - 1), L - T);
        int covered_to = 0;
        for (int i = 0; i < a->count; i++) {
            int st = dc_tile_axis_start(a, i);
            ck_assert_int_ge(st, 0);
            ck_assert_int_le(st + T, L);
            ck_assert_int_eq(dc_tile_axis_extent(a, i), T);
            if (i > 0) {
                int prev = dc_tile_axis_start(a, i - 1);
                ck_assert_int_gt(st, prev);                  /* strictly increasing */
                ck_assert_int_le(st - prev, a->stride);      /* overlap at least `overlap` */
            }
            ck_assert_int_le(st, covered_to);                /* no gaps */
            covered_to = st + T;
        }
        /* the count is minimal: one tile fewer would not reach the end at full stride */
        ck_assert_int_lt((a->count - 2) * a->stride + T, L);
    }
}
END_TEST

START_TEST(test_bad_grid_arguments)
{
    dc_tile_grid g;
    dc_error e;
    ck_assert_int_eq(dc_tile_grid_init(&g, 10, 10, 100, 4, &e), DC_ERR_ARG);
    ck_assert_int_eq(dc_tile_grid_init(&g, 10, 10, 64, 64, &e), DC_ERR_ARG);
    ck_assert_int_eq(dc_tile_grid_init(&g, 10, 10, 64, -1, &e), DC_ERR_ARG);
    ck_assert_int_eq(dc_tile_grid_init(&g, 0, 10, 64, 0, &e), DC_ERR_ARG);
}
END_TEST

START_TEST(test_touching_matches_brute_force)
{
    for (int s = 0; s < NSIZES; s++) {
        dc_tile_grid g;
        dc_tile_grid_init(&g, sizes[s][0], 8, sizes[s][1], sizes[s][2], NULL);
        const dc_tile_axis *a = &g.x;
        for (int lo = 0; lo < a->length; lo += 7) {
            for (int hi = lo + 1; hi <= a->length; hi += 13) {
                int f, l, bf = -1, bl = -1;
                dc_tile_axis_touching(a, lo, hi, &f, &l);
                for (int i = 0; i < a->count; i++) {
                    int st = dc_tile_axis_start(a, i), en = st + dc_tile_axis_extent(a, i);
                    if (st < hi && en > lo) {
                        if (bf < 0)
                            bf = i;
                        bl = i;
                    }
                }
                ck_assert_int_eq(f, bf);
                ck_assert_int_eq(l, bl);
            }
        }
        /* final_before: no later tile touches rows below it */
        for (int i = 0; i < a->count; i++) {
            int fin = dc_tile_axis_final_before(a, i);
            for (int j = i + 1; j < a->count; j++)
                ck_assert_int_ge(dc_tile_axis_start(a, j), fin);
        }
        ck_assert_int_eq(dc_tile_axis_final_before(a, a->count - 1), a->length);
    }
}
END_TEST

START_TEST(test_weights_positive_and_border_flat)
{
    for (int s = 0; s < NSIZES; s++) {
        dc_tile_grid g;
        dc_tile_grid_init(&g, sizes[s][0], 8, sizes[s][1], sizes[s][2], NULL);
        const dc_tile_axis *a = &g.x;
        for (int i = 0; i < a->count; i++)
            for (int k = 0; k < a->tile; k++) {
                float w = dc_tile_axis_weight(a, i, k);
                ck_assert(w > 0.0f && w <= 1.0f);
            }
        ck_assert(dc_tile_axis_weight(a, 0, 0) == 1.0f);
        ck_assert(dc_tile_axis_weight(a, a->count - 1, dc_tile_axis_extent(a, a->count - 1) - 1) ==
                  1.0f);
    }
    /* interior tile: the raised cosine, symmetric */
    dc_tile_grid g;
    dc_tile_grid_init(&g, 1000, 8, 64, 16, NULL);
    for (int k = 0; k < 64; k++) {
        double expect = 0.5 - 0.5 * cos(2.0 * M_PI * (k + 0.5) / 64);
        ck_assert(fabs(dc_tile_axis_weight(&g.x, 2, k) - expect) < 1e-6);
        ck_assert(dc_tile_axis_weight(&g.x, 2, k) == dc_tile_axis_weight(&g.x, 2, 63 - k));
    }
}
END_TEST

START_TEST(test_reflect_index)
{
    ck_assert_int_eq(dc_reflect_index(-1, 5), 1);
    ck_assert_int_eq(dc_reflect_index(5, 5), 3);
    ck_assert_int_eq(dc_reflect_index(8, 5), 0);
    ck_assert_int_eq(dc_reflect_index(9, 5), 1);
    ck_assert_int_eq(dc_reflect_index(3, 5), 3);
    ck_assert_int_eq(dc_reflect_index(100, 1), 0);
    for (int n = 1; n < 9; n++)
        for (int k = -40; k < 40; k++) {
            int r = dc_reflect_index(k, n);
            ck_assert(r >= 0 && r < n);
        }
}
END_TEST

/* A tile's "model output": depends on the tile's raster position and the pixel within it, so
 * blending differences and window-dependent grids show. */
static void fake_tile(const dc_tile_grid *g, int tx, int ty, float *v, int C)
{
    int T = g->x.tile;
    int sx = dc_tile_axis_start(&g->x, tx), sy = dc_tile_axis_start(&g->y, ty);
    for (int ky = 0; ky < T; ky++)
        for (int kx = 0; kx < T; kx++)
            for (int c = 0; c < C; c++)
                v[((size_t)ky * T + kx) * C + c] =
                    (float)(sin(0.01 * (sx + kx) * (c + 1)) + cos(0.013 * (sy + ky)) +
                            0.1 * sin(0.7 * kx + 0.3 * ky + tx + 2 * ty));
}

/* Blend the window [x0,x1)x[y0,y1) the way the pipeline does: only touching tiles, strips of
 * tile rows, emitting finished rows and shifting. */
static void blend_window(const dc_tile_grid *g, int x0, int y0, int w, int h, int C, float *out)
{
    int T = g->x.tile, tx0, tx1, ty0, ty1;
    dc_tile_axis_touching(&g->x, x0, x0 + w, &tx0, &tx1);
    dc_tile_axis_touching(&g->y, y0, y0 + h, &ty0, &ty1);
    int ax0 = dc_tile_axis_start(&g->x, tx0);
    int aw = dc_tile_axis_start(&g->x, tx1) + dc_tile_axis_extent(&g->x, tx1) - ax0;
    int rows = T < g->y.length ? T : g->y.length;
    dc_blend_acc acc;
    ck_assert_int_eq(dc_blend_init(&acc, ax0, aw, dc_tile_axis_start(&g->y, ty0), rows, C, NULL),
                     DC_OK);
    float *tile = malloc(sizeof(float) * T * T * C);
    for (int ty = ty0; ty <= ty1; ty++) {
        for (int tx = tx0; tx <= tx1; tx++) {
            fake_tile(g, tx, ty, tile, C);
            dc_blend_add_tile(&acc, g, tx, ty, tile);
        }
        int fin = ty == ty1 ? y0 + h : dc_tile_axis_final_before(&g->y, ty);
        int r0 = acc.y0 > y0 ? acc.y0 : y0, r1 = fin < y0 + h ? fin : y0 + h;
        for (int y = r0; y < r1; y++)
            dc_blend_read_row(&acc, y - acc.y0, x0, w, out + (size_t)(y - y0) * w * C);
        if (ty < ty1)
            dc_blend_shift(&acc, dc_tile_axis_start(&g->y, ty + 1) - acc.y0);
    }
    free(tile);
    dc_blend_free(&acc);
}

START_TEST(test_partition_of_unity)
{
    /* Constant tiles of 1 blend to 1 everywhere: the normalised weights sum to one and cover
     * every pixel. */
    const int dims[][4] = {{300, 200, 64, 16}, {1000, 70, 256, 64}, {40, 50, 256, 64},
                           {129, 97, 32, 0}, {100, 100, 48, 47}};
    for (int s = 0; s < 5; s++) {
        dc_tile_grid g;
        dc_tile_grid_init(&g, dims[s][0], dims[s][1], dims[s][2], dims[s][3], NULL);
        int W = dims[s][0], H = dims[s][1], T = dims[s][2];
        dc_blend_acc acc;
        ck_assert_int_eq(dc_blend_init(&acc, 0, W, 0, H, 1, NULL), DC_OK);
        float *ones = malloc(sizeof(float) * T * T);
        for (int i = 0; i < T * T; i++)
            ones[i] = 1.0f;
        for (int ty = 0; ty < g.y.count; ty++)
            for (int tx = 0; tx < g.x.count; tx++)
                dc_blend_add_tile(&acc, &g, tx, ty, ones);
        float *row = malloc(sizeof(float) * W);
        for (int y = 0; y < H; y++) {
            dc_blend_read_row(&acc, y, 0, W, row);
            for (int x = 0; x < W; x++) {
                ck_assert(acc.weight[(size_t)y * W + x] > 0.0f);
                ck_assert_msg(fabsf(row[x] - 1.0f) < 1e-6f, "(%d,%d) = %g", x, y, row[x]);
            }
        }
        free(row);
        free(ones);
        dc_blend_free(&acc);
    }
}
END_TEST

START_TEST(test_windows_give_identical_bits)
{
    const int W = 300, H = 200, C = 3;
    const int cfg[][2] = {{64, 16}, {256, 64}, {32, 0}, {48, 40}};
    for (int s = 0; s < 4; s++) {
        dc_tile_grid g;
        dc_tile_grid_init(&g, W, H, cfg[s][0], cfg[s][1], NULL);
        float *full = malloc(sizeof(float) * W * H * C);
        blend_window(&g, 0, 0, W, H, C, full);
        const int wins[][4] = {{0, 0, 1, 1}, {17, 23, 50, 61}, {299, 199, 1, 1}, {100, 0, 200, 200},
                               {0, 150, 300, 50}, {63, 47, 2, 130}, {250, 10, 50, 7}};
        for (int k = 0; k < 7; k++) {
            int x0 = wins[k][0], y0 = wins[k][1], w = wins[k][2], h = wins[k][3];
            float *part = malloc(sizeof(float) * w * h * C);
            blend_window(&g, x0, y0, w, h, C, part);
            for (int y = 0; y < h; y++)
                ck_assert_msg(memcmp(part + (size_t)y * w * C,
                                     full + ((size_t)(y0 + y) * W + x0) * C,
                                     sizeof(float) * w * C) == 0,
                              "tile %d: window %d differs at row %d", cfg[s][0], k, y0 + y);
            free(part);
        }
        free(full);
    }
}
END_TEST

START_TEST(test_single_tile_pixels_exact)
{
    /* Pixels covered by one tile only get its value bit-exactly (border-facing weight 1). */
    dc_tile_grid g;
    dc_tile_grid_init(&g, 40, 50, 256, 64, NULL); /* smaller than a tile: one padded tile */
    dc_blend_acc acc;
    dc_blend_init(&acc, 0, 40, 0, 50, 1, NULL);
    float *t = malloc(sizeof(float) * 256 * 256);
    for (int i = 0; i < 256 * 256; i++)
        t[i] = 0.1f * (float)i + 0.123f;
    dc_blend_add_tile(&acc, &g, 0, 0, t);
    float row[40];
    for (int y = 0; y < 50; y++) {
        dc_blend_read_row(&acc, y, 0, 40, row);
        for (int x = 0; x < 40; x++)
            ck_assert(row[x] == t[y * 256 + x]);
    }
    free(t);
    dc_blend_free(&acc);
}
END_TEST

START_TEST(test_tile_key_unique)
{
    ck_assert(dc_tile_key(0, 1) != dc_tile_key(1, 0));
    ck_assert(dc_tile_key(192, 0) == dc_tile_key(192, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alg_tile_grid");
    TCase *tc = tcase_create("grid");
    tcase_add_test(tc, test_tiles_inside_and_shifted);
    tcase_add_test(tc, test_bad_grid_arguments);
    tcase_add_test(tc, test_touching_matches_brute_force);
    tcase_add_test(tc, test_weights_positive_and_border_flat);
    tcase_add_test(tc, test_reflect_index);
    tcase_add_test(tc, test_partition_of_unity);
    tcase_add_test(tc, test_windows_give_identical_bits);
    tcase_add_test(tc, test_single_tile_pixels_exact);
    tcase_add_test(tc, test_tile_key_unique);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
