/* diffcr — output files that appear complete or not at all.
 *
 * Rows go to a temporary GTiff in the output's folder (same file system, so the final rename is
 * atomic). GTiff output is renamed into place; any other driver (COG has no Create, others may
 * write side files) gets a CreateCopy of the temporary into a second temporary, which GDAL then
 * renames with its sidecars. An error or an interrupt deletes the temporaries: no partial output.
 * Values are rounded and clipped to the output type here; valid pixels never equal nodata. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include "decloud_internal.h"

/* dir/.STEM.diffcr-tmp-PID.EXT beside final_path: hidden, unique per process, and with the
 * final name's extension so GDAL's rename maps sidecar files (ENVI .hdr, ...) one to one. */
static char *sibling_tmp(const char *final_path, const char *ext)
{
    char *a = strdup(final_path), *b = strdup(final_path);
    char *out = NULL;
    if (a && b) {
        const char *dir = dirname(a);
        char *base = basename(b);
        char *dot = strrchr(base, '.');
        if (!ext) /* keep the final name's own extension */
            ext = dot && dot != base ? dot + 1 : "tmp";
        if (dot && dot != base)
            *dot = '\0';
        size_t n = strlen(dir) + strlen(base) + strlen(ext) + 64;
        out = malloc(n);
        if (out)
            snprintf(out, n, "%s/.%s.diffcr-tmp-%ld.%s", dir, base, (long)getpid(), ext);
    }
    free(a);
    free(b);
    return out;
}

static int setup(dc_raster_writer *w, const char *final_path, int nbands, GDALDataType type,
                 int has_nodata, double nodata, dc_error *err)
{
    w->final_path = strdup(final_path);
    if (!w->final_path)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    w->nbands = nbands;
    w->type = type;
    w->has_nodata = has_nodata;
    w->nodata = nodata;
    return DC_OK;
}

int dc_writer_create(dc_raster_writer *w, const char *final_path, const char *tmp_path,
                     const char *format, char **create_options, const dc_raster_grid *grid,
                     int nbands, GDALDataType type, int has_nodata, double nodata,
                     dc_error *err)
{
    memset(w, 0, sizeof *w);
    const char *fmt = format ? format : "GTiff";
    w->driver = GDALGetDriverByName(fmt);
    if (!w->driver || !GDALGetMetadataItem(w->driver, GDAL_DCAP_RASTER, NULL))
        return dc_fail(err, DC_ERR_ARG, "-of %s: no such GDAL raster driver", fmt);
    int is_gtiff = EQUAL(fmt, "GTiff");
    if (!is_gtiff && !GDALGetMetadataItem(w->driver, GDAL_DCAP_CREATE, NULL) &&
        !GDALGetMetadataItem(w->driver, GDAL_DCAP_CREATECOPY, NULL))
        return dc_fail(err, DC_ERR_ARG, "-of %s: the driver cannot write rasters", fmt);
    int rc = setup(w, final_path, nbands, type, has_nodata, nodata, err);
    if (rc != DC_OK)
        return rc;
    w->tmp_path = tmp_path ? strdup(tmp_path) : sibling_tmp(final_path, "gtiff.tif");
    if (!w->tmp_path) {
        dc_writer_abort(w, 0);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    }
    if (!is_gtiff) {
        w->copy_path = sibling_tmp(final_path, NULL);
        if (!w->copy_path) {
            dc_writer_abort(w, 0);
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
        }
    }
    /* -co go to the final driver; the intermediate GTiff of a copy is tiled for fast reads. */
    char **tmp_co = NULL;
    if (is_gtiff) {
        tmp_co = CSLDuplicate(create_options);
    } else {
        w->copy_options = CSLDuplicate(create_options);
        tmp_co = CSLSetNameValue(tmp_co, "TILED", "YES");
        tmp_co = CSLSetNameValue(tmp_co, "BIGTIFF", "IF_SAFER");
    }
    CPLErrorReset();
    GDALDriverH gtiff = GDALGetDriverByName("GTiff");
    w->ds = gtiff ? GDALCreate(gtiff, w->tmp_path, grid->width, grid->height, nbands, type,
                               tmp_co) : NULL;
    CSLDestroy(tmp_co);
    if (!w->ds) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "cannot create %s", w->tmp_path);
        dc_writer_abort(w, 0);
        return rc;
    }
    if (GDALSetGeoTransform(w->ds, (double *)grid->gt) != CE_None ||
        (grid->wkt[0] && GDALSetProjection(w->ds, grid->wkt) != CE_None)) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "%s: cannot write georeferencing", w->tmp_path);
        dc_writer_abort(w, 0);
        return rc;
    }
    for (int b = 1; b <= nbands && has_nodata; b++) {
        if (GDALSetRasterNoDataValue(GDALGetRasterBand(w->ds, b), nodata) != CE_None) {
            rc = dc_gdal_fail(err, DC_ERR_IO, "%s: cannot set nodata %g", w->tmp_path, nodata);
            dc_writer_abort(w, 0);
            return rc;
        }
    }
    return DC_OK;
}

int dc_writer_reopen(dc_raster_writer *w, const char *final_path, const char *tmp_path,
                     int nbands, GDALDataType type, int has_nodata, double nodata,
                     dc_error *err)
{
    memset(w, 0, sizeof *w);
    int rc = setup(w, final_path, nbands, type, has_nodata, nodata, err);
    if (rc != DC_OK)
        return rc;
    w->driver = GDALGetDriverByName("GTiff");
    w->tmp_path = strdup(tmp_path);
    CPLErrorReset();
    w->ds = w->tmp_path ? GDALOpenEx(tmp_path, GDAL_OF_RASTER | GDAL_OF_UPDATE, NULL, NULL, NULL)
                        : NULL;
    if (!w->ds) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "cannot reopen %s", tmp_path);
        dc_writer_abort(w, 1);
        return rc;
    }
    return DC_OK;
}

int dc_writer_write_rows(dc_raster_writer *w, int x, int y, int width, int nrows,
                         const float *values, const uint8_t *valid, dc_error *err)
{
    const int B = w->nbands;
    /* Convert and write in chunks of rows so the conversion buffer stays small (~8 MB). */
    int chunk = (int)(((size_t)1 << 20) / ((size_t)width * B));
    chunk = chunk < 1 ? 1 : (chunk > nrows ? nrows : chunk);
    size_t n = (size_t)width * chunk * B;
    if (n > w->rowbuf_len) {
        double *nb = realloc(w->rowbuf, n * sizeof(double));
        if (!nb)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
        w->rowbuf = nb;
        w->rowbuf_len = n;
    }
    for (int r0 = 0; r0 < nrows; r0 += chunk) {
        int rows = nrows - r0 < chunk ? nrows - r0 : chunk;
        size_t base = (size_t)r0 * width;
        for (size_t p = 0; p < (size_t)width * rows; p++) {
            for (int b = 0; b < B; b++) {
                double v;
                if (valid && !valid[base + p]) {
                    v = w->has_nodata ? w->nodata : 0.0;
                } else {
                    v = dc_dn_to_type(values[(base + p) * B + b], w->type);
                    if (w->has_nodata)
                        v = dc_avoid_nodata(v, w->nodata, w->type);
                }
                w->rowbuf[p * B + b] = v;
            }
        }
        CPLErrorReset();
        if (GDALDatasetRasterIO(w->ds, GF_Write, x, y + r0, width, rows, w->rowbuf, width, rows,
                                GDT_Float64, B, NULL, (int)sizeof(double) * B,
                                (int)sizeof(double) * B * width, (int)sizeof(double)) != CE_None ||
            CPLGetLastErrorType() == CE_Failure)
            return dc_gdal_fail(err, DC_ERR_IO, "%s: write failed (disk full?)", w->final_path);
    }
    return DC_OK;
}

static void free_writer(dc_raster_writer *w)
{
    free(w->final_path);
    free(w->tmp_path);
    free(w->copy_path);
    CSLDestroy(w->copy_options);
    free(w->rowbuf);
    memset(w, 0, sizeof *w);
}

/* Close the dataset; 0 when GDAL reported a failure while flushing (e.g. ENOSPC). */
static int close_checked(GDALDatasetH ds)
{
    CPLErrorReset();
    GDALFlushCache(ds);
    int ok = CPLGetLastErrorType() != CE_Failure;
    CPLErrorReset();
    GDALClose(ds);
    return ok && CPLGetLastErrorType() != CE_Failure;
}

int dc_writer_commit(dc_raster_writer *w, GDALProgressFunc progress, void *progress_arg,
                     dc_error *err)
{
    int rc = DC_OK;
    GDALDatasetH ds = w->ds;
    w->ds = NULL;
    if (!close_checked(ds)) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "%s: write failed (disk full?)", w->final_path);
        dc_writer_abort(w, 0);
        return rc;
    }
    if (!w->copy_path) {
        if (rename(w->tmp_path, w->final_path) != 0) {
            rc = dc_fail(err, DC_ERR_IO, "cannot rename %s to %s: %s", w->tmp_path,
                         w->final_path, strerror(errno));
            dc_writer_abort(w, 0);
            return rc;
        }
        free_writer(w);
        return DC_OK;
    }
    CPLErrorReset();
    GDALDatasetH src = GDALOpenEx(w->tmp_path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!src) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "cannot reopen %s", w->tmp_path);
        dc_writer_abort(w, 0);
        return rc;
    }
    GDALDatasetH out = GDALCreateCopy(w->driver, w->copy_path, src, FALSE, w->copy_options,
                                      progress, progress_arg);
    int copy_failed = !out || CPLGetLastErrorType() == CE_Failure;
    if (!copy_failed)
        copy_failed = !close_checked(out);
    else if (out)
        GDALClose(out);
    GDALClose(src);
    if (copy_failed) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "cannot write %s", w->final_path);
        dc_writer_abort(w, 0);
        return rc;
    }
    unlink(w->tmp_path);
    CPLErrorReset();
    if (GDALRenameDataset(w->driver, w->final_path, w->copy_path) != CE_None) {
        rc = dc_gdal_fail(err, DC_ERR_IO, "cannot rename %s to %s", w->copy_path, w->final_path);
        dc_writer_abort(w, 0);
        return rc;
    }
    free_writer(w);
    return DC_OK;
}

void dc_writer_abort(dc_raster_writer *w, int keep_tmp)
{
    if (w->ds) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALClose(w->ds);
        CPLPopErrorHandler();
        w->ds = NULL;
    }
    if (w->tmp_path && !keep_tmp)
        unlink(w->tmp_path);
    if (w->copy_path && w->driver) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        VSIStatBufL st;
        if (VSIStatL(w->copy_path, &st) == 0 && GDALDeleteDataset(w->driver, w->copy_path) != CE_None)
            unlink(w->copy_path);
        CPLPopErrorHandler();
    }
    free_writer(w);
}
