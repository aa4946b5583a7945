#!/usr/bin/python3
"""Side-by-side RGB preview: the cloudy dates, the result and (optionally) the truth, as one PNG.

usage: preview.py OUT.png DATE1.tif DATE2.tif DATE3.tif RESULT.tif [TRUTH.tif] [--max 3000]

Bands 1,2,3 are shown as R,G,B with one linear stretch 0..max DN for every panel (the same stretch,
so brightness differences are real), separated by white gaps. Written with GDAL's PNG driver.
Run with Debian's /usr/bin/python3 (python3-gdal, python3-numpy)."""
import sys

import numpy as np
from osgeo import gdal


def rgb8(path, vmax):
    """The first three bands of a raster stretched 0..vmax to uint8, shape (3, h, w)."""
    ds = gdal.Open(path)
    if ds is None or ds.RasterCount < 3:
        raise SystemExit("preview.py: %s: not a raster with 3 bands" % path)
    a = ds.ReadAsArray(band_list=[1, 2, 3]).astype(np.float64)
    return np.clip(a / vmax * 255.0 + 0.5, 0, 255).astype(np.uint8)


def main(argv):
    vmax = 3000.0
    if "--max" in argv:
        i = argv.index("--max")
        vmax = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 6:
        raise SystemExit(__doc__)
    out, panels = argv[1], [rgb8(p, vmax) for p in argv[2:]]
    h = max(p.shape[1] for p in panels)
    gap = 8
    w = sum(p.shape[2] for p in panels) + gap * (len(panels) - 1)
    canvas = np.full((3, h, w), 255, np.uint8)
    x = 0
    for p in panels:
        canvas[:, :p.shape[1], x:x + p.shape[2]] = p
        x += p.shape[2] + gap
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(canvas[b])
    if gdal.GetDriverByName("PNG").CreateCopy(out, mem) is None:
        raise SystemExit("preview.py: cannot write %s" % out)


if __name__ == "__main__":
    main(sys.argv)
