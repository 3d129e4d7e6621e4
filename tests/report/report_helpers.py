"""A tiny finished run for the report tests (trained once per test module)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ganforge.run import RunDir
from ganforge.train import Trainer

from helpers import tiny_config


def make_run(path: Path, **sets) -> Path:
    """Train a 6-step digits run with 3 sample grids and a generator; returns its directory."""
    cfg = tiny_config(**{"log.sample_every": 3, "log.checkpoint_every": 6, **sets})
    run = RunDir(path)
    run.create()
    Trainer(cfg).train(run)
    return run.path


def add_eval_outputs(run: Path) -> None:
    """What the evaluation issue writes: metrics.jsonl records and a nearest-neighbour grid."""
    from PIL import Image
    import numpy as np

    with open(run / "metrics.jsonl", "w") as f:
        for step, fid in ((3, 80.0), (6, 60.0)):
            rec = {"step": step, "time": 0.0, "metrics": {"fid": fid, "coverage": step / 10}, "protocol": {"n": 100}}
            f.write(json.dumps(rec) + "\n")
    (run / "eval").mkdir(exist_ok=True)
    img = (np.arange(48 * 96) % 255).reshape(48, 96).astype("uint8")
    Image.fromarray(img).save(run / "eval" / "nearest_step_0000006.png")


def sections(text: str) -> dict[str, str]:
    """{h2 heading: the HTML of its section} of a report page."""
    out = {}
    for m in re.finditer(r"<section[^>]*><h2>(.*?)</h2>(.*?)</section>", text, re.S):
        out[m.group(1).replace("&amp;", "&")] = m.group(2)
    return out
