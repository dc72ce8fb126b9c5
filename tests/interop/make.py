#!/usr/bin/env python3
"""PyTorch-made models for prunelab's import/export tests (crate/tests/engine/interop.rs).

Run BY HAND, never from CI (torch, onnx and onnxruntime are not dependencies
of this repository; never commit them or a virtual environment):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy safetensors onnx onnxruntime
    /tmp/torchenv/bin/python tests/interop/make.py            # writes fixtures/
    cargo test --release -p prunelab --test engine interop::           # Rust side
    /tmp/torchenv/bin/python tests/interop/make.py --check-onnx target/interop

Nothing is trained. Each network is built in PyTorch with fixed random weights
(torch.manual_seed; BatchNorm's affine parameters and running statistics
randomised too, so a mix-up of gamma/beta or mean/var cannot go unseen), saved
the way PyTorch users save models, and run in eval mode on a fixed input:

    FIXTURES                naming                         saved as
    resnet20-a.safetensors  CIFAR ResNet (Idelbayev):      safetensors.torch.save_file
                            conv1/bn1/layerS.B/linear,
                            option-A shortcuts
    resnet20-b.pt           torchvision: downsample.0/1,   torch.save({"state_dict":
                            fc; option-B projections       {"module." + k: v}, "epoch": 3})
                                                           (a DataParallel training checkpoint)
    cnn.safetensors         CIFAR VGG: features.I,         safetensors.torch.save_file
                            classifier; conv biases on
                            (prunelab folds them into BN)

logits.json holds each network's logits for THE INPUT: N = 4 images 3x32x32,
image n, flat index j = (c*32 + y)*32 + x:  x = sin(0.013 j (1 + 0.1 n) + 0.7 n)
(float32; crate/tests/engine/interop.rs builds the same input).

--check-onnx DIR runs what the Rust test exported (DIR/*.onnx, each with a
DIR/<name>.json of prunelab's own logits for its input) through onnx's checker
and ONNX Runtime, and fails if any logit differs by more than 1e-4.
"""

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
TOLERANCE = 1e-4


def the_input(n=4):
    import numpy as np

    j = np.arange(3 * 32 * 32, dtype=np.float64)
    images = [np.sin(0.013 * j * (1 + 0.1 * k) + 0.7 * k) for k in range(n)]
    return np.stack(images).reshape(n, 3, 32, 32).astype(np.float32)


def build():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class PadShortcut(nn.Module):
        """Option A: subsample by 2, zero channels on both sides."""

        def __init__(self, planes):
            super().__init__()
            self.planes = planes

        def forward(self, x):
            p = self.planes // 4
            return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p), "constant", 0)

    class BasicBlock(nn.Module):
        def __init__(self, c_in, planes, stride, option, projection_name):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            shortcut = nn.Identity()
            if stride != 1 or c_in != planes:
                if option == "A":
                    shortcut = PadShortcut(planes)
                else:
                    shortcut = nn.Sequential(
                        nn.Conv2d(c_in, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                    )
            self.projection_name = projection_name
            setattr(self, projection_name, shortcut)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + getattr(self, self.projection_name)(x))

    class ResNet(nn.Module):
        def __init__(self, n, option, classifier, projection_name, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            c_in = 16
            for s, (planes, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
                blocks = []
                for b in range(n):
                    blocks.append(
                        BasicBlock(c_in, planes, stride if b == 0 else 1, option, projection_name)
                    )
                    c_in = planes
                setattr(self, f"layer{s}", nn.Sequential(*blocks))
            self.classifier_name = classifier
            setattr(self, classifier, nn.Linear(64, classes))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            out = F.avg_pool2d(out, out.size()[3]).flatten(1)
            return getattr(self, self.classifier_name)(out)

    class Cnn(nn.Module):
        """prunelab's `cnn` in the CIFAR VGG layout: conv (with bias), BN,
        ReLU, max-pool, three times; global average pool; classifier."""

        def __init__(self, classes=10):
            super().__init__()
            layers, c_in = [], 3
            for width in [16, 32, 64]:
                layers += [
                    nn.Conv2d(c_in, width, 3, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2, 2),
                ]
                c_in = width
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(64, classes)

        def forward(self, x):
            out = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
            return self.classifier(out)

    def randomise_bn(model):
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.2)
                    m.running_mean.normal_(0.0, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
                    m.num_batches_tracked.fill_(100)
        return model.eval()

    torch.manual_seed(20)
    resnet_a = randomise_bn(ResNet(3, "A", "linear", "shortcut"))
    torch.manual_seed(21)
    resnet_b = randomise_bn(ResNet(3, "B", "fc", "downsample"))
    torch.manual_seed(22)
    cnn = randomise_bn(Cnn())
    return {"resnet20-a": resnet_a, "resnet20-b": resnet_b, "cnn": cnn}


def make():
    import numpy as np
    import torch
    from safetensors.torch import save_file

    FIXTURES.mkdir(exist_ok=True)
    models = build()
    x = torch.from_numpy(the_input())
    out = {
        "torch": torch.__version__,
        "input": "N = 4 images 3x32x32; image n, flat index j: sin(0.013 j (1 + 0.1 n) + 0.7 n), float32",
        "models": {},
    }
    files = {
        "resnet20-a": "resnet20-a.safetensors",
        "resnet20-b": "resnet20-b.pt",
        "cnn": "cnn.safetensors",
    }
    for name, model in models.items():
        path = FIXTURES / files[name]
        state = model.state_dict()
        if path.suffix == ".pt":
            wrapped = {"module." + k: v for k, v in state.items()}
            torch.save({"state_dict": wrapped, "epoch": 3}, path)
        else:
            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        with torch.no_grad():
            logits = model(x)
        out["models"][name] = {
            "file": files[name],
            "params": sum(p.numel() for p in model.parameters()),
            "logits": logits.tolist(),
        }
        print(f"{path.name}: {path.stat().st_size} bytes, logits max |.| {logits.abs().max():.3f}")
    (FIXTURES / "logits.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {FIXTURES / 'logits.json'}")


def check_onnx(folder):
    import numpy as np
    import onnx
    import onnxruntime as ort

    folder = pathlib.Path(folder)
    models = sorted(folder.glob("*.onnx"))
    if not models:
        sys.exit(f"no .onnx files in {folder}: run `cargo test --release -p prunelab --test engine interop::` first")
    worst = 0.0
    for path in models:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        expected = json.loads(path.with_suffix(".json").read_text())
        x = np.asarray(expected["input"], dtype=np.float32).reshape(expected["input_shape"])
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (logits,) = session.run(["logits"], {"input": x})
        want = np.asarray(expected["logits"], dtype=np.float32).reshape(logits.shape)
        diff = float(np.abs(logits - want).max())
        worst = max(worst, diff)
        print(f"{path.name}: ONNX Runtime {ort.__version__} vs prunelab: max |diff| {diff:.2e}")
    if worst > TOLERANCE:
        sys.exit(f"FAIL: {worst:.2e} > {TOLERANCE}")
    print(f"all {len(models)} within {TOLERANCE}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check-onnx", metavar="DIR")
    args = parser.parse_args()
    check_onnx(args.check_onnx) if args.check_onnx else make()
