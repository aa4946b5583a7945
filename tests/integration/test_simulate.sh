#!/bin/bash
# diffcr-simulate end to end: a generated 256x256 landscape (georeferenced, UInt16 R,G,B,NIR),
# three simulated dates; outputs keep the input's grid, CRS and type; the same seed gives the same
# pixels (gdalinfo -checksum, not file bytes: GTiff headers may carry anything), another seed
# does not; masks agree with brightness; bad input gives one line `diffcr-simulate: ...`, a
# non-zero exit and no output; samples/make_sample.sh works; and the simulator runs on a 256x256
# window of the real Sentinel-2 Berlin scene (B04, B03, B02, B08 stacked with gdalbuildvrt
# -separate, read in place from ../shared/data, never copied).
# Exit 77 (skipped) when the tool is not built, /usr/bin/python3 lacks numpy/osgeo.gdal, or -
# after every other check passed - the Berlin scene is absent.
set -u
SIM="${DIFFCR_BUILD_DIR:-}/algorithms/diffcr-simulate"
SRC="${DIFFCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
CHECK="$PY $HERE/sim_check.py"
if [ ! -x "$SIM" ]; then echo "SKIP: $SIM not built"; exit 77; fi
if ! $PY -c 'import numpy, osgeo.gdal' 2>/dev/null; then echo "SKIP: no numpy/osgeo.gdal"; exit 77; fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-simulate-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
run_ok() { local name="$1"; shift; if "$@" >"$name.log" 2>&1; then pass "$name"; else fail "$name (rc=$?)"; cat "$name.log"; fi; }
# pixel checksums of every band of a raster, one line
sums() { gdalinfo -checksum "$1" | grep Checksum= | tr -d ' ' | tr '\n' ' '; }

# --- a generated landscape, simulated twice with one seed and once with another ---
run_ok landscape "$SIM" landscape --size 256x256 --seed 5 -o land.tif
run_ok simulate "$SIM" -q --seed 3 --cover 0.2,0.5 --out-prefix a land.tif
run_ok simulate_again "$SIM" -q --seed 3 --cover 0.2,0.5 --out-prefix b land.tif
run_ok simulate_other_seed "$SIM" -q --seed 4 --cover 0.2,0.5 --out-prefix c land.tif
for f in a_date1.tif a_date2.tif a_date3.tif a_mask1.tif a_mask2.tif a_mask3.tif a_clear.tif; do
  [ -s "$f" ] || fail "missing output $f"
done
if $CHECK land.tif a 3 0.2 0.5 >check.log 2>&1; then pass "georeference, types, masks: $(tail -1 check.log)"
else fail "output checks"; cat check.log; fi
same=1
for k in 1 2 3; do
  for w in date mask; do
    [ "$(sums a_$w$k.tif)" = "$(sums b_$w$k.tif)" ] || { same=0; fail "rerun: a_$w$k.tif != b_$w$k.tif"; }
  done
done
[ $same -eq 1 ] && pass "same seed, same checksums"
[ "$(sums a_date1.tif)" != "$(sums c_date1.tif)" ] && pass "another seed, other pixels" || fail "seed 4 = seed 3"
[ "$(sums a_date1.tif)" != "$(sums a_date2.tif)" ] && pass "dates differ" || fail "date 1 = date 2"
gdalinfo a_mask1.tif | grep -q "DIFFCR_CLOUD_FRACTION=" && pass "mask records its cloud fraction" \
  || fail "no DIFFCR_CLOUD_FRACTION on a_mask1.tif"

# --- selected bands and Byte data keep their type; a prefix equal to the input is refused ---
run_ok byte_input gdal_translate -q -ot Byte -scale 0 4000 0 250 land.tif land8.tif
run_ok simulate_byte "$SIM" -q -b 3,2,1 --dates 2 --out-prefix e land8.tif
if $PY - <<'PYEOF' >byte.log 2>&1; then pass "-b 3,2,1 on Byte: 3 Byte bands, clear target = bands 3,2,1"; else fail "Byte/-b outputs"; cat byte.log; fi
from osgeo import gdal
import numpy as np
d = gdal.Open("e_date1.tif"); c = gdal.Open("e_clear.tif"); i = gdal.Open("land8.tif")
assert d.RasterCount == 3 and d.GetRasterBand(1).DataType == gdal.GDT_Byte, "date type/bands"
assert np.array_equal(c.ReadAsArray(), i.ReadAsArray()[[2, 1, 0]]), "clear target"
assert d.ReadAsArray().max() <= 255
PYEOF

# --- bad input: one line, non-zero exit, nothing written ---
expect_error() {
  local name="$1" pattern="$2"; shift 2
  rm -f err_*
  "$SIM" "$@" >stdout.txt 2>stderr.txt; local rc=$?
  local lines; lines=$(wc -l <stderr.txt)
  if [ $rc -eq 0 ]; then fail "$name: exit 0"; return; fi
  if [ "$lines" -ne 1 ] || ! grep -q "^diffcr-simulate: .*$pattern" stderr.txt; then
    fail "$name: stderr not one matching line:"; cat stderr.txt; return; fi
  if ls err_* >/dev/null 2>&1; then fail "$name: output left behind: $(ls err_*)"; return; fi
  pass "$name: $(cat stderr.txt)"
}
expect_error missing_file "no such file" --out-prefix err nope.tif
echo "not a raster" > notraster.txt
expect_error not_raster "not a raster" --out-prefix err notraster.txt
expect_error band_range "band 5 out of range" -b 1,5 --out-prefix err land.tif
expect_error band_zero "not a band number" -b 0 --out-prefix err land.tif
expect_error cover_order "cover" --cover 0.7,0.2 --out-prefix err land.tif
expect_error cover_range "cover" --cover 0.1,1.5 --out-prefix err land.tif
expect_error cover_syntax "cover" --cover abc --out-prefix err land.tif
expect_error dates "dates" --dates 0 --out-prefix err land.tif
expect_error elevation "elevation" --sun-elevation 0 --out-prefix err land.tif
expect_error kinds "2 kinds for 4 bands" --band-kinds red,nir --out-prefix err land.tif
expect_error format "no such GDAL raster driver" -of NOPE --out-prefix err land.tif
expect_error unknown_option "unknown option" --frobnicate --out-prefix err land.tif
cp land.tif land_as_date1.tif
expect_error overwrite_input "overwrite the input" --out-prefix land_as land_as_date1.tif
expect_error landscape_size "size" landscape --size 0x5 -o err_land.tif

# --- the sample scene script ---
if SIZE=128x128 DIFFCR_BUILD_DIR="$DIFFCR_BUILD_DIR" bash "$SRC/samples/make_sample.sh" sample >sample.log 2>&1 &&
   $CHECK sample/scene_clear.tif sample/scene 3 0.1 0.6 --no-clear >>sample.log 2>&1 &&
   [ -s sample/preview_date1.png ] && [ -s sample/preview_clear.png ]; then
  pass "samples/make_sample.sh"
else fail "samples/make_sample.sh"; cat sample.log; fi

# --- the real Sentinel-2 Berlin scene (read in place) ---
BERLIN="$SRC/../shared/data/s2_berlin_l1c/IMG_DATA"
if [ -d "$BERLIN" ]; then
  jp2() { echo "$BERLIN/T33UUU_20170216T102101_$1.jp2"; }
  if gdalbuildvrt -q -separate berlin.vrt "$(jp2 B04)" "$(jp2 B03)" "$(jp2 B02)" "$(jp2 B08)" &&
     gdal_translate -q -of VRT -srcwin 640 256 256 256 berlin.vrt berlin_win.vrt &&
     "$SIM" -q --seed 2 --out-prefix berlin berlin_win.vrt >berlin.log 2>&1 &&
     $CHECK berlin_win.vrt berlin 3 0.1 0.6 >>berlin.log 2>&1; then
    pass "Berlin B04,B03,B02,B08 256x256 window: $(tail -1 berlin.log)"
  else fail "Berlin scene"; cat berlin.log; fi
fi

if [ "$FAILS" -ne 0 ]; then echo "$FAILS failure(s)"; exit 1; fi
if [ ! -d "$BERLIN" ]; then echo "SKIP: $BERLIN absent (every other check passed)"; exit 77; fi
echo "all passed"
exit 0
