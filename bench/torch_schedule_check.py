"""Does a training schedule work in PyTorch? A differential check for the
schedules `prunelab reproduce` ships: the same model (bench/torch_reference.py's
definitions), the same subset size, batch, SGD settings and one-epoch linear
warm-up, on real CIFAR-10. Run by hand (PyTorch is not a dependency):

    python bench/torch_schedule_check.py --model vgg16 --lr 0.05 --epochs 3
    # compare with: prunelab train --model vgg16 --data DIR --train-subset 2000 --lr 0.05 ...

It prints the training loss and accuracy per epoch; a loss that climbs above
ln(10) ≈ 2.30 after the warm-up is a schedule that diverges.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torch_reference import MODELS  # noqa: E402

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.247, 0.243, 0.261]).view(1, 3, 1, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg16", choices=sorted(MODELS))
    p.add_argument("--data", default="../shared/data/cifar-10-batches-bin")
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    raw = np.fromfile(os.path.join(args.data, "data_batch_1.bin"), dtype=np.uint8).reshape(-1, 3073)[: args.subset]
    y = torch.tensor(raw[:, 0].astype(np.int64))
    x = (torch.tensor(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255) - MEAN) / STD
    n = len(y)

    model = MODELS[args.model]("a")
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = (n + args.batch - 1) // args.batch
    step = 0
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        loss_sum, correct, t0 = 0.0, 0, time.time()
        for i in range(0, n, args.batch):
            idx = perm[i : i + args.batch]
            xb, yb = F.pad(x[idx], (4, 4, 4, 4)), y[idx]
            dx, dy = rng.integers(0, 9, 2)
            xb = xb[:, :, dy : dy + 32, dx : dx + 32]
            if rng.random() < 0.5:
                xb = xb.flip(3)
            # Linear warm-up over the first epoch, as prunelab's warmup_epochs = 1.
            for g in opt.param_groups:
                g["lr"] = args.lr * min(1.0, (step + 1) / steps_per_epoch)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        print(f"epoch {epoch + 1}: train loss {loss_sum / n:.4f} acc {100 * correct / n:.2f}% ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
