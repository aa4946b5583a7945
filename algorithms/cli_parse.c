/* diffcr — strict number parsing for the command-line programs (cli_parse.h). CPLStrtod accepts
 * the C locale's decimal point whatever the user's locale is, as GDAL's own tools do. */
#include <cpl_conv.h>
#include <math.h>
#include <stdlib.h>

#include "diffcr/cli_parse.h"

int dc_parse_int(const char *s, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || v < -2147483647L || v > 2147483647L)
        return 0;
    *out = (int)v;
    return 1;
}

int dc_parse_double(const char *s, double *out)
{
    char *end = NULL;
    *out = CPLStrtod(s, &end);
    return s[0] && !*end && isfinite(*out);
}
