/* diffcr — pieces shared by the dataset sources (not public). */
#ifndef DIFFCR_DATASET_INTERNAL_H
#define DIFFCR_DATASET_INTERNAL_H

#include "diffcr/dataset.h"

/* Arguments every source understands: tile, scale, offset, bands. */
typedef struct dc_dataset_common {
    int tile;           /* 0: from the data */
    double scale, offset;
    int bands[DC_DATASET_MAX_BANDS];
    int nb;
} dc_dataset_common;

int dc_dataset_common_parse(dc_dataset_common *c, const cJSON *args, const dc_dataset_options *o,
                            dc_error *err);

/* The bands as text for the model file ("R,G,B" for Sen2 band numbers when sen2, else "1,2,3"). */
void dc_dataset_bands_text(char *out, size_t size, const dc_dataset_common *c, int sen2);

/* A growing list of samples, each ndates+1 paths (dates then target). */
typedef struct dc_path_list {
    char **paths;       /* count * per */
    int count, cap, per;
} dc_path_list;

int dc_path_list_add(dc_path_list *l, char *const *paths, dc_error *err);
void dc_path_list_free(dc_path_list *l);

/* A dataset over files of exactly tile x tile pixels: checks every file (size, bands), skips the
 * bad samples with a warning (or fails when o->strict), and takes ownership of the list. */
int dc_dataset_files_create(dc_dataset **out, const char *kind, dc_path_list *list,
                            const dc_dataset_common *c, const dc_dataset_options *o, dc_error *err);

#endif
