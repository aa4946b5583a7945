/* diffcr — strict number parsing for the command-line programs (cli_parse.h). CPLStrtod accepts
 * the C locale's decimal point whatever the user's locale is, as GDAL's own tools do. */
#include <cpl_conv.h>
#include <cpl_string.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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

int dc_parse_int_list(const char *s, int *out, int max)
{
    char **parts = CSLTokenizeString2(s, ",", 0);
    int n = CSLCount(parts), ok = n > 0 && n <= max;
    for (int i = 0; ok && i < n; i++)
        ok = dc_parse_int(parts[i], &out[i]);
    CSLDestroy(parts);
    return ok ? n : 0;
}

void dc_cli_catch_stop_signals(void (*on_stop)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}
