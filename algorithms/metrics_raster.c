/* diffcr — raster reading and writing for diffcr-evaluate (metrics and baselines).
 *
 * Evaluation works on whole images in memory (Sen2_MTC tiles are 256x256; a full Sentinel-2 tile
 * of 3 bands is 1.4 GB of floats, which is the practical limit): the selected bands are read as
 * Float32, channels last. Pixels where any selected band equals its nodata value are marked
 * invalid. Output (baseline composites) goes to a temporary sibling file that is renamed into
 * place only when complete, so a failure leaves no partial output. */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "diffcr/metrics.h"

/* GDAL's last message, if any, after our own words. */
static int gdal_fail(dc_error *err, int code, const char *what, const char *path)
{
    const char *msg = CPLGetLastErrorMsg();
    if (msg && msg[0])
        return dc_fail(err, code, "%s: %s (%s)", path, what, msg);
    return dc_fail(err, code, "%s: %s", path, what);
}

static int open_raster(const char *path, GDALDatasetH *out, dc_error *err)
{
    VSIStatBufL st;
    if (VSIStatL(path, &st) != 0)
        return dc_fail(err, DC_ERR_IO, "%s: no such file", path);
    CPLErrorReset();
    *out = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!*out)
        return gdal_fail(err, DC_ERR_FORMAT, "not a raster GDAL can read", path);
    return DC_OK;
}

void dc_eval_raster_free(dc_eval_raster *r)
{
    if (!r)
        return;
    free(r->data);
    free(r->valid);
    free(r->wkt);
    memset(r, 0, sizeof *r);
}

static int read_open(GDALDatasetH ds, const char *path, const int *bands, int nb,
                     dc_eval_raster *r, dc_error *err)
{
    int count = GDALGetRasterCount(ds), first3[3] = {1, 2, 3};
    if (count < 1)
        return dc_fail(err, DC_ERR_FORMAT, "%s: has no raster bands", path);
    if (nb == 0) { /* default: the first 3 bands (R, G, B in Sen2_MTC), or all of fewer */
        bands = first3;
        nb = count < 3 ? count : 3;
    }
    for (int k = 0; k < nb; k++)
        if (bands[k] < 1 || bands[k] > count)
            return dc_fail(err, DC_ERR_ARG, "%s: band %d out of range (the file has %d band%s)",
                           path, bands[k], count, count == 1 ? "" : "s");
    r->w = GDALGetRasterXSize(ds);
    r->h = GDALGetRasterYSize(ds);
    r->c = nb;
    size_t npix = (size_t)r->w * (size_t)r->h;
    if (npix == 0 || npix > ((size_t)1 << 40) / (size_t)nb)
        return dc_fail(err, DC_ERR_FORMAT, "%s: unsupported size %dx%d", path, r->w, r->h);
    r->data_type = (int)GDALGetRasterDataType(GDALGetRasterBand(ds, bands[0]));
    r->have_geotransform = GDALGetGeoTransform(ds, r->geotransform) == CE_None;
    const char *wkt = GDALGetProjectionRef(ds);
    if (wkt && wkt[0] && !(r->wkt = strdup(wkt)))
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    r->data = malloc(npix * (size_t)nb * sizeof *r->data);
    if (!r->data)
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory for %dx%dx%d values", path, r->w,
                       r->h, nb);
    int sz = (int)sizeof(float);
    CPLErrorReset();
    if (GDALDatasetRasterIO(ds, GF_Read, 0, 0, r->w, r->h, r->data, r->w, r->h, GDT_Float32, nb,
                            (int *)bands, sz * nb, (GSpacing)sz * nb * r->w, sz) != CE_None)
        return gdal_fail(err, DC_ERR_IO, "read failed", path);
    for (int k = 0; k < nb; k++) {
        int has = 0;
        double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, bands[k]), &has);
        if (!has)
            continue;
        if (!r->valid) {
            if (!(r->valid = malloc(npix)))
                return dc_fail(err, DC_ERR_NOMEM, "out of memory");
            memset(r->valid, 1, npix);
        }
        float ndf = (float)nd; /* compare as read (Float32) */
        for (size_t p = 0; p < npix; p++) {
            float v = r->data[p * nb + k];
            if (v == ndf || (isnan(nd) && isnan(v)))
                r->valid[p] = 0;
        }
    }
    return DC_OK;
}

int dc_eval_raster_read(const char *path, const int *bands, int nb, dc_eval_raster *r,
                        dc_error *err)
{
    memset(r, 0, sizeof *r);
    if (nb < 0 || nb > DC_METRICS_MAX_BANDS || (nb > 0 && !bands))
        return dc_fail(err, DC_ERR_ARG, "select 1 to %d bands", DC_METRICS_MAX_BANDS);
    GDALDatasetH ds;
    int rc = open_raster(path, &ds, err);
    if (rc != DC_OK)
        return rc;
    rc = read_open(ds, path, bands, nb, r, err);
    GDALClose(ds);
    if (rc != DC_OK)
        dc_eval_raster_free(r);
    return rc;
}

int dc_eval_mask_read(const char *path, int w, int h, uint8_t **out, dc_error *err)
{
    *out = NULL;
    dc_eval_raster m;
    int one = 1;
    int rc = dc_eval_raster_read(path, &one, 1, &m, err);
    if (rc != DC_OK)
        return rc;
    if (m.w != w || m.h != h) {
        rc = dc_fail(err, DC_ERR_SHAPE, "%s: mask is %dx%d, the images are %dx%d", path, m.w, m.h,
                     w, h);
        dc_eval_raster_free(&m);
        return rc;
    }
    size_t npix = (size_t)w * (size_t)h;
    uint8_t *mk = malloc(npix);
    if (!mk) {
        dc_eval_raster_free(&m);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    }
    for (size_t p = 0; p < npix; p++) /* nonzero = evaluate; NaN and nodata = not */
        mk[p] = m.data[p] != 0.0f && !isnan(m.data[p]) && (!m.valid || m.valid[p]);
    dc_eval_raster_free(&m);
    *out = mk;
    return DC_OK;
}

/* ---- writing ---- */

static double to_type(double v, GDALDataType t)
{
    double lo, hi;
    switch (t) {
    case GDT_Byte: lo = 0; hi = 255; break;
    case GDT_UInt16: lo = 0; hi = 65535; break;
    case GDT_Int16: lo = -32768; hi = 32767; break;
    case GDT_UInt32: lo = 0; hi = 4294967295.0; break;
    case GDT_Int32: lo = -2147483648.0; hi = 2147483647.0; break;
    default: return v; /* floating point */
    }
    if (isnan(v))
        return lo;
    v = floor(v + 0.5);
    return v < lo ? lo : (v > hi ? hi : v);
}

static char *tmp_sibling(const char *path)
{
    char *a = strdup(path), *b = strdup(path), *out = NULL;
    if (a && b) {
        const char *dir = dirname(a), *base = basename(b);
        size_t n = strlen(dir) + strlen(base) + 48;
        if ((out = malloc(n)))
            snprintf(out, n, "%s/.%s.diffcr-tmp-%ld.tif", dir, base, (long)getpid());
    }
    free(a);
    free(b);
    return out;
}

int dc_eval_raster_write(const char *path, const dc_eval_raster *like, const float *data, int c,
                         int data_type, dc_error *err)
{
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    if (!drv)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "GDAL has no GTiff driver");
    char *tmp = tmp_sibling(path);
    if (!tmp)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    GDALDataType t = (GDALDataType)data_type;
    size_t npix = (size_t)like->w * (size_t)like->h;
    double *buf = malloc(npix * sizeof *buf);
    CPLErrorReset();
    GDALDatasetH ds = buf ? GDALCreate(drv, tmp, like->w, like->h, c, t, NULL) : NULL;
    int rc = DC_OK;
    if (!buf)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    else if (!ds)
        rc = gdal_fail(err, DC_ERR_IO, "cannot create the output", path);
    if (rc == DC_OK) {
        if (like->have_geotransform)
            GDALSetGeoTransform(ds, (double *)like->geotransform);
        if (like->wkt)
            GDALSetProjection(ds, like->wkt);
        for (int k = 0; k < c && rc == DC_OK; k++) {
            for (size_t p = 0; p < npix; p++)
                buf[p] = to_type(data[p * c + k], t);
            if (GDALRasterIO(GDALGetRasterBand(ds, k + 1), GF_Write, 0, 0, like->w, like->h, buf,
                             like->w, like->h, GDT_Float64, 0, 0) != CE_None)
                rc = gdal_fail(err, DC_ERR_IO, "write failed", path);
        }
    }
    if (ds) {
        GDALClose(ds);
        if (rc == DC_OK && CPLGetLastErrorType() >= CE_Failure)
            rc = gdal_fail(err, DC_ERR_IO, "write failed", path);
    }
    if (rc == DC_OK && rename(tmp, path) != 0)
        rc = dc_fail(err, DC_ERR_IO, "%s: cannot move the output into place", path);
    if (rc != DC_OK && ds)
        VSIUnlink(tmp);
    free(buf);
    free(tmp);
    return rc;
}
