/* diffcr — choosing a backend by name, and loading the CUDA module on demand.
 *
 * Why a module: libdiffcr_cuda.so links libcudart, cuBLAS and cuDNN. Linking them into every
 * program would make the programs fail to start on a machine without the CUDA runtime; loading
 * the module with dlopen only when a GPU is asked for (or "auto" probes for one) keeps one set
 * of binaries for both kinds of machine. The module is opened once per process and never closed
 * (unloading the CUDA runtime mid-process is not supported by it). */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diffcr/backend.h"
#include "src/backend_internal.h"

#define MODULE_NAME "libdiffcr_cuda.so"
#ifndef DIFFCR_INSTALL_LIBDIR_REL
#define DIFFCR_INSTALL_LIBDIR_REL "lib"
#endif

typedef struct cuda_module {
    void *handle;
    dc_cuda_module_create_fn create;
    int devices;
    char why[512]; /* empty when usable */
} cuda_module;

static cuda_module g_cuda;
static pthread_once_t g_cuda_once = PTHREAD_ONCE_INIT;

static void *try_open(const char *path, char *last_error, size_t size)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        /* "cannot open shared object file" for a missing candidate is expected; anything else
         * (a missing libcudart, a bad symbol) is the real reason to report. */
        if (e && !strstr(e, "No such file or directory"))
            snprintf(last_error, size, "%s", e);
    }
    return h;
}

static void *open_in_dir(const char *dir, const char *rel, char *last_error, size_t size)
{
    char path[PATH_MAX];
    if (!dir || !*dir || (size_t)snprintf(path, sizeof path, "%s/%s%s", dir, rel, MODULE_NAME) >= sizeof path)
        return NULL;
    return try_open(path, last_error, size);
}

static void *find_module(char *last_error, size_t size)
{
    const char *env = getenv("DIFFCR_CUDA_MODULE");
    if (env && *env)
        return try_open(env, last_error, size);
    const char *rels[] = {"", "../lib/", "../lib64/", "../" DIFFCR_INSTALL_LIBDIR_REL "/"};
    char dir[PATH_MAX];
    /* next to the executable, and next to the object holding this code (a GDAL plugin) */
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n > 0) {
        dir[n] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
            void *h = open_in_dir(dir, rels[i], last_error, size);
            if (h)
                return h;
        }
    }
    Dl_info info;
    if (dladdr((void *)&dc_backend_create, &info) && info.dli_fname) {
        snprintf(dir, sizeof dir, "%s", info.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
                void *h = open_in_dir(dir, rels[i], last_error, size);
                if (h)
                    return h;
            }
        }
    }
    const char *fixed[] = {
#ifdef DIFFCR_CUDA_BUILD_DIR
        DIFFCR_CUDA_BUILD_DIR,
#endif
#ifdef DIFFCR_CUDA_INSTALL_DIR
        DIFFCR_CUDA_INSTALL_DIR,
#endif
        NULL};
    for (int i = 0; fixed[i]; i++) {
        void *h = open_in_dir(fixed[i], "", last_error, size);
        if (h)
            return h;
    }
    return try_open(MODULE_NAME, last_error, size);
}

static void load_cuda_module(void)
{
    char last_error[400] = "";
    g_cuda.handle = find_module(last_error, sizeof last_error);
    if (!g_cuda.handle) {
        const char *env = getenv("DIFFCR_CUDA_MODULE");
        if (env && *env && !last_error[0])
            snprintf(g_cuda.why, sizeof g_cuda.why, "DIFFCR_CUDA_MODULE=%.300s does not exist", env);
        else if (last_error[0])
            snprintf(g_cuda.why, sizeof g_cuda.why, "the CUDA module could not be loaded: %s", last_error);
        else
            snprintf(g_cuda.why, sizeof g_cuda.why,
                     "this build has no CUDA support (" MODULE_NAME " not found; set DIFFCR_CUDA_MODULE to its path)");
        return;
    }
    dc_cuda_module_devices_fn devices = (dc_cuda_module_devices_fn)dlsym(g_cuda.handle, "dc_cuda_module_devices");
    g_cuda.create = (dc_cuda_module_create_fn)dlsym(g_cuda.handle, "dc_cuda_module_create");
    if (!devices || !g_cuda.create) {
        snprintf(g_cuda.why, sizeof g_cuda.why, MODULE_NAME " lacks its entry points (a different diffcr version?)");
        g_cuda.create = NULL;
        return;
    }
    char why[400] = "";
    g_cuda.devices = devices(why, sizeof why);
    if (g_cuda.devices <= 0)
        snprintf(g_cuda.why, sizeof g_cuda.why, "no CUDA GPU is visible (%s)", why[0] ? why : "device count 0");
}

const char *dc_cuda_unavailable_reason(void)
{
    pthread_once(&g_cuda_once, load_cuda_module);
    return g_cuda.why[0] ? g_cuda.why : NULL;
}

static int parse_cuda_index(const char *name, int *index, dc_error *err)
{
    *index = 0;
    if (name[4] == '\0')
        return DC_OK;
    const char *s = name + 5;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1024)
        return dc_fail(err, DC_ERR_ARG, "device '%s': expected cuda or cuda:N with N a GPU index", name);
    *index = (int)v;
    return DC_OK;
}

static int cuda_backend_create(dc_backend **out, const char *name, dc_error *err)
{
    int index, rc = parse_cuda_index(name, &index, err);
    if (rc != DC_OK)
        return rc;
    const char *why = dc_cuda_unavailable_reason();
    if (why)
        return dc_fail(err, DC_ERR_UNSUPPORTED, "device '%s' requested but %s; use --device cpu", name, why);
    if (index >= g_cuda.devices)
        return dc_fail(err, DC_ERR_ARG, "device '%s': only %d CUDA GPU%s visible (cuda:0..cuda:%d)", name,
                       g_cuda.devices, g_cuda.devices == 1 ? " is" : "s are", g_cuda.devices - 1);
    return g_cuda.create(out, index, DC_BACKEND_ABI, err);
}

int dc_backend_create(dc_backend **out, const char *name, int threads, dc_error *err)
{
    *out = NULL;
    if (!name || !*name || strcmp(name, "auto") == 0) {
        /* auto: the GPU when one works, else the CPU. A GPU that is visible but fails to start is
         * an error worth seeing, not a silent fallback. */
        if (getenv("DIFFCR_NO_CUDA") == NULL && dc_cuda_unavailable_reason() == NULL)
            return cuda_backend_create(out, "cuda", err);
        return dc_cpu_backend_create(out, 1, threads, err);
    }
    if (strcmp(name, "cpu") == 0)
        return dc_cpu_backend_create(out, 1, threads, err);
    if (strcmp(name, "ref") == 0)
        return dc_cpu_backend_create(out, 0, threads, err);
    if (strncmp(name, "cuda", 4) == 0 && (name[4] == '\0' || name[4] == ':'))
        return cuda_backend_create(out, name, err);
    return dc_fail(err, DC_ERR_ARG, "unknown device '%s' (expected auto, cpu, ref, cuda or cuda:N)", name);
}

static int device_is_auto(const char *name) { return !name || !*name || strcmp(name, "auto") == 0; }

int dc_backend_apply_precision(dc_backend *be, const char *device, dc_precision p, char *note, size_t note_size,
                               dc_error *err)
{
    note[0] = '\0';
    if (p == DC_PRECISION_FP32)
        return DC_OK;
    if (be->is_host && device_is_auto(device)) { /* a wish for the GPU; the CPU computes in fp32 */
        snprintf(note, note_size, "precision '%s' ignored: device auto chose the CPU, which computes in fp32",
                 dc_precision_name(p));
        return DC_OK;
    }
    return be->set_precision(be, p, err);
}

void dc_backend_destroy(dc_backend *be)
{
    if (be)
        be->destroy(be);
}
