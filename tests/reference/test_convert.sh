#!/bin/bash
# diffcr oracle test — scripts/convert_pth.py on a checkpoint shaped like DiffCR's.
#
# A small DiffCR UNet (configs/tiny_test.json: width 8, enc [1,1], dec [1,1], middle 1) is built here
# as torch modules that mirror the structure of DiffCR's network file (so its state_dict keys and
# order come from PyTorch, not from the converter's own key list), filled with random values, and
# saved the way DiffCR saves its Network wrapper: "denoise_fn." prefixes plus the six schedule
# buffers. The converter's output is then parsed independently and compared bit for bit, and broken
# checkpoints (missing key, unexpected key, wrong shape) must fail with exit status 2 and a message
# naming the key. Needs Debian's /usr/bin/python3 with python3-torch; exits 77 (skipped) without.
set -u

SRC="${DIFFCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PY=/usr/bin/python3
if ! why=$("$PY" -c 'import torch' 2>&1); then
    echo "SKIP: $PY cannot import torch (install python3-torch): $(echo "$why" | tail -n 1)"
    exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/diffcr-convert-XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

cd "$WORK" || exit 1
"$PY" - "$SRC" <<'EOF'
import json, os, struct, subprocess, sys
import torch
import torch.nn as nn

src = sys.argv[1]
conv = os.path.join(src, "scripts", "convert_pth.py")
config = os.path.join(src, "configs", "tiny_test.json")
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)

# ---- a DiffCR-shaped UNet (structure of nafnet_double_encoder_splitcaCond_splitcaUnet.py) ----------
class LN2d(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

class Block(nn.Module):
    def __init__(self, c, time):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.sca_avg = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c // 2, c // 2, 1))
        self.sca_max = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Conv2d(c // 2, c // 2, 1))
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = LN2d(c)
        self.norm2 = LN2d(c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        if time:
            self.time_emb = nn.Sequential(nn.SiLU(), nn.Linear(256, c))

class UNet(nn.Module):
    def __init__(self, img_channel, width, middle, enc, dec):
        super().__init__()
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.cond_intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders, self.cond_encoders = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.middle_blks = nn.ModuleList(), nn.ModuleList()
        self.ups, self.downs, self.cond_downs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = width
        for n in enc:
            self.encoders.append(nn.Sequential(*[Block(c, True) for _ in range(n)]))
            self.cond_encoders.append(nn.Sequential(*[Block(c, False) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, 2))
            self.cond_downs.append(nn.Conv2d(c, 2 * c, 2, 2))
            c *= 2
        self.middle_blks = nn.Sequential(*[Block(c, True) for _ in range(middle)])
        for n in dec:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[Block(c, True) for _ in range(n)]))
        self.map = nn.Sequential(nn.Linear(64, 256), nn.SiLU(), nn.Linear(256, 256))

torch.manual_seed(1234)
net = UNet(3, 8, 1, [1, 1], [1, 1])
unet_state = {k: torch.randn(v.shape) for k, v in net.state_dict().items()}
check(len(unet_state) == 170, "tiny UNet has %d tensors, expected 170" % len(unet_state))

BUFFERS = ["gammas", "sqrt_recip_gammas", "sqrt_recipm1_gammas", "posterior_log_variance_clipped",
           "posterior_mean_coef1", "posterior_mean_coef2"]

def wrapped(state, extra=None):
    d = {"denoise_fn." + k: v for k, v in state.items()}
    for b in BUFFERS:
        d[b] = torch.rand(2000)
    d.update(extra or {})
    return d

def run(*args):
    p = subprocess.run(["/usr/bin/python3", conv] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr

def read_safetensors(path):
    """An independent reader: header, then float32 tensors by offsets."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    end = 0
    for k, e in header.items():
        check(e["dtype"] == "F32", "%s dtype %s" % (k, e["dtype"]))
        b, en = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:en]), dtype=torch.float32).reshape(e["shape"]) \
            if en > b else torch.zeros(e["shape"])
        out[k] = t
        end = max(end, en)
    check(end == len(data), "data section has %d bytes, tensors cover %d" % (len(data), end))
    return n, meta, list(header.keys()), out

# ---- conversion of a good checkpoint ------------------------------------------------------------
torch.save(wrapped(unet_state), "tiny.pth")
rc, out = run("tiny.pth", "tiny.safetensors", "--config", config)
check(rc == 0, "convert exited %d: %s" % (rc, out))
if rc == 0:
    hlen, meta, order, tensors = read_safetensors("tiny.safetensors")
    check(hlen % 8 == 0, "header length %d is not a multiple of 8" % hlen)
    check(set(tensors) == set(unet_state), "key sets differ: %s" % sorted(set(tensors) ^ set(unet_state)))
    check(order == list(unet_state), "tensor order differs from the PyTorch state_dict order")
    for k, v in unet_state.items():
        if k in tensors and not torch.equal(tensors[k], v):
            check(False, "tensor %s differs" % k)
    check(meta.get("diffcr.format") == "1", "metadata format: %r" % meta.get("diffcr.format"))
    check(json.loads(meta.get("diffcr.unet", "{}")) == {"img_channel": 3, "width": 8, "middle_blk_num": 1,
          "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1], "ndates": 3}, "metadata unet: %r" % meta.get("diffcr.unet"))
    check(meta.get("diffcr.unet") == '{"img_channel":3,"width":8,"middle_blk_num":1,"enc_blk_nums":[1,1],'
          '"dec_blk_nums":[1,1],"ndates":3}', "metadata unet is not compact: %r" % meta.get("diffcr.unet"))
    check(meta.get("diffcr.time_input") == "dpm_tinput", "metadata time_input")
    check(meta.get("diffcr.scaling") == "dn/5000-1", "metadata scaling")
    check(meta.get("diffcr.source") == "tiny.pth", "metadata source: %r" % meta.get("diffcr.source"))
    check(not [f for f in os.listdir(".") if ".tmp." in f], "temporary file left behind")

# A {'state_dict': ...} wrapper and --ema work too.
torch.save({"epoch": 5, "state_dict": wrapped(unet_state)}, "wrapped.pth")
rc, out = run("wrapped.pth", "wrapped.safetensors", "--config", config, "--ema")
check(rc == 0, "wrapped checkpoint: exit %d: %s" % (rc, out))
if rc == 0:
    _, meta, _, tensors = read_safetensors("wrapped.safetensors")
    check(meta.get("diffcr.ema") == "1", "--ema not recorded")
    check(all(torch.equal(tensors[k], v) for k, v in unet_state.items()), "wrapped: tensors differ")

# ---- broken checkpoints: exit 2, one line naming the key -----------------------------------------
def expect_mismatch(state, name, *pieces, args=("--config", config)):
    torch.save(state, name + ".pth")
    rc, out = run(name + ".pth", name + ".safetensors", *args)
    check(rc == 2, "%s: exit %d, expected 2: %s" % (name, rc, out))
    check(len(out.strip().splitlines()) == 1, "%s: message is not one line: %r" % (name, out))
    for p in pieces:
        check(p in out, "%s: message lacks %r: %s" % (name, p, out.strip()))
    check(not os.path.exists(name + ".safetensors"), "%s: output written anyway" % name)

gone = "encoders.1.0.sca_max.1.weight"
expect_mismatch(wrapped({k: v for k, v in unet_state.items() if k != gone}), "missing", gone, "missing")
expect_mismatch(wrapped(unet_state, {"denoise_fn.extra.weight": torch.zeros(2)}), "unexpected",
                "extra.weight", "unexpected")
bad = dict(unet_state)
bad["ups.1.0.weight"] = torch.zeros(16, 8, 1, 1)
expect_mismatch(wrapped(bad), "shape", "ups.1.0.weight", "[16, 8, 1, 1]", "[32, 16, 1, 1]")
# The tiny checkpoint against the default (paper) network: keys of the deeper levels are missing.
expect_mismatch(wrapped(unet_state), "paper", "missing key", args=())

# A file that is not a checkpoint at all: exit 1, one line.
with open("junk.pth", "wb") as f:
    f.write(b"not a pickle")
rc, out = run("junk.pth", "junk.safetensors")
check(rc == 1 and "junk.pth" in out, "junk input: exit %d: %s" % (rc, out))

# ---- the converter's key list for the paper model matches DIFFCR.md §2.3/§2.4 ---------------------
sys.path.insert(0, os.path.dirname(conv))
import convert_pth
shapes = convert_pth.expected_shapes(convert_pth.PAPER_UNET)
count = 1
total = 0
for _, s in shapes:
    count = 1
    for d in s:
        count *= d
    total += count
check(len(shapes) == 308, "paper model: %d tensors, expected 308" % len(shapes))
check(total == 22937731, "paper model: %d parameters, expected 22,937,731" % total)
paper = UNet(3, 64, 1, [1, 1, 1, 1], [1, 1, 1, 1])
check([(k, tuple(v.shape)) for k, v in paper.state_dict().items()] == [(k, tuple(s)) for k, s in shapes],
      "paper model: the converter's keys/shapes/order differ from the module's state_dict")

print("test_convert: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
EOF
