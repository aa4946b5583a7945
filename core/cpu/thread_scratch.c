/* diffcr — per-thread reusable scratch for the CPU ops (thread_partials.h).
 *
 * A pthread key rather than _Thread_local: its destructor frees a thread's buffers when the thread
 * exits, which matters for callers such as QGIS render threads and the GDAL plugin, whose threads
 * come and go. */
#include <pthread.h>
#include <stdlib.h>

#include "cpu/thread_partials.h"

typedef struct scratch_set {
    void *ptr[DC_SCRATCH_SLOTS];
    size_t cap[DC_SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_set_free(void *v)
{
    scratch_set *set = v;
    for (int i = 0; i < DC_SCRATCH_SLOTS; i++)
        free(set->ptr[i]);
    free(set);
}

static void scratch_key_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_set_free) != 0)
        abort();
}

void *dc_thread_scratch(int slot, size_t bytes)
{
    pthread_once(&scratch_once, scratch_key_init);
    scratch_set *set = pthread_getspecific(scratch_key);
    if (!set) {
        set = calloc(1, sizeof *set);
        if (!set || pthread_setspecific(scratch_key, set) != 0)
            abort();
    }
    if (slot < 0 || slot >= DC_SCRATCH_SLOTS)
        abort(); /* a programming error in an op, not a runtime condition */
    if (bytes > set->cap[slot]) {
        free(set->ptr[slot]);
        set->ptr[slot] = scratch_alloc(bytes);
        set->cap[slot] = (bytes + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    }
    return set->ptr[slot];
}
