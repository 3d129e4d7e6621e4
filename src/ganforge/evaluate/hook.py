"""Evaluation during training: a hook the training loop calls every log.eval_every steps, which
appends to RUN/metrics.jsonl and keeps the best checkpoint by log.eval_metric."""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Callable, Optional

import torch

from ..config import Config
from ..errors import GanforgeError
from ..run import RunDir, atomic_write, save_checkpoint, save_weights
from .core import evaluate_generator
from .groups import lower_is_better

log = logging.getLogger("ganforge")


def is_lower_better(metric: str) -> bool:
    """Direction of a headline metric; a GanforgeError listing the valid names otherwise."""
    directions = lower_is_better()
    if metric not in directions:
        raise GanforgeError(f"unknown eval metric '{metric}'; valid: {', '.join(sorted(directions))}")
    return directions[metric]


def check_eval_config(cfg: Config) -> None:
    """Reject bad log.eval_* settings before training starts."""
    if cfg.log.eval_every < 0:
        raise GanforgeError(f"log.eval_every (--eval-every) must be >= 0, got {cfg.log.eval_every}")
    if cfg.log.eval_every:
        is_lower_better(cfg.log.eval_metric)
    if cfg.log.eval_n is not None and cfg.log.eval_n < 10:
        raise GanforgeError(f"log.eval_n must be at least 10, got {cfg.log.eval_n}")


def make_eval_hook(cfg: Config) -> Optional[EvalHook]:
    """The in-training evaluation for cfg (its log.eval_* keys checked), or None when log.eval_every is 0."""
    check_eval_config(cfg)
    return EvalHook(cfg) if cfg.log.eval_every else None


class EvalHook:
    """Evaluates a generator into RUN/metrics.jsonl and keeps checkpoints/best.pt,
    generator-best.safetensors and checkpoints/best.json while log.eval_metric improves."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.every = cfg.log.eval_every

    def due(self, step: int, last: bool) -> bool:
        """Whether the loop should call the hook after `step` (every log.eval_every steps, and the last)."""
        return step % self.every == 0 or last

    def __call__(self, run: RunDir, step: int, G: torch.nn.Module, checkpoint: Callable[[], dict[str, Any]],
                 ema: bool) -> dict[str, Any]:
        """Evaluate G (ema: it is the EMA generator) at `step`; checkpoint() is saved as best.pt if it is the best.
        Returns evaluate_generator's result."""
        cfg = self.cfg
        result = evaluate_generator(G, cfg, run.path, step, n=cfg.log.eval_n, seed=cfg.train.seed)
        name = cfg.log.eval_metric
        m = result["metrics"]
        if name not in m:
            raise GanforgeError(f"--eval-metric {name} is not measured for {cfg.data.dataset}; measured: {', '.join(sorted(m))}")
        directions = lower_is_better()
        log.info("eval step %d: %s", step, " ".join(f"{k}={v:.4g}" for k, v in m.items() if k in directions or k.endswith("floor")))
        value = m[name]
        if _improves(run, name, value) and math.isfinite(value):
            _save_best(run, step, G, checkpoint, ema, name, value)
        return result


def _improves(run: RunDir, name: str, value: float) -> bool:
    """`value` beats RUN/checkpoints/best.json (or there is none, or it is for another metric)."""
    best = json.loads(run.best_info.read_text()) if run.best_info.is_file() else None
    if best is None or best.get("metric") != name:
        return True
    return value < best["value"] if is_lower_better(name) else value > best["value"]


def _save_best(run: RunDir, step: int, G: torch.nn.Module, checkpoint: Callable[[], dict[str, Any]], ema: bool,
               name: str, value: float) -> None:
    """checkpoints/best.pt, generator-best.safetensors and checkpoints/best.json for this step."""
    save_checkpoint(checkpoint(), run.best)
    meta = {"step": str(step), "metric": name, "value": repr(value), "ema": str(bool(ema)).lower()}
    save_weights(G.state_dict(), run.best_generator, meta)
    payload = json.dumps({"metric": name, "value": value, "step": step, "lower_is_better": is_lower_better(name)})
    atomic_write(run.best_info, lambda tmp: tmp.write_text(payload + "\n"))
    log.info("best %s so far (%.4g at step %d): %s", name, value, step, run.best)
