/* diffcr — fitting DiffCR models: the training config, the data loader, one optimisation step,
 * the learning-rate schedule and the pieces of the diffcr-train program.
 *
 * The recipe is DiffCR's (DIFFCR.md §3.2-3.3): a noise level gamma drawn between consecutive
 * alpha-bar values of the 2000-step train schedule, y_t = sqrt(gamma) y0 + sqrt(1-gamma) eps, the
 * network fed gamma as its time input and trained to predict x0 with MSE; Adam lr 5e-5, no weight
 * decay; an EMA copy with decay 0.9999 updated every iteration.
 *
 * Determinism and resume. Everything random is a function of (seed, global step) or
 * (seed, epoch, sample index): the noise of step k (dc_train_make_batch keyed by step k), the
 * epoch's permutation and each sample's augmentation (dataset.h). A checkpoint holds the weights,
 * EMA, Adam moments, the step count and the seed, so a resumed run computes the same losses, bit
 * for bit, as an uninterrupted one on the same backend and thread count.
 *
 * Config keys (DiffCR's schema, plus diffcr's own under "train", all optional):
 *   train.n_epoch, n_iter, val_epoch, save_checkpoint_epoch, log_iter      (DiffCR's)
 *   train.val_iter, save_checkpoint_iter   validation / checkpoint every N iterations (0 = off)
 *   train.val_samples                      validation samples (default 4)
 *   train.target      "x0" (DiffCR) | "eps" | "v"
 *   train.time_input  what the exported model records: "gamma" (default: what the network is
 *                     trained on) or "dpm_tinput" (what the published DiffCR code feeds at test)
 *   train.lr_schedule "constant" (DiffCR) | "cosine";  train.warmup_iter (linear warm-up steps);
 *   train.min_lr (cosine floor);  train.lr_decay_iter (cosine length; default the run's last step)
 *   train.grad_clip   max global gradient L2 norm (0 = off, DiffCR)
 *   train.augment     true (DiffCR's flips/rot90 on the train split) | false
 *   train.export_ema  false (default): model.safetensors gets the trained weights, as DiffCR's
 *                     test() uses netG; true: the EMA weights
 *   train.tile        sample side in pixels (overrides the datasets' args.tile)
 *   train.seed        run seed (else the top-level "seed"; -1 = from the clock)
 *   model.which_model.args.optimizers[0]: lr, weight_decay, betas [b1, b2], eps,
 *                     type "adam" (L2 added to the gradient, torch.optim.Adam) | "adamw" */
#ifndef DIFFCR_TRAIN_H
#define DIFFCR_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "diffcr/backend.h"
#include "diffcr/dataset.h"
#include "diffcr/error.h"
#include "diffcr/optim.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "diffcr/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cJSON cJSON;

typedef struct dc_beta_spec {
    dc_beta_kind kind;
    int n;
    double linear_start, linear_end;
} dc_beta_spec;

typedef struct dc_train_config {
    char *text;              /* the config file's text (stored in checkpoints) */
    cJSON *root;             /* parsed */
    char base_dir[4096];     /* folder of the config file: relative data paths start here */
    char name[128];
    dc_unet_config unet;
    dc_beta_spec train_schedule, test_schedule;
    int batch, workers;
    int n_epoch;
    long long n_iter;
    int val_epoch, save_checkpoint_epoch;
    long long val_iter, save_checkpoint_iter, log_iter;
    int val_samples;
    dc_adam_config adam;
    int cosine;              /* lr_schedule == cosine */
    long long warmup_iter, lr_decay_iter;
    double min_lr, grad_clip;
    int ema_start, ema_iter;
    double ema_decay;
    dc_target_kind target;
    dc_time_input time_input;
    int augment, export_ema;
    int tile;                /* 0: from the data */
    long long seed;          /* -1: pick one */
} dc_train_config;

/* Read and check a config (text with comments). Unknown keys are reported through warn (one line
 * each, may be NULL). */
int dc_train_config_parse(dc_train_config *cfg, const char *text, const char *base_dir,
                          void (*warn)(const char *msg, void *arg), void *warn_arg, dc_error *err);
int dc_train_config_load(dc_train_config *cfg, const char *path,
                         void (*warn)(const char *msg, void *arg), void *warn_arg, dc_error *err);
void dc_train_config_free(dc_train_config *cfg);
/* The which_dataset object of a split ("train", "val", "test"), or NULL. */
const cJSON *dc_train_config_dataset(const dc_train_config *cfg, const char *split);

/* ---- Learning rate (train_lr.c) ---- */

/* LR of (1-based) step `step`: linear warm-up over warmup_iter steps, then constant or a cosine
 * from lr down to min_lr reached at decay_end (held there afterwards). */
double dc_train_lr(const dc_train_config *cfg, long long step, long long decay_end);

/* ---- Data loader (loader.c) ---- */

typedef struct dc_loader dc_loader;

typedef struct dc_loader_options {
    int batch;
    int workers;             /* decoding threads (>= 1) */
    int queue;               /* batches decoded ahead (>= 1) */
    int shuffle, augment;
    uint64_t seed;
    long long first_batch;   /* global batch number to start at (the resumed step) */
} dc_loader_options;

/* Batches per epoch (drop_last, as DiffCR): count / batch. */
long long dc_loader_batches_per_epoch(const dc_dataset *ds, int batch);
/* The sample indices of global batch k (epoch = k / batches_per_epoch). */
void dc_loader_batch_indices(const dc_dataset *ds, int batch, uint64_t seed, int shuffle,
                             long long k, int *indices, int *epoch);

int dc_loader_create(dc_loader **out, dc_dataset *ds, const dc_loader_options *o, dc_error *err);
/* The next batch in order: cond [B][T][T][ndates*C], target [B][T][T][C] (valid until the next
 * call). Waits for the workers; a worker's decoding error is returned here. */
int dc_loader_next(dc_loader *l, const float **cond, const float **target, int *epoch,
                   dc_error *err);
void dc_loader_destroy(dc_loader *l);

/* ---- One optimisation step (train_step.c) ---- */

typedef struct dc_trainer dc_trainer;

typedef struct dc_step_result {
    double loss;
    double grad_norm;        /* before clipping */
    double lr;
    int skipped;             /* 1: the loss or the gradient was not finite (or the gradient's
                              * norm after clipping exceeded sqrt(FLT_MAX), where Adam's second
                              * moment overflows), so the weights, Adam moments, Adam's step count
                              * and the EMA were left as they were */
} dc_step_result;

/* The run stops (DC_ERR_NUMERIC) after this many skipped steps in a row (train_run.c). */
#define DC_TRAIN_MAX_SKIPPED_IN_A_ROW 20

/* Create the network on be for batches of B samples of T x T, host copies of the optimiser state
 * (Adam m, v and EMA, zero / equal to the weights) and the train schedule's gammas. */
int dc_trainer_create(dc_trainer **out, const dc_train_config *cfg, dc_backend *be, int B, int T,
                      uint64_t seed, dc_error *err);
void dc_trainer_destroy(dc_trainer *tr);
/* Weights (host view: the backend's memory on CPU backends, a mirror otherwise). After changing
 * them through these pointers call dc_trainer_sync. */
float *dc_trainer_params(dc_trainer *tr);
float *dc_trainer_ema(dc_trainer *tr);
float *dc_trainer_adam_m(dc_trainer *tr);
float *dc_trainer_adam_v(dc_trainer *tr);
const dc_param_table *dc_trainer_table(const dc_trainer *tr);
long long dc_trainer_adam_step(const dc_trainer *tr);
void dc_trainer_set_adam_step(dc_trainer *tr, long long t);
int dc_trainer_sync(dc_trainer *tr, dc_error *err);
/* Device backends: copy weights, Adam state and EMA back into the host buffers above (before a
 * checkpoint or an export). No-op on host backends. */
int dc_trainer_pull(dc_trainer *tr, dc_error *err);
/* One step at global step index `step` (0-based; step + 1 updates have been made afterwards).
 * A non-finite loss or gradient skips the update (res->skipped, which says exactly when) and
 * still returns DC_OK. */
int dc_trainer_step(dc_trainer *tr, const float *cond, const float *x0, long long step, double lr,
                    dc_step_result *res, dc_error *err);

/* ---- Evaluation of a model file on a dataset (train_eval.c) ---- */

typedef struct dc_eval_summary {
    int n;                   /* samples evaluated */
    double mae_model;        /* mean |out - gt| in model units ([-1, 1]: DiffCR's logged "mae") */
    double mae, psnr, ssim;  /* reflectance (DN / 10000), data range 1, means over samples */
    int have_paper;
    double paper_psnr, paper_ssim;  /* DiffCR paper protocol (DIFFCR.md §7) */
    double seconds;
} dc_eval_summary;

typedef struct dc_eval_options {
    const char *device;
    int threads;
    int limit;               /* first `limit` samples (0 = all) */
    uint64_t seed;           /* sampler noise: tile id = sample index */
    const char *preview_dir; /* PNG strips date0..dateN | result | target, or NULL */
    const char *preview_prefix;
    int previews;            /* how many samples get a PNG */
    FILE *per_sample;        /* a line per sample, or NULL */
} dc_eval_options;

/* Sample every chosen sample of ds with the model in weights (dc_model, its recorded sampler
 * conventions) and average the metrics (metrics.h). */
int dc_train_evaluate(const char *weights, dc_dataset *ds, const dc_eval_options *o,
                      dc_eval_summary *s, dc_error *err);
/* A PNG strip of the dates, the result and the target, each stretched like DiffCR's get_rgb. */
int dc_train_preview_png(const char *path, const float *cond, const float *out, const float *target,
                         int T, int C, int D, dc_error *err);

/* ---- Metrics logs (train_log.c): DIR/metrics.jsonl and DIR/tb/events.out.tfevents.* ---- */

typedef struct dc_tb_writer dc_tb_writer;

typedef struct dc_train_log {
    FILE *jsonl;
    dc_tb_writer *tb;
    char path[4200];
} dc_train_log;

/* append: keep the lines of an earlier run (resume). tensorboard: also write event files. */
int dc_train_log_open(dc_train_log *l, const char *out_dir, int append, int tensorboard, dc_error *err);
/* One JSON line per call; losses printed with 17 digits so a comparison is exact. */
/* One line per logged step; skipped = the run's non-finite steps so far (dc_step_result.skipped). */
int dc_train_log_step(dc_train_log *l, long long step, int epoch, const dc_step_result *r,
                      long long skipped, double its, dc_error *err);
int dc_train_log_val(dc_train_log *l, long long step, int epoch, const char *split,
                     const dc_eval_summary *s, dc_error *err);
void dc_train_log_close(dc_train_log *l);
/* A JSON object of an evaluation summary (malloc'ed), used by the log and `diffcr-train eval`. */
char *dc_eval_summary_json(const dc_eval_summary *s);

/* ---- The training run (train_run.c) ---- */

typedef struct dc_train_run_options {
    const char *config;      /* config file, or NULL with resume (the checkpoint's config) */
    const char *resume;      /* checkpoint to continue from, or NULL */
    const char *out_dir;     /* default "runs/<name>" */
    const char *device;      /* default "auto" */
    const char *precision;   /* convolution maths: NULL/"fp32" (default), "tf32", "fp16", "bf16" (cuda) */
    int threads;             /* <= 0: all cores */
    int batch;               /* > 0: overrides the config */
    long long seed;          /* >= 0: overrides the config */
    long long iters;         /* > 0: stop after this many steps in total (absolute) */
    int workers;             /* > 0: loader threads */
    int strict;
    int no_val;
    const char *time_input;  /* overrides train.time_input */
    volatile int *stop;      /* set by the signal handler: checkpoint and return DC_ERR_CANCELLED */
} dc_train_run_options;

/* The whole run. Returns DC_OK, DC_ERR_CANCELLED after an interruption (a checkpoint was
 * written), or an error. */
int dc_train_run(const dc_train_run_options *o, dc_error *err);

/* ---- Progress (progress_bar.c) ---- */

typedef struct dc_progress_bar {
    FILE *f;
    int tty;
    long long first, total;  /* steps */
    double t0;               /* seconds (monotonic) at first */
    long long every;         /* non-tty: a line every `every` steps */
    int drawn;
} dc_progress_bar;

double dc_now_seconds(void);
void dc_progress_init(dc_progress_bar *p, FILE *f, long long first, long long total, long long every);
/* step: steps done so far (absolute). */
void dc_progress_update(dc_progress_bar *p, long long step, double loss, double lr);
void dc_progress_message(dc_progress_bar *p, const char *line);
void dc_progress_finish(dc_progress_bar *p);
/* The bar line itself (for tests): width columns of '#'/'.'. */
void dc_progress_format(char *out, size_t size, long long step, long long total, double loss,
                        double its, double eta_s);

/* ---- Loss curve (loss_plot.c) ---- */

/* A PNG line plot of values[0..n) (log10 y axis when all > 0) drawn into a Byte MEM raster and
 * copied with GDAL's PNG driver. */
int dc_loss_plot_png(const char *path, const double *steps, const double *values, int n, int w,
                     int h, dc_error *err);

/* ---- CRC32C (crc32c.c) ---- */

uint32_t dc_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t dc_crc32c_masked(const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
