"""DiffCR cloud removal: a QGIS Processing provider driving the diffcr command-line programs."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS entry point: build the plugin object."""
    from .plugin import DiffcrPlugin
    return DiffcrPlugin(iface)
