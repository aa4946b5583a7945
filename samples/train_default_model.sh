#!/usr/bin/env bash
# diffcr — reproduce the shipped default model (samples/model/diffcr_default.safetensors).
#
#   samples/train_default_model.sh [--iters N] [--threads N] [--resume]
#
# Makes the clear training rasters under build/default-model/ (the western two thirds of the real
# Sentinel-2 Berlin scene, read in place from ../shared/data, and twelve synthetic landscapes), then
# runs diffcr-train with configs/default_model.json (clouds are simulated on the fly) and copies the
# exported model into samples/model/. Needs the build (scripts/test.sh or cmake) and ../shared/data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DIFFCR_BUILD_DIR:-$ROOT/build}"
WORK="$ROOT/build/default-model"
BERLIN="$ROOT/../shared/data/s2_berlin_l1c/IMG_DATA"
SIM="$BUILD/algorithms/diffcr-simulate"
TRAIN="$BUILD/algorithms/diffcr-train"
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --iters|--threads) EXTRA+=("$1" "$2"); shift 2 ;;
    --resume) EXTRA+=(--resume "$WORK/run/checkpoint.safetensors"); shift ;;
    *) echo "usage: $0 [--iters N] [--threads N] [--resume]" >&2; exit 2 ;;
  esac
done
for p in "$SIM" "$TRAIN"; do [ -x "$p" ] || { echo "train_default_model.sh: $p not built" >&2; exit 1; }; done
[ -d "$BERLIN" ] || { echo "train_default_model.sh: $BERLIN not found (../shared/data)" >&2; exit 1; }
mkdir -p "$WORK"

# Berlin: B04,B03,B02,B08 (R,G,B,NIR) at 10 m, 1536x768; train on columns 0..1023, hold out 1024..1535.
if [ ! -f "$WORK/berlin_train.tif" ]; then
  gdalbuildvrt -q -separate "$WORK/berlin.vrt" "$BERLIN"/T33UUU_20170216T102101_B04.jp2 \
    "$BERLIN"/T33UUU_20170216T102101_B03.jp2 "$BERLIN"/T33UUU_20170216T102101_B02.jp2 \
    "$BERLIN"/T33UUU_20170216T102101_B08.jp2
  gdal_translate -q -srcwin 0 0 1024 768 "$WORK/berlin.vrt" "$WORK/berlin_train.tif"
  gdal_translate -q -srcwin 1024 0 512 768 "$WORK/berlin.vrt" "$WORK/berlin_test.tif"
fi
for seed in $(seq 101 112) 199; do
  [ -f "$WORK/land_$seed.tif" ] || "$SIM" landscape --size 512x512 --seed "$seed" -o "$WORK/land_$seed.tif" -q
done

"$TRAIN" -c "$ROOT/configs/default_model.json" --out "$WORK/run" "${EXTRA[@]}"
mkdir -p "$ROOT/samples/model"
cp "$WORK/run/model.safetensors" "$ROOT/samples/model/diffcr_default.safetensors"
echo "default model: $ROOT/samples/model/diffcr_default.safetensors"
