/* libFuzzer harness: the GDAL plugin's pixel-function argument parser (plugin/decloud_args.c).
 *
 * The input is split on '\n' into a GDAL string list, one "key=value" entry per line, as GDAL
 * passes <PixelFunctionArguments> to the pixel function; dcp_args_parse reads it and
 * dcp_args_free releases it (the header says it is needed on success and failure alike).
 * No DECLOUD_* config options are set, so the VRT values are the ones parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_string.h>

#include "decloud_args.h"
#include "fuzz_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (!text)
        return 0;
    char **args = NULL;
    for (char *line = text, *nl; line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        args = CSLAddString(args, line);
    }
    free(text);

    dcp_args a;
    char msg[512];
    (void)dcp_args_parse(&a, (CSLConstList)args, msg, sizeof msg);
    dcp_args_free(&a);
    CSLDestroy(args);
    return 0;
}
