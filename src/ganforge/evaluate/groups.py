"""Metric groups: the units `--metrics` selects, registered in METRIC_GROUPS in output order.

A group is one MetricGroup subclass and one registration (the `metric_group` decorator); the
registration order is the order of GROUPS, of the metrics and of the protocol entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional, TypeVar

import numpy as np
import torch

from ..config import Config
from ..errors import GanforgeError, unknown_name
from ..metrics.features import Extractor
from ..registry import Registry
from .real import STACKED, RealData


@dataclass
class EvalContext:
    """What the metric groups of one evaluation share.

    The first fields are known before the groups are chosen (`applies` reads them); the
    samples and features are filled in once they are (`compute` reads them).
    """

    cfg: Config
    real: RealData
    ext: Extractor
    run_dir: Optional[Path]  # where files go (None: nowhere)
    step: int
    seed: int
    write: bool  # write files (eval/ images) besides returning numbers
    files: dict[str, str] = field(default_factory=dict)  # name -> path of what was written
    n: int = 0  # generated (and real reference) items
    G: Optional[torch.nn.Module] = field(default=None, repr=False)  # the generator (groups that sample for given labels)
    fake: torch.Tensor = field(init=False, repr=False)  # [n, ...] generated, on the CPU
    ref: torch.Tensor = field(init=False, repr=False)  # [n, ...] real reference items from train
    ref_idx: torch.Tensor = field(init=False, repr=False)  # [n] their indices in real.train
    f_fake: np.ndarray = field(init=False, repr=False)  # [n, D] features of `fake`
    p_fake: Optional[np.ndarray] = field(init=False, repr=False)  # [n] predicted classes, or None
    f_real: np.ndarray = field(init=False, repr=False)  # [n, D] features of `ref`
    f_floor: Optional[np.ndarray] = field(init=False, repr=False)  # [n, D] disjoint real items, or None

    @property
    def name(self) -> str:
        """The data set's name."""
        return self.cfg.data.dataset

    @property
    def points(self) -> bool:
        """2-D points rather than images."""
        return self.real.train.ndim == 2

    @property
    def stacked(self) -> bool:
        """Stacked (three-digit, 1,000-mode) data."""
        return self.name in STACKED

    @property
    def data_classes(self) -> bool:
        """The extractor is the data set's own shipped classifier."""
        return self.ext.classifier and self.ext.name.startswith("classifier:")

    @property
    def labelled(self) -> bool:
        """The real set has class labels."""
        return self.real.train_labels is not None and self.real.num_classes is not None


Result = tuple[dict[str, float], dict[str, Any]]


class MetricGroup:
    """One `--metrics` group: whether it applies to the data, and what it measures."""

    name: ClassVar[str] = ""
    paired: ClassVar[bool] = False  # compares n generated with n real: --n must not exceed the real set
    uses_floor: ClassVar[bool] = False  # reports a real-vs-real floor (a note says when there is none)
    lower_is_better: ClassVar[dict[str, bool]] = {}  # its headline values and their direction

    def applies(self, ctx: EvalContext) -> Optional[str]:
        """None when the group can be measured here, else the one-line reason it cannot."""
        return None

    def compute(self, ctx: EvalContext) -> Result:
        """(metric values, protocol entries) for ctx's samples."""
        raise NotImplementedError


class GroupRegistry(Registry[MetricGroup]):
    """A Registry of metric groups that also keeps their registration order."""

    def ordered(self) -> list[MetricGroup]:
        """The groups in registration order."""
        return list(self._items.values())

    def unregister(self, name: str) -> None:
        """Remove a group (plugins and tests)."""
        if name not in self._items:
            raise unknown_name(self.kind, name, self._items)
        del self._items[name]


METRIC_GROUPS = GroupRegistry("metric group")

GroupT = TypeVar("GroupT", bound=type[MetricGroup])


def metric_group(cls: GroupT) -> GroupT:
    """Class decorator: register one instance of the group under its `name`."""
    METRIC_GROUPS.register(cls.name)(cls())
    return cls


def group_names() -> tuple[str, ...]:
    """The registered group names in registration (output) order: GROUPS."""
    return tuple(g.name for g in METRIC_GROUPS.ordered())


def lower_is_better() -> dict[str, bool]:
    """Every group's headline values and their direction: LOWER_IS_BETTER."""
    out: dict[str, bool] = {}
    for g in METRIC_GROUPS.ordered():
        out.update(g.lower_is_better)
    return out


def select_groups(requested: Optional[list[str]], ctx: EvalContext) -> list[MetricGroup]:
    """The requested groups (default: all that apply) in registration order; a one-line error
    for an unknown name or a group that does not apply."""
    groups = METRIC_GROUPS.ordered()
    if requested is None:
        return [g for g in groups if g.applies(ctx) is None]
    for name in requested:
        if name not in METRIC_GROUPS:
            raise GanforgeError(f"unknown metric group '{name}'; valid: {', '.join(group_names())}")
        reason = METRIC_GROUPS.get(name).applies(ctx)
        if reason is not None:
            raise GanforgeError(f"--metrics {name}: {reason}")
    return [g for g in groups if g.name in requested]
