/* diffcr — the cloud simulator on raster files (GDAL): what diffcr-simulate runs.
 *
 * Reads the clear raster in strips of rows, simulates each strip with dc_cloud_sim_tile() at its
 * absolute position and with the whole raster as the calibration frame (so the strips join
 * seamlessly and the cover is met over the whole raster), and writes
 *   PREFIX_date<k>.EXT   the cloudy dates, same bands, grid, CRS and data type as the input;
 *   PREFIX_mask<k>.EXT   Byte masks, 0 clear, 1 thin cloud, 2 thick cloud, 3 shadow (with a colour
 *                        table and the realised cloud fraction as metadata DIFFCR_CLOUD_FRACTION);
 *   PREFIX_clear.EXT     the selected input bands unchanged: the clear target.
 * All outputs are validated up front; any failure deletes what was already created. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "diffcr/cloud_sim.h"

#define MAX_OUTPUTS (2 * DC_CLOUD_SIM_MAX_DATES + 1)

void dc_cloud_sim_raster_defaults(dc_cloud_sim_raster_options *o)
{
    memset(o, 0, sizeof *o);
    dc_cloud_sim_defaults(&o->sim);
    o->format = "GTiff";
    o->write_clear = 1;
    o->seed = 0;
}

static const char *gdal_msg(void)
{
    const char *m = CPLGetLastErrorMsg();
    return (m && *m) ? m : "unknown GDAL error";
}

/* Everything one run holds, so one cleanup path frees it. */
typedef struct sim_run {
    GDALDatasetH in;
    GDALDriverH drv;
    int nb, w, h;
    int bands[DC_CLOUD_SIM_MAX_BANDS];
    int kinds[DC_CLOUD_SIM_MAX_BANDS];
    int has_nodata[DC_CLOUD_SIM_MAX_BANDS];
    double nodata[DC_CLOUD_SIM_MAX_BANDS];
    GDALDataType type;
    GDALDatasetH out[MAX_OUTPUTS];
    char *path[MAX_OUTPUTS];
    int nout;
    int clear_index;               /* index into out[] of the clear target, -1 when skipped */
    size_t cloudy[DC_CLOUD_SIM_MAX_DATES]; /* flagged pixels per date */
} sim_run;

/* The largest DN a type holds: the simulator clips there (float types: effectively none). */
static double type_max(GDALDataType t)
{
    switch (t) {
    case GDT_Byte: return 255.0;
    case GDT_UInt16: return 65535.0;
    case GDT_Int16: return 32767.0;
    case GDT_UInt32: return 4294967295.0;
    case GDT_Int32: return 2147483647.0;
    default: return FLT_MAX;
    }
}

static int name_has(const char *s, const char *word)
{
    return s && strcasestr(s, word) != NULL;
}

/* Band kind from colour interpretation or description (B02/B03/B04/B08 are Sentinel-2 names). */
static int guess_kind(GDALRasterBandH b)
{
    switch (GDALGetRasterColorInterpretation(b)) {
    case GCI_RedBand: return DC_BAND_RED;
    case GCI_GreenBand: return DC_BAND_GREEN;
    case GCI_BlueBand: return DC_BAND_BLUE;
    default: break;
    }
    const char *d = GDALGetDescription(b);
    if (name_has(d, "nir") || name_has(d, "B08") || name_has(d, "B8A"))
        return DC_BAND_NIR;
    if (name_has(d, "blue") || name_has(d, "B02"))
        return DC_BAND_BLUE;
    if (name_has(d, "green") || name_has(d, "B03"))
        return DC_BAND_GREEN;
    if (name_has(d, "red") || name_has(d, "B04"))
        return DC_BAND_RED;
    return DC_BAND_OTHER;
}

static int open_input(sim_run *r, const dc_cloud_sim_raster_options *o, dc_error *err)
{
    VSIStatBufL st;
    if (!o->input || VSIStatL(o->input, &st) != 0)
        return dc_fail(err, DC_ERR_IO, "%s: no such file", o->input ? o->input : "(none)");
    CPLErrorReset();
    r->in = GDALOpenEx(o->input, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!r->in)
        return dc_fail(err, DC_ERR_FORMAT, "%s: not a raster GDAL can read", o->input);
    int count = GDALGetRasterCount(r->in);
    r->w = GDALGetRasterXSize(r->in);
    r->h = GDALGetRasterYSize(r->in);
    if (count < 1)
        return dc_fail(err, DC_ERR_FORMAT, "%s: has no raster bands", o->input);
    r->nb = o->nbands > 0 ? o->nbands : count;
    if (r->nb > DC_CLOUD_SIM_MAX_BANDS)
        return dc_fail(err, DC_ERR_ARG, "%s: %d bands, at most %d can be simulated (choose with -b)",
                       o->input, r->nb, DC_CLOUD_SIM_MAX_BANDS);
    int guessed = 0;
    for (int i = 0; i < r->nb; i++) {
        int b = o->nbands > 0 ? o->bands[i] : i + 1;
        if (b < 1 || b > count)
            return dc_fail(err, DC_ERR_ARG, "band %d out of range 1..%d of %s", b, count, o->input);
        r->bands[i] = b;
        GDALRasterBandH band = GDALGetRasterBand(r->in, b);
        GDALDataType t = GDALGetRasterDataType(band);
        if (i == 0)
            r->type = t;
        else if (t != r->type)
            r->type = GDT_Float32; /* mixed types: keep every value */
        r->nodata[i] = GDALGetRasterNoDataValue(band, &r->has_nodata[i]);
        r->kinds[i] = o->have_band_kind ? o->band_kind[i] : guess_kind(band);
        guessed += r->kinds[i] != DC_BAND_OTHER;
    }
    /* nothing recognisable: 3 or 4 bands are taken as R, G, B(, NIR) */
    if (!o->have_band_kind && guessed == 0 && (r->nb == 3 || r->nb == 4)) {
        static const int rgbn[4] = {DC_BAND_RED, DC_BAND_GREEN, DC_BAND_BLUE, DC_BAND_NIR};
        memcpy(r->kinds, rgbn, (size_t)r->nb * sizeof *r->kinds);
    }
    if (GDALDataTypeIsComplex(r->type))
        return dc_fail(err, DC_ERR_UNSUPPORTED, "%s: complex data cannot be simulated", o->input);
    return DC_OK;
}

/* Pixel width in metres for the shadow offset: from a projected CRS, else Sentinel-2's 10 m. */
static double ground_pixel_size(GDALDatasetH ds)
{
    double gt[6], size = 10.0;
    OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
    if (srs && OSRIsProjected(srs) && GDALGetGeoTransform(ds, gt) == CE_None) {
        double metres = OSRGetLinearUnits(srs, NULL) * fabs(gt[1]);
        if (metres > 0.0 && metres < 1e6)
            size = metres;
    }
    return size;
}

static char *output_path(const char *prefix, const char *what, int k, const char *ext)
{
    char num[16] = "";
    if (k > 0)
        snprintf(num, sizeof num, "%d", k);
    size_t n = strlen(prefix) + strlen(what) + strlen(num) + strlen(ext) + 4;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s_%s%s%s%s", prefix, what, num, *ext ? "." : "", ext);
    return p;
}

/* Two paths that name the same file (realpath), for files that exist. */
static int same_file(const char *a, const char *b)
{
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

static int identity_bands(const sim_run *r)
{
    if (r->nb != GDALGetRasterCount(r->in))
        return 0;
    for (int i = 0; i < r->nb; i++)
        if (r->bands[i] != i + 1)
            return 0;
    return 1;
}

static int copy_georeference(GDALDatasetH dst, GDALDatasetH src, dc_error *err)
{
    double gt[6];
    if (GDALGetGeoTransform(src, gt) == CE_None && GDALSetGeoTransform(dst, gt) != CE_None)
        return dc_fail(err, DC_ERR_IO, "cannot set the geotransform: %s", gdal_msg());
    const char *wkt = GDALGetProjectionRef(src);
    if (wkt && *wkt && GDALSetProjection(dst, wkt) != CE_None)
        return dc_fail(err, DC_ERR_IO, "cannot set the CRS: %s", gdal_msg());
    return DC_OK;
}

static int create_output(sim_run *r, const dc_cloud_sim_raster_options *o, char *path, int nbands,
                         GDALDataType type, int is_mask, dc_error *err)
{
    int k = r->nout;
    CPLErrorReset();
    r->out[k] = GDALCreate(r->drv, path, r->w, r->h, nbands, type, o->create_options);
    if (!r->out[k]) {
        int rc = dc_fail(err, DC_ERR_IO, "cannot create %s: %s", path, gdal_msg());
        free(path);
        return rc;
    }
    r->path[k] = path; /* owned by the run from here */
    r->nout++;
    int rc = copy_georeference(r->out[k], r->in, err);
    if (rc != DC_OK)
        return rc;
    if (is_mask) {
        GDALRasterBandH b = GDALGetRasterBand(r->out[k], 1);
        static const GDALColorEntry colours[4] = {
            {0, 0, 0, 255}, {120, 170, 255, 255}, {255, 255, 255, 255}, {90, 60, 40, 255}};
        GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
        for (int i = 0; i < 4; i++)
            GDALSetColorEntry(ct, i, &colours[i]);
        GDALSetDescription(b, "cloud mask: 0 clear, 1 thin, 2 thick, 3 shadow");
        /* no category names: GTiff would need a .aux.xml side file for them */
        if (GDALSetRasterColorTable(b, ct) != CE_None)
            CPLErrorReset(); /* formats without colour tables still get the values */
        GDALDestroyColorTable(ct);
        return DC_OK;
    }
    for (int i = 0; i < nbands; i++) {
        GDALRasterBandH src = GDALGetRasterBand(r->in, r->bands[i]);
        GDALRasterBandH dst = GDALGetRasterBand(r->out[k], i + 1);
        GDALSetDescription(dst, GDALGetDescription(src));
        if (GDALSetRasterColorInterpretation(dst, GDALGetRasterColorInterpretation(src)) != CE_None)
            CPLErrorReset(); /* cosmetic only */
        if (r->has_nodata[i] && GDALSetRasterNoDataValue(dst, r->nodata[i]) != CE_None)
            return dc_fail(err, DC_ERR_IO, "cannot set nodata on %s: %s", path, gdal_msg());
    }
    return DC_OK;
}

/* Every output path first, so a clash is reported before any file exists. */
static int plan_outputs(sim_run *r, const dc_cloud_sim_raster_options *o, char **paths,
                        int *npaths, dc_error *err)
{
    const char *fmt = o->format ? o->format : "GTiff";
    r->drv = GDALGetDriverByName(fmt);
    if (!r->drv || !GDALGetMetadataItem(r->drv, GDAL_DCAP_RASTER, NULL))
        return dc_fail(err, DC_ERR_ARG, "no such GDAL raster driver: %s", fmt);
    if (!GDALGetMetadataItem(r->drv, GDAL_DCAP_CREATE, NULL))
        return dc_fail(err, DC_ERR_UNSUPPORTED,
                       "GDAL driver %s cannot create files (write GTiff and gdal_translate)", fmt);
    const char *ext = GDALGetMetadataItem(r->drv, GDAL_DMD_EXTENSION, NULL);
    ext = ext ? ext : "";
    if (!o->out_prefix || !*o->out_prefix)
        return dc_fail(err, DC_ERR_ARG, "no output prefix (--out-prefix)");
    int n = 0;
    for (int d = 0; d < o->sim.ndates; d++) {
        paths[n++] = output_path(o->out_prefix, "date", d + 1, ext);
        paths[n++] = output_path(o->out_prefix, "mask", d + 1, ext);
    }
    r->clear_index = -1;
    if (o->write_clear)
        paths[n++] = output_path(o->out_prefix, "clear", 0, ext);
    *npaths = n;
    for (int i = 0; i < n; i++)
        if (!paths[i])
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (!same_file(paths[i], o->input))
            continue;
        int is_clear = o->write_clear && i == n - 1;
        if (is_clear && identity_bands(r)) {
            free(paths[i]); /* the input already is the clear target */
            paths[i] = NULL;
            *npaths = --n;
            break;
        }
        return dc_fail(err, DC_ERR_ARG, "output %s would overwrite the input", paths[i]);
    }
    return DC_OK;
}

static int strip_rows(const sim_run *r, int ndates)
{
    /* about 48 MB of buffers: clear in double and float, dates in float, masks */
    size_t per_row = (size_t)r->w * ((size_t)r->nb * (12 + 4 * ndates) + ndates);
    size_t rows = (48u << 20) / (per_row ? per_row : 1);
    if (rows < 16)
        rows = 16;
    if (rows > 512)
        rows = 512;
    return rows > (size_t)r->h ? r->h : (int)rows;
}

static int run_strips(sim_run *r, const dc_cloud_sim_raster_options *o, dc_error *err)
{
    int nd = o->sim.ndates, nb = r->nb;
    int rows = strip_rows(r, nd);
    size_t px = (size_t)r->w * rows;
    double *clear64 = malloc(px * nb * sizeof *clear64);
    float *clear = malloc(px * nb * sizeof *clear);
    float *dates = malloc(px * nb * nd * sizeof *dates);
    uint8_t *masks = malloc(px * nd);
    dc_cloud_sim_options sim = o->sim;
    sim.frame_x0 = 0;
    sim.frame_y0 = 0;
    sim.frame_w = r->w;
    sim.frame_h = r->h;
    int rc = DC_OK;
    if (!clear64 || !clear || !dates || !masks)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory for strips of %d rows", rows);
    GSpacing ps = (GSpacing)nb * 8, fps = (GSpacing)nb * 4;
    for (int y = 0; y < r->h && rc == DC_OK; y += rows) {
        int h = r->h - y < rows ? r->h - y : rows;
        size_t n = (size_t)r->w * h;
        if (GDALDatasetRasterIO(r->in, GF_Read, 0, y, r->w, h, clear64, r->w, h, GDT_Float64, nb,
                                r->bands, ps, ps * r->w, 8) != CE_None) {
            rc = dc_fail(err, DC_ERR_IO, "%s: read failed: %s", o->input, gdal_msg());
            break;
        }
        for (size_t i = 0; i < n * nb; i++)
            clear[i] = (float)clear64[i];
        rc = dc_cloud_sim_tile(&sim, clear, h, r->w, nb, r->kinds, o->seed, 0, y, dates, masks, err);
        if (rc != DC_OK)
            break;
        /* nodata in the clear input stays nodata in every date, masked clear */
        for (size_t i = 0; i < n; i++)
            for (int b = 0; b < nb; b++)
                if (r->has_nodata[b] && clear64[i * nb + b] == r->nodata[b]) {
                    for (int d = 0; d < nd; d++) {
                        for (int c = 0; c < nb; c++)
                            dates[((size_t)d * n + i) * nb + c] = clear[i * nb + c];
                        masks[(size_t)d * n + i] = DC_MASK_CLEAR;
                    }
                    break;
                }
        for (int d = 0; d < nd && rc == DC_OK; d++) {
            const uint8_t *m = masks + (size_t)d * n;
            for (size_t i = 0; i < n; i++)
                r->cloudy[d] += m[i] == DC_MASK_THIN || m[i] == DC_MASK_THICK;
            if (GDALDatasetRasterIO(r->out[2 * d], GF_Write, 0, y, r->w, h, dates + (size_t)d * n * nb,
                                    r->w, h, GDT_Float32, nb, NULL, fps, fps * r->w, 4) != CE_None ||
                GDALDatasetRasterIO(r->out[2 * d + 1], GF_Write, 0, y, r->w, h, (void *)m, r->w, h,
                                    GDT_Byte, 1, NULL, 1, r->w, 1) != CE_None)
                rc = dc_fail(err, DC_ERR_IO, "write failed for date %d: %s", d + 1, gdal_msg());
        }
        if (rc == DC_OK && r->clear_index >= 0 &&
            GDALDatasetRasterIO(r->out[r->clear_index], GF_Write, 0, y, r->w, h, clear64, r->w, h,
                                GDT_Float64, nb, NULL, ps, ps * r->w, 8) != CE_None)
            rc = dc_fail(err, DC_ERR_IO, "write failed for the clear target: %s", gdal_msg());
        if (rc == DC_OK && o->progress && !o->progress((double)(y + h) / r->h, o->progress_arg))
            rc = dc_fail(err, DC_ERR_IO, "cancelled");
    }
    free(clear64);
    free(clear);
    free(dates);
    free(masks);
    return rc;
}

int dc_cloud_sim_raster(const dc_cloud_sim_raster_options *o, dc_error *err)
{
    if (!o)
        return dc_fail(err, DC_ERR_ARG, "cloud simulator: no options");
    dc_cloud_sim_options sim = o->sim;
    int rc = dc_cloud_sim_check(&sim, err);
    if (rc != DC_OK)
        return rc;
    GDALAllRegister();
    sim_run r;
    memset(&r, 0, sizeof r);
    r.clear_index = -1;
    char *paths[MAX_OUTPUTS] = {0};
    int npaths = 0;
    rc = open_input(&r, o, err);
    if (rc == DC_OK)
        rc = plan_outputs(&r, o, paths, &npaths, err);
    dc_cloud_sim_raster_options eff = *o;
    if (rc == DC_OK) {
        /* DN scale and clipping follow the data type unless set */
        if (!o->have_dn_scale)
            eff.sim.dn_scale = r.type == GDT_Byte ? 250.0 : 10000.0;
        if (!o->have_pixel_size)
            eff.sim.pixel_size_m = ground_pixel_size(r.in);
        double tmax = type_max(r.type);
        if (eff.sim.max_dn > tmax)
            eff.sim.max_dn = tmax;
    }
    for (int d = 0; d < sim.ndates && rc == DC_OK; d++) {
        rc = create_output(&r, &eff, paths[2 * d], r.nb, r.type, 0, err);
        paths[2 * d] = NULL; /* create_output took it */
        if (rc == DC_OK) {
            rc = create_output(&r, &eff, paths[2 * d + 1], 1, GDT_Byte, 1, err);
            paths[2 * d + 1] = NULL;
        }
    }
    if (rc == DC_OK && o->write_clear && npaths == 2 * sim.ndates + 1) {
        r.clear_index = r.nout;
        rc = create_output(&r, &eff, paths[npaths - 1], r.nb, r.type, 0, err);
        paths[npaths - 1] = NULL;
    }
    if (rc == DC_OK)
        rc = run_strips(&r, &eff, err);
    if (rc == DC_OK) {
        char v[64];
        for (int d = 0; d < sim.ndates; d++) {
            snprintf(v, sizeof v, "%.4f", (double)r.cloudy[d] / ((double)r.w * r.h));
            GDALSetMetadataItem(r.out[2 * d + 1], "DIFFCR_CLOUD_FRACTION", v, NULL);
            snprintf(v, sizeof v, "%llu", (unsigned long long)o->seed);
            GDALSetMetadataItem(r.out[2 * d], "DIFFCR_SIM_SEED", v, NULL);
            snprintf(v, sizeof v, "%d", d + 1);
            GDALSetMetadataItem(r.out[2 * d], "DIFFCR_SIM_DATE", v, NULL);
        }
    }
    CPLErrorReset();
    for (int i = 0; i < r.nout; i++)
        GDALClose(r.out[i]);
    if (rc == DC_OK && CPLGetLastErrorType() >= CE_Failure)
        rc = dc_fail(err, DC_ERR_IO, "cannot finish writing the outputs: %s", gdal_msg());
    if (rc != DC_OK) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        for (int i = 0; i < r.nout; i++)
            GDALDeleteDataset(r.drv, r.path[i]);
        CPLPopErrorHandler();
    }
    for (int i = 0; i < r.nout; i++)
        free(r.path[i]);
    for (int i = 0; i < MAX_OUTPUTS; i++)
        free(paths[i]);
    if (r.in)
        GDALClose(r.in);
    return rc;
}
