/* diffcr — the loss curve as a PNG: a line plot drawn into a Byte MEM raster and copied with
 * GDAL's PNG driver (PNG cannot be created directly, only copied).
 *
 * Kept deliberately plain: white background, grey frame and decade grid lines (log10 y when all
 * values are positive), the raw loss in light blue and a running mean in dark blue. No text: the
 * numbers are in metrics.jsonl; the picture is for a quick look at the shape. */
#include <gdal.h>
#include <cpl_error.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/train.h"

typedef struct canvas {
    uint8_t *rgb;   /* 3 planes of w*h */
    int w, h;
} canvas;

static void put(canvas *c, int x, int y, const uint8_t col[3])
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    for (int k = 0; k < 3; k++)
        c->rgb[(size_t)k * c->w * c->h + (size_t)y * c->w + x] = col[k];
}

static void line(canvas *c, int x0, int y0, int x1, int y1, const uint8_t col[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {   /* Bresenham */
        put(c, x0, y0, col);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy)
            e += dy, x0 += sx;
        if (e2 <= dx)
            e += dx, y0 += sy;
    }
}

int dc_loss_plot_png(const char *path, const double *steps, const double *values, int n, int w,
                     int h, dc_error *err)
{
    if (n < 1 || w < 64 || h < 64)
        return dc_fail(err, DC_ERR_ARG, "loss plot: nothing to draw");
    canvas c = {calloc((size_t)3 * w * h, 1), w, h};
    if (!c.rgb)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    memset(c.rgb, 255, (size_t)3 * w * h);
    int logy = 1;
    double lo = INFINITY, hi = -INFINITY, x0 = steps[0], x1 = steps[n - 1];
    for (int i = 0; i < n; i++)
        if (!(values[i] > 0))
            logy = 0;
    for (int i = 0; i < n; i++) {
        double v = logy ? log10(values[i]) : values[i];
        if (isfinite(v))
            lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    if (!(hi > lo))
        hi = lo + 1;
    if (x1 <= x0)
        x1 = x0 + 1;
    const int m = 8;
    const uint8_t frame[3] = {160, 160, 160}, grid[3] = {225, 225, 225}, raw[3] = {150, 190, 240},
                  mean[3] = {20, 60, 160};
#define PX(s) (m + (int)(((s) - x0) / (x1 - x0) * (w - 2 * m - 1)))
#define PY(v) (h - 1 - m - (int)(((v) - lo) / (hi - lo) * (h - 2 * m - 1)))
    if (logy)
        for (double d = ceil(lo); d <= hi; d += 1)
            line(&c, m, PY(d), w - 1 - m, PY(d), grid);
    line(&c, m, m, w - 1 - m, m, frame), line(&c, m, h - 1 - m, w - 1 - m, h - 1 - m, frame);
    line(&c, m, m, m, h - 1 - m, frame), line(&c, w - 1 - m, m, w - 1 - m, h - 1 - m, frame);
    double run = 0;
    int px = 0, py = 0, qx = 0, qy = 0;
    int win = n / 50 > 1 ? n / 50 : 1;
    for (int i = 0; i < n; i++) {
        double v = logy ? log10(values[i]) : values[i];
        if (!isfinite(v))
            continue;
        run += values[i];
        if (i >= win)
            run -= values[i - win];
        double avg = run / (i + 1 < win ? i + 1 : win);
        double av = logy ? log10(avg) : avg;
        int x = PX(steps[i]), y = PY(v), ay = PY(av);
        if (i > 0)
            line(&c, px, py, x, y, raw);
        else
            put(&c, x, y, raw);
        if (i > 0)
            line(&c, qx, qy, x, ay, mean);
        px = x, py = y, qx = x, qy = ay;
    }
#undef PX
#undef PY
    int rc = DC_OK;
    GDALAllRegister();
    GDALDriverH mem = GDALGetDriverByName("MEM"), png = GDALGetDriverByName("PNG");
    if (!mem || !png) {
        free(c.rgb);
        return dc_fail(err, DC_ERR_UNSUPPORTED, "loss plot: GDAL has no MEM or PNG driver");
    }
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALCreate(mem, "", w, h, 3, GDT_Byte, NULL);
    if (!ds || GDALDatasetRasterIO(ds, GF_Write, 0, 0, w, h, c.rgb, w, h, GDT_Byte, 3, NULL, 1, w,
                                   (GSpacing)w * h) != CE_None)
        rc = dc_fail(err, DC_ERR_IO, "loss plot: MEM raster failed: %s", CPLGetLastErrorMsg());
    if (rc == DC_OK) {
        GDALDatasetH out = GDALCreateCopy(png, path, ds, FALSE, NULL, NULL, NULL);
        if (!out)
            rc = dc_fail(err, DC_ERR_IO, "%s: cannot write the PNG: %s", path, CPLGetLastErrorMsg());
        else
            GDALClose(out);
    }
    if (ds)
        GDALClose(ds);
    CPLPopErrorHandler();
    free(c.rgb);
    return rc;
}
