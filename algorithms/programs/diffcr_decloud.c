/* diffcr-decloud — remove clouds from N co-registered (or warpable) date rasters.
 *
 *   diffcr-decloud [options] DATE1 DATE2 DATE3 OUT
 *   diffcr-decloud [options] --stack-dates 3 STACK OUT
 *   diffcr-decloud [options] DATE1 DATE2 DATE3 --in-place FILE
 *   diffcr-decloud [options] DATE1 DATE2 DATE3 --vrt OUT.vrt
 *
 * --vrt computes nothing: it writes a VRT whose bands call the `decloud` pixel function of the
 * GDAL plugin gdal_decloud.so with these options (algorithms/vrt_writer.c), so gdal_translate,
 * QGIS or any GDAL reader computes the same pixels on demand.
 *
 * This file is only the command line: parsing, signals, progress and the one-line error. The
 * work is dc_decloud_run() (algorithms/decloud.c). Errors print `diffcr-decloud: <what>` and
 * exit 1; Ctrl-C/SIGTERM stop at the next strip, remove the partial output and exit 130. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#include "diffcr/cli_parse.h"
#include "diffcr/decloud.h"
#include "diffcr/tile_model.h"
#include "diffcr/vrt_writer.h"

static const char *usage_text =
    "usage: diffcr-decloud [options] DATE... OUT | --stack-dates N STACK OUT | DATE... --in-place FILE\n"
    "       diffcr-decloud [options] DATE... --vrt OUT.vrt   (a VRT using the GDAL plugin gdal_decloud.so)\n"
    "  -b B1,B2,B3          bands per date (default: 13 bands -> 4,3,2; 3 or 4 bands -> 1,2,3)\n"
    "  --stack-dates N      one input holding N dates x bands, date-major\n"
    "  --like FILE | -te XMIN YMIN XMAX YMAX -tr XRES YRES [-t_srs SRS]   reference grid\n"
    "  -r RESAMPLING        warp resampling (default bilinear); --no-warp refuses other grids\n"
    "  --srcnodata V  --dstnodata V\n"
    "  --tile N (multiple of 16)  --overlap N (default tile/4)\n"
    "  -of FORMAT  -co NAME=VALUE  --in-place FILE  --uncertainty FILE (Float32 std of samples)\n"
    "  --weights FILE       model (default: the shipped default model) | --model mean|blur (test models)\n"
    "  --steps N --order N --sampler NAME --seed N --threads N --samples K\n"
    "  --device auto|cpu|cuda|cuda:N  (auto: the GPU when one works)\n"
    "  --precision fp32|tf32|fp16|bf16  convolution maths on cuda (default fp32, exact)\n"
    "  --batch N            tiles per network call (default 1; 4-8 keep a GPU busy)\n"
    "  -q                   quiet\n"
    "  debugging: --max-rows N --max-cols N (compute in windows), --debug-delay-ms N\n";

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct progress_state {
    int quiet;
    int shown;     /* something was printed: end the line before an error message */
    int last_tick; /* GDALTermProgress's 0..40 ticks, printed so far */
} progress_state;

/* GDALTermProgress's format (0...10...20...100 - done.), but on stderr: stdout may be data. */
static void term_progress(progress_state *s, double f)
{
    int tick = (int)(f * 40.0);
    tick = tick < 0 ? 0 : (tick > 40 ? 40 : tick);
    if (tick < s->last_tick)
        s->last_tick = -1; /* restarted */
    while (s->last_tick < tick) {
        s->last_tick++;
        if (s->last_tick % 4 == 0)
            fprintf(stderr, "%d", s->last_tick / 4 * 10);
        else
            fputc('.', stderr);
    }
    if (tick == 40 && s->last_tick == 40) {
        fputs(" - done.\n", stderr);
        s->last_tick = 41; /* printed once */
    }
    fflush(stderr);
}

static int CPL_STDCALL progress_cb(double f, const char *msg, void *arg)
{
    progress_state *s = arg;
    if (interrupted)
        return FALSE;
    if (s->quiet)
        return TRUE;
    if (s->last_tick > 40)
        return TRUE;
    s->shown = s->last_tick < 40;
    term_progress(s, f);
    return TRUE;
}

static int quiet_warnings = 0;

/* GDAL failures are reported through our one-line error (dc_gdal_fail quotes them); only
 * warnings are shown, and -q hides them. */
static void CPL_STDCALL error_handler(CPLErr cls, CPLErrorNum num, const char *msg)
{
    (void)num;
    if (cls == CE_Warning && !quiet_warnings)
        fprintf(stderr, "diffcr-decloud: warning: %s\n", msg);
}

static void notice(const char *msg, void *arg)
{
    if (!*(const int *)arg)
        fprintf(stderr, "diffcr-decloud: %s\n", msg);
}

static int die(const char *fmt, const char *a)
{
    fprintf(stderr, "diffcr-decloud: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 1;
}

static int parse_bands(const char *s, dc_decloud_options *o)
{
    o->nbands_sel = dc_parse_int_list(s, o->bands, DC_MAX_BANDS);
    return o->nbands_sel > 0;
}

/* FNV-1a over the arguments that define the result (not -q or debug delays): an --in-place
 * leftover is resumed only by the same command. */
static void run_key(int argc, char **argv, char *out, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0)
            continue;
        if (strcmp(argv[i], "--debug-delay-ms") == 0) {
            i++;
            continue;
        }
        for (const char *c = argv[i]; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        h = (h ^ 0xffu) * 1099511628211ULL;
    }
    snprintf(out, n, "%016llx", (unsigned long long)h);
}

int main(int argc, char **argv)
{
    dc_decloud_options o;
    dc_decloud_options_init(&o);
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    char **co = NULL;
    int npos = 0, format_given = 0;
    const char *vrt = NULL;
    if (!pos)
        return die("%s", "out of memory");
#define NEED(k)                                                                                   \
    do {                                                                                          \
        if (i + (k) >= argc) {                                                                    \
            free(pos);                                                                            \
            CSLDestroy(co);                                                                       \
            return die("%s needs a value", a);                                                    \
        }                                                                                         \
    } while (0)
#define BAD(what)                                                                                 \
    do {                                                                                          \
        free(pos);                                                                                \
        CSLDestroy(co);                                                                           \
        return die("bad value for %s", what);                                                     \
    } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            free(pos);
            CSLDestroy(co);
            return 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
        } else if (strcmp(a, "-b") == 0) {
            NEED(1);
            if (!parse_bands(argv[++i], &o))
                BAD("-b");
        } else if (strcmp(a, "--stack-dates") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.stack_dates) || o.stack_dates < 1)
                BAD("--stack-dates");
        } else if (strcmp(a, "--like") == 0) {
            NEED(1);
            o.like = argv[++i];
        } else if (strcmp(a, "-te") == 0) {
            NEED(4);
            for (int k = 0; k < 4; k++)
                if (!dc_parse_double(argv[++i], &o.te[k]))
                    BAD("-te");
            o.have_te = 1;
        } else if (strcmp(a, "-tr") == 0) {
            NEED(2);
            for (int k = 0; k < 2; k++)
                if (!dc_parse_double(argv[++i], &o.tr[k]))
                    BAD("-tr");
            o.have_tr = 1;
        } else if (strcmp(a, "-t_srs") == 0) {
            NEED(1);
            o.t_srs = argv[++i];
        } else if (strcmp(a, "-r") == 0) {
            NEED(1);
            o.resampling = argv[++i];
        } else if (strcmp(a, "--no-warp") == 0) {
            o.no_warp = 1;
        } else if (strcmp(a, "--srcnodata") == 0) {
            NEED(1);
            if (!dc_parse_double(argv[++i], &o.srcnodata))
                BAD("--srcnodata");
            o.have_srcnodata = 1;
        } else if (strcmp(a, "--dstnodata") == 0) {
            NEED(1);
            if (!dc_parse_double(argv[++i], &o.dstnodata))
                BAD("--dstnodata");
            o.have_dstnodata = 1;
        } else if (strcmp(a, "--tile") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.tile))
                BAD("--tile");
        } else if (strcmp(a, "--overlap") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.overlap))
                BAD("--overlap");
            o.have_overlap = 1;
        } else if (strcmp(a, "-of") == 0) {
            NEED(1);
            o.format = argv[++i];
            format_given = 1;
        } else if (strcmp(a, "-co") == 0) {
            NEED(1);
            co = CSLAddString(co, argv[++i]);
        } else if (strcmp(a, "--in-place") == 0) {
            NEED(1);
            o.in_place = argv[++i];
        } else if (strcmp(a, "--vrt") == 0) {
            NEED(1);
            vrt = argv[++i];
        } else if (strcmp(a, "--uncertainty") == 0) {
            NEED(1);
            o.uncertainty = argv[++i];
        } else if (strcmp(a, "--model") == 0) {
            NEED(1);
            o.model_name = argv[++i];
        } else if (strcmp(a, "--weights") == 0) {
            NEED(1);
            o.weights = argv[++i];
        } else if (strcmp(a, "--steps") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.steps) || o.steps < 1)
                BAD("--steps");
        } else if (strcmp(a, "--order") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.order) || o.order < 1 || o.order > 3)
                BAD("--order");
        } else if (strcmp(a, "--sampler") == 0) {
            NEED(1);
            o.sampler = argv[++i];
        } else if (strcmp(a, "--seed") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.seed))
                BAD("--seed");
        } else if (strcmp(a, "--threads") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.threads) || o.threads < 0)
                BAD("--threads");
        } else if (strcmp(a, "--device") == 0) {
            NEED(1);
            o.device = argv[++i];
        } else if (strcmp(a, "--precision") == 0) {
            NEED(1);
            o.precision = argv[++i];
        } else if (strcmp(a, "--batch") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.batch) || o.batch < 1 || o.batch > 256)
                BAD("--batch");
        } else if (strcmp(a, "--samples") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.samples) || o.samples < 1)
                BAD("--samples");
        } else if (strcmp(a, "--max-rows") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.max_rows) || o.max_rows < 1)
                BAD("--max-rows");
        } else if (strcmp(a, "--max-cols") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.max_cols) || o.max_cols < 1)
                BAD("--max-cols");
        } else if (strcmp(a, "--debug-delay-ms") == 0) {
            NEED(1);
            if (!dc_parse_int(argv[++i], &o.debug_delay_ms) || o.debug_delay_ms < 0)
                BAD("--debug-delay-ms");
        } else if (a[0] == '-' && a[1] != '\0') {
            free(pos);
            CSLDestroy(co);
            return die("unknown option %s (see --help)", a);
        } else {
            pos[npos++] = a;
        }
    }
    if (!o.weights && !o.model_name) {
        /* the shipped default model, so a new user needs no model file */
        o.weights = dc_default_model_path();
        if (!o.weights) {
            free(pos);
            CSLDestroy(co);
            return die("%s", "no model: give --weights FILE (the default model was not found: set "
                             "DIFFCR_DEFAULT_MODEL or install diffcr)");
        }
    }
    if (vrt && (o.in_place || o.uncertainty || format_given || co)) {
        free(pos);
        CSLDestroy(co);
        return die("%s", "--vrt cannot be combined with --in-place, --uncertainty, -of or -co");
    }
    if (!o.in_place && !vrt) {
        if (npos < 2) {
            free(pos);
            CSLDestroy(co);
            return die("%s", "give the date rasters and the output (see --help)");
        }
        o.output = pos[--npos];
    }
    if (npos < 1) {
        free(pos);
        CSLDestroy(co);
        return die("%s", "no input rasters given (see --help)");
    }
    o.inputs = pos;
    o.ninputs = npos;
    o.create_options = co;

    /* History: the command line as typed (arguments space-separated). */
    size_t hl = 1;
    for (int i = 0; i < argc; i++)
        hl += strlen(argv[i]) + 1;
    char *history = malloc(hl);
    if (history) {
        history[0] = '\0';
        for (int i = 0; i < argc; i++) {
            strcat(history, i ? " " : "");
            strcat(history, i ? argv[i] : "diffcr-decloud");
        }
    }
    o.history = history;
    char key[32];
    run_key(argc, argv, key, sizeof key);
    o.run_key = key;
    o.notice = notice;
    o.notice_arg = &o.quiet;

    quiet_warnings = o.quiet;
    CPLSetErrorHandler(error_handler);
    GDALAllRegister();
    /* Bound GDAL's block cache (default 5% of RAM) unless the user chose one. */
    if (!CPLGetConfigOption("GDAL_CACHEMAX", NULL))
        GDALSetCacheMax64((GIntBig)256 << 20);

    dc_cli_catch_stop_signals(on_signal);

    progress_state ps = {o.quiet, 0, -1};
    dc_error err;
    dc_error_clear(&err);
    int rc = vrt ? dc_decloud_write_vrt(&o, vrt, &err) : dc_decloud_run(&o, progress_cb, &ps, &err);
    if (rc != DC_OK && ps.shown)
        fputc('\n', stderr); /* end a progress line before the message */
    if (rc == DC_ERR_CANCELLED || (rc != DC_OK && interrupted))
        fprintf(stderr, "diffcr-decloud: interrupted%s\n",
                o.in_place ? "; rerun the same command to resume" : ", no output written");
    else if (rc != DC_OK)
        fprintf(stderr, "diffcr-decloud: %s\n", err.msg);
    free(history);
    free(pos);
    CSLDestroy(co);
    GDALDestroyDriverManager();
    if (rc == DC_OK)
        return 0;
    return rc == DC_ERR_CANCELLED || interrupted ? 130 : 1;
}
