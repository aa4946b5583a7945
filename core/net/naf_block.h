/* diffcr — internal: one NAFBlock (with time bias) or CondNAFBlock, forward and backward.
 *
 *   ln1 = LN1(inp); t1 = conv1(ln1) [2c]; t2 = dwconv3x3(t1) [2c]; g1 = gate(t2) [c]
 *   s = splitSCA(g1); t3 = conv3(s); y = inp + beta*t3 (+ tb)
 *   ln2 = LN2(y); t4 = conv4(ln2) [2c]; g2 = gate(t4) [c]; t5 = conv5(g2); out = y + gamma*t5
 *
 * The same forward serves training (every intermediate in its own buffer, kept for backward) and
 * inference (intermediates aliased onto three scratch tensors and the block updated in place):
 * naf_block_acts says where each one goes. */
#ifndef DIFFCR_NET_NAF_BLOCK_H
#define DIFFCR_NET_NAF_BLOCK_H

#include "diffcr/backend.h"
#include "net/unet_layout.h"

typedef struct naf_block_acts {
    float *ln1, *mean1, *rstd1, *t1, *t2, *g1;
    float *pooled, *scale;   /* [N, c] */
    int *argmax;             /* [N, c/2] */
    float *s, *t3, *y, *ln2, *mean2, *rstd2, *t4, *g2, *t5, *out;
    float *tb;               /* [N, c] time bias (NAFBlock only) */
} naf_block_acts;

/* Floats a training block needs per pixel (all acts), and per sample (pooled, scale, tb). */
#define NAF_TRAIN_FLOATS_PER_PIXEL(c) ((size_t)(c) * 15 + 4)
/* tsilu: SiLU(temb) [N, 256] shared by all NAFBlocks; NULL for condition blocks. */
int naf_block_forward(dc_backend *be, const float *params, const naf_block_layout *blk,
                      const float *inp, const float *tsilu, const naf_block_acts *a,
                      int N, int H, int W, dc_error *err);

/* Scratch for backward: two [P, 2c] and two [P, c] buffers (P = N*H*W). */
typedef struct naf_block_scratch {
    float *big0, *big1, *small0, *small1;
    float *dtb;       /* [N, c] */
    float *dtsilu_tmp;/* [N, 256] */
} naf_block_scratch;

/* dinp = dL/dinp from dout; parameter gradients written into grads (same layout as params);
 * dtsilu (if the block has time) is ACCUMULATED (+=) because every NAFBlock reads the same SiLU(temb).
 * dinp may alias dout. */
int naf_block_backward(dc_backend *be, const float *params, float *grads, const naf_block_layout *blk,
                       float *dinp, const float *dout, const float *inp, const float *tsilu,
                       float *dtsilu, const naf_block_acts *a, const naf_block_scratch *s,
                       int N, int H, int W, dc_error *err);

#endif
