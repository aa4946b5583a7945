"""Independent PyTorch model of the DiffCR UNet, the oracle the C engine is tested against.

Written from the architecture description in shared/reference/DIFFCR.md section 2 (not from the
upstream source), so that a misreading of the network shows up as a disagreement between two
independent implementations instead of being silently shared.

The module tree is laid out so that ``state_dict()`` keys equal DiffCR's own keys (section 2.3):
weights trained with the official code load here unchanged (after stripping ``denoise_fn.``), and the
safetensors files written by make_case.py use the same names the C engine's parameter table uses.

Differences from upstream, on purpose:
  * ``forward(inp, gammas, crop=True)`` crops the output back to the input's H x W, as the C engine
    does. ``crop=False`` returns upstream's padded output.
  * ``cond_features`` / ``forward_cached`` split the condition branch (which depends neither on x_t
    nor on the time input) from the main branch, so a sampler or a benchmark can compute it once.
  * LayerNorm2d uses plain autograd ops instead of a hand-written backward: the oracle's gradient then
    comes from torch's autograd, independent of both upstream's and the C engine's derivation.

Run ``/usr/bin/python3 diffcr_torch.py`` for a self-check (parameter counts, shapes, cache
equivalence, LayerNorm/SCA gradient checks).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

TEMB_DIM = 256   # width of the time MLP output (hard-coded in DiffCR)
GAMMA_DIM = 64   # sinusoidal embedding size (hard-coded in DiffCR)
NDATES = 3       # DiffCR hard-codes three condition dates (inp.chunk(4))
OUT_CHANNELS = 3  # the ending conv always has 3 outputs in DiffCR

PAPER_CONFIG = dict(img_channel=3, width=64, middle_blk_num=1,
                    enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1])


def gamma_embedding(g, dim=GAMMA_DIM, max_period=10000.0):
    """Sinusoidal embedding of the raw time input g (shape [B]) -> [B, dim], cos half first.

    The frequencies are computed in float32 in the order exp(-(ln(max_period) * k) / half), which is
    how the official code rounds them; at DPM-Solver's t-inputs (up to ~999) a one-ulp difference in a
    frequency moves the angle by ~6e-5 rad, so the rounding order is worth keeping.
    """
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=g.device)
    freqs = torch.exp(-math.log(max_period) * k / half)
    angles = g.reshape(-1).float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class LayerNorm2d(nn.Module):
    """Layer norm over the channel axis at every pixel (NCHW), with a per-channel affine.

    Biased variance (mean of squared deviations) and eps inside the square root, as DiffCR's custom
    LayerNormFunction computes it. Parameter names weight/bias of shape (C,).
    """

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        mu = x.mean(dim=1, keepdim=True)
        d = x - mu
        var = (d * d).mean(dim=1, keepdim=True)
        y = d / torch.sqrt(var + self.eps)
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def simple_gate(x):
    """SimpleGate: first channel half times second channel half (2k -> k channels)."""
    a, b = torch.chunk(x, 2, dim=1)
    return a * b


class _PooledAttention(nn.Module):
    """Pool to 1x1, then a 1x1 conv with bias: the attention vector of one SCA half.

    Kept as a container whose conv is child "1" (child "0" is the pooling) so the keys read
    ``sca_avg.1.weight`` / ``sca_max.1.weight`` exactly like DiffCR's nn.Sequential.
    """

    def __init__(self, c, pool):
        super().__init__()
        self.add_module("0", pool)
        self.add_module("1", nn.Conv2d(c, c, kernel_size=1, bias=True))

    def forward(self, x):
        return self._modules["1"](self._modules["0"](x))


class SplitSCA(nn.Module):
    """Split simplified channel attention, as DiffCR uses it in both block types.

    Not a registered submodule itself: its two halves live directly on the block (``sca_avg``,
    ``sca_max``) so the state-dict keys match. The first half is scaled by a linear map of its global
    average, the second by a linear map of its global max. No sigmoid (as in NAFNet's SCA).
    """

    @staticmethod
    def apply(x, sca_avg, sca_max):
        a, m = torch.chunk(x, 2, dim=1)
        return torch.cat([a * sca_avg(a), m * sca_max(m)], dim=1)


class _BlockBase(nn.Module):
    """Shared parameters of NAFBlock and CondNAFBlock (channel count c, expansion 2 for both paths)."""

    def __init__(self, c):
        super().__init__()
        dw = 2 * c
        # Registration order only sets the state_dict() order; it follows DiffCR's checkpoints
        # (convs, SCA, FFN convs, norms, then beta/gamma; parameters of the module itself come
        # first in state_dict(), so beta/gamma are listed before the convs there).
        self.conv1 = nn.Conv2d(c, dw, kernel_size=1, bias=True)
        self.conv2 = nn.Conv2d(dw, dw, kernel_size=3, padding=1, groups=dw, bias=True)
        self.conv3 = nn.Conv2d(c, c, kernel_size=1, bias=True)
        # after the gate there are c channels; each SCA half has c/2 of them
        self.sca_avg = _PooledAttention(c // 2, nn.AdaptiveAvgPool2d(1))
        self.sca_max = _PooledAttention(c // 2, nn.AdaptiveMaxPool2d(1))
        self.conv4 = nn.Conv2d(c, 2 * c, kernel_size=1, bias=True)
        self.conv5 = nn.Conv2d(c, c, kernel_size=1, bias=True)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def _spatial_mix(self, inp):
        """First half of the block: LN, expand, depthwise 3x3, gate, split SCA, project."""
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = SplitSCA.apply(simple_gate(x), self.sca_avg, self.sca_max)
        return self.conv3(x)

    def _channel_mix(self, y):
        """Second half: LN, expand, gate, project, scaled residual."""
        x = self.conv5(simple_gate(self.conv4(self.norm2(y))))
        return y + self.gamma * x


class CondNAFBlock(_BlockBase):
    """Condition-encoder block: a NAFNet block with split SCA and no time input."""

    def forward(self, inp):
        y = inp + self.beta * self._spatial_mix(inp)
        return self._channel_mix(y)


class NAFBlock(_BlockBase):
    """Main-branch ("TCF") block: CondNAFBlock plus an additive per-channel time bias.

    The bias Linear(256 -> c)(SiLU(temb)) is added right after the first residual and stays in the
    residual stream (no scale/shift). Child "1" of ``time_emb`` is the Linear, matching DiffCR.
    """

    def __init__(self, c):
        super().__init__(c)
        self.time_emb = nn.Sequential(nn.SiLU(), nn.Linear(TEMB_DIM, c))

    def forward(self, inp, temb):
        y = inp + self.beta * self._spatial_mix(inp)
        y = y + self.time_emb(temb)[:, :, None, None]
        return self._channel_mix(y)


class TimeSequential(nn.Sequential):
    """A stack of NAFBlocks that all receive the same time embedding."""

    def forward(self, x, temb):
        for blk in self:
            x = blk(x, temb)
        return x


class DiffCRUNet(nn.Module):
    """The DiffCR UNet: a main branch on x_t with time bias, and a shared condition encoder.

    Input ``inp``: [B, 4*img_channel, H, W] = [date0, date1, date2, x_t] (x_t last); ``gammas``: [B]
    raw time inputs (gamma in training, DPM t-input when sampling). Output: [B, 3, H, W] (cropped) or
    [B, 3, Hp, Wp] with ``crop=False``, where Hp, Wp are H, W rounded up to a multiple of 2**levels.
    """

    def __init__(self, img_channel=3, width=64, middle_blk_num=1,
                 enc_blk_nums=(1, 1, 1, 1), dec_blk_nums=(1, 1, 1, 1)):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError("enc_blk_nums and dec_blk_nums must have the same length")
        self.config = dict(img_channel=img_channel, width=width, middle_blk_num=middle_blk_num,
                           enc_blk_nums=list(enc_blk_nums), dec_blk_nums=list(dec_blk_nums))
        self.img_channel = img_channel
        self.levels = len(enc_blk_nums)
        self.pad_to = 2 ** self.levels

        # Registration order follows the module order of DiffCR's checkpoints (middle_blks sits
        # between decoders and ups there), so state_dict() iterates in the same order.
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1, bias=True)
        self.cond_intro = nn.Conv2d(img_channel, width, 3, padding=1, bias=True)
        self.ending = nn.Conv2d(width, OUT_CHANNELS, 3, padding=1, bias=True)
        self.encoders = nn.ModuleList()
        self.cond_encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        mid_c = width * 2 ** self.levels
        self.middle_blks = TimeSequential(*[NAFBlock(mid_c) for _ in range(middle_blk_num)])
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.cond_downs = nn.ModuleList()

        c = width
        for n in enc_blk_nums:
            self.encoders.append(TimeSequential(*[NAFBlock(c) for _ in range(n)]))
            self.cond_encoders.append(nn.Sequential(*[CondNAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2, bias=True))
            self.cond_downs.append(nn.Conv2d(c, 2 * c, 2, stride=2, bias=True))
            c *= 2
        for n in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(TimeSequential(*[NAFBlock(c) for _ in range(n)]))
        self.map = nn.Sequential(nn.Linear(GAMMA_DIM, TEMB_DIM), nn.SiLU(),
                                 nn.Linear(TEMB_DIM, TEMB_DIM))

    # ----------------------------------------------------------------------------------------------
    def pad(self, x):
        """Zero-pad right/bottom to a multiple of 2**levels (DiffCR's check_image_size)."""
        h, w = x.shape[-2:]
        ph = (-h) % self.pad_to
        pw = (-w) % self.pad_to
        if ph == 0 and pw == 0:
            return x
        return F.pad(x, (0, pw, 0, ph))

    def split_input(self, inp):
        """[B, 4*ic, H, W] -> (cond [B*3, ic, H, W] sample-major, x_t [B, ic, H, W])."""
        ic = self.img_channel
        if inp.shape[1] != (NDATES + 1) * ic:
            raise ValueError("expected %d input channels, got %d" % ((NDATES + 1) * ic, inp.shape[1]))
        b, _, h, w = inp.shape
        cond = inp[:, :NDATES * ic].reshape(b * NDATES, ic, h, w)  # == stack(c1,c2,c3,dim=1).view
        return cond, inp[:, NDATES * ic:]

    def time_embedding(self, gammas):
        """temb = map(gamma_embedding(g)), [B, 256].

        The embedding is always computed in float32 (it is part of the definition); a float64 copy of
        the model, used to measure float32 round-off, casts it afterwards.
        """
        e = gamma_embedding(gammas)
        return self.map(e.to(self.map[0].weight.dtype))

    def cond_features(self, cond):
        """Condition branch alone: the per-level sums over dates that get added to the main branch.

        ``cond`` is [B*3, ic, H, W] (sample-major, already padded). Returns a list of ``levels``
        tensors [B, c_i, H/2^i, W/2^i]. The last cond_down's output is never used in DiffCR, so it is
        not computed here (its parameters get zero gradient, as upstream).
        """
        feats = []
        h = self.cond_intro(cond)
        for i, enc in enumerate(self.cond_encoders):
            h = enc(h)
            bn, c, hh, ww = h.shape
            feats.append(h.view(bn // NDATES, NDATES, c, hh, ww).sum(dim=1))
            if i + 1 < self.levels:
                h = self.cond_downs[i](h)
        return feats

    def forward_cached(self, x, gammas, feats):
        """Main branch on padded x_t [B, ic, Hp, Wp] with precomputed ``cond_features``."""
        temb = self.time_embedding(gammas)
        h = self.intro(x)
        skips = []
        for enc, down, f in zip(self.encoders, self.downs, feats):
            h = enc(h, temb) + f
            skips.append(h)
            h = down(h)
        h = self.middle_blks(h, temb)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            h = dec(up(h) + skip, temb)
        return self.ending(h)

    def forward(self, inp, gammas, crop=True):
        h, w = inp.shape[-2:]
        cond, x = self.split_input(self.pad(inp))
        out = self.forward_cached(x, gammas, self.cond_features(cond))
        return out[:, :, :h, :w] if crop else out


def kaiming_init_(model, generator=None):
    """DiffCR's init (DIFFCR.md 2.5): conv/linear weights ~ N(0, 2/fan_in), biases 0, LN 1/0, beta =
    gamma = 0. fan_in = in_channels/groups * kh * kw (9 for the depthwise conv)."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, LayerNorm2d):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
            elif isinstance(mod, _BlockBase):
                mod.beta.zero_()
                mod.gamma.zero_()


def count(model):
    """(number of tensors, number of scalars) in the state dict."""
    sd = model.state_dict()
    return len(sd), sum(t.numel() for t in sd.values())


# --------------------------------------------------------------------------------------------------
# Self-checks
# --------------------------------------------------------------------------------------------------

def _gradcheck_pieces():
    """Check the hand-assembled LayerNorm2d and split SCA against finite differences (float64)."""
    torch.manual_seed(1)
    ln = LayerNorm2d(6).double()
    with torch.no_grad():
        ln.weight.add_(0.3 * torch.randn(6, dtype=torch.float64))
        ln.bias.add_(0.3 * torch.randn(6, dtype=torch.float64))
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w, b: _ln_with(ln, a, w, b),
                                    (x, ln.weight, ln.bias))
    # forward agrees with torch's own layer_norm applied over the channel axis
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-12)

    blk = CondNAFBlock(8).double()
    pa, pm = blk.sca_avg, blk.sca_max
    y = torch.randn(2, 8, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: SplitSCA.apply(t, pa, pm), (y,))
    # forward by hand: a * (W mean(a) + b), m * (W max(m) + b)
    a, m = y[:, :4], y[:, 4:]
    wa, ba = pa._modules["1"].weight[:, :, 0, 0], pa._modules["1"].bias
    wm, bm = pm._modules["1"].weight[:, :, 0, 0], pm._modules["1"].bias
    va = a.mean(dim=(2, 3)) @ wa.t() + ba
    vm = m.amax(dim=(2, 3)) @ wm.t() + bm
    hand = torch.cat([a * va[:, :, None, None], m * vm[:, :, None, None]], dim=1)
    assert torch.allclose(SplitSCA.apply(y, pa, pm), hand, atol=1e-12)
    return True


def _ln_with(ln, x, w, b):
    mu = x.mean(dim=1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * w[None, :, None, None] + b[None, :, None, None]


def self_check(verbose=True):
    """Parameter counts, key names, padding/cropping, cache equivalence and gradient checks."""
    torch.manual_seed(0)
    paper = DiffCRUNet(**PAPER_CONFIG)
    n_t, n_p = count(paper)
    convlin = sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
                  for m in paper.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert (n_t, n_p) == (308, 22937731), (n_t, n_p)
    assert convlin == 22914307, convlin
    sd = paper.state_dict()
    for key, shape in [("intro.weight", (64, 3, 3, 3)), ("ending.weight", (3, 64, 3, 3)),
                       ("encoders.0.0.conv1.weight", (128, 64, 1, 1)),
                       ("encoders.0.0.conv2.weight", (128, 1, 3, 3)),
                       ("encoders.0.0.sca_avg.1.weight", (32, 32, 1, 1)),
                       ("cond_encoders.3.0.sca_max.1.bias", (256,)),
                       ("middle_blks.0.time_emb.1.weight", (1024, 256)),
                       ("middle_blks.0.beta", (1, 1024, 1, 1)),
                       ("decoders.3.0.gamma", (1, 64, 1, 1)),
                       ("decoders.0.0.norm1.weight", (512,)),
                       ("ups.0.0.weight", (2048, 1024, 1, 1)),
                       ("downs.3.weight", (1024, 512, 2, 2)), ("cond_downs.3.bias", (1024,)),
                       ("map.0.weight", (256, 64)), ("map.2.weight", (256, 256))]:
        assert tuple(sd[key].shape) == shape, (key, tuple(sd[key].shape))
    assert "ups.0.0.bias" not in sd and not any("time_emb" in k for k in sd if k.startswith("cond_"))
    if verbose:
        print("width 64 paper config: %d tensors, %d parameters (conv+linear only %d)"
              % (n_t, n_p, convlin))

    small = DiffCRUNet(width=16)
    n_t16, n_p16 = count(small)
    if verbose:
        print("width 16, [1,1,1,1]/1/[1,1,1,1]: %d tensors, %d parameters" % (n_t16, n_p16))

    # forward shapes, padding and crop, and the cached path equals the full forward
    net = DiffCRUNet(width=8, middle_blk_num=2, enc_blk_nums=[1, 2], dec_blk_nums=[2, 1]).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")) or name.endswith("bias"):
                p.normal_(0.0, 0.2)
    inp = torch.randn(2, 12, 10, 13, dtype=torch.float64)
    g = torch.tensor([0.3, 998.999], dtype=torch.float64)
    full = net(inp, g, crop=False)
    assert full.shape == (2, 3, 12, 16), full.shape
    out = net(inp, g)
    assert out.shape == (2, 3, 10, 13)
    assert torch.equal(out, full[:, :, :10, :13])
    cond, x = net.split_input(net.pad(inp))
    assert torch.equal(cond[4], net.pad(inp)[1, 3:6])  # sample 1, date 1
    cached = net.forward_cached(x, g, net.cond_features(cond))
    assert torch.allclose(cached, full, atol=1e-12)
    # date-order invariance (the dates are summed)
    perm = torch.cat([inp[:, 6:9], inp[:, 0:3], inp[:, 3:6], inp[:, 9:]], dim=1)
    assert torch.allclose(net(perm, g), out, atol=1e-10)
    # gamma embedding at 0: [1]*32 + [0]*32
    e0 = gamma_embedding(torch.zeros(1))
    assert torch.equal(e0, torch.cat([torch.ones(1, 32), torch.zeros(1, 32)], dim=1))

    assert _gradcheck_pieces()
    if verbose:
        print("shapes, crop, cached path, date invariance, LayerNorm2d/SCA gradcheck: OK")
    return (n_t, n_p), (n_t16, n_p16)


if __name__ == "__main__":
    self_check()
