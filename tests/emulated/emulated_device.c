/* A stand-in for libdiffcr_cuda.so in CI, where there is no GPU: the reference backend announcing
 * itself as the "cuda" device with is_host = 0. Loaded through DIFFCR_CUDA_MODULE, it makes the
 * programs take every device-memory branch above the op table (dc_model's device buffers and
 * device-side sampler, the trainer's device optimiser state with pull/sync, the loader) so those
 * branches are tested on every run. It checks the plumbing, not CUDA kernels: tests/gpu does that
 * on a real GPU. */
#include <stdio.h>

#include "diffcr/backend.h"

__attribute__((visibility("default"))) int dc_cuda_module_devices(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    return 1;
}

__attribute__((visibility("default"))) int dc_cuda_module_create(dc_backend **out, int device, int abi, dc_error *err)
{
    (void)device;
    if (abi != DC_BACKEND_ABI)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "emulated device: ABI mismatch");
    int rc = dc_backend_create(out, "ref", 0, err);
    if (rc != DC_OK)
        return rc;
    (*out)->name = "cuda";
    (*out)->is_host = 0;
    snprintf((*out)->description, sizeof (*out)->description, "cuda:0 emulated (reference backend, tests only)");
    return DC_OK;
}
