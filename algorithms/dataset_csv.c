/* diffcr — CSV dataset: one sample per line, `date1,date2,date3,target` raster paths.
 *
 * The simplest way to train on one's own co-registered rasters: any GDAL-readable files, band
 * selection through args.bands. Relative paths are relative to the CSV file, so a dataset folder
 * can be moved as a whole. Blank lines and lines starting with '#' are ignored. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int dc_dataset_open_csv(dc_dataset **out, const cJSON *args, const dc_dataset_options *o,
                        dc_error *err)
{
    *out = NULL;
    dc_dataset_common c;
    int rc = dc_dataset_common_parse(&c, args, o, err);
    if (rc != DC_OK)
        return rc;
    const cJSON *csv = cJSON_GetObjectItemCaseSensitive(args, "csv");
    if (!cJSON_IsString(csv))
        return dc_fail(err, DC_ERR_ARG, "dataset '%s': csv needs args.csv (a file of date1,date2,date3,target paths)", o->split);
    char path[4096], dir[4096];
    dc_dataset_join(path, sizeof path, o->base_dir, csv->valuestring);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    FILE *f = fopen(path, "r");
    if (!f)
        return dc_fail(err, DC_ERR_IO, "dataset '%s': cannot open %s", o->split, path);
    dc_path_list list = {.per = o->ndates + 1};
    char line[16384];
    int lineno = 0;
    while (rc == DC_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *fields[DC_DATASET_MAX_DATES + 2];
        int nf = 0;
        for (char *tok = s; tok && nf < DC_DATASET_MAX_DATES + 2;) {
            char *comma = strchr(tok, ',');
            if (comma)
                *comma = 0;
            fields[nf++] = trim(tok);
            tok = comma ? comma + 1 : NULL;
        }
        if (lineno == 1 && nf > 0 && !strcmp(fields[nf - 1], "target"))
            continue;   /* header */
        if (nf != list.per) {
            rc = dc_fail(err, DC_ERR_FORMAT, "%s:%d: expected %d comma-separated paths, found %d", path,
                         lineno, list.per, nf);
            break;
        }
        char joined[DC_DATASET_MAX_DATES + 1][4096];
        char *ptrs[DC_DATASET_MAX_DATES + 1];
        for (int i = 0; i < nf; i++) {
            dc_dataset_join(joined[i], sizeof joined[i], dir, fields[i]);
            ptrs[i] = joined[i];
        }
        rc = dc_path_list_add(&list, ptrs, err);
    }
    fclose(f);
    if (rc == DC_OK && list.count == 0)
        rc = dc_fail(err, DC_ERR_FORMAT, "%s: no samples", path);
    if (rc == DC_OK)
        rc = dc_dataset_files_create(out, "csv", &list, &c, o, err);
    dc_path_list_free(&list);
    return rc;
}
