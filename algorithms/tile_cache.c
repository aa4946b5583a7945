/* diffcr — the tile cache: a bounded LRU of model outputs shared by threads (tile_cache.h).
 *
 * A doubly linked list, most recently used first, searched linearly: a few hundred tiles at
 * most fill the memory bound, and a lookup is nothing next to a model run. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/tile_cache.h"

typedef struct cache_entry {
    struct cache_entry *prev, *next;
    uint64_t config_hash, tile_key, cond_hash;
    int sample, h, w, nbands;
    size_t bytes;       /* what this entry counts against the bound */
    float values[];     /* [h][w][nbands] */
} cache_entry;

struct dc_tile_cache {
    pthread_mutex_t lock;      /* the list and the counters */
    pthread_mutex_t run_lock;  /* one model run at a time */
    cache_entry *head, *tail;
    size_t bytes, max_bytes, tiles;
    uint64_t runs, hits;
};

typedef struct cached_model {
    dc_tile_cache *cache;
    dc_tile_model *inner;
    uint64_t config_hash;
} cached_model;

uint64_t dc_hash_string(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xffu) * 1099511628211ULL; /* a terminator, so "ab"+"c" != "a"+"bc" */
}

/* Hash of the conditions, a word at a time (FNV-1a bytes would cost ~3 ms per 256-px tile). */
static uint64_t hash_floats(const float *v, size_t n)
{
    uint64_t h = DC_HASH_SEED ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        uint64_t w;
        memcpy(&w, v + i, sizeof w);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    if (i < n) {
        uint32_t w;
        memcpy(&w, v + i, sizeof w);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    return h;
}

int dc_tile_cache_create(dc_tile_cache **out, size_t max_bytes, dc_error *err)
{
    dc_tile_cache *c = calloc(1, sizeof *c);
    if (!c)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory for the tile cache");
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->run_lock, NULL);
    c->max_bytes = max_bytes;
    *out = c;
    return DC_OK;
}

void dc_tile_cache_destroy(dc_tile_cache *c)
{
    if (!c)
        return;
    for (cache_entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->run_lock);
    free(c);
}

void dc_tile_cache_get_stats(dc_tile_cache *c, dc_tile_cache_stats *s)
{
    pthread_mutex_lock(&c->lock);
    s->runs = c->runs;
    s->hits = c->hits;
    s->tiles = c->tiles;
    s->bytes = c->bytes;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the list (callers hold c->lock) ---------------------------------------------------- */
static void unlink_entry(dc_tile_cache *c, cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(dc_tile_cache *c, cache_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static cache_entry *find(dc_tile_cache *c, uint64_t config_hash, uint64_t tile_key,
                         uint64_t cond_hash, int sample, int h, int w, int nbands)
{
    for (cache_entry *e = c->head; e; e = e->next) {
        if (e->config_hash == config_hash && e->tile_key == tile_key &&
            e->cond_hash == cond_hash && e->sample == sample && e->h == h && e->w == w &&
            e->nbands == nbands)
            return e;
    }
    return NULL;
}

/* On a hit: copy the stored tile to out, make it the most recent, count it. */
static int lookup(dc_tile_cache *c, float *out, uint64_t config_hash, uint64_t tile_key,
                  uint64_t cond_hash, int sample, int h, int w, int nbands)
{
    pthread_mutex_lock(&c->lock);
    cache_entry *e = find(c, config_hash, tile_key, cond_hash, sample, h, w, nbands);
    if (e) {
        memcpy(out, e->values, sizeof(float) * (size_t)h * w * nbands);
        unlink_entry(c, e);
        push_front(c, e);
        c->hits++;
    }
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

static void store(dc_tile_cache *c, cache_entry *e)
{
    pthread_mutex_lock(&c->lock);
    c->runs++;
    if (e) {
        push_front(c, e);
        c->bytes += e->bytes;
        c->tiles++;
        /* Drop the least recently used tiles, but never the one just made. */
        while (c->bytes > c->max_bytes && c->tail && c->tail != e) {
            cache_entry *old = c->tail;
            unlink_entry(c, old);
            c->bytes -= old->bytes;
            c->tiles--;
            free(old);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the wrapping model -------------------------------------------------------------------- */

/* Keep a copy of a computed tile (out of memory only costs a rerun later). */
static void keep_tile(cached_model *cm, uint64_t tile_key, uint64_t cond_hash, int sample, int h, int w, int B,
                      const float *values)
{
    const size_t n = (size_t)h * (size_t)w * (size_t)B;
    cache_entry *e = malloc(sizeof *e + n * sizeof(float));
    if (e) {
        memset(e, 0, sizeof *e);
        e->config_hash = cm->config_hash;
        e->tile_key = tile_key;
        e->cond_hash = cond_hash;
        e->sample = sample;
        e->h = h;
        e->w = w;
        e->nbands = B;
        e->bytes = sizeof *e + n * sizeof(float);
        memcpy(e->values, values, n * sizeof(float));
    }
    store(cm->cache, e);
}

static int cached_run_tile(dc_tile_model *m, float *out, const float *cond, int h, int w,
                           uint64_t tile_key, int sample, dc_error *err)
{
    cached_model *cm = m->user;
    dc_tile_cache *c = cm->cache;
    const int B = m->nbands;
    const uint64_t cond_hash =
        hash_floats(cond, (size_t)h * (size_t)w * (size_t)(m->ndates * m->nbands));
    if (lookup(c, out, cm->config_hash, tile_key, cond_hash, sample, h, w, B))
        return DC_OK;
    /* Miss: take the run lock, then look again — another thread may have been running this
     * very tile while we waited. */
    pthread_mutex_lock(&c->run_lock);
    if (lookup(c, out, cm->config_hash, tile_key, cond_hash, sample, h, w, B)) {
        pthread_mutex_unlock(&c->run_lock);
        return DC_OK;
    }
    int rc = cm->inner->run_tile(cm->inner, out, cond, h, w, tile_key, sample, err);
    if (rc == DC_OK)
        keep_tile(cm, tile_key, cond_hash, sample, h, w, B, out);
    pthread_mutex_unlock(&c->run_lock);
    return rc;
}

/* A batch: served from the cache when every tile is there, else run whole (one network batch)
 * and every tile kept. */
static int cached_run_tiles(dc_tile_model *m, float *out, const float *cond, int count, int h, int w,
                            const uint64_t *keys, int sample, dc_error *err)
{
    cached_model *cm = m->user;
    dc_tile_cache *c = cm->cache;
    const int B = m->nbands;
    const size_t n = (size_t)h * (size_t)w * (size_t)B, cn = n * (size_t)m->ndates;
    uint64_t *hashes = malloc((size_t)count * sizeof *hashes);
    if (!hashes)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    int missing = 0;
    for (int i = 0; i < count; i++) {
        hashes[i] = hash_floats(cond + i * cn, cn);
        missing |= !lookup(c, out + i * n, cm->config_hash, keys[i], hashes[i], sample, h, w, B);
    }
    int rc = DC_OK;
    if (missing) {
        pthread_mutex_lock(&c->run_lock);
        missing = 0;
        for (int i = 0; i < count; i++)
            missing |= !lookup(c, out + i * n, cm->config_hash, keys[i], hashes[i], sample, h, w, B);
        if (missing) {
            rc = cm->inner->run_tiles(cm->inner, out, cond, count, h, w, keys, sample, err);
            for (int i = 0; rc == DC_OK && i < count; i++)
                keep_tile(cm, keys[i], hashes[i], sample, h, w, B, out + i * n);
        }
        pthread_mutex_unlock(&c->run_lock);
    }
    free(hashes);
    return rc;
}

static void cached_destroy(dc_tile_model *m)
{
    if (m)
        free(m->user);
    free(m);
}

int dc_tile_cache_wrap(dc_tile_model **out, dc_tile_model *inner, dc_tile_cache *cache,
                       uint64_t config_hash, dc_error *err)
{
    *out = NULL;
    dc_tile_model *m = calloc(1, sizeof *m);
    cached_model *cm = calloc(1, sizeof *cm);
    if (!m || !cm) {
        free(m);
        free(cm);
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    }
    *m = *inner;
    m->run_tile = cached_run_tile;
    m->run_tiles = inner->run_tiles ? cached_run_tiles : NULL;
    m->destroy = cached_destroy;
    m->user = cm;
    cm->cache = cache;
    cm->inner = inner;
    cm->config_hash = config_hash;
    *out = m;
    return DC_OK;
}
