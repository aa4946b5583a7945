/* gdal_decloud — argument parsing (decloud_args.h). One table names every argument, whether a
 * config option may override it, and whether it defines the pixels (config hash), so lookups,
 * overrides and the cache key cannot drift apart. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>

#include "decloud_args.h"
#include "diffcr/backend.h"
#include "diffcr/tile_cache.h"

typedef struct arg_spec {
    const char *name;
    int overridable;   /* DECLOUD_<NAME> config option wins over the VRT */
    int in_hash;       /* part of the configuration hash (defines the pixels) */
} arg_spec;

static const arg_spec specs[] = {
    {"inputs", 1, 1},  {"dates", 1, 1},     {"bands", 1, 1},   {"weights", 1, 1},
    {"model", 1, 1},   {"band", 0, 0},      {"tile", 1, 1},    {"overlap", 1, 1},
    {"steps", 1, 1},   {"order", 1, 1},     {"sampler", 1, 1}, {"seed", 1, 1},
    {"device", 1, 1},  {"threads", 1, 1},   {"samples", 1, 1}, {"width", 0, 1},
    {"height", 0, 1},  {"xsrc", 0, 0},      {"ysrc", 0, 0},    {"nodata", 1, 1},
    {"srcnodata", 1, 1}, {"like", 1, 1},    {"te", 1, 1},      {"tr", 1, 1},
    {"t_srs", 1, 1},   {"r", 1, 1},         {"no_warp", 1, 1}, {"precision", 1, 1}, {"batch", 1, 1},
};
#define NSPECS ((int)(sizeof specs / sizeof specs[0]))

static const arg_spec *spec_of(const char *name)
{
    for (int i = 0; i < NSPECS; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

/* The effective value of an argument: the config option DECLOUD_<NAME>, else the VRT's. */
static const char *raw_value(CSLConstList args, const arg_spec *s)
{
    if (s->overridable) {
        char key[64];
        snprintf(key, sizeof key, "DECLOUD_%s", s->name);
        for (char *c = key; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        const char *v = CPLGetConfigOption(key, NULL);
        if (v)
            return v;
    }
    return CSLFetchNameValue(args, s->name);
}

/* A private copy (config option strings may change under us). */
static const char *value(dcp_args *a, CSLConstList args, const char *name)
{
    const char *v = raw_value(args, spec_of(name));
    if (!v)
        return NULL;
    a->owned = CSLAddString(a->owned, v);
    return a->owned[CSLCount(a->owned) - 1];
}

static int bad(char *msg, size_t n, const char *name, const char *v, const char *why)
{
    snprintf(msg, n, "%s=%s: %s", name, v ? v : "", why);
    return -1;
}

static int int_value(const char *v, int *out)
{
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (!v[0] || *end || x < -2147483647L || x > 2147483647L)
        return 0;
    *out = (int)x;
    return 1;
}

/* An optional integer argument in [lo, hi]; absent leaves *out unchanged. */
static int get_int(dcp_args *a, CSLConstList args, const char *name, int lo, int hi, int *out,
                   char *msg, size_t n)
{
    const char *v = value(a, args, name);
    int x;
    if (!v)
        return 0;
    if (!int_value(v, &x))
        return bad(msg, n, name, v, "not an integer");
    if (x < lo || x > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be between %d and %d", lo, hi);
        return bad(msg, n, name, v, why);
    }
    *out = x;
    return 0;
}

static int get_double(dcp_args *a, CSLConstList args, const char *name, double *out, int *given,
                      char *msg, size_t n)
{
    const char *v = value(a, args, name);
    if (!v)
        return 0;
    char *end = NULL;
    *out = CPLStrtod(v, &end);
    if (!v[0] || *end)
        return bad(msg, n, name, v, "not a number");
    *given = 1;
    return 0;
}

/* "a,b,c" (commas or spaces) into exactly `count` numbers. */
static int get_doubles(dcp_args *a, CSLConstList args, const char *name, double *out, int count,
                       int *given, char *msg, size_t n)
{
    const char *v = value(a, args, name);
    if (!v)
        return 0;
    char **parts = CSLTokenizeString2(v, ", ", 0);
    int ok = CSLCount(parts) == count;
    for (int i = 0; ok && i < count; i++) {
        char *end = NULL;
        out[i] = CPLStrtod(parts[i], &end);
        ok = parts[i][0] && !*end && isfinite(out[i]);
    }
    CSLDestroy(parts);
    if (!ok) {
        char why[64];
        snprintf(why, sizeof why, "needs %d numbers separated by commas", count);
        return bad(msg, n, name, v, why);
    }
    *given = 1;
    return 0;
}

static uint64_t config_hash(CSLConstList args)
{
    uint64_t h = DC_HASH_SEED;
    for (int i = 0; i < NSPECS; i++) {
        if (!specs[i].in_hash)
            continue;
        const char *v = raw_value(args, &specs[i]);
        h = dc_hash_string(h, specs[i].name);
        h = dc_hash_string(h, v ? v : "\x01(unset)");
    }
    return h;
}

int dcp_args_parse(dcp_args *a, CSLConstList args, char *msg, size_t n)
{
    memset(a, 0, sizeof *a);
    dc_decloud_options *o = &a->opts;
    dc_decloud_options_init(o);
    o->quiet = 1;
    o->format = NULL;
    o->model_name = NULL;
    a->xsrc = a->ysrc = -1;
    msg[0] = '\0';

    /* inputs and dates */
    const char *inputs = value(a, args, "inputs");
    if (!inputs || !inputs[0])
        return bad(msg, n, "inputs", inputs, "required: the date rasters, separated by |");
    char **paths = CSLTokenizeString2(inputs, "|", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES);
    int npaths = CSLCount(paths);
    a->input_paths = calloc((size_t)npaths + 1, sizeof *a->input_paths);
    if (!a->input_paths) {
        CSLDestroy(paths);
        return bad(msg, n, "inputs", inputs, "out of memory");
    }
    for (int i = 0; i < npaths; i++) {
        a->owned = CSLAddString(a->owned, paths[i]);
        a->input_paths[i] = a->owned[CSLCount(a->owned) - 1];
    }
    CSLDestroy(paths);
    if (npaths < 1)
        return bad(msg, n, "inputs", inputs, "no paths");
    o->inputs = a->input_paths;
    o->ninputs = npaths;
    int dates = 0;
    if (get_int(a, args, "dates", 1, DC_MAX_BANDS, &dates, msg, n))
        return -1;
    if (dates > 1 && npaths == 1)
        o->stack_dates = dates;
    else if (dates > 0 && dates != npaths)
        return bad(msg, n, "dates", raw_value(args, spec_of("dates")),
                   "does not match the number of inputs");

    const char *bands = value(a, args, "bands");
    if (bands) {
        char **parts = CSLTokenizeString2(bands, ", ", 0);
        int nb = CSLCount(parts), ok = nb > 0 && nb <= DC_MAX_BANDS;
        for (int i = 0; ok && i < nb; i++)
            ok = int_value(parts[i], &o->bands[i]) && o->bands[i] >= 1;
        CSLDestroy(parts);
        if (!ok)
            return bad(msg, n, "bands", bands, "needs band numbers (>= 1) separated by commas");
        o->nbands_sel = nb;
    }

    /* model */
    o->weights = value(a, args, "weights");
    if (o->weights && !o->weights[0])
        o->weights = NULL;
    o->model_name = value(a, args, "model");
    if (!o->weights && !o->model_name)
        return bad(msg, n, "weights", NULL, "required (weights=FILE, or model=mean|blur)");
    if (!o->weights && strcmp(o->model_name, "mean") != 0 && strcmp(o->model_name, "blur") != 0)
        return bad(msg, n, "model", o->model_name, "unknown test model (mean, blur)");
    if (get_int(a, args, "steps", 1, 100000, &o->steps, msg, n) ||
        get_int(a, args, "order", 1, 3, &o->order, msg, n) ||
        get_int(a, args, "seed", -2147483647, 2147483647, &o->seed, msg, n) ||
        get_int(a, args, "threads", 0, 4096, &o->threads, msg, n) ||
        get_int(a, args, "samples", 1, 1000, &o->samples, msg, n) ||
        get_int(a, args, "batch", 1, 256, &o->batch, msg, n))
        return -1;
    const char *sampler = value(a, args, "sampler"), *device = value(a, args, "device");
    if (sampler)
        o->sampler = sampler;
    if (device)
        o->device = device;
    const char *precision = value(a, args, "precision");
    if (precision) {
        dc_precision p;
        dc_error perr;
        if (dc_precision_parse(precision, &p, &perr) != DC_OK)
            return bad(msg, n, "precision", precision, "expected fp32, tf32, fp16 or bf16");
        o->precision = precision;
    }

    /* the VRT band */
    const char *band = value(a, args, "band");
    if (!band)
        return bad(msg, n, "band", NULL, "required: the 1-based output band");
    if (get_int(a, args, "band", 1, DC_MAX_BANDS, &a->band, msg, n) ||
        get_int(a, args, "width", 1, 1 << 30, &a->width, msg, n) ||
        get_int(a, args, "height", 1, 1 << 30, &a->height, msg, n) ||
        get_int(a, args, "xsrc", 0, 1 << 20, &a->xsrc, msg, n) ||
        get_int(a, args, "ysrc", 0, 1 << 20, &a->ysrc, msg, n))
        return -1;
    if ((a->xsrc < 0) != (a->ysrc < 0))
        return bad(msg, n, a->xsrc < 0 ? "xsrc" : "ysrc", NULL,
                   "the column and row ramps go together (xsrc and ysrc)");

    /* tiling: validated here so the message names the argument */
    const char *tile = value(a, args, "tile");
    if (tile) {
        if (!int_value(tile, &o->tile) || o->tile < 16 || o->tile % 16 != 0 || o->tile > 8192)
            return bad(msg, n, "tile", tile, "must be a positive multiple of 16 (at most 8192)");
    }
    const char *overlap = value(a, args, "overlap");
    if (overlap) {
        if (!int_value(overlap, &o->overlap) || o->overlap < 0 ||
            (o->tile > 0 && o->overlap >= o->tile))
            return bad(msg, n, "overlap", overlap, "must be >= 0 and less than the tile");
        o->have_overlap = 1;
    }

    /* nodata and the reference grid */
    if (get_double(a, args, "nodata", &o->dstnodata, &o->have_dstnodata, msg, n) ||
        get_double(a, args, "srcnodata", &o->srcnodata, &o->have_srcnodata, msg, n) ||
        get_doubles(a, args, "te", o->te, 4, &o->have_te, msg, n) ||
        get_doubles(a, args, "tr", o->tr, 2, &o->have_tr, msg, n))
        return -1;
    o->like = value(a, args, "like");
    o->t_srs = value(a, args, "t_srs");
    const char *r = value(a, args, "r");
    if (r)
        o->resampling = r;
    const char *no_warp = value(a, args, "no_warp");
    o->no_warp = no_warp && CPLTestBool(no_warp);

    a->config_hash = config_hash(args);
    char key[4096];
    if (o->weights)
        snprintf(key, sizeof key, "weights=%s|steps=%d|order=%d|sampler=%s|seed=%d|threads=%d|"
                 "device=%s|precision=%s", o->weights, o->steps, o->order, o->sampler, o->seed, o->threads,
                 o->device, o->precision ? o->precision : "fp32");
    else
        snprintf(key, sizeof key, "model=%s", o->model_name);
    a->model_key = CPLStrdup(key);
    return 0;
}

void dcp_args_free(dcp_args *a)
{
    CSLDestroy(a->owned);
    free(a->input_paths);
    CPLFree(a->model_key);
    memset(a, 0, sizeof *a);
}
