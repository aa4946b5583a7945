/* diffcr — what the backend loader needs from the CPU backend (not public). */
#ifndef DIFFCR_BACKEND_INTERNAL_H
#define DIFFCR_BACKEND_INTERNAL_H

#include "diffcr/backend.h"

/* use_dnnl: 1 = "cpu" (oneDNN convolutions when built with them), 0 = "ref". */
int dc_cpu_backend_create(dc_backend **out, int use_dnnl, int threads, dc_error *err);

#endif
