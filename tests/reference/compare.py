#!/usr/bin/python3
"""Compare a C engine's results against the PyTorch oracle's expected.safetensors.

    compare.py EXPECTED.safetensors GOT.safetensors [--atol 1e-4] [--grad-rtol 1e-3] [--top 12]

Checks:
  * ``out``: max |got - expected| <= atol (absolute: the oracle cases keep |out| of order 1);
  * every ``grad.<name>`` in EXPECTED: max |g_c - g_t| / max(max |g_t|, 1e-6) <= grad-rtol, per tensor.
    The error is relative to the tensor's largest gradient rather than elementwise, because
    gradients summed over many pixels have entries that are pure cancellation noise; a per-tensor
    scale still catches any wrong entry of meaningful size.
A tensor missing from GOT, or with a different shape, is a failure. Tensors in GOT that EXPECTED does
not have are ignored (e.g. extra outputs of the C program). Exit status 0 = pass, 1 = fail, 2 = bad
usage or unreadable file.

Only numpy and st.py are needed (no torch), so the comparison also runs where torch is missing.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def compare(expected, got, atol, grad_rtol):
    """Return rows (name, kind, error, limit, ok, note) for every checked tensor."""
    rows = []
    names = []
    if "out" in expected:
        names.append("out")
    names += sorted(n for n in expected if n.startswith("grad."))
    for name in names:
        e = expected[name].astype(np.float64)
        kind = "abs" if name == "out" else "rel"
        limit = atol if name == "out" else grad_rtol
        if name not in got:
            rows.append((name, kind, float("inf"), limit, False, "missing"))
            continue
        g = got[name].astype(np.float64)
        if g.shape != e.shape:
            rows.append((name, kind, float("inf"), limit, False,
                         "shape %s, expected %s" % (list(g.shape), list(e.shape))))
            continue
        if not np.all(np.isfinite(g)):
            rows.append((name, kind, float("inf"), limit, False, "non-finite values"))
            continue
        diff = float(np.max(np.abs(g - e))) if e.size else 0.0
        if name == "out":
            err = diff
        else:
            scale = max(float(np.max(np.abs(e))) if e.size else 0.0, 1e-6)
            err = diff / scale
        rows.append((name, kind, err, limit, err <= limit, ""))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description="Compare diffcr-net output with the PyTorch oracle.")
    p.add_argument("expected")
    p.add_argument("got")
    p.add_argument("--atol", type=float, default=1e-4, help="max abs error allowed on out")
    p.add_argument("--grad-rtol", type=float, default=1e-3,
                   help="max (max abs error / max abs expected) allowed per gradient tensor")
    p.add_argument("--top", type=int, default=12, help="rows of the worst-tensor table")
    args = p.parse_args(argv)

    try:
        expected, _ = st.load(args.expected)
        got, _ = st.load(args.got)
    except (OSError, ValueError) as exc:
        print("compare: %s" % exc, file=sys.stderr)
        return 2
    if "out" not in expected and not any(n.startswith("grad.") for n in expected):
        print("compare: %s has neither 'out' nor 'grad.*' tensors" % args.expected, file=sys.stderr)
        return 2

    rows = compare(expected, got, args.atol, args.grad_rtol)
    failed = [r for r in rows if not r[4]]
    # worst first, measured against each tensor's own limit
    ranked = sorted(rows, key=lambda r: -(r[2] / r[3] if r[3] > 0 else r[2]))
    print("%-48s %-4s %11s %9s  %s" % ("tensor", "kind", "error", "limit", "status"))
    for name, kind, err, limit, ok, note in ranked[:max(args.top, 0)]:
        print("%-48s %-4s %11.3e %9.1e  %s%s" % (name, kind, err, limit, "ok" if ok else "FAIL",
                                                ("  (" + note + ")") if note else ""))
    n_grad = sum(1 for r in rows if r[0].startswith("grad."))
    if failed:
        for name, kind, err, limit, _, note in failed:
            print("FAIL: %s: %s" % (name, note if note else "%s error %.3e > %.1e" % (kind, err, limit)))
        print("compare: %d of %d tensors failed (%s vs %s)"
              % (len(failed), len(rows), args.got, args.expected))
        return 1
    print("compare: all %d tensors within tolerance (out%s, %d gradients)"
          % (len(rows), "" if "out" in expected else " not present", n_grad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
