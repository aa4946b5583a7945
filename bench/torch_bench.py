#!/usr/bin/python3
"""PyTorch CPU baseline for the DiffCR UNet, the yardstick the C engine's benchmarks are read against.

    torch_bench.py --threads 2 --width 64 [--size 256] [--train-size 128] [--runs 5] [--json]

Measures (batch 1, medians of --runs timed runs after at least --warmup-s seconds of warm-up each):
  fwd_ms              full forward at size x size (eval, no_grad), as DiffCR's sampler calls it
  cond_ms             the condition branch alone (cond_intro, cond encoders, per-level date sums)
  main_cached_ms      the main branch given cached condition sums (what a caching sampler pays per step)
  train_step_ms       one training step at train-size x train-size: forward, MSE on x0, backward,
                      Adam (lr 5e-5, as DiffCR trains)
  sample21_cached_ms  cond_ms + 21 * main_cached_ms: one DPM-Solver++ sample (20 steps + denoise) with
                      the condition computed once
  sample21_official_ms  21 * fwd_ms: the same sample as the official pipeline runs it (the condition is
                      recomputed on every call)

Use Debian's /usr/bin/python3 (python3-torch). torch defaults to ONE intra-op thread on the
development machine even with 2 cores (BACKENDS.md section 3), so --threads is applied explicitly and
reported; compare against C runs with the same thread count.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from diffcr_torch import NDATES, DiffCRUNet, kaiming_init_  # noqa: E402


def timed(fn, runs, warmup_s):
    """Median wall time of fn() in ms: warm up for at least warmup_s (and one call), then time runs.

    The warm-up matters on the development VM: after an idle spell the first calls run several times
    slower while the clock ramps up, and oneDNN creates its kernels on first use.
    """
    t_end = time.perf_counter() + warmup_s
    fn()
    while time.perf_counter() < t_end:
        fn()
    times = []
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def make_model(width, seed):
    """Paper-shaped network (enc/dec [1,1,1,1], middle 1) with DiffCR's init; values don't affect
    timing, but beta/gamma are set non-zero so no branch could be skipped as dead."""
    torch.manual_seed(seed)
    model = DiffCRUNet(img_channel=3, width=width, middle_blk_num=1,
                       enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1])
    kaiming_init_(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".beta", ".gamma")):
                p.fill_(0.1)
    return model


def bench(args):
    torch.set_num_threads(args.threads)
    model = make_model(args.width, args.seed)
    s, ts = args.size, args.train_size
    gen = torch.Generator().manual_seed(args.seed)
    res = {}

    # --- inference: full forward, condition branch, cached main branch --------------------------
    model.eval()
    inp = torch.rand(1, 4 * 3, s, s, generator=gen) * 2 - 1
    tin = torch.tensor([499.5])
    with torch.no_grad():
        cond, x = model.split_input(model.pad(inp))
        feats = model.cond_features(cond)
        res["fwd_ms"] = timed(lambda: model(inp, tin), args.runs, args.warmup_s)
        res["cond_ms"] = timed(lambda: model.cond_features(cond), args.runs, args.warmup_s)
        res["main_cached_ms"] = timed(lambda: model.forward_cached(x, tin, feats), args.runs,
                                      args.warmup_s)
        # the cached path must equal the full forward, or the numbers would compare different work
        assert torch.allclose(model.forward_cached(x, tin, feats)[..., :s, :s], model(inp, tin),
                              atol=1e-4)

    # --- training step (DiffCR: Adam lr 5e-5, MSE on x0, gamma ~ U(0,1)) ------------------------
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-5)
    tinp = torch.rand(1, (NDATES + 1) * 3, ts, ts, generator=gen) * 2 - 1
    target = torch.rand(1, 3, ts, ts, generator=gen) * 2 - 1
    tg = torch.tensor([0.5])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(tinp, tg), target)
        loss.backward()
        opt.step()

    res["train_step_ms"] = timed(step, args.runs, args.warmup_s)

    res["sample21_cached_ms"] = res["cond_ms"] + 21 * res["main_cached_ms"]
    res["sample21_official_ms"] = 21 * res["fwd_ms"]
    res.update(threads=torch.get_num_threads(), torch_version=torch.__version__, size=s,
               train_size=ts, width=args.width)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description="PyTorch CPU timings of the DiffCR UNet.")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--size", type=int, default=256, help="inference tile side")
    p.add_argument("--train-size", type=int, default=128, help="training crop side")
    p.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--warmup-s", type=float, default=1.0, help="minimum warm-up per measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print one JSON object")
    args = p.parse_args(argv)
    if args.runs < 5:
        print("note: fewer than 5 runs; medians will be noisy", file=sys.stderr)

    r = bench(args)
    print("DiffCR UNet, PyTorch %s, %d thread(s), width %d" % (r["torch_version"], r["threads"],
                                                               r["width"]))
    rows = [("forward %dx%d (full)" % (r["size"], r["size"]), r["fwd_ms"]),
            ("condition branch only", r["cond_ms"]),
            ("main branch, cached condition", r["main_cached_ms"]),
            ("train step %dx%d (fwd+MSE+bwd+Adam)" % (r["train_size"], r["train_size"]),
             r["train_step_ms"]),
            ("sample, cond once + 21 cached", r["sample21_cached_ms"]),
            ("sample, official (21 full forwards)", r["sample21_official_ms"])]
    for name, ms in rows:
        print("  %-40s %10.1f ms" % (name, ms))
    print("  caching speed-up per sample: %.2fx"
          % (r["sample21_official_ms"] / r["sample21_cached_ms"]))
    if args.json:
        print(json.dumps(r, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
