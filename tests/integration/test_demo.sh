#!/usr/bin/env bash
# The demo's steps (scripts/demo.sh) on a small scene, so the demo cannot rot: sample scene, the
# shipped default model through diffcr-decloud and through gdal_translate on the VRT (identical
# pixels), the preview PNG, and the default model beating the per-pixel median of the dates on the
# scene (it was trained on simulated clouds of this kind).
set -u
BUILD=${DIFFCR_BUILD_DIR:?}
SRC=${DIFFCR_SOURCE_DIR:?}
MODEL=$SRC/samples/model/diffcr_default.safetensors
[ -f "$MODEL" ] || { echo "no default model at $MODEL"; exit 1; }
[ -x "$BUILD/algorithms/diffcr-decloud" ] || { echo "SKIP: raster tools not built (no GDAL)"; exit 77; }
/usr/bin/python3 -c 'from osgeo import gdal; import numpy' 2>/dev/null || { echo "SKIP: no osgeo.gdal"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
SIZE=192x160 DIFFCR_BUILD_DIR=$BUILD bash "$SRC/samples/make_sample.sh" "$T/sample" >/dev/null && ok "sample scene" || bad "sample scene"
D=("$T/sample/scene_date1.tif" "$T/sample/scene_date2.tif" "$T/sample/scene_date3.tif")
"$BUILD/algorithms/diffcr-decloud" "${D[@]}" "$T/decloud.tif" --weights "$MODEL" --seed 1 --steps 6 -q && ok "diffcr-decloud" || bad "diffcr-decloud"
"$BUILD/algorithms/diffcr-decloud" "${D[@]}" --weights "$MODEL" --seed 1 --steps 6 --vrt "$T/scene.vrt" && ok "--vrt" || bad "--vrt"
GDAL_DRIVER_PATH=$BUILD/plugin gdal_translate -q "$T/scene.vrt" "$T/gdal.tif" && ok "gdal_translate" || bad "gdal_translate"
"$BUILD/algorithms/diffcr-evaluate" --baseline median "${D[@]}" -o "$T/median.tif" -q && ok "median baseline" || bad "median baseline"
/usr/bin/python3 "$SRC/samples/preview.py" "$T/preview.png" "${D[@]}" "$T/decloud.tif" "$T/sample/scene_clear.tif" && [ -s "$T/preview.png" ] \
  && ok "preview.png" || bad "preview.png"
/usr/bin/python3 - "$T" <<'PYEOF' && ok "VRT == decloud; model beats the median on MAE" || bad "pixel checks"
import sys
import numpy as np
from osgeo import gdal
t = sys.argv[1]
r = lambda p: gdal.Open(p).ReadAsArray().astype(np.float64)
out, via_gdal, med, truth = r(t + "/decloud.tif"), r(t + "/gdal.tif"), r(t + "/median.tif"), r(t + "/sample/scene_clear.tif")[:3]
assert np.array_equal(out, via_gdal), "gdal_translate differs from diffcr-decloud"
mae_model, mae_median = np.abs(out - truth).mean(), np.abs(med - truth).mean()
print("MAE model %.1f DN, median %.1f DN" % (mae_model, mae_median))
assert mae_model < mae_median, "the default model does not beat the median of the dates"
PYEOF
[ $fail -eq 0 ] && echo "test_demo: all passed" || echo "test_demo: FAILED"
exit $fail
