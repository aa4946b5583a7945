"""Processing algorithm diffcr:train -- "Train a decloud model".

Runs ``diffcr-train -c CONFIG --out DIR [--iters N] --device D``. The trainer writes
DIR/model.safetensors (the model for "Remove clouds"), DIR/checkpoint.safetensors,
DIR/metrics.jsonl, DIR/loss.png and DIR/tb/ (TensorBoard). The datasets are part of the config
(DiffCR's schema); when the user picks a dataset here, the provider writes a copy of the config
with the train dataset replaced (DIR/train_config.json) and trains on that.
"""
import json
import os
import re
import shutil

from qgis.core import (QgsProcessingException, QgsProcessingOutputFile,
                       QgsProcessingOutputHtml,
                       QgsProcessingOutputNumber, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterNumber)

from . import programs, runner
from .algorithm_base import DEVICES, PRECISIONS, DiffcrAlgorithm, html_help, tr

# The trainer's progress line (stderr, one every log_iter steps when not on a terminal):
# "diffcr-train: [#####...] it 40/150 loss 0.01234 3.10 it/s ETA 0:35 lr 2.00e-03"
_STEP_LINE = re.compile(r'\bit (\d+)/(\d+) loss ([-+0-9.eEinfa]+)')
# What the trainer writes into DIR (removed again when a run is cancelled or fails).
_RUN_FILES = ('model.safetensors', 'checkpoint.safetensors', 'metrics.jsonl', 'loss.png',
              'train_config.json', 'report.html')
_RUN_DIRS = ('tb', 'previews')

_HELP = tr('''
<p>Fits a DiffCR cloud-removal model on your own examples: each example is <b>three cloudy
acquisitions</b> of a place and <b>one clear image</b> of it (the target), as co-registered
rasters of the same size (R, G, B in reflectance × 10000, e.g. Sentinel-2 B4, B3, B2). The model
it writes (<code>model.safetensors</code> in the output folder) is what "Remove clouds
(multi-date)" takes as its model file.</p>
<h3>Dataset</h3>
<ul>
<li><b>CSV file</b>: one example per line, <code>date1,date2,date3,target</code> raster paths
(relative paths are relative to the CSV; a header line ending in "target" is allowed).</li>
<li><b>Folder</b> in the Sen2_MTC_New layout used by DiffCR: <code>train.txt</code> (and
<code>val.txt</code>) listing tiles, <code>Sen2_MTC/&lt;tile&gt;/cloud/&lt;name&gt;_0..2.tif</code>
and <code>Sen2_MTC/&lt;tile&gt;/cloudless/&lt;name&gt;.tif</code>.</li>
<li>Neither: the datasets named in the config are used.</li>
</ul>
<p>With a CSV dataset there is no validation split (validation uses the config's only when no
dataset is chosen here); a folder dataset validates on its <code>val.txt</code> when there is
one. Images whose size or band count do not fit are skipped with a warning.</p>
<h3>Config</h3>
<p>A DiffCR-schema JSON config (comments allowed): the network size, the noise schedules, the
optimiser, batch size, the number of iterations, validation and checkpoint intervals.
<code>configs/train_tiny.json</code> (a width-8 network on 32×32 tiles) trains in a minute on a
CPU and is meant for trying things out; <code>configs/diffcr_paper.json</code> is the published
recipe (width 64, 256×256 tiles), which needs a GPU and days.</p>
<h3>Time</h3>
<p>Depends on the network size, tile size and batch: the tiny config runs tens of iterations
per second on 2 CPU cores; the paper network takes seconds per iteration on a CPU and is only
practical on a GPU (device cuda). Progress follows the trainer's step count; the log shows the
loss.</p>
<h3>Parameters</h3>
<dl>
<dt>Dataset: CSV file / folder</dt><dd>See above; give at most one.</dd>
<dt>Config</dt><dd>The training config (.json).</dd>
<dt>Iterations</dt><dd>Training steps in total. Not set: the config's <code>train.n_iter</code>.</dd>
<dt>Device</dt><dd>auto (GPU when available), cpu or cuda.</dd>
<dt>GPU arithmetic</dt><dd>(advanced) fp32 (exact, the default), or tf32 / fp16 / bf16 tensor-core
maths on cuda: faster on recent NVIDIA GPUs, gradients within 1e-2 of fp32.</dd>
<dt>Output folder</dt><dd>Receives model.safetensors, checkpoint.safetensors (to resume with
<code>diffcr-train --resume</code>), metrics.jsonl (loss per step, validation), loss.png (the
loss curve), tb/ (TensorBoard) and report.html (shown in the Results Viewer).</dd>
</dl>
<p>Cancelling stops the trainer after its current step and deletes what the run wrote.</p>
''')


def strip_json_comments(text):
    """Remove // and /* */ comments outside strings (diffcr's configs allow them, json does not)."""
    out = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == '\\' and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def config_with_dataset(config_path, csv_path, folder_path):
    """The config as a dict, its train dataset replaced by a CSV file or a Sen2_MTC folder.

    Relative paths left in the config would be resolved against the new config's folder, so
    the datasets the user did not choose (val, test) are dropped, except the folder dataset's
    own val split.
    """
    with open(config_path, encoding='utf-8') as f:
        try:
            cfg = json.loads(strip_json_comments(f.read()))
        except ValueError as e:
            raise QgsProcessingException(tr('{0} is not a valid JSON config: {1}')
                                         .format(config_path, e))
    datasets = cfg.setdefault('datasets', {})
    train = datasets.setdefault('train', {})
    old = train.get('which_dataset') or {}
    # Keep settings that describe the samples (bands, tile, scale), not where they are.
    args = {k: v for k, v in (old.get('args') or {}).items()
            if k not in ('csv', 'data_root', 'clear', 'mode', 'samples')}
    if csv_path:
        train['which_dataset'] = {'name': 'csv',
                                  'args': dict(args, csv=os.path.abspath(csv_path))}
        val = None
    else:
        root = os.path.abspath(folder_path)
        train['which_dataset'] = {'name': 'folder', 'args': dict(args, data_root=root,
                                                                 mode='train')}
        val = None
        if os.path.isfile(os.path.join(root, 'val.txt')):
            val = {'which_dataset': {'name': 'folder',
                                     'args': dict(args, data_root=root, mode='val')}}
    for split in ('val', 'test'):
        datasets.pop(split, None)
    if val is not None:
        datasets['val'] = val
    return cfg


class TrainAlgorithm(DiffcrAlgorithm):
    """Fit a DiffCR model with diffcr-train."""

    PROGRAM = 'diffcr-train'
    DATASET_CSV = 'DATASET_CSV'
    DATASET_FOLDER = 'DATASET_FOLDER'
    CONFIG = 'CONFIG'
    ITERATIONS = 'ITERATIONS'
    DEVICE = 'DEVICE'
    PRECISION = 'PRECISION'
    OUTPUT_DIR = 'OUTPUT_DIR'
    MODEL = 'MODEL'
    LOSS_CURVE = 'LOSS_CURVE'
    METRICS = 'METRICS'
    REPORT = 'REPORT'
    FINAL_LOSS = 'FINAL_LOSS'

    def name(self):
        return 'train'

    def displayName(self):  # noqa: N802 (QGIS's name)
        return tr('Train a decloud model')

    def shortDescription(self):  # noqa: N802 (QGIS's name)
        return tr('Fit a DiffCR model on (3 cloudy dates, 1 clear image) examples.')

    def tags(self):
        return tr('train,fit,model,diffusion,deep learning,cloud removal').split(',')

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return html_help(_HELP)

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.add_parameter(QgsProcessingParameterFile(
            self.DATASET_CSV, tr('Dataset: CSV file (date1,date2,date3,target per line)'),
            behavior=QgsProcessingParameterFile.File, fileFilter=tr('CSV files (*.csv)'),
            optional=True),
            tr('Lines of date1,date2,date3,target raster paths.'))
        self.add_parameter(QgsProcessingParameterFile(
            self.DATASET_FOLDER, tr('Dataset: folder (Sen2_MTC_New layout)'),
            behavior=QgsProcessingParameterFile.Folder, optional=True),
            tr('A folder with train.txt and Sen2_MTC/<tile>/{cloud,cloudless}/.'))
        self.add_parameter(QgsProcessingParameterFile(
            self.CONFIG, tr('Training config'), behavior=QgsProcessingParameterFile.File,
            fileFilter=tr('DiffCR config (*.json)'), defaultValue=programs.default_train_config()),
            tr('DiffCR-schema JSON: network, schedules, optimiser, iterations.'))
        self.add_parameter(QgsProcessingParameterNumber(
            self.ITERATIONS, tr('Iterations (not set: the config\'s n_iter)'),
            QgsProcessingParameterNumber.Integer, defaultValue=None, optional=True, minValue=1),
            tr('Training steps in total.'))
        self.add_parameter(QgsProcessingParameterEnum(
            self.DEVICE, tr('Device'), options=DEVICES, defaultValue=0),
            tr('auto: GPU when available; cpu; cuda.'))
        self.add_parameter(QgsProcessingParameterEnum(
            self.PRECISION, tr('GPU arithmetic'), options=PRECISIONS, defaultValue=0),
            tr('fp32: exact (the default). tf32 / fp16 / bf16: tensor cores, faster on recent NVIDIA '
               'GPUs; gradients within 1e-2 of fp32 (fp16 with automatic loss scaling). The CPU always '
               'computes in fp32.'), advanced=True)
        self.add_parameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_DIR, tr('Output folder (model, metrics, loss curve)')),
            tr('Receives model.safetensors, metrics.jsonl, loss.png, checkpoint.safetensors.'))
        self.addOutput(QgsProcessingOutputFile(self.MODEL, tr('Model (model.safetensors)')))
        self.addOutput(QgsProcessingOutputFile(self.LOSS_CURVE, tr('Loss curve (PNG)')))
        self.addOutput(QgsProcessingOutputFile(self.METRICS, tr('Metrics log (JSON lines)')))
        self.addOutput(QgsProcessingOutputHtml(self.REPORT, tr('Training report')))
        self.addOutput(QgsProcessingOutputNumber(self.FINAL_LOSS, tr('Final training loss')))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        csv_path = self.parameterAsFile(parameters, self.DATASET_CSV, context)
        folder = self.parameterAsFile(parameters, self.DATASET_FOLDER, context)
        if csv_path and folder:
            return False, tr('Give the dataset as a CSV file or as a folder, not both.')
        if not self.parameterAsFile(parameters, self.CONFIG, context):
            return False, tr('No training config given: choose a DiffCR .json config, e.g. '
                             'configs/train_tiny.json from the diffcr sources.')
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        csv_path = self.parameterAsFile(parameters, self.DATASET_CSV, context)
        folder = self.parameterAsFile(parameters, self.DATASET_FOLDER, context)
        config = self.parameterAsFile(parameters, self.CONFIG, context)
        out_dir = self.parameterAsString(parameters, self.OUTPUT_DIR, context)
        if not os.path.isfile(config):
            raise QgsProcessingException(tr('Training config not found: {0}').format(config))
        if csv_path and not os.path.isfile(csv_path):
            raise QgsProcessingException(tr('Dataset CSV file not found: {0}').format(csv_path))
        if folder and not os.path.isdir(folder):
            raise QgsProcessingException(tr('Dataset folder not found: {0}').format(folder))
        program = self.program()

        created_dir = not os.path.isdir(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        existing = set(os.listdir(out_dir))
        if csv_path or folder:
            cfg = config_with_dataset(config, csv_path, folder)
            config = os.path.join(out_dir, 'train_config.json')
            with open(config, 'w', encoding='utf-8') as f:
                json.dump(cfg, f, indent=2)
            feedback.pushInfo(tr('Config with the chosen dataset: {0}').format(config))

        args = [program, '-c', config, '--out', out_dir,
                '--device', DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]
        if parameters.get(self.ITERATIONS) not in (None, ''):
            args += ['--iters', str(self.parameterAsInt(parameters, self.ITERATIONS, context))]
        precision = PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)]
        if precision != 'fp32':
            args += ['--precision', precision]

        state = {'loss': None, 'last_logged': -1.0}

        def on_line(text):
            """Progress from 'it N/M'; log those lines only every 5 %, everything else always."""
            m = _STEP_LINE.search(text)
            if not m:
                feedback.pushInfo(text)
                return
            step, total = int(m.group(1)), int(m.group(2))
            try:
                state['loss'] = float(m.group(3))
            except ValueError:
                pass
            pct = 100.0 * step / total if total > 0 else 0.0
            feedback.setProgress(pct)
            if pct - state['last_logged'] >= 5.0 or step == total:
                state['last_logged'] = pct
                feedback.pushInfo(text)

        def cleanup():
            """Remove what this run wrote (but never files that were there before)."""
            for name in _RUN_FILES:
                if name not in existing:
                    runner.remove_outputs([os.path.join(out_dir, name)])
            for name in _RUN_DIRS:
                if name not in existing:
                    shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
            if created_dir:
                try:
                    os.rmdir(out_dir)
                except OSError:
                    pass

        try:
            runner.run_program(args, feedback, on_stderr_line=on_line)
        except QgsProcessingException:
            cleanup()
            raise

        model = os.path.join(out_dir, 'model.safetensors')
        loss_png = os.path.join(out_dir, 'loss.png')
        metrics = os.path.join(out_dir, 'metrics.jsonl')
        if not os.path.isfile(model):
            raise QgsProcessingException(tr('diffcr-train finished but wrote no {0}').format(model))
        report = os.path.join(out_dir, 'report.html')
        self._write_report(report, model, loss_png, metrics, state['loss'])
        feedback.pushInfo(tr('Model: {0}').format(model))
        return {self.OUTPUT_DIR: out_dir, self.MODEL: model,
                self.LOSS_CURVE: loss_png if os.path.isfile(loss_png) else None,
                self.METRICS: metrics if os.path.isfile(metrics) else None,
                self.REPORT: report, self.FINAL_LOSS: state['loss']}

    @staticmethod
    def _write_report(path, model, loss_png, metrics, loss):
        """A small HTML page for the Results Viewer: where the model is, the loss curve, val."""
        vals = []
        if os.path.isfile(metrics):
            with open(metrics, encoding='utf-8') as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if 'val' in rec:
                        vals.append(rec)
        rows = ''.join('<tr><td>{0}</td><td>{1}</td></tr>'.format(
            rec['step'], json.dumps(rec['val'])) for rec in vals)
        html = ['<html><head><meta charset="utf-8"><title>diffcr-train</title></head><body>',
                '<h2>DiffCR training</h2>',
                '<p>Model: <code>{0}</code></p>'.format(model)]
        if loss is not None:
            html.append('<p>Final training loss: {0:.6g}</p>'.format(loss))
        if os.path.isfile(loss_png):
            html.append('<p><img src="{0}" alt="loss curve"></p>'.format(
                os.path.basename(loss_png)))
        if rows:
            html.append('<h3>Validation</h3><table border="1"><tr><th>step</th><th>metrics</th>'
                        '</tr>{0}</table>'.format(rows))
        html.append('</body></html>')
        with open(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(html))
