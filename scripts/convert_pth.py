#!/usr/bin/python3
"""Convert a DiffCR PyTorch checkpoint (.pth state dict) into diffcr's safetensors file.

    /usr/bin/python3 scripts/convert_pth.py IN.pth OUT.safetensors [--config CONFIG.json] [--ema]

DiffCR (XavierJiezou/DiffCR) saves `torch.save(network.state_dict())` of its `Network` wrapper: every
UNet key carries the prefix `denoise_fn.`, and six diffusion-schedule buffers ride along (they are
recomputed from the config, so they are dropped here). The remaining keys and shapes are checked
against the UNet that the config describes (default: the paper model, width 64, [1,1,1,1] / 1 /
[1,1,1,1]), because DiffCR's own loader uses strict=False and silently runs random weights when
a checkpoint does not fit; we refuse instead, naming the first missing key, unexpected key or wrong
shape (exit status 2).

The output is written by this script (struct + json: no safetensors package needed) as float32
tensors in the network's parameter order, with `__metadata__` recording the UNet, the time-input
convention and the pixel scaling the weights expect. It is written to a temporary file and renamed,
so a failure never leaves a half-written file behind.

Run it with Debian's /usr/bin/python3 (python3-torch); torch is the only dependency.
Exit status: 0 success, 1 unreadable input or unwritable output, 2 checkpoint/config mismatch.
"""

import argparse
import importlib
import json
import os
import struct
import sys

# Buffers of DiffCR's Network wrapper (models/network_x0_dpm_solver.py): the diffusion schedule,
# saved with the weights during training; diffcr recomputes them from the config.
SCHEDULE_BUFFERS = (
    "gammas",
    "sqrt_recip_gammas",
    "sqrt_recipm1_gammas",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)

# The paper model (config/ours_sigmoid.json), the same as dc_unet_config_default in C.
PAPER_UNET = {
    "img_channel": 3,
    "width": 64,
    "middle_blk_num": 1,
    "enc_blk_nums": [1, 1, 1, 1],
    "dec_blk_nums": [1, 1, 1, 1],
    "ndates": 3,
}

TEMB_DIM = 256   # width of the time-embedding MLP output (hard-coded in DiffCR)
GAMMA_DIM = 64   # sinusoidal gamma embedding size (hard-coded in DiffCR)

EXIT_IO = 1
EXIT_MISMATCH = 2


class ConvertError(Exception):
    """A one-line, user-facing failure with the exit status to use."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


# ---- configs ------------------------------------------------------------------------------------

def strip_json_comments(text):
    """Blank out // and /* */ comments outside strings (same rules as core/io/config.c)."""
    out = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated /* comment")
            # Keep newlines so json's line numbers still match the file.
            out.append("".join("\n" if ch == "\n" else " " for ch in text[i:j + 2]))
            i = j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _require_int(obj, key, lo, hi):
    if key not in obj:
        raise ConvertError('config: "unet.%s" is missing' % key, EXIT_MISMATCH)
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConvertError('config: "unet.%s" must be an integer' % key, EXIT_MISMATCH)
    if not lo <= v <= hi:
        raise ConvertError('config: "unet.%s" must be in %d..%d (got %d)' % (key, lo, hi, v), EXIT_MISMATCH)
    return v


def _require_int_list(obj, key):
    if key not in obj:
        raise ConvertError('config: "unet.%s" is missing' % key, EXIT_MISMATCH)
    v = obj[key]
    if not isinstance(v, list) or not 1 <= len(v) <= 8:
        raise ConvertError('config: "unet.%s" must be an array of 1..8 integers' % key, EXIT_MISMATCH)
    for i, e in enumerate(v):
        if isinstance(e, bool) or not isinstance(e, int) or not 0 <= e <= 64:
            raise ConvertError('config: "unet.%s" element %d must be an integer in 0..64' % (key, i),
                               EXIT_MISMATCH)
    return list(v)


def unet_from_config(root):
    """The UNet block of a DiffCR config (whole config, network args, or the unet object itself),
    normalised to PAPER_UNET's keys and order; the same rules as dc_unet_config_from_json."""
    unet = None
    try:
        unet = root["model"]["which_networks"][0]["args"]["unet"]
    except (KeyError, IndexError, TypeError):
        if isinstance(root, dict) and "unet" in root:
            unet = root["unet"]
        elif isinstance(root, dict) and "model" in root:
            raise ConvertError('config: "model.which_networks.0.args.unet" is missing', EXIT_MISMATCH)
        else:
            unet = root
    if not isinstance(unet, dict):
        raise ConvertError('config: "unet" must be an object', EXIT_MISMATCH)
    cfg = {
        "img_channel": _require_int(unet, "img_channel", 1, 64),
        "width": _require_int(unet, "width", 2, 4096),
        "middle_blk_num": _require_int(unet, "middle_blk_num", 0, 64),
        "enc_blk_nums": _require_int_list(unet, "enc_blk_nums"),
        "dec_blk_nums": _require_int_list(unet, "dec_blk_nums"),
        "ndates": _require_int(unet, "ndates", 1, 16) if "ndates" in unet else 3,
    }
    if cfg["width"] % 2:
        raise ConvertError('config: "unet.width" must be even (the split SCA halves it)', EXIT_MISMATCH)
    if len(cfg["enc_blk_nums"]) != len(cfg["dec_blk_nums"]):
        raise ConvertError('config: "unet.enc_blk_nums" and "unet.dec_blk_nums" differ in length',
                           EXIT_MISMATCH)
    return cfg


def load_config(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConvertError("%s: cannot read: %s" % (path, e.strerror or e), EXIT_IO)
    try:
        return json.loads(strip_json_comments(text))
    except ValueError as e:
        raise ConvertError("%s: invalid JSON: %s" % (path, e), EXIT_IO)


# ---- the network's parameters -------------------------------------------------------------------

def _block_shapes(prefix, c, with_time):
    """One NAFBlock (with_time) or CondNAFBlock, in PyTorch's state_dict order: the block's own
    parameters (beta, gamma), then its submodules in construction order."""
    half = c // 2   # the split SCA acts on each half of the gated channels
    shapes = [
        (prefix + "beta", (1, c, 1, 1)),
        (prefix + "gamma", (1, c, 1, 1)),
        (prefix + "conv1.weight", (2 * c, c, 1, 1)),
        (prefix + "conv1.bias", (2 * c,)),
        (prefix + "conv2.weight", (2 * c, 1, 3, 3)),   # depthwise
        (prefix + "conv2.bias", (2 * c,)),
        (prefix + "conv3.weight", (c, c, 1, 1)),
        (prefix + "conv3.bias", (c,)),
        (prefix + "sca_avg.1.weight", (half, half, 1, 1)),
        (prefix + "sca_avg.1.bias", (half,)),
        (prefix + "sca_max.1.weight", (half, half, 1, 1)),
        (prefix + "sca_max.1.bias", (half,)),
        (prefix + "conv4.weight", (2 * c, c, 1, 1)),
        (prefix + "conv4.bias", (2 * c,)),
        (prefix + "conv5.weight", (c, c, 1, 1)),
        (prefix + "conv5.bias", (c,)),
        (prefix + "norm1.weight", (c,)),
        (prefix + "norm1.bias", (c,)),
        (prefix + "norm2.weight", (c,)),
        (prefix + "norm2.bias", (c,)),
    ]
    if with_time:
        shapes += [
            (prefix + "time_emb.1.weight", (c, TEMB_DIM)),
            (prefix + "time_emb.1.bias", (c,)),
        ]
    return shapes


def expected_shapes(cfg):
    """Ordered list of (key, shape) of DiffCR's UNet for a unet config (DIFFCR.md §2.3), in the order
    of the PyTorch module's state_dict (modules in the order the constructor creates them)."""
    ic, w = cfg["img_channel"], cfg["width"]
    enc, dec = cfg["enc_blk_nums"], cfg["dec_blk_nums"]
    shapes = [
        ("intro.weight", (w, ic, 3, 3)), ("intro.bias", (w,)),
        ("cond_intro.weight", (w, ic, 3, 3)), ("cond_intro.bias", (w,)),
        # DiffCR hard-codes 3 output channels; diffcr outputs img_channel (3 in every DiffCR model).
        ("ending.weight", (ic, w, 3, 3)), ("ending.bias", (ic,)),
    ]
    chans = [w << i for i in range(len(enc))]
    for i, num in enumerate(enc):
        for k in range(num):
            shapes += _block_shapes("encoders.%d.%d." % (i, k), chans[i], True)
    for i, num in enumerate(enc):
        for k in range(num):
            shapes += _block_shapes("cond_encoders.%d.%d." % (i, k), chans[i], False)
    for j, num in enumerate(dec):
        c = chans[len(dec) - 1 - j]
        for k in range(num):
            shapes += _block_shapes("decoders.%d.%d." % (j, k), c, True)
    deep = w << len(enc)
    for k in range(cfg["middle_blk_num"]):
        shapes += _block_shapes("middle_blks.%d." % k, deep, True)
    for j in range(len(dec)):
        c = deep >> j   # 1x1 conv c -> 2c without bias, then PixelShuffle(2) -> c/2 channels
        shapes.append(("ups.%d.0.weight" % j, (2 * c, c, 1, 1)))
    for name in ("downs", "cond_downs"):
        for i, c in enumerate(chans):
            shapes += [("%s.%d.weight" % (name, i), (2 * c, c, 2, 2)), ("%s.%d.bias" % (name, i), (2 * c,))]
    shapes += [
        ("map.0.weight", (TEMB_DIM, GAMMA_DIM)), ("map.0.bias", (TEMB_DIM,)),
        ("map.2.weight", (TEMB_DIM, TEMB_DIM)), ("map.2.bias", (TEMB_DIM,)),
    ]
    return shapes


# ---- checkpoint ---------------------------------------------------------------------------------

def load_state_dict(path, ema):
    import torch
    try:
        try:
            # weights_only: a .pth is a pickle, and pickles from the internet can run code.
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:   # torch older than 1.13
            obj = torch.load(path, map_location="cpu")
    except FileNotFoundError:
        raise ConvertError("%s: cannot open: no such file" % path, EXIT_IO)
    except Exception as e:  # torch raises many types for bad files
        raise ConvertError("%s: cannot load as a PyTorch state dict: %s" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__), EXIT_IO)

    if isinstance(obj, dict) and ema:
        for key in ("state_dict_ema", "ema_state_dict", "ema"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError("%s: holds a %s, not a state dict" % (path, type(obj).__name__), EXIT_MISMATCH)

    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ConvertError("%s: key %r is not a string" % (path, key), EXIT_MISMATCH)
        name = key
        if name.startswith("module."):   # saved from a DataParallel wrapper
            name = name[len("module."):]
        if name in SCHEDULE_BUFFERS:
            continue
        if name.startswith("denoise_fn."):
            name = name[len("denoise_fn."):]
        if not isinstance(value, torch.Tensor):
            raise ConvertError("%s: value of key '%s' is not a tensor" % (path, key), EXIT_MISMATCH)
        if name in state:
            raise ConvertError("%s: key '%s' appears twice (with and without a prefix)" % (path, name),
                               EXIT_MISMATCH)
        state[name] = value
    return state


def check_state(path, state, shapes):
    expected = dict(shapes)
    missing = [k for k, _ in shapes if k not in state]
    if missing:
        more = " (and %d more)" % (len(missing) - 1) if len(missing) > 1 else ""
        raise ConvertError("%s: missing key '%s'%s for this network" % (path, missing[0], more), EXIT_MISMATCH)
    unexpected = sorted(k for k in state if k not in expected)
    if unexpected:
        more = " (and %d more)" % (len(unexpected) - 1) if len(unexpected) > 1 else ""
        raise ConvertError("%s: unexpected key '%s'%s for this network (wrong --config?)"
                           % (path, unexpected[0], more), EXIT_MISMATCH)
    for k, shape in shapes:
        got = tuple(state[k].shape)
        if got != tuple(shape):
            raise ConvertError("%s: key '%s' has shape %s, the network needs %s (wrong --config?)"
                               % (path, k, list(got), list(shape)), EXIT_MISMATCH)
        if not state[k].is_floating_point():
            raise ConvertError("%s: key '%s' has dtype %s, not floating point" % (path, k, state[k].dtype),
                               EXIT_MISMATCH)


# ---- safetensors --------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    """tensors: ordered list of (name, float32 contiguous torch tensor). Writes the header (metadata
    first, padded with spaces to a multiple of 8 bytes like the reference writer), then the data,
    to a temporary file that is renamed over `path`."""
    import torch
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, t in tensors:
        data = t.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)

    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConvertError("%s: cannot write: %s" % (path, e.strerror or e), EXIT_IO)
    return offset


def unet_json(cfg):
    """Compact, fixed key order: byte-identical to dc_unet_config_to_json in C."""
    return json.dumps({k: cfg[k] for k in PAPER_UNET}, separators=(",", ":"))


def convert(in_path, out_path, config_path=None, ema=False):
    cfg = dict(PAPER_UNET) if config_path is None else unet_from_config(load_config(config_path))
    shapes = expected_shapes(cfg)
    state = load_state_dict(in_path, ema)
    check_state(in_path, state, shapes)
    metadata = {
        "diffcr.format": "1",
        "diffcr.unet": unet_json(cfg),
        "diffcr.time_input": "dpm_tinput",
        "diffcr.scaling": "dn/5000-1",
        "diffcr.source": os.path.basename(in_path),
    }
    if ema:
        metadata["diffcr.ema"] = "1"
    nbytes = write_safetensors(out_path, [(k, state[k]) for k, _ in shapes], metadata)
    return len(shapes), nbytes // 4


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert a DiffCR .pth checkpoint to diffcr safetensors.")
    ap.add_argument("input", metavar="IN.pth")
    ap.add_argument("output", metavar="OUT.safetensors")
    ap.add_argument("--config", metavar="CONFIG.json",
                    help="DiffCR config describing the network (default: the paper model)")
    ap.add_argument("--ema", action="store_true",
                    help="the weights are the EMA copy (a *_Network_ema.pth); recorded in the metadata, "
                         "and an 'ema'/'state_dict_ema' entry of a wrapped checkpoint is used")
    args = ap.parse_args(argv)
    try:
        importlib.import_module("torch")   # fail early, with a clear message
    except ImportError as e:
        print("convert_pth.py: error: cannot import torch (%s); run with Debian's /usr/bin/python3 "
              "and python3-torch installed" % e, file=sys.stderr)
        return EXIT_IO
    try:
        count, params = convert(args.input, args.output, args.config, args.ema)
    except ConvertError as e:
        print("convert_pth.py: error: %s" % e, file=sys.stderr)
        return e.status
    print("wrote %s: %d tensors, %d parameters" % (args.output, count, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
