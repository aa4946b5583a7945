/* diffcr — configuration files in DiffCR's JSON schema.
 *
 * DiffCR's configs carry `//` comments; they are stripped (outside strings; block comments too)
 * before cJSON parses the text. Lookups by dotted path report the missing key or wrong type by name. */
#ifndef DIFFCR_CONFIG_H
#define DIFFCR_CONFIG_H

#include "diffcr/error.h"
#include "diffcr/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cJSON cJSON;

/* Parse JSON text with comments. *out must be freed with cJSON_Delete. */
int dc_json_parse_text(cJSON **out, const char *text, const char *what, dc_error *err);
int dc_json_parse_file(cJSON **out, const char *path, dc_error *err);

/* Path lookups like "model.which_networks.0.args.unet.width" (numbers index arrays). */
const cJSON *dc_json_at(const cJSON *root, const char *path);
int dc_json_get_int(const cJSON *root, const char *path, int *out, dc_error *err);
int dc_json_get_double(const cJSON *root, const char *path, double *out, dc_error *err);
int dc_json_get_string(const cJSON *root, const char *path, const char **out, dc_error *err);
int dc_json_get_int_array(const cJSON *root, const char *path, int *out, int max, int *count,
                          dc_error *err);

/* The UNet block of a DiffCR config: either a whole config (model.which_networks.0.args.unet) or the
 * unet object itself ({"img_channel":3, "width":64, ...}). Missing fields and wrong types are errors. */
int dc_unet_config_from_json(dc_unet_config *cfg, const cJSON *root, dc_error *err);
/* Serialise to the unet object form (caller frees with free()). */
char *dc_unet_config_to_json(const dc_unet_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
