/* diffcr cudasim — the CUDA runtime on the host: device memory, streams, launches, and the
 * scheduler that runs a block's threads as fibers (tests/cudasim/README.md).
 *
 * What it is for: running the CUDA backend's own kernels (the .cu files of core/cuda, compiled by g++)
 * against the CPU backend in CI, where there is no GPU. It is strict where a GPU is unforgiving:
 * a host pointer handed to a kernel or a copy, a barrier some threads never reach, a warp
 * exchange with a lane that has exited, a bad launch configuration, reading memory before the
 * stream that writes it has been synchronised. Device memory starts as NaN bytes, so reading
 * memory nobody wrote shows up in the results. Under AddressSanitizer every kernel access out of
 * an allocation is reported, as compute-sanitizer's memcheck would.
 *
 * Environment: DIFFCR_CUDASIM_ORDER=reverse runs blocks and the threads of a block in reverse
 * order (a kernel whose result depends on the order is missing a barrier or an atomic);
 * DIFFCR_CUDASIM_FIBERS=1 runs every kernel on fibers (no barrier-free fast path);
 * DIFFCR_CUDASIM_DEVICES=N sets the number of devices (default 1; 0 = no GPU);
 * DIFFCR_CUDASIM_MEMORY=bytes caps device memory (default 16 GiB). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <boost/context/fiber.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define DC_SIM_ASAN 1
#else
#define DC_SIM_ASAN 0
#endif

#include "sim_kernel.h"
#include "sim_runtime.h"
/* the kernel-language names are not wanted in the runtime itself */
#undef threadIdx
#undef blockIdx
#undef blockDim
#undef gridDim
#undef warpSize
#undef __shared__

namespace ctx = boost::context;

/* ------------------------------------------------------------------------------------------ */
/* failures and the last error                                                                 */

void dc_sim_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cudasim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

/* The runtime's own exit handler: a real CUDA runtime registers one when it is first used and
 * tears itself down in it, so a call from an exit handler registered before that (a GDAL plugin's,
 * say) meets a library that is gone: cudaErrorCudartUnloading, or a crash inside cuDNN. The
 * simulator stops the process there, naming the call, so a test sees the bug. */
static std::atomic<bool> g_unloaded{false};

static void runtime_exit_handler(void) { g_unloaded = true; }

static void runtime_used(const char *call)
{
    static std::once_flag once;
    std::call_once(once, [] { atexit(runtime_exit_handler); });
    if (g_unloaded)
        dc_sim_fail("%s called after the CUDA runtime's exit handler ran: free GPU resources before exit, "
                    "not from an exit handler registered before the first CUDA call", call);
}

static thread_local cudaError_t tls_last_error = cudaSuccess;

static cudaError_t record(cudaError_t e)
{
    if (e != cudaSuccess)
        tls_last_error = e;
    return e;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = tls_last_error;
    tls_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return tls_last_error; }

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

/* ------------------------------------------------------------------------------------------ */
/* devices                                                                                     */

static size_t env_size(const char *name, size_t fallback)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return fallback;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        dc_sim_fail("%s=%s is not a number", name, s);
    return (size_t)v;
}

static int device_count(void) { return (int)env_size("DIFFCR_CUDASIM_DEVICES", 1); }

static thread_local int tls_device = 0;

cudaError_t cudaGetDeviceCount(int *count)
{
    runtime_used("cudaGetDeviceCount");
    if (!count)
        return record(cudaErrorInvalidValue);
    *count = device_count();
    return *count ? cudaSuccess : record(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int device)
{
    runtime_used("cudaSetDevice");
    if (device < 0 || device >= device_count())
        return record(cudaErrorInvalidDevice);
    tls_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    if (!device)
        return record(cudaErrorInvalidValue);
    *device = tls_device;
    return cudaSuccess;
}

static size_t memory_cap(void) { return env_size("DIFFCR_CUDASIM_MEMORY", (size_t)16 << 30); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
    if (!prop)
        return record(cudaErrorInvalidValue);
    if (device < 0 || device >= device_count())
        return record(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "cudasim (functional CUDA simulator on the CPU)");
    prop->totalGlobalMem = memory_cap();
    /* DIFFCR_CUDASIM_SM=75 etc.: an older GPU, for the backend's per-architecture checks */
    const size_t sm = env_size("DIFFCR_CUDASIM_SM", 90);
    prop->major = (int)(sm / 10), prop->minor = (int)(sm % 10);
    prop->multiProcessorCount = 1;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->sharedMemPerBlock = 48 << 10;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    if (!v)
        return record(cudaErrorInvalidValue);
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    if (!v)
        return record(cudaErrorInvalidValue);
    *v = 13000;
    return cudaSuccess;
}

/* ------------------------------------------------------------------------------------------ */
/* memory: device allocations and pinned host allocations, by start address                   */

namespace {
struct registry {
    std::mutex lock;
    std::map<uintptr_t, size_t> device, pinned;
    size_t device_bytes = 0;
};
registry &mem()
{
    static registry *r = new registry; /* never destroyed: see all_queues() */
    return *r;
}

/* Is [p, p + bytes) inside one allocation of `m`? One-past-the-end counts for bytes == 0. */
bool in_range(const std::map<uintptr_t, size_t> &m, const void *p, size_t bytes)
{
    uintptr_t a = (uintptr_t)p;
    auto it = m.upper_bound(a);
    if (it == m.begin())
        return false;
    --it;
    return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}
} // namespace

bool dc_sim_device_range(const void *p, size_t bytes)
{
    std::lock_guard<std::mutex> g(mem().lock);
    return p && in_range(mem().device, p, bytes);
}

static bool pinned_range(const void *p, size_t bytes)
{
    std::lock_guard<std::mutex> g(mem().lock);
    return p && in_range(mem().pinned, p, bytes);
}

static void flush_stream(void);

/* DIFFCR_CUDASIM_ALLOC_LOG=FILE: one line per device or pinned allocation appended to FILE, so a
 * test can show that a loop allocates nothing (read at each call: a test may set it mid-run). */
static void log_allocation(const char *call, size_t bytes)
{
    const char *path = getenv("DIFFCR_CUDASIM_ALLOC_LOG");
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "a");
    if (!f)
        dc_sim_fail("DIFFCR_CUDASIM_ALLOC_LOG=%s: cannot open it", path);
    fprintf(f, "%s %zu\n", call, bytes);
    fclose(f);
}

cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    runtime_used("cudaMalloc");
    log_allocation("cudaMalloc", bytes);
    if (!ptr)
        return record(cudaErrorInvalidValue);
    if (bytes == 0) {
        *ptr = NULL;
        return cudaSuccess;
    }
    {
        std::lock_guard<std::mutex> g(mem().lock);
        if (bytes > memory_cap() - mem().device_bytes)
            return record(cudaErrorMemoryAllocation);
        mem().device_bytes += bytes;
    }
    void *p = NULL;
    if (posix_memalign(&p, 256, bytes) != 0) {
        std::lock_guard<std::mutex> g(mem().lock);
        mem().device_bytes -= bytes;
        return record(cudaErrorMemoryAllocation);
    }
    memset(p, 0xff, bytes); /* NaN in every float: reading unwritten memory shows */
    {
        std::lock_guard<std::mutex> g(mem().lock);
        mem().device[(uintptr_t)p] = bytes;
    }
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    runtime_used("cudaFree");
    if (!ptr)
        return cudaSuccess;
    flush_stream(); /* cudaFree synchronises the device */
    {
        std::lock_guard<std::mutex> g(mem().lock);
        auto it = mem().device.find((uintptr_t)ptr);
        if (it == mem().device.end())
            return record(cudaErrorInvalidValue);
        mem().device_bytes -= it->second;
        mem().device.erase(it);
    }
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes)
{
    runtime_used("cudaMallocHost");
    log_allocation("cudaMallocHost", bytes);
    if (!ptr)
        return record(cudaErrorInvalidValue);
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes ? bytes : 1) != 0)
        return record(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> g(mem().lock);
    mem().pinned[(uintptr_t)p] = bytes;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr)
{
    runtime_used("cudaFreeHost");
    if (!ptr)
        return cudaSuccess;
    flush_stream();
    {
        std::lock_guard<std::mutex> g(mem().lock);
        auto it = mem().pinned.find((uintptr_t)ptr);
        if (it == mem().pinned.end())
            return record(cudaErrorInvalidValue);
        mem().pinned.erase(it);
    }
    free(ptr);
    return cudaSuccess;
}

/* ------------------------------------------------------------------------------------------ */
/* streams: one in-order queue per host thread (the backend uses cudaStreamPerThread)          */

namespace {
struct work_queue {
    std::vector<std::function<void()>> items;
};
std::mutex queues_lock;
/* Never destroyed, like the registry: exit handlers registered before the first CUDA call (a
 * GDAL plugin's, say) run after static destructors and may still free memory. */
std::vector<std::unique_ptr<work_queue>> &all_queues()
{
    static auto *q = new std::vector<std::unique_ptr<work_queue>>;
    return *q;
}
/* A raw pointer, not a thread_local object: pthread-key destructors (the backend's per-thread
 * scratch) run after C++ thread_local destructors and still call cudaFree, which flushes. */
thread_local work_queue *tls_queue = NULL;

work_queue &queue()
{
    if (!tls_queue) {
        std::lock_guard<std::mutex> g(queues_lock);
        all_queues().emplace_back(new work_queue);
        tls_queue = all_queues().back().get();
    }
    return *tls_queue;
}

bool valid_stream(cudaStream_t s) { return s == NULL || s == cudaStreamLegacy || s == cudaStreamPerThread; }
} // namespace

static void flush_stream(void)
{
    work_queue &q = queue();
    /* items may not enqueue more work; run them in order, then drop them */
    for (size_t i = 0; i < q.items.size(); i++)
        q.items[i]();
    q.items.clear();
}

void dc_sim_enqueue(cudaStream_t stream, std::function<void()> work)
{
    if (!valid_stream(stream))
        dc_sim_fail("work queued on an unknown stream %p", (void *)stream);
    queue().items.push_back(std::move(work));
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    runtime_used("cudaStreamSynchronize");
    if (!valid_stream(stream))
        return record(cudaErrorInvalidResourceHandle);
    flush_stream();
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    runtime_used("cudaDeviceSynchronize");
    flush_stream();
    return cudaSuccess;
}

/* ------------------------------------------------------------------------------------------ */
/* copies and sets                                                                             */

static const char *kind_name(cudaMemcpyKind k)
{
    switch (k) {
    case cudaMemcpyHostToHost: return "host-to-host";
    case cudaMemcpyHostToDevice: return "host-to-device";
    case cudaMemcpyDeviceToHost: return "device-to-host";
    case cudaMemcpyDeviceToDevice: return "device-to-device";
    case cudaMemcpyDefault: return "default";
    }
    return "invalid";
}

/* A copy's pointers must be what its kind says: a host pointer named as device memory is an
 * illegal address on a GPU, and device memory named as host memory is a host-side bug. */
static void check_side(const void *p, size_t bytes, bool device, const char *which, cudaMemcpyKind kind)
{
    bool dev = dc_sim_device_range(p, bytes);
    if (device && !dev)
        dc_sim_fail("%s copy of %zu bytes: %s %p is not device memory (or the copy runs past its end)",
                    kind_name(kind), bytes, which, p);
    if (!device && dc_sim_device_range(p, 1))
        dc_sim_fail("%s copy of %zu bytes: %s %p is device memory", kind_name(kind), bytes, which, p);
}

static cudaError_t memcpy_checked(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, bool async,
                                  cudaStream_t stream)
{
    if (async && !valid_stream(stream))
        return record(cudaErrorInvalidResourceHandle);
    if (kind == cudaMemcpyDefault) {
        bool dd = dc_sim_device_range(dst, 1), sd = dc_sim_device_range(src, 1);
        kind = sd ? (dd ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                  : (dd ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
    }
    if ((int)kind < 0 || (int)kind > 4)
        return record(cudaErrorInvalidMemcpyDirection);
    if (bytes == 0)
        return cudaSuccess;
    if (!dst || !src)
        return record(cudaErrorInvalidValue);
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    check_side(dst, bytes, dst_dev, "destination", kind);
    check_side(src, bytes, src_dev, "source", kind);
    if (!async) {
        flush_stream();
        memcpy(dst, src, bytes);
        return cudaSuccess;
    }
    /* As the driver does: pageable host memory is staged (a host-to-device source may be reused
     * at once; a device-to-host copy into it completes before the call returns); pinned memory
     * is read and written by the GPU later, in stream order. */
    if (kind == cudaMemcpyHostToDevice && !pinned_range(src, bytes)) {
        std::shared_ptr<std::vector<unsigned char>> staged(
            new std::vector<unsigned char>((const unsigned char *)src, (const unsigned char *)src + bytes));
        dc_sim_enqueue(stream, [dst, staged, bytes]() { memcpy(dst, staged->data(), bytes); });
    } else if (kind == cudaMemcpyDeviceToHost && !pinned_range(dst, bytes)) {
        flush_stream();
        memcpy(dst, src, bytes);
    } else {
        dc_sim_enqueue(stream, [dst, src, bytes]() { memmove(dst, src, bytes); });
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    return memcpy_checked(dst, src, bytes, kind, false, NULL);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream)
{
    runtime_used("cudaMemcpyAsync");
    return memcpy_checked(dst, src, bytes, kind, true, stream);
}

static cudaError_t memset_checked(void *p, int value, size_t bytes, bool async, cudaStream_t stream)
{
    if (async && !valid_stream(stream))
        return record(cudaErrorInvalidResourceHandle);
    if (bytes == 0)
        return cudaSuccess;
    if (!dc_sim_device_range(p, bytes))
        dc_sim_fail("memset of %zu bytes: %p is not device memory (or the set runs past its end)", bytes, p);
    if (!async) {
        flush_stream();
        memset(p, value, bytes);
    } else {
        dc_sim_enqueue(stream, [p, value, bytes]() { memset(p, value, bytes); });
    }
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) { return memset_checked(p, value, bytes, false, NULL); }

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream)
{
    runtime_used("cudaMemsetAsync");
    return memset_checked(p, value, bytes, true, stream);
}

/* ------------------------------------------------------------------------------------------ */
/* the block scheduler                                                                         */

namespace {

enum { WARP = 32, STACK_BYTES = 256 << 10 };

/* Fiber stacks, mmap'd with a guard page below and reused: a kernel that overflows its stack
 * faults instead of writing over another thread's. */
struct stack_pool {
    std::vector<void *> free_stacks;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    ~stack_pool()
    {
        for (void *p : free_stacks)
            munmap((char *)p - page, STACK_BYTES + page);
    }
};
thread_local stack_pool tls_stacks;

#if DC_SIM_ASAN
/* The stack the last allocate() handed out: the scheduler's switch annotations need its bounds. */
thread_local ctx::stack_context tls_last_stack;
#endif

struct pool_allocator {
    ctx::stack_context allocate()
    {
        stack_pool &pool = tls_stacks;
        void *base;
        if (!pool.free_stacks.empty()) {
            base = pool.free_stacks.back();
            pool.free_stacks.pop_back();
        } else {
            char *m = (char *)mmap(NULL, STACK_BYTES + pool.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                   -1, 0);
            if (m == MAP_FAILED)
                dc_sim_fail("out of memory for a fiber stack");
            mprotect(m, pool.page, PROT_NONE);
            base = m + pool.page;
        }
#if DC_SIM_ASAN
        ASAN_UNPOISON_MEMORY_REGION(base, STACK_BYTES); /* a reused stack may hold old frames' poison */
#endif
        ctx::stack_context sc;
        sc.size = STACK_BYTES;
        sc.sp = (char *)base + STACK_BYTES;
#if DC_SIM_ASAN
        tls_last_stack = sc;
#endif
        return sc;
    }
    void deallocate(ctx::stack_context &sc) { tls_stacks.free_stacks.push_back((char *)sc.sp - sc.size); }
};

struct warp_state {
    uint64_t slot[2][WARP]; /* double-buffered: lanes may enter the next exchange before the last
                               lane has read this one's values */
    unsigned gen = 0;
    int arrived = 0;
    unsigned mask = 0;
    unsigned present = 0; /* lanes that exist in this block */
    unsigned exited = 0;
};

struct thread_slot {
    dc_sim_thread id;
    ctx::fiber fiber; /* the thread, while suspended */
    ctx::fiber sink;  /* the scheduler, while the thread runs */
    bool done = false;
#if DC_SIM_ASAN
    void *fake_stack = NULL;
    const void *stack_bottom = NULL;
    size_t stack_size = 0;
#endif
};

struct block_state {
    const char *kernel;
    bool direct; /* threads run as plain calls: no barrier may happen */
    bool used_sync = false;
    std::vector<thread_slot> threads;
    std::vector<warp_state> warps;
    int live = 0;
    int bar_arrived = 0;
    unsigned bar_gen = 0;
    unsigned long progress = 0;
    unsigned char *smem = NULL; /* malloc'd to the launch's exact size: ASan bounds it */
    size_t smem_bytes = 0;
    size_t current = 0;
    dc_sim_thread direct_id; /* the running thread, on the fast path */
#if DC_SIM_ASAN
    const void *sched_bottom = NULL;
    size_t sched_size = 0;
#endif
};

/* Per host thread: two host threads may run kernels at once (one backend object each). Not
 * initial-exec: the module's TLS (kernels' shared arrays) is too big for the static TLS block. */
thread_local block_state *tls_block = NULL;
} // namespace
thread_local const dc_sim_thread *dc_sim_tls_thread = NULL;
#define tls_thread dc_sim_tls_thread
namespace {

bool reverse_order(void)
{
    static int r = -1;
    if (r < 0) {
        const char *s = getenv("DIFFCR_CUDASIM_ORDER");
        r = s && !strcmp(s, "reverse");
    }
    return r == 1;
}

block_state &running_block(const char *what)
{
    block_state *b = tls_block;
    if (!b)
        dc_sim_fail("%s outside a kernel", what);
    if (b->direct)
        dc_sim_fail("kernel %s: %s in a kernel whose first launch had none (set DIFFCR_CUDASIM_FIBERS=1)", b->kernel,
                    what);
    b->used_sync = true;
    return *b;
}

/* Back to the scheduler until it resumes this thread. */
void yield_thread(block_state &b)
{
    thread_slot &t = b.threads[b.current];
#if DC_SIM_ASAN
    __sanitizer_start_switch_fiber(&t.fake_stack, b.sched_bottom, b.sched_size);
#endif
    t.sink = std::move(t.sink).resume();
#if DC_SIM_ASAN
    __sanitizer_finish_switch_fiber(t.fake_stack, NULL, NULL);
#endif
}

void release_barrier(block_state &b)
{
    b.bar_arrived = 0;
    b.bar_gen++;
    b.progress++;
}

void thread_exited(block_state &b, size_t i)
{
    thread_slot &t = b.threads[i];
    t.done = true;
    b.live--;
    b.progress++;
    warp_state &w = b.warps[i / WARP];
    unsigned lane = (unsigned)(i % WARP);
    w.exited |= 1u << lane;
    if (w.arrived > 0 && (w.mask >> lane & 1u))
        dc_sim_fail("kernel %s: thread (%u,%u,%u) of block (%u,%u,%u) exited while its warp waits for it at a "
                    "warp exchange",
                    b.kernel, t.id.thread_idx.x, t.id.thread_idx.y, t.id.thread_idx.z, t.id.block_idx.x,
                    t.id.block_idx.y, t.id.block_idx.z);
    if (b.bar_arrived > 0 && b.bar_arrived == b.live)
        release_barrier(b);
}

/* Threads as plain calls, one after the other: only one thread's identity is needed. */
void run_block_direct(block_state &b, uint3 bid, dim3 block, dim3 grid, const std::function<void()> &body)
{
    dc_sim_thread &id = b.direct_id;
    id.block_idx = bid, id.block_dim = block, id.grid_dim = grid;
    tls_thread = &id;
    const bool rev = reverse_order();
    /* nested loops: no divisions per thread (the common kernel does one element per thread) */
    for (unsigned zk = 0; zk < block.z; zk++)
        for (unsigned yk = 0; yk < block.y; yk++)
            for (unsigned xk = 0; xk < block.x; xk++) {
                unsigned x = rev ? block.x - 1 - xk : xk, y = rev ? block.y - 1 - yk : yk,
                         z = rev ? block.z - 1 - zk : zk;
                id.thread_idx = {x, y, z};
                b.current = ((size_t)z * block.y + y) * block.x + x;
                body();
            }
}

void run_block_fibers(block_state &b, const std::function<void()> &body)
{
    size_t n = b.threads.size();
    for (size_t i = 0; i < n; i++) {
        thread_slot &t = b.threads[i];
        t.fiber = ctx::fiber(std::allocator_arg, pool_allocator(), [&b, &body, i](ctx::fiber &&sink) {
            thread_slot &me = b.threads[i];
            me.sink = std::move(sink);
#if DC_SIM_ASAN
            __sanitizer_finish_switch_fiber(NULL, &b.sched_bottom, &b.sched_size);
#endif
            body();
            thread_exited(b, i);
#if DC_SIM_ASAN
            __sanitizer_start_switch_fiber(NULL, b.sched_bottom, b.sched_size);
#endif
            return std::move(me.sink);
        });
#if DC_SIM_ASAN
        t.stack_bottom = (char *)tls_last_stack.sp - tls_last_stack.size;
        t.stack_size = tls_last_stack.size;
#endif
    }
    while (b.live > 0) {
        unsigned long before = b.progress;
        for (size_t k = 0; k < n; k++) {
            size_t i = reverse_order() ? n - 1 - k : k;
            thread_slot &t = b.threads[i];
            if (t.done)
                continue;
            b.current = i;
            tls_thread = &t.id;
#if DC_SIM_ASAN
            void *sched_fake = NULL;
            __sanitizer_start_switch_fiber(&sched_fake, t.stack_bottom, t.stack_size);
#endif
            t.fiber = std::move(t.fiber).resume();
#if DC_SIM_ASAN
            __sanitizer_finish_switch_fiber(sched_fake, NULL, NULL);
#endif
        }
        if (b.live > 0 && b.progress == before) {
            int at_barrier = b.bar_arrived;
            dc_sim_fail("kernel %s: deadlock in block (%u,%u,%u): %d of %d live threads wait at __syncthreads, the "
                        "others at a warp exchange their warp never completes",
                        b.kernel, b.threads[0].id.block_idx.x, b.threads[0].id.block_idx.y,
                        b.threads[0].id.block_idx.z, at_barrier, b.live);
        }
    }
}

/* How each kernel runs: unknown until its first launch, which runs on fibers and finds out
 * whether it uses barriers; barrier-free kernels then run as plain calls (fast). */
enum kernel_mode { MODE_UNKNOWN, MODE_DIRECT, MODE_FIBERS };
std::mutex modes_lock;
std::unordered_map<const void *, kernel_mode> &modes()
{
    static std::unordered_map<const void *, kernel_mode> m;
    return m;
}

bool always_fibers(void)
{
    static int f = -1;
    if (f < 0) {
        const char *s = getenv("DIFFCR_CUDASIM_FIBERS");
        f = s && !strcmp(s, "1");
    }
    return f == 1;
}

void run_grid(const char *name, const void *kernel, dim3 grid, dim3 block, size_t smem,
              const std::function<void()> &body)
{
    kernel_mode mode;
    {
        std::lock_guard<std::mutex> g(modes_lock);
        mode = modes()[kernel];
    }
    if (always_fibers())
        mode = MODE_FIBERS;
    size_t nthreads = (size_t)block.x * block.y * block.z;
    size_t nblocks = (size_t)grid.x * grid.y * grid.z;
    bool used_sync = false;
    block_state b; /* reused block after block: its vectors keep their memory */
    b.kernel = name;
    b.direct = mode == MODE_DIRECT;
    if (!b.direct) {
        b.threads.resize(nthreads);
        b.warps.resize((nthreads + WARP - 1) / WARP);
    }
    b.smem_bytes = smem;
    b.smem = (unsigned char *)malloc(smem ? smem : 1);
    if (!b.smem)
        dc_sim_fail("out of memory for shared memory");
    block_state *outer = tls_block;
    const dc_sim_thread *outer_thread = tls_thread;
    tls_block = &b;
    for (size_t k = 0; k < nblocks; k++) {
        size_t lin = reverse_order() ? nblocks - 1 - k : k;
        uint3 bid = {(unsigned)(lin % grid.x), (unsigned)(lin / grid.x % grid.y),
                     (unsigned)(lin / grid.x / grid.y)};
        memset(b.smem, 0xff, smem); /* NaN bytes: a read before any write shows */
        b.live = (int)nthreads;
        b.bar_arrived = 0;
        b.used_sync = false;
        if (b.direct) {
            run_block_direct(b, bid, block, grid, body);
        } else {
            for (size_t i = 0; i < nthreads; i++) {
                thread_slot &t = b.threads[i];
                t.id.thread_idx = {(unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                                   (unsigned)(i / block.x / block.y)};
                t.id.block_idx = bid;
                t.id.block_dim = block;
                t.id.grid_dim = grid;
                t.done = false;
            }
            for (size_t w = 0; w < b.warps.size(); w++) {
                b.warps[w] = warp_state();
                size_t left = nthreads - w * (size_t)WARP;
                unsigned lanes = left < (size_t)WARP ? (unsigned)left : (unsigned)WARP;
                b.warps[w].present = lanes == WARP ? 0xffffffffu : (1u << lanes) - 1u;
            }
            run_block_fibers(b, body);
        }
        used_sync = used_sync || b.used_sync;
    }
    tls_block = outer;
    tls_thread = outer_thread;
    free(b.smem);
    if (mode == MODE_UNKNOWN) {
        std::lock_guard<std::mutex> g(modes_lock);
        modes()[kernel] = used_sync ? MODE_FIBERS : MODE_DIRECT;
    }
}

} // namespace

void __syncthreads(void)
{
    block_state &b = running_block("__syncthreads");
    unsigned gen = b.bar_gen;
    b.bar_arrived++;
    b.progress++;
    if (b.bar_arrived == b.live) {
        release_barrier(b);
        return;
    }
    while (b.bar_gen == gen)
        yield_thread(b);
}

const uint64_t *dc_sim_warp_exchange(unsigned mask, uint64_t value, unsigned *lane_out)
{
    block_state &b = running_block("a warp exchange");
    size_t i = b.current;
    warp_state &w = b.warps[i / WARP];
    unsigned lane = (unsigned)(i % WARP);
    const dc_sim_thread &id = b.threads[i].id;
    if (!(mask >> lane & 1u))
        dc_sim_fail("kernel %s: lane %u calls a warp exchange with mask 0x%08x, which leaves it out", b.kernel, lane,
                    mask);
    if (mask & ~w.present)
        dc_sim_fail("kernel %s: warp exchange mask 0x%08x names lanes the block does not have (block of %u threads)",
                    b.kernel, mask, id.block_dim.x * id.block_dim.y * id.block_dim.z);
    if (mask & w.exited)
        dc_sim_fail("kernel %s: warp exchange mask 0x%08x names lanes that have exited (0x%08x)", b.kernel, mask,
                    w.exited);
    if (w.arrived == 0)
        w.mask = mask;
    else if (w.mask != mask)
        dc_sim_fail("kernel %s: lanes of one warp exchange with different masks (0x%08x, 0x%08x)", b.kernel, w.mask,
                    mask);
    unsigned gen = w.gen, buf = gen & 1u;
    w.slot[buf][lane] = value;
    w.arrived++;
    b.progress++;
    if (w.arrived == __builtin_popcount(mask)) {
        w.arrived = 0;
        w.gen++;
    } else {
        while (w.gen == gen)
            yield_thread(b);
    }
    *lane_out = lane;
    return w.slot[buf];
}

void *dc_sim_dynamic_smem(void)
{
    block_state *b = tls_block;
    if (!b)
        dc_sim_fail("dynamic shared memory outside a kernel");
    /* with 0 bytes the pointer may be taken but not dereferenced (ASan reports an access) */
    return b->smem;
}

void dc_sim_launch_grid(const char *name, const void *kernel, const dc_sim_config &cfg, const void *const *pointers,
                        const size_t n_pointers, std::function<void()> body)
{
    runtime_used(name);
    const dim3 g = cfg.grid, bl = cfg.block;
    size_t threads = (size_t)bl.x * bl.y * bl.z;
    if (!g.x || !g.y || !g.z || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535 || !threads || threads > 1024 ||
        bl.x > 1024 || bl.y > 1024 || bl.z > 64 || cfg.smem > (48u << 10)) {
        record(cudaErrorInvalidConfiguration);
        return;
    }
    if (!valid_stream(cfg.stream)) {
        record(cudaErrorInvalidResourceHandle);
        return;
    }
    for (size_t k = 0; k < n_pointers; k++) {
        const void *p = pointers[k];
        if (p && !dc_sim_device_range(p, 0) && !pinned_range(p, 0))
            dc_sim_fail("kernel %s: pointer argument %zu (%p) is neither device memory nor pinned host memory", name,
                        k + 1, p);
    }
    dc_sim_enqueue(cfg.stream, [name, kernel, g, bl, smem = cfg.smem, body = std::move(body)]() {
        run_grid(name, kernel, g, bl, smem, body);
    });
}
