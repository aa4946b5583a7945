/* gdal_decloud — the coordinate ramps that tell the pixel function where its request lies.
 *
 * GDAL 3.6 gives a C pixel function its buffers and their size, never the window's position. So
 * each VRT band carries two extra SimpleSources (resampling="nearest"): a 1-row raster of column
 * numbers 0, 1, 2, ... stretched over the whole band (SrcRect W x 1 -> DstRect W x H), and a
 * 1-column raster of row numbers stretched the same way. GDAL resamples them exactly like the
 * band itself, so buffer pixel (i, j) of those sources holds the raster column and row it shows,
 * for full-resolution windows (first value = the window offset) and decimated ones alike.
 *
 * The ramps live in /vsimem (no side files), DCP_RAMP_LENGTH Int32 values each, written once by
 * the register function in formats that need no driver at write time (GTiff is not yet
 * registered when GDAL loads plugins):
 *   row ramp (1 x N): raw little-endian EHdr;
 *   column ramp (N x 1): an ASCII grid (AAIGrid). Not EHdr: a raw scanline longer than 50000
 *   bytes makes GDAL's raw driver decimate through its "direct IO" path, which picks source
 *   column floor(i * step) where every other driver (and GDAL's generic RasterIO, hence a GTiff
 *   of diffcr-decloud's output) picks floor((i + 0.5) * step): -outsize 50% would then sample
 *   other columns than a decimated read of the same pixels from a file. AAIGrid reads through
 *   the generic path; the row ramp's 4-byte scanlines never take the direct path. */
#ifndef GDAL_DECLOUD_RAMPS_H
#define GDAL_DECLOUD_RAMPS_H

#include <stddef.h>

#include <gdal.h>

#include "diffcr/vrt_writer.h" /* the ramp paths and length: the VRT writer's side of the contract */

#define DCP_RAMP_LENGTH DC_VRT_RAMP_LENGTH
#define DCP_XRAMP_PATH DC_VRT_XRAMP_PATH
#define DCP_YRAMP_PATH DC_VRT_YRAMP_PATH

/* Write the two ramps unless they exist (cheap on every GDALAllRegister; prints nothing). */
void dcp_ramps_install(void);

/* Raster column of every buffer column (cols[nbx]) and raster row of every buffer row
 * (rows[nby]), read from sources[xsrc] and sources[ysrc] (type `type`, nbx x nby). Checks that
 * they are ramps and lie inside width x height. Returns 0, or -1 with a message. */
int dcp_ramps_read(void **sources, int nsources, int xsrc, int ysrc, GDALDataType type, int nbx,
                   int nby, int width, int height, int *cols, int *rows, char *msg, size_t n);

#endif
