/* diffcr — HOOK: open the real DiffCR diffusion model from a weights file.
 *
 * NOT YET LINKED. The diffusion network and samplers live in diffcr_core and are being written
 * separately; this function is the single place where they will be glued to the raster
 * pipeline. The replacement must: load the safetensors checkpoint at `path` (bounds-checked),
 * fill ndates/nbands/tile/scale/offset from its recorded config, and implement run_tile by
 * sampling with opts->steps, order, sampler, seed, threads, device, keying the noise with
 * (seed, tile_key, sample). Until then it fails, so `--weights` never pretends to work. */
#include "diffcr/decloud.h"
#include "diffcr/tile_model.h"

int dc_tile_model_open_weights(dc_tile_model **out, const char *path,
                               const struct dc_decloud_options *opts, dc_error *err)
{
    *out = NULL;
    return dc_fail(err, DC_ERR_UNSUPPORTED,
                   "%s: diffusion model loading not yet linked (use --model mean for testing)",
                   path);
}
