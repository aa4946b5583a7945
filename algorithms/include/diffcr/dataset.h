/* diffcr — training datasets: (three cloudy dates, one clear target) samples as model-range tensors.
 *
 * A dataset is a list of samples that can be decoded one at a time, from any thread, in any order:
 * the loader (loader.c) decodes ahead of the training step in worker threads, and determinism
 * requires that decoding sample i gives the same values whoever asks and when. Everything random
 * about a sample (the crop of a simulated dataset, the simulated clouds, the augmentation) is
 * therefore a function of (seed, epoch, index) only.
 *
 * Three sources (dataset args in the DiffCR config, "datasets.<split>.which_dataset"):
 *   folder  Sen2_MTC_New (DIFFCR.md §5): data_root/{train,val,test}.txt list tiles;
 *           Sen2_MTC/<tile>/cloud/<name>_{0,1,2}.tif and Sen2_MTC/<tile>/cloudless/<name>.tif,
 *           4-band GeoTIFFs, bands[:3] used. Names: "Sen2_MTC_New_Multi" (DiffCR's) or "folder".
 *   csv     "csv": args.csv = a file of `date1,date2,date3,target` raster paths (relative paths are
 *           relative to the CSV; a first line whose last field is "target" is a header);
 *           args.bands = 1-based band numbers (default [1,2,3]).
 *   sim     "sim": args.clear = an array of clear rasters (or args.csv with one path a line);
 *           args.samples = samples per epoch; each sample is a random tile-size crop of one of
 *           them with clouds simulated on the fly (cloud_sim.h) for every date.
 * Common args: tile (side of a sample; images of another size are skipped, or stop the run when
 * strict), scale/offset (model value = DN * scale + offset; DiffCR: 1/5000, -1).
 *
 * Images are checked (size, band count) when the dataset is opened, so a bad file is skipped
 * before training starts and the sample list, hence the batch order, never changes during a run. */
#ifndef DIFFCR_DATASET_H
#define DIFFCR_DATASET_H

#include <stdint.h>

#include "diffcr/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cJSON cJSON;

#define DC_DATASET_MAX_DATES 8
#define DC_DATASET_MAX_BANDS 16

typedef struct dc_dataset dc_dataset;

struct dc_dataset {
    char kind[16];      /* "folder", "csv", "sim" */
    int count;          /* samples per epoch */
    int ndates;         /* condition dates (3) */
    int channels;       /* bands per image (3) */
    int tile;           /* sample side in pixels */
    double scale, offset;
    char bands[64];     /* what the channels are, for the model file: "R,G,B" or band numbers "1,2,3" */
    /* Decode sample `index` (0..count-1) of `epoch` into cond [tile][tile][ndates*channels] (dates
     * date-major in channels) and target [tile][tile][channels], model range, no augmentation.
     * Thread-safe. */
    int (*load)(dc_dataset *ds, int index, int epoch, uint64_t seed, float *cond, float *target,
                dc_error *err);
    /* A name for messages and previews (the target's file name). */
    const char *(*sample_name)(const dc_dataset *ds, int index);
    void (*destroy)(dc_dataset *ds);
    void *impl;
};

typedef struct dc_dataset_options {
    const char *split;   /* "train", "val", "test": which list of the folder dataset */
    int tile;            /* > 0: required sample side (overrides args.tile) */
    int ndates;          /* the model's dates (3) */
    int channels;        /* the model's img_channel (3) */
    int strict;          /* 1: a bad image stops opening instead of being skipped */
    const char *base_dir;/* relative data paths are taken from here (the config's folder), or NULL */
    int quiet;           /* 1: no skip warnings on stderr */
} dc_dataset_options;

/* Open the dataset described by a "which_dataset" object ({"name": ..., "args": {...}}). */
int dc_dataset_open(dc_dataset **out, const cJSON *which_dataset, const dc_dataset_options *o,
                    dc_error *err);
void dc_dataset_close(dc_dataset *ds);

/* The three sources (dataset_folder.c, dataset_csv.c, dataset_sim.c). */
int dc_dataset_open_folder(dc_dataset **out, const cJSON *args, const dc_dataset_options *o,
                           dc_error *err);
int dc_dataset_open_csv(dc_dataset **out, const cJSON *args, const dc_dataset_options *o,
                        dc_error *err);
int dc_dataset_open_sim(dc_dataset **out, const cJSON *args, const dc_dataset_options *o,
                        dc_error *err);

/* ---- Raster helpers shared by the sources (dataset_raster.c) ---- */

/* Size and band count of a raster, without reading pixels. */
int dc_dataset_probe(const char *path, int *w, int *h, int *bands, dc_error *err);
/* Read bands (1-based, nb of them) of the window (x0, y0, tile, tile) of path into
 * out[tile][tile][out_stride] starting at channel `first`, as value * scale + offset. */
int dc_dataset_read(const char *path, const int *bands, int nb, int x0, int y0, int tile,
                    double scale, double offset, float *out, int out_stride, int first,
                    dc_error *err);
/* A path relative to base (unless absolute or base is NULL) into out. */
void dc_dataset_join(char *out, size_t size, const char *base, const char *path);

/* ---- Augmentation (dataset_augment.c) ---- */

/* DiffCR's train augmentation: a flip in {none, along H, along W} and rot90 k in {0..3}, the same
 * for every image of a sample. */
typedef struct dc_augment {
    int flip;   /* 0 none, 1 flip along H (rows reversed), 2 flip along W (columns reversed) */
    int rot90;  /* k: rotate by k * 90 degrees counter-clockwise (numpy.rot90 on (H, W)) */
} dc_augment;

/* The augmentation of sample `index` in `epoch` for a run seed (Philox, so it does not depend on
 * which loader thread decodes the sample). */
dc_augment dc_augment_draw(uint64_t seed, int epoch, int index);
/* Apply to a square image in place: img [n][n][c]; scratch n*n*c floats. */
void dc_augment_apply(float *img, int n, int c, dc_augment a, float *scratch);
/* Source pixel of output pixel (y, x) under a (tests check the maps are permutations). */
void dc_augment_source(int n, dc_augment a, int y, int x, int *sy, int *sx);

/* Deterministic shuffles: perm[0..count) of epoch, a Fisher-Yates permutation from Philox keyed by
 * (seed, epoch). */
void dc_dataset_permutation(int *perm, int count, uint64_t seed, int epoch);

#ifdef __cplusplus
}
#endif
#endif
