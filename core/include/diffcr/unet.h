/* diffcr — the DiffCR network (NAFNet-style UNet with a shared condition encoder).
 *
 * Architecture: ../shared/reference/DIFFCR.md §2 (models/ours/nafnet_double_encoder_splitcaCond_
 * splitcaUnet.py). Input: ndates condition images and x_t, img_channel channels each; output:
 * img_channel channels (DiffCR hard-codes 3 = img_channel for RGB). Any H x W: padded to a multiple of
 * 2^levels inside, cropped back on output (DiffCR itself returns the padded size).
 *
 * Parameters live in one flat float buffer; a table of named views maps DiffCR's state-dict keys
 * ("encoders.0.0.conv1.weight", ...) to offsets with PyTorch shapes. Gradients, Adam moments and EMA
 * copies are buffers of the same layout. */
#ifndef DIFFCR_UNET_H
#define DIFFCR_UNET_H

#include <stddef.h>

#include "diffcr/backend.h"
#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DC_UNET_MAX_LEVELS 8
#define DC_UNET_TEMB_DIM 256   /* map output width (hard-coded in DiffCR) */
#define DC_UNET_GAMMA_DIM 64   /* gamma_embedding dim (hard-coded in DiffCR) */

typedef struct dc_unet_config {
    int img_channel;                        /* channels per date and of x_t (3 = RGB) */
    int width;                              /* channels after intro (64 in the paper) */
    int middle_blk_num;
    int n_levels;                           /* len(enc_blk_nums) == len(dec_blk_nums) */
    int enc_blk_nums[DC_UNET_MAX_LEVELS];
    int dec_blk_nums[DC_UNET_MAX_LEVELS];
    int ndates;                             /* condition dates; DiffCR: 3 */
} dc_unet_config;

/* DiffCR's paper model: width 64, [1,1,1,1] / 1 / [1,1,1,1], 3 dates of RGB. */
void dc_unet_config_default(dc_unet_config *cfg);
/* Check ranges (width even and > 0, levels 1..8, block counts 0..64, ...). */
int dc_unet_config_validate(const dc_unet_config *cfg, dc_error *err);

typedef struct dc_param_view {
    char name[96];     /* DiffCR state-dict key without the "denoise_fn." prefix */
    size_t offset;     /* in floats, into the flat buffer */
    size_t numel;
    int ndim;
    int shape[4];      /* PyTorch shape */
} dc_param_view;

/* The parameter table for a config (no memory for values). */
typedef struct dc_param_table {
    dc_param_view *views;
    int count;
    size_t total;      /* floats */
} dc_param_table;

int dc_param_table_build(dc_param_table *tab, const dc_unet_config *cfg, dc_error *err);
void dc_param_table_free(dc_param_table *tab);
const dc_param_view *dc_param_table_find(const dc_param_table *tab, const char *name);

/* DiffCR's init (kaiming normal fan_in for conv/linear weights, zero biases, LN weight 1, beta = gamma
 * = 0) from a seeded counter-based generator; host buffer of tab->total floats. */
void dc_unet_init_params(float *params, const dc_param_table *tab, unsigned long long seed);

typedef struct dc_unet dc_unet;

/* Create a network on a backend. Parameters are allocated on the backend (zero) and can be set with
 * dc_unet_set_params / loaded with dc_unet_load. */
int dc_unet_create(dc_unet **out, const dc_unet_config *cfg, dc_backend *be, dc_error *err);
void dc_unet_destroy(dc_unet *net);
const dc_unet_config *dc_unet_get_config(const dc_unet *net);
const dc_param_table *dc_unet_params_table(const dc_unet *net);
float *dc_unet_params(dc_unet *net);   /* backend memory, tab->total floats */
float *dc_unet_grads(dc_unet *net);    /* backend memory, allocated on first backward */
/* Copy host values in (and tell the backend weights changed). */
int dc_unet_set_params(dc_unet *net, const float *host, dc_error *err);

/* --- Inference ---------------------------------------------------------------------------------
 * Shapes: cond [B, H, W, ndates*img_channel] NHWC, the dates' channels date-major
 * (date0 c0..c2, date1 c0..c2, ...), i.e. DiffCR's input channels 0..8 in NHWC order;
 * x [B, H, W, img_channel]; out [B, H, W, img_channel]; tin [B] the time input fed to the embedding.
 * All pointers are backend memory except tin (host).
 *
 * The condition branch does not depend on x or t: dc_unet_set_condition computes its per-level sums
 * once; dc_unet_forward_cached then runs only the main branch (about 2.2x fewer MACs per call).
 * Workspace is sized on first use for (B, H, W) and reused; no allocation while the size holds. */
int dc_unet_set_condition(dc_unet *net, const float *cond, int B, int H, int W, dc_error *err);
int dc_unet_forward_cached(dc_unet *net, float *out, const float *x, const float *tin, dc_error *err);
/* Both in one (no cache reuse). */
int dc_unet_forward(dc_unet *net, float *out, const float *cond, const float *x, const float *tin,
                    int B, int H, int W, dc_error *err);

/* --- Training ----------------------------------------------------------------------------------
 * Forward keeping every activation, then backward from dout (backend memory, out's shape) writing all
 * parameter gradients to dc_unet_grads (overwritten, not accumulated). */
int dc_unet_forward_train(dc_unet *net, float *out, const float *cond, const float *x,
                          const float *tin, int B, int H, int W, dc_error *err);
int dc_unet_backward(dc_unet *net, const float *dout, dc_error *err);

/* MACs of one forward for (B,H,W) counting conv and linear weights (DIFFCR.md §2.4), split into the
 * condition path and the main path. */
void dc_unet_macs(const dc_unet_config *cfg, int B, int H, int W, double *cond_macs,
                  double *main_macs);

/* --- Checkpoints (safetensors) -----------------------------------------------------------------
 * Load weights named with DiffCR keys (an optional "denoise_fn." prefix is accepted). Every tensor of
 * the table must be present with the right shape and dtype F32; extra tensors are ignored. */
int dc_unet_load_params(dc_unet *net, const char *path, dc_error *err);
/* The network config recorded in a weights file's metadata ("diffcr.unet", a JSON unet object). */
int dc_unet_config_from_weights(dc_unet_config *cfg, const char *path, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
