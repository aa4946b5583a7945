/* diffcr — the training run: config -> data -> steps -> logs, checkpoints, validation, model file.
 *
 * Step k (0-based) uses batch k of the loader, Philox noise keyed by (seed, k) and the learning
 * rate of step k+1; after it, k+1 updates are done. Checkpoints record that count, so a resumed
 * run restarts the loader at batch k+1 and repeats exactly what an uninterrupted run would do.
 * An interruption (the caller's stop flag, set from SIGINT/SIGTERM) is honoured between steps:
 * the state after the last finished step is checkpointed and DC_ERR_CANCELLED returned.
 *
 * A step whose loss or gradient is not finite (or too large) is skipped by the trainer (weights unchanged; the
 * step still counts, so a resume repeats it). DC_TRAIN_MAX_SKIPPED_IN_A_ROW of them in a row mean
 * the run has diverged: it stops with an error and writes nothing more, so the last checkpoint
 * and model on disk stay the last good ones. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diffcr/backend.h"
#include "diffcr/checkpoint.h"
#include "diffcr/config.h"
#include "diffcr/tb_events.h"
#include "diffcr/train.h"

typedef struct run {
    const dc_train_run_options *o;
    dc_train_config cfg;
    char out[4096], ckpt[4200], model[4200];
    char config_dir[4096];   /* absolute folder of the config: stored in checkpoints */
    dc_backend *be;
    dc_dataset *train, *val;
    dc_trainer *tr;
    dc_loader *loader;
    dc_train_log log;
    dc_progress_bar bar;
    uint64_t seed;
    long long start, total, bpe;
    double *hist_step, *hist_loss;
    long long nhist;
    double last_loss;
    long long skipped, skipped_in_a_row;
    int created_out;         /* the output folder did not exist before this run */
} run;

/* Book-keeping of skipped (non-finite) steps; `done` is the step just finished (1-based). */
static int count_skip(run *r, long long done, const dc_step_result *res, dc_error *err)
{
    if (!res->skipped) {
        r->skipped_in_a_row = 0;
        return DC_OK;
    }
    r->skipped++;
    if (++r->skipped_in_a_row == 1) {
        char line[256];
        snprintf(line, sizeof line, "step %lld skipped: loss %g, gradient norm %g (not finite, or too large for float32 Adam moments); "
                 "weights unchanged",
                 done, res->loss, res->grad_norm);
        dc_progress_message(&r->bar, line);
    }
    if (r->skipped_in_a_row < DC_TRAIN_MAX_SKIPPED_IN_A_ROW)
        return DC_OK;
    struct stat sb;
    int have_ckpt = stat(r->ckpt, &sb) == 0;
    return dc_fail(err, DC_ERR_NUMERIC,
                   "training diverged: loss or gradient not finite (or too large) in %d steps in a row (steps %lld-%lld); "
                   "stopped without saving, %s%s (lower the learning rate, set train.grad_clip, or check the data)",
                   DC_TRAIN_MAX_SKIPPED_IN_A_ROW, done - DC_TRAIN_MAX_SKIPPED_IN_A_ROW + 1, done,
                   have_ckpt ? "the last good checkpoint is " : "no checkpoint was written yet",
                   have_ckpt ? r->ckpt : "");
}

static void warn_key(const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "diffcr-train: warning: %s\n", msg);
}

static int mkdirs(const char *path, dc_error *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return dc_fail(err, DC_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return dc_fail(err, DC_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
    return DC_OK;
}

static int load_config(run *r, dc_error *err)
{
    const dc_train_run_options *o = r->o;
    if (o->config)
        return dc_train_config_load(&r->cfg, o->config, warn_key, NULL, err);
    char *text = NULL, *dir = NULL;
    int rc = dc_checkpoint_config_text(o->resume, &text, &dir, err);
    if (rc == DC_OK)
        rc = dc_train_config_parse(&r->cfg, text, dir, NULL, NULL, err);
    free(text), free(dir);
    return rc;
}

static int open_dataset(run *r, const char *split, dc_dataset **out, dc_error *err)
{
    dc_dataset_options dopt = {
        .split = split, .tile = r->cfg.tile, .ndates = r->cfg.unet.ndates,
        .channels = r->cfg.unet.img_channel, .strict = r->o->strict, .base_dir = r->cfg.base_dir,
    };
    return dc_dataset_open(out, dc_train_config_dataset(&r->cfg, split), &dopt, err);
}

static int save_checkpoint(run *r, long long done, int epoch, dc_error *err)
{
    dc_checkpoint_state st = {
        .step = done, .epoch = epoch, .adam_step = dc_trainer_adam_step(r->tr), .seed = r->seed,
        .loss = r->last_loss, .config_text = r->cfg.text, .config_dir = r->config_dir,
    };
    int rc = dc_trainer_pull(r->tr, err);
    if (rc != DC_OK)
        return rc;
    return dc_checkpoint_save(r->ckpt, &r->cfg.unet, dc_trainer_table(r->tr), dc_trainer_params(r->tr),
                              dc_trainer_ema(r->tr), dc_trainer_adam_m(r->tr), dc_trainer_adam_v(r->tr),
                              &st, err);
}

static int export_model(run *r, long long done, dc_error *err)
{
    const dc_train_config *c = &r->cfg;
    char sched[256], training[1024];
    snprintf(sched, sizeof sched, "{\"schedule\":\"%s\",\"n_timestep\":%d,\"linear_start\":%.17g,\"linear_end\":%.17g}",
             dc_beta_kind_name(c->test_schedule.kind), c->test_schedule.n, c->test_schedule.linear_start,
             c->test_schedule.linear_end);
    snprintf(training, sizeof training,
             "{\"config\":\"%s\",\"data\":\"%s, %d samples\",\"steps\":%lld,\"batch\":%d,\"tile\":%d,"
             "\"loss\":%.9g,\"target\":\"%s\",\"seed\":%" PRIu64 ",\"weights\":\"%s\"}",
             c->name, r->train->kind, r->train->count, done, c->batch, r->train->tile, r->last_loss,
             dc_target_kind_name(c->target), r->seed, c->export_ema ? "ema" : "trained");
    dc_export_info info = {
        .schedule_json = sched, .time_input = dc_time_input_name(c->time_input),
        .target = dc_target_kind_name(c->target), .scale = r->train->scale, .offset = r->train->offset,
        .tile = r->train->tile, .bands = r->train->bands, .training_json = training,
    };
    int rc = dc_trainer_pull(r->tr, err);
    if (rc != DC_OK)
        return rc;
    const float *w = c->export_ema ? dc_trainer_ema(r->tr) : dc_trainer_params(r->tr);
    return dc_export_model(r->model, &c->unet, dc_trainer_table(r->tr), w, &info, err);
}

static int validate(run *r, long long done, int epoch, dc_error *err)
{
    int rc = export_model(r, done, err);
    if (rc != DC_OK)
        return rc;
    char dir[4300], prefix[64];
    snprintf(dir, sizeof dir, "%s/previews", r->out);
    snprintf(prefix, sizeof prefix, "step%08lld_", done);
    mkdir(dir, 0777);
    dc_eval_options eo = {
        .device = r->o->device, .threads = r->o->threads, .limit = r->cfg.val_samples, .seed = r->seed,
        .preview_dir = dir, .preview_prefix = prefix, .previews = 2,
    };
    dc_eval_summary s;
    if ((rc = dc_train_evaluate(r->model, r->val, &eo, &s, err)) != DC_OK)
        return rc;
    char line[300];
    snprintf(line, sizeof line, "val step %lld: MAE %.4f (model units %.4f) PSNR %.2f dB SSIM %.4f%s", done, s.mae,
             s.mae_model, s.psnr, s.ssim, s.have_paper ? "" : " (no paper metrics)");
    if (s.have_paper)
        snprintf(line + strlen(line), sizeof line - strlen(line), " | paper PSNR %.2f SSIM %.4f", s.paper_psnr, s.paper_ssim);
    dc_progress_message(&r->bar, line);
    return dc_train_log_val(&r->log, done, epoch, "val", &s, err);
}

static int setup(run *r, dc_error *err)
{
    const dc_train_run_options *o = r->o;
    int rc = load_config(r, err);
    if (rc != DC_OK)
        return rc;
    dc_train_config *c = &r->cfg;
    if (!realpath(c->base_dir, r->config_dir))
        snprintf(r->config_dir, sizeof r->config_dir, "%s", c->base_dir);
    if (o->batch > 0)
        c->batch = o->batch;
    if (o->workers > 0)
        c->workers = o->workers;
    if (o->time_input && (rc = dc_time_input_parse(o->time_input, &c->time_input, err)) != DC_OK)
        return rc;
    if (o->out_dir)
        snprintf(r->out, sizeof r->out, "%s", o->out_dir);
    else
        snprintf(r->out, sizeof r->out, "runs/%s", c->name);
    struct stat sb;
    r->created_out = stat(r->out, &sb) != 0;
    if ((rc = mkdirs(r->out, err)) != DC_OK)
        return rc;
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->out);
    snprintf(r->model, sizeof r->model, "%s/model.safetensors", r->out);

    dc_checkpoint_state st = {0};
    if (o->resume) {   /* read the state first: the seed comes from it */
        dc_param_table tab;
        if ((rc = dc_param_table_build(&tab, &c->unet, err)) != DC_OK)
            return rc;
        rc = dc_checkpoint_load(o->resume, &tab, NULL, NULL, NULL, NULL, &st, err);
        dc_param_table_free(&tab);
        free((char *)st.config_text);
        st.config_text = NULL;
        if (rc != DC_OK)
            return rc;
        r->seed = st.seed;
        if (o->seed >= 0 && (uint64_t)o->seed != st.seed)
            fprintf(stderr, "diffcr-train: warning: --seed ignored: resuming with the checkpoint's seed %" PRIu64 "\n", st.seed);
    } else if (o->seed >= 0) {
        r->seed = (uint64_t)o->seed;
    } else if (c->seed >= 0) {
        r->seed = (uint64_t)c->seed;
    } else {
        r->seed = (uint64_t)time(NULL);   /* DiffCR's seed -1: unseeded; recorded for resume */
    }

    if ((rc = open_dataset(r, "train", &r->train, err)) != DC_OK)
        return rc;
    if (c->tile == 0)
        c->tile = r->train->tile;
    if (!o->no_val && dc_train_config_dataset(c, "val") && (c->val_epoch > 0 || c->val_iter > 0) && c->val_samples > 0)
        if ((rc = open_dataset(r, "val", &r->val, err)) != DC_OK)
            return rc;
    dc_precision prec = DC_PRECISION_FP32;
    if (o->precision && (rc = dc_precision_parse(o->precision, &prec, err)) != DC_OK)
        return rc;
    if ((rc = dc_backend_create(&r->be, o->device ? o->device : "auto", o->threads, err)) != DC_OK)
        return rc;
    char note[160];
    if ((rc = dc_backend_apply_precision(r->be, o->device, prec, note, sizeof note, err)) != DC_OK)
        return rc;
    if (note[0])
        fprintf(stderr, "diffcr-train: warning: %s\n", note);
    if ((rc = dc_trainer_create(&r->tr, c, r->be, c->batch, r->train->tile, r->seed, err)) != DC_OK)
        return rc;
    if (o->resume) {
        dc_trainer *t = r->tr;
        if ((rc = dc_checkpoint_load(o->resume, dc_trainer_table(t), dc_trainer_params(t), dc_trainer_ema(t),
                                     dc_trainer_adam_m(t), dc_trainer_adam_v(t), &st, err)) != DC_OK)
            return rc;
        free((char *)st.config_text);
        dc_trainer_set_adam_step(t, st.adam_step);
        if ((rc = dc_trainer_sync(t, err)) != DC_OK)
            return rc;
        r->start = st.step;
        r->last_loss = st.loss;
    }
    r->bpe = dc_loader_batches_per_epoch(r->train, c->batch);
    if (r->bpe < 1)
        return dc_fail(err, DC_ERR_ARG, "the train dataset has %d samples, fewer than one batch of %d",
                       r->train->count, c->batch);
    r->total = c->n_iter;
    if ((long long)c->n_epoch * r->bpe < r->total)
        r->total = (long long)c->n_epoch * r->bpe;
    if (o->iters > 0)
        r->total = o->iters;
    dc_loader_options lo = {
        .batch = c->batch, .workers = c->workers, .queue = 2 * c->workers + 1, .shuffle = 1,
        .augment = c->augment, .seed = r->seed, .first_batch = r->start,
    };
    if ((rc = dc_loader_create(&r->loader, r->train, &lo, err)) != DC_OK)
        return rc;
    if ((rc = dc_train_log_open(&r->log, r->out, o->resume != NULL, 1, err)) != DC_OK)
        return rc;
    size_t cap = (size_t)(r->total > r->start ? r->total - r->start : 1);
    r->hist_step = malloc(cap * sizeof *r->hist_step);
    r->hist_loss = malloc(cap * sizeof *r->hist_loss);
    if (!r->hist_step || !r->hist_loss)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    return DC_OK;
}

static void teardown(run *r)
{
    dc_loader_destroy(r->loader);
    dc_trainer_destroy(r->tr);
    if (r->be)
        dc_backend_destroy(r->be);
    dc_dataset_close(r->train);
    dc_dataset_close(r->val);
    dc_train_log_close(&r->log);
    dc_train_config_free(&r->cfg);
    free(r->hist_step), free(r->hist_loss);
}

/* Teardown of a fresh run that failed before its first step: it leaves nothing behind. The files
 * it opened (metrics.jsonl, the event file) hold nothing; then tb/ and the output folder go if they
 * are empty and this run made the folder (rmdir refuses a folder that holds anything, so earlier
 * results are never touched). */
static void teardown_empty_run(run *r)
{
    char metrics[sizeof r->log.path] = "", events[4400] = "";
    if (r->log.jsonl)
        snprintf(metrics, sizeof metrics, "%s", r->log.path);
    if (r->log.tb)
        snprintf(events, sizeof events, "%s", dc_tb_path(r->log.tb));
    teardown(r);
    if (metrics[0])
        unlink(metrics);
    if (events[0])
        unlink(events);
    char tb[4200];
    snprintf(tb, sizeof tb, "%s/tb", r->out);
    rmdir(tb);
    if (r->created_out)
        rmdir(r->out);
}

int dc_train_run(const dc_train_run_options *o, dc_error *err)
{
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    int rc = setup(&r, err);
    if (rc != DC_OK) {
        if (!o->resume && r.out[0])
            teardown_empty_run(&r);
        else
            teardown(&r);
        return rc;
    }
    const dc_train_config *c = &r.cfg;
    char line[10000];
    snprintf(line, sizeof line, "%s: %s dataset, %d samples of %dx%d, batch %d (%lld per epoch), steps %lld..%lld, "
             "backend %s, seed %" PRIu64 ", out %s", c->name, r.train->kind, r.train->count, r.train->tile,
             r.train->tile, c->batch, r.bpe, r.start, r.total, r.be->name, r.seed, r.out);
    dc_progress_init(&r.bar, stderr, r.start, r.total, c->log_iter);
    dc_progress_message(&r.bar, line);
    long long done = r.start;
    int epoch = (int)(r.start / r.bpe), interrupted = 0;
    double t_last = dc_now_seconds();
    long long step_last = done;
    while (rc == DC_OK && done < r.total) {
        if (o->stop && *o->stop) {
            interrupted = 1;
            break;
        }
        const float *cond, *target;
        if ((rc = dc_loader_next(r.loader, &cond, &target, &epoch, err)) != DC_OK)
            break;
        dc_step_result res;
        double lr = dc_train_lr(c, done + 1, r.total);
        if ((rc = dc_trainer_step(r.tr, cond, target, done, lr, &res, err)) != DC_OK)
            break;
        done++;
        if ((rc = count_skip(&r, done, &res, err)) != DC_OK)
            break;
        r.last_loss = res.loss;
        r.hist_step[r.nhist] = (double)done, r.hist_loss[r.nhist++] = res.loss;
        if (done % c->log_iter == 0 || done == r.total) {
            double now = dc_now_seconds();
            double its = now > t_last ? (double)(done - step_last) / (now - t_last) : 0;
            t_last = now, step_last = done;
            if ((rc = dc_train_log_step(&r.log, done, epoch, &res, r.skipped, its, err)) != DC_OK)
                break;
        }
        dc_progress_update(&r.bar, done, res.loss, lr);
        int epoch_end = done % r.bpe == 0;
        long long ep = done / r.bpe;
        if ((c->save_checkpoint_iter > 0 && done % c->save_checkpoint_iter == 0) ||
            (epoch_end && c->save_checkpoint_epoch > 0 && ep % c->save_checkpoint_epoch == 0))
            if ((rc = save_checkpoint(&r, done, epoch, err)) != DC_OK)
                break;
        if (r.val && ((c->val_iter > 0 && done % c->val_iter == 0) ||
                      (epoch_end && c->val_epoch > 0 && ep % c->val_epoch == 0)))
            if ((rc = validate(&r, done, epoch, err)) != DC_OK)
                break;
    }
    dc_progress_finish(&r.bar);
    if (rc == DC_OK) {
        /* the final (or interrupted) state: checkpoint first, it is what a resume needs */
        rc = save_checkpoint(&r, done, epoch, err);
        if (rc == DC_OK)
            rc = export_model(&r, done, err);
        if (rc == DC_OK && r.nhist > 1) {
            char png[4300];
            dc_error pe = {0};
            snprintf(png, sizeof png, "%s/loss.png", r.out);
            if (dc_loss_plot_png(png, r.hist_step, r.hist_loss, (int)r.nhist, 640, 320, &pe) != DC_OK)
                fprintf(stderr, "diffcr-train: warning: %s\n", pe.msg);
        }
        if (rc == DC_OK) {
            char skips[64] = "";
            if (r.skipped)
                snprintf(skips, sizeof skips, ", %lld non-finite steps skipped", r.skipped);
            snprintf(line, sizeof line, "%s at step %lld (loss %.6f%s): checkpoint %s, model %s",
                     interrupted ? "interrupted" : "done", done, r.last_loss, skips, r.ckpt, r.model);
            dc_progress_message(&r.bar, line);
        }
        if (rc == DC_OK && interrupted)
            rc = dc_fail(err, DC_ERR_CANCELLED, "interrupted at step %lld; resume with --resume %s", done, r.ckpt);
    }
    if (rc != DC_OK && rc != DC_ERR_CANCELLED && done == r.start && !o->resume)
        teardown_empty_run(&r);
    else
        teardown(&r);
    return rc;
}
