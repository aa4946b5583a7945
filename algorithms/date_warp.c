/* diffcr — put every date on the reference grid.
 *
 * A date already on the grid is read as is. Otherwise GDAL's warper builds a warped VRT (no file:
 * an in-memory VRTWarpedDataset) that resamples on demand, block by block, so memory stays
 * bounded by GDAL's warp buffers, not by the raster. Pixels outside the source come back as the
 * source's nodata, or, when it has none, as 0 in an added alpha band (the mask we read). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>

#include "decloud_internal.h"

/* Does the date's footprint, in the grid's CRS, meet the grid's extent? -1 when it cannot be
 * transformed. */
static int footprint_overlaps(const dc_raster_grid *date, const dc_raster_grid *grid)
{
    double x0 = date->gt[0], x1 = date->gt[0] + date->gt[1] * date->width;
    double y0 = date->gt[3], y1 = date->gt[3] + date->gt[5] * date->height;
    double dminx = fmin(x0, x1), dmaxx = fmax(x0, x1), dminy = fmin(y0, y1), dmaxy = fmax(y0, y1);
    if (!dc_grid_same_crs(date, grid)) {
        OGRSpatialReferenceH s = OSRNewSpatialReference(date->wkt);
        OGRSpatialReferenceH t = OSRNewSpatialReference(grid->wkt);
        OGRCoordinateTransformationH ct = NULL;
        int ok = 0;
        if (s && t) {
            OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
            OSRSetAxisMappingStrategy(t, OAMS_TRADITIONAL_GIS_ORDER);
            ct = OCTNewCoordinateTransformation(s, t);
        }
        if (ct) {
            double a, b, c, d;
            ok = OCTTransformBounds(ct, dminx, dminy, dmaxx, dmaxy, &a, &b, &c, &d, 21);
            dminx = a; dminy = b; dmaxx = c; dmaxy = d;
            OCTDestroyCoordinateTransformation(ct);
        }
        if (s)
            OSRDestroySpatialReference(s);
        if (t)
            OSRDestroySpatialReference(t);
        if (!ok)
            return -1;
    }
    double gx0 = grid->gt[0], gx1 = grid->gt[0] + grid->gt[1] * grid->width;
    double gy0 = grid->gt[3], gy1 = grid->gt[3] + grid->gt[5] * grid->height;
    return dmaxx > fmin(gx0, gx1) && dminx < fmax(gx0, gx1) && dmaxy > fmin(gy0, gy1) &&
           dminy < fmax(gy0, gy1);
}

int dc_date_align(dc_date *d, const dc_raster_grid *grid, const dc_decloud_options *opts,
                  dc_error *err)
{
    char what[64];
    snprintf(what, sizeof what, "date %d", d->index);
    dc_raster_grid own;
    int rc = dc_grid_from_dataset(&own, d->src, d->path, err);
    if (rc != DC_OK)
        return rc;
    int same_crs = dc_grid_same_crs(&own, grid);
    if (same_crs && dc_grid_same_geometry(&own, grid)) {
        dc_grid_free(&own);
        return DC_OK;
    }
    if (!own.wkt[0] || !grid->wkt[0]) {
        dc_grid_free(&own);
        return dc_fail(err, DC_ERR_ARG, "%s (%s): unknown CRS, cannot compare it with the "
                       "reference grid%s", what, d->path, opts->no_warp ? " (--no-warp)" : "");
    }
    if (opts->no_warp) {
        dc_grid_free(&own);
        return dc_fail(err, DC_ERR_ARG, "%s (%s) is not on the reference grid (%s differ) and "
                       "--no-warp forbids resampling it", what, d->path,
                       same_crs ? "size, resolution or extent" : "CRS");
    }
    int overlap = footprint_overlaps(&own, grid);
    dc_grid_free(&own);
    if (overlap < 0)
        return dc_gdal_fail(err, DC_ERR_ARG, "%s (%s): cannot transform its extent into the "
                            "reference CRS", what, d->path);
    if (!overlap)
        return dc_fail(err, DC_ERR_ARG, "%s (%s) does not overlap the reference grid", what,
                       d->path);

    char te[4][40], ts[2][24], nd[40];
    snprintf(te[0], sizeof te[0], "%.17g", grid->gt[0]);
    snprintf(te[1], sizeof te[1], "%.17g", grid->gt[3] + grid->gt[5] * grid->height);
    snprintf(te[2], sizeof te[2], "%.17g", grid->gt[0] + grid->gt[1] * grid->width);
    snprintf(te[3], sizeof te[3], "%.17g", grid->gt[3]);
    snprintf(ts[0], sizeof ts[0], "%d", grid->width);
    snprintf(ts[1], sizeof ts[1], "%d", grid->height);
    char **argv = NULL;
    argv = CSLAddString(argv, "-of");
    argv = CSLAddString(argv, "VRT");
    argv = CSLAddString(argv, "-t_srs");
    argv = CSLAddString(argv, grid->wkt);
    argv = CSLAddString(argv, "-te");
    for (int i = 0; i < 4; i++)
        argv = CSLAddString(argv, te[i]);
    argv = CSLAddString(argv, "-ts");
    argv = CSLAddString(argv, ts[0]);
    argv = CSLAddString(argv, ts[1]);
    argv = CSLAddString(argv, "-r");
    argv = CSLAddString(argv, opts->resampling ? opts->resampling : "bilinear");
    int src_has_nodata = 0;
    GDALGetRasterNoDataValue(GDALGetRasterBand(d->src, d->bands[0]), &src_has_nodata);
    if (opts->have_srcnodata) {
        snprintf(nd, sizeof nd, "%.17g", opts->srcnodata);
        argv = CSLAddString(argv, "-srcnodata");
        argv = CSLAddString(argv, nd);
        argv = CSLAddString(argv, "-dstnodata");
        argv = CSLAddString(argv, nd);
    } else if (!src_has_nodata) {
        argv = CSLAddString(argv, "-dstalpha");
    }
    CPLErrorReset();
    GDALWarpAppOptions *wo = GDALWarpAppOptionsNew(argv, NULL);
    CSLDestroy(argv);
    if (!wo)
        return dc_gdal_fail(err, DC_ERR_ARG, "%s (%s): bad warp options", what, d->path);
    int usage_error = 0;
    GDALDatasetH src = d->src;
    GDALDatasetH out = GDALWarp("", NULL, 1, &src, wo, &usage_error);
    GDALWarpAppOptionsFree(wo);
    if (!out)
        return dc_gdal_fail(err, DC_ERR_IO, "%s (%s): cannot warp it onto the reference grid",
                            what, d->path);
    d->view = out;
    d->warped = 1;
    /* the caller refreshes nodata/mask info from the view (dc_date_read_validity_info) */
    return DC_OK;
}
