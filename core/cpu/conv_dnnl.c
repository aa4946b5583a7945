/* diffcr — convolutions through oneDNN 2.6 (Debian 12's libdnnl-dev), the fast CPU path.
 *
 * Every oneDNN call of the project lives in this file: the 2.x C API (op desc + primitive desc)
 * was removed in oneDNN 3.0, so a port to 3.x touches only this file (BACKENDS.md §4.1).
 *
 * Layouts (BACKENDS.md §4.3, §4.5): activations stay NHWC, the project's canonical layout, and are
 * handed to oneDNN as user memory without any reorder. Weights are described with
 * dnnl_format_tag_any so each primitive picks its own blocked layout; with plain goihw weights a
 * depthwise NHWC conv silently falls to "ref:any", about 1000x slower. The user's PyTorch weights
 * (oihw, or goihw {G, 1, 1, k, k} for depthwise) are reordered into the chosen layout once and kept,
 * keyed by (weight pointer, shape, layout), until dc_dnnl_weights_changed(). Diff weights come out
 * in the backward-weights primitive's chosen layout and are reordered back to PyTorch's.
 *
 * Caches: one primitive per (dc_conv_desc, kind, bias present), kinds being forward inference,
 * forward training, backward data and backward weights. Every primitive runs in user scratchpad
 * mode over one shared scratch buffer that only grows, so the footprint is known and there is no
 * per-call allocation (the cuDNN workspace model). Memory objects are created once per primitive
 * and only re-pointed at each call. Thread count: oneDNN uses libgomp and follows OpenMP.
 *
 * Every oneDNN status is checked; failures return DC_ERR_BACKEND with the op and shape named. */
#include "diffcr/conv.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_FWD_INF, KIND_FWD_TRAIN, KIND_BWD_DATA, KIND_BWD_WEIGHTS };
static const char *const kind_names[] = {"forward_inference", "forward_training", "backward_data",
                                         "backward_weights"};

/* One cached convolution primitive with the memory objects it executes on. */
typedef struct prim_entry {
    dc_conv_desc d;
    int kind;
    int with_bias;               /* bias (forward) or diff bias (backward weights) argument */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_desc_t hint;  /* backward: the forward-training pd it was created against */
    dnnl_primitive_t prim;
    dnnl_memory_desc_t wmd;      /* (diff) weights layout the primitive chose */
    int w_is_user;               /* wmd is PyTorch's own layout: no reorder needed */
    size_t wbytes;               /* bytes of a weights buffer in wmd */
    size_t scratch_bytes;
    dnnl_memory_t m_src, m_dst, m_w, m_bias, m_scratch;  /* handles set at each call */
    dnnl_primitive_t back;       /* backward weights: reorder wmd -> PyTorch layout, or NULL */
    dnnl_memory_t m_user_w;      /* its destination, in PyTorch layout */
} prim_entry;

/* Weights re-laid-out for one primitive layout. */
typedef struct weight_entry {
    const float *ptr;
    int K, C, groups, kernel;
    dnnl_memory_desc_t md;
    void *buf;
} weight_entry;

struct dc_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_attr_t attr;  /* scratchpad mode user */
    int inference;
    prim_entry **prims;
    int nprims, cap_prims;
    weight_entry *weights;
    int nweights, cap_weights;
    void *scratch;               /* shared scratchpad, grows only */
    size_t scratch_size;
    void *dwbuf;                 /* diff weights in oneDNN's layout, before the reorder back */
    size_t dwbuf_size;
    char **names;                /* distinct implementation names seen */
    int nnames, cap_names;
};

/* ------------------------------------------------------------------------------------------------
 * Small helpers */

static int fail_dnnl(dc_error *err, const char *op, const dc_conv_desc *d, const char *what,
                     dnnl_status_t st)
{
    return dc_fail(err, DC_ERR_BACKEND,
                   "oneDNN conv %s: %s failed (%s) for N%d H%d W%d C%d -> K%d k%d s%d p%d g%d", op, what,
                   dnnl_status2str(st), d->N, d->H, d->W, d->C, d->K, d->kernel, d->stride, d->pad,
                   d->groups);
}

static int fail_nomem(dc_error *err, const char *op, const dc_conv_desc *d)
{
    return dc_fail(err, DC_ERR_NOMEM, "oneDNN conv %s: out of memory for N%d H%d W%d C%d -> K%d k%d",
                   op, d->N, d->H, d->W, d->C, d->K, d->kernel);
}

static int same_desc(const dc_conv_desc *a, const dc_conv_desc *b)
{
    return a->N == b->N && a->H == b->H && a->W == b->W && a->C == b->C && a->K == b->K &&
           a->kernel == b->kernel && a->stride == b->stride && a->pad == b->pad && a->groups == b->groups;
}

/* 64-byte aligned buffer (C11 aligned_alloc wants a size that is a multiple of the alignment). */
static void *alloc64(size_t bytes)
{
    size_t n = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, n ? n : 64);
}

/* Make *buf hold at least `need` bytes; contents are not kept. 0 on failure. The stream is drained
 * first: a primitive submitted earlier in this call may still be using the old buffer. */
static int grow(dnnl_stream_t stream, void **buf, size_t *size, size_t need)
{
    if (need <= *size)
        return 1;
    if (dnnl_stream_wait(stream) != dnnl_success)
        return 0;
    void *p = alloc64(need);
    if (!p)
        return 0;
    free(*buf);
    *buf = p;
    *size = need;
    return 1;
}

/* Record an implementation name once. Failure to record is not an error of the convolution. */
static void note_impl(dc_dnnl *ctx, const_dnnl_primitive_desc_t pd)
{
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
        return;
    for (int i = 0; i < ctx->nnames; i++)
        if (strcmp(ctx->names[i], s) == 0)
            return;
    if (ctx->nnames == ctx->cap_names) {
        int cap = ctx->cap_names ? 2 * ctx->cap_names : 8;
        char **p = realloc(ctx->names, (size_t)cap * sizeof *p);
        if (!p)
            return;
        ctx->names = p;
        ctx->cap_names = cap;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (!copy)
        return;
    memcpy(copy, s, n);
    ctx->names[ctx->nnames++] = copy;
}

/* Activation descriptor: logical NCHW dims, physical NHWC. */
static dnnl_status_t act_md(dnnl_memory_desc_t *md, int N, int C, int H, int W)
{
    dnnl_dims_t dims = {N, C, H, W};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc);
}

/* Weights descriptor: PyTorch's layout (any = 0) or "let the primitive choose" (any = 1). Grouped
 * weights are 5-D {G, K/G, C/G, k, k}. */
static dnnl_status_t weights_md(dnnl_memory_desc_t *md, const dc_conv_desc *d, int any)
{
    if (d->groups == 1) {
        dnnl_dims_t dims = {d->K, d->C, d->kernel, d->kernel};
        return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, any ? dnnl_format_tag_any : dnnl_oihw);
    }
    dnnl_dims_t dims = {d->groups, d->K / d->groups, d->C / d->groups, d->kernel, d->kernel};
    return dnnl_memory_desc_init_by_tag(md, 5, dims, dnnl_f32, any ? dnnl_format_tag_any : dnnl_goihw);
}

/* The convolution op descriptor of one kind. */
static dnnl_status_t init_op(dnnl_convolution_desc_t *cd, const dc_conv_desc *d, int kind, int with_bias)
{
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_status_t st;
    dnnl_dims_t strides = {d->stride, d->stride};
    /* Right padding = left padding: oneDNN checks (H - k + pl + pr) / s + 1 == OH with the same
     * integer division as dc_conv_out_h, so a window that would hang off the end is dropped alike. */
    dnnl_dims_t pad_l = {d->pad, d->pad}, pad_r = {d->pad, d->pad};
    dnnl_dims_t bdims = {d->K};
    if ((st = act_md(&src, d->N, d->C, d->H, d->W)) != dnnl_success ||
        (st = act_md(&dst, d->N, d->K, dc_conv_out_h(d), dc_conv_out_w(d))) != dnnl_success ||
        (st = weights_md(&wei, d, 1)) != dnnl_success ||
        (st = dnnl_memory_desc_init_by_tag(&bia, 1, bdims, dnnl_f32, dnnl_x)) != dnnl_success)
        return st;
    switch (kind) {
    case KIND_FWD_INF:
    case KIND_FWD_TRAIN:
        return dnnl_convolution_forward_desc_init(
            cd, kind == KIND_FWD_INF ? dnnl_forward_inference : dnnl_forward_training,
            dnnl_convolution_direct, &src, &wei, with_bias ? &bia : NULL, &dst, strides, pad_l, pad_r);
    case KIND_BWD_DATA:
        return dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, &src, &wei, &dst,
                                                        strides, pad_l, pad_r);
    default:
        return dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, &src, &wei,
                                                           with_bias ? &bia : NULL, &dst, strides,
                                                           pad_l, pad_r);
    }
}

/* Memory object of descriptor md with no buffer yet (re-pointed before each execution). */
static dnnl_status_t mem_from(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t engine)
{
    return dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE);
}

static void destroy_entry(prim_entry *e)
{
    if (!e)
        return;
    dnnl_memory_t mems[] = {e->m_src, e->m_dst, e->m_w, e->m_bias, e->m_scratch, e->m_user_w};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    if (e->back)
        dnnl_primitive_destroy(e->back);
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    if (e->pd)
        dnnl_primitive_desc_destroy(e->pd);
    if (e->hint)
        dnnl_primitive_desc_destroy(e->hint);
    free(e);
}

/* ------------------------------------------------------------------------------------------------
 * Primitive cache */

/* Build the primitive of (d, kind, with_bias) with its memory objects. */
static int create_entry(dc_dnnl *ctx, prim_entry **out, const dc_conv_desc *d, int kind, int with_bias,
                        const char *op, dc_error *err)
{
    dnnl_status_t st = dnnl_success;
    const char *what = "";
    dnnl_convolution_desc_t cd;
    dnnl_memory_desc_t user_w;
    const dnnl_memory_desc_t *md;
    prim_entry *e = calloc(1, sizeof *e);
    if (!e)
        return fail_nomem(err, op, d);
    e->d = *d;
    e->kind = kind;
    e->with_bias = with_bias;

#define TRY(call, msg)                                                                             \
    do {                                                                                           \
        what = (msg);                                                                              \
        if ((st = (call)) != dnnl_success)                                                         \
            goto fail;                                                                             \
    } while (0)

    if (kind == KIND_BWD_DATA || kind == KIND_BWD_WEIGHTS) {
        /* Backward primitive descriptors need the forward one as a hint (it steers them to layouts
         * consistent with forward). It is kept for the entry's lifetime: the backward pd may refer
         * to it. */
        dnnl_convolution_desc_t fd;
        TRY(init_op(&fd, d, KIND_FWD_TRAIN, with_bias), "forward hint descriptor");
        TRY(dnnl_primitive_desc_create(&e->hint, &fd, ctx->attr, ctx->engine, NULL), "forward hint primitive descriptor");
    }
    TRY(init_op(&cd, d, kind, with_bias), "descriptor");
    TRY(dnnl_primitive_desc_create(&e->pd, &cd, ctx->attr, ctx->engine, e->hint), "primitive descriptor");
    note_impl(ctx, e->pd);

    md = dnnl_primitive_desc_query_md(e->pd, kind == KIND_BWD_WEIGHTS ? dnnl_query_diff_weights_md
                                                                       : dnnl_query_weights_md, 0);
    what = "weights layout query";
    if (!md) {
        st = dnnl_runtime_error;
        goto fail;
    }
    e->wmd = *md;
    e->wbytes = dnnl_memory_desc_get_size(&e->wmd);
    TRY(weights_md(&user_w, d, 0), "user weights descriptor");
    e->w_is_user = dnnl_memory_desc_equal(&e->wmd, &user_w);

    md = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (e->scratch_bytes)
        TRY(mem_from(&e->m_scratch, md, ctx->engine), "scratchpad memory");

    TRY(dnnl_primitive_create(&e->prim, e->pd), "primitive creation");

    /* m_src: src or diff_src; m_dst: dst or diff_dst; m_bias: bias or diff_bias. */
    {
        int is_bwd_data = kind == KIND_BWD_DATA, is_fwd = kind <= KIND_FWD_TRAIN;
        const dnnl_memory_desc_t *smd =
            dnnl_primitive_desc_query_md(e->pd, is_bwd_data ? dnnl_query_diff_src_md : dnnl_query_src_md, 0);
        const dnnl_memory_desc_t *dmd =
            dnnl_primitive_desc_query_md(e->pd, is_fwd ? dnnl_query_dst_md : dnnl_query_diff_dst_md, 0);
        what = "activation layout query";
        if (!smd || !dmd) {
            st = dnnl_runtime_error;
            goto fail;
        }
        TRY(mem_from(&e->m_src, smd, ctx->engine), "source memory");
        TRY(mem_from(&e->m_dst, dmd, ctx->engine), "destination memory");
        TRY(mem_from(&e->m_w, &e->wmd, ctx->engine), "weights memory");
        if (with_bias) {
            const dnnl_memory_desc_t *bmd = dnnl_primitive_desc_query_md(
                e->pd, is_fwd ? dnnl_query_weights_md : dnnl_query_diff_weights_md, 1);
            what = "bias layout query";
            if (!bmd) {
                st = dnnl_runtime_error;
                goto fail;
            }
            TRY(mem_from(&e->m_bias, bmd, ctx->engine), "bias memory");
        }
    }

    if (kind == KIND_BWD_WEIGHTS && !e->w_is_user) {
        /* Diff weights come out blocked; this reorder, built once, writes them in PyTorch layout. */
        dnnl_primitive_desc_t rpd = NULL;
        TRY(mem_from(&e->m_user_w, &user_w, ctx->engine), "user weights memory");
        TRY(dnnl_reorder_primitive_desc_create(&rpd, &e->wmd, ctx->engine, &user_w, ctx->engine, NULL),
            "diff weights reorder descriptor");
        note_impl(ctx, rpd);
        st = dnnl_primitive_create(&e->back, rpd);
        dnnl_primitive_desc_destroy(rpd);
        what = "diff weights reorder creation";
        if (st != dnnl_success)
            goto fail;
    }
#undef TRY
    *out = e;
    return DC_OK;

fail:
    destroy_entry(e);
    {
        char full[96];
        snprintf(full, sizeof full, "%s %s", kind_names[kind], what);
        return fail_dnnl(err, op, d, full, st);
    }
}

static int get_entry(dc_dnnl *ctx, prim_entry **out, const dc_conv_desc *d, int kind, int with_bias,
                     const char *op, dc_error *err)
{
    for (int i = 0; i < ctx->nprims; i++) {
        prim_entry *e = ctx->prims[i];
        if (e->kind == kind && e->with_bias == with_bias && same_desc(&e->d, d)) {
            *out = e;
            return DC_OK;
        }
    }
    if (ctx->nprims == ctx->cap_prims) {
        int cap = ctx->cap_prims ? 2 * ctx->cap_prims : 16;
        prim_entry **p = realloc(ctx->prims, (size_t)cap * sizeof *p);
        if (!p)
            return fail_nomem(err, op, d);
        ctx->prims = p;
        ctx->cap_prims = cap;
    }
    prim_entry *e = NULL;
    int rc = create_entry(ctx, &e, d, kind, with_bias, op, err);
    if (rc != DC_OK)
        return rc;
    ctx->prims[ctx->nprims++] = e;
    *out = e;
    return DC_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Weights cache */

/* The buffer holding `weight` in layout e->wmd, made by a one-time reorder on first use. */
static int get_weights(dc_dnnl *ctx, void **out, const prim_entry *e, const float *weight,
                       const char *op, dc_error *err)
{
    const dc_conv_desc *d = &e->d;
    for (int i = 0; i < ctx->nweights; i++) {
        weight_entry *w = &ctx->weights[i];
        if (w->ptr == weight && w->K == d->K && w->C == d->C && w->groups == d->groups &&
            w->kernel == d->kernel && dnnl_memory_desc_equal(&w->md, &e->wmd)) {
            *out = w->buf;
            return DC_OK;
        }
    }
    if (ctx->nweights == ctx->cap_weights) {
        int cap = ctx->cap_weights ? 2 * ctx->cap_weights : 16;
        weight_entry *p = realloc(ctx->weights, (size_t)cap * sizeof *p);
        if (!p)
            return fail_nomem(err, op, d);
        ctx->weights = p;
        ctx->cap_weights = cap;
    }

    dnnl_status_t st;
    const char *what = "user weights descriptor";
    dnnl_memory_desc_t user_md;
    dnnl_memory_t m_user = NULL, m_blocked = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    void *buf = alloc64(e->wbytes);
    if (!buf)
        return fail_nomem(err, op, d);
    if ((st = weights_md(&user_md, d, 0)) != dnnl_success)
        goto done;
    what = "weights memory";
    if ((st = dnnl_memory_create(&m_user, &user_md, ctx->engine, (void *)weight)) != dnnl_success ||
        (st = dnnl_memory_create(&m_blocked, &e->wmd, ctx->engine, buf)) != dnnl_success)
        goto done;
    what = "weights reorder";
    if ((st = dnnl_reorder_primitive_desc_create(&rpd, &user_md, ctx->engine, &e->wmd, ctx->engine,
                                                 NULL)) != dnnl_success)
        goto done;
    note_impl(ctx, rpd);
    if ((st = dnnl_primitive_create(&reorder, rpd)) != dnnl_success)
        goto done;
    {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, m_user}, {DNNL_ARG_TO, m_blocked}};
        if ((st = dnnl_primitive_execute(reorder, ctx->stream, 2, args)) != dnnl_success ||
            (st = dnnl_stream_wait(ctx->stream)) != dnnl_success)
            goto done;
    }
done:
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (m_user)
        dnnl_memory_destroy(m_user);
    if (m_blocked)
        dnnl_memory_destroy(m_blocked);
    if (st != dnnl_success) {
        free(buf);
        return fail_dnnl(err, op, d, what, st);
    }
    weight_entry *w = &ctx->weights[ctx->nweights++];
    w->ptr = weight;
    w->K = d->K;
    w->C = d->C;
    w->groups = d->groups;
    w->kernel = d->kernel;
    w->md = e->wmd;
    w->buf = buf;
    *out = buf;
    return DC_OK;
}

void dc_dnnl_weights_changed(dc_dnnl *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->nweights; i++)
        free(ctx->weights[i].buf);
    ctx->nweights = 0;
}

/* ------------------------------------------------------------------------------------------------
 * Execution */

/* Point the entry's scratchpad at the shared buffer (grown if needed) and run the primitive. */
static int run(dc_dnnl *ctx, prim_entry *e, dnnl_exec_arg_t *args, int nargs, const char *op,
               dc_error *err)
{
    dnnl_status_t st;
    if (e->scratch_bytes) {
        if (!grow(ctx->stream, &ctx->scratch, &ctx->scratch_size, e->scratch_bytes))
            return fail_nomem(err, op, &e->d);
        if ((st = dnnl_memory_set_data_handle(e->m_scratch, ctx->scratch)) != dnnl_success)
            return fail_dnnl(err, op, &e->d, "scratchpad binding", st);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = e->m_scratch;
        nargs++;
    }
    if ((st = dnnl_primitive_execute(e->prim, ctx->stream, nargs, args)) != dnnl_success)
        return fail_dnnl(err, op, &e->d, kind_names[e->kind], st);
    return DC_OK;
}

/* Bind user pointers to memory objects; the const casts are for oneDNN's API (inputs are only
 * read). */
static dnnl_status_t bind(dnnl_memory_t m, const void *p)
{
    return dnnl_memory_set_data_handle(m, (void *)p);
}

int conv2d_dnnl_forward(dc_dnnl *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, const dc_conv_desc *d, dc_error *err)
{
    static const char op[] = "forward";
    int rc = dc_conv_desc_check(d, op, err);
    if (rc != DC_OK)
        return rc;
    if (!ctx || !out || !inp || !weight)
        return dc_fail(err, DC_ERR_ARG, "oneDNN conv %s: NULL argument", op);
    prim_entry *e;
    if ((rc = get_entry(ctx, &e, d, ctx->inference ? KIND_FWD_INF : KIND_FWD_TRAIN, bias != NULL, op,
                        err)) != DC_OK)
        return rc;
    void *wbuf = (void *)weight;
    if (!e->w_is_user && (rc = get_weights(ctx, &wbuf, e, weight, op, err)) != DC_OK)
        return rc;
    dnnl_status_t st;
    if ((st = bind(e->m_src, inp)) != dnnl_success || (st = bind(e->m_dst, out)) != dnnl_success ||
        (st = bind(e->m_w, wbuf)) != dnnl_success || (bias && (st = bind(e->m_bias, bias)) != dnnl_success))
        return fail_dnnl(err, op, d, "memory binding", st);
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, e->m_src}, {DNNL_ARG_WEIGHTS, e->m_w}, {DNNL_ARG_DST, e->m_dst}};
    int nargs = 3;
    if (bias)
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->m_bias};
    if ((rc = run(ctx, e, args, nargs, op, err)) != DC_OK)
        return rc;
    if ((st = dnnl_stream_wait(ctx->stream)) != dnnl_success)
        return fail_dnnl(err, op, d, "stream wait", st);
    return DC_OK;
}

int conv2d_dnnl_backward(dc_dnnl *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const dc_conv_desc *d, dc_error *err)
{
    static const char op[] = "backward";
    int rc = dc_conv_desc_check(d, op, err);
    if (rc != DC_OK)
        return rc;
    if (!ctx || !dout || (dinp && !weight) || ((dweight || dbias) && !inp))
        return dc_fail(err, DC_ERR_ARG, "oneDNN conv %s: NULL argument", op);
    dnnl_status_t st;
    prim_entry *e;

    if (dinp) {
        if ((rc = get_entry(ctx, &e, d, KIND_BWD_DATA, 0, op, err)) != DC_OK)
            return rc;
        void *wbuf = (void *)weight;
        if (!e->w_is_user && (rc = get_weights(ctx, &wbuf, e, weight, op, err)) != DC_OK)
            return rc;
        if ((st = bind(e->m_src, dinp)) != dnnl_success || (st = bind(e->m_dst, dout)) != dnnl_success ||
            (st = bind(e->m_w, wbuf)) != dnnl_success)
            return fail_dnnl(err, op, d, "memory binding", st);
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_DIFF_SRC, e->m_src}, {DNNL_ARG_DIFF_DST, e->m_dst}, {DNNL_ARG_WEIGHTS, e->m_w}};
        if ((rc = run(ctx, e, args, 3, op, err)) != DC_OK)
            return rc;
    }

    if (dweight || dbias) {
        if ((rc = get_entry(ctx, &e, d, KIND_BWD_WEIGHTS, dbias != NULL, op, err)) != DC_OK)
            return rc;
        /* Straight into the caller's buffer when the primitive works in PyTorch layout; otherwise
         * into the shared buffer, then reordered back (or dropped when only dbias was asked for). */
        void *wbuf = dweight;
        if (!dweight || !e->w_is_user) {
            if (!grow(ctx->stream, &ctx->dwbuf, &ctx->dwbuf_size, e->wbytes))
                return fail_nomem(err, op, d);
            wbuf = ctx->dwbuf;
        }
        if ((st = bind(e->m_src, inp)) != dnnl_success || (st = bind(e->m_dst, dout)) != dnnl_success ||
            (st = bind(e->m_w, wbuf)) != dnnl_success ||
            (dbias && (st = bind(e->m_bias, dbias)) != dnnl_success))
            return fail_dnnl(err, op, d, "memory binding", st);
        dnnl_exec_arg_t args[5] = {
            {DNNL_ARG_SRC, e->m_src}, {DNNL_ARG_DIFF_DST, e->m_dst}, {DNNL_ARG_DIFF_WEIGHTS, e->m_w}};
        int nargs = 3;
        if (dbias)
            args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, e->m_bias};
        if ((rc = run(ctx, e, args, nargs, op, err)) != DC_OK)
            return rc;
        if (dweight && e->back) {
            if ((st = bind(e->m_user_w, dweight)) != dnnl_success)
                return fail_dnnl(err, op, d, "memory binding", st);
            dnnl_exec_arg_t rargs[] = {{DNNL_ARG_FROM, e->m_w}, {DNNL_ARG_TO, e->m_user_w}};
            if ((st = dnnl_primitive_execute(e->back, ctx->stream, 2, rargs)) != dnnl_success)
                return fail_dnnl(err, op, d, "diff weights reorder", st);
        }
    }
    if ((st = dnnl_stream_wait(ctx->stream)) != dnnl_success)
        return fail_dnnl(err, op, d, "stream wait", st);
    return DC_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Context */

int dc_dnnl_create(dc_dnnl **out, dc_error *err)
{
    dnnl_status_t st;
    const char *what = "context";
    if (!out)
        return dc_fail(err, DC_ERR_ARG, "oneDNN: NULL output pointer");
    *out = NULL;
    dc_dnnl *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return dc_fail(err, DC_ERR_NOMEM, "oneDNN: out of memory for the context");
    what = "CPU engine creation";
    if ((st = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0)) != dnnl_success)
        goto fail;
    what = "stream creation";
    if ((st = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags)) != dnnl_success)
        goto fail;
    what = "attribute creation";
    if ((st = dnnl_primitive_attr_create(&ctx->attr)) != dnnl_success ||
        (st = dnnl_primitive_attr_set_scratchpad_mode(ctx->attr, dnnl_scratchpad_mode_user)) != dnnl_success)
        goto fail;
    *out = ctx;
    return DC_OK;
fail:
    dc_dnnl_destroy(ctx);
    return dc_fail(err, DC_ERR_BACKEND, "oneDNN: %s failed (%s)", what, dnnl_status2str(st));
}

void dc_dnnl_destroy(dc_dnnl *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->nprims; i++)
        destroy_entry(ctx->prims[i]);
    free(ctx->prims);
    dc_dnnl_weights_changed(ctx);
    free(ctx->weights);
    for (int i = 0; i < ctx->nnames; i++)
        free(ctx->names[i]);
    free(ctx->names);
    free(ctx->scratch);
    free(ctx->dwbuf);
    if (ctx->attr)
        dnnl_primitive_attr_destroy(ctx->attr);
    if (ctx->stream)
        dnnl_stream_destroy(ctx->stream);
    if (ctx->engine)
        dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

void dc_dnnl_set_inference(dc_dnnl *ctx, int inference)
{
    if (ctx)
        ctx->inference = inference != 0;
}

int dc_dnnl_impl_names(dc_dnnl *ctx, const char **names, int max)
{
    if (!ctx || !names || max <= 0)
        return 0;
    int n = ctx->nnames < max ? ctx->nnames : max;
    for (int i = 0; i < n; i++)
        names[i] = ctx->names[i];
    return n;
}
