/* diffcr — the simple composites a decloud result is compared against.
 *
 *   median:       per pixel and band, the median of the dates (cloud tops are bright, so with 3
 *                 dates and at most one cloudy date per pixel the median is a clear value).
 *   least-cloudy: the single date with the fewest bright pixels (blue band above a DN threshold,
 *                 2500 by default: clear land and water stay well below 0.25 reflectance in blue,
 *                 clouds are above it), chosen for the whole image or per square block.
 *
 * Dates are [h][w][c] floats (DN), all the same size. Plain C; diffcr-evaluate --baseline does
 * the raster I/O. */
#ifndef DIFFCR_BASELINES_H
#define DIFFCR_BASELINES_H

#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per pixel and band, the median over the dates, as numpy.median: the middle value, or the mean of
 * the two middle values for an even count. valid: n entries, each [h][w] (0 = this date has no
 * data at the pixel) or NULL; NaN values are skipped too. A pixel without any value gives NaN. */
int dc_baseline_median(const float *const *dates, const uint8_t *const *valid, int n, int h,
                       int w, int c, float *out, dc_error *err);

/* Copy, per block of block x block pixels (block <= 0: the whole image is one block), the date with
 * the fewest bright pixels in the block: band index `blue` (0-based within c) > threshold, or no
 * data (invalid/NaN) — a missing pixel is as bad as a cloudy one. Ties go to the earliest date.
 * choice: NULL or [ceil(h/block)][ceil(w/block)] (one entry for the whole image): the date taken. */
int dc_baseline_least_cloudy(const float *const *dates, const uint8_t *const *valid, int n, int h,
                             int w, int c, int blue, double threshold, int block, float *out,
                             int *choice, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
