#!/usr/bin/env bash
# diffcr-net end to end: init → forward → forward+backward on generated tensors, and every kind of
# bad input giving one line on stderr naming the problem, a non-zero exit and no output file.
# Needs only the build and Debian's python3-numpy (for writing input tensors).
set -u
BUILD=${DIFFCR_BUILD_DIR:?}
SRC=${DIFFCR_SOURCE_DIR:?}
NET=$BUILD/core/diffcr-net
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then echo "SKIP: /usr/bin/python3 has no numpy"; exit 77; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

# tensors written with the test suite's own safetensors writer (tests/reference/st.py)
$PY - "$T" "$SRC/tests/reference" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
import st
d = sys.argv[1]
rng = np.random.default_rng(0)
st.save(d + "/in.safetensors", {"x": rng.uniform(-1, 1, (2, 12, 20, 28)).astype(np.float32),
                                     "gamma": np.array([0.5, 998.999], np.float32)})
st.save(d + "/in_badshape.safetensors", {"x": rng.uniform(-1, 1, (1, 9, 16, 16)).astype(np.float32),
                                              "gamma": np.array([0.5], np.float32)})
st.save(d + "/in_nogamma.safetensors", {"x": rng.uniform(-1, 1, (1, 12, 16, 16)).astype(np.float32)})
st.save(d + "/dout.safetensors", {"dout": rng.uniform(-1, 1, (2, 3, 20, 28)).astype(np.float32)})
PYEOF

CFG=$SRC/configs/tiny_test.json
$NET init --config "$CFG" --output "$T/w.safetensors" --seed 3 && ok "init" || bad "init"
$NET --weights "$T/w.safetensors" --input "$T/in.safetensors" --output "$T/o.safetensors" && ok "forward" || bad "forward"
$NET --weights "$T/w.safetensors" --input "$T/in.safetensors" --grad "$T/dout.safetensors" --output "$T/g.safetensors" --device ref \
  && ok "forward+backward" || bad "forward+backward"
$PY - "$T" "$SRC/tests/reference" <<'PYEOF' && ok "outputs have the right tensors" || bad "outputs have the right tensors"
import sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
d = sys.argv[1]
o, _ = st.load(d + "/o.safetensors"); g, _ = st.load(d + "/g.safetensors")
assert o["out"].shape == (2, 3, 20, 28) and np.isfinite(o["out"]).all()
assert np.allclose(o["out"], g["out"], atol=1e-4), "inference and training forward differ"
grads = [k for k in g if k.startswith("grad.")]
# tiny_test: intro/cond_intro/ending 6 + 2 enc NAF x22 + 2 cond x20 + 2 dec x22 + middle 22 + ups 2
# + downs 4 + cond_downs 4 + map 4 = 170
assert len(grads) == 170, len(grads)
assert np.abs(g["grad.intro.weight"]).sum() > 0
PYEOF

# diffusion sampling: 21 network calls by default, deterministic per seed, sensitive to the seed
$PY - "$T" "$SRC/tests/reference" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
st.save(sys.argv[1] + "/cond.safetensors", {"cond": np.random.default_rng(1).uniform(-1, 1, (1, 9, 24, 40)).astype(np.float32)})
PYEOF
for s in 7 7b 8; do
  $NET sample --weights "$T/w.safetensors" --cond "$T/cond.safetensors" --seed "${s%b}" --output "$T/s$s.safetensors" || bad "sample seed $s"
done
$PY - "$T" "$SRC/tests/reference" <<'PYEOF' && ok "sample: 21 calls, same seed same bits, other seed differs" || bad "sample determinism"
import sys, numpy as np
sys.path.insert(0, sys.argv[2]); import st
d = sys.argv[1]
a, ma = st.load(d + "/s7.safetensors"); b, _ = st.load(d + "/s7b.safetensors"); c, _ = st.load(d + "/s8.safetensors")
assert ma["diffcr.model_calls"] == "21", ma
assert a["out"].shape == (1, 3, 24, 40)
assert np.array_equal(a["out"], b["out"]), "same seed, different output"
assert np.abs(a["out"] - c["out"]).max() > 1e-3, "other seed, same output"
assert np.abs(a["out"]).max() <= 1.0 + 1e-6, "dynamic thresholding keeps x0 in [-1, 1]"
PYEOF
$NET sample --weights "$T/w.safetensors" --cond "$T/cond.safetensors" --steps 5 --order 1 --sampler ddim --output "$T/ddim.safetensors" \
  && ok "sample: ddim" || bad "sample: ddim"

# expect_error NAME EXPECTED_SUBSTRING ARGS...: non-zero exit, one stderr line containing the
# substring, and no output file left behind.
expect_error() {
  local name=$1 want=$2; shift 2
  rm -f "$T/out.safetensors"
  "$@" 2>"$T/err" >/dev/null; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && grep -q -- "$want" "$T/err" && [ ! -e "$T/out.safetensors" ] \
     && ! ls "$T"/out.safetensors.tmp* >/dev/null 2>&1; then
    ok "$name: $(cat "$T/err")"
  else
    bad "$name (rc=$rc, $lines lines): $(cat "$T/err")"
  fi
}
run() { $NET --input "$T/in.safetensors" --output "$T/out.safetensors" "$@"; }

head -c 5 "$T/w.safetensors" >"$T/trunc5.safetensors"
head -c 2000 "$T/w.safetensors" >"$T/trunc.safetensors"
# header intact, data cut 100 bytes after it
hl=$($PY -c "import struct,sys; print(struct.unpack('<Q', open(sys.argv[1],'rb').read(8))[0])" "$T/w.safetensors")
head -c $((8 + hl + 100)) "$T/w.safetensors" >"$T/truncdata.safetensors"
$PY -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<Q', 1<<20) + b'{}')" "$T/pastend.safetensors"
$PY -c "import struct,sys; h=b'{\"a\": [1,2'; open(sys.argv[1],'wb').write(struct.pack('<Q', len(h)) + h)" "$T/badjson.safetensors"
printf '{"img_channel": 3, "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1]}' >"$T/nodec.json"
printf '{"img_channel": 3, "width": "eight", "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}' >"$T/wtype.json"
printf '{"img_channel": 3, "width": 16, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}' >"$T/w16.json"

expect_error "truncated file (5 bytes)" "trunc5.safetensors" run --weights "$T/trunc5.safetensors" --config "$CFG"
expect_error "truncated header" "trunc.safetensors" run --weights "$T/trunc.safetensors" --config "$CFG"
expect_error "truncated data" "truncdata.safetensors" run --weights "$T/truncdata.safetensors" --config "$CFG"
expect_error "header past the end" "pastend.safetensors" run --weights "$T/pastend.safetensors" --config "$CFG"
expect_error "corrupt JSON header" "badjson.safetensors" run --weights "$T/badjson.safetensors" --config "$CFG"
expect_error "missing config field" "dec_blk_nums" run --weights "$T/w.safetensors" --config "$T/nodec.json"
expect_error "wrong-typed config field" "width" run --weights "$T/w.safetensors" --config "$T/wtype.json"
expect_error "weights for another config" "shape" run --weights "$T/w.safetensors" --config "$T/w16.json"
expect_error "missing weights file" "nonexistent" run --weights "$T/nonexistent.safetensors"
expect_error "input with wrong channel count" "x must be" $NET --weights "$T/w.safetensors" --input "$T/in_badshape.safetensors" --output "$T/out.safetensors"
expect_error "input without gamma" "needs tensors" $NET --weights "$T/w.safetensors" --input "$T/in_nogamma.safetensors" --output "$T/out.safetensors"
expect_error "unknown device" "cuda" run --weights "$T/w.safetensors" --device cuda
expect_error "unknown option" "--bogus" run --weights "$T/w.safetensors" --bogus 1
expect_error "output in a missing folder" "missing-dir" $NET --weights "$T/w.safetensors" --input "$T/in.safetensors" --output "$T/missing-dir/out.safetensors"

expect_error "sample: unknown sampler" "sampler" $NET sample --weights "$T/w.safetensors" --cond "$T/cond.safetensors" --sampler euler --output "$T/out.safetensors"
expect_error "sample: order out of range" "order" $NET sample --weights "$T/w.safetensors" --cond "$T/cond.safetensors" --order 5 --output "$T/out.safetensors"
expect_error "sample: cond with wrong channels" "cond" $NET sample --weights "$T/w.safetensors" --cond "$T/in.safetensors" --output "$T/out.safetensors"

[ $fail -eq 0 ] && echo "test_net_cli: all passed" || echo "test_net_cli: FAILED"
exit $fail
