/* diffcr — reading dataset images with GDAL: probe size/bands, read a window of chosen bands as
 * model-range floats, channels last.
 *
 * Each call opens its own GDAL handle, so loader threads never share one (GDAL dataset handles
 * are not thread-safe; opening a small GeoTIFF costs far less than a training step). GDAL's own
 * messages are silenced per call and turned into one-line dc_error messages. */
#include <gdal.h>
#include <cpl_error.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diffcr/dataset.h"

void dc_dataset_join(char *out, size_t size, const char *base, const char *path)
{
    if (!base || !*base || path[0] == '/' || strncmp(path, "/vsi", 4) == 0)
        snprintf(out, size, "%s", path);
    else
        snprintf(out, size, "%s/%s", base, path);
}

static GDALDatasetH open_quiet(const char *path, dc_error *err)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) {
        const char *m = CPLGetLastErrorMsg();
        dc_fail(err, DC_ERR_IO, "%s: cannot open%s%s", path, m && *m ? ": " : "", m ? m : "");
    }
    CPLPopErrorHandler();
    return ds;
}

int dc_dataset_probe(const char *path, int *w, int *h, int *bands, dc_error *err)
{
    GDALDatasetH ds = open_quiet(path, err);
    if (!ds)
        return DC_ERR_IO;
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    *bands = GDALGetRasterCount(ds);
    GDALClose(ds);
    return DC_OK;
}

int dc_dataset_read(const char *path, const int *bands, int nb, int x0, int y0, int tile,
                    double scale, double offset, float *out, int out_stride, int first,
                    dc_error *err)
{
    GDALDatasetH ds = open_quiet(path, err);
    if (!ds)
        return DC_ERR_IO;
    int rc = DC_OK;
    int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds), n = GDALGetRasterCount(ds);
    for (int b = 0; b < nb && rc == DC_OK; b++)
        if (bands[b] < 1 || bands[b] > n)
            rc = dc_fail(err, DC_ERR_SHAPE, "%s: has %d bands, band %d requested", path, n, bands[b]);
    if (rc == DC_OK && (x0 < 0 || y0 < 0 || x0 + tile > W || y0 + tile > H))
        rc = dc_fail(err, DC_ERR_SHAPE, "%s: is %dx%d, too small for a %dx%d window at (%d,%d)", path,
                     W, H, tile, tile, x0, y0);
    if (rc == DC_OK) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GSpacing px = (GSpacing)out_stride * sizeof(float);
        CPLErr e = GDALDatasetRasterIOEx(ds, GF_Read, x0, y0, tile, tile, out + first, tile, tile,
                                         GDT_Float32, nb, (int *)bands, px, px * tile, sizeof(float),
                                         NULL);
        if (e != CE_None)
            rc = dc_fail(err, DC_ERR_IO, "%s: read failed: %s", path, CPLGetLastErrorMsg());
        CPLPopErrorHandler();
    }
    GDALClose(ds);
    if (rc != DC_OK)
        return rc;
    /* A NaN (a float raster's usual nodata) or an infinity would reach the loss and poison every
     * weight, so the sample is refused here, naming where the bad value is. */
    for (size_t p = 0; p < (size_t)tile * tile; p++) {
        float *v = out + p * out_stride + first;
        for (int b = 0; b < nb; b++) {
            float raw = v[b];
            v[b] = (float)(raw * scale + offset);
            if (!isfinite(v[b]))
                return dc_fail(err, DC_ERR_FORMAT,
                               "%s: band %d is %g at pixel (%d, %d)%s; training and evaluation samples "
                               "must be gap-free: fill or crop the nodata",
                               path, bands[b], raw, x0 + (int)(p % (size_t)tile), y0 + (int)(p / (size_t)tile),
                               isfinite(raw) ? " (not finite after scale and offset)" : "");
        }
    }
    return DC_OK;
}
