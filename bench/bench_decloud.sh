#!/usr/bin/env bash
# bench_decloud — diffcr-decloud throughput on the CPU: a 1024x1024 three-date scene (synthetic
# landscape + simulated clouds) at DiffCR's 20 steps (21 network calls per tile), in pixels/s.
#
#   bench/bench_decloud.sh [BUILD_DIR] [--paper]
#
# Models: the shipped default model (width 16, at its training tile 64, overlap 16) and, with --paper, a DiffCR paper-size network
# (width 64, tile 256, overlap 64; randomly initialised: speed does not depend on the weights).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
PAPER=0
[ "${2:-}" = "--paper" ] && PAPER=1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
"$BUILD/algorithms/diffcr-simulate" landscape --size 1024x1024 --seed 7 -o "$T/clear.tif" -q
"$BUILD/algorithms/diffcr-simulate" "$T/clear.tif" -b 1,2,3 --seed 7 --out-prefix "$T/s" -q
echo "diffcr-decloud on 1024x1024, 3 dates, 20 steps (21 network calls per tile), $(nproc) threads"
run() {
  local name=$1 model=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$BUILD/algorithms/diffcr-decloud" "$T/s_date1.tif" "$T/s_date2.tif" "$T/s_date3.tif" "$T/out.tif" \
    --weights "$model" -q "$@"
  t1=$(date +%s.%N)
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { s = b - a; printf "%-28s %8.1f s  %10.0f pixels/s\n", n, s, 1024 * 1024 / s }'
}
[ -f "$ROOT/samples/model/diffcr_default.safetensors" ] &&
  run "default model (w16, tile 64)" "$ROOT/samples/model/diffcr_default.safetensors"
if [ $PAPER -eq 1 ]; then
  printf '{"img_channel": 3, "width": 64, "middle_blk_num": 1, "enc_blk_nums": [1,1,1,1], "dec_blk_nums": [1,1,1,1]}' >"$T/paper.json"
  "$BUILD/core/diffcr-net" init --config "$T/paper.json" --output "$T/paper.safetensors"
  run "paper net (w64, tile 256)" "$T/paper.safetensors" --tile 256 --overlap 64
fi
