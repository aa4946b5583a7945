#!/usr/bin/python3
"""diffcr:evaluate through processing.run: the HTML report is written and the numbers returned
are diffcr-evaluate's (--json) for the same rasters; a missing reference is a clear error."""
import json
import math
import os

import numpy as np

import qgis_common as qc

app, provider = qc.start_qgis()
import processing  # noqa: E402 (needs Processing initialised)
from qgis.core import QgsProcessingException  # noqa: E402

EVALUATE = qc.program('diffcr-evaluate')
tmp = qc.workdir()
W = tmp.name
clear = qc.make_dates(W, prefix='clear', clouds=False)[0]
cloudy = qc.make_dates(W, prefix='cloudy', clouds=True)[0]


def test_numbers_and_html():
    html = os.path.join(W, 'report.html')
    res = processing.run('diffcr:evaluate', {'RESULT': cloudy, 'REFERENCE': clear, 'BANDS': '',
                                             'SCALE': 10000, 'OUTPUT_HTML': html})
    assert res['OUTPUT_HTML'] == html and os.path.getsize(html) > 0
    with open(html, encoding='utf-8') as f:
        text = f.read()
    assert '<table' in text.lower() and 'PSNR' in text, text[:400]
    r = qc.run_cli([EVALUATE, cloudy, clear, '--json'])
    assert r.returncode == 0, r.stderr
    ref = json.loads(r.stdout)
    expect = {'MAE': ref['reflectance']['mae'], 'RMSE': ref['reflectance']['rmse'],
              'PSNR': ref['reflectance']['psnr'], 'SSIM': ref['reflectance']['ssim'],
              'PAPER_PSNR': ref['paper']['psnr'], 'PAPER_SSIM': ref['paper']['ssim']}
    for key, value in expect.items():
        assert isinstance(res[key], float), (key, res[key])
        assert math.isclose(res[key], value, rel_tol=1e-12), (key, res[key], value)
    assert 0 < res['MAE'] < 1 and res['PSNR'] > 0 and -1 <= res['SSIM'] <= 1
    print('   MAE %.4f PSNR %.2f SSIM %.4f paper PSNR %.2f SSIM %.4f' % (
        res['MAE'], res['PSNR'], res['SSIM'], res['PAPER_PSNR'], res['PAPER_SSIM']))


def test_identical_is_inf():
    res = processing.run('diffcr:evaluate', {'RESULT': clear, 'REFERENCE': clear,
                                             'OUTPUT_HTML': os.path.join(W, 'same.html')})
    assert res['PSNR'] == math.inf and res['MAE'] == 0 and abs(res['SSIM'] - 1) < 1e-12


def test_bands_and_mask():
    mask = os.path.join(W, 'mask.tif')
    m = np.zeros((1, 80, 96), np.uint16)
    m[0, 20:60, 30:70] = 1
    qc.write_raster(mask, m)
    res = processing.run('diffcr:evaluate', {'RESULT': cloudy, 'REFERENCE': clear,
                                             'BANDS': '3, 2, 1', 'MASK': mask,
                                             'OUTPUT_HTML': os.path.join(W, 'masked.html')})
    r = qc.run_cli([EVALUATE, cloudy, clear, '--json', '-b', '3,2,1', '--mask', mask])
    ref = json.loads(r.stdout)
    assert math.isclose(res['MAE'], ref['reflectance']['mae'], rel_tol=1e-12)


def test_size_mismatch_error():
    small = os.path.join(W, 'small.tif')
    qc.write_raster(small, np.ones((3, 40, 40), np.uint16))
    html = os.path.join(W, 'bad.html')
    try:
        processing.run('diffcr:evaluate', {'RESULT': small, 'REFERENCE': clear,
                                           'OUTPUT_HTML': html})
    except QgsProcessingException as e:
        assert str(e).startswith('diffcr-evaluate: '), str(e)
        assert not os.path.exists(html)
        print('   message: ' + str(e))
        return
    raise AssertionError('no QgsProcessingException')


qc.check('evaluate: HTML written, numbers equal diffcr-evaluate --json', test_numbers_and_html)
qc.check('evaluate: identical images give PSNR inf', test_identical_is_inf)
qc.check('evaluate: band list and mask passed on', test_bands_and_mask)
qc.check('evaluate: rasters of different sizes -> the program\'s one-line error',
         test_size_mismatch_error)
app.exitQgis()
tmp.cleanup()
qc.finish()
