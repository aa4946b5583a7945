/* diffcr — the reference grid: size, geotransform and CRS every date is aligned to. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <ogr_srs_api.h>

#include "decloud_internal.h"

int dc_gdal_fail(dc_error *err, int code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *gdal = CPLGetLastErrorMsg();
    if (gdal && gdal[0])
        return dc_fail(err, code, "%s (%s)", msg, gdal);
    return dc_fail(err, code, "%s", msg);
}

int dc_grid_from_dataset(dc_raster_grid *g, GDALDatasetH ds, const char *what, dc_error *err)
{
    memset(g, 0, sizeof *g);
    g->width = GDALGetRasterXSize(ds);
    g->height = GDALGetRasterYSize(ds);
    if (GDALGetGeoTransform(ds, g->gt) != CE_None)
        return dc_fail(err, DC_ERR_FORMAT, "%s has no georeferencing (geotransform)", what);
    if (g->gt[2] != 0.0 || g->gt[4] != 0.0)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "%s has a rotated geotransform", what);
    const char *wkt = GDALGetProjectionRef(ds);
    g->wkt = strdup(wkt ? wkt : "");
    if (!g->wkt)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    return DC_OK;
}

int dc_grid_from_extent(dc_raster_grid *g, const double te[4], const double tr[2],
                        const char *t_srs, const char *srs_fallback, dc_error *err)
{
    memset(g, 0, sizeof *g);
    if (!(tr[0] > 0.0 && tr[1] > 0.0))
        return dc_fail(err, DC_ERR_ARG, "-tr %g %g: resolutions must be positive", tr[0], tr[1]);
    if (!(te[2] > te[0] && te[3] > te[1]))
        return dc_fail(err, DC_ERR_ARG, "-te %g %g %g %g: empty extent", te[0], te[1], te[2],
                       te[3]);
    double w = (te[2] - te[0]) / tr[0], h = (te[3] - te[1]) / tr[1];
    if (w > 1e7 || h > 1e7)
        return dc_fail(err, DC_ERR_ARG, "-te/-tr give a %.0fx%.0f raster: too large", w, h);
    g->width = (int)floor(w + 0.5);
    g->height = (int)floor(h + 0.5);
    if (g->width < 1 || g->height < 1)
        return dc_fail(err, DC_ERR_ARG, "-te/-tr give an empty raster");
    g->gt[0] = te[0];
    g->gt[1] = tr[0];
    g->gt[3] = te[3];
    g->gt[5] = -tr[1];
    if (t_srs) {
        OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
        char *wkt = NULL;
        if (!srs || OSRSetFromUserInput(srs, t_srs) != OGRERR_NONE ||
            OSRExportToWkt(srs, &wkt) != OGRERR_NONE) {
            if (srs)
                OSRDestroySpatialReference(srs);
            return dc_fail(err, DC_ERR_ARG, "-t_srs %s: unknown CRS", t_srs);
        }
        g->wkt = strdup(wkt);
        CPLFree(wkt);
        OSRDestroySpatialReference(srs);
    } else {
        g->wkt = strdup(srs_fallback ? srs_fallback : "");
    }
    if (!g->wkt)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    return DC_OK;
}

void dc_grid_free(dc_raster_grid *g)
{
    free(g->wkt);
    g->wkt = NULL;
}

int dc_grid_same_crs(const dc_raster_grid *a, const dc_raster_grid *b)
{
    if (!a->wkt[0] || !b->wkt[0])
        return !a->wkt[0] && !b->wkt[0];
    if (strcmp(a->wkt, b->wkt) == 0)
        return 1;
    OGRSpatialReferenceH sa = OSRNewSpatialReference(a->wkt);
    OGRSpatialReferenceH sb = OSRNewSpatialReference(b->wkt);
    int same = sa && sb && OSRIsSame(sa, sb);
    if (sa)
        OSRDestroySpatialReference(sa);
    if (sb)
        OSRDestroySpatialReference(sb);
    return same;
}

int dc_grid_same_geometry(const dc_raster_grid *a, const dc_raster_grid *b)
{
    if (a->width != b->width || a->height != b->height)
        return 0;
    /* Origins within 1/1000 pixel, pixel sizes within 1e-6 relative: what GeoTIFF round trips
     * of the same grid give, far below anything a resampling would change. */
    double px = fabs(a->gt[1]), py = fabs(a->gt[5]);
    if (fabs(a->gt[0] - b->gt[0]) > 1e-3 * px || fabs(a->gt[3] - b->gt[3]) > 1e-3 * py)
        return 0;
    if (fabs(a->gt[1] - b->gt[1]) > 1e-6 * px || fabs(a->gt[5] - b->gt[5]) > 1e-6 * py)
        return 0;
    return a->gt[2] == b->gt[2] && a->gt[4] == b->gt[4];
}
