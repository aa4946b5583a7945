#!/usr/bin/python3
"""Independent PyTorch model of DiffCR's sampler: the sigmoid beta schedule, DPM-Solver's discrete VP
noise schedule, its x0 model wrapper with dynamic thresholding, and DPM-Solver++ multistep (orders 1
and 2, time_uniform / logSNR / time_quadratic skips, lower_order_final, denoise_to_zero).

Written from the notes in shared/reference/DIFFCR.md §3.1 and §4 (not copied from the DPM-Solver or
DiffCR code). Every scalar is float32, as in the official run: the schedule table, t grid, alpha,
sigma, lambda, the time input and the solver coefficients are float32 tensors, and the x0 -> eps -> x0
round trip of DPM-Solver's model wrapper is reproduced, so a float32 C port can be held to float
round-off.

Commands (all files are safetensors, see st.py):

  dpm_solver_torch.py selfcheck
      check this module against DIFFCR.md §4.4's toy-model vectors (both cases), the published
      gammas of §3.1 and the grid of §4.3; exit status 1 on any mismatch.

  dpm_solver_torch.py make --outdir DIR [--width 8 --enc 1,1 --dec 1,1 --middle 1] [--batch 1]
                      [--height 32 --width-px 48] [--seed 0]
      write DIR/weights.safetensors (random, make_case.py-style weights, diffcr.unet metadata),
      DIR/cond.safetensors (cond [B,9,H,W] in [-1,1)) and DIR/noise.safetensors (noise [B,3,H,W]
      ~ N(0,1)).

  dpm_solver_torch.py sample --weights W --cond C --init-noise N --output O [--steps 20]
                      [--order 2] [--skip time_uniform] [--time-input dpm_tinput|gamma]
                      [--no-threshold] [--trace]
      run the sampler with the PyTorch network (diffcr_torch.py) and write out [B,3,H,W]; metadata
      diffcr.model_calls. --trace also stores every model output (x0.<i>) and every solver state
      (x.<i>, x after step i), for bisecting a disagreement.

  dpm_solver_torch.py case --outdir DIR [make options] [sample options]
      make, then sample into DIR/expected.safetensors (one process: torch is imported once).

  dpm_solver_torch.py compare EXPECTED GOT [GOT...] [--atol 1e-4] [--calls N]
      max |out difference| (with the worst pixel) and the model-call count; exit status 1 on a
      mismatch.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402

F32 = torch.float32
F64 = torch.float64


# --------------------------------------------------------------------------------------------------
# §3.1 beta schedules


def make_beta_schedule(schedule, n_timestep, linear_start=1e-6, linear_end=1e-2, cosine_s=8e-3):
    """Betas [n] as a float64 tensor (DiffCR's make_beta_schedule).

    sigmoid: abar(tau) = (sig(3) - sig(6 tau - 3)) / (sig(3) - sig(-3)) over tau = k/n, normalised by
    abar(0); beta_k = clip(1 - abar_{k+1}/abar_k, 0, 0.999). The two end constants sig(+-3) and their
    difference are float32-rounded (they come from float32 0-dim tensors upstream), the curve itself
    is float64. linear_start / linear_end are ignored for sigmoid.
    """
    n = int(n_timestep)
    if schedule == "sigmoid":
        tau = torch.arange(n + 1, dtype=F64) / n
        s_hi = torch.sigmoid(torch.tensor(3.0, dtype=F32))     # float32 constants
        s_lo = torch.sigmoid(torch.tensor(-3.0, dtype=F32))
        denom = (s_hi - s_lo).to(F64)                            # float32 difference, then widened
        curve = torch.sigmoid(6.0 * tau - 3.0)                  # float64
        abar = (s_hi.to(F64) - curve) / denom
        abar = abar / abar[0]
        return (1.0 - abar[1:] / abar[:-1]).clamp(0.0, 0.999)
    if schedule == "linear":
        return torch.linspace(linear_start, linear_end, n, dtype=F64)
    if schedule == "quad":
        return torch.linspace(linear_start ** 0.5, linear_end ** 0.5, n, dtype=F64) ** 2
    if schedule == "cosine":
        k = torch.arange(n + 1, dtype=F64) / n + cosine_s
        abar = torch.cos(k / (1 + cosine_s) * math.pi / 2) ** 2
        abar = abar / abar[0]
        return (1.0 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError("unsupported schedule %r" % schedule)


# --------------------------------------------------------------------------------------------------
# §4.1 discrete VP noise schedule


def interp_linear(x, xp, fp):
    """Piecewise-linear interpolation through (xp, fp) (xp increasing), extending the first/last
    segment linearly outside [xp[0], xp[-1]]. float32 throughout. A query equal to a knot returns
    the knot's value exactly (except the last knot, reached through the last segment)."""
    k = xp.numel()
    j = torch.searchsorted(xp, x.contiguous(), right=True) - 1
    j = j.clamp(0, k - 2)
    x0, x1 = xp[j], xp[j + 1]
    y0, y1 = fp[j], fp[j + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


class DiscreteVP:
    """DPM-Solver's discrete VP schedule for a beta table (float64 in, float32 table).

    la[k] = 0.5 * sum_{i<=k} log(1 - beta_i); the last m entries with half-log-SNR < -5.1 are
    dropped (N' = N - m); knot k sits at t = (k+1)/N'.
    """

    def __init__(self, betas, clip_lambda=-5.1):
        betas = torch.as_tensor(betas, dtype=F64)
        la = 0.5 * torch.cumsum(torch.log(1.0 - betas), dim=0)
        lam = la - 0.5 * torch.log(1.0 - torch.exp(2.0 * la))
        m = int((lam < clip_lambda).sum())
        if m > 0:
            la = la[: la.numel() - m]
        self.log_alpha_array = la.to(F32)
        self.total_N = int(self.log_alpha_array.numel())
        self.t_array = torch.linspace(0.0, 1.0, self.total_N + 1, dtype=F32)[1:]
        self.T = 1.0

    @staticmethod
    def _t(t):
        return torch.as_tensor(t, dtype=F32).reshape(-1)

    def log_alpha(self, t):
        return interp_linear(self._t(t), self.t_array, self.log_alpha_array)

    def alpha(self, t):
        return torch.exp(self.log_alpha(t))

    def sigma(self, t):
        return torch.sqrt(1.0 - torch.exp(2.0 * self.log_alpha(t)))

    def lam(self, t):
        la = self.log_alpha(t)
        return la - 0.5 * torch.log(1.0 - torch.exp(2.0 * la))

    def inverse_lambda(self, lam):
        lam = torch.as_tensor(lam, dtype=F32).reshape(-1)
        la = -0.5 * torch.logaddexp(torch.zeros_like(lam), -2.0 * lam)
        return interp_linear(la, torch.flip(self.log_alpha_array, [0]), torch.flip(self.t_array, [0]))


# --------------------------------------------------------------------------------------------------
# §4.2 model wrapper and thresholding


def dynamic_threshold(x0, ratio=0.995, max_val=1.0):
    """Imagen's dynamic thresholding: s = max(quantile_ratio(|x0| per sample), max_val),
    x0 = clamp(x0, -s, s) / s."""
    b = x0.shape[0]
    s = torch.quantile(x0.abs().reshape(b, -1), ratio, dim=1)
    s = torch.maximum(s, torch.full_like(s, max_val)).reshape((b,) + (1,) * (x0.dim() - 1))
    return torch.clamp(x0, -s, s) / s


class X0Model:
    """DPM-Solver's model wrapper for an x0-predicting network, as DiffCR sets it up.

    net(x, tin) -> x0 prediction, with x [B,C,H,W] and tin [B] float32. The time input is
    1000 * (t - 1/N') ("dpm_tinput", what the published code feeds) or abar(t) = exp(2 log alpha(t))
    ("gamma"). The wrapper turns the output into eps with the per-sample alpha/sigma and the solver
    turns it back into x0 (float32 round-off kept), then optionally thresholds it.
    """

    def __init__(self, net, ns, time_input="dpm_tinput", threshold=True, ratio=0.995, max_val=1.0):
        if time_input not in ("dpm_tinput", "gamma"):
            raise ValueError("time_input must be dpm_tinput or gamma")
        self.net, self.ns, self.time_input = net, ns, time_input
        self.threshold, self.ratio, self.max_val = threshold, ratio, max_val
        self.calls = 0
        self.tins = []
        self.trace_x0 = []

    def tin(self, t_vec):
        if self.time_input == "dpm_tinput":
            return (t_vec - 1.0 / self.ns.total_N) * 1000.0
        return torch.exp(2.0 * self.ns.log_alpha(t_vec))

    def __call__(self, x, t):
        """Corrected x0 prediction at DPM time t (a 1-element float32 tensor)."""
        b = x.shape[0]
        t = DiscreteVP._t(t)
        t_vec = t.expand(b)
        tin = self.tin(t_vec)
        self.tins.append(float(tin[0]))
        out = self.net(x, tin)
        self.calls += 1
        bshape = (b,) + (1,) * (x.dim() - 1)
        a_vec = self.ns.alpha(t_vec).reshape(bshape)
        s_vec = self.ns.sigma(t_vec).reshape(bshape)
        eps = (x - a_vec * out) / s_vec                  # noise_pred_fn (model_type x_start)
        a, s = self.ns.alpha(t), self.ns.sigma(t)        # data_prediction_fn, t of shape (1,)
        x0 = (x - s * eps) / a
        if self.threshold:
            x0 = dynamic_threshold(x0, self.ratio, self.max_val)
        self.trace_x0.append(x0.clone())
        return x0


# --------------------------------------------------------------------------------------------------
# §4.3 DPM-Solver++ multistep


def time_steps(ns, skip, t_T, t_0, n):
    if skip == "time_uniform":
        return torch.linspace(t_T, t_0, n + 1, dtype=F32)
    if skip == "logSNR":
        l_T = float(ns.lam(torch.tensor(t_T, dtype=F32))[0])
        l_0 = float(ns.lam(torch.tensor(t_0, dtype=F32))[0])
        return ns.inverse_lambda(torch.linspace(l_T, l_0, n + 1, dtype=F32))
    if skip == "time_quadratic":
        return torch.linspace(t_T ** 0.5, t_0 ** 0.5, n + 1, dtype=F32).pow(2)
    raise ValueError("unsupported skip type %r" % skip)


def _update(ns, x, ms, ts, t, order):
    """One DPM-Solver++ multistep update to time t from the history (ms, ts) (last = newest)."""
    lam_t = ns.lam(t)
    sig_t = ns.sigma(t)
    alp_t = torch.exp(ns.log_alpha(t))
    lam_0 = ns.lam(ts[-1])
    sig_0 = ns.sigma(ts[-1])
    h = lam_t - lam_0
    phi = torch.expm1(-h)
    if order == 1:
        return sig_t / sig_0 * x - alp_t * phi * ms[-1]
    if order == 2:
        lam_1 = ns.lam(ts[-2])
        h0 = lam_0 - lam_1
        r0 = h0 / h
        d1 = (1.0 / r0) * (ms[-1] - ms[-2])
        return (sig_t / sig_0) * x - (alp_t * phi) * ms[-1] - 0.5 * (alp_t * phi) * d1
    raise ValueError("only orders 1 and 2 are modelled")


def dpmpp_multistep(model, x, steps=20, order=2, skip="time_uniform", lower_order_final=True,
                    denoise_to_zero=True, trace_x=None):
    """DPM-Solver++ multistep from t_T = 1 to t_0 = 1/N' (DiffCR's call: order 2, 20 steps,
    time_uniform, lower_order_final, denoise_to_zero). ``model`` is an X0Model. Returns the sample;
    ``trace_x`` (a list) receives x after every step."""
    ns = model.ns
    if order not in (1, 2) or steps < order:
        raise ValueError("need order 1 or 2 and steps >= order")
    t_0 = 1.0 / ns.total_N
    t_T = ns.T
    ts_all = time_steps(ns, skip, t_T, t_0, steps)
    assert ts_all.numel() == steps + 1
    t = ts_all[0:1]
    hist_t = [t]
    hist_m = [model(x, t)]
    for i in range(1, steps + 1):
        t = ts_all[i:i + 1]
        if i < order:
            step_order = i
        elif lower_order_final and steps < 10:
            step_order = min(order, steps + 1 - i)
        else:
            step_order = order
        x = _update(ns, x, hist_m, hist_t, t, step_order)
        if trace_x is not None:
            trace_x.append(x.clone())
        hist_t = (hist_t + [t])[-order:]
        if i < steps:
            hist_m = (hist_m + [model(x, t)])[-order:]
    if denoise_to_zero:
        x = model(x, torch.ones(1, dtype=F32) * t_0)
    return x


def diffcr_schedule(name="sigmoid", n=1000):
    return DiscreteVP(make_beta_schedule(name, n))


# --------------------------------------------------------------------------------------------------
# self check against DIFFCR.md


def _toy_case(a_coef, b_coef):
    ns = diffcr_schedule()
    c, hh, ww = torch.meshgrid(torch.arange(3), torch.arange(4), torch.arange(4), indexing="ij")
    x_T = torch.sin(1.0 + 16 * c + 4 * hh + ww).to(F32).unsqueeze(0)

    def toy(x, tin):
        return a_coef * torch.tanh(x) + b_coef * torch.cos(tin / 100.0).reshape(-1, 1, 1, 1)

    model = X0Model(toy, ns)
    trace = []
    out = dpmpp_multistep(model, x_T, trace_x=trace)
    return ns, model, trace, out


def half_ulp_printed(text):
    """Half a unit in the last printed digit of a decimal number written as text."""
    mant, _, exp = text.lower().partition("e")
    decimals = len(mant.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals + (int(exp) if exp else 0)) * (1 + 1e-9)


def self_check(verbose=True):
    """Check this module against the numbers in DIFFCR.md (§3.1 gammas, §4.1/§4.3 schedule and
    grid, §4.4 toy-model vectors and dynthresh). Returns the number of failures."""
    fails = []

    def close(name, got, want, tol):
        got = np.asarray(got, dtype=np.float64).ravel()
        want = np.asarray(want, dtype=np.float64).ravel()
        err = float(np.max(np.abs(got - want)))
        ok = err <= tol
        if verbose:
            print("  %-34s max err %.2e (tol %.0e) %s" % (name, err, tol, "ok" if ok else "FAIL"))
        if not ok:
            fails.append(name)
            if verbose:
                print("     got  %s\n     want %s" % (np.array2string(got, precision=7),
                                                      np.array2string(want, precision=7)))

    # §3.1 gammas (float32 buffers, as printed): each must round to the printed digits. This also
    # pins the float32 sig(+-3) detail: with float64 constants gammas[999] (n=1000) is 3.00279e-7,
    # which does not round to the published 3.0029e-7.
    for n, idx, want in ((1000, [0, 1, 2, 500, 998, 999],
                          ["0.99969971", "0.99939781", "0.99909425", "0.49834281", "3.0029e-4",
                           "3.0029e-7"]),
                         (2000, [0, 1, 2, 1000, 1998, 1999],
                          ["0.99985003", "0.99969971", "0.99954897", "0.49917141", "1.4994e-4",
                           "1.4994e-7"])):
        g = torch.cumprod(1.0 - make_beta_schedule("sigmoid", n), 0).to(F32).numpy()
        for i, w in zip(idx, want):
            close("gammas n=%d [%d] = %s" % (n, i, w), g[i], float(w), half_ulp_printed(w))
    # §4.1 table
    ns = diffcr_schedule()
    if ns.total_N != 999:
        fails.append("total_N")
    if verbose:
        print("  total_N' = %d (want 999)" % ns.total_N)
    close("la[0], la[998]", [ns.log_alpha_array[0], ns.log_alpha_array[998]],
          [-1.5016e-4, -4.055386], 1e-7)
    # §4.3 grid and time inputs
    ts = time_steps(ns, "time_uniform", 1.0, 1.0 / ns.total_N, 20)
    tin = (ts - 1.0 / ns.total_N) * 1000.0
    close("t_input grid (3 decimals)", tin[[0, 1, 2, 3, 4, 5, 10, 15, 19, 20]],
          [998.999, 949.049, 899.099, 849.149, 799.199, 749.249, 499.4995, 249.75, 49.95, 0.0], 6e-4)
    close("lambda at t_i (4 decimals)", ns.lam(ts[[0, 1, 2, 5, 10, 15, 19, 20]]),
          [-4.0552, -2.0131, -1.5904, -0.8687, 0.0, 0.8687, 2.0131, 4.0552], 6e-5)
    close("abar at t_i (5 significant)", torch.exp(2 * ns.log_alpha(ts[[0, 1, 2, 5, 10, 15, 19, 20]])),
          [3.0028e-4, 1.7529e-2, 3.9898e-2, 0.14964, 0.5, 0.85036, 0.98247, 0.99970], 6e-6)
    # §4.4 toy vectors (rounded to 6 decimals; float32 run)
    tol = 1.5e-6
    for a_coef, b_coef, step1, step20, fin0, fin2, ssum, mabs in (
            (0.5, 0.01, [0.872769, 0.941980, 0.147002, -0.788049],
             [0.138461, 0.145758, 0.042391, -0.091878], [0.078791, 0.082367, 0.031183, -0.035810],
             [0.079297, 0.081978, 0.029744, -0.036473], 1.000362, 0.048159),
            (1.5, 0.0, [0.938062, 1.010477, 0.161108, -0.846955],
             [0.995279, 1.005131, 0.543570, -0.981287], [0.988306, 0.993688, 0.644926, -0.980523],
             [0.989094, 0.993123, 0.595049, -0.981659], 1.651250, 0.894815)):
        _, model, trace, out = _toy_case(a_coef, b_coef)
        tag = "toy A=%g B=%g" % (a_coef, b_coef)
        if model.calls != 21:
            fails.append(tag + " calls")
        if verbose:
            print("  %s: %d model calls (want 21)" % (tag, model.calls))
        close(tag + " x after step 1", trace[0][0, 0, 0], step1, tol)
        close(tag + " x after step 20", trace[19][0, 0, 0], step20, tol)
        close(tag + " final [0,0,0,:]", out[0, 0, 0], fin0, tol)
        close(tag + " final [0,2,3,:]", out[0, 2, 3], fin2, tol)
        close(tag + " final sum", out.double().sum(), ssum, 1.5e-5)
        close(tag + " final mean |.|", out.double().abs().mean(), mabs, 1.5e-6)
    # §4.4 dynthresh example
    v = torch.linspace(-2, 2, 201, dtype=F32).reshape(1, -1)
    d = dynamic_threshold(v)
    close("dynthresh linspace(-2,2,201)", [d.max(), d[0, 150]], [1.0, 0.5], 1e-7)
    if verbose:
        print("self check: %s" % ("all ok" if not fails else "FAILED: " + ", ".join(fails)))
    return len(fails)


# --------------------------------------------------------------------------------------------------
# the DiffCR network as the sampler's model


def load_network(weights_path):
    from diffcr_torch import DiffCRUNet
    tensors, meta = st.load(weights_path)
    cfg = json.loads(meta["diffcr.unet"])
    model = DiffCRUNet(**cfg)
    sd = {k[len("denoise_fn."):] if k.startswith("denoise_fn.") else k: torch.from_numpy(v)
          for k, v in tensors.items()}
    model.load_state_dict(sd, strict=False)
    model.eval()
    sched = json.loads(meta["diffcr.schedule"]) if "diffcr.schedule" in meta else {}
    return model, sched, meta


def network_fn(model, cond):
    """x0 = UNet(cat(cond, x), tin), with the condition branch computed once (it does not depend on
    x or t) — the same numbers as model(torch.cat([cond, x], 1), tin)."""
    h, w = cond.shape[-2:]
    cond_p = model.pad(cond)
    b = cond.shape[0]
    feats = model.cond_features(cond_p.reshape(b * 3, model.img_channel, *cond_p.shape[-2:]))

    def fn(x, tin):
        with torch.no_grad():
            out = model.forward_cached(model.pad(x), tin.to(F32), feats)
        return out[:, :, :h, :w]

    return fn


def cmd_make(args):
    import make_case
    from diffcr_torch import DiffCRUNet
    cfg = dict(img_channel=3, width=args.width, middle_blk_num=args.middle,
               enc_blk_nums=args.enc, dec_blk_nums=args.dec)
    gen = torch.Generator().manual_seed(args.seed)
    model = DiffCRUNet(**cfg)
    make_case.randomise_(model, gen)
    b, h, w = args.batch, args.height, args.width_px
    cond = (torch.rand(b, 9, h, w, generator=gen) * 2.0 - 1.0).float()
    noise = torch.randn(b, 3, h, w, generator=gen).float()
    os.makedirs(args.outdir, exist_ok=True)
    meta = {"diffcr.format": "1", "diffcr.unet": json.dumps(cfg, separators=(",", ":"))}
    st.save(os.path.join(args.outdir, "weights.safetensors"),
            {k: v.detach().numpy() for k, v in model.state_dict().items()}, meta)
    st.save(os.path.join(args.outdir, "cond.safetensors"), {"cond": cond.numpy()})
    st.save(os.path.join(args.outdir, "noise.safetensors"), {"noise": noise.numpy()})
    print("case %s: unet %s, cond %s, noise %s" % (args.outdir, meta["diffcr.unet"],
                                                    list(cond.shape), list(noise.shape)))
    return 0


def cmd_sample(args):
    model, sched, _ = load_network(args.weights)
    cond = torch.from_numpy(st.load(args.cond)[0]["cond"])
    noise = torch.from_numpy(st.load(args.init_noise)[0]["noise"])
    ns = diffcr_schedule(sched.get("schedule", "sigmoid"), int(sched.get("n_timestep", 1000)))
    wrapper = X0Model(network_fn(model, cond), ns, time_input=args.time_input,
                      threshold=not args.no_threshold)
    trace = []
    out = dpmpp_multistep(wrapper, noise.clone(), steps=args.steps, order=args.order,
                          skip=args.skip, trace_x=trace)
    tensors = {"out": out.numpy()}
    if args.trace:
        for i, v in enumerate(wrapper.trace_x0):
            tensors["x0.%d" % i] = v.numpy()
        for i, v in enumerate(trace):
            tensors["x.%d" % (i + 1)] = v.numpy()
    st.save(args.output, tensors, {"diffcr.model_calls": str(wrapper.calls),
                                   "time_inputs": ",".join("%.7g" % v for v in wrapper.tins)})
    print("pytorch sampler: %d model calls, |out| max %.4g, time inputs %s"
          % (wrapper.calls, float(out.abs().max()),
             ", ".join("%.6g" % v for v in wrapper.tins)))
    return 0


def cmd_compare(args):
    ok = True
    for path in args.got:
        print("%s:" % os.path.basename(path))
        ok = compare_one(args, path) and ok
    return 0 if ok else 1


def compare_one(args, path):
    exp, emeta = st.load(args.expected)
    got, gmeta = st.load(path)
    ok = True
    e, g = exp["out"].astype(np.float64), got.get("out")
    if g is None or g.shape != e.shape:
        print("FAIL: out missing or shape %s != %s" % (None if g is None else g.shape, e.shape))
        return False
    d = np.abs(g.astype(np.float64) - e)
    err = float(d.max())
    where = np.unravel_index(int(np.argmax(d)), d.shape)
    print("out: max abs err %.3e at %s (expected %.6f, got %.6f), mean abs err %.3e, |out| max %.3f"
          % (err, list(where), e[where], g[where], float(d.mean()), float(np.abs(e).max())))
    if not err <= args.atol:
        print("FAIL: out differs by more than %g" % args.atol)
        ok = False
    calls = gmeta.get("diffcr.model_calls")
    want = args.calls if args.calls is not None else int(emeta.get("diffcr.model_calls", -1))
    if calls is None or int(calls) != want:
        print("FAIL: diffcr.model_calls = %s, want %d" % (calls, want))
        ok = False
    else:
        print("model calls: %s (want %d)" % (calls, want))
    return ok


def int_list(s):
    return [int(v) for v in s.split(",") if v.strip()]


def add_make_args(m):
    m.add_argument("--outdir", required=True)
    m.add_argument("--width", type=int, default=8)
    m.add_argument("--enc", type=int_list, default=[1, 1])
    m.add_argument("--dec", type=int_list, default=[1, 1])
    m.add_argument("--middle", type=int, default=1)
    m.add_argument("--batch", type=int, default=1)
    m.add_argument("--height", type=int, default=32)
    m.add_argument("--width-px", type=int, default=48)
    m.add_argument("--seed", type=int, default=0)


def add_sampler_args(s):
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--order", type=int, default=2)
    s.add_argument("--skip", default="time_uniform",
                   choices=["time_uniform", "logSNR", "time_quadratic"])
    s.add_argument("--time-input", default="dpm_tinput", choices=["dpm_tinput", "gamma"])
    s.add_argument("--no-threshold", action="store_true")
    s.add_argument("--trace", action="store_true")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selfcheck")
    m = sub.add_parser("make")
    add_make_args(m)
    s = sub.add_parser("sample")
    s.add_argument("--weights", required=True)
    s.add_argument("--cond", required=True)
    s.add_argument("--init-noise", required=True)
    s.add_argument("--output", required=True)
    k = sub.add_parser("case")
    add_make_args(k)
    for q in (s, k):
        add_sampler_args(q)
    c = sub.add_parser("compare")
    c.add_argument("expected")
    c.add_argument("got", nargs="+")
    c.add_argument("--atol", type=float, default=1e-4)
    c.add_argument("--calls", type=int, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.cmd == "selfcheck":
        return 1 if self_check() else 0
    if args.cmd == "make":
        return cmd_make(args)
    if args.cmd == "sample":
        return cmd_sample(args)
    if args.cmd == "case":
        rc = cmd_make(args)
        if rc == 0:
            d = args.outdir
            args.weights = os.path.join(d, "weights.safetensors")
            args.cond = os.path.join(d, "cond.safetensors")
            args.init_noise = os.path.join(d, "noise.safetensors")
            args.output = os.path.join(d, "expected.safetensors")
            rc = cmd_sample(args)
        return rc
    return cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
