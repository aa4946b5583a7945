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

/* Scratch reused across calls on the calling thread: slot k (0..DC_SCRATCH_SLOTS-1) grows to the
 * largest size asked and is never shrunk, so after the first network call the sampling loop does
 * not allocate (DESIGN.md). Freed when the thread exits. The contents are not preserved between
 * calls; an op may use several slots at once, but not the same slot twice. Aborts like
 * scratch_alloc on allocation failure. */
enum { DC_SCRATCH_SLOTS = 4 };
void *dc_thread_scratch(int slot, size_t bytes);

#endif
