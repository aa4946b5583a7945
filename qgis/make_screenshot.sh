#!/usr/bin/env bash
# Screenshot of the "Remove clouds (multi-date)" dialog: qgis/screenshot_decloud.png (or $1).
# Runs QGIS's Processing algorithm dialog under a virtual X server (xvfb-run), with Debian's
# /usr/bin/python3 (python3-qgis). The screenshot's help panel reflects the programs and
# default model found at the time (DIFFCR_BIN_DIR etc.; see qgis/README.md).
set -eu
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/screenshot_decloud.png}"
command -v xvfb-run >/dev/null || { echo "xvfb-run not found (apt-get install xvfb)" >&2; exit 1; }
# QGIS keeps settings under $HOME: use a scratch one so the user's profile is not touched.
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/diffcr-shot-home.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
chmod 700 "$SCRATCH"
HOME="$SCRATCH" XDG_RUNTIME_DIR="$SCRATCH" PYTHONDONTWRITEBYTECODE=1 \
  xvfb-run -a -s "-screen 0 1280x1024x24" /usr/bin/python3 "$HERE/make_screenshot.py" "$OUT"
