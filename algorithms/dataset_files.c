/* diffcr — a dataset of image files: the common body of the folder and CSV sources.
 *
 * Each sample is ndates cloudy rasters and one clear target of the same size. Files are probed
 * once when the dataset opens (size and band count, no pixels): a bad sample is dropped there, so
 * the list that defines epochs and batch order is fixed before the first step. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

int dc_dataset_common_parse(dc_dataset_common *c, const cJSON *args, const dc_dataset_options *o,
                            dc_error *err)
{
    memset(c, 0, sizeof *c);
    c->scale = 1.0 / 5000.0;
    c->offset = -1.0;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "tile")) || (v = cJSON_GetObjectItemCaseSensitive(args, "image_size"))) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 16 || v->valuedouble > 8192 || (int)v->valuedouble % 16)
            return dc_fail(err, DC_ERR_ARG, "dataset '%s': tile must be a multiple of 16 in 16..8192", o->split);
        c->tile = (int)v->valuedouble;
    }
    if (o->tile > 0)
        c->tile = o->tile;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "scale"))) {
        if (!cJSON_IsNumber(v) || v->valuedouble == 0)
            return dc_fail(err, DC_ERR_ARG, "dataset '%s': scale must be a non-zero number", o->split);
        c->scale = v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "offset"))) {
        if (!cJSON_IsNumber(v))
            return dc_fail(err, DC_ERR_ARG, "dataset '%s': offset must be a number", o->split);
        c->offset = v->valuedouble;
    }
    c->nb = o->channels;
    for (int b = 0; b < c->nb; b++)
        c->bands[b] = b + 1;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "bands"))) {
        int n = cJSON_GetArraySize(v);
        if (!cJSON_IsArray(v) || n != o->channels)
            return dc_fail(err, DC_ERR_ARG, "dataset '%s': bands must list %d band numbers (the model's img_channel)",
                           o->split, o->channels);
        for (int b = 0; b < n; b++) {
            const cJSON *e = cJSON_GetArrayItem(v, b);
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 65535)
                return dc_fail(err, DC_ERR_ARG, "dataset '%s': bands[%d] is not a band number", o->split, b);
            c->bands[b] = (int)e->valuedouble;
        }
    }
    return DC_OK;
}

void dc_dataset_bands_text(char *out, size_t size, const dc_dataset_common *c, int sen2)
{
    /* Sen2_MTC_New images are R, G, B, NIR: name the bands when they are the usual first three. */
    static const char *const sen2_names[] = {"R", "G", "B", "NIR"};
    size_t n = 0;
    out[0] = 0;
    for (int b = 0; b < c->nb && n < size; b++) {
        if (sen2 && c->bands[b] <= 4)
            n += (size_t)snprintf(out + n, size - n, "%s%s", b ? "," : "", sen2_names[c->bands[b] - 1]);
        else
            n += (size_t)snprintf(out + n, size - n, "%s%d", b ? "," : "", c->bands[b]);
    }
}

int dc_path_list_add(dc_path_list *l, char *const *paths, dc_error *err)
{
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->paths, (size_t)cap * l->per * sizeof *p);
        if (!p)
            return dc_fail(err, DC_ERR_NOMEM, "out of memory for the dataset list");
        l->paths = p, l->cap = cap;
    }
    for (int i = 0; i < l->per; i++) {
        l->paths[(size_t)l->count * l->per + i] = strdup(paths[i]);
        if (!l->paths[(size_t)l->count * l->per + i]) {
            for (int j = 0; j < i; j++)
                free(l->paths[(size_t)l->count * l->per + j]);
            return dc_fail(err, DC_ERR_NOMEM, "out of memory for the dataset list");
        }
    }
    l->count++;
    return DC_OK;
}

void dc_path_list_free(dc_path_list *l)
{
    for (size_t i = 0; i < (size_t)l->count * l->per; i++)
        free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

typedef struct files_impl {
    dc_path_list list;
    dc_dataset_common c;
    char kind[16];
} files_impl;

static int files_load(dc_dataset *ds, int index, int epoch, uint64_t seed, float *cond,
                      float *target, dc_error *err)
{
    (void)epoch, (void)seed;
    files_impl *f = ds->impl;
    if (index < 0 || index >= ds->count)
        return dc_fail(err, DC_ERR_ARG, "sample %d out of range (0..%d)", index, ds->count - 1);
    char **p = f->list.paths + (size_t)index * f->list.per;
    int C = ds->channels, stride = ds->ndates * C, rc;
    for (int d = 0; d < ds->ndates; d++)
        if ((rc = dc_dataset_read(p[d], f->c.bands, f->c.nb, 0, 0, ds->tile, ds->scale, ds->offset,
                                  cond, stride, d * C, err)) != DC_OK)
            return rc;
    return dc_dataset_read(p[ds->ndates], f->c.bands, f->c.nb, 0, 0, ds->tile, ds->scale, ds->offset,
                           target, C, 0, err);
}

static const char *files_name(const dc_dataset *ds, int index)
{
    const files_impl *f = ds->impl;
    const char *t = f->list.paths[(size_t)index * f->list.per + ds->ndates];
    const char *s = strrchr(t, '/');
    return s ? s + 1 : t;
}

static void files_destroy(dc_dataset *ds)
{
    files_impl *f = ds->impl;
    dc_path_list_free(&f->list);
    free(f);
    free(ds);
}

/* Why a sample cannot be used, or DC_OK. */
static int check_sample(char **p, int per, int *tile, const dc_dataset_common *c, dc_error *err)
{
    int maxband = 0;
    for (int b = 0; b < c->nb; b++)
        if (c->bands[b] > maxband)
            maxband = c->bands[b];
    for (int i = 0; i < per; i++) {
        int w, h, n, rc;
        if ((rc = dc_dataset_probe(p[i], &w, &h, &n, err)) != DC_OK)
            return rc;
        if (*tile == 0) {
            if (w != h || w < 16 || w % 16)
                return dc_fail(err, DC_ERR_SHAPE, "%s: is %dx%d; samples must be square, a multiple of 16 (or set args.tile)",
                               p[i], w, h);
            *tile = w;
        }
        if (w != *tile || h != *tile)
            return dc_fail(err, DC_ERR_SHAPE, "%s: is %dx%d, expected %dx%d", p[i], w, h, *tile, *tile);
        if (n < maxband)
            return dc_fail(err, DC_ERR_SHAPE, "%s: has %d bands, band %d is needed", p[i], n, maxband);
    }
    return DC_OK;
}

int dc_dataset_files_create(dc_dataset **out, const char *kind, dc_path_list *list,
                            const dc_dataset_common *c, const dc_dataset_options *o, dc_error *err)
{
    *out = NULL;
    int tile = c->tile, kept = 0, rc = DC_OK;
    for (int i = 0; i < list->count; i++) {
        char **p = list->paths + (size_t)i * list->per;
        dc_error e = {0};
        if (check_sample(p, list->per, &tile, c, &e) != DC_OK) {
            if (o->strict) {
                rc = dc_fail(err, DC_ERR_SHAPE, "%s (--strict)", e.msg);
                break;
            }
            if (!o->quiet)
                fprintf(stderr, "diffcr-train: warning: skipping sample %s: %s\n", p[list->per - 1], e.msg);
            for (int j = 0; j < list->per; j++)
                free(p[j]);
            continue;
        }
        memmove(list->paths + (size_t)kept * list->per, p, (size_t)list->per * sizeof *p);
        kept++;
    }
    if (rc == DC_OK) {
        list->count = kept;
        if (kept == 0)
            rc = dc_fail(err, DC_ERR_ARG, "dataset '%s': no usable samples", o->split);
    }
    dc_dataset *ds = NULL;
    files_impl *f = NULL;
    if (rc == DC_OK) {
        ds = calloc(1, sizeof *ds);
        f = calloc(1, sizeof *f);
        if (!ds || !f)
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    }
    if (rc != DC_OK) {
        /* The list still owns what it holds (a strict stop skips nothing); the caller frees it. */
        free(ds), free(f);
        return rc;
    }
    f->list = *list;
    memset(list, 0, sizeof *list);
    f->c = *c;
    snprintf(ds->kind, sizeof ds->kind, "%s", kind);
    ds->count = kept;
    ds->ndates = o->ndates;
    ds->channels = o->channels;
    ds->tile = tile;
    ds->scale = c->scale, ds->offset = c->offset;
    dc_dataset_bands_text(ds->bands, sizeof ds->bands, c, !strcmp(kind, "folder"));
    ds->load = files_load;
    ds->sample_name = files_name;
    ds->destroy = files_destroy;
    ds->impl = f;
    *out = ds;
    return DC_OK;
}
