/* diffcr — the CUDA kernels behind the op table (core/cuda, built into libdiffcr_cuda.so).
 *
 * Each function has the signature of its CPU reference in ops.h / optim.h / philox.h /
 * sampler.h with a cuda_ prefix, on DEVICE pointers. Semantics are the reference's exactly
 * (backward WRITES gradients, NULL gradient pointers are skipped, same argmax tie rule, ...);
 * results agree with the CPU to float rounding (reductions may sum in another order).
 *
 * Every kernel is queued on cudaStreamPerThread (the calling host thread's stream, which the
 * backend also gives cuBLAS and cuDNN), so work from one thread runs in order and functions
 * return without waiting. Launch errors surface at the backend's synchronize. Nothing here
 * allocates device memory: scratch comes from the caller (cuda_scratch). */
#ifndef DIFFCR_CUDA_OPS_H
#define DIFFCR_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/optim.h"
#include "diffcr/sampler.h"
#include "diffcr/schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-thread device scratch for reductions (grad norm partials, SCA pooling partials, quantile
 * histograms): a buffer of at least `bytes`, owned by the backend, valid until the next call from
 * this thread. Returns NULL on allocation failure (the kernel then does nothing; the backend
 * reports the failure at synchronize). Implemented in backend_cuda.cu. */
void *cuda_scratch(size_t bytes);
/* Record an error found by a kernel launcher (e.g. scratch allocation failed) so the next
 * synchronize reports it. */
void cuda_note_error(const char *what);

/* --- network ops (ops.h) --- */
void cuda_layernorm2d_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, size_t P, int C);
void cuda_layernorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *mean, const float *rstd,
                               const float *weight, size_t P, int C);
void cuda_simplegate_forward(float *out, const float *inp, size_t P, int C);
void cuda_simplegate_backward(float *dinp, const float *dout, const float *inp, size_t P, int C);
void cuda_sca_forward(float *out, float *pooled, float *scale, int *argmax, const float *x,
                      const float *w_avg, const float *b_avg, const float *w_max, const float *b_max,
                      int N, size_t HW, int C);
void cuda_sca_backward(float *dx, float *dw_avg, float *db_avg, float *dw_max, float *db_max,
                       const float *dout, const float *x, const float *pooled, const float *scale,
                       const int *argmax, const float *w_avg, const float *w_max, int N, size_t HW,
                       int C);
void cuda_residual_forward(float *out, const float *inp, const float *x, const float *scale,
                           const float *tbias, int N, size_t HW, int C);
void cuda_residual_backward(float *dx, float *dscale, float *dtbias, const float *dout,
                            const float *x, const float *scale, int N, size_t HW, int C);
void cuda_condsum_add_forward(float *x, const float *cond, int B, int ndates, size_t HWC);
void cuda_condsum_add_backward(float *dcond, const float *dx, int B, int ndates, size_t HWC);
void cuda_condsum_forward(float *out, const float *cond, int B, int ndates, size_t HWC);
void cuda_add_inplace(float *y, const float *x, size_t n);
void cuda_scale_inplace(float *x, float s, size_t n);
void cuda_pixelshuffle2_forward(float *out, const float *inp, int N, int H, int W, int C);
void cuda_pixelshuffle2_backward(float *dinp, const float *dout, int N, int H, int W, int C);
void cuda_silu_forward(float *out, const float *inp, size_t n);
void cuda_silu_backward(float *dinp, const float *dout, const float *inp, size_t n);
void cuda_gamma_embedding_forward(float *out, const float *g, int B, int dim);
void cuda_pad_nhwc(float *out, const float *inp, int N, int H, int W, int C, int PH, int PW);
void cuda_crop_nhwc(float *out, const float *inp, int N, int PH, int PW, int C, int H, int W);
void cuda_slice_pad_nhwc(float *out, const float *inp, int N, int H, int W, int Cin, int c0,
                         int Cout, int PH, int PW);
/* NAFNet's depthwise 3x3 (stride 1, pad 1, groups = C), NHWC, weights [C][1][3][3], bias [C] or
 * NULL (conv_depthwise.cu); in backward dinp / dw may be NULL (the bias gradient is the caller's). */
/* float32 <-> bfloat16 (raw uint16 bits) copies, for bf16 convolutions (convert_bf16.cu):
 * narrowing rounds to nearest, ties to even, NaN stays NaN; widening is exact. */
void cuda_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void cuda_bf16_to_f32(float *dst, const uint16_t *src, size_t n);

void cuda_dwconv3_forward(float *out, const float *inp, const float *w, const float *bias, int N, int H, int W,
                          int C);
void cuda_dwconv3_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                           int N, int H, int W, int C);

/* Linear's bias and its gradient (the GEMMs are cuBLAS calls in backend_cuda.cu):
 * out[b, o] += bias[o];  dbias[o] = sum over b of dout[b, o]. */
void cuda_add_bias_rows(float *out, const float *bias, int B, int OC);
void cuda_bias_grad_rows(float *dbias, const float *dout, int B, int OC);

/* --- optimiser (optim.h) --- */
void cuda_adam_update(float *params, float *m, float *v, const float *grads, size_t n,
                      const dc_adam_config *cfg, long long t);
void cuda_ema_update(float *ema, const float *params, size_t n, double decay);
/* sqrt of the sum of squares in double; waits for the result (it returns a host value). */
double cuda_grad_norm(const float *grads, size_t n);

/* --- sampler helpers (philox.h, sampler.h) --- */
/* Same values as dc_philox_fill_normal (bit for bit: the transform is IEEE double +,-,*,/,sqrt
 * only; compiled without FMA contraction). */
int cuda_philox_fill_normal(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t tile,
                            uint32_t step);
/* Same as dc_dynamic_threshold (torch.quantile's linear interpolation of |x0| per sample, rank in
 * float32 when float32_rank). s_out: B floats of HOST memory, may be NULL. */
void cuda_dynamic_threshold(float *x0, int B, size_t n, double ratio, double max_val,
                            int float32_rank, float *s_out);

/* The samplers' vector passes (sampler.h; sampler_kernels.cu): bit-identical to the CPU. */
void cuda_dpm_update(float *dst, const float *x, const float *m0, const float *m1, const float *m2,
                     const dc_dpm_coeffs *k, size_t N, int f32);
void cuda_x0_roundtrip(float *x0, const float *x, float a, float s, size_t N);
void cuda_prediction_to_x0(float *x0, dc_target_kind kind, const float *pred, const float *x_t,
                           size_t N, double alpha, double sigma);
void cuda_clamp_abs(float *x, float m, size_t N);
void cuda_ddim_update(float *x, const float *x0, const float *noise, double sa, double s1a,
                      double sap, double c_eps, double sigma, size_t N);
void cuda_ddpm_update(float *x, const float *x0, const float *noise, double coef1, double coef2,
                      double sd, size_t N);

#ifdef __cplusplus
}
#endif
#endif
