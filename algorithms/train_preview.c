/* diffcr — before/after previews: one PNG strip per validation sample, the cloudy dates, the
 * model's result and the clear target side by side.
 *
 * Each panel is stretched with DiffCR's get_rgb (metrics.h: clip to 2000 DN, min-max to 8 bit),
 * i.e. exactly the pictures the paper's numbers are computed on. Written through a MEM raster and
 * GDAL's PNG driver (CreateCopy). */
#include <gdal.h>
#include <cpl_error.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/metrics.h"
#include "diffcr/train.h"

int dc_train_preview_png(const char *path, const float *cond, const float *out, const float *target,
                         int T, int C, int D, dc_error *err)
{
    int panels = D + 2, W = T * panels, gap = 0;
    int vc = C >= 3 ? 3 : 1;   /* RGB, or the first band as grey */
    size_t npx = (size_t)T * T;
    float *img = malloc(npx * 3 * sizeof *img);
    uint8_t *rgb8 = malloc(npx * 3), *planes = calloc((size_t)3 * W * T, 1);
    int rc = DC_OK;
    if (!img || !rgb8 || !planes)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    for (int p = 0; rc == DC_OK && p < panels; p++) {
        for (size_t k = 0; k < npx; k++)
            for (int c = 0; c < 3; c++) {
                int src = c < vc ? c : 0;
                img[k * 3 + c] = p < D ? cond[k * D * C + p * C + src] : p == D ? out[k * C + src] : target[k * C + src];
            }
        if ((rc = dc_paper_rgb8_from_model(img, T, T, 3, rgb8, err)) != DC_OK)
            break;
        for (int y = 0; y < T; y++)
            for (int x = 0; x < T; x++)
                for (int c = 0; c < 3; c++)
                    planes[(size_t)c * W * T + (size_t)y * W + p * T + x + gap] = rgb8[((size_t)y * T + x) * 3 + c];
    }
    if (rc == DC_OK) {
        GDALAllRegister();
        GDALDriverH mem = GDALGetDriverByName("MEM"), png = GDALGetDriverByName("PNG");
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALDatasetH ds = mem ? GDALCreate(mem, "", W, T, 3, GDT_Byte, NULL) : NULL;
        if (!ds || !png ||
            GDALDatasetRasterIO(ds, GF_Write, 0, 0, W, T, planes, W, T, GDT_Byte, 3, NULL, 1, W, (GSpacing)W * T) != CE_None)
            rc = dc_fail(err, DC_ERR_IO, "preview: MEM raster failed");
        if (rc == DC_OK) {
            GDALDatasetH o = GDALCreateCopy(png, path, ds, FALSE, NULL, NULL, NULL);
            if (!o)
                rc = dc_fail(err, DC_ERR_IO, "%s: cannot write the preview PNG: %s", path, CPLGetLastErrorMsg());
            else
                GDALClose(o);
        }
        if (ds)
            GDALClose(ds);
        CPLPopErrorHandler();
    }
    free(img), free(rgb8), free(planes);
    return rc;
}
