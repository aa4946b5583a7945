#!/usr/bin/env bash
# diffcr — install what the build and the tests need from Debian 12's packages (idempotent).
# Used by scripts/test.sh and scripts/demo.sh; skips apt entirely when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config           # compiler and build
  libopenblas-openmp-dev libdnnl-dev         # BLAS (one OpenMP pool) + oneDNN convolutions
  libcjson-dev check                         # JSON configs, unit tests
  libboost-context-dev                       # fibers of the CUDA simulator (tests/cudasim)
  libgdal-dev gdal-bin python3-gdal libproj-dev proj-bin   # raster side
  python3-numpy python3-torch python3-skimage              # PyTorch oracle, metrics reference
  time                                       # max RSS in memory tests
  qgis python3-qgis xvfb                     # QGIS provider tests (headless) and its screenshot
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "diffcr: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
