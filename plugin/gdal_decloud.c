/* gdal_decloud.so — the GDAL plugin that gives VRT bands the `decloud` pixel function.
 *
 * GDAL loads gdal_*.so from GDAL_DRIVER_PATH (or its plugin directory, where `cmake --install`
 * puts this file) and calls GDALRegister_decloud on every GDALAllRegister() — several times per
 * process (Python: on import and again for gdal_array; QGIS: more). Registration is therefore
 * idempotent and cheap, loads no model and prints nothing: it writes the two /vsimem coordinate
 * ramps unless they exist (ramps.h) and (re)registers the pixel function (re-registering a name
 * just replaces it). Everything heavy happens lazily in the first pixel-function call.
 *
 * The library links the diffcr core and raster pipeline statically and exports only this
 * function (exports.map), so it needs no diffcr shared library at run time and cannot clash with
 * one loaded in the same process. */
#include <gdal.h>

#include "pixel_function.h"
#include "ramps.h"

void GDALRegister_decloud(void);

__attribute__((visibility("default"))) void GDALRegister_decloud(void)
{
    dcp_ramps_install();
    GDALAddDerivedBandPixelFuncWithArgs("decloud", dcp_decloud_pixel_function, NULL);
}
