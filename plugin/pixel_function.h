/* gdal_decloud — the `decloud` pixel function (GDALDerivedPixelFuncWithArgs); see
 * pixel_function.c for what it computes and decloud_args.h for its arguments. */
#ifndef GDAL_DECLOUD_PIXEL_FUNCTION_H
#define GDAL_DECLOUD_PIXEL_FUNCTION_H

#include <cpl_string.h>
#include <gdal.h>

CPLErr dcp_decloud_pixel_function(void **sources, int nsources, void *data, int nbx, int nby,
                                  GDALDataType src_type, GDALDataType buf_type, int pixel_space,
                                  int line_space, CSLConstList args);

#endif
