/* diffcr-evaluate — judge a decloud result against a clear reference, or build the baselines.
 *
 *   diffcr-evaluate RESULT REFERENCE [-b 1,2,3] [--scale 10000] [--mask MASK.tif] [--json]
 *                   [--html OUT.html] [-q]
 *   diffcr-evaluate --baseline median|least-cloudy DATE1 DATE2 DATE3 -o OUT.tif [-b 1,2,3]
 *                   [--mask-bright 2500] [--blue N] [--block N] [-q]
 *
 * Metrics: on reflectance (DN / scale) MAE, RMSE, PSNR (range 1.0) and SSIM (Gaussian, range 1.0;
 * also the uniform 7x7 variant), plus the DiffCR paper protocol (DIFFCR.md §7: 8-bit get_rgb
 * stretch, PSNR range 255, Gaussian SSIM). A mask (nonzero = evaluate) restricts MAE/RMSE/PSNR;
 * nodata pixels of either raster are left out of those too. SSIM and the paper protocol always use
 * the whole image, as the paper does.
 *
 * Least-cloudy: the date with the fewest pixels whose blue band (3rd selected band unless --blue)
 * exceeds --mask-bright DN, chosen for the whole image by default — Sen2_MTC samples are single
 * 256x256 scenes and the paper's baselines are per image — or per --block N pixel squares (e.g. 64)
 * for large rasters where the clouds move between dates.
 *
 * This file is only the command line; the work is in algorithms/metrics*.c and baselines.c.
 * Errors: one line `diffcr-evaluate: <what>`, exit 1, nothing written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#include "diffcr/cli_parse.h"
#include "diffcr/baselines.h"
#include "diffcr/metrics.h"

#define MAX_INPUTS 64

static const char *usage_text =
    "usage: diffcr-evaluate RESULT REFERENCE [options]\n"
    "       diffcr-evaluate --baseline median|least-cloudy DATE1 DATE2 DATE3 -o OUT.tif [options]\n"
    "  -b B1,B2,B3        bands to compare (default: the first 3)\n"
    "  --scale S          DN per unit reflectance (default 10000)\n"
    "  --mask MASK        raster, band 1 nonzero = evaluate (MAE/RMSE/PSNR only)\n"
    "  --json             print JSON instead of the table (PSNR of identical images: \"inf\")\n"
    "  --html OUT.html    also write an HTML table\n"
    "  -q                 quiet (no table unless --json; no GDAL warnings)\n"
    "baselines:\n"
    "  -o OUT.tif         output GeoTIFF (grid and data type of DATE1)\n"
    "  --mask-bright DN   least-cloudy: blue above DN is cloud (default 2500)\n"
    "  --blue N           least-cloudy: position of blue in the -b list (default 3)\n"
    "  --block N          least-cloudy: choose per N x N block (default 0: whole image)\n";

typedef struct eval_args {
    const char *pos[MAX_INPUTS];
    int npos;
    int bands[DC_METRICS_MAX_BANDS], nbands;
    double scale;
    const char *mask, *html, *out, *baseline;
    int json, quiet;
    double bright;
    int blue, block;
} eval_args;

static int quiet_warnings = 0;

static void CPL_STDCALL error_handler(CPLErr cls, CPLErrorNum num, const char *msg)
{
    (void)num;
    if (cls == CE_Warning && !quiet_warnings)
        fprintf(stderr, "diffcr-evaluate: warning: %s\n", msg);
}

static int die(const char *fmt, const char *a)
{
    fprintf(stderr, "diffcr-evaluate: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 1;
}

static int parse_bands(const char *s, eval_args *a)
{
    int n = dc_parse_int_list(s, a->bands, DC_METRICS_MAX_BANDS), ok = n > 0;
    for (int i = 0; ok && i < n; i++)
        ok = a->bands[i] >= 1;
    a->nbands = ok ? n : 0;
    return ok;
}

/* Returns 0 on success, or the exit code (already reported); *help is set for -h. */
static int parse_args(int argc, char **argv, eval_args *a, int *help)
{
    memset(a, 0, sizeof *a);
    a->scale = 10000.0;
    a->bright = 2500.0;
    a->blue = 3;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
#define NEED()                                                                                    \
    do {                                                                                          \
        if (i + 1 >= argc)                                                                        \
            return die("%s needs a value", s);                                                    \
    } while (0)
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            *help = 1;
            return 0;
        } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(s, "--json")) {
            a->json = 1;
        } else if (!strcmp(s, "-b")) {
            NEED();
            if (!parse_bands(argv[++i], a))
                return die("bad value for %s (band numbers from 1, comma-separated)", s);
        } else if (!strcmp(s, "--scale")) {
            NEED();
            if (!dc_parse_double(argv[++i], &a->scale) || !(a->scale > 0))
                return die("bad value for %s (a positive number)", s);
        } else if (!strcmp(s, "--mask")) {
            NEED();
            a->mask = argv[++i];
        } else if (!strcmp(s, "--html")) {
            NEED();
            a->html = argv[++i];
        } else if (!strcmp(s, "-o")) {
            NEED();
            a->out = argv[++i];
        } else if (!strcmp(s, "--baseline")) {
            NEED();
            a->baseline = argv[++i];
            if (strcmp(a->baseline, "median") && strcmp(a->baseline, "least-cloudy"))
                return die("--baseline %s: choose median or least-cloudy", a->baseline);
        } else if (!strcmp(s, "--mask-bright")) {
            NEED();
            if (!dc_parse_double(argv[++i], &a->bright))
                return die("bad value for %s", s);
        } else if (!strcmp(s, "--blue")) {
            NEED();
            if (!dc_parse_int(argv[++i], &a->blue) || a->blue < 1)
                return die("bad value for %s", s);
        } else if (!strcmp(s, "--block")) {
            NEED();
            if (!dc_parse_int(argv[++i], &a->block) || a->block < 0)
                return die("bad value for %s", s);
        } else if (s[0] == '-' && s[1] != '\0') {
            return die("unknown option %s (see --help)", s);
        } else {
            if (a->npos >= MAX_INPUTS)
                return die("%s", "too many inputs");
            a->pos[a->npos++] = s;
        }
#undef NEED
    }
    return 0;
}

/* ---- evaluate ---- */

static int write_html(const char *path, const dc_metrics_report *rep, const dc_metrics_labels *lb)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return die("%s: cannot write the HTML file", path);
    dc_metrics_write_html(f, rep, lb);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(path); /* no partial output */
        return die("%s: writing the HTML file failed", path);
    }
    return 0;
}

static int evaluate(const eval_args *a)
{
    if (a->npos != 2)
        return die("%s", a->npos < 2 ? "give RESULT and REFERENCE (see --help)"
                                     : "too many inputs: give RESULT and REFERENCE");
    if (a->out)
        return die("%s", "-o is for --baseline; use --html or --json for the evaluation");
    dc_error err;
    dc_error_clear(&err);
    dc_eval_raster res, ref;
    uint8_t *mask = NULL, *use = NULL;
    int rc = dc_eval_raster_read(a->pos[0], a->bands, a->nbands, &res, &err);
    if (rc != DC_OK)
        return die("%s", err.msg);
    rc = dc_eval_raster_read(a->pos[1], a->bands, a->nbands, &ref, &err);
    if (rc != DC_OK) {
        dc_eval_raster_free(&res);
        return die("%s", err.msg);
    }
    int status = 0;
    if (res.w != ref.w || res.h != ref.h || res.c != ref.c) {
        fprintf(stderr, "diffcr-evaluate: size mismatch: %s is %dx%d (%d bands), %s is %dx%d "
                "(%d bands)\n", a->pos[0], res.w, res.h, res.c, a->pos[1], ref.w, ref.h, ref.c);
        status = 1;
    }
    if (!status && a->mask && dc_eval_mask_read(a->mask, res.w, res.h, &mask, &err) != DC_OK)
        status = die("%s", err.msg);
    /* the pixels MAE/RMSE/PSNR compare: in the mask, and valid (not nodata) in both rasters */
    size_t npix = (size_t)res.w * (size_t)res.h;
    if (!status && (mask || res.valid || ref.valid)) {
        if (!(use = malloc(npix)))
            status = die("%s", "out of memory");
        for (size_t p = 0; !status && p < npix; p++)
            use[p] = (!mask || mask[p]) && (!res.valid || res.valid[p]) &&
                     (!ref.valid || ref.valid[p]);
    }
    dc_metrics_report rep;
    if (!status && dc_metrics_report_dn(res.data, ref.data, use, res.h, res.w, res.c, a->scale,
                                        &rep, &err) != DC_OK)
        status = die("%s", err.msg);
    if (!status) {
        int numbers[DC_METRICS_MAX_BANDS];
        for (int k = 0; k < res.c; k++)
            numbers[k] = a->nbands ? a->bands[k] : k + 1;
        rep.masked = a->mask != NULL;
        dc_metrics_labels lb = {a->pos[0], a->pos[1], a->mask, numbers};
        if (a->html)
            status = write_html(a->html, &rep, &lb);
        if (!status && a->json)
            dc_metrics_write_json(stdout, &rep, &lb);
        else if (!status && !a->quiet)
            dc_metrics_write_text(stdout, &rep, &lb);
    }
    free(use);
    free(mask);
    dc_eval_raster_free(&res);
    dc_eval_raster_free(&ref);
    return status;
}

/* ---- baselines ---- */

static int baseline(const eval_args *a)
{
    if (!a->out)
        return die("%s", "--baseline needs -o OUT.tif");
    if (a->npos < 2)
        return die("%s", "--baseline needs at least 2 date rasters");
    if (a->mask || a->html || a->json)
        return die("%s", "--mask, --html and --json are for the evaluation, not --baseline");
    int lc = !strcmp(a->baseline, "least-cloudy");
    dc_error err;
    dc_error_clear(&err);
    dc_eval_raster d[MAX_INPUTS];
    const float *data[MAX_INPUTS];
    const uint8_t *valid[MAX_INPUTS];
    int n = 0, status = 0;
    for (; n < a->npos; n++) {
        if (dc_eval_raster_read(a->pos[n], a->bands, a->nbands, &d[n], &err) != DC_OK) {
            status = die("%s", err.msg);
            break;
        }
        data[n] = d[n].data;
        valid[n] = d[n].valid;
        if (n > 0 && (d[n].w != d[0].w || d[n].h != d[0].h || d[n].c != d[0].c)) {
            fprintf(stderr, "diffcr-evaluate: size mismatch: %s is %dx%d (%d bands), %s is "
                    "%dx%d (%d bands)\n", a->pos[n], d[n].w, d[n].h, d[n].c, a->pos[0], d[0].w,
                    d[0].h, d[0].c);
            status = 1;
            n++;
            break;
        }
    }
    int c = n ? d[0].c : 0;
    if (!status && lc && a->blue > c)
        status = die("%s", "--blue: the selection has fewer bands (blue is the 3rd selected band "
                           "by default; give --blue N)");
    float *out = NULL;
    int *choice = NULL;
    int nbx = 1, nby = 1;
    if (!status) {
        size_t nval = (size_t)d[0].w * (size_t)d[0].h * (size_t)c;
        if (a->block > 0) {
            nbx = (d[0].w + a->block - 1) / a->block;
            nby = (d[0].h + a->block - 1) / a->block;
        }
        out = malloc(nval * sizeof *out);
        choice = malloc((size_t)nbx * nby * sizeof *choice);
        if (!out || !choice)
            status = die("%s", "out of memory");
    }
    if (!status) {
        int rc = lc ? dc_baseline_least_cloudy(data, valid, n, d[0].h, d[0].w, c, a->blue - 1,
                                               a->bright, a->block, out, choice, &err)
                    : dc_baseline_median(data, valid, n, d[0].h, d[0].w, c, out, &err);
        if (rc != DC_OK)
            status = die("%s", err.msg);
    }
    if (!status && dc_eval_raster_write(a->out, &d[0], out, c, d[0].data_type, &err) != DC_OK)
        status = die("%s", err.msg);
    if (!status && lc && !a->quiet) {
        if (nbx * nby == 1) {
            printf("least-cloudy: date %d (%s)\n", choice[0] + 1, a->pos[choice[0]]);
        } else {
            printf("least-cloudy per %d-pixel block (%d blocks):", a->block, nbx * nby);
            for (int k = 0; k < n; k++) {
                int cnt = 0;
                for (int b = 0; b < nbx * nby; b++)
                    cnt += choice[b] == k;
                printf(" date %d: %d", k + 1, cnt);
            }
            putchar('\n');
        }
    }
    free(out);
    free(choice);
    for (int k = 0; k < n; k++)
        dc_eval_raster_free(&d[k]);
    return status;
}

int main(int argc, char **argv)
{
    eval_args a;
    int help = 0;
    int status = parse_args(argc, argv, &a, &help);
    if (status)
        return status;
    if (help) {
        fputs(usage_text, stdout);
        return 0;
    }
    quiet_warnings = a.quiet;
    CPLSetErrorHandler(error_handler);
    GDALAllRegister();
    status = a.baseline ? baseline(&a) : evaluate(&a);
    GDALDestroyDriverManager();
    return status;
}
