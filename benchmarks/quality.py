"""Quality benchmark, two tables from one training-and-eval path (`ganforge train`, then `ganforge.evaluate`):

    python benchmarks/quality.py --targets                       # issue 12's targets, 3 seeds each
    python benchmarks/quality.py --targets demo ring --seeds 0   # some targets, one seed
    python benchmarks/quality.py --steps 300                     # presets x data sets for the same budget

Targets: each is the command a user would type (a preset and a data set, no --steps), trained once
per seed and measured with `ganforge eval`'s numbers; the table prints the median and the spread
(min-max) over the seeds beside the target and says whether the median reaches it. Each row's
published anchor is in docs/results.md.

The equal-budget table (--steps N): columns FID (domain features) beside the real-vs-real floor at
the same N, precision / recall (k=5), modes covered and KL (toy2d: PacGAN protocol; stacked-digits:
1,000 modes; labelled data: class coverage and KL(generated || real)), training and evaluation wall
time. Not part of the test suite; tests/test_quality_targets.py (-m slow) runs the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import operator
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ganforge.cli import main as ganforge_main
from ganforge.evaluate import evaluate

IMAGE_DATA = ["digits", "fashion-mnist", "stacked-digits"]
TOY_DATA = ["toy2d-ring", "toy2d-grid"]
DEFAULT_PRESETS = ["dcgan", "lsgan", "toy2d"]
OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Target:
    """A user's command (`ganforge train ARGS`) and what `ganforge eval` must say about its run."""

    name: str
    args: tuple[str, ...]
    bars: dict[str, tuple[str, float]]  # metric -> (">=" or "<=", bound); "fid_ratio" = fid / fid_floor, "train_s"
    anchor: str = ""
    minutes: float = 15.0  # the wall-time budget of one run on 2 CPU cores
    extra: tuple[str, ...] = field(default=())  # metrics printed beside the bars


TARGETS = [
    Target("ring", ("--dataset", "toy2d-ring"), {"modes_covered": (">=", 8), "high_quality_fraction": (">=", 0.97)},
           "PacGAN2 7.9/8, 95.6%", extra=("mode_kl",)),
    Target("ring-r3gan", ("--preset", "r3gan", "--dataset", "toy2d-ring"),
           {"modes_covered": (">=", 8), "high_quality_fraction": (">=", 0.97)}, "PacGAN2 7.9/8, 95.6%",
           extra=("mode_kl",)),
    Target("grid-r3gan", ("--preset", "r3gan", "--dataset", "toy2d-grid"),
           {"modes_covered": (">=", 25), "high_quality_fraction": (">=", 0.95), "mode_kl": ("<=", 0.05)},
           "PacGAN4 24.8/25, 93.6%"),
    Target("grid-pacgan", ("--preset", "pacgan", "--dataset", "toy2d-grid"),
           {"modes_covered": (">=", 25), "high_quality_fraction": (">=", 0.95), "mode_kl": ("<=", 0.05)},
           "PacGAN4 24.8/25, 93.6%"),
    Target("stacked-r3gan", ("--preset", "r3gan", "--dataset", "stacked-digits"),
           {"modes_covered": (">=", 1000), "mode_kl": ("<=", 0.05)}, "PacDCGAN KL 0.06, R3GAN KL 0.03"),
    Target("fashion-r3gan", ("--preset", "r3gan", "--dataset", "fashion-mnist"),
           {"fid_ratio": ("<=", 5.0), "recall": (">=", 0.5)}, extra=("fid", "fid_floor")),
    *(Target(f"fashion-{p}", ("--preset", p, "--dataset", "fashion-mnist"), {"class_accuracy_ratio": (">=", 0.9)},
             extra=("class_accuracy", "class_accuracy_real")) for p in ("cgan", "acgan", "cgan-projection", "r3gan-cond")),
    Target("digits-infogan", ("--preset", "infogan", "--dataset", "digits"), {"code_agreement": (">=", 0.9)},
           "InfoGAN 95%"),
    Target("demo", ("--preset", "demo"), {"train_s": ("<=", 180.0), "fid_ratio": ("<=", 5.0), "class_coverage": (">=", 1.0)},
           minutes=3.0, extra=("fid", "fid_floor", "recall")),
]
TARGETS_BY_NAME = {t.name: t for t in TARGETS}


def train_and_eval(args: list[str], out: Path, seed: int, n: Optional[int] = None, device: str = "cpu") -> dict[str, Any]:
    """`ganforge train ARGS --seed S --out OUT` (quiet, no report), then `ganforge.evaluate`: the metrics
    plus fid_ratio and train_s / eval_s (wall time)."""
    t0 = time.perf_counter()
    argv = ["train", *args, "--seed", str(seed), "--out", str(out), "--device", device, "--quiet", "--no-report"]
    with contextlib.redirect_stdout(io.StringIO()):
        rc = ganforge_main(argv)
    if rc != 0:
        raise RuntimeError(f"ganforge {' '.join(argv)} exited {rc}")
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = evaluate(out, n, seed=0, device=device)
    m: dict[str, Any] = dict(r["metrics"])
    if "fid" in m and m.get("fid_floor"):
        m["fid_ratio"] = m["fid"] / m["fid_floor"]
    m.update(train_s=t_train, eval_s=time.perf_counter() - t0, protocol=r["protocol"])
    return m


def summary(values: list[float]) -> str:
    """'median [min-max]' of a metric over seeds ('median' alone for one seed)."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.4g}"
    return f"{med:.4g} [{min(values):.4g}-{max(values):.4g}]"


def reached(target: Target, runs: list[dict[str, Any]]) -> dict[str, bool]:
    """Whether the median over seeds of each barred metric is on the right side of its bound."""
    return {k: OPS[op](statistics.median(float(r[k]) for r in runs), bound) for k, (op, bound) in target.bars.items()}


def target_row(target: Target, runs: list[dict[str, Any]]) -> str:
    ok = reached(target, runs)
    cells = [f"{k} {summary([float(r[k]) for r in runs])} ({op} {bound:g}: {'yes' if ok[k] else 'no'})"
             for k, (op, bound) in target.bars.items() if k != "train_s"]
    cells += [f"{k} {summary([float(r[k]) for r in runs])}" for k in target.extra if all(k in r for r in runs)]
    wall = summary([float(r["train_s"]) for r in runs])
    budget = target.bars.get("train_s", ("<=", target.minutes * 60))[1]
    return (f"| {target.name} | `ganforge train {' '.join(target.args)}` | {'; '.join(cells)} | {wall} s "
            f"(<= {budget:g} s) | {'reached' if all(ok.values()) else 'not yet'} | {target.anchor} |")


def run_targets(names: list[str], seeds: list[int], out: Path, n: Optional[int], device: str) -> int:
    print("| target | command | `ganforge eval`: median [min-max] over seeds (bar: reached?) | train wall time "
          "| verdict | published |")
    print("|---|---|---|---|---|---|")
    for name in names:
        target = TARGETS_BY_NAME[name]
        runs = [train_and_eval(list(target.args), out / f"{name}-seed{s}", s, n, device) for s in seeds]
        print(target_row(target, runs), flush=True)
    return 0


def grid_args(preset: str, dataset: str, steps: int) -> list[str]:
    every = str(max(1, steps // 5))
    return ["--preset", preset, "--dataset", dataset, "--steps", str(steps),
            "--set", f"log.log_every={every}", "--set", f"log.sample_every={steps}", "--set", f"log.checkpoint_every={steps}"]


def compatible(preset: str, dataset: str) -> bool:
    """toy2d presets train on points, the others on images."""
    return (preset == "toy2d") == dataset.startswith("toy2d")


def grid_row(preset: str, dataset: str, m: dict[str, Any]) -> str:
    p = m["protocol"]
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
            f"{m['train_s']:.0f} s | {m['eval_s']:.0f} s |")


def run_grid(args: argparse.Namespace) -> int:
    print("| preset | data | FID | real-vs-real floor | precision | recall | modes / classes | features | N | train | eval |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for preset in args.presets:
            if compatible(preset, dataset):
                m = train_and_eval(grid_args(preset, dataset, args.steps), args.out / f"{preset}-{dataset}",
                                   args.seeds[0], args.n, args.device)
                print(grid_row(preset, dataset, m), flush=True)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", nargs="*", metavar="NAME", choices=list(TARGETS_BY_NAME),
                   help=f"issue 12's targets (all when none is named): {', '.join(TARGETS_BY_NAME)}")
    p.add_argument("--steps", type=int, help="the equal-budget table: G updates per cell")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=None,
                   help="comma-separated training seeds (targets: 0,1,2; equal-budget table: 0)")
    p.add_argument("--n", type=int, default=None, help="samples per evaluation (default: ganforge eval's)")
    p.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS, help="equal-budget table: presets")
    p.add_argument("--datasets", nargs="+", default=IMAGE_DATA + TOY_DATA, help="equal-budget table: data sets")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path("runs") / f"quality-{time.strftime('%Y%m%d-%H%M%S')}")
    args = p.parse_args(argv)
    if (args.targets is None) == (args.steps is None):
        p.error("give either --targets [NAME ...] or --steps N")
    torch.set_num_threads(args.threads)
    logging.getLogger("ganforge").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    cpu = platform.processor() or platform.machine()
    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU ({cpu}, {args.threads} threads)"
    seeds = args.seeds or ([0, 1, 2] if args.targets is not None else [0])
    print(f"device: {dev}; torch {torch.__version__}; seeds {','.join(map(str, seeds))}\n")
    t_all = time.perf_counter()
    if args.targets is not None:
        run_targets(args.targets or list(TARGETS_BY_NAME), seeds, args.out, args.n, args.device)
    else:
        args.seeds = seeds
        run_grid(args)
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f} s; runs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
