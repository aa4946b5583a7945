#!/bin/bash
# diffcr-decloud --in-place: kill -9 in the middle leaves the target readable and unchanged; a
# rerun of the same command resumes from DIFFCR_DONE_ROWS and gives the same pixels as an
# uninterrupted run; a leftover from other arguments is removed and redone.
. "$(dirname "$0")/decloud_common.sh"
$DATA big "$WORK" 1200 1200 || { echo "FAIL: data generation"; exit 1; }
ARGS=(--tile 64 --overlap 16 --model blur big1.tif big2.tif big3.tif)

# the expected result, computed without --in-place
run_ok reference "$DECLOUD" -q "${ARGS[@]}" expected.tif
cp big1.tif target.tif
before=$(md5sum <target.tif)

# kill -9 mid-run (about 25 tile rows at 100 ms each)
"$DECLOUD" -q --debug-delay-ms 100 "${ARGS[@]}" --in-place target.tif 2>kill.txt &
pid=$!; sleep 1.2; kill -9 $pid; wait $pid 2>/dev/null
[ "$(md5sum <target.tif)" = "$before" ] && pass "target unchanged after kill -9" || fail "target changed after kill -9"
gdalinfo target.tif >/dev/null 2>&1 && pass "target readable after kill -9" || fail "target unreadable"
if [ -e target.tif.diffcr-tmp ]; then
  rows=$(gdalinfo target.tif.diffcr-tmp 2>/dev/null | sed -n 's/.*DIFFCR_DONE_ROWS=//p')
  echo "leftover records DIFFCR_DONE_ROWS=${rows:-none}"
else fail "no leftover to resume"; fi

# rerun: resumes and completes
if "$DECLOUD" "${ARGS[@]}" --in-place target.tif 2>resume.txt; then pass "rerun completes"; else fail "rerun"; cat resume.txt; fi
grep -q "resuming the interrupted update from row" resume.txt && pass "rerun resumed: $(grep -o 'from row [0-9]* of [0-9]*' resume.txt)" \
  || { fail "rerun did not resume"; cat resume.txt; }
[ ! -e target.tif.diffcr-tmp ] && pass "leftover gone" || fail "leftover still there"
run_ok resumed_same $DATA same target.tif expected.tif
gdalinfo target.tif | grep -q DIFFCR_DONE_ROWS && fail "resume marks left in the result" || pass "no resume marks in the result"

# a leftover from other arguments is not resumed
cp big1.tif target2.tif
"$DECLOUD" -q --debug-delay-ms 100 "${ARGS[@]}" --in-place target2.tif 2>/dev/null &
pid=$!; sleep 1.2; kill -9 $pid; wait $pid 2>/dev/null
if "$DECLOUD" --tile 64 --overlap 16 --model mean big1.tif big2.tif big3.tif --in-place target2.tif 2>other.txt \
   && grep -q "removed a stale leftover" other.txt; then pass "stale leftover removed"; else fail "stale leftover"; cat other.txt; fi
"$DECLOUD" -q --tile 64 --overlap 16 --model mean big1.tif big2.tif big3.tif expected2.tif
run_ok stale_same $DATA same target2.tif expected2.tif
finish
