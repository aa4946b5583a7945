/* diffcr — decloud: N date rasters in, one cloud-free raster out on a reference grid.
 *
 * read dates -> align to the reference grid (GDAL warper when CRS/resolution/extent differ) ->
 * per strip of tile rows: read, scale DN into the model range, fill missing dates -> model per
 * tile -> blend into float accumulators -> write the finished rows (DN, input type, clipped).
 * Memory is bounded by the window's width x one tile height. */
#ifndef DIFFCR_DECLOUD_H
#define DIFFCR_DECLOUD_H

#include <gdal.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DC_MAX_BANDS 64

typedef struct dc_decloud_options {
    /* inputs */
    const char *const *inputs; /* date raster paths, or one stack when stack_dates > 0 */
    int ninputs;
    int stack_dates;           /* > 0: inputs[0] holds stack_dates dates x bands, date-major */
    int bands[DC_MAX_BANDS];   /* 1-based band per date (-b); nbands_sel == 0: default by count */
    int nbands_sel;
    /* reference grid: the first date, or `like`, or te/tr/t_srs */
    const char *like;
    int have_te, have_tr;
    double te[4];              /* xmin ymin xmax ymax */
    double tr[2];              /* xres yres (> 0) */
    const char *t_srs;
    int no_warp;
    const char *resampling;    /* GDAL warp resampling name, default "bilinear" */
    /* nodata */
    int have_srcnodata, have_dstnodata;
    double srcnodata, dstnodata;
    /* tiling; 0 = defaults (model tile, tile/4) */
    int tile, overlap;
    int have_overlap;
    /* output */
    const char *output;        /* output path (NULL with in_place) */
    const char *format;        /* -of, default GTiff */
    char **create_options;     /* -co NAME=VALUE list (CSL), not owned */
    const char *in_place;      /* update this file atomically (resumable) */
    const char *uncertainty;   /* per-pixel std dev of the samples, Float32 GTiff */
    const char *history;       /* command line for DIFFCR_HISTORY */
    const char *run_key;       /* identifies the run for --in-place resume (hash of arguments) */
    /* model and sampling (forwarded to the model) */
    const char *model_name;    /* "mean" or "blur" (test models) when weights == NULL */
    const char *weights;
    int steps, order, seed, threads, samples;
    int batch;                 /* tiles per network call (default 1; more keeps a GPU busy) */
    const char *sampler, *device;
    const char *precision;     /* convolution maths: fp32 (default), tf32, fp16, bf16 (cuda only) */
    /* debugging: compute the output in windows of at most max_rows x max_cols (0 = whole) to
     * prove that windows do not change pixels; sleep after each tile row (kill tests) */
    int max_rows, max_cols, debug_delay_ms;
    int quiet;
    /* informational messages (resume, cleaned leftovers); may be NULL */
    void (*notice)(const char *msg, void *arg);
    void *notice_arg;
} dc_decloud_options;

void dc_decloud_options_init(dc_decloud_options *opts);

/* A cancelled run (Ctrl-C, progress callback) returns DC_ERR_CANCELLED (error.h). */

/* Run the whole job. Never leaves a partial output: on failure or cancel the temporary file is
 * removed (for --in-place it is kept for resuming). Messages go to err, progress to `progress`. */
int dc_decloud_run(const dc_decloud_options *opts, GDALProgressFunc progress, void *progress_arg,
                   dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
