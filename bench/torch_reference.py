#!/usr/bin/env python3
"""The same models and the same training step as `prunelab bench`, in PyTorch.

Run both in one call on one machine so the ratio is fair:

    python3 bench/torch_reference.py --model resnet56 --batch 128 --device cuda

It prints one JSON object with train_img_s and infer_img_s (fp32, eager, cuDNN
autotuning on: PyTorch's best plain setting), measured after warm-up exactly as
`prunelab bench` does: `warmup` untimed steps, then `steps` timed ones, timing
ending on a host read of the last loss. `bench/compare.sh` runs both and writes
the ratio under bench/results/.
"""
import argparse
import datetime
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad, self.proj = stride, 0, None
        if stride != 1 or c_in != c_out:
            if shortcut == "b":
                self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            else:
                extra = c_out - c_in
                self.pad = (extra // 2, extra - extra // 2)

    def shortcut(self, x):
        if self.proj is not None:
            return self.proj(x)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad[0], self.pad[1]))
        return x

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depth, shortcut="a", classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, c_in = [], 16
        for width, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(n):
                blocks.append(BasicBlock(c_in, width, stride if i == 0 else 1, shortcut))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def plain(widths, classes=10):
    layers, c_in = [], 3
    for w in widths:
        if w == 0:
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c_in, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c_in = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))


MODELS = {
    "resnet20": lambda s: ResNet(20, s),
    "resnet32": lambda s: ResNet(32, s),
    "resnet56": lambda s: ResNet(56, s),
    "resnet110": lambda s: ResNet(110, s),
    "cnn": lambda s: plain([16, 0, 32, 0, 64, 0]),
    "vgg16": lambda s: plain([64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet56", choices=sorted(MODELS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--shortcut", default="a", choices=["a", "b"])
    args = p.parse_args()

    torch.backends.cudnn.benchmark = True
    dev = torch.device(args.device)
    model = MODELS[args.model](args.shortcut).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=dev)
    y = torch.arange(args.batch, device=dev) % 10

    def train(n):
        model.train()
        loss = None
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return loss.item()

    @torch.no_grad()
    def infer(n):
        model.eval()
        acc = torch.zeros((), device=dev)
        for _ in range(n):
            acc += model(x)[0, 0]
        return acc.item()

    t0 = time.perf_counter()
    train(args.warmup)
    warmup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    train(args.steps)
    train_s = time.perf_counter() - t1
    infer(args.warmup)
    t2 = time.perf_counter()
    infer(args.steps)
    infer_s = time.perf_counter() - t2

    print(json.dumps({
        "model": args.model,
        "batch": args.batch,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "params": sum(p.numel() for p in model.parameters()),
        "train_img_s": args.steps * args.batch / train_s,
        "infer_img_s": args.steps * args.batch / infer_s,
        "warmup_seconds": warmup_s,
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
    }, indent=2))


if __name__ == "__main__":
    main()
