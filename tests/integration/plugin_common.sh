# diffcr plugin tests — shared set-up for test_plugin*.sh (sourced, not a test itself).
# Skips (77) without gdal_translate, the built plugin or tools, or /usr/bin/python3 with
# numpy + osgeo.gdal. Exports GDAL_DRIVER_PATH = the plugin's build folder.
set -u
BUILD="${DIFFCR_BUILD_DIR:?}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DECLOUD="$BUILD/algorithms/diffcr-decloud"
PLUGIN="$BUILD/plugin/gdal_decloud.so"
PY=/usr/bin/python3
DATA="$PY $HERE/decloud_data.py"
CHECK="$PY $HERE/plugin_check.py"
command -v gdal_translate >/dev/null || { echo "SKIP: no gdal_translate"; exit 77; }
[ -x "$DECLOUD" ] || { echo "SKIP: $DECLOUD not built"; exit 77; }
[ -f "$PLUGIN" ] || { echo "SKIP: $PLUGIN not built"; exit 77; }
$PY -c 'import numpy, osgeo.gdal' 2>/dev/null || { echo "SKIP: no numpy/osgeo.gdal"; exit 77; }
export GDAL_DRIVER_PATH="$BUILD/plugin"
# A sanitizer build of the plugin needs the runtime in the (uninstrumented) GDAL tools.
if ldd "$PLUGIN" | grep -q libasan; then
  # (libstdc++ too: ASan's __cxa_throw interceptor needs it loaded first, or Python aborts)
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" ASAN_OPTIONS=detect_leaks=0
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-plugin-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
. "$HERE/report.sh"
# tiles W H TILE OVERLAP: number of tiles of diffcr's grid (tile_grid.h)
tiles() {
  local W=$1 H=$2 T=$3 O=$4 S=$(($3 - $4)) nx ny
  if [ "$W" -le "$T" ]; then nx=1; else nx=$(( (W - T + S - 1) / S + 1 )); fi
  if [ "$H" -le "$T" ]; then ny=1; else ny=$(( (H - T + S - 1) / S + 1 )); fi
  echo $((nx * ny))
}
# runs LOG: the model tile runs DECLOUD_STATS printed
runs() { sed -n 's/^decloud: \([0-9]*\) model tile runs.*/\1/p' "$1" | tail -1; }
# translate_runs NAME EXPECTED ARGS...: gdal_translate succeeds and the model ran EXPECTED times
translate_runs() {
  local name="$1" want="$2"; shift 2
  if gdal_translate -q --config DECLOUD_STATS YES "$@" >"$name.log" 2>&1; then
    local got; got=$(runs "$name.log")
    if [ "$got" = "$want" ]; then pass "$name: $got model tile runs"; else fail "$name: $got runs, want $want"; cat "$name.log"; fi
  else
    fail "$name: gdal_translate failed"; cat "$name.log"
  fi
}
