"""What the three diffcr algorithms share: naming, help plumbing and finding their program."""
import os
import re

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from . import programs

DEVICES = ['auto', 'cpu', 'cuda']
PRECISIONS = ['fp32', 'tf32', 'fp16', 'bf16']


def html_help(text):
    """Help HTML on one line: QGIS's help panel turns every newline into a line break."""
    return re.sub(r'\s*\n\s*', ' ', text).strip()


def tr(text):
    """Translatable string (context 'DiffCR')."""
    return QCoreApplication.translate('DiffCR', text)


class DiffcrAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set PROGRAM and implement the QGIS algorithm methods."""

    PROGRAM = None

    def createInstance(self):  # noqa: N802 (QGIS's name)
        """QGIS runs every execution on a fresh instance."""
        return type(self)()

    def group(self):
        return None

    def groupId(self):  # noqa: N802 (QGIS's name)
        return None

    def icon(self):
        return QIcon(os.path.join(programs.PLUGIN_DIR, 'icon.svg'))

    def helpUrl(self):  # noqa: N802 (QGIS's name)
        return ''

    def add_parameter(self, param, help_text, advanced=False):
        """addParameter plus the per-parameter help (shown as the widget's tooltip)."""
        if hasattr(param, 'setHelp'):
            param.setHelp(help_text)
        if advanced:
            param.setFlags(param.flags() | param.FlagAdvanced)
        self.addParameter(param)
        return param

    def program(self, name=None):
        """Absolute path of this algorithm's program; QgsProcessingException if not found."""
        name = name or self.PROGRAM
        path = programs.find_program(name)
        if path is None:
            raise QgsProcessingException(programs.program_not_found_message(name))
        return path


def bands_argument(text):
    """Validate a band mapping like "4,3,2" (spaces allowed); return "4,3,2" or '' for none."""
    text = (text or '').strip()
    if not text:
        return ''
    parts = [p.strip() for p in text.split(',')]
    if not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise QgsProcessingException(
            tr('Band mapping "{0}" is not a comma-separated list of band numbers such as 4,3,2.')
            .format(text))
    return ','.join(str(int(p)) for p in parts)
