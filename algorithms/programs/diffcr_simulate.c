/* diffcr-simulate — synthetic clouds over clear rasters, and a synthetic clear landscape.
 *
 *   diffcr-simulate [options] CLEAR            N cloudy dates + masks + clear target
 *   diffcr-simulate landscape [options] -o OUT a georeferenced R,G,B,NIR sample scene
 *
 * This file is only the command line: the work is dc_cloud_sim_raster() (algorithms/
 * cloud_sim_raster.c) and dc_landscape_write() (algorithms/landscape_raster.c). Errors print
 * one line `diffcr-simulate: <what>` on stderr and exit 1, leaving no output behind. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#include "diffcr/cli_parse.h"
#include "diffcr/cloud_sim.h"
#include "diffcr/landscape.h"

static const char *usage_text =
    "usage: diffcr-simulate [options] CLEAR\n"
    "       diffcr-simulate landscape [--size WxH] [--seed S] [--origin X,Y] [--epsg N]\n"
    "                       [--pixel-size M] [-of FORMAT] [-co NAME=VALUE] -o OUT\n"
    "Simulates cloudy dates over a clear raster. Writes PREFIX_date<k>, PREFIX_mask<k> (Byte:\n"
    "0 clear, 1 thin cloud, 2 thick cloud, 3 shadow) and PREFIX_clear (the selected bands).\n"
    "  --out-prefix PREFIX  output prefix (default: CLEAR without its extension)\n"
    "  --dates N            number of dates (default 3)\n"
    "  --seed N             random seed (default 1); same seed and options, same pixels\n"
    "  --cover MIN,MAX      cloud-flagged fraction per date (default 0.1,0.6)\n"
    "  --sun-azimuth DEG    clockwise from north (default 160)\n"
    "  --sun-elevation DEG  (default 40)\n"
    "  --cloud-height M     mean cloud base height (default 1000)\n"
    "  --cloud-scale PX     size of the largest cloud features in pixels (default 160)\n"
    "  -b B1,B2,...         bands to use (default all)\n"
    "  --band-kinds K,...   red|green|blue|nir|other per selected band (default: from colour\n"
    "                       interpretation or names; 3 or 4 unnamed bands are R,G,B(,NIR))\n"
    "  --dn-scale V         DN of reflectance 1 (default 10000; 250 for Byte)\n"
    "  --pixel-size M       ground pixel size (default from a projected CRS, else 10)\n"
    "  --no-cirrus --no-haze --no-shadows --no-radiometric --no-phenology --no-clear\n"
    "  -of FORMAT  -co NAME=VALUE  -q\n";

static void fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("diffcr-simulate: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double parse_double(const char *opt, const char *s)
{
    double v = 0.0;
    if (!s || !dc_parse_double(s, &v))
        fail("%s: expected a number, got '%s'", opt, s ? s : "");
    return v;
}

static int parse_int(const char *opt, const char *s, int lo, int hi)
{
    int v = 0;
    if (!s || !dc_parse_int(s, &v) || v < lo || v > hi)
        fail("%s: expected an integer in %d..%d, got '%s'", opt, lo, hi, s ? s : "");
    return v;
}

static uint64_t parse_seed(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || *s == '-' || end == s || *end || errno)
        fail("--seed: expected a non-negative integer, got '%s'", s ? s : "");
    return (uint64_t)v;
}

/* "A,B" into two doubles. */
static void parse_pair(const char *opt, const char *s, double *a, double *b)
{
    char *end, *end2;
    errno = 0;
    *a = s ? strtod(s, &end) : 0.0;
    if (!s || end == s || *end != ',' || errno)
        fail("%s: expected two numbers A,B, got '%s'", opt, s ? s : "");
    *b = strtod(end + 1, &end2);
    if (end2 == end + 1 || *end2 || errno || !isfinite(*a) || !isfinite(*b))
        fail("%s: expected two numbers A,B, got '%s'", opt, s);
}

static int parse_kind(const char *k)
{
    static const struct { const char *name; int kind; } kinds[] = {
        {"red", DC_BAND_RED},   {"r", DC_BAND_RED},     {"green", DC_BAND_GREEN},
        {"g", DC_BAND_GREEN},   {"blue", DC_BAND_BLUE}, {"b", DC_BAND_BLUE},
        {"nir", DC_BAND_NIR},   {"n", DC_BAND_NIR},     {"other", DC_BAND_OTHER},
        {"o", DC_BAND_OTHER}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (EQUAL(k, kinds[i].name))
            return kinds[i].kind;
    fail("--band-kinds: unknown band kind '%s' (red, green, blue, nir, other)", k);
}

/* Comma list into ints (bands) or kinds; returns the count. */
static int parse_list(const char *opt, const char *s, int *out, int kinds)
{
    char **items = CSLTokenizeString2(s ? s : "", ",", 0);
    int n = CSLCount(items);
    if (n < 1 || n > DC_CLOUD_SIM_MAX_BANDS) {
        CSLDestroy(items);
        fail("%s: expected 1..%d comma-separated items, got '%s'", opt, DC_CLOUD_SIM_MAX_BANDS,
             s ? s : "");
    }
    for (int i = 0; i < n; i++) {
        if (kinds) {
            out[i] = parse_kind(items[i]);
        } else {
            char *end;
            long v = strtol(items[i], &end, 10);
            if (end == items[i] || *end || v < 1 || v > 65535) {
                fail("%s: '%s' is not a band number", opt, items[i]);
            }
            out[i] = (int)v;
        }
    }
    CSLDestroy(items);
    return n;
}

static const char *need(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        fail("%s needs a value", argv[*i]);
    return argv[++*i];
}

typedef struct progress_state {
    int quiet, last_tick;
} progress_state;

/* GDALTermProgress's look (0...10...20...100 - done.) on stderr: stdout stays clean. */
static int progress_cb(double f, void *arg)
{
    progress_state *s = arg;
    if (s->quiet)
        return 1;
    int tick = (int)(f * 40.0);
    tick = tick < 0 ? 0 : (tick > 40 ? 40 : tick);
    while (s->last_tick < tick) {
        s->last_tick++;
        if (s->last_tick % 4 == 0)
            fprintf(stderr, "%d", s->last_tick / 4 * 10);
        else
            fputc('.', stderr);
        if (s->last_tick == 40)
            fputs(" - done.\n", stderr);
    }
    fflush(stderr);
    return 1;
}

static int run_landscape(int argc, char **argv)
{
    dc_landscape_options o;
    dc_landscape_defaults(&o);
    const char *out = NULL, *format = "GTiff";
    char **co = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--size")) {
            const char *v = need(argc, argv, &i);
            char *end, *end2;
            long w = strtol(v, &end, 10);
            long h = (*end == 'x' || *end == 'X') ? strtol(end + 1, &end2, 10) : -1;
            if (end == v || h < 0 || *end2 || w < 1 || h < 1 || w > 100000 || h > 100000)
                fail("--size: expected WxH within 1..100000, got '%s'", v);
            o.width = (int)w;
            o.height = (int)h;
        } else if (!strcmp(a, "--seed")) {
            o.seed = parse_seed(need(argc, argv, &i));
        } else if (!strcmp(a, "--origin")) {
            parse_pair(a, need(argc, argv, &i), &o.origin_x, &o.origin_y);
        } else if (!strcmp(a, "--epsg")) {
            o.epsg = (int)parse_int(a, need(argc, argv, &i), 1, 999999);
        } else if (!strcmp(a, "--pixel-size")) {
            o.pixel_size = parse_double(a, need(argc, argv, &i));
            if (!(o.pixel_size > 0.0))
                fail("--pixel-size must be positive");
        } else if (!strcmp(a, "-o")) {
            out = need(argc, argv, &i);
        } else if (!strcmp(a, "-of")) {
            format = need(argc, argv, &i);
        } else if (!strcmp(a, "-co")) {
            co = CSLAddString(co, need(argc, argv, &i));
        } else if (!strcmp(a, "-q")) {
            /* nothing is printed anyway */
        } else {
            fail("landscape: unknown option or extra argument '%s'", a);
        }
    }
    if (!out)
        fail("landscape: no output file (-o OUT)");
    dc_error err;
    dc_error_clear(&err);
    int rc = dc_landscape_write(&o, out, format, co, &err);
    CSLDestroy(co);
    if (rc != DC_OK)
        fail("%s", err.msg);
    return 0;
}

/* Default prefix: the input path without its extension. */
static char *default_prefix(const char *input)
{
    char *p = strdup(input);
    if (!p)
        fail("out of memory");
    char *slash = strrchr(p, '/'), *dot = strrchr(p, '.');
    if (dot && (!slash || dot > slash + 1))
        *dot = '\0';
    return p;
}

int main(int argc, char **argv)
{
    CPLSetErrorHandler(CPLQuietErrorHandler); /* GDAL's messages reach the user through ours */
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    GDALAllRegister();
    if (argc >= 2 && !strcmp(argv[1], "landscape"))
        return run_landscape(argc, argv);

    dc_cloud_sim_raster_options o;
    dc_cloud_sim_raster_defaults(&o);
    o.seed = 1;
    progress_state ps = {0, 0};
    char **co = NULL;
    const char *prefix = NULL;
    int nkinds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dates"))
            o.sim.ndates = (int)parse_int(a, need(argc, argv, &i), 1, DC_CLOUD_SIM_MAX_DATES);
        else if (!strcmp(a, "--seed"))
            o.seed = parse_seed(need(argc, argv, &i));
        else if (!strcmp(a, "--cover"))
            parse_pair(a, need(argc, argv, &i), &o.sim.cover_min, &o.sim.cover_max);
        else if (!strcmp(a, "--sun-azimuth"))
            o.sim.sun_azimuth_deg = parse_double(a, need(argc, argv, &i));
        else if (!strcmp(a, "--sun-elevation"))
            o.sim.sun_elevation_deg = parse_double(a, need(argc, argv, &i));
        else if (!strcmp(a, "--cloud-height"))
            o.sim.cloud_height_m = parse_double(a, need(argc, argv, &i));
        else if (!strcmp(a, "--cloud-scale"))
            o.sim.cloud_scale_px = parse_double(a, need(argc, argv, &i));
        else if (!strcmp(a, "--dn-scale")) {
            o.sim.dn_scale = parse_double(a, need(argc, argv, &i));
            o.have_dn_scale = 1;
        } else if (!strcmp(a, "--pixel-size")) {
            o.sim.pixel_size_m = parse_double(a, need(argc, argv, &i));
            o.have_pixel_size = 1;
        } else if (!strcmp(a, "-b"))
            o.nbands = parse_list(a, need(argc, argv, &i), o.bands, 0);
        else if (!strcmp(a, "--band-kinds")) {
            nkinds = parse_list(a, need(argc, argv, &i), o.band_kind, 1);
            o.have_band_kind = 1;
        } else if (!strcmp(a, "--out-prefix"))
            prefix = need(argc, argv, &i);
        else if (!strcmp(a, "--no-cirrus"))
            o.sim.cirrus = 0;
        else if (!strcmp(a, "--no-haze"))
            o.sim.haze = 0;
        else if (!strcmp(a, "--no-shadows"))
            o.sim.shadows = 0;
        else if (!strcmp(a, "--no-radiometric"))
            o.sim.radiometric = 0;
        else if (!strcmp(a, "--no-phenology"))
            o.sim.phenology = 0;
        else if (!strcmp(a, "--no-clear"))
            o.write_clear = 0;
        else if (!strcmp(a, "-of"))
            o.format = need(argc, argv, &i);
        else if (!strcmp(a, "-co"))
            co = CSLAddString(co, need(argc, argv, &i));
        else if (!strcmp(a, "-q"))
            ps.quiet = 1;
        else if (a[0] == '-' && a[1])
            fail("unknown option %s (see --help)", a);
        else if (o.input)
            fail("one input raster only, got '%s' and '%s'", o.input, a);
        else
            o.input = a;
    }
    if (!o.input)
        fail("no input raster (see --help)");
    if (o.have_band_kind) {
        int nsel = o.nbands;
        if (nsel == 0) { /* all bands: count them to check the kind list */
            GDALDatasetH ds = GDALOpenEx(o.input, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
            nsel = ds ? GDALGetRasterCount(ds) : nkinds;
            if (ds)
                GDALClose(ds);
        }
        if (nkinds != nsel)
            fail("--band-kinds lists %d kinds for %d bands", nkinds, nsel);
    }
    char *own_prefix = prefix ? NULL : default_prefix(o.input);
    o.out_prefix = prefix ? prefix : own_prefix;
    o.create_options = co;
    o.progress = progress_cb;
    o.progress_arg = &ps;
    dc_error err;
    dc_error_clear(&err);
    int rc = dc_cloud_sim_raster(&o, &err);
    CSLDestroy(co);
    free(own_prefix);
    if (rc != DC_OK) {
        if (ps.last_tick > 0 && ps.last_tick < 40)
            fputc('\n', stderr);
        fail("%s", err.msg);
    }
    return 0;
}
