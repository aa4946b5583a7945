/* diffcr — writing the synthetic landscape as a georeferenced raster (GDAL).
 *
 * Rendered in strips of rows (dc_landscape_render is window-independent), so memory stays at
 * width x strip. GTiff gets PHOTOMETRIC=RGB unless the caller chose otherwise, so viewers show
 * bands 1-3 as colour and band 4 (NIR) as an extra sample. */
#include <stdio.h>
#include <stdlib.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "diffcr/landscape.h"

#define STRIP_ROWS 128

static const char *band_names[DC_LANDSCAPE_BANDS] = {"Red", "Green", "Blue", "NIR"};
static const GDALColorInterp band_interp[DC_LANDSCAPE_BANDS] = {GCI_RedBand, GCI_GreenBand,
                                                                GCI_BlueBand, GCI_Undefined};

static const char *gdal_msg(void)
{
    const char *m = CPLGetLastErrorMsg();
    return (m && *m) ? m : "unknown GDAL error";
}

static int set_georeference(GDALDatasetH ds, const dc_landscape_options *o, dc_error *err)
{
    double gt[6] = {o->origin_x, o->pixel_size, 0.0, o->origin_y, 0.0, -o->pixel_size};
    if (GDALSetGeoTransform(ds, gt) != CE_None)
        return dc_fail(err, DC_ERR_IO, "landscape: cannot set the geotransform: %s", gdal_msg());
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (!srs)
        return dc_fail(err, DC_ERR_NOMEM, "landscape: out of memory");
    char *wkt = NULL;
    int rc = DC_OK;
    if (OSRImportFromEPSG(srs, o->epsg) != OGRERR_NONE)
        rc = dc_fail(err, DC_ERR_ARG, "landscape: unknown CRS EPSG:%d", o->epsg);
    else if (OSRExportToWkt(srs, &wkt) != OGRERR_NONE)
        rc = dc_fail(err, DC_ERR_ARG, "landscape: cannot express EPSG:%d as WKT", o->epsg);
    else if (GDALSetProjection(ds, wkt) != CE_None)
        rc = dc_fail(err, DC_ERR_IO, "landscape: cannot set the CRS: %s", gdal_msg());
    CPLFree(wkt);
    OSRDestroySpatialReference(srs);
    return rc;
}

static int write_pixels(GDALDatasetH ds, const dc_landscape_options *o, dc_error *err)
{
    int rows = o->height < STRIP_ROWS ? o->height : STRIP_ROWS;
    uint16_t *buf = malloc((size_t)o->width * rows * DC_LANDSCAPE_BANDS * sizeof *buf);
    if (!buf)
        return dc_fail(err, DC_ERR_NOMEM, "landscape: out of memory for a %dx%d strip",
                       o->width, rows);
    int rc = DC_OK;
    int nb = DC_LANDSCAPE_BANDS;
    for (int y = 0; y < o->height && rc == DC_OK; y += rows) {
        int h = o->height - y < rows ? o->height - y : rows;
        rc = dc_landscape_render(o, 0, y, o->width, h, buf, err);
        if (rc == DC_OK &&
            GDALDatasetRasterIO(ds, GF_Write, 0, y, o->width, h, buf, o->width, h, GDT_UInt16, nb,
                                NULL, (GSpacing)nb * 2, (GSpacing)nb * 2 * o->width, 2) != CE_None)
            rc = dc_fail(err, DC_ERR_IO, "landscape: write failed: %s", gdal_msg());
    }
    free(buf);
    return rc;
}

int dc_landscape_write(const dc_landscape_options *o, const char *path, const char *format,
                       char **create_options, dc_error *err)
{
    if (!o || !path || !*path)
        return dc_fail(err, DC_ERR_ARG, "landscape: no output path");
    if (o->width <= 0 || o->height <= 0 || o->width > 100000 || o->height > 100000)
        return dc_fail(err, DC_ERR_ARG, "landscape: size %dx%d out of range 1..100000",
                       o->width, o->height);
    if (!(o->pixel_size > 0.0))
        return dc_fail(err, DC_ERR_ARG, "landscape: pixel size must be positive");
    GDALAllRegister();
    if (!format)
        format = "GTiff";
    GDALDriverH drv = GDALGetDriverByName(format);
    if (!drv)
        return dc_fail(err, DC_ERR_ARG, "no such GDAL raster driver: %s", format);
    if (!GDALGetMetadataItem(drv, GDAL_DCAP_CREATE, NULL))
        return dc_fail(err, DC_ERR_UNSUPPORTED,
                       "GDAL driver %s cannot create files (write GTiff and gdal_translate)", format);
    char **co = CSLDuplicate(create_options);
    if (EQUAL(format, "GTiff") && !CSLFetchNameValue(co, "PHOTOMETRIC"))
        co = CSLSetNameValue(co, "PHOTOMETRIC", "RGB");
    CPLErrorReset();
    GDALDatasetH ds = GDALCreate(drv, path, o->width, o->height, DC_LANDSCAPE_BANDS, GDT_UInt16, co);
    CSLDestroy(co);
    if (!ds)
        return dc_fail(err, DC_ERR_IO, "cannot create %s: %s", path, gdal_msg());
    int rc = set_georeference(ds, o, err);
    for (int b = 0; b < DC_LANDSCAPE_BANDS && rc == DC_OK; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        GDALSetDescription(band, band_names[b]);
        if (GDALSetRasterColorInterpretation(band, band_interp[b]) != CE_None)
            rc = dc_fail(err, DC_ERR_IO, "cannot set band %d colour: %s", b + 1, gdal_msg());
    }
    if (rc == DC_OK) {
        char note[128];
        snprintf(note, sizeof note, "synthetic landscape, seed %llu, reflectance x 10000",
                 (unsigned long long)o->seed);
        GDALSetMetadataItem(ds, "DIFFCR_SOURCE", note, NULL);
        rc = write_pixels(ds, o, err);
    }
    CPLErrorReset();
    GDALClose(ds);
    if (rc == DC_OK && CPLGetLastErrorType() >= CE_Failure)
        rc = dc_fail(err, DC_ERR_IO, "cannot finish writing %s: %s", path, gdal_msg());
    if (rc != DC_OK) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDeleteDataset(drv, path);
        CPLPopErrorHandler();
    }
    return rc;
}
