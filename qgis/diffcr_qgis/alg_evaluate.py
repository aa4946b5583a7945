"""Processing algorithm diffcr:evaluate -- "Evaluate a decloud result".

Runs ``diffcr-evaluate RESULT REFERENCE --json --html OUT.html`` and returns the metrics both as
the HTML report (shown in the Results Viewer) and as numbers in the results (usable in models).
"""
import json
import math

from qgis.core import (QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)

from . import runner
from .algorithm_base import DiffcrAlgorithm, bands_argument, html_help, tr

_HELP = tr('''
<p>Compares a cloud-free result with a <b>clear reference</b> image of the same place and date
(e.g. a cloudless acquisition you kept out of the input dates, or simulated clouds over a clear
image) and reports how close they are.</p>
<h3>Metrics</h3>
<ul>
<li><b>MAE</b> and <b>RMSE</b>: mean absolute / root-mean-square error in reflectance
(digital numbers divided by the scale, 10000 for Sentinel-2). Lower is better.</li>
<li><b>PSNR</b> (dB, peak 1.0 reflectance) and <b>SSIM</b> (Gaussian window, 0 to 1): higher is
better.</li>
<li><b>Paper protocol</b>: the DiffCR paper's PSNR and SSIM, computed on the 8-bit RGB images its
code derives from the reflectances; use these to compare with published numbers.</li>
</ul>
<p>Both rasters must have the same size; the compared bands are red, green, blue (default bands
1,2,3 of each). A mask restricts MAE, RMSE and PSNR to its nonzero pixels (e.g. the cloud mask,
to judge only the filled pixels); SSIM and the paper protocol always use the whole image, as the
paper does. Nodata pixels of either raster are left out. Takes seconds.</p>
<h3>Parameters</h3>
<dl>
<dt>Result</dt><dd>The cloud-free raster to judge (e.g. the output of "Remove clouds").</dd>
<dt>Reference</dt><dd>The clear image, same grid.</dd>
<dt>Bands</dt><dd>Bands to compare, e.g. <code>1,2,3</code> (the same numbers in both
rasters). Empty: the first three.</dd>
<dt>Scale</dt><dd>Digital numbers per unit reflectance: 10000 for Sentinel-2 L2A and the diffcr
outputs.</dd>
<dt>Mask</dt><dd>Optional raster whose band 1 is nonzero where to evaluate.</dd>
<dt>Report</dt><dd>HTML table of every metric, per band too.</dd>
</dl>
''')

# results key -> (path in diffcr-evaluate's JSON, description)
METRICS = {
    'MAE': (('reflectance', 'mae'), 'MAE (reflectance)'),
    'RMSE': (('reflectance', 'rmse'), 'RMSE (reflectance)'),
    'PSNR': (('reflectance', 'psnr'), 'PSNR (dB, reflectance)'),
    'SSIM': (('reflectance', 'ssim'), 'SSIM (reflectance, Gaussian)'),
    'PAPER_PSNR': (('paper', 'psnr'), 'PSNR (DiffCR paper protocol)'),
    'PAPER_SSIM': (('paper', 'ssim'), 'SSIM (DiffCR paper protocol)'),
}


def _number(value):
    """JSON value -> float: "inf" (identical images) -> math.inf, null (too small) -> None."""
    if value is None:
        return None
    if value == 'inf':
        return math.inf
    return float(value)


class EvaluateAlgorithm(DiffcrAlgorithm):
    """MAE, PSNR, SSIM and the paper protocol with diffcr-evaluate."""

    PROGRAM = 'diffcr-evaluate'
    RESULT = 'RESULT'
    REFERENCE = 'REFERENCE'
    BANDS = 'BANDS'
    SCALE = 'SCALE'
    MASK = 'MASK'
    OUTPUT_HTML = 'OUTPUT_HTML'

    def name(self):
        return 'evaluate'

    def displayName(self):  # noqa: N802 (QGIS's name)
        return tr('Evaluate a decloud result')

    def shortDescription(self):  # noqa: N802 (QGIS's name)
        return tr('MAE, PSNR and SSIM of a cloud-free result against a clear reference.')

    def tags(self):
        return tr('evaluate,metrics,psnr,ssim,mae,accuracy,cloud removal').split(',')

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return html_help(_HELP)

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.add_parameter(QgsProcessingParameterRasterLayer(
            self.RESULT, tr('Result (cloud-free raster to judge)')),
            tr('E.g. the output of "Remove clouds (multi-date)".'))
        self.add_parameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE, tr('Reference (clear image, same grid)')),
            tr('A cloudless image of the same place and time.'))
        self.add_parameter(QgsProcessingParameterString(
            self.BANDS, tr('Bands to compare (empty: 1,2,3)'), defaultValue='', optional=True),
            tr('Comma-separated band numbers, the same in both rasters.'))
        self.add_parameter(QgsProcessingParameterNumber(
            self.SCALE, tr('Digital numbers per unit reflectance'),
            QgsProcessingParameterNumber.Double, defaultValue=10000, minValue=1e-9),
            tr('10000 for Sentinel-2 L2A.'), advanced=True)
        self.add_parameter(QgsProcessingParameterRasterLayer(
            self.MASK, tr('Mask (band 1 nonzero = evaluate)'), optional=True),
            tr('Restricts MAE, RMSE and PSNR to these pixels.'))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, tr('Report'), fileFilter=tr('HTML files (*.html)')),
            tr('HTML table of every metric.'))
        for key, (_path, description) in METRICS.items():
            self.addOutput(QgsProcessingOutputNumber(key, tr(description)))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        result = self.parameterAsRasterLayer(parameters, self.RESULT, context)
        reference = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        mask = self.parameterAsRasterLayer(parameters, self.MASK, context)
        bands = bands_argument(self.parameterAsString(parameters, self.BANDS, context))
        scale = self.parameterAsDouble(parameters, self.SCALE, context)
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        if result is None or reference is None:
            raise QgsProcessingException(tr('Both a result and a reference raster are needed.'))

        args = [self.program(), result.source(), reference.source(), '--json', '--html', html,
                '--scale', repr(scale)]
        if bands:
            args += ['-b', bands]
        if mask is not None:
            args += ['--mask', mask.source()]
        stdout = runner.run_program(args, feedback, outputs=[html])
        try:
            report = json.loads(stdout)
        except ValueError as e:
            raise QgsProcessingException(
                tr('diffcr-evaluate printed something that is not JSON ({0}).').format(e))

        results = {self.OUTPUT_HTML: html}
        for key, (path, description) in METRICS.items():
            node = report
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            results[key] = _number(node)
            if results[key] is not None:
                feedback.pushInfo('{0}: {1:.6g}'.format(description, results[key]))
        return results
