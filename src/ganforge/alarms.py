"""Training alarms: why a GAN run is failing, said as it happens.

At every stats.jsonl record the trainer calls `Alarms.observe(step, record, trainer)`. Each alarm
is logged (logger "ganforge", WARNING) and appended to RUN/alarms.jsonl as
{"step", "kind", "message", "value", "threshold"}. An alarm fires when its condition starts to
hold and again only after the condition has cleared (no repeats on every record).

Kinds and their thresholds (config section `alarms`, e.g. --set alarms.max_loss=50):

    divergence           a NaN/inf loss, D output or gradient norm; or |loss/D|, |loss/G| > max_loss
    vanishing_gradients  D(G(z)) < confident_fake and grad/G/total < max(vanishing_grad,
                         vanishing_ratio * its peak so far): the saturating minimax loss against a
                         confident D (the non-saturating loss keeps G's gradients large there)
    exploding_gradients  grad/G/total or grad/D/total > exploding_grad, or any layer's
                         update/<G|D>/<layer> > max_update_ratio (an update as large as the weights)
    d_overpowers_g       D(x) > 1 - pinned and D(G(z)) < pinned for `patience` records in a row
    g_overpowers_d       D(G(z)) > 1 - pinned for `patience` records in a row
    mode_collapse        diversity < min_diversity: the mean pairwise distance of samples from the
                         fixed noise batch divided by that of real samples (1 = as diverse as the data);
                         or, where a classifier ships for the data set (ganforge.metrics.features),
                         class_coverage (the fraction of classes the classifier finds among those
                         samples) < min_coverage_ratio * its peak so far
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Optional

import torch

from .config import AlarmConfig
from .errors import GanforgeError

log = logging.getLogger("ganforge")

ALARMS_FILE = "alarms.jsonl"
KINDS = (
    "divergence",
    "vanishing_gradients",
    "exploding_gradients",
    "d_overpowers_g",
    "g_overpowers_d",
    "mode_collapse",
)


def check_config(cfg: AlarmConfig) -> None:
    """Range checks of the `alarms` section. Raises GanforgeError."""
    for name in ("confident_fake", "vanishing_ratio", "vanishing_grad", "exploding_grad", "max_update_ratio", "max_loss"):
        if not getattr(cfg, name) > 0:
            raise GanforgeError(f"alarms.{name} must be positive, got {getattr(cfg, name)}")
    if not 0 < cfg.pinned < 0.5:
        raise GanforgeError(f"alarms.pinned must be in (0, 0.5), got {cfg.pinned}")
    if cfg.patience < 1:
        raise GanforgeError(f"alarms.patience must be >= 1, got {cfg.patience}")
    if not 0 <= cfg.min_coverage_ratio <= 1:
        raise GanforgeError(f"alarms.min_coverage_ratio must be in [0, 1], got {cfg.min_coverage_ratio}")
    if cfg.min_diversity < 0:
        raise GanforgeError(f"alarms.min_diversity must be >= 0, got {cfg.min_diversity}")
    if cfg.diversity_samples < 2:
        raise GanforgeError(f"alarms.diversity_samples must be >= 2, got {cfg.diversity_samples}")


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between distinct samples of a batch [N, ...] (N >= 2)."""
    flat = x.detach().float().reshape(x.shape[0], -1)  # [N, D]
    return float(torch.pdist(flat).mean())


@torch.no_grad()
def generate_as_trained(G: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) in training mode (batch statistics, as D sees it), leaving G's buffers (BN running stats) untouched."""
    saved = {name: b.clone() for name, b in G.named_buffers()}
    was_training = G.training
    G.train()
    try:
        return G(z)
    finally:
        G.train(was_training)
        buffers = dict(G.named_buffers())
        for name, value in saved.items():
            buffers[name].copy_(value)


def read_alarms(run_dir: str | Path) -> list[dict[str, Any]]:
    """The alarms of a run, in order; a torn last line is ignored."""
    from .train.rundir import read_jsonl

    path = Path(run_dir) / ALARMS_FILE
    return read_jsonl(path) if path.is_file() else []


def _json_number(v: float) -> Any:
    return v if math.isfinite(v) else str(v)


def _num(record: dict[str, Any], key: str) -> Optional[float]:
    """A record value as float (stats.jsonl writes NaN/inf as strings), None when absent."""
    v = record.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Alarms:
    """Checks each stats record of one run and reports alarms to the log and RUN/alarms.jsonl."""

    def __init__(self, cfg: AlarmConfig, run_dir: Optional[str | Path] = None, step: int = 0) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.path = Path(run_dir) / ALARMS_FILE if run_dir is not None else None
        self.fired: list[dict[str, Any]] = []
        self._active: set[str] = set()
        self._streak: dict[str, int] = {}
        self._real_div: Optional[float] = None
        self._g_peak = 0.0  # the largest grad/G/total seen (vanishing = collapsed relative to it)
        self._cov_peak = 0.0  # the largest class_coverage seen
        self._classifier: Any = None  # False: none for this data set
        self._silent = False
        if self.path is not None and self.path.exists():  # a resumed run (also one resumed from step 0)
            self._truncate(step)
        if self.path is not None and step > 0:
            self._replay(step)

    def _truncate(self, step: int) -> None:
        """A resumed run drops alarms written after its checkpoint (they will be seen again)."""
        keep = [a for a in read_alarms(self.path.parent) if a.get("step", 0) <= step]
        tmp = self.path.with_name(".alarms.jsonl.tmp")
        tmp.write_text("".join(json.dumps(a) + "\n" for a in keep))
        os.replace(tmp, self.path)

    def _replay(self, step: int) -> None:
        """A resumed run's checks start where the run's checks were at its checkpoint (peaks, streaks and
        active alarms), by re-checking its stats.jsonl records up to `step` without reporting them again."""
        stats_path = self.path.parent / "stats.jsonl"
        if not stats_path.is_file():
            return
        from .train.rundir import read_jsonl

        self._silent = True
        try:
            for record in read_jsonl(stats_path):
                at = record.get("step")
                if "event" not in record and isinstance(at, int) and at <= step:
                    self.check(at, record)
        finally:
            self._silent = False

    # ------------------------------------------------------------------ measurements

    def measure(self, trainer: Any) -> dict[str, float]:
        """Per-record measurements that need the networks: {"diversity": ...} (empty when unknown)."""
        if not self.cfg.enabled:
            return {}
        real = self._real_diversity(trainer)
        if real is None or not real > 0:
            return {}
        n = min(self.cfg.diversity_samples, trainer.fixed_z.shape[0])
        fake = generate_as_trained(trainer.G, trainer.fixed_z[:n])
        out = {"diversity": mean_pairwise_distance(fake) / real}
        classifier = self._load_classifier(trainer)
        if classifier:
            _, pred = classifier(fake.detach().float().cpu())  # the shipped classifiers run on the CPU
            k = int(classifier.info.get("num_classes", 10))
            out["class_coverage"] = len(set(pred.tolist())) / k
        return out

    def _load_classifier(self, trainer: Any) -> Any:
        """The shipped classifier for the run's data set, loaded once (False when there is none)."""
        if self._classifier is None:
            self._classifier = False
            spec = trainer.source.spec
            if spec.kind == "image":
                try:
                    from .metrics.features import CLASSIFIER_FOR, CLASSIFIER_INPUT, classifier_extractor, classifier_path

                    name = CLASSIFIER_FOR.get(trainer.cfg.data.dataset)
                    same_channels = name is not None and CLASSIFIER_INPUT.get(name, (None,))[0] == spec.channels
                    if same_channels and classifier_path(name).is_file():  # not stacked (3-digit) data
                        with torch.random.fork_rng(devices=[]):  # building the net draws init weights: keep
                            self._classifier = classifier_extractor(name)  # the run's RNG (resume is bit-exact)
                except (ImportError, GanforgeError) as e:  # the evaluation module absent or a bad file
                    log.info("alarms: no class coverage (%s)", e)
        return self._classifier

    def _real_diversity(self, trainer: Any) -> Optional[float]:
        """Mean pairwise distance of a fixed set of real samples, computed once (no data RNG used)."""
        if self._real_div is None:
            n, source = self.cfg.diversity_samples, trainer.source
            if hasattr(source, "all_images"):
                real = source.all_images(limit=n)
            elif hasattr(source, "centers") and hasattr(source, "sigma"):  # toy2d mixtures
                gen = torch.Generator().manual_seed(0)
                k = torch.randint(len(source.centers), (n,), generator=gen)
                real = source.centers[k] + source.sigma * torch.randn(n, 2, generator=gen)  # [n, 2]
            else:
                return None  # streamed folders: no cheap fixed real batch, no diversity alarm
            self._real_div = mean_pairwise_distance(real) if real.shape[0] >= 2 else 0.0
        return self._real_div

    # ------------------------------------------------------------------ checks

    def observe(self, step: int, record: dict[str, Any], trainer: Any = None) -> list[dict[str, Any]]:
        """Add measurements to `record` (when a trainer is given), check it, report new alarms."""
        if not self.cfg.enabled:
            return []
        if trainer is not None:
            record.update(self.measure(trainer))
        return self.check(step, record)

    def check(self, step: int, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Evaluate every condition on one record; returns the alarms that fired now."""
        if not self.cfg.enabled:
            return []
        c = self.cfg
        new: list[dict[str, Any]] = []
        conditions: dict[str, Optional[tuple[str, float, float]]] = {k: None for k in KINDS}

        # divergence: non-finite anywhere that matters, or a loss blow-up
        bad = [k for k in record if _watched(k) and (v := _num(record, k)) is not None and not math.isfinite(v)]
        if bad:
            conditions["divergence"] = (f"non-finite {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                                        _num(record, bad[0]), c.max_loss)
        else:
            for k in ("loss/D", "loss/G"):
                v = _num(record, k)
                if v is not None and abs(v) > c.max_loss:
                    conditions["divergence"] = (f"|{k}| = {abs(v):.4g} > {c.max_loss:g}: the loss blew up", v, c.max_loss)
                    break

        dgz, dx = _num(record, "D(G(z))"), _num(record, "D(x)")
        g_total = _num(record, "grad/G/total")
        if g_total is not None and math.isfinite(g_total):
            self._g_peak = max(self._g_peak, g_total)
            limit = max(c.vanishing_grad, c.vanishing_ratio * self._g_peak)
            if dgz is not None and dgz < c.confident_fake and g_total < limit:
                conditions["vanishing_gradients"] = (
                    f"G's gradient norm {g_total:.3g} fell below {limit:.3g} (peak {self._g_peak:.3g}) while "
                    f"D(G(z)) = {dgz:.3g}: D rejects the fakes confidently and G's loss saturates "
                    "(try the non-saturating loss, --objective ns)", g_total, limit)

        for net in ("G", "D"):
            v = _num(record, f"grad/{net}/total")
            if v is not None and math.isfinite(v) and v > c.exploding_grad:
                conditions["exploding_gradients"] = (
                    f"{net}'s gradient norm {v:.4g} > {c.exploding_grad:g} (lower the learning rate or clip, "
                    f"e.g. --set {'g' if net == 'G' else 'd'}_optim.clip_norm=10)", v, c.exploding_grad)
                break
        if conditions["exploding_gradients"] is None:
            worst = max(((v, k) for k in record if k.startswith("update/") and not k.endswith("/total")
                         and (v := _num(record, k)) is not None and math.isfinite(v)), default=None)
            if worst is not None and worst[0] > c.max_update_ratio:
                v, k = worst
                conditions["exploding_gradients"] = (
                    f"{k} = {v:.4g} > {c.max_update_ratio:g}: one step changed the layer by more than its own size "
                    "(the learning rate is far too high)", v, c.max_update_ratio)

        d_wins = dx is not None and dgz is not None and dx > 1 - c.pinned and dgz < c.pinned
        g_wins = dgz is not None and dgz > 1 - c.pinned
        for kind, holds, text, value in (
            ("d_overpowers_g", d_wins, "D(x) = {dx:.3g}, D(G(z)) = {dgz:.3g} for {n} records: D overpowers G", dgz),
            ("g_overpowers_d", g_wins, "D(G(z)) = {dgz:.3g} for {n} records: G overpowers D (D accepts the fakes)", dgz),
        ):
            self._streak[kind] = self._streak.get(kind, 0) + 1 if holds else 0
            if holds and self._streak[kind] >= c.patience:
                conditions[kind] = (text.format(dx=dx, dgz=dgz, n=self._streak[kind]), value,
                                    c.pinned if kind == "d_overpowers_g" else 1 - c.pinned)

        div, cov = _num(record, "diversity"), _num(record, "class_coverage")
        if cov is not None and math.isfinite(cov):
            self._cov_peak = max(self._cov_peak, cov)
        if step >= c.diversity_warmup:
            if div is not None and div < c.min_diversity:
                conditions["mode_collapse"] = (
                    f"sample diversity {div:.3g} < {c.min_diversity:g} (mean pairwise distance of generated samples "
                    "relative to real ones): G produces nearly the same output for different noise", div, c.min_diversity)
            elif cov is not None and cov < c.min_coverage_ratio * self._cov_peak:
                limit = c.min_coverage_ratio * self._cov_peak
                conditions["mode_collapse"] = (
                    f"class coverage fell to {cov:.3g} (peak {self._cov_peak:.3g}, limit {limit:.3g}): the classifier "
                    "finds fewer of the data set's classes among the generated samples", cov, limit)

        for kind in KINDS:
            cond = conditions[kind]
            if cond is None:
                self._active.discard(kind)
            elif kind not in self._active:
                self._active.add(kind)
                if not self._silent:
                    new.append(self._emit(step, kind, *cond))
        return new

    def _emit(self, step: int, kind: str, message: str, value: Optional[float], threshold: float) -> dict[str, Any]:
        value = float("nan") if value is None else float(value)
        alarm = {"step": step, "kind": kind, "message": message, "value": _json_number(value), "threshold": threshold}
        log.warning("ALARM step %d %s: %s", step, kind, message)
        self.fired.append(alarm)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(alarm) + "\n")
        return alarm


def _watched(key: str) -> bool:
    return key.startswith(("loss/", "grad/", "D(")) or key in ("diversity", "class_coverage")


__all__ = ["Alarms", "ALARMS_FILE", "KINDS", "check_config", "mean_pairwise_distance", "read_alarms"]
