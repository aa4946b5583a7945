#!/bin/bash
# diffcr-decloud with the `mean` test model on generated 300x200 UTM 33N rasters: grid kept,
# output = mean of the dates (checked in numpy), warped date, windows without seams, nodata,
# Sentinel-2 offsets, data types, stack input, COG, padding of small rasters, uncertainty.
. "$(dirname "$0")/decloud_common.sh"
$DATA make "$WORK" || { echo "FAIL: data generation"; exit 1; }

# same-grid dates: exact mean, progress on stderr
if $DECLOUD --model mean d1.tif d2.tif d3.tif out.tif 2>prog.txt && grep -q "100 - done" prog.txt; then
  pass "runs with GDAL progress"; else fail "run or progress"; cat prog.txt; fi
run_ok mean_exact $DATA check-mean out.tif d1.tif d2.tif d3.tif --tol 1
gdalinfo out.tif | grep -q "DIFFCR_HISTORY=.*model: mean" && pass "history metadata" || fail "history metadata"
gdalinfo out.tif | grep -q "Description = B1" && pass "band descriptions" || fail "band descriptions"

# -q prints nothing
$DECLOUD -q --model mean d1.tif d2.tif d3.tif q.tif 2>q.txt; [ ! -s q.txt ] && pass "-q is silent" || fail "-q is silent"

# date 3 in EPSG:4326: warped onto the UTM grid
run_ok warp_run $DECLOUD -q --model mean d1.tif d2.tif d3_4326.tif outw.tif
run_ok warp_mean $DATA check-mean outw.tif d1.tif d2.tif d3_4326.tif --warped 3 --tol 1 --frac 0.99
# --like and -te/-tr/-t_srs give the same grid as the first date here
run_ok like $DECLOUD -q --model mean --like d1.tif d3_4326.tif d1.tif d2.tif outl.tif
run_ok te $DECLOUD -q --model mean -te 500000 4598000 503000 4600000 -tr 10 10 -t_srs EPSG:32633 d1.tif d2.tif d3.tif outte.tif
run_ok te_same $DATA same outte.tif out.tif

# windows: the blur model has spatial context, so any dependence of tiles on the window shows
run_ok blur_full $DECLOUD -q --model blur --tile 64 --overlap 16 d1.tif d2.tif d3.tif blur_full.tif
run_ok blur_win $DECLOUD -q --model blur --tile 64 --overlap 16 --max-rows 37 --max-cols 53 d1.tif d2.tif d3.tif blur_win.tif
run_ok blur_same $DATA same blur_full.tif blur_win.tif
run_ok blur_win1 $DECLOUD -q --model blur --tile 64 --overlap 16 --max-rows 1 d1.tif d2.tif d3.tif blur_win1.tif
run_ok blur_same1 $DATA same blur_full.tif blur_win1.tif
run_ok tiny_tile $DECLOUD -q --model mean --tile 16 --overlap 4 d1.tif d2.tif d3.tif tiny.tif
run_ok tiny_same $DATA same out.tif tiny.tif

# nodata: date 1 missing in a block (filled from the others), all dates missing in a corner
run_ok nodata_run $DECLOUD -q --model mean n1.tif n2.tif n3.tif outn.tif
run_ok nodata_mean $DATA check-mean outn.tif n1.tif n2.tif n3.tif --nodata 0 --tol 1
run_ok dstnodata $DECLOUD -q --model mean --dstnodata 7 n1.tif n2.tif n3.tif outn7.tif
gdalinfo outn7.tif | grep -q "NoData Value=7" && pass "--dstnodata" || fail "--dstnodata"
run_ok srcnodata $DECLOUD -q --model mean --srcnodata 0 n1.tif n2.tif n3.tif outns.tif
run_ok srcnodata_same $DATA same outn.tif outns.tif

# Sentinel-2 offset on date 1 (BOA_ADD_OFFSET=-1000): model sees DN-1000, output back in date 1's DN
run_ok offset_run $DECLOUD -q --model mean off1.tif d2.tif d3.tif outo.tif
run_ok offset_mean $DATA check-mean outo.tif off1.tif d2.tif d3.tif --offsets -1000,0,0 --tol 1
gdalinfo outo.tif | grep -q "BOA_ADD_OFFSET=-1000" && pass "offset recorded" || fail "offset recorded"

# 13-band Sentinel-2 default bands 4,3,2; -b on 4-band dates; a stack
run_ok s2_run $DECLOUD -q --model mean s2_1.tif s2_2.tif s2_3.tif outs2.tif
run_ok s2_mean $DATA check-mean outs2.tif s2_1.tif s2_2.tif s2_3.tif --bands 4,3,2 --tol 1
run_ok b_run $DECLOUD -q --model mean -b 2,4,1 d1.tif d2.tif d3.tif outb.tif
run_ok b_mean $DATA check-mean outb.tif d1.tif d2.tif d3.tif --bands 2,4,1 --tol 1
run_ok stack_run $DECLOUD -q --model mean --stack-dates 3 stack.tif outst.tif
run_ok stack_same $DATA same out.tif outst.tif

# data types
for t in byte int16 float32; do
  run_ok ${t}_run $DECLOUD -q --model mean ${t}_1.tif ${t}_2.tif ${t}_3.tif out_$t.tif
  tol=1; [ $t = float32 ] && tol=0.002  # float32 near the model's -1: 5000 * 2^-23 steps
  run_ok ${t}_mean $DATA check-mean out_$t.tif ${t}_1.tif ${t}_2.tif ${t}_3.tif --tol $tol
done

# COG (no Create: temp GTiff + CreateCopy) and -co
run_ok cog_run $DECLOUD -q --model mean -of COG -co COMPRESS=DEFLATE d1.tif d2.tif d3.tif out_cog.tif
gdalinfo out_cog.tif | grep -q "LAYOUT=COG" && pass "COG layout" || fail "COG layout"
run_ok cog_same $DATA same out.tif out_cog.tif
run_ok envi_run $DECLOUD -q --model mean -of ENVI d1.tif d2.tif d3.tif out.envi   # side files (.hdr) renamed too
run_ok envi_same $DATA same out.tif out.envi
run_ok co_run $DECLOUD -q --model mean -co TILED=YES -co COMPRESS=LZW d1.tif d2.tif d3.tif out_lzw.tif
gdalinfo out_lzw.tif | grep -q "COMPRESSION=LZW" && pass "-co passed" || fail "-co passed"

# smaller than a tile: padded and cropped
run_ok small_run $DECLOUD -q --model mean small_1.tif small_2.tif small_3.tif out_small.tif
run_ok small_mean $DATA check-mean out_small.tif small_1.tif small_2.tif small_3.tif --tol 1

# --samples / --uncertainty: the mean model is deterministic, so std = 0
run_ok unc_run $DECLOUD -q --model mean --samples 2 --uncertainty unc.tif d1.tif d2.tif d3.tif out_s2.tif
run_ok unc_same $DATA same out.tif out_s2.tif
gdalinfo -stats unc.tif | grep -q "Type=Float32" && gdalinfo -stats unc.tif | grep -q "STATISTICS_MAXIMUM=0" \
  && pass "uncertainty Float32 zeros" || fail "uncertainty"

# no temporaries left in the folder
ls -a | grep -q "diffcr-tmp" && fail "temporary files left: $(ls -a | grep diffcr-tmp)" || pass "no temporaries left"
finish
