/* diffcr bench — the network's convolution kinds at 256x256, reference (OpenBLAS + direct loops)
 * against oneDNN, forward, backward-data and backward-weights.
 *
 * Prints the median milliseconds of each after a warm-up (the VM needs one to ramp its clock,
 * BACKENDS.md §1) and the achieved GFLOP/s. Usage: bench_conv [reps] (default 7). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/conv.h"

typedef struct shape {
    const char *name;
    dc_conv_desc d;
} shape;

static const shape shapes[] = {
    {"1x1 64->128 @256", {1, 256, 256, 64, 128, 1, 1, 0, 1}},
    {"dw3x3 128 @256", {1, 256, 256, 128, 128, 3, 1, 1, 128}},
    {"2x2/s2 64->128 @256", {1, 256, 256, 64, 128, 2, 2, 0, 1}},
    {"3x3 3->64 @256", {1, 256, 256, 3, 64, 3, 1, 1, 1}},
    {"3x3 64->3 @256", {1, 256, 256, 64, 3, 3, 1, 1, 1}},
};

enum { OP_FWD, OP_BWD_DATA, OP_BWD_WEIGHTS, OP_COUNT };
static const char *const op_names[] = {"fwd", "bwd_data", "bwd_weights"};

typedef struct bufs {
    float *inp, *w, *b, *out, *dout, *dinp, *dw, *db;
} bufs;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One timed call; returns 0 on success. ctx NULL means the reference implementation. */
static int call(dc_dnnl *ctx, int op, bufs *m, const dc_conv_desc *d)
{
    dc_error err = {0};
    int rc = DC_OK;
    if (!ctx) {
        if (op == OP_FWD)
            conv2d_ref_forward(m->out, m->inp, m->w, m->b, d);
        else if (op == OP_BWD_DATA)
            conv2d_ref_backward(m->dinp, NULL, NULL, m->dout, m->inp, m->w, d);
        else
            conv2d_ref_backward(NULL, m->dw, m->db, m->dout, m->inp, m->w, d);
        return 0;
    }
#ifdef DIFFCR_HAVE_DNNL
    if (op == OP_FWD)
        rc = conv2d_dnnl_forward(ctx, m->out, m->inp, m->w, m->b, d, &err);
    else if (op == OP_BWD_DATA)
        rc = conv2d_dnnl_backward(ctx, m->dinp, NULL, NULL, m->dout, m->inp, m->w, d, &err);
    else
        rc = conv2d_dnnl_backward(ctx, NULL, m->dw, m->db, m->dout, m->inp, m->w, d, &err);
#endif
    if (rc != DC_OK)
        fprintf(stderr, "bench_conv: %s\n", err.msg);
    return rc != DC_OK;
}

static double median_ms(dc_dnnl *ctx, int op, bufs *m, const dc_conv_desc *d, int reps)
{
    double t[64];
    if (reps > 64)
        reps = 64;
    double t0 = omp_get_wtime();
    while (omp_get_wtime() - t0 < 0.2) /* warm-up: clock ramp, JIT, weight reorder */
        if (call(ctx, op, m, d))
            return -1.0;
    for (int i = 0; i < reps; i++) {
        double s = omp_get_wtime();
        if (call(ctx, op, m, d))
            return -1.0;
        t[i] = (omp_get_wtime() - s) * 1e3;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1)
        reps = 1;
    dc_dnnl *ctx = NULL;
#ifdef DIFFCR_HAVE_DNNL
    dc_error err = {0};
    if (dc_dnnl_create(&ctx, &err) != DC_OK) {
        fprintf(stderr, "bench_conv: %s\n", err.msg);
        return 1;
    }
#endif
    printf("threads %d, median of %d\n%-22s %-12s %10s %10s %10s %10s\n", omp_get_max_threads(), reps,
           "conv", "op", "ref ms", "ref GF/s", "dnnl ms", "dnnl GF/s");
    int status = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && !status; s++) {
        const dc_conv_desc *d = &shapes[s].d;
        size_t ni = (size_t)d->N * d->H * d->W * d->C, nw = dc_conv_weight_numel(d);
        size_t no = (size_t)d->N * dc_conv_out_h(d) * dc_conv_out_w(d) * d->K;
        double gflop = 2.0 * (double)no * (d->C / d->groups) * d->kernel * d->kernel * 1e-9;
        bufs m = {malloc(ni * 4), malloc(nw * 4), malloc((size_t)d->K * 4), malloc(no * 4),
                  malloc(no * 4), malloc(ni * 4), malloc(nw * 4), malloc((size_t)d->K * 4)};
        if (!m.inp || !m.w || !m.b || !m.out || !m.dout || !m.dinp || !m.dw || !m.db) {
            fprintf(stderr, "bench_conv: out of memory\n");
            status = 1;
        } else {
            for (size_t i = 0; i < ni; i++)
                m.inp[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
            for (size_t i = 0; i < nw; i++)
                m.w[i] = (float)((i * 40503u) % 1000) * 1e-4f - 0.05f;
            for (size_t i = 0; i < no; i++)
                m.dout[i] = (float)((i * 97u) % 1000) * 1e-3f - 0.5f;
            memset(m.b, 0, (size_t)d->K * 4);
            for (int op = 0; op < OP_COUNT && !status; op++) {
                double r = median_ms(NULL, op, &m, d, reps);
                double o = ctx ? median_ms(ctx, op, &m, d, reps) : -1.0;
                if (ctx && o < 0)
                    status = 1;
                printf("%-22s %-12s %10.2f %10.1f %10.2f %10.1f\n", shapes[s].name, op_names[op], r,
                       gflop / (r * 1e-3), o, o > 0 ? gflop / (o * 1e-3) : 0.0);
            }
        }
        free(m.inp); free(m.w); free(m.b); free(m.out); free(m.dout); free(m.dinp); free(m.dw); free(m.db);
    }
#ifdef DIFFCR_HAVE_DNNL
    const char *names[32];
    int n = dc_dnnl_impl_names(ctx, names, 32);
    printf("oneDNN implementations:");
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf("\n");
    dc_dnnl_destroy(ctx);
#endif
    return status;
}
