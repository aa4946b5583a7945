#!/usr/bin/python3
"""diffcr plugin tests: read decloud VRTs through osgeo.gdal (GDAL_DRIVER_PATH must be set in the
environment before this runs). Subcommands:
  same A B                  identical pixels, type and grid (exact)
  decimated FULL HALF       HALF == FULL sampled at GDAL's nearest source pixels floor((i+0.5)*step)
  read VRT REF              gdal.UseExceptions(): open, ReadAsArray, == REF
  threads VRT REF           4 threads, each its own gdal.Open, read different windows == REF
  norampless VRT OUT        rewrite VRT without the ramp sources (blocks = raster size)
"""
import sys
import threading
import xml.etree.ElementTree as ET

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def arr(path):
    ds = gdal.Open(path)
    return ds, ds.ReadAsArray()


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def same(a, b):
    da, xa = arr(a)
    db, xb = arr(b)
    if xa.dtype != xb.dtype:
        fail(f"types differ: {xa.dtype} vs {xb.dtype}")
    if xa.shape != xb.shape:
        fail(f"shapes differ: {xa.shape} vs {xb.shape}")
    if da.GetGeoTransform() != db.GetGeoTransform():
        fail("geotransforms differ")
    if not np.array_equal(xa, xb):
        d = np.abs(xa.astype(np.float64) - xb)
        fail(f"{np.count_nonzero(d)} pixels differ, max {d.max()}")
    print(f"ok: {a} == {b}")


def decimated(full, half):
    _, f = arr(full)
    _, h = arr(half)
    H, W = f.shape[-2:]
    h_, w_ = h.shape[-2:]
    rows = np.floor((np.arange(h_) + 0.5) * H / h_).astype(int)
    cols = np.floor((np.arange(w_) + 0.5) * W / w_).astype(int)
    if not np.array_equal(h, f[..., rows[:, None], cols[None, :]]):
        fail("decimated read is not the nearest sampling of the full output")
    print(f"ok: {half} samples {full} at floor((i+0.5)*step)")


def read(vrt, ref):
    ds = gdal.Open(vrt)
    x = ds.ReadAsArray()
    _, r = arr(ref)
    if not np.array_equal(x, r):
        fail("Python read differs from the reference")
    b = ds.GetRasterBand(2).ReadAsArray(13, 7, 101, 55)
    if not np.array_equal(b, r[1, 7:62, 13:114]):
        fail("Python window read differs")
    print("ok: osgeo.gdal with UseExceptions reads the VRT")


def threads(vrt, ref):
    _, r = arr(ref)
    H, W = r.shape[-2:]
    cw, ch = min(77, W), min(61, H)  # the bottom-right corner window, clipped for small rasters
    windows = [(0, 0, W // 2, H // 2), (W // 3, H // 4, W // 2, H // 2),
               (W - cw, H - ch, cw, ch), (5, H // 2, W - 10, H // 2 - 3)]
    errors = []
    barrier = threading.Barrier(len(windows))

    def work(win):
        try:
            ds = gdal.Open(vrt)
            barrier.wait()
            for _ in range(2):
                x0, y0, w, h = win
                got = ds.ReadAsArray(x0, y0, w, h)
                if not np.array_equal(got, r[:, y0:y0 + h, x0:x0 + w]):
                    errors.append(f"window {win} differs")
        except Exception as e:  # noqa: BLE001 -- report any failure of a reader
            errors.append(f"window {win}: {e}")

    ts = [threading.Thread(target=work, args=(w,)) for w in windows]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        fail("; ".join(errors))
    print("ok: 4 threads read the same pixels as one reader")


def norampless(vrt, out):
    tree = ET.parse(vrt)
    root = tree.getroot()
    W, H = root.get("rasterXSize"), root.get("rasterYSize")
    for band in root.iter("VRTRasterBand"):
        for s in list(band.findall("SimpleSource")):
            band.remove(s)
        band.set("blockXSize", W)
        band.set("blockYSize", H)
        args = band.find("PixelFunctionArguments")
        for k in ("xsrc", "ysrc"):
            args.attrib.pop(k, None)
    tree.write(out)
    print(f"ok: wrote {out}")


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    {"same": same, "decimated": decimated, "read": read, "threads": threads,
     "norampless": norampless}[cmd](*rest)
