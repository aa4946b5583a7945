/* diffcr — diffusion samplers: DPM-Solver++ (DiffCR's), DDIM and DDPM ancestral.
 *
 * The samplers run on float arrays laid out batch-major [B][n] (n = C*H*W values per sample,
 * any layout inside a sample: only dynamic thresholding looks across a sample, and it treats the n
 * values as one set): host arrays, or the memory of a backend (options.backend), in which case
 * every vector pass runs there through the op table (a GPU sampler moves nothing to the host). The network is a callback that predicts x0 (or eps / v, see model_output)
 * for a batch at one time input. Everything is allocated before the step loop: either the caller
 * passes a workspace of dc_sampler_workspace_floats() floats, or dc_sampler_run allocates that
 * much once.
 *
 * DiffCR's configuration (DIFFCR.md §4, the defaults of dc_sampler_options_default()):
 * DPM-Solver++ (data prediction), multistep, order 2, 20 steps, time_uniform, dynamic
 * thresholding (ratio 0.995, max 1.0), denoise_to_zero: 21 model calls. With a DC_NS_FLOAT32
 * schedule every scalar is rounded as in the official float32 run, and the x0 -> eps -> x0 round
 * trip of DPM-Solver's model wrapper is reproduced, so the published samples are matched to float
 * round-off (DIFFCR.md §4.4 test vectors).
 *
 * Time input (DIFFCR.md §4.3, "Time-input mismatch"): what the network receives, per option:
 *   DC_TIME_INPUT_DPM    1000 * (t - 1/N')   (what the published code feeds; needed for its weights)
 *   DC_TIME_INPUT_GAMMA  alpha-bar(t) = exp(2 log alpha(t))   (what DiffCR trains on)
 * DDIM and DDPM step over discrete indices k of the same N'-step table (respaced); index k is at
 * DPM time t_k = (k+1)/N', so it gets 1000*k/N' (DPM) or alpha-bar_k = exp(2 la[k]) (GAMMA): the
 * same definition evaluated at the knot.
 *
 * Noise: the initial x_T is the caller's, or standard normal from Philox with key (seed) and
 * counter (element group, step 0, tile_id + b, DC_PHILOX_STREAM_INIT) for sample b; DDIM (eta > 0)
 * and DDPM draw step j's noise with (step j, tile_id + b, DC_PHILOX_STREAM_SAMPLER). A tile's
 * result thus depends only on (seed, its tile id), not on batching, order or thread count. */
#ifndef DIFFCR_SAMPLER_H
#define DIFFCR_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/error.h"
#include "diffcr/schedule.h"

struct dc_backend;

#ifdef __cplusplus
extern "C" {
#endif

/* DC_ERR_CANCELLED (error.h) is returned when the progress callback asks to stop. */

/* Predict x0 for x_t at time input tin[b] (already converted by the chosen time-input convention).
 * x0 and x are [B][n] host arrays. Return DC_OK or an error status (then the sampler stops and
 * returns it). */
typedef int (*dc_x0_model_fn)(void *user, float *x0, const float *x, const float *tin, int B,
                              dc_error *err);

/* GDAL's progress shape: return 0 to cancel. */
typedef int (*dc_progress_fn)(double complete, const char *msg, void *arg);

typedef enum dc_sampler_kind {
    DC_SAMPLER_DPM_SOLVER_PP = 0, /* "dpm++" */
    DC_SAMPLER_DDIM,              /* "ddim" */
    DC_SAMPLER_DDPM               /* "ddpm" */
} dc_sampler_kind;

typedef enum dc_dpm_method {
    DC_DPM_MULTISTEP = 0, /* "multistep": one model call per step */
    DC_DPM_SINGLESTEP     /* "singlestep": DPM-Solver-fast, orders mixed to use `steps` calls */
} dc_dpm_method;

typedef enum dc_skip_type {
    DC_SKIP_TIME_UNIFORM = 0, /* "time_uniform" */
    DC_SKIP_LOGSNR,           /* "logSNR" */
    DC_SKIP_TIME_QUADRATIC    /* "time_quadratic" */
} dc_skip_type;

typedef enum dc_time_input {
    DC_TIME_INPUT_DPM = 0, /* "dpm_tinput" */
    DC_TIME_INPUT_GAMMA    /* "gamma" */
} dc_time_input;

typedef enum dc_x0_correction {
    DC_X0_NONE = 0, /* "none" */
    DC_X0_CLIP,     /* "clip": clamp to [-threshold_max, threshold_max] (DDPM's clip_denoised) */
    DC_X0_DYNAMIC   /* "dynamic": Imagen's dynamic thresholding (DPM-Solver's) */
} dc_x0_correction;

typedef struct dc_sampler_options {
    dc_sampler_kind kind;
    int steps;                  /* DPM-Solver: solver steps; DDIM/DDPM: used when respacing is NULL */
    int order;                  /* DPM-Solver order, 1..3 */
    dc_dpm_method method;
    dc_skip_type skip;
    int lower_order_final;      /* multistep: lower orders at the end when steps < 10 */
    int denoise_to_zero;        /* DPM-Solver: one more x0 call at t_0 (the returned sample) */
    dc_x0_correction x0_correction;
    double threshold_ratio;     /* dynamic thresholding quantile, 0..1 */
    double threshold_max;       /* dynamic: lower bound of s; clip: the clip value */
    dc_time_input time_input;
    dc_target_kind model_output; /* what the callback returns: x0 (DiffCR), eps or v */
    double t_start;             /* DPM-Solver start time; 0 = T = 1 */
    double t_end;               /* DPM-Solver end time; 0 = 1/N' */
    double eta;                 /* DDIM: 0 = deterministic */
    const char *respacing;      /* DDIM/DDPM: improved-diffusion section counts ("10,10",
                                   "ddim25"); NULL = one section of `steps` steps */
    uint64_t seed;              /* Philox key */
    uint32_t tile_id;           /* tile id of sample 0; sample b uses tile_id + b */
    dc_progress_fn progress;    /* may be NULL */
    void *progress_arg;
    struct dc_backend *backend; /* NULL: x_T, out, work and the model's x/x0 are host arrays;
                                   else that backend's memory (tin stays on the host) */
} dc_sampler_options;

/* DiffCR's sampler: DPM-Solver++, multistep, order 2, 20 steps, time_uniform, lower_order_final,
 * denoise_to_zero, dynamic thresholding 0.995 / 1.0, time input dpm_tinput, x0 model, seed 0,
 * tile 0, no progress. */
dc_sampler_options dc_sampler_options_default(void);

/* Name <-> enum ("dpm++"/"ddim"/"ddpm", "multistep"/"singlestep", "time_uniform"/"logSNR"/
 * "time_quadratic", "dpm_tinput"/"gamma", "none"/"clip"/"dynamic"). */
int dc_sampler_kind_parse(const char *name, dc_sampler_kind *out, dc_error *err);
int dc_dpm_method_parse(const char *name, dc_dpm_method *out, dc_error *err);
int dc_skip_type_parse(const char *name, dc_skip_type *out, dc_error *err);
int dc_time_input_parse(const char *name, dc_time_input *out, dc_error *err);
int dc_x0_correction_parse(const char *name, dc_x0_correction *out, dc_error *err);
const char *dc_sampler_kind_name(dc_sampler_kind v);
const char *dc_time_input_name(dc_time_input v);

/* Check the options against the schedule (orders, steps, respacing string, ranges). */
int dc_sampler_validate(const dc_noise_schedule *ns, const dc_sampler_options *opt, dc_error *err);

/* Number of model calls dc_sampler_run will make (21 for DiffCR's default). */
int dc_sampler_planned_calls(const dc_noise_schedule *ns, const dc_sampler_options *opt,
                             int *calls, dc_error *err);

/* Floats of workspace dc_sampler_run needs for B samples of n values. */
size_t dc_sampler_workspace_floats(const dc_sampler_options *opt, int B, size_t n);

typedef struct dc_sampler_stats {
    int model_calls; /* calls made */
    int steps;       /* solver / chain steps taken */
} dc_sampler_stats;

/* Sample out[B][n]. x_T: the initial noise [B][n], or NULL to draw it from Philox (seed, tile_id);
 * x_T may equal out. work: dc_sampler_workspace_floats() floats, or NULL to allocate them here
 * (once, before the loop). stats may be NULL. Returns DC_OK, DC_ERR_CANCELLED, the model's
 * status, or an argument/memory error. */
int dc_sampler_run(const dc_noise_schedule *ns, const dc_sampler_options *opt,
                   dc_x0_model_fn model, void *user, const float *x_T, float *out, int B,
                   size_t n, float *work, size_t work_floats, dc_sampler_stats *stats,
                   dc_error *err);

/* ---------------------------------------------------------------------------------------------
 * Building blocks the samplers share (public for tests and for new samplers). */

/* One model call as the samplers make it: time input, call, conversion to x0, x0 correction,
 * count and progress. Set up by dc_sampler_run; the per-sampler functions below take it. */
typedef struct dc_sampler_call {
    const dc_noise_schedule *ns;
    const dc_sampler_options *opt;
    dc_x0_model_fn model;
    void *user;
    int B;
    size_t n;
    float *tin;       /* [B] */
    float *scratch;   /* [n], for the thresholding quantile */
    int calls;        /* made so far */
    int planned;      /* for progress */
    int emulate_wrapper; /* reproduce DPM-Solver's x0 -> eps -> x0 float32 round trip */
    struct dc_backend *be; /* the vectors' backend, NULL for host arrays */
} dc_sampler_call;

/* x0[B][n] = corrected x0 prediction for x[B][n] at DPM time t. */
int dc_sampler_eval_x0(dc_sampler_call *call, float *x0, const float *x, double t, dc_error *err);
/* Same, at discrete step k of the table (DDIM/DDPM). */
int dc_sampler_eval_x0_discrete(dc_sampler_call *call, float *x0, const float *x, int k,
                                dc_error *err);

/* The network's time input for DPM time t (see the top of this file). */
double dc_sampler_time_input(const dc_noise_schedule *ns, dc_time_input kind, double t);

/* DPM-Solver's get_time_steps: N+1 times from t_T down to t_0 (ts[0] = t_T). */
int dc_dpm_time_steps(const dc_noise_schedule *ns, dc_skip_type skip, double t_T, double t_0,
                      int N, double *ts, dc_error *err);

/* The samplers, on x[B][n] in place (x holds x_T on entry, the sample on return).
 * work: see dc_sampler_workspace_floats (minus the call's tin and scratch). */
/* The stochastic samplers' noise for chain step `step`: noise[B][n] from Philox, sample b keyed by
 * (seed, tile_id + b, step), so a tile's noise does not depend on batching. */
int dc_sampler_step_noise(const dc_sampler_call *call, float *noise, uint32_t step, dc_error *err);
int dc_dpm_solver_sample(dc_sampler_call *call, float *x, float *work, dc_error *err);
int dc_ddim_sample(dc_sampler_call *call, float *x, float *work, dc_error *err);
int dc_ddpm_sample(dc_sampler_call *call, float *x, float *work, dc_error *err);

/* ---------------------------------------------------------------------------------------------
 * The samplers' vector passes (the CPU references; the op table has them for every backend).
 * f32: float32 arithmetic in the order of the Python expressions (torch); else double, rounded
 * once. Each element is computed on its own, so results do not depend on threading. */

/* A DPM-Solver++ update, by kind:
 *   1: dst = a x - b m0
 *   2: dst = (a x - b m0) + c (d (m1 - m2))
 *   3: D10 = d (m0 - m1), D11 = e (m1 - m2), D1 = D10 + f (D10 - D11), D2 = g (D10 - D11),
 *      dst = ((a x - b m0) + p D1) - q D2          (multistep third order)
 * dst may alias x. */
typedef struct dc_dpm_coeffs {
    int kind;
    double a, b, c, d, e, f, g, p, q;
} dc_dpm_coeffs;
void dc_dpm_update(float *dst, const float *x, const float *m0, const float *m1, const float *m2,
                   const dc_dpm_coeffs *k, size_t N, int f32);
/* DPM-Solver's model wrapper round trip in float32: noise = (x - a x0)/s; x0 = (x - s noise)/a. */
void dc_x0_roundtrip(float *x0, const float *x, float a, float s, size_t N);
/* x = clamp(x, -m, m). */
void dc_clamp_abs(float *x, float m, size_t N);
/* DDIM: eps = (x - sa x0)/s1a; x = sap x0 + c_eps eps (+ sigma noise when noise != NULL), in double. */
void dc_ddim_update(float *x, const float *x0, const float *noise, double sa, double s1a, double sap,
                    double c_eps, double sigma, size_t N);
/* DDPM posterior step: x = coef1 x0 + coef2 x (+ sd noise when noise != NULL), in double. */
void dc_ddpm_update(float *x, const float *x0, const float *noise, double coef1, double coef2,
                    double sd, size_t N);

/* improved-diffusion's space_timesteps(num_timesteps, section_counts): the kept steps, sorted
 * ascending, into steps_out (room for max_steps); their number into *count. Section counts are
 * comma-separated integers ("10,10": 10 steps from each half) or "ddimN" (the integer stride of
 * the DDIM paper giving exactly N steps). */
int dc_space_timesteps(int num_timesteps, const char *section_counts, int *steps_out,
                       int max_steps, int *count, dc_error *err);

/* The q-quantile of v[0..n) with torch.quantile's linear interpolation (rank q*(n-1)), by
 * selection (no sort); v is reordered. float32_rank: compute the rank in float32 as torch does
 * for a float32 tensor. NaN counts as +inf. n >= 1. */
float dc_quantile_select(float *v, size_t n, double q, int float32_rank);

/* Dynamic thresholding per sample: s_b = max(quantile_ratio(|x0_b|), max_val);
 * x0_b = clamp(x0_b, -s_b, s_b) / s_b. scratch: n floats. s_out[B] may be NULL. */
void dc_dynamic_threshold(float *x0, int B, size_t n, double ratio, double max_val,
                          int float32_rank, float *scratch, float *s_out);

#ifdef __cplusplus
}
#endif
#endif
