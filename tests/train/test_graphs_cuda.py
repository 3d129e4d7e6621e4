"""The GPU fast path on a real GPU (skipped without CUDA; run on a lent GPU by scripts/gpu_check.sh).

A run whose steps are replayed from one captured CUDA graph against the same run with every step
eager (same capturable fused Adam, same in-place zeroing): the statistics and weights agree, the
step really was replayed, and the defaults on CUDA are the measured fast path.
"""

import pytest
import torch

from ganforge.run import read_stats
from ganforge.train import graphs

from test_graphs import eager_steps_only, weights
from helpers import tiny_config
from helpers import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = {"train.device": "cuda", "model.arch": "dcgan", "train.steps": 12, "log.grad_every": 5}


def test_cuda_defaults_are_the_fast_path(tmp_path):
    t, _ = train(tiny_config(**CUDA), tmp_path / "r")
    assert t.fast.graphs and t.fast.fused and t.fast.tf32
    assert isinstance(t.graph.backend, graphs.CudaGraph) and not t.graph.failed


@pytest.mark.parametrize("sets", [{}, {"objective.name": "wgan-gp", "model.arch": "mlp", "train.n_dis": 2},
                                  {"model.conditioning": "acgan", "train.ema_decay": 0.9}])
def test_replayed_steps_match_eager_steps_on_the_gpu(tmp_path, monkeypatch, sets):
    cfg = {**CUDA, **sets, "train.precision": "fp32", "train.tf32": "off"}
    graphed, run_g = train(tiny_config(**cfg), tmp_path / "g")
    with monkeypatch.context() as m:
        eager_steps_only(m)
        eager, run_e = train(tiny_config(**cfg), tmp_path / "e")
    assert isinstance(graphed.graph.backend, graphs.CudaGraph) and not graphed.graph.failed
    a, b = read_stats(run_g.stats), read_stats(run_e.stats)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 13))
    for ra, rb in zip(a, b):
        for key in ("loss/D", "loss/G", "logit/real", "logit/fake"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-3, abs=1e-4), (ra["step"], key)
    for x, y in zip(weights(graphed), weights(eager)):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-4)
    assert graphed.objective.state_dict() == eager.objective.state_dict()
