/* diffcr — built-in test models: known functions of the conditions that prove the raster
 * plumbing (band order, scaling and offsets, nodata fill, data types, tile seams) without the
 * diffusion network. Selected with `diffcr-decloud --model mean|blur`. */
#include "diffcr/tile_model.h"

#include <stdlib.h>
#include <string.h>

/* out[p][b] = mean over dates d of cond[p][d*nbands + b] */
static void date_mean(const dc_tile_model *m, float *out, const float *cond, size_t pixels)
{
    const int D = m->ndates, B = m->nbands;
    for (size_t p = 0; p < pixels; p++) {
        for (int b = 0; b < B; b++) {
            float s = 0.0f;
            for (int d = 0; d < D; d++)
                s += cond[p * (size_t)(D * B) + (size_t)(d * B + b)];
            out[p * (size_t)B + (size_t)b] = s / (float)D;
        }
    }
}

static int mean_run(dc_tile_model *m, float *out, const float *cond, int h, int w,
                    uint64_t tile_key, int sample, dc_error *err)
{
    date_mean(m, out, cond, (size_t)h * (size_t)w);
    return DC_OK;
}

static int blur_run(dc_tile_model *m, float *out, const float *cond, int h, int w,
                    uint64_t tile_key, int sample, dc_error *err)
{
    const int B = m->nbands, R = 2;
    float *mean = malloc((size_t)h * (size_t)w * (size_t)B * sizeof(float));
    if (!mean)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory in the blur test model");
    date_mean(m, mean, cond, (size_t)h * (size_t)w);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            for (int b = 0; b < B; b++) {
                float s = 0.0f;
                for (int dy = -R; dy <= R; dy++) {
                    int yy = y + dy < 0 ? 0 : (y + dy >= h ? h - 1 : y + dy);
                    for (int dx = -R; dx <= R; dx++) {
                        int xx = x + dx < 0 ? 0 : (x + dx >= w ? w - 1 : x + dx);
                        s += mean[((size_t)yy * w + (size_t)xx) * B + (size_t)b];
                    }
                }
                out[((size_t)y * w + (size_t)x) * B + (size_t)b] = s / (float)((2 * R + 1) * (2 * R + 1));
            }
        }
    }
    free(mean);
    return DC_OK;
}

static void test_destroy(dc_tile_model *m)
{
    free(m);
}

static int make(dc_tile_model **out, const char *name,
                int (*run)(dc_tile_model *, float *, const float *, int, int, uint64_t, int,
                           dc_error *),
                dc_error *err)
{
    dc_tile_model *m = calloc(1, sizeof *m);
    if (!m)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    m->name = name;
    m->ndates = 3;
    m->nbands = 3;
    m->tile = 256;
    m->scale = 1.0 / 5000.0; /* DiffCR: x / 10000, then (x - 0.5) / 0.5 */
    m->offset = -1.0;
    m->run_tile = run;
    m->destroy = test_destroy;
    *out = m;
    return DC_OK;
}

int dc_tile_model_mean(dc_tile_model **out, dc_error *err)
{
    return make(out, "mean (test model)", mean_run, err);
}

int dc_tile_model_blur(dc_tile_model **out, dc_error *err)
{
    return make(out, "blur (test model)", blur_run, err);
}

void dc_tile_model_destroy(dc_tile_model *m)
{
    if (m && m->destroy)
        m->destroy(m);
}
