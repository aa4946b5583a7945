/* diffcr-net — the engine's command-line door: one network forward (and backward) on tensors, so any
 * result can be reproduced from the shell and compared with PyTorch.
 *
 *   diffcr-net --weights W.safetensors --input I.safetensors --output O.safetensors
 *              [--grad G.safetensors] [--config CFG.json] [--threads N] [--device auto|cpu|ref|cuda[:N]]
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
#include "diffcr/model.h"
#include "diffcr/safetensors.h"
#include "diffcr/unet.h"

static const char *USAGE =
    "usage: diffcr-net --weights W.safetensors --input I.safetensors --output O.safetensors\n"
    "                  [--grad G.safetensors] [--config CONFIG.json] [--threads N] [--device auto|cpu|ref|cuda[:N]]\n"
    "       diffcr-net init --config CONFIG.json --output W.safetensors [--seed S]\n"
    "       diffcr-net sample --weights W --cond C.safetensors --output O.safetensors [--seed S]\n"
    "                  [--steps 20] [--order 2] [--sampler dpmpp|ddim|ddpm] [--method multistep|singlestep]\n"
    "                  [--skip time_uniform|logSNR|time_quadratic] [--time-input dpm_tinput|gamma]\n"
    "                  [--eta 0] [--respacing ddim25] [--no-threshold] [--init-noise N.safetensors]\n"
    "                  [--tile-id T] [--threads N] [--device auto|cpu|ref|cuda[:N]]\n"
    "\n"
    "Runs one DiffCR network forward on tensor x [B,(dates+1)*C,H,W] (NCHW) with time input gamma [B]\n"
    "and writes tensor out [B,C,H,W]. With --grad, runs backward from tensor dout in G and also writes\n"
    "grad.<name> for every parameter. The network config comes from the weights' diffcr.unet metadata\n"
    "unless --config (a DiffCR JSON config or its unet object) is given.\n"
    "\n"
    "init writes freshly initialised weights (DiffCR's kaiming init, seeded) with the config recorded\n"
    "in the file's metadata.\n"
    "\n"
    "sample runs a whole diffusion sampling (DiffCR's default: DPM-Solver++ order 2, 20 steps, 21 network\n"
    "calls) on tensor cond [B,dates*C,H,W] and writes out [B,C,H,W]. The initial noise is tensor noise\n"
    "[B,C,H,W] from --init-noise, or Philox noise keyed by (seed, tile id).\n";

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
    float *d_cond = NULL, *d_xt = NULL, *d_out = NULL, *d_dout = NULL; /* device backends */
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
    /* the network takes the backend's memory: on a device, stage the tensors through it */
    if (!be->is_host) {
        d_cond = dc_alloc_floats(be, P * (size_t)nd * ic);
        d_xt = dc_alloc_floats(be, P * (size_t)ic);
        d_out = dc_alloc_floats(be, P * (size_t)ic);
        d_dout = dc_alloc_floats(be, P * (size_t)ic);
        if (!d_cond || !d_xt || !d_out || !d_dout) {
            rc = dc_fail(err, DC_ERR_NOMEM, "out of %s memory for the network's tensors", be->name);
            goto done;
        }
        be->to_device(be, d_cond, cond, P * (size_t)nd * ic * sizeof(float));
        be->to_device(be, d_xt, xt, P * (size_t)ic * sizeof(float));
    }
    const float *net_cond = d_cond ? d_cond : cond, *net_xt = d_xt ? d_xt : xt;
    float *net_out = d_out ? d_out : out;
    if (!a->grad) {
        rc = dc_unet_forward(net, net_out, net_cond, net_xt, gam, B, H, W, err);
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
        if (d_dout)
            be->to_device(be, d_dout, dout_nhwc, P * (size_t)ic * sizeof(float));
        if ((rc = dc_unet_forward_train(net, net_out, net_cond, net_xt, gam, B, H, W, err)) != DC_OK ||
            (rc = dc_unet_backward(net, d_dout ? d_dout : dout_nhwc, err)) != DC_OK)
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
    if (d_out) {
        be->to_host(be, out, d_out, P * (size_t)ic * sizeof(float));
        if ((rc = be->synchronize(be, err)) != DC_OK)
            goto done;
    }
    nhwc_to_nchw(out_nchw, out, B, ic, H, W);
    if ((rc = dc_st_writer_add(w, "out", DC_DTYPE_F32, 4, oshape, out_nchw, err)) != DC_OK)
        goto done;
    rc = dc_st_writer_write(w, a->output, err);
done:
    dc_st_writer_free(w);
    dc_unet_destroy(net);
    if (be) {
        float *dev[4] = {d_cond, d_xt, d_out, d_dout};
        for (int i = 0; i < 4; i++)
            if (dev[i])
                be->release(be, dev[i]);
    }
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


/* NCHW [B,C,H,W] -> NHWC; also used for the noise tensor. */
static int read_nchw_as_nhwc(float **out, const dc_safetensors *st, const char *name, const char *path,
                             int B, int C, int H, int W, dc_error *err)
{
    const dc_st_tensor *t = dc_st_find(st, name);
    if (!t || t->ndim != 4 || t->shape[0] != B || t->shape[1] != C || t->shape[2] != H || t->shape[3] != W)
        return dc_fail(err, DC_ERR_SHAPE, "%s: needs tensor '%s' [%d,%d,%d,%d]", path, name, B, C, H, W);
    size_t n = (size_t)B * C * H * W;
    float *tmp = malloc(n * sizeof *tmp), *res = malloc(n * sizeof *res);
    int rc = (!tmp || !res) ? dc_fail(err, DC_ERR_NOMEM, "out of memory") : dc_st_read_f32(st, name, tmp, n, err);
    if (rc == DC_OK)
        nchw_to_nhwc(res, tmp, B, C, H, W, 0, C);
    free(tmp);
    if (rc != DC_OK) {
        free(res);
        return rc;
    }
    *out = res;
    return DC_OK;
}

static int run_sample(int argc, char **argv, dc_error *err)
{
    const char *weights = NULL, *condp = NULL, *output = NULL, *noisep = NULL;
    dc_model_options mo;
    dc_model_options_default(&mo);
    unsigned long long seed = 0;
    unsigned long tile_id = 0;
    int rc = DC_OK;
    for (int i = 2; i < argc && rc == DC_OK; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--no-threshold")) {
            mo.sampler.x0_correction = DC_X0_NONE;
            continue;
        }
        if (i + 1 >= argc)
            return dc_fail(err, DC_ERR_ARG, "option %s needs a value (see --help)", o);
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(o, "--weights")) weights = v;
        else if (!strcmp(o, "--cond")) condp = v;
        else if (!strcmp(o, "--output")) output = v;
        else if (!strcmp(o, "--init-noise")) noisep = v;
        else if (!strcmp(o, "--device")) mo.device = v;
        else if (!strcmp(o, "--seed")) seed = strtoull(v, &end, 10);
        else if (!strcmp(o, "--tile-id")) tile_id = strtoul(v, &end, 10);
        else if (!strcmp(o, "--threads")) mo.threads = (int)strtol(v, &end, 10);
        else if (!strcmp(o, "--steps")) mo.sampler.steps = (int)strtol(v, &end, 10);
        else if (!strcmp(o, "--order")) mo.sampler.order = (int)strtol(v, &end, 10);
        else if (!strcmp(o, "--eta")) mo.sampler.eta = strtod(v, &end);
        else if (!strcmp(o, "--respacing")) mo.sampler.respacing = v;
        else if (!strcmp(o, "--sampler")) rc = dc_sampler_kind_parse(v, &mo.sampler.kind, err);
        else if (!strcmp(o, "--method")) rc = dc_dpm_method_parse(v, &mo.sampler.method, err);
        else if (!strcmp(o, "--skip")) rc = dc_skip_type_parse(v, &mo.sampler.skip, err);
        else if (!strcmp(o, "--time-input")) {
            dc_time_input ti;
            rc = dc_time_input_parse(v, &ti, err);
            mo.time_input_override = (int)ti;
        } else
            return dc_fail(err, DC_ERR_ARG, "unknown option '%s' for sample (see --help)", o);
        if (end && *end)
            return dc_fail(err, DC_ERR_ARG, "option %s: '%s' is not a number", o, v);
    }
    if (rc != DC_OK)
        return rc;
    if (!weights || !condp || !output)
        return dc_fail(err, DC_ERR_ARG, "sample needs --weights, --cond and --output (see --help)");
    if (mo.threads < 0 || mo.threads > 1024)
        return dc_fail(err, DC_ERR_ARG, "--threads must be 1..1024");

    dc_model *m = NULL;
    dc_safetensors *cst = NULL, *nst = NULL;
    float *cond = NULL, *noise = NULL, *out = NULL, *out_nchw = NULL;
    dc_st_writer *w = NULL;
    if ((rc = dc_model_open(&m, weights, &mo, err)) != DC_OK)
        return rc;
    const dc_unet_config *cfg = dc_model_config(m);
    int ic = cfg->img_channel, nd = cfg->ndates;
    if ((rc = dc_st_open(&cst, condp, err)) != DC_OK)
        goto done;
    const dc_st_tensor *tc = dc_st_find(cst, "cond");
    if (!tc || tc->ndim != 4 || tc->shape[1] != (int64_t)nd * ic || tc->shape[0] < 1 || tc->shape[2] < 1 ||
        tc->shape[3] < 1 || tc->shape[0] * tc->shape[2] * tc->shape[3] > ((int64_t)1 << 28)) {
        rc = dc_fail(err, DC_ERR_SHAPE, "%s: needs tensor 'cond' [B,%d,H,W] for this model", condp, nd * ic);
        goto done;
    }
    int B = (int)tc->shape[0], H = (int)tc->shape[2], W = (int)tc->shape[3];
    if ((rc = read_nchw_as_nhwc(&cond, cst, "cond", condp, B, nd * ic, H, W, err)) != DC_OK)
        goto done;
    if (noisep) {
        if ((rc = dc_st_open(&nst, noisep, err)) != DC_OK ||
            (rc = read_nchw_as_nhwc(&noise, nst, "noise", noisep, B, ic, H, W, err)) != DC_OK)
            goto done;
    }
    size_t n = (size_t)B * H * W * ic;
    out = malloc(n * sizeof *out);
    out_nchw = malloc(n * sizeof *out_nchw);
    w = dc_st_writer_new();
    if (!out || !out_nchw || !w) {
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
        goto done;
    }
    dc_sampler_stats stats = {0, 0};
    if ((rc = dc_model_sample(m, out, cond, B, H, W, noise, seed, (uint32_t)tile_id, NULL, NULL, &stats, err)) != DC_OK)
        goto done;
    nhwc_to_nchw(out_nchw, out, B, ic, H, W);
    int64_t shape[4] = {B, ic, H, W};
    char calls[32];
    snprintf(calls, sizeof calls, "%d", stats.model_calls);
    if ((rc = dc_st_writer_add(w, "out", DC_DTYPE_F32, 4, shape, out_nchw, err)) == DC_OK &&
        (rc = dc_st_writer_meta(w, "diffcr.model_calls", calls, err)) == DC_OK &&
        (rc = dc_st_writer_meta(w, "diffcr.time_input", dc_time_input_name(dc_model_time_input(m)), err)) == DC_OK)
        rc = dc_st_writer_write(w, output, err);
done:
    dc_st_writer_free(w);
    dc_st_close(cst);
    dc_st_close(nst);
    dc_model_close(m);
    free(cond), free(noise), free(out), free(out_nchw);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "sample")) {
        dc_error e;
        dc_error_clear(&e);
        return run_sample(argc, argv, &e) == DC_OK ? 0 : die(e.msg);
    }
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
