"""Shared set-up for the QGIS provider tests (tests/integration/qgis_*.py; not a test itself).

Run by tests/integration/test_qgis.sh with Debian's /usr/bin/python3, QT_QPA_PLATFORM=offscreen,
DIFFCR_BUILD_DIR / DIFFCR_SOURCE_DIR from ctest and DIFFCR_BIN_DIR pointing the plugin at the
build's programs. Each test script prints PASS/FAIL/SKIP lines and ends with ``finish()``:
exit 1 when something failed, 77 when something was skipped (a part not built yet), else 0.
"""
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

BUILD = os.environ['DIFFCR_BUILD_DIR']
SOURCE = os.environ['DIFFCR_SOURCE_DIR']
sys.path.insert(0, os.path.join(SOURCE, 'qgis'))

_counts = {'pass': 0, 'fail': 0, 'skip': 0}


def program(name):
    """Path of a built program in the build tree, or None."""
    for sub in ('algorithms', 'core', 'plugin', '.'):
        path = os.path.join(BUILD, sub, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def passed(what):
    _counts['pass'] += 1
    print('PASS: ' + what, flush=True)


def failed(what):
    _counts['fail'] += 1
    print('FAIL: ' + what, flush=True)


def skipped(what):
    _counts['skip'] += 1
    print('SKIP: ' + what, flush=True)


def check(name, fn):
    """Run one test function; an AssertionError or any exception is a failure."""
    try:
        result = fn()
    except Exception:  # noqa: BLE001 -- report every kind of failure, then go on
        failed(name)
        traceback.print_exc()
        return
    if isinstance(result, str) and result.startswith('skip:'):
        skipped('{0}: {1}'.format(name, result[5:].strip()))
    else:
        passed(name)


def finish():
    """Exit status for test_qgis.sh: 1 failed, 77 skipped parts, 0 all passed."""
    print('{pass} passed, {fail} failed, {skip} skipped'.format(**_counts), flush=True)
    if _counts['fail']:
        sys.exit(1)
    if _counts['skip']:
        sys.exit(77)
    sys.exit(0)


def start_qgis():
    """QgsApplication without GUI, Processing initialised, the diffcr provider registered."""
    from qgis.core import QgsApplication
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), 'python', 'plugins'))
    from processing.core.Processing import Processing
    Processing.initialize()
    from diffcr_qgis.provider import DiffcrProvider
    provider = DiffcrProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


def workdir():
    """A temporary folder removed at exit."""
    d = tempfile.TemporaryDirectory(prefix='diffcr-qgis-test.')
    return d


def write_raster(path, arr, gt=(380000.0, 10.0, 0.0, 5820000.0, 0.0, -10.0), epsg=32633):
    """arr [bands, h, w] -> UInt16 GeoTIFF in UTM."""
    bands, h, w = arr.shape
    ds = gdal.GetDriverByName('GTiff').Create(path, w, h, bands, gdal.GDT_UInt16)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray(arr[b])
    ds = None


def make_dates(folder, w=96, h=80, bands=3, prefix='d', clouds=True):
    """Three dates of a smooth scene (reflectance x 10000), with a bright blob per date."""
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for d in range(3):
        arr = np.empty((bands, h, w), np.float64)
        for b in range(bands):
            arr[b] = 1500 + 800 * np.sin(xx / 9.0 + b) * np.cos(yy / 7.0 + d) + 200 * b
        if clouds:
            cy, cx, r = h * (0.3 + 0.2 * d), w * (0.7 - 0.2 * d), min(w, h) / 5.0
            op = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            arr = arr * (1 - op) + 7000 * op
        path = os.path.join(folder, '{0}{1}.tif'.format(prefix, d))
        write_raster(path, np.clip(arr, 0, 10000).astype(np.uint16))
        paths.append(path)
    return paths


def make_model(folder, name='w.safetensors'):
    """Tiny random DiffCR weights: diffcr-net init --config configs/tiny_test.json."""
    path = os.path.join(folder, name)
    subprocess.run([program('diffcr-net'), 'init', '--config',
                    os.path.join(SOURCE, 'configs', 'tiny_test.json'), '--output', path,
                    '--seed', '3'], check=True, stdout=subprocess.DEVNULL)
    return path


def read(path):
    """All bands as a float64 array."""
    return gdal.Open(path).ReadAsArray().astype(np.float64)


def run_cli(args):
    """Run a program, return CompletedProcess (text)."""
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
