#!/usr/bin/env python3
"""Writes the hand-forged packs in checkpoint/ from the valid ones in valid/
(run by hand; the outputs are committed). Each has a correct checksum, so
only prunelab's consistency checks can refuse it (the reliability probe's
M1 and L8). valid/ holds `prunelab train --dataset moons --points 300
--batch-size 50 --epochs 1 --hidden 4 --device cpu --checkpoint … --save …`:
6 steps per epoch, which the replay test assumes."""
import json, struct
from pathlib import Path

here = Path(__file__).parent


def fnv(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def unpack(path):
    b = path.read_bytes()
    hl = struct.unpack("<Q", b[12:20])[0]
    return struct.unpack("<I", b[8:12])[0], json.loads(b[20 : 20 + hl]), bytearray(b[20 + hl : -8])


def pack(version, header, data):
    hb = json.dumps(header).encode()
    body = b"PRUNELAB" + struct.pack("<I", version) + struct.pack("<Q", len(hb)) + hb + bytes(data)
    return body + struct.pack("<Q", fnv(body))


def forge(source, name, edit):
    version, header, data = unpack(here / "valid" / source)
    version, data = edit(header, data) or (version, data)
    (here / "checkpoint" / name).write_bytes(pack(version, header, data))


def set_progress(field, value):
    return lambda h, d: h["meta"]["progress"].__setitem__(field, value)


def short_momentum(h, d):
    t = next(t for t in h["tensors"] if t["name"].endswith("#momentum"))
    t["shape"] = [1]


def short_mask(h, d):
    name = next(t for t in h["tensors"] if t["name"].startswith("model/"))["name"]
    h["tensors"].append({"name": "mask/" + name[len("model/"):], "shape": [1], "offset": 0})


def spec(key, value):
    return lambda h, d: h["meta"]["spec"].__setitem__(key, value)


def nan_weight(h, d):
    d[0:4] = struct.pack("<f", float("nan"))


forge("moons-1-epoch.ckpt", "momentum-too-short", short_momentum)
forge("moons-1-epoch.ckpt", "mask-too-short", short_mask)
forge("moons-1-epoch.ckpt", "batch-past-the-epoch", set_progress("batch", 10**12))
forge("moons-1-epoch.ckpt", "step-wraps", set_progress("step", 2**64 - 1))
forge("moons-1-epoch.ckpt", "epoch-1e15", set_progress("epoch", 10**15))
forge("moons-1-epoch.ckpt", "checkpoint-huge-hidden", spec("hidden", [10**9]))
forge("moons-1-epoch.plm", "model-huge-hidden", spec("hidden", [10**9]))
forge("moons-1-epoch.plm", "model-huge-classes", spec("classes", 10**8))
forge("moons-1-epoch.plm", "model-zero-inputs", spec("inputs", 0))
forge("moons-1-epoch.plm", "model-nan-weight", nan_weight)
