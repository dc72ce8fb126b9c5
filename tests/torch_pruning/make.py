#!/usr/bin/env python3
"""Torch-Pruning's plan for prunelab's ResNet-20 (option B), as a fixture.

Run by hand (not in CI): it needs PyTorch and torch-pruning from PyPI.

    python3 -m venv /tmp/tp && /tmp/tp/bin/pip install torch==2.5.1 torch-pruning==1.6.1
    /tmp/tp/bin/python tests/torch_pruning/make.py

It builds the CIFAR ResNet-20 with 1x1 projection shortcuts exactly as
prunelab does (stem conv3x3-BN-ReLU; BasicBlocks conv-BN-ReLU-conv-BN, + the
shortcut, ReLU; global average pool; fc), sets the weights by the formula
below (the Rust test `crate/tests/engine/torch_pruning.rs` sets the same ones), runs
Torch-Pruning's global group-L2 magnitude pruning (MetaPruner with
GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer="mean"),
global_pruning=True, fc ignored) at each ratio, and writes, per group in
prunelab's names, the kept channel indices and TP's normalised group scores
to fixtures/resnet20b.json.

THE WEIGHTS. Tensors numbered k = 0, 1, ... in the order: for each layer L in
[stem, then per block: conv1, conv2, shortcut (if any)]: L's conv weight,
then L's BN gamma; then fc.weight. Element at flat index i of the PyTorch
layout (conv [out, in, kh, kw], fc [10, 64]):
s = sin(1 + 1.3 k + 0.37 i + 0.00061 i^2), in float64, rounded to float32;
conv weight s / sqrt(in * kh * kw), gamma 1 + 0.5 s, fc weight s / 8.
Everything else keeps its initial value (BN beta 0, running stats 0 and 1,
fc bias 0): magnitude pruning reads only these tensors.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_pruning as tp

RATIOS = [0.3, 0.5]
HERE = os.path.dirname(os.path.abspath(__file__))


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c_in = [], 16
        for width, stride in [(16, 1), (32, 2), (64, 2)]:
            for b in range(3):
                blocks.append(Block(c_in, width, stride if b == 0 else 1))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def layers(self):
        """(prunelab name, conv, bn) in the documented order."""
        out = [("stem", self.stem, self.bn)]
        for k, b in enumerate(self.blocks):
            name = f"stage{k // 3 + 1}.block{k % 3}"
            out.append((f"{name}.conv1", b.conv1, b.bn1))
            out.append((f"{name}.conv2", b.conv2, b.bn2))
            if b.shortcut is not None:
                out.append((f"{name}.shortcut", b.shortcut[0], b.shortcut[1]))
        return out


def formula(k, n):
    return torch.tensor(
        [math.sin(1 + 1.3 * k + 0.37 * i + 0.00061 * i * i) for i in range(n)],
        dtype=torch.float64,
    ).float()


def set_weights(model):
    k = 0
    with torch.no_grad():
        for _, conv, bn in model.layers():
            w = conv.weight
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            w.copy_((formula(k, w.numel()) / math.sqrt(fan_in)).view_as(w))
            bn.weight.copy_(1 + 0.5 * formula(k + 1, bn.weight.numel()))
            k += 2
        model.fc.weight.copy_((formula(k, model.fc.weight.numel()) / 8).view_as(model.fc.weight))


def group_name(model, group):
    """prunelab's name for a TP group: a block's conv1 alone, or a stream."""
    names = {id(conv): name for name, conv, _ in model.layers()}
    outs = [
        names[id(dep.target.module)]
        for dep, _ in group
        if dep.handler in (tp.prune_conv_out_channels,) and id(dep.target.module) in names
    ]
    if len(outs) == 1 and outs[0].endswith(".conv1"):
        return outs[0]
    if "stem" in outs:
        return "stage1.stream"
    entry = [o for o in outs if o.endswith(".shortcut")]
    assert len(entry) == 1, outs
    return entry[0].split(".")[0] + ".stream"


def plan(ratio):
    torch.manual_seed(0)
    model = ResNet20().eval()
    set_weights(model)
    importance = tp.importance.GroupMagnitudeImportance(
        p=2, group_reduction="mean", normalizer="mean"
    )
    pruner = tp.pruner.MetaPruner(
        model,
        example_inputs=torch.randn(1, 3, 32, 32),
        importance=importance,
        global_pruning=True,
        pruning_ratio=ratio,
        ignored_layers=[model.fc],
    )
    groups = {}
    for group in pruner.DG.get_all_groups(
        ignored_layers=[model.fc], root_module_types=[nn.Conv2d, nn.Linear]
    ):
        name = group_name(model, group)
        size = len(group[0].idxs)
        groups[name] = {
            "size": size,
            "scores": importance(group).tolist(),
            "kept": list(range(size)),
        }
    for group in pruner.step(interactive=True):
        name = group_name(model, group)
        pruned = set(int(i) for i in group[0].idxs)
        groups[name]["kept"] = [i for i in range(groups[name]["size"]) if i not in pruned]
        group.prune()
    return groups


def main():
    out = {
        "about": "Torch-Pruning's global group-L2 plan for ResNet-20 option B; "
        "made by tests/torch_pruning/make.py",
        "torch": torch.__version__,
        "torch_pruning": tp.__version__,
        "plans": {str(r): plan(r) for r in RATIOS},
    }
    path = os.path.join(HERE, "fixtures", "resnet20b.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    for r, groups in out["plans"].items():
        kept = sum(len(g["kept"]) for g in groups.values())
        total = sum(g["size"] for g in groups.values())
        print(f"ratio {r}: {len(groups)} groups, {total} -> {kept} channels")
    print("wrote", path)


if __name__ == "__main__":
    main()
