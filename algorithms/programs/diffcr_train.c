/* diffcr-train — fit a DiffCR model with the published recipe, resumable and observable.
 *
 *   diffcr-train -c CONFIG.json [-b BATCH] [--device auto|cpu|ref|cuda[:N]] [--precision P]
 *                [--resume CKPT] [--seed S]
 *                [--threads N] [--workers N] [--out DIR] [--iters N] [--time-input gamma|dpm_tinput]
 *                [--no-val] [--strict]
 *   diffcr-train eval -c CONFIG.json --weights MODEL.safetensors [--split val|test] [--limit N]
 *                [--json FILE] [--previews DIR] [--device D] [--threads N] [--seed S] [--strict]
 *
 * SIGINT / SIGTERM: the handler only sets a flag; the loop finishes the current step, writes a
 * checkpoint and exits with 130. A hidden `--debug-adam-step IN OUT` runs Adam/AdamW on tensors of
 * a safetensors file (the PyTorch oracle test uses it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/cli_parse.h"
#include "diffcr/config.h"
#include "diffcr/optim.h"
#include "diffcr/safetensors.h"
#include "diffcr/train.h"

static const char *usage =
    "usage: diffcr-train -c CONFIG.json [-b BATCH] [--device auto|cpu|ref|cuda[:N]]\n"
    "                    [--precision fp32|tf32|fp16|bf16] [--resume CKPT]\n"
    "                    [--seed S] [--threads N] [--workers N] [--out DIR] [--iters N]\n"
    "                    [--time-input gamma|dpm_tinput] [--no-val] [--strict]\n"
    "       diffcr-train eval -c CONFIG.json --weights MODEL.safetensors [--split val|test]\n"
    "                    [--limit N] [--json FILE] [--previews DIR] [--device D] [--threads N] [--seed S]\n"
    "\n"
    "Trains the DiffCR network of a DiffCR-schema config (datasets, unet, beta_schedule, train.*,\n"
    "optimizers, ema_scheduler; see configs/train_tiny.json). Writes DIR/checkpoint.safetensors\n"
    "(weights, EMA, Adam state: --resume continues bit for bit), DIR/model.safetensors (for\n"
    "diffcr-decloud and diffcr-net sample), DIR/metrics.jsonl, DIR/tb/ (TensorBoard), DIR/loss.png.\n"
    "--iters N stops after N steps in total (counting the resumed ones). Ctrl-C checkpoints and\n"
    "exits with 130. eval prints MAE/PSNR/SSIM and the DiffCR paper metrics of a model on a split.\n";

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int die(const char *msg)
{
    fprintf(stderr, "diffcr-train: %s\n", msg);
    return 1;
}

static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* --debug-adam-step IN OUT [--lr X] [--weight-decay X] [--adamw] [--beta1 X] [--beta2 X] [--eps X]
 * IN: tensors "params" [n] and "grads" [k, n]: k steps; OUT: "params", "m", "v" after them. */
static int debug_adam(int argc, char **argv, dc_error *err)
{
    if (argc < 4)
        return dc_fail(err, DC_ERR_ARG, "--debug-adam-step needs IN and OUT");
    const char *in = argv[2], *outp = argv[3];
    dc_adam_config a;
    dc_adam_config_default(&a);
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--adamw")) {
            a.decoupled = 1;
            continue;
        }
        if (i + 1 >= argc)
            return dc_fail(err, DC_ERR_ARG, "option %s needs a value", argv[i]);
        double v = strtod(argv[++i], NULL);
        if (!strcmp(argv[i - 1], "--lr")) a.lr = v;
        else if (!strcmp(argv[i - 1], "--weight-decay")) a.weight_decay = v;
        else if (!strcmp(argv[i - 1], "--beta1")) a.beta1 = v;
        else if (!strcmp(argv[i - 1], "--beta2")) a.beta2 = v;
        else if (!strcmp(argv[i - 1], "--eps")) a.eps = v;
        else return dc_fail(err, DC_ERR_ARG, "unknown option '%s'", argv[i - 1]);
    }
    dc_safetensors *st = NULL;
    int rc = dc_st_open(&st, in, err);
    if (rc != DC_OK)
        return rc;
    const dc_st_tensor *tp = dc_st_find(st, "params"), *tg = dc_st_find(st, "grads");
    if (!tp || !tg || tp->ndim != 1 || tg->ndim != 2 || tg->shape[1] != tp->shape[0]) {
        dc_st_close(st);
        return dc_fail(err, DC_ERR_SHAPE, "%s: needs params [n] and grads [k, n]", in);
    }
    size_t n = tp->numel, k = (size_t)tg->shape[0];
    float *p = malloc(n * sizeof *p), *g = malloc(n * k * sizeof *g);
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    if (!p || !g || !m || !v)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    if (rc == DC_OK && (rc = dc_st_read_f32(st, "params", p, n, err)) == DC_OK &&
        (rc = dc_st_read_f32(st, "grads", g, n * k, err)) == DC_OK) {
        for (size_t s = 0; s < k; s++)
            dc_adam_update(p, m, v, g + s * n, n, &a, (long long)s + 1);
        dc_st_writer *w = dc_st_writer_new();
        int64_t shape[1] = {(int64_t)n};
        if (!w)
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
        if (rc == DC_OK && (rc = dc_st_writer_add(w, "params", DC_DTYPE_F32, 1, shape, p, err)) == DC_OK &&
            (rc = dc_st_writer_add(w, "m", DC_DTYPE_F32, 1, shape, m, err)) == DC_OK &&
            (rc = dc_st_writer_add(w, "v", DC_DTYPE_F32, 1, shape, v, err)) == DC_OK)
            rc = dc_st_writer_write(w, outp, err);
        dc_st_writer_free(w);
    }
    free(p), free(g), free(m), free(v);
    dc_st_close(st);
    return rc;
}

static int run_eval(int argc, char **argv, dc_error *err)
{
    const char *config = NULL, *weights = NULL, *split = "val", *json = NULL, *previews = NULL;
    dc_eval_options eo = {.device = "auto", .previews = 0};
    int strict = 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--strict")) {
            strict = 1;
            continue;
        }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (i + 1 >= argc)
            return dc_fail(err, DC_ERR_ARG, "option %s needs a value (see --help)", o);
        const char *v = argv[++i];
        long long x;
        if (!strcmp(o, "-c") || !strcmp(o, "--config")) config = v;
        else if (!strcmp(o, "--weights")) weights = v;
        else if (!strcmp(o, "--split")) split = v;
        else if (!strcmp(o, "--json")) json = v;
        else if (!strcmp(o, "--previews")) previews = v;
        else if (!strcmp(o, "--device")) eo.device = v;
        else if (!strcmp(o, "--threads") && parse_ll(v, 0, 1024, &x)) eo.threads = (int)x;
        else if (!strcmp(o, "--limit") && parse_ll(v, 0, 1000000000, &x)) eo.limit = (int)x;
        else if (!strcmp(o, "--seed") && parse_ll(v, 0, (long long)1 << 62, &x)) eo.seed = (uint64_t)x;
        else return dc_fail(err, DC_ERR_ARG, "bad option or value: %s %s (see --help)", o, v);
    }
    if (!config || !weights)
        return dc_fail(err, DC_ERR_ARG, "eval needs -c CONFIG and --weights MODEL (see --help)");
    if (strcmp(split, "val") && strcmp(split, "test") && strcmp(split, "train"))
        return dc_fail(err, DC_ERR_ARG, "--split must be val, test or train");
    dc_train_config cfg;
    int rc = dc_train_config_load(&cfg, config, NULL, NULL, err);
    if (rc != DC_OK)
        return rc;
    dc_dataset *ds = NULL;
    dc_dataset_options dopt = {.split = split, .tile = cfg.tile, .ndates = cfg.unet.ndates,
                               .channels = cfg.unet.img_channel, .strict = strict, .base_dir = cfg.base_dir};
    if (!dc_train_config_dataset(&cfg, split))
        rc = dc_fail(err, DC_ERR_ARG, "%s: no datasets.%s in the config", config, split);
    else
        rc = dc_dataset_open(&ds, dc_train_config_dataset(&cfg, split), &dopt, err);
    if (rc == DC_OK) {
        if (previews) {
            eo.preview_dir = previews;
            eo.previews = 1 << 30;
        }
        printf("%-32s %8s %8s %8s\n", "sample", "MAE", "PSNR", "SSIM");
        eo.per_sample = stdout;
        dc_eval_summary s;
        rc = dc_train_evaluate(weights, ds, &eo, &s, err);
        if (rc == DC_OK) {
            printf("%-32s %8.5f %8.3f %8.4f   (%d samples, reflectance)\n", "mean", s.mae, s.psnr, s.ssim, s.n);
            printf("MAE in model units [-1,1]: %.5f\n", s.mae_model);
            if (s.have_paper)
                printf("DiffCR paper protocol: PSNR %.3f dB, SSIM %.4f\n", s.paper_psnr, s.paper_ssim);
            char *j = dc_eval_summary_json(&s);
            if (json && j) {
                FILE *f = !strcmp(json, "-") ? stdout : fopen(json, "w");
                if (!f)
                    rc = dc_fail(err, DC_ERR_IO, "%s: cannot write", json);
                else {
                    fprintf(f, "%s\n", j);
                    if (f != stdout && fclose(f) != 0)
                        rc = dc_fail(err, DC_ERR_IO, "%s: write failed", json);
                }
            }
            free(j);
        }
    }
    dc_dataset_close(ds);
    dc_train_config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    dc_error e = {0};
    if (argc > 1 && !strcmp(argv[1], "--debug-adam-step"))
        return debug_adam(argc, argv, &e) == DC_OK ? 0 : die(e.msg);
    if (argc > 1 && !strcmp(argv[1], "eval"))
        return run_eval(argc, argv, &e) == DC_OK ? 0 : die(e.msg);
    dc_train_run_options o = {.device = "auto", .seed = -1, .stop = &stop_flag};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--strict")) { o.strict = 1; continue; }
        if (!strcmp(a, "--no-val")) { o.no_val = 1; continue; }
        if (i + 1 >= argc) {
            snprintf(e.msg, sizeof e.msg, "option %s needs a value (see --help)", a);
            return die(e.msg);
        }
        const char *v = argv[++i];
        long long x = 0;
        int ok = 1;
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) o.config = v;
        else if (!strcmp(a, "--resume")) o.resume = v;
        else if (!strcmp(a, "--out")) o.out_dir = v;
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--precision")) o.precision = v;
        else if (!strcmp(a, "--time-input")) o.time_input = v;
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) ok = parse_ll(v, 1, 4096, &x), o.batch = (int)x;
        else if (!strcmp(a, "--threads")) ok = parse_ll(v, 0, 1024, &x), o.threads = (int)x;
        else if (!strcmp(a, "--workers")) ok = parse_ll(v, 1, 64, &x), o.workers = (int)x;
        else if (!strcmp(a, "--seed")) ok = parse_ll(v, 0, (long long)1 << 62, &x), o.seed = x;
        else if (!strcmp(a, "--iters")) ok = parse_ll(v, 1, (long long)1 << 50, &x), o.iters = x;
        else {
            snprintf(e.msg, sizeof e.msg, "unknown option '%s' (see --help)", a);
            return die(e.msg);
        }
        if (!ok) {
            snprintf(e.msg, sizeof e.msg, "bad value '%s' for %s", v, a);
            return die(e.msg);
        }
    }
    if (!o.config && !o.resume)
        return die("-c CONFIG.json is required (or --resume CKPT; see --help)");
    dc_cli_catch_stop_signals(on_signal); /* a full disk fails the write and keeps the old checkpoint */
    int rc = dc_train_run(&o, &e);
    if (rc == DC_ERR_CANCELLED) {
        fprintf(stderr, "diffcr-train: %s\n", e.msg);
        return 130;
    }
    return rc == DC_OK ? 0 : die(e.msg);
}
