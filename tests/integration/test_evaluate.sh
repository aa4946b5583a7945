#!/bin/bash
# diffcr-evaluate against scikit-image: PSNR and SSIM (Gaussian and uniform windows) on
# reflectance and the paper protocol's 8-bit images (DIFFCR.md section 7) agree to 1e-5; MAE/RMSE
# to 1e-7. Also the --mask, table/HTML output, the baselines (median, least-cloudy per image and
# per block) and bad input (one line `diffcr-evaluate: <what>`, non-zero exit, no output).
# Skips (77) when the tool is not built or /usr/bin/python3 lacks numpy/GDAL/scikit-image.
set -u
EVAL="${DIFFCR_BUILD_DIR:-}/algorithms/diffcr-evaluate"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
DATA="$PY $HERE/eval_data.py"
if [ ! -x "$EVAL" ]; then echo "SKIP: $EVAL not built"; exit 77; fi
if ! $PY -c 'import numpy, osgeo.gdal' 2>/dev/null; then echo "SKIP: no numpy/osgeo.gdal"; exit 77; fi
if ! $DATA has-skimage; then echo "SKIP: scikit-image not importable by $PY"; exit 77; fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-evaluate-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
$DATA make "$WORK" || { echo "FAIL: data generation"; exit 1; }

# agree NAME CHECK-OPTIONS -- EVAL-ARGS...: run --json, then compare with skimage
agree() {
  local name="$1"; shift
  local copts=()
  while [ "$1" != "--" ]; do copts+=("$1"); shift; done
  shift
  if ! "$EVAL" --json "$@" >"$name.json" 2>"$name.err"; then
    fail "$name: diffcr-evaluate failed"; cat "$name.err"; return; fi
  local n=$#
  local res="${@:n-1:1}" ref="${@:n:1}"
  if $DATA check "$name.json" "$res" "$ref" "${copts[@]}" >"$name.cmp"; then
    pass "$name"; else fail "$name"; fi
  cat "$name.cmp"
}

agree default -- res.tif ref.tif
agree float_result -- res_f32.tif ref.tif
agree scene256 -- scene_pred.tif scene_ref.tif
agree masked --mask mask.tif -- --mask mask.tif res.tif ref.tif
agree bands_4321 --bands 4,3,2,1 -- -b 4,3,2,1 res.tif ref.tif
agree bands_bgr --bands 3,2,1 --scale 5000 -- -b 3,2,1 --scale 5000 res.tif ref.tif

# identical images: PSNR "inf" (reflectance and paper), SSIM exactly 1
"$EVAL" --json ref.tif ref.tif >same.json 2>same.err
if $PY - same.json <<'EOF'; then pass "identical: psnr inf, ssim 1"; else fail "identical"; cat same.json; fi
import json, sys
r = json.load(open(sys.argv[1]))
f = r["reflectance"]
ok = f["psnr"] == "inf" and f["mae"] == 0 and abs(f["ssim"] - 1) < 1e-12
ok &= r["paper"]["psnr"] == "inf" and abs(r["paper"]["ssim"] - 1) < 1e-12
ok &= all(b["psnr"] == "inf" for b in f["per_band"])
sys.exit(0 if ok else 1)
EOF

# 9x9: smaller than the 11x11 window -> SSIM/paper null, uniform 7x7 still computed
"$EVAL" --json tiny_b.tif tiny_a.tif >tiny.json 2>tiny.err
if $PY -c 'import json,sys; r=json.load(open("tiny.json")); f=r["reflectance"]
sys.exit(0 if f["ssim"] is None and r["paper"] is None and f["ssim_uniform"] is not None and f["mae"] > 0 else 1)'; then
  pass "9x9 image: Gaussian SSIM and paper not applicable"; else fail "9x9 image"; cat tiny.json tiny.err; fi

# table and HTML
if "$EVAL" res.tif ref.tif >table.txt 2>&1 && grep -q "SSIM (Gaussian 11x11)" table.txt \
   && grep -q "paper protocol" table.txt; then pass "text table"; else fail "text table"; cat table.txt; fi
if "$EVAL" -q --html report.html --mask mask.tif res.tif ref.tif >q.out 2>&1 && [ ! -s q.out ] \
   && grep -q "<table>" report.html && grep -q "</html>" report.html && grep -q "mask.tif" report.html; then
  pass "html (quiet: no stdout)"; else fail "html"; cat q.out; fi

# baselines
if "$EVAL" -q --baseline median const1.tif const2.tif const3.tif -o med.tif \
   && [ "$($DATA value med.tif 1 5 7)" = 2000 ] && [ "$($DATA value med.tif 3 31 39)" = 2000 ]; then
  pass "median of 1000/3000/2000 = 2000"; else fail "median"; fi
if "$EVAL" --baseline least-cloudy lc1.tif lc2.tif lc3.tif -o lc.tif >lc.out 2>&1 \
   && grep -q "date 2" lc.out && $DATA equal lc.tif lc2.tif; then
  pass "least-cloudy (image): $(cat lc.out)"; else fail "least-cloudy (image)"; cat lc.out; fi
# per 64-px block: the left block is clear in date 3, the right one in date 1
if "$EVAL" --baseline least-cloudy --block 64 lc1.tif lc2.tif lc3.tif -o lcb.tif >lcb.out 2>&1 \
   && [ "$($DATA value lcb.tif 1 5 5)" = 802 ] && [ "$($DATA value lcb.tif 1 5 100)" = 800 ]; then
  pass "least-cloudy (64-px blocks): $(cat lcb.out)"; else fail "least-cloudy (blocks)"; cat lcb.out; fi
# --mask-bright above every cloud: all dates "clear", the tie goes to date 1
if "$EVAL" --baseline least-cloudy --mask-bright 9000 lc1.tif lc2.tif lc3.tif -o lct.tif >lct.out 2>&1 \
   && grep -q "date 1" lct.out; then pass "least-cloudy tie -> first date"; else fail "least-cloudy tie"; cat lct.out; fi

# bad input: one line, non-zero exit, no output
expect_error() {
  local name="$1" pattern="$2" out="$3"; shift 3
  rm -f "$out"
  "$EVAL" "$@" >stdout.txt 2>stderr.txt; local rc=$?
  if [ $rc -eq 0 ]; then fail "$name: exit 0"; return; fi
  if [ "$(wc -l <stderr.txt)" -ne 1 ] || ! grep -q "^diffcr-evaluate: .*$pattern" stderr.txt; then
    fail "$name: stderr not one matching line:"; cat stderr.txt; return; fi
  if [ -n "$out" ] && [ -e "$out" ]; then fail "$name: output left behind"; return; fi
  if ls -a | grep -q diffcr-tmp; then fail "$name: temporary left behind"; return; fi
  pass "$name: $(cat stderr.txt)"
}
expect_error missing_file "nope.tif: no such file" bad.html --html bad.html res.tif nope.tif
expect_error not_raster "not a raster" bad.html --html bad.html notraster.tif ref.tif
expect_error size_mismatch "size mismatch" bad.html --html bad.html other_size.tif ref.tif
expect_error band_range "band 5 out of range" bad.html --html bad.html -b 1,2,5 res.tif ref.tif
expect_error bad_bands "bad value for -b" "" -b 1,x res.tif ref.tif
expect_error mask_size "mask is 90x72, the images are 50x40" bad.html --html bad.html --mask mask.tif small.tif small.tif
expect_error one_input "give RESULT and REFERENCE" "" res.tif
expect_error unknown_option "unknown option" "" --frobnicate res.tif ref.tif
expect_error bad_scale "bad value for --scale" "" --scale -3 res.tif ref.tif
expect_error baseline_no_out "needs -o" "" --baseline median const1.tif const2.tif const3.tif
expect_error baseline_kind "choose median or least-cloudy" "" --baseline mean const1.tif const2.tif -o b.tif
expect_error baseline_size "size mismatch" b.tif --baseline median const1.tif ref.tif const3.tif -o b.tif
expect_error baseline_missing "nope.tif: no such file" b.tif --baseline median const1.tif nope.tif -o b.tif
expect_error baseline_band "band 4 out of range" b.tif --baseline least-cloudy -b 1,2,4 const1.tif const2.tif -o b.tif
expect_error baseline_blue "blue" b.tif --baseline least-cloudy -b 1,2 const1.tif const2.tif -o b.tif
expect_error baseline_dir "b.tif" nodir/b.tif --baseline median const1.tif const2.tif -o nodir/b.tif

if [ "$FAILS" -ne 0 ]; then echo "$FAILS failure(s)"; exit 1; fi
echo "all passed"
