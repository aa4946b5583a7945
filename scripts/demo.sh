#!/usr/bin/env bash
# diffcr — the demo: install what is missing, build, make the sample scene, remove its clouds with
# the shipped default model (diffcr-decloud), do the same through GDAL (gdal_translate on the sample
# VRT with the decloud pixel function), and write out/decloud.tif + out/preview.png (the three cloudy
# dates, the result and the truth side by side). Runs on a laptop CPU in a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/out
MODEL=$ROOT/samples/model/diffcr_default.safetensors

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BIN=$ROOT/build/algorithms
[ -f "$MODEL" ] || { echo "demo: the default model $MODEL is missing" >&2; exit 1; }

mkdir -p "$OUT"
echo "== making the sample scene (synthetic 10 m landscape in UTM 33N, three simulated cloudy dates)"
DIFFCR_BUILD_DIR=$ROOT/build samples/make_sample.sh "$OUT/sample" >/dev/null
DATES=("$OUT/sample/scene_date1.tif" "$OUT/sample/scene_date2.tif" "$OUT/sample/scene_date3.tif")

echo "== diffcr-decloud with the default model"
time "$BIN/diffcr-decloud" "${DATES[@]}" "$OUT/decloud.tif" --weights "$MODEL" --seed 1

if [ -f "$ROOT/build/plugin/gdal_decloud.so" ]; then
  echo "== the same through GDAL: gdal_translate on the sample VRT (decloud pixel function)"
  "$BIN/diffcr-decloud" "${DATES[@]}" --weights "$MODEL" --seed 1 --vrt "$OUT/sample/scene.vrt"
  GDAL_DRIVER_PATH=$ROOT/build/plugin gdal_translate -q "$OUT/sample/scene.vrt" "$OUT/decloud_gdal.tif"
  /usr/bin/python3 - "$OUT/decloud.tif" "$OUT/decloud_gdal.tif" <<'PYEOF'
import sys
import numpy as np
from osgeo import gdal
a, b = (gdal.Open(p).ReadAsArray() for p in sys.argv[1:3])
print("gdal_translate and diffcr-decloud give %s pixels" % ("identical" if np.array_equal(a, b) else "DIFFERENT"))
PYEOF
fi

echo "== quality against the clear truth, and the two baselines"
"$ROOT/build/algorithms/diffcr-evaluate" --baseline median "${DATES[@]}" -o "$OUT/median.tif" -q
"$ROOT/build/algorithms/diffcr-evaluate" --baseline least-cloudy "${DATES[@]}" -o "$OUT/least_cloudy.tif" -q
for r in decloud median least_cloudy; do
  printf '%-14s ' "$r"
  "$ROOT/build/algorithms/diffcr-evaluate" "$OUT/$r.tif" "$OUT/sample/scene_clear.tif" --json -q |
    /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); r=j.get("reflectance", j); print("MAE %.4f  PSNR %.2f dB  SSIM %.4f" % (r["mae"], r["psnr"], r["ssim"]))' 2>/dev/null ||
    "$ROOT/build/algorithms/diffcr-evaluate" "$OUT/$r.tif" "$OUT/sample/scene_clear.tif" -q --json
done

/usr/bin/python3 samples/preview.py "$OUT/preview.png" "${DATES[@]}" "$OUT/decloud.tif" "$OUT/sample/scene_clear.tif"
echo
echo "result:  $OUT/decloud.tif"
echo "preview: $OUT/preview.png   (date 1 | date 2 | date 3 | diffcr | truth)"
