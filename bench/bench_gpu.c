/* bench_gpu — speed of the DiffCR network on the CUDA backend, against PyTorch on the same GPU in
 * the same run (benchmarks are programs, not timed tests).
 *
 *   bench_gpu [--width 64] [--size 256] [--train-size 128] [--train-batch 4] [--reps 10]
 *             [--precisions fp32,tf32,fp16,bf16] [--no-torch] [--python PATH] [--device cuda]
 *
 * Per precision (set_precision: FP32 strict first, then TF32 and FP16 convolutions):
 *   forward at size x size, B=1 (condition + main branch) and B=4; the condition branch alone and
 *   the main branch with the condition cached;
 *   one DiffCR decloud of a size x size tile: the condition once + 21 cached network calls driven by
 *   DPM-Solver++, measured end to end, twice: the host sampler, each call moving x_t down and x0
 *   up (dc_sampler_run with a host callback, as dc_model_sample did at first), and the sampler on
 *   device memory (dc_sampler_options.backend: nothing crosses the bus per call);
 *   one training step at train-size x train-size, batch train-batch: forward_train, MSE on the host
 *   (the output comes up, the gradient goes down, as a trainer does), backward, Adam on the device.
 * Times are medians of --reps runs after a warm-up (the first calls also run cudnnFind); the
 * backend's synchronize ends every timed run, since kernels are queued.
 *
 * PyTorch: bench/torch_bench.py --device cuda (eager; strict fp32 with TF32 off, then TF32, then
 * fp16 and bf16 autocast), run with $DIFFCR_PYTHON or /usr/bin/python3. Ratios: ours/torch (time, < 1 is
 * faster) and torch/ours (speed-up).
 *
 * Without a usable CUDA device it prints why and exits 0. --device cpu|ref runs the same program
 * on the CPU (to check the program itself; use small sizes). */
#include <cjson/cJSON.h>
#include <math.h>
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

#define MAX_REPS 64

typedef struct options {
    int width, size, train_size, train_batch, reps, torch;
    const char *device, *precisions, *python;
} options;

/* --- the workloads ------------------------------------------------------------------------------ */

typedef struct bench {
    dc_backend *be;
    dc_unet *net;
    dc_unet_config cfg;
    const options *o;
    size_t n1, n4, nt;                 /* image floats (3 channels): B=1, B=4, training batch */
    float *d_cond1, *d_x1, *d_out1;    /* B = 1 inference */
    float *d_cond4, *d_x4, *d_out4;    /* B = 4 inference */
    float *d_tcond, *d_tx, *d_tout, *d_tdout, *d_m, *d_v; /* training */
    float *h_tout, *h_tdout, *h_target; /* host (page-locked on CUDA) */
    long long adam_step;
    dc_adam_config adam;
    /* sampling: host sampler (so) and sampler on the device (so_dev) */
    dc_noise_schedule ns;
    dc_sampler_options so, so_dev;
    float *d_sx, *d_sx0, *h_sample, *work, *d_sample, *d_work;
    size_t work_floats, d_work_floats;
    int calls;
    float tin[4];
    dc_error err;
} bench;

typedef int (*workload_fn)(bench *b);

static float *dev_floats(bench *b, size_t n)
{
    float *p = dc_alloc_floats(b->be, n);
    if (!p) {
        fprintf(stderr, "bench_gpu: out of device memory (%zu floats)\n", n);
        exit(1);
    }
    return p;
}

static float *host_floats(bench *b, size_t n)
{
    float *p = b->be->host_alloc(b->be, n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_gpu: out of host memory (%zu floats)\n", n);
        exit(1);
    }
    return p;
}

/* Smooth deterministic values in [-1, 1] sent to the device (values do not change the timings). */
static float *dev_pattern(bench *b, size_t n, double freq)
{
    float *h = host_floats(b, n), *d = dev_floats(b, n);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)(0.9 * sin((double)i * freq));
    b->be->to_device(b->be, d, h, n * sizeof(float));
    b->be->host_release(b->be, h);
    return d;
}

static int fwd1(bench *b)
{
    int S = b->o->size;
    return dc_unet_forward(b->net, b->d_out1, b->d_cond1, b->d_x1, b->tin, 1, S, S, &b->err);
}

static int fwd4(bench *b)
{
    int S = b->o->size;
    return dc_unet_forward(b->net, b->d_out4, b->d_cond4, b->d_x4, b->tin, 4, S, S, &b->err);
}

static int cond1(bench *b)
{
    int S = b->o->size;
    return dc_unet_set_condition(b->net, b->d_cond1, 1, S, S, &b->err);
}

static int main1(bench *b) { return dc_unet_forward_cached(b->net, b->d_out1, b->d_x1, b->tin, &b->err); }

/* The sampler's network call, as dc_model_sample makes it (core/net/diffcr_model.c). */
static int x0_from_network(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    bench *b = user;
    dc_backend *be = b->be;
    size_t bytes = (size_t)B * b->n1 * sizeof(float);
    be->to_device(be, b->d_sx, x, bytes);
    int rc = dc_unet_forward_cached(b->net, b->d_sx0, b->d_sx, tin, err);
    if (rc != DC_OK)
        return rc;
    be->to_host(be, x0, b->d_sx0, bytes);
    return be->synchronize(be, err);
}

static int sample1(bench *b)
{
    int rc = cond1(b);
    dc_sampler_stats st = {0, 0};
    if (rc == DC_OK)
        rc = dc_sampler_run(&b->ns, &b->so, x0_from_network, b, NULL, b->h_sample, 1, b->n1, b->work,
                            b->work_floats, &st, &b->err);
    b->calls = st.model_calls;
    return rc;
}

/* The sampler with its vectors on the device (dc_sampler_options.backend): the network reads x_t
 * and writes x0 in device memory, nothing crosses the bus but the time input. */
static int x0_on_device(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    bench *b = user;
    (void)B;
    return dc_unet_forward_cached(b->net, x0, x, tin, err);
}

static int sample1_device(bench *b)
{
    int rc = cond1(b);
    dc_sampler_stats st = {0, 0};
    if (rc == DC_OK)
        rc = dc_sampler_run(&b->ns, &b->so_dev, x0_on_device, b, NULL, b->d_sample, 1, b->n1, b->d_work,
                            b->d_work_floats, &st, &b->err);
    b->calls = st.model_calls;
    return rc;
}

static int train_step(bench *b)
{
    dc_backend *be = b->be;
    int T = b->o->train_size, TB = b->o->train_batch;
    size_t bytes = b->nt * sizeof(float);
    int rc = dc_unet_forward_train(b->net, b->d_tout, b->d_tcond, b->d_tx, b->tin, TB, T, T, &b->err);
    if (rc != DC_OK)
        return rc;
    be->to_host(be, b->h_tout, b->d_tout, bytes);
    if ((rc = be->synchronize(be, &b->err)) != DC_OK)
        return rc;
    mse_backward(b->h_tdout, b->h_tout, b->h_target, b->nt, 1.0f);
    be->to_device(be, b->d_tdout, b->h_tdout, bytes);
    if ((rc = dc_unet_backward(b->net, b->d_tdout, &b->err)) != DC_OK)
        return rc;
    size_t n = dc_unet_params_table(b->net)->total;
    be->adam_update(dc_unet_params(b->net), b->d_m, b->d_v, dc_unet_grads(b->net), n, &b->adam, ++b->adam_step);
    be->weights_changed(be);
    return DC_OK;
}

/* Median ms of fn over reps runs after warm_ms of warm-up (at least two calls: the first one
 * also plans the convolutions); -1 on failure. *first_ms: the first call alone (may be NULL). */
static double timed(bench *b, workload_fn fn, int reps, double warm_ms, double *first_ms)
{
    double t[MAX_REPS];
    double t0 = now_ms();
    int rc = fn(b);
    if (rc == DC_OK)
        rc = b->be->synchronize(b->be, &b->err);
    if (first_ms)
        *first_ms = now_ms() - t0;
    double start = now_ms();
    for (int k = 0; rc == DC_OK && (k < 1 || now_ms() - start < warm_ms); k++) {
        rc = fn(b);
        if (rc == DC_OK)
            rc = b->be->synchronize(b->be, &b->err);
    }
    for (int r = 0; rc == DC_OK && r < reps; r++) {
        double s = now_ms();
        rc = fn(b);
        if (rc == DC_OK)
            rc = b->be->synchronize(b->be, &b->err);
        t[r] = now_ms() - s;
    }
    if (rc != DC_OK) {
        fprintf(stderr, "bench_gpu: %s\n", b->err.msg);
        return -1;
    }
    return median(t, reps);
}

static int bench_open(bench *b, const options *o, dc_error *err)
{
    memset(b, 0, sizeof *b);
    b->o = o;
    int rc = dc_backend_create(&b->be, o->device, 0, err);
    if (rc != DC_OK)
        return rc;
    dc_unet_config_default(&b->cfg);
    b->cfg.width = o->width;
    if ((rc = dc_unet_create(&b->net, &b->cfg, b->be, err)) != DC_OK)
        return rc;
    const dc_param_table *tab = dc_unet_params_table(b->net);
    float *p = malloc(tab->total * sizeof *p);
    if (!p)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for parameters");
    dc_unet_init_params(p, tab, 1);
    /* beta = gamma = 0 at init: set them so no block could be skipped as an identity */
    for (int i = 0; i < tab->count; i++) {
        size_t len = strlen(tab->views[i].name);
        if ((len > 5 && !strcmp(tab->views[i].name + len - 5, ".beta")) ||
            (len > 6 && !strcmp(tab->views[i].name + len - 6, ".gamma")))
            for (size_t k = 0; k < tab->views[i].numel; k++)
                p[tab->views[i].offset + k] = 0.1f;
    }
    rc = dc_unet_set_params(b->net, p, err);
    free(p);
    if (rc != DC_OK)
        return rc;
    size_t S = (size_t)o->size, T = (size_t)o->train_size;
    b->n1 = S * S * 3, b->n4 = 4 * b->n1, b->nt = (size_t)o->train_batch * T * T * 3;
    b->d_cond1 = dev_pattern(b, 3 * b->n1, 1e-3), b->d_x1 = dev_pattern(b, b->n1, 2e-3), b->d_out1 = dev_floats(b, b->n1);
    b->d_cond4 = dev_pattern(b, 3 * b->n4, 3e-3), b->d_x4 = dev_pattern(b, b->n4, 4e-3), b->d_out4 = dev_floats(b, b->n4);
    b->d_tcond = dev_pattern(b, 3 * b->nt, 5e-3), b->d_tx = dev_pattern(b, b->nt, 6e-3);
    b->d_tout = dev_floats(b, b->nt), b->d_tdout = dev_floats(b, b->nt);
    b->d_m = dev_floats(b, tab->total), b->d_v = dev_floats(b, tab->total);
    b->h_tout = host_floats(b, b->nt), b->h_tdout = host_floats(b, b->nt), b->h_target = host_floats(b, b->nt);
    for (size_t i = 0; i < b->nt; i++)
        b->h_target[i] = (float)(0.5 * cos((double)i * 7e-4));
    dc_adam_config_default(&b->adam);
    for (int i = 0; i < 4; i++)
        b->tin[i] = 499.5f;
    /* DiffCR's sampler on its test schedule (sigmoid, 1000 steps), as dc_model_open builds it */
    double betas[1000];
    if ((rc = dc_make_beta_schedule(betas, DC_BETA_SIGMOID, 1000, 1e-4, 0.09, 8e-3, err)) != DC_OK ||
        (rc = dc_noise_schedule_init(&b->ns, betas, 1000, DC_NS_FLOAT32, err)) != DC_OK)
        return rc;
    b->so = dc_sampler_options_default();
    b->work_floats = dc_sampler_workspace_floats(&b->so, 1, b->n1);
    b->work = host_floats(b, b->work_floats);
    b->h_sample = host_floats(b, b->n1);
    b->d_sx = dev_floats(b, b->n1), b->d_sx0 = dev_floats(b, b->n1);
    b->so_dev = b->so;
    b->so_dev.backend = b->be;
    b->d_work_floats = dc_sampler_workspace_floats(&b->so_dev, 1, b->n1);
    b->d_work = dev_floats(b, b->d_work_floats);
    b->d_sample = dev_floats(b, b->n1);
    return DC_OK;
}

static void bench_close(bench *b)
{
    if (!b->be)
        return;
    dc_backend *be = b->be;
    float *dev[] = {b->d_cond1, b->d_x1, b->d_out1, b->d_cond4, b->d_x4, b->d_out4, b->d_tcond, b->d_tx,
                    b->d_tout, b->d_tdout, b->d_m, b->d_v, b->d_sx, b->d_sx0, b->d_work, b->d_sample};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            be->release(be, dev[i]);
    float *host[] = {b->h_tout, b->h_tdout, b->h_target, b->work, b->h_sample};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        if (host[i])
            be->host_release(be, host[i]);
    dc_noise_schedule_free(&b->ns);
    dc_unet_destroy(b->net);
    dc_backend_destroy(be);
}

/* --- PyTorch ------------------------------------------------------------------------------------ */

enum { ROW_FWD1, ROW_FWD4, ROW_COND, ROW_MAIN, ROW_SAMPLE_EST, ROW_SAMPLE, ROW_SAMPLE_DEV, ROW_TRAIN, NROWS };

typedef struct figures {
    double ms[NROWS]; /* <= 0: not measured */
} figures;

static const char *torch_keys[NROWS] = {"fwd_ms", "fwd_batch_ms", "cond_ms", "main_cached_ms",
                                        "sample21_cached_ms", NULL, NULL, "train_step_ms"};

typedef struct torch_run {
    cJSON *root; /* NULL when unavailable */
    char why[256];
} torch_run;

static const char *source_dir(void)
{
    const char *d = getenv("DIFFCR_SOURCE_DIR");
    return d && *d ? d : DIFFCR_SOURCE_DIR;
}

static torch_run run_torch(const options *o)
{
    torch_run t;
    memset(&t, 0, sizeof t);
    int cuda = strncmp(o->device, "cuda", 4) == 0;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s %s/bench/torch_bench.py --device %s --precisions %s --width %d --size %d --train-size %d "
             "--train-batch %d --fwd-batch 4 --runs %d --warmup-s 0.5 --json",
             o->python, source_dir(), cuda ? "cuda" : "cpu", o->precisions, o->width, o->size, o->train_size,
             o->train_batch, o->reps);
    printf("running PyTorch: %s\n", cmd);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(t.why, sizeof t.why, "could not start %s", o->python);
        return t;
    }
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int status = pclose(p);
    /* torch_bench's own table goes to the log; the JSON object is its last line */
    char *last = buf[0] == '{' ? buf : NULL;
    for (char *q = strstr(buf, "\n{"); q; q = strstr(q + 1, "\n{"))
        last = q + 1;
    if (last) {
        if (last > buf)
            last[-1] = 0;
        printf("%s\n", last > buf ? buf : "");
        t.root = cJSON_Parse(last);
    } else {
        printf("%s", buf);
    }
    if (!t.root)
        snprintf(t.why, sizeof t.why, "torch_bench.py gave no JSON (exit status %d; is PyTorch with CUDA installed for %s?)",
                 status, o->python);
    return t;
}

static figures torch_figures(const torch_run *t, const char *precision)
{
    figures f;
    memset(&f, 0, sizeof f);
    if (!t->root)
        return f;
    const cJSON *obj = t->root;
    const cJSON *top_prec = cJSON_GetObjectItemCaseSensitive(t->root, "precision");
    int top_is_this = !cJSON_IsString(top_prec) || !strcmp(top_prec->valuestring, precision);
    if (!top_is_this)
        obj = cJSON_GetObjectItemCaseSensitive(t->root, precision);
    if (!obj)
        return f;
    for (int r = 0; r < NROWS; r++) {
        const cJSON *v = torch_keys[r] ? cJSON_GetObjectItemCaseSensitive(obj, torch_keys[r]) : NULL;
        if (cJSON_IsNumber(v))
            f.ms[r] = v->valuedouble;
    }
    return f;
}

static const char *json_string(const torch_run *t, const char *key)
{
    const cJSON *v = t->root ? cJSON_GetObjectItemCaseSensitive(t->root, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* --- report ------------------------------------------------------------------------------------- */

static void gpu_name(char *out, size_t size)
{
    snprintf(out, size, "?");
    FILE *p = popen("nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader -i 0 2>/dev/null", "r");
    if (!p)
        return;
    if (fgets(out, (int)size, p)) {
        size_t n = strlen(out);
        while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = 0;
    } else {
        snprintf(out, size, "? (nvidia-smi gave nothing)");
    }
    pclose(p);
}

static const char *row_names[NROWS] = {
    "forward B=1 (condition + main)", "forward B=4 (condition + main)", "condition branch, B=1",
    "main branch, condition cached, B=1", "sample estimate: cond + 21 x main", "decloud, 21 calls, host sampler",
    "decloud, 21 calls, sampler on device", "training step (fwd, MSE, bwd, Adam)"};

static void print_table(const char *precision, const figures *ours, const figures *torch, const double *gmacs)
{
    printf("\n== %s ==\n%-40s %10s %9s | %10s %10s %10s\n", precision, "workload", "diffcr ms", "GMAC/s", "torch ms",
           "ours/torch", "torch/ours");
    for (int r = 0; r < NROWS; r++) {
        double ms = ours->ms[r], tm = torch->ms[r];
        if (ms <= 0 && tm <= 0)
            continue;
        printf("%-40s", row_names[r]);
        if (ms > 0)
            printf(" %10.2f %9.0f", ms, gmacs[r] / (ms * 1e6));
        else
            printf(" %10s %9s", "-", "-");
        if (tm > 0)
            printf(" | %10.2f", tm);
        else
            printf(" | %10s", "-");
        if (ms > 0 && tm > 0)
            printf(" %10.2f %10.2f", ms / tm, tm / ms);
        printf("\n");
    }
}

/* MACs per row: convolution and linear weights (dc_unet_macs); training = 3x forward (forward,
 * backward-data, backward-weights). */
static void row_macs(const bench *b, double *gmacs)
{
    double c1, m1, c4, m4, ct, mt;
    int S = b->o->size, T = b->o->train_size;
    dc_unet_macs(&b->cfg, 1, S, S, &c1, &m1);
    dc_unet_macs(&b->cfg, 4, S, S, &c4, &m4);
    dc_unet_macs(&b->cfg, b->o->train_batch, T, T, &ct, &mt);
    gmacs[ROW_FWD1] = c1 + m1, gmacs[ROW_FWD4] = c4 + m4, gmacs[ROW_COND] = c1, gmacs[ROW_MAIN] = m1;
    gmacs[ROW_SAMPLE_EST] = gmacs[ROW_SAMPLE] = gmacs[ROW_SAMPLE_DEV] = c1 + 21 * m1;
    gmacs[ROW_TRAIN] = 3 * (ct + mt);
}

static int measure(bench *b, dc_precision prec, figures *f, cJSON *json)
{
    dc_error err;
    dc_error_clear(&err);
    memset(f, 0, sizeof *f);
    if (b->be->set_precision(b->be, prec, &err) != DC_OK) {
        printf("\n== %s == not available: %s\n", dc_precision_name(prec), err.msg);
        return 0;
    }
    int reps = b->o->reps;
    double first = 0;
    f->ms[ROW_FWD1] = timed(b, fwd1, reps, 500, &first);
    printf("[%s] first forward B=1 (plans + cudnnFind): %.1f ms\n", dc_precision_name(prec), first);
    fflush(stdout);
    f->ms[ROW_FWD4] = timed(b, fwd4, reps, 500, NULL);
    f->ms[ROW_COND] = timed(b, cond1, reps, 300, NULL);
    f->ms[ROW_MAIN] = timed(b, main1, reps, 300, NULL); /* the condition set just above stays */
    if (f->ms[ROW_COND] > 0 && f->ms[ROW_MAIN] > 0)
        f->ms[ROW_SAMPLE_EST] = f->ms[ROW_COND] + 21 * f->ms[ROW_MAIN];
    f->ms[ROW_SAMPLE] = timed(b, sample1, reps < 5 ? reps : 5, 0, NULL);
    if (b->calls != 21)
        printf("[%s] note: the sampler made %d network calls (DiffCR: 21)\n", dc_precision_name(prec), b->calls);
    f->ms[ROW_SAMPLE_DEV] = timed(b, sample1_device, reps < 5 ? reps : 5, 0, NULL);
    f->ms[ROW_TRAIN] = timed(b, train_step, reps, 500, NULL);
    cJSON *o = cJSON_AddObjectToObject(json, dc_precision_name(prec));
    const char *keys[NROWS] = {"fwd_ms", "fwd_b4_ms", "cond_ms", "main_cached_ms", "sample21_estimate_ms",
                               "sample21_host_sampler_ms", "sample21_device_sampler_ms", "train_step_ms"};
    for (int r = 0; r < NROWS; r++)
        cJSON_AddNumberToObject(o, keys[r], f->ms[r]);
    /* at once, before PyTorch runs: a run cut short by a timeout still leaves our figures */
    printf("[%s] forward B=1 %.2f ms, B=4 %.2f ms, decloud 21 calls %.2f ms (device sampler %.2f ms), training step "
           "%.2f ms\n", dc_precision_name(prec), f->ms[ROW_FWD1], f->ms[ROW_FWD4], f->ms[ROW_SAMPLE],
           f->ms[ROW_SAMPLE_DEV], f->ms[ROW_TRAIN]);
    fflush(stdout);
    return 1;
}

static int parse_args(int argc, char **argv, options *o)
{
    o->width = 64, o->size = 256, o->train_size = 128, o->train_batch = 4, o->reps = 10, o->torch = 1;
    o->device = "cuda", o->precisions = "fp32,tf32,fp16,bf16";
    o->python = getenv("DIFFCR_PYTHON") && *getenv("DIFFCR_PYTHON") ? getenv("DIFFCR_PYTHON") : "/usr/bin/python3";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-torch")) o->torch = 0;
        else if (v && !strcmp(a, "--width")) o->width = atoi(v), i++;
        else if (v && !strcmp(a, "--size")) o->size = atoi(v), i++;
        else if (v && !strcmp(a, "--train-size")) o->train_size = atoi(v), i++;
        else if (v && !strcmp(a, "--train-batch")) o->train_batch = atoi(v), i++;
        else if (v && !strcmp(a, "--reps")) o->reps = atoi(v), i++;
        else if (v && !strcmp(a, "--precisions")) o->precisions = v, i++;
        else if (v && !strcmp(a, "--python")) o->python = v, i++;
        else if (v && !strcmp(a, "--device")) o->device = v, i++;
        else {
            fprintf(stderr, "usage: bench_gpu [--width W] [--size S] [--train-size T] [--train-batch B] [--reps R]\n"
                            "                 [--precisions fp32,tf32,fp16,bf16] [--no-torch] [--python PATH] [--device cuda]\n");
            return 0;
        }
    }
    if (o->reps < 1 || o->reps > MAX_REPS || o->width < 2 || o->width % 2 || o->size < 16 || o->size % 16 ||
        o->train_size < 16 || o->train_size % 16 || o->train_batch < 1) {
        fprintf(stderr, "bench_gpu: bad option value (sizes: multiples of 16; reps 1..%d)\n", MAX_REPS);
        return 0;
    }
    return 1;
}

/* NAFNet's depthwise 3x3 both ways (direct kernels, the default, vs cuDNN's grouped convolution,
 * DIFFCR_CUDA_DWCONV=cudnn), at the shapes of the paper network's first and last levels, so the
 * default can follow the measurement. Forward and forward+backward (data + weights), median ms. */
static void bench_depthwise(const options *o)
{
    const int shapes[2][3] = {{256, 256, 128}, {32, 32, 1024}}; /* H, W, 2c */
    const char *impls[2] = {"direct", "cudnn"};
    double ms[2][2][2]; /* [impl][shape][fwd, fwd+bwd] */
    for (int im = 0; im < 2; im++) {
        setenv("DIFFCR_CUDA_DWCONV", impls[im], 1);
        dc_backend *be = NULL;
        dc_error err;
        if (dc_backend_create(&be, o->device, 0, &err) != DC_OK) {
            printf("depthwise %s: %s\n", impls[im], err.msg);
            return;
        }
        for (int sh = 0; sh < 2; sh++) {
            const int H = shapes[sh][0], W = shapes[sh][1], C = shapes[sh][2];
            dc_conv_desc d = {1, H, W, C, C, 3, 1, 1, C};
            size_t n = (size_t)H * W * C;
            float *x = dc_alloc_floats(be, n), *y = dc_alloc_floats(be, n), *dx = dc_alloc_floats(be, n);
            float *w = dc_alloc_floats(be, (size_t)C * 9), *dw = dc_alloc_floats(be, (size_t)C * 9);
            for (int pass = 0; pass < 2; pass++) {
                double t[MAX_REPS];
                int reps = o->reps < MAX_REPS ? o->reps : MAX_REPS, rc = DC_OK;
                for (int r = -3; r < reps && rc == DC_OK; r++) { /* 3 warm-up runs */
                    double s0 = now_ms();
                    rc = be->conv2d_forward(be, y, x, w, NULL, &d, &err);
                    if (rc == DC_OK && pass == 1)
                        rc = be->conv2d_backward(be, dx, dw, NULL, y, x, w, &d, &err);
                    if (rc == DC_OK)
                        rc = be->synchronize(be, &err);
                    if (r >= 0)
                        t[r] = now_ms() - s0;
                }
                ms[im][sh][pass] = rc == DC_OK ? median(t, reps) : -1.0;
                if (rc != DC_OK)
                    printf("depthwise %s %dx%dx%d: %s\n", impls[im], H, W, C, err.msg);
            }
            be->release(be, x), be->release(be, y), be->release(be, dx), be->release(be, w), be->release(be, dw);
        }
        dc_backend_destroy(be);
    }
    unsetenv("DIFFCR_CUDA_DWCONV");
    printf("\n== depthwise 3x3, fp32 (ms; DIFFCR_CUDA_DWCONV) ==\n%-18s %12s %12s %12s %12s\n", "shape",
           "direct fwd", "cudnn fwd", "direct f+b", "cudnn f+b");
    for (int sh = 0; sh < 2; sh++)
        printf("%4dx%-4dx%-8d %12.3f %12.3f %12.3f %12.3f\n", shapes[sh][0], shapes[sh][1], shapes[sh][2],
               ms[0][sh][0], ms[1][sh][0], ms[0][sh][1], ms[1][sh][1]);
}

int main(int argc, char **argv)
{
    options o;
    if (!parse_args(argc, argv, &o))
        return 2;
    if (!strncmp(o.device, "cuda", 4) && dc_cuda_unavailable_reason()) {
        printf("bench_gpu: SKIP: %s\n", dc_cuda_unavailable_reason());
        return 0;
    }
    char gpu[256];
    gpu_name(gpu, sizeof gpu);
    bench b;
    dc_error err;
    dc_error_clear(&err);
    if (bench_open(&b, &o, &err) != DC_OK) {
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        bench_close(&b);
        return 1;
    }
    printf("diffcr bench_gpu: device %s (backend %s; GPU %s), width %d, forward %dx%d (B=1, 4), "
           "decloud %dx%d (21 calls), train %dx%d batch %d, %d reps\n",
           o.device, b.be->name, gpu, o.width, o.size, o.size, o.size, o.size, o.train_size, o.train_size,
           o.train_batch, o.reps);
    double gmacs[NROWS];
    row_macs(&b, gmacs);
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "gpu", gpu);
    enum { NPREC = 4 };
    figures ours[NPREC];
    int have[NPREC] = {0, 0, 0, 0};
    const dc_precision ps[NPREC] = {DC_PRECISION_FP32, DC_PRECISION_TF32, DC_PRECISION_FP16, DC_PRECISION_BF16};
    for (int i = 0; i < NPREC; i++)
        if (strstr(o.precisions, dc_precision_name(ps[i])))
            have[i] = measure(&b, ps[i], &ours[i], json);
    b.be->set_precision(b.be, DC_PRECISION_FP32, NULL);
    bench_close(&b); /* free the GPU for PyTorch */
    if (strncmp(o.device, "cuda", 4) == 0)
        bench_depthwise(&o);

    torch_run t;
    memset(&t, 0, sizeof t);
    if (o.torch) {
        t = run_torch(&o);
        if (!t.root)
            printf("PyTorch figures unavailable: %s\n", t.why);
        else
            printf("PyTorch %s on %s (CUDA %s)\n", json_string(&t, "torch_version") ? json_string(&t, "torch_version") : "?",
                   json_string(&t, "device_name") ? json_string(&t, "device_name") : "?",
                   json_string(&t, "cuda_version") ? json_string(&t, "cuda_version") : "?");
    }
    printf("\nGPU: %s\n", gpu);
    const char *titles[NPREC] = {"fp32 (torch: TF32 off)", "tf32", "fp16 (torch: autocast)", "bf16 (torch: autocast)"};
    for (int i = 0; i < NPREC; i++) {
        if (!have[i])
            continue;
        figures tf = torch_figures(&t, dc_precision_name(ps[i]));
        print_table(titles[i], &ours[i], &tf, gmacs);
    }
    printf("\nGMAC/s counts convolution and linear weights (dc_unet_macs); training = 3 x forward MACs.\n"
           "torch's sample figure is its estimate cond + 21 x main (no host sampler in the loop).\n");
    if (t.root)
        cJSON_AddItemToObject(json, "torch", t.root);
    char *js = cJSON_PrintUnformatted(json);
    if (js)
        printf("BENCH_JSON %s\n", js);
    free(js);
    cJSON_Delete(json);
    return 0;
}
