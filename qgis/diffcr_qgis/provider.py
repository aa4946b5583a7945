"""The Processing provider "DiffCR cloud removal" (id ``diffcr``)."""
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import gdal_pixel_function, programs
from .alg_decloud import DecloudAlgorithm
from .alg_evaluate import EvaluateAlgorithm
from .alg_train import TrainAlgorithm


class DiffcrProvider(QgsProcessingProvider):
    """Holds the decloud, train and evaluate algorithms."""

    def id(self):
        return 'diffcr'

    def name(self):
        return 'DiffCR cloud removal'

    def longName(self):  # noqa: N802 (QGIS's name)
        return 'DiffCR cloud removal (diffcr command-line programs)'

    def icon(self):
        return QIcon(os.path.join(programs.PLUGIN_DIR, 'icon.svg'))

    def load(self):
        """Also teach QGIS's GDAL the decloud pixel function, so saved decloud VRTs display."""
        gdal_pixel_function.register_pixel_function()
        return super().load()

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        for alg in (DecloudAlgorithm(), TrainAlgorithm(), EvaluateAlgorithm()):
            self.addAlgorithm(alg)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS's name)
        # diffcr-decloud writes GeoTIFF (its -of needs a GDAL driver that can Create); .vrt is
        # the on-the-fly mode. Offering only these keeps QGIS from proposing formats it lacks.
        return ['tif', 'vrt']
