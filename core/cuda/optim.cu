/* diffcr — Adam/AdamW, EMA and the gradient norm over flat device buffers (cuda_ops.h; reference
 * core/src/optim.c).
 *
 * One step must equal the CPU's bit for bit: the scalars (bias corrections, step size, ...) are
 * computed on the host in double with the reference's expressions, and the per-element float
 * arithmetic is written with the round-to-nearest intrinsics (__fmul_rn, __fadd_rn, __fdiv_rn,
 * __fsqrt_rn) in the reference's order, which the compiler may never contract into FMAs or
 * replace by approximations, whatever the build flags.
 *
 * The norm is a sum over up to billions of squares in double: per-block partials (grid-stride,
 * warp shuffles, warps added in order) in scratch, then one block adds them in a fixed order.
 * The grid depends only on n, so the result is deterministic. */
#include <math.h>

#include "launch.cuh"

/* Host scalars of one Adam step, exactly as dc_adam_update computes them. */
typedef struct adam_scalars {
    float b1, b2, one_minus_b1, one_minus_b2, step_size, bc2_sqrt, eps, wd, decay_factor;
    int decoupled;
} adam_scalars;

__global__ void adam_kernel(float *params, float *m, float *v, const float *grads, size_t n,
                            adam_scalars k)
{
    DC_FOR(i, n)
    {
        float g = grads[i];
        float p = params[i];
        if (k.wd != 0.0f) {
            if (k.decoupled)
                p = __fmul_rn(p, k.decay_factor);
            else
                g = __fadd_rn(g, __fmul_rn(k.wd, p));
        }
        /* mi = b1 * m + (1 - b1) * g;  vi = b2 * v + ((1 - b2) * g) * g */
        const float mi = __fadd_rn(__fmul_rn(k.b1, m[i]), __fmul_rn(k.one_minus_b1, g));
        const float vi = __fadd_rn(__fmul_rn(k.b2, v[i]), __fmul_rn(__fmul_rn(k.one_minus_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        /* denom = sqrt(vi) / sqrt(bc2) + eps;  p - step_size * (mi / denom) */
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2_sqrt), k.eps);
        params[i] = __fsub_rn(p, __fmul_rn(k.step_size, __fdiv_rn(mi, denom)));
    }
}

void cuda_adam_update(float *params, float *m, float *v, const float *grads, size_t n,
                      const dc_adam_config *cfg, long long t)
{
    if (n == 0)
        return;
    adam_scalars k;
    k.b1 = (float)cfg->beta1;
    k.b2 = (float)cfg->beta2;
    k.one_minus_b1 = (float)(1.0 - cfg->beta1);
    k.one_minus_b2 = (float)(1.0 - cfg->beta2);
    const double bc1 = 1.0 - pow(cfg->beta1, (double)t);
    const double bc2 = 1.0 - pow(cfg->beta2, (double)t);
    k.step_size = (float)(cfg->lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = (float)cfg->eps;
    k.wd = (float)cfg->weight_decay;
    /* volatile: the product is rounded before the subtraction, as in optim.c (no host FMA) */
    volatile double lr_wd = cfg->lr * cfg->weight_decay;
    k.decay_factor = (float)(1.0 - lr_wd);
    k.decoupled = cfg->decoupled;
    adam_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(params, m, v, grads, n, k);
}

__global__ void ema_kernel(float *ema, const float *params, size_t n, float d, float one_minus)
{
    DC_FOR(i, n) { ema[i] = __fadd_rn(__fmul_rn(d, ema[i]), __fmul_rn(one_minus, params[i])); }
}

void cuda_ema_update(float *ema, const float *params, size_t n, double decay)
{
    if (n == 0)
        return;
    const float d = (float)decay, one_minus = (float)(1.0 - decay);
    ema_kernel<<<dc_blocks(n), DC_BLOCK, 0, DC_STREAM>>>(ema, params, n, d, one_minus);
}

/* ---- gradient norm --------------------------------------------------------------------------- */

enum { NORM_BLOCK = 256, NORM_MAX_BLOCKS = 1024 };

/* Sum of a double over a block of NORM_BLOCK threads: warps by shuffles, then the warps in order.
 * Valid in thread 0. */
static __device__ double block_sum_d(double v)
{
    __shared__ double warp_sums[NORM_BLOCK / 32];
    v = dc_warp_sum_d(v);
    if ((threadIdx.x & 31) == 0)
        warp_sums[threadIdx.x >> 5] = v;
    __syncthreads();
    double s = 0.0;
    if (threadIdx.x == 0)
        for (int w = 0; w < NORM_BLOCK / 32; w++)
            s += warp_sums[w];
    return s;
}

__global__ void __launch_bounds__(NORM_BLOCK)
sumsq_partial_kernel(double *partial, const float *grads, size_t n)
{
    double s = 0.0;
    DC_FOR(i, n)
    {
        const double g = (double)grads[i];
        s += g * g; /* exact: a float squared fits in a double */
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = s;
}

/* One block: thread t adds partials t, t+256, ... in order, then the block sum. */
__global__ void __launch_bounds__(NORM_BLOCK) sumsq_final_kernel(double *total, const double *partial,
                                                                 unsigned count)
{
    double s = 0.0;
    for (unsigned i = threadIdx.x; i < count; i += NORM_BLOCK)
        s += partial[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0)
        *total = s;
}

double cuda_grad_norm(const float *grads, size_t n)
{
    if (n == 0)
        return 0.0;
    size_t b = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    const unsigned blocks = b > NORM_MAX_BLOCKS ? (unsigned)NORM_MAX_BLOCKS : (unsigned)b;
    double *partial = (double *)dc_scratch(((size_t)blocks + 1) * sizeof(double),
                                           "grad_norm: no scratch");
    if (!partial)
        return NAN;
    double *total = partial + blocks;
    sumsq_partial_kernel<<<blocks, NORM_BLOCK, 0, DC_STREAM>>>(partial, grads, n);
    sumsq_final_kernel<<<1, NORM_BLOCK, 0, DC_STREAM>>>(total, partial, blocks);
    double host = 0.0;
    if (cudaMemcpyAsync(&host, total, sizeof host, cudaMemcpyDeviceToHost, DC_STREAM) != cudaSuccess ||
        cudaStreamSynchronize(DC_STREAM) != cudaSuccess) {
        cuda_note_error("grad_norm: reading the sum back failed");
        return NAN;
    }
    return sqrt(host);
}
