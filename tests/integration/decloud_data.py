#!/usr/bin/python3
"""diffcr integration tests: generate georeferenced date rasters and check decloud outputs.

Run with /usr/bin/python3 (numpy + osgeo.gdal). Subcommands:
  make DIR             the standard scene (see make_scene)
  const PATH W H V...  a constant tiled DEFLATE GTiff (memory test), one band per value
  check-mean OUT D1 D2 D3 [--bands 1,2,3] [--tol T] [--exact-dates 1,2] [--nodata V] ...
  same PATH1 PATH2     identical pixels and grid
"""
import sys
import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

W, H = 300, 200
GT = (500000.0, 10.0, 0.0, 4600000.0, 0.0, -10.0)  # UTM 33N, 10 m


def srs_wkt(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    return s.ExportToWkt()


def write(path, arr, gt, wkt, dtype=gdal.GDT_UInt16, nodata=None, band_md=None, fmt="GTiff",
          opts=()):
    bands, h, w = arr.shape
    ds = gdal.GetDriverByName(fmt).Create(path, w, h, bands, dtype, list(opts))
    ds.SetGeoTransform(gt)
    if wkt:
        ds.SetProjection(wkt)
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(arr[b])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if band_md:
            for k, v in band_md.items():
                band.SetMetadataItem(k, v)
        band.SetDescription("B%d" % (b + 1))
    ds = None


def scene(seed, bands=4, h=H, w=W):
    """Smooth-ish, distinct per date and band, values 0..10000-ish."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((bands, h, w), np.float64)
    for b in range(bands):
        out[b] = (3000 + 1500 * np.sin(xx / (17.0 + b + seed)) * np.cos(yy / (23.0 + seed))
                  + 1000 * b + rng.integers(0, 400, (h, w)))
    return out


def make(d):
    utm = srs_wkt(32633)
    a1, a2, a3 = scene(1), scene(2), scene(3)
    write(f"{d}/d1.tif", a1.astype(np.uint16), GT, utm)
    write(f"{d}/d2.tif", a2.astype(np.uint16), GT, utm)
    write(f"{d}/d3.tif", a3.astype(np.uint16), GT, utm)
    # date 3 on another grid: EPSG:4326, covering the UTM grid generously (warped by decloud)
    src = gdal.Open(f"{d}/d3.tif")
    gdal.Warp(f"{d}/d3_4326.tif", src, dstSRS="EPSG:4326", resampleAlg="bilinear",
              xRes=0.00005, yRes=0.00005, outputBounds=None)
    # 13-band Sentinel-2-like dates for default band selection (B4,B3,B2)
    for i, a in enumerate((a1, a2, a3), 1):
        s13 = np.zeros((13, H, W), np.uint16)
        s13[3], s13[2], s13[1] = a[0], a[1], a[2]   # B4=R, B3=G, B2=B
        s13[0] = 60000  # B1: would show if the band order were wrong
        write(f"{d}/s2_{i}.tif", s13, GT, utm)
    # Sentinel-2 offsets: date 1 BOA_ADD_OFFSET=-1000, dates 2,3 none
    write(f"{d}/off1.tif", a1.astype(np.uint16), GT, utm, band_md={"BOA_ADD_OFFSET": "-1000"})
    # nodata: date 1 nodata 0 in a block, all dates nodata in a corner
    n1, n2, n3 = (a.astype(np.uint16) for a in (a1, a2, a3))
    n1[:, 50:80, 100:150] = 0               # date 1 missing: filled from dates 2,3
    for n in (n1, n2, n3):
        n[:, 0:20, 0:30] = 0                # missing everywhere: nodata out
    write(f"{d}/n1.tif", n1, GT, utm, nodata=0)
    write(f"{d}/n2.tif", n2, GT, utm, nodata=0)
    write(f"{d}/n3.tif", n3, GT, utm, nodata=0)
    # data types
    for tname, gtype, conv in (("byte", gdal.GDT_Byte, lambda a: (a / 60).astype(np.uint8)),
                               ("int16", gdal.GDT_Int16, lambda a: (a - 6000).astype(np.int16)),
                               ("float32", gdal.GDT_Float32, lambda a: (a / 10000.0).astype(np.float32))):
        for i, a in enumerate((a1, a2, a3), 1):
            write(f"{d}/{tname}_{i}.tif", conv(a[:3]), GT, utm, dtype=gtype)
    # stack: 3 dates x 4 bands, date-major
    write(f"{d}/stack.tif", np.concatenate([a.astype(np.uint16) for a in (a1, a2, a3)]), GT, utm)
    # small raster (smaller than a tile in both axes): padding
    for i in (1, 2, 3):
        write(f"{d}/small_{i}.tif", scene(i, 3, 40, 50).astype(np.uint16), GT, utm)
    # no CRS, and far away
    write(f"{d}/nocrs.tif", a3.astype(np.uint16), GT, None)
    far = (100000.0, 10.0, 0.0, 1000000.0, 0.0, -10.0)
    write(f"{d}/far.tif", a3.astype(np.uint16), far, utm)
    write(f"{d}/five.tif", scene(5, 5).astype(np.uint16), GT, utm)
    with open(f"{d}/notraster.tif", "w") as f:
        f.write("this is not a raster\n")


def read(path):
    ds = gdal.Open(path)
    return ds, ds.ReadAsArray().astype(np.float64).reshape(ds.RasterCount, ds.RasterYSize,
                                                          ds.RasterXSize)


def warped_to(path, like):
    """Read `path` resampled onto `like`'s grid (bilinear), NaN outside."""
    ref = gdal.Open(like)
    gt = ref.GetGeoTransform()
    te = (gt[0], gt[3] + gt[5] * ref.RasterYSize, gt[0] + gt[1] * ref.RasterXSize, gt[3])
    ds = gdal.Warp("", path, format="MEM", dstSRS=ref.GetProjection(), outputBounds=te,
                   width=ref.RasterXSize, height=ref.RasterYSize, resampleAlg="bilinear",
                   dstAlpha=True)
    a = ds.ReadAsArray().astype(np.float64)
    alpha = a[-1]
    a = a[:-1]
    a[:, alpha == 0] = np.nan
    return a


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check_mean(args):
    out, dates = args[0], args[1:4]
    opts = dict(zip(args[4::2], args[5::2]))
    bands = [int(b) - 1 for b in opts.get("--bands", "1,2,3").split(",")]
    tol = float(opts.get("--tol", "1"))
    offsets = [float(x) for x in opts.get("--offsets", "0,0,0").split(",")]
    warped = [int(x) - 1 for x in opts.get("--warped", "").split(",") if x]
    frac = float(opts.get("--frac", "1.0"))  # fraction of pixels that must be within tol
    nodata = opts.get("--nodata")
    ods, o = read(out)
    ref = gdal.Open(dates[0])
    if ods.GetGeoTransform() != ref.GetGeoTransform():
        fail(f"geotransform {ods.GetGeoTransform()} != {ref.GetGeoTransform()}")
    if not osr.SpatialReference(ods.GetProjection()).IsSame(osr.SpatialReference(ref.GetProjection())):
        fail("CRS differs from the reference")
    if (ods.RasterXSize, ods.RasterYSize) != (ref.RasterXSize, ref.RasterYSize):
        fail("size differs")
    if ods.GetRasterBand(1).DataType != ref.GetRasterBand(1).DataType:
        fail("data type differs")
    stack = []
    for i, p in enumerate(dates):
        a = warped_to(p, dates[0]) if i in warped else read(p)[1]
        a = a[bands]
        if nodata is not None:
            a[a == float(nodata)] = np.nan
        stack.append(a + offsets[i])
    stack = np.array(stack)
    valid = ~np.isnan(stack)
    cnt = valid.sum(0)
    with np.errstate(invalid="ignore"):
        exp = np.nansum(stack, 0) / np.maximum(cnt, 1) - offsets[0]
    dtype = ref.GetRasterBand(1).DataType
    if dtype != gdal.GDT_Float32:
        lo, hi = {gdal.GDT_Byte: (0, 255), gdal.GDT_UInt16: (0, 65535),
                  gdal.GDT_Int16: (-32768, 32767)}[dtype]
        exp = np.clip(np.floor(exp + 0.5), lo, hi)
    allbad = cnt == 0
    if nodata is not None:
        ond = ods.GetRasterBand(1).GetNoDataValue()
        if ond is None or ond != float(nodata):
            fail(f"output nodata {ond} != {nodata}")
        if not np.all(o[allbad] == float(nodata)):
            fail("pixels missing in every date are not nodata")
        if np.any(o[~allbad] == float(nodata)):
            fail("a valid pixel reads as nodata")
    good = ~allbad
    if warped:
        # warped edge pixels: a date may be valid in decloud but not in our warp; compare inside
        good &= np.all(valid, axis=0) | (nodata is not None)
    diff = np.abs(o - exp)[good]
    within = np.mean(diff <= tol) if diff.size else 1.0
    if within < frac:
        fail(f"only {within:.4f} of pixels within {tol} (need {frac}); max diff {diff.max():.3f}")
    print(f"ok: {out} matches the date mean (max diff {diff.max() if diff.size else 0:.3f}, "
          f"{within:.4f} within {tol})")


def same(args):
    a_ds, a = read(args[0])
    b_ds, b = read(args[1])
    if a_ds.GetGeoTransform() != b_ds.GetGeoTransform() or a.shape != b.shape:
        fail("grids differ")
    if not np.array_equal(a, b, equal_nan=True):
        fail(f"{np.count_nonzero(a != b)} pixels differ, max {np.nanmax(np.abs(a - b)):.3f}")
    print(f"ok: {args[0]} == {args[1]}")


def const(args):
    path, w, h = args[0], int(args[1]), int(args[2])
    vals = [int(v) for v in args[3:]]
    ds = gdal.GetDriverByName("GTiff").Create(path, w, h, len(vals), gdal.GDT_UInt16,
                                              ["TILED=YES", "COMPRESS=DEFLATE", "BLOCKXSIZE=512",
                                               "BLOCKYSIZE=512", "SPARSE_OK=TRUE"])
    ds.SetGeoTransform(GT)
    ds.SetProjection(srs_wkt(32633))
    for i, v in enumerate(vals):
        b = ds.GetRasterBand(i + 1)
        b.Fill(v)
    ds = None


def big(args):
    d, w, h = args[0], int(args[1]), int(args[2])
    utm = srs_wkt(32633)
    for i in (1, 2, 3):
        write(f"{d}/big{i}.tif", scene(i, 3, h, w).astype(np.uint16), GT, utm)


def waves(args):
    """waves DIR W H BANDS [AMPLITUDE XDIV YDIV]: three smooth UInt16 dates d0..d2.tif, UTM 33N,
    10 m pixels at (380000, 5820000): the small scenes of the real-model tests."""
    d, w, h, nb = args[0], int(args[1]), int(args[2]), int(args[3])
    amp, xdiv, ydiv = (float(v) for v in (args[4:7] if len(args) >= 7 else (800, 9, 7)))
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(3):
        bands = [1500 + amp * np.sin(xx / xdiv + b) * np.cos(yy / ydiv + i) for b in range(nb)]
        write(f"{d}/d{i}.tif", np.stack(bands).astype(np.uint16), [380000, 10, 0, 5820000, 0, -10],
              srs_wkt(32633))


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"make": lambda a: make(a[0]), "check-mean": check_mean, "same": same,
     "const": const, "big": big, "waves": waves}[cmd](sys.argv[2:])
