"""Evaluate a run's generator against its real data: FID/KID with the real-vs-real floor,
classifier / Inception score, precision-recall-density-coverage, mode counting and
memorisation, each number stored with its protocol.

    evaluate("runs/x", n=1000)            # library call: returns the record, appends metrics.jsonl
    ganforge eval --run runs/x --n 1000   # the same from the command line
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .config import Config
from .errors import GanforgeError
from .metrics import class_coverage, fid, inception_score, kid, memorisation, nearest_neighbours, prdc
from .metrics import stacked_modes, toy2d_modes
from .metrics.features import Extractor, select_extractor
from .metrics.splits import digits_split
from .train.rundir import read_jsonl

log = logging.getLogger("ganforge")

METRICS_FILE = "metrics.jsonl"
EVAL_DIR = "eval"

# Metric groups `--metrics` selects from; default: every group that applies to the data.
GROUPS = ("fid", "kid", "prdc", "score", "classes", "modes", "memorisation")
# Headline values and their direction, for --eval-metric and the best checkpoint.
LOWER_IS_BETTER = {"fid": True, "kid_mean": True, "mode_kl": True, "class_kl": True, "memorised_fraction": True,
                   "precision": False, "recall": False, "density": False, "coverage": False,
                   "class_coverage": False, "modes_covered": False, "high_quality_fraction": False,
                   "classifier_score": False, "inception_score": False}
STACKED = ("stacked-digits", "stacked-mnist")
MAX_AUTO_N = 2000
TOY2D_N = 2500  # PacGAN's protocol
KID_SUBSETS, KID_SUBSET_SIZE, PRDC_K = 100, 1000, 5
NEAREST_PAIRS = 16
MEM_REFERENCE_MAX = 20_000  # training items searched for each generated item's nearest neighbour


@dataclass
class RealData:
    """Real images (or points) the generator is measured against."""

    train: torch.Tensor  # what the generator was trained on  # [N, ...]
    train_labels: Optional[torch.Tensor]
    held_out: Optional[torch.Tensor]  # a split it did not see, if the data set has one
    held_out_name: str  # how `held_out` was made (protocol text)
    mem_train: Optional[torch.Tensor] = None  # memorisation reference (default: train)
    num_classes: Optional[int] = None


def is_lower_better(metric: str) -> bool:
    """Direction of a headline metric; ValueError listing the valid names otherwise."""
    if metric not in LOWER_IS_BETTER:
        raise GanforgeError(f"unknown eval metric '{metric}'; valid: {', '.join(sorted(LOWER_IS_BETTER))}")
    return LOWER_IS_BETTER[metric]


# ------------------------------------------------------------------ real data


_REAL_CACHE: dict[tuple, RealData] = {}
_FEATURE_CACHE: dict[tuple, np.ndarray] = {}


def _real_key(cfg: Config) -> tuple:
    d = cfg.data
    return (d.dataset, d.path, d.image_size, d.channels, d.max_items)


def _cached(key: tuple, compute: Any) -> np.ndarray:
    """Features of a fixed real set, computed once per process (evaluations during training)."""
    if key not in _FEATURE_CACHE:
        _FEATURE_CACHE[key] = compute()
    return _FEATURE_CACHE[key]


def load_real(cfg: Config) -> RealData:
    """Real data for the run's data config (cached per process), on the CPU."""
    key = _real_key(cfg)
    if key not in _REAL_CACHE:
        _REAL_CACHE[key] = _load_real(cfg)
    return _REAL_CACHE[key]


def _load_real(cfg: Config) -> RealData:
    from .data import build_source, is_points
    from .data.toy2d import Toy2dSource

    cpu = torch.device("cpu")
    name = cfg.data.dataset
    if is_points(name):
        train = Toy2dSource(name, 10_001, cpu).batch(4 * TOY2D_N)[0]  # [4N, 2]
        held = Toy2dSource(name, 10_002, cpu).batch(4 * TOY2D_N)[0]
        return RealData(train, None, held, "fresh points from the mixture")
    src = build_source(dataclasses.replace(cfg.data, split="train"), 0, cpu)
    if not hasattr(src, "all_images"):
        raise GanforgeError(f"dataset '{name}' is streamed from disk; evaluation needs it in memory (--set data.loader=memory)")
    train, labels = src.all_images(), src.labels
    k = src.spec.num_classes
    if name == "digits":
        tr, te = digits_split()
        tr, te = tr[tr < len(train)], te[te < len(train)]
        return RealData(train, labels, train[te], "digits_split test part (450; the generator saw it too)",
                        mem_train=train[tr], num_classes=k)
    held, held_name = None, "none"
    if name != "folder":
        try:
            test_cfg = dataclasses.replace(cfg.data, split="test", max_items=None)
            held, held_name = build_source(test_cfg, 0, cpu).all_images(), "test split"
        except GanforgeError as e:
            log.warning("no held-out split for %s (%s)", name, e)
    return RealData(train, labels, held, held_name, num_classes=k)


# ------------------------------------------------------------------ generation


@torch.no_grad()
def generate_n(G: torch.nn.Module, cfg: Config, n: int, seed: int) -> torch.Tensor:
    """n samples on the CPU from noise seeded by `seed` (G keeps its train/eval mode)."""
    from .sample import generate

    was = G.training
    G.eval()
    try:
        x = generate(G, n, cfg.model.z_dim, seed=seed)
    finally:
        G.train(was)
    return x.float().clamp(-1, 1) if x.ndim == 4 else x.float()


# ------------------------------------------------------------------ evaluation


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
    from .sample import load_generator
    from .train.checkpoint import load_weights

    G, cfg = load_generator(run_dir, device)
    run = Path(run_dir)
    _, meta = load_weights(run / "generator.safetensors")
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
    shape = tuple(real.train.shape[1:])
    points = len(shape) == 1
    name = cfg.data.dataset
    ext = select_extractor(name, shape, features, inception_weights)
    data_classes = ext.classifier and ext.name.startswith("classifier:")
    labelled = real.train_labels is not None and real.num_classes is not None
    applicable = {
        "fid": True, "kid": True, "prdc": True,
        "score": ext.classifier and name not in STACKED,
        "classes": data_classes and labelled and name not in STACKED,
        "modes": points or (name in STACKED and data_classes),
        "memorisation": not points and real.held_out is not None,
    }
    why_not = {
        "score": f"extractor {ext.name} is not a classifier",
        "classes": f"'{name}' has no labels or no shipped classifier for its classes ({ext.name})",
        "modes": f"mode counting needs toy2d or stacked data with its digit classifier, not '{name}' with {ext.name}",
        "memorisation": f"'{name}' has no held-out split to set the memorisation threshold",
    }
    groups = _select_groups(metrics, applicable, why_not)

    n_auto = TOY2D_N if points else min(MAX_AUTO_N, len(real.train) // 2)
    n = n_auto if n is None else n
    if n < 10:
        raise GanforgeError(f"--n must be at least 10, got {n}")
    if {"fid", "kid", "prdc"} & set(groups) and n > len(real.train):
        raise GanforgeError(
            f"--n {n} is larger than the real set ({len(real.train)} {name} training items); "
            f"FID/KID/PRDC compare N generated with N real: use --n {len(real.train)} or less"
        )

    fake = generate_n(G, cfg, n, seed)
    if fake.shape[1:] != real.train.shape[1:]:
        raise GanforgeError(f"generator output {tuple(fake.shape[1:])} does not match the data {shape}")
    rng = np.random.default_rng(seed + 1)
    perm = torch.as_tensor(rng.permutation(len(real.train)))
    ref_idx = perm[: min(n, len(real.train))]
    ref = real.train[ref_idx]
    f_fake, p_fake = _extract(ext, fake, name)
    f_real = _cached(("ref", _real_key(cfg), ext.name, n, seed), lambda: _extract(ext, ref, name)[0])

    out: dict[str, float] = {}
    proto: dict[str, Any] = {
        "extractor": ext.name,
        "extractor_note": ext.note,
        "n_fake": n,
        "n_real": int(len(ref)),
        "split": "train",
        "dataset": name,
        "seed": seed,
        "feature_dim": int(f_fake.shape[1]),
    }
    notes = [ext.note] if "allback" in ext.note or "not found" in ext.note else []
    files: dict[str, str] = {}

    floor_set, floor_name = _floor_set(real, perm, n)
    f_floor = None
    if floor_set is not None:
        f_floor = _cached(("floor", _real_key(cfg), ext.name, n, seed), lambda: _extract(ext, floor_set, name)[0])
    if floor_set is None and ({"fid", "kid"} & set(groups)):
        notes.append(f"no real-vs-real floor: needs {n} real items disjoint from the {n} reference items")
    proto["floor"] = f"{floor_name} vs the reference set, {n} each" if floor_set is not None else "none"

    if "fid" in groups:
        out["fid"] = fid(f_real, f_fake)["fid"]
        if f_floor is not None:
            out["fid_floor"] = fid(f_real, f_floor)["fid"]
    if "kid" in groups:
        m = min(KID_SUBSET_SIZE, n // 2)  # subsets of all n would all be the same set
        out.update(kid(f_real, f_fake, subsets=KID_SUBSETS, subset_size=m, seed=seed))
        if f_floor is not None:
            floor = kid(f_real, f_floor, subsets=KID_SUBSETS, subset_size=m, seed=seed)
            out["kid_floor_mean"] = floor["kid_mean"]
        proto["kid"] = {"subsets": KID_SUBSETS, "subset_size": m, "kernel": "(x.y/D + 1)^3"}
    if "prdc" in groups:
        out.update(prdc(f_real, f_fake, k=PRDC_K))
        proto["prdc"] = {"k": PRDC_K, "reference": "real"}
    if "score" in groups:
        key = "inception_score" if ext.name == "inception-v3" else "classifier_score"
        splits = 10 if n >= 1000 else 1
        s = inception_score(ext.probabilities(fake), splits=splits)
        out[key], out[key + "_std"] = s["inception_score"], s["inception_score_std"]
        out[key + "_real"] = inception_score(ext.probabilities(ref), splits=splits)["inception_score"]
        proto["score"] = {"splits": splits, "classifier": ext.name}
    if "classes" in groups:
        assert p_fake is not None and real.train_labels is not None and real.num_classes is not None
        out.update(class_coverage(p_fake, real.train_labels[ref_idx], real.num_classes))
        proto["classes"] = {"classes": real.num_classes, "real_histogram": "true labels of the reference set",
                            "kl": "KL(generated || real)"}
    if "modes" in groups:
        if points:
            out.update(toy2d_modes(fake.numpy(), name))
            proto["modes"] = {"protocol": "PacGAN: high quality within 3 sigma of the nearest mode; "
                              "a mode is covered by >= 1 high-quality sample", "n": n}
        else:
            digits = _stacked_digits(ext, fake)
            out.update(stacked_modes(digits))
            real_modes = stacked_modes(_stacked_digits(ext, ref))
            out["modes_covered_real"] = real_modes["modes_covered"]
            proto["modes"] = {"protocol": "each channel classified by the digit classifier; mode = 100*d0+10*d1+d2; "
                              "KL(generated || uniform over 1000)", "n": n}
    if "memorisation" in groups:
        assert real.held_out is not None
        mem_ref = real.mem_train if real.mem_train is not None else real.train
        mem_ref = mem_ref[:MEM_REFERENCE_MAX]
        n_mem = min(n, 1000, len(real.held_out))
        f_train = _cached(("mem_train", _real_key(cfg), ext.name), lambda: _extract(ext, mem_ref, name)[0])
        f_test = _cached(("held_out", _real_key(cfg), ext.name, n_mem), lambda: _extract(ext, real.held_out[:n_mem], name)[0])
        mem = memorisation(f_fake[:n_mem], f_train, f_test)
        out.update(mem)
        proto["memorisation"] = {"n_fake": n_mem, "reference": f"{len(mem_ref)} training items" + (" (the first)" if len(mem_ref) == MEM_REFERENCE_MAX else ""),
                                 "held_out": f"{n_mem} items of the {real.held_out_name}",
                                 "threshold": "5th percentile of held-out nearest-training distances"}
        if write and run_dir is not None:
            files["nearest"] = str(_nearest_grid(fake[:n_mem], mem_ref, f_fake[:n_mem], f_train, run_dir, step))

    proto["seconds"] = round(time.perf_counter() - t0, 3)
    record = {"step": int(step), "time": time.time(), "metrics": out, "protocol": proto}
    if write and run_dir is not None:
        append_metrics(Path(run_dir), record)
        files["metrics"] = str(Path(run_dir) / METRICS_FILE)
    return {**record, "notes": notes, "files": files}


def _select_groups(requested: Optional[list[str]], applicable: dict[str, bool], why_not: dict[str, str]) -> list[str]:
    if requested is None:
        return [g for g in GROUPS if applicable[g]]
    for g in requested:
        if g not in applicable:
            raise GanforgeError(f"unknown metric group '{g}'; valid: {', '.join(GROUPS)}")
        if not applicable[g]:
            raise GanforgeError(f"--metrics {g}: {why_not[g]}")
    return [g for g in GROUPS if g in requested]


def _floor_set(real: RealData, perm: torch.Tensor, n: int) -> tuple[Optional[torch.Tensor], str]:
    """n real items disjoint from the reference set: held-out split first, else the rest of train."""
    if real.held_out is not None and len(real.held_out) >= n:
        return real.held_out[:n], real.held_out_name
    if len(perm) >= 2 * n:
        return real.train[perm[n : 2 * n]], "disjoint training items"
    return None, "none"


def _extract(ext: Extractor, x: torch.Tensor, dataset: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Features (stacked data: the three channels' features side by side) and predictions."""
    if dataset in STACKED and ext.name.startswith("classifier:"):
        parts = [ext(x[:, c : c + 1])[0] for c in range(3)]
        return np.concatenate(parts, axis=1), None  # [N, 3 * D]
    return ext(x)


def _stacked_digits(ext: Extractor, x: torch.Tensor) -> np.ndarray:
    """The digit classified in each channel.  # [N, 3]"""
    return np.stack([ext(x[:, c : c + 1])[1] for c in range(3)], axis=1)


def _nearest_grid(fake: torch.Tensor, train: torch.Tensor, f_fake: np.ndarray, f_train: np.ndarray,
                  run_dir: Path, step: int) -> Path:
    """RUN/eval/nearest_step_NNNNNNN.png: the closest (generated, training) pairs, generated on top."""
    from .report import save_grid

    dist, idx = nearest_neighbours(f_fake, f_train)
    order = np.argsort(dist, kind="stable")[:NEAREST_PAIRS]
    pairs = torch.cat([fake[order], train[torch.as_tensor(idx[order])]])  # [2k, C, H, W]
    return save_grid(pairs, Path(run_dir) / EVAL_DIR / f"nearest_step_{max(step, 0):07d}.png", nrow=len(order))


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """One JSON line per evaluation; non-finite values are written as strings."""
    clean = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record["metrics"].items()}
    with open(run_dir / METRICS_FILE, "a") as f:
        f.write(json.dumps({**record, "metrics": clean}) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All lines of RUN/metrics.jsonl (a torn last line is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    return read_jsonl(path) if path.is_file() else []


# ------------------------------------------------------------------ terminal table


def format_table(result: dict[str, Any]) -> str:
    """The metrics as an aligned table, with the floors beside FID/KID and the protocol below."""
    m, p = result["metrics"], result["protocol"]
    rows: list[tuple[str, str, str]] = []
    floors = {"fid": "fid_floor", "kid_mean": "kid_floor_mean", "classifier_score": "classifier_score_real",
              "inception_score": "inception_score_real", "modes_covered": "modes_covered_real"}
    skip = set(floors.values()) | {"num_modes"}
    for k, v in m.items():
        if k in skip:
            continue
        ref = floors.get(k)
        extra = ""
        if ref in m:
            extra = {"fid_floor": "real-vs-real", "kid_floor_mean": "real-vs-real"}.get(ref, "real data")
            extra = f"{_fmt(m[ref])} ({extra})"
        if k == "modes_covered" and "num_modes" in m:
            extra = (extra + " " if extra else "") + f"of {int(m['num_modes'])}"
        rows.append((k, _fmt(v), extra))
    w = max([len(r[0]) for r in rows] + [6])
    lines = [f"{'metric':<{w}}  {'value':>12}  reference", "-" * (w + 30)]
    lines += [f"{k:<{w}}  {v:>12}  {e}" for k, v, e in rows]
    lines.append("")
    lines.append(f"protocol: step {result['step']}, {p['dataset']}, extractor {p['extractor']} "
                 f"({p['feature_dim']}-d), {p['n_fake']} generated vs {p['n_real']} real ({p['split']} split), "
                 f"floor: {p['floor']}, seed {p['seed']}")
    for key in ("kid", "prdc", "score", "modes", "memorisation"):
        if key in p:
            lines.append(f"  {key}: " + ", ".join(f"{a}={b}" for a, b in p[key].items()))
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    for k, v in result.get("files", {}).items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


# ------------------------------------------------------------------ during training

BEST_CHECKPOINT = "checkpoints/best.pt"
BEST_GENERATOR = "generator-best.safetensors"
BEST_INFO = "checkpoints/best.json"


def check_eval_config(cfg: Config) -> None:
    """Reject bad log.eval_* settings before training starts."""
    if cfg.log.eval_every < 0:
        raise GanforgeError(f"log.eval_every (--eval-every) must be >= 0, got {cfg.log.eval_every}")
    if cfg.log.eval_every:
        is_lower_better(cfg.log.eval_metric)
    if cfg.log.eval_n is not None and cfg.log.eval_n < 10:
        raise GanforgeError(f"log.eval_n must be at least 10, got {cfg.log.eval_n}")


def eval_in_training(trainer: Any) -> dict[str, Any]:
    """Evaluate the trainer's generator (its EMA when present) into RUN/metrics.jsonl, and
    keep checkpoints/best.pt + generator-best.safetensors when the chosen metric improves."""
    from .train.checkpoint import atomic_write, save_checkpoint, save_weights

    cfg, run = trainer.cfg, trainer.run
    ema = getattr(trainer, "ema", None)
    G = ema.model if ema is not None else trainer.G
    result = evaluate_generator(G, cfg, run.path, trainer.step, n=cfg.log.eval_n, seed=cfg.train.seed)
    name = cfg.log.eval_metric
    m = result["metrics"]
    if name not in m:
        raise GanforgeError(f"--eval-metric {name} is not measured for {cfg.data.dataset}; measured: {', '.join(sorted(m))}")
    value = m[name]
    log.info("eval step %d: %s", trainer.step, " ".join(f"{k}={v:.4g}" for k, v in m.items() if k in LOWER_IS_BETTER or k.endswith("floor")))
    info_path = run.path / BEST_INFO
    best = json.loads(info_path.read_text()) if info_path.is_file() else None
    lower = is_lower_better(name)
    better = best is None or best.get("metric") != name or (value < best["value"] if lower else value > best["value"])
    if better and math.isfinite(value):
        save_checkpoint(trainer.state_dict(), run.path / BEST_CHECKPOINT)
        meta = {"step": str(trainer.step), "metric": name, "value": repr(value), "ema": str(ema is not None).lower()}
        save_weights(G.state_dict(), run.path / BEST_GENERATOR, meta)
        payload = json.dumps({"metric": name, "value": value, "step": trainer.step, "lower_is_better": lower})
        atomic_write(info_path, lambda tmp: tmp.write_text(payload + "\n"))
        log.info("best %s so far (%.4g at step %d): %s", name, value, trainer.step, run.path / BEST_CHECKPOINT)
    return result
