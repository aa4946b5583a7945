/* diffcr — internal: scratch for per-thread partial sums in the CPU reduction ops.
 *
 * Reductions over pixels (LayerNorm weight grads, SCA pooling, residual scale grads) give each
 * thread a fixed slice of one block and add the slices in thread order, which keeps results
 * deterministic for a thread count. Each slice starts on its own 64-byte cache line: slices sharing
 * a line would bounce it between cores on every pixel (false sharing). */
#ifndef DIFFCR_CPU_THREAD_PARTIALS_H
#define DIFFCR_CPU_THREAD_PARTIALS_H

#include <stdlib.h>

enum { CACHE_LINE = 64 };

/* Elements per thread slice: at least `elems`, rounded up to whole cache lines. */
static inline size_t slice_stride(size_t elems, size_t elem_size)
{
    size_t bytes = (elems * elem_size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    return bytes / elem_size;
}

static inline void *scratch_alloc(size_t bytes)
{
    bytes = (bytes + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    void *p = aligned_alloc(CACHE_LINE, bytes ? bytes : CACHE_LINE);
    if (!p)
        abort(); /* kilobytes: if they cannot be had the process is lost, and ops.h's ops cannot fail */
    return p;
}

#endif
