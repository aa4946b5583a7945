#!/usr/bin/env bash
# The QGIS Processing provider (qgis/diffcr_qgis), headless: runs every tests/integration/qgis_*.py
# (qgis_common.py is their shared module) with Debian's /usr/bin/python3 and
# QT_QPA_PLATFORM=offscreen, the plugin pointed at this build's programs through DIFFCR_BIN_DIR.
# Exit: 1 if any script failed; else 77 (skipped) if any part was skipped -- e.g. diffcr-decloud
# --vrt not written yet -- so a partial run never reads as a full pass; else 0.
# Skips (77) entirely when python3-qgis, numpy or osgeo.gdal are not importable.
set -u
BUILD=${DIFFCR_BUILD_DIR:?DIFFCR_BUILD_DIR not set (ctest sets it)}
SRC=${DIFFCR_SOURCE_DIR:?DIFFCR_SOURCE_DIR not set (ctest sets it)}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
export QT_QPA_PLATFORM=offscreen
if ! $PY -c 'import qgis.core' 2>/dev/null; then
  echo "SKIP: python3-qgis not importable by $PY (apt-get install python3-qgis)"; exit 77
fi
if ! $PY -c 'import numpy, osgeo.gdal' 2>/dev/null; then
  echo "SKIP: numpy/osgeo.gdal not importable by $PY"; exit 77
fi
for p in algorithms/diffcr-decloud algorithms/diffcr-evaluate core/diffcr-net; do
  [ -x "$BUILD/$p" ] || { echo "SKIP: $BUILD/$p not built"; exit 77; }
done
export DIFFCR_BUILD_DIR="$BUILD" DIFFCR_SOURCE_DIR="$SRC"
# A build tree keeps the programs in several folders; DIFFCR_BIN_DIR takes a PATH-like list.
export DIFFCR_BIN_DIR="$BUILD/algorithms:$BUILD/core:$BUILD/plugin"
# QGIS writes its settings under $HOME and wants a runtime dir: keep both out of the real ones.
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-qgis-home.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
export HOME="$SCRATCH" XDG_RUNTIME_DIR="$SCRATCH"
chmod 700 "$SCRATCH"
export PYTHONDONTWRITEBYTECODE=1

failed=0 skipped=0
for t in "$HERE"/qgis_*.py; do
  name=$(basename "$t")
  [ "$name" = qgis_common.py ] && continue
  echo "== $name"
  (cd "$HERE" && timeout 300 $PY "$t")
  rc=$?
  case $rc in
    0) ;;
    77) skipped=$((skipped + 1)) ;;
    *) echo "== $name: FAILED (exit $rc)"; failed=$((failed + 1)) ;;
  esac
done
if [ $failed -ne 0 ]; then echo "test_qgis: $failed script(s) failed"; exit 1; fi
if [ $skipped -ne 0 ]; then echo "test_qgis: passed, but $skipped script(s) skipped parts (see SKIP lines)"; exit 77; fi
echo "test_qgis: all passed"
