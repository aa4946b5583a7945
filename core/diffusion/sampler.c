/* diffcr — the sampler front end: options, the shared model-call step, and dc_sampler_run.
 *
 * Every sampler (dpm_solver.c, ddim.c, ddpm.c) gets its x0 predictions through
 * dc_sampler_eval_x0, which is where the DiffCR-specific conventions live:
 *  - the time input (dpm_tinput = 1000 (t - 1/N'), or gamma = alpha-bar(t); DIFFCR.md §4.2/§4.3);
 *  - conversion of an eps / v output to x0, or, for an x0 model under a DC_NS_FLOAT32 schedule,
 *    DPM-Solver's float32 x0 -> eps -> x0 round trip (model_wrapper then data_prediction_fn),
 *    which the published numbers contain (up to ~1e-5 at t = 1, DIFFCR.md §4.2);
 *  - the x0 correction (dynamic thresholding, per sample, quantile by selection);
 *  - the call count and the progress callback (return 0 -> DC_ERR_CANCELLED).
 * dc_sampler_run validates, sets out the workspace once, draws the initial noise from Philox if
 * asked, and dispatches. */
#include "diffcr/philox.h"
#include "diffusion/sampler_vec.h"
#include "diffcr/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dc_sampler_options dc_sampler_options_default(void)
{
    dc_sampler_options o;
    memset(&o, 0, sizeof o);
    o.kind = DC_SAMPLER_DPM_SOLVER_PP;
    o.steps = 20;
    o.order = 2;
    o.method = DC_DPM_MULTISTEP;
    o.skip = DC_SKIP_TIME_UNIFORM;
    o.lower_order_final = 1;
    o.denoise_to_zero = 1;
    o.x0_correction = DC_X0_DYNAMIC;
    o.threshold_ratio = 0.995;
    o.threshold_max = 1.0;
    o.time_input = DC_TIME_INPUT_DPM;
    o.model_output = DC_TARGET_X0;
    o.t_start = 0.0;
    o.t_end = 0.0;
    o.eta = 0.0;
    o.respacing = NULL;
    o.seed = 0;
    o.tile_id = 0;
    o.progress = NULL;
    o.progress_arg = NULL;
    return o;
}

/* ---- names ---------------------------------------------------------------------------------- */

static int parse_name(const char *what, const char *name, const char *const *names, int count,
                      int *out, dc_error *err)
{
    if (!name || !out)
        return dc_fail(err, DC_ERR_ARG, "%s: NULL argument", what);
    for (int i = 0; i < count; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return DC_OK;
        }
    }
    return dc_fail(err, DC_ERR_ARG, "unknown %s '%s'", what, name);
}

static const char *const kind_names[] = {"dpm++", "ddim", "ddpm"};
static const char *const method_names[] = {"multistep", "singlestep"};
static const char *const skip_names[] = {"time_uniform", "logSNR", "time_quadratic"};
static const char *const tinput_names[] = {"dpm_tinput", "gamma"};
static const char *const x0c_names[] = {"none", "clip", "dynamic"};

int dc_sampler_kind_parse(const char *name, dc_sampler_kind *out, dc_error *err)
{
    /* "dpmpp" is the spelling command lines use (no shell-unfriendly '+'). */
    if (name && (strcmp(name, "dpmpp") == 0 || strcmp(name, "dpm-solver++") == 0))
        name = "dpm++";
    int v = 0, rc = parse_name("sampler", name, kind_names, 3, &v, err);
    if (rc == DC_OK)
        *out = (dc_sampler_kind)v;
    return rc;
}

int dc_dpm_method_parse(const char *name, dc_dpm_method *out, dc_error *err)
{
    int v = 0, rc = parse_name("DPM-Solver method", name, method_names, 2, &v, err);
    if (rc == DC_OK)
        *out = (dc_dpm_method)v;
    return rc;
}

int dc_skip_type_parse(const char *name, dc_skip_type *out, dc_error *err)
{
    int v = 0, rc = parse_name("skip type", name, skip_names, 3, &v, err);
    if (rc == DC_OK)
        *out = (dc_skip_type)v;
    return rc;
}

int dc_time_input_parse(const char *name, dc_time_input *out, dc_error *err)
{
    int v = 0, rc = parse_name("time input", name, tinput_names, 2, &v, err);
    if (rc == DC_OK)
        *out = (dc_time_input)v;
    return rc;
}

int dc_x0_correction_parse(const char *name, dc_x0_correction *out, dc_error *err)
{
    int v = 0, rc = parse_name("x0 correction", name, x0c_names, 3, &v, err);
    if (rc == DC_OK)
        *out = (dc_x0_correction)v;
    return rc;
}

const char *dc_sampler_kind_name(dc_sampler_kind v)
{
    return (int)v >= 0 && (int)v < 3 ? kind_names[v] : "unknown";
}

const char *dc_time_input_name(dc_time_input v)
{
    return (int)v >= 0 && (int)v < 2 ? tinput_names[v] : "unknown";
}

/* ---- validation, sizes ---------------------------------------------------------------------- */

/* Number of kept steps of a DDIM/DDPM run (validates the respacing string). */
static int respaced_count(const dc_noise_schedule *ns, const dc_sampler_options *opt, int *count,
                          dc_error *err)
{
    char buf[32];
    const char *spec = opt->respacing;
    if (!spec) {
        if (opt->steps < 1 || opt->steps > ns->total_n)
            return dc_fail(err, DC_ERR_ARG, "%s: steps must be in 1..%d (got %d)",
                           dc_sampler_kind_name(opt->kind), ns->total_n, opt->steps);
        snprintf(buf, sizeof buf, "%d", opt->steps);
        spec = buf;
    }
    int *tmp = malloc((size_t)ns->total_n * sizeof *tmp);
    if (!tmp)
        return dc_fail(err, DC_ERR_NOMEM, "sampler: out of memory");
    int rc = dc_space_timesteps(ns->total_n, spec, tmp, ns->total_n, count, err);
    free(tmp);
    return rc;
}

int dc_sampler_validate(const dc_noise_schedule *ns, const dc_sampler_options *opt, dc_error *err)
{
    if (!ns || !opt)
        return dc_fail(err, DC_ERR_ARG, "sampler: NULL schedule or options");
    if (!ns->log_alpha || ns->total_n < 2)
        return dc_fail(err, DC_ERR_ARG, "sampler: noise schedule not initialised");
    if ((int)opt->kind < 0 || (int)opt->kind > DC_SAMPLER_DDPM)
        return dc_fail(err, DC_ERR_ARG, "sampler: unknown kind %d", (int)opt->kind);
    if ((int)opt->time_input < 0 || (int)opt->time_input > DC_TIME_INPUT_GAMMA)
        return dc_fail(err, DC_ERR_ARG, "sampler: unknown time input %d", (int)opt->time_input);
    if ((int)opt->model_output < 0 || (int)opt->model_output > DC_TARGET_V)
        return dc_fail(err, DC_ERR_ARG, "sampler: unknown model output %d", (int)opt->model_output);
    if ((int)opt->x0_correction < 0 || (int)opt->x0_correction > DC_X0_DYNAMIC)
        return dc_fail(err, DC_ERR_ARG, "sampler: unknown x0 correction %d", (int)opt->x0_correction);
    if (opt->x0_correction == DC_X0_DYNAMIC &&
        !(opt->threshold_ratio >= 0.0 && opt->threshold_ratio <= 1.0))
        return dc_fail(err, DC_ERR_ARG, "sampler: threshold ratio %g outside [0, 1]", opt->threshold_ratio);
    if (opt->x0_correction != DC_X0_NONE && !(opt->threshold_max > 0.0))
        return dc_fail(err, DC_ERR_ARG, "sampler: threshold max must be > 0 (got %g)", opt->threshold_max);
    if (opt->kind == DC_SAMPLER_DPM_SOLVER_PP) {
        if (opt->order < 1 || opt->order > 3)
            return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: order must be 1, 2 or 3 (got %d)", opt->order);
        if ((int)opt->method < 0 || (int)opt->method > DC_DPM_SINGLESTEP)
            return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: unknown method %d", (int)opt->method);
        if ((int)opt->skip < 0 || (int)opt->skip > DC_SKIP_TIME_QUADRATIC)
            return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: unknown skip type %d", (int)opt->skip);
        if (opt->steps < 1 || opt->steps > 100000)
            return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: steps must be in 1..100000 (got %d)", opt->steps);
        if (opt->method == DC_DPM_MULTISTEP && opt->steps < opt->order)
            return dc_fail(err, DC_ERR_ARG, "DPM-Solver++ multistep: steps (%d) < order (%d)",
                           opt->steps, opt->order);
        double t_T = opt->t_start > 0.0 ? opt->t_start : dc_ns_t_max(ns);
        double t_0 = opt->t_end > 0.0 ? opt->t_end : dc_ns_t_min(ns);
        if (!(opt->t_start >= 0.0 && opt->t_end >= 0.0 && t_T > t_0 && t_T <= 1.0))
            return dc_fail(err, DC_ERR_ARG, "DPM-Solver++: need 0 < t_end < t_start <= 1 (got %g, %g)",
                           t_0, t_T);
        return DC_OK;
    }
    if (opt->kind == DC_SAMPLER_DDIM && !(opt->eta >= 0.0))
        return dc_fail(err, DC_ERR_ARG, "DDIM: eta must be >= 0 (got %g)", opt->eta);
    int count;
    return respaced_count(ns, opt, &count, err);
}

int dc_sampler_planned_calls(const dc_noise_schedule *ns, const dc_sampler_options *opt,
                             int *calls, dc_error *err)
{
    int rc = dc_sampler_validate(ns, opt, err);
    if (rc)
        return rc;
    if (opt->kind == DC_SAMPLER_DPM_SOLVER_PP) {
        /* multistep: one call per step; singlestep: the orders add up to `steps` */
        *calls = opt->steps + (opt->denoise_to_zero ? 1 : 0);
        return DC_OK;
    }
    return respaced_count(ns, opt, calls, err);
}

size_t dc_sampler_workspace_floats(const dc_sampler_options *opt, int B, size_t n)
{
    size_t slots = 2; /* DDIM/DDPM: x0 and the step noise */
    if (opt->kind == DC_SAMPLER_DPM_SOLVER_PP)
        slots = (size_t)(opt->order < 1 ? 1 : opt->order > 3 ? 3 : opt->order) + 1;
    return slots * (size_t)B * n + n + (size_t)B;
}

/* ---- the model call --------------------------------------------------------------------------- */

double dc_sampler_time_input(const dc_noise_schedule *ns, dc_time_input kind, double t)
{
    if (kind == DC_TIME_INPUT_GAMMA)
        return dc_ns_alpha_bar(ns, t);
    /* get_model_input_time: (t_continuous - 1/N) * 1000, float32 tensor op in the original */
    double d = dc_ns_round(ns, dc_ns_round(ns, t) - dc_ns_t_min(ns));
    return dc_ns_round(ns, d * 1000.0);
}

int dc_sampler_eval_x0(dc_sampler_call *call, float *x0, const float *x, double t, dc_error *err)
{
    const dc_noise_schedule *ns = call->ns;
    const dc_sampler_options *opt = call->opt;
    const int B = call->B;
    const size_t n = call->n, N = (size_t)B * n;
    const float tin = (float)dc_sampler_time_input(ns, opt->time_input, t);
    for (int b = 0; b < B; b++)
        call->tin[b] = tin;
    dc_error_clear(err);
    int rc = call->model(call->user, x0, x, call->tin, B, err);
    if (rc != DC_OK) {
        if (err && err->code == DC_OK)
            dc_fail(err, rc, "sampler: model call %d failed (status %d)", call->calls + 1, rc);
        return rc;
    }
    call->calls++;

    if (opt->model_output != DC_TARGET_X0 || call->emulate_wrapper) {
        const double alpha = dc_ns_alpha(ns, t), sigma = dc_ns_sigma(ns, t);
        if (opt->model_output != DC_TARGET_X0)
            sv_prediction_to_x0(call, x0, opt->model_output, x0, x, N, alpha, sigma);
        else /* model_wrapper: noise = (x - alpha out) / sigma; data_prediction_fn:
              * x0 = (x - sigma noise) / alpha; float32 tensors, as the published run. */
            sv_x0_roundtrip(call, x0, x, (float)alpha, (float)sigma, N);
    }
    if (opt->x0_correction == DC_X0_DYNAMIC)
        sv_dynamic_threshold(call, x0, opt->threshold_ratio, opt->threshold_max, ns->precision == DC_NS_FLOAT32);
    else if (opt->x0_correction == DC_X0_CLIP)
        sv_clamp_abs(call, x0, (float)opt->threshold_max, N);
    if (opt->progress) {
        double done = call->planned > 0 ? (double)call->calls / (double)call->planned : 1.0;
        if (done > 1.0)
            done = 1.0;
        if (!opt->progress(done, "diffusion sampling", opt->progress_arg))
            return dc_fail(err, DC_ERR_CANCELLED, "sampling cancelled after %d model calls", call->calls);
    }
    return DC_OK;
}

int dc_sampler_eval_x0_discrete(dc_sampler_call *call, float *x0, const float *x, int k,
                                dc_error *err)
{
    /* Step k sits at DPM time t_k; the piecewise-linear schedule passes through la[k] there, so
     * alpha, sigma and both time inputs are step k's own. */
    return dc_sampler_eval_x0(call, x0, x, dc_ns_discrete_t(call->ns, k), err);
}

/* ---- the run ---------------------------------------------------------------------------------- */

int dc_sampler_run(const dc_noise_schedule *ns, const dc_sampler_options *opt,
                   dc_x0_model_fn model, void *user, const float *x_T, float *out, int B,
                   size_t n, float *work, size_t work_floats, dc_sampler_stats *stats,
                   dc_error *err)
{
    if (stats) {
        stats->model_calls = 0;
        stats->steps = 0;
    }
    if (!model || !out || B < 1 || n < 1)
        return dc_fail(err, DC_ERR_ARG, "sampler: need a model, an output and B, n >= 1");
    int planned = 0;
    int rc = dc_sampler_planned_calls(ns, opt, &planned, err);
    if (rc)
        return rc;
    if ((uint64_t)n >= ((uint64_t)1 << 34))
        return dc_fail(err, DC_ERR_ARG, "sampler: %zu values per sample exceed 2^34", n);
    const size_t need = dc_sampler_workspace_floats(opt, B, n);
    dc_backend *be = opt->backend;
    float *own = NULL;
    if (!work) {
        own = be ? dc_alloc_floats(be, need) : malloc(need * sizeof *own);
        if (!own)
            return dc_fail(err, DC_ERR_NOMEM, "sampler: out of %s memory for %zu floats of workspace",
                           be ? dc_backend_memory_name(be) : "host", need);
        work = own;
    } else if (work_floats < need) {
        return dc_fail(err, DC_ERR_ARG, "sampler: workspace of %zu floats, need %zu", work_floats, need);
    }
    const size_t slot_floats = need - n - (size_t)B;
    /* the model's time input is a host array; on a backend the workspace may not be host memory */
    float tin_local[64], *tin = work + slot_floats, *tin_own = NULL;
    if (be) {
        tin = B <= 64 ? tin_local : (tin_own = malloc((size_t)B * sizeof *tin_own));
        if (!tin) {
            if (own)
                be->release(be, own);
            return dc_fail(err, DC_ERR_NOMEM, "sampler: out of memory");
        }
    }

    dc_sampler_call call;
    call.ns = ns;
    call.opt = opt;
    call.model = model;
    call.user = user;
    call.B = B;
    call.n = n;
    call.tin = tin;
    call.scratch = work + slot_floats + B;
    call.calls = 0;
    call.planned = planned;
    call.emulate_wrapper = ns->precision == DC_NS_FLOAT32 && opt->kind == DC_SAMPLER_DPM_SOLVER_PP &&
                           opt->model_output == DC_TARGET_X0;
    call.be = be;

    if (x_T) {
        sv_copy(&call, out, x_T, (size_t)B * n);
    } else {
        for (int b = 0; b < B && rc == DC_OK; b++)
            rc = sv_fill_normal(&call, out + (size_t)b * n, n, DC_PHILOX_STREAM_INIT, opt->tile_id + (uint32_t)b,
                                0, err);
    }

    if (rc == DC_OK && opt->progress && !opt->progress(0.0, "diffusion sampling", opt->progress_arg))
        rc = dc_fail(err, DC_ERR_CANCELLED, "sampling cancelled before the first model call");
    if (rc == DC_OK) {
        switch (opt->kind) {
        case DC_SAMPLER_DPM_SOLVER_PP:
            rc = dc_dpm_solver_sample(&call, out, work, err);
            break;
        case DC_SAMPLER_DDIM:
            rc = dc_ddim_sample(&call, out, work, err);
            break;
        case DC_SAMPLER_DDPM:
            rc = dc_ddpm_sample(&call, out, work, err);
            break;
        }
    }
    if (stats) {
        stats->model_calls = call.calls;
        stats->steps = opt->kind == DC_SAMPLER_DPM_SOLVER_PP ? opt->steps : planned;
    }
    if (own) {
        if (be)
            be->release(be, own);
        else
            free(own);
    }
    free(tin_own);
    return rc;
}

int dc_sampler_step_noise(const dc_sampler_call *call, float *noise, uint32_t step, dc_error *err)
{
    const dc_sampler_options *opt = call->opt;
    int rc = DC_OK;
    for (int b = 0; b < call->B && rc == DC_OK; b++)
        rc = sv_fill_normal(call, noise + (size_t)b * call->n, call->n, DC_PHILOX_STREAM_SAMPLER,
                            opt->tile_id + (uint32_t)b, step, err);
    return rc;
}
