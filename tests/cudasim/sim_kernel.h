/* diffcr cudasim — the CUDA kernel language on the host: what nvcc would provide implicitly to a
 * .cu file. rewrite_cu.py puts `#include "sim_kernel.h"` at the top of every .cu file of core/cuda and
 * turns `kernel<<<grid, block, smem, stream>>>(args)` into dc_sim_launch(...), so the unchanged
 * sources compile with g++ as C++.
 *
 * Execution model (sim_runtime.cpp): a launch is queued on the stream; when it runs, blocks run
 * one after the other, and the threads of a block run as fibers that switch only at barriers
 * (__syncthreads) and warp exchanges (__shfl_*_sync, __match_any_sync). Shared memory is
 * therefore an ordinary per-OS-thread static, and atomics need no locking. */
#ifndef DIFFCR_CUDASIM_SIM_KERNEL_H
#define DIFFCR_CUDASIM_SIM_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <utility>
#include <functional>

#include "cuda_runtime.h"

/* --- qualifiers ---------------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
/* one instance per OS thread: blocks run one at a time on it, so this is the block's memory */
#define __shared__ static thread_local

/* --- the running thread -------------------------------------------------------------------- */
struct dc_sim_thread {
    uint3 thread_idx, block_idx;
    dim3 block_dim, grid_dim;
};
/* Set by the scheduler before it resumes a thread; one per host thread, since two host threads
 * may run kernels at once. Hidden, so that g++ reaches it without a __tls_get_addr call per use.
 * The compiler reloads it after every barrier: barriers are calls into another file. */
extern thread_local const dc_sim_thread *dc_sim_tls_thread __attribute__((visibility("hidden")));
#define threadIdx (dc_sim_tls_thread->thread_idx)
#define blockIdx (dc_sim_tls_thread->block_idx)
#define blockDim (dc_sim_tls_thread->block_dim)
#define gridDim (dc_sim_tls_thread->grid_dim)
#define warpSize 32

/* --- synchronisation and warp exchange (sim_runtime.cpp) ----------------------------------- */
void __syncthreads(void);
/* Every lane of `mask` posts `value` and gets back the values all lanes posted (indexed by lane).
 * Waits until all of them have posted; a lane of the mask that has exited is a bug (fails). */
const uint64_t *dc_sim_warp_exchange(unsigned mask, uint64_t value, unsigned *lane);
void *dc_sim_dynamic_smem(void);

template <class T> static inline uint64_t dc_sim_bits(T v)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp exchange of a value");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    return b;
}
template <class T> static inline T dc_sim_from_bits(uint64_t b)
{
    T v;
    memcpy(&v, &b, sizeof v);
    return v;
}

template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    unsigned lane;
    const uint64_t *all = dc_sim_warp_exchange(mask, dc_sim_bits(v), &lane);
    unsigned src = lane ^ (unsigned)lane_mask;
    /* width splits the warp into segments; a source outside the caller's segment reads itself */
    if (src / (unsigned)width != lane / (unsigned)width)
        src = lane;
    return dc_sim_from_bits<T>(all[src]);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    unsigned lane;
    const uint64_t *all = dc_sim_warp_exchange(mask, dc_sim_bits(v), &lane);
    unsigned seg = lane % (unsigned)width;
    return dc_sim_from_bits<T>(all[seg >= delta ? lane - delta : lane]);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    unsigned lane;
    const uint64_t *all = dc_sim_warp_exchange(mask, dc_sim_bits(v), &lane);
    unsigned seg = lane % (unsigned)width;
    return dc_sim_from_bits<T>(all[seg + delta < (unsigned)width ? lane + delta : lane]);
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32)
{
    unsigned lane;
    const uint64_t *all = dc_sim_warp_exchange(mask, dc_sim_bits(v), &lane);
    unsigned base = lane / (unsigned)width * (unsigned)width;
    return dc_sim_from_bits<T>(all[base + (unsigned)src_lane % (unsigned)width]);
}
template <class T> static inline unsigned __match_any_sync(unsigned mask, T v)
{
    unsigned lane;
    uint64_t mine = dc_sim_bits(v);
    const uint64_t *all = dc_sim_warp_exchange(mask, mine, &lane);
    unsigned same = 0;
    for (unsigned l = 0; l < 32; l++)
        if ((mask >> l & 1u) && all[l] == mine)
            same |= 1u << l;
    return same;
}

/* Atomics: threads switch only at barriers, so a plain read-modify-write is atomic here. */
template <class T> static inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <class T> static inline T atomicMin(T *p, T v)
{
    T old = *p;
    *p = v < old ? v : old;
    return old;
}
template <class T> static inline T atomicMax(T *p, T v)
{
    T old = *p;
    *p = v > old ? v : old;
    return old;
}

/* --- intrinsics: IEEE round-to-nearest, as the _rn names promise ---------------------------- */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
/* CUDA's rsqrtf is approximate (2 ulp); the exact value is within that */
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
static inline unsigned __float_as_uint(float f) { return dc_sim_from_bits<unsigned>(dc_sim_bits(f)); }
static inline float __uint_as_float(unsigned u) { return dc_sim_from_bits<float>(u); }
static inline int __float_as_int(float f) { return dc_sim_from_bits<int>(dc_sim_bits(f)); }
static inline float __int_as_float(int i) { return dc_sim_from_bits<float>((uint64_t)(uint32_t)i); }
static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
static inline int __ffs(int v) { return __builtin_ffs(v); }
static inline int __clz(int v) { return v ? __builtin_clz((unsigned)v) : 32; }
template <class T> static inline T __ldg(const T *p) { return *p; }
using std::max;
using std::min;

/* --- launches ------------------------------------------------------------------------------ */
struct dc_sim_config {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    dc_sim_config(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0) : grid(g), block(b), smem(s), stream(st) {}
};

/* Validates the configuration (cudaErrorInvalidConfiguration through cudaGetLastError, as a GPU
 * reports it) and queues the grid. `kernel` identifies the kernel; `pointers`/`n_pointers` are the
 * pointer arguments, each of which must be NULL or device memory. */
void dc_sim_launch_grid(const char *name, const void *kernel, const dc_sim_config &cfg,
                        const void *const *pointers, const size_t n_pointers, std::function<void()> body);

template <class A> static inline void dc_sim_collect_pointer(const void **out, size_t *n, const A &a)
{
    if constexpr (std::is_pointer<A>::value)
        out[(*n)++] = (const void *)a;
}

/* One launch argument converted to its parameter type. A literal NULL reaches here as an integer
 * (g++'s __null), which a forwarded value can no longer convert implicitly. */
template <class P, class A> static inline P dc_sim_param(A &&a)
{
    if constexpr (std::is_pointer<P>::value && std::is_integral<typename std::decay<A>::type>::value) {
        return a == 0 ? (P) nullptr : (P)(uintptr_t)a;
    } else {
        return static_cast<P>(std::forward<A>(a));
    }
}

/* kernel<<<cfg>>>(args): the arguments are converted to the parameter types now and copied, as
 * a launch copies its parameters; every thread calls the kernel with those copies. */
template <class... P, class... A>
static inline void dc_sim_launch(const char *name, void (*kernel)(P...), const dc_sim_config &cfg, A &&...args)
{
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    std::tuple<typename std::decay<P>::type...> params(dc_sim_param<P>(std::forward<A>(args))...);
    const void *pointers[sizeof...(P) + 1];
    size_t n = 0;
    std::apply([&](const auto &...p) { (dc_sim_collect_pointer(pointers, &n, p), ...); }, params);
    dc_sim_launch_grid(name, (const void *)kernel, cfg, pointers, n,
                       [kernel, params]() { std::apply(kernel, params); });
}

#endif
