#!/usr/bin/env python3
"""diffcr cudasim: turn a core/cuda/*.cu file into host C++ for the simulator.

Two rewrites, nothing else (line numbers are kept, and #line points errors at the .cu file):
  kernel<<<grid, block, smem, stream>>>(args)  ->  dc_sim_launch("kernel", kernel, dc_sim_config(grid, block, smem, stream), args)
  extern __shared__ T name[];                  ->  T *name = (T *)dc_sim_dynamic_smem();
and `#include "sim_kernel.h"` in front, the implicit include nvcc gives every .cu file.
Usage: rewrite_cu.py input.cu output.cpp
"""
import re
import sys


def kernel_name_start(text, end):
    """Start index of the kernel expression that ends just before `end` (`name` or `name<T, U>`)."""
    i = end
    if text[i - 1] == ">":  # template arguments: walk back to the matching '<'
        depth = 0
        while True:
            i -= 1
            if text[i] == ">":
                depth += 1
            elif text[i] == "<":
                depth -= 1
                if depth == 0:
                    break
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_:"):
        j -= 1
    if j == i:
        raise SystemExit("rewrite_cu.py: no kernel name before <<< at offset %d" % end)
    return j, text[j:i]


def rewrite_launches(text):
    out = []
    pos = 0
    while True:
        k = text.find("<<<", pos)
        if k < 0:
            out.append(text[pos:])
            return "".join(out)
        start, name = kernel_name_start(text, k)
        close = text.find(">>>", k)
        if close < 0:
            raise SystemExit("rewrite_cu.py: <<< without >>>")
        cfg = text[k + 3:close]
        paren = close + 3
        while text[paren].isspace():
            paren += 1
        if text[paren] != "(":
            raise SystemExit("rewrite_cu.py: no argument list after >>> for kernel %s" % name)
        rest = paren + 1
        while text[rest].isspace() and text[rest] != "\n":
            rest += 1
        sep = "" if text[rest] == ")" else ", "
        out.append(text[pos:start])
        out.append('dc_sim_launch("%s", %s, dc_sim_config(%s)%s' % (name, text[start:k], cfg, sep))
        pos = paren + 1


SHARED = re.compile(r"extern\s+__shared__\s+([A-Za-z_][\w \t]*?)\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        text = f.read()
    text = SHARED.sub(lambda m: "%s *%s = (%s *)dc_sim_dynamic_smem();" % (m.group(1), m.group(2), m.group(1)), text)
    text = rewrite_launches(text)
    with open(dst, "w") as f:
        f.write('#include "sim_kernel.h"\n#line 1 "%s"\n' % src)
        f.write(text)


if __name__ == "__main__":
    main()
