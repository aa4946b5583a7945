#!/usr/bin/python3
"""Render the "Remove clouds (multi-date)" dialog and save it as a PNG (needs an X display:
run through make_screenshot.sh, which starts Xvfb).

QGIS's processing.createAlgorithmDialog() asks qgis.utils.iface for the main window, which a
standalone script does not have, so a minimal stand-in iface is installed before Processing is
imported. Three generated dates are added to the project so the dialog shows a filled-in form.
Usage: make_screenshot.py OUT.png
"""
import os
import sys
import tempfile

import numpy as np
from osgeo import gdal, osr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402
from qgis.gui import QgsMapCanvas  # noqa: E402
from qgis.PyQt.QtWidgets import QMainWindow  # noqa: E402

app = QgsApplication([], True)
app.initQgis()


class StandInIface:
    """Just enough of QgisInterface for the algorithm dialog."""

    def __init__(self):
        self.window = QMainWindow()
        self.canvas = QgsMapCanvas(self.window)

    def mainWindow(self):  # noqa: N802 (QGIS's name)
        return self.window

    def mapCanvas(self):  # noqa: N802 (QGIS's name)
        return self.canvas

    def activeLayer(self):  # noqa: N802 (QGIS's name)
        return None

    def __getattr__(self, name):
        return lambda *a, **k: None


import qgis.utils  # noqa: E402
qgis.utils.iface = StandInIface()
sys.path.append(os.path.join(QgsApplication.pkgDataPath(), 'python', 'plugins'))
from processing.core.Processing import Processing  # noqa: E402
Processing.initialize()
import processing  # noqa: E402
from diffcr_qgis.provider import DiffcrProvider  # noqa: E402

# Keep a reference: a provider object left to the garbage collector disappears from the registry.
_provider = DiffcrProvider()
if not QgsApplication.processingRegistry().addProvider(_provider):
    sys.exit("cannot add the diffcr provider")

# Three small Sentinel-2-like dates (B4,B3,B2 as 3 bands) in UTM 33N.
work = tempfile.mkdtemp(prefix='diffcr-screenshot.')
srs = osr.SpatialReference()
srs.ImportFromEPSG(32633)
paths = []
for d, name in enumerate(('S2_20230604_B432', 'S2_20230614_B432', 'S2_20230624_B432')):
    path = os.path.join(work, name + '.tif')
    ds = gdal.GetDriverByName('GTiff').Create(path, 64, 64, 3, gdal.GDT_UInt16)
    ds.SetGeoTransform([380000, 10, 0, 5820000, 0, -10])
    ds.SetProjection(srs.ExportToWkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray((1000 + 300 * d + np.arange(64 * 64).reshape(64, 64) % 500).astype(np.uint16))
    ds = None
    QgsProject.instance().addMapLayer(QgsRasterLayer(path, name))
    paths.append(path)

dialog = processing.createAlgorithmDialog('diffcr:decloud', {
    'INPUTS': paths, 'BANDS': '', 'STEPS': 20, 'SAMPLES': 1, 'DEVICE': 0})
dialog.resize(1100, 760)
dialog.show()
for _ in range(20):
    app.processEvents()
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'screenshot_decloud.png')
ok = dialog.grab().save(out)
print('saved' if ok else 'FAILED to save', out)
dialog.close()
app.exitQgis()
sys.exit(0 if ok else 1)
