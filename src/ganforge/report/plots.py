"""Plots of a run as PNG files (matplotlib, Agg): curves from stats.jsonl and metrics.jsonl, gradient-flow heatmaps.

Each function takes the parsed records and a path, writes one PNG and returns the path, or None
when the run has nothing to plot for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..run import atomic_write, make_parent_dir

Records = list[dict[str, Any]]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _value(v: Any) -> float:
    """stats.jsonl writes NaN/inf as strings; everything else is a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def series(records: Records, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `key` over the records that have it."""
    pts = [(r["step"], _value(r[key])) for r in records if key in r and "step" in r]
    if not pts:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*pts)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def layer_names(records: Records, kind: str, net: str) -> list[str]:
    """Layer names of `kind/net/<layer>` keys in first-seen (network) order, without totals."""
    prefix, seen = f"{kind}/{net}/", {}
    for r in records:
        for k in r:
            if k.startswith(prefix) and not k.endswith(("/total", "/preclip_total")):
                seen.setdefault(k[len(prefix):], None)
    return list(seen)


def _save(fig: Any, path: Path) -> Path:
    """The figure as a PNG, written atomically (ganforge.run); the figure is closed either way."""
    try:
        make_parent_dir(path)
        # fixed margins (set at creation): tight_layout costs more than the drawing
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    finally:
        _plt().close(fig)
    return path


def line_plot(
    runs: Sequence[tuple[str, Records]],
    keys: Sequence[str],
    path: str | Path,
    title: str,
    ylabel: str = "",
    logy: bool = False,
) -> Optional[Path]:
    """One line per (run, key); `runs` is [(label, records)] (one run: labels are the keys)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    fig.subplots_adjust(left=0.12, right=0.97, top=0.9, bottom=0.15)
    drawn = 0
    for label, records in runs:
        for key in keys:
            x, y = series(records, key)
            if len(x) == 0:
                continue
            name = key if len(runs) == 1 else (f"{label}" if len(keys) == 1 else f"{label}: {key}")
            ax.plot(x, y, label=name, linewidth=1.2)
            bad = ~np.isfinite(y)
            if bad.any():  # mark where the values stopped being finite
                ax.scatter(x[bad], np.zeros(bad.sum()), marker="x", color="red", zorder=3)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    if logy:
        ax.set_yscale("symlog", linthresh=1e-6) if _has_nonpositive(runs, keys) else ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, Path(path))


def _has_nonpositive(runs: Sequence[tuple[str, Records]], keys: Sequence[str]) -> bool:
    for _, records in runs:
        for key in keys:
            y = series(records, key)[1]
            if (y[np.isfinite(y)] <= 0).any():
                return True
    return False


def heatmap(records: Records, kind: str, net: str, path: str | Path, title: str) -> Optional[Path]:
    """Layers x steps heatmap of log10 `kind/net/<layer>` (kind: grad, weight, update)."""
    layers = layer_names(records, kind, net)
    rows = [r for r in records if any(f"{kind}/{net}/{l}" in r for l in layers)]
    if not layers or not rows:
        return None
    m = np.full((len(layers), len(rows)), np.nan)
    for j, r in enumerate(rows):
        for i, l in enumerate(layers):
            v = _value(r.get(f"{kind}/{net}/{l}", float("nan")))
            m[i, j] = math.log10(v) if v > 0 and math.isfinite(v) else np.nan
    plt = _plt()
    height = 1.1 + 0.3 * len(layers)
    fig, ax = plt.subplots(figsize=(6.4, height))
    fig.subplots_adjust(left=0.2, right=0.98, top=1 - 0.3 / height, bottom=0.55 / height)
    steps = [r["step"] for r in rows]
    finite = m[np.isfinite(m)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(
        np.ma.masked_invalid(m), aspect="auto", interpolation="nearest", cmap="viridis",
        vmin=vmin, vmax=max(vmax, vmin + 1e-6),
        extent=(steps[0] - 0.5, steps[-1] + 0.5, len(layers) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(layers)))
    ax.set_yticklabels(layers, fontsize=7)
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=f"log10 {kind} norm" if kind != "update" else "log10 update/weight")
    return _save(fig, Path(path))


def metric_keys(metric_records: Records) -> list[str]:
    keys: dict[str, None] = {}
    for r in metric_records:
        for k in (r.get("metrics") or {}):
            keys.setdefault(k, None)
    return list(keys)


def flatten_metrics(metric_records: Records) -> Records:
    """metrics.jsonl records {"step", "metrics": {name: v}} -> [{"step", name: v}] for line_plot."""
    return [{"step": r["step"], **(r.get("metrics") or {})} for r in metric_records if "step" in r]


def metric_plots(runs: Sequence[tuple[str, Records]], path: str | Path) -> Optional[Path]:
    """One PNG of small multiples, a panel per metric name (metrics have different scales), a line per run."""
    names: dict[str, None] = {}
    for _, recs in runs:
        for k in metric_keys(recs):
            names.setdefault(k, None)
    if not names:
        return None
    flat = [(label, flatten_metrics(recs)) for label, recs in runs]
    plt = _plt()
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.1 * rows), squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.35 / (2.1 * rows), bottom=0.45 / (2.1 * rows),
                        wspace=0.35, hspace=0.6)
    for ax, name in zip(axes.flat, names):
        for label, recs in flat:
            x, y = series(recs, name)
            if len(x):
                ax.plot(x, y, marker="o", markersize=3, linewidth=1.2, label=label)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if len(runs) > 1:
        axes.flat[0].legend(fontsize=6, loc="upper right")
    return _save(fig, Path(path))


def run_plots(records: Records, metric_records: Records, out_dir: str | Path) -> dict[str, Optional[Path]]:
    """Every standard plot of one run into out_dir (RUN/plots); {name: path or None}."""
    out_dir = Path(out_dir)
    one = [("run", records)]
    plots: dict[str, Optional[Path]] = {
        "losses": line_plot(one, ["loss/D", "loss/G"], out_dir / "losses.png", "losses", "loss"),
        "d_outputs": line_plot(one, ["D(x)", "D(G(z))"], out_dir / "d_outputs.png",
                               "D(x) and D(G(z)) (mean probability)", "probability")
        or line_plot(one, ["logit/real", "logit/fake"], out_dir / "d_outputs.png",  # wgan, hinge, lsgan: raw scores
                     "D's mean raw output on real and generated data", "score"),
        "lr": line_plot(one, ["lr/G", "lr/D"], out_dir / "lr.png", "learning rates", "lr"),
        "grad_totals": line_plot(one, ["grad/G/total", "grad/D/total"], out_dir / "grad_totals.png",
                                 "total gradient norm", "norm", logy=True),
        "diversity": line_plot(one, ["diversity", "class_coverage"], out_dir / "diversity.png",
                               "diversity (generated / real mean pairwise distance), class coverage", "fraction"),
    }
    for kind in ("grad", "update"):  # weight norms are in stats.jsonl; their heatmap adds little
        for net in ("G", "D"):
            plots[f"{kind}_{net}"] = heatmap(records, kind, net, out_dir / f"{kind}flow_{net}.png",
                                             f"{net}: {kind} per layer (log10)")
    plots["metrics"] = metric_plots([("run", metric_records)], out_dir / "metrics.png")
    return plots


__all__ = ["series", "layer_names", "line_plot", "heatmap", "metric_plots", "run_plots", "flatten_metrics"]
