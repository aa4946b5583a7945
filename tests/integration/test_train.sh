#!/bin/bash
# diffcr-train end to end on a tiny fixed dataset (width-8 UNet, 32x32 tiles; generated GeoTIFFs):
# the loss falls; one sample is overfitted; a resumed run repeats an uninterrupted one bit for
# bit; SIGINT checkpoints and exits 130; the model file samples with diffcr-net; folder and
# simulated datasets; eval; bad inputs (missing folder, bad images, --strict, full disk, unknown
# keys, a NaN in a sample); divergence (non-finite steps skipped, then a clear stop with the
# checkpoint intact); the TensorBoard file's records and CRCs.
# Needs /usr/bin/python3 with numpy and osgeo.gdal (for the data); exits 77 without them.
BUILD=${DIFFCR_BUILD_DIR:?}
SRC=${DIFFCR_SOURCE_DIR:?}
TRAIN=$BUILD/algorithms/diffcr-train
NET=$BUILD/core/diffcr-net
PY=/usr/bin/python3
HERE=$SRC/tests/integration
[ -x "$TRAIN" ] || { echo "SKIP: no diffcr-train in $BUILD"; exit 77; }
$PY -c 'import numpy; from osgeo import gdal' 2>/dev/null || { echo "SKIP: /usr/bin/python3 lacks numpy or GDAL"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
# One compute thread: CI shares 2 cores with other jobs and OpenMP teams collapse when oversubscribed.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
ARGS="--threads 1 --device cpu"

$PY "$HERE/train_make_data.py" "$T" --size 32 --train 16 --val 4 || { echo "FAIL data"; exit 1; }
cfg() { $PY "$HERE/train_cfg.py" "$SRC/configs/train_tiny.json" "$T/$1" "${@:2}"; }
cfg tiny.json
# per-step losses of a metrics.jsonl, one "step loss" line each
losses() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if "loss" in d: print(d["step"], repr(d["loss"]))' "$1"; }

# 1. a full run: the loss falls, every output is there
t0=$(date +%s.%N)
if $TRAIN -c "$T/tiny.json" --out "$T/a" $ARGS 2>"$T/a.log"; then ok "train 150 steps"; else bad "train 150 steps"; cat "$T/a.log"; fi
t1=$(date +%s.%N)
$PY - "$T/a/metrics.jsonl" "$t0" "$t1" <<'PYEOF' && ok "loss falls (mean of last 10 < 20% of first 10)" || bad "loss falls"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
loss = [r["loss"] for r in rows if "loss" in r]
val = [r["val"] for r in rows if "val" in r]
a, b = sum(loss[:10]) / 10, sum(loss[-10:]) / 10
print("  steps %d, loss first10 %.4g last10 %.4g (%.2f%%), %.1f s wall incl. validation"
      % (len(loss), a, b, 100 * b / a, float(sys.argv[3]) - float(sys.argv[2])))
print("  val:", val[-1] if val else None)
assert len(loss) == 150 and b < 0.2 * a and val and val[-1]["samples"] == 2
PYEOF
for f in checkpoint.safetensors model.safetensors metrics.jsonl loss.png previews/step00000150_0.png; do
  [ -s "$T/a/$f" ] && ok "wrote $f" || bad "wrote $f"
done
gdalinfo "$T/a/loss.png" 2>/dev/null | grep -q "Driver: PNG" && ok "loss.png is a PNG" || bad "loss.png is a PNG"
$PY - "$T/a/model.safetensors" "$SRC/tests/reference" <<'PYEOF' && ok "model file metadata" || bad "model file metadata"
import json, sys
sys.path.insert(0, sys.argv[2]); import st
_, meta = st.load(sys.argv[1])
assert meta["diffcr.time_input"] == "gamma" and meta["diffcr.tile"] == "32", meta
assert json.loads(meta["diffcr.schedule"])["n_timestep"] == 1000
assert json.loads(meta["diffcr.training"])["steps"] == 150
assert json.loads(meta["diffcr.unet"])["width"] == 8
PYEOF

# 2. TensorBoard: valid records with correct CRCs
EV=$(ls "$T"/a/tb/events.out.tfevents.* 2>/dev/null | head -n 1)
[ -n "$EV" ] && $PY "$HERE/train_tb_check.py" "$EV" train/loss && ok "TensorBoard records and CRC32C" || bad "TensorBoard file"

# 3. resume: 67 steps, then on to 150 from the checkpoint == the uninterrupted run
$TRAIN -c "$T/tiny.json" --out "$T/b" $ARGS --iters 67 --no-val 2>"$T/b.log" || bad "first 67 steps"
if $TRAIN --resume "$T/b/checkpoint.safetensors" -c "$T/tiny.json" --out "$T/b" $ARGS --no-val 2>>"$T/b.log"; then
  if cmp -s <(losses "$T/a/metrics.jsonl") <(losses "$T/b/metrics.jsonl"); then
    ok "resumed losses equal the uninterrupted run bit for bit ($(losses "$T/b/metrics.jsonl" | wc -l) steps)"
  else bad "resumed losses differ"; diff <(losses "$T/a/metrics.jsonl") <(losses "$T/b/metrics.jsonl") | head; fi
else bad "resume"; cat "$T/b.log"; fi

# 4. overfit one sample (batch 1, no augmentation): MSE near zero relative to the start
cfg one.json 'datasets.train.which_dataset.args.csv="csv/one.csv"' 'datasets.train.dataloader.args.batch_size=1' \
  'train.augment=false' 'train.val_iter=0'
$TRAIN -c "$T/one.json" --out "$T/one" $ARGS --no-val 2>"$T/one.log" || bad "overfit run"
$PY - "$T/one/metrics.jsonl" <<'PYEOF' && ok "overfit one sample: last-10 MSE < 10% of the start" || bad "overfit one sample"
import json, sys
loss = [json.loads(l)["loss"] for l in open(sys.argv[1])]
s, e = loss[0], sum(loss[-10:]) / 10
print("  overfit: start %.4g, last10 %.4g (%.3f%%)" % (s, e, 100 * e / s))
assert e < 0.1 * s
PYEOF

# 5. SIGINT mid-run: a checkpoint, exit 130, and the checkpoint resumes
$TRAIN -c "$T/tiny.json" --out "$T/int" $ARGS --iters 1000000 --no-val 2>"$T/int.log" &
pid=$!
for _ in $(seq 1 200); do
  [ -f "$T/int/metrics.jsonl" ] && [ "$(wc -l < "$T/int/metrics.jsonl")" -ge 5 ] && break
  sleep 0.1
done
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 130 ] && ok "SIGINT exits 130" || { bad "SIGINT exit code $rc"; cat "$T/int.log"; }
step=$($PY -c 'import sys; sys.path.insert(0, sys.argv[2]); import st; print(st.load(sys.argv[1])[1]["diffcr.train.step"])' \
  "$T/int/checkpoint.safetensors" "$SRC/tests/reference" 2>/dev/null)
if [ -n "$step" ] && $TRAIN --resume "$T/int/checkpoint.safetensors" --out "$T/int" $ARGS --iters $((step + 2)) --no-val 2>/dev/null; then
  ok "SIGINT checkpoint (step $step) loads and resumes"
else bad "SIGINT checkpoint loads"; fi

# 6. the inference file samples with diffcr-net
if [ -x "$NET" ]; then
  $PY - "$T" "$SRC/tests/reference" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
rng = np.random.default_rng(0)
st.save(sys.argv[1] + "/cond.safetensors", {"cond": rng.uniform(-1, 1, (1, 9, 32, 32)).astype(np.float32)})
PYEOF
  if $NET sample --weights "$T/a/model.safetensors" --cond "$T/cond.safetensors" --output "$T/sample.safetensors" --steps 5 --threads 1 &&
     $PY -c 'import sys, numpy as np; sys.path.insert(0, sys.argv[2]); import st
t, m = st.load(sys.argv[1]); o = t["out"]
assert o.shape == (1, 3, 32, 32) and np.isfinite(o).all() and m["diffcr.time_input"] == "gamma"' "$T/sample.safetensors" "$SRC/tests/reference"
  then ok "diffcr-net sample loads model.safetensors"; else bad "diffcr-net sample on model.safetensors"; fi
else echo "skip diffcr-net sample (not built)"; fi

# 7. eval subcommand: a table and JSON
if $TRAIN eval -c "$T/tiny.json" --weights "$T/a/model.safetensors" --split val --limit 2 --threads 1 --json "$T/eval.json" > "$T/eval.txt" 2>&1 &&
   grep -q "^mean" "$T/eval.txt" && $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["samples"]==2 and d["psnr"]>0' "$T/eval.json"
then ok "eval prints a table and JSON"; else bad "eval"; cat "$T/eval.txt"; fi

# 8. the Sen2_MTC_New folder layout and the simulated-clouds dataset
cfg sen2.json 'datasets.train.which_dataset={"name":["data.dataset","Sen2_MTC_New_Multi"],"args":{"data_root":"sen2","mode":"train"}}' \
  'datasets.val.which_dataset={"name":"Sen2_MTC_New_Multi","args":{"data_root":"sen2","mode":"val"}}' 'train.val_iter=3' 'train.val_samples=1'
$TRAIN -c "$T/sen2.json" --out "$T/sen2" $ARGS --iters 3 2>"$T/sen2.log" && grep -q "folder dataset, 16 samples" "$T/sen2.log" &&
  grep -q '"val"' "$T/sen2/metrics.jsonl" && ok "Sen2_MTC_New folder dataset trains and validates" || { bad "folder dataset"; cat "$T/sen2.log"; }
cfg sim.json 'datasets.train.which_dataset={"name":"sim","args":{"clear":["csv/img/train000.tif","csv/img/train001.tif"],"samples":8,"tile":16}}' \
  'train.val_iter=0' 'datasets.val=DELETE'
$TRAIN -c "$T/sim.json" --out "$T/sim" $ARGS --iters 3 2>"$T/sim.log" && grep -q "sim dataset, 8 samples of 16x16" "$T/sim.log" &&
  ok "simulated-clouds dataset trains" || { bad "sim dataset"; cat "$T/sim.log"; }

# 9. bad inputs: one-line errors, non-zero exits
one_line_error() { [ "$(grep -c '^diffcr-train: ' "$1")" -ge 1 ] && grep -q "$2" "$1"; }
cfg missing.json 'datasets.train.which_dataset={"name":"Sen2_MTC_New_Multi","args":{"data_root":"nowhere","mode":"train"}}'
# (a run that fails before its first step removes the output folder it created)
if ! $TRAIN -c "$T/missing.json" --out "$T/m" $ARGS --iters 2 2>"$T/m.log" && one_line_error "$T/m.log" "nowhere" &&
   [ ! -e "$T/m" ]; then
  ok "missing dataset folder, no output folder left: $(tail -n 1 "$T/m.log")"; else bad "missing dataset folder"; cat "$T/m.log"; fi
cfg badimg.json 'datasets.train.which_dataset.args.csv="csv/bad.csv"' 'train.val_iter=0'
if $TRAIN -c "$T/badimg.json" --out "$T/bi" $ARGS --iters 2 --no-val 2>"$T/bi.log" && [ "$(grep -c 'warning: skipping sample' "$T/bi.log")" -eq 2 ]; then
  ok "bad images skipped with warnings"; else bad "bad images skipped"; cat "$T/bi.log"; fi
if ! $TRAIN -c "$T/badimg.json" --out "$T/bi2" $ARGS --iters 2 --no-val --strict 2>"$T/bi2.log" && one_line_error "$T/bi2.log" "strict"; then
  ok "bad image with --strict: $(tail -n 1 "$T/bi2.log")"; else bad "bad image --strict"; cat "$T/bi2.log"; fi
cfg typo.json 'train.n_iters=5'
$TRAIN -c "$T/typo.json" --out "$T/ty" $ARGS --iters 1 --no-val 2>"$T/ty.log" && grep -q "unknown config key 'train.n_iters'" "$T/ty.log" &&
  ok "unknown config key warned" || { bad "unknown config key"; cat "$T/ty.log"; }
# a precision with --device cpu is refused; with auto and no GPU it is ignored with a warning
if ! $TRAIN -c "$T/typo.json" --out "$T/p1" --threads 1 --device cpu --precision bf16 --iters 1 --no-val 2>"$T/p1.log" &&
   one_line_error "$T/p1.log" "precision 'bf16' needs the cuda device"; then ok "cpu + bf16 refused"; else bad "cpu + bf16"; cat "$T/p1.log"; fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  if $TRAIN -c "$T/typo.json" --out "$T/p2" --threads 1 --device auto --precision bf16 --iters 1 --no-val 2>"$T/p2.log" &&
     grep -q "warning: precision 'bf16' ignored: device auto chose the CPU" "$T/p2.log"; then ok "auto + bf16 without a GPU: trains in fp32, warns"
  else bad "auto + bf16 without a GPU"; cat "$T/p2.log"; fi
fi
# a NaN in a sample (a float raster's nodata): a one-line error naming the file, band and pixel;
# the first step fails, so the run leaves nothing (its empty metrics.jsonl, tb/ and folder go)
$PY - "$T/csv" <<'PYEOF'
import sys, numpy as np
from osgeo import gdal
d = sys.argv[1]
src = gdal.Open(d + "/img/train000.tif")
a = src.ReadAsArray().astype(np.float32)
a[0, 3, 5] = np.nan
ds = gdal.GetDriverByName("GTiff").Create(d + "/img/nan.tif", a.shape[2], a.shape[1], a.shape[0], gdal.GDT_Float32)
for i in range(a.shape[0]):
    ds.GetRasterBand(i + 1).WriteArray(a[i])
ds = None
first = open(d + "/train.csv").read().splitlines()[1].split(",")
first[0] = "img/nan.tif"
open(d + "/nan.csv", "w").write(open(d + "/train.csv").read().splitlines()[0] + "\n" + ",".join(first) + "\n")
PYEOF
cfg nan.json 'datasets.train.which_dataset.args.csv="csv/nan.csv"' 'datasets.train.dataloader.args.batch_size=1' 'train.val_iter=0'
if ! $TRAIN -c "$T/nan.json" --out "$T/nan" $ARGS --iters 2 --no-val 2>"$T/nan.log" &&
   one_line_error "$T/nan.log" "nan.tif: band 1 is nan at pixel (5, 3)" && [ ! -e "$T/nan" ]; then
  ok "NaN in a sample: $(tail -n 1 "$T/nan.log")"; else bad "NaN in a sample"; cat "$T/nan.log"; fi

# divergence: at lr 10 the gradient norm reaches 1e33 at step 2 (its square would overflow Adam's
# float32 second moment) and stays there; those steps are skipped (weights and moments stay
# finite), and after 20 in a row the run stops with an error; the checkpoints written meanwhile
# hold finite values only and no model file is written
cfg diverge.json 'model.which_model.args.optimizers.0.lr=10' 'train.val_iter=0' 'train.save_checkpoint_iter=5' 'train.log_iter=1'
if ! $TRAIN -c "$T/diverge.json" --out "$T/div" $ARGS --iters 100 --no-val 2>"$T/div.log" &&
   one_line_error "$T/div.log" "training diverged: loss or gradient not finite (or too large) in 20 steps in a row (steps 2-21)" &&
   grep -q "step 2 skipped" "$T/div.log" && [ ! -e "$T/div/model.safetensors" ] &&
   $PY - "$T/div" "$SRC/tests/reference" <<'PYEOF'
import json, sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
t, m = st.load(sys.argv[1] + "/checkpoint.safetensors")
assert m["diffcr.train.step"] == "20", m["diffcr.train.step"]
assert all(np.isfinite(v).all() for v in t.values())
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
assert rows[0]["skipped"] == 0 and rows[1]["skipped"] == 1 and rows[-1]["skipped"] == 19 and rows[-1]["step"] == 20, rows[-1]
PYEOF
then ok "divergence stops the run: $(tail -n 1 "$T/div.log")"; else bad "divergence"; tail -n 5 "$T/div.log"; fi
# full disk: a 1 MB file-size limit makes the checkpoint write fail; the previous one survives
cp -r "$T/b" "$T/full"
sum_before=$(md5sum < "$T/full/checkpoint.safetensors")
if ! (ulimit -f 1000; $TRAIN --resume "$T/full/checkpoint.safetensors" -c "$T/tiny.json" --out "$T/full" $ARGS --iters 152 --no-val 2>"$T/full.log") &&
   one_line_error "$T/full.log" "checkpoint" && [ "$(md5sum < "$T/full/checkpoint.safetensors")" = "$sum_before" ] &&
   $TRAIN --resume "$T/full/checkpoint.safetensors" --out "$T/full2" $ARGS --iters 151 --no-val 2>/dev/null; then
  ok "full disk: error, previous checkpoint intact and loadable: $(tail -n 1 "$T/full.log")"
else bad "full disk"; cat "$T/full.log"; fi
ls "$T/full" | grep -q tmp && bad "temporary file left behind" || true

exit $fail
