"""Metric groups as registered units (their order, their errors, a group added by one class and
one registration) and the in-training evaluation hook, on an untrained tiny digits generator."""

import json
from typing import Any, Callable, Optional

import pytest
import torch

import ganforge.evaluate as ev
from ganforge.config import Config, set_value
from ganforge.errors import GanforgeError
from ganforge.evaluate import (
    METRIC_GROUPS,
    EvalContext,
    MetricGroup,
    check_eval_config,
    evaluate_generator,
    load_real,
    make_eval_hook,
    metric_group,
)
from ganforge.metrics.features import select_extractor
from ganforge.nets import build_nets
from ganforge.run import RunDir, load_checkpoint, load_weights, read_jsonl, spec_from_config

BUILTIN = ("fid", "kid", "prdc", "score", "classes", "modes", "memorisation")
ALL = (*BUILTIN, "conditional", "infogan_codes")  # evaluate/conditional.py, registered after the built-ins
N = 40


def _cfg(dataset: str = "digits", **sets: Any) -> Config:
    """A tiny resolved config (the networks can be built from it without loading data)."""
    cfg = Config()
    shape = {"data.image_size": 8, "data.channels": 1} if dataset == "digits" else {}
    for k, v in {"data.dataset": dataset, "data.max_items": 100, "model.z_dim": 8, "model.g_width": 8,
                 "model.d_width": 8, **shape, **sets}.items():
        set_value(cfg, k, v)
    return cfg


def _ctx(cfg: Config) -> EvalContext:
    """What the groups' `applies` sees for cfg's data."""
    real = load_real(cfg)
    return EvalContext(cfg, real, select_extractor(cfg.data.dataset, tuple(real.train.shape[1:])), None, 0, 0, False)


@pytest.fixture(scope="module")
def digits_G() -> tuple[torch.nn.Module, Config]:
    cfg = _cfg()
    torch.manual_seed(0)
    G, _ = build_nets(spec_from_config(cfg), cfg.model)
    return G, cfg


def test_registry_lists_the_groups_in_registration_order():
    assert ev.GROUPS == ALL
    assert tuple(g.name for g in METRIC_GROUPS.ordered()) == ALL
    assert all(METRIC_GROUPS.get(name).name == name for name in ALL)
    assert ev.is_lower_better("fid") and not ev.is_lower_better("coverage") and len(ev.LOWER_IS_BETTER) == 17


def test_unknown_group_lists_the_valid_ones(digits_G):
    G, cfg = digits_G
    with pytest.raises(GanforgeError) as e:
        evaluate_generator(G, cfg, None, 0, n=N, metrics=["fid", "speed"], write=False)
    assert str(e.value) == "unknown metric group 'speed'; valid: fid, kid, prdc, score, classes, modes, memorisation, conditional, infogan_codes"


@pytest.mark.parametrize(
    "dataset, group, reason",
    [
        ("digits", "modes", "mode counting needs toy2d or stacked data with its digit classifier, not 'digits' with classifier:digits"),
        ("toy2d-ring", "score", "extractor points is not a classifier"),
        ("toy2d-ring", "classes", "'toy2d-ring' has no labels or no shipped classifier for its classes (points)"),
        ("toy2d-ring", "memorisation", "'toy2d-ring' has no held-out split to set the memorisation threshold"),
    ],
)
def test_a_group_that_does_not_apply_gives_its_reason(dataset, group, reason):
    ctx = _ctx(_cfg(dataset))
    assert METRIC_GROUPS.get(group).applies(ctx) == reason
    assert all(METRIC_GROUPS.get(g).applies(ctx) is None for g in ("fid", "kid", "prdc"))


def test_requesting_a_group_that_does_not_apply_is_a_one_line_error(digits_G):
    G, cfg = digits_G
    with pytest.raises(GanforgeError) as e:
        evaluate_generator(G, cfg, None, 0, n=N, metrics=["modes"], write=False)
    assert str(e.value).startswith("--metrics modes: mode counting needs toy2d") and "\n" not in str(e.value)


class _PixelMean(MetricGroup):
    """A toy group: the mean generated value."""

    name = "pixel_mean"
    lower_is_better = {"pixel_mean": False}

    def compute(self, ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
        return {"pixel_mean": float(ctx.fake.mean())}, {"pixel_mean": {"n": ctx.n}}


class _NeverApplies(MetricGroup):
    """A toy group that never applies."""

    name = "never"

    def applies(self, ctx: EvalContext) -> Optional[str]:
        return "this toy group never applies"


def test_a_custom_group_is_one_class_and_one_registration(digits_G):
    G, cfg = digits_G
    metric_group(_PixelMean)
    metric_group(_NeverApplies)
    try:
        assert ev.GROUPS == (*ALL, "pixel_mean", "never")
        r = evaluate_generator(G, cfg, None, 0, n=N, write=False)  # default: every group that applies
        assert list(r["metrics"])[-1] == "pixel_mean" and "fid" in r["metrics"] and "memorised_fraction" in r["metrics"]
        assert r["protocol"]["pixel_mean"] == {"n": N} and "never" not in r["protocol"]
        r = evaluate_generator(G, cfg, None, 0, n=N, metrics=["pixel_mean", "fid"], write=False)
        assert list(r["metrics"]) == ["fid", "fid_floor", "pixel_mean"]  # registration order, not request order
        assert ev.is_lower_better("pixel_mean") is False
        with pytest.raises(GanforgeError, match="--metrics never: this toy group never applies"):
            evaluate_generator(G, cfg, None, 0, n=N, metrics=["never"], write=False)
    finally:
        METRIC_GROUPS.unregister("pixel_mean")
        METRIC_GROUPS.unregister("never")
    assert ev.GROUPS == ALL and "pixel_mean" not in ev.LOWER_IS_BETTER


def test_make_eval_hook_checks_the_eval_keys():
    assert make_eval_hook(_cfg()) is None  # log.eval_every 0: no evaluation during training
    assert callable(make_eval_hook(_cfg(**{"log.eval_every": 2})))
    with pytest.raises(GanforgeError, match="unknown eval metric 'fidd'; valid: class_accuracy, class_coverage"):
        make_eval_hook(_cfg(**{"log.eval_every": 2, "log.eval_metric": "fidd"}))
    with pytest.raises(GanforgeError, match="log.eval_n must be at least 10"):
        make_eval_hook(_cfg(**{"log.eval_every": 2, "log.eval_n": 5}))
    with pytest.raises(GanforgeError, match="unknown eval metric"):
        check_eval_config(_cfg(**{"log.eval_every": 1, "log.eval_metric": "fidd"}))


def test_eval_hook_writes_metrics_and_keeps_the_best(digits_G, tmp_path):
    G, _ = digits_G
    cfg = _cfg(**{"log.eval_every": 2, "log.eval_n": N})
    hook = make_eval_hook(cfg)
    assert hook is not None
    run = RunDir(tmp_path / "run")
    run.create()
    saved: list[int] = []

    def checkpoint(step: int) -> Callable[[], dict[str, Any]]:
        """The loop's state_dict stand-in: records that best.pt was asked for."""
        def state() -> dict[str, Any]:
            saved.append(step)
            return {"step": step, "G": G.state_dict()}

        return state

    r = hook(run, 2, G, checkpoint(2), True)
    fid = r["metrics"]["fid"]
    lines = read_jsonl(run.metrics)
    assert [x["step"] for x in lines] == [2] and set(lines[0]) == {"step", "time", "metrics", "protocol"}
    assert lines[0]["metrics"]["fid"] == pytest.approx(fid, rel=1e-12) and lines[0]["protocol"]["n_fake"] == N
    assert json.loads(run.best_info.read_text()) == {"metric": "fid", "value": fid, "step": 2, "lower_is_better": True}
    assert saved == [2] and load_checkpoint(run.best)["step"] == 2
    _, meta = load_weights(run.best_generator)
    assert meta == {"step": "2", "metric": "fid", "value": repr(fid), "ema": "true"}
    assert set(r["files"]) == {"nearest", "metrics"}

    run.best_info.write_text(json.dumps({"metric": "fid", "value": -1.0, "step": 1, "lower_is_better": True}))
    hook(run, 4, G, checkpoint(4), False)  # not better than -1: best.* kept
    assert saved == [2] and json.loads(run.best_info.read_text())["step"] == 1
    run.best_info.write_text(json.dumps({"metric": "fid", "value": 1e9, "step": 1, "lower_is_better": True}))
    hook(run, 6, G, checkpoint(6), False)
    assert saved == [2, 6] and json.loads(run.best_info.read_text())["step"] == 6
    assert load_weights(run.best_generator)[1]["ema"] == "false"
    assert [x["step"] for x in read_jsonl(run.metrics)] == [2, 4, 6]


def test_eval_hook_rejects_a_metric_the_data_does_not_have(digits_G, tmp_path):
    G, _ = digits_G
    hook = make_eval_hook(_cfg(**{"log.eval_every": 1, "log.eval_n": N, "log.eval_metric": "mode_kl"}))
    assert hook is not None
    run = RunDir(tmp_path / "run")
    run.create()
    with pytest.raises(GanforgeError, match="--eval-metric mode_kl is not measured for digits; measured: class_coverage"):
        hook(run, 1, G, dict, False)
    assert not run.best.exists()
