"""The alarm detectors: one class per alarm kind, registered in DETECTORS in the order they are checked.

A detector looks at one stats record (with the `alarms` thresholds) and its own state (peaks so far,
streaks) and returns a Finding when its condition holds, else None. Alarms (ganforge.alarms.monitor)
does the rest: an alarm fires when a finding starts and again only after it has cleared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

from ..config import AlarmConfig
from ..errors import unknown_name
from ..registry import Registry

Record = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """A condition that holds: the alarm's message, the value that tripped it and the threshold crossed."""

    message: str
    value: Optional[float]
    threshold: float


class Detector:
    """One alarm kind; a fresh instance per run (its attributes are the run's state for this kind)."""

    kind: ClassVar[str] = ""  # set by DETECTORS.register

    def check(self, step: int, record: Record, cfg: AlarmConfig) -> Optional[Finding]:
        """The finding on this record (updating the detector's state), None when the condition does not hold."""
        raise NotImplementedError


class DetectorRegistry(Registry[type[Detector]]):
    """Detector classes by kind; Alarms checks them in the order they were registered."""

    def __init__(self) -> None:
        super().__init__("alarm kind")

    def register(self, name: str) -> Callable[[type[Detector]], type[Detector]]:
        """A class decorator adding a detector for kind `name` (after those registered before it)."""
        add = super().register(name)

        def deco(cls: type[Detector]) -> type[Detector]:
            add(cls)
            cls.kind = name
            return cls

        return deco

    def kinds(self) -> tuple[str, ...]:
        """Every registered kind, in check order."""
        return tuple(self._items)

    def unregister(self, name: str) -> None:
        """Remove the detector of kind `name`."""
        if name not in self._items:
            raise unknown_name(self.kind, name, self._items)
        del self._items[name]


DETECTORS = DetectorRegistry()


def _num(record: Record, key: str) -> Optional[float]:
    """A record value as float (stats.jsonl writes NaN/inf as strings), None when absent."""
    v = record.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _watched(key: str) -> bool:
    """Whether a non-finite value under this key means divergence."""
    return key.startswith(("loss/", "grad/", "D(")) or key in ("diversity", "class_coverage")


@DETECTORS.register("divergence")
class Divergence(Detector):
    """A NaN/inf loss, D output or gradient norm; or |loss/D|, |loss/G| > max_loss."""

    def check(self, step: int, record: Record, cfg: AlarmConfig) -> Optional[Finding]:
        bad = [k for k in record if _watched(k) and (v := _num(record, k)) is not None and not math.isfinite(v)]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            return Finding(f"non-finite {bad[0]}{more}", _num(record, bad[0]), cfg.max_loss)
        for k in ("loss/D", "loss/G"):
            v = _num(record, k)
            if v is not None and abs(v) > cfg.max_loss:
                return Finding(f"|{k}| = {abs(v):.4g} > {cfg.max_loss:g}: the loss blew up", v, cfg.max_loss)
        return None


@DETECTORS.register("vanishing_gradients")
class VanishingGradients(Detector):
    """D(G(z)) < confident_fake and grad/G/total < max(vanishing_grad, vanishing_ratio * its peak so far)."""

    def __init__(self) -> None:
        self.peak = 0.0  # the largest finite grad/G/total seen

    def check(self, step: int, record: Record, cfg: AlarmConfig) -> Optional[Finding]:
        g, dgz = _num(record, "grad/G/total"), _num(record, "D(G(z))")
        if g is None or not math.isfinite(g):
            return None
        self.peak = max(self.peak, g)
        limit = max(cfg.vanishing_grad, cfg.vanishing_ratio * self.peak)
        if dgz is None or not (dgz < cfg.confident_fake and g < limit):
            return None
        return Finding(f"G's gradient norm {g:.3g} fell below {limit:.3g} (peak {self.peak:.3g}) while "
                       f"D(G(z)) = {dgz:.3g}: D rejects the fakes confidently and G's loss saturates "
                       "(try the non-saturating loss, --objective ns)", g, limit)


@DETECTORS.register("exploding_gradients")
class ExplodingGradients(Detector):
    """grad/G/total or grad/D/total > exploding_grad, or any layer's update/<G|D>/<layer> > max_update_ratio."""

    def check(self, step: int, record: Record, cfg: AlarmConfig) -> Optional[Finding]:
        for net in ("G", "D"):
            v = _num(record, f"grad/{net}/total")
            if v is not None and math.isfinite(v) and v > cfg.exploding_grad:
                return Finding(f"{net}'s gradient norm {v:.4g} > {cfg.exploding_grad:g} (lower the learning rate "
                               f"or clip, e.g. --set {'g' if net == 'G' else 'd'}_optim.clip_norm=10)",
                               v, cfg.exploding_grad)
        worst = max(((v, k) for k in record if k.startswith("update/") and not k.endswith("/total")
                     and (v := _num(record, k)) is not None and math.isfinite(v)), default=None)
        if worst is None or not worst[0] > cfg.max_update_ratio:
            return None
        v, k = worst
        return Finding(f"{k} = {v:.4g} > {cfg.max_update_ratio:g}: one step changed the layer by more than its "
                       "own size (the learning rate is far too high)", v, cfg.max_update_ratio)


class Sustained(Detector):
    """A condition that must hold for `patience` records in a row before it alarms."""

    def __init__(self) -> None:
        self.streak = 0  # consecutive records on which the condition held

    def holds(self, record: Record, cfg: AlarmConfig) -> bool:
        """Whether the condition holds on this record."""
        raise NotImplementedError

    def finding(self, record: Record, cfg: AlarmConfig) -> Finding:
        """The finding once the condition has held for `patience` records (self.streak of them)."""
        raise NotImplementedError

    def check(self, step: int, record: Record, cfg: AlarmConfig) -> Optional[Finding]:
        held = self.holds(record, cfg)
        self.streak = self.streak + 1 if held else 0
        return self.finding(record, cfg) if held and self.streak >= cfg.patience else None


@DETECTORS.register("d_overpowers_g")
class DOverpowersG(Sustained):
    """D(x) > 1 - pinned and D(G(z)) < pinned for `patience` records in a row."""

    def holds(self, record: Record, cfg: AlarmConfig) -> bool:
        dx, dgz = _num(record, "D(x)"), _num(record, "D(G(z))")
        return dx is not None and dgz is not None and dx > 1 - cfg.pinned and dgz < cfg.pinned

    def finding(self, record: Record, cfg: AlarmConfig) -> Finding:
        dx, dgz = _num(record, "D(x)"), _num(record, "D(G(z))")
        return Finding(f"D(x) = {dx:.3g}, D(G(z)) = {dgz:.3g} for {self.streak} records: D overpowers G",
                       dgz, cfg.pinned)


@DETECTORS.register("g_overpowers_d")
class GOverpowersD(Sustained):
    """D(G(z)) > 1 - pinned for `patience` records in a row."""

    def holds(self, record: Record, cfg: AlarmConfig) -> bool:
        dgz = _num(record, "D(G(z))")
        return dgz is not None and dgz > 1 - cfg.pinned

    def finding(self, record: Record, cfg: AlarmConfig) -> Finding:
        dgz = _num(record, "D(G(z))")
        return Finding(f"D(G(z)) = {dgz:.3g} for {self.streak} records: G overpowers D (D accepts the fakes)",
                       dgz, 1 - cfg.pinned)


@DETECTORS.register("mode_collapse")
class ModeCollapse(Detector):
    """From step diversity_warmup: diversity < min_diversity, or class_coverage < min_coverage_ratio * its peak."""

    def __init__(self) -> None:
        self.peak = 0.0  # the largest finite class_coverage seen (also before the warm-up)

    def check(self, step: int, record: Record, cfg: AlarmConfig) -> Optional[Finding]:
        div, cov = _num(record, "diversity"), _num(record, "class_coverage")
        if cov is not None and math.isfinite(cov):
            self.peak = max(self.peak, cov)
        if step < cfg.diversity_warmup:
            return None
        if div is not None and div < cfg.min_diversity:
            return Finding(f"sample diversity {div:.3g} < {cfg.min_diversity:g} (mean pairwise distance of generated "
                           "samples relative to real ones): G produces nearly the same output for different noise",
                           div, cfg.min_diversity)
        limit = cfg.min_coverage_ratio * self.peak
        if cov is not None and cov < limit:
            return Finding(f"class coverage fell to {cov:.3g} (peak {self.peak:.3g}, limit {limit:.3g}): the "
                           "classifier finds fewer of the data set's classes among the generated samples", cov, limit)
        return None


KINDS = DETECTORS.kinds()  # the built-in kinds, in check order
