"""Evaluate a run's generator against its real data: FID/KID with the real-vs-real floor,
classifier / Inception score, precision-recall-density-coverage, mode counting and
memorisation, and for generators that take a class, class accuracy, intra-FID and InfoGAN's code
agreement; each number stored with its protocol.

    evaluate("runs/x", n=1000)            # library call: returns the record, appends metrics.jsonl
    ganforge eval --run runs/x --n 1000   # the same from the command line

The metrics come in groups (`--metrics`), each one MetricGroup class registered in METRIC_GROUPS
(groups.py; the built-in ones in builtin.py, then conditional.py). GROUPS and LOWER_IS_BETTER are
read from the registry, in registration order. During training, make_eval_hook(cfg) gives the loop
its evaluation hook.
"""

from __future__ import annotations

from typing import Any

from .builtin import KID_SUBSET_SIZE, KID_SUBSETS, MEM_REFERENCE_MAX, NEAREST_PAIRS, PRDC_K  # registers the groups
from .conditional import ConditionalGroup, InfoganCodesGroup  # registers conditional, infogan_codes after them
from .core import MAX_AUTO_N, append_metrics, evaluate, evaluate_generator, generate_n, read_metrics
from .groups import METRIC_GROUPS, EvalContext, GroupRegistry, MetricGroup, group_names, lower_is_better, metric_group
from .hook import EvalHook, check_eval_config, is_lower_better, make_eval_hook
from .real import STACKED, TOY2D_N, RealData, load_real
from .real import stacked_digits
from .table import format_table

_stacked_digits = stacked_digits  # the name tests/ import


def __getattr__(name: str) -> Any:
    """GROUPS and LOWER_IS_BETTER, as registered now (a group registered later is included)."""
    if name == "GROUPS":
        return group_names()  # metric groups `--metrics` selects from, in output order
    if name == "LOWER_IS_BETTER":
        return lower_is_better()  # headline values and their direction, for --eval-metric and best.pt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GROUPS", "KID_SUBSETS", "KID_SUBSET_SIZE", "LOWER_IS_BETTER", "MAX_AUTO_N", "MEM_REFERENCE_MAX",
    "METRIC_GROUPS", "NEAREST_PAIRS", "PRDC_K", "STACKED", "TOY2D_N", "ConditionalGroup", "EvalContext", "EvalHook",
    "InfoganCodesGroup",
    "GroupRegistry", "MetricGroup", "RealData", "append_metrics", "check_eval_config", "evaluate",
    "evaluate_generator", "format_table", "generate_n", "group_names", "is_lower_better", "load_real",
    "lower_is_better", "make_eval_hook", "metric_group", "read_metrics", "stacked_digits",
]
