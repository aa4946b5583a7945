/* diffcr GPU tests — a tiny pass/fail/skip reporter and the helpers both GPU tests share.
 *
 * Why not Check: the GPU machine has no libcheck, and these tests are run there from a carried
 * bundle. Plain C, header-only, one line printed per check:
 *
 *   PASS  layernorm fwd P=4097 C=256 out: err 2.1e-07 (max|ref| 3.9) tol 1e-04
 *
 * Every comparison runs the same op on two backends: side 0 is "ref" (host memory, the oracle),
 * side 1 the device under test ("cuda" unless $DIFFCR_GPU_TEST_DEVICE names another; "cpu" is
 * handy to exercise the tests themselves on a machine without a GPU). A gc_buf holds one buffer
 * on each side; inputs are filled on the host and sent to both with to_device, results come back
 * with to_host + synchronize, so the same code drives host and device memory. */
#ifndef DIFFCR_GPU_CHECK_H
#define DIFFCR_GPU_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/backend.h"

#define GC_SKIP 77

typedef struct gc_state {
    int pass, fail;
    dc_backend *be[2]; /* [0] ref, [1] device under test */
    const char *device;
} gc_state;

static gc_state gc;

/* --- reporting ---------------------------------------------------------------------------- */

static inline void gc_vline(int ok, const char *fmt, va_list ap)
{
    printf("%s  ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    if (ok)
        gc.pass++;
    else
        gc.fail++;
}

/* A check with a free-form message; returns ok. */
static inline int gc_check(int ok, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static inline int gc_check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gc_vline(ok, fmt, ap);
    va_end(ap);
    return ok;
}

static inline void gc_info(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static inline void gc_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("INFO  ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

/* Summary line and exit status (0 all passed, 1 any failed). */
static inline int gc_finish(const char *prog)
{
    printf("%s: %d passed, %d failed (device %s)\n", prog, gc.pass, gc.fail, gc.device ? gc.device : "?");
    return gc.fail ? 1 : 0;
}

/* --- set-up --------------------------------------------------------------------------------- */

static inline const char *gc_device_name(void)
{
    const char *d = getenv("DIFFCR_GPU_TEST_DEVICE");
    return d && *d ? d : "cuda";
}

static inline int gc_is_cuda(const char *device) { return strncmp(device, "cuda", 4) == 0; }

/* Exit 77 (ctest: skipped) with the loader's reason when the CUDA backend cannot run here. */
static inline void gc_skip_without_cuda(const char *device)
{
    if (!gc_is_cuda(device))
        return;
    const char *why = dc_cuda_unavailable_reason();
    if (why) {
        printf("SKIP: %s\n", why);
        exit(GC_SKIP);
    }
}

/* Open "ref" and the device under test; any failure to create them is a test failure (exit 1):
 * the skip case was handled before. */
static inline void gc_open_backends(void)
{
    gc.device = gc_device_name();
    gc_skip_without_cuda(gc.device);
    const char *names[2] = {"ref", gc.device};
    for (int s = 0; s < 2; s++) {
        dc_error err;
        dc_error_clear(&err);
        if (dc_backend_create(&gc.be[s], names[s], 0, &err) != DC_OK) {
            printf("FAIL  create backend '%s': %s\n", names[s], err.msg);
            exit(1);
        }
    }
    gc_info("reference backend %s, device under test %s (%s memory)", gc.be[0]->name, gc.be[1]->name,
            gc.be[1]->is_host ? "host" : "device");
}

/* Which stand-in the device under test is, from its description: the CUDA simulator
 * (tests/cudasim: the real kernels, observable allocations, a settable GPU generation) or the
 * emulated device (tests/emulated: reference maths, every precision computed in fp32). */
static inline int gc_dut_is_cudasim(void) { return strstr(gc.be[1]->description, "cudasim") != NULL; }
static inline int gc_dut_is_emulated(void) { return strstr(gc.be[1]->description, "emulated") != NULL; }

static inline void gc_close_backends(void)
{
    for (int s = 0; s < 2; s++) {
        dc_backend_destroy(gc.be[s]);
        gc.be[s] = NULL;
    }
}

/* Report an asynchronous failure on side s (kernels are queued; errors surface here). */
static inline int gc_sync(int s, const char *what)
{
    dc_error err;
    dc_error_clear(&err);
    int rc = gc.be[s]->synchronize(gc.be[s], &err);
    if (rc != DC_OK)
        gc_check(0, "%s: synchronize on %s failed: %s", what, gc.be[s]->name, err.msg);
    return rc == DC_OK;
}

/* --- deterministic data --------------------------------------------------------------------- */

static inline uint64_t gc_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi) from a seeded generator (24-bit resolution: every value is a float). */
static inline void gc_fill_host(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t st = seed * 0x2545F4914F6CDD1Dull + 1;
    for (size_t i = 0; i < n; i++) {
        float u = (float)(gc_splitmix(&st) >> 40) * (1.0f / 16777216.0f);
        x[i] = lo + (hi - lo) * u;
    }
}

static inline void *gc_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        printf("FAIL  host malloc of %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

/* --- buffer twins --------------------------------------------------------------------------- */

typedef struct gc_buf {
    void *p[2];
    size_t bytes;
} gc_buf;

static inline gc_buf gc_alloc(size_t bytes)
{
    gc_buf b;
    b.bytes = bytes;
    for (int s = 0; s < 2; s++) {
        b.p[s] = gc.be[s]->alloc(gc.be[s], bytes ? bytes : 4);
        if (!b.p[s]) {
            printf("FAIL  %s: alloc of %zu bytes\n", gc.be[s]->name, bytes);
            exit(1);
        }
    }
    return b;
}

static inline gc_buf gc_floats(size_t n) { return gc_alloc(n * sizeof(float)); }

static inline void gc_free(gc_buf *b)
{
    for (int s = 0; s < 2; s++)
        if (b->p[s])
            gc.be[s]->release(gc.be[s], b->p[s]);
    b->p[0] = b->p[1] = NULL;
}

/* End of a gc_free_list / gc_junk_list argument list (a typed null: a bare NULL may be an int). */
#define GC_END ((gc_buf *)0)

/* gc_free_list(&a, &b, ..., GC_END) */
static inline void gc_free_list(gc_buf *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (gc_buf *b = first; b; b = va_arg(ap, gc_buf *))
        gc_free(b);
    va_end(ap);
}

static inline float *gc_f(const gc_buf *b, int s) { return (float *)b->p[s]; }
static inline int *gc_i(const gc_buf *b, int s) { return (int *)b->p[s]; }

/* Same host bytes into both sides. */
static inline void gc_set(gc_buf *b, const void *host)
{
    for (int s = 0; s < 2; s++)
        gc.be[s]->to_device(gc.be[s], b->p[s], host, b->bytes);
}

static inline void gc_fill(gc_buf *b, uint64_t seed, float lo, float hi)
{
    size_t n = b->bytes / sizeof(float);
    float *h = gc_xmalloc(n * sizeof *h);
    gc_fill_host(h, n, seed, lo, hi);
    gc_set(b, h);
    free(h);
}

/* Junk in an output before the op: an op that accumulates instead of writing (ops.h: backward
 * WRITES) or that leaves part of its output untouched then disagrees with the reference. */
static inline void gc_junk(gc_buf *b, uint64_t seed) { gc_fill(b, seed ^ 0xBADC0FFEull, 7.0f, 9.0f); }

/* gc_junk_list(seed, &a, &b, ..., GC_END) */
static inline void gc_junk_list(uint64_t seed, gc_buf *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (gc_buf *b = first; b; b = va_arg(ap, gc_buf *))
        gc_junk(b, seed++);
    va_end(ap);
}

/* Side s's bytes on the host (caller frees); NULL after reporting a failed synchronize. */
static inline void *gc_get(const gc_buf *b, int s, const char *what)
{
    void *h = gc_xmalloc(b->bytes);
    gc.be[s]->to_host(gc.be[s], h, b->p[s], b->bytes);
    if (!gc_sync(s, what)) {
        free(h);
        return NULL;
    }
    return h;
}

/* --- comparisons ---------------------------------------------------------------------------- */

typedef struct gc_diff {
    double max_abs;  /* max |got - ref| (inf where exactly one is NaN or the infinities differ) */
    double max_ref;  /* max |ref| over finite values: the scale */
    size_t worst;    /* index of max_abs */
    size_t ndiff;    /* elements not bit-equal */
} gc_diff;

static inline gc_diff gc_diff_floats(const float *got, const float *ref, size_t n)
{
    gc_diff d = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        float a = got[i], b = ref[i];
        if (memcmp(&a, &b, sizeof a) != 0)
            d.ndiff++;
        if (isfinite(b) && fabsf(b) > d.max_ref)
            d.max_ref = fabsf(b);
        double e;
        if (isnan(a) || isnan(b))
            e = (isnan(a) && isnan(b)) ? 0.0 : INFINITY;
        else if (isinf(a) || isinf(b))
            e = (a == b) ? 0.0 : INFINITY;
        else
            e = fabs((double)a - (double)b);
        if (e > d.max_abs) {
            d.max_abs = e;
            d.worst = i;
        }
    }
    return d;
}

/* The error measure used for fp32: max abs error divided by max(1, max|ref|), i.e. the absolute
 * error for O(1) values and the relative one for large values (long reductions such as weight
 * gradients summed over many pixels). */
static inline double gc_scaled(const gc_diff *d) { return d->max_abs / (d->max_ref > 1.0 ? d->max_ref : 1.0); }

/* Compare host arrays: scaled error <= tol. */
static inline int gc_cmp_host(const char *what, const float *got, const float *ref, size_t n, double tol)
{
    gc_diff d = gc_diff_floats(got, ref, n);
    double e = gc_scaled(&d);
    return gc_check(e <= tol, "%s: err %.3g (max abs %.3g at %zu, max|ref| %.3g) tol %.2g", what, e, d.max_abs,
                    d.worst, d.max_ref, tol);
}

/* Relative to max|ref| only (no floor at 1): for reduced-precision bounds, where a small output
 * must still be accurate relative to its own size. */
static inline int gc_cmp_host_rel(const char *what, const float *got, const float *ref, size_t n, double tol,
                                  double *out_err)
{
    gc_diff d = gc_diff_floats(got, ref, n);
    double e = d.max_abs / (d.max_ref > 0 ? d.max_ref : 1.0);
    if (out_err)
        *out_err = e;
    return gc_check(e <= tol, "%s: rel err %.3g (max abs %.3g, max|ref| %.3g) tol %.2g", what, e, d.max_abs,
                    d.max_ref, tol);
}

/* Device result vs reference result of the same buffer twin. */
static inline int gc_cmp(const char *what, const gc_buf *b, double tol)
{
    float *r = gc_get(b, 0, what), *g = gc_get(b, 1, what);
    int ok = r && g && gc_cmp_host(what, g, r, b->bytes / sizeof(float), tol);
    free(r);
    free(g);
    return ok;
}

/* Relative to max|ref| (no floor): for values far below 1 such as Adam's second moments. */
static inline int gc_cmp_rel(const char *what, const gc_buf *b, double tol)
{
    float *r = gc_get(b, 0, what), *g = gc_get(b, 1, what);
    int ok = r && g && gc_cmp_host_rel(what, g, r, b->bytes / sizeof(float), tol, NULL);
    free(r);
    free(g);
    return ok;
}

/* Bit-exact comparison (data movement, random numbers, argmax indices). */
static inline int gc_cmp_exact(const char *what, const gc_buf *b)
{
    unsigned char *r = gc_get(b, 0, what), *g = gc_get(b, 1, what);
    int ok = 0;
    if (r && g) {
        size_t words = b->bytes / 4, bad = 0, first = 0;
        for (size_t i = 0; i < words; i++)
            if (memcmp(r + 4 * i, g + 4 * i, 4) != 0 && bad++ == 0)
                first = i;
        int tail_ok = memcmp(r + 4 * words, g + 4 * words, b->bytes - 4 * words) == 0;
        ok = gc_check(bad == 0 && tail_ok, "%s: bit-exact, %zu of %zu words differ", what, bad, words);
        if (bad) {
            unsigned gw, rw;
            memcpy(&gw, g + 4 * first, 4);
            memcpy(&rw, r + 4 * first, 4);
            printf("      first differing word %zu: got 0x%08x want 0x%08x\n", first, gw, rw);
        }
    }
    free(r);
    free(g);
    return ok;
}

/* "--quick" (or $DIFFCR_GPU_QUICK=1): fewer, smaller cases, for compute-sanitizer runs. */
static inline int gc_quick(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick"))
            return 1;
    const char *q = getenv("DIFFCR_GPU_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

/* "--probe": print whether the device under test can be opened, exit 0 (yes) or 77 (no). Used by
 * tests/gpu/run.sh to pick a CUDA module before running anything. */
static inline void gc_probe(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--probe")) {
            const char *dev = gc_device_name();
            if (gc_is_cuda(dev)) {
                const char *why = dc_cuda_unavailable_reason();
                if (why) {
                    printf("probe: %s unavailable: %s\n", dev, why);
                    exit(GC_SKIP);
                }
            }
            dc_backend *be;
            dc_error err;
            dc_error_clear(&err);
            if (dc_backend_create(&be, dev, 0, &err) != DC_OK) {
                printf("probe: %s: %s\n", dev, err.msg);
                exit(GC_SKIP);
            }
            printf("probe: %s ok (backend %s)\n", dev, be->name);
            dc_backend_destroy(be);
            exit(0);
        }
}

#endif
