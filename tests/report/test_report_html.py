"""report.html: every section, self-contained (no URL anywhere), data from the run; --compare; the CLI."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.report.html import (
    COMPARE_SECTIONS,
    SECTIONS,
    RunData,
    _slerp,
    generated_pictures,
    write_compare,
    write_report,
)
from ganforge.report.plots import layer_names, series

from report_helpers import add_eval_outputs, make_run, sections

NA = "Not available for this run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("report") / "run")


def _images(text: str) -> list[Image.Image]:
    out = []
    for m in re.finditer(r'<img src="([^"]*)"', text):
        src = m.group(1)
        assert src.startswith("data:image/png;base64,"), src[:60]
        out.append(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    return out


def assert_self_contained(text: str) -> None:
    outside_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "data:", text)
    assert re.search(r"(?i)https?:|ftp:|//[a-z0-9]", outside_images) is None
    assert "<script" not in text.lower() and "@import" not in text and "url(" not in text
    for m in re.finditer(r'(?:src|href)="([^"]*)"', text):
        assert m.group(1).startswith(("data:image/png;base64,", "#")), m.group(1)[:80]


def test_report_has_every_section_and_is_self_contained(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text()
    sec = sections(text)
    assert list(sec) == list(SECTIONS)
    assert_self_contained(text)
    imgs = _images(text)
    assert len(imgs) >= 10 and all(im.size[0] > 40 and im.size[1] > 40 for im in imgs)
    # the run's own data is there
    assert "dataset: digits" in sec["Configuration"] and "steps: 6" in sec["Configuration"]
    assert "No alarms fired" in sec["Alarms"]
    for title in ("Losses", "D(x) and D(G(z))", "Learning rates", "Gradient flow", "Sample diversity",
                  "Samples over training", "Latent interpolation"):
        assert NA not in sec[title] and "<img" in sec[title], title
    assert sec["Samples over training"].count("<img") == 3  # steps 0, 3, 6
    assert "step 0" in sec["Samples over training"] and "step 6" in sec["Samples over training"]
    # sections whose data this run does not have say so
    for title in ("Metrics", "Per-class samples", "InfoGAN code traversals", "Nearest training images"):
        assert NA in sec[title], title
    # the PNG plots are files too
    for name in ("losses", "d_outputs", "lr", "gradflow_G", "gradflow_D", "updateflow_G", "diversity", "interpolation"):
        assert (run_dir / "plots" / f"{name}.png").is_file(), name


def test_interpolation_strip_is_the_generator_on_slerped_noise(run_dir):
    from ganforge.report.grids import image_grid
    from ganforge.nets.load import load_generator

    write_report(run_dir)
    G, cfg = load_generator(run_dir)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, cfg.model.z_dim, generator=gen), torch.randn(6, cfg.model.z_dim, generator=gen)
    z = _slerp(a, b, torch.linspace(0, 1, 10)).reshape(60, -1)  # [R*T, Z]
    with torch.no_grad():
        want = image_grid(G(z), nrow=10)
    got = Image.open(run_dir / "plots" / "interpolation.png")
    assert (np.asarray(got) == want).all()


def test_slerp_endpoints_and_norms():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 16, generator=gen), torch.randn(4, 16, generator=gen)
    z = _slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))  # [4, 3, 16]
    assert torch.allclose(z[:, 0], a, atol=1e-5) and torch.allclose(z[:, 2], b, atol=1e-5)
    lo, hi = torch.minimum(a.norm(dim=1), b.norm(dim=1)), torch.maximum(a.norm(dim=1), b.norm(dim=1))
    mid = z[:, 1].norm(dim=1)
    assert (mid > 0.9 * lo).all() and (mid < 1.1 * hi).all()  # no dip towards the origin, unlike lerp


def test_metrics_nearest_images_and_alarms_appear_when_present(tmp_path, run_dir):
    run = Path(shutil.copytree(run_dir, tmp_path / "run"))
    add_eval_outputs(run)
    alarm = {"step": 4, "kind": "mode_collapse", "message": "sample diversity 0.01 < 0.05", "value": 0.01, "threshold": 0.05}
    (run / "alarms.jsonl").write_text(json.dumps(alarm) + "\n")
    with open(run / "stats.jsonl", "a") as f:  # a watchdog rollback record
        f.write(json.dumps({"step": 5, "event": "rollback", "reason": "loss/D is nan"}) + "\n")
    sec = sections(write_report(run).read_text())
    assert NA not in sec["Metrics"] and sec["Metrics"].count("<img") == 1  # one panel per metric
    assert ">fid<" in sec["Metrics"] and ">60<" in sec["Metrics"]  # the latest value in the table
    assert NA not in sec["Nearest training images"] and "nearest_step_0000006" in sec["Nearest training images"]
    assert "1 alarm(s)" in sec["Alarms"] and "<td>4</td><td>mode_collapse</td>" in sec["Alarms"]
    assert "Watchdog events" in sec["Alarms"] and "<td>5</td><td>rollback</td>" in sec["Alarms"]
    im = Image.open(run / "plots" / "metrics.png")
    assert im.size[0] > 1.5 * im.size[1]  # two panels side by side: fid and coverage


def test_conditional_run_gets_per_class_grids(tmp_path):
    run = make_run(tmp_path / "run", **{"model.conditioning": "concat"})
    pics = generated_pictures(RunData(run), tmp_path / "pics")
    im = Image.open(pics["per_class"])
    cell = 48 + 2  # 8x8 digits enlarged to 48 px, 2 px gutters
    assert (im.size[0] - 2) // cell == 10 and (im.size[1] - 2) // cell == 10  # 10 classes x 10 noise vectors
    assert "not an InfoGAN run" in pics["traversals"]


def test_infogan_run_gets_code_traversals(tmp_path):
    run = make_run(tmp_path / "run", **{"model.info_cont": 2, "model.info_cat": 10, "model.z_dim": 16})
    pics = generated_pictures(RunData(run), tmp_path / "pics")
    im = Image.open(pics["traversals"])
    assert pics["traversal_rows"] == (2, 3)
    assert (im.size[1] - 2) // 50 == 2 * 3 and (im.size[0] - 2) // 50 == 10  # 2 codes x 3 noise rows, 10 values
    assert isinstance(pics["per_class"], Path)  # the categorical code, one row per category


def test_plot_helpers_read_stats_jsonl():
    recs = [{"step": 1, "loss/D": 1.0, "grad/G/net.0": 2.0, "grad/G/total": 3.0},
            {"step": 2, "loss/D": "nan", "grad/G/net.2": 1.0, "grad/G/net.0": 1.0},
            {"step": 3, "event": "rollback"}]
    steps, values = series(recs, "loss/D")
    assert steps.tolist() == [1, 2] and values[0] == 1.0 and values[1] != values[1]
    assert layer_names(recs, "grad", "G") == ["net.0", "net.2"]


def test_compare_two_runs(tmp_path, run_dir):
    other = make_run(tmp_path / "other", **{"train.seed": 7, "g_optim.lr": 1e-3})
    out = write_compare([run_dir, other], tmp_path / "cmp.html")
    text = out.read_text()
    sec = sections(text)
    assert list(sec) == list(COMPARE_SECTIONS)
    assert_self_contained(text)
    assert "<td>run</td>" in sec["Runs"] and "<td>other</td>" in sec["Runs"]
    diff = sec["Configuration differences"]
    assert "<td>train.seed</td><td>0</td><td>7</td>" in diff and "<td>g_optim.lr</td>" in diff
    assert "<td>d_optim.lr</td>" not in diff
    assert sec["Latest samples"].count("<img") == 2
    for title in ("Losses", "D(x) and D(G(z))", "Gradient norms"):
        assert sec[title].count("<img") == 2, title
    assert "Not available here" in sec["Metrics"]


def test_cli_report_and_compare(run_cli, tmp_path, run_dir):
    code, out, err = run_cli("report", run_dir, "--out", tmp_path / "r.html")
    assert code == 0 and out.strip() == str(tmp_path / "r.html") and (tmp_path / "r.html").is_file()
    code, out, err = run_cli("report", "--compare", run_dir, run_dir, "--out", tmp_path / "c.html")
    assert code == 0 and (tmp_path / "c.html").is_file()
    code, out, err = run_cli("report", tmp_path / "missing")
    assert code == 2 and "no such run directory" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli("report", "--compare", run_dir)
    assert code == 2 and "at least two" in err
    code, out, err = run_cli("report")
    assert code == 2 and "--compare" in err


def test_training_writes_the_report_unless_told_not_to(run_cli, tmp_path):
    common = ("--steps", "2", "--batch-size", "8", "--z-dim", "4", "--set", "model.g_width=8", "--set", "model.d_width=8",
              "--set", "data.max_items=32", "--set", "log.log_every=1", "--quiet")
    code, out, err = run_cli("train", *common, "--out", tmp_path / "a")
    assert code == 0, err
    assert (tmp_path / "a" / "report.html").is_file() and f"report:         {tmp_path / 'a' / 'report.html'}" in out
    code, out, err = run_cli("train", *common, "--out", tmp_path / "b", "--no-report")
    assert code == 0 and not (tmp_path / "b" / "report.html").exists() and "report:" not in out


def test_a_diverged_run_still_gets_its_report(run_cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_cli(
        "train", "--out", run, "--steps", "5", "--arch", "mlp", "--optimizer", "sgd", "--lr", "1e30", "--quiet",
        "--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "watchdog.max_rollbacks=1",
    )
    assert code == 3, err
    sec = sections((run / "report.html").read_text())
    assert "Watchdog events" in sec["Alarms"] and "<td>rollback</td>" in sec["Alarms"] and "<td>diverged</td>" in sec["Alarms"]
