#!/usr/bin/env python3
"""PyTorch reference fixtures for prunelab's differential test (crate/tests/engine/reference.rs).

Run BY HAND, never from CI (torch is not a dependency of this repository;
never commit torch or a virtual environment):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy     # the CUDA wheel is fine, this runs on the CPU
    /tmp/torchenv/bin/python tests/reference/make.py

It rewrites the JSON files in tests/reference/fixtures/ (next to this file);
commit them. Generated with torch 2.15.0 (+cu132 wheel, run on the CPU,
float64), numpy 2.4.6, Python 3.11.7; it takes ~15 s. Then run
`cargo test --release -p prunelab --test engine reference:: -- --nocapture`.

Everything here is computed in float64 from float32 values: every weight,
BatchNorm buffer and input pixel is given by a formula evaluated in float64,
rounded to float32 (what prunelab stores), then widened back to float64. The
fixtures are therefore the exact answers (to ~1e-15) for the network prunelab
holds; the Rust side only adds its own float32 rounding.

THE NETWORK (must match crate/src/model/resnet.rs): CIFAR ResNet-20, option-A
shortcuts, 10 classes. stem = conv3x3(3->16, pad 1, no bias) + BN; 9 basic
blocks (`blocks.0..8`; stage s = b//3 + 1, block b%3, names `stage{s}.block{b%3}`),
widths 16/32/64, the first block of stages 2 and 3 has stride 2 on conv1. A
block is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); option A
shortcut = x[:, :, ::2, ::2] then zero channels [extra/2 before, extra - extra/2
after]. Global average pool, then fc (64 -> 10, with bias). BN eps = 1e-5.

THE TENSORS, in this order (k = 0, 1, 2, ...), names as prunelab's module paths
without the leading `net.Resnet.`:
    for L in [stem, blocks.0.conv1, blocks.0.conv2, ..., blocks.8.conv2]:
        L.conv.weight, L.bn.gamma, L.bn.beta, L.bn.running_mean, L.bn.running_var
    fc.weight, fc.bias
With i the element's flat index in PyTorch layout (conv [out, in, 3, 3]; fc
weight [out=10, in=64], i.e. burn's [64, 10] transposed), B = 4 and
s = sin(1 + 1.3 k + 0.37 i + 0.00061 i^2):
    conv weight     s / sqrt(in * 3 * 3)
    fc weight       s / 32
    fc bias         0.1 s
    bn gamma        1 + 0.1 s
    bn beta         stem and conv1: 0.1 s + (-B if i % 4 == 3 else +B); conv2: 0.1 s + B
    running_mean    0.1 s
    running_var     1 + 0.25 (1 + s)
THE INPUTS: N = 8 images 3x32x32; image n, flat index j = (c*32 + y)*32 + x:
    x = sin(0.013 j (1 + 0.1 n) + 0.7 n)
labels n % 10.

WHY THESE CHOICES (each was measured; see tests/reference/README.md):
- the quadratic phase 0.00061 i^2: with a linear phase every filter of a layer is
  a combination of the same two sinusoids (a rank-2 network);
- the per-image frequency (1 + 0.1 n) keeps each channel's B x HW map full-rank;
- the BN offsets B: with beta ~ 0 (as at initialisation) ~200 of the ~1.8M
  training-mode ReLU inputs lie within 1e-4 of 0 (16 within 1e-5), and a
  float32 forward flips the sign of a few of them; each flip moves a
  training-mode weight gradient by ~1/sqrt(#positions) of its size, so NO
  float32 implementation can match float64 there (PyTorch's own float32
  gradients differ from float64 by up to 4.6e-2 on that network, prunelab's by
  7.7e-3). With +-B, every training-mode ReLU input stays >= 2.4e-4 away from 0
  (>= 1e-4 is asserted below), a quarter of the stem/conv1 channels are off,
  and float32 PyTorch agrees with float64 to 3.5e-5.
- fc weight s/32 (not s/8): smaller logits, a smoother loss, so GraSP's finite
  difference has a smaller truncation error.
The network with beta = 0.1 s (no offsets, "generic") is kept in grasp.json
for the GraSP finding (see the Rust test).

SUMMARIES: a per-layer tensor is stored as sum, sum_sq, sum_abs, max_abs over
all its elements (PyTorch layout) and the values at the 8 flat indices
floor(m (n - 1) / 7), m = 0..7, n the number of elements.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(max(1, os.cpu_count() or 1))

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

N = 8
CLASSES = 10
BN_EPS = 1e-5
LRP_EPS = 0.1
# The BN offset B of the main network; 0 gives the "generic" network.
BETA_OFFSET = 4.0
# Relative steps for GraSP's central difference (prunelab's default is 1e-3).
GRASP_EPSILONS = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5]
# Float32 may not flip a ReLU: training-mode pre-activations must stay this far from 0.
MIN_TRAIN_MARGIN = 1e-4


# ---------------------------------------------------------------------------
# Architecture and deterministic tensors
# ---------------------------------------------------------------------------

def conv_layers():
    """(module path, prunelab layer name, c_in, c_out, stride), forward order."""
    out = [("stem", "stem", 3, 16, 1)]
    c_in = 16
    for b in range(9):
        s, pos = b // 3, b % 3
        width = [16, 32, 64][s]
        stride = 2 if (pos == 0 and s > 0) else 1
        name = f"stage{s + 1}.block{pos}"
        out.append((f"blocks.{b}.conv1", f"{name}.conv1", c_in, width, stride))
        out.append((f"blocks.{b}.conv2", f"{name}.conv2", width, width, 1))
        c_in = width
    return out


CONVS = conv_layers()
PRUNABLE = [(f"{path}.conv.weight", name) for path, name, *_ in CONVS] + [("fc.weight", "fc")]


def tensor_list():
    """(name, PyTorch shape, kind, fan_in) in the documented order k."""
    out = []
    for path, _, c_in, c_out, _ in CONVS:
        beta = "beta2" if path.endswith("conv2") else "beta1"
        out.append((f"{path}.conv.weight", [c_out, c_in, 3, 3], "conv", c_in * 9))
        out.append((f"{path}.bn.gamma", [c_out], "gamma", None))
        out.append((f"{path}.bn.beta", [c_out], beta, None))
        out.append((f"{path}.bn.running_mean", [c_out], "mean", None))
        out.append((f"{path}.bn.running_var", [c_out], "var", None))
    out.append(("fc.weight", [CLASSES, 64], "fc", 64))
    out.append(("fc.bias", [CLASSES], "bias", None))
    return out


def formula(kind, k, n, fan_in, offset):
    i = np.arange(n, dtype=np.float64)
    s = np.sin(1.0 + 1.3 * k + 0.37 * i + 0.00061 * i * i)
    if kind == "conv":
        return s / math.sqrt(fan_in)
    if kind == "fc":
        return s / 32.0
    if kind == "gamma":
        return 1.0 + 0.1 * s
    if kind == "beta1":
        return 0.1 * s + np.where(np.arange(n) % 4 == 3, -offset, offset)
    if kind == "beta2":
        return 0.1 * s + offset
    if kind in ("mean", "bias"):
        return 0.1 * s
    if kind == "var":
        return 1.0 + 0.25 * (1.0 + s)
    raise ValueError(kind)


def as_f32_then_f64(values, shape):
    return torch.from_numpy(values.astype(np.float32).astype(np.float64)).reshape(shape)


def make_params(offset=BETA_OFFSET):
    params = {}
    for k, (name, shape, kind, fan_in) in enumerate(tensor_list()):
        values = formula(kind, k, int(np.prod(shape)), fan_in, offset)
        params[name] = as_f32_then_f64(values, shape)
    return params


def make_inputs():
    j = np.arange(3 * 32 * 32, dtype=np.float64)
    x = np.stack([np.sin(0.013 * j * (1.0 + 0.1 * n) + 0.7 * n) for n in range(N)])
    return as_f32_then_f64(x, [N, 3, 32, 32]), torch.tensor([n % CLASSES for n in range(N)])


# ---------------------------------------------------------------------------
# The network, functionally (so double backward and probes are easy)
# ---------------------------------------------------------------------------

def batch_norm(z, p, path, train):
    if train:
        mean = z.mean(dim=(0, 2, 3))
        var = z.var(dim=(0, 2, 3), unbiased=False)
    else:
        mean = p[f"{path}.bn.running_mean"]
        var = p[f"{path}.bn.running_var"]
    shape = (1, -1, 1, 1)
    zhat = (z - mean.view(shape)) / torch.sqrt(var.view(shape) + BN_EPS)
    return zhat * p[f"{path}.bn.gamma"].view(shape) + p[f"{path}.bn.beta"].view(shape)


def lrp_epsilon_backward(z, eps):
    """prunelab's `lrp_epsilon_backward`: identity forward; backward scaled by
    k = z / (z + eps * rms(z) * sign z), rms over the whole tensor, sign(0) = +1."""
    value = z.detach()
    rms = value.pow(2).mean().sqrt().clamp_min(1e-12)
    sign = torch.where(value >= 0, 1.0, -1.0)
    k = (value / (value + sign * rms * eps)).detach()
    return z * k + (z * (1.0 - k)).detach()


class Ctx:
    """Mirror of prunelab's `Ctx`: BN outputs, ReLU inputs, LRP scaling, probes."""

    def __init__(self, lrp=None, probe=False, masks=None):
        self.lrp = lrp
        self.probe = probe
        self.captured = {}
        self.relu_inputs = []
        # Replayed ReLU masks (prunelab's `Kinks::Replay`), in forward order.
        self.masks = masks
        self.probes = {}
        self._pending = None

    def relu(self, x):
        if self.masks is not None:
            mask = self.masks[len(self.relu_inputs)]
            self.relu_inputs.append(x.detach())
            return x * mask
        self.relu_inputs.append(x.detach())
        return torch.relu(x)

    def layer_input(self, name, x):
        if not self.probe:
            return x
        leaf = torch.zeros_like(x, requires_grad=True)
        self._pending = (name, x.detach(), leaf)
        return x + leaf

    def layer_output(self, name, z):
        self.captured[name] = z.detach()
        if self.lrp is not None:
            z = lrp_epsilon_backward(z, self.lrp)
        if not self.probe:
            return z
        leaf = torch.zeros_like(z, requires_grad=True)
        pname, x, in_leaf = self._pending
        assert pname == name
        self.probes[name] = (x, in_leaf, z.detach(), leaf)
        return z + leaf


def conv_bn(x, p, path, stride, train):
    z = F.conv2d(x, p[f"{path}.conv.weight"], stride=stride, padding=1)
    return batch_norm(z, p, path, train)


def shortcut(x, c_out, stride):
    if stride != 1:
        x = x[:, :, ::2, ::2]
    extra = c_out - x.shape[1]
    if extra == 0:
        return x
    return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


def forward(p, x, train, ctx=None):
    ctx = ctx or Ctx()
    (stem_path, stem_name, _, _, _) = CONVS[0]
    h = ctx.layer_input(stem_name, x)
    h = ctx.relu(ctx.layer_output(stem_name, conv_bn(h, p, stem_path, 1, train)))
    for b in range(9):
        (p1, n1, _, c_out, stride) = CONVS[1 + 2 * b]
        (p2, n2, _, _, _) = CONVS[2 + 2 * b]
        a = ctx.layer_input(n1, h)
        z = ctx.layer_output(n1, conv_bn(a, p, p1, stride, train))
        a = ctx.layer_input(n2, ctx.relu(z))
        z2 = ctx.layer_output(n2, conv_bn(a, p, p2, 1, train))
        h = ctx.relu(z2 + shortcut(h, c_out, stride))
    pooled = h.mean(dim=(2, 3))
    # Linear layers go through the probes as [N, D, 1, 1], as in prunelab.
    pooled = ctx.layer_input("fc", pooled[:, :, None, None])[:, :, 0, 0]
    logits = pooled @ p["fc.weight"].t() + p["fc.bias"]
    return ctx.layer_output("fc", logits[:, :, None, None])[:, :, 0, 0]


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------

def summary(t):
    flat = t.detach().reshape(-1).to(torch.float64)
    n = flat.numel()
    index = [(m * (n - 1)) // 7 for m in range(8)]
    return {
        "shape": list(t.shape),
        "sum": flat.sum().item(),
        "sum_sq": flat.pow(2).sum().item(),
        "sum_abs": flat.abs().sum().item(),
        "max_abs": flat.abs().max().item(),
        "index": index,
        "values": [flat[i].item() for i in index],
    }


def per_layer(tensors):
    return {name: summary(t) for (_, name), t in zip(PRUNABLE, tensors)}


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------------------
# The quantities
# ---------------------------------------------------------------------------

def loss_and_grads(p, x, y, create_graph=False, masks=None):
    weights = [p[k] for k, _ in PRUNABLE]
    loss = F.cross_entropy(forward(p, x, train=True, ctx=Ctx(masks=masks)), y)
    return loss, torch.autograd.grad(loss, weights, create_graph=create_graph)


def relu_masks(p, x):
    """The ReLU masks of a training-mode pass at p (what prunelab records)."""
    ctx = Ctx()
    with torch.no_grad():
        forward(p, x, train=True, ctx=ctx)
    return [(t > 0).to(t.dtype) for t in ctx.relu_inputs]


def relu_margin(p, x, train):
    """Smallest |ReLU input| over the whole forward pass."""
    ctx = Ctx()
    with torch.no_grad():
        forward(p, x, train, ctx)
    return min(t.abs().min().item() for t in ctx.relu_inputs)


def float32_gradient_error(p, x, y):
    """How far PyTorch's own float32 gradients are from float64 (for the record)."""
    p64 = {k: v.clone().requires_grad_(k in dict(PRUNABLE)) for k, v in p.items()}
    g64 = loss_and_grads(p64, x, y)[1]
    p32 = {k: v.float().requires_grad_(k in dict(PRUNABLE)) for k, v in p.items()}
    g32 = loss_and_grads(p32, x.float(), y)[1]
    return max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in zip(g32, g64))


def hessian_gradient(p, x, y):
    """g and H g = d/dw (g . stopgrad(g)) by double backward (prunable weights only)."""
    q = {k: v.clone().requires_grad_(k in dict(PRUNABLE)) for k, v in p.items()}
    weights = [q[k] for k, _ in PRUNABLE]
    _, g = loss_and_grads(q, x, y, create_graph=True)
    hg = torch.autograd.grad(sum((gi * gi.detach()).sum() for gi in g), weights)
    return [gi.detach() for gi in g], [h.detach() for h in hg]


def central_difference(p, x, y, g, eps):
    """prunelab's GraSP formula: r = eps ||theta||, Hg ~ (grad(theta + r g^) -
    grad(theta - r g^)) ||g|| / 2r, theta and g over the prunable weights, both
    gradients with theta's ReLU masks (prunelab's `Pattern::Replay`)."""
    masks = relu_masks(p, x)
    g_norm = math.sqrt(sum(gi.pow(2).sum().item() for gi in g))
    theta_norm = math.sqrt(sum(p[k].pow(2).sum().item() for k, _ in PRUNABLE))
    r = eps * max(theta_norm, 1e-6)
    grads = []
    for sign in (1.0, -1.0):
        q = dict(p)
        for (k, _), gi in zip(PRUNABLE, g):
            q[k] = (p[k] + gi * (sign * r / g_norm)).requires_grad_(True)
        grads.append(loss_and_grads(q, x, y, masks=masks)[1])
    return [(a - b) * (g_norm / (2 * r)) for a, b in zip(*grads)], r


def fd_errors(fd, hg):
    """max over layers of max|FD - Hg| / max|Hg|, and the cosine between them."""
    err = max(((a - e).abs().max() / e.abs().max()).item() for a, e in zip(fd, hg))
    a = torch.cat([t.reshape(-1) for t in fd])
    e = torch.cat([t.reshape(-1) for t in hg])
    return err, (a @ e / (a.norm() * e.norm())).item()


def main():
    meta = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "dtype": "float64 from float32-rounded weights and inputs",
        "network": "prunelab resnet20, option-A shortcut, 10 classes, BN eps 1e-5",
        "tensor_order": "for L in [stem, blocks.0.conv1, blocks.0.conv2, ..., blocks.8.conv2]: "
        "L.conv.weight, L.bn.gamma, L.bn.beta, L.bn.running_mean, L.bn.running_var; "
        "then fc.weight, fc.bias",
        "formula": "s = sin(1 + 1.3 k + 0.37 i + 0.00061 i^2), i = flat index in PyTorch layout: "
        "conv weight s/sqrt(fan_in), fc weight s/32, fc bias 0.1s, gamma 1+0.1s, beta "
        "0.1s + (stem, conv1: -4 if i%4==3 else +4; conv2: +4), running_mean 0.1s, "
        "running_var 1+0.25(1+s); all in f64 then rounded to f32",
        "inputs": "N=8, x[n, j] = sin(0.013 j (1 + 0.1 n) + 0.7 n), j = (c*32+y)*32+x; labels n % 10",
        "summary": "sum, sum_sq, sum_abs, max_abs, values at flat indices floor(m (n-1)/7), m=0..7",
    }
    p = make_params()
    x, y = make_inputs()

    margins = {"train": relu_margin(p, x, True), "eval": relu_margin(p, x, False)}
    print(f"smallest |ReLU input|: training mode {margins['train']:.3g}, eval {margins['eval']:.3g}")
    assert margins["train"] >= MIN_TRAIN_MARGIN, "a float32 forward could flip a ReLU"

    # Forward passes, loss.
    with torch.no_grad():
        logits_eval = forward(p, x, train=False)
        logits_train = forward(p, x, train=True)
    loss = F.cross_entropy(logits_train, y)
    print(f"loss {loss.item():.6f}; |logits| eval {logits_eval.abs().max():.4f} "
          f"train {logits_train.abs().max():.4f}")
    write("forward.json", {
        "meta": meta,
        "relu_margin": margins,
        "tensors": [name for name, *_ in tensor_list()],
        "params": {name: summary(p[name]) for name, *_ in tensor_list()},
        "inputs": summary(x),
        "labels": y.tolist(),
        "logits_eval": logits_eval.reshape(-1).tolist(),
        "logits_train": logits_train.reshape(-1).tolist(),
        "loss": loss.item(),
    })

    # Gradients of the mean loss (BN in training mode), SNIP, GraSP's H g.
    g, hg = hessian_gradient(p, x, y)
    weights = [p[k] for k, _ in PRUNABLE]
    f32 = float32_gradient_error(p, x, y)
    print(f"PyTorch float32 gradients against float64: {f32:.3g}")
    write("gradients.json", {
        "meta": meta,
        "loss": loss.item(),
        "torch_float32_gradient_error": f32,
        "grad": per_layer(g),
        "snip": per_layer([(w * gi).abs() for w, gi in zip(weights, g)]),
    })

    # prunelab's central difference in float64, at each step: separates the
    # truncation error of the difference from float32 rounding.
    hg_fd = []
    for eps in GRASP_EPSILONS:
        fd, r = central_difference(p, x, y, g, eps)
        err, cosine = fd_errors(fd, hg)
        hg_fd.append({"epsilon": eps, "r": r, "error_vs_exact": err, "cosine_vs_exact": cosine,
                      "layers": per_layer(fd)})
        print(f"GraSP f64 central difference eps={eps:g} (r={r:.3g}): max over layers of "
              f"max|FD - Hg| / max|Hg| = {err:.3g}, cosine {cosine:.4f}")

    # The generic network (beta = 0.1 s, no offsets): ReLU inputs cluster at 0,
    # and the difference of gradients across a step crosses ReLU kinks.
    pg = make_params(offset=0.0)
    gg, hgg = hessian_gradient(pg, x, y)
    generic = {"relu_margin_train": relu_margin(pg, x, True), "fd": []}
    for eps in GRASP_EPSILONS + [1e-7, 1e-8]:
        fd, r = central_difference(pg, x, y, gg, eps)
        err, cosine = fd_errors(fd, hgg)
        entry = {"epsilon": eps, "r": r, "error_vs_exact": err, "cosine_vs_exact": cosine}
        generic["fd"].append(entry)
        print(f"GraSP generic network, f64 central difference eps={eps:g} (r={r:.3g}): "
              f"error {err:.3g}, cosine {cosine:.4f}")
    generic["hg"] = per_layer(hgg)
    write("grasp.json", {
        "meta": meta,
        "hg": per_layer(hg),
        # prunelab's central difference evaluated in float64, one entry per step.
        "hg_fd": hg_fd,
        # The same network with no BN offsets (make_params(offset=0.0)).
        "generic": generic,
    })

    # S3: nuclear norm per channel of the B x (H W) BN output (eval mode).
    ctx = Ctx()
    with torch.no_grad():
        forward(p, x, train=False, ctx=ctx)
    energy = {}
    for _, name, *_ in CONVS:
        if name == "stem" or name.endswith(".conv1"):
            z = ctx.captured[name]
            b, c, h, w = z.shape
            m = z.permute(1, 0, 2, 3).reshape(c, b, h * w)
            sv = torch.linalg.svdvals(m)
            energy[name] = {
                "nuclear": sv.sum(dim=1).tolist(),
                # Smallest singular value relative to the largest, per channel.
                "min_ratio": (sv[:, -1] / sv[:, 0]).min().item(),
            }
    write("energy.json", {"meta": meta, "images": N, "layers": energy})

    # LRP-epsilon relevance of every prunable weight (BN in eval mode).
    ctx = Ctx(lrp=LRP_EPS, probe=True)
    logits = forward(p, x, train=False, ctx=ctx)
    predicted = logits.detach().argmax(dim=1)
    top2 = logits.detach().topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).min().item()
    print(f"LRP: predicted {predicted.tolist()}, smallest top-2 logit margin {margin:.4g}")
    assert margin > 1e-3, "a near-tie for the predicted class would make LRP fragile"
    selected = logits.gather(1, predicted[:, None]).sum()
    leaves = []
    for _, name in PRUNABLE:
        _, in_leaf, _, out_leaf = ctx.probes[name]
        leaves += [in_leaf, out_leaf]
    grads = torch.autograd.grad(selected, leaves)
    relevance = []
    for li, ((_, name), conv) in enumerate(zip(PRUNABLE, CONVS + [None])):
        x_in, _, z_out, _ = ctx.probes[name]
        r_in = x_in * grads[2 * li]
        r_out = z_out * grads[2 * li + 1]
        if conv is not None:
            stride = conv[4]
            patches = F.unfold(r_in, 3, padding=1, stride=stride)  # [N, C*9, L]
            read = patches.sum(dim=(0, 2))  # [C*9], order (c, u, v)
            fed = r_out.sum(dim=(0, 2, 3))  # [O]
            r = (fed[:, None] + read[None, :]).reshape(conv[3], conv[2], 3, 3)
        else:
            read = r_in.sum(dim=(0, 2, 3))  # [64]
            fed = r_out.sum(dim=(0, 2, 3))  # [10]
            r = fed[:, None] + read[None, :]  # [out, in], PyTorch layout
        relevance.append(r)
    write("lrp.json", {
        "meta": meta,
        "epsilon": LRP_EPS,
        "predicted": predicted.tolist(),
        "min_margin": margin,
        "relevance": per_layer(relevance),
    })


if __name__ == "__main__":
    main()
