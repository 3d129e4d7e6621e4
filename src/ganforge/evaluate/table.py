"""The terminal table of an evaluation: metrics beside their floors, the protocol below."""

from __future__ import annotations

from typing import Any


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
    """A value as a short string (whole numbers without a decimal point)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"
