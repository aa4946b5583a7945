#!/bin/bash
# The GDAL plugin with a real diffusion model (diffcr-net init weights, 3 sampler steps, tile 64):
# gdal_translate on the VRT gives diffcr-decloud's pixels exactly — full raster, -srcwin, COG —
# with one model run per tile for all 3 bands and both COG passes.
. "$(dirname "$0")/plugin_common.sh"
NET="$BUILD/core/diffcr-net"
[ -x "$NET" ] || NET=$(find "$BUILD" -name diffcr-net -type f -perm -u+x | head -1)
[ -x "$NET" ] || { echo "SKIP: diffcr-net not built"; exit 77; }
$DATA waves . 150 90 4 || { echo "FAIL: data"; exit 1; }
run_ok init "$NET" init --config "$DIFFCR_SOURCE_DIR/configs/tiny_test.json" --output w.safetensors --seed 2
NT=$(tiles 150 90 64 16)   # 3 x 2 = 6
opts=(-q d0.tif d1.tif d2.tif --weights w.safetensors --steps 3 --tile 64 --seed 7)
run_ok ref "$DECLOUD" "${opts[@]}" ref.tif
run_ok vrt "$DECLOUD" "${opts[@]}" --vrt model.vrt
grep -q 'steps="3"' model.vrt && grep -q 'seed="7"' model.vrt && pass "sampler settings in the VRT" || fail "sampler settings in the VRT"
translate_runs full $NT model.vrt full.tif
run_ok full_same $CHECK same ref.tif full.tif
translate_runs cog $NT -of COG model.vrt cog.tif
run_ok cog_same $CHECK same ref.tif cog.tif
gdal_translate -q -srcwin 30 20 70 50 ref.tif win_ref.tif
run_ok srcwin gdal_translate -q -srcwin 30 20 70 50 model.vrt win.tif
run_ok srcwin_same $CHECK same win_ref.tif win.tif
# tiles per network call: the same pixels through the pixel function (and in the VRT it writes)
run_ok vrt_batch "$DECLOUD" "${opts[@]}" --batch 2 --vrt batch.vrt
grep -q 'batch="2"' batch.vrt && pass "batch in the VRT" || fail "batch in the VRT"
run_ok batch gdal_translate -q batch.vrt batch.tif
run_ok batch_same $CHECK same ref.tif batch.tif
# precision with device auto and no GPU: fp32 on the CPU (same pixels), one warning saying so
if ! nvidia-smi -L >/dev/null 2>&1; then
  run_ok vrt_tf32 "$DECLOUD" "${opts[@]}" --precision tf32 --vrt tf32.vrt
  if gdal_translate -q tf32.vrt tf32.tif 2>tf32.log && [ "$(grep -c "precision 'tf32' ignored: device auto chose the CPU" tf32.log)" = 1 ] &&
     $CHECK same ref.tif tf32.tif >/dev/null; then pass "auto + tf32 VRT without a GPU: fp32 pixels, one warning"
  else fail "auto + tf32 VRT without a GPU"; cat tf32.log; fi
fi
# an override: another seed through --config gives other pixels (and other tiles in the cache)
run_ok seed_override gdal_translate -q --config DECLOUD_SEED 8 model.vrt seed8.tif
if $CHECK same ref.tif seed8.tif >/dev/null 2>&1; then fail "DECLOUD_SEED had no effect"; else pass "DECLOUD_SEED overrides the VRT"; fi
finish
