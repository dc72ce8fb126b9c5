#!/usr/bin/env python3
"""A CIFAR ResNet-56 plan's reductions counted as HRank's code counts them.

HRank's `get_flops.py` (github.com/lmbxmu/HRank), which the S3 authors'
code inherits, counts a conv's FLOPs and parameters with its *own* output
channels pruned and its input channels whole (the next layer's input
reduction is ignored, BN is not counted). prunelab counts what the cut
network computes. This script prints both for a result file, so the S3
paper's pair (-40.4% FLOPs, -45.9% params) can be read in either
convention; `--check` first reproduces HRank's published ResNet-56 row
(62.72M FLOPs, 50.0%; 0.49M params, 42.4%) from its compress rates.

    python3 bench/hrank_flops.py --check
    python3 bench/hrank_flops.py RESULT.json [...]   # `prunelab prune --out`

Runs by hand; reads JSON, needs nothing but Python.
"""
import json
import re
import sys

FC = 64 * 10 + 10


def convs():
    """(name, c_in, c_out, map side) of every conv of ResNet-56, option A."""
    out = [("conv1", 3, 16, 32)]
    c_in = 16
    for s, (c, hw) in enumerate([(16, 32), (32, 16), (64, 8)]):
        for b in range(9):
            out.append((f"stage{s + 1}.block{b}.conv1", c_in, c, hw))
            out.append((f"stage{s + 1}.block{b}.conv2", c, c, hw))
            c_in = c
    return out


def hrank_count(kept):
    """FLOPs and params with each conv's outputs cut to `kept[name]`, inputs whole."""
    flops = params = FC
    for name, c_in, c_out, hw in convs():
        k = kept.get(name, c_out)
        flops += c_in * k * 9 * hw * hw
        params += c_in * k * 9
    return flops, params


def dense():
    return hrank_count({})


def check():
    rates = ([0.1] + [0.6] * 35 + [0.0] * 2 + [0.6] * 6 + [0.4] * 3
             + [0.1, 0.4] * 4)
    kept = {n: c - int(r * c) for (n, _, c, _), r in zip(convs(), rates)}
    (f, p), (f0, p0) = hrank_count(kept), dense()
    print(f"HRank's ResNet-56 rates: {f / 1e6:.2f}M FLOPs ({100 * (1 - f / f0):.1f}% removed), "
          f"{p / 1e6:.2f}M params ({100 * (1 - p / p0):.1f}% removed); "
          "HRank's README: 62.72M (50.0%), 0.49M (42.4%)")


def kept_from_plan(plan):
    """Kept widths by conv from a result's plan lines ('stage2.block3.conv1 32→21',
    'stage3.stream 64→28': every conv2 of the stage, and conv1 for stage 1)."""
    kept = {}
    names = [n for n, *_ in convs()]
    for line in plan:
        m = re.match(r"(\S+) (\d+)\u2192(\d+)", line)
        if not m:
            continue
        what, k = m.group(1), int(m.group(3))
        if what in names:
            kept[what] = k
        elif what.endswith(".stream"):
            stage = what.split(".")[0]
            for n in names:
                if n.startswith(stage + ".") and n.endswith("conv2"):
                    kept[n] = k
            if stage == "stage1":
                kept["conv1"] = k
    return kept


def main(paths):
    f0, p0 = dense()
    for path in paths:
        result = json.load(open(path))
        result = result.get("result", result)
        f, p = hrank_count(kept_from_plan(result["plan"]))
        print(f"{path}: prunelab -{100 * result['macs_reduction']:.1f}% MACs, "
              f"-{100 * result['params_reduction']:.1f}% params; HRank's counter "
              f"-{100 * (1 - f / f0):.1f}% FLOPs, -{100 * (1 - p / p0):.1f}% params")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or "--check" in args:
        check()
    main([a for a in args if a != "--check"])
