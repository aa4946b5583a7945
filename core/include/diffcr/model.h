/* diffcr — a DiffCR model ready to remove clouds: network weights + the sampling schedule + the
 * conventions recorded with the weights (time input, data scaling, tile size).
 *
 * A weights file (safetensors) carries in its __metadata__:
 *   diffcr.unet        network config (JSON unet object)                    required
 *   diffcr.schedule    test beta schedule, JSON {"schedule":"sigmoid","n_timestep":1000,
 *                      "linear_start":..,"linear_end":..}                  default: DiffCR's test one
 *   diffcr.time_input  "dpm_tinput" (the published code) or "gamma"        default: dpm_tinput
 *   diffcr.scale, diffcr.offset   model value = DN * scale + offset         default: 1/5000, -1
 *   diffcr.target      what the network predicts: "x0" (DiffCR), "eps" or "v"    default: x0
 *   diffcr.tile        training tile side                                 default: 256
 *   diffcr.bands       which bands the model expects (text, e.g. "R,G,B") default: "R,G,B"
 * Anything else (training data, step, metrics) is informational. */
#ifndef DIFFCR_MODEL_H
#define DIFFCR_MODEL_H

#include <stdint.h>

#include "diffcr/backend.h"
#include "diffcr/error.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"
#include "diffcr/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_model_options {
    const char *device;          /* "auto", "cpu", "ref", "cuda[:N]" */
    int threads;                 /* <= 0: all cores */
    dc_precision precision;      /* convolution arithmetic; fp32 (default) on every device */
    dc_sampler_options sampler;  /* seed/tile_id/progress set per call by dc_model_sample */
    int time_input_override;     /* -1: as recorded in the weights; else a dc_time_input */
} dc_model_options;

/* Defaults: device auto, all threads, DiffCR's sampler (DPM-Solver++ 2M, 20 steps, 21 calls). */
void dc_model_options_default(dc_model_options *o);

typedef struct dc_model dc_model;

int dc_model_open(dc_model **out, const char *weights_path, const dc_model_options *o, dc_error *err);
void dc_model_close(dc_model *m);

const dc_unet_config *dc_model_config(const dc_model *m);
double dc_model_scale(const dc_model *m);    /* model value = DN * scale + offset */
double dc_model_offset(const dc_model *m);
int dc_model_tile(const dc_model *m);
const char *dc_model_bands(const dc_model *m);
const char *dc_model_backend_name(const dc_model *m);
/* 1 when the network runs in device (non-host) memory, e.g. on a GPU. */
int dc_model_on_device(const dc_model *m);
/* A one-line remark on how the model runs, for the user (e.g. a precision ignored because --device
 * auto chose the CPU: dc_backend_apply_precision), or "". */
const char *dc_model_note(const dc_model *m);
dc_time_input dc_model_time_input(const dc_model *m);

/* Remove clouds from B tiles: cond [B,H,W,ndates*C] NHWC in the model's range (dates date-major in
 * channels), out [B,H,W,C]. The initial noise is init_noise [B,H,W,C] if given, else Philox keyed by
 * (seed, tile_id + b) so a tile's result does not depend on batching or order. The condition
 * branch runs once; every sampler call reuses it. progress may be NULL. */
int dc_model_sample(dc_model *m, float *out, const float *cond, int B, int H, int W,
                    const float *init_noise, uint64_t seed, uint32_t tile_id,
                    dc_progress_fn progress, void *progress_arg, dc_sampler_stats *stats,
                    dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
