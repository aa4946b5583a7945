/* diffcr tests — shared helpers: deterministic random fills, error measures, gradient checks. */
#ifndef DIFFCR_TESTUTIL_H
#define DIFFCR_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Uniform values in [-scale, scale] from a fixed-seed xorshift generator (tests only). */
void tu_fill_uniform(float *x, size_t n, uint64_t seed, float scale);
/* max |a - b| */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* max |a - b| / max(max |b|, floor): a relative error robust to tiny values. */
double tu_max_rel_diff(const float *a, const float *b, size_t n, double floor);
/* sum of x[i] * r[i] in double: the scalar "loss" whose gradient w.r.t. out is r. */
double tu_dot(const float *x, const float *r, size_t n);

/* Central finite differences: for up to max_checks indices i of x (all if n <= max_checks, else an
 * evenly spread deterministic subset), compare grad[i] with (loss(x+h e_i) - loss(x-h e_i)) / 2h.
 * Passes when |num - ana| <= atol + rtol * max(|num|, |ana|) for every checked index. On failure
 * writes the first offending index and values to msg and returns 0. x is restored. */
typedef double (*tu_loss_fn)(void *ctx);
int tu_gradcheck(tu_loss_fn loss, void *ctx, float *x, const float *grad, size_t n, float h,
                 double atol, double rtol, int max_checks, char *msg, size_t msglen);

/* max |got - want| / max(max |want|, 1e-3), against a double-precision reference (NaN -> inf). */
double tu_max_rel_err(const float *got, const double *want, size_t n);
/* malloc of n floats (at least one) that fails the running Check test instead of returning NULL. */
float *tu_alloc_floats(size_t n);

/* Run a Check suite (normal verbosity) and return the process exit status: 0 when all passed. */
typedef struct Suite Suite;
int tu_run_suite(Suite *s);

/* Path of a scratch file under the test's temp folder ($TMPDIR or /tmp), unique per process. */
const char *tu_tmp_path(const char *name);

#endif
