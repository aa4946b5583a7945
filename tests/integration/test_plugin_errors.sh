#!/bin/bash
# The GDAL plugin on bad input: gdal_translate fails (no crash) with one message naming the
# argument; registering the plugin prints nothing (gdalinfo --formats, Python import).
. "$(dirname "$0")/plugin_common.sh"
$DATA make "$WORK" >/dev/null || { echo "FAIL: data generation"; exit 1; }
run_ok vrt "$DECLOUD" -q --model mean --tile 64 d1.tif d2.tif d3.tif --vrt ok.vrt
printf 'not weights' >bad.safetensors

# expect_fail NAME PATTERN ARGS...: gdal_translate exits 1 (not a signal) with PATTERN in stderr
expect_fail() {
  local name="$1" pattern="$2"; shift 2
  gdal_translate -q "$@" out.tif >out.log 2>err.log; local rc=$?
  if [ $rc -ne 1 ]; then fail "$name: rc=$rc (want 1)"; cat err.log; return; fi
  if ! grep -q "ERROR.*decloud: .*$pattern" err.log; then fail "$name: message"; cat err.log; return; fi
  pass "$name: $(grep -m1 ERROR err.log)"
}
# VRTs edited the way a user might break them
sed 's/model="mean"/weights="'"${WORK//\//\\/}"'\/missing.safetensors"/' ok.vrt >noweights.vrt
sed 's/model="mean"/weights="'"${WORK//\//\\/}"'\/bad.safetensors"/' ok.vrt >badweights.vrt
sed 's/d2\.tif/gone.tif/' ok.vrt >noinput.vrt
sed 's/tile="64"/tile="17"/' ok.vrt >tile17.vrt
sed 's/band="2" inputs/band="9" inputs/' ok.vrt >band9.vrt
sed 's/ inputs="[^"]*"//' ok.vrt >noinputs.vrt
sed 's/xsrc="0"/xsrc="5"/' ok.vrt >xsrc.vrt
expect_fail missing_weights "weights=.*missing.safetensors" noweights.vrt
expect_fail bad_weights "weights=.*bad.safetensors" badweights.vrt
expect_fail missing_input "inputs: .*gone.tif: no such file" noinput.vrt
expect_fail no_inputs "inputs=" noinputs.vrt
expect_fail tile17 "tile=17" tile17.vrt
expect_fail band9 "band=9" band9.vrt
expect_fail xsrc "xsrc=5" xsrc.vrt
expect_fail config_tile "tile=100" --config DECLOUD_TILE 100 ok.vrt
expect_fail config_steps "steps=0" --config DECLOUD_STEPS 0 ok.vrt
expect_fail config_batch "batch=0" --config DECLOUD_BATCH 0 ok.vrt
expect_fail config_model "model=nope" --config DECLOUD_MODEL nope ok.vrt
expect_fail not_a_raster "inputs: .*notraster.tif: not a raster" --config DECLOUD_INPUTS "$WORK/d1.tif|$WORK/notraster.tif|$WORK/d3.tif" ok.vrt
expect_fail config_precision "precision=fp8: expected fp32, tf32, fp16 or bf16" --config DECLOUD_PRECISION fp8 ok.vrt
expect_fail config_device "unknown device .tpu." --config DECLOUD_DEVICE tpu --config DECLOUD_WEIGHTS "${DIFFCR_SOURCE_DIR}/samples/model/diffcr_default.safetensors" ok.vrt

# registering prints nothing, in GDAL tools and in Python with exceptions on
gdalinfo --formats >formats.log 2>&1
if grep -qi "error" formats.log; then fail "gdalinfo --formats prints errors"; grep -i error formats.log; else pass "gdalinfo --formats: no errors"; fi
if $PY -c 'from osgeo import gdal; gdal.UseExceptions(); gdal.AllRegister(); gdal.AllRegister(); print("ok")' >py.log 2>&1 && [ "$(cat py.log)" = ok ]; then
  pass "Python import + AllRegister: silent"; else fail "Python registration"; cat py.log; fi
# without the plugin: GDAL's own message, no crash
GDAL_DRIVER_PATH=/nonexistent gdal_translate -q ok.vrt out.tif 2>noplugin.log; rc=$?
[ $rc -eq 1 ] && grep -q "not registered" noplugin.log && pass "without the plugin: $(head -1 noplugin.log)" || { fail "without the plugin (rc=$rc)"; cat noplugin.log; }
finish
