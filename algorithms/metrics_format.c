/* diffcr — a metrics report as a readable table, JSON, or a self-contained HTML page.
 *
 * JSON numbers carry 17 significant digits (the tests compare with scikit-image to 1e-5). Values
 * that JSON cannot hold: PSNR of identical images (+inf) is written as the string "inf" (Python's
 * float() reads it back), a metric that does not apply (NaN: no pixel compared, image smaller than
 * the SSIM window, paper protocol without 3 bands) as null. The HTML page is what the QGIS
 * "Evaluate a decloud result" tool shows: one table, a little inline CSS, no external files. */
#include <math.h>
#include <stdio.h>

#include "diffcr/metrics.h"

/* ---- shared ---- */

static int band_number(const dc_metrics_labels *lb, int k)
{
    return lb && lb->band_numbers ? lb->band_numbers[k] : k + 1;
}

static const char *label(const char *s, const char *fallback)
{
    return s ? s : fallback;
}

/* A number for the table/HTML: fixed decimals, "inf", or "-" for not applicable. */
static void put_num(FILE *f, double v, int decimals, int width)
{
    if (isnan(v))
        fprintf(f, "%*s", width, "-");
    else if (isinf(v))
        fprintf(f, "%*s", width, v > 0 ? "inf" : "-inf");
    else
        fprintf(f, "%*.*f", width, decimals, v);
}

/* ---- text ---- */

typedef struct row_def {
    const char *name;
    int decimals;
} row_def;

static double stat_of(const dc_error_stats *s, int row)
{
    return row == 0 ? s->mae : (row == 1 ? s->rmse : s->psnr);
}

void dc_metrics_write_text(FILE *f, const dc_metrics_report *rep, const dc_metrics_labels *lb)
{
    static const row_def rows[] = {{"MAE", 6}, {"RMSE", 6}, {"PSNR (dB)", 3}};
    fprintf(f, "result:    %s\nreference: %s\n", label(lb ? lb->result : NULL, "?"),
            label(lb ? lb->reference : NULL, "?"));
    fprintf(f, "size:      %d x %d, %d band(s), reflectance = DN / %g\n", rep->w, rep->h,
            rep->bands, rep->scale);
    if (rep->masked)
        fprintf(f, "mask:      %s (%lld of %lld pixels)\n", label(lb ? lb->mask : NULL, "?"),
                rep->compared, rep->pixels);
    else if (rep->compared != rep->pixels)
        fprintf(f, "compared:  %lld of %lld pixels (nodata/NaN skipped)\n", rep->compared,
                rep->pixels);
    fprintf(f, "\nreflectance (data range 1.0)\n%-22s", "");
    for (int k = 0; k < rep->bands; k++) {
        char name[24];
        snprintf(name, sizeof name, "band %d", band_number(lb, k));
        fprintf(f, " %10s", name);
    }
    fprintf(f, " %10s\n", "all");
    for (int r = 0; r < 3; r++) {
        fprintf(f, "%-22s", rows[r].name);
        for (int k = 0; k < rep->bands; k++) {
            fputc(' ', f);
            put_num(f, stat_of(&rep->band[k], r), rows[r].decimals, 10);
        }
        fputc(' ', f);
        put_num(f, stat_of(&rep->all, r), rows[r].decimals, 10);
        fputc('\n', f);
    }
    fprintf(f, "%-22s", "SSIM (Gaussian 11x11)");
    for (int k = 0; k < rep->bands; k++) {
        fputc(' ', f);
        put_num(f, rep->ssim_band[k], 4, 10);
    }
    fputc(' ', f);
    put_num(f, rep->ssim, 4, 10);
    fprintf(f, "\n%-22s", "SSIM (uniform 7x7)");
    for (int k = 0; k < rep->bands; k++)
        fprintf(f, " %10s", "");
    fputc(' ', f);
    put_num(f, rep->ssim_uniform, 4, 10);
    fputc('\n', f);
    if (rep->have_paper) {
        fprintf(f, "\npaper protocol (8-bit get_rgb stretch, DIFFCR.md section 7)\n");
        fprintf(f, "%-22s ", "PSNR (dB)");
        put_num(f, rep->paper.psnr, 3, 10);
        fprintf(f, "\n%-22s ", "SSIM");
        put_num(f, rep->paper.ssim, 4, 10);
        fputc('\n', f);
    } else {
        fprintf(f, "\npaper protocol: not applicable (needs 3 bands R,G,B and at least 11x11)\n");
    }
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("null", f);
    else if (isinf(v))
        fputs(v > 0 ? "\"inf\"" : "\"-inf\"", f);
    else
        fprintf(f, "%.17g", v);
}

static void json_stats(FILE *f, const dc_error_stats *s)
{
    fputs("\"mae\": ", f);
    json_num(f, s->mae);
    fputs(", \"rmse\": ", f);
    json_num(f, s->rmse);
    fputs(", \"mse\": ", f);
    json_num(f, s->mse);
    fputs(", \"psnr\": ", f);
    json_num(f, s->psnr);
}

void dc_metrics_write_json(FILE *f, const dc_metrics_report *rep, const dc_metrics_labels *lb)
{
    fputs("{\n  \"result\": ", f);
    json_str(f, lb ? lb->result : NULL);
    fputs(",\n  \"reference\": ", f);
    json_str(f, lb ? lb->reference : NULL);
    fputs(",\n  \"mask\": ", f);
    json_str(f, lb && rep->masked ? lb->mask : NULL);
    fprintf(f, ",\n  \"width\": %d, \"height\": %d, \"bands\": [", rep->w, rep->h);
    for (int k = 0; k < rep->bands; k++)
        fprintf(f, "%s%d", k ? ", " : "", band_number(lb, k));
    fprintf(f, "],\n  \"scale\": %.17g, \"pixels\": %lld, \"compared\": %lld,\n", rep->scale,
            rep->pixels, rep->compared);
    fputs("  \"reflectance\": {", f);
    json_stats(f, &rep->all);
    fputs(", \"ssim\": ", f);
    json_num(f, rep->ssim);
    fputs(", \"ssim_uniform\": ", f);
    json_num(f, rep->ssim_uniform);
    fputs(",\n    \"per_band\": [", f);
    for (int k = 0; k < rep->bands; k++) {
        fprintf(f, "%s\n      {\"band\": %d, ", k ? "," : "", band_number(lb, k));
        json_stats(f, &rep->band[k]);
        fputs(", \"ssim\": ", f);
        json_num(f, rep->ssim_band[k]);
        fputc('}', f);
    }
    fputs("]},\n  \"paper\": ", f);
    if (rep->have_paper) {
        fputs("{\"psnr\": ", f);
        json_num(f, rep->paper.psnr);
        fputs(", \"ssim\": ", f);
        json_num(f, rep->paper.ssim);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs("\n}\n", f);
}

/* ---- HTML ---- */

static void html_str(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void html_cell(FILE *f, double v, int decimals)
{
    fputs("<td>", f);
    put_num(f, v, decimals, 0);
    fputs("</td>", f);
}

void dc_metrics_write_html(FILE *f, const dc_metrics_report *rep, const dc_metrics_labels *lb)
{
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
          "<title>diffcr-evaluate</title>\n<style>\n"
          "body{font-family:sans-serif;margin:1em;color:#222}\n"
          "table{border-collapse:collapse;margin:0.5em 0 1em}\n"
          "th,td{border:1px solid #bbb;padding:0.25em 0.6em;text-align:right}\n"
          "th{background:#eef}\nth.l,td.l{text-align:left}\n"
          "p.note{color:#555;font-size:0.9em}\n</style></head><body>\n", f);
    fputs("<h2>Decloud evaluation</h2>\n<p>Result: <code>", f);
    html_str(f, label(lb ? lb->result : NULL, "?"));
    fputs("</code><br>Reference: <code>", f);
    html_str(f, label(lb ? lb->reference : NULL, "?"));
    fputs("</code>", f);
    if (rep->masked) {
        fputs("<br>Mask: <code>", f);
        html_str(f, label(lb ? lb->mask : NULL, "?"));
        fprintf(f, "</code> (%lld of %lld pixels)", rep->compared, rep->pixels);
    }
    fprintf(f, "<br>%d &times; %d pixels, %d band(s), reflectance = DN / %g</p>\n", rep->w,
            rep->h, rep->bands, rep->scale);

    fputs("<h3>Reflectance</h3>\n<table><tr><th class=\"l\">metric</th>", f);
    for (int k = 0; k < rep->bands; k++)
        fprintf(f, "<th>band %d</th>", band_number(lb, k));
    fputs("<th>all</th></tr>\n", f);
    static const char *names[] = {"MAE", "RMSE", "PSNR (dB)"};
    static const int decimals[] = {6, 6, 3};
    for (int r = 0; r < 3; r++) {
        fprintf(f, "<tr><td class=\"l\">%s</td>", names[r]);
        for (int k = 0; k < rep->bands; k++)
            html_cell(f, stat_of(&rep->band[k], r), decimals[r]);
        html_cell(f, stat_of(&rep->all, r), decimals[r]);
        fputs("</tr>\n", f);
    }
    fputs("<tr><td class=\"l\">SSIM (Gaussian 11&times;11)</td>", f);
    for (int k = 0; k < rep->bands; k++)
        html_cell(f, rep->ssim_band[k], 4);
    html_cell(f, rep->ssim, 4);
    fprintf(f, "</tr>\n<tr><td class=\"l\">SSIM (uniform 7&times;7)</td><td colspan=\"%d\"></td>",
            rep->bands);
    html_cell(f, rep->ssim_uniform, 4);
    fputs("</tr>\n</table>\n", f);

    fputs("<h3>Paper protocol</h3>\n", f);
    if (rep->have_paper) {
        fputs("<table><tr><th class=\"l\">metric</th><th>value</th></tr>\n"
              "<tr><td class=\"l\">PSNR (dB)</td>", f);
        html_cell(f, rep->paper.psnr, 3);
        fputs("</tr>\n<tr><td class=\"l\">SSIM</td>", f);
        html_cell(f, rep->paper.ssim, 4);
        fputs("</tr>\n</table>\n", f);
    } else {
        fputs("<p>Not applicable: needs exactly 3 bands (R, G, B) and at least 11&times;11 "
              "pixels.</p>\n", f);
    }
    fputs("<p class=\"note\">Reflectance metrics: data range 1.0; MAE, RMSE and PSNR only over "
          "the compared pixels. Paper protocol: each image clipped to 2000 DN and min-max "
          "stretched to 8 bits on its own, then PSNR (range 255) and Gaussian SSIM, as the DiffCR "
          "paper computes them.</p>\n</body></html>\n", f);
}
