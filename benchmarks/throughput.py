"""Training throughput: ganforge's trainer vs a plain PyTorch reference loop, same model, same batch.

The reference trains the way the PyTorch DCGAN example does: float32, eager, a DataLoader over a
TensorDataset, one G forward per iteration reused for the D and G updates, D not frozen during
the G update. ganforge runs its own Trainer (what `ganforge train` runs) on the same data tensor.
Both are measured in the same process, alternating, after a warm-up; the table reports the median
over rounds. The presets' own nets (ResNet, R3GAN's) have no such example to compare
with: their reference is ganforge's step with every speed choice off (float32, contiguous tensors,
torch's per-parameter Adam).

    python benchmarks/throughput.py                 # CPU, DCGAN-28 at batch 64
    python benchmarks/throughput.py --setups resnet8-b64,r3gan8-b64 --ablate   # ResNet-8 and stacked R3GAN's nets
    python benchmarks/throughput.py --device cuda   # everything for a lent GPU, in one call
    python benchmarks/throughput.py --json          # one JSON object with speedup_vs_reference
    python benchmarks/throughput.py --ablate        # also ganforge with each speed choice turned off

`--ablate` times ganforge once more per speed choice, with that one choice switched off (or, for
torch.compile, on), in the same rounds: the measurement behind each default in train/fastpath.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ganforge.config import Config, set_value
from ganforge.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.run import RunDir
from ganforge.train import Trainer
from ganforge.train.graphs import WARMUP_STEPS

# Measured matrix peaks (TFLOP/s) for the fraction-of-peak column; see ../shared/PERF_NOTES.md.
PEAKS = {"H100": 797.0}


@dataclass
class Setup:
    name: str
    size: int
    channels: int
    width: int
    batch: int
    gflop_per_image: Optional[float]  # per training step (G fwd+bwd, 2 D fwd+bwd), from PERF_NOTES
    sets: tuple[tuple[str, Any], ...] = ()  # a preset's nets and objective (config keys); () = DCGAN, the example's


# Each --ablate variant: the settings that differ from ganforge's defaults (all speed choices on `auto`).
ABLATIONS = {
    "cpu": {
        "fp32 (no bf16 autocast)": {"train.precision": "fp32"},
        "no channels_last": {"train.channels_last": "off"},
        "channels_last on": {"train.channels_last": "on"},
        "no fused Adam": {"train.fused_optim": "off"},
    },
    "cuda": {
        "no CUDA graphs": {"train.cuda_graphs": "off"},
        "fp32 + tf32 (no bf16)": {"train.precision": "fp32"},
        "no channels_last": {"train.channels_last": "off"},
        "no fused Adam": {"train.fused_optim": "off"},
        "fp32, no tf32": {"train.precision": "fp32", "train.tf32": "off"},
    },
}
COMPILE = {"torch.compile, no graphs": {"train.compile": "on", "train.cuda_graphs": "off"}}  # --compile: ~1 min per round

SETUPS = {
    "dcgan28-b64": Setup("DCGAN-28", 28, 1, 128, 64, 0.280),
    "dcgan64-b512": Setup("DCGAN-64", 64, 3, 64, 512, 2.48),
    # the demo's recipe on digits until 2026-12-01: ResNet nets, spectral norm on D, hinge loss
    "resnet8-b64": Setup("ResNet-8", 8, 1, 64, 64, None, (
        ("model.arch", "resnet"), ("model.z_dim", 64), ("model.spectral_norm_d", True), ("objective.name", "hinge"))),
    # `--preset r3gan --dataset stacked-digits`: R3GAN's nets (G 64, D 32 wide), RpGAN + R1 + R2, here on every step
    # (the preset takes R1 and R2 every 8th D step since 2026-12-01; this setup stays as the tables measured it)
    "r3gan8-b64": Setup("R3GAN-8 (stacked)", 8, 3, 64, 64, None, (
        ("model.arch", "r3gan"), ("model.z_dim", 64), ("model.d_width", 32), ("objective.name", "rpgan"),
        ("objective.r1.gamma", 0.1), ("objective.r2.gamma", 0.1))),
}
# The reference of a preset's nets: ganforge's own step with every speed choice off.
ALL_OFF = {"train.precision": "fp32", "train.channels_last": "off", "train.fused_optim": "off"}


def make_data(s: Setup, n: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, s.channels, s.size, s.size, generator=g) * 2 - 1).to(device)


def reference_steps(s: Setup, data: torch.Tensor, steps: int, device: torch.device) -> float:
    """Seconds for `steps` iterations of the PyTorch-example loop (after a warm-up)."""
    torch.manual_seed(0)
    G, D = DCGANGenerator(100, s.channels, s.size, s.width).to(device), DCGANDiscriminator(s.channels, s.size, s.width).to(device)
    oG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.cpu()), batch_size=s.batch, shuffle=True, drop_last=True)
    crit = torch.nn.BCEWithLogitsLoss()

    def run(k: int) -> None:
        it = iter(loader)
        for _ in range(k):
            try:
                (real,) = next(it)
            except StopIteration:
                it = iter(loader)
                (real,) = next(it)
            real = real.to(device)
            b = real.shape[0]
            ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
            D.zero_grad()
            err_real = crit(D(real), ones)
            err_real.backward()
            fake = G(torch.randn(b, 100, device=device))
            err_fake = crit(D(fake.detach()), zeros)
            err_fake.backward()
            oD.step()
            G.zero_grad()
            err_g = crit(D(fake), ones)
            err_g.backward()
            oG.step()

    run(3)
    _sync(device)
    t = time.perf_counter()
    run(steps)
    _sync(device)
    return time.perf_counter() - t


def ganforge_steps(s: Setup, data: torch.Tensor, steps: int, device: torch.device, extra: dict | None = None) -> tuple[float, str]:
    """Seconds for `steps` ganforge training steps (after a warm-up), maintenance intervals off, and the
    trainer's description of its speed choices. `extra`: config settings on top of the defaults."""
    cfg = Config()
    sets = {
        "data.dataset": "digits", "data.image_size": s.size, "data.channels": s.channels,
        "model.arch": "dcgan", "model.z_dim": 100, "model.g_width": s.width, "model.d_width": s.width,
        "train.batch_size": s.batch, "train.steps": steps, "train.device": str(device),
        "log.log_every": 10**9, "log.grad_every": 10**9, "log.sample_every": 10**9, "log.checkpoint_every": 10**9,
        **dict(s.sets), **(extra or {}),
    }
    for k, v in sets.items():
        set_value(cfg, k, v)
    trainer = Trainer(cfg)
    # Train on the benchmark's data tensor instead of the digits (same shape, same memory placement).
    trainer.source.images, trainer.source.labels = data, None
    trainer.source.sampler.__init__(len(data), 0)
    trainer.write_samples = lambda: None  # type: ignore[method-assign]
    trainer.save = lambda: None  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(tmp)
        run.create()
        cfg_steps = trainer.cfg.train.steps
        warm = WARMUP_STEPS + 2  # CUDA graphs: the eager warm-up steps and the capture happen here, untimed
        trainer.cfg.train.steps = warm
        trainer.train(run)
        _sync(device)
        trainer.cfg.train.steps = cfg_steps + warm
        t = time.perf_counter()
        trainer.train(run)
        _sync(device)
        return time.perf_counter() - t, trainer.fast.describe()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--setups", default=None, help=f"comma-separated: {', '.join(SETUPS)} (default: dcgan28-b64 on cpu, all on cuda)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per round (default: 5 cpu, 200 cuda)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--json-out", default=None, help="also write the JSON object to this file (with the table printed)")
    p.add_argument("--ablate", action="store_true", help="also time ganforge with each speed choice switched (on cuda: always)")
    p.add_argument("--compile", action="store_true", help="also time ganforge under torch.compile (compiles anew each round)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.setups.split(",") if args.setups else (["dcgan28-b64"] if device.type == "cpu" else list(SETUPS))
    steps = args.steps or (5 if device.type == "cpu" else 200)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    peak = next((v for k, v in PEAKS.items() if k in card), None)
    ablations = ABLATIONS.get(device.type, {}) if (args.ablate or device.type == "cuda") else {}
    ablations = {**ablations, **(COMPILE if args.compile else {})}
    rows = []
    for name in names:
        s = SETUPS[name]
        data = make_data(s, max(4 * s.batch, 2048), device)
        times: dict[str, list[float]] = {"reference": [], "ganforge": [], **{v: [] for v in ablations}}
        choices: dict[str, str] = {"reference": "float32 eager, PyTorch DCGAN example"}
        for _ in range(args.rounds):
            if s.sets:  # a preset's nets: ganforge with every speed choice off
                sec, choices["reference"] = ganforge_steps(s, data, steps, device, ALL_OFF)
                choices["reference"] = f"ganforge, every choice off: {choices['reference']}"
            else:
                sec = reference_steps(s, data, steps, device)
            times["reference"].append(sec)
            for who, extra in {"ganforge": {}, **ablations}.items():
                sec, choices[who] = ganforge_steps(s, data, steps, device, extra)
                times[who].append(sec)
        ref_ms = statistics.median(times["reference"]) / steps * 1e3
        for who, ts in times.items():
            sec = statistics.median(ts) / steps
            ips = s.batch / sec
            rows.append({
                "setup": name, "model": s.name, "batch": s.batch, "who": who if who in ("reference", "ganforge") else f"ganforge, {who}",
                "choices": choices[who], "ms_per_step": sec * 1e3, "images_per_s": ips,
                "fraction_of_peak": (ips * s.gflop_per_image / 1e3 / peak) if peak and s.gflop_per_image else None,
                "speedup_vs_reference": ref_ms / (sec * 1e3),
            })
    result = {
        "device": card, "torch": torch.__version__, "threads": torch.get_num_threads(), "steps": steps,
        "rounds": args.rounds, "rows": rows,
        "speedup_vs_reference": {r["setup"]: r["speedup_vs_reference"] for r in rows if r["who"] == "ganforge"},
    }
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"device: {card}   torch {torch.__version__}   threads {torch.get_num_threads()}   "
          f"{steps} steps x {args.rounds} rounds (median)   cpus: {os.cpu_count()}")
    print(f"{'setup':14s} {'who':34s} {'batch':>5s} {'ms/step':>9s} {'images/s':>10s} {'peak':>6s} {'vs ref':>7s}  choices")
    for r in rows:
        frac = f"{100 * r['fraction_of_peak']:.1f}%" if r["fraction_of_peak"] else "-"
        print(f"{r['setup']:14s} {r['who']:34s} {r['batch']:5d} {r['ms_per_step']:9.2f} {r['images_per_s']:10.0f} {frac:>6s} "
              f"{r['speedup_vs_reference']:6.2f}x  {r['choices']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
