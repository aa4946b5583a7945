/* diffcr — the real DiffCR model behind the raster pipeline's tile interface.
 *
 * Glues dc_model (network + schedule + sampler, core/include/diffcr/model.h) to dc_tile_model: the
 * pipeline hands over a tile of scaled conditions, this runs the whole diffusion sampling on it.
 * The noise is keyed by (seed, tile position, sample): the tile's top-left pixel picks the Philox
 * stream and the sample index perturbs the key, so a tile's result depends only on where it is in
 * raster space — not on the requested window, the processing order or the thread count. */
#include <stdlib.h>

#include "diffcr/decloud.h"
#include "diffcr/model.h"
#include "diffcr/tile_model.h"

typedef struct weights_model {
    dc_model *model;
    uint64_t seed;
} weights_model;

static int run_weights_tile(dc_tile_model *m, float *out, const float *cond, int h, int w,
                            uint64_t tile_key, int sample, dc_error *err)
{
    weights_model *wm = m->user;
    uint32_t tile_id = (uint32_t)(tile_key ^ ((tile_key >> 32) * 0x9E3779B1u)); /* mix y into x */
    uint64_t seed = wm->seed + (uint64_t)sample * 0x9E3779B97F4A7C15ull;
    return dc_model_sample(wm->model, out, cond, 1, h, w, NULL, seed, tile_id, NULL, NULL, NULL, err);
}

static void destroy_weights_model(dc_tile_model *m)
{
    if (!m)
        return;
    weights_model *wm = m->user;
    if (wm) {
        dc_model_close(wm->model);
        free(wm);
    }
    free(m);
}

int dc_tile_model_open_weights(dc_tile_model **out, const char *path,
                               const struct dc_decloud_options *opts, dc_error *err)
{
    *out = NULL;
    dc_model_options mo;
    dc_model_options_default(&mo);
    mo.device = opts->device ? opts->device : "auto";
    mo.threads = opts->threads;
    if (opts->steps > 0)
        mo.sampler.steps = opts->steps;
    if (opts->order > 0)
        mo.sampler.order = opts->order;
    int rc = DC_OK;
    if (opts->sampler && *opts->sampler)
        rc = dc_sampler_kind_parse(opts->sampler, &mo.sampler.kind, err);
    if (rc == DC_OK && opts->precision && *opts->precision)
        rc = dc_precision_parse(opts->precision, &mo.precision, err);
    if (rc != DC_OK)
        return rc;

    dc_tile_model *m = calloc(1, sizeof *m);
    weights_model *wm = calloc(1, sizeof *wm);
    if (!m || !wm) {
        free(m);
        free(wm);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory opening %s", path);
    }
    m->user = wm;
    m->destroy = destroy_weights_model;
    if ((rc = dc_model_open(&wm->model, path, &mo, err)) != DC_OK) {
        destroy_weights_model(m);
        return rc;
    }
    const dc_unet_config *cfg = dc_model_config(wm->model);
    wm->seed = (uint64_t)opts->seed;
    m->name = path;
    m->ndates = cfg->ndates;
    m->nbands = cfg->img_channel;
    m->tile = dc_model_tile(wm->model);
    m->scale = dc_model_scale(wm->model);
    m->offset = dc_model_offset(wm->model);
    m->run_tile = run_weights_tile;
    *out = m;
    return DC_OK;
}
