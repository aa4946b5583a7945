/* diffcr — names of the convolution precisions (backend.h). Also compiled into the CUDA module. */
#include <string.h>

#include "diffcr/backend.h"

static const char *const precision_names[DC_PRECISION_COUNT] = {"fp32", "tf32", "fp16", "bf16"};

int dc_precision_parse(const char *name, dc_precision *out, dc_error *err)
{
    for (int i = 0; i < DC_PRECISION_COUNT; i++)
        if (name && strcmp(name, precision_names[i]) == 0) {
            *out = (dc_precision)i;
            return DC_OK;
        }
    return dc_fail(err, DC_ERR_ARG, "unknown precision '%s' (expected fp32, tf32, fp16 or bf16)", name ? name : "");
}

const char *dc_precision_name(dc_precision p)
{
    return (unsigned)p < DC_PRECISION_COUNT ? precision_names[p] : "?";
}
