"""Quality benchmark: presets x data sets, each trained for the same budget and measured with
`ganforge.evaluate` (domain features), printed as a markdown table.

    python benchmarks/quality.py --steps 300                      # CPU, a few minutes
    python benchmarks/quality.py --steps 5000 --device cuda --n 2000

Columns: FID (domain features) beside the real-vs-real floor at the same N, precision /
recall (k=5), modes covered and KL (toy2d: PacGAN protocol; stacked-digits: 1,000 modes;
labelled data: class coverage and KL(generated || real)), training and evaluation wall time.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import time
from pathlib import Path

import torch

from ganforge.config import Config, apply_dict, get_preset, set_value
from ganforge.errors import GanforgeError
from ganforge.evaluate import evaluate
from ganforge.run import RunDir
from ganforge.train import Trainer

IMAGE_DATA = ["digits", "fashion-mnist", "stacked-digits"]
TOY_DATA = ["toy2d-ring", "toy2d-grid"]
DEFAULT_PRESETS = ["dcgan", "lsgan", "toy2d"]


def build_config(preset: str, dataset: str, args: argparse.Namespace) -> Config:
    cfg = Config()
    apply_dict(cfg, get_preset(preset).overrides, f"preset {preset}")
    cfg.preset = preset
    for key, value in {
        "data.dataset": dataset, "train.steps": args.steps, "train.seed": args.seed, "train.device": args.device,
        "log.log_every": max(1, args.steps // 5), "log.sample_every": args.steps, "log.checkpoint_every": args.steps,
    }.items():
        set_value(cfg, key, value)
    if dataset.startswith("toy2d"):
        set_value(cfg, "data.image_size", None)
        set_value(cfg, "data.channels", None)
    return cfg


def compatible(preset: str, dataset: str) -> bool:
    """toy2d presets train on points, the others on images."""
    return (preset == "toy2d") == dataset.startswith("toy2d")


def run_cell(preset: str, dataset: str, args: argparse.Namespace) -> dict[str, object]:
    out = args.out / f"{preset}-{dataset}"
    cfg = build_config(preset, dataset, args)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    run = RunDir(out)
    run.create()
    run.lock()
    try:
        trainer.train(run, quiet=True)
    finally:
        trainer.source.close()
        run.unlock()
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = evaluate(out, args.n, seed=args.seed, device=args.device)
    return {"metrics": r["metrics"], "protocol": r["protocol"], "train_s": t_train, "eval_s": time.perf_counter() - t0}


def row(preset: str, dataset: str, cell: dict[str, object]) -> str:
    m, p = cell["metrics"], cell["protocol"]  # type: ignore[index]
    f = lambda k, fmt="{:.3g}": fmt.format(m[k]) if k in m and not (isinstance(m[k], float) and math.isnan(m[k])) else "-"  # noqa: E731
    if "modes_covered" in m:
        modes = f"{m['modes_covered']:.0f}/{m['num_modes']:.0f}, KL {m['mode_kl']:.2f}"
        if "high_quality_fraction" in m:
            modes += f", HQ {m['high_quality_fraction']:.1%}"
    elif "class_coverage" in m:
        modes = f"classes {m['class_coverage']:.0%}, KL {m['class_kl']:.2f}"
    else:
        modes = "-"
    return (f"| {preset} | {dataset} | {f('fid')} | {f('fid_floor')} | {f('precision', '{:.2f}')} | "
            f"{f('recall', '{:.2f}')} | {modes} | {p['extractor']} | {p['n_fake']} | "
            f"{cell['train_s']:.0f} s | {cell['eval_s']:.0f} s |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="G updates per cell (the budget; default 300)")
    p.add_argument("--n", type=int, default=None, help="samples per evaluation (default: ganforge eval's)")
    p.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS)
    p.add_argument("--datasets", nargs="+", default=IMAGE_DATA + TOY_DATA)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path("runs") / f"quality-{time.strftime('%Y%m%d-%H%M%S')}")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("ganforge").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    cpu = platform.processor() or platform.machine()
    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU ({cpu}, {args.threads} threads)"
    print(f"budget: {args.steps} G steps per cell; device: {dev}; torch {torch.__version__}; seed {args.seed}")
    print()
    print("| preset | data | FID | real-vs-real floor | precision | recall | modes / classes | features | N | train | eval |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    t_all = time.perf_counter()
    for dataset in args.datasets:
        for preset in args.presets:
            if not compatible(preset, dataset):
                continue
            try:
                cell = run_cell(preset, dataset, args)
            except GanforgeError as e:
                print(f"| {preset} | {dataset} | error: {e} |||||||||")
                continue
            print(row(preset, dataset, cell), flush=True)
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f} s; runs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
