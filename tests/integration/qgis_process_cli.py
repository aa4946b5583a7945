#!/usr/bin/python3
"""qgis_process (the .bin: Debian's wrapper script injects an option qgis_process rejects, see
shared/reference/GDAL-QGIS.md §5) finds the plugin through QGIS_PLUGINPATH, lists the provider's
algorithms and runs diffcr:decloud once with the same pixels as diffcr-decloud. HOME points at
a temporary folder so enabling the plugin does not touch the user's QGIS profile."""
import os
import shutil
import subprocess

import numpy as np

import qgis_common as qc

QGIS_PROCESS = shutil.which('qgis_process.bin') or '/usr/bin/qgis_process.bin'
tmp = qc.workdir()
W = tmp.name
env = dict(os.environ, HOME=os.path.join(W, 'home'), QT_QPA_PLATFORM='offscreen',
           QGIS_PLUGINPATH=os.path.join(qc.SOURCE, 'qgis'), XDG_RUNTIME_DIR=W)
os.makedirs(env['HOME'])


def qp(*args):
    return subprocess.run([QGIS_PROCESS] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


def test_list():
    if not os.path.isfile(QGIS_PROCESS):
        return 'skip: qgis_process.bin not installed'
    r = qp('plugins', 'enable', 'diffcr_qgis')
    assert r.returncode == 0, r.stdout
    r = qp('list')
    assert r.returncode == 0, r.stdout
    for alg in ('diffcr:decloud', 'diffcr:train', 'diffcr:evaluate'):
        assert alg in r.stdout, alg + ' not listed:\n' + r.stdout[-3000:]
    section = r.stdout[r.stdout.index('DiffCR cloud removal'):].splitlines()[:4]
    print('   ' + '\n   '.join(section))


def test_run():
    if not os.path.isfile(QGIS_PROCESS):
        return 'skip: qgis_process.bin not installed'
    dates = qc.make_dates(W)
    model = qc.make_model(W)
    out = os.path.join(W, 'qp.tif')
    r = qp('run', 'diffcr:decloud', '--', *['INPUTS=' + d for d in dates], 'MODEL=' + model,
           'TILE=64', 'STEPS=2', 'SEED=0', 'OUTPUT=' + out)
    assert r.returncode == 0, r.stdout
    cli = os.path.join(W, 'cli.tif')
    c = qc.run_cli([qc.program('diffcr-decloud')] + dates + ['--weights', model, '--tile', '64',
                                                           '--steps', '2', '-q', cli])
    assert c.returncode == 0, c.stderr
    assert np.array_equal(qc.read(out), qc.read(cli))


qc.check('qgis_process.bin: plugin enabled, diffcr algorithms listed', test_list)
qc.check('qgis_process.bin: run diffcr:decloud, same pixels as the CLI', test_run)
tmp.cleanup()
qc.finish()
