/* diffcr — load DiffCR weights from safetensors into a network, and read a model's network config
 * from the file's metadata. Files are untrusted: the safetensors reader validates the container; here
 * every tensor of the config's table must be present with exactly the PyTorch shape. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/config.h"
#include "diffcr/safetensors.h"
#include "diffcr/unet.h"

static const dc_st_tensor *find_param(const dc_safetensors *st, const char *name)
{
    const dc_st_tensor *t = dc_st_find(st, name);
    if (!t) {
        char prefixed[128];
        snprintf(prefixed, sizeof prefixed, "denoise_fn.%s", name);
        t = dc_st_find(st, prefixed);
    }
    return t;
}

static int shape_matches(const dc_st_tensor *t, const dc_param_view *v)
{
    if (t->ndim != v->ndim)
        return 0;
    for (int i = 0; i < v->ndim; i++)
        if (t->shape[i] != v->shape[i])
            return 0;
    return 1;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *s64, const int *s32)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                 s64 ? (long long)s64[i] : (long long)s32[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

int dc_unet_load_params(dc_unet *net, const char *path, dc_error *err)
{
    dc_safetensors *st = NULL;
    int rc = dc_st_open(&st, path, err);
    if (rc != DC_OK)
        return rc;
    const dc_param_table *tab = dc_unet_params_table(net);
    float *host = malloc(tab->total * sizeof *host);
    if (!host) {
        dc_st_close(st);
        return dc_fail(err, DC_ERR_NOMEM, "%s: out of memory for %zu weights", path, tab->total);
    }
    for (int i = 0; i < tab->count && rc == DC_OK; i++) {
        const dc_param_view *v = &tab->views[i];
        const dc_st_tensor *t = find_param(st, v->name);
        if (!t) {
            rc = dc_fail(err, DC_ERR_SHAPE, "%s: missing weight '%s' (weights for another network config?)",
                         path, v->name);
        } else if (!shape_matches(t, v)) {
            char got[96], want[96];
            shape_str(got, sizeof got, t->ndim, t->shape, NULL);
            shape_str(want, sizeof want, v->ndim, NULL, v->shape);
            rc = dc_fail(err, DC_ERR_SHAPE, "%s: weight '%s' has shape %s but the network config needs %s",
                         path, v->name, got, want);
        } else if ((rc = dc_st_read_f32(st, t->name, host + v->offset, v->numel, err)) == DC_OK) {
            /* A NaN or inf weight would turn every output pixel into NaN; say so here, once. */
            for (size_t k = 0; k < v->numel; k++)
                if (!isfinite(host[v->offset + k])) {
                    rc = dc_fail(err, DC_ERR_FORMAT,
                                 "%s: weight '%s' holds %g at index %zu: the file is damaged or its training diverged",
                                 path, v->name, host[v->offset + k], k);
                    break;
                }
        }
    }
    if (rc == DC_OK)
        rc = dc_unet_set_params(net, host, err);
    free(host);
    dc_st_close(st);
    return rc;
}

int dc_unet_config_from_weights(dc_unet_config *cfg, const char *path, dc_error *err)
{
    dc_safetensors *st = NULL;
    int rc = dc_st_open(&st, path, err);
    if (rc != DC_OK)
        return rc;
    const char *text = dc_st_meta(st, "diffcr.unet");
    if (!text) {
        dc_st_close(st);
        return dc_fail(err, DC_ERR_FORMAT,
                       "%s: no 'diffcr.unet' metadata: pass the network config explicitly (--config)", path);
    }
    cJSON *root = NULL;
    char what[600];
    snprintf(what, sizeof what, "%s: metadata diffcr.unet", path);
    rc = dc_json_parse_text(&root, text, what, err);
    if (rc == DC_OK) {
        rc = dc_unet_config_from_json(cfg, root, err);
        cJSON_Delete(root);
    }
    dc_st_close(st);
    return rc;
}
