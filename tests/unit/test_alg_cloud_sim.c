/* diffcr unit tests — cloud simulator (algorithms/cloud_sim*.c) on a synthetic landscape tile:
 * reproducibility, dates that differ, cloud cover within the requested range, physically
 * plausible thick clouds, shadows and haze, tile-offset independence of the noise, and the
 * landscape renderer's window independence. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/cloud_sim.h"
#include "diffcr/landscape.h"
#include "testutil.h"

#define N 256
#define NB 4 /* landscape bands: R, G, B, NIR */
static const int kinds[NB] = {DC_BAND_RED, DC_BAND_GREEN, DC_BAND_BLUE, DC_BAND_NIR};
enum { R = 0, G = 1, B = 2, NIR = 3 };

/* A clear N x N tile (float DN) of the landscape with seed 3. */
static float *clear_tile(void)
{
    dc_landscape_options lo;
    dc_landscape_defaults(&lo);
    lo.width = lo.height = N;
    lo.seed = 3;
    uint16_t *u = malloc((size_t)N * N * NB * sizeof *u);
    float *f = malloc((size_t)N * N * NB * sizeof *f);
    ck_assert_ptr_nonnull(u);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(dc_landscape_render(&lo, 0, 0, N, N, u, NULL), DC_OK);
    for (size_t i = 0; i < (size_t)N * N * NB; i++)
        f[i] = u[i];
    free(u);
    return f;
}

typedef struct sim {
    float *dates;
    uint8_t *masks;
} sim;

static sim simulate(const dc_cloud_sim_options *o, const float *clear, int h, int w, uint64_t seed,
                    int x0, int y0)
{
    sim s = {malloc((size_t)o->ndates * h * w * NB * sizeof(float)),
             malloc((size_t)o->ndates * h * w)};
    ck_assert_ptr_nonnull(s.dates);
    ck_assert_ptr_nonnull(s.masks);
    dc_error e;
    int rc = dc_cloud_sim_tile(o, clear, h, w, NB, kinds, seed, x0, y0, s.dates, s.masks, &e);
    ck_assert_msg(rc == DC_OK, "dc_cloud_sim_tile: %s", e.msg);
    return s;
}

static void sim_free(sim *s)
{
    free(s->dates);
    free(s->masks);
}

static double fraction_cloudy(const uint8_t *m, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += m[i] == DC_MASK_THIN || m[i] == DC_MASK_THICK;
    return (double)c / n;
}

START_TEST(test_reproducible_and_seeded)
{
    float *clear = clear_tile();
    dc_cloud_sim_options o;
    dc_cloud_sim_defaults(&o);
    size_t nd = (size_t)o.ndates * N * N;
    sim a = simulate(&o, clear, N, N, 42, 0, 0), b = simulate(&o, clear, N, N, 42, 0, 0);
    sim c = simulate(&o, clear, N, N, 43, 0, 0);
    ck_assert_int_eq(memcmp(a.dates, b.dates, nd * NB * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.masks, b.masks, nd), 0);
    ck_assert_int_ne(memcmp(a.dates, c.dates, nd * NB * sizeof(float)), 0);
    size_t differ = 0;
    for (size_t i = 0; i < nd; i++)
        differ += a.masks[i] != c.masks[i];
    ck_assert_msg(differ > nd / 20, "another seed changes only %zu of %zu mask pixels", differ, nd);
    sim_free(&a);
    sim_free(&b);
    sim_free(&c);
    free(clear);
}
END_TEST

START_TEST(test_dates_differ)
{
    float *clear = clear_tile();
    dc_cloud_sim_options o;
    dc_cloud_sim_defaults(&o);
    o.cover_min = 0.3;
    o.cover_max = 0.5;
    sim s = simulate(&o, clear, N, N, 5, 0, 0);
    size_t plane = (size_t)N * N;
    for (int d = 1; d < o.ndates; d++) {
        size_t differ = 0;
        for (size_t i = 0; i < plane; i++)
            differ += s.masks[i] != s.masks[d * plane + i];
        ck_assert_msg(differ > plane / 10, "dates 1 and %d share their clouds (%zu differ)", d + 1,
                      differ);
        ck_assert_int_ne(memcmp(s.dates, s.dates + d * plane * NB, plane * NB * sizeof(float)), 0);
    }
    sim_free(&s);
    free(clear);
}
END_TEST

START_TEST(test_cover_in_range)
{
    float *clear = clear_tile();
    const double ranges[][2] = {{0.1, 0.6}, {0.0, 0.0}, {0.3, 0.3}, {0.05, 0.2}, {0.7, 0.9}};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            dc_cloud_sim_options o;
            dc_cloud_sim_defaults(&o);
            o.cover_min = ranges[r][0];
            o.cover_max = ranges[r][1];
            sim s = simulate(&o, clear, N, N, seed, 0, 0);
            for (int d = 0; d < o.ndates; d++) {
                double f = fraction_cloudy(s.masks + (size_t)d * N * N, (size_t)N * N);
                ck_assert_msg(f >= o.cover_min - 0.1 && f <= o.cover_max + 0.1,
                              "cover %.3f outside %.2f..%.2f (seed %d date %d)", f, o.cover_min,
                              o.cover_max, (int)seed, d + 1);
                if (o.cover_max == 0.0)
                    ck_assert_double_eq(f, 0.0);
            }
            sim_free(&s);
        }
    free(clear);
}
END_TEST

/* mean over pixels of date d with mask value m of band b (date) and of the clear input */
static int masked_means(const sim *s, const float *clear, int d, int m, int b, double *date_mean,
                        double *clear_mean)
{
    double sd = 0.0, sc = 0.0;
    size_t n = 0, plane = (size_t)N * N;
    for (size_t i = 0; i < plane; i++)
        if (s->masks[d * plane + i] == m) {
            sd += s->dates[(d * plane + i) * NB + b];
            sc += clear[i * NB + b];
            n++;
        }
    *date_mean = n ? sd / n : 0.0;
    *clear_mean = n ? sc / n : 0.0;
    return (int)(n > 0x7fffffff ? 0x7fffffff : n);
}

START_TEST(test_thick_bright_shadow_dark)
{
    float *clear = clear_tile();
    dc_cloud_sim_options o;
    dc_cloud_sim_defaults(&o);
    o.cover_min = 0.3;
    o.cover_max = 0.6;
    o.cloud_height_m = 600.0; /* keep shadows near their clouds in a small tile */
    int seen_thick = 0, seen_shadow = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sim s = simulate(&o, clear, N, N, seed, 0, 0);
        for (int d = 0; d < o.ndates; d++) {
            double dm[NB], cm[NB];
            if (masked_means(&s, clear, d, DC_MASK_THICK, R, &dm[R], &cm[R]) > 100) {
                seen_thick++;
                for (int b = G; b <= B; b++)
                    masked_means(&s, clear, d, DC_MASK_THICK, b, &dm[b], &cm[b]);
                for (int b = R; b <= B; b++) {
                    ck_assert_msg(dm[b] > cm[b] + 2000.0, "thick cloud band %d: %.0f vs clear %.0f",
                                  b, dm[b], cm[b]);
                    ck_assert_msg(dm[b] > 4000.0 && dm[b] < 12000.0, "thick cloud DN %.0f", dm[b]);
                }
                ck_assert_msg(dm[B] >= dm[R], "thick cloud not blue-white: blue %.0f red %.0f",
                              dm[B], dm[R]);
            }
            if (masked_means(&s, clear, d, DC_MASK_SHADOW, R, &dm[R], &cm[R]) > 100) {
                seen_shadow++;
                for (int b = R; b <= NIR; b++) {
                    masked_means(&s, clear, d, DC_MASK_SHADOW, b, &dm[b], &cm[b]);
                    ck_assert_msg(dm[b] < 0.9 * cm[b], "shadow band %d: %.0f vs clear %.0f", b,
                                  dm[b], cm[b]);
                }
            }
        }
        sim_free(&s);
    }
    ck_assert_int_ge(seen_thick, 6);
    ck_assert_int_ge(seen_shadow, 3);
    free(clear);
}
END_TEST

START_TEST(test_haze_bluer_than_red)
{
    float *clear = clear_tile();
    dc_cloud_sim_options o;
    dc_cloud_sim_defaults(&o);
    o.thick = o.cirrus = o.shadows = o.radiometric = o.phenology = 0;
    sim s = simulate(&o, clear, N, N, 11, 0, 0);
    size_t plane = (size_t)N * N;
    for (int d = 0; d < o.ndates; d++) {
        double add[NB] = {0};
        for (size_t i = 0; i < plane; i++)
            for (int b = 0; b < NB; b++)
                add[b] += s.dates[(d * plane + i) * NB + b] - clear[i * NB + b];
        ck_assert_msg(add[B] > add[R] && add[R] > 0.0 && add[B] > add[NIR],
                      "date %d haze: blue %+.1f red %+.1f nir %+.1f per pixel", d + 1,
                      add[B] / plane, add[R] / plane, add[NIR] / plane);
        ck_assert_int_eq(fraction_cloudy(s.masks + d * plane, plane) == 0.0, 1);
    }
    sim_free(&s);
    free(clear);
}
END_TEST

START_TEST(test_tile_offset_independent)
{
    float *clear = clear_tile();
    dc_cloud_sim_options o;
    dc_cloud_sim_defaults(&o);
    o.frame_x0 = 0;
    o.frame_y0 = 0;
    o.frame_w = N;
    o.frame_h = N;
    sim full = simulate(&o, clear, N, N, 9, 0, 0);
    const int offs[][2] = {{96, 128}, {0, 0}, {192, 192}, {37, 5}};
    const int T = 64;
    float *win = malloc((size_t)T * T * NB * sizeof *win);
    ck_assert_ptr_nonnull(win);
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        int x0 = offs[k][0], y0 = offs[k][1];
        for (int j = 0; j < T; j++)
            memcpy(win + (size_t)j * T * NB, clear + ((size_t)(y0 + j) * N + x0) * NB,
                   (size_t)T * NB * sizeof *win);
        sim t = simulate(&o, win, T, T, 9, x0, y0);
        for (int d = 0; d < o.ndates; d++)
            for (int j = 0; j < T; j++) {
                size_t fo = ((size_t)d * N + y0 + j) * N + x0, to = ((size_t)d * T + j) * T;
                ck_assert_int_eq(memcmp(t.masks + to, full.masks + fo, (size_t)T), 0);
                ck_assert_msg(memcmp(t.dates + to * NB, full.dates + fo * NB,
                                     (size_t)T * NB * sizeof(float)) == 0,
                              "tile at %d,%d date %d row %d differs from the full simulation",
                              x0, y0, d + 1, j);
            }
        sim_free(&t);
    }
    free(win);
    sim_free(&full);
    free(clear);
}
END_TEST

START_TEST(test_bad_options)
{
    float px[NB] = {1000, 1000, 1000, 3000}, out[3 * NB];
    uint8_t m[3];
    dc_cloud_sim_options o;
    dc_error e;
    dc_cloud_sim_defaults(&o);
    o.cover_min = 0.7;
    o.cover_max = 0.2;
    ck_assert_int_eq(dc_cloud_sim_tile(&o, px, 1, 1, NB, kinds, 1, 0, 0, out, m, &e), DC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "cover"));
    dc_cloud_sim_defaults(&o);
    o.ndates = 0;
    ck_assert_int_eq(dc_cloud_sim_tile(&o, px, 1, 1, NB, kinds, 1, 0, 0, out, m, &e), DC_ERR_ARG);
    dc_cloud_sim_defaults(&o);
    o.sun_elevation_deg = 0.0;
    ck_assert_int_eq(dc_cloud_sim_tile(&o, px, 1, 1, NB, kinds, 1, 0, 0, out, m, &e), DC_ERR_ARG);
    dc_cloud_sim_defaults(&o);
    ck_assert_int_eq(dc_cloud_sim_tile(&o, px, 0, 1, NB, kinds, 1, 0, 0, out, m, &e), DC_ERR_ARG);
    /* a 1x1 tile works (calibration on itself) */
    ck_assert_int_eq(dc_cloud_sim_tile(&o, px, 1, 1, NB, kinds, 1, 0, 0, out, m, &e), DC_OK);
}
END_TEST

START_TEST(test_landscape_window_independent)
{
    dc_landscape_options lo;
    dc_landscape_defaults(&lo);
    lo.width = lo.height = 128;
    uint16_t *full = malloc(128 * 128 * NB * sizeof *full), *win = malloc(32 * 48 * NB * sizeof *win);
    ck_assert_ptr_nonnull(full);
    ck_assert_ptr_nonnull(win);
    ck_assert_int_eq(dc_landscape_render(&lo, 0, 0, 128, 128, full, NULL), DC_OK);
    ck_assert_int_eq(dc_landscape_render(&lo, 70, 33, 48, 32, win, NULL), DC_OK);
    for (int j = 0; j < 32; j++)
        ck_assert_int_eq(memcmp(win + (size_t)j * 48 * NB, full + ((size_t)(33 + j) * 128 + 70) * NB,
                                48 * NB * sizeof *win), 0);
    /* plausible values: NIR above red on average (vegetated scene), nothing zero */
    double r = 0, n = 0;
    for (size_t i = 0; i < 128 * 128; i++) {
        r += full[i * NB + R];
        n += full[i * NB + NIR];
        for (int b = 0; b < NB; b++)
            ck_assert_int_gt(full[i * NB + b], 0);
    }
    ck_assert_double_gt(n, 1.5 * r);
    ck_assert_int_eq(dc_landscape_render(&lo, 100, 100, 48, 32, win, NULL), DC_ERR_ARG);
    free(full);
    free(win);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alg_cloud_sim");
    TCase *tc = tcase_create("cloud_sim");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_reproducible_and_seeded);
    tcase_add_test(tc, test_dates_differ);
    tcase_add_test(tc, test_cover_in_range);
    tcase_add_test(tc, test_thick_bright_shadow_dark);
    tcase_add_test(tc, test_haze_bluer_than_red);
    tcase_add_test(tc, test_tile_offset_independent);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_landscape_window_independent);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
