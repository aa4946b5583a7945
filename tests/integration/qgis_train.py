#!/usr/bin/python3
"""diffcr:train through processing.run on a tiny generated dataset (CSV and Sen2_MTC folder):
model, metrics and loss curve written and returned, progress followed, the model usable by
diffcr:decloud, bad input refused clearly. Skipped while diffcr-train is not built."""
import json
import os
import subprocess

import qgis_common as qc

app, provider = qc.start_qgis()
import processing  # noqa: E402 (needs Processing initialised)
from qgis.core import QgsProcessingException, QgsProcessingFeedback  # noqa: E402

TRAIN = qc.program('diffcr-train')
CONFIG = os.path.join(qc.SOURCE, 'configs', 'train_tiny.json')
tmp = qc.workdir()
W = tmp.name
state = {}


def make_data():
    if TRAIN is None:
        return 'skip: diffcr-train is not built yet (algorithms/programs/diffcr_train.c)'
    if not os.path.isfile(CONFIG):
        return 'skip: configs/train_tiny.json is missing'
    subprocess.run(['/usr/bin/python3', os.path.join(os.path.dirname(__file__),
                                                     'train_make_data.py'), os.path.join(W, 'data'),
                    '--train', '8', '--val', '2'], check=True)
    state['data'] = os.path.join(W, 'data')


class Progress(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.values = []

    def setProgress(self, p):  # noqa: N802 (QGIS's name)
        self.values.append(p)
        super().setProgress(p)


def test_csv():
    if 'data' not in state:
        return 'skip: no training data (see above)'
    fb = Progress()
    out = os.path.join(W, 'run_csv')
    res = processing.run('diffcr:train', {
        'DATASET_CSV': os.path.join(state['data'], 'csv', 'train.csv'), 'CONFIG': CONFIG,
        'ITERATIONS': 6, 'DEVICE': 1, 'OUTPUT_DIR': out}, feedback=fb)
    assert res['MODEL'] == os.path.join(out, 'model.safetensors') and os.path.isfile(res['MODEL'])
    assert res['LOSS_CURVE'] and res['LOSS_CURVE'].endswith('.png') and \
        os.path.isfile(res['LOSS_CURVE']), res['LOSS_CURVE']
    with open(res['METRICS'], encoding='utf-8') as f:
        steps = [json.loads(line)['step'] for line in f if '"loss"' in line]
    assert steps and steps[-1] == 6, steps
    assert isinstance(res['FINAL_LOSS'], float) and res['FINAL_LOSS'] > 0
    assert os.path.isfile(res['REPORT'])
    assert fb.values and max(fb.values) == 100.0 and len(set(fb.values)) >= 3, fb.values
    state['model'] = res['MODEL']


def test_folder():
    if 'data' not in state:
        return 'skip: no training data (see above)'
    out = os.path.join(W, 'run_folder')
    res = processing.run('diffcr:train', {
        'DATASET_FOLDER': os.path.join(state['data'], 'sen2'), 'CONFIG': CONFIG,
        'ITERATIONS': 3, 'DEVICE': 1, 'OUTPUT_DIR': out})
    assert os.path.isfile(res['MODEL'])
    with open(os.path.join(out, 'train_config.json'), encoding='utf-8') as f:
        cfg = json.load(f)
    assert cfg['datasets']['train']['which_dataset']['name'] == 'folder'
    assert cfg['datasets']['val']['which_dataset']['args']['mode'] == 'val'


def test_trained_model_declouds():
    if 'model' not in state:
        return 'skip: no trained model (see above)'
    dates = qc.make_dates(W)
    out = os.path.join(W, 'from_trained.tif')
    processing.run('diffcr:decloud', {'INPUTS': dates, 'MODEL': state['model'], 'TILE': 32,
                                      'STEPS': 2, 'OUTPUT': out})
    assert qc.read(out).shape == (3, 80, 96)


def test_bad_dataset():
    if 'data' not in state:
        return 'skip: no training data (see above)'
    out = os.path.join(W, 'run_bad')
    bad = os.path.join(W, 'empty.csv')
    with open(bad, 'w', encoding='utf-8') as f:
        f.write('date1,date2,date3,target\n')
    try:
        processing.run('diffcr:train', {'DATASET_CSV': bad, 'CONFIG': CONFIG, 'ITERATIONS': 2,
                                        'DEVICE': 1, 'OUTPUT_DIR': out})
    except QgsProcessingException as e:
        assert str(e).startswith('diffcr-train: '), str(e)
        assert not os.path.exists(os.path.join(out, 'model.safetensors'))
        print('   message: ' + str(e))
        return
    raise AssertionError('no QgsProcessingException')


def test_precision_on_cpu():
    """PRECISION reaches diffcr-train: bf16 on the CPU is the trainer's clear refusal."""
    if 'data' not in state:
        return 'skip: no training data (see above)'
    out = os.path.join(W, 'run_bf16')
    try:
        processing.run('diffcr:train', {'DATASET_CSV': os.path.join(state['data'], 'csv', 'train.csv'),
                                        'CONFIG': CONFIG, 'ITERATIONS': 2, 'DEVICE': 1, 'PRECISION': 3,
                                        'OUTPUT_DIR': out})
    except QgsProcessingException as e:
        assert "precision 'bf16' needs the cuda device" in str(e), str(e)
        assert not os.path.exists(os.path.join(out, 'model.safetensors'))
        return
    raise AssertionError('no QgsProcessingException')


qc.check('train: make a tiny dataset', make_data)
qc.check('train: CSV dataset -> model, metrics, loss curve, progress', test_csv)
qc.check('train: Sen2_MTC folder dataset (with its val split)', test_folder)
qc.check('train: the trained model runs in diffcr:decloud', test_trained_model_declouds)
qc.check('train: empty dataset -> the trainer\'s one-line error', test_bad_dataset)
qc.check('train: PRECISION bf16 on the CPU -> the trainer\'s refusal', test_precision_on_cpu)
app.exitQgis()
tmp.cleanup()
qc.finish()
