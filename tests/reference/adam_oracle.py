#!/usr/bin/python3
"""PyTorch side of the Adam oracle: adam_oracle.py make DIR | check DIR NAME LR WD adam|adamw

make: writes DIR/adam_in.safetensors with params [n] and grads [k, n] (k = 3 steps, values over
several magnitudes, including zeros). check: runs torch.optim.Adam / AdamW (foreach=False: the
single-tensor path diffcr follows) for the same steps and compares with DIR/NAME.safetensors
(params, m = exp_avg, v = exp_avg_sq) written by diffcr-train --debug-adam-step; prints the
largest relative error (relative to the magnitude of the summed terms, see check) and fails
above 1e-5."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def make(d):
    rng = np.random.default_rng(7)
    n, k = 4096, 3
    params = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1, n)).astype(np.float32)
    grads = (rng.standard_normal((k, n)) * 10.0 ** rng.uniform(-6, 0, (k, n))).astype(np.float32)
    grads[:, :16] = 0
    st.save(os.path.join(d, "adam_in.safetensors"), {"params": params, "grads": grads})


def check(d, name, lr, wd, kind):
    t, _ = st.load(os.path.join(d, "adam_in.safetensors"))
    p = torch.nn.Parameter(torch.from_numpy(t["params"].copy()))
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    opt = cls([p], lr=lr, weight_decay=wd, foreach=False)
    for g in t["grads"]:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
    state = opt.state[p]
    ref = {"params": p.detach().numpy(), "m": state["exp_avg"].numpy(), "v": state["exp_avg_sq"].numpy()}
    out, _ = st.load(os.path.join(d, name + ".safetensors"))
    p0 = t["params"].astype(np.float64)
    # Adam's L2 term enters the gradient (grad + wd * param): count it in the scale
    g = np.abs(t["grads"].astype(np.float64)) + (0 if kind == "adamw" else wd * np.abs(p0))
    # Relative error against the size of what was summed, so that cancellation (m of gradients of
    # both signs; a weight the update drives through zero) does not turn one rounding into a huge
    # "relative" error: m ~ sum |(1-b1) g|, v ~ sum (1-b2) g^2, params ~ max(|p|, |p - p0|).
    b1 = 1 - 0.9
    scale = {
        "m": np.maximum(np.abs(ref["m"]), b1 * np.abs(g).sum(0)),
        "v": np.maximum(np.abs(ref["v"]), 0.001 * (g * g).sum(0)),
        "params": np.maximum(np.abs(ref["params"]), np.abs(ref["params"] - p0)),
    }
    worst = 0.0
    for key, r in ref.items():
        c = out[key].astype(np.float64)
        r = r.astype(np.float64)
        sc = np.maximum(scale[key], 1e-30)
        err = np.max(np.abs(c - r) / sc)
        worst = max(worst, err)
        print("  %-7s %-6s max relative error %.3e" % (name, key, err))
    assert worst < 1e-5, "%s: %.3e" % (name, worst)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
