/* diffcr — simulated-clouds dataset: random crops of clear rasters with clouds made on the fly.
 *
 * Real cloudy/clear pairs are scarce; the cloud simulator (cloud_sim.h) turns any clear raster
 * into ndates cloudy versions. Sample `index` of `epoch` is a tile-size crop of one of the clear
 * rasters (raster, position and cloud seed drawn from Philox keyed by (seed, epoch, index)), its
 * simulated dates are the condition and the crop itself the target. Every epoch thus sees new
 * crops and new clouds, yet a run is reproducible and resumable.
 *
 * args: clear (a path or an array of paths), samples (per epoch, default 64), cover_min /
 * cover_max (cloud fraction per date, default the simulator's), plus the common tile/scale/offset/
 * bands. DN values go to the simulator (which works in DN, dn_scale 10000); model values are
 * DN * scale + offset afterwards. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "diffcr/cloud_sim.h"
#include "diffcr/philox.h"

enum { STREAM_CROP = 102 };

typedef struct sim_impl {
    dc_dataset_common c;
    char **clear;
    int *w, *h;
    int n;
    dc_cloud_sim_options sim;
    int kinds[DC_DATASET_MAX_BANDS];
} sim_impl;

static int sim_load(dc_dataset *ds, int index, int epoch, uint64_t seed, float *cond,
                    float *target, dc_error *err)
{
    sim_impl *s = ds->impl;
    int T = ds->tile, C = ds->channels, D = ds->ndates, rc;
    uint32_t r[4];
    for (int k = 0; k < 4; k++)
        r[k] = dc_philox_u32(seed, STREAM_CROP, (uint32_t)index, (uint32_t)epoch, (uint64_t)k);
    int which = (int)(((uint64_t)r[0] * (uint64_t)s->n) >> 32);
    int x0 = (int)(((uint64_t)r[1] * (uint64_t)(s->w[which] - T + 1)) >> 32);
    int y0 = (int)(((uint64_t)r[2] * (uint64_t)(s->h[which] - T + 1)) >> 32);
    uint64_t cloud_seed = ((uint64_t)r[3] << 32) ^ (uint64_t)index ^ ((uint64_t)epoch << 20);
    size_t npx = (size_t)T * T;
    float *dates = malloc(npx * C * D * sizeof *dates);
    if (!dates)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for a simulated sample");
    /* target holds DN first (the simulator's input), model values at the end */
    rc = dc_dataset_read(s->clear[which], s->c.bands, s->c.nb, x0, y0, T, 1.0, 0.0, target, C, 0, err);
    if (rc == DC_OK)
        rc = dc_cloud_sim_tile(&s->sim, target, T, T, C, s->kinds, cloud_seed, x0, y0, dates, NULL, err);
    if (rc == DC_OK) {
        for (size_t p = 0; p < npx; p++) {
            for (int d = 0; d < D; d++)
                for (int c = 0; c < C; c++)
                    cond[p * D * C + d * C + c] =
                        (float)(dates[((size_t)d * npx + p) * C + c] * ds->scale + ds->offset);
            for (int c = 0; c < C; c++)
                target[p * C + c] = (float)(target[p * C + c] * ds->scale + ds->offset);
        }
    }
    free(dates);
    return rc;
}

static const char *sim_name(const dc_dataset *ds, int index)
{
    (void)index;
    const sim_impl *s = ds->impl;
    const char *t = s->clear[0], *sl = strrchr(t, '/');
    return sl ? sl + 1 : t;
}

static void sim_destroy(dc_dataset *ds)
{
    sim_impl *s = ds->impl;
    for (int i = 0; i < s->n; i++)
        free(s->clear[i]);
    free(s->clear), free(s->w), free(s->h), free(s);
    free(ds);
}

static int add_clear(sim_impl *s, const char *path, const dc_dataset_options *o, dc_error *err)
{
    int w, h, nb, maxband = 0;
    dc_error e = {0};
    int rc = dc_dataset_probe(path, &w, &h, &nb, &e);
    for (int b = 0; b < s->c.nb; b++)
        if (s->c.bands[b] > maxband)
            maxband = s->c.bands[b];
    if (rc == DC_OK && (w < s->c.tile || h < s->c.tile))
        rc = dc_fail(&e, DC_ERR_SHAPE, "%s: is %dx%d, smaller than the %d-pixel tile", path, w, h, s->c.tile);
    if (rc == DC_OK && nb < maxband)
        rc = dc_fail(&e, DC_ERR_SHAPE, "%s: has %d bands, band %d is needed", path, nb, maxband);
    if (rc != DC_OK) {
        if (o->strict)
            return dc_fail(err, rc, "%s (--strict)", e.msg);
        if (!o->quiet)
            fprintf(stderr, "diffcr-train: warning: skipping clear raster %s\n", e.msg);
        return DC_OK;
    }
    s->clear[s->n] = strdup(path);
    if (!s->clear[s->n])
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    s->w[s->n] = w, s->h[s->n] = h;
    s->n++;
    return DC_OK;
}

int dc_dataset_open_sim(dc_dataset **out, const cJSON *args, const dc_dataset_options *o,
                        dc_error *err)
{
    *out = NULL;
    sim_impl *s = calloc(1, sizeof *s);
    dc_dataset *ds = calloc(1, sizeof *ds);
    int rc = DC_OK;
    if (!s || !ds) {
        free(s), free(ds);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    }
    ds->impl = s;
    ds->destroy = sim_destroy;
    if ((rc = dc_dataset_common_parse(&s->c, args, o, err)) != DC_OK)
        goto fail;
    if (s->c.tile == 0)
        s->c.tile = 64;
    dc_cloud_sim_defaults(&s->sim);
    s->sim.ndates = o->ndates;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "cover_min")) && cJSON_IsNumber(v))
        s->sim.cover_min = v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "cover_max")) && cJSON_IsNumber(v))
        s->sim.cover_max = v->valuedouble;
    if ((rc = dc_cloud_sim_check(&s->sim, err)) != DC_OK)
        goto fail;
    for (int b = 0; b < DC_DATASET_MAX_BANDS; b++)
        s->kinds[b] = DC_BAND_OTHER;
    if (o->channels >= 3) {   /* DiffCR's band order: R, G, B (then NIR) */
        s->kinds[0] = DC_BAND_RED, s->kinds[1] = DC_BAND_GREEN, s->kinds[2] = DC_BAND_BLUE;
        if (o->channels >= 4)
            s->kinds[3] = DC_BAND_NIR;
    }
    int samples = 64;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "samples"))) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e8) {
            rc = dc_fail(err, DC_ERR_ARG, "dataset '%s': samples must be a positive integer", o->split);
            goto fail;
        }
        samples = (int)v->valuedouble;
    }
    const cJSON *clear = cJSON_GetObjectItemCaseSensitive(args, "clear");
    int n = cJSON_IsArray(clear) ? cJSON_GetArraySize(clear) : cJSON_IsString(clear) ? 1 : 0;
    if (n == 0) {
        rc = dc_fail(err, DC_ERR_ARG, "dataset '%s': sim needs args.clear (a clear raster or a list of them)", o->split);
        goto fail;
    }
    s->clear = calloc((size_t)n, sizeof *s->clear);
    s->w = calloc((size_t)n, sizeof *s->w);
    s->h = calloc((size_t)n, sizeof *s->h);
    if (!s->clear || !s->w || !s->h) {
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n && rc == DC_OK; i++) {
        const cJSON *e = cJSON_IsArray(clear) ? cJSON_GetArrayItem(clear, i) : clear;
        if (!cJSON_IsString(e)) {
            rc = dc_fail(err, DC_ERR_ARG, "dataset '%s': args.clear[%d] is not a path", o->split, i);
            break;
        }
        char path[4096];
        dc_dataset_join(path, sizeof path, o->base_dir, e->valuestring);
        rc = add_clear(s, path, o, err);
    }
    if (rc == DC_OK && s->n == 0)
        rc = dc_fail(err, DC_ERR_ARG, "dataset '%s': no usable clear raster", o->split);
    if (rc != DC_OK)
        goto fail;
    snprintf(ds->kind, sizeof ds->kind, "sim");
    ds->count = samples;
    ds->ndates = o->ndates;
    ds->channels = o->channels;
    ds->tile = s->c.tile;
    ds->scale = s->c.scale, ds->offset = s->c.offset;
    dc_dataset_bands_text(ds->bands, sizeof ds->bands, &s->c, 0);
    ds->load = sim_load;
    ds->sample_name = sim_name;
    *out = ds;
    return DC_OK;
fail:
    sim_destroy(ds);
    return rc;
}
