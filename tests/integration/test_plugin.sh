#!/bin/bash
# The GDAL plugin with the test models: gdal_translate on a VRT written by `diffcr-decloud --vrt`
# gives diffcr-decloud's pixels exactly (full raster, -srcwin, -outsize, COG), the model runs
# once per tile whatever the bands and passes, gdalinfo -stats and Python (UseExceptions,
# 4 threads) read it, and a ramp-less VRT reads whole but refuses partial windows.
. "$(dirname "$0")/plugin_common.sh"
$DATA make "$WORK" >/dev/null || { echo "FAIL: data generation"; exit 1; }
NT=$(tiles 300 200 64 16)   # 6 x 4 = 24

for model in mean blur; do
  opts=(-q --model $model --tile 64 --overlap 16 d1.tif d2.tif d3.tif)
  run_ok ${model}_ref "$DECLOUD" "${opts[@]}" ref_$model.tif
  run_ok ${model}_vrt "$DECLOUD" "${opts[@]}" --vrt $model.vrt
  grep -q '<PixelFunctionType>decloud</PixelFunctionType>' $model.vrt && pass "$model: VRT uses decloud" || fail "$model: VRT"
  # full raster: 3 bands, one run per tile
  translate_runs ${model}_full $NT $model.vrt full_$model.tif
  run_ok ${model}_full_same $CHECK same ref_$model.tif full_$model.tif
  # COG: two passes over the VRT, still one run per tile
  translate_runs ${model}_cog $NT -of COG $model.vrt cog_$model.tif
  run_ok ${model}_cog_same $CHECK same ref_$model.tif cog_$model.tif
  # windows that cut tiles
  gdal_translate -q -srcwin 37 51 111 97 ref_$model.tif win_ref.tif
  run_ok ${model}_srcwin gdal_translate -q -srcwin 37 51 111 97 $model.vrt win_$model.tif
  run_ok ${model}_srcwin_same $CHECK same win_ref.tif win_$model.tif
  gdal_translate -q -srcwin 250 150 50 50 ref_$model.tif corner_ref.tif
  run_ok ${model}_corner gdal_translate -q -srcwin 250 150 50 50 $model.vrt corner_$model.tif
  run_ok ${model}_corner_same $CHECK same corner_ref.tif corner_$model.tif
  # decimated: nearest sampling of the full output, as GDAL decimates a file
  for size in "50% 50%" "33% 27%"; do
    tag=${size// /_}; tag=${tag//%/}
    gdal_translate -q -outsize $size ref_$model.tif dec_ref_$tag.tif
    run_ok ${model}_outsize_$tag gdal_translate -q -outsize $size $model.vrt dec_${model}_$tag.tif
    run_ok ${model}_outsize_same_$tag $CHECK same dec_ref_$tag.tif dec_${model}_$tag.tif
    run_ok ${model}_outsize_nearest_$tag $CHECK decimated ref_$model.tif dec_${model}_$tag.tif
  done
done

# block-sized swaths (the way QGIS and gdalinfo read) and statistics
cp blur.vrt stats.vrt
if gdalinfo -stats stats.vrt >stats.log 2>&1 && ! grep -q ERROR stats.log; then
  want=$(gdalinfo -stats ref_blur.tif | grep -m1 "Minimum=")
  got=$(grep -m1 "Minimum=" stats.log)
  [ "$want" = "$got" ] && pass "gdalinfo -stats: $got" || fail "gdalinfo -stats: $got vs $want"
else fail "gdalinfo -stats"; cat stats.log; fi

# Python: exceptions on, whole and window reads; 4 threads with their own handles
run_ok python_read $CHECK read blur.vrt ref_blur.tif
if GDAL_DRIVER_PATH="$GDAL_DRIVER_PATH" DECLOUD_STATS=YES $CHECK threads blur.vrt ref_blur.tif >threads.log 2>&1; then
  pass "python threads: $(grep '^ok' threads.log), $(runs threads.log) model tile runs"
else fail "python threads"; cat threads.log; fi

# no ramps: whole-raster reads work, a partial window is refused with an explanation
run_ok noramp_make $CHECK norampless blur.vrt noramp.vrt
run_ok noramp_full gdal_translate -q noramp.vrt noramp.tif
run_ok noramp_same $CHECK same ref_blur.tif noramp.tif
if gdal_translate -q -srcwin 10 10 50 50 noramp.vrt noramp_win.tif 2>noramp_win.log; then
  fail "ramp-less partial window accepted"
elif grep -q "no ramp sources" noramp_win.log; then pass "ramp-less partial window refused: $(head -1 noramp_win.log)"
else fail "ramp-less partial window message"; cat noramp_win.log; fi

# stack input and -b: same pixels as diffcr-decloud
run_ok stack_ref "$DECLOUD" -q --model mean --tile 64 -b 2,4,1 --stack-dates 3 stack.tif stack_ref.tif
run_ok stack_vrt "$DECLOUD" -q --model mean --tile 64 -b 2,4,1 --stack-dates 3 stack.tif --vrt stack.vrt
run_ok stack_tr gdal_translate -q stack.vrt stack_out.tif
run_ok stack_same $CHECK same stack_ref.tif stack_out.tif
# nodata (date 1 missing in a block, all dates in a corner): nodata written where diffcr-decloud does
run_ok nodata_ref "$DECLOUD" -q --tile 64 n1.tif n2.tif n3.tif nodata_ref.tif
run_ok nodata_vrt "$DECLOUD" -q --tile 64 n1.tif n2.tif n3.tif --vrt nodata.vrt
run_ok nodata_tr gdal_translate -q nodata.vrt nodata_out.tif
run_ok nodata_same $CHECK same nodata_ref.tif nodata_out.tif
gdalinfo nodata_out.tif | grep -q "NoData Value=0" && pass "nodata value carried" || fail "nodata value"
finish
