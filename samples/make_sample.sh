#!/bin/bash
# diffcr — make the sample scene: a synthetic clear landscape and 3 simulated cloudy dates.
#
#   samples/make_sample.sh OUTDIR            (env: SIZE=512x512 SEED=1 DATES=3)
#
# Writes OUTDIR/scene_clear.tif (R,G,B,NIR UInt16 reflectance x 10000, 10 m, EPSG:32633),
# OUTDIR/scene_date<k>.tif (same grid and type), OUTDIR/scene_mask<k>.tif (Byte: 0 clear, 1 thin
# cloud, 2 thick cloud, 3 shadow) and RGB previews OUTDIR/preview_*.png. The project ships no
# imagery, so this is the demo input for diffcr-decloud. Uses the built diffcr-simulate from
# $DIFFCR_BUILD_DIR, ./build or PATH.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: $0 OUTDIR   (env: SIZE=512x512 SEED=1 DATES=3)" >&2
  exit 2
fi
OUT="$1"
SIZE="${SIZE:-512x512}"
SEED="${SEED:-1}"
DATES="${DATES:-3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SIM=""
for cand in "${DIFFCR_BUILD_DIR:-}/algorithms/diffcr-simulate" "$PWD/build/algorithms/diffcr-simulate" \
            "$HERE/../build/algorithms/diffcr-simulate"; do
  if [ -x "$cand" ]; then SIM="$cand"; break; fi
done
if [ -z "$SIM" ]; then SIM="$(command -v diffcr-simulate || true)"; fi
if [ -z "$SIM" ]; then
  echo "make_sample.sh: diffcr-simulate not found (build it, or set DIFFCR_BUILD_DIR)" >&2
  exit 1
fi

mkdir -p "$OUT"
"$SIM" landscape --size "$SIZE" --seed "$SEED" -o "$OUT/scene_clear.tif"
# the clear target is the landscape itself: --no-clear keeps the simulator from rewriting it
"$SIM" -q --no-clear --dates "$DATES" --seed "$SEED" --out-prefix "$OUT/scene" "$OUT/scene_clear.tif"

# previews for people: true colour stretched 0..3000 DN (clouds saturate to white); masks keep
# their colour table (black clear, blue thin, white thick, brown shadow)
if command -v gdal_translate >/dev/null; then
  preview() { gdal_translate -q -of PNG "$@" && rm -f "${@: -1}.aux.xml"; }
  preview -b 1 -b 2 -b 3 -scale 0 3000 0 255 -ot Byte "$OUT/scene_clear.tif" "$OUT/preview_clear.png"
  for ((k = 1; k <= DATES; k++)); do
    preview -b 1 -b 2 -b 3 -scale 0 3000 0 255 -ot Byte "$OUT/scene_date$k.tif" "$OUT/preview_date$k.png"
    preview "$OUT/scene_mask$k.tif" "$OUT/preview_mask$k.png"
  done
fi
echo "sample scene in $OUT: scene_clear.tif, scene_date1..$DATES.tif, scene_mask1..$DATES.tif"
