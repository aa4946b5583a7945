/* diffcr — dynamic thresholding of x0 on the device (cuda_ops.h; reference dc_dynamic_threshold
 * and dc_quantile_select in core/diffusion/thresholding.c).
 *
 * Per sample: s = max(quantile_ratio(|x0|), max_val), x0 = clamp(x0, -s, s) / s, with
 * torch.quantile's linear interpolation between the order statistics floor(rank) and the next.
 * Non-negative floats order like their bit patterns, so the order statistics come from a radix
 * select on the bits of |x| (NaN mapped to +inf, as the reference): 4 passes of 8-bit histograms,
 * one block of 1024 threads per sample, each pass keeping only the keys that match the digits
 * found so far. The histogram counts are integers, so the result is exact and deterministic. The
 * next order statistic is the same key when the selected key's run of equal values extends past
 * the rank, else the smallest key above it (one more pass). The rank split and the interpolation
 * repeat the reference's float/double expressions operation for operation. */
#include <math.h>

#include "launch.cuh"

enum { TH_BLOCK = 1024, TH_BINS = 256, TH_NONE = 256 };

/* Order key of |v|: the bits of fabsf(v); NaN counts as +inf. */
static __device__ __forceinline__ uint32_t abs_key(float v)
{
    return v != v ? 0x7F800000u : (__float_as_uint(v) & 0x7FFFFFFFu);
}

/* s_dev[b] = the thresholding scale of sample b (x0 [B][n], one block per sample). */
__global__ void __launch_bounds__(TH_BLOCK)
quantile_scale_kernel(float *s_dev, const float *x0, size_t n, size_t below, int need_hi,
                      double weight, int float32_rank, float floor_s)
{
    __shared__ unsigned long long hist[TH_BINS];
    __shared__ unsigned s_digit;
    __shared__ unsigned long long s_rank, s_count;
    __shared__ uint32_t s_min;
    const float *x = x0 + (size_t)blockIdx.x * n;
    const int lane = threadIdx.x & 31;
    /* all threads run the same number of iterations: the warp vote needs every lane */
    const size_t rounded = (n + TH_BLOCK - 1) / TH_BLOCK * TH_BLOCK;

    uint32_t prefix = 0, mask = 0;
    unsigned long long k = below, count = 0; /* rank among the keys matching prefix */
    for (int pass = 0; pass < 4; pass++) {
        const int shift = 24 - 8 * pass;
        for (int i = threadIdx.x; i < TH_BINS; i += blockDim.x)
            hist[i] = 0;
        __syncthreads();
        for (size_t i = threadIdx.x; i < rounded; i += TH_BLOCK) {
            unsigned digit = TH_NONE;
            if (i < n) {
                const uint32_t key = abs_key(x[i]);
                if ((key & mask) == prefix)
                    digit = (key >> shift) & 0xFFu;
            }
            /* one shared atomic per distinct digit of the warp: |x| is concentrated in a few
             * exponents, which would otherwise serialise on the same bins */
            const unsigned peers = __match_any_sync(0xffffffffu, digit);
            if (digit != TH_NONE && lane == __ffs(peers) - 1)
                atomicAdd(&hist[digit], (unsigned long long)__popc(peers));
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            /* lane l owns bins 8l..8l+7; an inclusive scan over the lanes finds the bin that
             * holds rank k (exactly one lane: k < the number of matching keys) */
            unsigned long long own = 0;
            for (int j = 0; j < 8; j++)
                own += hist[8 * lane + j];
            unsigned long long incl = own;
            for (int off = 1; off < 32; off <<= 1) {
                const unsigned long long t = __shfl_up_sync(0xffffffffu, incl, off);
                if (lane >= off)
                    incl += t;
            }
            const unsigned long long excl = incl - own;
            if (excl <= k && k < incl) {
                unsigned long long cum = excl;
                for (int j = 0; j < 8; j++) {
                    const unsigned long long h = hist[8 * lane + j];
                    if (k < cum + h) {
                        s_digit = (unsigned)(8 * lane + j);
                        s_rank = k - cum;
                        s_count = h;
                        break;
                    }
                    cum += h;
                }
            }
        }
        __syncthreads();
        prefix |= (uint32_t)s_digit << shift;
        mask |= 0xFFu << shift;
        k = s_rank;
        count = s_count;
        /* hist and s_* are next written after the next pass's first barrier: no sync needed */
    }

    /* prefix is the key of order statistic `below`; `count` keys equal it, k of them before it */
    uint32_t hi_key = prefix;
    if (need_hi && k + 1 >= count) { /* block-uniform: the next value is the least key above */
        if (threadIdx.x == 0)
            s_min = 0xFFFFFFFFu;
        __syncthreads();
        uint32_t mn = 0xFFFFFFFFu;
        for (size_t i = threadIdx.x; i < n; i += TH_BLOCK) {
            const uint32_t key = abs_key(x[i]);
            if (key > prefix && key < mn)
                mn = key;
        }
        for (int off = 16; off > 0; off >>= 1) {
            const uint32_t t = __shfl_xor_sync(0xffffffffu, mn, off);
            mn = t < mn ? t : mn;
        }
        if (lane == 0)
            atomicMin(&s_min, mn);
        __syncthreads();
        hi_key = s_min;
    }

    if (threadIdx.x == 0) {
        const float lo = __uint_as_float(prefix), hi = __uint_as_float(hi_key);
        float s;
        if (float32_rank) {
            /* torch.lerp on float: w < 0.5 ? lo + w*(hi-lo) : hi - (hi-lo)*(1-w) */
            const float w = (float)weight;
            s = w < 0.5f ? __fadd_rn(lo, __fmul_rn(w, __fsub_rn(hi, lo)))
                         : __fsub_rn(hi, __fmul_rn(__fsub_rn(hi, lo), __fsub_rn(1.0f, w)));
        } else if (weight == 0.0) {
            s = lo;
        } else {
            s = (float)__dadd_rn((double)lo, __dmul_rn(weight, __dsub_rn((double)hi, (double)lo)));
        }
        if (!(s >= floor_s)) /* torch.maximum; NaN would propagate */
            s = floor_s;
        s_dev[blockIdx.x] = s;
    }
}

/* x0_b = clamp(x0_b, -s_b, s_b) / s_b; y-rows are the samples. */
__global__ void threshold_apply_kernel(float *x0, const float *s_dev, int B, size_t n)
{
    DC_FOR_Y(b, B)
    {
        const float s = s_dev[b];
        float *xb = x0 + b * n;
        DC_FOR(i, n)
        {
            float v = xb[i];
            v = v < -s ? -s : v;
            v = v > s ? s : v;
            xb[i] = __fdiv_rn(v, s);
        }
    }
}

void cuda_dynamic_threshold(float *x0, int B, size_t n, double ratio, double max_val,
                            int float32_rank, float *s_out)
{
    if (B <= 0 || n == 0)
        return;
    /* The rank split of dc_quantile_select; volatile keeps each product rounded on its own (no
     * host FMA contraction of rank - below). */
    size_t below;
    double weight;
    if (float32_rank) {
        volatile float rank = (float)ratio * (float)(n - 1);
        below = (size_t)rank;
        weight = (double)(rank - (float)below);
    } else {
        volatile double rank = ratio * (double)(n - 1);
        below = (size_t)rank;
        weight = rank - (double)below;
    }
    if (below > n - 1) { /* q > 1 or rounding: clamp to the maximum */
        below = n - 1;
        weight = 0.0;
    }
    const int need_hi = weight > 0.0 && below + 1 < n;
    const float floor_s = (float)max_val;

    float *s_dev = (float *)dc_scratch((size_t)B * sizeof(float), "dynamic_threshold: no scratch");
    if (!s_dev)
        return;
    quantile_scale_kernel<<<(unsigned)B, TH_BLOCK, 0, DC_STREAM>>>(s_dev, x0, n, below, need_hi,
                                                                   weight, float32_rank, floor_s);
    threshold_apply_kernel<<<dc_grid_rows((size_t)B, n), DC_BLOCK, 0, DC_STREAM>>>(x0, s_dev, B, n);
    if (s_out) {
        if (cudaMemcpyAsync(s_out, s_dev, (size_t)B * sizeof(float), cudaMemcpyDeviceToHost,
                            DC_STREAM) != cudaSuccess ||
            cudaStreamSynchronize(DC_STREAM) != cudaSuccess)
            cuda_note_error("dynamic_threshold: reading the scales back failed");
    }
}
