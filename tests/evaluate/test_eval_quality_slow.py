"""Long quality run (make test-slow): the toy2d preset on the 8-Gaussian ring, measured with the
PacGAN protocol. Reference: docs/benchmarks.md table 2 (8/8 modes, 63.4% high quality)."""

import pytest


@pytest.mark.slow
def test_toy2d_preset_covers_the_ring(tmp_path):
    from ganforge.config import Config, apply_dict, get_preset
    from ganforge.evaluate import evaluate
    from ganforge.run import RunDir
    from ganforge.train import Trainer

    cfg = Config()
    apply_dict(cfg, get_preset("toy2d").overrides, "preset toy2d")
    cfg.train.device = "cpu"
    trainer = Trainer(cfg)
    run = RunDir(tmp_path / "ring")
    run.create()
    trainer.train(run, quiet=True)
    m = evaluate(run.path, write=False)["metrics"]
    assert 7 <= m["modes_covered"] <= 8
    assert 0.5 <= m["high_quality_fraction"] <= 1.0
    # Over seeds 0-9 (docs/benchmarks.md) the KL ranged 0.10-0.58: 0.5 failed 5 of 20 runs of both Adam
    # kernels. 0.75 sits above that spread and below a ring dominated by one mode (two thirds of the
    # samples in one mode, the rest spread evenly: KL 0.79; collapse to one mode: ln 8 = 2.08).
    assert 0.0 <= m["mode_kl"] <= 0.75
