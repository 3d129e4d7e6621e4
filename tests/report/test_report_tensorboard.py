"""--tensorboard: the stats.jsonl scalars and the sample grids as TensorBoard events (optional extra)."""

from __future__ import annotations

import pytest

from ganforge.run import read_stats


def test_tensorboard_events_match_stats_jsonl(run_cli, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    code, _, err = run_cli("train", "--preset", "dcgan", "--steps", "4", "--batch-size", "8", "--z-dim", "4", "--set", "model.g_width=8",
                           "--set", "model.d_width=8", "--set", "data.max_items=32", "--set", "log.log_every=2", "--set", "log.grad_every=2",
                           "--set", "log.sample_every=2", "--tensorboard", "--no-report", "--quiet", "--out", out)
    assert code == 0, err
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    recs = read_stats(out / "stats.jsonl")
    for key in ("loss/D", "loss/G", "D(x)", "D(G(z))", "grad/G/total", "update/D/total", "lr/G", "diversity"):
        events = acc.Scalars(key)
        assert [e.step for e in events] == [r["step"] for r in recs] == [2, 4], key
        assert [e.value for e in events] == pytest.approx([r[key] for r in recs], rel=1e-6), key
    images = acc.Images("samples")
    assert [e.step for e in images] == [0, 2, 4]
    assert all(e.width > 100 and e.height > 100 for e in images)


def test_tensorboard_missing_is_a_clear_error(run_cli, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("tensorboard", "torch.utils.tensorboard")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    code, _, err = run_cli("train", "--steps", "1", "--batch-size", "8", "--set", "data.max_items=16",
                           "--tensorboard", "--quiet", "--out", tmp_path / "run")
    assert code == 2 and "pip install 'ganforge[tensorboard]'" in err
