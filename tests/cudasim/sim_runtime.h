/* diffcr cudasim — what the simulated libraries (fake cuBLAS, fake cuDNN) need from the simulated
 * runtime. C++ only. */
#ifndef DIFFCR_CUDASIM_SIM_RUNTIME_H
#define DIFFCR_CUDASIM_SIM_RUNTIME_H

#include <functional>
#include <stddef.h>

#include "cuda_runtime.h"

/* Queue work on a stream. It runs in stream order, after everything queued before it on that
 * stream, at the next synchronisation point (cudaStreamSynchronize, a device-to-pageable-host
 * copy, cudaFree, cudaDeviceSynchronize) - as a GPU runs it later, not at the call. Capture
 * pointers and scalars by value, never the contents of memory. */
void dc_sim_enqueue(cudaStream_t stream, std::function<void()> work);

/* True when [p, p + bytes) lies inside one live cudaMalloc allocation. The libraries check every
 * device pointer they are handed: a host pointer there is a bug a GPU would crash on. */
bool dc_sim_device_range(const void *p, size_t bytes);

/* A bug a real GPU would punish (host pointer as device memory, deadlocked barrier, ...): prints
 * "cudasim: <message>" on stderr and aborts. */
[[noreturn]] void dc_sim_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
