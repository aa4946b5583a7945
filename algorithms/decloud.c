/* diffcr — the decloud job: model, dates, reference grid, alignment, output, windows.
 *
 * Output choices made here:
 * - type and DN scale of date 1 (its first used band); Sentinel-2 offsets are undone with date
 *   1's offsets and recorded on the output bands;
 * - nodata: --dstnodata, else date 1's nodata, else 0 when some pixels can be invalid (a warped
 *   date, a mask, another date's nodata), else none;
 * - band descriptions and colour interpretation of date 1's used bands, DIFFCR_HISTORY
 *   (command line, model, UTC date). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>

#include "decloud_internal.h"

void dc_decloud_options_init(dc_decloud_options *o)
{
    memset(o, 0, sizeof *o);
    o->model_name = NULL; /* no model chosen: the program resolves the shipped default model */
    o->resampling = "bilinear";
    o->format = "GTiff";
    o->steps = 20;
    o->order = 2;
    o->seed = 0;
    o->threads = 0;
    o->samples = 1;
    o->batch = 1;
    o->sampler = "dpm-solver++";
    o->device = "auto";
}

int dc_decloud_open_model(dc_tile_model **m, const dc_decloud_options *o, dc_error *err)
{
    if (o->weights)
        return dc_tile_model_open_weights(m, o->weights, o, err);
    if (!o->model_name)
        return dc_fail(err, DC_ERR_ARG, "no model: give --weights FILE (or a test model with --model mean|blur)");
    if (strcmp(o->model_name, "mean") == 0)
        return dc_tile_model_mean(m, err);
    if (strcmp(o->model_name, "blur") == 0)
        return dc_tile_model_blur(m, err);
    return dc_fail(err, DC_ERR_ARG, "--model %s: unknown test model (mean, blur)", o->model_name);
}

static int reference_grid(dc_raster_grid *g, const dc_inputs *in, const dc_decloud_options *o,
                          dc_error *err)
{
    if (o->have_te != o->have_tr)
        return dc_fail(err, DC_ERR_ARG, "-te and -tr go together");
    if (o->have_te && o->like)
        return dc_fail(err, DC_ERR_ARG, "--like and -te/-tr exclude each other");
    if (o->have_te)
        return dc_grid_from_extent(g, o->te, o->tr, o->t_srs,
                                   GDALGetProjectionRef(in->dates[0].src), err);
    if (o->t_srs)
        return dc_fail(err, DC_ERR_ARG, "-t_srs needs -te and -tr");
    if (o->like) {
        GDALDatasetH ds = NULL;
        CPLErrorReset();
        ds = GDALOpenEx(o->like, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
        if (!ds)
            return dc_gdal_fail(err, DC_ERR_IO, "--like %s: not a raster GDAL can read", o->like);
        int rc = dc_grid_from_dataset(g, ds, o->like, err);
        GDALClose(ds);
        return rc;
    }
    return dc_grid_from_dataset(g, in->dates[0].src, in->dates[0].path, err);
}

/* ---- set-up shared with the GDAL plugin ------------------------------------------------------ */
int dc_decloud_setup_open(dc_decloud_setup *s, const dc_decloud_options *o, dc_tile_model *model,
                          dc_error *err)
{
    memset(s, 0, sizeof *s);
    if (o->samples < 1)
        return dc_fail(err, DC_ERR_ARG, "--samples %d: must be >= 1", o->samples);
    if (o->batch < 1 || o->batch > 256)
        return dc_fail(err, DC_ERR_ARG, "--batch %d: must be 1..256", o->batch);
    int rc = dc_inputs_open(&s->in, o, model->ndates, model->nbands, err);
    if (rc == DC_OK)
        rc = reference_grid(&s->grid, &s->in, o, err);
    int maybe_invalid = 0;
    for (int i = 0; rc == DC_OK && i < s->in.ndates; i++) {
        rc = dc_date_align(&s->in.dates[i], &s->grid, o, err);
        if (rc == DC_OK) {
            dc_date_read_validity_info(&s->in.dates[i], s->in.nbands, o);
            maybe_invalid |= s->in.dates[i].warped || s->in.dates[i].use_mask;
            for (int b = 0; b < s->in.nbands; b++)
                maybe_invalid |= s->in.dates[i].has_nodata[b];
        }
    }
    dc_pipeline *p = &s->pipeline;
    if (rc == DC_OK) {
        int tile = o->tile > 0 ? o->tile : model->tile;
        int overlap = o->have_overlap ? o->overlap : tile / 4;
        rc = dc_tile_grid_init(&p->grid, s->grid.width, s->grid.height, tile, overlap, err);
    }
    if (rc != DC_OK) {
        dc_decloud_setup_close(s);
        return rc;
    }
    p->in = &s->in;
    p->model = model;
    p->samples = o->samples;
    p->batch = o->batch > 1 && model->run_tiles ? o->batch : 1;
    p->want_std = o->uncertainty != NULL;
    p->delay_ms = o->debug_delay_ms;
    for (int b = 0; b < s->in.nbands; b++)
        p->out_add_offset[b] = s->in.dates[0].add_offset[b];

    s->has_nodata = o->have_dstnodata;
    s->nodata = o->dstnodata;
    if (!s->has_nodata && s->in.dates[0].has_nodata[0]) {
        s->has_nodata = 1;
        s->nodata = s->in.dates[0].nodata[0];
    } else if (!s->has_nodata && maybe_invalid) {
        s->has_nodata = 1;
        s->nodata = 0.0;
    }
    return DC_OK;
}

void dc_decloud_setup_close(dc_decloud_setup *s)
{
    dc_grid_free(&s->grid);
    dc_inputs_close(&s->in);
    memset(s, 0, sizeof *s);
}

/* ---- sinks --------------------------------------------------------------------------------- */
typedef struct output_sink {
    dc_raster_writer *out, *unc;
    const char *run_key;
    int in_place, width;
} output_sink;

static int write_sink(void *ctx, int x, int y, int w, int nrows, const float *dn,
                      const uint8_t *valid, const float *std, dc_error *err)
{
    output_sink *s = ctx;
    int rc = dc_writer_write_rows(s->out, x, y, w, nrows, dn, valid, err);
    if (rc == DC_OK && s->unc && std)
        rc = dc_writer_write_rows(s->unc, x, y, w, nrows, std, valid, err);
    if (rc == DC_OK && s->in_place && x == 0 && w == s->width)
        rc = dc_in_place_mark_done(s->out, s->run_key, y + nrows, err);
    return rc;
}

void dc_decloud_describe_output(GDALDatasetH ds, const dc_inputs *in, const dc_tile_model *m,
                            const dc_decloud_options *o)
{
    const dc_date *d0 = &in->dates[0];
    for (int b = 0; b < in->nbands; b++) {
        GDALRasterBandH src = GDALGetRasterBand(d0->src, d0->bands[b]);
        GDALRasterBandH dst = GDALGetRasterBand(ds, b + 1);
        const char *desc = GDALGetDescription(src);
        if (desc && desc[0])
            GDALSetDescription(dst, desc);
        GDALColorInterp ci = GDALGetRasterColorInterpretation(src);
        if (ci != GCI_Undefined && ci != GCI_GrayIndex)
            GDALSetRasterColorInterpretation(dst, ci);
        if (d0->add_offset[b] != 0.0) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.17g", d0->add_offset[b]);
            const char *key = GDALGetMetadataItem(src, "BOA_ADD_OFFSET", NULL) ? "BOA_ADD_OFFSET"
                                                                               : "RADIO_ADD_OFFSET";
            GDALSetMetadataItem(dst, key, buf, NULL);
        }
    }
    char when[32], hist[2048];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    snprintf(hist, sizeof hist, "%s | model: %s | %s", o->history ? o->history : "diffcr-decloud",
             o->weights ? o->weights : m->name, when);
    GDALSetMetadataItem(ds, "DIFFCR_HISTORY", hist, NULL);
}

/* Run every window of at most max_rows x max_cols over rows [first_row, H). */
static int run_windows(const dc_pipeline *p, const dc_decloud_options *o, int first_row,
                       output_sink *sink, GDALProgressFunc progress, void *arg, double share,
                       dc_error *err)
{
    const int W = p->grid.x.length, H = p->grid.y.length;
    const int mr = o->max_rows > 0 ? o->max_rows : H, mc = o->max_cols > 0 ? o->max_cols : W;
    const double total = (double)(H - first_row) * W;
    double done = 0;
    for (int y = first_row; y < H; y += mr) {
        int h = H - y < mr ? H - y : mr;
        for (int x = 0; x < W; x += mc) {
            int w = W - x < mc ? W - x : mc;
            double f0 = share * done / total, f1 = share * (done + (double)w * h) / total;
            void *scaled = GDALCreateScaledProgress(f0, f1, progress, arg);
            int rc = dc_decloud_window(p, x, y, w, h, write_sink, sink, GDALScaledProgress,
                                       scaled, err);
            GDALDestroyScaledProgress(scaled);
            if (rc != DC_OK)
                return rc;
            done += (double)w * h;
        }
    }
    return DC_OK;
}

int dc_decloud_run(const dc_decloud_options *o, GDALProgressFunc progress, void *progress_arg,
                   dc_error *err)
{
    if (!progress)
        progress = GDALDummyProgress;
    if (!o->output && !o->in_place)
        return dc_fail(err, DC_ERR_ARG, "no output given");
    if (o->in_place && o->uncertainty)
        return dc_fail(err, DC_ERR_ARG, "--uncertainty cannot be combined with --in-place");
    if (o->samples < 1)
        return dc_fail(err, DC_ERR_ARG, "--samples %d: must be >= 1", o->samples);
    if (o->in_place) {
        int rc = dc_in_place_check_target(o->in_place, err);
        if (rc != DC_OK)
            return rc;
    }
    dc_tile_model *model = NULL;
    dc_decloud_setup setup;
    memset(&setup, 0, sizeof setup);
    dc_raster_writer out, unc;
    memset(&out, 0, sizeof out);
    memset(&unc, 0, sizeof unc);
    int have_out = 0, have_unc = 0, keep_tmp = 0;

    int rc = dc_decloud_open_model(&model, o, err);
    if (rc == DC_OK && model->note[0] && o->notice)
        o->notice(model->note, o->notice_arg);
    if (rc == DC_OK)
        rc = dc_decloud_setup_open(&setup, o, model, err);
    if (rc != DC_OK)
        goto done;
    const dc_inputs *in = &setup.in;
    const dc_raster_grid *grid = &setup.grid;
    dc_pipeline *pp = &setup.pipeline;
    const int has_nodata = setup.has_nodata;
    const double nodata = setup.nodata;

    int first_row = 0;
    if (o->in_place) {
        char tmp[4096], notice[4200];
        snprintf(tmp, sizeof tmp, "%s.diffcr-tmp", o->in_place);
        first_row = dc_in_place_resume_rows(tmp, o->run_key, grid->width, grid->height, in->nbands,
                                            notice, sizeof notice);
        if (notice[0] && o->notice)
            o->notice(notice, o->notice_arg);
        if (first_row > 0)
            rc = dc_writer_reopen(&out, o->in_place, tmp, in->nbands, in->type, has_nodata, nodata,
                                  err);
        else
            rc = dc_writer_create(&out, o->in_place, tmp, "GTiff", o->create_options, grid,
                                  in->nbands, in->type, has_nodata, nodata, err);
    } else {
        rc = dc_writer_create(&out, o->output, NULL, o->format, o->create_options, grid,
                              in->nbands, in->type, has_nodata, nodata, err);
    }
    if (rc != DC_OK)
        goto done;
    have_out = 1;
    if (first_row == 0)
        dc_decloud_describe_output(out.ds, in, model, o);
    if (o->uncertainty) {
        rc = dc_writer_create(&unc, o->uncertainty, NULL, "GTiff", NULL, grid, in->nbands,
                              GDT_Float32, 1, -1.0, err);
        if (rc != DC_OK)
            goto done;
        have_unc = 1;
        dc_decloud_describe_output(unc.ds, in, model, o);
    }

    output_sink sink = {&out, have_unc ? &unc : NULL, o->run_key, o->in_place != NULL,
                        grid->width};
    int needs_copy = out.copy_path != NULL;
    /* With the model on a GPU, read the next strip while it runs (diffcr-decloud owns its
     * datasets; the GDAL plugin, inside a reader's call, does not do this). On the CPU the reader
     * would compete with the compute threads and cost a second strip of memory for little. */
    pp->prefetch = model->on_device;
    rc = run_windows(pp, o, first_row, &sink, progress, progress_arg, needs_copy ? 0.8 : 1.0,
                     err);
    if (rc != DC_OK) {
        /* Keep an interrupted in-place temporary for resuming; anything else goes. */
        keep_tmp = o->in_place && rc == DC_ERR_CANCELLED;
        goto done;
    }
    if (o->in_place)
        dc_in_place_clear_marks(&out);
    if (have_unc) {
        have_unc = 0;
        rc = dc_writer_commit(&unc, NULL, NULL, err);
        if (rc != DC_OK)
            goto done;
    }
    {
        void *scaled = GDALCreateScaledProgress(0.8, 1.0, progress, progress_arg);
        have_out = 0;
        rc = dc_writer_commit(&out, GDALScaledProgress, scaled, err);
        GDALDestroyScaledProgress(scaled);
    }
    if (rc == DC_OK)
        progress(1.0, NULL, progress_arg);

done:
    if (have_unc)
        dc_writer_abort(&unc, 0);
    if (have_out)
        dc_writer_abort(&out, keep_tmp);
    dc_decloud_setup_close(&setup);
    dc_tile_model_destroy(model);
    return rc;
}
