/* diffcr — how good is a model file on a dataset: sample each tile with dc_model (the same code
 * and the same recorded conventions the decloud tools use) and average MAE / PSNR / SSIM on
 * reflectance and the DiffCR paper protocol (metrics.h).
 *
 * Used for validation during training (on the freshly exported model.safetensors) and by
 * `diffcr-train eval`. Samples are taken in dataset order without augmentation; the sampler noise
 * of sample i is keyed by tile id i, so two evaluations of one model agree exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/metrics.h"
#include "diffcr/model.h"
#include "diffcr/train.h"

int dc_train_evaluate(const char *weights, dc_dataset *ds, const dc_eval_options *o,
                      dc_eval_summary *s, dc_error *err)
{
    memset(s, 0, sizeof *s);
    double t0 = dc_now_seconds();
    dc_model_options mo;
    dc_model_options_default(&mo);
    mo.device = o->device ? o->device : "auto";
    mo.threads = o->threads;
    dc_model *m = NULL;
    int rc = dc_model_open(&m, weights, &mo, err);
    if (rc != DC_OK)
        return rc;
    const dc_unet_config *cfg = dc_model_config(m);
    int T = ds->tile, C = ds->channels, D = ds->ndates;
    if (cfg->img_channel != C || cfg->ndates != D) {
        dc_model_close(m);
        return dc_fail(err, DC_ERR_SHAPE, "%s: model takes %d dates of %d bands, the dataset has %d of %d",
                       weights, cfg->ndates, cfg->img_channel, D, C);
    }
    size_t nx = (size_t)T * T * C;
    float *cond = malloc(nx * D * sizeof *cond), *gt = malloc(nx * sizeof *gt);
    float *out = malloc(nx * sizeof *out), *out_dn = malloc(nx * sizeof *out_dn), *gt_dn = malloc(nx * sizeof *gt_dn);
    if (!cond || !gt || !out || !out_dn || !gt_dn)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    int n = o->limit > 0 && o->limit < ds->count ? o->limit : ds->count;
    int paper = 1;
    for (int i = 0; i < n && rc == DC_OK; i++) {
        if ((rc = ds->load(ds, i, 0, o->seed, cond, gt, err)) != DC_OK)
            break;
        if ((rc = dc_model_sample(m, out, cond, 1, T, T, NULL, o->seed, (uint32_t)i, NULL, NULL, NULL, err)) != DC_OK)
            break;
        double mae_model = 0;
        for (size_t k = 0; k < nx; k++) {
            mae_model += fabs((double)out[k] - gt[k]);
            /* back to DN (reflectance x 10000) with the dataset's scaling */
            out_dn[k] = (float)((out[k] - ds->offset) / ds->scale);
            gt_dn[k] = (float)((gt[k] - ds->offset) / ds->scale);
        }
        mae_model /= (double)nx;
        dc_metrics_report rep;
        if ((rc = dc_metrics_report_dn(out_dn, gt_dn, NULL, T, T, C, 10000.0, &rep, err)) != DC_OK)
            break;
        s->mae_model += mae_model;
        s->mae += rep.all.mae;
        s->psnr += rep.all.psnr;
        s->ssim += rep.have_ssim ? rep.ssim : NAN;
        if (rep.have_paper) {
            s->paper_psnr += rep.paper.psnr;
            s->paper_ssim += rep.paper.ssim;
        } else {
            paper = 0;
        }
        if (o->per_sample)
            fprintf(o->per_sample, "%-32s mae %.5f psnr %.3f ssim %.4f\n", ds->sample_name(ds, i), rep.all.mae,
                    rep.all.psnr, rep.have_ssim ? rep.ssim : NAN);
        if (o->preview_dir && i < o->previews) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s%d.png", o->preview_dir, o->preview_prefix ? o->preview_prefix : "", i);
            rc = dc_train_preview_png(path, cond, out, gt, T, C, D, err);
        }
        s->n++;
    }
    if (rc == DC_OK && s->n > 0) {
        s->mae_model /= s->n, s->mae /= s->n, s->psnr /= s->n, s->ssim /= s->n;
        s->have_paper = paper;
        s->paper_psnr = paper ? s->paper_psnr / s->n : NAN;
        s->paper_ssim = paper ? s->paper_ssim / s->n : NAN;
    }
    s->seconds = dc_now_seconds() - t0;
    free(cond), free(gt), free(out), free(out_dn), free(gt_dn);
    dc_model_close(m);
    return rc;
}
