/* diffcr tests — Philox 4x32-10 and the Box-Muller normals (philox.h).
 *
 * Known answers: the Random123 kat_vectors for philox4x32 with 10 rounds (counter, key, output).
 * Then the properties the samplers rely on: element i depends only on (key, counter, i), so fills
 * agree across thread counts and prefixes; different tiles/steps/streams give unrelated noise; the
 * normals have mean 0 and variance 1; the libm-free log/sin/cos agree with libm. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/philox.h"
#include "testutil.h"

START_TEST(test_kat_vectors)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t v = 0; v < sizeof kat / sizeof kat[0]; v++) {
        uint32_t out[4];
        dc_philox4x32_10(out, kat[v].ctr, kat[v].key);
        for (int j = 0; j < 4; j++)
            ck_assert_msg(out[j] == kat[v].out[j], "vector %zu word %d: %08x != %08x", v, j,
                          out[j], kat[v].out[j]);
    }
}
END_TEST

START_TEST(test_uniform_range)
{
    ck_assert(dc_philox_uniform(0) > 0.0);
    ck_assert(dc_philox_uniform(0xffffffffu) < 1.0);
    ck_assert(dc_philox_uniform(0x80000000u) == 0.5 + 0.5 / 4294967296.0);
}
END_TEST

/* The reproducible transform against libm: same normals to float precision. */
START_TEST(test_box_muller_matches_libm)
{
    const double two_pi = 6.283185307179586476925;
    uint32_t a = 12345u, b = 987654321u;
    double worst = 0.0;
    for (int i = 0; i < 200000; i++) {
        a = a * 1664525u + 1013904223u;
        b = b * 22695477u + 1u;
        if (i < 4) { /* the extremes */
            a = i & 1 ? 0xffffffffu : 0u;
            b = i & 2 ? 0xffffffffu : 0u;
        }
        float z[2];
        dc_philox_box_muller(z, a, b);
        double u0 = dc_philox_uniform(a), u1 = dc_philox_uniform(b);
        double r = sqrt(-2.0 * log(u0));
        double e0 = r * cos(two_pi * u1), e1 = r * sin(two_pi * u1);
        double d0 = fabs(z[0] - e0) / fmax(1.0, fabs(e0)), d1 = fabs(z[1] - e1) / fmax(1.0, fabs(e1));
        worst = fmax(worst, fmax(d0, d1));
    }
    ck_assert_msg(worst < 2e-7, "max relative difference to libm %g", worst);
}
END_TEST

START_TEST(test_moments)
{
    const size_t n = 1 << 20;
    float *z = malloc(n * sizeof *z);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(dc_philox_fill_normal(z, n, 42, DC_PHILOX_STREAM_INIT, 7, 0, NULL), DC_OK);
    double s = 0, s2 = 0, s4 = 0;
    size_t beyond2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = z[i];
        s += v;
        s2 += v * v;
        s4 += v * v * v * v;
        beyond2 += fabs(v) > 2.0;
    }
    double mean = s / n, var = s2 / n - mean * mean, kurt = s4 / n / (var * var);
    ck_assert_msg(fabs(mean) < 5e-3, "mean %g", mean);
    ck_assert_msg(fabs(var - 1.0) < 5e-3, "variance %g", var);
    ck_assert_msg(fabs(kurt - 3.0) < 0.05, "kurtosis %g", kurt);
    double frac = (double)beyond2 / n; /* 2 * (1 - Phi(2)) = 0.0455 */
    ck_assert_msg(fabs(frac - 0.0455) < 0.002, "P(|z| > 2) = %g", frac);
    free(z);
}
END_TEST

/* Element i = component i%4 of group i/4; a shorter fill is a prefix of a longer one. */
START_TEST(test_counter_layout)
{
    float big[1003], small[10], g[4];
    ck_assert_int_eq(dc_philox_fill_normal(big, 1003, 5, 1, 2, 3, NULL), DC_OK);
    ck_assert_int_eq(dc_philox_fill_normal(small, 10, 5, 1, 2, 3, NULL), DC_OK);
    ck_assert(memcmp(big, small, sizeof small) == 0);
    for (uint32_t grp = 0; grp < 250; grp += 37) {
        dc_philox_normal4(g, 5, 1, 2, 3, grp);
        ck_assert(memcmp(g, big + 4 * grp, sizeof g) == 0);
    }
    float u[9];
    ck_assert_int_eq(dc_philox_fill_uniform(u, 9, 5, 1, 2, 3, NULL), DC_OK);
    for (uint64_t i = 0; i < 9; i++) {
        ck_assert(u[i] == (float)dc_philox_uniform(dc_philox_u32(5, 1, 2, 3, i)));
        ck_assert(u[i] >= 0.0f && u[i] <= 1.0f);
    }
    ck_assert_int_ne(dc_philox_fill_normal(NULL, 4, 0, 0, 0, 0, NULL), DC_OK);
}
END_TEST

START_TEST(test_thread_independence)
{
    const size_t n = 200003; /* > 4096 groups: the fill runs in parallel; odd tail */
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    ck_assert(a && b && c);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    ck_assert_int_eq(dc_philox_fill_normal(a, n, 0x0123456789abcdefull, 0, 17, 4, NULL), DC_OK);
    omp_set_num_threads(2);
    ck_assert_int_eq(dc_philox_fill_normal(b, n, 0x0123456789abcdefull, 0, 17, 4, NULL), DC_OK);
    omp_set_num_threads(3);
    ck_assert_int_eq(dc_philox_fill_normal(c, n, 0x0123456789abcdefull, 0, 17, 4, NULL), DC_OK);
    omp_set_num_threads(saved);
    ck_assert(memcmp(a, b, n * sizeof *a) == 0);
    ck_assert(memcmp(a, c, n * sizeof *a) == 0);
    /* and the same call again gives the same bits */
    ck_assert_int_eq(dc_philox_fill_normal(b, n, 0x0123456789abcdefull, 0, 17, 4, NULL), DC_OK);
    ck_assert(memcmp(a, b, n * sizeof *a) == 0);
    free(a);
    free(b);
    free(c);
}
END_TEST

static double correlation(const float *a, const float *b, size_t n)
{
    double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        sa += a[i];
        sb += b[i];
        sab += (double)a[i] * b[i];
        saa += (double)a[i] * a[i];
        sbb += (double)b[i] * b[i];
    }
    double ca = saa - sa * sa / n, cb = sbb - sb * sb / n, cab = sab - sa * sb / n;
    return cab / sqrt(ca * cb);
}

START_TEST(test_streams_uncorrelated)
{
    const size_t n = 65536;
    float *base = malloc(n * sizeof *base), *other = malloc(n * sizeof *other);
    ck_assert(base && other);
    ck_assert_int_eq(dc_philox_fill_normal(base, n, 99, 0, 1000, 0, NULL), DC_OK);
    /* neighbouring tile, next step, other stream, other seed, and the next group shifted by one */
    const struct {
        uint64_t seed;
        uint32_t stream, tile, step;
    } v[] = {{99, 0, 1001, 0}, {99, 0, 999, 0}, {99, 0, 1000, 1}, {99, 1, 1000, 0}, {100, 0, 1000, 0}};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        ck_assert_int_eq(dc_philox_fill_normal(other, n, v[k].seed, v[k].stream, v[k].tile,
                                               v[k].step, NULL), DC_OK);
        double c = correlation(base, other, n);
        ck_assert_msg(fabs(c) < 0.05, "variant %zu: correlation %g", k, c);
        ck_assert(memcmp(base, other, 64) != 0);
    }
    /* within one stream: element i against element i+1 and i+4 */
    ck_assert(fabs(correlation(base, base + 1, n - 1)) < 0.05);
    ck_assert(fabs(correlation(base, base + 4, n - 4)) < 0.05);
    free(base);
    free(other);
}
END_TEST

static Suite *philox_suite(void)
{
    Suite *s = suite_create("philox");
    TCase *tc = tcase_create("philox");
    tcase_add_test(tc, test_kat_vectors);
    tcase_add_test(tc, test_uniform_range);
    tcase_add_test(tc, test_box_muller_matches_libm);
    tcase_add_test(tc, test_moments);
    tcase_add_test(tc, test_counter_layout);
    tcase_add_test(tc, test_thread_independence);
    tcase_add_test(tc, test_streams_uncorrelated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(philox_suite());
}
