/* diffcr — training checkpoints and the inference file (format in checkpoint.h).
 *
 * Tensor names reuse DiffCR's state-dict keys with prefixes for the optimiser state, so a
 * checkpoint is also a valid weights file (dc_unet_load_params ignores the extra tensors) and the
 * PyTorch side can read it with safetensors' own loader. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/checkpoint.h"
#include "diffcr/config.h"
#include "diffcr/safetensors.h"

static int add_buffer(dc_st_writer *w, const dc_param_table *tab, const char *prefix,
                      const float *buf, char **names, int *nnames, dc_error *err)
{
    for (int i = 0; i < tab->count; i++) {
        const dc_param_view *pv = &tab->views[i];
        int64_t shape[4];
        for (int d = 0; d < pv->ndim; d++)
            shape[d] = pv->shape[d];
        char *name = malloc(strlen(prefix) + strlen(pv->name) + 1);
        if (!name)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
        strcpy(name, prefix);
        strcat(name, pv->name);
        names[(*nnames)++] = name;   /* the writer may keep the pointer until it writes */
        int rc = dc_st_writer_add(w, name, DC_DTYPE_F32, pv->ndim, shape, buf + pv->offset, err);
        if (rc != DC_OK)
            return rc;
    }
    return DC_OK;
}

static int write_file(const char *path, const dc_param_table *tab, const float *const *bufs,
                      const char *const *prefixes, int nbufs, const char *const *meta, int nmeta,
                      dc_error *err)
{
    dc_st_writer *w = dc_st_writer_new();
    char **names = calloc((size_t)tab->count * nbufs + 1, sizeof *names);
    int nnames = 0, rc = DC_OK;
    if (!w || !names)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    for (int b = 0; rc == DC_OK && b < nbufs; b++)
        rc = add_buffer(w, tab, prefixes[b], bufs[b], names, &nnames, err);
    for (int i = 0; rc == DC_OK && i < nmeta; i++)
        rc = dc_st_writer_meta(w, meta[2 * i], meta[2 * i + 1], err);
    if (rc == DC_OK)
        rc = dc_st_writer_write(w, path, err);
    dc_st_writer_free(w);
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    return rc;
}

int dc_checkpoint_save(const char *path, const dc_unet_config *cfg, const dc_param_table *tab,
                       const float *params, const float *ema, const float *adam_m,
                       const float *adam_v, const dc_checkpoint_state *st, dc_error *err)
{
    char *unet = dc_unet_config_to_json(cfg);
    if (!unet)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    char step[32], epoch[32], astep[32], seed[32], rng[128], loss[40];
    snprintf(step, sizeof step, "%lld", st->step);
    snprintf(epoch, sizeof epoch, "%d", st->epoch);
    snprintf(astep, sizeof astep, "%lld", st->adam_step);
    snprintf(seed, sizeof seed, "%" PRIu64, st->seed);
    snprintf(rng, sizeof rng, "{\"generator\":\"philox4x32-10\",\"key\":%" PRIu64 ",\"next_step\":%lld}",
             st->seed, st->step);
    snprintf(loss, sizeof loss, "%.9g", st->loss);
    const char *meta[] = {
        "diffcr.unet", unet, "diffcr.train.step", step, "diffcr.train.epoch", epoch,
        "diffcr.train.adam_step", astep, "diffcr.train.seed", seed, "diffcr.train.rng", rng,
        "diffcr.train.loss", loss, "diffcr.train.config", st->config_text ? st->config_text : "",
        "diffcr.train.config_dir", st->config_dir ? st->config_dir : ".",
    };
    const float *bufs[4] = {params, ema, adam_m, adam_v};
    const char *prefixes[4] = {"", "ema.", "adam_m.", "adam_v."};
    int rc = write_file(path, tab, bufs, prefixes, 4, meta, (int)(sizeof meta / sizeof *meta / 2), err);
    free(unet);
    return rc;
}

static int meta_ll(const dc_safetensors *st, const char *path, const char *key, long long *out,
                   dc_error *err)
{
    const char *v = dc_st_meta(st, key);
    char *end;
    if (!v)
        return dc_fail(err, DC_ERR_FORMAT, "%s: not a diffcr-train checkpoint (no %s)", path, key);
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < 0)
        return dc_fail(err, DC_ERR_FORMAT, "%s: bad %s '%s'", path, key, v);
    *out = x;
    return DC_OK;
}

int dc_checkpoint_load(const char *path, const dc_param_table *tab, float *params, float *ema,
                       float *adam_m, float *adam_v, dc_checkpoint_state *st, dc_error *err)
{
    memset(st, 0, sizeof *st);
    dc_safetensors *f = NULL;
    int rc = dc_st_open(&f, path, err);
    if (rc != DC_OK)
        return rc;
    long long step = 0, epoch = 0, astep = 0;
    const char *seed = dc_st_meta(f, "diffcr.train.seed");
    if ((rc = meta_ll(f, path, "diffcr.train.step", &step, err)) == DC_OK &&
        (rc = meta_ll(f, path, "diffcr.train.epoch", &epoch, err)) == DC_OK &&
        (rc = meta_ll(f, path, "diffcr.train.adam_step", &astep, err)) == DC_OK && !seed)
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: no diffcr.train.seed", path);
    float *bufs[4] = {params, ema, adam_m, adam_v};
    const char *prefixes[4] = {"", "ema.", "adam_m.", "adam_v."};
    for (int b = 0; rc == DC_OK && b < 4; b++) {
        if (!bufs[b])
            continue;
        for (int i = 0; rc == DC_OK && i < tab->count; i++) {
            const dc_param_view *pv = &tab->views[i];
            char name[160];
            snprintf(name, sizeof name, "%s%s", prefixes[b], pv->name);
            const dc_st_tensor *t = dc_st_find(f, name);
            int ok = t && t->dtype == DC_DTYPE_F32 && t->ndim == pv->ndim;
            for (int d = 0; ok && d < pv->ndim; d++)
                ok = t->shape[d] == pv->shape[d];
            if (!ok)
                rc = dc_fail(err, DC_ERR_SHAPE, "%s: tensor %s is missing or has another shape/dtype "
                             "(checkpoint of another network?)", path, name);
            else
                memcpy(bufs[b] + pv->offset, t->data, pv->numel * sizeof(float));
        }
    }
    if (rc == DC_OK) {
        st->step = step, st->epoch = (int)epoch, st->adam_step = astep;
        st->seed = strtoull(seed, NULL, 10);
        const char *loss = dc_st_meta(f, "diffcr.train.loss");
        st->loss = loss ? strtod(loss, NULL) : 0;
        const char *cfg = dc_st_meta(f, "diffcr.train.config");
        if (cfg && *cfg && !(st->config_text = strdup(cfg)))
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    }
    dc_st_close(f);
    return rc;
}

int dc_checkpoint_config_text(const char *path, char **text, char **dir, dc_error *err)
{
    *text = NULL;
    *dir = NULL;
    dc_safetensors *f = NULL;
    int rc = dc_st_open(&f, path, err);
    if (rc != DC_OK)
        return rc;
    const char *cfg = dc_st_meta(f, "diffcr.train.config");
    if (!cfg || !*cfg)
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: holds no training config (not a diffcr-train checkpoint)", path);
    else if (!(*text = strdup(cfg)))
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    const char *d = dc_st_meta(f, "diffcr.train.config_dir");
    if (rc == DC_OK && !(*dir = strdup(d ? d : ".")))
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    dc_st_close(f);
    return rc;
}

int dc_export_model(const char *path, const dc_unet_config *cfg, const dc_param_table *tab,
                    const float *weights, const dc_export_info *info, dc_error *err)
{
    char *unet = dc_unet_config_to_json(cfg);
    if (!unet)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    char scale[40], offset[40], tile[16];
    snprintf(scale, sizeof scale, "%.17g", info->scale);
    snprintf(offset, sizeof offset, "%.17g", info->offset);
    snprintf(tile, sizeof tile, "%d", info->tile);
    const char *meta[] = {
        "diffcr.unet", unet, "diffcr.schedule", info->schedule_json, "diffcr.time_input", info->time_input,
        "diffcr.scale", scale, "diffcr.offset", offset, "diffcr.tile", tile, "diffcr.bands", info->bands,
        "diffcr.target", info->target, "diffcr.training", info->training_json ? info->training_json : "{}",
    };
    const float *bufs[1] = {weights};
    const char *prefixes[1] = {""};
    int rc = write_file(path, tab, bufs, prefixes, 1, meta, (int)(sizeof meta / sizeof *meta / 2), err);
    free(unet);
    return rc;
}
