#!/usr/bin/env bash
# diffcr — the test command: install what is missing, build into build/, run every test through
# ctest, then build the unit tests under AddressSanitizer + UBSan (build-asan/) and run them.
# Exits non-zero on any failure. Tests that lack something (GPU, torch, QGIS) are reported as
# skipped by ctest, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

scripts/deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j1 --timeout 900)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDIFFCR_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
# LeakSanitizer is on; oneDNN's JIT keeps process-lifetime caches that are not leaks of ours.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
(cd build-asan && ctest --output-on-failure -j1 -L unit --timeout 1800)
