#!/usr/bin/env python3
"""The GPU session's table (bench/gpu-session.sh step 5), from the JSONs in OUT.

    python3 bench/gpu_summary.py OUT     -> OUT/summary.json, and markdown on stdout

Rows: prunelab per model and conv path against PyTorch on the same GPU (train
and infer img/s, ratio), the pruned ResNet-56 against the dense one (measured
speed-up beside the MACs ratio), and the joules NVML metered. A missing
measurement is a row that says so, never a guessed number. Standard library only.
"""
import json
import pathlib
import sys


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(folder):
    out = pathlib.Path(folder)
    rows, lines = [], []
    lines.append("| model | conv | train img/s (ours / torch) | ratio | infer img/s (ours / torch) | ratio | J (train+infer steps) |")
    lines.append("|---|---|---|---|---|---|---|")
    # prunelab-MODEL-CONV.json and torch-MODEL.json (not the pruned rows).
    models = sorted(
        {p.stem.split("-")[1] for p in out.glob("prunelab-*.json") if len(p.stem.split("-")) == 3}
        | {p.stem.split("-")[1] for p in out.glob("torch-*.json")}
    )
    for model in models:
        torch = load(out / f"torch-{model}.json")
        for conv in ("burn", "gemm"):
            ours = load(out / f"prunelab-{model}-{conv}.json")
            row = {"model": model, "conv": conv, "ours": ours, "torch": torch}
            if ours and torch:
                row["train_ratio"] = ours["train_img_s"] / torch["train_img_s"]
                row["infer_ratio"] = ours["infer_img_s"] / torch["infer_img_s"]
            rows.append(row)
            fmt = lambda o, k: f"{o[k]:.0f}" if o else "—"
            ratio = lambda k: f"{row[k]:.3f}" if k in row else "—"
            joules = f"{ours['energy_j']:.0f}" if ours and ours.get("energy_j") is not None else "not metered"
            lines.append(
                f"| {model} | {conv} | {fmt(ours, 'train_img_s')} / {fmt(torch, 'train_img_s')} | {ratio('train_ratio')} "
                f"| {fmt(ours, 'infer_img_s')} / {fmt(torch, 'infer_img_s')} | {ratio('infer_ratio')} | {joules} |"
            )
    pruned_rows = []
    lines += ["", "| conv | dense ResNet-56 MACs | pruned MACs | MACs ratio | train speed-up | infer speed-up | J dense / pruned |", "|---|---|---|---|---|---|---|"]
    for conv in ("burn", "gemm"):
        dense = load(out / f"prunelab-resnet56-{conv}.json")
        pruned = load(out / f"prunelab-resnet56-pruned-{conv}.json")
        row = {"conv": conv, "dense": dense, "pruned": pruned}
        if dense and pruned:
            row["macs_ratio"] = dense["macs"] / pruned["macs"]
            row["train_speedup"] = pruned["train_img_s"] / dense["train_img_s"]
            row["infer_speedup"] = pruned["infer_img_s"] / dense["infer_img_s"]
            j = lambda o: f"{o['energy_j']:.0f}" if o.get("energy_j") is not None else "not metered"
            lines.append(
                f"| {conv} | {dense['macs']} | {pruned['macs']} | {row['macs_ratio']:.2f}x | {row['train_speedup']:.2f}x "
                f"| {row['infer_speedup']:.2f}x | {j(dense)} / {j(pruned)} |"
            )
        else:
            lines.append(f"| {conv} | {'measured' if dense else 'missing'} | {'measured' if pruned else 'missing'} | — | — | — | — |")
        pruned_rows.append(row)
    (out / "summary.json").write_text(json.dumps({"throughput": rows, "pruned": pruned_rows}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/gpu")
