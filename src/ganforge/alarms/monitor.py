"""Alarms: runs the registered detectors on each stats record and reports the alarms that start."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

from ..config import AlarmConfig
from ..errors import GanforgeError
from ..run import RunDir, append_jsonl, layout, read_jsonl, write_jsonl
from .detectors import DETECTORS, Detector, Finding
from .probes import Probes

log = logging.getLogger("ganforge")

ALARMS_FILE = layout.ALARMS


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


def read_alarms(run_dir: str | Path) -> list[dict[str, Any]]:
    """The alarms of a run, in order; a torn last line is ignored."""
    return read_jsonl(RunDir(run_dir).alarms)


def _json_number(v: float) -> Any:
    """v for JSON: NaN and inf as strings."""
    return v if math.isfinite(v) else str(v)


class Alarms:
    """Checks each stats record of one run and reports alarms to the log and RUN/alarms.jsonl."""

    def __init__(self, cfg: AlarmConfig, run_dir: Optional[str | Path] = None, step: int = 0) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.path = RunDir(run_dir).alarms if run_dir is not None else None
        self.fired: list[dict[str, Any]] = []
        self.detectors: dict[str, Detector] = {kind: DETECTORS.get(kind)() for kind in DETECTORS.kinds()}
        self.probes = Probes(cfg)
        self._active: set[str] = set()
        self._silent = False
        if self.path is not None and self.path.exists():  # a resumed run (also one resumed from step 0)
            self._truncate(step)
        if self.path is not None and step > 0:
            self._replay(step)

    def _truncate(self, step: int) -> None:
        """A resumed run drops alarms written after its checkpoint (they will be seen again)."""
        write_jsonl(self.path, [a for a in read_alarms(self.path.parent) if a.get("step", 0) <= step])

    def _replay(self, step: int) -> None:
        """A resumed run's checks start where the run's checks were at its checkpoint (peaks, streaks and
        active alarms), by re-checking its stats.jsonl records up to `step` without reporting them again."""
        stats_path = RunDir(self.path.parent).stats
        if not stats_path.is_file():
            return
        self._silent = True
        try:
            for record in read_jsonl(stats_path):
                at = record.get("step")
                if "event" not in record and isinstance(at, int) and at <= step:
                    self.check(at, record)
        finally:
            self._silent = False

    def measure(self, view: Any) -> dict[str, float]:
        """Per-record measurements that need the networks (view: .source, .cfg, .fixed_z, .G): {"diversity": ...}."""
        if not self.cfg.enabled:
            return {}
        return self.probes.measure(view)

    def observe(self, step: int, record: dict[str, Any], trainer: Any = None) -> list[dict[str, Any]]:
        """Add measurements to `record` (when a trainer is given), check it, report new alarms."""
        if not self.cfg.enabled:
            return []
        if trainer is not None:
            record.update(self.measure(trainer))
        return self.check(step, record)

    def check(self, step: int, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Run every detector on one record, in registration order; returns the alarms that fired now."""
        if not self.cfg.enabled:
            return []
        findings = [(kind, det.check(step, record, self.cfg)) for kind, det in self.detectors.items()]
        new: list[dict[str, Any]] = []
        for kind, found in findings:
            if found is None:
                self._active.discard(kind)
            elif kind not in self._active:
                self._active.add(kind)
                if not self._silent:
                    new.append(self._emit(step, kind, found))
        return new

    def _emit(self, step: int, kind: str, found: Finding) -> dict[str, Any]:
        """Log one alarm and append it to RUN/alarms.jsonl."""
        value = float("nan") if found.value is None else float(found.value)
        alarm = {"step": step, "kind": kind, "message": found.message, "value": _json_number(value),
                 "threshold": found.threshold}
        log.warning("ALARM step %d %s: %s", step, kind, found.message)
        self.fired.append(alarm)
        if self.path is not None:
            append_jsonl(self.path, alarm)
        return alarm
