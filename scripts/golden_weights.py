"""Bit-identity guard for refactors: train every preset (and both engines) for a few fixed-seed CPU
steps, then hash the final checkpoint's weights and the generator file's tensors.

    python scripts/golden_weights.py --write tests/golden/preset_weights.json   # before a change
    python scripts/golden_weights.py --check tests/golden/preset_weights.json   # after it

The hashes depend on the torch build and the CPU's kernels: compare on one machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from ganforge.cli import main
from ganforge.config import PRESETS

SMALL = ["--steps", "4", "--batch-size", "16", "--seed", "3", "--device", "cpu", "--quiet", "--no-report",
         "--set", "data.max_items=96", "--set", "log.log_every=2", "--set", "log.grad_every=2"]
NARROW = ["--set", "model.g_width=16", "--set", "model.d_width=16"]

CASES: dict[str, list[str]] = {f"preset-{name}": ["--preset", name] + ([] if name == "toy2d" else NARROW)
                               for name in sorted(PRESETS) if name != "demo"}
CASES.update({
    "preset-demo": ["--preset", "demo"] + NARROW,
    "ema-diffaug-r1": ["--preset", "dcgan", *NARROW, "--set", "train.ema_decay=0.9", "--set",
                       "train.diffaugment=translation,color", "--set", "objective.r1.gamma=1.0"],
    "clip-schedule": ["--preset", "dcgan", *NARROW, "--set", "g_optim.clip_norm=0.5", "--set",
                      "d_optim.clip_value=0.01", "--set", "g_optim.schedule=cosine", "--set", "d_optim.schedule=step",
                      "--set", "d_optim.step_size=2"],
    "sgd-rmsprop-adagrad": ["--preset", "mlp-gan", *NARROW, "--set", "g_optim.name=sgd", "--set",
                            "g_optim.momentum=0.9", "--set", "d_optim.name=rmsprop", "--n-dis", "2"],
    "numpy-mlp": ["--engine", "numpy", "--arch", "mlp", *NARROW, "--set", "d_optim.name=adagrad"],
    "numpy-dcgan": ["--engine", "numpy", "--arch", "dcgan", *NARROW, "--objective", "minimax"],
    "numpy-toy2d": ["--engine", "numpy", "--dataset", "toy2d-grid", "--n-dis", "2"],
})


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        if isinstance(t, torch.Tensor):
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def run_case(argv: list[str], out: Path) -> dict[str, str]:
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["train", *argv, *SMALL, "--out", str(out)])
    if rc != 0:
        return {"exit": str(rc)}
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return {"G": digest(state["G"]), "D": digest(state["D"]), "generator": digest(load_file(out / "generator.safetensors")),
            "stats": stats_digest(out / "stats.jsonl")}


def stats_digest(path: Path) -> str:
    """The stats records without wall-clock numbers."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        r.pop("images_per_s", None)
        r.pop("time", None)
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:16] + f" ({len(records)} records)"


def collect(only: list[str]) -> dict[str, dict[str, str]]:
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in CASES.items():
            if only and name not in only:
                continue
            result[name] = run_case(argv, Path(tmp) / name)
            print(f"{name:24s} {result[name]}", file=sys.stderr)
    return result


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", metavar="FILE")
    p.add_argument("--check", metavar="FILE")
    p.add_argument("--only", nargs="*", default=[])
    a = p.parse_args()
    got = collect(a.only)
    if a.write:
        Path(a.write).parent.mkdir(parents=True, exist_ok=True)
        Path(a.write).write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    if a.check:
        want = json.loads(Path(a.check).read_text())
        bad = [k for k in got if want.get(k) != got[k]]
        for k in bad:
            print(f"DIFFERS {k}: {want.get(k)} -> {got[k]}")
        print(f"{len(got) - len(bad)} identical, {len(bad)} different")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(cli())
