"""The GPU fast path's plumbing, checked on the CPU.

CUDA graphs (train/graphs.py) run here through EagerReplay, the stand-in that re-runs the step where
a graph would replay it: static input buffers, capturable fused Adam with the learning rate on the
device, in-place gradient zeroing, statistics and watchdog checks re-reported after each replay,
host counters advanced, re-capture after a rollback or resume. A run through the stand-in must equal
an eager run bit for bit. Also: fused Adam, the TF32 / graph / compile switches and their errors, and
the torch.compile fall-back.
"""

import logging

import pytest
import torch

from ganforge import stats
from ganforge.config import set_value, validate
from ganforge.errors import GanforgeError
from ganforge.run import RunDir, read_stats
from ganforge.train import Trainer, fastpath, graphs
from ganforge.run import load_checkpoint

from helpers import tiny_config
from test_reliability_watchdog import poison
from helpers import train

STEPPED = {"g_optim.schedule": "step", "g_optim.step_size": 2, "g_optim.gamma": 0.5, "d_optim.schedule": "cosine"}


@pytest.fixture
def graphs_here(monkeypatch):
    """Let train.cuda_graphs run on this CPU through the EagerReplay stand-in."""
    monkeypatch.setattr(fastpath, "graphs_possible", lambda device: True)


def weights(t: Trainer) -> list[torch.Tensor]:
    return list(t.G.state_dict().values()) + list(t.D.state_dict().values())


def assert_same_run(a: tuple, b: tuple) -> None:
    (ta, run_a), (tb, run_b) = a, b
    assert ta.step == tb.step
    for x, y in zip(weights(ta), weights(tb)):
        assert torch.equal(x, y)
    for x, y in zip(ta.opt_D.state.values(), tb.opt_D.state.values()):
        assert torch.equal(x["exp_avg_sq"], y["exp_avg_sq"]) and float(x["step"]) == float(y["step"])
    drop = ("images_per_s", "restored_from")
    recs_a = [{k: v for k, v in r.items() if k not in drop} for r in read_stats(run_a.stats)]
    recs_b = [{k: v for k, v in r.items() if k not in drop} for r in read_stats(run_b.stats)]
    assert recs_a == recs_b
    assert ta.objective.state_dict() == tb.objective.state_dict()


CASES = {
    "ns": {"train.n_dis": 2},
    "wgan-gp": {"model.arch": "mlp", "objective.name": "wgan-gp", "train.n_dis": 2},  # double backward
    "wgan-clip": {"model.arch": "mlp", "objective.name": "wgan", "g_optim.name": "adam", "d_optim.name": "adam"},
    "acgan-ema": {"model.conditioning": "acgan", "train.ema_decay": 0.9},  # labels as static inputs, EMA in the step
    "r1-every-step": {"objective.r1.gamma": 1.0, "objective.r1.every": 1},
    "diffaugment": {"train.diffaugment": "translation,cutout,color"},  # random ops inside the step
    "sngan-infogan": {"model.arch": "resnet", "model.spectral_norm_d": True, "objective.name": "infogan",
                      "model.info_cat": 3},  # power iteration buffers, the Q head
}


def eager_steps_only(monkeypatch) -> None:
    """Graph mode's optimisers and zeroing, but every step taken eagerly (the oracle for the replays)."""
    monkeypatch.setattr(graphs.StepGraph, "step", lambda self, batches: False)


@pytest.mark.parametrize("name", CASES)
def test_a_run_through_the_graph_plumbing_equals_the_eager_run(tmp_path, graphs_here, monkeypatch, name):
    """Steps replayed through the stand-in (logging steps eager, every 3rd) give the weights, optimiser
    state, stats.jsonl records and objective counters of the same run with every step eager, exactly."""
    sets = {**CASES[name], **STEPPED, "train.steps": 7, "log.grad_every": 3, "train.cuda_graphs": "on"}
    graphed = train(tiny_config(**sets), tmp_path / "graphed")
    with monkeypatch.context() as m:
        eager_steps_only(m)
        eager = train(tiny_config(**sets), tmp_path / "eager")
    t = graphed[0]
    assert t.graph.backend is not None and eager[0].graph.backend is None
    assert isinstance(t.graph.backend, graphs.EagerReplay) and not t.graph.failed
    assert torch.is_tensor(t.opt_G.param_groups[0]["lr"]) and t.opt_G.param_groups[0]["capturable"]
    assert t.opt_G.param_groups[0]["lr"].item() == pytest.approx(tiny_config(**sets).g_optim.lr * 0.5**3)
    assert_same_run(graphed, eager)


def test_graph_statistics_are_the_replayed_values_not_the_captured_ones(tmp_path, graphs_here):
    t, run = train(tiny_config(**{"train.cuda_graphs": "on", "train.steps": 6, "log.grad_every": 100}), tmp_path / "r")
    recs = read_stats(run.stats)
    assert len(recs) == 6 and len({r["loss/D"] for r in recs}) == 6  # each step its own loss
    assert all("grad/D/preclip_total" not in r for r in recs)  # no clipping configured: nothing invented


def test_rollback_recaptures_the_step_and_matches_eager(tmp_path, graphs_here, monkeypatch):
    """A NaN gradient at step 5 under graphs: caught by the re-reported watchdog check, rolled back to the
    step-4 checkpoint, the step captured again; the run equals the same poisoned run without graphs."""
    sets = {"train.steps": 8, "log.checkpoint_every": 2, "model.arch": "mlp", "log.grad_every": 100, "train.cuda_graphs": "on"}
    results = []
    for mode in ("eager", "replayed"):
        with monkeypatch.context() as m:
            if mode == "eager":
                eager_steps_only(m)
            t = Trainer(tiny_config(**sets))
            fired = poison(t, {(5, "D"): "grad"})
            run = RunDir(tmp_path / mode)
            run.create()
            t.train(run)
        assert fired == [5] and t.step == 8
        results.append((t, run))
    assert [r.get("event") for r in read_stats(results[1][1].stats)].count("rollback") == 1
    assert_same_run(results[1], results[0])


def test_resume_across_graph_and_eager_runs(tmp_path, graphs_here):
    """A graph run resumes bit-identically; its checkpoint (lr tensors, capturable state) also resumes
    eagerly and the other way round, with the optimiser state carried over exactly."""
    sets = {"g_optim.schedule": "step", "g_optim.step_size": 3, "log.grad_every": 100}  # no schedule over train.steps
    straight, _ = train(tiny_config(**sets, **{"train.steps": 8, "train.cuda_graphs": "on"}), tmp_path / "straight")
    train(tiny_config(**sets, **{"train.steps": 4, "train.cuda_graphs": "on"}), tmp_path / "half")
    resumed, _ = train(tiny_config(**sets, **{"train.steps": 8, "train.cuda_graphs": "on"}), tmp_path / "half", resume=True)
    for a, b in zip(weights(straight), weights(resumed)):
        assert torch.equal(a, b)
    for first, second in (("on", "off"), ("off", "on")):
        path = tmp_path / f"{first}-{second}"
        train(tiny_config(**sets, **{"train.steps": 4, "train.cuda_graphs": first}), path)
        saved = load_checkpoint(RunDir(path).last)["opt_D"]
        t = Trainer(tiny_config(**sets, **{"train.steps": 8, "train.cuda_graphs": second}))
        t.resume_from(RunDir(path))
        group = t.opt_D.param_groups[0]
        assert torch.is_tensor(group["lr"]) == (second == "on") == group["capturable"]
        assert float(group["lr"]) == pytest.approx(float(saved["param_groups"][0]["lr"]), rel=1e-6)
        for i, st in t.opt_D.state_dict()["state"].items():
            assert torch.equal(st["exp_avg"], saved["state"][i]["exp_avg"]) and float(st["step"]) == 4.0
        run = RunDir(path)
        t.train(run)
        assert t.step == 8 and all(torch.isfinite(w).all() for w in weights(t))


def test_a_failed_capture_falls_back_to_eager_steps_with_one_warning(tmp_path, graphs_here, monkeypatch, caplog):
    def broken(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    sets = {"train.steps": 5, "log.grad_every": 100, "train.cuda_graphs": "on"}
    with monkeypatch.context() as m:
        eager_steps_only(m)
        eager = train(tiny_config(**sets), tmp_path / "b")
    monkeypatch.setattr(graphs.EagerReplay, "capture", broken)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        fell_back = train(tiny_config(**sets), tmp_path / "a")
    warnings = [r.getMessage() for r in caplog.records if "CUDA graphs off" in r.getMessage()]
    assert len(warnings) == 1 and "stream is capturing" in warnings[0]
    assert fell_back[0].graph.failed
    assert_same_run(fell_back, eager)


def test_a_step_that_reports_host_numbers_is_not_replayed(tmp_path, graphs_here, caplog):
    """A number computed on the host would be frozen into the graph: the trainer stays eager instead."""
    cfg = tiny_config(**{"train.cuda_graphs": "on", "train.steps": 4, "log.grad_every": 100})
    t = Trainer(cfg)
    inner = t.objective.report_scores

    def with_host_number(real_logits, fake_logits):
        inner(real_logits, fake_logits)
        stats.report("host/constant", 1.0)

    t.objective.report_scores = with_host_number
    run = RunDir(tmp_path / "r")
    run.create()
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        t.train(run)
    assert t.graph.failed and t.step == 4
    assert any("host numbers (host/constant)" in r.getMessage() for r in caplog.records)
    assert all(r["host/constant"] == 1.0 for r in read_stats(run.stats))  # the stand-in's step was kept, once


def test_graph_and_speed_switches_are_resolved_with_clear_errors(graphs_here, monkeypatch):
    cpu = torch.device("cpu")

    def fp(**sets):
        cfg = tiny_config(**{"data.image_size": 8, "data.channels": 1, **sets})
        return fastpath.choose(cfg, cpu)

    assert fp().fused and not fp(**{"train.fused_optim": "off"}).fused
    assert not fp(**{"g_optim.name": "rmsprop", "d_optim.name": "rmsprop"}).fused
    with pytest.raises(GanforgeError, match="fused_optim on: .*adam"):
        fp(**{"g_optim.name": "rmsprop", "d_optim.name": "rmsprop", "train.fused_optim": "on"})
    with pytest.raises(GanforgeError, match="train.tf32 on: .*cpu"):
        fp(**{"train.tf32": "on"})
    assert not fp().tf32
    with pytest.raises(GanforgeError, match="cuda_graphs on: .*Adam"):
        fp(**{"train.cuda_graphs": "on", "d_optim.name": "rmsprop"})
    with pytest.raises(GanforgeError, match="cuda_graphs on: .*exclusive"):
        fp(**{"train.cuda_graphs": "on", "train.compile": "on"})
    assert not fp(**{"train.compile": "on"}).graphs and fp(**{"train.compile": "on"}).compile
    cfg = tiny_config(**{"data.image_size": 8, "data.channels": 1, "train.cuda_graphs": "on"})
    with pytest.raises(GanforgeError, match="cuda_graphs on: .*torchrun"):
        fastpath.choose(cfg, cpu, world=2)
    with pytest.raises(GanforgeError, match="cuda_graphs on: lazy R1"):
        Trainer(tiny_config(**{"train.cuda_graphs": "on", "objective.r1.gamma": 1.0, "objective.r1.every": 4}))
    with pytest.raises(GanforgeError, match="cuda_graphs on: BEGAN"):
        Trainer(tiny_config(**{"train.cuda_graphs": "on", "objective.name": "began", "model.arch": "began"}))
    assert not Trainer(tiny_config(**{"objective.name": "began", "model.arch": "began"})).fast.graphs  # auto: eager
    monkeypatch.setattr(fastpath, "graphs_possible", lambda device: device.type == "cuda")
    assert not fp().graphs  # auto on a CPU: no graphs
    with pytest.raises(GanforgeError, match="cuda_graphs on: CUDA graphs need a CUDA device, not cpu"):
        fp(**{"train.cuda_graphs": "on"})


@pytest.mark.parametrize("key", ["train.fused_optim", "train.tf32", "train.cuda_graphs", "train.compile"])
def test_bad_switch_values_are_refused(key):
    cfg = tiny_config()
    set_value(cfg, key, "yes")
    with pytest.raises(GanforgeError, match=f"{key} must be auto, on or off"):
        validate(cfg)


def test_fused_adam_is_the_default_and_learns_like_the_loop(tmp_path):
    """Fused Adam on by default; against torch's per-parameter Adam the weights agree to float32 rounding."""
    fused, _ = train(tiny_config(**{"train.steps": 5}), tmp_path / "fused")
    loop, _ = train(tiny_config(**{"train.steps": 5, "train.fused_optim": "off"}), tmp_path / "loop")
    assert fused.opt_G.param_groups[0]["fused"] and not loop.opt_G.param_groups[0].get("fused")
    for a, b in zip(weights(fused), weights(loop)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(weights(fused), weights(loop)))  # really another kernel


def test_a_failing_torch_compile_falls_back_to_eager_with_one_warning(tmp_path, monkeypatch, caplog):
    """torch 2.11 failed on channels_last convolution backward: whatever compile raises, the run goes on
    eagerly, warns once, and trains exactly as an eager run."""

    class Failing(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, *args):
            raise AssertionError("expected size 8==8, stride 1==64 at dim=1")

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.net, name)

    monkeypatch.setattr(torch, "compile", lambda net, **kw: Failing(net))
    sets = {"train.steps": 4, "model.arch": "dcgan"}
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        compiled = train(tiny_config(**sets, **{"train.compile": "on"}), tmp_path / "c")
    warnings = [r.getMessage() for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1 and "stride" in warnings[0]
    assert compiled[0].compiled is None
    assert_same_run(compiled, train(tiny_config(**sets), tmp_path / "e"))


@pytest.mark.parametrize("text, value", [("train.cuda_graphs=off", "off"), ("train.compile=on", "on"), ("train.tf32=auto", "auto")])
def test_switches_typed_on_the_command_line_are_read_as_words(text, value):
    """YAML 1.1 reads on/off as booleans; --set train.compile=on must still mean "on"."""
    from ganforge.config import parse_assignment

    cfg = tiny_config()
    set_value(cfg, *parse_assignment(text))
    validate(cfg)
    assert cfg.to_dict()["train"][text.split("=")[0].split(".")[1]] == value


@pytest.mark.slow
def test_torch_compile_really_compiles_on_this_cpu(tmp_path, caplog):
    """train.compile on: inductor compiles G and D (no fall-back), and the run learns what eager learns."""
    sets = {"train.steps": 3, "model.arch": "dcgan", "train.precision": "fp32"}
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        compiled, _ = train(tiny_config(**sets, **{"train.compile": "on"}), tmp_path / "c")
    assert compiled.compiled is not None
    assert not [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    eager, _ = train(tiny_config(**sets), tmp_path / "e")
    for a, b in zip(weights(compiled), weights(eager)):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
