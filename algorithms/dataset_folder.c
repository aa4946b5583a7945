/* diffcr — the Sen2_MTC_New folder layout (DiffCR's Sen2_MTC_New_Multi, DIFFCR.md §5).
 *
 *   data_root/<split>.txt                         tile names, one a line
 *   data_root/Sen2_MTC/<tile>/cloudless/<name>.tif the clear target (4 bands: R, G, B, NIR)
 *   data_root/Sen2_MTC/<tile>/cloud/<name>_{0,1,2}.tif  the cloudy dates
 *
 * DiffCR lists images with os.listdir (unordered); names are sorted here so the sample list, and
 * therefore the batch order of a seed, is the same on every machine. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_internal.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the samples of one tile folder. */
static int add_tile(dc_path_list *list, const char *root, const char *tile, int ndates, dc_error *err)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/Sen2_MTC/%s/cloudless", root, tile) >= (int)sizeof dir)
        return dc_fail(err, DC_ERR_ARG, "path too long under %s", root);
    DIR *d = opendir(dir);
    if (!d)
        return dc_fail(err, DC_ERR_IO, "dataset folder %s is missing (tile %s)", dir, tile);
    char **names = NULL;
    int n = 0, cap = 0, rc = DC_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".tif"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, (size_t)cap * sizeof *p);
            if (!p) {
                rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
                break;
            }
            names = p;
        }
        if (!(names[n] = strndup(e->d_name, len - 4))) {
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == DC_OK)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && rc == DC_OK; i++) {
        char paths[DC_DATASET_MAX_DATES + 1][4096];
        char *ptrs[DC_DATASET_MAX_DATES + 1];
        for (int k = 0; k < ndates; k++) {
            if (snprintf(paths[k], sizeof paths[k], "%s/Sen2_MTC/%s/cloud/%s_%d.tif", root, tile, names[i], k) >=
                (int)sizeof paths[k])
                rc = dc_fail(err, DC_ERR_ARG, "path too long under %s", root);
            ptrs[k] = paths[k];
        }
        if (snprintf(paths[ndates], sizeof paths[ndates], "%s/%s.tif", dir, names[i]) >= (int)sizeof paths[ndates])
            rc = dc_fail(err, DC_ERR_ARG, "path too long under %s", root);
        ptrs[ndates] = paths[ndates];
        if (rc == DC_OK)
            rc = dc_path_list_add(list, ptrs, err);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int dc_dataset_open_folder(dc_dataset **out, const cJSON *args, const dc_dataset_options *o,
                           dc_error *err)
{
    *out = NULL;
    dc_dataset_common c;
    int rc = dc_dataset_common_parse(&c, args, o, err);
    if (rc != DC_OK)
        return rc;
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(args, "data_root");
    if (!cJSON_IsString(jr))
        return dc_fail(err, DC_ERR_ARG, "dataset '%s': needs args.data_root", o->split);
    /* DiffCR's "mode" names the split list; the caller's split wins when given. */
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(args, "mode");
    const char *split = o->split ? o->split : cJSON_IsString(jm) ? jm->valuestring : "train";
    char root[4096], listp[4200];
    dc_dataset_join(root, sizeof root, o->base_dir, jr->valuestring);
    struct stat sb;
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return dc_fail(err, DC_ERR_IO, "dataset '%s': data_root %s is not a folder", o->split, root);
    snprintf(listp, sizeof listp, "%s/%s.txt", root, split);
    FILE *f = fopen(listp, "r");
    if (!f)
        return dc_fail(err, DC_ERR_IO, "dataset '%s': cannot open the split list %s", o->split, listp);
    dc_path_list list = {.per = o->ndates + 1};
    char line[1024];
    while (rc == DC_OK && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            continue;
        rc = add_tile(&list, root, s, o->ndates, err);
    }
    fclose(f);
    if (rc == DC_OK && list.count == 0)
        rc = dc_fail(err, DC_ERR_FORMAT, "dataset '%s': %s lists no images", o->split, listp);
    if (rc == DC_OK)
        rc = dc_dataset_files_create(out, "folder", &list, &c, o, err);
    dc_path_list_free(&list);
    return rc;
}
