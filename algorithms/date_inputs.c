/* diffcr — the dates: open the rasters (or slice one dates x bands stack), choose the bands the
 * model uses, and read what decides validity (nodata, masks) and DN offsets.
 *
 * Default bands by band count: 13 (Sentinel-2 L1C, B1..B12 with B8A) -> 4,3,2 (B4,B3,B2 = R,G,B);
 * 4 (R,G,B,NIR as in Sen2_MTC) -> 1,2,3; 3 -> 1,2,3. Anything else needs -b.
 * Offsets: Sentinel-2 processing baseline >= 04.00 shifts DN by BOA_ADD_OFFSET (L2A) or
 * RADIO_ADD_OFFSET (L1C), e.g. -1000; reflectance = (DN + offset) / 10000, so the model sees
 * DN + offset and the output subtracts date 1's offset again. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include "decloud_internal.h"

static int open_raster(GDALDatasetH *out, const char *path, dc_error *err)
{
    VSIStatBufL st;
    if (VSIStatL(path, &st) != 0)
        return dc_fail(err, DC_ERR_IO, "%s: no such file", path);
    CPLErrorReset();
    *out = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!*out)
        return dc_gdal_fail(err, DC_ERR_FORMAT, "%s: not a raster GDAL can read", path);
    if (GDALGetRasterCount(*out) < 1) {
        GDALClose(*out);
        *out = NULL;
        return dc_fail(err, DC_ERR_FORMAT, "%s: has no raster bands", path);
    }
    return DC_OK;
}

static int default_bands(int count, int *bands, int nwanted)
{
    static const int s2[3] = {4, 3, 2}, rgb[3] = {1, 2, 3};
    const int *pick = count == 13 ? s2 : (count == 4 || count == 3) ? rgb : NULL;
    if (!pick || nwanted != 3)
        return 0;
    memcpy(bands, pick, sizeof s2);
    return 1;
}

static double band_add_offset(GDALRasterBandH b)
{
    static const char *const keys[2] = {"BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"};
    for (int i = 0; i < 2; i++) {
        const char *v = GDALGetMetadataItem(b, keys[i], NULL);
        if (v && v[0]) {
            char *end = NULL;
            double x = CPLStrtod(v, &end);
            if (end != v && isfinite(x))
                return x;
        }
    }
    return 0.0;
}

void dc_date_read_validity_info(dc_date *d, int nbands, const dc_decloud_options *opts)
{
    for (int b = 0; b < nbands; b++) {
        GDALRasterBandH band = GDALGetRasterBand(d->view, d->bands[b]);
        int has = 0;
        double v = GDALGetRasterNoDataValue(band, &has);
        if (opts->have_srcnodata) {
            has = 1;
            v = opts->srcnodata;
        }
        d->has_nodata[b] = has;
        d->nodata[b] = v;
    }
    /* An alpha band or a .msk file: read the mask; nodata-derived masks are handled by value. */
    int flags = GDALGetMaskFlags(GDALGetRasterBand(d->view, d->bands[0]));
    d->use_mask = !(flags & GMF_ALL_VALID) && !(flags & GMF_NODATA);
}

int dc_inputs_open(dc_inputs *in, const dc_decloud_options *opts, int model_ndates,
                   int model_nbands, dc_error *err)
{
    memset(in, 0, sizeof *in);
    int ndates = opts->stack_dates > 0 ? opts->stack_dates : opts->ninputs;
    if (opts->stack_dates > 0 && opts->ninputs != 1)
        return dc_fail(err, DC_ERR_ARG, "--stack-dates takes exactly one input raster, got %d",
                       opts->ninputs);
    if (ndates < model_ndates)
        return dc_fail(err, DC_ERR_ARG, "the model needs %d dates, got %d", model_ndates, ndates);
    if (ndates > model_ndates)
        return dc_fail(err, DC_ERR_ARG, "the model takes exactly %d dates, got %d", model_ndates,
                       ndates);
    if (model_nbands > DC_MAX_BANDS)
        return dc_fail(err, DC_ERR_ARG, "the model uses too many bands (%d)", model_nbands);
    if (opts->nbands_sel > 0 && opts->nbands_sel != model_nbands)
        return dc_fail(err, DC_ERR_ARG, "-b selects %d bands but the model uses %d per date",
                       opts->nbands_sel, model_nbands);
    in->dates = calloc((size_t)ndates, sizeof *in->dates);
    if (!in->dates)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    in->ndates = ndates;
    in->nbands = model_nbands;

    for (int di = 0; di < ndates; di++) {
        dc_date *d = &in->dates[di];
        const char *path = opts->stack_dates > 0 ? opts->inputs[0] : opts->inputs[di];
        d->index = di + 1;
        d->path = strdup(path);
        if (!d->path) {
            dc_inputs_close(in);
            return dc_fail(err, DC_ERR_NOMEM, "out of memory");
        }
        int rc = open_raster(&d->src, path, err);
        if (rc != DC_OK) {
            dc_inputs_close(in);
            return rc;
        }
        d->view = d->src;
        int count = GDALGetRasterCount(d->src), per_date = count, first = 0;
        if (opts->stack_dates > 0) {
            if (count % ndates != 0) {
                dc_inputs_close(in);
                return dc_fail(err, DC_ERR_ARG, "%s: %d bands do not split into %d dates", path,
                               count, ndates);
            }
            per_date = count / ndates;
            first = di * per_date;
        }
        int sel[DC_MAX_BANDS];
        if (opts->nbands_sel > 0) {
            memcpy(sel, opts->bands, sizeof(int) * (size_t)model_nbands);
        } else if (!default_bands(per_date, sel, model_nbands)) {
            dc_inputs_close(in);
            return dc_fail(err, DC_ERR_ARG,
                           "%s: no default bands for %d bands per date; choose them with -b",
                           path, per_date);
        }
        for (int b = 0; b < model_nbands; b++) {
            if (sel[b] < 1 || sel[b] > per_date) {
                dc_fail(err, DC_ERR_ARG, "band %d out of range: date %d (%s) has %d bands",
                        sel[b], di + 1, path, per_date);
                dc_inputs_close(in);
                return DC_ERR_ARG;
            }
            d->bands[b] = first + sel[b];
            d->add_offset[b] = band_add_offset(GDALGetRasterBand(d->src, d->bands[b]));
        }
        dc_date_read_validity_info(d, model_nbands, opts);
    }
    in->type = GDALGetRasterDataType(GDALGetRasterBand(in->dates[0].src, in->dates[0].bands[0]));
    return DC_OK;
}

void dc_inputs_close(dc_inputs *in)
{
    if (!in->dates)
        return;
    for (int i = 0; i < in->ndates; i++) {
        dc_date *d = &in->dates[i];
        if (d->view && d->view != d->src)
            GDALClose(d->view);
        if (d->src)
            GDALClose(d->src);
        free(d->path);
    }
    free(in->dates);
    memset(in, 0, sizeof *in);
}
