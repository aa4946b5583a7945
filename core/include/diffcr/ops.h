/* diffcr — the CPU operators of the DiffCR network, forward and backward.
 *
 * Conventions (all ops, all backends):
 *  - float32; activations channels-last (NHWC): element (n, y, x, c) of an N x H x W x C tensor is at
 *    ((n*H + y)*W + x)*C + c. "P" is the number of pixels N*H*W; "HW" is H*W per sample.
 *  - Weights keep PyTorch's layout and names (conv: [K][C/groups][kh][kw]; linear: [out][in]).
 *  - Backward functions WRITE (=) every gradient they produce, parameters and inputs alike; they never
 *    accumulate. A tensor that feeds two consumers gets its gradient summed by the caller.
 *    Gradient pointers documented as "may be NULL" are skipped when NULL.
 *  - Outputs never alias inputs unless the comment says so.
 *  - Loops are OpenMP-parallel and deterministic for a fixed thread count; reductions across pixels
 *    are done per thread in a fixed partition and combined in a fixed order.
 *
 * These are the readable references: the CUDA kernels have the same signatures (on device pointers)
 * and are tested against them. Convolutions are in conv.h (they have several implementations). */
#ifndef DIFFCR_OPS_H
#define DIFFCR_OPS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DC_LAYERNORM_EPS 1e-6f

/* LayerNorm2d: per pixel, normalise over the C channels (biased variance, eps 1e-6), then per-channel
 * affine. mean and rstd (P floats each) are saved for backward; both may be NULL (inference). */
void layernorm2d_forward(float *out, float *mean, float *rstd, const float *inp,
                         const float *weight, const float *bias, size_t P, int C);
/* dinp [P,C], dweight [C], dbias [C] (dweight/dbias may be NULL). */
void layernorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *mean, const float *rstd,
                          const float *weight, size_t P, int C);

/* SimpleGate: inp [P, 2C] -> out [P, C], out[p,c] = inp[p,c] * inp[p,C+c]. */
void simplegate_forward(float *out, const float *inp, size_t P, int C);
void simplegate_backward(float *dinp, const float *dout, const float *inp, size_t P, int C);

/* Split simplified channel attention on x [N, HW, C] (C even, h = C/2), no sigmoid:
 *   pooled[n, 0:h] = mean over HW of x[n, :, 0:h];  pooled[n, h:C] = max over HW of x[n, :, h:C]
 *   scale[n, 0:h]  = w_avg . pooled[n, 0:h] + b_avg;  scale[n, h:C] = w_max . pooled[n, h:C] + b_max
 *   out[n, p, c]   = x[n, p, c] * scale[n, c]
 * w_avg, w_max: [h][h] (PyTorch 1x1 conv [out][in][1][1]); b_*: [h].
 * pooled, scale: [N, C] floats; argmax: [N, h] ints, index in 0..HW-1 of the first maximum (PyTorch's
 * choice); pooled/scale/argmax are saved for backward and may not be NULL. out may not alias x. */
void sca_forward(float *out, float *pooled, float *scale, int *argmax, const float *x,
                 const float *w_avg, const float *b_avg, const float *w_max, const float *b_max,
                 int N, size_t HW, int C);
void sca_backward(float *dx, float *dw_avg, float *db_avg, float *dw_max, float *db_max,
                  const float *dout, const float *x, const float *pooled, const float *scale,
                  const int *argmax, const float *w_avg, const float *w_max, int N, size_t HW, int C);

/* Residual with per-channel scale and optional per-sample time bias (NAFBlock's beta/gamma lines):
 *   out[n,p,c] = inp[n,p,c] + scale[c] * x[n,p,c] + (tbias ? tbias[n*C + c] : 0)
 * out may alias inp. */
void residual_forward(float *out, const float *inp, const float *x, const float *scale,
                      const float *tbias, int N, size_t HW, int C);
/* The gradient w.r.t. inp is dout itself (the caller reuses it). dx = dout * scale;
 * dscale[c] = sum over n,p of dout*x; dtbias[n*C+c] = sum over p of dout (dtbias may be NULL). */
void residual_backward(float *dx, float *dscale, float *dtbias, const float *dout, const float *x,
                       const float *scale, int N, size_t HW, int C);

/* Condition fusion: x [B, HWC] += sum over d of cond[(n*ndates + d), HWC] (dates folded sample-major
 * into the batch, as DiffCR's stack(dim=1).view(b*n)). Backward is a broadcast copy:
 * dcond[n*ndates + d] = dx[n]. */
void condsum_add_forward(float *x, const float *cond, int B, int ndates, size_t HWC);
void condsum_add_backward(float *dcond, const float *dx, int B, int ndates, size_t HWC);

/* Condition sum alone (for the condition cache): out[n] = sum over d of cond[n*ndates + d]. */
void condsum_forward(float *out, const float *cond, int B, int ndates, size_t HWC);

/* y += x elementwise (skip connections). */
void add_inplace(float *y, const float *x, size_t n);

/* PixelShuffle(2) in NHWC: inp [N, H, W, 4C] -> out [N, 2H, 2W, C],
 * out[n, 2y+i, 2x+j, c] = inp[n, y, x, 4c + 2i + j]. */
void pixelshuffle2_forward(float *out, const float *inp, int N, int H, int W, int C);
void pixelshuffle2_backward(float *dinp, const float *dout, int N, int H, int W, int C);

/* Linear: out [B, OC] = inp [B, IC] . weight[OC][IC]^T + bias (bias may be NULL). Uses BLAS. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int B, int IC, int OC);
/* dinp [B, IC] (may be NULL), dweight [OC][IC], dbias [OC] (may be NULL). */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int B, int IC, int OC);

/* SiLU: out = x * sigmoid(x). out may alias inp in forward. */
void silu_forward(float *out, const float *inp, size_t n);
void silu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* DiffCR's gamma_embedding(g, dim, max_period=10000): k = 0..dim/2-1,
 * f_k = exp(-ln(10000) * k / (dim/2)) in float32, out[b] = [cos(g_b f_0..), sin(g_b f_0..)] (cos first);
 * an odd dim gets a trailing 0. No parameters, no backward (g is an input, not learned). */
void gamma_embedding_forward(float *out, const float *g, int B, int dim);

/* Mean squared error over n values, accumulated in double. Backward writes
 * dpred = dloss * 2 (pred - target) / n. */
double mse_forward(const float *pred, const float *target, size_t n);
void mse_backward(float *dpred, const float *pred, const float *target, size_t n, float dloss);

/* Zero-pad an NHWC image [N,H,W,C] to [N,PH,PW,C] on the right and bottom (PH >= H, PW >= W), and
 * crop back. Used to run any H x W through the UNet (which needs multiples of 16). */
void pad_nhwc(float *out, const float *inp, int N, int H, int W, int C, int PH, int PW);
void crop_nhwc(float *out, const float *inp, int N, int PH, int PW, int C, int H, int W);
/* Channel slice + zero pad: out [N,PH,PW,Cout], out[n,y,x,c] = inp[n,y,x,c0+c] (inp [N,H,W,Cin])
 * for y < H, x < W, else 0. One date's image out of the stacked condition; pad_nhwc is the
 * c0 = 0, Cin = Cout case. */
void slice_pad_nhwc(float *out, const float *inp, int N, int H, int W, int Cin, int c0, int Cout,
                    int PH, int PW);

/* x *= s (gradient clipping). */
void scale_inplace(float *x, float s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
