"""Make QGIS's own GDAL know the ``decloud`` pixel function, so decloud VRTs display in QGIS.

A VRT written by ``diffcr-decloud --vrt`` computes its pixels when read, through the pixel
function that gdal_decloud.so registers. GDAL loads such plugins only from GDAL_DRIVER_PATH at
start-up, and QGIS on Linux never sets it, so the provider loads the library itself and calls
its register function (idempotent, it loads no model: cheap and safe to call more than once).
Outside QGIS (gdal_translate, Python) set GDAL_DRIVER_PATH to the folder holding the .so.
"""
import ctypes

from qgis.core import Qgis, QgsMessageLog

from . import programs

_registered = None   # path of the library registered in this process, once done


def register_pixel_function():
    """Register ``decloud`` in this process's GDAL; return the library's path or None."""
    global _registered
    if _registered:
        return _registered
    path = programs.find_gdal_plugin()
    if not path:
        return None
    try:
        lib = ctypes.CDLL(path)
        lib.GDALRegister_decloud.restype = None
        lib.GDALRegister_decloud()
    except (OSError, AttributeError) as e:
        QgsMessageLog.logMessage('Cannot load {0}: {1}'.format(path, e), 'DiffCR', Qgis.Warning)
        return None
    _registered = path
    return path
