/* diffcr — small helpers shared by the CUDA kernel files (grid sizing, the stream, warp sums,
 * the pixel split of the column reductions, scratch carving).
 *
 * Why fixed grid caps instead of a device query: every reduction's partition (how many partial
 * sums, in which order they are added) is then a pure function of the tensor shape, so results
 * are the same run to run and on any GPU, like the CPU ops are for a fixed thread count. */
#ifndef DIFFCR_CUDA_LAUNCH_CUH
#define DIFFCR_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_ops.h"

/* Every kernel is queued on the calling host thread's stream (cuda_ops.h). */
#define DC_STREAM cudaStreamPerThread

enum {
    DC_BLOCK = 256,        /* threads per block of the element-wise kernels */
    DC_MAX_BLOCKS = 2048,  /* grid-stride cap: ~2 waves of 256-thread blocks on an H100 */
    DC_MAX_GRID_YZ = 65535,
    DC_SCRATCH_ALIGN = 256,
    /* Column reductions (sums over pixels per channel): a block is 32 channels x 8 pixel rows, so
     * each warp reads 32 contiguous channels of one pixel (one 128-byte line). */
    DC_COL_X = 32,
    DC_COL_Y = 8,
    DC_COL_TARGET_BLOCKS = 1024, /* enough blocks to fill the GPU, few enough partial rows */
    DC_COL_MIN_ROWS = 64         /* pixels per chunk at least: 8 per thread */
};

/* Blocks for a grid-stride loop over n items (n > 0). */
static inline unsigned dc_blocks(size_t n)
{
    size_t b = (n + DC_BLOCK - 1) / DC_BLOCK;
    return b > DC_MAX_BLOCKS ? (unsigned)DC_MAX_BLOCKS : (unsigned)b;
}

/* Grid for a kernel that walks `rows` independent rows (grid-stride in y) of row_len items each
 * (grid-stride in x): about DC_MAX_BLOCKS blocks in all, at least one per row up to 65535. */
static inline dim3 dc_grid_rows(size_t rows, size_t row_len)
{
    unsigned gy = rows > DC_MAX_GRID_YZ ? (unsigned)DC_MAX_GRID_YZ : (unsigned)rows;
    size_t gx = (row_len + DC_BLOCK - 1) / DC_BLOCK;
    size_t cap = DC_MAX_BLOCKS / gy;
    if (cap < 1)
        cap = 1;
    if (gx > cap)
        gx = cap;
    if (gx < 1)
        gx = 1;
    return dim3((unsigned)gx, gy, 1);
}

static inline unsigned dc_min_u(size_t a, unsigned b) { return a < b ? (unsigned)a : b; }

/* Bytes rounded up so that pieces carved one after the other from a scratch buffer stay aligned. */
static inline size_t dc_align(size_t bytes)
{
    return (bytes + DC_SCRATCH_ALIGN - 1) / DC_SCRATCH_ALIGN * DC_SCRATCH_ALIGN;
}

/* The calling thread's scratch (cuda_scratch); NULL after noting the error. One call per op: a
 * second call may hand back the same memory. */
static inline void *dc_scratch(size_t bytes, const char *what)
{
    void *p = cuda_scratch(bytes ? bytes : 1);
    if (!p)
        cuda_note_error(what);
    return p;
}

/* The pixel split of a column reduction: `rows` pixels per sample cut into `chunks` contiguous,
 * non-empty ranges of rows_per_chunk (the last may be shorter); other_blocks is the number of
 * blocks the grid has per chunk (channel tiles x samples). */
typedef struct dc_col_split {
    size_t rows_per_chunk;
    unsigned chunks;
} dc_col_split;

static inline dc_col_split dc_split_rows(size_t rows, size_t other_blocks)
{
    dc_col_split s;
    if (other_blocks < 1)
        other_blocks = 1;
    size_t want = (DC_COL_TARGET_BLOCKS + other_blocks - 1) / other_blocks;
    size_t most = (rows + DC_COL_MIN_ROWS - 1) / DC_COL_MIN_ROWS;
    size_t ch = want < most ? want : most;
    if (ch > DC_MAX_GRID_YZ)
        ch = DC_MAX_GRID_YZ;
    if (ch < 1)
        ch = 1;
    s.rows_per_chunk = (rows + ch - 1) / ch;
    /* recount so that no chunk is empty (rows = 0 keeps one empty chunk) */
    s.chunks = s.rows_per_chunk ? (unsigned)((rows + s.rows_per_chunk - 1) / s.rows_per_chunk) : 1u;
    return s;
}

/* Grid-stride loops with size_t indices (element counts may exceed 2^31). */
#define DC_FOR(i, n)                                                                               \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)(n);                \
         i += (size_t)gridDim.x * blockDim.x)
#define DC_FOR_Y(r, rows) for (size_t r = blockIdx.y; r < (size_t)(rows); r += gridDim.y)

/* Butterfly sums over a warp: every lane ends with the same bits (float + is commutative). */
static __device__ __forceinline__ float dc_warp_sum_f(float v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

static __device__ __forceinline__ double dc_warp_sum_d(double v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

#endif
