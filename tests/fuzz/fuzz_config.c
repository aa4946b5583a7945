/* libFuzzer harness: the JSON config readers.
 *
 * The input is config text (cut at the first NUL, as a C string would be). It goes through
 * dc_json_parse_text (comment stripping + cJSON, core/io/config.c), the dotted-path lookups and
 * dc_unet_config_from_json / _to_json (core/io/config.c, unet_config.c), and separately through
 * dc_train_config_parse (algorithms/train_config.c) with an unknown-key warning callback. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/config.h"
#include "diffcr/train.h"
#include "fuzz_text.h"

static void warn(const char *msg, void *arg)
{
    (void)msg;
    ++*(int *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (!text)
        return 0;
    dc_error err;

    cJSON *root = NULL;
    if (dc_json_parse_text(&root, text, "fuzz", &err) == DC_OK) {
        int i, arr[8], count;
        double d;
        const char *s;
        (void)dc_json_get_int(root, "model.which_networks.0.args.unet.width", &i, &err);
        (void)dc_json_get_double(root, "train.min_lr", &d, &err);
        (void)dc_json_get_string(root, "name", &s, &err);
        (void)dc_json_get_int_array(root, "model.which_networks.0.args.unet.enc_blk_nums", arr, 8,
                                    &count, &err);
        dc_unet_config cfg;
        if (dc_unet_config_from_json(&cfg, root, &err) == DC_OK)
            free(dc_unet_config_to_json(&cfg));
        cJSON_Delete(root);
    }

    dc_train_config tc;
    int warnings = 0;
    if (dc_train_config_parse(&tc, text, "/nonexistent", warn, &warnings, &err) == DC_OK)
        dc_train_config_free(&tc);
    free(text);
    return 0;
}
