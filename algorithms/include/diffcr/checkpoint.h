/* diffcr — training checkpoints and the inference file, both safetensors.
 *
 * Checkpoint (everything a resumed run needs to continue bit for bit):
 *   tensors   <name> the weights (DiffCR state-dict keys, PyTorch shapes), ema.<name>,
 *             adam_m.<name>, adam_v.<name>
 *   metadata  diffcr.unet (so the file also loads as plain weights), diffcr.train.step (updates
 *             done), diffcr.train.epoch, diffcr.train.adam_step, diffcr.train.seed, diffcr.train.rng
 *             (the Philox key and the next counter: all randomness is keyed by seed and step),
 *             diffcr.train.config (the config text), diffcr.train.config_dir (its folder, for
 *             relative data paths), diffcr.train.loss (last loss)
 * Written through dc_st_writer (temporary file + fsync + rename), so a crash or a full disk leaves
 * the previous checkpoint in place and loadable.
 *
 * Inference file (what dc_model_open and the decloud tools load): the weights (or the EMA ones),
 * metadata diffcr.unet, diffcr.schedule (the config's TEST schedule), diffcr.time_input,
 * diffcr.scale, diffcr.offset, diffcr.tile, diffcr.bands, diffcr.target, diffcr.training (a short
 * JSON summary). */
#ifndef DIFFCR_CHECKPOINT_H
#define DIFFCR_CHECKPOINT_H

#include <stdint.h>

#include "diffcr/error.h"
#include "diffcr/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_checkpoint_state {
    long long step;          /* optimisation steps done */
    int epoch;               /* epoch of the last step */
    long long adam_step;
    uint64_t seed;
    double loss;
    const char *config_text; /* save: the config; load: owned copy (free with free()) */
    const char *config_dir;  /* save: the config's folder (absolute): relative data paths start there */
} dc_checkpoint_state;

/* Save weights, EMA and Adam moments (host buffers of tab->total floats) with the state. */
int dc_checkpoint_save(const char *path, const dc_unet_config *cfg, const dc_param_table *tab,
                       const float *params, const float *ema, const float *adam_m,
                       const float *adam_v, const dc_checkpoint_state *st, dc_error *err);
/* Load into host buffers (any may be NULL to skip); checks every tensor's presence and shape.
 * st->config_text is malloc'ed (NULL if absent). */
int dc_checkpoint_load(const char *path, const dc_param_table *tab, float *params, float *ema,
                       float *adam_m, float *adam_v, dc_checkpoint_state *st, dc_error *err);
/* Only the config text and folder stored in a checkpoint (both malloc'ed). */
int dc_checkpoint_config_text(const char *path, char **text, char **dir, dc_error *err);

typedef struct dc_export_info {
    const char *schedule_json;  /* {"schedule":..,"n_timestep":..,"linear_start":..,"linear_end":..} */
    const char *time_input;     /* "gamma" or "dpm_tinput" */
    const char *target;         /* "x0", "eps", "v" */
    double scale, offset;
    int tile;
    const char *bands;          /* "R,G,B" or "1,2,3" */
    const char *training_json;  /* summary */
} dc_export_info;

int dc_export_model(const char *path, const dc_unet_config *cfg, const dc_param_table *tab,
                    const float *weights, const dc_export_info *info, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
