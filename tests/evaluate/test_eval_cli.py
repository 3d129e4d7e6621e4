"""`ganforge eval` and `ganforge train --eval-every` end to end on tiny runs, and the bad
inputs that must be one-line errors with exit code 2."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

TINY = ["--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.sample_every=100", "--set", "log.checkpoint_every=2", "--set", "log.log_every=1",
        "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A 4-step digits run evaluated every 2 steps (best checkpoint by FID)."""
    from ganforge.cli import main

    run = tmp_path_factory.mktemp("eval") / "run"
    code = main(["train", "--dataset", "digits", "--steps", "4", "--out", str(run), "--eval-every", "2",
                 "--set", "log.eval_n=32", *TINY])
    assert code == 0
    return run


def test_train_eval_every_writes_metrics_and_keeps_the_best(digits_run):
    from ganforge.evaluate import read_metrics

    lines = read_metrics(digits_run)
    assert [r["step"] for r in lines] == [2, 4]
    for r in lines:
        assert set(r) == {"step", "time", "metrics", "protocol"}
        p = r["protocol"]
        assert p["extractor"] == "classifier:digits" and p["n_fake"] == 32 and p["n_real"] == 32 and p["split"] == "train"
        assert all(isinstance(v, float) for v in r["metrics"].values())
    best = json.loads((digits_run / "checkpoints" / "best.json").read_text())
    fids = [r["metrics"]["fid"] for r in lines]
    assert best["metric"] == "fid" and best["value"] == min(fids) and best["step"] == lines[int(np.argmin(fids))]["step"]
    assert (digits_run / "checkpoints" / "best.pt").is_file() and (digits_run / "checkpoints" / "last.pt").is_file()
    from ganforge.run import load_weights

    _, meta = load_weights(digits_run / "generator-best.safetensors")
    assert meta["step"] == str(best["step"]) and meta["metric"] == "fid"


def test_eval_json_end_to_end(digits_run, run_cli):
    n_before = len((digits_run / "metrics.jsonl").read_text().splitlines())
    code, out, err = run_cli("eval", "--run", str(digits_run), "--n", "32", "--json")
    assert code == 0, err
    r = json.loads(out)
    m, p = r["metrics"], r["protocol"]
    for key in ("fid", "fid_floor", "kid_mean", "kid_floor_mean", "precision", "recall", "density", "coverage",
                "classifier_score", "class_coverage", "class_kl", "memorised_fraction"):
        assert key in m and math.isfinite(m[key]), key
    assert m["fid"] > m["fid_floor"] >= 0.0  # a 4-step generator is far from the data; real-vs-real is the floor
    assert 0.0 <= m["precision"] <= 1.0 and 0.0 <= m["class_coverage"] <= 1.0
    assert m["classifier_score_real"] > m["classifier_score"] >= 1.0 - 1e-9
    assert p["n_fake"] == 32 and p["prdc"]["k"] == 5 and "floor" in p
    assert r["step"] == 4
    lines = (digits_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == n_before + 1 and json.loads(lines[-1])["metrics"]["fid"] == pytest.approx(m["fid"], rel=1e-12)
    assert Path(r["files"]["nearest"]).is_file() and Path(r["files"]["nearest"]).name == "nearest_step_0000004.png"


def test_eval_table_and_same_numbers_as_the_library(digits_run, run_cli):
    from ganforge.evaluate import evaluate

    code, out, err = run_cli("eval", "--run", str(digits_run), "--n", "32", "--no-write")
    assert code == 0, err
    assert "real-vs-real" in out and "protocol:" in out and "classifier:digits" in out
    lib = evaluate(digits_run, 32, write=False)
    fid_line = next(line for line in out.splitlines() if line.startswith("fid "))
    assert float(fid_line.split()[1]) == pytest.approx(lib["metrics"]["fid"], rel=1e-3)


def test_toy2d_eval_counts_modes(tmp_path, run_cli):
    run = tmp_path / "ring"
    code, _, err = run_cli("train", "--dataset", "toy2d-ring", "--steps", "2", "--out", str(run), *TINY)
    assert code == 0, err
    code, out, err = run_cli("eval", "--run", str(run), "--json", "--no-write")
    assert code == 0, err
    r = json.loads(out)
    assert r["protocol"]["n_fake"] == 2500 and r["protocol"]["extractor"] == "points"
    assert r["metrics"]["num_modes"] == 8 and 0 <= r["metrics"]["modes_covered"] <= 8
    assert "memorised_fraction" not in r["metrics"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metrics", "modes"], "--metrics modes: mode counting needs toy2d or stacked"),
        (["--metrics", "speed"], "unknown metric group 'speed'"),
        (["--n", "100000"], "--n 100000 is larger than the real set (64 digits training items)"),
        (["--features", "vgg"], "unknown --features 'vgg'"),
    ],
)
def test_eval_bad_arguments_exit_2(digits_run, run_cli, args, message):
    code, out, err = run_cli("eval", "--run", str(digits_run), "--no-write", *args)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_eval_wrong_inception_hash_exits_2(digits_run, run_cli, tmp_path):
    bad = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    bad.write_bytes(b"\0" * 1000)
    code, _, err = run_cli("eval", "--run", str(digits_run), "--inception-weights", str(bad))
    assert code == 2 and "does not match the published" in err


def test_eval_labels_metric_on_unlabelled_data_exits_2(tmp_path, run_cli):
    run = tmp_path / "grid"
    code, _, err = run_cli("train", "--dataset", "toy2d-grid", "--steps", "2", "--out", str(run), *TINY)
    assert code == 0, err
    code, _, err = run_cli("eval", "--run", str(run), "--metrics", "classes", "--no-write")
    assert code == 2 and "has no labels" in err


def test_eval_run_without_generator_exits_2(tmp_path, run_cli):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text("data:\n  dataset: digits\n")
    code, _, err = run_cli("eval", "--run", str(tmp_path / "empty"))
    assert code == 2 and "no generator weights" in err
    code, _, err = run_cli("eval", "--run", str(tmp_path / "nowhere"))
    assert code == 2 and "no such run directory" in err


def test_eval_metric_flag_is_validated(tmp_path, run_cli):
    code, _, err = run_cli("train", "--steps", "2", "--out", str(tmp_path / "r"), "--eval-every", "1",
                           "--eval-metric", "fidd", *TINY)
    assert code == 2 and "unknown eval metric 'fidd'" in err
