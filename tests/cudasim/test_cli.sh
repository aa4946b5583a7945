#!/bin/bash
# The programs on the CUDA backend's own kernels (the cudasim module, tests/cudasim/README.md):
# diffcr-decloud --device cuda against --device ref, every precision accepted end to end, and what
# a user sees when the GPU runs out of memory (a one-line error, exit 1, no output file) or is too
# old for bf16, and the GDAL plugin on the GPU path. Usage: test_cli.sh BUILD_DIR SOURCE_DIR MODULE
set -u
BUILD=$(cd "$1" && pwd) SRC=$(cd "$2" && pwd) MODULE=$(realpath "$3")
DEC=$BUILD/algorithms/diffcr-decloud
PY=/usr/bin/python3
[ -x "$DEC" ] || { echo "SKIP: diffcr-decloud not built (no GDAL)"; exit 77; }
$PY -c 'import numpy; from osgeo import gdal' 2>/dev/null || { echo "SKIP: /usr/bin/python3 lacks numpy or GDAL"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
export OMP_NUM_THREADS=1 DIFFCR_CUDA_MODULE=$MODULE
cd "$T" || exit 1
$PY "$SRC/tests/integration/decloud_data.py" waves . 72 48 3 700 8 6 >/dev/null || { echo "FAIL: data"; exit 1; }
common=(d0.tif d1.tif d2.tif --weights "$SRC/samples/model/diffcr_default.safetensors" --steps 3 --tile 48 -q)

# 1. the CUDA kernels decloud like the reference backend (fp32: rounding only)
"$DEC" "${common[@]}" --device ref ref.tif || bad "decloud ref"
for p in fp32 tf32 fp16 bf16; do
  "$DEC" "${common[@]}" --device cuda --precision "$p" --batch 2 "$p.tif" 2>"$p.log" || { bad "decloud cuda $p"; cat "$p.log"; }
done
$PY - <<'PYEOF' || bad "cuda results"
from osgeo import gdal
import numpy as np
r = lambda p: gdal.Open(p).ReadAsArray().astype(np.float64)
ref = r("ref.tif")
for p, tol in (("fp32", 1), ("tf32", 40), ("fp16", 40), ("bf16", 400)):
    d = np.abs(r(p + ".tif") - ref)
    print("     %s: max |cuda - ref| %g DN, mean %.2f DN (tolerance %g)" % (p, d.max(), d.mean(), tol))
    assert d.max() <= tol, p
PYEOF
[ "$fail" = 0 ] && ok "decloud on the CUDA kernels: fp32 equals ref to 1 DN, tf32/fp16/bf16 close"

# 2. out of GPU memory: one line naming it, exit 1, no output (1 MB: not even the weights; 8 MB: the
#    weights but not a tile's workspace)
for mem in 1000000 8000000; do
  if DIFFCR_CUDASIM_MEMORY=$mem "$DEC" "${common[@]}" --device cuda oom.tif 2>oom.log; then
    bad "decloud with $mem bytes of GPU memory succeeded"
  elif [ "$(wc -l <oom.log)" -eq 1 ] && grep -q "^diffcr-decloud: out of GPU memory" oom.log && [ ! -e oom.tif ]; then
    ok "out of GPU memory ($mem bytes): $(cat oom.log)"
  else bad "out of GPU memory ($mem bytes)"; cat oom.log; fi
done

# 3. bf16 on a pre-Ampere GPU: refused before any work, with the reason
if DIFFCR_CUDASIM_SM=75 "$DEC" "${common[@]}" --device cuda --precision bf16 old.tif 2>old.log; then
  bad "bf16 on sm_75 accepted"
elif grep -q "needs an Ampere or newer GPU" old.log && [ ! -e old.tif ]; then
  ok "bf16 on sm_75: $(cat old.log)"
else bad "bf16 on sm_75"; cat old.log; fi

# 4. the GDAL plugin on the GPU path: gdal_translate of a device=cuda VRT gives diffcr-decloud's
#    pixels exactly, exits cleanly (its exit handler must not call into a CUDA runtime that is
#    already shut down), and 4 Python threads reading one VRT share the GPU model safely
if [ -e "$BUILD/plugin/gdal_decloud.so" ]; then
  export GDAL_DRIVER_PATH=$BUILD/plugin
  if ! "$DEC" "${common[@]}" --device cuda cuda1.tif || ! "$DEC" "${common[@]}" --device cuda --vrt cuda.vrt; then
    bad "decloud for the plugin"
  fi
  if gdal_translate -q cuda.vrt plugin.tif 2>plugin.log && $PY "$SRC/tests/integration/plugin_check.py" same cuda1.tif plugin.tif >>plugin.log 2>&1; then
    ok "plugin on the GPU path: same pixels as diffcr-decloud --device cuda, clean exit"
  else bad "plugin on the GPU path"; cat plugin.log; fi
  if $PY "$SRC/tests/integration/plugin_check.py" threads cuda.vrt cuda1.tif >threads.log 2>&1; then
    ok "plugin on the GPU path: $(grep '^ok' threads.log)"
  else bad "plugin threads on the GPU path"; cat threads.log; fi
else
  echo "skip plugin checks: gdal_decloud.so not built"
fi

[ "$fail" = 0 ] && echo "test_cli: passed" || echo "test_cli: FAILED"
exit $fail
