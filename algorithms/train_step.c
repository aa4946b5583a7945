/* diffcr — one DiffCR training step: noise a batch, predict, MSE, backward, clip, Adam, EMA.
 *
 * DIFFCR.md §3.2: gamma between consecutive alpha-bar values of the train schedule (float32, as
 * DiffCR keeps its buffers), y_t = sqrt(gamma) y0 + sqrt(1-gamma) eps, the network fed gamma,
 * F.mse_loss on the chosen target (x0 by default). The noise of step k comes from Philox keyed by
 * (seed, k, sample), which is what makes a resumed run repeat an uninterrupted one.
 *
 * The optimiser state (Adam m, v, EMA) is flat buffers of the parameter layout on the backend, so
 * Adam, EMA and clipping are single passes through the op table (optim.h semantics) wherever the
 * network runs. On a device backend, host mirrors of weights and state exist for checkpoints and
 * export only: dc_trainer_pull fills them, dc_trainer_sync sends them back. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/ops.h"
#include "diffcr/train.h"

struct dc_trainer {
    dc_backend *be;
    dc_unet *net;
    const dc_param_table *tab;
    size_t n;                  /* parameters */
    int B, T, C, D;
    size_t x_floats, cond_floats;   /* per batch */
    dc_target_kind target;
    dc_adam_config adam;
    double grad_clip;
    int ema_start, ema_iter;
    double ema_decay;
    uint64_t seed;
    float *gammas;             /* train schedule alpha-bar, float32 as DiffCR */
    int n_gammas;
    long long adam_step;
    /* host */
    float *xt, *tgt, *tin, *out, *dout;
    float *m, *v, *ema;        /* host backends: the state itself; device: mirrors */
    float *hparams;            /* device backends: mirror of the weights; NULL on host ones */
    /* backend */
    float *d_cond, *d_x, *d_out, *d_dout;
    float *d_m, *d_v, *d_ema;  /* device backends only (host ones use m, v, ema) */
};

int dc_trainer_create(dc_trainer **out, const dc_train_config *cfg, dc_backend *be, int B, int T,
                      uint64_t seed, dc_error *err)
{
    *out = NULL;
    dc_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    tr->be = be;
    tr->B = B, tr->T = T;
    tr->C = cfg->unet.img_channel, tr->D = cfg->unet.ndates;
    tr->target = cfg->target;
    tr->adam = cfg->adam;
    tr->grad_clip = cfg->grad_clip;
    tr->ema_start = cfg->ema_start, tr->ema_iter = cfg->ema_iter, tr->ema_decay = cfg->ema_decay;
    tr->seed = seed;
    int rc = dc_unet_create(&tr->net, &cfg->unet, be, err);
    if (rc != DC_OK) {
        free(tr);
        return rc;
    }
    tr->tab = dc_unet_params_table(tr->net);
    tr->n = tr->tab->total;
    tr->x_floats = (size_t)B * T * T * tr->C;
    tr->cond_floats = tr->x_floats * tr->D;
    const dc_beta_spec *bs = &cfg->train_schedule;
    tr->n_gammas = bs->n;
    double *betas = malloc((size_t)bs->n * sizeof *betas), *g = malloc((size_t)bs->n * sizeof *g);
    tr->gammas = malloc((size_t)bs->n * sizeof *tr->gammas);
    if (!betas || !g || !tr->gammas)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    if (rc == DC_OK &&
        (rc = dc_make_beta_schedule(betas, bs->kind, bs->n, bs->linear_start, bs->linear_end,
                                    DC_BETA_DEFAULT_COSINE_S, err)) == DC_OK) {
        dc_alphas_cumprod(g, betas, bs->n);
        for (int i = 0; i < bs->n; i++)
            tr->gammas[i] = (float)g[i];
    }
    free(betas), free(g);
    if (rc == DC_OK) {
        tr->xt = malloc(tr->x_floats * sizeof(float));
        tr->tgt = malloc(tr->x_floats * sizeof(float));
        tr->out = malloc(tr->x_floats * sizeof(float));
        tr->dout = malloc(tr->x_floats * sizeof(float));
        tr->tin = malloc((size_t)B * sizeof(float));
        tr->m = calloc(tr->n, sizeof(float));
        tr->v = calloc(tr->n, sizeof(float));
        tr->ema = calloc(tr->n, sizeof(float));
        tr->d_cond = dc_alloc_floats(be, tr->cond_floats);
        tr->d_x = dc_alloc_floats(be, tr->x_floats);
        tr->d_out = dc_alloc_floats(be, tr->x_floats);
        tr->d_dout = dc_alloc_floats(be, tr->x_floats);
        if (!be->is_host) {
            tr->hparams = calloc(tr->n, sizeof(float));
            tr->d_m = dc_alloc_floats(be, tr->n);
            tr->d_v = dc_alloc_floats(be, tr->n);
            tr->d_ema = dc_alloc_floats(be, tr->n);
        }
        if (!tr->xt || !tr->tgt || !tr->out || !tr->dout || !tr->tin || !tr->m || !tr->v || !tr->ema ||
            !tr->d_cond || !tr->d_x || !tr->d_out || !tr->d_dout ||
            (!be->is_host && (!tr->hparams || !tr->d_m || !tr->d_v || !tr->d_ema)))
            rc = dc_fail(err, DC_ERR_NOMEM, "out of %s memory for training buffers (batch %d, %dx%d)",
                         dc_backend_memory_name(be), B, T, T);
    }
    if (rc == DC_OK) {   /* DiffCR's init; the EMA copy starts equal to the weights (deepcopy) */
        float *p = dc_trainer_params(tr);
        dc_unet_init_params(p, tr->tab, seed);
        memcpy(tr->ema, p, tr->n * sizeof(float));
        rc = dc_trainer_sync(tr, err);
    }
    if (rc != DC_OK) {
        dc_trainer_destroy(tr);
        return rc;
    }
    *out = tr;
    return DC_OK;
}

void dc_trainer_destroy(dc_trainer *tr)
{
    if (!tr)
        return;
    dc_backend *be = tr->be;
    be->release(be, tr->d_cond), be->release(be, tr->d_x);
    be->release(be, tr->d_out), be->release(be, tr->d_dout);
    if (tr->d_m)
        be->release(be, tr->d_m);
    if (tr->d_v)
        be->release(be, tr->d_v);
    if (tr->d_ema)
        be->release(be, tr->d_ema);
    dc_unet_destroy(tr->net);
    free(tr->gammas), free(tr->xt), free(tr->tgt), free(tr->out), free(tr->dout), free(tr->tin);
    free(tr->m), free(tr->v), free(tr->ema), free(tr->hparams);
    free(tr);
}

float *dc_trainer_params(dc_trainer *tr) { return tr->be->is_host ? dc_unet_params(tr->net) : tr->hparams; }
float *dc_trainer_ema(dc_trainer *tr) { return tr->ema; }
float *dc_trainer_adam_m(dc_trainer *tr) { return tr->m; }
float *dc_trainer_adam_v(dc_trainer *tr) { return tr->v; }
const dc_param_table *dc_trainer_table(const dc_trainer *tr) { return tr->tab; }
long long dc_trainer_adam_step(const dc_trainer *tr) { return tr->adam_step; }
void dc_trainer_set_adam_step(dc_trainer *tr, long long t) { tr->adam_step = t; }

int dc_trainer_sync(dc_trainer *tr, dc_error *err)
{
    dc_backend *be = tr->be;
    if (be->is_host) {
        be->weights_changed(be);
        return DC_OK;
    }
    size_t bytes = tr->n * sizeof(float);
    be->to_device(be, tr->d_m, tr->m, bytes);
    be->to_device(be, tr->d_v, tr->v, bytes);
    be->to_device(be, tr->d_ema, tr->ema, bytes);
    int rc = dc_unet_set_params(tr->net, tr->hparams, err);
    return rc == DC_OK ? be->synchronize(be, err) : rc;
}

int dc_trainer_pull(dc_trainer *tr, dc_error *err)
{
    dc_backend *be = tr->be;
    if (be->is_host)
        return DC_OK;
    size_t bytes = tr->n * sizeof(float);
    be->bind(be);
    be->to_host(be, tr->hparams, dc_unet_params(tr->net), bytes);
    be->to_host(be, tr->m, tr->d_m, bytes);
    be->to_host(be, tr->v, tr->d_v, bytes);
    be->to_host(be, tr->ema, tr->d_ema, bytes);
    return be->synchronize(be, err);
}

int dc_trainer_step(dc_trainer *tr, const float *cond, const float *x0, long long step, double lr,
                    dc_step_result *res, dc_error *err)
{
    dc_backend *be = tr->be;
    size_t nx = tr->x_floats, per = nx / tr->B;
    int rc = dc_train_make_batch(tr->xt, tr->tgt, tr->tin, NULL, x0, tr->B, per, tr->gammas,
                                 tr->n_gammas, tr->target, tr->seed, (uint32_t)step, 0, err);
    if (rc != DC_OK)
        return rc;
    be->bind(be);
    be->to_device(be, tr->d_cond, cond, tr->cond_floats * sizeof(float));
    be->to_device(be, tr->d_x, tr->xt, nx * sizeof(float));
    if ((rc = dc_unet_forward_train(tr->net, tr->d_out, tr->d_cond, tr->d_x, tr->tin, tr->B, tr->T,
                                    tr->T, err)) != DC_OK)
        return rc;
    be->to_host(be, tr->out, tr->d_out, nx * sizeof(float));
    /* F.mse_loss: the mean over every value of the batch; d loss / d out = 2 (out - target) / N */
    res->loss = mse_forward(tr->out, tr->tgt, nx);
    mse_backward(tr->dout, tr->out, tr->tgt, nx, 1.0f);
    be->to_device(be, tr->d_dout, tr->dout, nx * sizeof(float));
    if ((rc = dc_unet_backward(tr->net, tr->d_dout, err)) != DC_OK)
        return rc;
    float *params = dc_unet_params(tr->net), *grads = dc_unet_grads(tr->net);
    float *m = be->is_host ? tr->m : tr->d_m, *v = be->is_host ? tr->v : tr->d_v;
    float *ema = be->is_host ? tr->ema : tr->d_ema;
    /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when the norm exceeds it */
    res->grad_norm = be->grad_norm(be, grads, tr->n);
    res->lr = lr;
    /* A NaN or inf anywhere in the gradient makes its norm non-finite. Applying such a step would
     * turn every weight into NaN (Adam divides by sqrt(v)), and the next checkpoint would carry
     * them; so it is skipped, as torch.cuda.amp.GradScaler skips an overflowed fp16 step. So is a
     * finite gradient (after clipping) whose norm exceeds sqrt(FLT_MAX): an element's square,
     * Adam's second moment, could overflow float32 to inf and freeze that weight for good. The
     * caller decides when too many skips mean the run has diverged. */
    double applied = tr->grad_clip > 0 && res->grad_norm > tr->grad_clip ? tr->grad_clip : res->grad_norm;
    res->skipped = !isfinite(res->loss) || !(applied <= sqrt((double)FLT_MAX));
    if (res->skipped)
        return be->synchronize(be, err);
    if (tr->grad_clip > 0 && res->grad_norm > tr->grad_clip)
        be->scale_inplace(grads, (float)(tr->grad_clip / (res->grad_norm + 1e-6)), tr->n);
    dc_adam_config a = tr->adam;
    a.lr = lr;
    tr->adam_step++;
    be->adam_update(params, m, v, grads, tr->n, &a, tr->adam_step);
    /* Palette's EMA: from update ema_start on, every ema_iter updates. */
    long long done = step + 1;
    if (done >= tr->ema_start && done % tr->ema_iter == 0)
        be->ema_update(ema, params, tr->n, tr->ema_decay);
    be->weights_changed(be);
    return be->synchronize(be, err);
}
