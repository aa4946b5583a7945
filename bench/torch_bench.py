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

--device cuda (bench/bench_gpu.c runs it): the same measurements on the GPU, each timed run ended
by torch.cuda.synchronize(), cudnn.benchmark on (as our backend's cudnnFind). They are made three
times (--precisions): fp32 with TF32 disabled for cuDNN and cuBLAS (strict fp32, the JSON's
top-level keys), tf32 (TF32 allowed), fp16 and bf16 (torch.autocast float16 / bfloat16), the
others as sub-objects "tf32" / "fp16" / "bf16" of the JSON. --train-batch and --fwd-batch (an extra forward at that batch:
fwd_batch_ms) give the batch sizes bench_gpu measures. The defaults keep the CPU run unchanged.
"""

import argparse
import contextlib
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


def _no_sync():
    pass


def timed(fn, runs, warmup_s, sync=_no_sync):
    """Median wall time of fn() in ms: warm up for at least warmup_s (and one call), then time runs.

    The warm-up matters on the development VM: after an idle spell the first calls run several times
    slower while the clock ramps up, and oneDNN creates its kernels on first use. On a GPU, sync
    (torch.cuda.synchronize) ends every call: kernels are queued, the clock must see them finish.
    """
    t_end = time.perf_counter() + warmup_s
    fn()
    sync()
    while time.perf_counter() < t_end:
        fn()
        sync()
    times = []
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        fn()
        sync()
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


def set_precision(device, precision):
    """The arithmetic of one CUDA measurement; returns the autocast context to run the model in.

    fp32 disables TF32 in cuDNN and cuBLAS (PyTorch allows it in cuDNN by default), matching the
    C backend's strict FP32; tf32 allows it in both; fp16 / bf16 are autocast (half-precision
    convolutions)."""
    if device != "cuda":
        return contextlib.nullcontext
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    if precision in ("fp16", "bf16"):
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        return lambda: torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext


def bench(args, device="cpu", precision="fp32"):
    torch.set_num_threads(args.threads)
    model = make_model(args.width, args.seed).to(device)
    s, ts = args.size, args.train_size
    gen = torch.Generator().manual_seed(args.seed)
    sync = torch.cuda.synchronize if device == "cuda" else _no_sync
    amp = set_precision(device, precision)
    res = {}

    # --- inference: full forward, condition branch, cached main branch --------------------------
    model.eval()
    inp = (torch.rand(1, 4 * 3, s, s, generator=gen) * 2 - 1).to(device)
    tin = torch.tensor([499.5]).to(device)
    with torch.no_grad(), amp():
        cond, x = model.split_input(model.pad(inp))
        feats = model.cond_features(cond)
        res["fwd_ms"] = timed(lambda: model(inp, tin), args.runs, args.warmup_s, sync)
        res["cond_ms"] = timed(lambda: model.cond_features(cond), args.runs, args.warmup_s, sync)
        res["main_cached_ms"] = timed(lambda: model.forward_cached(x, tin, feats), args.runs,
                                      args.warmup_s, sync)
        if precision == "fp32":
            # the cached path must equal the full forward, or the numbers would compare different
            # work (reduced precision: not to 1e-4)
            assert torch.allclose(model.forward_cached(x, tin, feats)[..., :s, :s],
                                  model(inp, tin), atol=1e-4)
        if args.fwd_batch > 0:
            binp = (torch.rand(args.fwd_batch, 4 * 3, s, s, generator=gen) * 2 - 1).to(device)
            btin = torch.full((args.fwd_batch,), 499.5).to(device)
            res["fwd_batch_ms"] = timed(lambda: model(binp, btin), args.runs, args.warmup_s, sync)
            res["fwd_batch"] = args.fwd_batch

    # --- training step (DiffCR: Adam lr 5e-5, MSE on x0, gamma ~ U(0,1)) ------------------------
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-5)
    tb = args.train_batch
    tinp = (torch.rand(tb, (NDATES + 1) * 3, ts, ts, generator=gen) * 2 - 1).to(device)
    target = (torch.rand(tb, 3, ts, ts, generator=gen) * 2 - 1).to(device)
    tg = torch.full((tb,), 0.5).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        with amp():
            loss = F.mse_loss(model(tinp, tg).float(), target)
        loss.backward()
        opt.step()

    res["train_step_ms"] = timed(step, args.runs, args.warmup_s, sync)

    res["sample21_cached_ms"] = res["cond_ms"] + 21 * res["main_cached_ms"]
    res["sample21_official_ms"] = 21 * res["fwd_ms"]
    res.update(threads=torch.get_num_threads(), torch_version=torch.__version__, size=s,
               train_size=ts, width=args.width)
    if device == "cuda":
        res.update(device="cuda", precision=precision, train_batch=tb,
                   device_name=torch.cuda.get_device_name(0), cuda_version=torch.version.cuda,
                   cudnn_version=torch.backends.cudnn.version())
    return res


def print_rows(r, title):
    print(title)
    rows = [("forward %dx%d (full)" % (r["size"], r["size"]), r["fwd_ms"]),
            ("condition branch only", r["cond_ms"]),
            ("main branch, cached condition", r["main_cached_ms"]),
            ("train step %dx%d (fwd+MSE+bwd+Adam)" % (r["train_size"], r["train_size"]),
             r["train_step_ms"]),
            ("sample, cond once + 21 cached", r["sample21_cached_ms"]),
            ("sample, official (21 full forwards)", r["sample21_official_ms"])]
    if "fwd_batch_ms" in r:
        rows.insert(1, ("forward %dx%d batch %d" % (r["size"], r["size"], r["fwd_batch"]),
                        r["fwd_batch_ms"]))
    for name, ms in rows:
        print("  %-40s %10.1f ms" % (name, ms))
    print("  caching speed-up per sample: %.2fx"
          % (r["sample21_official_ms"] / r["sample21_cached_ms"]))


def bench_cuda(args):
    """The three precisions on the GPU; fp32 at the top level of the result."""
    if not torch.cuda.is_available():
        print("torch_bench: --device cuda but torch.cuda.is_available() is False (torch %s, CUDA %s)"
              % (torch.__version__, torch.version.cuda), file=sys.stderr)
        return None
    torch.backends.cudnn.benchmark = True
    precisions = [p for p in args.precisions.split(",") if p]
    results = {}
    for p in precisions:
        if p not in ("fp32", "tf32", "fp16", "bf16"):
            raise SystemExit("torch_bench: unknown precision %r" % p)
        results[p] = bench(args, "cuda", p)
        torch.cuda.empty_cache()
    res = dict(results.get("fp32") or results[precisions[0]])
    for p in ("tf32", "fp16", "bf16"):
        if p in results and res["precision"] != p:
            res[p] = results[p]
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
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precisions", default="fp32,tf32,fp16,bf16",
                   help="--device cuda: comma-separated fp32, tf32, fp16, bf16")
    p.add_argument("--train-batch", type=int, default=1, help="training batch")
    p.add_argument("--fwd-batch", type=int, default=0,
                   help="also time a full forward at this batch (0: no)")
    args = p.parse_args(argv)
    if args.runs < 5:
        print("note: fewer than 5 runs; medians will be noisy", file=sys.stderr)

    if args.device == "cuda":
        r = bench_cuda(args)
        if r is None:
            return 2
        print("DiffCR UNet, PyTorch %s on %s (CUDA %s, cuDNN %s), width %d"
              % (r["torch_version"], r["device_name"], r["cuda_version"], r["cudnn_version"],
                 r["width"]))
        print_rows(r, "fp32 (TF32 off):")
        for prec in ("tf32", "fp16", "bf16"):
            if prec in r:
                print_rows(r[prec], prec + (":" if prec == "tf32" else " (autocast):"))
    else:
        r = bench(args)
        print_rows(r, "DiffCR UNet, PyTorch %s, %d thread(s), width %d"
                   % (r["torch_version"], r["threads"], r["width"]))
    if args.json:
        print(json.dumps(r, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
