#!/usr/bin/env bash
# Install the diffcr QGIS plugin (qgis/diffcr_qgis) with the built programs, ready to enable.
#
#   scripts/install_qgis_plugin.sh [PLUGINS_DIR]
#
# PLUGINS_DIR: a QGIS profile's plugin folder (default
# ~/.local/share/QGIS/QGIS3/profiles/default/python/plugins) or any folder you then list in
# QGIS_PLUGINPATH. Copies into PLUGINS_DIR/diffcr_qgis/:
#   the plugin's Python files; bin/ <- diffcr-decloud, diffcr-train, diffcr-evaluate, diffcr-net,
#   diffcr-simulate and gdal_decloud.so from the build (those that are built); configs/ <- the
#   training configs; model/ <- samples/model/diffcr_default.safetensors if it exists.
# The build folder is $DIFFCR_BUILD_DIR, else build/ in the source tree (override: --build DIR).
# An existing PLUGINS_DIR/diffcr_qgis is replaced (only that folder).
set -eu
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DIFFCR_BUILD_DIR:-$SRC/build}"
DEST=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install_qgis_plugin.sh: unknown option $1" >&2; exit 2 ;;
    *) DEST="$1"; shift ;;
  esac
done
DEST="${DEST:-$HOME/.local/share/QGIS/QGIS3/profiles/default/python/plugins}"
PLUGIN="$DEST/diffcr_qgis"

[ -f "$SRC/qgis/diffcr_qgis/metadata.txt" ] || { echo "install_qgis_plugin.sh: $SRC/qgis/diffcr_qgis missing" >&2; exit 1; }
mkdir -p "$DEST"
rm -rf "$PLUGIN"
mkdir -p "$PLUGIN/bin" "$PLUGIN/configs"
# The Python files, without byte-code caches and without any bin/ of a previous copy.
(cd "$SRC/qgis/diffcr_qgis" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path './bin/*' \
   -exec cp --parents {} "$PLUGIN/" \;)

found=0
for prog in diffcr-decloud diffcr-train diffcr-evaluate diffcr-net diffcr-simulate gdal_decloud.so; do
  path=""
  for sub in algorithms core plugin .; do
    if [ -f "$BUILD/$sub/$prog" ]; then path="$BUILD/$sub/$prog"; break; fi
  done
  if [ -n "$path" ]; then
    cp "$path" "$PLUGIN/bin/"
    echo "  bin/$prog  <- $path"
    found=$((found + 1))
  else
    echo "  bin/$prog  (not built in $BUILD; skipped)"
  fi
done
cp "$SRC"/configs/*.json "$PLUGIN/configs/" 2>/dev/null || true
if [ -f "$SRC/samples/model/diffcr_default.safetensors" ]; then
  mkdir -p "$PLUGIN/model"
  cp "$SRC/samples/model/diffcr_default.safetensors" "$PLUGIN/model/"
  echo "  model/diffcr_default.safetensors"
else
  echo "  (no samples/model/diffcr_default.safetensors yet: choose a model file in the dialog)"
fi
echo "Installed the diffcr QGIS plugin in $PLUGIN"
if [ "$found" -eq 0 ]; then
  echo "warning: no programs found in $BUILD: build diffcr first (cmake -S . -B build && cmake --build build)," \
       "rerun with --build DIR, or set DIFFCR_BIN_DIR before starting QGIS" >&2
fi
case "$DEST" in
  */profiles/*/python/plugins) echo "Enable it in QGIS: Plugins > Manage and Install Plugins > Installed > DiffCR cloud removal" ;;
  *) echo "Start QGIS with QGIS_PLUGINPATH=$DEST, then enable 'DiffCR cloud removal' in the Plugin Manager" \
          "(headless: QGIS_PLUGINPATH=$DEST qgis_process.bin plugins enable diffcr_qgis)" ;;
esac
