# diffcr integration tests — shared set-up for test_decloud*.sh (sourced, not a test itself).
# Needs DIFFCR_BUILD_DIR (ctest sets it); skips (77) when the tool was not built or /usr/bin/python3
# lacks numpy/osgeo.gdal.
set -u
DECLOUD="${DIFFCR_BUILD_DIR:-}/algorithms/diffcr-decloud"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
DATA="$PY $HERE/decloud_data.py"
if [ ! -x "$DECLOUD" ]; then echo "SKIP: $DECLOUD not built"; exit 77; fi
if ! $PY -c 'import numpy, osgeo.gdal' 2>/dev/null; then echo "SKIP: no numpy/osgeo.gdal"; exit 77; fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-decloud-test.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
. "$HERE/report.sh"
