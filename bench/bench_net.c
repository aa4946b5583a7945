/* bench_net — speed of the DiffCR network on the CPU, against PyTorch on the same machine, same
 * thread count, in the same run (benchmarks are programs, not timed tests).
 *
 *   bench_net [--threads N] [--width 64] [--size 256] [--train-size 128] [--reps 5] [--no-torch]
 *
 * Prints: sgemm rate of this machine; full forward (condition + main branch), condition branch once,
 * main branch with the condition cache, a DiffCR sample's network cost (condition once + 21 cached
 * calls vs the official pipeline's 21 full forwards), one training step (forward, MSE, backward, Adam);
 * ms, GMAC/s, the convolutions' share and rate, and the ratio to PyTorch (bench/torch_bench.py run
 * with Debian's /usr/bin/python3). */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_timing.h"
#include "diffcr/backend.h"
#include "diffcr/ops.h"
#include "diffcr/optim.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "diffcr/unet.h"

#ifndef DIFFCR_SOURCE_DIR
#define DIFFCR_SOURCE_DIR "."
#endif

/* Timing shim over the backend's convolutions: accumulates time and MACs. */
static int (*real_fwd)(dc_backend *, float *, const float *, const float *, const float *, const dc_conv_desc *, dc_error *);
static int (*real_bwd)(dc_backend *, float *, float *, float *, const float *, const float *, const float *, const dc_conv_desc *, dc_error *);
static double conv_ms, conv_macs;

static double conv_desc_macs(const dc_conv_desc *d)
{
    return (double)d->N * dc_conv_out_h(d) * dc_conv_out_w(d) * d->K * (d->C / d->groups) * d->kernel * d->kernel;
}

static int timed_fwd(dc_backend *be, float *o, const float *i, const float *w, const float *b, const dc_conv_desc *d, dc_error *e)
{
    double t = now_ms();
    int rc = real_fwd(be, o, i, w, b, d, e);
    conv_ms += now_ms() - t;
    conv_macs += conv_desc_macs(d);
    return rc;
}

static int timed_bwd(dc_backend *be, float *di, float *dw, float *db, const float *dout, const float *i, const float *w,
                     const dc_conv_desc *d, dc_error *e)
{
    double t = now_ms();
    int rc = real_bwd(be, di, dw, db, dout, i, w, d, e);
    conv_ms += now_ms() - t;
    conv_macs += conv_desc_macs(d) * ((di ? 1 : 0) + (dw ? 1 : 0));
    return rc;
}

static double sgemm_gflops(int reps)
{
    int n = 2048;
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b), *c = malloc((size_t)n * n * sizeof *c);
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double t[16];
    double warm = now_ms();
    while (now_ms() - warm < 300)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int r = 0; r < reps; r++) {
        double s = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t[r] = now_ms() - s;
    }
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n / (median(t, reps) * 1e6);
}

typedef struct torch_figures {
    int ok;
    double fwd, cond, main_cached, train, sample_cached, sample_official;
    char version[64];
} torch_figures;

static torch_figures run_torch(int threads, int width, int size, int train_size)
{
    torch_figures f;
    memset(&f, 0, sizeof f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/bench/torch_bench.py --threads %d --width %d --size %d --train-size %d --json 2>/dev/null",
             DIFFCR_SOURCE_DIR, threads, width, size, train_size);
    FILE *p = popen(cmd, "r");
    if (!p)
        return f;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    pclose(p);
    char *brace = strrchr(buf, '{'); /* the JSON object is the last line */
    cJSON *j = brace ? cJSON_Parse(brace) : NULL;
    if (!j)
        return f;
    const char *keys[] = {"fwd_ms", "cond_ms", "main_cached_ms", "train_step_ms", "sample21_cached_ms", "sample21_official_ms"};
    double *dst[] = {&f.fwd, &f.cond, &f.main_cached, &f.train, &f.sample_cached, &f.sample_official};
    f.ok = 1;
    for (int i = 0; i < 6; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (cJSON_IsNumber(v))
            *dst[i] = v->valuedouble;
        else
            f.ok = 0;
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "torch_version");
    snprintf(f.version, sizeof f.version, "%s", cJSON_IsString(v) ? v->valuestring : "?");
    cJSON_Delete(j);
    return f;
}

/* The sampler's network callbacks: with the condition cache (condition computed once before the
 * run) and without it (the official pipeline's way: the whole network every call). */
typedef struct sample_ctx {
    dc_unet *net;
    const float *cond;
    int H, W;
} sample_ctx;

static int x0_cached(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    sample_ctx *c = user;
    (void)B;
    return dc_unet_forward_cached(c->net, x0, x, tin, err);
}

static int x0_uncached(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    sample_ctx *c = user;
    return dc_unet_forward(c->net, x0, c->cond, x, tin, B, c->H, c->W, err);
}

/* One full DiffCR sampling run (DPM-Solver++ 2M, 20 steps + denoise: 21 calls); returns ms. */
static double time_sample(dc_unet *net, const float *cond, int size, int cached, int *calls)
{
    dc_error err;
    double betas[1000];
    dc_noise_schedule ns;
    dc_make_beta_schedule(betas, DC_BETA_SIGMOID, 1000, 1e-4, 0.09, 8e-3, &err);
    if (dc_noise_schedule_init(&ns, betas, 1000, DC_NS_FLOAT32, &err) != DC_OK)
        return -1;
    dc_sampler_options so = dc_sampler_options_default();
    size_t n = (size_t)size * size * 3;
    float *out = malloc(n * sizeof *out);
    sample_ctx ctx = {net, cond, size, size};
    dc_sampler_stats st = {0, 0};
    double t0 = now_ms();
    int rc = DC_OK;
    if (cached)
        rc = dc_unet_set_condition(net, cond, 1, size, size, &err);
    if (rc == DC_OK)
        rc = dc_sampler_run(&ns, &so, cached ? x0_cached : x0_uncached, &ctx, NULL, out, 1, n, NULL, 0, &st, &err);
    double ms = now_ms() - t0;
    if (rc != DC_OK)
        fprintf(stderr, "bench_net: sampling failed: %s\n", err.msg);
    *calls = st.model_calls;
    free(out);
    dc_noise_schedule_free(&ns);
    return rc == DC_OK ? ms : -1;
}

static void row(const char *what, double ms, double macs, double torch_ms)
{
    printf("%-44s %9.1f ms %8.1f GMAC/s", what, ms, macs / (ms * 1e6));
    if (torch_ms > 0)
        printf("   torch %9.1f ms   speed-up x%.2f", torch_ms, torch_ms / ms);
    printf("\n");
}

int main(int argc, char **argv)
{
    int threads = omp_get_num_procs(), width = 64, size = 256, train_size = 128, reps = 5, torch = 1, sample = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--width") && i + 1 < argc) width = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--train-size") && i + 1 < argc) train_size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--no-sample")) sample = 0;
        else {
            fprintf(stderr, "usage: bench_net [--threads N] [--width W] [--size S] [--train-size T] [--reps R] [--no-torch] [--no-sample]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 16 || threads < 1 || width < 2 || size < 16 || train_size < 16) {
        fprintf(stderr, "bench_net: bad option value\n");
        return 2;
    }
    dc_error err;
    dc_backend *be;
    if (dc_backend_create(&be, "cpu", threads, &err) != DC_OK) {
        fprintf(stderr, "bench_net: %s\n", err.msg);
        return 1;
    }
    real_fwd = be->conv2d_forward, real_bwd = be->conv2d_backward;
    be->conv2d_forward = timed_fwd, be->conv2d_backward = timed_bwd;

    dc_unet_config cfg;
    dc_unet_config_default(&cfg);
    cfg.width = width;
    dc_unet *net;
    if (dc_unet_create(&net, &cfg, be, &err) != DC_OK) {
        fprintf(stderr, "bench_net: %s\n", err.msg);
        return 1;
    }
    const dc_param_table *tab = dc_unet_params_table(net);
    float *host = malloc(tab->total * sizeof *host);
    dc_unet_init_params(host, tab, 1);
    dc_unet_set_params(net, host, &err);

    printf("diffcr bench_net: backend %s, %d threads, width %d, forward %dx%d, train step %dx%d\n", be->name,
           be->threads, width, size, size, train_size, train_size);
    double sg = sgemm_gflops(reps);
    printf("machine sgemm (OpenBLAS 2048^3): %.1f GFLOP/s = %.1f GMAC/s\n", sg, sg / 2);

    size_t P = (size_t)size * size;
    float *cond = malloc(P * 9 * sizeof *cond), *x = malloc(P * 3 * sizeof *x), *out = malloc(P * 3 * sizeof *out);
    for (size_t i = 0; i < P * 9; i++) cond[i] = (float)sin((double)i * 0.001);
    for (size_t i = 0; i < P * 3; i++) x[i] = (float)cos((double)i * 0.002);
    float tin = 500.0f;
    double cmacs, mmacs;
    dc_unet_macs(&cfg, 1, size, size, &cmacs, &mmacs);

    double tc[16], tm[16], tf[16], conv_part[16], conv_rate[16];
    double warm = now_ms();
    while (now_ms() - warm < 1000) {
        dc_unet_forward(net, out, cond, x, &tin, 1, size, size, &err);
    }
    for (int r = 0; r < reps; r++) {
        conv_ms = conv_macs = 0;
        double t0 = now_ms();
        if (dc_unet_set_condition(net, cond, 1, size, size, &err) != DC_OK) break;
        double t1 = now_ms();
        dc_unet_forward_cached(net, out, x, &tin, &err);
        double t2 = now_ms();
        tc[r] = t1 - t0, tm[r] = t2 - t1, tf[r] = t2 - t0;
        conv_part[r] = conv_ms / (t2 - t0);
        conv_rate[r] = conv_macs / (conv_ms * 1e6);
    }
    double fwd = median(tf, reps), cnd = median(tc, reps), mn = median(tm, reps);
    double cshare = median(conv_part, reps), crate = median(conv_rate, reps);

    /* whole sampling runs, measured (not estimated) */
    double sample_cached = -1, sample_uncached = -1;
    int calls_cached = 0, calls_uncached = 0;
    if (sample) {
        sample_cached = time_sample(net, cond, size, 1, &calls_cached);
        sample_uncached = time_sample(net, cond, size, 0, &calls_uncached);
    }

    /* training step */
    size_t PT = (size_t)train_size * train_size;
    float *tcond = malloc(PT * 9 * sizeof *tcond), *tx = malloc(PT * 3 * sizeof *tx), *tout = malloc(PT * 3 * sizeof *tout);
    float *target = malloc(PT * 3 * sizeof *target), *dout = malloc(PT * 3 * sizeof *dout);
    for (size_t i = 0; i < PT * 9; i++) tcond[i] = (float)sin((double)i * 0.003);
    for (size_t i = 0; i < PT * 3; i++) tx[i] = (float)cos((double)i * 0.001), target[i] = (float)sin((double)i * 0.002);
    float *m = calloc(tab->total, sizeof *m), *v = calloc(tab->total, sizeof *v);
    dc_adam_config adam;
    dc_adam_config_default(&adam);
    float tg = 0.5f;
    double tt[16];
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        dc_unet_forward_train(net, tout, tcond, tx, &tg, 1, train_size, train_size, &err);
        mse_forward(tout, target, PT * 3);
        mse_backward(dout, tout, target, PT * 3, 1.0f);
        dc_unet_backward(net, dout, &err);
        dc_adam_update(dc_unet_params(net), m, v, dc_unet_grads(net), tab->total, &adam, r + 2);
        be->weights_changed(be);
        if (r >= 0)
            tt[r] = now_ms() - t0;
    }
    double train = median(tt, reps);
    double train_macs;
    {
        double c2, m2;
        dc_unet_macs(&cfg, 1, train_size, train_size, &c2, &m2);
        train_macs = 3 * (c2 + m2); /* forward + backward-data + backward-weights */
    }

    torch_figures tf_ = {0};
    if (torch) {
        printf("running PyTorch (bench/torch_bench.py, %d threads)...\n", threads);
        tf_ = run_torch(threads, width, size, train_size);
        if (!tf_.ok)
            printf("PyTorch figures unavailable (is python3-torch installed?)\n");
        else
            printf("PyTorch %s\n", tf_.version);
    }
    printf("\n%-44s %12s %15s\n", "workload", "diffcr", "");
    row("forward (condition + main branch)", fwd, cmacs + mmacs, tf_.fwd);
    row("condition branch once", cnd, cmacs, tf_.cond);
    row("main branch, condition cached", mn, mmacs, tf_.main_cached);
    if (sample) {
        row("DiffCR sample, condition cached (measured)", sample_cached, cmacs + calls_cached * mmacs, tf_.sample_cached);
        row("DiffCR sample, no cache (measured)", sample_uncached, calls_uncached * (cmacs + mmacs), tf_.sample_official);
        if (tf_.ok)
            printf("%-44s %9.1f ms   vs the official PyTorch pipeline (21 full forwards) %9.1f ms: x%.2f\n",
                   "DiffCR sample, condition cached", sample_cached, tf_.sample_official, tf_.sample_official / sample_cached);
        printf("%-44s %d / %d network calls; the cache saves x%.2f\n", "", calls_cached, calls_uncached,
               sample_uncached / sample_cached);
    }
    row("training step (fwd, MSE, bwd, Adam)", train, train_macs, tf_.train);
    printf("%-44s %9.2f samples/s", "training throughput (batch 1)", 1000.0 / train);
    if (tf_.ok)
        printf("   torch %9.2f samples/s   ratio x%.2f", 1000.0 / tf_.train, tf_.train / train);
    printf("\n");
    printf("\nconvolutions in the forward: %.0f%% of the time, %.1f GMAC/s = %.0f%% of the machine's sgemm rate\n",
           100 * cshare, crate, 100 * crate / (sg / 2));
    free(host), free(cond), free(x), free(out), free(tcond), free(tx), free(tout), free(target), free(dout), free(m), free(v);
    dc_unet_destroy(net);
    dc_backend_destroy(be);
    return 0;
}
