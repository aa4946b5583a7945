/* gdal_decloud — writing and reading the coordinate ramps (ramps.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_port.h>
#include <cpl_vsi.h>

#include "ramps.h"

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

/* Write `bytes` to path through a temporary name, so a reader never sees half of it. */
static void write_file(const char *path, const void *bytes, size_t n)
{
    char tmp[256];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return;
    VSILFILE *f = VSIFOpenL(tmp, "wb");
    if (!f)
        return;
    size_t written = VSIFWriteL(bytes, 1, n, f);
    VSIFCloseL(f);
    if (written == n)
        VSIRename(tmp, path);
    else
        VSIUnlink(tmp);
}

static int exists(const char *path)
{
    VSIStatBufL st;
    return VSIStatL(path, &st) == 0;
}

/* 1 x N raw Int32, little-endian, with its EHdr header. */
static void write_row_ramp(const char *bil)
{
    const char *hdr_path = CPLResetExtension(bil, "hdr");
    if (exists(bil) && exists(hdr_path))
        return;
    char hdr[256];
    int len = snprintf(hdr, sizeof hdr,
                       "BYTEORDER I\nLAYOUT BIL\nNROWS %d\nNCOLS 1\nNBANDS 1\nNBITS 32\n"
                       "PIXELTYPE SIGNEDINT\n", DCP_RAMP_LENGTH);
    char hdr_copy[256];
    snprintf(hdr_copy, sizeof hdr_copy, "%s", hdr_path); /* CPLResetExtension's buffer rotates */
    write_file(hdr_copy, hdr, (size_t)len);
    GInt32 *values = malloc(sizeof(GInt32) * DCP_RAMP_LENGTH);
    if (!values)
        return;
    for (int i = 0; i < DCP_RAMP_LENGTH; i++) {
        GInt32 v = i;
        CPL_LSBPTR32(&v); /* EHdr BYTEORDER I: little-endian on any host */
        values[i] = v;
    }
    write_file(bil, values, sizeof(GInt32) * DCP_RAMP_LENGTH);
    free(values);
}

/* N x 1 ASCII grid: "0 1 2 ...". */
static void write_column_ramp(const char *asc)
{
    if (exists(asc))
        return;
    const size_t cap = 128 + (size_t)DCP_RAMP_LENGTH * 8;
    char *text = malloc(cap);
    if (!text)
        return;
    size_t len = (size_t)snprintf(text, cap, "ncols %d\nnrows 1\nxllcorner 0\nyllcorner 0\n"
                                  "cellsize 1\n", DCP_RAMP_LENGTH);
    for (int i = 0; i < DCP_RAMP_LENGTH; i++)
        len += (size_t)snprintf(text + len, cap - len, i + 1 < DCP_RAMP_LENGTH ? "%d " : "%d\n", i);
    write_file(asc, text, len);
    free(text);
}

void dcp_ramps_install(void)
{
    pthread_mutex_lock(&install_lock);
    write_column_ramp(DCP_XRAMP_PATH);
    write_row_ramp(DCP_YRAMP_PATH);
    pthread_mutex_unlock(&install_lock);
}

/* Value k of a source buffer as a double, whatever its type. */
static double source_value(const void *buf, GDALDataType type, size_t k)
{
    double v = 0;
    const int size = GDALGetDataTypeSizeBytes(type);
    GDALCopyWords((const GByte *)buf + k * (size_t)size, type, 0, &v, GDT_Float64, 0, 1);
    return v;
}

static int to_index(double v, int limit, int *out)
{
    if (!(v >= 0 && v < limit) || v != floor(v))
        return 0;
    *out = (int)v;
    return 1;
}

int dcp_ramps_read(void **sources, int nsources, int xsrc, int ysrc, GDALDataType type, int nbx,
                   int nby, int width, int height, int *cols, int *rows, char *msg, size_t n)
{
    if (xsrc >= nsources || ysrc >= nsources) {
        snprintf(msg, n, "%s=%d: the band has only %d sources", xsrc >= nsources ? "xsrc" : "ysrc",
                 xsrc >= nsources ? xsrc : ysrc, nsources);
        return -1;
    }
    const int wlimit = width > 0 ? width : DCP_RAMP_LENGTH;
    const int hlimit = height > 0 ? height : DCP_RAMP_LENGTH;
    const size_t last_row = (size_t)(nby - 1) * nbx;
    for (int i = 0; i < nbx; i++) {
        /* Row 0 gives the columns; the last row must agree, or this is not a column ramp. */
        double v = source_value(sources[xsrc], type, (size_t)i);
        if (!to_index(v, wlimit, &cols[i]) ||
            source_value(sources[xsrc], type, last_row + (size_t)i) != v) {
            snprintf(msg, n, "xsrc=%d: source %d is not the column ramp of a %d-pixel-wide raster "
                     "(value %g at buffer column %d)", xsrc, xsrc, wlimit, v, i);
            return -1;
        }
    }
    for (int j = 0; j < nby; j++) {
        double v = source_value(sources[ysrc], type, (size_t)j * nbx);
        if (!to_index(v, hlimit, &rows[j]) ||
            source_value(sources[ysrc], type, (size_t)j * nbx + (size_t)(nbx - 1)) != v) {
            snprintf(msg, n, "ysrc=%d: source %d is not the row ramp of a %d-pixel-high raster "
                     "(value %g at buffer row %d)", ysrc, ysrc, hlimit, v, j);
            return -1;
        }
    }
    return 0;
}
