/* diffcr — where training numbers go: a JSON line per logged step and per validation in
 * DIR/metrics.jsonl (easy to read back: jq, pandas), and the same scalars as TensorBoard events.
 *
 * Losses are written with %.17g, enough digits to round-trip a double, so tests can compare the
 * losses of two runs exactly. NaN/inf are written as strings ("nan"), which JSON allows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diffcr/tb_events.h"
#include "diffcr/train.h"

static void num(char *out, size_t size, double v)
{
    if (isfinite(v))
        snprintf(out, size, "%.17g", v);
    else
        snprintf(out, size, "\"%s\"", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

int dc_train_log_open(dc_train_log *l, const char *out_dir, int append, int tensorboard, dc_error *err)
{
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s/metrics.jsonl", out_dir);
    if (!(l->jsonl = fopen(l->path, append ? "a" : "w")))
        return dc_fail(err, DC_ERR_IO, "%s: cannot open for writing", l->path);
    if (tensorboard) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/tb", out_dir);
        mkdir(dir, 0777);
        int rc = dc_tb_open(&l->tb, dir, err);
        if (rc != DC_OK) {
            dc_train_log_close(l);
            return rc;
        }
    }
    return DC_OK;
}

static int flush_line(dc_train_log *l, dc_error *err)
{
    if (ferror(l->jsonl) || fflush(l->jsonl) != 0)
        return dc_fail(err, DC_ERR_IO, "%s: write failed (disk full?)", l->path);
    return DC_OK;
}

int dc_train_log_step(dc_train_log *l, long long step, int epoch, const dc_step_result *r,
                      long long skipped, double its, dc_error *err)
{
    char loss[40], gn[40];
    num(loss, sizeof loss, r->loss);
    num(gn, sizeof gn, r->grad_norm);
    fprintf(l->jsonl,
            "{\"step\":%lld,\"epoch\":%d,\"loss\":%s,\"lr\":%.9g,\"grad_norm\":%s,\"skipped\":%lld,\"it_per_s\":%.3f}\n",
            step, epoch, loss, r->lr, gn, skipped, its);
    int rc = flush_line(l, err);
    if (rc == DC_OK && l->tb && (rc = dc_tb_scalar(l->tb, "train/loss", step, r->loss, err)) == DC_OK &&
        (rc = dc_tb_scalar(l->tb, "train/lr", step, r->lr, err)) == DC_OK)
        rc = dc_tb_scalar(l->tb, "train/grad_norm", step, r->grad_norm, err);
    return rc;
}

char *dc_eval_summary_json(const dc_eval_summary *s)
{
    char a[40], b[40], c[40], d[40], e[40], f[40];
    num(a, sizeof a, s->mae_model), num(b, sizeof b, s->mae), num(c, sizeof c, s->psnr);
    num(d, sizeof d, s->ssim), num(e, sizeof e, s->paper_psnr), num(f, sizeof f, s->paper_ssim);
    char *out = malloc(512);
    if (out)
        snprintf(out, 512,
                 "{\"samples\":%d,\"mae_model\":%s,\"mae\":%s,\"psnr\":%s,\"ssim\":%s,\"paper_psnr\":%s,"
                 "\"paper_ssim\":%s,\"seconds\":%.3f}",
                 s->n, a, b, c, d, s->have_paper ? e : "null", s->have_paper ? f : "null", s->seconds);
    return out;
}

int dc_train_log_val(dc_train_log *l, long long step, int epoch, const char *split,
                     const dc_eval_summary *s, dc_error *err)
{
    char *j = dc_eval_summary_json(s);
    if (!j)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    fprintf(l->jsonl, "{\"step\":%lld,\"epoch\":%d,\"%s\":%s}\n", step, epoch, split, j);
    free(j);
    int rc = flush_line(l, err);
    if (rc == DC_OK && l->tb) {
        const char *tags[] = {"val/mae", "val/psnr", "val/ssim", "val/paper_psnr", "val/paper_ssim"};
        double v[] = {s->mae, s->psnr, s->ssim, s->paper_psnr, s->paper_ssim};
        for (int i = 0; i < (s->have_paper ? 5 : 3) && rc == DC_OK; i++)
            rc = dc_tb_scalar(l->tb, tags[i], step, v[i], err);
    }
    return rc;
}

void dc_train_log_close(dc_train_log *l)
{
    if (l->jsonl)
        fclose(l->jsonl);
    dc_tb_close(l->tb);
    l->jsonl = NULL;
    l->tb = NULL;
}
