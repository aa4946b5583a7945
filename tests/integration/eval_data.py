"""diffcr integration tests: data and reference numbers for test_evaluate.sh.

  eval_data.py make DIR         write the test rasters into DIR
  eval_data.py check JSON RESULT REFERENCE [--mask MASK] [--bands 1,2,3] [--scale S]
                                compare diffcr-evaluate's JSON with scikit-image / numpy
  eval_data.py has-skimage      exit 0 if skimage.metrics is importable, else 1

The paper protocol's get_rgb stretch (DIFFCR.md section 7) is rebuilt here in numpy from the
description, independently of the C code: DN -> uint16 (round half up, [0, 10000]) -> clip to 2000
-> minus the global minimum -> 255 * (v / max) -> uint8 (truncation); max == 0 gives 255.
Run with /usr/bin/python3 (Debian's numpy, GDAL and skimage). """
import json
import math
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def write(path, arr, dtype=gdal.GDT_UInt16, nodata=None, gt=(500000, 10, 0, 4600000, 0, -10)):
    """arr: [h][w][c] (or [h][w]) -> GeoTIFF with band-sequential storage."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    ds = gdal.GetDriverByName("GTiff").Create(path, w, h, c, dtype)
    ds.SetGeoTransform(gt)
    ds.SetProjection("EPSG:32633")
    for k in range(c):
        b = ds.GetRasterBand(k + 1)
        if nodata is not None:
            b.SetNoDataValue(nodata)
        b.WriteArray(arr[:, :, k])
    ds = None


def read(path, bands):
    ds = gdal.Open(path)
    return np.dstack([ds.GetRasterBand(b).ReadAsArray().astype(np.float64) for b in bands])


def make(d):
    rng = np.random.default_rng(1234)
    h, w = 72, 90
    yy, xx = np.mgrid[0:h, 0:w]
    # reference: smooth fields + texture, 4 bands (R, G, B, NIR), DN well inside 0..4000
    ref = np.zeros((h, w, 4))
    for k in range(4):
        ref[:, :, k] = (1200 + 500 * np.sin(xx / (7.0 + k)) * np.cos(yy / 9.0)
                        + 300 * rng.standard_normal((h, w)) + 200 * k)
    ref = np.clip(ref, 0, 6000).round()
    # result: the reference with noise, a bias in one band, and a too-bright patch (>2000 DN,
    # so the paper protocol's clip matters)
    res = ref + 80 * rng.standard_normal(ref.shape)
    res[:, :, 1] += 40
    res[10:30, 20:50, :3] += 1500
    res = np.clip(res, 0, 65535)
    write(f"{d}/ref.tif", ref.astype(np.uint16))
    write(f"{d}/res.tif", res.round().astype(np.uint16))
    write(f"{d}/res_f32.tif", res.astype(np.float32), gdal.GDT_Float32)
    mask = ((xx // 10 + yy // 10) % 2).astype(np.uint8)  # checkerboard of 10-px squares
    write(f"{d}/mask.tif", mask, gdal.GDT_Byte)
    write(f"{d}/small.tif", ref[:40, :50].astype(np.uint16))
    write(f"{d}/tiny_a.tif", ref[:9, :9].astype(np.uint16))
    write(f"{d}/tiny_b.tif", res[:9, :9].round().astype(np.uint16))
    # a reference with a realistic scene in 256x256 with 3 bands, and a blurred "prediction"
    H = 256
    y2, x2 = np.mgrid[0:H, 0:H]
    scene = np.dstack([900 + 400 * np.sin(x2 / 13.0 + k) * np.sin(y2 / 17.0)
                       + 150 * rng.standard_normal((H, H)) for k in range(3)])
    scene = np.clip(scene, 0, 10000).round()
    pred = scene.copy()
    pred[1:-1, 1:-1] = (scene[:-2, 1:-1] + scene[2:, 1:-1] + scene[1:-1, :-2] + scene[1:-1, 2:]) / 4
    write(f"{d}/scene_ref.tif", scene.astype(np.uint16))
    write(f"{d}/scene_pred.tif", pred.astype(np.float32), gdal.GDT_Float32)
    # baselines: three constant dates, and a cloudy/clear/cloudier triple
    for i, v in enumerate((1000, 3000, 2000)):
        write(f"{d}/const{i + 1}.tif", np.full((32, 40, 3), v, np.uint16))
    clear = np.dstack([np.full((64, 128), 800 + 100 * k) for k in range(3)]).astype(np.float64)
    c1 = clear.copy(); c1[:, :64, :] = 6000 + 10 * rng.integers(0, 5, (64, 64, 1))  # left cloudy
    c2 = clear.copy(); c2[:20, :20, :] = 5000                                       # a small cloud
    c2 += 1
    c3 = clear.copy(); c3[:, 64:, :] = 7000                                          # right cloudy
    c3 += 2
    write(f"{d}/lc1.tif", c1.astype(np.uint16))
    write(f"{d}/lc2.tif", c2.astype(np.uint16))
    write(f"{d}/lc3.tif", c3.astype(np.uint16))
    write(f"{d}/other_size.tif", ref[:70, :90].astype(np.uint16))
    open(f"{d}/notraster.tif", "w").write("not a raster\n")


def skimage_fns():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    import inspect
    params = inspect.signature(structural_similarity).parameters
    chan = {"channel_axis": -1} if "channel_axis" in params else {"multichannel": True}

    def ssim(a, b, data_range, gaussian):
        if gaussian:
            return structural_similarity(a, b, data_range=data_range, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False, **chan)
        return structural_similarity(a, b, data_range=data_range, **chan)

    def psnr(a, b, data_range):
        with np.errstate(divide="ignore"):
            return peak_signal_noise_ratio(a, b, data_range=data_range)

    return ssim, psnr


def get_rgb_dn(dn):
    """DIFFCR.md section 7 get_rgb, from DN (reflectance x 10000)."""
    v = np.clip(np.floor(dn + 0.5), 0, 10000).astype(np.uint16)
    v = np.clip(v, 0, 2000)
    v = v - np.nanmin(v)
    if np.nanmax(v) == 0:
        return np.full(v.shape, 255, np.uint8)
    return (255 * (v / np.nanmax(v))).astype(np.uint8)


def num(x):
    if x == "inf":
        return math.inf
    return float("nan") if x is None else float(x)


def close(name, got, want, tol, errors):
    got = num(got)
    if math.isinf(want) or math.isinf(got):
        ok = got == want
    else:
        ok = abs(got - want) <= tol
    print(f"  {name:28s} diffcr {got:.10g}  reference {want:.10g}  |d| "
          f"{abs(got - want) if not (math.isinf(want) or math.isinf(got)) else 0:.2e}"
          f"{'' if ok else '  <-- FAIL'}")
    if not ok:
        errors.append(name)


def check(args):
    js, res_path, ref_path = args[:3]
    opts = dict(zip(args[3::2], args[4::2]))
    bands = [int(b) for b in opts.get("--bands", "1,2,3").split(",")]
    scale = float(opts.get("--scale", "10000"))
    rep = json.load(open(js))
    ssim, psnr = skimage_fns()
    res_dn, ref_dn = read(res_path, bands), read(ref_path, bands)
    res, ref = res_dn / scale, ref_dn / scale
    errors = []
    sel = np.ones(res.shape[:2], bool)
    if "--mask" in opts:
        sel = read(opts["--mask"], [1])[:, :, 0] != 0
    d = (res - ref)[sel]
    r = rep["reflectance"]
    close("mae", r["mae"], np.abs(d).mean(), 1e-7, errors)
    close("rmse", r["rmse"], np.sqrt((d ** 2).mean()), 1e-7, errors)
    close("psnr (range 1)", r["psnr"], psnr(ref[sel], res[sel], 1.0), 1e-5, errors)
    for k, b in enumerate(r["per_band"]):
        dk = (res[:, :, k] - ref[:, :, k])[sel]
        close(f"band {b['band']} mae", b["mae"], np.abs(dk).mean(), 1e-7, errors)
        close(f"band {b['band']} psnr", b["psnr"], psnr(ref[:, :, k][sel], res[:, :, k][sel], 1.0),
              1e-5, errors)
        close(f"band {b['band']} ssim", b["ssim"],
              ssim(ref[:, :, k:k + 1], res[:, :, k:k + 1], 1.0, True), 1e-5, errors)
    close("ssim gaussian (range 1)", r["ssim"], ssim(ref, res, 1.0, True), 1e-5, errors)
    close("ssim uniform 7x7 (range 1)", r["ssim_uniform"], ssim(ref, res, 1.0, False), 1e-5, errors)
    if len(bands) == 3:
        g8, o8 = get_rgb_dn(ref_dn), get_rgb_dn(res_dn)
        close("paper psnr (uint8)", rep["paper"]["psnr"], psnr(g8, o8, 255), 1e-5, errors)
        close("paper ssim (uint8)", rep["paper"]["ssim"], ssim(g8, o8, 255, True), 1e-5, errors)
    elif rep["paper"] is not None:
        errors.append("paper protocol reported for != 3 bands")
    if errors:
        print("mismatch:", ", ".join(errors))
        return 1
    return 0


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2])
        return 0
    if sys.argv[1] == "has-skimage":
        try:
            skimage_fns()
            return 0
        except ImportError:
            return 1
    if sys.argv[1] == "check":
        return check(sys.argv[2:])
    if sys.argv[1] == "value":  # value PATH BAND ROW COL -> prints the pixel value
        p, b, y, x = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(int(read(p, [b])[y, x, 0]))
        return 0
    if sys.argv[1] == "equal":  # equal A B: same pixels in all bands
        a, b = gdal.Open(sys.argv[2]), gdal.Open(sys.argv[3])
        same = a.RasterCount == b.RasterCount and all(
            np.array_equal(a.GetRasterBand(k).ReadAsArray(), b.GetRasterBand(k).ReadAsArray())
            for k in range(1, a.RasterCount + 1))
        return 0 if same else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
