"""One evaluation: generate, extract features, run the selected metric groups, append the record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..config import Config
from ..errors import GanforgeError
from ..metrics.features import select_extractor
from ..nets.load import generate, load_generator
from ..run import RunDir, append_jsonl, load_weights, read_jsonl
from .groups import EvalContext, MetricGroup, select_groups
from .real import TOY2D_N, cached, extract, floor_set, load_real, real_key

MAX_AUTO_N = 2000


@torch.no_grad()
def generate_n(G: torch.nn.Module, cfg: Config, n: int, seed: int, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """n samples on the CPU from noise seeded by `seed` (G keeps its train/eval mode); `labels`: one
    class (conditional runs) or category (InfoGAN) per sample, [n]."""
    was = G.training
    G.eval()
    try:
        x = generate(G, n, cfg.model.z_dim, seed=seed, labels=labels)
    finally:
        G.train(was)
    return x.float().clamp(-1, 1) if x.ndim == 4 else x.float()


def evaluate(
    run_dir: str | Path,
    n: Optional[int] = None,
    *,
    metrics: Optional[list[str]] = None,
    features: str = "auto",
    inception_weights: Optional[str | Path] = None,
    seed: int = 0,
    device: str = "cpu",
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate the run's generator (load_generator's choice: its EMA when present).

    Returns {"step", "time", "metrics", "protocol", "notes", "files"}; with `write`,
    appends {"step", "time", "metrics", "protocol"} to RUN/metrics.jsonl.
    """
    G, cfg = load_generator(run_dir, device)
    run = Path(run_dir)
    _, meta = load_weights(RunDir(run).generator)
    step = int(meta.get("step", -1))
    return evaluate_generator(G, cfg, run, step, n=n, metrics=metrics, features=features,
                              inception_weights=inception_weights, seed=seed, write=write)


def evaluate_generator(
    G: torch.nn.Module,
    cfg: Config,
    run_dir: Optional[Path],
    step: int,
    *,
    n: Optional[int] = None,
    metrics: Optional[list[str]] = None,
    features: str = "auto",
    inception_weights: Optional[str | Path] = None,
    seed: int = 0,
    write: bool = True,
) -> dict[str, Any]:
    """The evaluation behind `evaluate`, on a generator in memory (used during training)."""
    t0 = time.perf_counter()
    real = load_real(cfg)
    ext = select_extractor(cfg.data.dataset, tuple(real.train.shape[1:]), features, inception_weights)
    ctx = EvalContext(cfg, real, ext, None if run_dir is None else Path(run_dir), step, seed, write)
    groups = select_groups(metrics, ctx)
    ctx.n = _sample_size(ctx, n, groups)
    floor_name = _prepare(ctx, G)
    proto: dict[str, Any] = {
        "extractor": ext.name,
        "extractor_note": ext.note,
        "n_fake": ctx.n,
        "n_real": int(len(ctx.ref)),
        "split": "train",
        "dataset": ctx.name,
        "seed": seed,
        "feature_dim": int(ctx.f_fake.shape[1]),
        "floor": f"{floor_name} vs the reference set, {ctx.n} each" if ctx.f_floor is not None else "none",
    }
    notes = [ext.note] if "allback" in ext.note or "not found" in ext.note else []
    if ctx.f_floor is None and any(g.uses_floor for g in groups):
        notes.append(f"no real-vs-real floor: needs {ctx.n} real items disjoint from the {ctx.n} reference items")
    out: dict[str, float] = {}
    for group in groups:
        values, entries = group.compute(ctx)
        out.update(values)
        proto.update(entries)
    proto["seconds"] = round(time.perf_counter() - t0, 3)
    record = {"step": int(step), "time": time.time(), "metrics": out, "protocol": proto}
    if write and ctx.run_dir is not None:
        append_metrics(ctx.run_dir, record)
        ctx.files["metrics"] = str(RunDir(ctx.run_dir).metrics)
    return {**record, "notes": notes, "files": ctx.files}


def _sample_size(ctx: EvalContext, n: Optional[int], groups: list[MetricGroup]) -> int:
    """The number of items to generate: `n`, or the default for the data; checked against the real set."""
    n_train = len(ctx.real.train)
    n = (TOY2D_N if ctx.points else min(MAX_AUTO_N, n_train // 2)) if n is None else n
    if n < 10:
        raise GanforgeError(f"--n must be at least 10, got {n}")
    if any(g.paired for g in groups) and n > n_train:
        raise GanforgeError(
            f"--n {n} is larger than the real set ({n_train} {ctx.name} training items); "
            f"FID/KID/PRDC compare N generated with N real: use --n {n_train} or less"
        )
    return n


def _prepare(ctx: EvalContext, G: torch.nn.Module) -> str:
    """Fill ctx with the samples, the reference and floor sets and their features; the floor's name."""
    real, ext, n, name = ctx.real, ctx.ext, ctx.n, ctx.name
    ctx.G = G
    ctx.fake = generate_n(G, ctx.cfg, n, ctx.seed)
    if ctx.fake.shape[1:] != real.train.shape[1:]:
        raise GanforgeError(f"generator output {tuple(ctx.fake.shape[1:])} does not match the data {tuple(real.train.shape[1:])}")
    rng = np.random.default_rng(ctx.seed + 1)
    perm = torch.as_tensor(rng.permutation(len(real.train)))
    ctx.ref_idx = perm[: min(n, len(real.train))]
    ctx.ref = real.train[ctx.ref_idx]
    ctx.f_fake, ctx.p_fake = extract(ext, ctx.fake, name)
    key = real_key(ctx.cfg)
    ctx.f_real = cached(("ref", key, ext.name, n, ctx.seed), lambda: extract(ext, ctx.ref, name)[0])
    floor, floor_name = floor_set(real, perm, n)
    ctx.f_floor = None
    if floor is not None:
        ctx.f_floor = cached(("floor", key, ext.name, n, ctx.seed), lambda: extract(ext, floor, name)[0])
    return floor_name


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """One JSON line per evaluation in RUN/metrics.jsonl; non-finite values are written as strings."""
    append_jsonl(RunDir(run_dir).metrics, record)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All lines of RUN/metrics.jsonl (a torn last line is skipped)."""
    return read_jsonl(RunDir(run_dir).metrics)
