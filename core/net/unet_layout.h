/* diffcr — internal: where each DiffCR parameter lives in the flat buffer, grouped per block and
 * per level so the forward/backward code reads `blk->conv1_w` instead of looking names up. Built
 * once from the config together with the public name table (unet_params.c). */
#ifndef DIFFCR_NET_UNET_LAYOUT_H
#define DIFFCR_NET_UNET_LAYOUT_H

#include <stddef.h>

#include "diffcr/unet.h"

/* Offsets (in floats) of one NAFBlock / CondNAFBlock's tensors. temb_* are 0 for condition blocks. */
typedef struct naf_block_layout {
    int c;            /* channels */
    int has_time;     /* NAFBlock (1) or CondNAFBlock (0) */
    size_t beta, gamma;
    size_t conv1_w, conv1_b, conv2_w, conv2_b, conv3_w, conv3_b;
    size_t sca_avg_w, sca_avg_b, sca_max_w, sca_max_b;
    size_t conv4_w, conv4_b, conv5_w, conv5_b;
    size_t norm1_w, norm1_b, norm2_w, norm2_b;
    size_t temb_w, temb_b;
} naf_block_layout;

typedef struct unet_layout {
    int levels;
    size_t intro_w, intro_b, cond_intro_w, cond_intro_b, ending_w, ending_b;
    size_t map0_w, map0_b, map2_w, map2_b;
    naf_block_layout *enc[DC_UNET_MAX_LEVELS];      /* enc_blk_nums[i] blocks each */
    naf_block_layout *cond_enc[DC_UNET_MAX_LEVELS];
    naf_block_layout *dec[DC_UNET_MAX_LEVELS];      /* dec_blk_nums[j] blocks each */
    naf_block_layout *middle;                       /* middle_blk_num blocks */
    size_t down_w[DC_UNET_MAX_LEVELS], down_b[DC_UNET_MAX_LEVELS];
    size_t cond_down_w[DC_UNET_MAX_LEVELS], cond_down_b[DC_UNET_MAX_LEVELS];
    size_t up_w[DC_UNET_MAX_LEVELS];                /* no bias */
    naf_block_layout *block_storage;                /* owns every block above */
    int block_count;
} unet_layout;

/* Build both the public name table and the layout. On failure nothing is allocated. */
int unet_layout_build(unet_layout *lay, dc_param_table *tab, const dc_unet_config *cfg, dc_error *err);
void unet_layout_free(unet_layout *lay);

#endif
