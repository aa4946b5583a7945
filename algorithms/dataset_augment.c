/* diffcr — training augmentation and sample order, as pure functions of (seed, epoch, index).
 *
 * DiffCR (DIFFCR.md §5) flips a sample along H or W or not at all, then rotates it by k*90
 * degrees, with the same transform for all four images. It draws the transforms once and indexes
 * them by a per-worker counter, so its augmentation depends on worker timing; here both the
 * transform and the epoch's permutation come from Philox keyed by (seed, epoch, index), so a run
 * gives the same batches whatever the thread count, and a resumed run picks up the same ones. */
#include <stdlib.h>
#include <string.h>

#include "diffcr/dataset.h"
#include "diffcr/philox.h"

/* Philox streams of the data pipeline, above the core's (philox.h uses 0..3). */
enum { STREAM_SHUFFLE = 100, STREAM_AUGMENT = 101 };

dc_augment dc_augment_draw(uint64_t seed, int epoch, int index)
{
    dc_augment a;
    uint32_t r0 = dc_philox_u32(seed, STREAM_AUGMENT, (uint32_t)index, (uint32_t)epoch, 0);
    uint32_t r1 = dc_philox_u32(seed, STREAM_AUGMENT, (uint32_t)index, (uint32_t)epoch, 1);
    /* Multiply-shift maps a 32-bit word onto 0..m-1 without modulo bias worth mentioning. */
    a.flip = (int)(((uint64_t)r0 * 3u) >> 32);
    a.rot90 = (int)(((uint64_t)r1 * 4u) >> 32);
    return a;
}

void dc_augment_source(int n, dc_augment a, int y, int x, int *sy, int *sx)
{
    /* Output = rot90(flip(img), k). numpy.rot90(m, 1)[i][j] = m[j][n-1-i]; apply k times backwards
     * from the output coordinate to find the flipped image's pixel, then undo the flip. */
    int yy = y, xx = x;
    for (int r = 0; r < (a.rot90 & 3); r++) {
        int ny = xx, nx = n - 1 - yy;
        yy = ny, xx = nx;
    }
    if (a.flip == 1)
        yy = n - 1 - yy;
    else if (a.flip == 2)
        xx = n - 1 - xx;
    *sy = yy, *sx = xx;
}

void dc_augment_apply(float *img, int n, int c, dc_augment a, float *scratch)
{
    if (a.flip == 0 && (a.rot90 & 3) == 0)
        return;
    memcpy(scratch, img, (size_t)n * n * c * sizeof *img);
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            int sy, sx;
            dc_augment_source(n, a, y, x, &sy, &sx);
            memcpy(img + ((size_t)y * n + x) * c, scratch + ((size_t)sy * n + sx) * c,
                   (size_t)c * sizeof *img);
        }
}

void dc_dataset_permutation(int *perm, int count, uint64_t seed, int epoch)
{
    for (int i = 0; i < count; i++)
        perm[i] = i;
    for (int i = count - 1; i > 0; i--) {
        uint32_t r = dc_philox_u32(seed, STREAM_SHUFFLE, 0, (uint32_t)epoch, (uint64_t)i);
        int j = (int)(((uint64_t)r * (uint64_t)(i + 1)) >> 32);
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}
