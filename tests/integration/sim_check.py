"""diffcr integration helper for test_simulate.sh: checks diffcr-simulate outputs with GDAL.

usage: sim_check.py INPUT PREFIX NDATES COVER_MIN COVER_MAX [--no-clear]
Checks, for each date: same size, geotransform and CRS as INPUT, same data type and band count,
Byte masks with values 0..3, masks consistent with brightness (thick cloud brighter than clear
pixels, shadow darker), the realised cloud fraction within COVER_MIN-0.1..COVER_MAX+0.1; and that
PREFIX_clear.tif (unless --no-clear) holds INPUT's pixels unchanged. Prints one line per failure
and exits 1 if any."""
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)


def same_grid(a, b, name):
    check(a.RasterXSize == b.RasterXSize and a.RasterYSize == b.RasterYSize,
          f"{name}: size {a.RasterXSize}x{a.RasterYSize} != input {b.RasterXSize}x{b.RasterYSize}")
    check(np.allclose(a.GetGeoTransform(), b.GetGeoTransform(), rtol=0, atol=1e-9),
          f"{name}: geotransform {a.GetGeoTransform()} != input {b.GetGeoTransform()}")
    sa, sb = a.GetSpatialRef(), b.GetSpatialRef()
    check(sa is not None and sb is not None and sa.IsSame(sb), f"{name}: CRS differs from the input")


def main():
    inp, prefix, nd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cmin, cmax = float(sys.argv[4]), float(sys.argv[5])
    no_clear = "--no-clear" in sys.argv
    src = gdal.Open(inp)
    clear = src.ReadAsArray().astype(np.float64)
    if clear.ndim == 2:
        clear = clear[None]
    in_type = src.GetRasterBand(1).DataType
    for d in range(1, nd + 1):
        dn, mn = f"{prefix}_date{d}.tif", f"{prefix}_mask{d}.tif"
        ds, ms = gdal.Open(dn), gdal.Open(mn)
        same_grid(ds, src, dn)
        same_grid(ms, src, mn)
        check(ds.RasterCount == src.RasterCount, f"{dn}: {ds.RasterCount} bands, input {src.RasterCount}")
        check(ds.GetRasterBand(1).DataType == in_type,
              f"{dn}: type {gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)} != input")
        check(ms.RasterCount == 1 and ms.GetRasterBand(1).DataType == gdal.GDT_Byte, f"{mn}: not one Byte band")
        img = ds.ReadAsArray().astype(np.float64)
        if img.ndim == 2:
            img = img[None]
        m = ms.ReadAsArray()
        check(m.max() <= 3, f"{mn}: value {m.max()} outside 0..3")
        frac = np.mean((m == 1) | (m == 2))
        check(cmin - 0.1 <= frac <= cmax + 0.1, f"{mn}: cloud fraction {frac:.3f} outside {cmin}..{cmax} +-0.1")
        vis = img[:3].mean(axis=0)
        if (m == 2).sum() > 50 and (m == 0).sum() > 50:
            check(vis[m == 2].mean() > vis[m == 0].mean() + 1000,
                  f"{dn}: thick cloud not brighter ({vis[m == 2].mean():.0f} vs clear {vis[m == 0].mean():.0f})")
            check(vis[m == 2].mean() > clear[:3].mean(axis=0)[m == 2].mean(), f"{dn}: thick cloud darker than input")
        if (m == 3).sum() > 50:
            check(vis[m == 3].mean() < clear[:3].mean(axis=0)[m == 3].mean(),
                  f"{dn}: shadow not darker than the clear input")
        check(not np.array_equal(img, clear), f"{dn}: identical to the input")
    if not no_clear:
        cn = f"{prefix}_clear.tif"
        cs = gdal.Open(cn)
        same_grid(cs, src, cn)
        check(np.array_equal(cs.ReadAsArray().astype(np.float64).reshape(clear.shape), clear),
              f"{cn}: pixels differ from the input")
    for f in fails:
        print("FAIL:", f)
    if not fails:
        print(f"ok: {nd} dates of {inp} checked")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
