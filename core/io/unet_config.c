/* diffcr — the UNet hyper-parameters: the paper's defaults, range checks, and the compact JSON form
 * stored in checkpoints (see unet.h and config.h).
 *
 * The ranges are what the network code can honour, not what DiffCR happened to use: the split SCA
 * halves the channels at every level (so the width must be even, and doubling keeps it even deeper
 * down), and the caps keep every tensor dimension and parameter count far inside int / size_t so the
 * parameter table never has to think about overflow. Messages use the config key names, so a bad
 * value is reported the same way whether it came from a file or from code. */
#include <stdio.h>
#include <stdlib.h>

#include "diffcr/config.h"
#include "diffcr/unet.h"

/* Widest channel count at the bottom of the UNet (width << levels). DiffCR's paper model has 1024;
 * 65536 keeps the largest weight (2c x c) at 8.6e9 elements, still a valid size_t and int shapes. */
#define UNET_MAX_DEEP_CHANNELS 65536
#define UNET_MAX_WIDTH 4096
#define UNET_MAX_BLOCKS 64
#define UNET_MAX_IMG_CHANNEL 64
#define UNET_MAX_DATES 16

void dc_unet_config_default(dc_unet_config *cfg)
{
    if (!cfg)
        return;
    *cfg = (dc_unet_config){0};
    cfg->img_channel = 3;
    cfg->width = 64;
    cfg->middle_blk_num = 1;
    cfg->n_levels = 4;
    for (int i = 0; i < 4; i++) {
        cfg->enc_blk_nums[i] = 1;
        cfg->dec_blk_nums[i] = 1;
    }
    cfg->ndates = 3;
}

int dc_unet_config_validate(const dc_unet_config *cfg, dc_error *err)
{
    if (!cfg)
        return dc_fail(err, DC_ERR_ARG, "dc_unet_config_validate: NULL config");
    if (cfg->img_channel < 1 || cfg->img_channel > UNET_MAX_IMG_CHANNEL)
        return dc_fail(err, DC_ERR_ARG, "config: \"unet.img_channel\" must be in 1..%d (got %d)",
                       UNET_MAX_IMG_CHANNEL, cfg->img_channel);
    if (cfg->width < 2 || cfg->width > UNET_MAX_WIDTH || cfg->width % 2 != 0)
        return dc_fail(err, DC_ERR_ARG,
                       "config: \"unet.width\" must be even and in 2..%d, since the split SCA halves it "
                       "(got %d)",
                       UNET_MAX_WIDTH, cfg->width);
    if (cfg->n_levels < 1 || cfg->n_levels > DC_UNET_MAX_LEVELS)
        return dc_fail(err, DC_ERR_ARG, "config: \"unet.enc_blk_nums\" must have 1..%d levels (got %d)",
                       DC_UNET_MAX_LEVELS, cfg->n_levels);
    if (((long long)cfg->width << cfg->n_levels) > UNET_MAX_DEEP_CHANNELS)
        return dc_fail(err, DC_ERR_ARG,
                       "config: \"unet.width\" %d with %d levels gives %lld channels at the bottom "
                       "(at most %d)",
                       cfg->width, cfg->n_levels, (long long)cfg->width << cfg->n_levels,
                       UNET_MAX_DEEP_CHANNELS);
    if (cfg->middle_blk_num < 0 || cfg->middle_blk_num > UNET_MAX_BLOCKS)
        return dc_fail(err, DC_ERR_ARG, "config: \"unet.middle_blk_num\" must be in 0..%d (got %d)",
                       UNET_MAX_BLOCKS, cfg->middle_blk_num);
    for (int i = 0; i < cfg->n_levels; i++) {
        if (cfg->enc_blk_nums[i] < 0 || cfg->enc_blk_nums[i] > UNET_MAX_BLOCKS)
            return dc_fail(err, DC_ERR_ARG, "config: \"unet.enc_blk_nums\" element %d must be in 0..%d (got %d)",
                           i, UNET_MAX_BLOCKS, cfg->enc_blk_nums[i]);
        if (cfg->dec_blk_nums[i] < 0 || cfg->dec_blk_nums[i] > UNET_MAX_BLOCKS)
            return dc_fail(err, DC_ERR_ARG, "config: \"unet.dec_blk_nums\" element %d must be in 0..%d (got %d)",
                           i, UNET_MAX_BLOCKS, cfg->dec_blk_nums[i]);
    }
    if (cfg->ndates < 1 || cfg->ndates > UNET_MAX_DATES)
        return dc_fail(err, DC_ERR_ARG, "config: \"unet.ndates\" must be in 1..%d (got %d)",
                       UNET_MAX_DATES, cfg->ndates);
    return DC_OK;
}

/* Compact, fixed key order: the same text as scripts/convert_pth.py writes to "diffcr.unet", so two
 * checkpoints of the same network carry byte-identical descriptions. */
char *dc_unet_config_to_json(const dc_unet_config *cfg)
{
    if (!cfg || cfg->n_levels < 1 || cfg->n_levels > DC_UNET_MAX_LEVELS)
        return NULL;
    /* 6 keys and at most 2 x 8 small integers: 512 bytes is ample; snprintf says if not. */
    size_t cap = 512;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    int n = snprintf(s, cap, "{\"img_channel\":%d,\"width\":%d,\"middle_blk_num\":%d,\"enc_blk_nums\":[",
                     cfg->img_channel, cfg->width, cfg->middle_blk_num);
    if (n < 0 || (size_t)n >= cap)
        goto overflow;
    len = (size_t)n;
    for (int pass = 0; pass < 2; pass++) {
        const int *v = pass == 0 ? cfg->enc_blk_nums : cfg->dec_blk_nums;
        for (int i = 0; i < cfg->n_levels; i++) {
            n = snprintf(s + len, cap - len, "%s%d", i ? "," : "", v[i]);
            if (n < 0 || (size_t)n >= cap - len)
                goto overflow;
            len += (size_t)n;
        }
        n = snprintf(s + len, cap - len, "%s", pass == 0 ? "],\"dec_blk_nums\":[" : "]");
        if (n < 0 || (size_t)n >= cap - len)
            goto overflow;
        len += (size_t)n;
    }
    n = snprintf(s + len, cap - len, ",\"ndates\":%d}", cfg->ndates);
    if (n < 0 || (size_t)n >= cap - len)
        goto overflow;
    return s;

overflow:
    free(s);
    return NULL;
}
