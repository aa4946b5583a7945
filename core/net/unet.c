/* diffcr — the DiffCR UNet: inference with a condition cache, training forward and backward.
 *
 * Data flow (DIFFCR.md §2.2), NHWC throughout, B samples of H x W padded to PH x PW (multiple of 2^L):
 *   temb = map(gamma_embedding(tin)); tsilu = SiLU(temb)              (shared by every NAFBlock)
 *   x = intro(x_t);  cond = cond_intro(date images)                   (dates folded into the batch)
 *   level i: x = enc_i(x); cond = cond_enc_i(cond); x += sum_dates cond; skip_i = x;
 *            x = down_i(x); cond = cond_down_i(cond)  (the last cond_down's output is never used)
 *   x = middle(x);  level j: x = PixelShuffle(up_j(x)) + skip_{L-1-j}; x = dec_j(x)
 *   out = ending(x), cropped to H x W.
 *
 * Inference computes the condition branch image by image (each date of each sample alone: every op of
 * that branch is per-sample) into per-level sums, then reuses them for every sampler call; the main
 * branch runs its blocks in place on per-level buffers with three shared scratch tensors. Training keeps
 * every intermediate for backward. Workspaces are sized for (B, H, W) on first use and reused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/unet.h"
#include "net/naf_block.h"
#include "net/unet_layout.h"

/* A list of backend allocations freed together. */
typedef struct arena {
    dc_backend *be;
    void **ptrs;
    int count, cap;
    int failed;
} arena;

static void *arena_get(arena *a, size_t bytes)
{
    if (a->failed)
        return NULL;
    if (a->count == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        void **p = realloc(a->ptrs, (size_t)cap * sizeof *p);
        if (!p) {
            a->failed = 1;
            return NULL;
        }
        a->ptrs = p;
        a->cap = cap;
    }
    void *mem = a->be->alloc(a->be, bytes ? bytes : 4);
    if (!mem) {
        a->failed = 1;
        return NULL;
    }
    a->ptrs[a->count++] = mem;
    return mem;
}

static float *arena_floats(arena *a, size_t n) { return arena_get(a, n * sizeof(float)); }

static void arena_release(arena *a)
{
    for (int i = 0; i < a->count; i++)
        a->be->release(a->be, a->ptrs[i]);
    free(a->ptrs);
    a->ptrs = NULL;
    a->count = a->cap = 0;
    a->failed = 0;
}

/* Per-block training storage. */
typedef struct block_store {
    naf_block_acts acts;
    const float *inp;
} block_store;

typedef struct temb_acts {
    float *tin, *emb, *h0, *h1, *temb, *tsilu; /* tin on the backend */
} temb_acts;

typedef struct infer_ws {
    int ready, B, H, W, PH, PW;
    arena mem;
    float *cond_img, *cond_x;                    /* one date image: [1,PH,PW,ic] and [1,PH,PW,w] */
    float *condsum[DC_UNET_MAX_LEVELS];          /* [B, h_i, w_i, c_i] */
    float *x[DC_UNET_MAX_LEVELS + 1];            /* main branch per level */
    float *A, *Bs, *C;                           /* scratch: [P0,2w], [P0,2w], [P0,w] with P0 = B*PH*PW */
    float *pooled, *scale, *tb; int *argmax;     /* small per-sample buffers sized for the widest level */
    float *xpad, *outpad;
    temb_acts t;
    int cond_ready;
} infer_ws;

typedef struct train_ws {
    int ready, B, H, W, PH, PW;
    arena mem;
    float *xpad, *cond_img, *outpad;
    float *x_in[DC_UNET_MAX_LEVELS + 1];         /* level inputs (intro / down outputs) */
    float *cond_in[DC_UNET_MAX_LEVELS];
    float *skip[DC_UNET_MAX_LEVELS];             /* = last encoder output + condition sum */
    float *cond_out[DC_UNET_MAX_LEVELS];         /* last condition block output per level */
    float *mid_out;
    float *up_out[DC_UNET_MAX_LEVELS];           /* ups conv output before the shuffle */
    float *dec_in[DC_UNET_MAX_LEVELS];
    float *dec_out[DC_UNET_MAX_LEVELS];          /* decoder stage outputs; dec_out[L-1] feeds ending */
    block_store *stores;                         /* one allocation behind every block_store below */
    block_store *enc[DC_UNET_MAX_LEVELS], *cond_enc[DC_UNET_MAX_LEVELS], *dec[DC_UNET_MAX_LEVELS], *mid;
    temb_acts t;
    /* backward */
    float *dx[DC_UNET_MAX_LEVELS + 1], *dcond[DC_UNET_MAX_LEVELS], *dtmp, *dcondtmp, *doutpad;
    naf_block_scratch scratch;
    float *dtsilu, *dtemb, *dh1, *dh0;
    int have_forward;
} train_ws;

struct dc_unet {
    dc_unet_config cfg;
    dc_backend *be;
    dc_param_table tab;
    unet_layout lay;
    float *params, *grads;
    infer_ws inf;
    train_ws tr;
};

static int level_channels(const dc_unet_config *cfg, int i) { return cfg->width << i; }

int dc_unet_create(dc_unet **out, const dc_unet_config *cfg, dc_backend *be, dc_error *err)
{
    *out = NULL;
    dc_unet *net = calloc(1, sizeof *net);
    if (!net)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory creating the network");
    net->cfg = *cfg;
    net->be = be;
    int rc = unet_layout_build(&net->lay, &net->tab, cfg, err);
    if (rc != DC_OK) {
        free(net);
        return rc;
    }
    net->params = dc_alloc_floats(be, net->tab.total);
    if (!net->params) {
        const size_t total = net->tab.total; /* read before the network is freed */
        dc_unet_destroy(net);
        return dc_fail(err, DC_ERR_NOMEM, "out of %s memory for the network's %zu parameters (%.1f MB)",
                       dc_backend_memory_name(be), total, (double)total * sizeof(float) / 1e6);
    }
    net->inf.mem.be = be;
    net->tr.mem.be = be;
    *out = net;
    return DC_OK;
}

void dc_unet_destroy(dc_unet *net)
{
    if (!net)
        return;
    arena_release(&net->inf.mem);
    arena_release(&net->tr.mem);
    free(net->tr.stores);
    if (net->params)
        net->be->release(net->be, net->params);
    if (net->grads)
        net->be->release(net->be, net->grads);
    unet_layout_free(&net->lay);
    dc_param_table_free(&net->tab);
    free(net);
}

const dc_unet_config *dc_unet_get_config(const dc_unet *net) { return &net->cfg; }
const dc_param_table *dc_unet_params_table(const dc_unet *net) { return &net->tab; }
float *dc_unet_params(dc_unet *net) { return net->params; }
float *dc_unet_grads(dc_unet *net) { return net->grads; }

int dc_unet_set_params(dc_unet *net, const float *host, dc_error *err)
{
    net->be->bind(net->be);
    net->be->to_device(net->be, net->params, host, net->tab.total * sizeof(float));
    net->be->weights_changed(net->be);
    net->inf.cond_ready = 0;
    return DC_OK;
}

static int pad_to(int v, int m) { return (v + m - 1) / m * m; }

static int check_size(const dc_unet *net, int B, int H, int W, dc_error *err)
{
    if (B < 1 || H < 1 || W < 1 || B > 4096 || H > 65536 || W > 65536)
        return dc_fail(err, DC_ERR_SHAPE, "network input size %dx%dx%d is out of range", B, H, W);
    (void)net;
    return DC_OK;
}

/* --- time embedding ------------------------------------------------------------------------- */

static void temb_forward(dc_unet *net, temb_acts *t, const float *tin_host, int B)
{
    dc_backend *be = net->be;
    const float *p = net->params;
    const unet_layout *lay = &net->lay;
    be->to_device(be, t->tin, tin_host, (size_t)B * sizeof(float));
    be->gamma_embedding_forward(t->emb, t->tin, B, DC_UNET_GAMMA_DIM);
    be->linear_forward(t->h0, t->emb, p + lay->map0_w, p + lay->map0_b, B, DC_UNET_GAMMA_DIM, DC_UNET_TEMB_DIM);
    be->silu_forward(t->h1, t->h0, (size_t)B * DC_UNET_TEMB_DIM);
    be->linear_forward(t->temb, t->h1, p + lay->map2_w, p + lay->map2_b, B, DC_UNET_TEMB_DIM, DC_UNET_TEMB_DIM);
    be->silu_forward(t->tsilu, t->temb, (size_t)B * DC_UNET_TEMB_DIM);
}

static void temb_alloc(arena *a, temb_acts *t, int B)
{
    t->tin = arena_floats(a, (size_t)B);
    t->emb = arena_floats(a, (size_t)B * DC_UNET_GAMMA_DIM);
    t->h0 = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    t->h1 = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    t->temb = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    t->tsilu = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
}

/* --- layout helpers ------------------------------------------------------------------------- */

/* cond [B,H,W,nd*ic] (dates date-major in channels) -> one zero-padded image [1,PH,PW,ic] of
 * sample n, date d (a backend op, so it runs where the memory is). */
static void extract_date(dc_backend *be, float *img, const float *cond, int n, int d, int H, int W,
                         int PH, int PW, int nd, int ic)
{
    be->slice_pad_nhwc(img, cond + (size_t)n * H * W * nd * ic, 1, H, W, nd * ic, d * ic, ic, PH, PW);
}

static dc_conv_desc conv_desc(int N, int H, int W, int C, int K, int k, int stride, int pad)
{
    dc_conv_desc d = {N, H, W, C, K, k, stride, pad, 1};
    return d;
}

/* --- inference ------------------------------------------------------------------------------ */

static int infer_alloc(dc_unet *net, int B, int H, int W, dc_error *err)
{
    infer_ws *ws = &net->inf;
    const dc_unet_config *cfg = &net->cfg;
    int L = cfg->n_levels, m = 1 << L;
    int PH = pad_to(H, m), PW = pad_to(W, m);
    if (ws->ready && ws->B == B && ws->PH == PH && ws->PW == PW) {
        ws->H = H;
        ws->W = W;
        return DC_OK;
    }
    arena_release(&ws->mem);
    ws->mem.be = net->be;
    arena *a = &ws->mem;
    size_t P0 = (size_t)B * PH * PW, w = (size_t)cfg->width;
    int widest = level_channels(cfg, L);
    ws->cond_img = arena_floats(a, (size_t)PH * PW * cfg->img_channel);
    ws->cond_x = arena_floats(a, (size_t)PH * PW * w);
    for (int i = 0; i <= L; i++) {
        size_t Pi = (size_t)B * (PH >> i) * (PW >> i);
        ws->x[i] = arena_floats(a, Pi * (size_t)level_channels(cfg, i));
        if (i < L)
            ws->condsum[i] = arena_floats(a, Pi * (size_t)level_channels(cfg, i));
    }
    ws->A = arena_floats(a, P0 * 2 * w);
    ws->Bs = arena_floats(a, P0 * 2 * w);
    ws->C = arena_floats(a, P0 * w);
    ws->pooled = arena_floats(a, (size_t)B * widest);
    ws->scale = arena_floats(a, (size_t)B * widest);
    ws->tb = arena_floats(a, (size_t)B * widest);
    ws->argmax = arena_get(a, (size_t)B * widest * sizeof(int));
    ws->xpad = arena_floats(a, P0 * cfg->img_channel);
    ws->outpad = arena_floats(a, P0 * cfg->img_channel);
    temb_alloc(a, &ws->t, B);
    if (a->failed) {
        arena_release(a);
        ws->ready = 0;
        return dc_fail(err, DC_ERR_NOMEM, "out of %s memory for the inference workspace (batch %d, %dx%d): "
                       "use smaller tiles or fewer tiles per call", dc_backend_memory_name(net->be), B, PH, PW);
    }
    ws->ready = 1;
    ws->B = B, ws->H = H, ws->W = W, ws->PH = PH, ws->PW = PW;
    ws->cond_ready = 0;
    return DC_OK;
}

/* Inference acts: every intermediate aliased onto the scratch tensors, block updated in place on x
 * (see naf_block.h for why each alias is safe). */
static naf_block_acts inplace_acts(infer_ws *ws, float *x)
{
    naf_block_acts a;
    memset(&a, 0, sizeof a);
    a.ln1 = ws->C, a.t1 = ws->A, a.t2 = ws->Bs, a.g1 = ws->C;
    a.s = ws->A, a.t3 = ws->C, a.y = x, a.ln2 = ws->C;
    a.t4 = ws->A, a.g2 = ws->Bs, a.t5 = ws->C, a.out = x;
    a.pooled = ws->pooled, a.scale = ws->scale, a.argmax = ws->argmax, a.tb = ws->tb;
    return a;
}

static int run_blocks_inplace(dc_unet *net, const naf_block_layout *blocks, int count, float *x,
                              const float *tsilu, int N, int h, int w, dc_error *err)
{
    naf_block_acts a = inplace_acts(&net->inf, x);
    for (int k = 0; k < count; k++)
        DC_TRY(naf_block_forward(net->be, net->params, &blocks[k], x, tsilu, &a, N, h, w, err));
    return DC_OK;
}

int dc_unet_set_condition(dc_unet *net, const float *cond, int B, int H, int W, dc_error *err)
{
    DC_TRY(check_size(net, B, H, W, err));
    net->be->bind(net->be);
    DC_TRY(infer_alloc(net, B, H, W, err));
    dc_backend *be = net->be;
    infer_ws *ws = &net->inf;
    const dc_unet_config *cfg = &net->cfg;
    const unet_layout *lay = &net->lay;
    const float *p = net->params;
    int L = cfg->n_levels, nd = cfg->ndates, ic = cfg->img_channel;
    be->set_inference(be, 1);
    for (int n = 0; n < B; n++) {
        for (int d = 0; d < nd; d++) {
            extract_date(be, ws->cond_img, cond, n, d, H, W, ws->PH, ws->PW, nd, ic);
            dc_conv_desc di = conv_desc(1, ws->PH, ws->PW, ic, cfg->width, 3, 1, 1);
            DC_TRY(be->conv2d_forward(be, ws->cond_x, ws->cond_img, p + lay->cond_intro_w, p + lay->cond_intro_b, &di, err));
            for (int i = 0; i < L; i++) {
                int h = ws->PH >> i, w = ws->PW >> i, c = level_channels(cfg, i);
                size_t per = (size_t)h * w * c;
                DC_TRY(run_blocks_inplace(net, lay->cond_enc[i], cfg->enc_blk_nums[i], ws->cond_x, NULL, 1, h, w, err));
                float *sum = ws->condsum[i] + (size_t)n * per;
                if (d == 0)
                    be->copy(be, sum, ws->cond_x, per * sizeof(float));
                else
                    be->add_inplace(sum, ws->cond_x, per);
                if (i + 1 < L) { /* the last cond_down's output is never used: skip it */
                    dc_conv_desc dd = conv_desc(1, h, w, c, 2 * c, 2, 2, 0);
                    DC_TRY(be->conv2d_forward(be, ws->C, ws->cond_x, p + lay->cond_down_w[i], p + lay->cond_down_b[i], &dd, err));
                    be->copy(be, ws->cond_x, ws->C, per / 2 * sizeof(float));
                }
            }
        }
    }
    ws->cond_ready = 1;
    return DC_OK;
}

int dc_unet_forward_cached(dc_unet *net, float *out, const float *x, const float *tin, dc_error *err)
{
    infer_ws *ws = &net->inf;
    if (!ws->cond_ready)
        return dc_fail(err, DC_ERR_ARG, "dc_unet_forward_cached called before dc_unet_set_condition");
    dc_backend *be = net->be;
    const dc_unet_config *cfg = &net->cfg;
    const unet_layout *lay = &net->lay;
    const float *p = net->params;
    int L = cfg->n_levels, B = ws->B, ic = cfg->img_channel, PH = ws->PH, PW = ws->PW;
    be->bind(be);
    be->set_inference(be, 1);
    temb_forward(net, &ws->t, tin, B);
    be->pad_nhwc(ws->xpad, x, B, ws->H, ws->W, ic, PH, PW);
    dc_conv_desc di = conv_desc(B, PH, PW, ic, cfg->width, 3, 1, 1);
    DC_TRY(be->conv2d_forward(be, ws->x[0], ws->xpad, p + lay->intro_w, p + lay->intro_b, &di, err));
    for (int i = 0; i < L; i++) {
        int h = PH >> i, w = PW >> i, c = level_channels(cfg, i);
        DC_TRY(run_blocks_inplace(net, lay->enc[i], cfg->enc_blk_nums[i], ws->x[i], ws->t.tsilu, B, h, w, err));
        be->add_inplace(ws->x[i], ws->condsum[i], (size_t)B * h * w * c);
        dc_conv_desc dd = conv_desc(B, h, w, c, 2 * c, 2, 2, 0);
        DC_TRY(be->conv2d_forward(be, ws->x[i + 1], ws->x[i], p + lay->down_w[i], p + lay->down_b[i], &dd, err));
    }
    DC_TRY(run_blocks_inplace(net, lay->middle, cfg->middle_blk_num, ws->x[L], ws->t.tsilu, B, PH >> L, PW >> L, err));
    for (int j = 0; j < L; j++) {
        int i = L - 1 - j, h = PH >> (i + 1), w = PW >> (i + 1), c = level_channels(cfg, i + 1);
        dc_conv_desc du = conv_desc(B, h, w, c, 2 * c, 1, 1, 0);
        DC_TRY(be->conv2d_forward(be, ws->A, ws->x[i + 1], p + lay->up_w[j], NULL, &du, err));
        be->pixelshuffle2_forward(ws->Bs, ws->A, B, h, w, c / 2);
        be->add_inplace(ws->x[i], ws->Bs, (size_t)B * (2 * h) * (2 * w) * (c / 2));
        DC_TRY(run_blocks_inplace(net, lay->dec[j], cfg->dec_blk_nums[j], ws->x[i], ws->t.tsilu, B, 2 * h, 2 * w, err));
    }
    dc_conv_desc de = conv_desc(B, PH, PW, cfg->width, ic, 3, 1, 1);
    DC_TRY(be->conv2d_forward(be, ws->outpad, ws->x[0], p + lay->ending_w, p + lay->ending_b, &de, err));
    be->crop_nhwc(out, ws->outpad, B, PH, PW, ic, ws->H, ws->W);
    return DC_OK;
}

int dc_unet_forward(dc_unet *net, float *out, const float *cond, const float *x, const float *tin,
                    int B, int H, int W, dc_error *err)
{
    DC_TRY(dc_unet_set_condition(net, cond, B, H, W, err));
    return dc_unet_forward_cached(net, out, x, tin, err);
}

/* --- training ------------------------------------------------------------------------------- */

static void block_store_alloc(arena *a, block_store *bs, int c, int N, size_t P, int has_time)
{
    naf_block_acts *t = &bs->acts;
    t->ln1 = arena_floats(a, P * c);
    t->mean1 = arena_floats(a, P);
    t->rstd1 = arena_floats(a, P);
    t->t1 = arena_floats(a, P * 2 * c);
    t->t2 = arena_floats(a, P * 2 * c);
    t->g1 = arena_floats(a, P * c);
    t->pooled = arena_floats(a, (size_t)N * c);
    t->scale = arena_floats(a, (size_t)N * c);
    t->argmax = arena_get(a, (size_t)N * c * sizeof(int));
    t->s = arena_floats(a, P * c);
    t->t3 = arena_floats(a, P * c);
    t->y = arena_floats(a, P * c);
    t->ln2 = arena_floats(a, P * c);
    t->mean2 = arena_floats(a, P);
    t->rstd2 = arena_floats(a, P);
    t->t4 = arena_floats(a, P * 2 * c);
    t->g2 = arena_floats(a, P * c);
    t->t5 = arena_floats(a, P * c);
    t->out = arena_floats(a, P * c);
    t->tb = has_time ? arena_floats(a, (size_t)N * c) : NULL;
}

static int train_alloc(dc_unet *net, int B, int H, int W, dc_error *err)
{
    train_ws *ws = &net->tr;
    const dc_unet_config *cfg = &net->cfg;
    int L = cfg->n_levels, m = 1 << L, nd = cfg->ndates, ic = cfg->img_channel;
    int PH = pad_to(H, m), PW = pad_to(W, m);
    if (ws->ready && ws->B == B && ws->PH == PH && ws->PW == PW) {
        ws->H = H;
        ws->W = W;
        return DC_OK;
    }
    arena_release(&ws->mem);
    free(ws->stores);
    ws->stores = NULL;
    ws->mem.be = net->be;
    arena *a = &ws->mem;

    block_store *stores = calloc((size_t)(net->lay.block_count ? net->lay.block_count : 1), sizeof *stores);
    if (!stores)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for the training workspace");
    block_store *next = stores;
    size_t P0 = (size_t)B * PH * PW;
    ws->xpad = arena_floats(a, P0 * ic);
    ws->cond_img = arena_floats(a, P0 * nd * ic);
    ws->outpad = arena_floats(a, P0 * ic);
    ws->doutpad = arena_floats(a, P0 * ic);
    size_t max_big = 0;
    for (int i = 0; i <= L; i++) {
        size_t Pi = (size_t)B * (PH >> i) * (PW >> i);
        size_t c = (size_t)level_channels(cfg, i);
        ws->x_in[i] = arena_floats(a, Pi * c);
        ws->dx[i] = arena_floats(a, Pi * c);
        if (i < L) {
            ws->cond_in[i] = arena_floats(a, Pi * nd * c);
            ws->dcond[i] = arena_floats(a, Pi * nd * c);
            ws->skip[i] = arena_floats(a, Pi * c);
            ws->up_out[i] = arena_floats(a, Pi * c); /* ups conv at level i+1 has 2c_{i+1}/4 ... = Pi*c floats */
            ws->dec_in[i] = arena_floats(a, Pi * c);
        }
        if (Pi * nd * 2 * c > max_big)
            max_big = Pi * nd * 2 * c;
    }
    for (int i = 0; i < L; i++) {
        size_t Pi = (size_t)B * (PH >> i) * (PW >> i);
        int c = level_channels(cfg, i);
        ws->enc[i] = next;
        for (int k = 0; k < cfg->enc_blk_nums[i]; k++)
            block_store_alloc(a, next++, c, B, Pi, 1);
        ws->cond_enc[i] = next;
        for (int k = 0; k < cfg->enc_blk_nums[i]; k++)
            block_store_alloc(a, next++, c, B * nd, Pi * nd, 0);
    }
    for (int j = 0; j < L; j++) {
        int i = L - 1 - j;
        size_t Pi = (size_t)B * (PH >> i) * (PW >> i);
        ws->dec[j] = next;
        for (int k = 0; k < cfg->dec_blk_nums[j]; k++)
            block_store_alloc(a, next++, level_channels(cfg, i), B, Pi, 1);
    }
    ws->mid = next;
    for (int k = 0; k < cfg->middle_blk_num; k++)
        block_store_alloc(a, next++, level_channels(cfg, L), B, (size_t)B * (PH >> L) * (PW >> L), 1);
    ws->stores = stores;

    int widest = level_channels(cfg, L);
    ws->dtmp = arena_floats(a, P0 * cfg->width);
    ws->dcondtmp = arena_floats(a, P0 * nd * cfg->width);
    ws->scratch.big0 = arena_floats(a, max_big);
    ws->scratch.big1 = arena_floats(a, max_big);
    ws->scratch.small0 = arena_floats(a, max_big / 2);
    ws->scratch.small1 = arena_floats(a, max_big / 2);
    ws->scratch.dtb = arena_floats(a, (size_t)B * nd * widest);
    ws->scratch.dtsilu_tmp = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    ws->dtsilu = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    ws->dtemb = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    ws->dh1 = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    ws->dh0 = arena_floats(a, (size_t)B * DC_UNET_TEMB_DIM);
    temb_alloc(a, &ws->t, B);
    if (a->failed) {
        arena_release(a);
        free(stores);
        ws->stores = NULL;
        ws->ready = 0;
        return dc_fail(err, DC_ERR_NOMEM, "out of %s memory for the training workspace (batch %d, %dx%d): "
                       "use a smaller batch or crop", dc_backend_memory_name(net->be), B, PH, PW);
    }
    ws->ready = 1;
    ws->B = B, ws->H = H, ws->W = W, ws->PH = PH, ws->PW = PW;
    return DC_OK;
}

/* Run a chain of blocks keeping every activation; returns the chain's output (inp if empty). */
static int run_blocks_train(dc_unet *net, const naf_block_layout *blocks, block_store *stores, int count,
                            const float *inp, const float *tsilu, int N, int h, int w,
                            const float **result, dc_error *err)
{
    const float *cur = inp;
    for (int k = 0; k < count; k++) {
        stores[k].inp = cur;
        DC_TRY(naf_block_forward(net->be, net->params, &blocks[k], cur, tsilu, &stores[k].acts, N, h, w, err));
        cur = stores[k].acts.out;
    }
    *result = cur;
    return DC_OK;
}

int dc_unet_forward_train(dc_unet *net, float *out, const float *cond, const float *x,
                          const float *tin, int B, int H, int W, dc_error *err)
{
    DC_TRY(check_size(net, B, H, W, err));
    net->be->bind(net->be);
    DC_TRY(train_alloc(net, B, H, W, err));
    dc_backend *be = net->be;
    train_ws *ws = &net->tr;
    const dc_unet_config *cfg = &net->cfg;
    const unet_layout *lay = &net->lay;
    const float *p = net->params;
    int L = cfg->n_levels, nd = cfg->ndates, ic = cfg->img_channel, PH = ws->PH, PW = ws->PW;
    be->set_inference(be, 0);
    ws->have_forward = 0;

    temb_forward(net, &ws->t, tin, B);
    be->pad_nhwc(ws->xpad, x, B, H, W, ic, PH, PW);
    size_t img = (size_t)PH * PW * ic;
    for (int n = 0; n < B; n++)
        for (int d = 0; d < nd; d++)
            extract_date(be, ws->cond_img + ((size_t)n * nd + d) * img, cond, n, d, H, W, PH, PW, nd, ic);

    dc_conv_desc di = conv_desc(B, PH, PW, ic, cfg->width, 3, 1, 1);
    DC_TRY(be->conv2d_forward(be, ws->x_in[0], ws->xpad, p + lay->intro_w, p + lay->intro_b, &di, err));
    dc_conv_desc dci = conv_desc(B * nd, PH, PW, ic, cfg->width, 3, 1, 1);
    DC_TRY(be->conv2d_forward(be, ws->cond_in[0], ws->cond_img, p + lay->cond_intro_w, p + lay->cond_intro_b, &dci, err));

    for (int i = 0; i < L; i++) {
        int h = PH >> i, w = PW >> i, c = level_channels(cfg, i);
        size_t n = (size_t)B * h * w * c;
        const float *xo, *co;
        DC_TRY(run_blocks_train(net, lay->enc[i], ws->enc[i], cfg->enc_blk_nums[i], ws->x_in[i], ws->t.tsilu, B, h, w, &xo, err));
        DC_TRY(run_blocks_train(net, lay->cond_enc[i], ws->cond_enc[i], cfg->enc_blk_nums[i], ws->cond_in[i], NULL, B * nd, h, w, &co, err));
        ws->cond_out[i] = (float *)co;
        be->copy(be, ws->skip[i], xo, n * sizeof(float));
        be->condsum_add_forward(ws->skip[i], co, B, nd, (size_t)h * w * c);
        dc_conv_desc dd = conv_desc(B, h, w, c, 2 * c, 2, 2, 0);
        DC_TRY(be->conv2d_forward(be, ws->x_in[i + 1], ws->skip[i], p + lay->down_w[i], p + lay->down_b[i], &dd, err));
        if (i + 1 < L) {
            dc_conv_desc dcd = conv_desc(B * nd, h, w, c, 2 * c, 2, 2, 0);
            DC_TRY(be->conv2d_forward(be, ws->cond_in[i + 1], co, p + lay->cond_down_w[i], p + lay->cond_down_b[i], &dcd, err));
        }
    }
    const float *cur;
    DC_TRY(run_blocks_train(net, lay->middle, ws->mid, cfg->middle_blk_num, ws->x_in[L], ws->t.tsilu, B, PH >> L, PW >> L, &cur, err));
    ws->mid_out = (float *)cur;
    for (int j = 0; j < L; j++) {
        int i = L - 1 - j, h = PH >> (i + 1), w = PW >> (i + 1), c = level_channels(cfg, i + 1);
        dc_conv_desc du = conv_desc(B, h, w, c, 2 * c, 1, 1, 0);
        DC_TRY(be->conv2d_forward(be, ws->up_out[i], cur, p + lay->up_w[j], NULL, &du, err));
        be->pixelshuffle2_forward(ws->dec_in[i], ws->up_out[i], B, h, w, c / 2);
        be->add_inplace(ws->dec_in[i], ws->skip[i], (size_t)B * (2 * h) * (2 * w) * (c / 2));
        DC_TRY(run_blocks_train(net, lay->dec[j], ws->dec[j], cfg->dec_blk_nums[j], ws->dec_in[i], ws->t.tsilu, B, 2 * h, 2 * w, &cur, err));
        ws->dec_out[j] = (float *)cur;
    }
    dc_conv_desc de = conv_desc(B, PH, PW, cfg->width, ic, 3, 1, 1);
    DC_TRY(be->conv2d_forward(be, ws->outpad, cur, p + lay->ending_w, p + lay->ending_b, &de, err));
    be->crop_nhwc(out, ws->outpad, B, PH, PW, ic, H, W);
    ws->have_forward = 1;
    return DC_OK;
}

/* Backward through a chain of blocks; d holds dL/d(chain output) on entry and dL/d(chain input) on
 * exit (in place). */
static int blocks_backward(dc_unet *net, const naf_block_layout *blocks, block_store *stores, int count,
                           float *d, int N, int h, int w, dc_error *err)
{
    train_ws *ws = &net->tr;
    for (int k = count - 1; k >= 0; k--)
        DC_TRY(naf_block_backward(net->be, net->params, net->grads, &blocks[k], d, d, stores[k].inp,
                               ws->t.tsilu, ws->dtsilu, &stores[k].acts, &ws->scratch, N, h, w, err));
    return DC_OK;
}

/* Loss scaling for fp16 arithmetic. fp16 convolutions and GEMMs round their inputs, the upstream
 * gradient included, to IEEE half, whose normal range starts at 6.1e-5. The gradient diffcr-train
 * feeds in, d MSE / d out = 2 (out - target) / N, is about 1e-6 a value at batch 8 of 256x256:
 * rounded to half it loses most of its bits or flushes to zero, and the parameter gradients come
 * out wrong (tests/gpu/test_gpu_net on the simulated GPU: 12% relative L2 error overall, 200% in
 * the worst tensor; with the scaling 7e-4, as with tf32). Backward is linear in dout, so the
 * whole pass runs on dout scaled to an L2 norm in [16, 32) (a value ~ norm / sqrt(count): well
 * inside half's range, with 2000x headroom below its 65504 overflow), and the parameter gradients
 * are scaled back at the end. The scale is a power of two, so both scalings are exact, and it is
 * chosen per call from dout itself: no state, no skipped steps. Scales dout in place; returns the
 * scale (1 when the arithmetic is not fp16 or dout is zero or not finite). */
static float backward_loss_scale(dc_unet *net, float *dout, size_t n)
{
    dc_backend *be = net->be;
    if (be->precision != DC_PRECISION_FP16)
        return 1.0f;
    double norm = be->grad_norm(be, dout, n);
    if (!(norm > 0) || !isfinite(norm))
        return 1.0f;
    int e;
    frexp(norm, &e);                    /* norm = f * 2^e, f in [0.5, 1) */
    float scale = ldexpf(1.0f, 5 - e); /* norm * scale = f * 32, in [16, 32) */
    if (scale == 1.0f || !isfinite(scale))
        return 1.0f;
    be->scale_inplace(dout, scale, n);
    return scale;
}

int dc_unet_backward(dc_unet *net, const float *dout, dc_error *err)
{
    train_ws *ws = &net->tr;
    if (!ws->have_forward)
        return dc_fail(err, DC_ERR_ARG, "dc_unet_backward called without a training forward");
    dc_backend *be = net->be;
    be->bind(be);
    if (!net->grads) {
        net->grads = dc_alloc_floats(be, net->tab.total);
        if (!net->grads)
            return dc_fail(err, DC_ERR_NOMEM, "out of %s memory for %zu gradients", dc_backend_memory_name(be),
                           net->tab.total);
    }
    const dc_unet_config *cfg = &net->cfg;
    const unet_layout *lay = &net->lay;
    const float *p = net->params;
    float *g = net->grads;
    int L = cfg->n_levels, nd = cfg->ndates, ic = cfg->img_channel;
    int B = ws->B, PH = ws->PH, PW = ws->PW;

    be->zero(be, ws->dtsilu, (size_t)B * DC_UNET_TEMB_DIM * sizeof(float));
    be->pad_nhwc(ws->doutpad, dout, B, ws->H, ws->W, ic, PH, PW); /* crop's adjoint: zero padding */
    float loss_scale = backward_loss_scale(net, ws->doutpad, (size_t)B * PH * PW * ic);
    dc_conv_desc de = conv_desc(B, PH, PW, cfg->width, ic, 3, 1, 1);
    DC_TRY(be->conv2d_backward(be, ws->dx[0], g + lay->ending_w, g + lay->ending_b, ws->doutpad,
                            ws->dec_out[L - 1], p + lay->ending_w, &de, err));
    /* decoders, from the top level down to the bottom */
    for (int j = L - 1; j >= 0; j--) {
        int i = L - 1 - j, h = PH >> (i + 1), w = PW >> (i + 1), c = level_channels(cfg, i + 1);
        DC_TRY(blocks_backward(net, lay->dec[j], ws->dec[j], cfg->dec_blk_nums[j], ws->dx[i], B, 2 * h, 2 * w, err));
        /* dec_in = shuffle(up(x)) + skip: dx[i] is now both d(skip) (kept until the encoder pass) and
         * d(shuffle output). */
        be->pixelshuffle2_backward(ws->scratch.big0, ws->dx[i], B, h, w, c / 2);
        const float *up_in = (j == 0) ? ws->mid_out : ws->dec_out[j - 1];
        dc_conv_desc du = conv_desc(B, h, w, c, 2 * c, 1, 1, 0);
        DC_TRY(be->conv2d_backward(be, ws->dx[i + 1], g + lay->up_w[j], NULL, ws->scratch.big0, up_in,
                                p + lay->up_w[j], &du, err));
    }
    DC_TRY(blocks_backward(net, lay->middle, ws->mid, cfg->middle_blk_num, ws->dx[L], B, PH >> L, PW >> L, err));
    /* encoders, bottom up; dx[i] holds d(skip_i) from the decoder on entry */
    for (int i = L - 1; i >= 0; i--) {
        int h = PH >> i, w = PW >> i, c = level_channels(cfg, i);
        size_t n = (size_t)B * h * w * c, hwc = (size_t)h * w * c;
        dc_conv_desc dd = conv_desc(B, h, w, c, 2 * c, 2, 2, 0);
        DC_TRY(be->conv2d_backward(be, ws->dtmp, g + lay->down_w[i], g + lay->down_b[i], ws->dx[i + 1],
                                ws->skip[i], p + lay->down_w[i], &dd, err));
        be->add_inplace(ws->dx[i], ws->dtmp, n);
        /* skip = enc_out + sum_d cond_out: the condition gets a broadcast copy */
        be->condsum_add_backward(ws->dcond[i], ws->dx[i], B, nd, hwc);
        if (i + 1 < L) {
            dc_conv_desc dcd = conv_desc(B * nd, h, w, c, 2 * c, 2, 2, 0);
            DC_TRY(be->conv2d_backward(be, ws->dcondtmp, g + lay->cond_down_w[i], g + lay->cond_down_b[i],
                                    ws->dcond[i + 1], ws->cond_out[i], p + lay->cond_down_w[i], &dcd, err));
            be->add_inplace(ws->dcond[i], ws->dcondtmp, n * nd);
        } else {
            /* the last cond_down feeds nothing: its gradient is zero, as in PyTorch */
            be->zero(be, g + lay->cond_down_w[i], (size_t)(2 * c) * c * 4 * sizeof(float));
            be->zero(be, g + lay->cond_down_b[i], (size_t)(2 * c) * sizeof(float));
        }
        DC_TRY(blocks_backward(net, lay->enc[i], ws->enc[i], cfg->enc_blk_nums[i], ws->dx[i], B, h, w, err));
        DC_TRY(blocks_backward(net, lay->cond_enc[i], ws->cond_enc[i], cfg->enc_blk_nums[i], ws->dcond[i], B * nd, h, w, err));
    }
    dc_conv_desc di = conv_desc(B, PH, PW, ic, cfg->width, 3, 1, 1);
    DC_TRY(be->conv2d_backward(be, NULL, g + lay->intro_w, g + lay->intro_b, ws->dx[0], ws->xpad,
                            p + lay->intro_w, &di, err));
    dc_conv_desc dci = conv_desc(B * nd, PH, PW, ic, cfg->width, 3, 1, 1);
    DC_TRY(be->conv2d_backward(be, NULL, g + lay->cond_intro_w, g + lay->cond_intro_b, ws->dcond[0],
                            ws->cond_img, p + lay->cond_intro_w, &dci, err));
    /* time MLP: every NAFBlock added its part of d SiLU(temb) into dtsilu */
    be->silu_backward(ws->dtemb, ws->dtsilu, ws->t.temb, (size_t)B * DC_UNET_TEMB_DIM);
    be->linear_backward(ws->dh1, g + lay->map2_w, g + lay->map2_b, ws->dtemb, ws->t.h1, p + lay->map2_w,
                        B, DC_UNET_TEMB_DIM, DC_UNET_TEMB_DIM);
    be->silu_backward(ws->dh0, ws->dh1, ws->t.h0, (size_t)B * DC_UNET_TEMB_DIM);
    be->linear_backward(NULL, g + lay->map0_w, g + lay->map0_b, ws->dh0, ws->t.emb, p + lay->map0_w,
                        B, DC_UNET_GAMMA_DIM, DC_UNET_TEMB_DIM);
    if (loss_scale != 1.0f)
        be->scale_inplace(g, 1.0f / loss_scale, net->tab.total);
    return DC_OK;
}
