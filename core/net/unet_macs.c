/* diffcr — multiply-accumulate count of one network forward, counting conv and linear weights as
 * thop does (DIFFCR.md §2.4), so benchmarks can report GMAC/s. The condition path excludes the last
 * cond_down, whose output DiffCR computes but never uses (we skip it). */
#include "diffcr/unet.h"

static double block_macs(double pixels, double c)
{
    /* conv1 c->2c, dw 3x3 on 2c, conv3 c->c, conv4 c->2c, conv5 c->c per pixel; SCA 1x1 on the
     * pooled halves and the time linear are per sample (added by the caller's B factor below). */
    return pixels * (2 * c * c + 2 * c * 9 + c * c + 2 * c * c + c * c);
}

void dc_unet_macs(const dc_unet_config *cfg, int B, int H, int W, double *cond_macs, double *main_macs)
{
    int L = cfg->n_levels, m = 1 << L;
    int PH = (H + m - 1) / m * m, PW = (W + m - 1) / m * m;
    double ic = cfg->img_channel, w = cfg->width, nd = cfg->ndates;
    double P0 = (double)B * PH * PW;
    double cond = nd * P0 * ic * w * 9, main = P0 * ic * w * 9 + P0 * w * ic * 9; /* intros + ending */
    main += (double)B * (64.0 * 256 + 256.0 * 256);                              /* map */
    for (int i = 0; i < L; i++) {
        double c = w * (1 << i), Pi = P0 / (double)(1 << (2 * i));
        double sca = (double)B * 2 * (c / 2) * (c / 2), temb = (double)B * 256 * c;
        cond += cfg->enc_blk_nums[i] * (block_macs(nd * Pi, c) + nd * sca);
        main += cfg->enc_blk_nums[i] * (block_macs(Pi, c) + sca + temb);
        main += Pi / 4 * (2 * c) * c * 4;                                       /* down_i */
        if (i + 1 < L)
            cond += nd * Pi / 4 * (2 * c) * c * 4;                              /* cond_down_i */
    }
    double cb = w * (1 << L), PL = P0 / (double)(1 << (2 * L));
    main += cfg->middle_blk_num * (block_macs(PL, cb) + (double)B * 2 * (cb / 2) * (cb / 2) + (double)B * 256 * cb);
    for (int j = 0; j < L; j++) {
        int i = L - 1 - j;
        double c = w * (1 << i), Pi = P0 / (double)(1 << (2 * i));
        main += Pi / 4 * (2 * c) * (4 * c);                                     /* ups: 2c -> 4c at Pi/4 */
        main += cfg->dec_blk_nums[j] * (block_macs(Pi, c) + (double)B * 2 * (c / 2) * (c / 2) + (double)B * 256 * c);
    }
    if (cond_macs)
        *cond_macs = cond;
    if (main_macs)
        *main_macs = main;
}
