# Sourced by the PyTorch oracle tests (test_oracle.sh, test_sample_oracle.sh): exits 77 (ctest:
# skipped) when Debian's python3 has no torch/numpy, fails when the build or diffcr-net is missing
# (a broken build must not hide as a skip), and sets $net to the diffcr-net executable.
# Expects $PY and $build to be set by the caller.

if [ ! -x "$PY" ]; then
    echo "SKIP: $PY not found (the oracle needs Debian's python3 with python3-torch)"
    exit 77
fi
if ! why="$("$PY" -c 'import torch, numpy' 2>&1)"; then
    echo "SKIP: $PY cannot import torch/numpy (install python3-torch): ${why##*$'\n'}"
    exit 77
fi

if [ -z "$build" ] || [ ! -d "$build" ]; then
    echo "FAIL: DIFFCR_BUILD_DIR is not set or not a directory ('$build')"
    exit 1
fi
net="$(find "$build" -name diffcr-net -type f -perm -u+x 2>/dev/null | head -n 1)"
if [ -z "$net" ]; then
    echo "FAIL: no diffcr-net executable under $build (build the diffcr-net target first)"
    exit 1
fi
