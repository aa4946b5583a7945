/* diffcr tests — shared helpers (see testutil.h). */
#include "testutil.h"

#include <check.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void tu_fill_uniform(float *x, size_t n, uint64_t seed, float scale)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0; /* [0,1) */
        x[i] = (float)((2.0 * u - 1.0) * scale);
    }
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

double tu_max_rel_diff(const float *a, const float *b, size_t n, double floor)
{
    double mb = floor;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)b[i]) > mb)
            mb = fabs((double)b[i]);
    return tu_max_abs_diff(a, b, n) / mb;
}

double tu_dot(const float *x, const float *r, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * (double)r[i];
    return s;
}

int tu_gradcheck(tu_loss_fn loss, void *ctx, float *x, const float *grad, size_t n, float h,
                 double atol, double rtol, int max_checks, char *msg, size_t msglen)
{
    size_t checks = n <= (size_t)max_checks ? n : (size_t)max_checks;
    for (size_t k = 0; k < checks; k++) {
        size_t i = checks == n ? k : (size_t)(((double)k + 0.5) * (double)n / (double)checks);
        float saved = x[i];
        x[i] = saved + h;
        double lp = loss(ctx);
        x[i] = saved - h;
        double lm = loss(ctx);
        x[i] = saved;
        double num = (lp - lm) / (2.0 * (double)h);
        double ana = grad[i];
        double tol = atol + rtol * fmax(fabs(num), fabs(ana));
        if (!(fabs(num - ana) <= tol)) {
            snprintf(msg, msglen, "index %zu: analytic %.6g vs numeric %.6g (tol %.3g)", i, ana, num, tol);
            return 0;
        }
    }
    (void)loss(ctx); /* leave any state the callback keeps consistent with the restored x */
    return 1;
}

const char *tu_tmp_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/diffcr-test-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
    return buf;
}

double tu_max_rel_err(const float *got, const double *want, size_t n)
{
    double scale = 1e-3, err = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        err = (d > err || isnan(d)) ? (isnan(d) ? INFINITY : d) : err;
    }
    return err / scale;
}

float *tu_alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
