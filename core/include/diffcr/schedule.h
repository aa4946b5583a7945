/* diffcr — diffusion schedules: beta schedules, the discrete VP noise schedule, training noise.
 *
 * Three pieces, all host-side scalar maths (DIFFCR.md §3 and §4.1):
 *
 *  1. Beta schedules with DiffCR/Palette's `make_beta_schedule` names and arguments, in double.
 *     alpha-bar ("gammas" in DiffCR) = cumprod(1 - beta).
 *  2. The discrete VP noise schedule of DPM-Solver (`NoiseScheduleVP('discrete')`): half
 *     log-alpha la[k] = 0.5 * cumsum(log(1 - beta)), truncated where the half log-SNR drops below
 *     -5.1, placed at t_k = (k+1)/N' and linearly interpolated in t. All samplers share it.
 *  3. Training maths: DiffCR's continuous noise level (gamma uniform between consecutive
 *     alpha-bar values), the noisy input, and the x0 / epsilon / v targets with their conversion
 *     back to x0.
 *
 * Precision. The official sampler keeps the schedule table and every alpha/sigma/lambda scalar in
 * float32 (DIFFCR.md §3.1 "Likewise ..."). DC_NS_FLOAT32 reproduces that: each scalar operation
 * is rounded to float as torch does, so DiffCR's published samples are matched to float
 * round-off. DC_NS_DOUBLE does the same maths in double with cancellation-free forms (expm1),
 * which is what convergence studies want. The values returned are doubles either way. */
#ifndef DIFFCR_SCHEDULE_H
#define DIFFCR_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Beta schedules */

typedef enum dc_beta_kind {
    DC_BETA_LINEAR = 0, /* linspace(linear_start, linear_end, n) */
    DC_BETA_WARMUP10,   /* linear_end, with a linear ramp over the first 10 % */
    DC_BETA_WARMUP50,   /* linear_end, with a linear ramp over the first 50 % */
    DC_BETA_CONST,      /* linear_end */
    DC_BETA_JSD,        /* 1/n, 1/(n-1), ..., 1 */
    DC_BETA_COSINE,     /* Nichol & Dhariwal, offset cosine_s, betas capped at 0.999 */
    DC_BETA_SIGMOID,    /* DiffCR's (start -3, end 3, tau 1; ignores linear_start/end) */
    DC_BETA_QUAD        /* linspace(sqrt(linear_start), sqrt(linear_end), n)^2 */
} dc_beta_kind;

/* DiffCR's default arguments of make_beta_schedule. */
#define DC_BETA_DEFAULT_LINEAR_START 1e-6
#define DC_BETA_DEFAULT_LINEAR_END 1e-2
#define DC_BETA_DEFAULT_COSINE_S 8e-3

/* "linear", "warmup10", "warmup50", "const", "jsd", "cosine", "sigmoid", "quad". */
int dc_beta_kind_parse(const char *name, dc_beta_kind *kind, dc_error *err);
const char *dc_beta_kind_name(dc_beta_kind kind);

/* betas[0..n) for the named schedule (n >= 2). Values match DiffCR's numpy/torch float64
 * computation, including the sigmoid schedule's float32 constants (DIFFCR.md §3.1). */
int dc_make_beta_schedule(double *betas, dc_beta_kind kind, int n, double linear_start,
                          double linear_end, double cosine_s, dc_error *err);

/* gammas[k] = prod_{i<=k} (1 - betas[i]) (DiffCR's "gammas", DDPM's alpha-bar), in double.
 * DiffCR keeps them as float32 buffers: round with (float) where that matters. */
void dc_alphas_cumprod(double *gammas, const double *betas, int n);

/* ---------------------------------------------------------------------------------------------
 * The discrete VP noise schedule (DIFFCR.md §4.1) */

typedef enum dc_ns_precision {
    DC_NS_FLOAT32 = 0, /* the official float32 arithmetic (default: matches DiffCR's samples) */
    DC_NS_DOUBLE = 1   /* double, cancellation-free */
} dc_ns_precision;

/* Half log-SNR below which the table is cut (DPM-Solver's numerical_clip_alpha). */
#define DC_NS_CLIPPED_LAMBDA (-5.1)

typedef struct dc_noise_schedule {
    int n_betas;               /* N: length of the beta array given to init */
    int total_n;               /* N' = N - (entries with lambda < -5.1 dropped from the end) */
    dc_ns_precision precision;
    double *log_alpha;         /* [total_n] la[k] = 0.5 * sum_{i<=k} log(1 - beta_i) */
    double *t;                 /* [total_n] t_k = (k+1)/N' (float32 linspace values in FLOAT32) */
} dc_noise_schedule;

/* Build from betas[0..n). Allocates two arrays (free with dc_noise_schedule_free). */
int dc_noise_schedule_init(dc_noise_schedule *ns, const double *betas, int n,
                           dc_ns_precision precision, dc_error *err);
void dc_noise_schedule_free(dc_noise_schedule *ns);

/* The schedule's rounding: (double)(float)v in DC_NS_FLOAT32, v itself in DC_NS_DOUBLE. */
double dc_ns_round(const dc_noise_schedule *ns, double v);

/* linspace(start, end, steps) in the schedule's arithmetic: in DC_NS_FLOAT32 the exact float32
 * values torch.linspace gives (DPM-Solver's t-table and time grids); plain double otherwise. */
void dc_ns_linspace(const dc_noise_schedule *ns, double *out, double start, double end, int steps);

/* Time range of the sampler: T = 1 and t_0 = 1/N' (as the rounded scalar DPM-Solver uses). */
double dc_ns_t_max(const dc_noise_schedule *ns);
double dc_ns_t_min(const dc_noise_schedule *ns);

/* Continuous-time functions of t (any real t: outside [t_0, 1] the first/last segment of the
 * piecewise-linear log-alpha is extended, as DPM-Solver's interpolate_fn does). */
double dc_ns_log_alpha(const dc_noise_schedule *ns, double t);   /* log alpha_t */
double dc_ns_alpha(const dc_noise_schedule *ns, double t);       /* alpha_t = sqrt(alpha-bar) */
double dc_ns_sigma(const dc_noise_schedule *ns, double t);       /* sqrt(1 - alpha_t^2) */
double dc_ns_lambda(const dc_noise_schedule *ns, double t);      /* log alpha_t - log sigma_t */
double dc_ns_alpha_bar(const dc_noise_schedule *ns, double t);   /* exp(2 log alpha_t) */
/* The t with lambda(t) = lambda (piecewise-linear inverse through log alpha). */
double dc_ns_inverse_lambda(const dc_noise_schedule *ns, double lambda);

/* Discrete step k in [0, N'): its DPM time t_k and its alpha-bar exp(2 la[k]). */
double dc_ns_discrete_t(const dc_noise_schedule *ns, int k);
double dc_ns_discrete_alpha_bar(const dc_noise_schedule *ns, int k);

/* ---------------------------------------------------------------------------------------------
 * Training noise and targets (DIFFCR.md §3.2) */

typedef enum dc_target_kind {
    DC_TARGET_X0 = 0, /* the network predicts x0 (DiffCR) */
    DC_TARGET_EPS,    /* the network predicts the noise epsilon */
    DC_TARGET_V       /* v = alpha * eps - sigma * x0 (Salimans & Ho) */
} dc_target_kind;

/* "x0", "eps", "v". */
int dc_target_kind_parse(const char *name, dc_target_kind *kind, dc_error *err);
const char *dc_target_kind_name(dc_target_kind kind);

/* DiffCR's noise level from two random words: t = 1 + floor(r_t * (N-1) / 2^32), uniform on
 * {1..N-1} (torch.randint(1, N)), then gamma = (g[t] - g[t-1]) * u + g[t-1] in float32 with
 * u = (r_u >> 8) / 2^24 in [0, 1) (torch.rand's float construction). gamma lies between g[t] and
 * g[t-1] up to one float rounding. gammas are DiffCR's float32 buffer [N]. *t_out may be NULL. */
float dc_train_noise_level(const float *gammas, int n, uint32_t r_t, uint32_t r_u, int *t_out);

/* The regression target for a noisy sample x_t = alpha * x0 + sigma * eps:
 * x0 -> x0, eps -> eps, v -> alpha * eps - sigma * x0. */
void dc_train_target(float *target, dc_target_kind kind, const float *x0, const float *eps,
                     size_t n, double alpha, double sigma);

/* Convert a network output of the given kind at (alpha, sigma) to x0 (in place allowed:
 * x0 may equal pred). x0: copy; eps: (x_t - sigma * pred) / alpha; v: alpha * x_t - sigma * pred. */
void dc_prediction_to_x0(float *x0, dc_target_kind kind, const float *pred, const float *x_t,
                         size_t n, double alpha, double sigma);

/* One DiffCR training batch, with noise from Philox: sample b uses tile id first_tile + b and the
 * given step, stream DC_PHILOX_STREAM_TRAIN_LEVEL words 0 and 1 for (t, u) and stream
 * DC_PHILOX_STREAM_TRAIN_NOISE for epsilon. Writes x_t[B][n] = sqrt(gamma) x0 + sqrt(1-gamma)
 * eps, target[B][n] (may be NULL), gamma[B] (the network's time input when trained the DiffCR
 * way; may be NULL) and t[B] (may be NULL). The arithmetic is float32 like DiffCR's. */
int dc_train_make_batch(float *x_t, float *target, float *gamma, int *t, const float *x0, int B,
                        size_t n, const float *gammas, int n_gammas, dc_target_kind kind,
                        uint64_t seed, uint32_t step, uint32_t first_tile, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
