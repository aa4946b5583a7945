"""The QGIS plugin object: registers the diffcr Processing provider, nothing else.

initProcessing() is what qgis_process calls for plugins with hasProcessingProvider=yes; the GUI
calls initGui(), which does the same. The plugin adds no menus or toolbar: everything is in the
Processing Toolbox under "DiffCR cloud removal".
"""
from qgis.core import QgsApplication


class DiffcrPlugin:
    """Adds the provider on load and removes it on unload."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        """Create and register the provider (idempotent)."""
        if self.provider is None:
            from .provider import DiffcrProvider
            self.provider = DiffcrProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS's name)
        """GUI start-up: only the provider."""
        self.initProcessing()

    def unload(self):
        """Plugin unloaded or QGIS closing."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
