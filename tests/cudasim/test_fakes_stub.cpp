/* diffcr cudasim — a throwaway stand-in for sim_runtime.cpp, just enough for test_fakes.cpp to
 * exercise the fake cuBLAS / cuDNN on their own: device memory is malloc'd blocks tracked in a
 * map, work queued on a stream runs at once (or, after stub_defer(true), at the next
 * synchronisation, so a test can check that a call captured its arguments by value), and a
 * simulator failure prints and aborts. Not thread-safe; the test is single-threaded. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <functional>
#include <map>
#include <vector>

#include "sim_runtime.h"

namespace {

std::map<const char *, size_t> g_blocks; /* start -> size of each live cudaMalloc block */
std::vector<std::function<void()>> g_queue;
bool g_defer = false;

void flush()
{
    std::vector<std::function<void()>> work;
    work.swap(g_queue);
    for (auto &f : work)
        f();
}

} // namespace

/* Test controls. */
void stub_defer(bool on)
{
    flush();
    g_defer = on;
}

void dc_sim_enqueue(cudaStream_t stream, std::function<void()> work)
{
    (void)stream; /* one in-order queue stands for every stream */
    if (g_defer)
        g_queue.push_back(std::move(work));
    else
        work();
}

bool dc_sim_device_range(const void *p, size_t bytes)
{
    const char *c = static_cast<const char *>(p);
    auto it = g_blocks.upper_bound(c);
    if (it == g_blocks.begin())
        return false;
    --it;
    return c >= it->first && bytes <= it->second && (size_t)(c - it->first) <= it->second - bytes;
}

void dc_sim_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cudasim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

extern "C" {

cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    if (!ptr)
        return cudaErrorInvalidValue;
    char *p = static_cast<char *>(malloc(bytes ? bytes : 1));
    if (!p)
        return cudaErrorMemoryAllocation;
    g_blocks[p] = bytes;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    flush(); /* cudaFree waits for the device, as the real one does */
    if (!ptr)
        return cudaSuccess;
    auto it = g_blocks.find(static_cast<const char *>(ptr));
    if (it == g_blocks.end())
        return cudaErrorInvalidValue;
    g_blocks.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    flush();
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    (void)stream;
    flush();
    return cudaSuccess;
}

} // extern "C"
