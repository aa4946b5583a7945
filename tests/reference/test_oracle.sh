#!/usr/bin/env bash
# Oracle test: the C network (diffcr-net) against the independent PyTorch model in diffcr_torch.py.
#
# For each case, make_case.py writes random weights (non-identity blocks), an input, an upstream
# gradient and PyTorch's forward output and parameter gradients; diffcr-net recomputes them and
# compare.py checks out (abs 1e-4) and every gradient (1e-3 of the tensor's max). Float32 round-off
# measured against float64 is ~3e-6 on both, so the tolerances leave a wide margin while a wrong
# index, sign or missing term shows up at 1e-2 or more.
#
# Cases:
#   A  width 16, [1,1,1,1]/1/[1,1,1,1], B=2, 40x56 (padded to 48x64 inside), time inputs 0.37 (a
#      training gamma) and 998.999 (DPM-Solver's first t-input), devices ref and cpu
#   B  width 64 paper config, B=1, 24x40 (padded to 32x48), t-input 0 (the denoise_to_zero call),
#      devices ref and cpu
#   C  width 8, enc [1,2], dec [2,1], middle 2 (several blocks per level, 2 levels), B=2, 32x32,
#      random time inputs, devices ref and cpu
#
# Environment (set by ctest): DIFFCR_BUILD_DIR, DIFFCR_SOURCE_DIR. Exit 77 (skipped) when Debian's
# python3 has no torch; any other problem, including a missing diffcr-net, is a failure.
# DIFFCR_ORACLE_KEEP=1 keeps the temporary folder.
set -u

PY=/usr/bin/python3   # Debian's interpreter: python3-torch lives there, not in a pyenv python
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${DIFFCR_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
ref="$src/tests/reference"
build="${DIFFCR_BUILD_DIR:-}"
threads=2

# shellcheck source=oracle_common.sh
. "$here/oracle_common.sh"   # torch or skip; $net = diffcr-net

tmp="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-oracle.XXXXXX")"
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    if [ "${DIFFCR_ORACLE_KEEP:-0}" = 1 ] || [ "$failures" -gt 0 ]; then
        echo "(files kept in $tmp)"
    else
        rm -rf "$tmp"
    fi
}
failures=0
trap cleanup EXIT

echo "diffcr-net: $net"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)')"

# run_case NAME "DEVICES" make_case-args...
run_case() {
    local name="$1" devices="$2"
    shift 2
    local dir="$tmp/$name"
    echo
    echo "=== case $name: $* ==="
    local t0=$SECONDS
    if ! "$PY" "$ref/make_case.py" --outdir "$dir" --threads "$threads" "$@"; then
        echo "FAIL: case $name: make_case.py failed"
        failures=$((failures + 1))
        return
    fi
    local dev
    for dev in $devices; do
        local got="$dir/got-$dev.safetensors"
        echo "--- case $name, --device $dev"
        local rc=0
        "$net" --weights "$dir/weights.safetensors" --input "$dir/input.safetensors" \
            --output "$got" --grad "$dir/dout.safetensors" --threads "$threads" \
            --device "$dev" || rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "FAIL: case $name, device $dev: diffcr-net exited with status $rc"
            failures=$((failures + 1))
            continue
        fi
        if ! "$PY" "$ref/compare.py" "$dir/expected.safetensors" "$got" \
                --atol 1e-4 --grad-rtol 1e-3 --top 8; then
            echo "FAIL: case $name, device $dev: results differ from PyTorch (see table above)"
            failures=$((failures + 1))
        fi
    done
    echo "(case $name took $((SECONDS - t0)) s)"
}

run_case A "ref cpu" --width 16 --enc 1,1,1,1 --dec 1,1,1,1 --middle 1 --batch 2 \
    --height 40 --width-px 56 --seed 0 --time-input 0.37,998.999
run_case B "ref cpu" --width 64 --enc 1,1,1,1 --dec 1,1,1,1 --middle 1 --batch 1 \
    --height 24 --width-px 40 --seed 1 --time-input 0
run_case C "ref cpu" --width 8 --enc 1,2 --dec 2,1 --middle 2 --batch 2 \
    --height 32 --width-px 32 --seed 2

echo
if [ "$failures" -gt 0 ]; then
    echo "oracle: $failures check(s) FAILED"
    exit 1
fi
echo "oracle: all checks passed"
exit 0
