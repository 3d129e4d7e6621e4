"""report.html: one self-contained page that explains a run (or compares several).

Everything is read from the run directory (config.yaml, stats.jsonl, alarms.jsonl, metrics.jsonl,
samples/, eval/, generator.safetensors). Images are embedded as base64 PNG data URIs, styles are
inline, there is no script and no URL: the file opens from disk and requests nothing.
Sections whose data a run does not have say why instead of disappearing.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from ..config import flatten, from_dict, load_yaml
from ..errors import GanforgeError
from . import plots
from ..nets.latent import class_rows, code_values, slerp as _slerp, sweep_codes
from ..nets.load import load_generator
from ..run import RunDir, atomic_write, layout, make_parent_dir, read_jsonl
from .grids import save_grid

log = logging.getLogger("ganforge")

REPORT, PLOTS, METRICS = layout.REPORT, layout.PLOTS, layout.METRICS

# Section headings of a run report, in page order (the browser test checks every one).
SECTIONS = (
    "Configuration",
    "Alarms",
    "Losses",
    "D(x) and D(G(z))",
    "Learning rates",
    "Gradient flow",
    "Sample diversity",
    "Metrics",
    "Samples over training",
    "Per-class samples",
    "InfoGAN code traversals",
    "Latent interpolation",
    "Nearest training images",
)
COMPARE_SECTIONS = (
    "Runs",
    "Configuration differences",
    "Losses",
    "D(x) and D(G(z))",
    "Gradient norms",
    "Sample diversity",
    "Metrics",
    "Latest samples",
    "Alarms",
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;
padding:16px 24px;color:#1c1e21;background:#fff}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;border-bottom:1px solid #ccd;padding-bottom:3px;margin-top:1.6em}
h3{font-size:1em;margin:.8em 0 .3em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f2f6}pre{background:#f6f8fa;padding:8px;font-size:.8em;overflow:auto;max-height:420px}
img{max-width:100%;image-rendering:pixelated;border:1px solid #dde}
figure{display:inline-block;margin:4px 8px 8px 0;vertical-align:top}figcaption{font-size:.8em;color:#555}
.na{color:#777;font-style:italic}.alarm{color:#a40000}.ok{color:#1a7f37}
.grid{display:flex;flex-wrap:wrap;gap:10px}.run{flex:1 1 0;min-width:220px}
nav a{margin-right:10px;font-size:.85em}.summary{font-size:.95em}
"""


# --------------------------------------------------------------------------- small HTML helpers


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def data_uri(png: Path | bytes) -> str:
    raw = png.read_bytes() if isinstance(png, Path) else png
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def img(png: Optional[Path], caption: str = "", alt: str = "") -> str:
    if png is None or not Path(png).is_file():
        return ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri(Path(png))}" alt="{esc(alt or caption)}">{cap}</figure>'


def na(reason: str, what: str = "for this run") -> str:
    return f'<p class="na">Not available {what}: {esc(reason)}</p>'


def section(title: str, body: str) -> str:
    return f'<section id="{_anchor(title)}"><h2>{esc(title)}</h2>\n{body}\n</section>\n'


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, sections: Sequence[str], headings: Sequence[str], intro: str = "") -> str:
    nav = "".join(f'<a href="#{_anchor(h)}">{esc(h)}</a>' for h in headings)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        f"<h1>{esc(title)}</h1>\n{intro}\n<nav>{nav}</nav>\n" + "".join(sections) + "</body></html>\n"
    )


# --------------------------------------------------------------------------- reading a run


class RunData:
    """What a report needs from one run directory, read once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        run = RunDir(self.path)
        if not self.path.is_dir():
            raise GanforgeError(f"{self.path}: no such run directory")
        if not run.config.is_file():
            raise GanforgeError(f"{self.path}: not a ganforge run (no config.yaml)")
        self.config_text = run.config.read_text()
        self.cfg = from_dict(load_yaml(run.config), str(run.config))
        self.stats = read_jsonl(run.stats)
        self.metrics = read_jsonl(run.metrics)
        self.alarms = read_jsonl(run.alarms)
        self.events = [r for r in self.stats if "event" in r]  # the divergence watchdog's rollbacks
        self.samples = sorted(run.samples.glob("step_*.png"))

    @property
    def name(self) -> str:
        return self.path.name

    def last(self, key: str) -> Optional[float]:
        for r in reversed(self.stats):
            if key in r:
                return plots._value(r[key])
        return None

    @property
    def step(self) -> int:
        return int(self.stats[-1]["step"]) if self.stats else 0


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if math.isfinite(v) else str(v)


# --------------------------------------------------------------------------- generated pictures


def _save_png(x: torch.Tensor, path: Path, nrow: int) -> Path:
    return save_grid(x, path, nrow)


def generated_pictures(run: RunData, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Latent interpolation, per-class grids and InfoGAN traversals from the run's generator.

    Returns {"interpolation" | "per_class" | "traversals": Path or a reason string}.
    """
    out: dict[str, Any] = {}
    reason = None
    if run.cfg.data.dataset.startswith("toy2d"):
        reason = "2-D point data (the samples are scatter plots)"
    elif not RunDir(run.path).generator.is_file():
        reason = "no generator.safetensors (written at the first checkpoint)"
    if reason is not None:
        return {k: reason for k in ("interpolation", "per_class", "traversals")}
    try:
        G, cfg = load_generator(run.path, "cpu")
    except Exception as e:  # noqa: BLE001 - one section must not take the whole report down
        return {k: f"could not load the generator ({e})" for k in ("interpolation", "per_class", "traversals")}
    z_dim = cfg.model.z_dim
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # Latent interpolation: 6 rows, each from one noise vector to another in 10 steps (slerp).
        rows, cols = 6, 10
        a, b = torch.randn(rows, z_dim, generator=gen), torch.randn(rows, z_dim, generator=gen)
        z = _slerp(a, b, torch.linspace(0, 1, cols)).reshape(rows * cols, z_dim)  # [R*T, Z]
        out["interpolation"] = _save_png(G(z), out_dir / "interpolation.png", cols)

        info_cat = int(getattr(cfg.model, "info_cat", 0) or 0)
        conditional = getattr(cfg.model, "conditioning", "none") != "none"
        k = getattr(cfg.model, "num_classes", None) if conditional else (info_cat or None)
        if k:
            per_row = 10
            zc, y = class_rows(torch.randn(per_row, z_dim, generator=gen), k)  # [K*10, Z], [K*10]: same noise in every row
            out["per_class"] = _save_png(G(zc, y), out_dir / "per_class.png", per_row)
        else:
            out["per_class"] = "not a conditional run (model.conditioning is none and no InfoGAN category)"

        n_cont = int(getattr(cfg.model, "info_cont", 0) or 0)
        if n_cont > 0:
            # Each continuous code c_j swept over [-1, 1] (z entry = sqrt(2) erfinv(c)) for 3 noise vectors.
            steps, noise_rows = 10, 3
            base = torch.randn(noise_rows, z_dim, generator=gen)
            zs = sweep_codes(base, n_cont, code_values(steps))  # [n_cont * 3 * T, Z]
            out["traversals"] = _save_png(G(zs), out_dir / "code_traversals.png", steps)
            out["traversal_rows"] = (n_cont, noise_rows)
        elif info_cat > 0:
            out["traversals"] = "InfoGAN run with a categorical code only: see the per-class samples (one row per category)"
        else:
            out["traversals"] = "not an InfoGAN run (model.info_cont is 0)"
    return out


# --------------------------------------------------------------------------- the run report


def _samples_over_training(run: RunData, max_grids: int = 8) -> str:
    files = run.samples
    if not files:
        return na("no sample grids in samples/")
    if len(files) > max_grids:  # evenly spaced, always including the first and the last
        idx = sorted({round(i * (len(files) - 1) / (max_grids - 1)) for i in range(max_grids)})
        files = [files[i] for i in idx]
    figs = "".join(img(f, f"step {int(f.stem.split('_')[-1])}") for f in files)
    return f'<p>Grids from the same fixed noise batch ({len(run.samples)} written, {len(files)} shown).</p><div class="grid">{figs}</div>'


def _alarms_body(alarms: list[dict[str, Any]], events: Sequence[dict[str, Any]] = ()) -> str:
    if not alarms:
        body = '<p class="ok">No alarms fired.</p>'
    else:
        rows = [(a.get("step"), a.get("kind"), a.get("message"), a.get("value"), a.get("threshold")) for a in alarms]
        body = f'<p class="alarm">{len(alarms)} alarm(s).</p>' + table(("step", "kind", "message", "value", "threshold"), rows)
    if events:
        rows = [(e.get("step"), e.get("event"), ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("step", "event")))
                for e in events]
        body += f'<h3>Watchdog events</h3><p class="alarm">{len(events)} event(s).</p>' + table(("step", "event", "details"), rows)
    return body


def _metrics_body(run: RunData, fig: Optional[Path]) -> str:
    if not run.metrics:
        return na(f"no {METRICS} (written by 'ganforge eval' or --eval-every)")
    last = run.metrics[-1]
    rows = [(k, _fmt(plots._value(v))) for k, v in (last.get("metrics") or {}).items()]
    proto = last.get("protocol")
    body = f"<p>Latest evaluation, step {esc(last.get('step'))}:</p>" + table(("metric", "value"), rows)
    if proto:
        body += "<h3>Protocol</h3><pre>" + esc(json.dumps(proto, indent=1, sort_keys=True)) + "</pre>"
    return body + img(fig, f"every metric over training ({len(run.metrics)} evaluation(s))")


def _intro(run: RunData) -> str:
    c = run.cfg
    bits = [
        f"data <b>{esc(c.data.dataset)}</b>",
        f"architecture <b>{esc(c.model.arch)}</b>",
        f"objective <b>{esc(c.objective.name)}</b>",
        f"step <b>{run.step}</b> of {c.train.steps}",
        f"loss/D {_fmt(run.last('loss/D'))}, loss/G {_fmt(run.last('loss/G'))}",
        f"D(x) {_fmt(run.last('D(x)'))}, D(G(z)) {_fmt(run.last('D(G(z))'))}",
    ]
    alarm = (f'<span class="alarm">{len(run.alarms)} alarm(s)</span>' if run.alarms else '<span class="ok">no alarms</span>')
    return (f'<p class="summary">{esc(str(run.path))}: ' + ", ".join(bits) + f"; {alarm}.</p>"
            f'<p class="summary">Written {esc(time.strftime("%Y-%m-%d %H:%M:%S"))} by ganforge report.</p>')


def write_report(run_dir: str | Path, out: Optional[str | Path] = None, generate: bool = True) -> Path:
    """Write RUN/report.html (or `out`) and the PNG plots in RUN/plots; returns the HTML path."""
    run = RunData(run_dir)
    plot_dir = run.path / PLOTS
    p = plots.run_plots(run.stats, run.metrics, plot_dir)
    pics = generated_pictures(run, plot_dir) if generate else {k: "not generated (--no-generate)" for k in ("interpolation", "per_class", "traversals")}
    no_stats = "no stats.jsonl records yet"

    def plot_or_na(key: str, reason: str) -> str:
        return img(p.get(key), "") or na(reason)

    grad = "".join(img(p.get(f"grad_{n}"), f"{n}: gradient norm per layer (log10)") for n in ("G", "D"))
    upd = "".join(img(p.get(f"update_{n}"), f"{n}: update / weight per layer (log10)") for n in ("G", "D"))
    gradflow = (
        "<p>Each row is a layer (input at the top), each column a logged step. Gradient norms that fade "
        "towards the input mean vanishing gradients; an update/weight ratio far above 1e-3 means large steps.</p>"
        + grad + upd + img(p.get("grad_totals"), "total gradient norms")
    ) if grad else na("no grad/<G|D>/<layer> statistics in stats.jsonl")

    def picture(key: str, caption: str) -> str:
        v = pics.get(key)
        return img(v, caption) if isinstance(v, Path) else na(str(v))

    trav = pics.get("traversals")
    trav_caption = ""
    if isinstance(trav, Path):
        n_cont, noise_rows = pics["traversal_rows"]
        trav_caption = f"{n_cont} continuous code(s), {noise_rows} rows each: code swept from -1 to 1 left to right"
    nearest = sorted(RunDir(run.path).eval_dir.glob("nearest_step_*.png"))
    bodies = {
        "Configuration": f"<pre>{esc(run.config_text)}</pre>",
        "Alarms": _alarms_body(run.alarms, run.events),
        "Losses": plot_or_na("losses", no_stats),
        "D(x) and D(G(z))": ("<p>Mean probability D assigns to real images, D(x), and to generated ones, D(G(z)). "
                             "Both near 0.5: balanced. D(x) near 1 with D(G(z)) near 0: D is winning.</p>"
                             + plot_or_na("d_outputs", no_stats)),
        "Learning rates": plot_or_na("lr", no_stats),
        "Gradient flow": gradflow,
        "Sample diversity": plot_or_na("diversity", "no diversity statistic (alarms disabled or streamed data)"),
        "Metrics": _metrics_body(run, p.get("metrics")),
        "Samples over training": _samples_over_training(run),
        "Per-class samples": picture("per_class", "one row per class, the same noise in every column"),
        "InfoGAN code traversals": picture("traversals", trav_caption),
        "Latent interpolation": picture("interpolation", "each row: spherical interpolation between two noise vectors"),
        "Nearest training images": (img(nearest[-1], f"generated samples and their nearest training images ({nearest[-1].stem})")
                                    if nearest else na("no eval/nearest_step_*.png (written by 'ganforge eval')")),
    }
    text = page(f"ganforge report: {run.name}", [section(h, bodies[h]) for h in SECTIONS], SECTIONS, _intro(run))
    return _write_page(Path(out) if out is not None else run.path / REPORT, text)


# --------------------------------------------------------------------------- comparing runs


def _labels(runs: list[RunData]) -> list[str]:
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def write_compare(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """One page with several runs side by side: overlaid curves, config differences, latest samples, alarms."""
    if len(run_dirs) < 2:
        raise GanforgeError("--compare needs at least two run directories")
    runs = [RunData(d) for d in run_dirs]
    labels = _labels(runs)
    pairs = list(zip(labels, (r.stats for r in runs)))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def overlay(key: str, title: str, logy: bool = False) -> str:
            return img(plots.line_plot(pairs, [key], tmp / f"{_anchor(key)}.png", title, logy=logy), "")

        summary = [
            (lab, r.cfg.data.dataset, r.cfg.model.arch, r.cfg.objective.name, f"{r.step}/{r.cfg.train.steps}",
             _fmt(r.last("loss/D")), _fmt(r.last("loss/G")), _fmt(r.last("D(x)")), _fmt(r.last("D(G(z))")), len(r.alarms))
            for lab, r in zip(labels, runs)
        ]
        flats = [flatten(r.cfg.to_dict()) for r in runs]
        keys = [k for k in flats[0] if any(f.get(k) != flats[0].get(k) for f in flats[1:])]
        keys += [k for f in flats[1:] for k in f if k not in flats[0] and k not in keys]
        diff = table(("key", *labels), [(k, *(f.get(k, "-") for f in flats)) for k in keys]) if keys else "<p>The configurations are identical.</p>"
        metric_fig = plots.metric_plots([(lab, r.metrics) for lab, r in zip(labels, runs)], tmp / "metrics.png")
        latest = "".join(
            f'<div class="run"><h3>{esc(lab)}</h3>' + (img(r.samples[-1], r.samples[-1].stem) if r.samples else na("no samples", "here")) + "</div>"
            for lab, r in zip(labels, runs)
        )
        alarm_html = "".join(f"<h3>{esc(lab)}</h3>{_alarms_body(r.alarms, r.events)}" for lab, r in zip(labels, runs))
        bodies: dict[str, str] = {
            "Runs": table(("run", "data", "arch", "objective", "step", "loss/D", "loss/G", "D(x)", "D(G(z))", "alarms"), summary),
            "Configuration differences": diff,
            "Losses": overlay("loss/D", "loss/D") + overlay("loss/G", "loss/G"),
            "D(x) and D(G(z))": overlay("D(x)", "D(x)") + overlay("D(G(z))", "D(G(z))"),
            "Gradient norms": overlay("grad/G/total", "G total gradient norm", True) + overlay("grad/D/total", "D total gradient norm", True),
            "Sample diversity": overlay("diversity", "sample diversity (generated / real)")
            + overlay("class_coverage", "class coverage (shipped classifier)"),
            "Metrics": img(metric_fig, "one panel per metric, one line per run") or na(f"no run has {METRICS}", "here"),
            "Latest samples": f'<div class="grid">{latest}</div>',
            "Alarms": alarm_html,
        }
        for h in ("Losses", "D(x) and D(G(z))", "Gradient norms", "Sample diversity"):
            bodies[h] = bodies[h] or na("no run has these statistics", "here")
        intro = f'<p class="summary">{len(runs)} runs: ' + ", ".join(esc(str(r.path)) for r in runs) + ".</p>"
        text = page("ganforge comparison", [section(h, bodies[h]) for h in COMPARE_SECTIONS], COMPARE_SECTIONS, intro)
    return _write_page(Path(out), text)


def _write_page(path: Path, text: str) -> Path:
    """An HTML page written atomically (a failure: one line naming the file)."""
    make_parent_dir(path)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


__all__ = ["write_report", "write_compare", "generated_pictures", "RunData", "SECTIONS", "COMPARE_SECTIONS", "REPORT"]
