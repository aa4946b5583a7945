/* diffcr — the model seen by the raster pipeline: one function that turns a tile of scaled
 * multi-date conditions into a tile of scaled output.
 *
 * The pipeline knows nothing about diffusion: it scales DN into the model's range
 * (value = DN * scale + offset, after any Sentinel-2 BOA/RADIO_ADD_OFFSET), fills missing dates,
 * calls run_tile once per tile and sample, and blends. The real DiffCR model plugs in through
 * dc_tile_model_open_weights() (model_weights.c); dc_tile_model_mean()/dc_tile_model_blur() are
 * known functions of the conditions used to test the plumbing (band order, scaling, offsets,
 * nodata, data types, tiling seams). */
#ifndef DIFFCR_TILE_MODEL_H
#define DIFFCR_TILE_MODEL_H

#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dc_decloud_options;

typedef struct dc_tile_model {
    const char *name;     /* for the history metadata, e.g. "mean" or the weights path */
    int ndates;           /* dates the model needs (DiffCR: 3) */
    int nbands;           /* channels per date and of the output (DiffCR: 3, R,G,B) */
    int tile;             /* preferred tile side (multiple of 16) */
    double scale, offset; /* model value = DN * scale + offset (DiffCR: 1/5000, -1) */
    int on_device;        /* runs on a GPU: the pipeline then reads the next strip meanwhile */
    char note[160];       /* a remark for the user about how it runs (e.g. a precision ignored), or "" */
    /* cond: [h][w][ndates*nbands] channels-last, date-major channels, already scaled, no
     * missing values; out: [h][w][nbands]. tile_key identifies the tile in raster space
     * (dc_tile_key), sample = 0..K-1 selects the noise stream; the result must depend only on
     * (cond, tile_key, sample, the model's settings). Returns DC_OK or a negative dc_error code. */
    int (*run_tile)(struct dc_tile_model *m, float *out, const float *cond, int h, int w,
                    uint64_t tile_key, int sample, dc_error *err);
    /* Optional: `count` tiles in one network batch, cond [count][h][w][ndates*nbands], out
     * [count][h][w][nbands], keys[count]; the same results as run_tile on each (to float
     * rounding: a batched convolution may round differently). NULL: the pipeline calls run_tile. */
    int (*run_tiles)(struct dc_tile_model *m, float *out, const float *cond, int count, int h, int w,
                     const uint64_t *tile_keys, int sample, dc_error *err);
    void (*destroy)(struct dc_tile_model *m); /* frees m itself */
    void *user;
} dc_tile_model;

/* Test model: out = mean over dates, per band (3 dates, 3 bands, tile 256, DiffCR scaling). */
int dc_tile_model_mean(dc_tile_model **out, dc_error *err);

/* Test model with spatial context: the date mean, box-blurred 5x5 inside the tile (edges
 * replicated). Its output depends on where tiles sit, so it exposes seams and any dependence of
 * the tile grid on the requested window. */
int dc_tile_model_blur(dc_tile_model **out, dc_error *err);

/* The real diffusion model (model_weights.c): load a DiffCR weights file and return a model that
 * samples with opts' steps/order/sampler/seed/threads/device/precision. */
int dc_tile_model_open_weights(dc_tile_model **out, const char *path,
                               const struct dc_decloud_options *opts, dc_error *err);

void dc_tile_model_destroy(dc_tile_model *m);

/* The shipped default model: $DIFFCR_DEFAULT_MODEL, else the installed
 * <prefix>/share/diffcr/diffcr_default.safetensors, else the source tree's
 * samples/model/diffcr_default.safetensors; NULL when none is readable. */
const char *dc_default_model_path(void);

#ifdef __cplusplus
}
#endif
#endif
