/* diffcr — error records (see error.h). */
#include "diffcr/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dc_fail(dc_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void dc_error_clear(dc_error *err)
{
    if (err) {
        err->code = DC_OK;
        err->msg[0] = '\0';
    }
}
