/* diffcr — where the shipped default model is, so every tool can use it without being told.
 *
 * Looked up in order: $DIFFCR_DEFAULT_MODEL (a path), the installed copy
 * (<prefix>/share/diffcr/diffcr_default.safetensors, where cmake --install puts it and the QGIS
 * provider looks), then the source tree's samples/model/ (a build that was never installed). */
#include <stdlib.h>
#include <unistd.h>

#include "diffcr/tile_model.h"

#ifndef DIFFCR_INSTALL_DATADIR
#define DIFFCR_INSTALL_DATADIR "/usr/local/share/diffcr"
#endif
#ifndef DIFFCR_SOURCE_DIR
#define DIFFCR_SOURCE_DIR "."
#endif

const char *dc_default_model_path(void)
{
    const char *env = getenv("DIFFCR_DEFAULT_MODEL");
    if (env && *env)
        return access(env, R_OK) == 0 ? env : NULL;
    static const char *const candidates[] = {
        DIFFCR_INSTALL_DATADIR "/diffcr_default.safetensors",
        DIFFCR_SOURCE_DIR "/samples/model/diffcr_default.safetensors",
    };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return NULL;
}
