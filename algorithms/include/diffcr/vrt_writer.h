/* diffcr — `diffcr-decloud --vrt OUT.vrt`: instead of computing, describe the output as a GDAL
 * VRT whose bands call the `decloud` pixel function of gdal_decloud.so.
 *
 * The VRT is "lean": per output band a VRTDerivedRasterBand with
 *   <PixelFunctionType>decloud</PixelFunctionType>, <SourceTransferType>Float32</...>,
 *   <PixelFunctionArguments .../> holding every option that defines the pixels (absolute paths),
 *   and only the two coordinate-ramp SimpleSources (resampling="nearest", column ramp = source 0,
 *   row ramp = source 1) — the plugin reads the dates itself, with a halo.
 * Georeferencing, CRS, data type, nodata, band descriptions, colour interpretation and
 * DIFFCR_HISTORY are those diffcr-decloud would give its output. Block size 256 (or the raster
 * side when smaller). The inputs and the model are opened and checked here, so a VRT that was
 * written is one the plugin can compute. */
#ifndef DIFFCR_VRT_WRITER_H
#define DIFFCR_VRT_WRITER_H

#include "diffcr/decloud.h"
#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The coordinate ramps, shared with the plugin that writes them into /vsimem (plugin/ramps.h):
 * Int32 rasters holding 0, 1, 2, ... (DC_VRT_RAMP_LENGTH caps the raster's width and height).
 * The column ramp is an ASCII grid, the row ramp a raw EHdr: see plugin/ramps.h for why. */
#define DC_VRT_RAMP_LENGTH 131072
#define DC_VRT_XRAMP_PATH "/vsimem/decloud/xramp.asc"  /* DC_VRT_RAMP_LENGTH x 1, AAIGrid */
#define DC_VRT_YRAMP_PATH "/vsimem/decloud/yramp.bil"  /* 1 x DC_VRT_RAMP_LENGTH, EHdr */

int dc_decloud_write_vrt(const dc_decloud_options *opts, const char *vrt_path, dc_error *err);

#ifdef __cplusplus
}
#endif
#endif
