"""Minimal safetensors reader/writer on numpy + struct + json.

Kept dependency-free on purpose (Debian has no python3-safetensors package, and the oracle must run
with nothing but python3-torch and python3-numpy). Layout: an 8-byte little-endian header length N,
then N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str:
str}}, padded with spaces to a multiple of 8, then the raw little-endian tensor data; offsets are
relative to the start of the data section.

Supported dtypes: F32, F64, I32, I64.
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}


def _dtype_name(arr):
    """Safetensors dtype name of a numpy array (byte order is normalised to little-endian on write)."""
    key = (arr.dtype.kind, arr.dtype.itemsize)
    names = {("f", 4): "F32", ("f", 8): "F64", ("i", 4): "I32", ("i", 8): "I64"}
    if key not in names:
        raise TypeError("unsupported dtype %s (only float32/float64/int32/int64)" % arr.dtype)
    return names[key]


def save(path, tensors, metadata=None):
    """Write ``tensors`` (name -> numpy array) and optional string ``metadata`` to ``path``.

    Tensors are laid out largest element size first, so with a header padded to 8 bytes every tensor
    starts at an offset aligned to its element size (readers that map the file can use it in place).
    """
    entries = []
    for name, arr in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        a = np.asarray(arr)
        dname = _dtype_name(a)
        entries.append((name, np.array(a, dtype=_DTYPES[dname], order="C"), dname))
    entries.sort(key=lambda e: -e[1].dtype.itemsize)  # stable: keeps caller order within a size

    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata keys and values must be strings")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, a, dname in entries:
        header[name] = {"dtype": dname, "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for _, a, _ in entries:
            f.write(a.tobytes(order="C"))


def load(path):
    """Read a safetensors file -> (dict name -> numpy array (a copy), metadata dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: file too short for a safetensors header" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError("%s: header length %d exceeds the file size" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dname = info["dtype"]
        if dname not in _DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dname))
        dt = _DTYPES[dname]
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(v) for v in info["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
            raise ValueError("%s: tensor %s has bad data_offsets %s" % (path, name, [b, e]))
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(shape).copy()
    return out, meta
