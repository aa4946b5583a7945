/* diffcr unit tests — evaluation metrics and baselines (algorithms/metrics*.c, baselines.c):
 * closed-form MAE/RMSE/PSNR (PSNR of identical images = +INFINITY, as skimage), SSIM identities
 * (identical = 1, symmetric, flat images in closed form) and two values computed once with
 * scikit-image 0.19, the get_rgb stretch of the paper protocol (DIFFCR.md §7) on hand-computed
 * examples (clip at 2000, global minimum, truncation, the float32 model-range route), the report,
 * the JSON writer, and the median / least-cloudy composites. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/baselines.h"
#include "diffcr/metrics.h"
#include "testutil.h"

static float *alloc_img(int h, int w, int c)
{
    float *p = calloc((size_t)h * w * c, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* deterministic rational patterns (exact in float, so skimage saw the same numbers) */
static void pattern(float *a, float *b, int h, int w, int c)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                size_t i = ((size_t)y * w + x) * c + k;
                a[i] = (float)(((x * 7 + y * 13 + k * 3) % 17) / 16.0);
                b[i] = (float)(((x * 5 + y * 3 + k) % 11) / 10.0);
            }
}

/* ---- MAE / RMSE / PSNR ---- */

START_TEST(test_psnr_identical_is_inf)
{
    int h = 5, w = 6, c = 3;
    float *a = alloc_img(h, w, c);
    for (int i = 0; i < h * w * c; i++)
        a[i] = (float)i / 7.0f;
    dc_error_stats all, band[3];
    ck_assert_int_eq(dc_error_stats_compute(a, a, NULL, h, w, c, 1.0, band, &all, NULL), DC_OK);
    ck_assert(isinf(all.psnr) && all.psnr > 0);
    ck_assert(isinf(band[1].psnr));
    ck_assert(all.mae == 0 && all.rmse == 0);
    ck_assert_int_eq(all.count, h * w * c);
    free(a);
}
END_TEST

START_TEST(test_constant_offset)
{
    int h = 4, w = 5, c = 2;
    float *a = alloc_img(h, w, c), *b = alloc_img(h, w, c);
    uint8_t mask[20];
    for (int p = 0; p < h * w; p++) {
        mask[p] = p % 3 != 0;
        for (int k = 0; k < c; k++) {
            b[p * c + k] = 0.125f * (float)k + 0.01f * (float)p;
            /* band 0 off by +0.25, band 1 by -0.5 — inside the mask; +7 outside it */
            a[p * c + k] = b[p * c + k] + (mask[p] ? (k == 0 ? 0.25f : -0.5f) : 7.0f);
        }
    }
    dc_error_stats all, band[2];
    ck_assert_int_eq(dc_error_stats_compute(a, b, mask, h, w, c, 1.0, band, &all, NULL), DC_OK);
    ck_assert_double_eq_tol(band[0].mae, 0.25, 1e-6);
    ck_assert_double_eq_tol(band[0].mse, 0.0625, 1e-6);
    ck_assert_double_eq_tol(band[1].rmse, 0.5, 1e-6);
    ck_assert_double_eq_tol(band[0].psnr, 20 * log10(4.0), 1e-4); /* 12.0412 dB */
    ck_assert_double_eq_tol(band[1].psnr, 20 * log10(2.0), 1e-4);
    /* overall: MSE over all values = (0.0625 + 0.25) / 2, not the mean of the PSNRs */
    ck_assert_double_eq_tol(all.mse, 0.15625, 1e-6);
    ck_assert_double_eq_tol(all.psnr, 10 * log10(1 / 0.15625), 1e-4);
    ck_assert_double_eq_tol(all.mae, 0.375, 1e-6);
    int in_mask = 0;
    for (int p = 0; p < h * w; p++)
        in_mask += mask[p];
    ck_assert_int_eq(band[0].count, in_mask);
    ck_assert_int_eq(all.count, 2 * in_mask);
    /* data range 255: PSNR grows by 20·log10(255) */
    dc_error_stats all255;
    dc_error_stats_compute(a, b, mask, h, w, c, 255.0, NULL, &all255, NULL);
    ck_assert_double_eq_tol(all255.psnr - all.psnr, 20 * log10(255.0), 1e-9);
    /* an empty mask: no values, NaN, not an error */
    memset(mask, 0, sizeof mask);
    ck_assert_int_eq(dc_error_stats_compute(a, b, mask, h, w, c, 1.0, NULL, &all, NULL), DC_OK);
    ck_assert_int_eq(all.count, 0);
    ck_assert(isnan(all.psnr));
    free(a);
    free(b);
}
END_TEST

START_TEST(test_psnr_against_skimage)
{
    int h = 23, w = 29, c = 2;
    float *a = alloc_img(h, w, c), *b = alloc_img(h, w, c);
    pattern(a, b, h, w, c);
    dc_error_stats all;
    dc_error_stats_compute(a, b, NULL, h, w, c, 1.0, NULL, &all, NULL);
    /* skimage 0.19.3 peak_signal_noise_ratio(a, b, data_range=1.0) on the same pattern */
    ck_assert_double_eq_tol(all.psnr, 7.113347325900172, 1e-6);
    free(a);
    free(b);
}
END_TEST

/* ---- SSIM ---- */

START_TEST(test_ssim_against_skimage)
{
    int h = 23, w = 29, c = 2;
    float *a = alloc_img(h, w, c), *b = alloc_img(h, w, c);
    pattern(a, b, h, w, c);
    double g, u, band[2];
    dc_ssim_options uni;
    dc_ssim_options_init(&uni, DC_SSIM_UNIFORM);
    ck_assert_int_eq(dc_ssim(a, b, h, w, c, 1.0, NULL, &g, band, NULL, NULL), DC_OK);
    ck_assert_int_eq(dc_ssim(a, b, h, w, c, 1.0, &uni, &u, NULL, NULL, NULL), DC_OK);
    /* structural_similarity(a, b, data_range=1.0, channel_axis=-1, gaussian_weights=True,
     * sigma=1.5, use_sample_covariance=False) and the default (7x7) call, skimage 0.19.3 */
    ck_assert_double_eq_tol(g, 0.02226494384337444, 1e-9);
    ck_assert_double_eq_tol(u, 0.0033082059868017747, 1e-9);
    ck_assert_double_eq_tol(band[0], 0.048910259630576894, 1e-9); /* channel 0 alone */
    ck_assert_double_eq_tol((band[0] + band[1]) / 2, g, 1e-15);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_ssim_identical_and_symmetric)
{
    int h = 31, w = 17, c = 3;
    float *a = alloc_img(h, w, c), *b = alloc_img(h, w, c);
    pattern(a, b, h, w, c);
    float *map = alloc_img(h, w, c);
    for (int kind = 0; kind < 2; kind++) {
        dc_ssim_options o;
        dc_ssim_options_init(&o, kind ? DC_SSIM_UNIFORM : DC_SSIM_GAUSSIAN);
        double s_aa, s_ab, s_ba;
        ck_assert_int_eq(dc_ssim(a, a, h, w, c, 1.0, &o, &s_aa, NULL, map, NULL), DC_OK);
        ck_assert_double_eq_tol(s_aa, 1.0, 1e-12);
        for (int i = 0; i < h * w * c; i++) /* the whole map, reflected borders included */
            ck_assert_float_eq_tol(map[i], 1.0f, 1e-6f);
        dc_ssim(a, b, h, w, c, 1.0, &o, &s_ab, NULL, NULL, NULL);
        dc_ssim(b, a, h, w, c, 1.0, &o, &s_ba, NULL, NULL, NULL);
        ck_assert_double_eq_tol(s_ab, s_ba, 1e-12);
        ck_assert(s_ab < 0.5);
    }
    free(a);
    free(b);
    free(map);
}
END_TEST

START_TEST(test_ssim_flat_shift)
{
    /* flat images p and q: no variance, so S = (2pq + C1) / (p² + q² + C1) everywhere */
    int h = 12, w = 15, c = 1;
    float *a = alloc_img(h, w, c), *b = alloc_img(h, w, c);
    double p = 0.4, q = 0.3, r = 1.0, c1 = (0.01 * r) * (0.01 * r);
    for (int i = 0; i < h * w; i++) {
        a[i] = (float)p;
        b[i] = (float)q;
    }
    p = (float)p;
    q = (float)q;
    double want = (2 * p * q + c1) / (p * p + q * q + c1);
    for (int kind = 0; kind < 2; kind++) {
        dc_ssim_options o;
        dc_ssim_options_init(&o, kind ? DC_SSIM_UNIFORM : DC_SSIM_GAUSSIAN);
        double s;
        ck_assert_int_eq(dc_ssim(a, b, h, w, c, r, &o, &s, NULL, NULL, NULL), DC_OK);
        ck_assert_double_eq_tol(s, want, 1e-9);
    }
    free(a);
    free(b);
}
END_TEST

START_TEST(test_ssim_window_size)
{
    dc_ssim_options g, u;
    dc_ssim_options_init(&g, DC_SSIM_GAUSSIAN);
    dc_ssim_options_init(&u, DC_SSIM_UNIFORM);
    ck_assert_int_eq(dc_ssim_window_side(&g), 11); /* int(3.5·1.5 + 0.5) = 5 -> 11 taps */
    ck_assert_int_eq(dc_ssim_window_side(&u), 7);
    float *a = alloc_img(11, 10, 1);
    double s;
    dc_error err;
    ck_assert_int_eq(dc_ssim(a, a, 11, 10, 1, 1.0, &g, &s, NULL, NULL, &err), DC_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "smaller than the 11x11 window"));
    ck_assert_int_eq(dc_ssim(a, a, 11, 10, 1, 1.0, &u, &s, NULL, NULL, &err), DC_OK);
    ck_assert_int_eq(dc_ssim(a, a, 10, 11, 1, 0.0, &u, &s, NULL, NULL, &err), DC_ERR_ARG);
    free(a);
}
END_TEST

/* ---- paper protocol ---- */

START_TEST(test_stretch_by_hand)
{
    /* clip at 2000, min 0, max 2000: 255·(v/2000) truncated */
    const uint16_t dn[] = {0, 1, 8, 400, 1000, 1999, 2000, 5000};
    const uint8_t want[] = {0, 0, 1, 51, 127, 254, 255, 255};
    uint8_t out[8];
    dc_paper_stretch_u16(dn, 8, out);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(out[i], want[i]);
    /* the global minimum (500) over all bands comes off first: (v - 500) / 1500 */
    const uint16_t dn2[] = {500, 1000, 1500, 2500, 1100};
    const uint8_t want2[] = {0, 85, 170, 255, 102};
    dc_paper_stretch_u16(dn2, 5, out);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(out[i], want2[i]);
    /* everything equal after the clip: get_rgb's 255-everywhere branch */
    const uint16_t dn3[] = {2500, 3000, 2000};
    dc_paper_stretch_u16(dn3, 3, out);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(out[i], 255);
}
END_TEST

START_TEST(test_rgb8_from_dn_and_model)
{
    /* 1 x 4 pixels x 3 bands; DN floats round half up, clamp [0, 10000] */
    const float dn[12] = {0, 1999.6f, 1000, 399.5f, -50, 2000, 12000, 8.4f, 1000.49f, 1, 2, 3};
    const uint8_t want[12] = {0, 255, 127, 51, 0, 255, 255, 1, 127, 0, 0, 0};
    uint8_t out[12], out_m[12];
    ck_assert_int_eq(dc_paper_rgb8_from_dn(dn, 1, 4, 3, out, NULL), DC_OK);
    for (int i = 0; i < 12; i++)
        ck_assert_uint_eq(out[i], want[i]);
    /* model range x = DN/5000 - 1: get_rgb's float32 steps give the DN back, so both routes agree;
     * checked for every DN of 0..2000 against a fixed 0 and 2000 in the same image */
    for (int v = 0; v <= 2100; v++) {
        float d3[3] = {0.0f, 2000.0f, (float)v}, m3[3];
        for (int k = 0; k < 3; k++)
            m3[k] = (float)(d3[k] / 5000.0 - 1.0);
        dc_paper_rgb8_from_dn(d3, 1, 1, 3, out, NULL);
        dc_paper_rgb8_from_model(m3, 1, 1, 3, out_m, NULL);
        ck_assert_uint_eq(out[2], out_m[2]);
        ck_assert_uint_eq(out[2], v >= 2000 ? 255 : (unsigned)(255.0 * (v / 2000.0)));
    }
    /* model range by hand: -1 -> 0 DN, -0.8 -> 1000, -0.75 -> 1250, 1 -> 10000 -> clip 2000;
     * NaN counts as 0 */
    const float x[6] = {-1.0f, -0.8f, -0.75f, 1.0f, NAN, -3.0f};
    const uint8_t want_m[6] = {0, 127, 159, 255, 0, 0};
    ck_assert_int_eq(dc_paper_rgb8_from_model(x, 1, 2, 3, out_m, NULL), DC_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(out_m[i], want_m[i]);
}
END_TEST

START_TEST(test_paper_metrics)
{
    int h = 16, w = 16, c = 3;
    float *gt = alloc_img(h, w, c), *out = alloc_img(h, w, c), *mgt = alloc_img(h, w, c);
    for (int i = 0; i < h * w * c; i++) {
        gt[i] = (float)(100 + (i * 37) % 1500);
        out[i] = gt[i] + 300; /* a global offset below the 2000 clip */
        mgt[i] = gt[i] / 5000.0f - 1.0f;
    }
    dc_paper_metrics m;
    /* per-image min-max stretch hides a global offset completely (DIFFCR.md §7) */
    ck_assert_int_eq(dc_paper_metrics_dn(out, gt, h, w, c, &m, NULL), DC_OK);
    ck_assert(isinf(m.psnr));
    ck_assert_double_eq_tol(m.ssim, 1.0, 1e-12);
    ck_assert_int_eq(dc_paper_metrics_model(mgt, mgt, h, w, c, &m, NULL), DC_OK);
    ck_assert(isinf(m.psnr));
    /* a real difference: finite, and SSIM below 1 */
    out[5] += 900;
    out[100] = 0;
    ck_assert_int_eq(dc_paper_metrics_dn(out, gt, h, w, c, &m, NULL), DC_OK);
    ck_assert(isfinite(m.psnr) && m.psnr > 10);
    ck_assert(m.ssim < 1.0 && m.ssim > 0.0);
    /* the uint8 metrics directly: one value off by 255 in 16·16·3 -> MSE = 255²/768 */
    uint8_t a8[768], b8[768];
    memset(a8, 0, sizeof a8);
    memset(b8, 0, sizeof b8);
    b8[7] = 255;
    ck_assert_int_eq(dc_paper_metrics_u8(a8, b8, h, w, c, &m, NULL), DC_OK);
    ck_assert_double_eq_tol(m.psnr, 10 * log10(768.0), 1e-9);
    free(gt);
    free(out);
    free(mgt);
}
END_TEST

/* ---- report and JSON ---- */

START_TEST(test_report_and_json)
{
    int h = 20, w = 24, c = 3;
    float *ref = alloc_img(h, w, c), *res = alloc_img(h, w, c);
    uint8_t *mask = calloc((size_t)h * w, 1);
    for (int i = 0; i < h * w * c; i++) {
        ref[i] = (float)(500 + (i * 53) % 1300); /* below the 2000 clip */
        res[i] = ref[i] + 100; /* 0.01 reflectance everywhere */
    }
    for (int p = 0; p < h * w; p += 2)
        mask[p] = 1;
    dc_metrics_report rep;
    ck_assert_int_eq(dc_metrics_report_dn(res, ref, mask, h, w, c, 10000, &rep, NULL), DC_OK);
    ck_assert_int_eq(rep.compared, h * w / 2);
    ck_assert_double_eq_tol(rep.all.mae, 0.01, 1e-7);
    ck_assert_double_eq_tol(rep.all.psnr, 40.0, 1e-4);
    ck_assert(rep.have_ssim && rep.have_paper);
    ck_assert(rep.ssim > 0.9 && rep.ssim < 1.0);
    ck_assert(isinf(rep.paper.psnr)); /* the offset vanishes in the stretch */

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dc_metrics_labels lb = {"a.tif", "b \"q\".tif", "m.tif", NULL};
    dc_metrics_write_json(f, &rep, &lb);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "\"paper\": {\"psnr\": \"inf\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"reference\": \"b \\\"q\\\".tif\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"compared\": 240"));
    free(buf);

    /* 2 bands, 9x9: no Gaussian SSIM, no paper protocol -> null */
    ck_assert_int_eq(dc_metrics_report_dn(res, ref, NULL, 9, 9, 2, 10000, &rep, NULL), DC_OK);
    ck_assert(!rep.have_ssim && !rep.have_paper && isnan(rep.ssim) && !isnan(rep.ssim_uniform));
    f = open_memstream(&buf, &len);
    dc_metrics_write_json(f, &rep, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "\"paper\": null"));
    ck_assert_ptr_nonnull(strstr(buf, "\"ssim\": null"));
    free(buf);
    f = open_memstream(&buf, &len);
    dc_metrics_write_html(f, &rep, &lb);
    dc_metrics_write_text(f, &rep, &lb);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "</html>"));
    ck_assert_ptr_nonnull(strstr(buf, "b &quot;q&quot;.tif"));
    free(buf);
    free(ref);
    free(res);
    free(mask);
}
END_TEST

/* ---- baselines ---- */

START_TEST(test_median)
{
    int h = 2, w = 3, c = 2;
    float d[4][12];
    for (int i = 0; i < 12; i++) {
        d[0][i] = 1000;
        d[1][i] = 3000;
        d[2][i] = 2000;
        d[3][i] = 2500;
    }
    d[1][5] = NAN;
    const float *dates[4] = {d[0], d[1], d[2], d[3]};
    float out[12];
    ck_assert_int_eq(dc_baseline_median(dates, NULL, 3, h, w, c, out, NULL), DC_OK);
    ck_assert_float_eq(out[0], 2000);
    ck_assert_float_eq(out[5], 1500); /* NaN skipped: median of 1000, 2000 */
    ck_assert_int_eq(dc_baseline_median(dates, NULL, 4, h, w, c, out, NULL), DC_OK);
    ck_assert_float_eq(out[0], 2250); /* even count: mean of the middle two, as numpy */
    uint8_t v0[6] = {1, 1, 1, 1, 1, 1}, none[6] = {0};
    const uint8_t *valid[4] = {v0, none, none, none};
    dc_baseline_median(dates, valid, 4, h, w, c, out, NULL);
    ck_assert_float_eq(out[3], 1000);
    v0[1] = 0;
    dc_baseline_median(dates, valid, 4, h, w, c, out, NULL);
    ck_assert(isnan(out[2]) && isnan(out[3])); /* pixel 1: no date has data */
}
END_TEST

START_TEST(test_least_cloudy)
{
    int h = 4, w = 8, c = 3;
    float *d[3];
    for (int k = 0; k < 3; k++) {
        d[k] = alloc_img(h, w, c);
        for (int i = 0; i < h * w * c; i++)
            d[k][i] = (float)(800 + k);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = ((size_t)y * w + x) * c + 2; /* blue */
            if (x < 4)
                d[0][i] = 6000; /* date 1: left half cloudy */
            if (x >= 4)
                d[2][i] = 6000; /* date 3: right half cloudy */
            if (x == 0 && y == 0)
                d[1][i] = 3000; /* date 2: one bright pixel */
        }
    const float *dates[3] = {d[0], d[1], d[2]};
    float *out = alloc_img(h, w, c);
    int choice[2];
    ck_assert_int_eq(dc_baseline_least_cloudy(dates, NULL, 3, h, w, c, 2, 2500, 0, out, choice,
                                              NULL), DC_OK);
    ck_assert_int_eq(choice[0], 1);
    ck_assert_mem_eq(out, d[1], (size_t)h * w * c * sizeof *out);
    /* per 4-px block: left -> date 3, right -> date 1 (tie with date 2 goes to the earlier) */
    ck_assert_int_eq(dc_baseline_least_cloudy(dates, NULL, 3, h, w, c, 2, 2500, 4, out, choice,
                                              NULL), DC_OK);
    ck_assert_int_eq(choice[0], 2);
    ck_assert_int_eq(choice[1], 0);
    ck_assert_float_eq(out[0], 802);
    ck_assert_float_eq(out[(size_t)(w - 1) * c], 800);
    dc_error err;
    ck_assert_int_eq(dc_baseline_least_cloudy(dates, NULL, 3, h, w, c, 3, 2500, 0, out, NULL,
                                              &err), DC_ERR_ARG);
    for (int k = 0; k < 3; k++)
        free(d[k]);
    free(out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *t = tcase_create("core");
    tcase_add_test(t, test_psnr_identical_is_inf);
    tcase_add_test(t, test_constant_offset);
    tcase_add_test(t, test_psnr_against_skimage);
    tcase_add_test(t, test_ssim_against_skimage);
    tcase_add_test(t, test_ssim_identical_and_symmetric);
    tcase_add_test(t, test_ssim_flat_shift);
    tcase_add_test(t, test_ssim_window_size);
    tcase_add_test(t, test_stretch_by_hand);
    tcase_add_test(t, test_rgb8_from_dn_and_model);
    tcase_add_test(t, test_paper_metrics);
    tcase_add_test(t, test_report_and_json);
    tcase_add_test(t, test_median);
    tcase_add_test(t, test_least_cloudy);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
