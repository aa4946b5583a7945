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
#include "diffcr/philox.h"
#include "diffcr/tile_model.h"

typedef struct weights_model {
    dc_model *model;
    uint64_t seed;
    int deterministic;       /* the sampler draws noise only for x_T (DPM-Solver++, DDIM eta 0) */
    float *noise;            /* batched x_T, [count][h][w][C], grown as needed */
    size_t noise_floats;
} weights_model;

static uint32_t tile_id_of(uint64_t tile_key) { return (uint32_t)(tile_key ^ ((tile_key >> 32) * 0x9E3779B1u)); }
static uint64_t seed_of(const weights_model *wm, int sample) { return wm->seed + (uint64_t)sample * 0x9E3779B97F4A7C15ull; }

static int run_weights_tile(dc_tile_model *m, float *out, const float *cond, int h, int w,
                            uint64_t tile_key, int sample, dc_error *err)
{
    weights_model *wm = m->user;
    return dc_model_sample(wm->model, out, cond, 1, h, w, NULL, seed_of(wm, sample), tile_id_of(tile_key),
                           NULL, NULL, NULL, err);
}

/* Several tiles in one network batch. Each tile's x_T is drawn exactly as run_weights_tile's
 * sampler would draw it (its own seed and tile id), so with a deterministic sampler a batched tile
 * equals the lone one up to the rounding of batched convolutions. Stochastic samplers key their
 * per-step noise by batch position, so they run tile by tile. */
static int run_weights_tiles(dc_tile_model *m, float *out, const float *cond, int count, int h, int w,
                             const uint64_t *keys, int sample, dc_error *err)
{
    weights_model *wm = m->user;
    const size_t n = (size_t)h * w * m->nbands, cn = n * (size_t)m->ndates;
    if (!wm->deterministic) {
        for (int i = 0; i < count; i++) {
            int rc = run_weights_tile(m, out + i * n, cond + i * cn, h, w, keys[i], sample, err);
            if (rc != DC_OK)
                return rc;
        }
        return DC_OK;
    }
    if (wm->noise_floats < n * (size_t)count) {
        free(wm->noise);
        wm->noise_floats = 0;
        wm->noise = malloc(n * (size_t)count * sizeof *wm->noise);
        if (!wm->noise)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory for a batch of %d tiles", count);
        wm->noise_floats = n * (size_t)count;
    }
    for (int i = 0; i < count; i++) {
        int rc = dc_philox_fill_normal(wm->noise + i * n, n, seed_of(wm, sample), DC_PHILOX_STREAM_INIT,
                                       tile_id_of(keys[i]), 0, err);
        if (rc != DC_OK)
            return rc;
    }
    return dc_model_sample(wm->model, out, cond, count, h, w, wm->noise, seed_of(wm, sample), tile_id_of(keys[0]),
                           NULL, NULL, NULL, err);
}

static void destroy_weights_model(dc_tile_model *m)
{
    if (!m)
        return;
    weights_model *wm = m->user;
    if (wm) {
        dc_model_close(wm->model);
        free(wm->noise);
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
    m->on_device = dc_model_on_device(wm->model);
    snprintf(m->note, sizeof m->note, "%s", dc_model_note(wm->model));
    m->run_tile = run_weights_tile;
    m->run_tiles = run_weights_tiles;
    wm->deterministic = mo.sampler.kind == DC_SAMPLER_DPM_SOLVER_PP ||
                        (mo.sampler.kind == DC_SAMPLER_DDIM && mo.sampler.eta == 0.0);
    *out = m;
    return DC_OK;
}
