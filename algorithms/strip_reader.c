/* diffcr — read one strip of every date, scaled into the model's range, with missing dates
 * filled.
 *
 * Validity of a date at a pixel: every used band differs from its nodata (NaN counts as
 * nodata) and the mask (alpha band, .msk, warped-outside) is non-zero. The model never saw a
 * missing date and its condition encoder sums the dates, so a missing date is replaced by the
 * mean of the valid dates at that pixel (DIFFCR.md §11.5: repeat another date, never zeros).
 * Where no date is valid the pixel becomes nodata in the output; the model still needs a value
 * there and gets 0 (the middle of its range). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>

#include "decloud_internal.h"

int dc_read_strip(const dc_inputs *in, const dc_tile_model *m, int x0, int y0, int w, int h,
                  float *values, uint8_t *any_valid, dc_error *err)
{
    const int D = in->ndates, B = in->nbands, C = D * B;
    const size_t npix = (size_t)w * (size_t)h;
    uint8_t *valid = malloc(npix * (size_t)D);
    uint8_t *mask = malloc(npix);
    if (!valid || !mask) {
        free(valid);
        free(mask);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for a %dx%d strip", w, h);
    }
    int rc = DC_OK;
    for (int di = 0; di < D && rc == DC_OK; di++) {
        const dc_date *d = &in->dates[di];
        CPLErrorReset();
        /* Pixel-interleaved into the date's channel slot: [y][x][d*B + b]. */
        if (GDALDatasetRasterIO(d->view, GF_Read, x0, y0, w, h, values + (size_t)di * B, w, h,
                                GDT_Float32, B, (int *)d->bands, (int)(sizeof(float) * C),
                                (int)(sizeof(float) * C) * w, (int)sizeof(float)) != CE_None) {
            rc = dc_gdal_fail(err, DC_ERR_IO, "%s: read failed at rows %d..%d", d->path, y0,
                              y0 + h - 1);
            break;
        }
        if (d->use_mask) {
            GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(d->view, d->bands[0]));
            if (GDALRasterIO(mb, GF_Read, x0, y0, w, h, mask, w, h, GDT_Byte, 0, 0) != CE_None) {
                rc = dc_gdal_fail(err, DC_ERR_IO, "%s: mask read failed", d->path);
                break;
            }
        }
        /* Fast path: integer bands without nodata or mask (no NaN possible) are all valid. */
        int checks = d->use_mask;
        for (int b = 0; b < B; b++) {
            GDALDataType t = GDALGetRasterDataType(GDALGetRasterBand(d->view, d->bands[b]));
            checks |= d->has_nodata[b] || GDALDataTypeIsFloating(t) || GDALDataTypeIsComplex(t);
        }
        if (!checks) {
            for (size_t p = 0; p < npix; p++) {
                float *v = values + p * C + (size_t)di * B;
                for (int b = 0; b < B; b++)
                    v[b] = dc_dn_to_model(v[b], d->add_offset[b], m->scale, m->offset);
                valid[p * D + (size_t)di] = 1;
            }
            continue;
        }
        for (size_t p = 0; p < npix; p++) {
            float *v = values + p * C + (size_t)di * B;
            int ok = !d->use_mask || mask[p] != 0;
            for (int b = 0; b < B && ok; b++) {
                if (isnan(v[b]) || (d->has_nodata[b] && v[b] == (float)d->nodata[b]))
                    ok = 0;
            }
            valid[p * D + (size_t)di] = (uint8_t)ok;
            if (ok) {
                for (int b = 0; b < B; b++)
                    v[b] = dc_dn_to_model(v[b], d->add_offset[b], m->scale, m->offset);
            }
        }
    }
    if (rc == DC_OK) {
        for (size_t p = 0; p < npix; p++) {
            float *v = values + p * C;
            const uint8_t *ok = valid + p * D;
            int nvalid = 0;
            for (int di = 0; di < D; di++)
                nvalid += ok[di];
            any_valid[p] = nvalid > 0;
            if (nvalid == D)
                continue;
            for (int b = 0; b < B; b++) {
                float s = 0.0f;
                for (int di = 0; di < D; di++)
                    if (ok[di])
                        s += v[di * B + b];
                float fill = nvalid ? s / (float)nvalid : 0.0f;
                for (int di = 0; di < D; di++)
                    if (!ok[di])
                        v[di * B + b] = fill;
            }
        }
    }
    free(valid);
    free(mask);
    return rc;
}
