/* diffcr-net — the engine's command-line door: one network forward (and backward) on tensors, so any
 * result can be reproduced from the shell and compared with PyTorch.
 *
 *   diffcr-net --weights W.safetensors --input I.safetensors --output O.safetensors
 *              [--grad G.safetensors] [--config CFG.json] [--threads N] [--device cpu|ref|auto]
 *
 * I holds `x` [B, (ndates+1)*C, H, W] (NCHW as PyTorch writes it: the dates' channels, then x_t) and
 * `gamma` [B] (the time input). O receives `out` [B, C, H, W]; with --grad (tensor `dout`, out's shape)
 * also `grad.<parameter name>` for every parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "diffcr/backend.h"
#include "diffcr/config.h"
#include "diffcr/safetensors.h"
#include "diffcr/unet.h"

static const char *USAGE =
    "usage: diffcr-net --weights W.safetensors --input I.safetensors --output O.safetensors\n"
    "                  [--grad G.safetensors] [--config CONFIG.json] [--threads N] [--device auto|cpu|ref]\n"
    "       diffcr-net init --config CONFIG.json --output W.safetensors [--seed S]\n"
    "\n"
    "Runs one DiffCR network forward on tensor x [B,(dates+1)*C,H,W] (NCHW) with time input gamma [B]\n"
    "and writes tensor out [B,C,H,W]. With --grad, runs backward from tensor dout in G and also writes\n"
    "grad.<name> for every parameter. The network config comes from the weights' diffcr.unet metadata\n"
    "unless --config (a DiffCR JSON config or its unet object) is given.\n"
    "\n"
    "init writes freshly initialised weights (DiffCR's kaiming init, seeded) with the config recorded\n"
    "in the file's metadata.\n";

typedef struct net_args {
    const char *weights, *input, *output, *grad, *config, *device;
    int threads;
} net_args;

static int die(const char *msg)
{
    fprintf(stderr, "diffcr-net: %s\n", msg);
    return 1;
}

static int parse_args(net_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->device = "auto";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(USAGE, stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "diffcr-net: option %s needs a value (see --help)\n", o);
            return 0;
        }
        const char *v = argv[++i];
        if (!strcmp(o, "--weights")) a->weights = v;
        else if (!strcmp(o, "--input")) a->input = v;
        else if (!strcmp(o, "--output")) a->output = v;
        else if (!strcmp(o, "--grad")) a->grad = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "--device")) a->device = v;
        else if (!strcmp(o, "--threads")) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "diffcr-net: --threads must be an integer 1..1024, got '%s'\n", v);
                return 0;
            }
            a->threads = (int)t;
        } else {
            fprintf(stderr, "diffcr-net: unknown option '%s' (see --help)\n", o);
            return 0;
        }
    }
    if (!a->weights || !a->input || !a->output) {
        fprintf(stderr, "diffcr-net: --weights, --input and --output are required (see --help)\n");
        return 0;
    }
    return 1;
}

static int load_config(dc_unet_config *cfg, const net_args *a, dc_error *err)
{
    if (!a->config)
        return dc_unet_config_from_weights(cfg, a->weights, err);
    cJSON *root = NULL;
    int rc = dc_json_parse_file(&root, a->config, err);
    if (rc != DC_OK)
        return rc;
    rc = dc_unet_config_from_json(cfg, root, err);
    cJSON_Delete(root);
    return rc;
}

/* NCHW [B,C,H,W] channels [c0, c0+cn) -> NHWC [B,H,W,cn] */
static void nchw_to_nhwc(float *dst, const float *src, int B, int C, int H, int W, int c0, int cn)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < cn; c++)
            for (size_t p = 0; p < (size_t)H * W; p++)
                dst[((size_t)b * H * W + p) * cn + c] = src[((size_t)b * C + c0 + c) * H * W + p];
}

static void nhwc_to_nchw(float *dst, const float *src, int B, int C, int H, int W)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (size_t p = 0; p < (size_t)H * W; p++)
                dst[((size_t)b * C + c) * H * W + p] = src[((size_t)b * H * W + p) * C + c];
}

static int run(const net_args *a, dc_error *err)
{
    dc_unet_config cfg;
    dc_backend *be = NULL;
    dc_unet *net = NULL;
    dc_safetensors *in = NULL, *gin = NULL;
    dc_st_writer *w = NULL;
    float *x = NULL, *cond = NULL, *xt = NULL, *gam = NULL, *out = NULL, *out_nchw = NULL;
    float *dout = NULL, *dout_nhwc = NULL, *grads = NULL;
    int rc;

    if ((rc = load_config(&cfg, a, err)) != DC_OK)
        return rc;
    if ((rc = dc_st_open(&in, a->input, err)) != DC_OK)
        return rc;
    const dc_st_tensor *tx = dc_st_find(in, "x"), *tg = dc_st_find(in, "gamma");
    int ic = cfg.img_channel, nd = cfg.ndates;
    if (!tx || !tg) {
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: needs tensors 'x' and 'gamma'", a->input);
        goto done;
    }
    if (tx->ndim != 4 || tx->shape[1] != (int64_t)(nd + 1) * ic || tg->ndim != 1 || tg->shape[0] != tx->shape[0]) {
        rc = dc_fail(err, DC_ERR_SHAPE, "%s: x must be [B,%d,H,W] and gamma [B] for this network", a->input, (nd + 1) * ic);
        goto done;
    }
    int B = (int)tx->shape[0], C = (nd + 1) * ic, H = (int)tx->shape[2], W = (int)tx->shape[3];
    if (B < 1 || H < 1 || W < 1 || (int64_t)B * H * W > (int64_t)1 << 28) {
        rc = dc_fail(err, DC_ERR_SHAPE, "%s: x size %dx%dx%d is out of range", a->input, B, H, W);
        goto done;
    }
    size_t P = (size_t)B * H * W;
    x = malloc(P * C * sizeof *x);
    cond = malloc(P * nd * ic * sizeof *cond);
    xt = malloc(P * ic * sizeof *xt);
    gam = malloc((size_t)B * sizeof *gam);
    out = malloc(P * ic * sizeof *out);
    out_nchw = malloc(P * ic * sizeof *out_nchw);
    if (!x || !cond || !xt || !gam || !out || !out_nchw) {
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory for the input tensors");
        goto done;
    }
    if ((rc = dc_st_read_f32(in, "x", x, P * C, err)) != DC_OK || (rc = dc_st_read_f32(in, "gamma", gam, (size_t)B, err)) != DC_OK)
        goto done;
    nchw_to_nhwc(cond, x, B, C, H, W, 0, nd * ic);
    nchw_to_nhwc(xt, x, B, C, H, W, nd * ic, ic);

    if ((rc = dc_backend_create(&be, a->device, a->threads, err)) != DC_OK)
        goto done;
    if ((rc = dc_unet_create(&net, &cfg, be, err)) != DC_OK || (rc = dc_unet_load_params(net, a->weights, err)) != DC_OK)
        goto done;

    w = dc_st_writer_new();
    if (!w) {
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
        goto done;
    }
    int64_t oshape[4] = {B, ic, H, W};
    if (!a->grad) {
        rc = dc_unet_forward(net, out, cond, xt, gam, B, H, W, err);
    } else {
        if ((rc = dc_st_open(&gin, a->grad, err)) != DC_OK)
            goto done;
        const dc_st_tensor *td = dc_st_find(gin, "dout");
        if (!td || td->ndim != 4 || td->shape[0] != B || td->shape[1] != ic || td->shape[2] != H || td->shape[3] != W) {
            rc = dc_fail(err, DC_ERR_SHAPE, "%s: needs tensor 'dout' [%d,%d,%d,%d]", a->grad, B, ic, H, W);
            goto done;
        }
        dout = malloc(P * ic * sizeof *dout);
        dout_nhwc = malloc(P * ic * sizeof *dout_nhwc);
        if (!dout || !dout_nhwc) {
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((rc = dc_st_read_f32(gin, "dout", dout, P * ic, err)) != DC_OK)
            goto done;
        nchw_to_nhwc(dout_nhwc, dout, B, ic, H, W, 0, ic);
        if ((rc = dc_unet_forward_train(net, out, cond, xt, gam, B, H, W, err)) != DC_OK ||
            (rc = dc_unet_backward(net, dout_nhwc, err)) != DC_OK)
            goto done;
        const dc_param_table *tab = dc_unet_params_table(net);
        grads = malloc(tab->total * sizeof *grads);
        if (!grads) {
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
            goto done;
        }
        be->to_host(be, grads, dc_unet_grads(net), tab->total * sizeof *grads);
        for (int i = 0; i < tab->count && rc == DC_OK; i++) {
            const dc_param_view *v = &tab->views[i];
            char name[128];
            int64_t shape[4];
            for (int k = 0; k < v->ndim; k++)
                shape[k] = v->shape[k];
            snprintf(name, sizeof name, "grad.%s", v->name);
            rc = dc_st_writer_add(w, name, DC_DTYPE_F32, v->ndim, shape, grads + v->offset, err);
        }
    }
    if (rc != DC_OK)
        goto done;
    nhwc_to_nchw(out_nchw, out, B, ic, H, W);
    if ((rc = dc_st_writer_add(w, "out", DC_DTYPE_F32, 4, oshape, out_nchw, err)) != DC_OK)
        goto done;
    rc = dc_st_writer_write(w, a->output, err);
done:
    dc_st_writer_free(w);
    dc_unet_destroy(net);
    dc_backend_destroy(be);
    dc_st_close(in);
    dc_st_close(gin);
    free(x), free(cond), free(xt), free(gam), free(out), free(out_nchw), free(dout), free(dout_nhwc), free(grads);
    return rc;
}

/* diffcr-net init: DiffCR-initialised weights for a config, with the config in the metadata. */
static int run_init(int argc, char **argv, dc_error *err)
{
    const char *config = NULL, *output = NULL;
    unsigned long long seed = 0;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc)
            return dc_fail(err, DC_ERR_ARG, "option %s needs a value (see --help)", argv[i]);
        if (!strcmp(argv[i], "--config")) config = argv[++i];
        else if (!strcmp(argv[i], "--output")) output = argv[++i];
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[++i], NULL, 10);
        else return dc_fail(err, DC_ERR_ARG, "unknown option '%s' for init (see --help)", argv[i]);
    }
    if (!config || !output)
        return dc_fail(err, DC_ERR_ARG, "init needs --config and --output (see --help)");
    net_args a = {0};
    a.config = config;
    dc_unet_config cfg;
    int rc = load_config(&cfg, &a, err);
    if (rc != DC_OK)
        return rc;
    dc_param_table tab;
    if ((rc = dc_param_table_build(&tab, &cfg, err)) != DC_OK)
        return rc;
    float *p = malloc(tab.total * sizeof *p);
    char *json = dc_unet_config_to_json(&cfg);
    dc_st_writer *w = dc_st_writer_new();
    if (!p || !json || !w) {
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    } else {
        dc_unet_init_params(p, &tab, seed);
        rc = dc_st_writer_meta(w, "diffcr.format", "1", err);
        if (rc == DC_OK)
            rc = dc_st_writer_meta(w, "diffcr.unet", json, err);
        for (int i = 0; i < tab.count && rc == DC_OK; i++) {
            int64_t shape[4];
            for (int k = 0; k < tab.views[i].ndim; k++)
                shape[k] = tab.views[i].shape[k];
            rc = dc_st_writer_add(w, tab.views[i].name, DC_DTYPE_F32, tab.views[i].ndim, shape, p + tab.views[i].offset, err);
        }
        if (rc == DC_OK)
            rc = dc_st_writer_write(w, output, err);
    }
    dc_st_writer_free(w);
    free(json);
    free(p);
    dc_param_table_free(&tab);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "init")) {
        dc_error e;
        dc_error_clear(&e);
        return run_init(argc, argv, &e) == DC_OK ? 0 : die(e.msg);
    }
    net_args a;
    if (!parse_args(&a, argc, argv))
        return 2;
    dc_error err;
    dc_error_clear(&err);
    if (run(&a, &err) != DC_OK)
        return die(err.msg);
    return 0;
}
