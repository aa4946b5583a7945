/* gdal_decloud — process-wide state (plugin_state.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>

#include "decloud_internal.h"
#include "plugin_state.h"

struct dcp_model_ref {
    struct dcp_model_ref *next;
    char *key;
    dc_tile_model *model;
    int refs;            /* calls using the model now */
    uint64_t last_use;
};

static pthread_mutex_t models_lock = PTHREAD_MUTEX_INITIALIZER;
static dcp_model_ref *models;
static int nmodels;
static uint64_t use_clock;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static dc_tile_cache *cache;
static int stats_wanted; /* under models_lock */

static char pending_note[160]; /* under models_lock */

int dcp_take_note(char *buf, size_t size)
{
    pthread_mutex_lock(&models_lock);
    int have = pending_note[0] != '\0';
    if (have)
        snprintf(buf, size, "%s", pending_note);
    pending_note[0] = '\0';
    pthread_mutex_unlock(&models_lock);
    return have;
}

static void print_stats(void)
{
    dc_tile_cache_stats s;
    dc_tile_cache_get_stats(cache, &s);
    fprintf(stderr, "decloud: %llu model tile runs, %llu cache hits\n",
            (unsigned long long)s.runs, (unsigned long long)s.hits);
}

/* At exit: the statistics, then free what no call is using (a reader thread still running at
 * exit keeps its model; the process is going away anyway). Models on a GPU are left to the
 * process's end: the CUDA runtime installs its own exit handler when first used, which runs
 * before this one, so cuDNN/cuBLAS/cudaFree calls here would meet a library already torn down. */
static void at_exit(void)
{
    pthread_mutex_lock(&models_lock);
    const char *env = getenv("DECLOUD_STATS");
    if (cache && (stats_wanted || (env && CPLTestBool(env))))
        print_stats();
    int kept = 0; /* a model still referenced may still use the cache */
    for (dcp_model_ref **p = &models; *p;) {
        dcp_model_ref *r = *p;
        if (r->refs > 0 || r->model->on_device) {
            kept = 1;
            p = &r->next;
            continue;
        }
        *p = r->next;
        dc_tile_model_destroy(r->model);
        free(r->key);
        free(r);
        nmodels--;
    }
    if (!kept) {
        dc_tile_cache_destroy(cache);
        cache = NULL;
    }
    pthread_mutex_unlock(&models_lock);
}

static void init(void)
{
    const char *mb = CPLGetConfigOption("DECLOUD_CACHE_MB", "256");
    long v = strtol(mb, NULL, 10);
    size_t bytes = (size_t)(v > 0 ? v : 256) << 20;
    if (dc_tile_cache_create(&cache, bytes, NULL) == DC_OK)
        atexit(at_exit);
}

void dcp_stats_note(void)
{
    int want = CPLTestBool(CPLGetConfigOption("DECLOUD_STATS", "NO"));
    pthread_mutex_lock(&models_lock);
    stats_wanted |= want;
    pthread_mutex_unlock(&models_lock);
    if (cache) {
        dc_tile_cache_stats s;
        dc_tile_cache_get_stats(cache, &s);
        CPLDebug("decloud", "%llu model tile runs, %llu cache hits, %zu tiles (%zu MB) cached",
                 (unsigned long long)s.runs, (unsigned long long)s.hits, s.tiles, s.bytes >> 20);
    }
}

/* Drop the least recently used idle models beyond DCP_MAX_MODELS (caller holds the lock). */
static void evict_idle(void)
{
    while (nmodels > DCP_MAX_MODELS) {
        dcp_model_ref **victim = NULL;
        for (dcp_model_ref **p = &models; *p; p = &(*p)->next)
            if ((*p)->refs == 0 && (!victim || (*p)->last_use < (*victim)->last_use))
                victim = p;
        if (!victim)
            return; /* all busy: allow more for now */
        dcp_model_ref *r = *victim;
        *victim = r->next;
        dc_tile_model_destroy(r->model);
        free(r->key);
        free(r);
        nmodels--;
    }
}

int dcp_model_acquire(const dcp_args *a, dc_tile_model **model, dcp_model_ref **ref,
                      dc_tile_cache **cache_out, dc_error *err)
{
    *model = NULL;
    *ref = NULL;
    pthread_once(&init_once, init);
    if (!cache)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for the tile cache");
    *cache_out = cache;
    pthread_mutex_lock(&models_lock);
    dcp_model_ref *r = models;
    while (r && strcmp(r->key, a->model_key) != 0)
        r = r->next;
    int rc = DC_OK;
    if (!r) {
        /* Loading under the lock: other threads wanting a model wait, which is what they would
         * do anyway, and the model is loaded once. */
        dc_tile_model *m = NULL;
        rc = dc_decloud_open_model(&m, &a->opts, err);
        if (rc == DC_OK) {
            r = calloc(1, sizeof *r);
            char *key = strdup(a->model_key);
            if (!r || !key) {
                free(r);
                free(key);
                dc_tile_model_destroy(m);
                r = NULL;
                rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
            } else {
                if (m->note[0]) /* once per model load; reported by the pixel function */
                    snprintf(pending_note, sizeof pending_note, "%s", m->note);
                r->key = key;
                r->model = m;
                r->next = models;
                models = r;
                nmodels++;
            }
        }
    }
    if (r) {
        r->refs++;
        r->last_use = ++use_clock;
        evict_idle();
        *model = r->model;
        *ref = r;
    }
    pthread_mutex_unlock(&models_lock);
    return rc;
}

void dcp_model_release(dcp_model_ref *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&models_lock);
    r->refs--;
    pthread_mutex_unlock(&models_lock);
}
