/* diffcr — decloud internals shared by the pipeline's files (not installed).
 * One concept per file: raster_grid.c (reference grid), date_inputs.c (dates, bands, nodata,
 * offsets), date_warp.c (alignment), strip_reader.c (reading + scaling + missing-date fill),
 * dn_scaling.c (DN <-> model, type clipping), decloud_window.c (tiles -> blended rows),
 * raster_writer.c (temp file, commit, abort), in_place.c (atomic, resumable update),
 * decloud.c (the job). */
#ifndef DIFFCR_DECLOUD_INTERNAL_H
#define DIFFCR_DECLOUD_INTERNAL_H

#include <stdint.h>

#include <gdal.h>

#include "diffcr/decloud.h"
#include "diffcr/error.h"
#include "diffcr/tile_grid.h"
#include "diffcr/tile_model.h"

/* Fail with a message that ends with GDAL's last error, when there is one. */
int dc_gdal_fail(dc_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- raster_grid.c ---------------------------------------------------------------------- */
typedef struct dc_raster_grid {
    int width, height;
    double gt[6];
    char *wkt; /* "" when the raster has no CRS; owned */
} dc_raster_grid;

int dc_grid_from_dataset(dc_raster_grid *g, GDALDatasetH ds, const char *what, dc_error *err);
/* -te/-tr/-t_srs; srs_fallback is used when t_srs is NULL. */
int dc_grid_from_extent(dc_raster_grid *g, const double te[4], const double tr[2],
                        const char *t_srs, const char *srs_fallback, dc_error *err);
void dc_grid_free(dc_raster_grid *g);
/* 1 when both grids have the same size, geotransform (to 1e-3 pixel) and CRS. */
int dc_grid_same_geometry(const dc_raster_grid *a, const dc_raster_grid *b);
int dc_grid_same_crs(const dc_raster_grid *a, const dc_raster_grid *b);

/* ---- date_inputs.c ---------------------------------------------------------------------- */
typedef struct dc_date {
    char *path;                        /* for messages */
    int index;                         /* 1-based date number, for messages */
    GDALDatasetH src;                  /* as opened */
    GDALDatasetH view;                 /* src, or a warped VRT on the reference grid */
    int warped;
    int bands[DC_MAX_BANDS];           /* 1-based band numbers in src/view */
    double add_offset[DC_MAX_BANDS];   /* Sentinel-2 BOA/RADIO_ADD_OFFSET (DN), 0 if none */
    int has_nodata[DC_MAX_BANDS];
    double nodata[DC_MAX_BANDS];
    int use_mask;                      /* read the view's mask band (alpha, .msk) */
} dc_date;

typedef struct dc_inputs {
    dc_date *dates;
    int ndates, nbands;                /* dates and bands per date used */
    GDALDataType type;                 /* data type of date 1's first band: the output type */
} dc_inputs;

/* Open the dates (or the stack), choose bands (-b or defaults by band count), read nodata and
 * offsets; checks counts against the model's ndates/nbands. */
int dc_inputs_open(dc_inputs *in, const dc_decloud_options *opts, int model_ndates,
                   int model_nbands, dc_error *err);
void dc_inputs_close(dc_inputs *in);
/* Refresh nodata/mask information from the aligned view (after warping). */
void dc_date_read_validity_info(dc_date *d, int nbands, const dc_decloud_options *opts);

/* ---- date_warp.c ------------------------------------------------------------------------ */
/* Make d->view a raster on `grid`: the source itself when it already is, else a warped VRT
 * (or an error with --no-warp, without a CRS, or when the date does not overlap the grid). */
int dc_date_align(dc_date *d, const dc_raster_grid *grid, const dc_decloud_options *opts,
                  dc_error *err);

/* ---- dn_scaling.c ----------------------------------------------------------------------- */
/* value = (DN + add_offset) * scale + offset, and back. */
static inline float dc_dn_to_model(double dn, double add_offset, double scale, double offset)
{
    return (float)((dn + add_offset) * scale + offset);
}
static inline double dc_model_to_dn(double v, double add_offset, double scale, double offset)
{
    return (v - offset) / scale - add_offset;
}
/* Round (integer types: to nearest, halves away from zero) and clip to the type's range. */
double dc_dn_to_type(double v, GDALDataType type);
/* A valid pixel must not read back as nodata: move it one step towards the type's middle. */
double dc_avoid_nodata(double v, double nodata, GDALDataType type);

/* ---- strip_reader.c --------------------------------------------------------------------- */
/* Read rows [y0, y0+h) x columns [x0, x0+w) of every date into values[h][w][ndates*nbands]
 * (model range, missing dates filled with the mean of the valid dates at that pixel, 0 where
 * none is valid) and any_valid[h][w] (1 if at least one date is valid). */
int dc_read_strip(const dc_inputs *in, const dc_tile_model *m, int x0, int y0, int w, int h,
                  float *values, uint8_t *any_valid, dc_error *err);

/* ---- decloud_window.c ------------------------------------------------------------------- */
/* Receives finished rows: dn[nrows][w][nbands] in the output's DN scale (not yet rounded),
 * valid[nrows][w], std[nrows][w][nbands] (DN units) or NULL. */
typedef int (*dc_row_sink)(void *ctx, int x, int y, int w, int nrows, const float *dn,
                           const uint8_t *valid, const float *std, dc_error *err);

typedef struct dc_pipeline {
    const dc_inputs *in;
    dc_tile_model *model;
    dc_tile_grid grid;
    int samples;                       /* >= 1 */
    int batch;                         /* tiles per model call (>= 1; --batch) */
    int prefetch;                      /* read tile row k+1 on a second thread while row k computes */
    int want_std;
    double out_add_offset[DC_MAX_BANDS];
    int delay_ms;
} dc_pipeline;

/* Compute the output window [x0, x0+w) x [y0, y0+h) from every tile touching it, emitting
 * finished rows in order. Identical pixels for any window (tiles fixed in raster space). */
int dc_decloud_window(const dc_pipeline *p, int x0, int y0, int w, int h, dc_row_sink sink,
                      void *sink_ctx, GDALProgressFunc progress, void *progress_arg,
                      dc_error *err);

/* ---- decloud.c: the set-up shared by diffcr-decloud, --vrt and the GDAL plugin ------------- */
/* The model of `o` (weights, or the mean/blur test models). */
int dc_decloud_open_model(dc_tile_model **m, const dc_decloud_options *o, dc_error *err);

/* Everything a window computation needs: dates opened and aligned to the reference grid, the
 * tile grid, and the output nodata rule. pipeline.in points into the struct, so it must not be
 * copied or moved once open; the model stays the caller's. */
typedef struct dc_decloud_setup {
    dc_inputs in;
    dc_raster_grid grid;
    dc_pipeline pipeline;
    int has_nodata;       /* output nodata: --dstnodata, date 1's, or 0 when pixels may be invalid */
    double nodata;
} dc_decloud_setup;

int dc_decloud_setup_open(dc_decloud_setup *s, const dc_decloud_options *o, dc_tile_model *model,
                          dc_error *err);
void dc_decloud_setup_close(dc_decloud_setup *s);
/* Band descriptions, colour interpretation, Sentinel-2 offsets and DIFFCR_HISTORY of the output
 * (works on any dataset handle, a VRT included). */
void dc_decloud_describe_output(GDALDatasetH ds, const dc_inputs *in, const dc_tile_model *m,
                                const dc_decloud_options *o);

/* ---- raster_writer.c -------------------------------------------------------------------- */
typedef struct dc_raster_writer {
    GDALDatasetH ds;
    char *final_path;     /* where the result goes */
    char *tmp_path;       /* what is being written */
    char *copy_path;      /* CreateCopy target for drivers without Create (or non-GTiff) */
    GDALDriverH driver;   /* the final format's driver */
    char **copy_options;  /* -co for the CreateCopy (owned) */
    int nbands;
    GDALDataType type;
    int has_nodata;
    double nodata;
    double *rowbuf;
    size_t rowbuf_len;
} dc_raster_writer;

/* Create the temporary output (next to final_path, or at tmp_path when given). */
int dc_writer_create(dc_raster_writer *w, const char *final_path, const char *tmp_path,
                     const char *format, char **create_options, const dc_raster_grid *grid,
                     int nbands, GDALDataType type, int has_nodata, double nodata,
                     dc_error *err);
/* Reopen an existing temporary GTiff in update mode (resume). */
int dc_writer_reopen(dc_raster_writer *w, const char *final_path, const char *tmp_path,
                     int nbands, GDALDataType type, int has_nodata, double nodata,
                     dc_error *err);
int dc_writer_write_rows(dc_raster_writer *w, int x, int y, int width, int nrows,
                         const float *values, const uint8_t *valid, dc_error *err);
/* Close, convert if needed, rename onto final_path. The writer is freed either way. */
int dc_writer_commit(dc_raster_writer *w, GDALProgressFunc progress, void *progress_arg,
                     dc_error *err);
/* Close and delete the temporary files (keep_tmp: leave tmp_path for a later resume). */
void dc_writer_abort(dc_raster_writer *w, int keep_tmp);

/* ---- in_place.c ------------------------------------------------------------------------- */
/* Refuse targets that cannot be replaced (missing, not a regular file, read-only file or
 * folder). Root ignores permission bits, so the file's mode bits are honoured explicitly. */
int dc_in_place_check_target(const char *path, dc_error *err);
/* Rows already done by an interrupted run with the same run key, or 0 (a stale or unreadable
 * leftover is deleted). */
int dc_in_place_resume_rows(const char *tmp_path, const char *run_key, int width, int height,
                            int nbands, char *notice, size_t notice_len);
int dc_in_place_mark_done(dc_raster_writer *w, const char *run_key, int done_rows,
                          dc_error *err);
int dc_in_place_clear_marks(dc_raster_writer *w);

#endif
