#!/usr/bin/env python3
"""Hostile PyTorch files for the memory-bound tests (issue 33, H1b;
crate/tests/engine/hostile.rs). Run BY HAND with the environment of make.py:

    /tmp/torchenv/bin/python tests/interop/make_hostile.py   # writes fixtures/hostile/

- deflated.pt (~70 KB): one tensor of 2^24 zero floats whose storage entry is
  re-packed ZIP_DEFLATED, so 64 MiB unpack from a few kilobytes (torch.save
  never compresses; torch.load reads it all the same);
- views.pt (~1 MB): 300 names for views of ONE storage of 2^18 floats, as
  torch.save writes shared storages: a reader that materialises each name
  allocates 300 MiB from a 1 MB file.
Both are refused before any tensor is read.
"""
import io
import os
import zipfile

import torch

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "hostile")
os.makedirs(OUT, exist_ok=True)


def deflate(raw: bytes) -> bytes:
    """The same archive with every data entry ZIP_DEFLATED."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            method = zipfile.ZIP_DEFLATED if "/data/" in info.filename else zipfile.ZIP_STORED
            dst.writestr(info.filename, data, compress_type=method)
    return buf.getvalue()


raw = io.BytesIO()
torch.save({"w": torch.zeros(2**24)}, raw)
with open(os.path.join(OUT, "deflated.pt"), "wb") as f:
    f.write(deflate(raw.getvalue()))

shared = torch.zeros(2**18)
views = io.BytesIO()
torch.save({f"w{i}": shared for i in range(300)}, views)
with open(os.path.join(OUT, "views.pt"), "wb") as f:
    f.write(views.getvalue())

for name in ("deflated.pt", "views.pt"):
    print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")
