#!/bin/bash
# diffcr-decloud memory bound: max RSS (GNU time -v) stays under 1 GiB for a raster 20000 pixels
# wide. Memory is bounded by width x tile height, not by the height, so the default run uses
# 20000 x 1600 (fast); DIFFCR_TEST_BIG=1 runs the full 20000 x 20000. Inputs are constant
# DEFLATE-tiled GTiffs (cheap to make); the check also verifies the constant result.
. "$(dirname "$0")/decloud_common.sh"
TIME=/usr/bin/time
if [ ! -x $TIME ]; then echo "SKIP: no /usr/bin/time"; exit 77; fi
W=20000; H=1600
[ "${DIFFCR_TEST_BIG:-0}" = 1 ] && H=20000
$DATA const big.tif $W $H 1000 2000 3000 || { echo "FAIL: data generation"; exit 1; }
start=$(date +%s.%N)
$TIME -v "$DECLOUD" -q --model mean -co COMPRESS=DEFLATE -co TILED=YES big.tif big.tif big.tif out.tif 2>time.txt
rc=$?
end=$(date +%s.%N)
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' time.txt)
secs=$(echo "$end - $start" | bc -l)
echo "size ${W}x${H}: max RSS ${rss} KB, ${secs} s, $(echo "$W * $H / $secs / 1000000" | bc -l | cut -c1-5) Mpixel/s"
[ $rc -eq 0 ] && pass "run" || { fail "run (rc=$rc)"; cat time.txt; }
[ -n "$rss" ] && [ "$rss" -lt 1048576 ] && pass "max RSS ${rss} KB < 1 GiB" || fail "max RSS ${rss} KB"
# every pixel = the constant (mean of three equal dates)
stats=$(gdalinfo -stats out.tif 2>/dev/null | grep -E "STATISTICS_(MINIMUM|MAXIMUM)" | sort -u | tr '\n' ' ')
echo "$stats"
for v in 1000 2000 3000; do
  echo "$stats" | grep -q "MINIMUM=$v" && echo "$stats" | grep -q "MAXIMUM=$v" || { fail "band value $v"; }
done
[ "$FAILS" -eq 0 ] && pass "constant output"
finish
