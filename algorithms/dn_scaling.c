/* diffcr — DN scale conversions: rounding and clipping model output back into the input's data
 * type, and keeping valid pixels off the nodata value. The linear DN <-> model maps are inline
 * in decloud_internal.h. */
#include <float.h>
#include <math.h>

#include "decloud_internal.h"

static int type_range(GDALDataType t, double *lo, double *hi)
{
    switch (t) {
    case GDT_Byte: *lo = 0; *hi = 255; return 1;
    case GDT_UInt16: *lo = 0; *hi = 65535; return 1;
    case GDT_Int16: *lo = -32768; *hi = 32767; return 1;
    case GDT_UInt32: *lo = 0; *hi = 4294967295.0; return 1;
    case GDT_Int32: *lo = -2147483648.0; *hi = 2147483647.0; return 1;
    default: return 0; /* floating point: no clip */
    }
}

double dc_dn_to_type(double v, GDALDataType type)
{
    double lo, hi;
    if (!type_range(type, &lo, &hi)) {
        if (type == GDT_Float32 && isfinite(v)) /* keep within float range (no inf) */
            return v > FLT_MAX ? FLT_MAX : (v < -FLT_MAX ? -FLT_MAX : v);
        return v;
    }
    if (isnan(v))
        return lo;
    v = v >= 0 ? floor(v + 0.5) : ceil(v - 0.5);
    return v < lo ? lo : (v > hi ? hi : v);
}

double dc_avoid_nodata(double v, double nodata, GDALDataType type)
{
    if (v != nodata)
        return v;
    double lo, hi;
    if (type_range(type, &lo, &hi))
        return v < hi ? v + 1.0 : v - 1.0;
    if (type == GDT_Float32)
        return (double)nextafterf((float)v, v < 0 ? 0.0f : -1.0f);
    return nextafter(v, v < 0 ? 0.0 : -1.0);
}
