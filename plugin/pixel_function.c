/* gdal_decloud — the `decloud` pixel function.
 *
 * One call = one output band of one request. The request's place in the raster comes from the
 * ramp sources (ramps.h): raster column cols[i] for buffer column i, raster row rows[j] for
 * buffer row j. The function computes the covering full-resolution window
 * [min cols, max cols] x [min rows, max rows] with the very code diffcr-decloud runs
 * (dc_decloud_window: same reference grid, same tile grid fixed in raster space, same blending
 * order), so any window gives diffcr-decloud's pixels bit for bit, and keeps, for each buffer
 * pixel, the output pixel (rows[j], cols[i]) — for a decimated read (-outsize 50%, overviews,
 * a zoomed-out QGIS canvas) that is nearest-neighbour sampling at exactly the source pixels GDAL
 * chose for the ramps, i.e. the same as reading diffcr-decloud's output with the same request.
 * A decimated read still costs the model runs of the whole covering window: a diffusion model
 * cannot be decimated.
 *
 * Without ramps (a hand-written VRT, xsrc/ysrc absent) the position is only known when the
 * request is the whole raster (buffer = width x height: offset 0,0); any other request fails with
 * a CE_Failure explaining that the ramps are needed (or blockXSize/blockYSize = raster size, so
 * GDAL reads it whole). Computing a partial window "as if at 0,0" would silently give wrong,
 * seamy pixels — refusing is the honest choice.
 *
 * Per call: the dates are opened (this thread's own GDAL handles, closed at the end, so
 * concurrent readers never share a handle), aligned to the reference grid, read strip by strip;
 * the shared model runs behind the tile cache (one run per tile for every band, every pass and
 * every thread). Values are rounded/clipped to date 1's type and kept off nodata exactly as
 * diffcr-decloud's writer does, then converted to the caller's buffer type with GDALCopyWords.
 *
 * GDAL >= 3.12 could pass the window offset as builtin arguments (xoff/yoff, declared in the
 * registration metadata after a GDALVersionInfo("VERSION_NUM") check); that path is not
 * implemented: it gives no per-pixel mapping for decimated reads and cannot be tested on 3.6,
 * while the ramps work on every version. */
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "decloud_args.h"
#include "decloud_internal.h"
#include "diffcr/tile_cache.h"
#include "pixel_function.h"
#include "plugin_state.h"
#include "ramps.h"

typedef struct band_sink {
    const int *cols, *rows;
    int nbx, nby;
    int band;             /* 0-based */
    int nbands;
    GDALDataType type;    /* the output's type (date 1's) */
    int has_nodata;
    double nodata;
    double *out;          /* [nby][nbx] */
} band_sink;

/* Finished rows [y, y+nrows) x [x, x+w) of all bands: keep the buffer pixels that show them. */
static int sink_rows(void *ctx, int x, int y, int w, int nrows, const float *dn,
                     const uint8_t *valid, const float *std, dc_error *err)
{
    band_sink *s = ctx;
    for (int j = 0; j < s->nby; j++) {
        const int r = s->rows[j] - y;
        if (r < 0 || r >= nrows)
            continue;
        double *line = s->out + (size_t)j * s->nbx;
        for (int i = 0; i < s->nbx; i++) {
            const size_t p = (size_t)r * w + (size_t)(s->cols[i] - x);
            double v;
            if (!valid[p]) {
                v = s->has_nodata ? s->nodata : 0.0;
            } else {
                v = dc_dn_to_type(dn[p * s->nbands + (size_t)s->band], s->type);
                if (s->has_nodata)
                    v = dc_avoid_nodata(v, s->nodata, s->type);
            }
            line[i] = v;
        }
    }
    return DC_OK;
}

static CPLErr fail(const char *fmt, const char *a, const char *b)
{
    CPLError(CE_Failure, CPLE_AppDefined, fmt, a, b);
    return CE_Failure;
}

/* Raster position of every buffer pixel: ramps, or the whole raster. */
static int locate(const dcp_args *a, void **sources, int nsources, GDALDataType src_type,
                  int nbx, int nby, int *cols, int *rows, char *msg, size_t n)
{
    if (a->xsrc >= 0)
        return dcp_ramps_read(sources, nsources, a->xsrc, a->ysrc, src_type, nbx, nby, a->width,
                              a->height, cols, rows, msg, n);
    if (a->width <= 0 || a->height <= 0) {
        snprintf(msg, n, "width/height: needed when the VRT has no ramp sources (xsrc/ysrc)");
        return -1;
    }
    if (nbx != a->width || nby != a->height) {
        snprintf(msg, n,
                 "xsrc/ysrc: this VRT has no ramp sources, so a %dx%d request cannot be placed "
                 "in the %dx%d raster (computing it at 0,0 would give wrong pixels); write the "
                 "VRT with diffcr-decloud --vrt, or set blockXSize/blockYSize to the raster size "
                 "and read it whole", nbx, nby, a->width, a->height);
        return -1;
    }
    for (int i = 0; i < nbx; i++)
        cols[i] = i;
    for (int j = 0; j < nby; j++)
        rows[j] = j;
    return 0;
}

/* The model, the dates, the window: fills out[nby][nbx]. Returns 0 or -1 with a message. */
static int compute(const dcp_args *a, const int *cols, const int *rows, int nbx, int nby,
                   double *out, char *msg, size_t n)
{
    dc_error err;
    dc_error_clear(&err);
    /* A missing date: say which argument is wrong before GDAL says anything. */
    for (int i = 0; i < a->opts.ninputs; i++) {
        VSIStatBufL st;
        if (VSIStatL(a->opts.inputs[i], &st) != 0) {
            snprintf(msg, n, "inputs: %s: no such file", a->opts.inputs[i]);
            return -1;
        }
    }
    if (a->opts.weights) {
        VSIStatBufL st;
        if (VSIStatL(a->opts.weights, &st) != 0) {
            snprintf(msg, n, "weights=%s: no such file", a->opts.weights);
            return -1;
        }
    }
    dc_tile_model *shared = NULL, *model = NULL;
    dcp_model_ref *ref = NULL;
    dc_tile_cache *cache = NULL;
    dc_decloud_setup setup;
    memset(&setup, 0, sizeof setup);
    int have_setup = 0, rc;
    rc = dcp_model_acquire(a, &shared, &ref, &cache, &err);
    if (rc != DC_OK) {
        if (a->opts.weights)
            snprintf(msg, n, "weights=%s: %s", a->opts.weights, err.msg);
        else
            snprintf(msg, n, "model=%s: %s", a->opts.model_name, err.msg);
        return -1;
    }
    if (a->band > shared->nbands) {
        snprintf(msg, n, "band=%d: the model makes %d bands", a->band, shared->nbands);
        rc = DC_ERR_ARG;
        goto done;
    }
    rc = dc_tile_cache_wrap(&model, shared, cache, a->config_hash, &err);
    if (rc == DC_OK) {
        rc = dc_decloud_setup_open(&setup, &a->opts, model, &err);
        have_setup = rc == DC_OK;
    }
    if (rc != DC_OK) {
        /* The pipeline names the file; say which argument it came from. */
        const char *arg = "";
        for (int i = 0; i < a->opts.ninputs && !arg[0]; i++)
            if (strncmp(err.msg, a->opts.inputs[i], strlen(a->opts.inputs[i])) == 0)
                arg = "inputs: ";
        snprintf(msg, n, "%s%s", arg, err.msg);
        goto done;
    }
    if ((a->width > 0 && a->width != setup.grid.width) ||
        (a->height > 0 && a->height != setup.grid.height)) {
        snprintf(msg, n, "width/height: the VRT says %dx%d but the inputs give a %dx%d grid",
                 a->width, a->height, setup.grid.width, setup.grid.height);
        rc = DC_ERR_ARG;
        goto done;
    }
    int x0 = cols[0], x1 = cols[0], y0 = rows[0], y1 = rows[0];
    for (int i = 1; i < nbx; i++) {
        x0 = cols[i] < x0 ? cols[i] : x0;
        x1 = cols[i] > x1 ? cols[i] : x1;
    }
    for (int j = 1; j < nby; j++) {
        y0 = rows[j] < y0 ? rows[j] : y0;
        y1 = rows[j] > y1 ? rows[j] : y1;
    }
    if (x1 >= setup.grid.width || y1 >= setup.grid.height) {
        snprintf(msg, n, "xsrc/ysrc: the ramps reach pixel %d,%d outside the %dx%d raster", x1, y1,
                 setup.grid.width, setup.grid.height);
        rc = DC_ERR_ARG;
        goto done;
    }
    band_sink sink = {cols, rows, nbx, nby, a->band - 1, setup.in.nbands, setup.in.type,
                      setup.has_nodata, setup.nodata, out};
    rc = dc_decloud_window(&setup.pipeline, x0, y0, x1 - x0 + 1, y1 - y0 + 1, sink_rows, &sink,
                           NULL, NULL, &err);
    if (rc != DC_OK)
        snprintf(msg, n, "%s", err.msg);
done:
    if (have_setup)
        dc_decloud_setup_close(&setup);
    dc_tile_model_destroy(model);
    dcp_model_release(ref);
    return rc == DC_OK ? 0 : -1;
}

CPLErr dcp_decloud_pixel_function(void **sources, int nsources, void *data, int nbx, int nby,
                                  GDALDataType src_type, GDALDataType buf_type, int pixel_space,
                                  int line_space, CSLConstList args)
{
    char msg[1024];
    dcp_args a;
    if (dcp_args_parse(&a, args, msg, sizeof msg) != 0) {
        dcp_args_free(&a);
        return fail("decloud: %s%s", msg, "");
    }
    int *cols = malloc(sizeof(int) * (size_t)nbx);
    int *rows = malloc(sizeof(int) * (size_t)nby);
    double *out = malloc(sizeof(double) * (size_t)nbx * (size_t)nby);
    int rc = -1;
    if (!cols || !rows || !out) {
        snprintf(msg, sizeof msg, "out of memory for a %dx%d request", nbx, nby);
    } else if (locate(&a, sources, nsources, src_type, nbx, nby, cols, rows, msg,
                      sizeof msg) == 0) {
        /* GDAL's own messages (a warp, a read) end up in ours: keep them off the console. */
        CPLPushErrorHandler(CPLQuietErrorHandler);
        rc = compute(&a, cols, rows, nbx, nby, out, msg, sizeof msg);
        CPLPopErrorHandler();
        CPLErrorReset();
        char note[160];
        if (dcp_take_note(note, sizeof note))
            CPLError(CE_Warning, CPLE_AppDefined, "decloud: %s", note);
    }
    if (rc == 0) {
        for (int j = 0; j < nby; j++)
            GDALCopyWords(out + (size_t)j * nbx, GDT_Float64, (int)sizeof(double),
                          (GByte *)data + (GPtrDiff_t)j * line_space, buf_type, pixel_space, nbx);
    }
    free(cols);
    free(rows);
    free(out);
    dcp_stats_note();
    dcp_args_free(&a);
    return rc == 0 ? CE_None : fail("decloud: %s%s", msg, "");
}
