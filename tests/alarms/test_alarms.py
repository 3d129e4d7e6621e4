"""Alarms fire on constructed failing runs, name the step, and stay quiet on a healthy run.

Constructed runs: the saturating (minimax) loss against a strong D, an injected NaN, an exploding
learning rate, and a generator that outputs one image. Oracles: the same runs without the fault.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn as nn

from ganforge.alarms import (
    ALARMS_FILE, DETECTORS, KINDS, Alarms, Detector, Finding, check_config, mean_pairwise_distance, read_alarms,
)
from ganforge.config import AlarmConfig
from ganforge.errors import GanforgeError
from ganforge.run import RunDir, read_stats
from ganforge.train import Trainer
from ganforge.train.optim import build_optimizer

from helpers import tiny_config


def _train(tmp_path, trainer: Trainer, name: str = "run") -> tuple[RunDir, list[dict]]:
    run = RunDir(tmp_path / name)
    run.create()
    trainer.train(run)
    return run, read_alarms(run.path)


def _kinds(alarms: list[dict]) -> list[str]:
    return [a["kind"] for a in alarms]


# --------------------------------------------------------------------------- constructed runs


def test_quiet_on_a_healthy_short_run(tmp_path, caplog):
    t = Trainer(tiny_config(**{"train.steps": 30, "log.log_every": 2, "log.grad_every": 2}))
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        run, alarms = _train(tmp_path, t)
    assert alarms == [] and t.alarms.fired == []
    assert not [r for r in caplog.records if "ALARM" in r.getMessage()]
    recs = read_stats(run.stats)
    # the measurements the alarms look at are there and in a healthy range
    assert all(0.05 < r["diversity"] < 2.0 for r in recs)
    assert all(0.2 < r["D(x)"] < 0.8 and 0.2 < r["D(G(z))"] < 0.8 for r in recs)


SATURATING = {
    "train.n_dis": 5,
    "d_optim.lr": 0.01,  # a strong D ...
    "g_optim.lr": 1e-5,  # ... against a G that barely moves
    "train.steps": 60,
    "log.log_every": 5,
    "log.grad_every": 5,
}


def test_vanishing_gradients_with_the_saturating_loss_against_a_strong_d(tmp_path):
    t = Trainer(tiny_config(**{**SATURATING, "objective.name": "minimax"}))
    run, alarms = _train(tmp_path, t, "minimax")
    van = [a for a in alarms if a["kind"] == "vanishing_gradients"]
    assert len(van) >= 1, alarms
    recs = {r["step"]: r for r in read_stats(run.stats)}
    first = van[0]
    at = recs[first["step"]]
    assert at["D(G(z))"] < 0.05  # D confidently rejects the fakes
    peak = max(r["grad/G/total"] for r in recs.values() if r["step"] <= first["step"])
    assert at["grad/G/total"] < 0.1 * peak
    assert first["value"] == pytest.approx(at["grad/G/total"], rel=1e-6)
    assert "d_overpowers_g" in _kinds(alarms)  # D(x) ~ 1 and D(G(z)) ~ 0 held for several records

    # Oracle: the same strong D with the non-saturating loss keeps G's gradients large: no vanishing alarm.
    t_ns = Trainer(tiny_config(**{**SATURATING, "objective.name": "ns"}))
    run_ns, alarms_ns = _train(tmp_path, t_ns, "ns")
    assert "vanishing_gradients" not in _kinds(alarms_ns)
    ns_g = read_stats(run_ns.stats)[-1]["grad/G/total"]
    assert ns_g > 100 * read_stats(run.stats)[-1]["grad/G/total"]


def test_injected_nan_fires_divergence_at_that_step(tmp_path, caplog):
    t = Trainer(tiny_config(**{"watchdog.enabled": False, "train.steps": 8}))  # this alarm only reports
    original = t.objective.accumulate_gradients

    def poisoned(phase, G, D, real, labels, z):
        if t.step == 3 and phase == "D":
            with torch.no_grad():
                next(D.parameters()).fill_(float("nan"))
        return original(phase, G, D, real, labels, z)

    t.objective.accumulate_gradients = poisoned
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        run, alarms = _train(tmp_path, t)
    div = [a for a in alarms if a["kind"] == "divergence"]
    assert len(div) == 1, alarms  # fires once, not on every later record
    assert div[0]["step"] == 4  # the record of the 4th update, the first with the NaN
    assert "non-finite" in div[0]["message"] and div[0]["value"] == "nan"
    assert any("ALARM step 4 divergence" in r.getMessage() for r in caplog.records)
    assert all(a["step"] >= 4 for a in alarms)  # nothing before the fault
    lines = (run.path / ALARMS_FILE).read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == _kinds(alarms)
    assert set(json.loads(lines[0])) == {"step", "kind", "message", "value", "threshold"}


def test_exploding_learning_rate(tmp_path):
    sets = {"watchdog.enabled": False, "g_optim.name": "sgd", "d_optim.name": "sgd"}
    t = Trainer(tiny_config(**sets, **{"g_optim.lr": 1e4, "d_optim.lr": 1e4}))
    run, alarms = _train(tmp_path, t)
    kinds = _kinds(alarms)
    assert alarms[0]["step"] == 1 and alarms[0]["kind"] == "exploding_gradients", alarms
    assert alarms[0]["value"] > alarms[0]["threshold"] == 1.0
    assert "divergence" in kinds  # the losses blow up soon after
    # Oracle: the same run at the default learning rate is quiet.
    t_ok = Trainer(tiny_config(**sets, **{"g_optim.lr": 2e-4, "d_optim.lr": 2e-4}))
    _, quiet = _train(tmp_path, t_ok, "ok")
    assert quiet == []


class OneImage(nn.Module):
    """A generator that ignores its noise: every sample is the same learnable image."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.randn(1, *shape) * 0.5)

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:
        return torch.tanh(self.image).expand(z.shape[0], *self.image.shape[1:])  # [B, C, H, W]


def test_generator_that_outputs_one_image_is_mode_collapse(tmp_path):
    t = Trainer(tiny_config())
    t.engine.G = OneImage(t.source.spec.shape)
    t.opt_G = build_optimizer(t.G.parameters(), t.cfg.g_optim)
    run, alarms = _train(tmp_path, t)
    assert _kinds(alarms) == ["mode_collapse"]
    assert alarms[0]["step"] == 1 and alarms[0]["value"] == pytest.approx(0.0, abs=1e-6)
    recs = read_stats(run.stats)
    assert all(r["diversity"] == pytest.approx(0.0, abs=1e-6) for r in recs)
    assert "grad/G/image" not in recs[0] and "grad/G/root" in recs[0]  # the module that owns the parameter


class ReplayGenerator(nn.Module):
    """Outputs real training images picked by the noise; with `only_class` set, images of that class only."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images)  # [N, C, H, W]
        self.labels = labels
        self.scale = nn.Parameter(torch.ones(()))  # something for G's optimiser to hold
        self.only_class = None

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:
        pool = self.images if self.only_class is None else self.images[self.labels == self.only_class]
        idx = (z[:, 0].abs() * 1e4).long() % pool.shape[0]  # [B]
        return pool[idx] * self.scale


def test_falling_class_coverage_is_mode_collapse(tmp_path):
    from ganforge.metrics.features import classifier_path

    if not classifier_path("digits").is_file():
        pytest.skip("the shipped digits classifier (ganforge/assets/digits.safetensors) is not there")
    t = Trainer(tiny_config(**{"data.max_items": 300, "train.steps": 8}))
    t.engine.G = ReplayGenerator(t.source.all_images(), t.source.labels)
    t.opt_G = build_optimizer(t.G.parameters(), t.cfg.g_optim)
    original = t.objective.accumulate_gradients

    def collapse_at_step_4(phase, G, D, real, labels, z):
        if t.step == 4:
            t.G.only_class = 3  # from now on G makes only (real, varied) threes
        return original(phase, G, D, real, labels, z)

    t.objective.accumulate_gradients = collapse_at_step_4
    run, alarms = _train(tmp_path, t)
    recs = {r["step"]: r for r in read_stats(run.stats)}
    assert all(recs[s]["class_coverage"] >= 0.9 for s in (1, 2, 3, 4))  # real digits of every class
    assert all(recs[s]["class_coverage"] <= 0.2 for s in (5, 6, 7, 8))  # one class (the classifier is ~98% right)
    assert all(r["diversity"] > 0.3 for r in recs.values())  # varied images: the diversity check alone misses it
    assert _kinds(alarms) == ["mode_collapse"] and alarms[0]["step"] == 5
    assert "class coverage" in alarms[0]["message"]


# --------------------------------------------------------------------------- the checks on records


def test_balance_alarms_need_patience_and_fire_once():
    a = Alarms(AlarmConfig(patience=3))
    d_wins = {"D(x)": 0.995, "D(G(z))": 0.005}
    fired = [a.check(s, dict(d_wins)) for s in range(1, 6)]
    assert [len(f) for f in fired] == [0, 0, 1, 0, 0]
    assert fired[2][0]["kind"] == "d_overpowers_g" and fired[2][0]["step"] == 3
    assert a.check(6, {"D(x)": 0.6, "D(G(z))": 0.4}) == []  # clears ...
    assert [x["kind"] for s in (7, 8, 9) for x in a.check(s, dict(d_wins))] == ["d_overpowers_g"]  # ... and re-arms
    b = Alarms(AlarmConfig(patience=1))
    assert [x["kind"] for x in b.check(1, {"D(x)": 0.99, "D(G(z))": 0.99})] == ["g_overpowers_d"]


def test_checks_read_stats_jsonl_values_and_thresholds():
    a = Alarms(AlarmConfig(max_loss=50.0, exploding_grad=10.0))
    assert a.check(1, {"loss/D": 1.3, "loss/G": 0.7, "grad/D/total": 9.9, "update/D/net.0": 0.5}) == []
    got = a.check(2, {"loss/D": 1.3, "loss/G": -60.0, "grad/D/total": 10.1})
    assert {x["kind"]: x["threshold"] for x in got} == {"divergence": 50.0, "exploding_gradients": 10.0}
    # NaN and inf are written to stats.jsonl as strings
    c = Alarms(AlarmConfig())
    got = c.check(1, {"loss/D": "inf", "loss/G": 0.7})
    assert [x["kind"] for x in got] == ["divergence"] and got[0]["value"] == "inf"
    assert Alarms(AlarmConfig(enabled=False)).check(1, {"loss/D": "nan"}) == []


def test_mean_pairwise_distance_oracle():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert mean_pairwise_distance(x) == pytest.approx((5 + 10 + 5) / 3)
    assert mean_pairwise_distance(torch.ones(5, 1, 2, 2)) == 0.0


@pytest.mark.parametrize(
    "key, value", [("pinned", 0.5), ("patience", 0), ("max_loss", 0.0), ("diversity_samples", 1), ("min_coverage_ratio", 1.5)]
)
def test_bad_thresholds_are_input_errors(key, value):
    cfg = AlarmConfig(**{key: value})
    with pytest.raises(GanforgeError, match=f"alarms.{key}"):
        check_config(cfg)


def test_thresholds_are_configurable_from_the_cli(run_cli, tmp_path):
    code, out, err = run_cli("train", "--print-config", "--set", "alarms.max_loss=20", "--set", "alarms.patience=5")
    assert code == 0 and "max_loss: 20.0" in out and "patience: 5" in out
    code, _, err = run_cli("train", "--steps", "1", "--set", "alarms.pinned=0.7", "--out", tmp_path / "bad")
    assert code == 2 and "alarms.pinned" in err


def test_resume_drops_alarms_after_the_checkpoint(tmp_path):
    run = RunDir(tmp_path / "r")
    run.create()
    (run.path / ALARMS_FILE).write_text("".join(json.dumps({"step": s, "kind": "divergence"}) + "\n" for s in (2, 5, 9)))
    Alarms(AlarmConfig(), run.path, step=5)
    assert [a["step"] for a in read_alarms(run.path)] == [2, 5]
    Alarms(AlarmConfig(), run.path, step=0)  # resumed before its first checkpoint: nothing is kept
    assert read_alarms(run.path) == []


def _record(step: int, g: float, dgz: float, dx: float = 0.6, cov: float = 1.0) -> dict:
    return {"step": step, "grad/G/total": g, "D(G(z))": dgz, "D(x)": dx, "class_coverage": cov, "loss/D": 1.0}


def test_a_resumed_run_checks_as_the_uninterrupted_run_would(tmp_path):
    """Peaks, streaks and active alarms survive a resume: rebuilt from stats.jsonl up to the checkpoint.

    Oracle: one Alarms object that saw every record. Without the rebuild the resumed checks would
    miss the vanishing gradient (its peak came before the resume), miss the coverage drop, fire
    d_overpowers_g late (its streak restarted) and fire the still-active divergence a second time."""
    cfg = AlarmConfig(patience=3, diversity_warmup=0)
    records = [_record(1, 10.0, 0.5), _record(2, 8.0, 0.5, cov=1.0), _record(3, 8.0, 0.001, dx=0.999),
               {**_record(4, 8.0, 0.001, dx=0.999), "loss/D": "nan"},
               {**_record(5, 0.5, 0.001, dx=0.999, cov=0.3), "loss/D": "nan"}, _record(6, 0.5, 0.01, dx=0.999, cov=0.3)]
    straight = Alarms(cfg)
    expected = [(s, a["kind"]) for r in records for s in [r["step"]] for a in straight.check(s, dict(r)) if s > 4]
    assert sorted(k for _, k in expected) == ["d_overpowers_g", "mode_collapse", "vanishing_gradients"]

    run = RunDir(tmp_path / "r")
    run.create()
    for r in records[:4]:
        run.append_stats(r)
    run.append_stats({"step": 4, "event": "rollback"})  # events are not stats records
    resumed = Alarms(cfg, run.path, step=4)
    got = [(r["step"], a["kind"]) for r in records[4:] for a in resumed.check(r["step"], dict(r))]
    assert got == expected
    assert resumed.detectors["vanishing_gradients"].peak == 10.0  # the detector's state was rebuilt
    assert Alarms(cfg, run.path, step=0).detectors["vanishing_gradients"].peak == 0.0  # a fresh run starts empty


def test_measurements_leave_the_training_state_alone():
    """The probe (diversity, class coverage) draws no random numbers and leaves G's buffers as they were,
    so a resumed run stays bit-identical to an uninterrupted one."""
    t = Trainer(tiny_config())
    a = Alarms(t.cfg.alarms)
    rng = torch.get_rng_state()
    buffers = {k: v.clone() for k, v in t.G.named_buffers()}
    assert buffers  # DCGAN: BatchNorm running statistics
    got = a.measure(t)
    assert set(got) >= {"diversity"} and torch.equal(rng, torch.get_rng_state())
    for k, v in t.G.named_buffers():
        assert torch.equal(v, buffers[k]), k
    assert t.G.training


# --------------------------------------------------------------------------- the detector registry


def test_the_registry_lists_every_kind_in_check_order():
    order = ("divergence", "vanishing_gradients", "exploding_gradients", "d_overpowers_g", "g_overpowers_d",
             "mode_collapse")
    assert KINDS == DETECTORS.kinds() == order
    assert list(Alarms(AlarmConfig()).detectors) == list(order)
    assert all(DETECTORS.get(k).kind == k for k in order)
    # several kinds on one record come out in that order
    record = {"loss/D": "nan", "grad/G/total": 1e4, "D(G(z))": 0.99, "diversity": 0.0}
    got = Alarms(AlarmConfig(patience=1)).check(1, record)
    assert [x["kind"] for x in got] == ["divergence", "exploding_gradients", "g_overpowers_d", "mode_collapse"]


class DLossVanished(Detector):
    """A test alarm: loss/D below 0.01 (D separates real from fake perfectly)."""

    def check(self, step: int, record: dict, cfg: AlarmConfig):
        v = record.get("loss/D")
        return Finding(f"loss/D = {v:g} < 0.01", v, 0.01) if v is not None and v < 0.01 else None


def test_a_new_alarm_is_one_class_and_one_registration(tmp_path, caplog):
    DETECTORS.register("d_loss_vanished")(DLossVanished)
    try:
        assert DETECTORS.kinds() == KINDS + ("d_loss_vanished",)
        run = RunDir(tmp_path / "r")
        run.create()
        a = Alarms(AlarmConfig(), run.path)
        with caplog.at_level(logging.WARNING, logger="ganforge"):
            assert a.observe(1, {"loss/D": 0.5}) == []
            got = a.observe(2, {"loss/D": 0.001})
            assert a.check(3, {"loss/D": 0.002}) == []  # still holds: no repeat
            assert a.check(4, {"loss/D": 0.5}) == [] and len(a.check(5, {"loss/D": 0.0})) == 1  # clears, re-arms
        alarm = {"step": 2, "kind": "d_loss_vanished", "message": "loss/D = 0.001 < 0.01", "value": 0.001,
                 "threshold": 0.01}
        assert got == [alarm] and read_alarms(run.path)[0] == alarm and len(read_alarms(run.path)) == 2
        assert "ALARM step 2 d_loss_vanished: loss/D = 0.001 < 0.01" in caplog.text
    finally:
        DETECTORS.unregister("d_loss_vanished")
    assert DETECTORS.kinds() == KINDS and "d_loss_vanished" not in Alarms(AlarmConfig()).detectors
    with pytest.raises(GanforgeError, match="unknown alarm kind 'd_loss_vanished'"):
        DETECTORS.unregister("d_loss_vanished")


NEUTRAL = {"loss/D": 1.3, "loss/G": 0.7, "D(x)": 0.6, "D(G(z))": 0.4}


def _seq(*records: dict) -> list[dict]:
    return [{**NEUTRAL, **r} for r in records]


# (kind, thresholds, records just below the threshold, the same records just above it): the second
# sequence fires `kind` at its last record and nothing else; the first fires nothing.
THRESHOLD_CASES = [
    ("divergence", {"max_loss": 50.0}, _seq({"loss/D": 49.99}), _seq({"loss/D": 50.01})),
    ("divergence", {"max_loss": 50.0}, _seq({"loss/G": -49.99}), _seq({"loss/G": -50.01})),
    ("divergence", {}, _seq({"grad/G/net.0": 1e30}), _seq({"grad/G/net.0": "inf"})),  # non-finite anywhere
    ("vanishing_gradients", {}, _seq({"grad/G/total": 10.0}, {"grad/G/total": 1.01, "D(G(z))": 0.01}),
     _seq({"grad/G/total": 10.0}, {"grad/G/total": 0.99, "D(G(z))": 0.01})),  # 0.1 * the peak
    ("vanishing_gradients", {}, _seq({"grad/G/total": 10.0}, {"grad/G/total": 0.5, "D(G(z))": 0.051}),
     _seq({"grad/G/total": 10.0}, {"grad/G/total": 0.5, "D(G(z))": 0.049})),  # confident_fake
    ("vanishing_gradients", {"vanishing_grad": 1e-3}, _seq({"grad/G/total": 1.01e-3, "D(G(z))": 0.01}),
     _seq({"grad/G/total": 0.99e-3, "D(G(z))": 0.01})),  # the absolute floor
    ("exploding_gradients", {"exploding_grad": 1e3}, _seq({"grad/D/total": 999.0}), _seq({"grad/D/total": 1001.0})),
    ("exploding_gradients", {"exploding_grad": 1e3}, _seq({"grad/G/total": 999.0}), _seq({"grad/G/total": 1001.0})),
    ("exploding_gradients", {"max_update_ratio": 1.0}, _seq({"update/G/net.0": 0.99, "update/G/total": 5.0}),
     _seq({"update/G/net.0": 1.01, "update/G/total": 5.0})),
    ("d_overpowers_g", {"pinned": 0.02, "patience": 3}, _seq(*[{"D(x)": 0.979, "D(G(z))": 0.01}] * 3),
     _seq(*[{"D(x)": 0.981, "D(G(z))": 0.01}] * 3)),
    ("d_overpowers_g", {"pinned": 0.02, "patience": 3}, _seq(*[{"D(x)": 0.99, "D(G(z))": 0.021}] * 3),
     _seq(*[{"D(x)": 0.99, "D(G(z))": 0.019}] * 3)),
    ("d_overpowers_g", {"pinned": 0.02, "patience": 3}, _seq(*[{"D(x)": 0.99, "D(G(z))": 0.01}] * 2),
     _seq(*[{"D(x)": 0.99, "D(G(z))": 0.01}] * 3)),  # patience: two records are not enough
    ("g_overpowers_d", {"pinned": 0.02, "patience": 2}, _seq(*[{"D(G(z))": 0.979}] * 2),
     _seq(*[{"D(G(z))": 0.981}] * 2)),
    ("g_overpowers_d", {"pinned": 0.02, "patience": 2}, _seq({"D(G(z))": 0.99}, {}, {"D(G(z))": 0.99}),
     _seq({}, {"D(G(z))": 0.99}, {"D(G(z))": 0.99})),  # the streak must be unbroken
    ("mode_collapse", {"min_diversity": 0.05}, _seq({"diversity": 0.051}), _seq({"diversity": 0.049})),
    ("mode_collapse", {"min_coverage_ratio": 0.5}, _seq({"class_coverage": 1.0}, {"class_coverage": 0.51}),
     _seq({"class_coverage": 1.0}, {"class_coverage": 0.49})),
    ("mode_collapse", {"diversity_warmup": 3}, _seq({}, {"diversity": 0.0}),
     _seq({}, {}, {"diversity": 0.0})),  # no alarm before step diversity_warmup
]


@pytest.mark.parametrize("kind, thresholds, below, above", THRESHOLD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(THRESHOLD_CASES)])
def test_each_detector_fires_exactly_when_its_threshold_is_crossed(kind, thresholds, below, above):
    def fired(records: list[dict]) -> list[tuple[int, str]]:
        a = Alarms(AlarmConfig(**thresholds))
        return [(s, x["kind"]) for s, r in enumerate(records, 1) for x in a.check(s, dict(r))]

    assert fired(below) == []
    assert fired(above) == [(len(above), kind)]


def test_every_builtin_kind_has_threshold_cases():
    assert {c[0] for c in THRESHOLD_CASES} == set(KINDS)
