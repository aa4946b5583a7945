/* diffcr — dataset dispatch: pick the source named in a DiffCR "which_dataset" object.
 *
 * DiffCR names its dataset class as [module, class] or as a bare class; "Sen2_MTC_New_Multi" is
 * its Sen2_MTC_New loader, which the folder source reproduces. The csv and sim sources are
 * diffcr's own (dataset.h). */
#include <cjson/cJSON.h>
#include <gdal.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/dataset.h"

static const char *dataset_class(const cJSON *name)
{
    if (cJSON_IsString(name))
        return name->valuestring;
    if (cJSON_IsArray(name)) {
        const cJSON *last = cJSON_GetArrayItem(name, cJSON_GetArraySize(name) - 1);
        if (cJSON_IsString(last))
            return last->valuestring;
    }
    return NULL;
}

int dc_dataset_open(dc_dataset **out, const cJSON *which_dataset, const dc_dataset_options *o,
                    dc_error *err)
{
    *out = NULL;
    GDALAllRegister();   /* idempotent; the sources open rasters from loader threads */
    if (!cJSON_IsObject(which_dataset))
        return dc_fail(err, DC_ERR_ARG, "dataset '%s': no which_dataset object in the config", o->split);
    const char *cls = dataset_class(cJSON_GetObjectItemCaseSensitive(which_dataset, "name"));
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(which_dataset, "args");
    if (!cls)
        return dc_fail(err, DC_ERR_ARG, "dataset '%s': which_dataset.name is missing", o->split);
    if (!cJSON_IsObject(args))
        return dc_fail(err, DC_ERR_ARG, "dataset '%s': which_dataset.args is missing", o->split);
    if (!strcmp(cls, "Sen2_MTC_New_Multi") || !strcmp(cls, "folder"))
        return dc_dataset_open_folder(out, args, o, err);
    if (!strcmp(cls, "csv"))
        return dc_dataset_open_csv(out, args, o, err);
    if (!strcmp(cls, "sim"))
        return dc_dataset_open_sim(out, args, o, err);
    return dc_fail(err, DC_ERR_UNSUPPORTED,
                   "dataset '%s': unknown dataset '%s' (Sen2_MTC_New_Multi, folder, csv or sim)",
                   o->split, cls);
}

void dc_dataset_close(dc_dataset *ds)
{
    if (ds)
        ds->destroy(ds);
}
