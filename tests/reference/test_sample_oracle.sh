#!/usr/bin/env bash
# End-to-end oracle test of a whole sampling run: `diffcr-net sample` against dpm_solver_torch.py,
# an independent PyTorch model of DiffCR's sampler (discrete VP schedule, x0 wrapper, dynamic
# thresholding, DPM-Solver++ multistep) driving the PyTorch network of diffcr_torch.py.
#
# Steps:
#   a  dpm_solver_torch.py selfcheck: the oracle itself against DIFFCR.md (§3.1 gammas, §4.1 table,
#      §4.3 grid, §4.4 toy-model vectors of both cases, dynthresh example)
#   b  DiffCR's default sampler (DPM-Solver++ order 2, 20 steps, time_uniform, thresholding
#      0.995/1.0, denoise_to_zero, dpm_tinput): random make_case.py-style weights (width 8, enc [1,1],
#      middle 1, dec [1,1]), cond [1,9,32,48] in [-1,1), noise ~ N(0,1) given with --init-noise;
#      devices ref and cpu; |out - oracle| <= 1e-4 and diffcr.model_calls == 21
#   c  order 1, 10 steps, logSNR, --time-input gamma, --no-threshold, B=2; calls == 11
#   d  determinism: --seed 7 twice gives identical bytes of out, --seed 8 differs
#
# Tolerance: 1e-4 absolute on out. Measured: b 7e-7 (ref) / 8e-7 (cpu), c 1.4e-6 / 1.7e-6; the network
# alone agrees to ~3e-6 per call (test_oracle.sh), the wrapper's x0 -> eps -> x0 round trip adds up
# to ~1e-5 at t = 1 (1/alpha ~ 58), and thresholding/clamping only shrinks differences. A wrong
# coefficient, grid point or time input shows up at 1e-1 (measured: order 1 for 2, time_uniform for
# logSNR, dpm_tinput for gamma give 0.13-0.20). In b every call rescales (quantile s ~ 2.3-2.9).
#
# Environment (set by ctest): DIFFCR_BUILD_DIR, DIFFCR_SOURCE_DIR. Exit 77 (skipped) when Debian's
# python3 has no torch; any other problem, including a missing diffcr-net, is a failure.
# DIFFCR_ORACLE_KEEP=1 keeps the temporary folder (it is kept anyway on failure; the oracle's
# expected-*.safetensors then hold x0.<i> / x.<i> traces for bisecting).
set -u

PY=/usr/bin/python3   # Debian's interpreter: python3-torch lives there, not in a pyenv python
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${DIFFCR_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
ref="$src/tests/reference"
oracle="$ref/dpm_solver_torch.py"
build="${DIFFCR_BUILD_DIR:-}"
threads=2
atol=1e-4

# shellcheck source=oracle_common.sh
. "$here/oracle_common.sh"   # torch or skip; $net = diffcr-net

tmp="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-sample-oracle.XXXXXX")"
failures=0
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    if [ "${DIFFCR_ORACLE_KEEP:-0}" = 1 ] || [ "$failures" -gt 0 ]; then
        echo "(files kept in $tmp)"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

echo "diffcr-net: $net"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)')"
t_all=$SECONDS

echo
echo "=== a: oracle self check against DIFFCR.md ==="
"$PY" "$oracle" --threads "$threads" selfcheck || fail "dpm_solver_torch.py does not reproduce DIFFCR.md's vectors"

# sample_case NAME CALLS "DEVICES" make-args -- sampler-args...
#   sampler-args are passed to both the oracle and diffcr-net (same option names)
sample_case() {
    local name="$1" calls="$2" devices="$3"
    shift 3
    local make_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        make_args+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    local dir="$tmp/$name" t0=$SECONDS
    echo
    echo "=== $name: make ${make_args[*]}; sample $* ==="
    if ! "$PY" "$oracle" --threads "$threads" case --outdir "$dir" "${make_args[@]}" --trace "$@"; then
        fail "$name: making the case or the PyTorch sampler failed"
        return
    fi
    local w="$dir/weights.safetensors" c="$dir/cond.safetensors" n="$dir/noise.safetensors"
    local dev gots=()
    for dev in $devices; do
        local got="$dir/got-$dev.safetensors" rc=0 t1=$SECONDS
        "$net" sample --weights "$w" --cond "$c" --init-noise "$n" --output "$got" \
            --threads "$threads" --device "$dev" "$@" || rc=$?
        if [ "$rc" -ne 0 ]; then
            fail "$name, device $dev: diffcr-net sample exited with status $rc"
            continue
        fi
        echo "(diffcr-net sample --device $dev: $((SECONDS - t1)) s)"
        gots+=("$got")
    done
    if [ "${#gots[@]}" -gt 0 ]; then
        "$PY" "$oracle" compare "$dir/expected.safetensors" "${gots[@]}" --atol "$atol" \
            --calls "$calls" || fail "$name: diffcr-net differs from the PyTorch sampler"
    fi
    echo "($name took $((SECONDS - t0)) s)"
}

sample_case b 21 "ref cpu" --width 8 --enc 1,1 --dec 1,1 --middle 1 --batch 1 \
    --height 32 --width-px 48 --seed 11 -- \
    --steps 20 --order 2 --skip time_uniform --time-input dpm_tinput
sample_case c 11 "ref cpu" --width 8 --enc 1,1 --dec 1,1 --middle 1 --batch 2 \
    --height 32 --width-px 48 --seed 12 -- \
    --steps 10 --order 1 --skip logSNR --time-input gamma --no-threshold

echo
echo "=== d: determinism of the seeded noise ==="
w="$tmp/b/weights.safetensors"
c="$tmp/b/cond.safetensors"
if [ -f "$w" ] && [ -f "$c" ]; then
    ok=1
    for run in 7a 7b 8; do
        rc=0
        "$net" sample --weights "$w" --cond "$c" --output "$tmp/seed-$run.safetensors" \
            --seed "${run%[ab]}" --threads "$threads" --device cpu || rc=$?
        if [ "$rc" -ne 0 ]; then
            fail "d: diffcr-net sample --seed ${run%[ab]} exited with status $rc"
            ok=0
        fi
    done
    if [ "$ok" = 1 ]; then
        "$PY" - "$ref" "$tmp/seed-7a.safetensors" "$tmp/seed-7b.safetensors" \
                "$tmp/seed-8.safetensors" <<'EOF' || fail "d: seeded sampling is not deterministic / seed-dependent"
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import st
a, b, c = (st.load(p)[0]["out"] for p in sys.argv[2:5])
same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
diff = float(np.abs(a.astype(np.float64) - c).max()) if a.shape == c.shape else float("inf")
print("seed 7 twice: %s; seed 7 vs 8: max abs difference %.3g"
      % ("identical bytes" if same else "DIFFERENT", diff))
sys.exit(0 if same and diff > 1e-3 else 1)
EOF
    fi
else
    fail "d: case b's files are missing"
fi

echo
echo "(sample oracle took $((SECONDS - t_all)) s)"
if [ "$failures" -gt 0 ]; then
    echo "sample oracle: $failures check(s) FAILED"
    exit 1
fi
echo "sample oracle: all checks passed"
exit 0
