#!/bin/bash
# diffcr-decloud on bad input: exactly one line `diffcr-decloud: <what>` on stderr, a non-zero
# exit, and no output (nor temporary) left behind.
. "$(dirname "$0")/decloud_common.sh"
$DATA make "$WORK" || { echo "FAIL: data generation"; exit 1; }

# expect_error NAME PATTERN ARGS...: fails with one matching line, no out.tif / temporaries
expect_error() {
  local name="$1" pattern="$2"; shift 2
  rm -f out.tif
  "$DECLOUD" --model mean "$@" >stdout.txt 2>stderr.txt; local rc=$?
  local lines; lines=$(wc -l <stderr.txt)
  if [ $rc -eq 0 ]; then fail "$name: exit 0"; return; fi
  if [ "$lines" -ne 1 ] || ! grep -q "^diffcr-decloud: .*$pattern" stderr.txt; then
    fail "$name: stderr not one matching line:"; cat stderr.txt; return; fi
  if [ -e out.tif ] || ls -a | grep -q diffcr-tmp; then fail "$name: output left behind"; return; fi
  pass "$name: $(cat stderr.txt)"
}

expect_error missing_file "no such file" d1.tif nope.tif d3.tif out.tif
expect_error not_raster "not a raster" d1.tif notraster.tif d3.tif out.tif
expect_error too_few_dates "needs 3 dates, got 2" d1.tif d2.tif out.tif
expect_error too_many_dates "exactly 3 dates" d1.tif d2.tif d3.tif d1.tif out.tif
expect_error band_range "band 5 out of range" -b 1,2,5 d1.tif d2.tif d3.tif out.tif
expect_error band_count "selects 2 bands but the model uses 3" -b 1,2 d1.tif d2.tif d3.tif out.tif
expect_error no_overlap "does not overlap" d1.tif d2.tif far.tif out.tif
expect_error no_warp "no-warp" --no-warp d1.tif d2.tif d3_4326.tif out.tif
expect_error unknown_crs "unknown CRS" --no-warp d1.tif d2.tif nocrs.tif out.tif
expect_error unknown_crs_warp "unknown CRS" d1.tif d2.tif nocrs.tif out.tif
expect_error bad_t_srs "unknown CRS" -te 500000 4598000 503000 4600000 -tr 10 10 -t_srs NOTACRS d1.tif d2.tif d3.tif out.tif
expect_error weights "model.safetensors: cannot open" --weights model.safetensors d1.tif d2.tif d3.tif out.tif
expect_error bad_tile "multiple of 16" --tile 100 d1.tif d2.tif d3.tif out.tif
expect_error bad_format "no such GDAL raster driver" -of NOPE d1.tif d2.tif d3.tif out.tif
expect_error unknown_option "unknown option" --frobnicate d1.tif d2.tif d3.tif out.tif
expect_error stack_split "do not split into 3 dates" --stack-dates 3 d1.tif out.tif
expect_error no_default_bands "choose them with -b" five.tif d2.tif d3.tif out.tif

# devices and precisions (the real model: the test models ignore the device)
MODEL="${DIFFCR_SOURCE_DIR:-$HERE/../..}/samples/model/diffcr_default.safetensors"
expect_error bad_device "unknown device 'tpu'" --weights "$MODEL" --device tpu d1.tif d2.tif d3.tif out.tif
expect_error bad_precision "unknown precision 'fp8'" --weights "$MODEL" --precision fp8 d1.tif d2.tif d3.tif out.tif
expect_error cpu_tf32 "precision 'tf32' needs the cuda device" --weights "$MODEL" --device cpu --precision tf32 d1.tif d2.tif d3.tif out.tif
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_error no_gpu "device 'cuda' requested but .*--device cpu" --weights "$MODEL" --device cuda d1.tif d2.tif d3.tif out.tif
  expect_error no_gpu_n "device 'cuda:1' requested but" --weights "$MODEL" --device cuda:1 d1.tif d2.tif d3.tif out.tif
  # --device auto: a reduced precision is a wish for the GPU; on the CPU it runs in fp32 and says so
  small=(--weights "$MODEL" --steps 2 --tile 64 -te 500000 4599360 500640 4600000 -tr 10 10 d1.tif d2.tif d3.tif)
  if "$DECLOUD" "${small[@]}" --device auto --precision tf32 auto_tf32.tif 2>auto.txt &&
     grep -q "precision 'tf32' ignored: device auto chose the CPU" auto.txt &&
     "$DECLOUD" "${small[@]}" -q --device cpu cpu_fp32.tif && cmp -s <(gdalinfo -checksum auto_tf32.tif | grep Checksum) \
       <(gdalinfo -checksum cpu_fp32.tif | grep Checksum); then
    pass "auto + tf32 without a GPU: fp32 on the CPU, with a notice"
  else fail "auto + tf32 without a GPU"; cat auto.txt; fi
fi

# read-only target for --in-place (mode bits honoured even for root)
cp d1.tif ro.tif; chmod 444 ro.tif
expect_error in_place_ro "read-only" d1.tif d2.tif d3.tif --in-place ro.tif
[ -z "$(ls -a | grep 'ro.tif.diffcr-tmp')" ] && pass "no in-place temporary" || fail "in-place temporary left"

# a full disk: a file-size limit makes the writes fail (SIGXFSZ is ignored, write gets EFBIG)
rm -f out.tif
( ulimit -f 100; "$DECLOUD" -q --model mean d1.tif d2.tif d3.tif out.tif ) >/dev/null 2>stderr.txt; rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <stderr.txt)" -eq 1 ] && grep -q "^diffcr-decloud: .*\(write\|disk\)" stderr.txt \
   && [ ! -e out.tif ] && ! ls -a | grep -q diffcr-tmp; then
  pass "write failure: $(cat stderr.txt)"; else fail "write failure (rc=$rc)"; cat stderr.txt; ls -a; fi

# Ctrl-C (SIGINT): exit 130, no output, no temporary
rm -f out.tif
"$DECLOUD" -q --model mean --debug-delay-ms 300 --tile 32 --overlap 0 d1.tif d2.tif d3.tif out.tif 2>stderr.txt &
pid=$!; sleep 0.8; kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 130 ] && [ ! -e out.tif ] && ! ls -a | grep -q diffcr-tmp; then pass "SIGINT: exit 130, nothing left";
else fail "SIGINT (rc=$rc)"; ls -a; cat stderr.txt; fi
finish
