#!/bin/bash
# The device-memory branches of the programs, without a GPU: tests/emulated's module is the
# reference maths behind a "cuda" device whose memory the host cannot touch (its pointers fault
# when dereferenced, and a host pointer passed as device memory aborts), loaded through
# DIFFCR_CUDA_MODULE. Every result must equal --device ref bit for bit, since the arithmetic is the
# same and only the data flow differs (conditions and noise uploaded, the sampler on the device,
# results downloaded; the trainer's optimiser state on the device, pulled for checkpoints and
# pushed on resume). What this cannot check: the CUDA kernels themselves (tests/gpu).
set -u
BUILD=${DIFFCR_BUILD_DIR:?}
SRC=${DIFFCR_SOURCE_DIR:?}
DEC=$BUILD/algorithms/diffcr-decloud
TRAIN=$BUILD/algorithms/diffcr-train
NET=$BUILD/core/diffcr-net
EMU=$BUILD/tests/libdiffcr_emulated_device.so
PY=/usr/bin/python3
HERE=$SRC/tests/integration
[ -f "$EMU" ] || { echo "SKIP: $EMU not built"; exit 77; }
[ -x "$DEC" ] && [ -x "$TRAIN" ] || { echo "SKIP: raster tools not built (no GDAL)"; exit 77; }
$PY -c 'import numpy; from osgeo import gdal' 2>/dev/null || { echo "SKIP: /usr/bin/python3 lacks numpy or GDAL"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
emu() { DIFFCR_CUDA_MODULE="$EMU" "$@"; }
cd "$T" || exit 1

# the loader takes the module and names it
emu "$NET" init --config "$SRC/configs/tiny_test.json" --output w.safetensors --seed 3 >/dev/null || bad "init"

# 1. decloud: --device cuda (emulated) == --device ref, also batched and with two samples
$PY "$HERE/decloud_data.py" waves . 120 80 3 700 8 6 || { echo "FAIL: data"; exit 1; }
common=(d0.tif d1.tif d2.tif --weights "$SRC/samples/model/diffcr_default.safetensors" --steps 5 --tile 64 --threads 1 -q)
"$DEC" "${common[@]}" --device ref ref.tif || bad "decloud ref"
emu "$DEC" "${common[@]}" --device cuda dev.tif || bad "decloud emulated device"
emu "$DEC" "${common[@]}" --device cuda --batch 3 devb.tif || bad "decloud emulated device, batch 3"
"$DEC" "${common[@]}" --device ref --samples 2 --uncertainty refu.tif ref2.tif || bad "decloud ref, 2 samples"
emu "$DEC" "${common[@]}" --device cuda --samples 2 --uncertainty devu.tif dev2.tif || bad "decloud emulated, 2 samples"
emu "$DEC" "${common[@]}" --device cuda --sampler ddim --steps 4 devddim.tif && "$DEC" "${common[@]}" --device ref --sampler ddim --steps 4 refddim.tif \
  || bad "ddim runs"
$PY - <<'PYEOF' && ok "decloud on the device path == ref (single, batch 3, 2 samples + uncertainty, ddim)" || bad "decloud device path differs"
from osgeo import gdal
import numpy as np
r = lambda p: gdal.Open(p).ReadAsArray()
for a, b in [("ref.tif", "dev.tif"), ("ref.tif", "devb.tif"), ("ref2.tif", "dev2.tif"), ("refu.tif", "devu.tif"),
             ("refddim.tif", "devddim.tif")]:
    assert np.array_equal(r(a), r(b)), f"{a} != {b}"
PYEOF

# 2. diffcr-net sample: same noise, same result
$PY - "$T" "$SRC/tests/reference" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
rng = np.random.default_rng(1)
st.save(sys.argv[1] + "/cond.safetensors", {"cond": rng.uniform(-1, 1, (2, 9, 24, 40)).astype(np.float32)})
PYEOF
"$NET" sample --weights w.safetensors --cond cond.safetensors --output s_ref.safetensors --steps 6 --device ref --threads 1 >/dev/null &&
  emu "$NET" sample --weights w.safetensors --cond cond.safetensors --output s_dev.safetensors --steps 6 --device cuda --threads 1 >/dev/null &&
  cmp -s s_ref.safetensors s_dev.safetensors && ok "diffcr-net sample on the device path == ref" || bad "diffcr-net sample differs"

# 2b. diffcr-net forward, and forward + backward (every parameter gradient), staged through the device
$PY - "$T" "$SRC/tests/reference" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
rng = np.random.default_rng(2)
st.save(sys.argv[1] + "/in.safetensors", {"x": rng.uniform(-1, 1, (2, 12, 24, 40)).astype(np.float32),
                                          "gamma": rng.uniform(0.1, 0.9, (2,)).astype(np.float32)})
st.save(sys.argv[1] + "/dout.safetensors", {"dout": rng.normal(0, 1, (2, 3, 24, 40)).astype(np.float32)})
PYEOF
for mode in fwd grad; do
  extra=(); [ $mode = grad ] && extra=(--grad dout.safetensors)
  "$NET" --weights w.safetensors --input in.safetensors "${extra[@]}" --output n_ref.safetensors --device ref --threads 1 >/dev/null &&
    emu "$NET" --weights w.safetensors --input in.safetensors "${extra[@]}" --output n_dev.safetensors --device cuda --threads 1 >/dev/null &&
    cmp -s n_ref.safetensors n_dev.safetensors && ok "diffcr-net $mode on the device path == ref" || bad "diffcr-net $mode differs"
done

# 3. training: 12 steps on the device path == ref (losses, checkpoint tensors), and a resume
$PY "$HERE/train_make_data.py" "$T" --size 32 --train 8 --val 2 >/dev/null || { echo "FAIL data"; exit 1; }
$PY "$HERE/train_cfg.py" "$SRC/configs/train_tiny.json" "$T/tiny.json" 'train.val_iter=0' >/dev/null
losses() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if "loss" in d: print(d["step"], repr(d["loss"]), repr(d.get("grad_norm")))' "$1"; }
"$TRAIN" -c tiny.json --out tr_ref --device ref --threads 1 --iters 12 --no-val 2>tr_ref.log || { bad "train ref"; cat tr_ref.log; }
emu "$TRAIN" -c tiny.json --out tr_dev --device cuda --threads 1 --iters 12 --no-val 2>tr_dev.log || { bad "train emulated"; cat tr_dev.log; }
emu "$TRAIN" -c tiny.json --out tr_res --device cuda --threads 1 --iters 5 --no-val 2>tr_res.log &&
  emu "$TRAIN" --resume tr_res/checkpoint.safetensors -c tiny.json --out tr_res --device cuda --threads 1 --iters 12 --no-val 2>>tr_res.log ||
  { bad "train emulated, resume"; cat tr_res.log; }
if cmp -s <(losses tr_ref/metrics.jsonl) <(losses tr_dev/metrics.jsonl) && cmp -s <(losses tr_ref/metrics.jsonl) <(losses tr_res/metrics.jsonl); then
  ok "training on the device path == ref, and resumed == uninterrupted ($(losses tr_dev/metrics.jsonl | wc -l) steps)"
else bad "training losses differ"; diff <(losses tr_ref/metrics.jsonl) <(losses tr_dev/metrics.jsonl) | head -5; fi
$PY - "$SRC/tests/reference" <<'PYEOF' && ok "checkpoint tensors (weights, Adam m/v, EMA) == ref" || bad "checkpoint tensors differ"
import sys, numpy as np
sys.path.insert(0, sys.argv[1]); import st
a, _ = st.load("tr_ref/checkpoint.safetensors"); b, _ = st.load("tr_dev/checkpoint.safetensors"); c, _ = st.load("tr_res/checkpoint.safetensors")
assert a.keys() == b.keys() == c.keys() and len(a) > 300, len(a)
for k in a:
    assert np.array_equal(a[k], b[k]), k
    assert np.array_equal(a[k], c[k]), "resumed: " + k
PYEOF

[ $fail -eq 0 ] && echo "test_emulated_device: all passed" || echo "test_emulated_device: FAILED"
exit $fail
