"""benchmarks/quality.py's targets (issue 12): each is a command a user would type, judged by the median
over seeds; the fast tests check that logic, the slow ones (make test-slow) run each target for 3 seeds."""

import pytest
import torch
from helpers import load_benchmark

bench = load_benchmark("quality")


@pytest.mark.parametrize("target", bench.TARGETS, ids=lambda t: t.name)
def test_each_target_is_a_plain_user_command(target):
    """No --steps, no --set: the preset's own budget for the data set is what reaches the target; the
    command parses into a config without error."""
    from ganforge.cli import build_parser, config_from_args

    assert not {"--steps", "--set", "--config", "--batch-size"} & set(target.args)
    args = build_parser().parse_args(["train", *target.args])
    cfg = config_from_args(args)
    assert cfg.train.steps > 0


def test_median_decides_and_both_sides_count():
    t = bench.Target("x", ("--dataset", "toy2d-ring"), {"high_quality_fraction": (">=", 0.97), "mode_kl": ("<=", 0.05)})
    runs = [{"high_quality_fraction": h, "mode_kl": k, "train_s": 1.0} for h, k in [(0.99, 0.01), (0.90, 0.2), (0.98, 0.04)]]
    assert bench.reached(t, runs) == {"high_quality_fraction": True, "mode_kl": True}  # medians 0.98, 0.04
    runs[2] = {"high_quality_fraction": 0.96, "mode_kl": 0.06, "train_s": 1.0}
    assert bench.reached(t, runs) == {"high_quality_fraction": False, "mode_kl": False}  # medians 0.96, 0.06
    row = bench.target_row(t, runs)
    assert "0.96 [0.9-0.99]" in row and "not yet" in row


def test_summary_of_one_and_three_seeds():
    assert bench.summary([0.5]) == "0.5"
    assert bench.summary([3.0, 1.0, 2.0]) == "2 [1-3]"


def test_train_and_eval_measures_a_real_run(tmp_path):
    m = bench.train_and_eval(["--dataset", "toy2d-ring", "--steps", "20"], tmp_path / "run", seed=0, n=200)
    assert m["num_modes"] == 8 and 0 <= m["modes_covered"] <= 8
    assert 0.0 <= m["high_quality_fraction"] <= 1.0
    assert m["train_s"] > 0 and m["eval_s"] > 0
    with pytest.raises(RuntimeError, match="exited 2"):
        bench.train_and_eval(["--dataset", "toy2d-ring", "--preset", "wgan-gp", "--arch", "dcgan"], tmp_path / "bad", seed=0)


# Targets not reached yet on 2 CPU cores (docs/results.md says what the best run reached and why): their
# slow tests are strict xfails, so a recipe that starts reaching one turns its test into a failure to mend.
NOT_REACHED = {"grid-pacgan", "stacked-r3gan"}
# Hours per run on a CPU core (docs/results.md): run where CUDA is, skipped elsewhere.
GPU_ONLY = {"fashion-r3gan": "2 h"}


SEEDS = (0, 1, 2)  # a target is met by the median over these seeds, as in benchmarks/quality.py --targets


def _slow_param(t):
    if t.name in GPU_ONLY:
        reason = f"{GPU_ONLY[t.name]} per run on a CPU core: needs CUDA"
        return pytest.param(t, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=reason))
    if t.name in NOT_REACHED:
        return pytest.param(t, marks=pytest.mark.xfail(strict=True, reason="not reached yet: docs/results.md"))
    return t


def test_the_slow_tests_cover_every_target_once():
    assert not NOT_REACHED & set(GPU_ONLY) and (NOT_REACHED | set(GPU_ONLY)) <= set(bench.TARGETS_BY_NAME)


@pytest.mark.slow
@pytest.mark.parametrize("target", [_slow_param(t) for t in bench.TARGETS], ids=lambda t: t.name)
def test_target_is_reached(target, tmp_path):
    device = "cuda" if target.name in GPU_ONLY else "cpu"
    runs = [bench.train_and_eval(list(target.args), tmp_path / f"seed{s}", seed=s, device=device) for s in SEEDS]
    assert bench.reached(target, runs) == {k: True for k in target.bars}, bench.target_row(target, runs)


def test_the_targets_table_end_to_end(tmp_path, capsys, monkeypatch):
    tiny = bench.Target("tiny", ("--dataset", "toy2d-ring", "--steps", "10"), {"modes_covered": (">=", 9)})
    monkeypatch.setitem(bench.TARGETS_BY_NAME, "tiny", tiny)
    assert bench.main(["--targets", "tiny", "--seeds", "0,1", "--threads", "1", "--n", "200", "--out", str(tmp_path)]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| tiny |")]
    assert len(row) == 1 and "(>= 9: no)" in row[0] and "not yet" in row[0]  # 8 modes at most: never reached
    assert (tmp_path / "tiny-seed0" / "generator.safetensors").is_file() and (tmp_path / "tiny-seed1").is_dir()
