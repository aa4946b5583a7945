"""Processing algorithm diffcr:decloud -- "Remove clouds (multi-date)".

Runs ``diffcr-decloud DATE1 DATE2 DATE3 OUT --weights MODEL ...`` (or ``--vrt OUT.vrt`` for an
on-the-fly VRT) and loads the result into the project.
"""
import os

from qgis.core import (QgsProcessing, QgsProcessingException, QgsProcessingParameterBoolean,
                       QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterString,
                       QgsRasterFileWriter)

from . import gdal_pixel_function, programs, runner
from .algorithm_base import DEVICES, PRECISIONS, DiffcrAlgorithm, bands_argument, html_help, tr

_TIMING = tr(
    'How long it takes depends on the model size and the number of steps. On the CPU, a '
    '512×512 scene with the small default model takes on the order of a minute on 2 cores; the '
    'paper model (width 64) takes about 10 s per 256×256 tile on 2 CPU cores at 20 steps, so a '
    '10 980×10 980 Sentinel-2 tile takes hours on a laptop and minutes on a GPU (device "cuda" '
    'or "auto" with a CUDA build). Time grows linearly with steps and samples.')

_HELP = tr('''
<p>Fills clouded and shadowed pixels of a scene from <b>three acquisitions of the same place</b>
taken on different dates, with a conditional diffusion model (DiffCR). The output has the grid
(extent, resolution, CRS) of the first date and one band per model band, in the data type of the
inputs.</p>

<h3>What the model expects</h3>
<ul>
<li><b>Exactly 3 dates</b> (the DiffCR models are trained on 3), co-registered or at least
overlapping: dates on another grid or CRS are warped onto the first one (bilinear).</li>
<li><b>Red, green, blue</b> in that order, as <b>surface reflectance × 10000</b> (Sentinel-2 L2A
digital numbers; the Sentinel-2 processing-baseline offset BOA_ADD_OFFSET is applied when present).
For Sentinel-2 these are <b>B4, B3, B2 at 10 m</b>.</li>
<li>Pixels that are nodata in one date are filled from the others; pixels that are nodata in all
dates stay nodata.</li>
</ul>

<h3>Time</h3>
<p>{timing}</p>

<h3>Parameters</h3>
<dl>
<dt>Dates</dt><dd>The 3 cloudy rasters, in date order (the first gives the output grid). Files
must be readable by GDAL; layers are read from their source files, not from QGIS's
rendering.</dd>
<dt>Band mapping</dt><dd>Which band of each date is red, green, blue, e.g. <code>4,3,2</code>
for a full 13-band Sentinel-2 product. Empty: 13-band rasters use 4,3,2, 3- or 4-band rasters use
1,2,3. When the dates have different band counts, give the mapping explicitly.</dd>
<dt>Model file</dt><dd>A DiffCR model in safetensors format (.safetensors), e.g. the shipped
default model, a converted DiffCR checkpoint, or the output of "Train a decloud model".{model_note}</dd>
<dt>Tile size</dt><dd>Pixels per side of the squares the model works on (a multiple of 16).
Not set: the size the model was trained on (256 for DiffCR). Larger tiles need more memory.</dd>
<dt>Tile overlap</dt><dd>Pixels shared by neighbouring tiles and blended, so tile edges do not
show. Not set: a quarter of the tile.</dd>
<dt>Sampling steps</dt><dd>Diffusion solver steps (DPM-Solver++). 20 is DiffCR's setting;
fewer is faster and blurrier.</dd>
<dt>Random seed</dt><dd>The same seed gives the same pixels, run after run.</dd>
<dt>Samples</dt><dd>Runs the model this many times with different noise and averages them (more
stable, K times slower). With 2 or more, the uncertainty raster holds the per-pixel spread.</dd>
<dt>Device</dt><dd>auto (GPU when diffcr was built with CUDA and a GPU is present), cpu or
cuda.</dd>
<dt>GPU arithmetic</dt><dd>(advanced) fp32 (exact, the default), or tf32 / fp16 / bf16 tensor-core
maths on cuda: faster on recent NVIDIA GPUs, slightly different pixels (bf16 the most).</dd>
<dt>Tiles per network call</dt><dd>(advanced) 4 to 8 keep a GPU busy; the pixels do not change.</dd>
<dt>Write a VRT instead</dt><dd>Writes a small GDAL VRT whose bands use the <code>decloud</code>
pixel function instead of computing the whole raster now: pixels are computed when displayed or
exported (e.g. with gdal_translate). Needs the GDAL plugin gdal_decloud.so, which the provider
loads into QGIS; outside QGIS set GDAL_DRIVER_PATH to its folder. The uncertainty raster is not
available in this mode.</dd>
<dt>Cloud-free raster</dt><dd>The output (GeoTIFF; .vrt when writing a VRT).</dd>
<dt>Uncertainty raster</dt><dd>Optional Float32 GeoTIFF: standard deviation of the samples, per
pixel and band, in the output's units.</dd>
</dl>
<p>Cancelling stops the program at the next strip of tiles and deletes the partial output.</p>
''')


class DecloudAlgorithm(DiffcrAlgorithm):
    """Remove clouds from three co-registered dates with diffcr-decloud."""

    PROGRAM = 'diffcr-decloud'
    INPUTS = 'INPUTS'
    BANDS = 'BANDS'
    MODEL = 'MODEL'
    TILE = 'TILE'
    OVERLAP = 'OVERLAP'
    STEPS = 'STEPS'
    SEED = 'SEED'
    SAMPLES = 'SAMPLES'
    DEVICE = 'DEVICE'
    PRECISION = 'PRECISION'
    BATCH = 'BATCH'
    VRT = 'VRT'
    OUTPUT = 'OUTPUT'
    UNCERTAINTY = 'UNCERTAINTY'

    def name(self):
        return 'decloud'

    def displayName(self):  # noqa: N802 (QGIS's name)
        return tr('Remove clouds (multi-date)')

    def shortDescription(self):  # noqa: N802 (QGIS's name)
        return tr('Fill clouded pixels from 3 acquisitions of the same place (DiffCR model).')

    def tags(self):
        return tr('cloud,removal,decloud,sentinel-2,diffusion,multi-temporal,gap filling').split(',')

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        if programs.default_model():
            note = ''
        else:
            note = tr(' <b>The default model is not installed here</b> (looked for {0} beside the '
                      'plugin, in the source tree\'s samples/model and in share/diffcr), so this '
                      'field starts empty: choose a model file.').format(programs.DEFAULT_MODEL_NAME)
        return html_help(_HELP.format(timing=_TIMING, model_note=note))

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.add_parameter(QgsProcessingParameterMultipleLayers(
            self.INPUTS, tr('Dates (3 co-registered acquisitions, same place)'),
            QgsProcessing.TypeRaster),
            tr('The 3 cloudy rasters in date order; the first gives the output grid.'))
        self.add_parameter(QgsProcessingParameterString(
            self.BANDS, tr('Band mapping: red,green,blue band numbers (empty: defaults)'),
            defaultValue='', optional=True),
            tr('E.g. 4,3,2 for Sentinel-2 B4,B3,B2. Empty: 13 bands -> 4,3,2; 3 or 4 bands -> 1,2,3.'))
        self.add_parameter(QgsProcessingParameterFile(
            self.MODEL, tr('Model file'), behavior=QgsProcessingParameterFile.File,
            fileFilter=tr('DiffCR model (*.safetensors)'), defaultValue=programs.default_model(),
            optional=True),
            tr('DiffCR weights in safetensors format. Empty: the shipped default model.'))
        self.add_parameter(QgsProcessingParameterNumber(
            self.TILE, tr('Tile size in pixels (multiple of 16; not set: the model\'s)'),
            QgsProcessingParameterNumber.Integer, defaultValue=None, optional=True,
            minValue=16, maxValue=4096),
            tr('Side of the squares the model runs on.'))
        self.add_parameter(QgsProcessingParameterNumber(
            self.OVERLAP, tr('Tile overlap in pixels (not set: a quarter of the tile)'),
            QgsProcessingParameterNumber.Integer, defaultValue=None, optional=True, minValue=0),
            tr('Pixels blended between neighbouring tiles.'), advanced=True)
        self.add_parameter(QgsProcessingParameterNumber(
            self.STEPS, tr('Sampling steps'), QgsProcessingParameterNumber.Integer,
            defaultValue=20, minValue=1, maxValue=1000),
            tr('Diffusion solver steps; 20 as in DiffCR.'))
        self.add_parameter(QgsProcessingParameterNumber(
            self.SEED, tr('Random seed'), QgsProcessingParameterNumber.Integer, defaultValue=0),
            tr('Same seed, same pixels.'), advanced=True)
        self.add_parameter(QgsProcessingParameterNumber(
            self.SAMPLES, tr('Samples to average'), QgsProcessingParameterNumber.Integer,
            defaultValue=1, minValue=1, maxValue=64),
            tr('K samples: K times slower, smoother; 2 or more give an uncertainty.'))
        self.add_parameter(QgsProcessingParameterEnum(
            self.DEVICE, tr('Device'), options=DEVICES, defaultValue=0),
            tr('auto: GPU when available; cpu; cuda.'))
        self.add_parameter(QgsProcessingParameterEnum(
            self.PRECISION, tr('GPU arithmetic'), options=PRECISIONS, defaultValue=0),
            tr('fp32: exact (the default). tf32 / fp16 / bf16: tensor cores, faster on recent NVIDIA GPUs, '
               'slightly different pixels (bf16 the most). The CPU always computes in fp32.'), advanced=True)
        self.add_parameter(QgsProcessingParameterNumber(
            self.BATCH, tr('Tiles per network call'), QgsProcessingParameterNumber.Integer,
            defaultValue=1, minValue=1, maxValue=64),
            tr('More tiles at once keep a GPU busy (4 to 8); same pixels.'), advanced=True)
        self.add_parameter(QgsProcessingParameterBoolean(
            self.VRT, tr('Write a VRT (decloud pixel function) instead, computed when displayed'),
            defaultValue=False),
            tr('Writes OUTPUT as a .vrt using the decloud pixel function (gdal_decloud.so).'))
        self.add_parameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, tr('Cloud-free raster')),
            tr('GeoTIFF (or .vrt in VRT mode) with the cloud-free red, green, blue.'))
        self.add_parameter(QgsProcessingParameterRasterDestination(
            self.UNCERTAINTY, tr('Uncertainty raster (std of the samples)'), optional=True,
            createByDefault=False),
            tr('Float32 GeoTIFF: per-pixel standard deviation of the samples.'))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        """Clear messages for what QGIS's generic checks would only call 'incorrect'."""
        model = self.parameterAsFile(parameters, self.MODEL, context) or programs.default_model()
        if not model:
            return False, tr('No model file given (the default model {0} is not installed). '
                             'Choose a DiffCR .safetensors model, e.g. one made by "Train a '
                             'decloud model".').format(programs.DEFAULT_MODEL_NAME)
        tile = parameters.get(self.TILE)
        if tile not in (None, ''):
            tile = self.parameterAsInt(parameters, self.TILE, context)
            if tile % 16:
                return False, tr('Tile size {0} is not a multiple of 16.').format(tile)
        return super().checkParameterValues(parameters, context)

    def _check_inputs(self, layers, bands):
        """The checks the program cannot make as clearly (it sees paths, not layers)."""
        if len(layers) < 2:
            raise QgsProcessingException(tr(
                'Only {0} date given: the model fills clouds of one date from the others, so it '
                'needs 3 rasters of the same place taken on different dates.').format(len(layers)))
        counts = [layer.bandCount() for layer in layers]
        if not bands and len(set(counts)) > 1:
            # The default bands depend on the band count (13 -> 4,3,2; 3/4 -> 1,2,3), so mixed
            # counts would compare different bands between dates without any error.
            raise QgsProcessingException(tr(
                'The dates have different numbers of bands ({0}): they look like different '
                'products. Use rasters of the same product, or give the band mapping (e.g. 1,2,3) '
                'to say which bands are red, green and blue in every date.').format(
                    ', '.join(str(c) for c in counts)))
        for layer in layers:
            if layer.providerType() != 'gdal':
                raise QgsProcessingException(tr(
                    'Layer "{0}" is not a file-based (GDAL) raster; save it as a GeoTIFF first.')
                    .format(layer.name()))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        layers = self.parameterAsLayerList(parameters, self.INPUTS, context)
        bands = bands_argument(self.parameterAsString(parameters, self.BANDS, context))
        self._check_inputs(layers, bands)
        model = self.parameterAsFile(parameters, self.MODEL, context) or programs.default_model()
        if not model:
            raise QgsProcessingException(tr('No model file given (the default model {0} is not '
                                            'installed).').format(programs.DEFAULT_MODEL_NAME))
        if not os.path.isfile(model):
            raise QgsProcessingException(tr('Model file not found: {0}').format(model))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context)
        if uncertainty and not uncertainty.lower().endswith(('.tif', '.tiff')):
            raise QgsProcessingException(tr('The uncertainty raster is always a GeoTIFF: give it '
                                            'a .tif name ({0}).').format(uncertainty))
        vrt = self.parameterAsBoolean(parameters, self.VRT, context) or \
            output.lower().endswith('.vrt')
        program = self.program()

        args = [program] + [layer.source() for layer in layers]
        args += ['--weights', model]
        if bands:
            args += ['-b', bands]
        if parameters.get(self.TILE) not in (None, ''):
            args += ['--tile', str(self.parameterAsInt(parameters, self.TILE, context))]
        if parameters.get(self.OVERLAP) not in (None, ''):
            args += ['--overlap', str(self.parameterAsInt(parameters, self.OVERLAP, context))]
        args += ['--steps', str(self.parameterAsInt(parameters, self.STEPS, context))]
        args += ['--seed', str(self.parameterAsInt(parameters, self.SEED, context))]
        samples = self.parameterAsInt(parameters, self.SAMPLES, context)
        args += ['--samples', str(samples)]
        args += ['--device', DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]
        precision = PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)]
        if precision != 'fp32':
            args += ['--precision', precision]
        batch = self.parameterAsInt(parameters, self.BATCH, context)
        if batch > 1:
            args += ['--batch', str(batch)]

        results = {}
        if vrt:
            output = self._vrt_output(output, context)
            if uncertainty:
                feedback.pushWarning(tr('The uncertainty raster is not written in VRT mode.'))
            args += ['--vrt', output]
            runner.run_program(args, feedback, outputs=[output])
            if gdal_pixel_function.register_pixel_function() is None:
                feedback.pushWarning(tr(
                    'gdal_decloud.so was not found, so QGIS cannot display the VRT; install it '
                    'beside the programs (scripts/install_qgis_plugin.sh).'))
            results[self.OUTPUT] = output
            return results

        driver = QgsRasterFileWriter.driverForExtension(os.path.splitext(output)[1])
        if driver and driver != 'GTiff':
            args += ['-of', driver]
        if uncertainty:
            args += ['--uncertainty', uncertainty]
        args.append(output)
        runner.run_program(args, feedback, outputs=[output, uncertainty])
        results[self.OUTPUT] = output
        if uncertainty:
            results[self.UNCERTAINTY] = uncertainty
        return results

    @staticmethod
    def _vrt_output(output, context):
        """The .vrt path for OUTPUT, moving QGIS's load-on-completion entry along with it."""
        if output.lower().endswith('.vrt'):
            return output
        vrt = os.path.splitext(output)[0] + '.vrt'
        loads = context.layersToLoadOnCompletion()
        if output in loads:
            details = loads.pop(output)
            loads[vrt] = details
            context.setLayersToLoadOnCompletion(loads)
        return vrt
