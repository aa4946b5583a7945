/* diffcr — error reporting.
 *
 * Library functions never print or exit: they return a status (DC_OK = 0, negative on failure)
 * and, when given a non-NULL dc_error, fill it with a one-line message naming the problem.
 * Callers that do not care pass NULL. */
#ifndef DIFFCR_ERROR_H
#define DIFFCR_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DC_OK = 0,
    DC_ERR_ARG = -1,      /* bad argument or option value */
    DC_ERR_NOMEM = -2,    /* allocation failed */
    DC_ERR_IO = -3,       /* file could not be opened, read or written */
    DC_ERR_FORMAT = -4,   /* file content malformed (untrusted input) */
    DC_ERR_SHAPE = -5,    /* tensor shape or count does not match */
    DC_ERR_BACKEND = -6,  /* backend library (oneDNN, CUDA) refused */
    DC_ERR_UNSUPPORTED = -7,
    DC_ERR_CANCELLED = -8, /* a progress callback asked to stop */
    DC_ERR_NUMERIC = -9    /* a computation kept giving NaN or infinity (e.g. training diverged) */
};

typedef struct dc_error {
    int code;
    char msg[512];
} dc_error;

/* Record a failure; returns `code` so callers can write `return dc_fail(err, DC_ERR_IO, ...)`.
 * The message is truncated to fit; err may be NULL. */
int dc_fail(dc_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clear an error record (code DC_OK, empty message). */
void dc_error_clear(dc_error *err);

/* Return the status of `call` from the enclosing function unless it is DC_OK. */
#define DC_TRY(call)            \
    do {                        \
        int rc_ = (call);       \
        if (rc_ != DC_OK)       \
            return rc_;         \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
