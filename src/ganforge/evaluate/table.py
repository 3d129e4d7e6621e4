"""The terminal table of an evaluation: metrics beside their floors, the protocol below."""

from __future__ import annotations

from typing import Any


def format_table(result: dict[str, Any]) -> str:
    """The metrics as an aligned table, with the floors beside FID/KID and the protocol below."""
    m, p = result["metrics"], result["protocol"]
    rows: list[tuple[str, str, str]] = []
    floors = {"fid": "fid_floor", "kid_mean": "kid_floor_mean", "classifier_score": "classifier_score_real",
              "inception_score": "inception_score_real", "modes_covered": "modes_covered_real", "mode_kl": "mode_kl_real",
              "mode_kl_dependence": "mode_kl_dependence_real", "mode_kl_channels": "mode_kl_channels_real",
              "class_accuracy": "class_accuracy_real", "intra_fid": "intra_fid_floor", "code_agreement": "code_agreement_real"}
    skip = set(floors.values()) | {"num_modes"}
    for k, v in m.items():
        if k in skip:
            continue
        ref = floors.get(k)
        extra = ""
        if ref in m:
            extra = {"fid_floor": "real-vs-real", "kid_floor_mean": "real-vs-real", "intra_fid_floor": "real-vs-real",
                     "class_accuracy_real": "real held-out", "code_agreement_real": "real held-out"}.get(ref, "real data")
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
    for key in ("kid", "prdc", "score", "modes", "memorisation", "conditional", "infogan_codes"):
        if key in p:
            lines += _protocol_lines(key, p[key])
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    for k, v in result.get("files", {}).items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines)


def _protocol_lines(key: str, entry: dict[str, Any]) -> list[str]:
    """One protocol entry: its values on one line, each matrix (a list of lists) below it, row by row."""
    flat = {a: b for a, b in entry.items() if not (isinstance(b, list) and b and isinstance(b[0], list))}
    lines = [f"  {key}: " + ", ".join(f"{a}={_short(b)}" for a, b in flat.items())]
    for a, b in entry.items():
        if a not in flat:
            lines.append(f"  {key} {a}:")
            lines += ["    " + " ".join(f"{x:>4}" for x in row) for row in b]
    return lines


def _short(v: Any) -> str:
    """A protocol value: lists of numbers as [a b c] with short numbers."""
    if isinstance(v, list):
        return "[" + " ".join("-" if x is None else _fmt(x) if isinstance(x, float) else str(x) for x in v) + "]"
    return str(v)


def _fmt(v: float) -> str:
    """A value as a short string (whole numbers without a decimal point)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"
