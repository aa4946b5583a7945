/* gdal_decloud — what the plugin keeps for the life of the process: the loaded models, the
 * tile cache, the statistics.
 *
 * Models are loaded lazily, the first time a pixel function needs one (never at registration),
 * once per process for a given model key (weights + sampler settings), under a lock; up to
 * DCP_MAX_MODELS distinct ones stay loaded (the least recently used idle one is dropped).
 * The tile cache (diffcr/tile_cache.h) is bounded by --config DECLOUD_CACHE_MB (default 256)
 * and serialises model runs, which is what makes the shared models safe for concurrent readers.
 * `--config DECLOUD_STATS YES` (or the environment variable) prints, at process exit,
 *   decloud: N model tile runs, M cache hits
 * on stderr; CPLDebug("decloud", ...) reports the same after each call (CPL_DEBUG=ON). */
#ifndef GDAL_DECLOUD_PLUGIN_STATE_H
#define GDAL_DECLOUD_PLUGIN_STATE_H

#include "decloud_args.h"
#include "diffcr/error.h"
#include "diffcr/tile_cache.h"
#include "diffcr/tile_model.h"

#define DCP_MAX_MODELS 4

typedef struct dcp_model_ref dcp_model_ref;

/* The shared model for a's model key (loaded if needed) and the process's tile cache. Release
 * the reference when the call is done. */
int dcp_model_acquire(const dcp_args *a, dc_tile_model **model, dcp_model_ref **ref,
                      dc_tile_cache **cache, dc_error *err);
void dcp_model_release(dcp_model_ref *ref);

/* A model loaded since the last call may carry a remark for the user (dc_tile_model.note, e.g. a
 * precision that auto's CPU ignores). Copies it into buf and forgets it; 0 when there is none.
 * The pixel function reports it as a warning once its quiet error handler is popped. */
int dcp_take_note(char *buf, size_t size);

/* Remember that statistics were asked for (the config option may be gone at exit), and report
 * the counters through CPLDebug. */
void dcp_stats_note(void);

#endif
