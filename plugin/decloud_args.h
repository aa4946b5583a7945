/* gdal_decloud — the pixel function's arguments: <PixelFunctionArguments> attributes, each
 * overridable with `--config DECLOUD_<NAME> value` (upper-case name), turned into the decloud
 * pipeline's options.
 *
 *   inputs    date rasters, `|`-separated (absolute paths: GDAL does not tell the function where
 *             the VRT is, so relative ones are relative to the working directory)     required
 *   dates     number of dates; with a single input, the input is a dates x bands stack
 *   bands     bands per date, e.g. "4,3,2" (diffcr-decloud -b)
 *   weights   DiffCR safetensors file, or model=mean|blur (test models)    one of them required
 *   band      1-based output band this VRT band shows                                  required
 *   tile, overlap, steps, order, sampler, seed, device, threads, samples   as diffcr-decloud
 *   width, height   raster size (checked against the reference grid; needed without ramps)
 *   xsrc, ysrc      0-based indices of the column / row ramp sources (absent: no ramps)
 *   nodata    output nodata (diffcr-decloud --dstnodata); srcnodata (--srcnodata)
 *   like, te ("xmin,ymin,xmax,ymax"), tr ("xres,yres"), t_srs, r (resampling), no_warp (YES/NO)
 *             the reference grid and alignment, as diffcr-decloud
 * band, xsrc, ysrc, width and height describe the VRT itself and are not overridable: one
 * DECLOUD_BAND for every band would show band 1 three times. */
#ifndef GDAL_DECLOUD_ARGS_H
#define GDAL_DECLOUD_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include <cpl_string.h>

#include "diffcr/decloud.h"

typedef struct dcp_args {
    dc_decloud_options opts;  /* strings point into `owned` */
    int band;                 /* 1-based output band */
    int width, height;        /* 0 when not given */
    int xsrc, ysrc;           /* -1: no ramps */
    uint64_t config_hash;     /* every argument that defines the pixels (not band/xsrc/ysrc) */
    char *model_key;          /* what identifies the loaded model: weights + sampler settings */
    char **owned;             /* CSL: copies of the strings */
    const char **input_paths; /* opts.inputs (array owned, strings in `owned`) */
} dcp_args;

/* Parse; on failure returns -1 with a message naming the argument, e.g.
 * "tile=17: must be a positive multiple of 16". dcp_args_free is needed either way. */
int dcp_args_parse(dcp_args *a, CSLConstList args, char *msg, size_t msglen);
void dcp_args_free(dcp_args *a);

#endif
