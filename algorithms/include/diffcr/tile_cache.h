/* diffcr — a memory of model tiles, so one inference serves every reader of a tile.
 *
 * GDAL calls a VRT pixel function once per output band and per request, and the COG driver
 * reads its source twice; the decloud pipeline computes all bands of a tile in one model run.
 * dc_tile_cache_wrap() turns a model into one that first looks the tile up here: the model runs
 * once per (tile position, sample, conditions, configuration) and every later request for the
 * same tile gets the stored output, bit for bit.
 *
 * Key: the caller's configuration hash (which inputs, model, sampler settings, tile size...),
 * tile_key, sample, tile size and a hash of the conditions themselves, so a changed input file
 * (or anything the configuration hash forgot) is a miss, never a stale hit.
 * Bound: least recently used tiles are dropped once the stored outputs exceed max_bytes.
 * Threads: the cache is shared by any number of threads. Model runs are serialised by one lock
 * (dc_model is not thread-safe), and a thread that waited for that lock looks the tile up again
 * before running it, so concurrent readers of one tile still cost one run. */
#ifndef DIFFCR_TILE_CACHE_H
#define DIFFCR_TILE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "diffcr/error.h"
#include "diffcr/tile_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_tile_cache dc_tile_cache;

/* max_bytes: bound on the stored tile outputs (at least one tile is always kept). */
int dc_tile_cache_create(dc_tile_cache **out, size_t max_bytes, dc_error *err);
void dc_tile_cache_destroy(dc_tile_cache *cache);

/* A model that answers from `cache` and runs `inner` on a miss. The wrapper shares inner's
 * ndates/nbands/tile/scale/offset; it owns neither inner nor cache (destroy it with
 * dc_tile_model_destroy before them). config_hash separates tiles of different jobs. */
int dc_tile_cache_wrap(dc_tile_model **out, dc_tile_model *inner, dc_tile_cache *cache,
                       uint64_t config_hash, dc_error *err);

typedef struct dc_tile_cache_stats {
    uint64_t runs;    /* model runs (misses) */
    uint64_t hits;    /* tiles served from memory */
    size_t tiles;     /* tiles held now */
    size_t bytes;     /* bytes held now */
} dc_tile_cache_stats;

void dc_tile_cache_get_stats(dc_tile_cache *cache, dc_tile_cache_stats *stats);

/* 64-bit FNV-1a of a string, chained: h = dc_hash_string(h, s). Start with DC_HASH_SEED. */
#define DC_HASH_SEED 1469598103934665603ULL
uint64_t dc_hash_string(uint64_t h, const char *s);

#ifdef __cplusplus
}
#endif
#endif
