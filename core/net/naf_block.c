/* diffcr — NAFBlock / CondNAFBlock forward and backward through the backend table (naf_block.h). */
#include "net/naf_block.h"

static dc_conv_desc conv1x1(int N, int H, int W, int C, int K)
{
    dc_conv_desc d = {N, H, W, C, K, 1, 1, 0, 1};
    return d;
}

static dc_conv_desc dwconv3x3(int N, int H, int W, int C)
{
    dc_conv_desc d = {N, H, W, C, C, 3, 1, 1, C};
    return d;
}

int naf_block_forward(dc_backend *be, const float *params, const naf_block_layout *blk,
                      const float *inp, const float *tsilu, const naf_block_acts *a,
                      int N, int H, int W, dc_error *err)
{
    const int c = blk->c;
    const size_t HW = (size_t)H * W, P = (size_t)N * HW;
    const float *p = params;
    dc_conv_desc d1 = conv1x1(N, H, W, c, 2 * c), d2 = dwconv3x3(N, H, W, 2 * c);
    dc_conv_desc d3 = conv1x1(N, H, W, c, c), d4 = conv1x1(N, H, W, c, 2 * c);
    dc_conv_desc d5 = conv1x1(N, H, W, c, c);

    be->layernorm2d_forward(a->ln1, a->mean1, a->rstd1, inp, p + blk->norm1_w, p + blk->norm1_b, P, c);
    DC_TRY(be->conv2d_forward(be, a->t1, a->ln1, p + blk->conv1_w, p + blk->conv1_b, &d1, err));
    DC_TRY(be->conv2d_forward(be, a->t2, a->t1, p + blk->conv2_w, p + blk->conv2_b, &d2, err));
    be->simplegate_forward(a->g1, a->t2, P, c);
    be->sca_forward(a->s, a->pooled, a->scale, a->argmax, a->g1, p + blk->sca_avg_w, p + blk->sca_avg_b,
                    p + blk->sca_max_w, p + blk->sca_max_b, N, HW, c);
    DC_TRY(be->conv2d_forward(be, a->t3, a->s, p + blk->conv3_w, p + blk->conv3_b, &d3, err));
    if (blk->has_time)
        be->linear_forward(a->tb, tsilu, p + blk->temb_w, p + blk->temb_b, N, DC_UNET_TEMB_DIM, c);
    be->residual_forward(a->y, inp, a->t3, p + blk->beta, blk->has_time ? a->tb : NULL, N, HW, c);
    be->layernorm2d_forward(a->ln2, a->mean2, a->rstd2, a->y, p + blk->norm2_w, p + blk->norm2_b, P, c);
    DC_TRY(be->conv2d_forward(be, a->t4, a->ln2, p + blk->conv4_w, p + blk->conv4_b, &d4, err));
    be->simplegate_forward(a->g2, a->t4, P, c);
    DC_TRY(be->conv2d_forward(be, a->t5, a->g2, p + blk->conv5_w, p + blk->conv5_b, &d5, err));
    be->residual_forward(a->out, a->y, a->t5, p + blk->gamma, NULL, N, HW, c);
    return DC_OK;
}

int naf_block_backward(dc_backend *be, const float *params, float *grads, const naf_block_layout *blk,
                       float *dinp, const float *dout, const float *inp, const float *tsilu,
                       float *dtsilu, const naf_block_acts *a, const naf_block_scratch *s,
                       int N, int H, int W, dc_error *err)
{
    const int c = blk->c;
    const size_t HW = (size_t)H * W, P = (size_t)N * HW;
    const float *p = params;
    float *g = grads;
    dc_conv_desc d1 = conv1x1(N, H, W, c, 2 * c), d2 = dwconv3x3(N, H, W, 2 * c);
    dc_conv_desc d3 = conv1x1(N, H, W, c, c), d4 = conv1x1(N, H, W, c, 2 * c);
    dc_conv_desc d5 = conv1x1(N, H, W, c, c);
    float *dy = s->small1;

    /* out = y + gamma*t5: dy gets dout directly plus the LN2 branch below. */
    be->residual_backward(s->small0, g + blk->gamma, NULL, dout, a->t5, p + blk->gamma, N, (size_t)HW, c);
    DC_TRY(be->conv2d_backward(be, s->big0, g + blk->conv5_w, g + blk->conv5_b, s->small0, a->g2,
                            p + blk->conv5_w, &d5, err));                       /* dg2 [c] in big0 */
    be->simplegate_backward(s->big1, s->big0, a->t4, P, c);                     /* dt4 [2c] */
    DC_TRY(be->conv2d_backward(be, s->small0, g + blk->conv4_w, g + blk->conv4_b, s->big1, a->ln2,
                            p + blk->conv4_w, &d4, err));                       /* dln2 */
    be->layernorm2d_backward(dy, g + blk->norm2_w, g + blk->norm2_b, s->small0, a->y, a->mean2,
                             a->rstd2, p + blk->norm2_w, P, c);
    be->add_inplace(dy, dout, P * (size_t)c);                                  /* dy total */

    /* y = inp + beta*t3 + tb */
    be->residual_backward(s->small0, g + blk->beta, blk->has_time ? s->dtb : NULL, dy, a->t3,
                          p + blk->beta, N, HW, c);                              /* dt3 */
    if (blk->has_time) {
        be->linear_backward(s->dtsilu_tmp, g + blk->temb_w, g + blk->temb_b, s->dtb, tsilu,
                            p + blk->temb_w, N, DC_UNET_TEMB_DIM, c);
        be->add_inplace(dtsilu, s->dtsilu_tmp, (size_t)N * DC_UNET_TEMB_DIM);
    }
    DC_TRY(be->conv2d_backward(be, s->big0, g + blk->conv3_w, g + blk->conv3_b, s->small0, a->s,
                            p + blk->conv3_w, &d3, err));                       /* ds [c] */
    be->sca_backward(s->big1, g + blk->sca_avg_w, g + blk->sca_avg_b, g + blk->sca_max_w,
                     g + blk->sca_max_b, s->big0, a->g1, a->pooled, a->scale, a->argmax,
                     p + blk->sca_avg_w, p + blk->sca_max_w, N, HW, c);          /* dg1 [c] */
    be->simplegate_backward(s->big0, s->big1, a->t2, P, c);                     /* dt2 [2c] */
    DC_TRY(be->conv2d_backward(be, s->big1, g + blk->conv2_w, g + blk->conv2_b, s->big0, a->t1,
                            p + blk->conv2_w, &d2, err));                       /* dt1 [2c] */
    DC_TRY(be->conv2d_backward(be, s->small0, g + blk->conv1_w, g + blk->conv1_b, s->big1, a->ln1,
                            p + blk->conv1_w, &d1, err));                       /* dln1 */
    be->layernorm2d_backward(dinp, g + blk->norm1_w, g + blk->norm1_b, s->small0, inp, a->mean1,
                             a->rstd1, p + blk->norm1_w, P, c);
    be->add_inplace(dinp, dy, P * (size_t)c);
    return DC_OK;
}
