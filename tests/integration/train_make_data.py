#!/usr/bin/python3
"""Generate a small, fixed DiffCR training dataset for diffcr-train's tests.

Usage: train_make_data.py OUT_DIR [--size 32] [--train 16] [--val 4] [--seed 1]

Writes 4-band uint16 GeoTIFFs (R, G, B, NIR in Sen2_MTC_New's DN range, 0..10000) in two layouts:
  OUT_DIR/csv/{train,val,one}.csv + OUT_DIR/csv/img/*.tif    date1,date2,date3,target per line
  OUT_DIR/sen2/{train,val,test}.txt + OUT_DIR/sen2/Sen2_MTC/<tile>/{cloud,cloudless}/*.tif
and OUT_DIR/csv/bad.csv, which adds a wrong-size image and a 2-band image to train.csv's samples.
Targets are smooth random landscapes; the cloudy dates add bright soft blobs to them.
"""
import os
import sys

import numpy as np
from osgeo import gdal, osr


def write_tif(path, arr):
    """arr: [bands, h, w] uint16."""
    b, h, w = arr.shape
    ds = gdal.GetDriverByName("GTiff").Create(path, w, h, b, gdal.GDT_UInt16)
    ds.SetGeoTransform([500000, 10, 0, 4000000, 0, -10])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(b):
        ds.GetRasterBand(i + 1).WriteArray(arr[i])
    ds = None


def landscape(rng, size):
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.zeros((4, size, size))
    for _ in range(4):
        fx, fy, ph = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 6.3)]
        wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
        img += rng.uniform(0.3, 1.0, (4, 1, 1)) * wave
    base = np.array([900, 1100, 800, 2500]).reshape(4, 1, 1)
    return np.clip(base + 350 * img, 0, 10000)


def cloudy(rng, clear, size):
    yy, xx = np.mgrid[0:size, 0:size]
    out = clear.copy()
    for _ in range(rng.integers(1, 4)):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size / 8, size / 3)
        op = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        out = out * (1 - op) + 7000 * op
    return np.clip(out, 0, 10000)


def main():
    out = sys.argv[1]
    args = dict(size=32, train=16, val=4, seed=1)
    for k, v in zip(sys.argv[2::2], sys.argv[3::2]):
        args[k.lstrip("-")] = int(v)
    size = args["size"]
    rng = np.random.default_rng(args["seed"])
    img = os.path.join(out, "csv", "img")
    os.makedirs(img, exist_ok=True)
    rows = {"train": [], "val": []}
    samples = []
    for split in ("train", "val"):
        for i in range(args[split]):
            clear = landscape(rng, size)
            dates = [cloudy(rng, clear, size) for _ in range(3)]
            name = f"{split}{i:03d}"
            paths = []
            for k, d in enumerate(dates):
                write_tif(os.path.join(img, f"{name}_{k}.tif"), d.astype(np.uint16))
                paths.append(f"img/{name}_{k}.tif")
            write_tif(os.path.join(img, f"{name}.tif"), clear.astype(np.uint16))
            paths.append(f"img/{name}.tif")
            rows[split].append(",".join(paths))
            samples.append((split, name, dates, clear))
    for split, lines in rows.items():
        with open(os.path.join(out, "csv", f"{split}.csv"), "w") as f:
            f.write("date1,date2,date3,target\n" + "\n".join(lines) + "\n")
    with open(os.path.join(out, "csv", "one.csv"), "w") as f:
        f.write(rows["train"][0] + "\n")
    # bad inputs: a 48x48 target and a 2-band date
    write_tif(os.path.join(img, "big.tif"), np.zeros((4, size + 16, size + 16), np.uint16))
    write_tif(os.path.join(img, "twoband.tif"), np.zeros((2, size, size), np.uint16))
    with open(os.path.join(out, "csv", "bad.csv"), "w") as f:
        f.write("\n".join(rows["train"]) + "\n")
        f.write("img/train000_0.tif,img/train000_1.tif,img/train000_2.tif,img/big.tif\n")
        f.write("img/twoband.tif,img/train000_1.tif,img/train000_2.tif,img/train000.tif\n")
    # the Sen2_MTC_New layout: train samples in tile T01, val in T02
    root = os.path.join(out, "sen2")
    for split, tile in (("train", "T01AAA_R001"), ("val", "T02BBB_R002")):
        os.makedirs(os.path.join(root, "Sen2_MTC", tile, "cloud"), exist_ok=True)
        os.makedirs(os.path.join(root, "Sen2_MTC", tile, "cloudless"), exist_ok=True)
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.write(tile + "\n")
        for s, name, dates, clear in samples:
            if s != split:
                continue
            for k, d in enumerate(dates):
                write_tif(os.path.join(root, "Sen2_MTC", tile, "cloud", f"{name}_{k}.tif"), d.astype(np.uint16))
            write_tif(os.path.join(root, "Sen2_MTC", tile, "cloudless", f"{name}.tif"), clear.astype(np.uint16))
    with open(os.path.join(root, "test.txt"), "w") as f:
        f.write("T02BBB_R002\n")


if __name__ == "__main__":
    main()
