/* diffcr — a DiffCR model for inference: weights + schedule + sampler (model.h).
 *
 * The sampler sees the network as "x0 = f(x_t, t_input)"; the condition is fixed for a sampling run,
 * so dc_model_sample computes the condition branch once (dc_unet_set_condition) and every one of the
 * sampler's calls runs only the main branch.
 *
 * The sampler runs where the network runs: on a device backend its vectors are device memory and
 * its passes go through the op table, so per call only the B time inputs cross the bus; the
 * conditions go down once per tile and the result comes up once. Nothing is allocated inside the
 * sampling loop. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/config.h"
#include "diffcr/model.h"
#include "diffcr/safetensors.h"

struct dc_model {
    dc_backend *be;
    dc_unet *net;
    dc_unet_config cfg;
    dc_noise_schedule ns;
    dc_model_options opt;
    dc_time_input time_input;
    dc_target_kind model_output;
    double scale, offset;
    int tile;
    char bands[64];
    char note[160];               /* for the user, e.g. a precision auto's CPU ignores; or "" */
    /* per-size buffers, reused while (B, H, W) holds */
    int B, H, W;
    float *work;                  /* sampler workspace, on the backend */
    size_t work_floats;
    float *d_cond, *d_x;          /* device backends: the conditions, and the sample being drawn */
};

void dc_model_options_default(dc_model_options *o)
{
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->threads = 0;
    o->sampler = dc_sampler_options_default();
    o->time_input_override = -1;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end)
        return 0;
    *out = v;
    return 1;
}

/* Test schedule from metadata, or DiffCR's (sigmoid, 1000 steps). */
static int load_schedule(dc_model *m, const char *text, const char *path, dc_error *err)
{
    dc_beta_kind kind = DC_BETA_SIGMOID;
    int n = 1000;
    double ls = 1e-4, le = 0.09;
    if (text) {
        cJSON *root = NULL;
        char what[600];
        snprintf(what, sizeof what, "%s: metadata diffcr.schedule", path);
        int rc = dc_json_parse_text(&root, text, what, err);
        if (rc != DC_OK)
            return rc;
        const char *name = NULL;
        rc = dc_json_get_string(root, "schedule", &name, err);
        if (rc == DC_OK)
            rc = dc_beta_kind_parse(name, &kind, err);
        if (rc == DC_OK)
            rc = dc_json_get_int(root, "n_timestep", &n, err);
        if (rc == DC_OK && dc_json_at(root, "linear_start"))
            rc = dc_json_get_double(root, "linear_start", &ls, err);
        if (rc == DC_OK && dc_json_at(root, "linear_end"))
            rc = dc_json_get_double(root, "linear_end", &le, err);
        cJSON_Delete(root);
        if (rc != DC_OK)
            return rc;
        if (n < 2 || n > 100000)
            return dc_fail(err, DC_ERR_FORMAT, "%s: diffcr.schedule n_timestep %d out of range", path, n);
    }
    double *betas = malloc((size_t)n * sizeof *betas);
    if (!betas)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for the schedule");
    int rc = dc_make_beta_schedule(betas, kind, n, ls, le, 8e-3, err);
    if (rc == DC_OK)
        rc = dc_noise_schedule_init(&m->ns, betas, n, DC_NS_FLOAT32, err);
    free(betas);
    return rc;
}

static int load_conventions(dc_model *m, const char *path, dc_error *err)
{
    dc_safetensors *st = NULL;
    int rc = dc_st_open(&st, path, err);
    if (rc != DC_OK)
        return rc;
    const char *ti = dc_st_meta(st, "diffcr.time_input");
    const char *sc = dc_st_meta(st, "diffcr.scale"), *of = dc_st_meta(st, "diffcr.offset");
    const char *tile = dc_st_meta(st, "diffcr.tile"), *bands = dc_st_meta(st, "diffcr.bands");
    const char *target = dc_st_meta(st, "diffcr.target");
    m->time_input = DC_TIME_INPUT_DPM;
    m->scale = 1.0 / 5000.0, m->offset = -1.0, m->tile = 256;
    snprintf(m->bands, sizeof m->bands, "%s", bands ? bands : "R,G,B");
    if (ti)
        rc = dc_time_input_parse(ti, &m->time_input, err);
    /* what the network predicts (diffcr-train's train.target); DiffCR's models predict x0 */
    m->model_output = DC_TARGET_X0;
    if (rc == DC_OK && target) {
        if (!strcmp(target, "x0")) m->model_output = DC_TARGET_X0;
        else if (!strcmp(target, "eps")) m->model_output = DC_TARGET_EPS;
        else if (!strcmp(target, "v")) m->model_output = DC_TARGET_V;
        else rc = dc_fail(err, DC_ERR_FORMAT, "%s: diffcr.target '%s' must be x0, eps or v", path, target);
    }
    if (rc == DC_OK && sc && !parse_double(sc, &m->scale))
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: diffcr.scale '%s' is not a number", path, sc);
    if (rc == DC_OK && of && !parse_double(of, &m->offset))
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: diffcr.offset '%s' is not a number", path, of);
    if (rc == DC_OK && tile) {
        double t;
        if (!parse_double(tile, &t) || t < 16 || t > 8192 || (int)t % 16)
            rc = dc_fail(err, DC_ERR_FORMAT, "%s: diffcr.tile '%s' must be a multiple of 16", path, tile);
        else
            m->tile = (int)t;
    }
    if (rc == DC_OK)
        rc = load_schedule(m, dc_st_meta(st, "diffcr.schedule"), path, err);
    dc_st_close(st);
    return rc;
}

int dc_model_open(dc_model **out, const char *weights_path, const dc_model_options *o, dc_error *err)
{
    *out = NULL;
    dc_model *m = calloc(1, sizeof *m);
    if (!m)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory opening a model");
    m->opt = *o;
    int rc = dc_unet_config_from_weights(&m->cfg, weights_path, err);
    if (rc == DC_OK)
        rc = load_conventions(m, weights_path, err);
    if (rc == DC_OK && o->time_input_override >= 0)
        m->time_input = (dc_time_input)o->time_input_override;
    m->opt.sampler.time_input = m->time_input;
    m->opt.sampler.model_output = m->model_output;
    if (rc == DC_OK)
        rc = dc_sampler_validate(&m->ns, &m->opt.sampler, err);
    if (rc == DC_OK)
        rc = dc_backend_create(&m->be, o->device, o->threads, err);
    if (rc == DC_OK)
        rc = dc_backend_apply_precision(m->be, o->device, o->precision, m->note, sizeof m->note, err);
    if (rc == DC_OK)
        rc = dc_unet_create(&m->net, &m->cfg, m->be, err);
    if (rc == DC_OK)
        rc = dc_unet_load_params(m->net, weights_path, err);
    if (rc != DC_OK) {
        dc_model_close(m);
        return rc;
    }
    *out = m;
    return DC_OK;
}

static void release_buffers(dc_model *m)
{
    if (!m->be)
        return;
    if (m->work)
        m->be->release(m->be, m->work);
    if (m->d_cond)
        m->be->release(m->be, m->d_cond);
    if (m->d_x)
        m->be->release(m->be, m->d_x);
    m->work = m->d_cond = m->d_x = NULL;
    m->B = m->H = m->W = 0;
}

void dc_model_close(dc_model *m)
{
    if (!m)
        return;
    release_buffers(m);
    dc_unet_destroy(m->net);
    dc_backend_destroy(m->be);
    dc_noise_schedule_free(&m->ns);
    free(m);
}

const dc_unet_config *dc_model_config(const dc_model *m) { return &m->cfg; }
double dc_model_scale(const dc_model *m) { return m->scale; }
double dc_model_offset(const dc_model *m) { return m->offset; }
int dc_model_tile(const dc_model *m) { return m->tile; }
const char *dc_model_bands(const dc_model *m) { return m->bands; }
const char *dc_model_backend_name(const dc_model *m) { return m->be->name; }
int dc_model_on_device(const dc_model *m) { return !m->be->is_host; }
const char *dc_model_note(const dc_model *m) { return m->note; }
dc_time_input dc_model_time_input(const dc_model *m) { return m->time_input; }

/* The sampler's view of the network: x0 = UNet(cached condition, x_t, tin); x and x0 are the
 * backend's memory (the sampler runs there too). */
static int x0_from_network(void *user, float *x0, const float *x, const float *tin, int B, dc_error *err)
{
    dc_model *m = user;
    (void)B;
    return dc_unet_forward_cached(m->net, x0, x, tin, err);
}

static int size_buffers(dc_model *m, int B, int H, int W, dc_error *err)
{
    if (m->B == B && m->H == H && m->W == W)
        return DC_OK;
    release_buffers(m);
    dc_backend *be = m->be;
    size_t n = (size_t)H * W * m->cfg.img_channel;
    m->work_floats = dc_sampler_workspace_floats(&m->opt.sampler, B, n);
    m->work = dc_alloc_floats(be, m->work_floats);
    int ok = m->work != NULL;
    if (ok && !be->is_host) {
        m->d_cond = dc_alloc_floats(be, (size_t)B * n * m->cfg.ndates);
        m->d_x = dc_alloc_floats(be, (size_t)B * n);
        ok = m->d_cond && m->d_x;
    }
    if (!ok) {
        release_buffers(m);
        return dc_fail(err, DC_ERR_NOMEM, "out of %s memory for %d tile%s of %dx%d", be->is_host ? "host" : "device",
                       B, B == 1 ? "" : "s", H, W);
    }
    m->B = B, m->H = H, m->W = W;
    return DC_OK;
}

int dc_model_sample(dc_model *m, float *out, const float *cond, int B, int H, int W,
                    const float *init_noise, uint64_t seed, uint32_t tile_id,
                    dc_progress_fn progress, void *progress_arg, dc_sampler_stats *stats,
                    dc_error *err)
{
    dc_backend *be = m->be;
    size_t n = (size_t)H * W * m->cfg.img_channel;
    be->bind(be);
    int rc = size_buffers(m, B, H, W, err);
    if (rc != DC_OK)
        return rc;
    const float *net_cond = cond;
    if (!be->is_host) {
        be->to_device(be, m->d_cond, cond, (size_t)B * n * m->cfg.ndates * sizeof(float));
        net_cond = m->d_cond;
    }
    rc = dc_unet_set_condition(m->net, net_cond, B, H, W, err);
    if (rc != DC_OK)
        return rc;
    dc_sampler_options so = m->opt.sampler;
    so.seed = seed;
    so.tile_id = tile_id;
    so.progress = progress;
    so.progress_arg = progress_arg;
    if (be->is_host)
        return dc_sampler_run(&m->ns, &so, x0_from_network, m, init_noise, out, B, n, m->work,
                              m->work_floats, stats, err);
    so.backend = be;
    const float *x_T = NULL;
    if (init_noise) {
        be->to_device(be, m->d_x, init_noise, (size_t)B * n * sizeof(float));
        x_T = m->d_x;
    }
    rc = dc_sampler_run(&m->ns, &so, x0_from_network, m, x_T, m->d_x, B, n, m->work, m->work_floats, stats, err);
    if (rc != DC_OK)
        return rc;
    be->to_host(be, out, m->d_x, (size_t)B * n * sizeof(float));
    return be->synchronize(be, err);
}
